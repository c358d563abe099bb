//! Juju's side: the hook's environment, the consistency checker, the hook tools, relations,
//! secrets, config, leadership, opened ports and statuses.
//!
//! A test names the hook as Juju names it (`"config-changed"`,
//! `On::relation("mongodb-relation-changed", &id).unit("mongodb/0")`,
//! `On::action("get-master-key")`); the harness builds the environment Juju would give that
//! hook and the charm's own `JujuContext::from_env` reads it, as `main` does. Before the hook
//! runs, `check` refuses what Juju cannot produce, as ops' Scenario's consistency checker
//! does: endpoints, actions and options `metadata.yaml`, `actions.yaml` and `config.yaml` do
//! not declare, relation hooks without their relation or with units not in it, and changes
//! between hooks to what only the unit itself writes.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::OnceLock;

use parse_server_charm::juju::context::ABORT_AFTER_VAR;
use parse_server_charm::juju::hook_tools::ToolResult;
use parse_server_charm::juju::{bag_of, Databag, HookToolError, HookTools, Status, StatusKind};
use serde_json::Value;

use super::{Sim, World};

/// One relation as the unit sees it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Rel {
    pub endpoint: String,
    pub remote_app: String,
    /// The interface the remote side offers, where the test knows it.
    pub interface: Option<String>,
    /// The peer relation (made by `peer_with`): the remote units are this application's.
    pub peer: bool,
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
        self.peer
    }
}

/// A secret: its label (for the ones this application owns) and content (the revision the
/// unit tracks).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Secret {
    pub label: Option<String>,
    pub content: Databag,
    pub owned: bool,
    /// A newer revision the unit has not read yet: `secret-get --refresh` (or `--peek`)
    /// returns it; the unit tracks it after a refresh.
    pub newer: Option<Databag>,
}

/// The hook to run, named as Juju names it, with what Juju tells the hook about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct On {
    name: String,
    action: bool,
    relation: Option<String>,
    remote_unit: Option<String>,
    departing_unit: Option<String>,
    secret: Option<String>,
    abort_after: Option<String>,
}

impl On {
    /// A hook without a relation or secret: `On::hook("config-changed")` (a plain `&str`
    /// converts to this).
    pub fn hook(name: &str) -> On {
        On {
            name: name.to_owned(),
            action: false,
            relation: None,
            remote_unit: None,
            departing_unit: None,
            secret: None,
            abort_after: None,
        }
    }

    /// A relation hook (`<endpoint>-relation-<phase>`) about relation `id`.
    pub fn relation(name: &str, id: &str) -> On {
        On {
            relation: Some(id.to_owned()),
            ..On::hook(name)
        }
    }

    /// An action (`actions/<name>`).
    pub fn action(name: &str) -> On {
        On {
            action: true,
            ..On::hook(name)
        }
    }

    /// A secret hook (`secret-changed`, `secret-rotate`…) about secret `uri`.
    pub fn secret(name: &str, uri: &str) -> On {
        On {
            secret: Some(uri.to_owned()),
            ..On::hook(name)
        }
    }

    /// The remote unit the relation hook is about (`JUJU_REMOTE_UNIT`); without it a
    /// `-relation-changed` reports a change of the remote application's bag.
    pub fn unit(mut self, unit: &str) -> On {
        self.remote_unit = Some(unit.to_owned());
        self
    }

    /// The unit leaving the relation, in `-relation-departed` (`JUJU_DEPARTING_UNIT`).
    pub fn departing(mut self, unit: &str) -> On {
        self.departing_unit = Some(unit.to_owned());
        self
    }

    /// Test only: the hook dies right after the named step (`PARSE_SERVER_CHARM_ABORT_AFTER`).
    pub fn abort_after(mut self, step: &str) -> On {
        self.abort_after = Some(step.to_owned());
        self
    }

    /// The hook's or action's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl From<&str> for On {
    fn from(name: &str) -> On {
        On::hook(name)
    }
}

