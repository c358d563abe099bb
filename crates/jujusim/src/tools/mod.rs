//! Hook-tool mode: the tool registry, dispatch by tool name and the call log.

mod action;
mod context;
pub mod help;
mod info;
mod leader;
mod log;
pub mod output;
mod ports;
mod relation;
mod secret;
#[cfg(test)]
mod secret_tests;
mod state;
mod status;
#[cfg(test)]
mod tests;

pub use context::HookEnv;
use context::Tool;

use crate::agent::secrets;
use crate::errors::{CmdError, CmdResult};
use serde_json::Value;
use std::io::Write;
use std::path::PathBuf;

/// Every hook tool jujusim implements (the names of the symlinks in `U/tools`).
pub const TOOLS: &[&str] = &[
    "action-fail",
    "action-get",
    "action-log",
    "action-set",
    "application-version-set",
    "close-port",
    "config-get",
    "is-leader",
    "juju-log",
    "leader-get",
    "leader-set",
    "network-get",
    "open-port",
    "opened-ports",
    "relation-get",
    "relation-ids",
    "relation-list",
    "relation-set",
    "resource-get",
    "secret-add",
    "secret-get",
    "secret-ids",
    "secret-info-get",
    "secret-remove",
    "secret-set",
    "state-delete",
    "state-get",
    "state-set",
    "status-get",
    "status-set",
    "unit-get",
];

/// Whether `name` is a hook tool.
pub fn is_tool(name: &str) -> bool {
    TOOLS.contains(&name)
}

fn dispatch(t: &mut Tool, args: &[String]) -> CmdResult<()> {
    match t.name.as_str() {
        "config-get" => info::config_get(t, args),
        "unit-get" => info::unit_get(t, args),
        "network-get" => info::network_get(t, args),
        "resource-get" => info::resource_get(t, args),
        "relation-ids" => relation::relation_ids(t, args),
        "relation-list" => relation::relation_list(t, args),
        "relation-get" => relation::relation_get(t, args),
        "relation-set" => relation::relation_set(t, args),
        "open-port" => ports::port_change(t, args, true),
        "close-port" => ports::port_change(t, args, false),
        "opened-ports" => ports::opened_ports(t, args),
        "status-set" => status::status_set(t, args),
        "status-get" => status::status_get(t, args),
        "application-version-set" => status::application_version_set(t, args),
        "juju-log" => log::juju_log(t, args),
        "is-leader" => leader::is_leader(t, args),
        "leader-get" => leader::leader_get(t, args),
        "leader-set" => leader::leader_set(t, args),
        "state-get" => state::state_get(t, args),
        "state-set" => state::state_set(t, args),
        "state-delete" => state::state_delete(t, args),
        "action-get" => action::action_get(t, args),
        "action-set" => action::action_set(t, args),
        "action-fail" => action::action_fail(t, args),
        "action-log" => action::action_log(t, args),
        "secret-add" => secret::secret_add(t, args),
        "secret-set" => secret::secret_set(t, args),
        "secret-remove" => secret::secret_remove(t, args),
        "secret-get" => secret::secret_get(t, args),
        "secret-info-get" => secret::secret_info_get(t, args),
        "secret-ids" => secret::secret_ids(t, args),
        other => Err(CmdError::runtime(format!("unknown hook tool {other:?}"))),
    }
}

/// Run tool `name` against unit dir `dir` with an explicit hook env (and optionally a given
/// stdin). Returns (exit code, stdout bytes, error). Nothing is printed; the call is logged.
pub fn invoke(
    name: &str,
    dir: PathBuf,
    env: HookEnv,
    args: &[String],
    stdin: Option<Vec<u8>>,
) -> (i32, Vec<u8>, Option<CmdError>) {
    let mut t = Tool::new(name, dir, env, stdin);
    let res = dispatch(&mut t, args).and_then(|_| t.finish());
    t.release();
    let (code, err) = match res {
        Ok(()) => (0, None),
        Err(e) => (e.code, Some(e)),
    };
    log_call(&t, args, code);
    (code, t.take_output(), err)
}

/// Run tool `name` with `args` (tool mode); returns the exit code.
pub fn run(name: &str, args: &[String]) -> i32 {
    let dir = match std::env::var("JUJUSIM_UNIT_DIR") {
        Ok(d) if !d.is_empty() => PathBuf::from(d),
        _ => {
            eprintln!("ERROR jujusim: JUJUSIM_UNIT_DIR not set");
            return 1;
        }
    };
    let (code, out, err) = invoke(name, dir, HookEnv::from_env(), args, None);
    if let Some(e) = err {
        return e.report();
    }
    let mut so = std::io::stdout().lock();
    let _ = so.write_all(&out);
    let _ = so.flush();
    code
}

/// The peak resident memory so far of the process that called this tool (normally the
/// charm's dispatch): `VmHWM` of the parent. Benchmarks take the largest value over a hook's
/// calls as the dispatch process's own peak, which `wait4` cannot separate from its children.
fn parent_vmhwm_kb() -> Option<u64> {
    // SAFETY: getppid has no preconditions.
    let ppid = unsafe { libc::getppid() };
    let status = std::fs::read_to_string(format!("/proc/{ppid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

/// Append `{"hook","tool","args","stdin"?,"exit","parent_vmhwm_kb"?}` to `U/tool-calls.log`. Stdin content is
/// never logged, only the marker `<stdin>`; secret-add/secret-set content values are logged
/// as `<redacted>` (`key#file=path` arguments are kept).
fn log_call(t: &Tool, args: &[String], code: i32) {
    let logged = match t.name.as_str() {
        "secret-add" | "secret-set" => secrets::redact_args(&t.name, args),
        _ => args.to_vec(),
    };
    let mut m = serde_json::Map::new();
    m.insert("hook".into(), Value::String(t.env.label()));
    m.insert("tool".into(), Value::String(t.name.clone()));
    m.insert("args".into(), serde_json::json!(logged));
    if t.used_stdin() {
        m.insert("stdin".into(), Value::String("<stdin>".into()));
    }
    m.insert("exit".into(), Value::from(code));
    if let Some(kb) = parent_vmhwm_kb() {
        m.insert("parent_vmhwm_kb".into(), Value::from(kb));
    }
    let line = format!("{}\n", Value::Object(m));
    let _ = crate::util::append(&t.dir.join("tool-calls.log"), &line);
}
