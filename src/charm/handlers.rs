//! The hooks that do not reconcile (stop, remove) and the actions.

use anyhow::{Context, Result};

use super::{Charm, MASTER_KEY_SECRET};
use crate::juju::{Databag, Status};
use crate::workload::systemd::SERVICE_UNIT;
use crate::workload::user;

impl Charm<'_> {
    /// `stop`: the service stops and stays stopped (disabled), its port closes.
    pub(super) fn stop(&self) -> Result<()> {
        if self.paths.unit_file().exists() {
            self.service.stop(SERVICE_UNIT)?;
            self.service.disable(SERVICE_UNIT)?;
        }
        self.close_all_ports()?;
        self.tools
            .status_set(&Status::maintenance("parse-server stopped"))?;
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
            other => {
                self.tools
                    .action_fail(&format!("unknown action {other:?}"))?;
                Ok(())
            }
        }
    }

    /// Per process of the service (cluster master and workers): PSS and anonymous memory
    /// from /proc, V8 heap used and limit as the process reports them; and the configured
    /// caps.
    fn memory_report(&self) -> Result<()> {
        let config = match crate::config::CharmConfig::from_raw(&self.tools.config_get()?) {
            Ok(c) => c,
            Err(errors) => {
                self.tools
                    .action_fail(&crate::config::errors_message(&errors))?;
                return Ok(());
            }
        };
        let mut results = Databag::new();
        let mib = |kib: u64| (kib / 1024).to_string();
        if let Ok(s) = crate::workload::sizing::size(
            self.probes.machine(),
            crate::workload::sizing::Requested {
                workers: config.workers,
                heap_mib: config.node_max_old_space_size,
                memory_limit_mib: config.memory_limit,
            },
        ) {
            results.insert("caps.workers".into(), s.workers.to_string());
            results.insert("caps.heap-mib".into(), s.heap_mib.to_string());
            results.insert("caps.memory-max-mib".into(), s.memory_max_mib.to_string());
            results.insert("caps.memory-high-mib".into(), s.memory_high_mib.to_string());
        }
        let Some(memory) = self.probes.service_memory() else {
            self.tools.action_fail("parse-server is not running")?;
            return Ok(());
        };
        let pids: Vec<u32> = memory.processes.iter().map(|p| p.pid).collect();
        let heaps = self.probes.heap_statistics(&pids);
        results.insert("total-pss-mib".into(), mib(memory.pss_kib()));
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

    /// Tells where the master key is. The key itself is never an action result: results
    /// travel to the hook tool on its command line. The operator reveals the Juju secret.
    fn get_master_key(&self) -> Result<()> {
        let configured = self
            .tools
            .config_get()?
            .get("master-key")
            .and_then(|v| v.as_str())
            .is_some_and(|s| !s.is_empty());
        let results = if configured {
            Databag::from([
                ("source".to_owned(), "config".to_owned()),
                (
                    "reveal".to_owned(),
                    "juju config parse-server master-key".to_owned(),
                ),
            ])
        } else {
            match self.tools.secret_id(MASTER_KEY_SECRET)? {
                Some(id) => Databag::from([
                    ("source".to_owned(), "generated".to_owned()),
                    ("secret-id".to_owned(), id.clone()),
                    (
                        "reveal".to_owned(),
                        format!("juju show-secret --reveal {id}"),
                    ),
                ]),
                // Only the owner (the leader) can look the secret up by label.
                None if !self.tools.is_leader()? => {
                    self.tools.action_fail(
                        "run this action on the leader: juju run parse-server/leader get-master-key",
                    )?;
                    return Ok(());
                }
                None => {
                    self.tools.action_fail(
                        "no master key yet: the leader generates it on its next hook",
                    )?;
                    return Ok(());
                }
            }
        };
        self.tools.action_set(&results)?;
        Ok(())
    }
}