impl World {
    /// The environment Juju gives the hook (what `main` reads with `std::env::vars`).
    pub fn env(&self, on: &On) -> BTreeMap<String, String> {
        let mut env = BTreeMap::new();
        let mut put = |k: &str, v: &str| {
            env.insert(k.to_owned(), v.to_owned());
        };
        let dir = if on.action { "actions" } else { "hooks" };
        put("JUJU_DISPATCH_PATH", &format!("{dir}/{}", on.name));
        put("JUJU_UNIT_NAME", &self.unit());
        put(
            "JUJU_CHARM_DIR",
            &self.root.join("charm").display().to_string(),
        );
        put("JUJU_MODEL_NAME", "test");
        put("JUJU_VERSION", "3.6.1");
        put("PATH", &self.root.join("usr/bin").display().to_string());
        if on.action {
            put("JUJU_ACTION_NAME", &on.name);
            put("JUJU_ACTION_UUID", "1");
        } else {
            put("JUJU_HOOK_NAME", &on.name);
        }
        if let Some(id) = &on.relation {
            let rel = &self.relations[id];
            put("JUJU_RELATION", &rel.endpoint);
            put("JUJU_RELATION_ID", id);
            put("JUJU_REMOTE_APP", &rel.remote_app);
            // Juju sets it empty where no remote unit is concerned.
            put("JUJU_REMOTE_UNIT", on.remote_unit.as_deref().unwrap_or(""));
        }
        if let Some(unit) = &on.departing_unit {
            put("JUJU_DEPARTING_UNIT", unit);
        }
        if let Some(uri) = &on.secret {
            put("JUJU_SECRET_ID", uri);
            if let Some(label) = self.secrets.get(uri).and_then(|s| s.label.as_ref()) {
                put("JUJU_SECRET_LABEL", label);
            }
        }
        if let Some(step) = &on.abort_after {
            put(ABORT_AFTER_VAR, step);
        }
        env
    }
}

// The charm as Juju knows it: metadata.yaml, config.yaml, actions.yaml.

/// What `metadata.yaml`, `config.yaml` and `actions.yaml` declare.
#[derive(Debug)]
pub struct CharmSpec {
    /// Endpoint → (interface, is a peers endpoint).
    pub endpoints: BTreeMap<String, (String, bool)>,
    pub storage: BTreeSet<String>,
    /// Option → type (`string`, `int`, `float`, `boolean`).
    pub options: BTreeMap<String, String>,
    pub actions: BTreeSet<String>,
}

impl CharmSpec {
    /// The charm's one peers endpoint.
    pub fn peers_endpoint(&self) -> &str {
        let mut peers = self.endpoints.iter().filter(|(_, (_, peer))| *peer);
        match (peers.next(), peers.next()) {
            (Some((name, _)), None) => name,
            _ => panic!("metadata.yaml: the harness expects exactly one peers endpoint"),
        }
    }
}

fn yaml(file: &str) -> serde_yaml::Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{file}: {e}"));
    serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{file}: {e}"))
}

fn keys(v: &serde_yaml::Value) -> impl Iterator<Item = (String, &serde_yaml::Value)> {
    v.as_mapping()
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| Some((k.as_str()?.to_owned(), v)))
}

/// The charm's declarations, read once from the repository root.
pub fn spec() -> &'static CharmSpec {
    static SPEC: OnceLock<CharmSpec> = OnceLock::new();
    SPEC.get_or_init(|| {
        let meta = yaml("metadata.yaml");
        let mut endpoints = BTreeMap::new();
        for role in ["requires", "provides", "peers"] {
            for (name, e) in keys(&meta[role]) {
                let interface = e["interface"].as_str().expect("an interface").to_owned();
                endpoints.insert(name, (interface, role == "peers"));
            }
        }
        let storage = keys(&meta["storage"]).map(|(k, _)| k).collect();
        let options = keys(&yaml("config.yaml")["options"])
            .map(|(k, o)| (k, o["type"].as_str().expect("a type").to_owned()))
            .collect();
        let actions = keys(&yaml("actions.yaml")).map(|(k, _)| k).collect();
        CharmSpec {
            endpoints,
            storage,
            options,
            actions,
        }
    })
}

