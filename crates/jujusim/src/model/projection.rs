//! A model unit's view of the shared model, in and out of its unit dir: before a hook the
//! model is projected into `U/state.json` (so every hook tool works on it unchanged), after
//! it what the unit changed (its committed journal, immediate writes such as leader-set) is
//! folded back into the model, queueing the events Juju would deliver for those changes.

use crate::agent::state::{self, Relation, Secret, State};
use crate::errors::CmdResult;
use crate::model::queue::Event;
use crate::model::{self, Model, ModelRelation};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The projection written by the last push (the base the next pull compares with).
const BASE: &str = "model-base.json";

/// `rel` as `unit` sees it, if the unit is in it (has a view).
fn project_relation(m: &Model, r: &ModelRelation, unit: &str) -> Option<Relation> {
    let v = r.views.get(unit)?;
    // The other members' bags: in a peer relation our other units, else the remote units.
    let unit_bags = r
        .unit_bags
        .iter()
        .filter(|(u, _)| u.as_str() != unit && m.is_ours(u) == r.is_peer())
        .map(|(u, b)| (u.clone(), b.clone()))
        .collect();
    Some(Relation {
        id: r.id,
        endpoint: r.endpoint.clone(),
        interface: r.interface.clone(),
        role: r.role.clone(),
        remote_app: if r.is_peer() {
            m.app.clone()
        } else {
            r.remote_app.clone()
        },
        members: v.members.clone(),
        unit_bags,
        remote_app_bag: if r.is_peer() {
            Default::default()
        } else {
            r.remote_app_bag.clone()
        },
        local_unit_bag: r.unit_bags.get(unit).cloned().unwrap_or_default(),
        local_app_bag: r.app_bag.clone(),
        // CONTRACT.md §3.2: a dying relation with no members left is no longer listed.
        broken: v.broken || (r.dying && v.members.is_empty()),
        created_run: v.created_run,
    })
}

/// Whether `s` belongs to our application or one of our units.
fn ours(m: &Model, s: &Secret) -> bool {
    match s.owner.as_str() {
        "unit" => m.is_ours(&s.owner_id),
        "model" => false,
        _ => s.owner_id == m.app,
    }
}

/// Overwrite the shared fields of `st` (unit `unit` of the model in `model_dir`) with the
/// model's view of them; unit-local fields (statuses, ports, unit state, logs, charm dir,
/// exec prefix, resources) are left alone.
pub fn project(m: &Model, model_dir: &Path, unit: &str, st: &mut State) {
    let mu = &m.units[unit];
    st.model_dir = model_dir.display().to_string();
    st.unit = unit.to_string();
    st.app = m.app.clone();
    st.model = m.name.clone();
    st.model_uuid = m.uuid.clone();
    st.leader = m.leader == unit;
    st.address = mu.address.clone();
    st.endpoints = m.endpoints.clone();
    st.extra_bindings = m.extra_bindings.clone();
    st.resource_meta = m.resource_meta.clone();
    st.config_schema = m.config_schema.clone();
    st.config = m.config.clone();
    st.actions = m.actions.clone();
    st.leader_settings = m.leader_settings.clone();
    st.app_status = m.app_status.clone();
    st.next_relation_id = m.next_relation_id;
    st.remote_addresses = m.addresses.clone();
    st.next_remote_host = m.next_remote_host;
    st.relations = m
        .relations
        .values()
        .filter_map(|r| project_relation(m, r, unit))
        .map(|r| (r.id, r))
        .collect();
    let rels = &st.relations;
    st.secrets = m
        .secrets
        .values()
        .filter(|s| {
            ours(m, s) || s.owner == "model" || s.grants.iter().any(|r| rels.contains_key(r))
        })
        .map(|s| (s.id.clone(), s.clone()))
        .collect();
    st.secret_tracking = mu.secret_tracking.clone();
}

