//! Unit-state tools: state-get, state-set, state-delete (writes are journaled).

use super::context::Tool;
use crate::errors::{q, unrecognized, CmdError, CmdResult};
use crate::flags::{flag, opt};
use crate::keyvalue;
use crate::tools::output::{OutOpts, FORMAT_FLAGS};
use serde_json::json;
use std::collections::BTreeMap;

const MAX_KEY: usize = 256;
const MAX_VALUE: usize = 64 * 1024;

/// `state-get [--format] [--strict] [<key>|-]`: whole map (`{}` when empty), a string, or `""`.
pub fn state_get(t: &mut Tool, args: &[String]) -> CmdResult {
    let specs = [FORMAT_FLAGS[0], FORMAT_FLAGS[1], flag("strict", None)];
    let Some(p) = t.parse(&specs, args)? else {
        return Ok(());
    };
    let o = OutOpts::from(&p)?;
    let key = match p.args.as_slice() {
        [] => None,
        [k] if k == "-" => None,
        [k] => Some(k.clone()),
        [_, rest @ ..] => return Err(unrecognized(rest)),
    };
    let m = t.model()?;
    let all = m.journal.unit_state(&m.state);
    let v = match key {
        None => json!(all),
        Some(k) => match all.get(&k) {
            Some(v) => json!(v),
            None if p.on("strict") => {
                return Err(CmdError::runtime(format!("key {} not found", q(&k))))
            }
            None => json!(""),
        },
    };
    t.emit(&o, &v)
}

/// `state-set [--file path|-] key=value ...` (`key=` deletes).
pub fn state_set(t: &mut Tool, args: &[String]) -> CmdResult {
    let Some(p) = t.parse(&[opt("file", None)], args)? else {
        return Ok(());
    };
    let pairs = keyvalue::parse_pairs(&p.args)?;
    let mut settings: BTreeMap<String, String> = match p.get("file") {
        Some(f) => keyvalue::parse_settings(&t.read_input(f)?)?,
        None => BTreeMap::new(),
    };
    settings.extend(pairs);
    for (k, v) in &settings {
        if k.len() > MAX_KEY {
            return Err(CmdError::runtime(format!(
                "key {} exceeds the maximum key size of {MAX_KEY} bytes",
                q(k)
            )));
        }
        if v.len() > MAX_VALUE {
            return Err(CmdError::runtime(format!(
                "value for key {} exceeds the maximum value size of {MAX_VALUE} bytes",
                q(k)
            )));
        }
    }
    let m = t.model()?;
    for (k, v) in settings {
        m.journal.state_ops.insert(k, (!v.is_empty()).then_some(v));
    }
    m.journal_dirty = true;
    Ok(())
}

/// `state-delete <key>`.
pub fn state_delete(t: &mut Tool, args: &[String]) -> CmdResult {
    let Some(p) = t.parse(&[], args)? else {
        return Ok(());
    };
    let key = match p.args.as_slice() {
        [] => return Err(CmdError::usage("specify a key")),
        [k] => k.clone(),
        [_, rest @ ..] => return Err(unrecognized(rest)),
    };
    let m = t.model()?;
    m.journal.state_ops.insert(key, None);
    m.journal_dirty = true;
    Ok(())
}
