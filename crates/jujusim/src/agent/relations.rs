//! Relation semantics shared by the tools: `-r` resolution, relation-ids/-list membership, relation-get targets and bag permissions.

use crate::agent::journal::Journal;
use crate::agent::state::{Bag, State};
use crate::errors::{q, CmdError, CmdResult};

/// The integer after the last `:` of `db:7` or `7`.
pub fn parse_id(v: &str) -> Option<u32> {
    let digits = v.rsplit(':').next().unwrap_or(v);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Resolve a `-r` value against the model: non-numeric → `invalid relation id`, unknown →
/// `relation not found` (both usage errors, exit 2). Broken relations still resolve.
pub fn resolve_id(st: &State, v: &str) -> CmdResult<u32> {
    let id = parse_id(v).ok_or_else(|| {
        CmdError::usage(format!(
            "invalid value {} for flag -r: invalid relation id",
            q(v)
        ))
    })?;
    if st.relations.contains_key(&id) {
        Ok(id)
    } else {
        Err(CmdError::usage(format!(
            "invalid value {} for flag -r: relation not found",
            q(v)
        )))
    }
}

/// The relation id for a tool call: `-r` if given, else the hook's JUJU_RELATION_ID, else
/// `no relation id specified` (exit 2).
pub fn current_id(st: &State, flag: Option<&str>, env_rel: Option<&str>) -> CmdResult<u32> {
    match (flag, env_rel) {
        (Some(v), _) => resolve_id(st, v),
        (None, Some(v)) if !v.is_empty() => resolve_id(st, v),
        _ => Err(CmdError::usage("no relation id specified")),
    }
}

/// relation-ids: live (not broken) relations on `endpoint`, `<ep>:<id>`, sorted as strings.
pub fn relation_ids(st: &State, endpoint: &str) -> Vec<String> {
    let mut ids: Vec<String> = st
        .relations
        .values()
        .filter(|r| r.endpoint == endpoint && !r.broken)
        .map(|r| r.name())
        .collect();
    ids.sort();
    ids
}

/// relation-list: current remote members sorted as strings; empty once broken.
pub fn members(st: &State, rid: u32) -> Vec<String> {
    match st.relations.get(&rid) {
        Some(r) if !r.broken => {
            let mut m: Vec<String> = r.members.iter().cloned().collect();
            m.sort();
            m
        }
        _ => Vec::new(),
    }
}

/// Whose bag relation-get reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Unit(String),
    App(String),
}

/// relation-get target resolution (CONTRACT.md §3.4): explicit 2nd positional wins (with `--app`
/// a unit name becomes its app; an app name is accepted without `--app`, like 3.x); else
/// `--app` → JUJU_REMOTE_APP; else JUJU_REMOTE_UNIT; if empty the remote app; else exit 2.
pub fn resolve_target(
    explicit: Option<&str>,
    app: bool,
    remote_unit: Option<&str>,
    remote_app: Option<&str>,
) -> CmdResult<Target> {
    let none = || CmdError::usage("no unit or application specified");
    if let Some(name) = explicit.filter(|s| !s.is_empty()) {
        return Ok(match name.split_once('/') {
            Some((a, _)) if app => Target::App(a.to_string()),
            Some(_) => Target::Unit(name.to_string()),
            None => Target::App(name.to_string()),
        });
    }
    let remote_unit = remote_unit.filter(|s| !s.is_empty());
    let remote_app = remote_app.filter(|s| !s.is_empty());
    if app {
        return remote_app
            .map(|a| Target::App(a.to_string()))
            .ok_or_else(none);
    }
    if let Some(u) = remote_unit {
        return Ok(Target::Unit(u.to_string()));
    }
    remote_app
        .map(|a| Target::App(a.to_string()))
        .ok_or_else(none)
}

/// Read a bag for relation-get, with this hook's pending writes for own bags and the
/// own-app-bag permission rule (non-leader in a non-peer relation → permission denied).
pub fn read_bag(st: &State, j: &Journal, rid: u32, target: &Target) -> CmdResult<Bag> {
    let rel = st
        .relations
        .get(&rid)
        .ok_or_else(|| CmdError::usage("relation not found"))?;
    match target {
        Target::Unit(u) if *u == st.unit => Ok(j.local_unit_bag(st, rid)),
        Target::Unit(u) => rel.unit_bags.get(u).cloned().ok_or_else(|| {
            CmdError::runtime(format!(
                "cannot read settings for unit {} in relation {}: unit {}: settings not found",
                q(u),
                q(&rel.name()),
                q(u)
            ))
        }),
        Target::App(a) if *a == st.app => {
            if !st.leader && !rel.is_peer() {
                return Err(CmdError::runtime("permission denied"));
            }
            Ok(j.local_app_bag(st, rid))
        }
        Target::App(a) if *a == rel.remote_app => Ok(rel.remote_app_bag.clone()),
        Target::App(a) => Err(CmdError::runtime(format!(
            "cannot read settings for application {} in relation {}: permission denied",
            q(a),
            q(&rel.name())
        ))),
    }
}