// The consistency checker.

/// Hooks every charm may get, whatever its metadata.
const PLAIN_HOOKS: &[&str] = &[
    "install",
    "start",
    "stop",
    "remove",
    "config-changed",
    "upgrade-charm",
    "update-status",
    "leader-elected",
    "leader-settings-changed",
    "collect-metrics",
    "pre-series-upgrade",
    "post-series-upgrade",
];

const SECRET_HOOKS: &[&str] = &[
    "secret-changed",
    "secret-rotate",
    "secret-expired",
    "secret-remove",
];

const RELATION_PHASES: &[&str] = &["created", "joined", "changed", "departed", "broken"];

/// Refuses a scenario Juju cannot produce: `Err` says what is wrong. `run` calls it before
/// every hook.
pub fn check(w: &World, on: &On) -> Result<(), String> {
    check_config(w)?;
    check_relations(w)?;
    check_between_hooks(w)?;
    check_hook(w, on)
}

fn check_config(w: &World) -> Result<(), String> {
    let spec = spec();
    for (key, value) in &w.config {
        let Some(ty) = spec.options.get(key) else {
            return Err(format!("config.yaml declares no option {key:?}"));
        };
        let fits = match ty.as_str() {
            "string" => value.is_string(),
            "int" => value.is_i64(),
            "float" => value.is_number(),
            "boolean" => value.is_boolean(),
            other => return Err(format!("config.yaml: {key} has unknown type {other}")),
        };
        if !fits {
            return Err(format!(
                "config {key} is of type {ty} in config.yaml; Juju refuses {}",
                super::short(value)
            ));
        }
    }
    Ok(())
}

fn check_relations(w: &World) -> Result<(), String> {
    let spec = spec();
    let mut peer_endpoints = BTreeSet::new();
    for (id, rel) in &w.relations {
        let Some((interface, peers)) = spec.endpoints.get(&rel.endpoint) else {
            return Err(format!(
                "relation {id}: metadata.yaml declares no endpoint {:?} (requires, provides \
                 or peers)",
                rel.endpoint
            ));
        };
        if !id.starts_with(&format!("{}:", rel.endpoint)) {
            return Err(format!("relation {id} is on {}", rel.endpoint));
        }
        if rel.peer != *peers {
            return Err(if rel.peer {
                format!(
                    "relation {id}: a peer relation on {:?}, which is not a peers endpoint",
                    rel.endpoint
                )
            } else {
                format!(
                    "relation {id}: {:?} is a peers endpoint: the peer relation is made with \
                     peer_with",
                    rel.endpoint
                )
            });
        }
        if let Some(offered) = &rel.interface {
            if offered != interface {
                return Err(format!(
                    "relation {id}: {} offers interface {offered}, endpoint {} takes {interface}",
                    rel.remote_app, rel.endpoint
                ));
            }
        }
        if rel.peer {
            if rel.remote_app != w.app {
                return Err(format!(
                    "relation {id}: a peer relation is with this application ({}), not {}",
                    w.app, rel.remote_app
                ));
            }
            if rel.units.contains_key(&w.unit()) {
                return Err(format!(
                    "relation {id}: this unit is not its own peer: relation-list never lists it"
                ));
            }
            if !peer_endpoints.insert(&rel.endpoint) {
                return Err(format!(
                    "two relations on the peers endpoint {}: Juju makes one",
                    rel.endpoint
                ));
            }
        } else if rel.remote_app == w.app {
            return Err(format!(
                "relation {id}: a relation with its own application is a peer relation"
            ));
        }
        for unit in rel.units.keys() {
            let ok = unit
                .split_once('/')
                .is_some_and(|(app, n)| app == rel.remote_app && n.parse::<u32>().is_ok());
            if !ok {
                return Err(format!(
                    "relation {id}: {unit} is not a unit of {}",
                    rel.remote_app
                ));
            }
        }
    }
    Ok(())
}

