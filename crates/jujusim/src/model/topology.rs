//! What the operator and the remote applications do to a model, each queueing the hooks
//! Juju would run (CONTRACT.md §4.2, §6): model-init, add-unit, remove-unit, set-leader, config, relate,
//! remote unit/app bag writes, remote units leaving, relation removal, remote secrets.

use crate::agent::charm;
use crate::agent::secrets;
use crate::agent::setup::{self, InitOpts};
use crate::agent::state::{self, address_bag, Bag, Secret, SecretRevision, Status};
use crate::errors::{q, CmdError, CmdResult};
use crate::keyvalue;
use crate::model::queue::Event;
use crate::model::{self, unit_number, with_model, Model, ModelRelation, ModelUnit, RelationView};
use crate::util;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Options of `model-init`.
#[derive(Debug, Clone, Default)]
pub struct ModelInit {
    /// Charm dir on the host.
    pub charm_dir: PathBuf,
    pub app: Option<String>,
    pub model: Option<String>,
    pub unit_charm_dir: Option<String>,
}

/// Create `M/model.json`: the application, no units, and (as Juju does at deploy) one
/// relation per `peers:` endpoint. Returns the model.
pub fn model_init(dir: &Path, o: &ModelInit) -> CmdResult<Model> {
    if model::is_model_dir(dir) {
        return Err(CmdError::runtime(format!(
            "{} already holds a model",
            dir.display()
        )));
    }
    std::fs::create_dir_all(dir)?;
    let host = o
        .charm_dir
        .canonicalize()
        .map_err(|e| CmdError::runtime(format!("charm dir {}: {e}", o.charm_dir.display())))?;
    let info = charm::read_charm_dir(&host)?;
    let app = o.app.clone().unwrap_or_else(|| info.name.clone());
    if app.is_empty() || app.contains('/') {
        return Err(CmdError::usage(format!(
            "invalid application name {}",
            q(&app)
        )));
    }
    let mut m = Model {
        name: o.model.clone().unwrap_or_else(|| "demo".to_string()),
        uuid: util::uuid4(),
        app: app.clone(),
        charm_dir: host.display().to_string(),
        unit_charm_dir: o.unit_charm_dir.clone(),
        app_status: Status::new("unknown", ""),
        ..Default::default()
    };
    m.apply_charm(&info);
    let peers: Vec<String> = m
        .endpoints
        .iter()
        .filter(|(_, e)| e.role == "peers")
        .map(|(n, _)| n.clone())
        .collect();
    for ep in peers {
        add_relation(&mut m, &ep, &app);
    }
    model::save(dir, &m)?;
    Ok(m)
}

fn add_relation(m: &mut Model, endpoint: &str, remote_app: &str) -> u32 {
    let id = m.next_relation_id;
    m.next_relation_id += 1;
    let ep = m
        .endpoints
        .get(endpoint)
        .cloned()
        .unwrap_or(charm::Endpoint {
            role: String::new(),
            interface: String::new(),
        });
    m.relations.insert(
        id,
        ModelRelation {
            id,
            endpoint: endpoint.to_string(),
            interface: ep.interface,
            role: ep.role,
            remote_app: remote_app.to_string(),
            ..Default::default()
        },
    );
    id
}

/// Put our `unit` into relation `rid`: its bag with Juju's address keys, an empty view.
fn enter(m: &mut Model, rid: u32, unit: &str) {
    let addr = m.units[unit].address.clone();
    if let Some(r) = m.relations.get_mut(&rid) {
        let bag = r.unit_bags.entry(unit.to_string()).or_default();
        bag.extend(address_bag(&addr));
        r.views.insert(unit.to_string(), RelationView::default());
    }
}

/// Options of `add-unit`.
#[derive(Debug, Clone, Default)]
pub struct AddUnit {
    pub address: Option<String>,
    pub exec_prefix: Option<Vec<String>>,
    /// Unit dir to use; if it already holds a unit (`jujusim deploy-charm`) it is adopted.
    pub unit_dir: Option<PathBuf>,
    pub unit_charm_dir: Option<String>,
}

/// `leader-elected` on `unit` and `leader-settings-changed` on the other alive units.
fn announce_leader(m: &mut Model, unit: &str) {
    m.queue.push(Event::new(unit, "leader-elected"));
    for u in m.alive_units() {
        if u != unit {
            m.queue.push(Event::new(&u, "leader-settings-changed"));
        }
    }
}

