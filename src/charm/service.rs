//! Getting the service to serve a rendering, crash-safely: the rollout is recorded before the
//! files change and cleared only once the service serves them (or the last good files again),
//! so a hook killed at any instruction leaves the next hook enough to finish or roll back.

use super::peers::{Peers, Turn};
use super::status::{Blocked, Maintenance, Minutes, Waiting};
use super::{blocked, waiting, Charm, Step};
use crate::workload::cloud_code;
use crate::workload::install;
use crate::workload::render::Rendered;
use crate::workload::service_files;
use crate::workload::systemd::SERVICE_UNIT;
use crate::workload::user::Account;

/// What serves now, as the charm recorded it (never from a file an operator could edit).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Serving {
    /// The last rendering that served, if any (read once per hook).
    pub last_good: Option<Rendered>,
    /// Its port and mount path.
    pub endpoint: Option<(u16, String)>,
    /// The service is running (its health check answers, or systemd says it is active).
    pub running: bool,
    /// Its health check answered ok just now.
    pub healthy: bool,
}

impl Serving {
    /// Whether the service itself holds `port` (so that a held port is no conflict).
    pub fn holds(&self, port: u16) -> bool {
        self.running
            && match &self.endpoint {
                Some((p, _)) => *p == port,
                // Installed by an older charm revision that kept no record: its own port.
                None => true,
            }
    }
}

