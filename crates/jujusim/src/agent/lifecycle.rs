//! Lifecycle macros in Juju's order (CONTRACT.md §4.2): deploy, integrate, depart, teardown, upgrade. Each stops at the first failing hook.

use crate::agent::hooks::{run_hook, HookRequest};
use crate::agent::state::with_state;
use crate::agent::{charm, relations};
use crate::errors::{q, CmdError, CmdResult};
use crate::keyvalue;
use std::path::Path;

/// Run hooks in order; return the first non-zero exit code (or 0).
fn run_all(dir: &Path, reqs: Vec<HookRequest>) -> CmdResult<i32> {
    for r in reqs {
        let code = run_hook(dir, &r)?;
        if code != 0 {
            return Ok(code);
        }
    }
    Ok(0)
}

/// `relate`: add a relation (peers always relate to the own application); returns its id.
pub fn relate(dir: &Path, endpoint: &str, remote_app: &str) -> CmdResult<u32> {
    with_state(dir, |st| {
        let ep = st.endpoints.get(endpoint).cloned().ok_or_else(|| {
            CmdError::usage(format!(
                "endpoint {} is not defined in metadata.yaml",
                q(endpoint)
            ))
        })?;
        let remote = if ep.role == "peers" {
            st.app.clone()
        } else {
            remote_app.to_string()
        };
        Ok(st.add_relation(endpoint, &remote))
    })
}

/// `remote-set`: join `unit` to the relation if needed, then apply `key=value` ("" deletes).
pub fn remote_set(
    dir: &Path,
    rel: &str,
    unit: &str,
    kv: &[String],
    address: Option<&str>,
) -> CmdResult<u32> {
    crate::agent::setup::split_unit(unit)?;
    let pairs = keyvalue::parse_pairs(kv)?;
    with_state(dir, |st| {
        let rid = relations::resolve_id(st, rel)?;
        st.add_member(rid, unit, address);
        let bag = st
            .relations
            .get_mut(&rid)
            .and_then(|r| r.unit_bags.get_mut(unit))
            .ok_or_else(|| CmdError::runtime("relation vanished"))?;
        for (k, v) in pairs {
            if v.is_empty() {
                bag.remove(&k);
            } else {
                bag.insert(k, v);
            }
        }
        Ok(rid)
    })
}

/// Deploy: install → [-created for relations that already exist (e.g. a peer relation added
/// with `relate` before deploy)] → leader-elected | leader-settings-changed → config-changed →
/// start. Peer relations are NOT created implicitly.
pub fn deploy(dir: &Path) -> CmdResult<i32> {
    let code = run_hook(dir, &HookRequest::plain("install"))?;
    if code != 0 {
        return Ok(code);
    }
    let (created, leader) = with_state(dir, |st| {
        let created: Vec<HookRequest> = st
            .relations
            .values()
            .filter(|r| !r.created_run && !r.broken)
            .map(|r| HookRequest::relation(&format!("{}-relation-created", r.endpoint), r.id, None))
            .collect();
        Ok((created, st.leader))
    })?;
    let mut reqs = created;
    reqs.push(HookRequest::plain(if leader {
        "leader-elected"
    } else {
        "leader-settings-changed"
    }));
    reqs.push(HookRequest::plain("config-changed"));
    reqs.push(HookRequest::plain("start"));
    run_all(dir, reqs)
}