/// Elect the lowest-numbered alive unit (none: no leader).
fn elect(m: &mut Model) {
    match m.alive_units().first().cloned() {
        Some(u) => {
            m.leader = u.clone();
            announce_leader(m, &u);
        }
        None => m.leader.clear(),
    }
}

/// Relations a unit enters, in the order their -created hooks run: peers first, then by id.
fn live_relations(m: &Model) -> Vec<u32> {
    let mut ids: Vec<u32> = m
        .relations
        .values()
        .filter(|r| !r.dying)
        .map(|r| r.id)
        .collect();
    ids.sort_by_key(|id| (!m.relations[id].is_peer(), *id));
    ids
}

/// Add a unit. Queues on it (CONTRACT.md §4.2, §6) install → -created for every relation of the
/// application (the peer relation first) → leader-elected (it became leader because there
/// was none) | leader-settings-changed → config-changed → start → -joined/-changed for each
/// remote unit already in a relation; and peer -joined/-changed in both directions between
/// it and every other unit. Returns (unit name, unit dir).
pub fn add_unit(model_dir: &Path, o: &AddUnit) -> CmdResult<(String, PathBuf)> {
    let (name, dir) = with_model(model_dir, |m| {
        let adopt = o
            .unit_dir
            .as_ref()
            .filter(|d| state::state_path(d).exists())
            .map(|d| state::load(d).map(|st| (d.clone(), st)))
            .transpose()?;
        let (name, dir) = match &adopt {
            Some((d, st)) => {
                if st.app != m.app {
                    return Err(CmdError::usage(format!(
                        "{} holds unit {} of application {}, not of {}",
                        d.display(),
                        q(&st.unit),
                        q(&st.app),
                        q(&m.app)
                    )));
                }
                if !st.model_dir.is_empty() && Path::new(&st.model_dir) != model_dir {
                    return Err(CmdError::usage(format!(
                        "{} already belongs to the model in {}",
                        d.display(),
                        st.model_dir
                    )));
                }
                (st.unit.clone(), d.clone())
            }
            None => {
                let name = format!("{}/{}", m.app, m.next_unit);
                let dir = o.unit_dir.clone().unwrap_or_else(|| {
                    model_dir
                        .join("units")
                        .join(format!("{}-{}", m.app, m.next_unit))
                });
                (name, dir)
            }
        };
        setup::split_unit(&name)?;
        if m.units.contains_key(&name) {
            return Err(CmdError::usage(format!(
                "unit {} is already in the model",
                q(&name)
            )));
        }
        m.next_unit = m.next_unit.max(unit_number(&name) + 1);
        let used = |a: &str| m.units.values().any(|u| u.address == a);
        let address = match (&o.address, &adopt) {
            (Some(a), _) => a.clone(),
            (None, Some((_, st))) if !st.address.is_empty() && !used(&st.address) => {
                st.address.clone()
            }
            _ => m.free_address(),
        };
        if adopt.is_none() {
            setup::init_unit(
                &dir,
                &InitOpts {
                    charm_dir: PathBuf::from(&m.charm_dir),
                    unit: Some(name.clone()),
                    model: Some(m.name.clone()),
                    leader: false,
                    address: Some(address.clone()),
                    exec_prefix: o.exec_prefix.clone(),
                    unit_charm_dir: o.unit_charm_dir.clone().or(m.unit_charm_dir.clone()),
                    machine_mode: false,
                    charm_in_machine: false,
                },
            )?;
        }
        let dir = dir.canonicalize().unwrap_or(dir);
        for (res, copy) in &m.resources {
            setup::attach_resource(&dir, res, Path::new(copy))?;
        }
        state::with_state(&dir, |st| {
            st.model_dir = model_dir.display().to_string();
            if adopt.is_none() {
                // Each new unit on a machine of its own (JUJU_MACHINE_ID).
                st.machine_id = unit_number(&name).to_string();
            }
            if o.exec_prefix.is_some() {
                st.exec_prefix = o.exec_prefix.clone();
            }
            Ok(())
        })?;
        m.units.insert(
            name.clone(),
            ModelUnit {
                name: name.clone(),
                dir: dir.display().to_string(),
                address: address.clone(),
                life: model::ALIVE.to_string(),
                ..Default::default()
            },
        );
        m.addresses.insert(name.clone(), address);
        let leads = m.leader.is_empty();
        if leads {
            m.leader = name.clone();
        }
        queue_new_unit(m, &name, leads);
        Ok((name, dir))
    })?;
    let m = model::load(model_dir)?;
    crate::model::projection::push(model_dir, &m, &name)?;
    Ok((name, dir))
}

