//! The steady state, and the `update-status` that only looks.
//!
//! Juju runs `update-status` only when no other hook is pending, and every change that can
//! reach the charm comes with a hook of its own: `config-changed` for configuration and
//! address changes, relation hooks for relation data, leadership and secret hooks (see
//! crates/jujusim/CONTRACT.md §4.2). So after a full reconcile that ended `active` with no
//! restart asked or granted among the units, the charm records what the serving rendering
//! does not hold (the database URI it checked, the PostGIS hint); an
//! `update-status` that finds the record re-checks only what changes with no hook (the
//! service's health, the answers of the database, of the shared Redis and of the S3 bucket
//! (read from the rendering), the memory the service uses, and the user secrets options
//! name: a revocation fires no hook) and reports, with one hook-tool call (`status-set`)
//! plus one `secret-get` per user secret, and no child process. Anything else it finds (a
//! record from another rendering, a rollout or a failure on record, a service that does not
//! answer, a database, a Redis or a bucket that does not, PostGIS that came or went, a user
//! secret that changed or cannot be read) sends it through the full reconcile.
//!
//! Every full hook forgets the record before it does anything, so a hook killed at any
//! instruction leaves none, and the next `update-status` reconciles in full.

use anyhow::{Context, Result};
use serde_json::{json, Value};

use super::status::{DashboardNote, LiveQueryScope, Serving};
use super::user_secrets::UserSecret;
use super::Charm;
use crate::juju::Status;
use crate::uri::{DbUri, RedisUrl};
use crate::workload::dashboard::DASHBOARD_UNIT;
use crate::workload::files::{self, ROOT_ONLY_DIR, ROOT_ONLY_FILE};
use crate::workload::service_files;

/// What a full reconcile that ended `active` found and the rendering that serves does not
/// hold (port, mount path, workers, release and the database's CA are read from that).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Steady {
    /// The rendering that serves (the record and the rendering must belong together).
    pub digest: String,
    /// The database the service uses, as the check reaches it (credentials included).
    pub database: DbUri,
    /// What the status said PostGIS would need, if it was missing.
    pub postgis_hint: Option<String>,
    /// The options whose values came from user secrets, with those values: a steady hook
    /// reads each secret again (a revocation fires no hook; a new revision may be missed).
    pub user_secrets: Vec<UserSecret>,
    /// The shared Redis the service uses (its URL with credentials, and its CA), re-checked
    /// like the database.
    pub redis: Option<(String, Option<String>)>,
    /// What the status says of LiveQuery's reach and of the rate limits (these change only
    /// with a hook: config, peers, relations).
    pub live_query_scope: Option<LiveQueryScope>,
    pub rate_limit_caveat: Option<String>,
    /// The dashboard as the status showed it (its port, the `master-key-ips` hint): its users
    /// and keys change only with a hook (an action on the leader, the peer relation
    /// elsewhere); a steady hook checks that its service still runs.
    pub dashboard: Option<DashboardNote>,
}

const FORMAT: u64 = 5;
const RECORD: &str = "steady.json";

impl Steady {
    /// The record as written (it holds the database's credentials: root-only file).
    fn to_json(&self) -> String {
        json!({
            "format": FORMAT,
            "digest": self.digest,
            "database": self.database.to_secret_string(),
            "postgis_hint": self.postgis_hint,
            "user_secrets": self.user_secrets.iter().map(|u| json!({
                "option": u.option,
                "uri": u.uri,
                "value": u.value,
            })).collect::<Vec<_>>(),
            "redis": self.redis.as_ref().map(|(url, ca)| json!({"url": url, "ca": ca})),
            "rate_limit_caveat": self.rate_limit_caveat,
            "live_query_scope": match self.live_query_scope {
                None => Value::Null,
                Some(LiveQueryScope::Unit) => "unit".into(),
                Some(LiveQueryScope::Process) => "process".into(),
            },
            "dashboard": self.dashboard.map(|d| json!({
                "port": d.port,
                "master_key_local": d.master_key_local,
            })),
        })
        .to_string()
    }