fn check_hook(w: &World, on: &On) -> Result<(), String> {
    let spec = spec();
    let name = on.name.as_str();
    if on.action {
        if !spec.actions.contains(name) {
            return Err(format!("actions.yaml declares no action {name:?}"));
        }
        return no_relation(on).and(no_secret(on));
    }
    if let Some((endpoint, phase)) = name
        .rsplit_once("-relation-")
        .filter(|(_, p)| RELATION_PHASES.contains(p))
    {
        no_secret(on)?;
        return check_relation_hook(w, on, endpoint, phase);
    }
    if SECRET_HOOKS.contains(&name) {
        no_relation(on)?;
        let Some(uri) = &on.secret else {
            return Err(format!(
                "{name} needs the secret it is about: On::secret({name:?}, &uri)"
            ));
        };
        let Some(secret) = w.secrets.get(uri) else {
            return Err(format!("{name}: secret {uri} is not in the world"));
        };
        // Juju tells observers a secret changed, and owners that it needs their attention.
        return match (name == "secret-changed", secret.owned) {
            (true, true) => Err(format!(
                "secret-changed for {uri}, which this application owns: Juju sends it to \
                 observers only"
            )),
            (false, false) => Err(format!(
                "{name} for {uri}, which this application does not own: Juju sends it to the \
                 owner only"
            )),
            _ => Ok(()),
        };
    }
    no_relation(on)?;
    no_secret(on)?;
    if let Some(storage) = name
        .strip_suffix("-storage-attached")
        .or_else(|| name.strip_suffix("-storage-detaching"))
    {
        return if spec.storage.contains(storage) {
            Ok(())
        } else {
            Err(format!("metadata.yaml declares no storage {storage:?}"))
        };
    }
    if !PLAIN_HOOKS.contains(&name) {
        return Err(format!("Juju has no hook named {name:?}"));
    }
    match name {
        "leader-elected" if !w.leader => {
            Err("leader-elected runs only on the unit that was elected (leader is false)".into())
        }
        "leader-settings-changed" if w.leader => {
            Err("leader-settings-changed runs only on non-leaders (leader is true)".into())
        }
        _ => Ok(()),
    }
}

fn no_relation(on: &On) -> Result<(), String> {
    if on.relation.is_some() || on.remote_unit.is_some() || on.departing_unit.is_some() {
        return Err(format!(
            "{} is not a relation hook: Juju gives it no relation or remote unit",
            on.name
        ));
    }
    Ok(())
}

fn no_secret(on: &On) -> Result<(), String> {
    if on.secret.is_some() {
        return Err(format!("{} is not a secret hook", on.name));
    }
    Ok(())
}

fn check_relation_hook(w: &World, on: &On, endpoint: &str, phase: &str) -> Result<(), String> {
    let name = &on.name;
    if !spec().endpoints.contains_key(endpoint) {
        return Err(format!(
            "{name}: metadata.yaml declares no endpoint {endpoint:?} (requires, provides or \
             peers)"
        ));
    }
    let Some(id) = &on.relation else {
        return Err(format!(
            "{name} needs the relation it is about: On::relation({name:?}, &id)"
        ));
    };
    let Some(rel) = w.relations.get(id) else {
        return Err(format!("{name}: relation {id} is not in the world"));
    };
    if rel.endpoint != endpoint {
        return Err(format!(
            "{name}: relation {id} is on endpoint {}, not {endpoint}",
            rel.endpoint
        ));
    }
    let remote = on.remote_unit.as_deref();
    if phase == "departed" {
        let Some(departing) = on.departing_unit.as_deref() else {
            return Err(format!(
                "{name} without a departing unit: Juju always sets JUJU_DEPARTING_UNIT \
                 (.departing(unit))"
            ));
        };
        let Some(remote) = remote else {
            return Err(format!(
                "{name} without the remote unit that left (.unit(unit))"
            ));
        };
        if departing != remote && departing != w.unit() {
            return Err(format!(
                "{name}: the departing unit {departing} is neither the remote unit {remote} \
                 nor this unit"
            ));
        }
        if rel.units.contains_key(departing) {
            return Err(format!(
                "{name}: {departing} is still in relation {id}: Juju drops a departing unit \
                 from relation-list before the hook"
            ));
        }
        return Ok(());
    }
    if on.departing_unit.is_some() {
        return Err(format!(
            "{name}: only -relation-departed has a departing unit"
        ));
    }
    match (phase, remote) {
        ("created" | "broken", Some(u)) => Err(format!(
            "{name}: Juju names no remote unit in -relation-{phase} (given {u})"
        )),
        ("joined", None) => Err(format!("{name} without the unit that joined (.unit(unit))")),
        (_, Some(u)) if !rel.units.contains_key(u) => Err(format!(
            "{name}: {u} is not a unit of relation {id} (its units: {:?})",
            rel.units.keys().collect::<Vec<_>>()
        )),
        _ => Ok(()),
    }
}