fn queue_new_unit(m: &mut Model, name: &str, leads: bool) {
    let rels = live_relations(m);
    m.queue.push(Event::new(name, "install"));
    for rid in &rels {
        enter(m, *rid, name);
        let (ep, app) = endpoint_and_app(m, *rid);
        m.queue
            .push(Event::relation(name, &ep, "created", *rid).app(&app));
    }
    m.queue.push(Event::new(
        name,
        if leads {
            "leader-elected"
        } else {
            "leader-settings-changed"
        },
    ));
    m.queue.push(Event::new(name, "config-changed"));
    m.queue.push(Event::new(name, "start"));
    // Remote units of the other relations first, then the peers.
    let mut joins = rels.clone();
    joins.sort_by_key(|id| (m.relations[id].is_peer(), *id));
    for rid in &joins {
        let r = m.relations[rid].clone();
        let (ep, app) = endpoint_and_app(m, *rid);
        if r.is_peer() {
            for other in m.listeners(*rid, name) {
                join(m, name, &ep, *rid, &other, &app);
                join(m, &other, &ep, *rid, name, &app);
            }
        } else {
            for ru in &r.remote_units {
                join(m, name, &ep, *rid, ru, &app);
            }
        }
    }
}

/// The endpoint of `rid` and JUJU_REMOTE_APP for its hooks.
fn endpoint_and_app(m: &Model, rid: u32) -> (String, String) {
    let r = &m.relations[&rid];
    let app = if r.is_peer() {
        m.app.clone()
    } else {
        r.remote_app.clone()
    };
    (r.endpoint.clone(), app)
}

/// `-joined` then `-changed` of `remote` on `unit`.
fn join(m: &mut Model, unit: &str, ep: &str, rid: u32, remote: &str, app: &str) {
    for kind in ["joined", "changed"] {
        m.queue
            .push(Event::relation(unit, ep, kind, rid).remote(remote).app(app));
    }
}

/// Remove a unit. Queues on it: for every relation -departed per member (JUJU_DEPARTING_UNIT
/// = itself) then -broken, then stop, then remove (CONTRACT.md §4.2 teardown: relations
/// first); on the other units `<peer>-relation-departed`. A leaving leader hands over to the lowest-numbered
/// alive unit (leader-elected on it, leader-settings-changed on the others). The unit's bags
/// disappear when its `remove` hook has run (`settle::bury`).
pub fn remove_unit(model_dir: &Path, unit: &str) -> CmdResult<()> {
    with_model(model_dir, |m| {
        if !m.unit(unit)?.alive() {
            return Err(CmdError::runtime(format!(
                "unit {} is already being removed",
                q(unit)
            )));
        }
        m.units.get_mut(unit).expect("checked").life = model::DYING.to_string();
        let mut rids: Vec<u32> = m
            .relations
            .values()
            .filter(|r| r.views.contains_key(unit))
            .map(|r| r.id)
            .collect();
        rids.sort();
        for rid in &rids {
            let r = m.relations[rid].clone();
            let (ep, app) = endpoint_and_app(m, *rid);
            let mut members = r.views[unit].members.clone();
            if r.is_peer() {
                members.extend(r.views.keys().filter(|u| *u != unit).cloned());
            } else {
                members.extend(r.remote_units.iter().cloned());
            }
            for other in &members {
                m.queue.push(
                    Event::relation(unit, &ep, "departed", *rid)
                        .remote(other)
                        .app(&app)
                        .departing(unit),
                );
            }
            m.queue
                .push(Event::relation(unit, &ep, "broken", *rid).app(&app));
        }
        m.queue.push(Event::new(unit, "stop"));
        m.queue.push(Event::new(unit, "remove"));
        for rid in &rids {
            if !m.relations[rid].is_peer() {
                continue;
            }
            let (ep, app) = endpoint_and_app(m, *rid);
            for other in m.listeners(*rid, unit) {
                m.queue.push(
                    Event::relation(&other, &ep, "departed", *rid)
                        .remote(unit)
                        .app(&app)
                        .departing(unit),
                );
            }
        }
        if m.leader == unit {
            elect(m);
        }
        Ok(())
    })
}