    /// A record this charm wrote; `None` for anything else (another format, a damaged file).
    fn from_json(text: &str) -> Option<Steady> {
        let v: Value = serde_json::from_str(text).ok()?;
        if v["format"].as_u64() != Some(FORMAT) {
            return None;
        }
        Some(Steady {
            digest: v["digest"].as_str()?.to_owned(),
            database: DbUri::parse(v["database"].as_str()?).ok()?,
            postgis_hint: match &v["postgis_hint"] {
                Value::Null => None,
                Value::String(s) => Some(s.clone()),
                _ => return None,
            },
            user_secrets: v["user_secrets"]
                .as_array()?
                .iter()
                .map(|u| {
                    Some(UserSecret {
                        option: u["option"].as_str()?.to_owned(),
                        uri: u["uri"].as_str()?.to_owned(),
                        value: u["value"].as_str()?.to_owned(),
                    })
                })
                .collect::<Option<Vec<_>>>()?,
            redis: match &v["redis"] {
                Value::Null => None,
                r => Some((
                    r["url"].as_str()?.to_owned(),
                    match &r["ca"] {
                        Value::Null => None,
                        ca => Some(ca.as_str()?.to_owned()),
                    },
                )),
            },
            rate_limit_caveat: match &v["rate_limit_caveat"] {
                Value::Null => None,
                c => Some(c.as_str()?.to_owned()),
            },
            live_query_scope: match v["live_query_scope"].as_str() {
                None if v["live_query_scope"].is_null() => None,
                Some("unit") => Some(LiveQueryScope::Unit),
                Some("process") => Some(LiveQueryScope::Process),
                _ => return None,
            },
            dashboard: match &v["dashboard"] {
                Value::Null => None,
                d => Some(DashboardNote {
                    port: u16::try_from(d["port"].as_u64()?).ok()?,
                    master_key_local: d["master_key_local"].as_bool()?,
                    running: true,
                }),
            },
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
        let (Some((port, mount_path)), Some(version)) = (good.endpoint(), good.version()) else {
            return Ok(None);
        };
        for u in &steady.user_secrets {
            if self.read_user_secret(&u.option, &u.uri)?.as_ref() != Ok(&u.value) {
                return Ok(None);
            }
        }
        if self.probes.health(port, &mount_path).is_err() {
            return Ok(None);
        }
        // The dashboard: recorded on, its service running (or recorded off, and none there).
        let dashboard_there = self.paths.dashboard_unit_file().exists();
        if dashboard_there != steady.dashboard.is_some()
            || (dashboard_there && !self.service.is_active(DASHBOARD_UNIT)?)
        {
            return Ok(None);
        }
        let Ok(info) = self.probes.database(
            &steady.database,
            good.ca_pem.as_deref(),
            self.timeouts.database,
        ) else {
            return Ok(None);
        };
        if (info.postgis == Some(false)) != steady.postgis_hint.is_some() {
            return Ok(None);
        }
        if let Some((url, ca)) = &steady.redis {
            let Ok(url) = RedisUrl::parse(url) else {
                return Ok(None);
            };
            if self
                .probes
                .redis(&url, ca.as_deref(), self.timeouts.database)
                .is_err()
            {
                return Ok(None);
            }
        }
        if let Some(store) = good.s3_store() {
            if self.probes.s3(&store, self.timeouts.database).is_err() {
                return Ok(None);
            }
        }
        let memory_mib = self
            .probes
            .service_resident_kib()
            .map(|kib| kib.div_ceil(1024));
        Ok(Some(
            Serving {
                port,
                mount_path,
                workers: good.caps().workers,
                memory_mib,
                version,
                postgis_hint: steady.postgis_hint,
                cloud_code: good.cloud_code_digest(),
                jobs_problem: self.jobs_problem(),
                live_query_scope: steady.live_query_scope,
                rate_limit_caveat: steady.rate_limit_caveat,
                dashboard: steady.dashboard,
            }
            .into(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn steady(hint: Option<&str>) -> Steady {
        Steady {
            digest: "0123456789abcdef".into(),
            database: DbUri::parse("postgresql://u:p%20w@[fd00::1]:5432/parse?ssl=true").unwrap(),
            postgis_hint: hint.map(str::to_owned),
            user_secrets: hint
                .map(|_| UserSecret {
                    option: "master-key".into(),
                    uri: "secret:cj5k7v678ohs79t2aa30".into(),
                    value: "k\"e y".into(),
                })
                .into_iter()
                .collect(),
            redis: hint.map(|_| {
                (
                    "redis://:p%40w@10.0.0.9:6379".to_owned(),
                    Some("-----BEGIN CERTIFICATE-----\n".to_owned()),
                )
            }),
            live_query_scope: hint.map(|_| LiveQueryScope::Process),
            rate_limit_caveat: hint.map(|_| "the Redis user may not run scripts".to_owned()),
            dashboard: hint.map(|_| DashboardNote {
                port: 4040,
                master_key_local: true,
                running: true,
            }),
        }
    }

    #[test]
    fn the_record_reads_back_as_written() {
        for s in [
            steady(None),
            steady(Some("`juju config pg plugin-postgis-enable=true`")),
        ] {
            assert_eq!(Steady::from_json(&s.to_json()), Some(s));
        }
    }

    #[test]
    fn another_format_or_a_damaged_record_is_none() {
        let text = steady(None).to_json();
        assert_eq!(
            Steady::from_json(&text.replace("\"format\":5", "\"format\":4")),
            None
        );
        assert_eq!(Steady::from_json(&text[..text.len() / 2]), None);
        assert_eq!(
            Steady::from_json(&text.replace("\"postgis_hint\":null", "\"postgis_hint\":7")),
            None
        );
    }
}