/// What only this unit writes (its own databags, its opened ports) and, while it leads, what
/// only the leader writes (its application's bags and secrets), as a hook left them.
#[derive(Debug, Clone)]
pub(crate) struct OwnWrites {
    leader: bool,
    unit_bags: BTreeMap<String, Databag>,
    app_bags: BTreeMap<String, Databag>,
    ports: BTreeSet<String>,
    owned_secrets: BTreeMap<String, Secret>,
}

impl OwnWrites {
    pub(crate) fn of(w: &World) -> OwnWrites {
        OwnWrites {
            leader: w.leader,
            unit_bags: w
                .relations
                .iter()
                .map(|(id, r)| (id.clone(), r.local.clone()))
                .collect(),
            app_bags: w
                .relations
                .iter()
                .map(|(id, r)| (id.clone(), r.local_app_bag.clone()))
                .collect(),
            ports: w.ports.clone(),
            owned_secrets: w
                .secrets
                .iter()
                .filter(|(_, s)| s.owned)
                .map(|(k, s)| (k.clone(), s.clone()))
                .collect(),
        }
    }
}

/// Between two hooks, what only the unit writes stays as its last hook left it: a test may
/// change the config, leadership, the remote side, the machine and the providers, not the
/// unit's own writes.
fn check_between_hooks(w: &World) -> Result<(), String> {
    let Some(last) = &w.own_writes else {
        return Ok(());
    };
    for (id, bag) in &last.unit_bags {
        if let Some(rel) = w.relations.get(id) {
            if &rel.local != bag {
                return Err(format!(
                    "this unit's own databag in {id} changed between hooks: only the unit \
                     writes it"
                ));
            }
        }
    }
    if w.ports != last.ports {
        return Err("the opened ports changed between hooks: only the unit opens them".into());
    }
    if last.leader && w.leader {
        for (id, bag) in &last.app_bags {
            if let Some(rel) = w.relations.get(id) {
                if &rel.local_app_bag != bag {
                    return Err(format!(
                        "the application databag in {id} changed between hooks while this \
                         unit led: only the leader writes it"
                    ));
                }
            }
        }
        let owned: BTreeMap<_, _> = w
            .secrets
            .iter()
            .filter(|(_, s)| s.owned)
            .map(|(k, s)| (k.clone(), s.clone()))
            .collect();
        if owned != last.owned_secrets {
            return Err(
                "the application's own secrets changed between hooks while this unit led: \
                 only the leader changes them"
                    .into(),
            );
        }
    }
    Ok(())
}

// The Juju side of the world, as tests state it.

impl World {
    pub fn set(&mut self, option: &str, value: impl Into<Value>) -> &mut Self {
        self.config.insert(option.into(), value.into());
        self
    }

    pub fn unset(&mut self, option: &str) -> &mut Self {
        self.config.remove(option);
        self
    }

