//! The simulated unit's model state (`U/state.json`): types, atomic load/save and the unit-dir lock.

use crate::agent::charm::{CharmInfo, ConfigOption, Endpoint, ResourceMeta};
use crate::agent::ports::PortMap;
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::os::unix::io::AsRawFd;
use std::path::Path;

/// A relation data bag.
pub type Bag = BTreeMap<String, String>;

/// A workload/agent/application status.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Status {
    pub status: String,
    pub message: String,
    pub data: Map<String, Value>,
}

impl Status {
    pub fn new(status: &str, message: &str) -> Status {
        Status {
            status: status.to_string(),
            message: message.to_string(),
            data: Map::new(),
        }
    }
}

/// One relation of the unit.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Relation {
    pub id: u32,
    pub endpoint: String,
    pub interface: String,
    /// provides / requires / peers.
    pub role: String,
    pub remote_app: String,
    /// Remote units currently in the relation.
    pub members: BTreeSet<String>,
    /// Settings of remote units (kept after they depart, while the relation exists).
    pub unit_bags: BTreeMap<String, Bag>,
    pub remote_app_bag: Bag,
    pub local_unit_bag: Bag,
    /// Own application bag (for peers this is also the "remote" app bag).
    pub local_app_bag: Bag,
    pub broken: bool,
    /// Whether `<ep>-relation-created` has run for it.
    pub created_run: bool,
}

impl Relation {
    /// `<endpoint>:<id>`.
    pub fn name(&self) -> String {
        format!("{}:{}", self.endpoint, self.id)
    }

    pub fn is_peer(&self) -> bool {
        self.role == "peers"
    }
}

/// One juju-log line.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LogLine {
    pub hook: String,
    pub level: String,
    pub message: String,
}

/// One status-history entry.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct HistoryEntry {
    /// `workload`, `application`, `agent`, `workload-version` or `action`.
    pub kind: String,
    pub status: String,
    pub message: String,
    pub hook: String,
    pub since: String,
}

/// The action currently running, if any.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ActionRun {
    pub name: String,
    pub id: String,
    pub params: Map<String, Value>,
    pub results: Map<String, Value>,
    pub failed: Option<String>,
    pub logs: Vec<String>,
}

/// One revision of a secret's content. Values are stored base64-encoded, as Juju stores them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SecretRevision {
    pub revision: u32,
    pub content: BTreeMap<String, String>,
}

/// A secret: charm-owned (Juju 3.x), a remote application's, or a user secret (owner
/// `model`, Juju 3.3+).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Secret {
    /// The 20-character ID (the URI is `secret:<id>`).
    pub id: String,
    /// `application` or `unit`.
    pub owner: String,
    /// The owning application or unit name.
    pub owner_id: String,
    pub label: String,
    pub description: String,
    /// Rotate policy (`never`, `hourly`, ...).
    pub rotate: String,
    /// Expiry time (RFC 3339), if any.
    pub expire: Option<String>,
    /// Next rotation time (RFC 3339), when the policy is not `never`.
    pub next_rotate: Option<String>,
    /// Revisions, oldest first (never empty for an existing secret).
    pub revisions: Vec<SecretRevision>,
    /// For a secret owned by a remote application: the relation ids it is granted to (every
    /// unit of ours in such a relation may read it). Empty for our own secrets.
    pub grants: BTreeSet<u32>,
    /// For a user secret (owner `model`, CONTRACT.md §5.5): whether it is granted to our
    /// application (`juju grant-secret`).
    pub granted_to_app: bool,
}

/// What one unit tracks of a secret it reads (Juju's consumer record,
/// CONTRACT.md §5.2): the revision plain `secret-get` returns until
/// `--refresh`, and the unit's own label for a secret it does not own.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SecretTrack {
    pub revision: u32,
    /// Consumer label (`secret-get <uri> --label L`); empty when none.
    pub label: String,
}

impl Secret {
    /// `secret:<id>`.
    pub fn uri(&self) -> String {
        format!("secret:{}", self.id)
    }

    /// The latest revision number (0 when there is none).
    pub fn latest_revision(&self) -> u32 {
        self.revisions.last().map(|r| r.revision).unwrap_or(0)
    }

    /// The latest content (base64 values).
    pub fn latest_content(&self) -> BTreeMap<String, String> {
        self.revisions
            .last()
            .map(|r| r.content.clone())
            .unwrap_or_default()
    }

    /// The content of `revision`, or the latest one if that revision is gone.
    pub fn content_at(&self, revision: u32) -> BTreeMap<String, String> {
        self.revisions
            .iter()
            .find(|r| r.revision == revision)
            .map(|r| r.content.clone())
            .unwrap_or_else(|| self.latest_content())
    }
}

