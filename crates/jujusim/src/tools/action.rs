//! Action tools: action-get, action-set, action-fail, action-log (only while an action runs).

use super::context::Tool;
use crate::agent::actionparams::insert_path;
use crate::agent::state::ActionRun;
use crate::errors::{q, unrecognized, CmdError, CmdResult};
use crate::tools::output::{OutOpts, FORMAT_FLAGS};
use serde_json::Value;

const RESERVED: [&str; 4] = ["stdout", "stdout-encoding", "stderr", "stderr-encoding"];
const DEFAULT_FAIL: &str = "action failed without reason given, check action for errors";

/// The running action, or `not running an action` (exit 1). Marks the state dirty.
fn running(t: &mut Tool) -> CmdResult<&mut ActionRun> {
    let in_action = t.env.action_name.as_deref().is_some_and(|a| !a.is_empty());
    let m = t.model()?;
    if !in_action || m.state.action.is_none() {
        return Err(CmdError::runtime("not running an action"));
    }
    m.state_dirty = true;
    Ok(m.state.action.as_mut().expect("action present"))
}

/// Whether an action-set key segment is valid: `[a-z0-9]`, hyphens inside.
pub fn valid_key(k: &str) -> bool {
    let b = k.as_bytes();
    let ok = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    !b.is_empty() && ok(&b[0]) && ok(&b[b.len() - 1]) && b.iter().all(|c| ok(c) || *c == b'-')
}

/// `action-get [--format] [<key>[.<sub>...]]`.
pub fn action_get(t: &mut Tool, args: &[String]) -> CmdResult {
    let Some(p) = t.parse(&FORMAT_FLAGS, args)? else {
        return Ok(());
    };
    let o = OutOpts::from(&p)?;
    let params = running(t)?.params.clone();
    let v = match p.args.as_slice() {
        [] => Value::Object(params),
        [k] => {
            let mut cur = Value::Object(params);
            for seg in k.split('.') {
                cur = cur.get(seg).cloned().unwrap_or(Value::Null);
            }
            cur
        }
        [_, rest @ ..] => return Err(unrecognized(rest)),
    };
    t.emit(&o, &v)
}

/// `action-set key[.sub]=value ...` (values are strings; reserved keys rejected).
pub fn action_set(t: &mut Tool, args: &[String]) -> CmdResult {
    let Some(p) = t.parse(&[], args)? else {
        return Ok(());
    };
    running(t)?;
    let mut parsed = Vec::new();
    for a in &p.args {
        let (k, v) = a.split_once('=').ok_or_else(|| {
            CmdError::usage(format!(
                "argument {} must be of the form key...=value",
                q(a)
            ))
        })?;
        let keys: Vec<&str> = k.split('.').collect();
        for seg in &keys {
            if !valid_key(seg) {
                return Err(CmdError::usage(format!(
                    "key {} must start and end with lowercase alphanumeric, and contain only lowercase alphanumeric, hyphens and periods",
                    q(seg)
                )));
            }
        }
        if RESERVED.contains(&keys[0]) {
            return Err(CmdError::usage(format!(
                "cannot set reserved action key {}",
                q(keys[0])
            )));
        }
        parsed.push((
            keys.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
            v.to_string(),
        ));
    }
    let action = running(t)?;
    for (keys, v) in parsed {
        let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
        insert_path(&mut action.results, &refs, Value::String(v));
    }
    Ok(())
}

/// `action-fail [<message>]`.
pub fn action_fail(t: &mut Tool, args: &[String]) -> CmdResult {
    let Some(p) = t.parse(&[], args)? else {
        return Ok(());
    };
    running(t)?;
    let msg = match p.args.as_slice() {
        [] => DEFAULT_FAIL.to_string(),
        [m] => m.clone(),
        [_, rest @ ..] => return Err(unrecognized(rest)),
    };
    running(t)?.failed = Some(msg);
    Ok(())
}

/// `action-log <message words...>`.
pub fn action_log(t: &mut Tool, args: &[String]) -> CmdResult {
    let Some(p) = t.parse(&[], args)? else {
        return Ok(());
    };
    running(t)?;
    let msg = p.args.join(" ");
    if msg.is_empty() {
        return Err(CmdError::usage("no message specified"));
    }
    running(t)?.logs.push(msg);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Map};

    #[test]
    fn keys_and_nesting() {
        assert!(valid_key("a"));
        assert!(valid_key("db-url2"));
        assert!(!valid_key("-a"));
        assert!(!valid_key("a-"));
        assert!(!valid_key("A"));
        assert!(!valid_key(""));
        let mut m = Map::new();
        insert_path(&mut m, &["a", "b"], json!("1"));
        insert_path(&mut m, &["a", "c"], json!("2"));
        insert_path(&mut m, &["x"], json!("3"));
        assert_eq!(
            Value::Object(m),
            json!({"a": {"b": "1", "c": "2"}, "x": "3"})
        );
    }
}
