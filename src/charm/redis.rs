//! The Redis every instance shares (`redis-url`), checked before anything is touched, and
//! what LiveQuery's status says without one.

use std::time::Duration;

use super::peers::Peers;
use super::status::{Blocked, Invalid, LiveQueryScope, Waiting};
use super::{blocked, waiting, Charm, Step};
use crate::config::CharmConfig;
use crate::workload::database::DbError;

/// How long the check waits for the server at each step.
const REDIS_TIMEOUT: Duration = Duration::from_secs(5);

impl Charm<'_> {
    /// The URL parse-server gets (with its credentials: a secret), once the server answered
    /// and accepted them; `None` without `redis-url`. A server that does not answer stops
    /// the reconcile (`waiting`: whatever serves keeps serving); one that refuses the URL's
    /// password or database is the operator's to fix (`blocked`).
    pub(super) fn redis(&self, config: &CharmConfig) -> Step<Option<String>> {
        let Some(url) = &config.redis_url else {
            return Ok(None);
        };
        match self.probes.redis(url, REDIS_TIMEOUT) {
            Ok(()) => Ok(Some(url.to_secret_string())),
            Err(DbError::Refused(why)) | Err(DbError::BadUri(why)) => {
                blocked(Blocked::InvalidConfig(vec![Invalid::new(
                    "redis-url",
                    format!("{}: {why}", url.describe()),
                )]))
            }
            Err(DbError::Unreachable(why)) => waiting(Waiting::RedisUnreachable {
                server: url.describe(),
                why,
            }),
        }
    }
}

/// Which clients a LiveQuery event reaches when it is not every client: LiveQuery on, no
/// shared Redis, and more than one process serving.
pub(super) fn live_query_scope(
    config: &CharmConfig,
    redis: bool,
    peers: &Peers,
    workers: u32,
) -> Option<LiveQueryScope> {
    if config.live_query_classes.is_empty() || redis {
        return None;
    }
    if peers.has_other_units() {
        Some(LiveQueryScope::Unit)
    } else if workers > 1 {
        Some(LiveQueryScope::Process)
    } else {
        None
    }
}