/// Whole model state of one simulated unit.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct State {
    pub unit: String,
    pub app: String,
    pub model: String,
    pub model_uuid: String,
    pub machine_id: String,
    pub leader: bool,
    /// Charm dir as the dispatch process sees it.
    pub charm_dir: String,
    /// Charm dir on the host (where the driver looks for dispatch). For a charm deployed
    /// into a machine: the path through the running machine's root (`/proc/<pid>/root/...`),
    /// rewritten at every boot.
    pub host_charm_dir: String,
    /// The charm was unpacked into the machine's own filesystem (`deploy-charm`).
    pub charm_in_machine: bool,
    pub address: String,
    pub endpoints: BTreeMap<String, Endpoint>,
    pub extra_bindings: Vec<String>,
    pub resource_meta: BTreeMap<String, ResourceMeta>,
    /// Registered resource files: name -> path as the unit sees it.
    pub resources: BTreeMap<String, String>,
    pub config_schema: BTreeMap<String, ConfigOption>,
    /// Explicitly set config values.
    pub config: BTreeMap<String, Value>,
    pub actions: BTreeMap<String, Value>,
    pub relations: BTreeMap<u32, Relation>,
    pub next_relation_id: u32,
    /// Committed opened ports.
    pub ports: PortMap,
    pub unit_status: Status,
    pub app_status: Status,
    pub agent_status: Status,
    /// Whether the charm ever called status-set (for the install/unknown default).
    pub charm_set_status: bool,
    pub workload_version: String,
    pub leader_settings: BTreeMap<String, String>,
    pub unit_state: BTreeMap<String, String>,
    pub log: Vec<LogLine>,
    pub status_history: Vec<HistoryEntry>,
    /// Addresses of remote units (assigned when they first appear).
    pub remote_addresses: BTreeMap<String, String>,
    pub next_remote_host: u32,
    pub action: Option<ActionRun>,
    pub next_action_id: u32,
    /// argv prepended when running dispatch (e.g. nsenter into the unit's machine).
    pub exec_prefix: Option<Vec<String>>,
    /// The unit lives in a machine namespace: refuse to run hooks on the host when it is down.
    pub machine_mode: bool,
    /// Committed secrets owned by this unit or its application, by ID (in a model also the
    /// secrets of remote applications granted to this unit's relations).
    pub secrets: BTreeMap<String, Secret>,
    /// Secrets this unit has read, by ID: the revision it tracks and its consumer label.
    pub secret_tracking: BTreeMap<String, SecretTrack>,
    /// The model dir this unit belongs to (`jujusim add-unit`); empty for a standalone unit.
    pub model_dir: String,
}

/// The defaults for the auto-populated keys of a unit bag.
pub fn address_bag(addr: &str) -> Bag {
    let mut b = Bag::new();
    b.insert("private-address".into(), addr.into());
    b.insert("ingress-address".into(), addr.into());
    b.insert("egress-subnets".into(), format!("{addr}/32"));
    b
}

impl State {
    /// Apply charm metadata/config/actions (init and refresh). Keeps set values of options
    /// that still exist.
    pub fn apply_charm(&mut self, info: &CharmInfo) {
        self.endpoints = info.endpoints.clone();
        self.extra_bindings = info.extra_bindings.clone();
        self.resource_meta = info.resources.clone();
        self.config_schema = info.config.clone();
        self.config.retain(|k, _| info.config.contains_key(k));
        self.actions = info.actions.clone();
    }

    /// Effective config as config-get shows it: set values and non-null defaults; with
    /// `all`, options without either as null.
    pub fn config_view(&self, all: bool) -> Map<String, Value> {
        let mut m = Map::new();
        for (k, opt) in &self.config_schema {
            match self.config.get(k).or(opt.default.as_ref()) {
                Some(v) => {
                    m.insert(k.clone(), v.clone());
                }
                None if all => {
                    m.insert(k.clone(), Value::Null);
                }
                None => {}
            }
        }
        m
    }

    /// `unit-<app>-<n>` (the agent directory name).
    pub fn agent_name(&self) -> String {
        format!("unit-{}", self.unit.replace('/', "-"))
    }

    /// Record a status-history entry.
    pub fn history(&mut self, kind: &str, status: &str, message: &str, hook: &str) {
        self.status_history.push(HistoryEntry {
            kind: kind.into(),
            status: status.into(),
            message: message.into(),
            hook: hook.into(),
            since: crate::util::now_rfc3339(),
        });
    }

    pub fn set_unit_status(&mut self, st: Status, hook: &str) {
        self.history("workload", &st.status, &st.message, hook);
        self.unit_status = st;
    }

