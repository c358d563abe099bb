//! The shared model of one application with several units (`M/model.json`, under the lock
//! `M/.lock`): the application (charm, config, leader, leader settings, status), its units,
//! relations with the bags of every member and each unit's view of them, secrets, and the
//! event queue. Each unit keeps its own unit dir (state.json, tools/, logs) for what is
//! unit-local; `projection.rs` moves the shared part in and out of it around every hook.

pub mod cli;
pub mod projection;
pub mod queue;
pub mod settle;
pub mod status;
pub mod topology;

use crate::agent::charm::{CharmInfo, ConfigOption, Endpoint, ResourceMeta};
use crate::agent::state::{self, Bag, Secret, SecretTrack, Status};
use crate::errors::{q, CmdError, CmdResult};
use crate::model::queue::Queue;
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Life of a unit: `alive`, or `dying` once `remove-unit` queued its teardown.
pub const ALIVE: &str = "alive";
pub const DYING: &str = "dying";

/// One unit of our application.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ModelUnit {
    pub name: String,
    /// Absolute unit dir (state.json, tools/, logs).
    pub dir: String,
    pub address: String,
    /// `alive` or `dying`.
    pub life: String,
    /// Set when one of its hooks failed: its queue waits for `jujusim resolve`.
    pub error: Option<String>,
    /// Secrets this unit has read: tracked revision and consumer label.
    pub secret_tracking: BTreeMap<String, SecretTrack>,
}

impl ModelUnit {
    pub fn alive(&self) -> bool {
        self.life == ALIVE
    }
}

/// What one unit of ours has seen of a relation (what its hooks have been told so far).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RelationView {
    /// The other units it has seen join and not depart (relation-list).
    pub members: BTreeSet<String>,
    pub created_run: bool,
    pub broken: bool,
}

/// One relation of our application.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ModelRelation {
    pub id: u32,
    pub endpoint: String,
    pub interface: String,
    /// provides / requires / peers.
    pub role: String,
    /// The other application (for a peer relation our own).
    pub remote_app: String,
    /// Our application's bag.
    pub app_bag: Bag,
    /// The remote application's bag (unused for peers).
    pub remote_app_bag: Bag,
    /// Bags of every member: our units and the remote units (kept after a remote unit
    /// departs, while the relation exists).
    pub unit_bags: BTreeMap<String, Bag>,
    /// Remote units currently in the relation.
    pub remote_units: BTreeSet<String>,
    /// Our units in the relation and what each has seen of it.
    pub views: BTreeMap<String, RelationView>,
    /// Removed (`relation-break`): gone once every unit ran -broken.
    pub dying: bool,
}

impl ModelRelation {
    /// `<endpoint>:<id>`.
    pub fn name(&self) -> String {
        format!("{}:{}", self.endpoint, self.id)
    }

    pub fn is_peer(&self) -> bool {
        self.role == "peers"
    }
}

/// The whole shared model.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Model {
    pub name: String,
    pub uuid: String,
    pub app: String,
    /// Charm dir on the host (new units run it unless given their own).
    pub charm_dir: String,
    /// Charm dir as the dispatch process of a new unit sees it (default: the host dir).
    pub unit_charm_dir: Option<String>,
    pub endpoints: BTreeMap<String, Endpoint>,
    pub extra_bindings: Vec<String>,
    pub resource_meta: BTreeMap<String, ResourceMeta>,
    /// Attached resources: name -> the model's copy of the file (new units get it too).
    pub resources: BTreeMap<String, String>,
    pub config_schema: BTreeMap<String, ConfigOption>,
    /// Explicitly set config values.
    pub config: BTreeMap<String, Value>,
    pub actions: BTreeMap<String, Value>,
    pub units: BTreeMap<String, ModelUnit>,
    pub next_unit: u32,
    /// The leader's unit name ("" when there is none).
    pub leader: String,
    pub leader_settings: BTreeMap<String, String>,
    pub app_status: Status,
    pub relations: BTreeMap<u32, ModelRelation>,
    pub next_relation_id: u32,
    /// Secrets owned by our application or one of its units, and secrets of remote
    /// applications granted to our relations.
    pub secrets: BTreeMap<String, Secret>,
    /// Address of every unit, ours and remote.
    pub addresses: BTreeMap<String, String>,
    pub next_remote_host: u32,
    pub queue: Queue,
}

/// `app/N` → N (units sort by number: app/2 before app/10).
pub fn unit_number(unit: &str) -> u32 {
    unit.rsplit_once('/')
        .and_then(|(_, n)| n.parse().ok())
        .unwrap_or(u32::MAX)
}

impl Model {
    /// Apply charm metadata/config/actions.
    pub fn apply_charm(&mut self, info: &CharmInfo) {
        self.endpoints = info.endpoints.clone();
        self.extra_bindings = info.extra_bindings.clone();
        self.resource_meta = info.resources.clone();
        self.config_schema = info.config.clone();
        self.config.retain(|k, _| info.config.contains_key(k));
        self.actions = info.actions.clone();
    }

