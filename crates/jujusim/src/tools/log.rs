//! The juju-log tool (immediate; relation hooks prefix `<ep>:<id>: `).

use super::context::Tool;
use crate::agent::state::LogLine;
use crate::errors::{CmdError, CmdResult};
use crate::flags::{flag, opt};

const LEVELS: [&str; 6] = ["TRACE", "DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"];

/// `juju-log [-l LEVEL] [--debug] [--] <message words...>`.
pub fn juju_log(t: &mut Tool, args: &[String]) -> CmdResult {
    let specs = [
        opt("log-level", Some('l')),
        flag("debug", None),
        opt("format", None),
    ];
    let Some(p) = t.parse(&specs, args)? else {
        return Ok(());
    };
    t.deprecated_format(&p);
    let message = p.args.join(" ");
    if message.is_empty() {
        return Err(CmdError::usage("no message specified"));
    }
    let mut lines = Vec::new();
    let hook = t.env.label();
    let level = if p.on("debug") {
        "DEBUG".to_string()
    } else {
        let l = p.get("log-level").unwrap_or("INFO").to_uppercase();
        if LEVELS.contains(&l.as_str()) {
            l
        } else {
            lines.push(LogLine {
                hook: hook.clone(),
                level: "WARNING".into(),
                message: format!("Specified log level of {l:?} is not valid"),
            });
            "INFO".to_string()
        }
    };
    let prefix = match &t.env.relation_id {
        Some(r) if !r.is_empty() => format!("{r}: "),
        _ => String::new(),
    };
    lines.push(LogLine {
        hook,
        level,
        message: format!("{prefix}{message}"),
    });
    let m = t.model()?;
    m.state.log.extend(lines);
    m.state_dirty = true;
    Ok(())
}
