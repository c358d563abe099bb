//! Scheduled Cloud Code jobs as part of the charm: the scheduler's timer on exactly the
//! leader (it moves with leadership: the new leader's `leader-elected` turns it on, the old
//! leader's `leader-settings-changed` turns it off; a run is refused by the database if two
//! units ever overlap), only while Cloud Code serves; and the `run-job` action.

use std::path::Path;

use serde_json::Value;

use super::{Charm, Step};
use crate::juju::hook_tools::bag_of;
use crate::workload::files::{self, FileMode, ROOT_ONLY_DIR, ROOT_ONLY_FILE};
use crate::workload::jobs::{self, Endpoint, SCHEDULER_UNIT, TIMER_UNIT};

const UNIT_FILE: FileMode = FileMode {
    mode: 0o644,
    uid: 0,
    gid: 0,
};

impl Charm<'_> {
    /// The scheduler's units written, and its timer on where `on` (the leader serving Cloud
    /// Code) and off elsewhere; systemctl runs only when something changes.
    pub(super) fn ensure_job_timer(&self, node: &Path, on: bool) -> Step<()> {
        let record = self.paths.job_timer_record();
        let was = std::fs::read_to_string(&record).ok();
        let want = if on { "on" } else { "off" };
        if !on {
            if was.as_deref() == Some("off") || !self.paths.jobs_timer_file().exists() {
                return Ok(());
            }
            self.service.disable_now(TIMER_UNIT)?;
            let _ = std::fs::remove_file(self.paths.job_scheduler_record());
            self.write_job_timer_record(want)?;
            self.log("job scheduler off (not the leader, or no Cloud Code)");
            return Ok(());
        }
        self.ensure_charm_file(&self.paths.job_scheduler(), JOB_SCHEDULER_JS)?;
        let (service, timer) = jobs::render_units(&node.to_string_lossy());
        let mut changed = false;
        for (path, text) in [
            (self.paths.jobs_service_file(), service),
            (self.paths.jobs_timer_file(), timer),
        ] {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            changed |= files::write_if_changed(&path, text.as_bytes(), UNIT_FILE)?;
        }
        if changed {
            self.service.daemon_reload()?;
        }
        if changed || was.as_deref() != Some(want) {
            self.service.enable_now(TIMER_UNIT)?;
            self.write_job_timer_record(want)?;
            self.log("job scheduler on: parse-server-jobs.timer runs the jobs due every minute");
        }
        Ok(())
    }

    fn write_job_timer_record(&self, state: &str) -> Step<()> {
        files::ensure_dir(&self.paths.charm_state(), ROOT_ONLY_DIR)?;
        files::write_if_changed(
            &self.paths.job_timer_record(),
            state.as_bytes(),
            ROOT_ONLY_FILE,
        )?;
        Ok(())
    }

    /// The scheduler's timer and units gone (stop, remove).
    pub(super) fn remove_job_timer(&self) -> anyhow::Result<()> {
        if self.paths.jobs_timer_file().exists() {
            self.service.disable_now(TIMER_UNIT)?;
            if self.service.is_active(SCHEDULER_UNIT)? {
                self.service.stop(SCHEDULER_UNIT)?;
            }
        }
        for p in [
            self.paths.jobs_timer_file(),
            self.paths.jobs_service_file(),
            self.paths.job_timer_record(),
        ] {
            let _ = std::fs::remove_file(p);
        }
        Ok(())
    }

    /// What the leader's scheduler could not do last, for the status.
    pub(super) fn jobs_problem(&self) -> Option<String> {
        if std::fs::read_to_string(self.paths.job_timer_record()).ok()? != "on" {
            return None;
        }
        jobs::last_problem(&self.paths)
    }

    /// `run-job name=<job> [params=<JSON object>]`: starts the job now through this unit's
    /// parse-server (on the loopback, with the master key) and returns its `_JobStatus` id.
    pub(super) fn run_job(&self) -> anyhow::Result<()> {
        let args = self.tools.action_get()?;
        let name = args.get("name").and_then(Value::as_str).unwrap_or("");
        if name.is_empty() {
            self.tools.action_fail("name: the job to run is required")?;
            return Ok(());
        }
        let params = match args.get("params").and_then(Value::as_str) {
            None | Some("") => Value::Object(Default::default()),
            Some(text) => match serde_json::from_str::<Value>(text) {
                Ok(v @ Value::Object(_)) => v,
                _ => {
                    self.tools
                        .action_fail("params: must be a JSON object such as {\"limit\": 10}")?;
                    return Ok(());
                }
            },
        };
        let endpoint = std::fs::read_to_string(self.paths.config_file())
            .ok()
            .and_then(|t| Endpoint::from_options(&t));
        let Some(endpoint) = endpoint else {
            self.tools
                .action_fail("parse-server is not configured on this unit yet")?;
            return Ok(());
        };
        match jobs::run_now(&endpoint, name, &params) {
            Ok(id) => {
                self.tools.action_set(&bag_of(&[
                    ("job-status-id", id.as_str()),
                    ("job", name),
                    (
                        "see",
                        &format!(
                            "GET {}/classes/_JobStatus/{id} with the master key",
                            endpoint.mount_path
                        ),
                    ),
                ]))?;
            }
            Err(why) => self.tools.action_fail(&why)?,
        }
        Ok(())
    }
}

/// The scheduler the charm installs at `Paths::JOB_SCHEDULER`.
const JOB_SCHEDULER_JS: &str = include_str!("../../charm/node/job-scheduler.js");