    pub fn set_app_status(&mut self, st: Status, hook: &str) {
        self.history("application", &st.status, &st.message, hook);
        self.app_status = st;
    }

    pub fn set_agent_status(&mut self, st: Status, hook: &str) {
        self.history("agent", &st.status, &st.message, hook);
        self.agent_status = st;
    }

    /// The address of a remote unit, assigning the next free one (10.0.1.N) if new.
    pub fn remote_address(&mut self, unit: &str, given: Option<&str>) -> String {
        if let Some(a) = given {
            self.remote_addresses
                .insert(unit.to_string(), a.to_string());
        }
        if let Some(a) = self.remote_addresses.get(unit) {
            return a.clone();
        }
        self.next_remote_host += 1;
        let a = format!("10.0.1.{}", self.next_remote_host);
        self.remote_addresses.insert(unit.to_string(), a.clone());
        a
    }

    /// Make `unit` a member of relation `rid`, creating its bag with the address keys.
    pub fn add_member(&mut self, rid: u32, unit: &str, address: Option<&str>) {
        let addr = self.remote_address(unit, address);
        if let Some(rel) = self.relations.get_mut(&rid) {
            rel.members.insert(unit.to_string());
            let bag = rel.unit_bags.entry(unit.to_string()).or_default();
            for (k, v) in address_bag(&addr) {
                if address.is_some() {
                    bag.insert(k, v);
                } else {
                    bag.entry(k).or_insert(v);
                }
            }
        }
    }

    /// Add a relation on `endpoint` with `remote_app`; returns its id.
    pub fn add_relation(&mut self, endpoint: &str, remote_app: &str) -> u32 {
        let id = self.next_relation_id;
        self.next_relation_id += 1;
        let ep = self.endpoints.get(endpoint).cloned().unwrap_or(Endpoint {
            role: String::new(),
            interface: String::new(),
        });
        let rel = Relation {
            id,
            endpoint: endpoint.to_string(),
            interface: ep.interface,
            role: ep.role,
            remote_app: remote_app.to_string(),
            local_unit_bag: address_bag(&self.address),
            ..Default::default()
        };
        self.relations.insert(id, rel);
        id
    }
}

/// Path of state.json.
pub fn state_path(dir: &Path) -> std::path::PathBuf {
    dir.join("state.json")
}

/// Load `U/state.json`.
pub fn load(dir: &Path) -> Result<State> {
    let p = state_path(dir);
    let text = std::fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing {}", p.display()))
}

/// Save `U/state.json` atomically.
pub fn save(dir: &Path, st: &State) -> Result<()> {
    let text = serde_json::to_string_pretty(st)?;
    crate::util::write_atomic(&state_path(dir), text.as_bytes())
}

/// An exclusive flock on a file in the unit dir; released on drop.
pub struct Lock {
    _file: File,
}

/// Take the exclusive lock `U/<name>` (blocking).
pub fn lock_named(dir: &Path, name: &str) -> Result<Lock> {
    let p = dir.join(name);
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&p)
        .with_context(|| format!("opening lock {}", p.display()))?;
    loop {
        // SAFETY: flock on a valid, owned file descriptor.
        let r = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) };
        if r == 0 {
            break;
        }
        let err = std::io::Error::last_os_error();
        if err.kind() != std::io::ErrorKind::Interrupted {
            return Err(err).with_context(|| format!("locking {}", p.display()));
        }
    }
    Ok(Lock { _file: f })
}

/// The model lock: held while reading-modifying-writing state.json / pending.json.
pub fn lock(dir: &Path) -> Result<Lock> {
    lock_named(dir, ".lock")
}

/// Lock, load, mutate, save.
pub fn with_state<T>(
    dir: &Path,
    f: impl FnOnce(&mut State) -> crate::errors::CmdResult<T>,
) -> crate::errors::CmdResult<T> {
    let _l = lock(dir)?;
    let mut st = load(dir)?;
    let out = f(&mut st)?;
    save(dir, &st)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn save_load_roundtrip_and_lock() {
        let dir = std::env::temp_dir().join(format!("jujusim-state-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let _l = lock(&dir).unwrap();
        let mut s = State {
            unit: "demo/0".into(),
            address: "10.0.0.10".into(),
            ..Default::default()
        };
        let id = s.add_relation("db", "mongo");
        s.add_member(id, "mongo/0", None);
        save(&dir, &s).unwrap();
        let back = load(&dir).unwrap();
        assert_eq!(back, s);
        assert_eq!(
            back.relations[&0].unit_bags["mongo/0"]["private-address"],
            "10.0.1.1"
        );
        assert_eq!(
            back.relations[&0].local_unit_bag["egress-subnets"],
            "10.0.0.10/32"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
