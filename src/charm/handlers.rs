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
            other => {
                self.tools
                    .action_fail(&format!("unknown action {other:?}"))?;
                Ok(())
            }
        }
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
