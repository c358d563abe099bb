//! Leadership tools: is-leader, leader-get, leader-set (leader-set is immediate and leader-only).

use super::context::Tool;
use crate::errors::{q, unrecognized, CmdError, CmdResult};
use crate::keyvalue;
use crate::tools::output::{OutOpts, FORMAT_FLAGS};
use serde_json::{json, Value};

/// `is-leader [--format]`.
pub fn is_leader(t: &mut Tool, args: &[String]) -> CmdResult {
    let Some(p) = t.parse(&FORMAT_FLAGS, args)? else {
        return Ok(());
    };
    let o = OutOpts::from(&p)?;
    if !p.args.is_empty() {
        return Err(unrecognized(&p.args));
    }
    let leader = t.model()?.state.leader;
    t.emit(&o, &json!(leader))
}

/// `leader-get [--format] [<key>|-]`.
pub fn leader_get(t: &mut Tool, args: &[String]) -> CmdResult {
    let Some(p) = t.parse(&FORMAT_FLAGS, args)? else {
        return Ok(());
    };
    let o = OutOpts::from(&p)?;
    let key = match p.args.as_slice() {
        [] => None,
        [k] if k == "-" => None,
        [k] if k.contains('=') => return Err(CmdError::usage(format!("invalid key {}", q(k)))),
        [k] => Some(k.clone()),
        [_, rest @ ..] => return Err(unrecognized(rest)),
    };
    let m = t.model()?;
    let v = match key {
        Some(k) => m
            .state
            .leader_settings
            .get(&k)
            .map(|s| json!(s))
            .unwrap_or(Value::Null),
        None => json!(m.state.leader_settings),
    };
    t.emit(&o, &v)
}

/// `leader-set key=value ...` (`key=` deletes).
pub fn leader_set(t: &mut Tool, args: &[String]) -> CmdResult {
    let Some(p) = t.parse(&[], args)? else {
        return Ok(());
    };
    let pairs = keyvalue::parse_pairs(&p.args)?;
    let m = t.model()?;
    if !m.state.leader {
        return Err(CmdError::runtime(
            "cannot write leadership settings: cannot write settings: not the leader",
        ));
    }
    for (k, v) in pairs {
        if v.is_empty() {
            m.state.leader_settings.remove(&k);
        } else {
            m.state.leader_settings.insert(k, v);
        }
    }
    m.state_dirty = true;
    Ok(())
}
