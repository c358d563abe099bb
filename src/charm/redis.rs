//! The Redis every instance shares: `redis-url`, or a relation to Charmed Valkey; checked
//! before anything is touched. And what the status says when something is not shared.

use std::time::Duration;

use super::endpoints::VALKEY_ENDPOINT;
use super::peers::Peers;
use super::status::{Blocked, Invalid, LiveQueryScope, Waiting};
use super::{blocked, waiting, Charm, Step};
use crate::config::CharmConfig;
use crate::relations::valkey_client::{self, Answer};
use crate::uri::RedisUrl;
use crate::workload::database::DbError;
use crate::workload::render::RedisSpec;

/// How long the check waits for the server at each step.
const REDIS_TIMEOUT: Duration = Duration::from_secs(5);

/// The shared Redis as parse-server gets it, and what it cannot share.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct SharedRedis {
    pub spec: RedisSpec,
    /// Why `rateLimit` entries keep counting per process, when `extra-options` has some.
    pub rate_limit_caveat: Option<String>,
}

impl Charm<'_> {
    /// The Redis parse-server gets, once the server answered and accepted the credentials;
    /// `None` without one. A server that does not answer stops the reconcile (`waiting`:
    /// whatever serves keeps serving); one that refuses `redis-url`'s password or database is
    /// the operator's to fix (`blocked`), the relation's the provider's (`waiting`).
    pub(super) fn redis(&self, config: &CharmConfig) -> Step<Option<SharedRedis>> {
        let relation = self.live_relations(VALKEY_ENDPOINT)?.first().cloned();
        let (url, ca_pem, source) = match (&config.redis_url, relation) {
            (None, None) => return Ok(None),
            (Some(_), Some(_)) => {
                return blocked(invalid(
                    "redis-url",
                    "and the valkey relation both give a Redis: unset redis-url or remove the \
                     relation",
                ))
            }
            (Some(url), None) => (url.clone(), None, "redis-url"),
            (None, Some(id)) => {
                let (url, ca) = self.valkey(&id)?;
                (url, ca, "valkey relation")
            }
        };
        let info = match self.probes.redis(&url, ca_pem.as_deref(), REDIS_TIMEOUT) {
            Ok(info) => info,
            Err(DbError::Unreachable(why)) => {
                return waiting(Waiting::RedisUnreachable {
                    source: source.into(),
                    server: url.describe(),
                    why,
                })
            }
            Err(DbError::Refused(why)) | Err(DbError::BadUri(why)) => {
                let why = format!("{}: {why}", url.describe());
                return if config.redis_url.is_some() {
                    blocked(invalid("redis-url", why))
                } else {
                    waiting(Waiting::DatabaseRefused {
                        source: source.into(),
                        why,
                    })
                };
            }
        };
        // rate-limit-redis counts with scripts, and its client takes a URL only (no CA).
        let caveat = if !info.scripts {
            Some("the Redis user may not run scripts")
        } else if ca_pem.is_some() {
            Some("their client cannot be given the Redis's CA")
        } else {
            None
        };
        Ok(Some(SharedRedis {
            rate_limit_caveat: caveat
                .filter(|_| config.extra_options.contains_key("rateLimit"))
                .map(str::to_owned),
            spec: RedisSpec {
                url: url.to_secret_string(),
                ca_pem,
                rate_limits: caveat.is_none(),
            },
        }))
    }

    /// Charmed Valkey: the leader asks for a client user; every unit reads the answer, the
    /// credentials and the CA from the provider's secrets.
    fn valkey(&self, id: &str) -> Step<(RedisUrl, Option<String>)> {
        let (_, provider, ca_pem) =
            self.client_answer(VALKEY_ENDPOINT, "valkey", id, valkey_client::request())?;
        match valkey_client::connection(&provider) {
            Answer::Ready(url) => Ok((url, ca_pem)),
            Answer::Incomplete(what) => waiting(Waiting::ProviderShare {
                kind: "valkey".into(),
                what,
            }),
            Answer::Unusable(why) => waiting(Waiting::ProviderData {
                endpoint: VALKEY_ENDPOINT.into(),
                why,
            }),
        }
    }
}

fn invalid(option: &str, reason: impl Into<String>) -> Blocked {
    Blocked::InvalidConfig(vec![Invalid::new(option, reason)])
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