/// The keys whose value differs from `base` to `after`: Some(new value) or None (deleted).
fn diff<V: Clone + PartialEq>(
    base: &BTreeMap<String, V>,
    after: &BTreeMap<String, V>,
) -> Vec<(String, Option<V>)> {
    let mut out: Vec<(String, Option<V>)> = after
        .iter()
        .filter(|(k, v)| base.get(*k) != Some(*v))
        .map(|(k, v)| (k.clone(), Some(v.clone())))
        .collect();
    out.extend(
        base.keys()
            .filter(|k| !after.contains_key(*k))
            .map(|k| (k.clone(), None)),
    );
    out
}

/// Apply `changes`; returns whether `target` changed.
fn apply<V: Clone + PartialEq>(
    target: &mut BTreeMap<String, V>,
    changes: Vec<(String, Option<V>)>,
) -> bool {
    let before = target.clone();
    for (k, v) in changes {
        match v {
            Some(v) => {
                target.insert(k, v);
            }
            None => {
                target.remove(&k);
            }
        }
    }
    *target != before
}

/// Fold into the model what `unit` changed from `base` (the projection pushed before the
/// hook) to `after` (its state now), and queue the events of CONTRACT.md §3.5/§3.10/§5.3
/// (listed together in CONTRACT.md §6):
/// - its unit bag in a peer relation → `<peer>-relation-changed` (JUJU_REMOTE_UNIT = it) on
///   the other units; the peer app bag → the same with JUJU_REMOTE_UNIT="" (the writer never
///   hears of its own write); bags of non-peer relations go to the remote side (the test);
/// - leader settings → leader-settings-changed on the others;
/// - a new revision of an application secret → secret-changed on the other units tracking
///   an older revision, never on the leader (juju#19035).
///
/// Only what changed between base and after is written, so concurrent changes by others
/// (the driver, another unit) are kept.
pub fn absorb(m: &mut Model, unit: &str, base: &State, after: &State) {
    if !m.units.contains_key(unit) {
        return;
    }
    let writer_alive = m.units[unit].alive();
    let mut events = Vec::new();

    let others: Vec<String> = m.alive_units().into_iter().filter(|u| u != unit).collect();
    if apply(
        &mut m.leader_settings,
        diff(&base.leader_settings, &after.leader_settings),
    ) {
        events.extend(
            others
                .iter()
                .map(|u| Event::new(u, "leader-settings-changed")),
        );
    }
    if after.app_status != base.app_status {
        m.app_status = after.app_status.clone();
    }

    let our_units: Vec<String> = m.units.keys().cloned().collect();
    let mut woken = Vec::new();
    for (rid, b) in &base.relations {
        let Some(rel) = m.relations.get_mut(rid) else {
            continue;
        };
        let Some(a) = after.relations.get(rid) else {
            // Its -broken committed: the unit has left the relation.
            rel.views.remove(unit);
            continue;
        };
        if let Some(v) = rel.views.get_mut(unit) {
            if a.members != b.members {
                v.members = a.members.clone();
            }
            if a.created_run != b.created_run {
                v.created_run = a.created_run;
            }
            if a.broken != b.broken {
                v.broken = a.broken;
            }
        }
        let own = apply(
            rel.unit_bags.entry(unit.to_string()).or_default(),
            diff(&b.local_unit_bag, &a.local_unit_bag),
        );
        let app = apply(&mut rel.app_bag, diff(&b.local_app_bag, &a.local_app_bag));
        if !rel.is_peer() {
            // A remote unit joined by hand (`jujusim hook U <ep>-relation-joined --remote-unit`).
            for (ru, bag) in &a.unit_bags {
                if !rel.unit_bags.contains_key(ru) && !our_units.contains(ru) {
                    rel.unit_bags.insert(ru.clone(), bag.clone());
                    rel.remote_units.insert(ru.clone());
                }
            }
        }
        if rel.is_peer() && writer_alive {
            woken.push((*rid, rel.endpoint.clone(), own, app));
        }
    }
    for (rid, ep, own, app) in woken {
        for u in m.listeners(rid, unit) {
            if own {
                events.push(
                    Event::relation(&u, &ep, "changed", rid)
                        .remote(unit)
                        .app(&m.app),
                );
            }
            if app {
                events.push(
                    Event::relation(&u, &ep, "changed", rid)
                        .remote("")
                        .app(&m.app),
                );
            }
        }
    }
    m.relations.retain(|_, r| !(r.dying && r.views.is_empty()));

    // Secrets this unit may have changed: its application's and its own.
    let mine = |s: &Secret| match s.owner.as_str() {
        "unit" => s.owner_id == unit,
        "model" => false,
        _ => s.owner_id == after.app,
    };
    for (id, a) in after.secrets.iter().filter(|(_, s)| mine(s)) {
        let b = base.secrets.get(id);
        if b == Some(a) {
            continue;
        }
        let bumped = b.is_some_and(|b| a.latest_revision() > b.latest_revision());
        m.secrets.insert(id.clone(), a.clone());
        if bumped && a.owner != "unit" {
            let latest = a.latest_revision();
            for u in &others {
                if *u == m.leader {
                    continue;
                }
                let older = m.units[u]
                    .secret_tracking
                    .get(id)
                    .is_some_and(|t| t.revision < latest);
                if older {
                    events.push(Event::new(u, "secret-changed").secret(&a.uri(), &a.label));
                }
            }
        }
    }
    for id in base
        .secrets
        .iter()
        .filter(|(id, s)| mine(s) && !after.secrets.contains_key(*id))
        .map(|(id, _)| id.clone())
        .collect::<Vec<_>>()
    {
        m.secrets.remove(&id);
        for u in m.units.values_mut() {
            u.secret_tracking.remove(&id);
        }
    }
    if let Some(mu) = m.units.get_mut(unit) {
        apply(
            &mut mu.secret_tracking,
            diff(&base.secret_tracking, &after.secret_tracking),
        );
    }

    for (u, a) in &after.remote_addresses {
        m.addresses.entry(u.clone()).or_insert_with(|| a.clone());
    }
    m.next_remote_host = m.next_remote_host.max(after.next_remote_host);
    for e in events {
        m.queue.push(e);
    }
}

