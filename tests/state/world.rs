//! The state-transition harness: a test states the Juju side (config, leadership, relations
//! and their databags, secrets, opened ports) and the world (service running or not, what
//! parse-server does with a configuration, database up or down, ports held), runs ONE event
//! through `Charm` with in-memory hook tools, service manager and probes over a scratch root,
//! and asserts on the resulting state. No root, Node, Java or database; milliseconds.
//!
//! Juju's transaction rule is kept: relation data, ports and secrets a hook changes are kept
//! only when it succeeds; status and logs stay whatever happens.
#![allow(dead_code)]

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use parse_server_charm::charm::{Charm, Timeouts};
use parse_server_charm::juju::hook_tools::ToolResult;
use parse_server_charm::juju::{
    CachedTools, Databag, Event, HookTools, JujuContext, ProxySettings, RelationKind, Status,
    StatusKind,
};
use parse_server_charm::uri::DbUri;
use parse_server_charm::workload::database::{DbError, DbInfo};
use parse_server_charm::workload::memory::{HeapStats, ProcessMemory, ServiceMemory};
use parse_server_charm::workload::paths::Paths;
use parse_server_charm::workload::probe::Probes;
use parse_server_charm::workload::sizing::Machine;
use parse_server_charm::workload::systemd::ServiceManager;
use serde_json::Value;

pub const UNIT: &str = "parse-server/0";
/// The restart grant's lease in these tests (the charm's own default).
pub const GRANT_LEASE: Duration = Duration::from_secs(240);
pub const VERSION: &str = "9.10.0";

/// What the database answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Db {
    Up,
    Down,
    WrongPassword,
}

/// One relation as the unit sees it.
#[derive(Debug, Clone, Default)]
pub struct Rel {
    pub endpoint: String,
    pub remote_app: String,
    /// Remote units (for the peer relation: the other units of this application) and
    /// their bags.
    pub units: BTreeMap<String, Databag>,
    /// This unit's own bag.
    pub local: Databag,
    /// The remote application's bag.
    pub remote_app_bag: Databag,
    /// This application's bag (for the peer relation, the one every unit shares).
    pub local_app_bag: Databag,
}

impl Rel {
    pub fn is_peer(&self) -> bool {
        self.endpoint == "parse-peers"
    }
}

/// A secret: its label (for the ones this application owns) and content.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Secret {
    pub label: Option<String>,
    pub content: Databag,
    pub owned: bool,
}

/// The Juju side and the world around the unit.
pub struct World {
    pub root: PathBuf,
    /// The application's name (`parse-server` unless a test deploys it under another);
    /// the unit is its unit 0.
    pub app: String,
    pub config: BTreeMap<String, Value>,
    pub leader: bool,
    pub relations: BTreeMap<String, Rel>,
    pub ports: BTreeSet<String>,
    /// Every status-set, in order.
    pub statuses: Vec<Status>,
    /// Secrets by URI: this application's own and those providers granted.
    pub secrets: BTreeMap<String, Secret>,
    pub logs: Vec<String>,
    /// Hook-tool writes and service-manager calls, in order (`relation-set mongodb:0`,
    /// `restart`, `daemon-reload`…).
    pub calls: Vec<String>,
    pub action_results: Option<Databag>,
    pub action_failed: Option<String>,
    // The service.
    pub active: bool,
    pub enabled: bool,
    /// The option file the running process read at its last (re)start.
    pub running_config: Option<String>,
    pub restarts: u32,
    /// `systemctl restart` itself fails.
    pub restart_fails: bool,
    /// Whether parse-server starts with an option file (default: unless it holds
    /// `"defaultLimit": 0`, a value real parse-server refuses at start-up).
    pub starts_ok: fn(&str) -> bool,
    // The world.
    pub db: Db,
    /// PostgreSQL: whether PostGIS is installed (the probe's answer).
    pub postgis: bool,
    /// Secrets whose `secret-get` is refused.
    pub unreadable_secrets: BTreeSet<String>,
    /// Read-only hook-tool calls, by tool and argument.
    pub reads: RefCell<BTreeMap<String, usize>>,
    /// Every database URI the probe was asked about (the last one is what renders), and
    /// the TLS CA it was given with it.
    pub probed_uris: RefCell<Vec<String>>,
    pub probed_cas: RefCell<Vec<Option<String>>>,
    /// The clock (seconds since the epoch) the charm reads.
    pub now: u64,
    pub held_ports: BTreeSet<u16>,
    pub public_address: String,
    pub ingress_address: Option<String>,
    /// The machine the unit runs on.
    pub machine: Machine,
}