/// Make `unit` the leader: leader-elected on it, leader-settings-changed on the others.
pub fn set_leader(model_dir: &Path, unit: &str) -> CmdResult<()> {
    with_model(model_dir, |m| {
        if !m.unit(unit)?.alive() {
            return Err(CmdError::runtime(format!(
                "unit {} is being removed",
                q(unit)
            )));
        }
        if m.leader != unit {
            m.leader = unit.to_string();
            announce_leader(m, unit);
        }
        Ok(())
    })
}

/// The effective config (set values and non-null defaults).
pub fn config_view(m: &Model) -> serde_json::Map<String, serde_json::Value> {
    let mut out = serde_json::Map::new();
    for (k, opt) in &m.config_schema {
        if let Some(v) = m.config.get(k).or(opt.default.as_ref()) {
            out.insert(k.clone(), v.clone());
        }
    }
    out
}

/// `juju config`: set and reset options; config-changed on every alive unit when the
/// effective config changed. Returns whether it did.
pub fn set_config(model_dir: &Path, kvs: &[String], resets: &[String]) -> CmdResult<bool> {
    with_model(model_dir, |m| {
        let before = config_view(m);
        for kv in kvs {
            let (k, raw) = kv
                .split_once('=')
                .ok_or_else(|| CmdError::usage(format!("expected \"key=value\", got {}", q(kv))))?;
            let opt = m
                .config_schema
                .get(k)
                .ok_or_else(|| CmdError::usage(format!("unknown option {}", q(k))))?;
            let v = charm::parse_config_value(&opt.kind, raw)
                .map_err(|e| CmdError::usage(format!("option {}: {e}", q(k))))?;
            m.config.insert(k.to_string(), v);
        }
        for r in resets {
            if !m.config_schema.contains_key(r) {
                return Err(CmdError::usage(format!("unknown option {}", q(r))));
            }
            m.config.remove(r);
        }
        let changed = config_view(m) != before;
        if changed {
            for u in m.alive_units() {
                m.queue.push(Event::new(&u, "config-changed"));
            }
        }
        Ok(changed)
    })
}

/// `juju attach-resource`: the file becomes resource `name` of every unit (and of units
/// added later), and every alive unit runs the upgrade sequence of a machine charm
/// (CONTRACT.md §4.2): upgrade-charm → config-changed → leader-settings-changed (not on the
/// leader) → start.
pub fn attach_resource(model_dir: &Path, name: &str, src: &Path) -> CmdResult<()> {
    if !src.is_file() {
        return Err(CmdError::runtime(format!(
            "{}: no such file",
            src.display()
        )));
    }
    with_model(model_dir, |m| {
        if !m.resource_meta.contains_key(name) {
            return Err(CmdError::usage(format!(
                "resource {} is not declared in metadata.yaml",
                q(name)
            )));
        }
        let store = model_dir.join("resources").join(name);
        std::fs::create_dir_all(&store)?;
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let copy = store.join(format!("revision-{stamp}"));
        std::fs::copy(src, &copy)?;
        if let Some(old) = m
            .resources
            .insert(name.to_owned(), copy.display().to_string())
        {
            let _ = std::fs::remove_file(old);
        }
        for u in m.alive_units() {
            setup::attach_resource(Path::new(&m.units[&u].dir), name, &copy)?;
            m.queue.push(Event::new(&u, "upgrade-charm"));
            m.queue.push(Event::new(&u, "config-changed"));
            if m.leader != u {
                m.queue.push(Event::new(&u, "leader-settings-changed"));
            }
            m.queue.push(Event::new(&u, "start"));
        }
        Ok(())
    })
}