/// Integrate: relate (reusing an existing peer relation) + -created, remote-set, -joined, -changed.
/// Prints the relation id on stdout before running hooks.
pub fn integrate(
    dir: &Path,
    endpoint: &str,
    remote_app: &str,
    unit: &str,
    kv: &[String],
    address: Option<&str>,
) -> CmdResult<i32> {
    crate::agent::setup::split_unit(unit)?;
    keyvalue::parse_pairs(kv)?;
    let existing_peer = with_state(dir, |st| {
        let ep = st.endpoints.get(endpoint).ok_or_else(|| {
            CmdError::usage(format!(
                "endpoint {} is not defined in metadata.yaml",
                q(endpoint)
            ))
        })?;
        Ok(if ep.role == "peers" {
            st.relations
                .values()
                .find(|r| r.endpoint == endpoint && !r.broken)
                .map(|r| r.id)
        } else {
            None
        })
    })?;
    let (rid, fresh) = match existing_peer {
        Some(id) => (id, false),
        None => (relate(dir, endpoint, remote_app)?, true),
    };
    println!("{endpoint}:{rid}");
    if fresh {
        let code = run_hook(
            dir,
            &HookRequest::relation(&format!("{endpoint}-relation-created"), rid, None),
        )?;
        if code != 0 {
            return Ok(code);
        }
    }
    remote_set(dir, &rid.to_string(), unit, kv, address)?;
    run_all(
        dir,
        vec![
            HookRequest::relation(&format!("{endpoint}-relation-joined"), rid, Some(unit)),
            HookRequest::relation(&format!("{endpoint}-relation-changed"), rid, Some(unit)),
        ],
    )
}

/// Depart: for each remote member remote-leave + -departed, then relation-break + -broken.
pub fn depart(dir: &Path, rel: &str) -> CmdResult<i32> {
    let (rid, endpoint, members) = with_state(dir, |st| {
        let rid = relations::resolve_id(st, rel)?;
        let r = &st.relations[&rid];
        Ok((
            rid,
            r.endpoint.clone(),
            r.members.iter().cloned().collect::<Vec<_>>(),
        ))
    })?;
    for u in members {
        with_state(dir, |st| {
            if let Some(r) = st.relations.get_mut(&rid) {
                r.members.remove(&u);
            }
            Ok(())
        })?;
        let mut req =
            HookRequest::relation(&format!("{endpoint}-relation-departed"), rid, Some(&u));
        req.departing = Some(u.clone());
        let code = run_hook(dir, &req)?;
        if code != 0 {
            return Ok(code);
        }
    }
    with_state(dir, |st| {
        if let Some(r) = st.relations.get_mut(&rid) {
            r.broken = true;
        }
        Ok(())
    })?;
    run_hook(
        dir,
        &HookRequest::relation(&format!("{endpoint}-relation-broken"), rid, None),
    )
}

/// Teardown: depart every live relation, then stop, then remove.
pub fn teardown(dir: &Path) -> CmdResult<i32> {
    let live: Vec<u32> = with_state(dir, |st| {
        Ok(st
            .relations
            .values()
            .filter(|r| !r.broken)
            .map(|r| r.id)
            .collect())
    })?;
    for rid in live {
        let code = depart(dir, &rid.to_string())?;
        if code != 0 {
            return Ok(code);
        }
    }
    run_all(
        dir,
        vec![HookRequest::plain("stop"), HookRequest::plain("remove")],
    )
}

/// Re-read the charm's metadata/config/actions from the host charm dir (after a refresh).
pub fn refresh_charm(dir: &Path) -> CmdResult<()> {
    with_state(dir, |st| {
        let info = charm::read_charm_dir(Path::new(&st.host_charm_dir))?;
        st.apply_charm(&info);
        Ok(())
    })
}

/// Upgrade (after `juju refresh`): upgrade-charm → config-changed → [leader-settings-changed
/// for non-leaders] → start, as docs/reference/hook.md lists it.
pub fn upgrade(dir: &Path) -> CmdResult<i32> {
    refresh_charm(dir)?;
    let leader = with_state(dir, |st| Ok(st.leader))?;
    let mut reqs = vec![
        HookRequest::plain("upgrade-charm"),
        HookRequest::plain("config-changed"),
    ];
    if !leader {
        reqs.push(HookRequest::plain("leader-settings-changed"));
    }
    reqs.push(HookRequest::plain("start"));
    run_all(dir, reqs)
}