fn default_starts_ok(config_json: &str) -> bool {
    !config_json.contains("\"defaultLimit\": 0")
}

impl World {
    /// A fresh unit: parse-server installed (release, Node and account present in a scratch
    /// root), nothing configured or running, a leader, the database up.
    pub fn new(tag: &str) -> World {
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
        // A Node that satisfies parse-server 9's engines, on the hook's PATH.
        let bin = root.join("usr/bin");
        std::fs::create_dir_all(&bin).unwrap();
        std::fs::write(bin.join("node"), "#!/bin/sh\necho v20.20.2\n").unwrap();
        std::fs::set_permissions(
            bin.join("node"),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
        World {
            root,
            app: "parse-server".into(),
            config: BTreeMap::new(),
            leader: true,
            relations: BTreeMap::new(),
            ports: BTreeSet::new(),
            statuses: Vec::new(),
            secrets: BTreeMap::new(),
            logs: Vec::new(),
            calls: Vec::new(),
            action_results: None,
            action_failed: None,
            active: false,
            enabled: false,
            running_config: None,
            restarts: 0,
            restart_fails: false,
            starts_ok: default_starts_ok,
            db: Db::Up,
            postgis: true,
            unreadable_secrets: BTreeSet::new(),
            probed_uris: RefCell::new(Vec::new()),
            probed_cas: RefCell::new(Vec::new()),
            now: 1_800_000_000,
            reads: RefCell::new(BTreeMap::new()),
            held_ports: BTreeSet::new(),
            public_address: "10.0.0.10".into(),
            ingress_address: Some("10.0.0.10".into()),
            machine: Machine {
                cpus: 1,
                memory_mib: 4096,
            },
        }
    }

    /// This unit's name.
    pub fn unit(&self) -> String {
        format!("{}/0", self.app)
    }

    pub fn paths(&self) -> Paths {
        Paths::new(&self.root)
    }

    pub fn set(&mut self, option: &str, value: impl Into<Value>) -> &mut Self {
        self.config.insert(option.into(), value.into());
        self
    }

    pub fn unset(&mut self, option: &str) -> &mut Self {
        self.config.remove(option);
        self
    }

    /// Adds a relation; returns its id (`endpoint:N`).
    pub fn relate(&mut self, endpoint: &str, remote_app: &str) -> String {
        let id = format!("{endpoint}:{}", self.relations.len());
        self.relations.insert(
            id.clone(),
            Rel {
                endpoint: endpoint.into(),
                remote_app: remote_app.into(),
                ..Default::default()
            },
        );
        id
    }

    pub fn remote_set(&mut self, id: &str, unit: &str, pairs: &[(&str, &str)]) {
        let bag = self
            .relations
            .get_mut(id)
            .unwrap()
            .units
            .entry(unit.into())
            .or_default();
        for (k, v) in pairs {
            bag.insert((*k).into(), (*v).into());
        }
    }

    pub fn remote_app_set(&mut self, id: &str, pairs: &[(&str, &str)]) {
        let bag = &mut self.relations.get_mut(id).unwrap().remote_app_bag;
        for (k, v) in pairs {
            if v.is_empty() {
                bag.remove(*k);
            } else {
                bag.insert((*k).into(), (*v).into());
            }
        }
    }

    /// A secret a provider granted to a relation; returns its URI.
    pub fn grant_secret(&mut self, pairs: &[(&str, &str)]) -> String {
        let uri = format!("secret:remote{}", self.secrets.len());
        self.secrets.insert(
            uri.clone(),
            Secret {
                label: None,
                content: pairs
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect(),
                owned: false,
            },
        );
        uri
    }

    /// The content of this application's secret labelled `label`.
    pub fn owned_secret(&self, label: &str) -> Option<&Databag> {
        self.secrets
            .values()
            .find(|s| s.owned && s.label.as_deref() == Some(label))
            .map(|s| &s.content)
    }

    /// The generated master key.
    pub fn master_key(&self) -> String {
        self.owned_secret("master-key").expect("a generated key")["master-key"].clone()
    }

    /// The peer relation with `others` (unit names) as the other units.
    pub fn peer_with(&mut self, others: &[&str]) -> String {
        let id = self.relate("parse-peers", "parse-server");
        for u in others {
            self.remote_set(&id, u, &[("ingress-address", "10.0.0.11")]);
        }
        id
    }

    /// The peer relation with `others`, after the leader's first start (`initialised`).
    pub fn peer_initialised(&mut self, others: &[&str]) -> String {
        let id = self.peer_with(others);
        self.relations
            .get_mut(&id)
            .unwrap()
            .local_app_bag
            .insert("initialised".into(), "true".into());
        id
    }

    pub fn peer_id(&self) -> Option<String> {
        self.relations
            .iter()
            .find(|(_, r)| r.is_peer())
            .map(|(k, _)| k.clone())
    }

    /// The peer application databag.
    pub fn peer_app(&self) -> Databag {
        self.peer_id()
            .map(|id| self.relations[&id].local_app_bag.clone())
            .unwrap_or_default()
    }

    /// This unit's own peer databag.
    pub fn peer_own(&self) -> Databag {
        self.peer_id()
            .map(|id| self.relations[&id].local.clone())
            .unwrap_or_default()
    }

    /// A mongodb relation whose one unit published `127.0.0.1:27017`.
    pub fn relate_mongodb(&mut self) -> String {
        let id = self.relate("mongodb", "mongodb");
        self.remote_set(
            &id,
            "mongodb/0",
            &[("hostname", "127.0.0.1"), ("port", "27017")],
        );
        id
    }

    /// The last status set.
    pub fn status(&self) -> Status {
        self.statuses
            .last()
            .cloned()
            .unwrap_or_else(|| Status::new(StatusKind::Maintenance, "(none)"))
    }

    pub fn assert_status(&self, kind: StatusKind, part: &str) {
        let s = self.status();
        assert_eq!(s.kind, kind, "status is {s:?}; calls {:?}", self.calls);
        assert!(s.message.contains(part), "{:?} lacks {part:?}", s.message);
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

    pub fn count(&self, call: &str) -> usize {
        self.calls.iter().filter(|c| c.as_str() == call).count()
    }

    fn serves(&self) -> Option<(u16, String)> {
        let cfg: Value = serde_json::from_str(self.running_config.as_ref()?).ok()?;
        Some((
            cfg["port"].as_u64()? as u16,
            cfg["mountPath"].as_str()?.to_owned(),
        ))
    }
}

impl Drop for World {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
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
    std::fs::write(
        release.join("charm-options.json"),
        r#"{"appId":"PARSE_SERVER_APPLICATION_ID","maxLimit":"PARSE_SERVER_MAX_LIMIT","defaultLimit":"PARSE_SERVER_DEFAULT_LIMIT","mountGraphQL":null,"readOnlyMasterKey":null,"readOnlyMasterKeyIps":null}"#,
    )
    .unwrap();
}

/// The hook tools, service manager and probes, all backed by one `World`.
pub struct Sim(pub RefCell<World>);

impl HookTools for Sim {
    fn config_get(&self) -> ToolResult<BTreeMap<String, Value>> {
        Ok(self.0.borrow().config.clone())
    }
    fn relation_ids(&self, endpoint: &str) -> ToolResult<Vec<String>> {
        *self
            .0
            .borrow()
            .reads
            .borrow_mut()
            .entry(format!("relation-ids {endpoint}"))
            .or_default() += 1;
        Ok(self
            .0
            .borrow()
            .relations
            .iter()
            .filter(|(_, r)| r.endpoint == endpoint)
            .map(|(k, _)| k.clone())
            .collect())
    }
    fn relation_list(&self, id: &str) -> ToolResult<Vec<String>> {
        Ok(self
            .0
            .borrow()
            .relations
            .get(id)
            .map(|r| r.units.keys().cloned().collect())
            .unwrap_or_default())
    }
    fn relation_get(&self, id: &str, unit: &str) -> ToolResult<Databag> {
        let w = self.0.borrow();
        let Some(r) = w.relations.get(id) else {
            return Ok(Databag::new());
        };
        Ok(if unit == w.unit() {
            r.local.clone()
        } else {
            r.units.get(unit).cloned().unwrap_or_default()
        })
    }
    fn relation_get_app(&self, id: &str, app: &str) -> ToolResult<Databag> {
        let w = self.0.borrow();
        let Some(r) = w.relations.get(id) else {
            return Ok(Databag::new());
        };
        if app == w.app {
            if !r.is_peer() && !w.leader {
                return Err(parse_server_charm::juju::HookToolError {
                    tool: "relation-get".into(),
                    detail: "exit 1: ERROR permission denied".into(),
                });
            }
            return Ok(r.local_app_bag.clone());
        }
        Ok(r.remote_app_bag.clone())
    }
    fn relation_set_app(&self, id: &str, data: &Databag) -> ToolResult<()> {
        let mut w = self.0.borrow_mut();
        if !w.leader {
            return Err(parse_server_charm::juju::HookToolError {
                tool: "relation-set".into(),
                detail: "exit 1: ERROR cannot write relation settings".into(),
            });
        }
        w.calls.push(format!("relation-set --app {id}"));
        if let Some(r) = w.relations.get_mut(id) {
            for (k, v) in data {
                if v.is_empty() {
                    r.local_app_bag.remove(k);
                } else {
                    r.local_app_bag.insert(k.clone(), v.clone());
                }
            }
        }
        Ok(())
    }
    fn relation_set(&self, id: &str, data: &Databag) -> ToolResult<()> {
        let mut w = self.0.borrow_mut();
        w.calls.push(format!("relation-set {id}"));
        if let Some(r) = w.relations.get_mut(id) {
            for (k, v) in data {
                if v.is_empty() {
                    r.local.remove(k);
                } else {
                    r.local.insert(k.clone(), v.clone());
                }
            }
        }
        Ok(())
    }
    fn opened_ports(&self) -> ToolResult<Vec<String>> {
        Ok(self.0.borrow().ports.iter().cloned().collect())
    }
    fn open_port(&self, port: u16) -> ToolResult<()> {
        let mut w = self.0.borrow_mut();
        w.calls.push(format!("open-port {port}"));
        w.ports.insert(format!("{port}/tcp"));
        Ok(())
    }
    fn close_port(&self, port: u16) -> ToolResult<()> {
        let mut w = self.0.borrow_mut();
        w.calls.push(format!("close-port {port}"));
        w.ports.remove(&format!("{port}/tcp"));
        Ok(())
    }
    fn status_set(&self, status: &Status) -> ToolResult<()> {
        self.0.borrow_mut().statuses.push(status.clone());
        Ok(())
    }
    fn application_version_set(&self, _: &str) -> ToolResult<()> {
        Ok(())
    }
    fn log(&self, _: &str, message: &str) -> ToolResult<()> {
        self.0.borrow_mut().logs.push(message.to_owned());
        Ok(())
    }
    fn is_leader(&self) -> ToolResult<bool> {
        Ok(self.0.borrow().leader)
    }
    fn public_address(&self) -> ToolResult<String> {
        Ok(self.0.borrow().public_address.clone())
    }
    fn ingress_address(&self, _: &str) -> ToolResult<Option<String>> {
        Ok(self.0.borrow().ingress_address.clone())
    }
    fn state_get(&self, _: &str) -> ToolResult<Option<String>> {
        Ok(None)
    }
    fn state_set(&self, _: &Databag) -> ToolResult<()> {
        Ok(())
    }
    fn secret_get(&self, label: &str) -> ToolResult<Option<Databag>> {
        Ok(self.0.borrow().owned_secret(label).cloned())
    }
    fn secret_add_from_file(
        &self,
        label: &str,
        _: &str,
        key: &str,
        file: &Path,
    ) -> ToolResult<String> {
        let value = std::fs::read_to_string(file).unwrap();
        let mut w = self.0.borrow_mut();
        w.calls.push(format!("secret-add {label}"));
        let uri = format!("secret:own{}", w.secrets.len());
        w.secrets.insert(
            uri.clone(),
            Secret {
                label: Some(label.into()),
                content: Databag::from([(key.to_owned(), value)]),
                owned: true,
            },
        );
        Ok(uri)
    }
    fn secret_get_by_id(&self, uri: &str, _refresh: bool) -> ToolResult<Option<Databag>> {
        let w = self.0.borrow();
        if w.unreadable_secrets.contains(uri) {
            return Err(parse_server_charm::juju::HookToolError {
                tool: "secret-get".into(),
                detail: "exit 1: ERROR permission denied".into(),
            });
        }
        Ok(w.secrets.get(uri).map(|s| s.content.clone()))
    }
    fn secret_id(&self, label: &str) -> ToolResult<Option<String>> {
        Ok(self
            .0
            .borrow()
            .secrets
            .iter()
            .find(|(_, s)| s.owned && s.label.as_deref() == Some(label))
            .map(|(uri, _)| uri.clone()))
    }
    fn action_set(&self, results: &Databag) -> ToolResult<()> {
        self.0.borrow_mut().action_results = Some(results.clone());
        Ok(())
    }
    fn action_fail(&self, message: &str) -> ToolResult<()> {
        self.0.borrow_mut().action_failed = Some(message.to_owned());
        Ok(())
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
    fn restart(&self, _: &str) -> anyhow::Result<()> {
        let mut w = self.0.borrow_mut();
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
    fn stop(&self, _: &str) -> anyhow::Result<()> {
        let mut w = self.0.borrow_mut();
        w.calls.push("stop".into());
        w.active = false;
        w.running_config = None;
        Ok(())
    }
    fn is_active(&self, _: &str) -> anyhow::Result<bool> {
        Ok(self.0.borrow().active)
    }
}

impl Probes for Sim {
    fn health(&self, port: u16, mount_path: &str) -> Result<(), String> {
        let w = self.0.borrow();
        match w.serves() {
            Some((p, m)) if w.active && p == port && m == mount_path => Ok(()),
            _ => Err(format!("nothing answers on port {port}")),
        }
    }
    fn database(&self, uri: &DbUri, ca_pem: Option<&str>, _: Duration) -> Result<DbInfo, DbError> {
        let w = self.0.borrow();
        w.probed_uris.borrow_mut().push(uri.to_secret_string());
        w.probed_cas.borrow_mut().push(ca_pem.map(str::to_owned));
        let postgres = uri.is_postgres();
        match w.db {
            Db::Up => Ok(DbInfo {
                postgis: postgres.then_some(w.postgis),
            }),
            Db::Down => Err(DbError::Unreachable(
                "database at 127.0.0.1:27017 does not answer: connection refused".into(),
            )),
            Db::WrongPassword => Err(DbError::Refused(
                "database at 127.0.0.1:27017 refused: Authentication failed.".into(),
            )),
        }
    }
    fn port_in_use(&self, port: u16) -> bool {
        let w = self.0.borrow();
        w.held_ports.contains(&port) || (w.active && w.serves().is_some_and(|(p, _)| p == port))
    }
    fn machine(&self) -> Machine {
        self.0.borrow().machine
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

/// How a hook ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Exit {
    Ok,
    /// The hook failed (Juju shows `error` and retries).
    Error(String),
    /// The hook died at a checkpoint (a fault test's SIGKILL).
    Killed,
}

fn context(
    w: &World,
    event: Event,
    relation_id: Option<String>,
    abort_after: Option<&str>,
) -> JujuContext {
    JujuContext {
        event,
        unit_name: w.unit(),
        app_name: w.app.clone(),
        charm_dir: w.root.join("charm"),
        model_name: "test".into(),
        juju_version: "3.6.1".into(),
        relation_id,
        remote_unit: None,
        departing_unit: None,
        path: Some(format!("{}", w.root.join("usr/bin").display())),
        proxy: ProxySettings::default(),
        abort_after: abort_after.map(str::to_owned),
    }
}

/// Runs one event against `world`, as the unit agent would: a hook that fails or dies loses
/// its relation data, port and secret changes.
pub fn run(world: World, event: Event) -> (World, Exit) {
    run_with(world, event, None, None)
}

pub fn run_with(
    world: World,
    event: Event,
    relation_id: Option<String>,
    abort_after: Option<&str>,
) -> (World, Exit) {
    let ctx = context(&world, event, relation_id, abort_after);
    let before = (
        world.relations.clone(),
        world.ports.clone(),
        world.secrets.clone(),
    );
    let paths = world.paths();
    // As on a unit: the hook tools remember a hook's reads.
    let sim = CachedTools::new(Sim(RefCell::new(world)));
    let timeouts = Timeouts {
        database: Duration::from_millis(10),
        health_after_start: Duration::ZERO,
        health_poll: Duration::ZERO,
        grant_lease: GRANT_LEASE,
    };
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let charm = Charm {
            ctx: &ctx,
            tools: &sim,
            service: sim.inner(),
            probes: sim.inner(),
            paths: paths.clone(),
            timeouts,
        };
        charm.run()
    }));
    let mut world = sim.into_inner().0.into_inner();
    let exit = match outcome {
        Ok(Ok(())) => Exit::Ok,
        Ok(Err(e)) => Exit::Error(format!("{e:#}")),
        Err(_) => Exit::Killed,
    };
    if exit != Exit::Ok {
        (world.relations, world.ports, world.secrets) = before;
    }
    (world, exit)
}

/// Runs `event` and asserts the hook succeeded.
pub fn hook(world: World, event: Event) -> World {
    let (w, exit) = run(world, event);
    assert_eq!(exit, Exit::Ok, "last status {:?}", w.statuses.last());
    w
}

pub fn relation_event(endpoint: &str, kind: RelationKind) -> Event {
    Event::Relation {
        endpoint: endpoint.into(),
        kind,
    }
}

/// A unit deployed and serving on the mongodb relation: what most scenarios start from.
pub fn serving(tag: &str) -> World {
    let mut w = World::new(tag);
    w.set("app-id", "shop");
    w.relate_mongodb();
    let w = hook(w, Event::ConfigChanged);
    w.assert_status(StatusKind::Active, "serving on port 1337");
    w
}

/// A value as a test message shows it: at most 40 characters, escaped.
pub fn short(v: &Value) -> String {
    let s = v.to_string();
    let cut: String = s.chars().take(40).collect();
    if cut.len() < s.len() {
        format!("{cut}…")
    } else {
        cut
    }
}
