//! The `cloud-code` resource as a reconcile step: which Cloud Code revision the service is to
//! run. No resource (never attached) or an empty one (Charmhub's placeholder) means none.
//! A new revision is unpacked, its dependencies installed and its code loaded once outside
//! the service before the rendering names it; the rolling restart then takes it to the
//! service, one unit at a time. Anything wrong with it stops the hook (`blocked` naming the
//! resource, or `waiting` for what may pass) before anything serving is touched.

use std::path::Path;

use super::status::{Blocked, Maintenance, Waiting};
use super::{blocked, waiting, Charm, Step};
use crate::text::one_line;
use crate::workload::cloud_code::{self, Check, CloudCode, Problem, RESOURCE};
use crate::workload::render::Rendered;
use crate::workload::user::Account;

impl Charm<'_> {
    /// The Cloud Code revision the service is to run (`last_good`: the rendering that
    /// served last, to keep its revision while Juju cannot provide the resource).
    pub(super) fn cloud_code(
        &self,
        node: &Path,
        version: &str,
        account: Account,
        last_good: Option<&Rendered>,
    ) -> Step<Option<CloudCode>> {
        let file = match self.tools.resource_get(RESOURCE) {
            Ok(f) => f,
            Err(e) => {
                if let Some(serving) = last_good.and_then(Rendered::cloud_code_digest) {
                    return waiting(Waiting::CloudCode {
                        why: format!(
                            "Juju cannot provide it ({}); {serving} runs",
                            one_line(&e.detail, 80)
                        ),
                    });
                }
                // Deployed without the resource: a server with no Cloud Code.
                self.log(&format!(
                    "no {RESOURCE} resource: {}",
                    one_line(&e.detail, 120)
                ));
                return Ok(None);
            }
        };
        let digest = match cloud_code::digest(&file) {
            Ok(Some(d)) => d,
            Ok(None) => return Ok(None),
            Err(e) => {
                return blocked(Blocked::CloudCode {
                    digest: None,
                    why: format!("cannot read it: {e}"),
                })
            }
        };
        if let Some(why) = cloud_code::refused(&self.paths, &digest, version) {
            return blocked(Blocked::CloudCode {
                digest: Some(digest),
                why,
            });
        }
        let loaded = cloud_code::loaded_before(&self.paths, &digest, version);
        if !loaded {
            self.maintenance(Maintenance::PreparingCloudCode {
                digest: digest.clone(),
            })?;
        }
        let code =
            match cloud_code::prepare(&self.paths, &file, &digest, node, &self.ctx.proxy.env())? {
                Ok(code) => code,
                Err(Problem::Refused(why)) => {
                    cloud_code::record_refused(&self.paths, &digest, None, &why)?;
                    return self.refuse(digest, why);
                }
                Err(Problem::Failed(why)) => return self.refuse(digest, why),
                Err(Problem::Retry(why)) => return waiting(Waiting::CloudCode { why }),
            };
        if loaded {
            return Ok(Some(code));
        }
        self.checkpoint("cloud-code-prepared");
        self.ensure_charm_file(&self.paths.cloud_check(), CLOUD_CHECK_JS)?;
        let check = Check {
            node,
            release_dir: self.paths.release_dir(version),
            main: self.paths.cloud_code_dir(&digest).join("main.js"),
            module: code.module,
            uid: account.uid,
            gid: account.gid,
        };
        match self.probes.cloud_code_loads(&self.paths, &check)? {
            Ok(()) => {
                cloud_code::record_loaded(&self.paths, &digest, version)?;
                self.log(&format!("{RESOURCE} {digest} loads"));
                Ok(Some(code))
            }
            Err(line) => {
                let why = format!("its code does not load: {line}");
                cloud_code::record_refused(&self.paths, &digest, Some(version), &why)?;
                cloud_code::remove(&self.paths, &digest)?;
                self.refuse(digest, why)
            }
        }
    }

    fn refuse<T>(&self, digest: String, why: String) -> Step<T> {
        self.log(&format!("{RESOURCE} {digest} refused: {why}"));
        blocked(Blocked::CloudCode {
            digest: Some(digest),
            why,
        })
    }
}

/// The loader check the charm installs at `Paths::CLOUD_CHECK`.
const CLOUD_CHECK_JS: &str = include_str!("../../charm/node/cloud-check.js");