/// Write the model's view of `unit` into its unit dir and keep it as the base of the next
/// pull; returns the unit dir.
pub fn push(model_dir: &Path, m: &Model, unit: &str) -> CmdResult<PathBuf> {
    let dir = PathBuf::from(&m.unit(unit)?.dir);
    let st = state::with_state(&dir, |st| {
        project(m, model_dir, unit, st);
        Ok(st.clone())
    })?;
    crate::util::write_atomic(&dir.join(BASE), serde_json::to_string(&st)?.as_bytes())?;
    Ok(dir)
}

/// Fold what the unit in `dir` changed since the last push into the model (once: the base
/// is consumed).
pub fn pull(model_dir: &Path, unit: &str, dir: &Path) -> CmdResult<()> {
    let base_path = dir.join(BASE);
    let Ok(text) = std::fs::read_to_string(&base_path) else {
        return Ok(());
    };
    let base: State = serde_json::from_str(&text)?;
    let after = {
        let _l = state::lock(dir)?;
        state::load(dir)?
    };
    model::with_model(model_dir, |m| {
        absorb(m, unit, &base, &after);
        Ok(())
    })?;
    let _ = std::fs::remove_file(base_path);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::state::{address_bag, SecretRevision, SecretTrack};
    use crate::model::{ModelUnit, RelationView, ALIVE, DYING};

    /// app/0 (leader), app/1, app/2 in peer relation cluster:0, and db:1 with mongo/0.
    fn model() -> Model {
        let mut m = Model {
            app: "app".into(),
            leader: "app/0".into(),
            ..Default::default()
        };
        let mut peer = ModelRelation {
            id: 0,
            endpoint: "cluster".into(),
            role: "peers".into(),
            remote_app: "app".into(),
            ..Default::default()
        };
        let mut db = ModelRelation {
            id: 1,
            endpoint: "db".into(),
            role: "requires".into(),
            remote_app: "mongo".into(),
            ..Default::default()
        };
        for n in 0..3 {
            let name = format!("app/{n}");
            let addr = format!("10.0.0.{}", 10 + n);
            m.units.insert(
                name.clone(),
                ModelUnit {
                    name: name.clone(),
                    address: addr.clone(),
                    life: ALIVE.into(),
                    ..Default::default()
                },
            );
            m.addresses.insert(name.clone(), addr.clone());
            let others = (0..3).filter(|o| *o != n).map(|o| format!("app/{o}"));
            peer.views.insert(
                name.clone(),
                RelationView {
                    members: others.collect(),
                    created_run: true,
                    broken: false,
                },
            );
            peer.unit_bags.insert(name.clone(), address_bag(&addr));
            db.views.insert(
                name.clone(),
                RelationView {
                    members: ["mongo/0".to_string()].into(),
                    created_run: true,
                    broken: false,
                },
            );
            db.unit_bags.insert(name.clone(), address_bag(&addr));
        }
        db.unit_bags
            .insert("mongo/0".into(), address_bag("10.0.1.1"));
        db.remote_units.insert("mongo/0".into());
        m.relations.insert(0, peer);
        m.relations.insert(1, db);
        m
    }

    fn view(m: &Model, unit: &str) -> State {
        let mut st = State::default();
        project(m, Path::new("/m"), unit, &mut st);
        st
    }

    fn queued(m: &Model) -> Vec<String> {
        m.queue
            .events
            .iter()
            .map(|e| format!("{} {} {}", e.unit, e.hook, e.context(None)))
            .collect()
    }

    #[test]
    fn projection_is_the_units_view() {
        let m = model();
        let st = view(&m, "app/1");
        assert!(!st.leader);
        assert_eq!(st.address, "10.0.0.11");
        let peer = &st.relations[&0];
        assert_eq!(peer.remote_app, "app");
        assert_eq!(
            peer.members.iter().collect::<Vec<_>>(),
            vec!["app/0", "app/2"]
        );
        assert_eq!(
            peer.unit_bags.keys().collect::<Vec<_>>(),
            vec!["app/0", "app/2"]
        );
        assert_eq!(peer.local_unit_bag["private-address"], "10.0.0.11");
        // A non-peer relation shows only the remote units' bags.
        let db = &st.relations[&1];
        assert_eq!(db.unit_bags.keys().collect::<Vec<_>>(), vec!["mongo/0"]);
        assert!(view(&m, "app/0").leader);
    }

    #[test]
    fn committed_bag_changes_wake_the_other_peers_only() {
        let mut m = model();
        let base = view(&m, "app/1");
        let mut after = base.clone();
        after
            .relations
            .get_mut(&0)
            .unwrap()
            .local_unit_bag
            .insert("k".into(), "v".into());
        after
            .relations
            .get_mut(&1)
            .unwrap()
            .local_unit_bag
            .insert("db-k".into(), "v".into());
        absorb(&mut m, "app/1", &base, &after);
        assert_eq!(m.relations[&0].unit_bags["app/1"]["k"], "v");
        assert_eq!(m.relations[&1].unit_bags["app/1"]["db-k"], "v");
        assert_eq!(
            queued(&m),
            vec![
                "app/0 cluster-relation-changed relation=0 remote-unit=app/1 remote-app=app",
                "app/2 cluster-relation-changed relation=0 remote-unit=app/1 remote-app=app",
            ]
        );
        // The leader's app-bag write: JUJU_REMOTE_UNIT="" on the others.
        let mut m = model();
        let base = view(&m, "app/0");
        let mut after = base.clone();
        after
            .relations
            .get_mut(&0)
            .unwrap()
            .local_app_bag
            .insert("k".into(), "v".into());
        absorb(&mut m, "app/0", &base, &after);
        assert_eq!(
            queued(&m),
            vec![
                "app/1 cluster-relation-changed relation=0 remote-unit= remote-app=app",
                "app/2 cluster-relation-changed relation=0 remote-unit= remote-app=app",
            ]
        );
        // A dying unit's writes wake nobody; dying units are not woken.
        let mut m = model();
        m.units.get_mut("app/2").unwrap().life = DYING.into();
        let base = view(&m, "app/2");
        let mut after = base.clone();
        after
            .relations
            .get_mut(&0)
            .unwrap()
            .local_unit_bag
            .insert("k".into(), "v".into());
        absorb(&mut m, "app/2", &base, &after);
        assert!(m.queue.events.is_empty());
        let base = view(&m, "app/0");
        let mut after = base.clone();
        after
            .relations
            .get_mut(&0)
            .unwrap()
            .local_unit_bag
            .insert("k".into(), "v".into());
        absorb(&mut m, "app/0", &base, &after);
        assert_eq!(queued(&m).len(), 1);
    }

    #[test]
    fn only_the_units_own_changes_are_written_back() {
        let mut m = model();
        let base = view(&m, "app/0");
        // Meanwhile others change the model: config, another unit's bag, a leader setting.
        m.config.insert("port".into(), serde_json::json!(1));
        m.relations
            .get_mut(&0)
            .unwrap()
            .unit_bags
            .get_mut("app/2")
            .unwrap()
            .insert("x".into(), "1".into());
        m.leader_settings.insert("a".into(), "1".into());
        let mut after = base.clone();
        after.leader_settings.insert("b".into(), "2".into());
        after.config.clear();
        absorb(&mut m, "app/0", &base, &after);
        assert_eq!(m.config["port"], 1);
        assert_eq!(m.relations[&0].unit_bags["app/2"]["x"], "1");
        assert_eq!(m.leader_settings.len(), 2);
        assert_eq!(
            queued(&m),
            vec![
                "app/1 leader-settings-changed ",
                "app/2 leader-settings-changed "
            ]
        );
        // The -broken hook committed: the unit leaves the relation's views; once no unit is
        // left in a dying relation it is gone.
        let mut m = model();
        m.relations.get_mut(&1).unwrap().dying = true;
        for u in ["app/0", "app/1", "app/2"] {
            let base = view(&m, u);
            let mut after = base.clone();
            after.relations.remove(&1);
            absorb(&mut m, u, &base, &after);
        }
        assert!(!m.relations.contains_key(&1));
    }

    #[test]
    fn a_new_revision_of_an_app_secret_wakes_older_trackers_but_not_the_leader() {
        let mut m = model();
        let rev = |r: u32| SecretRevision {
            revision: r,
            content: [("k".to_string(), format!("v{r}"))].into(),
        };
        let id = "0123456789abcdefghij".to_string();
        m.secrets.insert(
            id.clone(),
            Secret {
                id: id.clone(),
                owner: "application".into(),
                owner_id: "app".into(),
                label: "app.secret".into(),
                revisions: vec![rev(1)],
                ..Default::default()
            },
        );
        for (u, r) in [("app/0", 1), ("app/1", 1)] {
            m.units.get_mut(u).unwrap().secret_tracking.insert(
                id.clone(),
                SecretTrack {
                    revision: r,
                    label: String::new(),
                },
            );
        }
        let base = view(&m, "app/0");
        let mut after = base.clone();
        after.secrets.get_mut(&id).unwrap().revisions.push(rev(2));
        absorb(&mut m, "app/0", &base, &after);
        assert_eq!(m.secrets[&id].latest_revision(), 2);
        // app/2 never read it; app/0 is the leader.
        assert_eq!(
            queued(&m),
            vec!["app/1 secret-changed secret=secret:0123456789abcdefghij secret-label=app.secret"]
        );
        // Removing it drops every unit's tracking.
        let base = view(&m, "app/0");
        let mut after = base.clone();
        after.secrets.remove(&id);
        absorb(&mut m, "app/0", &base, &after);
        assert!(m.secrets.is_empty());
        assert!(m.units.values().all(|u| u.secret_tracking.is_empty()));
    }
}
