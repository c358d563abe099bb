//! Getting the service to serve a rendering, crash-safely: the rollout is recorded before the
//! files change and cleared only once the service serves them (or the last good files again),
//! so a hook killed at any instruction leaves the next hook enough to finish or roll back.

use super::{blocked, Charm, Step};
use crate::relations::peers::Peers;
use crate::workload::install;
use crate::workload::render::Rendered;
use crate::workload::service_files;
use crate::workload::systemd::SERVICE_UNIT;
use crate::workload::user::Account;

/// What serves now, as the charm recorded it (never from a file an operator could edit).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Serving {
    /// The port and mount path of the last rendering that served, if any.
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
    pub(super) fn serving_now(&self) -> Step<Serving> {
        let endpoint = service_files::last_good(&self.paths)?.and_then(|r| r.endpoint());
        let healthy = endpoint
            .as_ref()
            .is_some_and(|(port, mount)| self.probes.health(*port, mount).is_ok());
        let running = healthy || self.service.is_active(SERVICE_UNIT)?;
        Ok(Serving {
            endpoint,
            running,
            healthy,
        })
    }

    /// Makes the service serve `desired`: nothing when it already does; else the rollout,
    /// and back to the last good rendering when `desired` does not become healthy.
    pub(super) fn ensure_serving(
        &self,
        desired: &Rendered,
        serving: &Serving,
        account: Account,
        version: &str,
        peers: &mut Option<Peers>,
        leader: bool,
    ) -> Step<()> {
        let digest = desired.digest();
        let rollout = service_files::rollout(&self.paths);
        let current = service_files::current(&self.paths)?;
        let good = service_files::last_good(&self.paths)?;

        if service_files::failed(&self.paths).as_deref() == Some(digest.as_str()) {
            // This configuration did not start before: the service serves the last good one
            // (finishing a rollback a killed hook left half done) until the config changes.
            match good.filter(|g| g != desired) {
                Some(good) => {
                    if rollout.is_some() || current.as_ref() != Some(&good) || !serving.running {
                        self.maintenance("restoring the last good configuration")?;
                        self.apply(&good, account)?;
                        if let Err(why) = self.restart_until_healthy(&good) {
                            service_files::end_rollout(&self.paths)?;
                            return blocked(format!(
                                "the configuration did not start, nor did the previous one \
                                 ({why}); see juju debug-log"
                            ));
                        }
                    }
                    service_files::end_rollout(&self.paths)?;
                }
                None => self.stop_service()?,
            }
            self.withdraw_restart_request(peers)?;
            if leader {
                if let Some(p) = peers.as_mut() {
                    self.grant_restarts(p)?;
                }
            }
            return blocked(
                "the configuration did not start before (see juju debug-log); serving the \
                 previous one: change the config to retry",
            );
        }

        let unchanged = current.as_ref() == Some(desired) && rollout.is_none();
        if unchanged && serving.running {
            if !serving.healthy {
                // Running but not (yet) answering: asked once more, it may just have started.
                if let Some((port, mount)) = desired.endpoint() {
                    if let Err(why) = self.probes.health(port, &mount) {
                        return super::waiting(format!("parse-server is not healthy: {why}"));
                    }
                }
            }
            if good.as_ref() != Some(desired) {
                // Serving files an older charm revision wrote without a record: record them.
                service_files::save_last_good(&self.paths, desired)?;
            }
            return self.restart_done(peers, &digest, leader);
        }

        // With other units, one restarts at a time (waiting here keeps the old process
        // serving until this unit's turn).
        self.may_restart(peers, &digest, leader)?;
        self.maintenance(if serving.running {
            "restarting parse-server"
        } else {
            "starting parse-server"
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
                install::remove_other_releases(&self.paths, version)?;
                let _ = std::fs::remove_file(self.paths.legacy_env_file());
                self.restart_done(peers, &digest, leader)
            }
            Err(why) => {
                let reported = self.roll_back(desired, good, &why, account);
                self.withdraw_restart_request(peers)?;
                if leader {
                    if let Some(p) = peers.as_mut() {
                        self.grant_restarts(p)?;
                    }
                }
                reported
            }
        }
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
            return Err(crate::juju::status::one_line(&format!("{e:#}"), 120));
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
    /// stop the service when there are none) and report.
    fn roll_back(
        &self,
        failed: &Rendered,
        good: Option<Rendered>,
        why: &str,
        account: Account,
    ) -> Step<()> {
        service_files::record_failed(&self.paths, &failed.digest())?;
        self.checkpoint("failure-recorded");
        let Some(good) = good.filter(|g| g != failed) else {
            self.stop_service()?;
            service_files::end_rollout(&self.paths)?;
            return blocked(format!(
                "parse-server did not start: {why} (see juju debug-log)"
            ));
        };
        self.log(&format!(
            "the new configuration did not start ({why}); restoring the previous one"
        ));
        self.apply(&good, account)?;
        self.checkpoint("previous-files-written");
        let serving = match self.restart_until_healthy(&good) {
            Ok(()) => "serving the previous one".to_owned(),
            Err(again) => format!("the previous one did not start either ({again})"),
        };
        service_files::end_rollout(&self.paths)?;
        blocked(format!(
            "the new configuration did not start ({why}); {serving} (see juju debug-log)"
        ))
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