/// `juju integrate`: a new relation on `endpoint` with `remote_app`; -created on every alive
/// unit. Returns its id.
pub fn relate(model_dir: &Path, endpoint: &str, remote_app: &str) -> CmdResult<u32> {
    with_model(model_dir, |m| {
        let ep = m.endpoints.get(endpoint).cloned().ok_or_else(|| {
            CmdError::usage(format!(
                "endpoint {} is not defined in metadata.yaml",
                q(endpoint)
            ))
        })?;
        if ep.role == "peers" {
            return Err(CmdError::usage(format!(
                "{} is a peer endpoint: its relation exists from the start",
                q(endpoint)
            )));
        }
        if remote_app.is_empty() || remote_app.contains('/') || remote_app == m.app {
            return Err(CmdError::usage(format!(
                "invalid remote application {}",
                q(remote_app)
            )));
        }
        let rid = add_relation(m, endpoint, remote_app);
        for u in m.alive_units() {
            enter(m, rid, &u);
            m.queue
                .push(Event::relation(&u, endpoint, "created", rid).app(remote_app));
        }
        Ok(rid)
    })
}

/// A live non-peer relation for a remote-side command.
fn remote_relation(m: &Model, rel: &str) -> CmdResult<u32> {
    let rid = m.relation_id(rel)?;
    let r = &m.relations[&rid];
    if r.is_peer() {
        return Err(CmdError::usage(format!(
            "{} is the peer relation: its other side is our own units",
            q(&r.name())
        )));
    }
    if r.dying {
        return Err(CmdError::runtime(format!(
            "relation {} is being removed",
            q(&r.name())
        )));
    }
    Ok(rid)
}

/// Apply `key=value` pairs ("" deletes); returns whether the bag changed.
fn apply_pairs(bag: &mut Bag, pairs: BTreeMap<String, String>) -> bool {
    let before = bag.clone();
    for (k, v) in pairs {
        if v.is_empty() {
            bag.remove(&k);
        } else {
            bag.insert(k, v);
        }
    }
    *bag != before
}

/// A remote unit writes its bag: joins first if new (-joined then -changed on every unit of
/// ours in the relation), else -changed if the bag changed.
pub fn remote_set(
    model_dir: &Path,
    rel: &str,
    unit: &str,
    kvs: &[String],
    address: Option<&str>,
) -> CmdResult<u32> {
    let (app, _) = setup::split_unit(unit)?;
    let pairs = keyvalue::parse_pairs(kvs)?;
    with_model(model_dir, |m| {
        let rid = remote_relation(m, rel)?;
        let remote_app = m.relations[&rid].remote_app.clone();
        if app != remote_app {
            return Err(CmdError::usage(format!(
                "unit {} is not a unit of the remote application {}",
                q(unit),
                q(&remote_app)
            )));
        }
        let addr = m.remote_address(unit, address);
        let r = m.relations.get_mut(&rid).expect("resolved");
        let new = r.remote_units.insert(unit.to_string());
        let bag = r.unit_bags.entry(unit.to_string()).or_default();
        let before = bag.clone();
        for (k, v) in address_bag(&addr) {
            if address.is_some() {
                bag.insert(k, v);
            } else {
                bag.entry(k).or_insert(v);
            }
        }
        apply_pairs(bag, pairs);
        let changed = *bag != before;
        let ep = r.endpoint.clone();
        for u in m.listeners(rid, "") {
            if new {
                join(m, &u, &ep, rid, unit, &remote_app);
            } else if changed {
                m.queue.push(
                    Event::relation(&u, &ep, "changed", rid)
                        .remote(unit)
                        .app(&remote_app),
                );
            }
        }
        Ok(rid)
    })
}

/// The remote application's leader writes its app bag: -changed with JUJU_REMOTE_UNIT=""
/// on every unit of ours in the relation.
pub fn remote_app_set(model_dir: &Path, rel: &str, kvs: &[String]) -> CmdResult<()> {
    let pairs = keyvalue::parse_pairs(kvs)?;
    with_model(model_dir, |m| {
        let rid = remote_relation(m, rel)?;
        let r = m.relations.get_mut(&rid).expect("resolved");
        let changed = apply_pairs(&mut r.remote_app_bag, pairs);
        let (ep, app) = (r.endpoint.clone(), r.remote_app.clone());
        if changed {
            for u in m.listeners(rid, "") {
                m.queue.push(
                    Event::relation(&u, &ep, "changed", rid)
                        .remote("")
                        .app(&app),
                );
            }
        }
        Ok(())
    })
}

