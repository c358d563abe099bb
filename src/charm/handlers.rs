//! The hooks that do not reconcile (stop, remove) and the actions.

use anyhow::{Context, Result};

use super::master_key::MASTER_KEY_FIELD;
use super::status::Maintenance;
use super::user_secrets;
use super::{Charm, MASTER_KEY_SECRET};
use crate::config::CharmConfig;
use crate::juju::Databag;
use crate::workload::dashboard::DASHBOARD_UNIT;
use crate::workload::service_files;
use crate::workload::systemd::SERVICE_UNIT;
use crate::workload::user;

impl Charm<'_> {
    /// `stop`: the service stops and stays stopped (disabled), its port closes.
    pub(super) fn stop(&self) -> Result<()> {
        self.remove_job_timer()?;
        if self.paths.dashboard_unit_file().exists() {
            self.service.disable_now(DASHBOARD_UNIT)?;
        }
        if self.paths.unit_file().exists() {
            self.service.stop(SERVICE_UNIT)?;
            self.service.disable(SERVICE_UNIT)?;
        }
        self.close_all_ports()?;
        self.tools.status_set(&Maintenance::Stopped.into())?;
        Ok(())
    }

    fn close_all_ports(&self) -> Result<()> {
        for p in self.tools.opened_ports()? {
            if let Some(n) = p.strip_suffix("/tcp").and_then(|n| n.parse().ok()) {
                self.tools.close_port(n)?;
            }
        }
        Ok(())
    }

    /// `remove`: everything the charm put on the machine goes.
    pub(super) fn remove(&self) -> Result<()> {
        self.stop()?;
        let _ = std::fs::remove_file(self.paths.unit_file());
        let _ = std::fs::remove_file(self.paths.dashboard_unit_file());
        self.service.daemon_reload()?;
        for dir in [
            self.paths.config_dir(),
            self.paths.install_dir(),
            self.paths.state_dir(),
            self.paths.charm_state(),
            self.paths.charm_cache(),
        ] {
            if dir.exists() {
                std::fs::remove_dir_all(&dir)
                    .with_context(|| format!("removing {}", dir.display()))?;
            }
        }
        user::remove_service_account(&self.paths)
    }

    pub(super) fn action(&self, name: &str) -> Result<()> {
        match name {
            "get-master-key" => self.get_master_key(),
            "memory-report" => self.memory_report(),
            "run-job" => self.run_job(),
            "add-dashboard-user" => self.add_dashboard_user(),
            "remove-dashboard-user" => self.remove_dashboard_user(),
            other => {
                self.tools
                    .action_fail(&format!("unknown action {other:?}"))?;
                Ok(())
            }
        }
    }

    /// Per process of the service (cluster master and workers): PSS and anonymous memory
    /// from /proc, V8 heap used and limit as the process reports them; and the caps of the
    /// configuration that runs (whatever the configuration says now: an invalid one does
    /// not stop the report).
    fn memory_report(&self) -> Result<()> {
        let mut results = Databag::new();
        let mib = |kib: u64| (kib / 1024).to_string();
        if let Some(r) = service_files::current(&self.paths)? {
            let caps = r.caps();
            results.insert("caps.workers".into(), caps.workers.to_string());
            for (key, value) in [
                ("caps.heap-mib", caps.heap_mib.map(u64::from)),
                ("caps.semi-space-mib", caps.semi_space_mib.map(u64::from)),
                ("caps.memory-max-mib", caps.memory_max_mib),
                ("caps.memory-high-mib", caps.memory_high_mib),
            ] {
                if let Some(v) = value {
                    results.insert(key.into(), v.to_string());
                }
            }
        }
        let Some(memory) = self.probes.service_memory() else {
            self.tools.action_fail("parse-server is not running")?;
            return Ok(());
        };
        let pids: Vec<u32> = memory.processes.iter().map(|p| p.pid).collect();
        let heaps = self.probes.heap_statistics(&pids);
        results.insert("total-pss-mib".into(), mib(memory.pss_kib()));
        if let Some(kib) = self.probes.service_resident_kib() {
            // The status's figure, to set beside PSS.
            results.insert("total-resident-mib".into(), mib(kib));
        }
        results.insert("processes".into(), memory.processes.len().to_string());
        for p in &memory.processes {
            let key = |field: &str| format!("process-{}.{field}", p.pid);
            let role = if memory.processes.len() > 1 && memory.is_master(p) {
                "master"
            } else {
                "worker"
            };
            results.insert(key("role"), role.into());
            results.insert(key("pss-mib"), mib(p.pss_kib));
            results.insert(key("anonymous-mib"), mib(p.anonymous_kib));
            if let Some(h) = heaps.get(&p.pid) {
                results.insert(key("heap-used-mib"), (h.used_bytes >> 20).to_string());
                results.insert(key("heap-limit-mib"), (h.limit_bytes >> 20).to_string());
            }
        }
        self.tools.action_set(&results)?;
        Ok(())
    }

    /// Tells where the master key parse-server serves with is. The key itself is never an
    /// action result: results travel to the hook tool on its command line. The operator
    /// reveals the Juju secret, or reads the config.
    fn get_master_key(&self) -> Result<()> {
        let app = &self.ctx.app_name;
        let mut raw = self.tools.config_get()?;
        let reference = user_secrets::reference(raw.get("master-key")).map(str::to_owned);
        let (_, unreadable) = self.resolve_user_secrets(&mut raw)?;
        let configured = raw
            .get("master-key")
            .and_then(|v| v.as_str())
            .filter(|s| !s.is_empty())
            .map(str::to_owned);
        let configured_valid = configured.is_some()
            && unreadable.iter().all(|i| i.option != "master-key")
            && match CharmConfig::from_raw(&raw) {
                Ok(_) => true,
                Err(errors) => errors.iter().all(|e| e.option != "master-key"),
            };
        let running = service_files::current(&self.paths)?.and_then(|r| {
            let v: serde_json::Value = serde_json::from_str(&r.config_json).ok()?;
            v.get("masterKey")?.as_str().map(str::to_owned)
        });
        let peers = self.peers()?;
        let secret_id = match peers.master_key_secret() {
            Some(id) => Some(id),
            // Only the owner (the leader) can look the secret up by label.
            None if peers.is_leader() => self.tools.secret_id(MASTER_KEY_SECRET)?,
            None => None,
        };
        let generated = match &secret_id {
            Some(id) => self
                .tools
                .secret_get_by_id(id, false)?
                .and_then(|mut c| c.remove(MASTER_KEY_FIELD)),
            None => None,
        };
        let serves = |key: &Option<String>| key.is_some() && (running.is_none() || running == *key);
        let mut results = if let (Some(uri), true) =
            (&reference, configured_valid && serves(&configured))
        {
            Databag::from([
                ("source".to_owned(), "user-secret".to_owned()),
                ("secret-id".to_owned(), uri.clone()),
                (
                    "reveal".to_owned(),
                    format!("juju show-secret --reveal {uri}"),
                ),
            ])
        } else if configured_valid && serves(&configured) {
            Databag::from([
                ("source".to_owned(), "config".to_owned()),
                ("reveal".to_owned(), format!("juju config {app} master-key")),
            ])
        } else if let (Some(id), true) = (&secret_id, serves(&generated)) {
            Databag::from([
                ("source".to_owned(), "generated".to_owned()),
                ("secret-id".to_owned(), id.clone()),
                (
                    "reveal".to_owned(),
                    format!("juju show-secret --reveal {id}"),
                ),
            ])
        } else if secret_id.is_none() && !peers.is_leader() {
            self.tools.action_fail(&format!(
                "run this action on the leader: juju run {app}/leader get-master-key"
            ))?;
            return Ok(());
        } else if running.is_some() {
            // Neither: a key configured before, kept while the current value is invalid.
            Databag::from([
                ("source".to_owned(), "earlier-config".to_owned()),
                (
                    "reveal".to_owned(),
                    "the master-key value before the current one".to_owned(),
                ),
            ])
        } else {
            self.tools.action_fail(
                "no master key yet: the leader generates one at its next hook unless master-key is set",
            )?;
            return Ok(());
        };
        if (configured.is_some() || reference.is_some()) && !configured_valid {
            results.insert(
                "note".into(),
                format!(
                    "master-key is invalid (see juju status {app}): parse-server keeps serving with \
                     the key above"
                ),
            );
        }
        self.tools.action_set(&results)?;
        Ok(())
    }
}