    /// Unit names, by unit number.
    pub fn unit_names(&self) -> Vec<String> {
        let mut v: Vec<String> = self.units.keys().cloned().collect();
        v.sort_by_key(|u| unit_number(u));
        v
    }

    /// Alive units by number.
    pub fn alive_units(&self) -> Vec<String> {
        self.unit_names()
            .into_iter()
            .filter(|u| self.units[u].alive())
            .collect()
    }

    /// Whether `unit` is one of ours.
    pub fn is_ours(&self, unit: &str) -> bool {
        self.units.contains_key(unit)
    }

    /// A unit that must exist.
    pub fn unit(&self, unit: &str) -> CmdResult<&ModelUnit> {
        self.units
            .get(unit)
            .ok_or_else(|| CmdError::usage(format!("unit {} is not in the model", q(unit))))
    }

    /// Resolve `db:7` / `7` to a relation of the model (usage error otherwise).
    pub fn relation_id(&self, v: &str) -> CmdResult<u32> {
        let id = crate::agent::relations::parse_id(v)
            .ok_or_else(|| CmdError::usage(format!("invalid relation id {}", q(v))))?;
        if self.relations.contains_key(&id) {
            Ok(id)
        } else {
            Err(CmdError::usage(format!("relation {} not found", q(v))))
        }
    }

    /// Our alive units in relation `rid` that may still be told about it (a view that is not
    /// broken), by number, without `except`.
    pub fn listeners(&self, rid: u32, except: &str) -> Vec<String> {
        let Some(rel) = self.relations.get(&rid) else {
            return Vec::new();
        };
        self.alive_units()
            .into_iter()
            .filter(|u| u != except)
            .filter(|u| rel.views.get(u).is_some_and(|v| !v.broken))
            .collect()
    }

    /// The lowest free address 10.0.0.N (N ≥ 10) among our units.
    pub fn free_address(&self) -> String {
        let used: BTreeSet<&str> = self.units.values().map(|u| u.address.as_str()).collect();
        (10..)
            .map(|n| format!("10.0.0.{n}"))
            .find(|a| !used.contains(a.as_str()))
            .expect("an address")
    }

    /// The address of a remote unit, assigning 10.0.1.N if new (`given` overrides).
    pub fn remote_address(&mut self, unit: &str, given: Option<&str>) -> String {
        if let Some(a) = given {
            self.addresses.insert(unit.to_string(), a.to_string());
        }
        if let Some(a) = self.addresses.get(unit) {
            return a.clone();
        }
        self.next_remote_host += 1;
        let a = format!("10.0.1.{}", self.next_remote_host);
        self.addresses.insert(unit.to_string(), a.clone());
        a
    }
}

/// `M/model.json`.
pub fn model_path(dir: &Path) -> PathBuf {
    dir.join("model.json")
}

/// Whether `dir` holds a model.
pub fn is_model_dir(dir: &Path) -> bool {
    model_path(dir).is_file()
}

/// Load `M/model.json` (written atomically, so readable without the lock).
pub fn load(dir: &Path) -> Result<Model> {
    let p = model_path(dir);
    let text = std::fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing {}", p.display()))
}

/// Save `M/model.json` atomically.
pub fn save(dir: &Path, m: &Model) -> Result<()> {
    let text = serde_json::to_string_pretty(m)?;
    crate::util::write_atomic(&model_path(dir), text.as_bytes())
}

/// Lock `M/.lock`, load, mutate, save. Never take a unit's lock (`U/.lock`) and then this
/// one: the model lock comes first or alone.
pub fn with_model<T>(dir: &Path, f: impl FnOnce(&mut Model) -> CmdResult<T>) -> CmdResult<T> {
    let _l = state::lock_named(dir, ".lock")?;
    let mut m = load(dir)?;
    let out = f(&mut m)?;
    save(dir, &m)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbering_addresses_and_roundtrip() {
        let mut m = Model {
            app: "app".into(),
            ..Default::default()
        };
        for (n, addr) in [(10, "10.0.0.10"), (2, "10.0.0.12")] {
            let name = format!("app/{n}");
            m.units.insert(
                name.clone(),
                ModelUnit {
                    name,
                    address: addr.into(),
                    life: ALIVE.into(),
                    ..Default::default()
                },
            );
        }
        assert_eq!(m.unit_names(), vec!["app/2", "app/10"]);
        assert_eq!(m.free_address(), "10.0.0.11");
        assert_eq!(m.remote_address("db/0", None), "10.0.1.1");
        assert_eq!(m.remote_address("db/0", None), "10.0.1.1");
        assert_eq!(m.remote_address("db/1", Some("192.0.2.5")), "192.0.2.5");
        let dir = std::env::temp_dir().join(format!("jujusim-model-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        save(&dir, &m).unwrap();
        assert!(is_model_dir(&dir));
        with_model(&dir, |mm| {
            mm.leader = "app/2".into();
            Ok(())
        })
        .unwrap();
        let back = load(&dir).unwrap();
        assert_eq!(back.leader, "app/2");
        assert_eq!(back.units, m.units);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