/// A remote unit leaves the relation: -departed on every unit of ours (its bag stays
/// readable while the relation exists).
pub fn remote_leave(model_dir: &Path, rel: &str, unit: &str) -> CmdResult<()> {
    with_model(model_dir, |m| {
        let rid = remote_relation(m, rel)?;
        let r = m.relations.get_mut(&rid).expect("resolved");
        if !r.remote_units.remove(unit) {
            return Err(CmdError::runtime(format!(
                "unit {} is not in relation {}",
                q(unit),
                q(&r.name())
            )));
        }
        let (ep, app) = (r.endpoint.clone(), r.remote_app.clone());
        for u in m.listeners(rid, "") {
            m.queue.push(
                Event::relation(&u, &ep, "departed", rid)
                    .remote(unit)
                    .app(&app)
                    .departing(unit),
            );
        }
        Ok(())
    })
}

/// `juju remove-relation`: on every unit of ours -departed for each remote unit still in it,
/// then -broken (CONTRACT.md §4.2); the relation goes once every unit has run -broken.
pub fn relation_break(model_dir: &Path, rel: &str) -> CmdResult<()> {
    with_model(model_dir, |m| {
        let rid = remote_relation(m, rel)?;
        let r = m.relations.get_mut(&rid).expect("resolved");
        r.dying = true;
        let members = std::mem::take(&mut r.remote_units);
        let (ep, app) = (r.endpoint.clone(), r.remote_app.clone());
        let listeners = m.listeners(rid, "");
        for u in &listeners {
            for ru in &members {
                m.queue.push(
                    Event::relation(u, &ep, "departed", rid)
                        .remote(ru)
                        .app(&app)
                        .departing(ru),
                );
            }
            m.queue
                .push(Event::relation(u, &ep, "broken", rid).app(&app));
        }
        if listeners.is_empty() {
            m.relations.remove(&rid);
        }
        Ok(())
    })
}

/// A remote application's secret, granted to relations of ours (what a database provider
/// sends as `secret-user`, CONTRACT.md §5.4). The owner defaults to
/// the remote application of the first relation. Returns the URI.
pub fn remote_secret_add(
    model_dir: &Path,
    owner: Option<&str>,
    grants: &[String],
    kvs: &[String],
) -> CmdResult<String> {
    if grants.is_empty() {
        return Err(CmdError::usage("--grant REL is required"));
    }
    if kvs.is_empty() {
        return Err(CmdError::usage("missing secret value"));
    }
    let content = secrets::parse_content_args(kvs)?;
    with_model(model_dir, |m| {
        let mut rids = std::collections::BTreeSet::new();
        for g in grants {
            rids.insert(remote_relation(m, g)?);
        }
        let first = m.relations[rids.iter().next().expect("one")]
            .remote_app
            .clone();
        let owner = owner.unwrap_or(&first).to_string();
        if owner == m.app || owner.contains('/') || owner.is_empty() {
            return Err(CmdError::usage(format!(
                "invalid owner {} (a remote application)",
                q(&owner)
            )));
        }
        if let Some(r) = rids.iter().find(|r| m.relations[r].remote_app != owner) {
            return Err(CmdError::usage(format!(
                "relation {} is not with {}",
                q(&m.relations[r].name()),
                q(&owner)
            )));
        }
        let id = secrets::new_id(|id| m.secrets.contains_key(id));
        let s = Secret {
            id: id.clone(),
            owner: "application".into(),
            owner_id: owner,
            rotate: "never".into(),
            revisions: vec![SecretRevision {
                revision: 1,
                content,
            }],
            grants: rids,
            ..Default::default()
        };
        let uri = s.uri();
        m.secrets.insert(id, s);
        Ok(uri)
    })
}

/// A secret someone else owns (a remote application or the model) gets a new revision:
/// `secret-changed` (with the unit's own label, if it gave one) on every unit of ours that
/// tracks an older one. Same content as the latest: no new revision, no hook.
fn new_revision_for_trackers(m: &mut Model, id: &str, content: BTreeMap<String, String>) {
    let s = m.secrets.get_mut(id).expect("the caller found it");
    if s.latest_content() == content {
        return;
    }
    let latest = s.latest_revision() + 1;
    s.revisions.push(SecretRevision {
        revision: latest,
        content,
    });
    let uri = s.uri();
    for u in m.alive_units() {
        if let Some(t) = m.units[&u].secret_tracking.get(id) {
            if t.revision < latest {
                let label = t.label.clone();
                m.queue
                    .push(Event::new(&u, "secret-changed").secret(&uri, &label));
            }
        }
    }
}

