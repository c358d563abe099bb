//! Port tools: open-port, close-port (journaled) and opened-ports (committed + pending).

use super::context::Tool;
use crate::agent::ports::{self, PortOp};
use crate::errors::{unrecognized, CmdError, CmdResult};
use crate::flags::{flag, opt};
use crate::tools::output::{OutOpts, FORMAT_FLAGS};
use serde_json::json;

/// `open-port|close-port [--endpoints a,b] <port>[/<proto>] | <from>-<to>[/<proto>] | icmp`.
pub fn port_change(t: &mut Tool, args: &[String], open: bool) -> CmdResult {
    let specs = [opt("endpoints", None), opt("format", None)];
    let Some(p) = t.parse(&specs, args)? else {
        return Ok(());
    };
    t.deprecated_format(&p);
    let range = match p.args.as_slice() {
        [] => return Err(CmdError::usage("no port or range specified")),
        [one] => ports::parse(one)?,
        [_, rest @ ..] => return Err(unrecognized(rest)),
    };
    let endpoints: Vec<String> = p
        .get("endpoints")
        .map(|s| {
            s.split(',')
                .map(str::trim)
                .filter(|e| !e.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    let m = t.model()?;
    m.journal.port_ops.push(PortOp {
        open,
        range,
        endpoints,
    });
    m.journal_dirty = true;
    Ok(())
}

/// `opened-ports [--format] [--endpoints]`.
pub fn opened_ports(t: &mut Tool, args: &[String]) -> CmdResult {
    let specs = [FORMAT_FLAGS[0], FORMAT_FLAGS[1], flag("endpoints", None)];
    let Some(p) = t.parse(&specs, args)? else {
        return Ok(());
    };
    let o = OutOpts::from(&p)?;
    if !p.args.is_empty() {
        return Err(unrecognized(&p.args));
    }
    let m = t.model()?;
    let list = ports::list(&m.journal.ports(&m.state), p.on("endpoints"));
    t.emit(&o, &json!(list))
}
