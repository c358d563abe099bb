//! Relation tools: relation-ids, relation-list, relation-get, relation-set.

use super::context::Tool;
use crate::agent::relations;
use crate::errors::{unrecognized, CmdError, CmdResult};
use crate::flags::{flag, opt};
use crate::keyvalue;
use crate::tools::output::{OutOpts, FORMAT_FLAGS};
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// `relation-ids [--format] [<endpoint>]`.
pub fn relation_ids(t: &mut Tool, args: &[String]) -> CmdResult {
    let Some(p) = t.parse(&FORMAT_FLAGS, args)? else {
        return Ok(());
    };
    let o = OutOpts::from(&p)?;
    let ep = match p.args.as_slice() {
        [] => t
            .env
            .relation
            .clone()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| CmdError::usage("no relation name specified"))?,
        [ep] => ep.clone(),
        [_, rest @ ..] => return Err(unrecognized(rest)),
    };
    let ids = relations::relation_ids(&t.model()?.state, &ep);
    t.emit(&o, &json!(ids))
}

/// `relation-list [--format] [-r id] [--app]`.
pub fn relation_list(t: &mut Tool, args: &[String]) -> CmdResult {
    let specs = [
        FORMAT_FLAGS[0],
        FORMAT_FLAGS[1],
        opt("relation", Some('r')),
        flag("app", None),
    ];
    let Some(p) = t.parse(&specs, args)? else {
        return Ok(());
    };
    let o = OutOpts::from(&p)?;
    if !p.args.is_empty() {
        return Err(unrecognized(&p.args));
    }
    let env = t.env.clone();
    let m = t.model()?;
    let rid = relations::current_id(&m.state, p.get("relation"), env.relation_id.as_deref())?;
    let v = if p.on("app") {
        let rel = &m.state.relations[&rid];
        json!(if rel.is_peer() {
            m.state.app.clone()
        } else {
            rel.remote_app.clone()
        })
    } else {
        json!(relations::members(&m.state, rid))
    };
    t.emit(&o, &v)
}

/// `relation-get [--format] [-r id] [--app] [<key>|-] [<unit-or-app>]`.
pub fn relation_get(t: &mut Tool, args: &[String]) -> CmdResult {
    let specs = [
        FORMAT_FLAGS[0],
        FORMAT_FLAGS[1],
        opt("relation", Some('r')),
        flag("app", None),
    ];
    let Some(p) = t.parse(&specs, args)? else {
        return Ok(());
    };
    let o = OutOpts::from(&p)?;
    let (key, explicit) = match p.args.as_slice() {
        [] => (None, None),
        [k] => (Some(k.clone()), None),
        [k, u] => (Some(k.clone()), Some(u.clone())),
        [_, _, rest @ ..] => return Err(unrecognized(rest)),
    };
    let key = key.filter(|k| k != "-");
    let env = t.env.clone();
    let m = t.model()?;
    let rid = relations::current_id(&m.state, p.get("relation"), env.relation_id.as_deref())?;
    let target = relations::resolve_target(
        explicit.as_deref(),
        p.on("app"),
        env.remote_unit.as_deref(),
        env.remote_app.as_deref(),
    )?;
    let bag = relations::read_bag(&m.state, &m.journal, rid, &target)?;
    let v = match key {
        Some(k) => bag.get(&k).map(|s| json!(s)).unwrap_or(Value::Null),
        None => json!(bag),
    };
    t.emit(&o, &v)
}

/// `relation-set [-r id] [--app] [--file path|-] key=value ...` (journaled).
pub fn relation_set(t: &mut Tool, args: &[String]) -> CmdResult {
    let specs = [
        opt("relation", Some('r')),
        flag("app", None),
        opt("file", None),
        opt("format", None),
    ];
    let Some(p) = t.parse(&specs, args)? else {
        return Ok(());
    };
    t.deprecated_format(&p);
    let pairs = keyvalue::parse_pairs(&p.args)?;
    let mut settings: BTreeMap<String, String> = match p.get("file") {
        Some(f) => keyvalue::parse_settings(&t.read_input(f)?)?,
        None => BTreeMap::new(),
    };
    settings.extend(pairs);
    let app = p.on("app");
    let env = t.env.clone();
    let m = t.model()?;
    let rid = relations::current_id(&m.state, p.get("relation"), env.relation_id.as_deref())?;
    relations::check_write(&m.state, app)?;
    m.journal.set_relation(rid, app, &settings);
    m.journal_dirty = true;
    Ok(())
}