/// A new revision of a remote application's secret (see `new_revision_for_trackers`).
pub fn remote_secret_set(model_dir: &Path, uri: &str, kvs: &[String]) -> CmdResult<()> {
    let id = secrets::parse_uri(uri).ok_or_else(|| secrets::bad_uri(uri))?;
    if kvs.is_empty() {
        return Err(CmdError::usage("missing secret value"));
    }
    let content = secrets::parse_content_args(kvs)?;
    with_model(model_dir, |m| {
        let app = m.app.clone();
        m.secrets
            .get(&id)
            .filter(|s| s.owner != "unit" && s.owner_id != app)
            .ok_or_else(|| {
                CmdError::runtime(format!(
                    "secret {} is not a remote application's secret",
                    q(uri)
                ))
            })?;
        new_revision_for_trackers(m, &id, content);
        Ok(())
    })
}

/// The user secret named `what` (its name or URI).
fn user_secret_id(m: &Model, what: &str) -> CmdResult<String> {
    let by_uri = secrets::parse_uri(what).filter(|id| m.secrets.contains_key(id));
    by_uri
        .or_else(|| {
            m.secrets
                .values()
                .find(|s| s.owner == "model" && s.label == what)
                .map(|s| s.id.clone())
        })
        .filter(|id| m.secrets[id].owner == "model")
        .ok_or_else(|| CmdError::runtime(format!("secret {} not found", q(what))))
}

/// `juju add-secret NAME key=value…` (CONTRACT.md §5.5): a user secret, owned by the model,
/// granted to nobody. Returns the URI.
pub fn user_secret_add(model_dir: &Path, name: &str, kvs: &[String]) -> CmdResult<String> {
    let valid_name = name.starts_with(|c: char| c.is_ascii_lowercase())
        && !name.ends_with('-')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !valid_name {
        return Err(CmdError::usage(format!(
            "secret name {} not valid",
            q(name)
        )));
    }
    if kvs.is_empty() {
        return Err(CmdError::usage("missing secret value"));
    }
    let content = secrets::parse_content_args(kvs)?;
    with_model(model_dir, |m| {
        if m.secrets
            .values()
            .any(|s| s.owner == "model" && s.label == name)
        {
            return Err(CmdError::runtime(format!(
                "secret with name {} already exists",
                q(name)
            )));
        }
        let id = secrets::new_id(|id| m.secrets.contains_key(id));
        let s = Secret {
            id: id.clone(),
            owner: "model".into(),
            owner_id: m.name.clone(),
            label: name.to_owned(),
            rotate: "never".into(),
            revisions: vec![SecretRevision {
                revision: 1,
                content,
            }],
            ..Default::default()
        };
        let uri = s.uri();
        m.secrets.insert(id, s);
        Ok(uri)
    })
}

/// `juju update-secret`: a new revision (see `new_revision_for_trackers`); the leader is
/// told like every other unit that tracks it.
pub fn user_secret_update(model_dir: &Path, what: &str, kvs: &[String]) -> CmdResult<()> {
    if kvs.is_empty() {
        return Err(CmdError::usage("missing secret value"));
    }
    let content = secrets::parse_content_args(kvs)?;
    with_model(model_dir, |m| {
        let id = user_secret_id(m, what)?;
        new_revision_for_trackers(m, &id, content);
        Ok(())
    })
}

/// `juju grant-secret` / `juju revoke-secret` to our application: no hook runs.
pub fn user_secret_grant(model_dir: &Path, what: &str, app: &str, grant: bool) -> CmdResult<()> {
    with_model(model_dir, |m| {
        if app != m.app {
            return Err(CmdError::runtime(format!(
                "application {} not found",
                q(app)
            )));
        }
        let id = user_secret_id(m, what)?;
        m.secrets.get_mut(&id).expect("found").granted_to_app = grant;
        Ok(())
    })
}

/// `juju remove-secret`: gone for every reader; no hook runs (not verified, §5.5).
pub fn user_secret_remove(model_dir: &Path, what: &str) -> CmdResult<()> {
    with_model(model_dir, |m| {
        let id = user_secret_id(m, what)?;
        m.secrets.remove(&id);
        for u in m.units.values_mut() {
            u.secret_tracking.remove(&id);
        }
        Ok(())
    })
}