    /// Adds a relation on `endpoint` with `remote_app`, which offers `interface`; returns
    /// its id (`endpoint:N`, never reused).
    pub fn relate_as(&mut self, endpoint: &str, remote_app: &str, interface: &str) -> String {
        self.add_relation(endpoint, remote_app, Some(interface), false)
    }

    fn add_relation(
        &mut self,
        endpoint: &str,
        remote_app: &str,
        interface: Option<&str>,
        peer: bool,
    ) -> String {
        let id = format!("{endpoint}:{}", self.next_relation_id);
        self.next_relation_id += 1;
        self.relations.insert(
            id.clone(),
            Rel {
                endpoint: endpoint.into(),
                remote_app: remote_app.into(),
                interface: interface.map(str::to_owned),
                peer,
                ..Default::default()
            },
        );
        id
    }

    /// Sets keys of a remote unit's bag (the unit joins the relation if it was not in it).
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

    /// Sets keys of the remote application's bag (an empty value deletes).
    pub fn remote_app_set(&mut self, id: &str, pairs: &[(&str, &str)]) {
        let bag = &mut self.relations.get_mut(id).unwrap().remote_app_bag;
        set_pairs(bag, pairs);
    }

    /// Sets keys of this application's peer bag, as the leader (another unit: this one must
    /// not lead) wrote them.
    pub fn leader_set(&mut self, pairs: &[(&str, &str)]) {
        let id = self.peer_id().expect("a peer relation");
        let bag = &mut self.relations.get_mut(&id).unwrap().local_app_bag;
        set_pairs(bag, pairs);
    }

    /// The peer relation with `others` (unit names) as the other units.
    pub fn peer_with(&mut self, others: &[&str]) -> String {
        let app = self.app.clone();
        let endpoint = spec().peers_endpoint();
        let id = self.add_relation(endpoint, &app, None, true);
        for u in others {
            self.remote_set(&id, u, &[("ingress-address", "10.0.0.11")]);
        }
        id
    }