impl Charm<'_> {
    /// Whether the service runs, asking systemd only when the health check does not answer
    /// (the steady state needs no systemctl at all).
    pub(super) fn serving_now(&self, last_good: Option<Rendered>) -> Step<Serving> {
        let endpoint = last_good.as_ref().and_then(Rendered::endpoint);
        let healthy = endpoint
            .as_ref()
            .is_some_and(|(port, mount)| self.probes.health(*port, mount).is_ok());
        let running = healthy || self.service.is_active(SERVICE_UNIT)?;
        Ok(Serving {
            last_good,
            endpoint,
            running,
            healthy,
        })
    }

    /// Makes the service serve `desired`: nothing when it already does; else the rollout
    /// (one unit at a time among units that serve), and back to the last good rendering
    /// when `desired` does not become healthy. A rendering that did not start is not tried
    /// again while the previous one serves (until the configuration changes); while
    /// nothing serves it is tried again with a back-off.
    pub(super) fn ensure_serving(
        &self,
        desired: &Rendered,
        serving: &Serving,
        account: Account,
        peers: &Peers,
    ) -> Step<()> {
        let digest = desired.digest();
        let now = self.probes.now();
        let rollout = service_files::rollout(&self.paths);
        let current = service_files::current(&self.paths)?;
        let good = serving.last_good.clone().filter(|g| g != desired);

        if let Some(failed) = service_files::failed(&self.paths).filter(|f| f.digest == digest) {
            // This rendering did not start before. Where the previous one is on disk but a
            // killed hook left the rollback half done, finish it.
            let mut healthy = serving.healthy;
            if let Some(good) = &good {
                if rollout.is_some() || current.as_ref() != Some(good) {
                    self.maintenance(Maintenance::RestoringLastGood)?;
                    self.apply(good, account)?;
                    healthy = self.restart_until_healthy(good).is_ok();
                    service_files::end_rollout(&self.paths)?;
                }
            }
            if healthy {
                return blocked(Blocked::StillServingPrevious);
            }
            if now < failed.retry_at() {
                if good.is_none() {
                    self.stop_service()?;
                }
                return blocked(Blocked::NothingServes {
                    next_try: Minutes::of_seconds(failed.retry_at() - now),
                });
            }
            self.log("nothing serves: trying the configuration that did not start again");
        }

        let unchanged = current.as_ref() == Some(desired) && rollout.is_none();
        if unchanged && serving.running {
            if !serving.healthy {
                // Running but not (yet) answering: asked once more, it may just have started.
                if let Some((port, mount)) = desired.endpoint() {
                    if let Err(why) = self.probes.health(port, &mount) {
                        return waiting(Waiting::Unhealthy(why));
                    }
                }
            }
            if serving.last_good.as_ref() != Some(desired) {
                // Serving files an older charm revision wrote without a record: record them.
                service_files::save_last_good(&self.paths, desired)?;
            }
            return self.served(desired, peers);
        }

        // Among units that serve, one restarts at a time (waiting here keeps the old process
        // serving until this unit's turn).
        if let Turn::Wait(why) = peers.may_restart(&digest, serving.healthy, now)? {
            return waiting(why);
        }
        self.maintenance(if serving.running {
            Maintenance::Restarting
        } else {
            Maintenance::Starting
        })?;
        service_files::begin_rollout(&self.paths, &digest)?;
        self.checkpoint("rollout-recorded");
        self.apply(desired, account)?;
        self.checkpoint("files-written");
        match self.restart_until_healthy(desired) {
            Ok(()) => {
                service_files::save_last_good(&self.paths, desired)?;
                service_files::clear_failed(&self.paths)?;
                service_files::end_rollout(&self.paths)?;
                if let Some(version) = desired.version() {
                    install::remove_other_releases(&self.paths, &version)?;
                }
                // The Cloud Code that serves now and the revision before it stay.
                let keep: Vec<String> = [Some(desired), serving.last_good.as_ref()]
                    .into_iter()
                    .flatten()
                    .filter_map(Rendered::cloud_code_digest)
                    .collect();
                let keep: Vec<&str> = keep.iter().map(String::as_str).collect();
                cloud_code::remove_others(&self.paths, &keep)?;
                let _ = std::fs::remove_file(self.paths.legacy_env_file());
                self.served(desired, peers)
            }
            Err(why) => {
                let reported = self.roll_back(desired, good, &why, account);
                peers.withdraw()?;
                reported
            }
        }
    }

    /// The service serves `r`: the peers and the Version column say so.
    fn served(&self, r: &Rendered, peers: &Peers) -> Step<()> {
        if let Some((port, _)) = r.endpoint() {
            peers.done(&r.digest(), port)?;
        }
        if let Some(version) = r.version() {
            self.publish_application_version(&version)?;
        }
        Ok(())
    }

    /// Writes `r`'s files, reloading and enabling the unit when it changed.
    fn apply(&self, r: &Rendered, account: Account) -> Step<()> {
        let changes = service_files::write(&self.paths, r, account.gid)?;
        if changes.unit {
            self.service.daemon_reload()?;
            self.service.enable(SERVICE_UNIT)?;
        }
        self.log(&format!("parse-server's files: {changes:?}"));
        Ok(())
    }

    /// Restarts the service and waits for its health check. `Err` is why it is not healthy:
    /// a restart that systemd itself refuses counts as a start that failed.
    fn restart_until_healthy(&self, r: &Rendered) -> Result<(), String> {
        let Some((port, mount)) = r.endpoint() else {
            return Err("the rendering names no port".into());
        };
        if let Err(e) = self.service.restart(SERVICE_UNIT) {
            return Err(crate::text::one_line(&format!("{e:#}"), 120));
        }
        self.checkpoint("restarted");
        let deadline = std::time::Instant::now() + self.timeouts.health_after_start;
        let mut next_alive_check = std::time::Instant::now() + std::time::Duration::from_secs(1);
        loop {
            let last = match self.probes.health(port, &mount) {
                Ok(()) => return Ok(()),
                Err(e) => e,
            };
            let now = std::time::Instant::now();
            self.checkpoint("health-wait");
            if now >= deadline {
                return Err(last);
            }
            if now >= next_alive_check {
                if !self.service.is_active(SERVICE_UNIT).unwrap_or(false) {
                    return Err(format!("parse-server exited ({last})"));
                }
                next_alive_check = now + std::time::Duration::from_secs(1);
            }
            self.probes.pause(self.timeouts.health_poll);
        }
    }

    /// After `failed` did not become healthy: record it, put the last good files back (or
    /// stop the service when there are none) and report what serves.
    fn roll_back(
        &self,
        failed: &Rendered,
        good: Option<Rendered>,
        why: &str,
        account: Account,
    ) -> Step<()> {
        let now = self.probes.now();
        service_files::record_failed(&self.paths, &failed.digest(), now)?;
        self.checkpoint("failure-recorded");
        let next_try = Minutes::of_seconds(
            service_files::failed(&self.paths)
                .map(|f| f.retry_at().saturating_sub(now))
                .unwrap_or_default(),
        );
        let Some(good) = good else {
            self.stop_service()?;
            service_files::end_rollout(&self.paths)?;
            return blocked(Blocked::FirstStartFailed {
                why: why.to_owned(),
                next_try,
            });
        };
        self.log(&format!(
            "the new configuration did not start ({why}); restoring the previous one"
        ));
        self.apply(&good, account)?;
        self.checkpoint("previous-files-written");
        // A new Cloud Code revision is named: it is what the operator changed.
        let why = match failed.cloud_code_digest() {
            Some(d) if good.cloud_code_digest().as_ref() != Some(&d) => {
                format!("with cloud-code {d}: {why}")
            }
            _ => why.to_owned(),
        };
        let why = why.as_str();
        let reported = match self.restart_until_healthy(&good) {
            Ok(()) => Blocked::RolledBack {
                why: why.to_owned(),
            },
            Err(again) => Blocked::RollbackFailed {
                why: why.to_owned(),
                again,
                next_try,
            },
        };
        service_files::end_rollout(&self.paths)?;
        blocked(reported)
    }

    /// Stops the service if it runs.
    pub(super) fn stop_service(&self) -> Step<()> {
        if self.service.is_active(SERVICE_UNIT)? {
            self.service.stop(SERVICE_UNIT)?;
            self.log("stopped parse-server");
        }
        Ok(())
    }
}
