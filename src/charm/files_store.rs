//! Where files go: with an `s3` relation, the bucket the integrator names (checked before
//! anything is touched); otherwise the database's own store. The charm's adapter reads a
//! file the bucket does not hold from the database's store, so files stored before the
//! relation stay reachable (charm/node/s3-files-adapter.js).

use std::path::Path;
use std::time::Duration;

use super::endpoints::S3_ENDPOINT;
use super::reconcile::install_failed;
use super::status::{Blocked, Invalid, Maintenance, Waiting};
use super::{blocked, waiting, Charm, Step};
use crate::config::CharmConfig;
use crate::relations::s3::{self, Answer, ProviderBag};
use crate::workload::database::DbError;
use crate::workload::install::{self, Locked};
use crate::workload::s3::S3Store;

/// How long the bucket check waits for the store.
const S3_TIMEOUT: Duration = Duration::from_secs(5);

impl Charm<'_> {
    /// The bucket new files go to, once the store answered a signed `HEAD` of it; `None`
    /// without an s3 relation. Anything else stops the reconcile (`waiting`): whatever
    /// serves keeps serving, and files keep going where they went.
    pub(super) fn s3(&self, config: &CharmConfig) -> Step<Option<S3Store>> {
        let Some(id) = self.live_relations(S3_ENDPOINT)?.first().cloned() else {
            return Ok(None);
        };
        if config.extra_options.contains_key("filesAdapter") {
            return blocked(Blocked::InvalidConfig(vec![Invalid::new(
                "extra-options",
                "filesAdapter and the s3 relation both say where files go: remove one",
            )]));
        }
        if self.tools.is_leader()? {
            let request = s3::request(&self.ctx.app_name);
            let own = self.tools.relation_get_app(&id, &self.ctx.app_name)?;
            if !request.iter().all(|(k, v)| own.get(k) == Some(v)) {
                self.tools.relation_set_app(&id, &request)?;
            }
        }
        let Some(remote_app) = self.remote_app(&id)? else {
            return waiting(Waiting::S3Share {
                what: "its settings (no unit has joined)".into(),
            });
        };
        let provider = ProviderBag::from_bag(&self.tools.relation_get_app(&id, &remote_app)?);
        let secret = self.provider_secret(S3_ENDPOINT, provider.secret_extra.as_deref())?;
        let store = match provider.store(secret.as_ref()) {
            Answer::Ready(store) => store,
            Answer::Incomplete(fields) => {
                return waiting(Waiting::S3Share {
                    what: fields.join(", "),
                })
            }
            Answer::Unusable(why) => {
                return waiting(Waiting::ProviderData {
                    endpoint: S3_ENDPOINT.into(),
                    why,
                })
            }
        };
        match self.probes.s3(&store, S3_TIMEOUT) {
            Ok(()) => Ok(Some(store)),
            Err(DbError::Unreachable(why))
            | Err(DbError::Refused(why))
            | Err(DbError::BadUri(why)) => waiting(Waiting::S3Bucket {
                endpoint: store.endpoint(),
                bucket: store.bucket.clone(),
                why,
            }),
        }
    }

    /// A package's tree from the charm's lockfile (`npm/<dir>/`), installed once.
    pub(super) fn ensure_locked_installed(&self, node: &Path, pkg: Locked) -> Step<()> {
        if install::has_locked(&self.paths, pkg) {
            return Ok(());
        }
        self.maintenance(Maintenance::Installing {
            what: pkg.name.into(),
            version: pkg.version.into(),
        })?;
        let lock_dir = self.ctx.charm_dir.join("npm").join(pkg.dir);
        match install::install_locked(&self.paths, pkg, node, &lock_dir, &self.ctx.proxy.env()) {
            Ok(()) => {
                self.log(&format!("installed {} {}", pkg.name, pkg.version));
                Ok(())
            }
            Err(e) => install_failed(pkg.name, e),
        }
    }
}