    /// The peer relation with `others`, after the leader's first start (`initialised`).
    pub fn peer_initialised(&mut self, others: &[&str]) -> String {
        let id = self.peer_with(others);
        self.leader_set(&[("initialised", "true")]);
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

    /// The leader (another unit) generated the master key: its secret, readable here.
    pub fn leaders_key(&mut self, uri: &str, label: Option<&str>) {
        self.secrets.insert(
            uri.into(),
            Secret {
                label: label.map(str::to_owned),
                content: [("master-key".to_owned(), "k".repeat(64))].into(),
                owned: true,
                ..Secret::default()
            },
        );
    }

    /// A user secret (`juju add-secret NAME key=value…`) granted to the application
    /// (`juju grant-secret`); returns its URI, to give to an option.
    pub fn user_secret(&mut self, id: &str, content: &[(&str, &str)]) -> String {
        let uri = format!("secret:{id}");
        self.secrets.insert(
            uri.clone(),
            Secret {
                content: bag_of(content),
                ..Secret::default()
            },
        );
        uri
    }

    /// `juju update-secret`: a new revision, which the unit sees once it refreshes; Juju
    /// then runs `secret-changed` on the units that read the secret.
    pub fn update_user_secret(&mut self, uri: &str, content: &[(&str, &str)]) {
        let s = self.secrets.get_mut(uri).expect("the secret exists");
        s.newer = Some(bag_of(content));
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

    pub fn count(&self, call: &str) -> usize {
        self.calls.iter().filter(|c| c.as_str() == call).count()
    }
}

fn set_pairs(bag: &mut Databag, pairs: &[(&str, &str)]) {
    for (k, v) in pairs {
        if v.is_empty() {
            bag.remove(*k);
        } else {
            bag.insert((*k).into(), (*v).into());
        }
    }
}

fn denied(tool: &str, detail: &str) -> HookToolError {
    HookToolError {
        tool: tool.into(),
        detail: detail.into(),
    }
}

impl HookTools for Sim {
    fn config_get(&self) -> ToolResult<BTreeMap<String, Value>> {
        self.0.borrow().tool_calls.borrow_mut().push("config-get");
        Ok(self.0.borrow().config.clone())
    }
    fn relation_ids(&self, endpoint: &str) -> ToolResult<Vec<String>> {
        self.0.borrow().tool_calls.borrow_mut().push("relation-ids");
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
        self.0
            .borrow()
            .tool_calls
            .borrow_mut()
            .push("relation-list");
        Ok(self
            .0
            .borrow()
            .relations
            .get(id)
            .map(|r| r.units.keys().cloned().collect())
            .unwrap_or_default())
    }
    fn relation_get(&self, id: &str, unit: &str) -> ToolResult<Databag> {
        self.0.borrow().tool_calls.borrow_mut().push("relation-get");
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
        self.0.borrow().tool_calls.borrow_mut().push("relation-get");
        let w = self.0.borrow();
        let Some(r) = w.relations.get(id) else {
            return Ok(Databag::new());
        };
        if app == w.app {
            if !r.is_peer() && !w.leader {
                return Err(denied("relation-get", "exit 1: ERROR permission denied"));
            }
            return Ok(r.local_app_bag.clone());
        }
        Ok(r.remote_app_bag.clone())
    }
    fn relation_set_app(&self, id: &str, data: &Databag) -> ToolResult<()> {
        self.0.borrow().tool_calls.borrow_mut().push("relation-set");
        let mut w = self.0.borrow_mut();
        if !w.leader {
            return Err(denied(
                "relation-set",
                "exit 1: ERROR cannot write relation settings",
            ));
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
        self.0.borrow().tool_calls.borrow_mut().push("relation-set");
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
        self.0.borrow().tool_calls.borrow_mut().push("opened-ports");
        Ok(self.0.borrow().ports.iter().cloned().collect())
    }
    fn open_port(&self, port: u16) -> ToolResult<()> {
        self.0.borrow().tool_calls.borrow_mut().push("open-port");
        let mut w = self.0.borrow_mut();
        w.calls.push(format!("open-port {port}"));
        w.ports.insert(format!("{port}/tcp"));
        Ok(())
    }
    fn close_port(&self, port: u16) -> ToolResult<()> {
        self.0.borrow().tool_calls.borrow_mut().push("close-port");
        let mut w = self.0.borrow_mut();
        w.calls.push(format!("close-port {port}"));
        w.ports.remove(&format!("{port}/tcp"));
        Ok(())
    }
    fn status_set(&self, status: &Status) -> ToolResult<()> {
        self.0.borrow().tool_calls.borrow_mut().push("status-set");
        self.0.borrow_mut().statuses.push(status.clone());
        Ok(())
    }
    fn application_version_set(&self, _: &str) -> ToolResult<()> {
        self.0
            .borrow()
            .tool_calls
            .borrow_mut()
            .push("application-version-set");
        Ok(())
    }
    fn log(&self, _: &str, message: &str) -> ToolResult<()> {
        self.0.borrow().tool_calls.borrow_mut().push("juju-log");
        self.0.borrow_mut().logs.push(message.to_owned());
        Ok(())
    }
    fn is_leader(&self) -> ToolResult<bool> {
        self.0.borrow().tool_calls.borrow_mut().push("is-leader");
        Ok(self.0.borrow().leader)
    }
    fn public_address(&self) -> ToolResult<String> {
        self.0.borrow().tool_calls.borrow_mut().push("unit-get");
        Ok(self.0.borrow().public_address.clone())
    }
    fn ingress_address(&self, _: &str) -> ToolResult<Option<String>> {
        self.0.borrow().tool_calls.borrow_mut().push("network-get");
        Ok(self.0.borrow().ingress_address.clone())
    }
    fn state_get(&self, _: &str) -> ToolResult<Option<String>> {
        self.0.borrow().tool_calls.borrow_mut().push("state-get");
        Ok(None)
    }
    fn state_set(&self, _: &Databag) -> ToolResult<()> {
        self.0.borrow().tool_calls.borrow_mut().push("state-set");
        Ok(())
    }
    fn secret_get(&self, label: &str) -> ToolResult<Option<Databag>> {
        self.0.borrow().tool_calls.borrow_mut().push("secret-get");
        Ok(self.0.borrow().owned_secret(label).cloned())
    }
    fn secret_add_from_files(
        &self,
        label: &str,
        _: &str,
        entries: &[(&str, &Path)],
    ) -> ToolResult<String> {
        self.0.borrow().tool_calls.borrow_mut().push("secret-add");
        let content: Databag = entries
            .iter()
            .map(|(key, file)| ((*key).to_owned(), std::fs::read_to_string(file).unwrap()))
            .collect();
        let mut w = self.0.borrow_mut();
        if w.secrets
            .values()
            .any(|s| s.owned && s.label.as_deref() == Some(label))
        {
            return Err(denied(
                "secret-add",
                "exit 1: ERROR secret with label already exists",
            ));
        }
        w.calls.push(format!("secret-add {label}"));
        let mut n = w.secrets.len();
        while w.secrets.contains_key(&format!("secret:own{n}")) {
            n += 1;
        }
        let uri = format!("secret:own{n}");
        w.secrets.insert(
            uri.clone(),
            Secret {
                label: Some(label.into()),
                content,
                owned: true,
                ..Secret::default()
            },
        );
        Ok(uri)
    }
    fn secret_remove(&self, uri: &str) -> ToolResult<()> {
        self.0
            .borrow()
            .tool_calls
            .borrow_mut()
            .push("secret-remove");
        let mut w = self.0.borrow_mut();
        match w.secrets.get(uri) {
            Some(s) if s.owned => {
                w.calls.push(format!("secret-remove {uri}"));
                w.secrets.remove(uri);
                Ok(())
            }
            _ => Err(denied("secret-remove", "exit 1: ERROR secret not found")),
        }
    }
    fn secret_get_by_id(&self, uri: &str, refresh: bool) -> ToolResult<Option<Databag>> {
        self.0.borrow().tool_calls.borrow_mut().push("secret-get");
        let mut w = self.0.borrow_mut();
        if w.unreadable_secrets.contains(uri) {
            return Err(denied("secret-get", "exit 1: ERROR permission denied"));
        }
        let Some(s) = w.secrets.get_mut(uri) else {
            return Ok(None);
        };
        if refresh {
            if let Some(newer) = s.newer.take() {
                s.content = newer;
            }
        }
        Ok(Some(s.content.clone()))
    }
    fn secret_id(&self, label: &str) -> ToolResult<Option<String>> {
        self.0
            .borrow()
            .tool_calls
            .borrow_mut()
            .push("secret-info-get");
        Ok(self
            .0
            .borrow()
            .secrets
            .iter()
            .find(|(_, s)| s.owned && s.label.as_deref() == Some(label))
            .map(|(uri, _)| uri.clone()))
    }
    fn action_set(&self, results: &Databag) -> ToolResult<()> {
        self.0.borrow().tool_calls.borrow_mut().push("action-set");
        self.0.borrow_mut().action_results = Some(results.clone());
        Ok(())
    }
    fn action_get(&self) -> ToolResult<BTreeMap<String, Value>> {
        self.0.borrow().tool_calls.borrow_mut().push("action-get");
        Ok(self.0.borrow().action_params.clone())
    }
    fn resource_get(&self, name: &str) -> ToolResult<std::path::PathBuf> {
        self.0.borrow().tool_calls.borrow_mut().push("resource-get");
        self.0
            .borrow()
            .resources
            .get(name)
            .cloned()
            .ok_or_else(|| HookToolError {
                tool: "resource-get".into(),
                detail: format!("exit 1: ERROR could not download resource: {name}"),
            })
    }
    fn action_fail(&self, message: &str) -> ToolResult<()> {
        self.0.borrow().tool_calls.borrow_mut().push("action-fail");
        self.0.borrow_mut().action_failed = Some(message.to_owned());
        Ok(())
    }
}
