//! Status tools: status-set, status-get, application-version-set (all immediate, not journaled).

use super::context::Tool;
use crate::agent::state::Status;
use crate::errors::{q, unrecognized, CmdError, CmdResult};
use crate::flags::flag;
use crate::tools::output::{OutOpts, FORMAT_FLAGS};
use serde_json::{json, Value};

const SETTABLE: [&str; 4] = ["maintenance", "blocked", "waiting", "active"];

/// `status-set [--application] <status> [<message>]`.
pub fn status_set(t: &mut Tool, args: &[String]) -> CmdResult {
    let Some(p) = t.parse(&[flag("application", None)], args)? else {
        return Ok(());
    };
    let (status, message) = match p.args.as_slice() {
        [] => return Err(CmdError::usage("invalid args, require <status> [message]")),
        [s] => (s.clone(), String::new()),
        [s, m] => (s.clone(), m.clone()),
        [_, _, rest @ ..] => return Err(unrecognized(rest)),
    };
    if !SETTABLE.contains(&status.as_str()) {
        return Err(CmdError::usage(format!(
            "invalid status {}, expected one of [maintenance blocked waiting active]",
            q(&status)
        )));
    }
    let hook = t.env.label();
    let m = t.model()?;
    if p.on("application") {
        if !m.state.leader {
            return Err(CmdError::runtime("this unit is not the leader"));
        }
        m.state
            .set_app_status(Status::new(&status, &message), &hook);
    } else {
        m.state
            .set_unit_status(Status::new(&status, &message), &hook);
        m.state.charm_set_status = true;
    }
    m.state_dirty = true;
    Ok(())
}

fn full(s: &Status) -> Value {
    json!({"message": s.message, "status": s.status, "status-data": s.data})
}

/// `status-get [--format] [--include-data] [--application]`.
pub fn status_get(t: &mut Tool, args: &[String]) -> CmdResult {
    let specs = [
        FORMAT_FLAGS[0],
        FORMAT_FLAGS[1],
        flag("include-data", None),
        flag("application", None),
    ];
    let Some(p) = t.parse(&specs, args)? else {
        return Ok(());
    };
    let o = OutOpts::from(&p)?;
    if !p.args.is_empty() {
        return Err(unrecognized(&p.args));
    }
    let m = t.model()?;
    let st = &m.state;
    let v = if p.on("application") {
        if !st.leader {
            return Err(CmdError::runtime("this unit is not the leader"));
        }
        let mut app = full(&st.app_status);
        app["units"] = json!({ st.unit.clone(): full(&st.unit_status) });
        json!({ "application-status": app })
    } else if p.on("include-data") {
        full(&st.unit_status)
    } else {
        json!({"status": st.unit_status.status})
    };
    t.emit(&o, &v)
}

/// `application-version-set <version>`.
pub fn application_version_set(t: &mut Tool, args: &[String]) -> CmdResult {
    let Some(p) = t.parse(&[], args)? else {
        return Ok(());
    };
    let version = match p.args.as_slice() {
        [] => return Err(CmdError::usage("no version specified")),
        [v] => v.clone(),
        [_, rest @ ..] => return Err(unrecognized(rest)),
    };
    let hook = t.env.label();
    let m = t.model()?;
    m.state.history("workload-version", &version, "", &hook);
    m.state.workload_version = version;
    m.state_dirty = true;
    Ok(())
}
