//! The machine: a scratch root with parse-server installed, the service manager (systemd),
//! what the running process serves and how much memory it uses, ports other processes hold,
//! the machine's size and the clock.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use parse_server_charm::uri::{DbUri, RedisUrl};
use parse_server_charm::workload::database::{DbError, DbInfo};
use parse_server_charm::workload::memory::{HeapStats, ProcessMemory, ServiceMemory};
use parse_server_charm::workload::probe::Probes;
use parse_server_charm::workload::redis::RedisInfo;
use parse_server_charm::workload::s3::S3Store;
use parse_server_charm::workload::sizing::Machine;
use parse_server_charm::workload::systemd::{ServiceManager, SERVICE_UNIT};
use serde_json::Value;

use super::{Db, Sim, World, VERSION};

/// A fresh root: the service account, an installed release and a Node that satisfies its
/// `engines`, on the hook's PATH.
pub(super) fn scratch_root(tag: &str) -> PathBuf {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let root = std::env::temp_dir().join(format!("psc-state-{tag}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(root.join("etc")).unwrap();
    let m = std::fs::metadata(root.join("etc")).unwrap();
    let (uid, gid) = (m.uid(), m.gid());
    std::fs::write(
        root.join("etc/passwd"),
        format!("parse-server:x:{uid}:{gid}::/var/lib/parse-server:/usr/sbin/nologin\n"),
    )
    .unwrap();
    std::fs::write(root.join("etc/group"), format!("parse-server:x:{gid}:\n")).unwrap();
    install_release(&root, VERSION);
    let bin = root.join("usr/bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::write(bin.join("node"), "#!/bin/sh\necho v20.20.2\n").unwrap();
    std::fs::set_permissions(
        bin.join("node"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    root
}

/// An installed release in the layout `workload::install` leaves.
pub fn install_release(root: &Path, version: &str) {
    let release = root.join(format!("opt/parse-server/releases/{version}"));
    std::fs::create_dir_all(release.join("node_modules/parse-server")).unwrap();
    std::fs::write(
        release.join("node_modules/parse-server/package.json"),
        format!(
            r#"{{"version":"{version}","engines":{{"node":">=20.19.0 <21 || >=22.12.0 <23"}}}}"#
        ),
    )
    .unwrap();
    // nodemailer, as the charm's lockfile installs it (the mail adapter's transport).
    std::fs::create_dir_all(release.join("node_modules/nodemailer")).unwrap();
    std::fs::write(
        release.join("node_modules/nodemailer/package.json"),
        r#"{"version":"10.6.1"}"#,
    )
    .unwrap();
    std::fs::write(
        release.join("charm-options.json"),
        r#"{"appId":"PARSE_SERVER_APPLICATION_ID","maxLimit":"PARSE_SERVER_MAX_LIMIT","defaultLimit":"PARSE_SERVER_DEFAULT_LIMIT","mountGraphQL":null,"rateLimit":"PARSE_SERVER_RATE_LIMIT","readOnlyMasterKey":null,"readOnlyMasterKeyIps":null,"appName":"PARSE_SERVER_APP_NAME","emailAdapter":"PARSE_SERVER_EMAIL_ADAPTER","verifyUserEmails":"PARSE_SERVER_VERIFY_USER_EMAILS","preventLoginWithUnverifiedEmail":"PARSE_SERVER_PREVENT_LOGIN_WITH_UNVERIFIED_EMAIL","emailVerifyTokenValidityDuration":"PARSE_SERVER_EMAIL_VERIFY_TOKEN_VALIDITY_DURATION"}"#,
    )
    .unwrap();
}

impl World {
    /// Parse Dashboard's npm tree installed as `workload::install` leaves it.
    pub fn dashboard_installed(&mut self) -> &mut World {
        let pkg = self
            .root
            .join("opt/parse-server/parse-dashboard/9.2.0/node_modules/parse-dashboard");
        std::fs::create_dir_all(&pkg).unwrap();
        std::fs::write(pkg.join("package.json"), r#"{"version":"9.2.0"}"#).unwrap();
        self
    }

    pub fn file(&self, p: &str) -> Option<String> {
        std::fs::read_to_string(self.root.join(p.trim_start_matches('/'))).ok()
    }

    /// The option file on disk, parsed.
    pub fn options(&self) -> Value {
        serde_json::from_str(
            &self
                .file("/etc/parse-server/config.json")
                .expect("config.json"),
        )
        .unwrap()
    }

    /// What the running process serves with (its option file at the last start), parsed.
    pub fn running_options(&self) -> Option<Value> {
        self.running_config
            .as_ref()
            .map(|c| serde_json::from_str(c).unwrap())
    }

    /// The port and mount path the running process serves on.
    fn serves(&self) -> Option<(u16, String)> {
        let cfg: Value = serde_json::from_str(self.running_config.as_ref()?).ok()?;
        Some((
            cfg["port"].as_u64()? as u16,
            cfg["mountPath"].as_str()?.to_owned(),
        ))
    }
}

impl ServiceManager for Sim {
    fn daemon_reload(&self) -> anyhow::Result<()> {
        self.0.borrow_mut().calls.push("daemon-reload".into());
        Ok(())
    }
    fn enable(&self, _: &str) -> anyhow::Result<()> {
        let mut w = self.0.borrow_mut();
        w.calls.push("enable".into());
        w.enabled = true;
        Ok(())
    }
    fn disable(&self, _: &str) -> anyhow::Result<()> {
        let mut w = self.0.borrow_mut();
        w.calls.push("disable".into());
        w.enabled = false;
        Ok(())
    }
    fn restart(&self, unit: &str) -> anyhow::Result<()> {
        let mut w = self.0.borrow_mut();
        if unit != SERVICE_UNIT {
            // Another unit (the dashboard): it runs once restarted.
            w.calls.push(format!("restart {unit}"));
            w.timers.insert(unit.to_owned());
            return Ok(());
        }
        w.calls.push("restart".into());
        if w.restart_fails {
            w.active = false;
            w.running_config = None;
            anyhow::bail!("Job for parse-server.service failed because the control process exited with error code.");
        }
        w.restarts += 1;
        let config = w.file("/etc/parse-server/config.json");
        let ok = config.as_deref().is_some_and(w.starts_ok);
        w.active = ok;
        w.running_config = if ok { config } else { None };
        Ok(())
    }
    fn stop(&self, unit: &str) -> anyhow::Result<()> {
        let mut w = self.0.borrow_mut();
        if unit != SERVICE_UNIT {
            w.calls.push(format!("stop {unit}"));
            w.timers.remove(unit);
            return Ok(());
        }
        w.calls.push("stop".into());
        w.active = false;
        w.running_config = None;
        Ok(())
    }
    fn enable_now(&self, unit: &str) -> anyhow::Result<()> {
        let mut w = self.0.borrow_mut();
        w.calls.push(format!("enable --now {unit}"));
        w.timers.insert(unit.to_owned());
        Ok(())
    }
    fn disable_now(&self, unit: &str) -> anyhow::Result<()> {
        let mut w = self.0.borrow_mut();
        w.calls.push(format!("disable --now {unit}"));
        w.timers.remove(unit);
        Ok(())
    }
    fn is_active(&self, unit: &str) -> anyhow::Result<bool> {
        let w = self.0.borrow();
        Ok(if unit == SERVICE_UNIT {
            w.active
        } else {
            w.timers.contains(unit)
        })
    }
}

impl Probes for Sim {
    /// Code loads unless its main.js says `BROKEN` (the first line of the error names it).
    fn cloud_code_loads(
        &self,
        _paths: &parse_server_charm::workload::paths::Paths,
        check: &parse_server_charm::workload::cloud_code::Check,
    ) -> anyhow::Result<Result<(), String>> {
        self.0.borrow_mut().cloud_code_checks += 1;
        let main = std::fs::read_to_string(&check.main)?;
        Ok(match main.find("BROKEN") {
            Some(_) => Err("Error: BROKEN at load".into()),
            None => Ok(()),
        })
    }
    fn health(&self, port: u16, mount_path: &str) -> Result<(), String> {
        let w = self.0.borrow();
        match w.serves() {
            Some((p, m)) if w.active && p == port && m == mount_path => Ok(()),
            _ => Err(format!("nothing answers on port {port}")),
        }
    }
    fn database(&self, uri: &DbUri, ca_pem: Option<&str>, _: Duration) -> Result<DbInfo, DbError> {
        // The database is the providers' side.
        self.0.borrow().database_answer(uri, ca_pem)
    }
    fn redis(
        &self,
        url: &RedisUrl,
        ca_pem: Option<&str>,
        _: Duration,
    ) -> Result<RedisInfo, DbError> {
        let w = self.0.borrow();
        w.probed_redis.borrow_mut().push(url.to_secret_string());
        w.probed_cas.borrow_mut().push(ca_pem.map(str::to_owned));
        match w.redis {
            Db::Up => Ok(RedisInfo {
                scripts: w.redis_scripts,
            }),
            Db::Down => Err(DbError::Unreachable("connection refused".into())),
            Db::WrongPassword => Err(DbError::Refused(
                "the server refused the user and password".into(),
            )),
        }
    }
    fn s3(&self, store: &S3Store, _: Duration) -> Result<(), DbError> {
        let w = self.0.borrow();
        w.probed_s3.borrow_mut().push((
            store.endpoint(),
            store.bucket.clone(),
            store.access_key.clone(),
        ));
        w.s3.clone()
    }
    fn port_in_use(&self, port: u16) -> bool {
        let w = self.0.borrow();
        w.held_ports.contains(&port) || (w.active && w.serves().is_some_and(|(p, _)| p == port))
    }
    fn machine(&self) -> Machine {
        self.0.borrow().machine
    }
    fn service_resident_kib(&self) -> Option<u64> {
        // Each process's own 150 MiB, and the node binary's 40 MiB once.
        let n = self.service_memory()?.processes.len() as u64;
        Some((n * 150 + 40) * 1024)
    }
    fn service_memory(&self) -> Option<ServiceMemory> {
        let w = self.0.borrow();
        let cfg: Value = serde_json::from_str(w.running_config.as_ref()?).ok()?;
        if !w.active {
            return None;
        }
        // A master and its workers, or one process: 170 MiB each.
        let workers = cfg.get("cluster").and_then(Value::as_u64).unwrap_or(1) as u32;
        let mut processes = Vec::new();
        let proc = |pid, ppid| ProcessMemory {
            pid,
            ppid,
            pss_kib: 170 * 1024,
            anonymous_kib: 120 * 1024,
            rss_kib: 200 * 1024,
        };
        if workers > 1 {
            processes.push(proc(100, 1));
            for i in 0..workers {
                processes.push(proc(101 + i, 100));
            }
        } else {
            processes.push(proc(100, 1));
        }
        Some(ServiceMemory { processes })
    }
    fn heap_statistics(&self, pids: &[u32]) -> BTreeMap<u32, HeapStats> {
        pids.iter()
            .map(|p| {
                (
                    *p,
                    HeapStats {
                        used_bytes: 60 << 20,
                        limit_bytes: 304 << 20,
                    },
                )
            })
            .collect()
    }
    fn pause(&self, _: Duration) {}
    fn now(&self) -> u64 {
        self.0.borrow().now
    }
}
