//! The steady state, and the `update-status` that only looks.
//!
//! Juju runs `update-status` only when no other hook is pending, and every change that can
//! reach the charm comes with a hook of its own: `config-changed` for configuration and
//! address changes, relation hooks for relation data, leadership and secret hooks (see
//! crates/jujusim/CONTRACT.md §4.2). So after a full reconcile that ended `active` with no
//! restart asked or granted among the units, the charm records what it reported; an
//! `update-status` that finds the record re-checks only what changes with no hook (the
//! service's health, the database's answer, the memory the service uses) and reports, with
//! one hook-tool call (`status-set`) and no child process. Anything else it finds (a record
//! from another rendering, a rollout or a failure on record, a service that does not answer,
//! a database that does not, PostGIS that came or went) sends it through the full reconcile.
//!
//! Every full hook forgets the record before it does anything, so a hook killed at any
//! instruction leaves none, and the next `update-status` reconciles in full.

use anyhow::{Context, Result};
use serde_json::{json, Value};

use super::status::Serving;
use super::Charm;
use crate::juju::Status;
use crate::uri::DbUri;
use crate::workload::files;
use crate::workload::service_files::{self, ROOT_ONLY_DIR, ROOT_ONLY_FILE};

/// What a full reconcile that ended `active` found and reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Steady {
    /// The rendering that serves.
    pub digest: String,
    /// What the status said (its memory figure is read afresh at every hook).
    pub serving: Serving,
    /// The database the service uses, as the check reaches it.
    pub database: DbUri,
    pub ca_pem: Option<String>,
}

const FORMAT: u64 = 1;
const RECORD: &str = "steady.json";

impl Steady {
    /// The record as written (it holds the database's credentials: root-only file).
    fn to_json(&self) -> String {
        let s = &self.serving;
        json!({
            "format": FORMAT,
            "digest": self.digest,
            "port": s.port,
            "mount_path": s.mount_path,
            "workers": s.workers,
            "version": s.version,
            "postgis_hint": s.postgis_hint,
            "database": self.database.to_secret_string(),
            "ca_pem": self.ca_pem,
        })
        .to_string()
    }

    /// A record this charm wrote; `None` for anything else (another format, a damaged file).
    fn from_json(text: &str) -> Option<Steady> {
        let v: Value = serde_json::from_str(text).ok()?;
        if v["format"].as_u64() != Some(FORMAT) {
            return None;
        }
        let text_of = |k: &str| v[k].as_str().map(str::to_owned);
        let optional = |k: &str| match &v[k] {
            Value::Null => Some(None),
            Value::String(s) => Some(Some(s.clone())),
            _ => None,
        };
        Some(Steady {
            digest: text_of("digest")?,
            serving: Serving {
                port: u16::try_from(v["port"].as_u64()?).ok()?,
                mount_path: text_of("mount_path")?,
                workers: u32::try_from(v["workers"].as_u64()?).ok()?,
                memory_mib: None,
                version: text_of("version")?,
                postgis_hint: optional("postgis_hint")?,
            },
            database: DbUri::parse(v["database"].as_str()?).ok()?,
            ca_pem: optional("ca_pem")?,
        })
    }
}

impl Charm<'_> {
    fn steady_record(&self) -> std::path::PathBuf {
        self.paths.charm_state().join(RECORD)
    }

    /// Forgets the record: the first thing every hook but a steady `update-status` does.
    pub(super) fn forget_steady(&self) -> Result<()> {
        match std::fs::remove_file(self.steady_record()) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(e).context("removing the steady-state record")
            }
            _ => Ok(()),
        }
    }

    /// Records `steady` (after a full reconcile that ended `active` with nothing pending).
    pub(super) fn remember_steady(&self, steady: &Steady) -> Result<()> {
        files::ensure_dir(&self.paths.charm_state(), ROOT_ONLY_DIR)?;
        files::write_if_changed(
            &self.steady_record(),
            steady.to_json().as_bytes(),
            ROOT_ONLY_FILE,
        )
        .context("writing the steady-state record")?;
        Ok(())
    }

    /// `update-status` in the steady state: the status, when the record holds and what can
    /// change without a hook still agrees with it; `None` to reconcile in full.
    pub(super) fn steady_status(&self) -> Result<Option<Status>> {
        let Some(steady) = std::fs::read_to_string(self.steady_record())
            .ok()
            .and_then(|t| Steady::from_json(&t))
        else {
            return Ok(None);
        };
        let Some(good) = service_files::last_good(&self.paths)? else {
            return Ok(None);
        };
        if good.digest() != steady.digest
            || service_files::rollout(&self.paths).is_some()
            || service_files::failed(&self.paths).is_some()
            || service_files::current(&self.paths)?.as_ref() != Some(&good)
        {
            return Ok(None);
        }
        let serving = &steady.serving;
        if self
            .probes
            .health(serving.port, &serving.mount_path)
            .is_err()
        {
            return Ok(None);
        }
        let Ok(info) = self.probes.database(
            &steady.database,
            steady.ca_pem.as_deref(),
            self.timeouts.database,
        ) else {
            return Ok(None);
        };
        if (info.postgis == Some(false)) != serving.postgis_hint.is_some() {
            return Ok(None);
        }
        let memory_mib = self
            .probes
            .service_memory()
            .map(|m| m.pss_kib().div_ceil(1024));
        Ok(Some(
            Serving {
                memory_mib,
                ..steady.serving
            }
            .into(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn steady(hint: Option<&str>, ca: Option<&str>) -> Steady {
        Steady {
            digest: "0123456789abcdef".into(),
            serving: Serving {
                port: 1337,
                mount_path: "/parse".into(),
                workers: 2,
                memory_mib: None,
                version: "9.10.0".into(),
                postgis_hint: hint.map(str::to_owned),
            },
            database: DbUri::parse("postgresql://u:p%20w@[fd00::1]:5432/parse?ssl=true").unwrap(),
            ca_pem: ca.map(str::to_owned),
        }
    }

    #[test]
    fn the_record_reads_back_as_written() {
        for s in [
            steady(None, None),
            steady(
                Some("`juju config pg plugin-postgis-enable=true`"),
                Some("PEM"),
            ),
        ] {
            assert_eq!(Steady::from_json(&s.to_json()), Some(s));
        }
    }

    #[test]
    fn another_format_or_a_damaged_record_is_none() {
        let text = steady(None, None).to_json();
        assert_eq!(
            Steady::from_json(&text.replace("\"format\":1", "\"format\":2")),
            None
        );
        assert_eq!(Steady::from_json(&text[..text.len() / 2]), None);
        assert_eq!(Steady::from_json(&text.replace("1337", "70000")), None);
    }
}