/// relation-set permission: the app bag needs leadership.
pub fn check_write(st: &State, app: bool) -> CmdResult<()> {
    if app && !st.leader {
        return Err(CmdError::runtime("cannot write relation settings"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn model(leader: bool) -> State {
        let mut s = State {
            unit: "parse-server/0".into(),
            app: "parse-server".into(),
            address: "10.0.0.10".into(),
            leader,
            ..Default::default()
        };
        for _ in 0..11 {
            s.add_relation("db", "mongo");
        }
        s
    }

    #[test]
    fn ids_sorted_as_strings_and_broken_hidden() {
        let mut s = model(true);
        s.relations.get_mut(&5).unwrap().broken = true;
        let ids = relation_ids(&s, "db");
        assert_eq!(ids[0], "db:0");
        assert_eq!(ids[1], "db:1");
        assert_eq!(ids[2], "db:10");
        assert_eq!(ids[3], "db:2");
        assert!(!ids.contains(&"db:5".to_string()));
        assert!(relation_ids(&s, "nope").is_empty());
        // -r still resolves the broken one.
        assert_eq!(resolve_id(&s, "db:5"), Ok(5));
    }

    #[test]
    fn id_resolution_errors() {
        let s = model(true);
        assert_eq!(resolve_id(&s, "7"), Ok(7));
        let e = resolve_id(&s, "db:99").unwrap_err();
        assert_eq!(e.code, 2);
        assert!(e.msg.contains("relation not found"));
        let e = resolve_id(&s, "db:x").unwrap_err();
        assert_eq!(e.code, 2);
        assert!(e.msg.contains("invalid relation id"));
        assert_eq!(
            current_id(&s, None, None).unwrap_err().msg,
            "no relation id specified"
        );
        assert_eq!(current_id(&s, None, Some("db:3")), Ok(3));
        assert_eq!(current_id(&s, Some("db:4"), Some("db:3")), Ok(4));
    }

    #[test]
    fn membership_joined_departed_broken() {
        let mut s = model(true);
        // -joined: the driver adds the joining unit before the hook runs.
        s.add_member(0, "mongo/10", None);
        s.add_member(0, "mongo/2", None);
        assert_eq!(members(&s, 0), vec!["mongo/10", "mongo/2"]);
        // -departed: the departing unit is already excluded, its bag still readable.
        s.relations.get_mut(&0).unwrap().members.remove("mongo/2");
        assert_eq!(members(&s, 0), vec!["mongo/10"]);
        let b = read_bag(&s, &Journal::default(), 0, &Target::Unit("mongo/2".into())).unwrap();
        assert_eq!(b["private-address"], "10.0.1.2");
        // -broken: empty list.
        s.relations.get_mut(&0).unwrap().broken = true;
        assert!(members(&s, 0).is_empty());
    }

    #[test]
    fn target_resolution() {
        use Target::*;
        assert_eq!(
            resolve_target(Some("x/1"), false, Some("m/0"), Some("m")),
            Ok(Unit("x/1".into()))
        );
        assert_eq!(
            resolve_target(Some("x/1"), true, None, None),
            Ok(App("x".into()))
        );
        assert_eq!(
            resolve_target(Some("x"), false, None, None),
            Ok(App("x".into()))
        );
        assert_eq!(
            resolve_target(None, true, Some("m/0"), Some("m")),
            Ok(App("m".into()))
        );
        assert_eq!(
            resolve_target(None, false, Some("m/0"), Some("m")),
            Ok(Unit("m/0".into()))
        );
        // created/broken/app-changed: JUJU_REMOTE_UNIT="" → remote app bag.
        assert_eq!(
            resolve_target(None, false, Some(""), Some("m")),
            Ok(App("m".into()))
        );
        let e = resolve_target(None, false, None, None).unwrap_err();
        assert_eq!(
            (e.code, e.msg.as_str()),
            (2, "no unit or application specified")
        );
        assert_eq!(
            resolve_target(None, true, Some("m/0"), Some(""))
                .unwrap_err()
                .code,
            2
        );
    }

    #[test]
    fn leader_only_app_bag() {
        let mut kv = BTreeMap::new();
        kv.insert("k".to_string(), "v".to_string());
        let mut j = Journal::default();
        j.set_relation(0, true, &kv);
        let own_app = Target::App("parse-server".into());
        let leader = model(true);
        assert_eq!(read_bag(&leader, &j, 0, &own_app).unwrap()["k"], "v");
        assert!(check_write(&leader, true).is_ok());
        let minion = model(false);
        let e = read_bag(&minion, &j, 0, &own_app).unwrap_err();
        assert_eq!((e.code, e.msg.as_str()), (1, "permission denied"));
        let e = check_write(&minion, true).unwrap_err();
        assert_eq!(
            (e.code, e.msg.as_str()),
            (1, "cannot write relation settings")
        );
        assert!(check_write(&minion, false).is_ok());
        // Peer relations: every unit can read the app bag.
        let mut peer = model(false);
        peer.relations.get_mut(&1).unwrap().role = "peers".into();
        assert!(read_bag(&peer, &j, 1, &own_app).is_ok());
        // Own unit bag includes pending writes; remote app bag readable by all.
        let mut j2 = Journal::default();
        j2.set_relation(0, false, &kv);
        assert_eq!(
            read_bag(&minion, &j2, 0, &Target::Unit("parse-server/0".into())).unwrap()["k"],
            "v"
        );
        assert!(read_bag(&minion, &j2, 0, &Target::App("mongo".into()))
            .unwrap()
            .is_empty());
        assert_eq!(
            read_bag(&minion, &j2, 0, &Target::Unit("mongo/7".into()))
                .unwrap_err()
                .code,
            1
        );
    }
}
