//! Hook-tool mode: the tool registry, the per-call context (unit dir, hook env, lazily locked model) and the call log.

use crate::errors::{CmdError, CmdResult};
use crate::flags::{self, Parsed, Spec};
use crate::journal::{self, Journal};
use crate::output::{render, OutOpts};
use crate::state::{self, Lock, State};
use crate::{
    help, secrets, tools_action, tools_info, tools_leader, tools_log, tools_ports, tools_relation,
    tools_secret, tools_state, tools_status,
};
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

/// The hook context as the tools see it, from the Juju environment variables.
#[derive(Debug, Clone, Default)]
pub struct HookEnv {
    pub hook_name: String,
    pub dispatch_path: String,
    /// JUJU_RELATION (endpoint name).
    pub relation: Option<String>,
    pub relation_id: Option<String>,
    pub remote_unit: Option<String>,
    pub remote_app: Option<String>,
    pub action_name: Option<String>,
}

impl HookEnv {
    pub fn from_env() -> HookEnv {
        let var = |k: &str| std::env::var(k).ok();
        HookEnv {
            hook_name: var("JUJU_HOOK_NAME").unwrap_or_default(),
            dispatch_path: var("JUJU_DISPATCH_PATH").unwrap_or_default(),
            relation: var("JUJU_RELATION"),
            relation_id: var("JUJU_RELATION_ID"),
            remote_unit: var("JUJU_REMOTE_UNIT"),
            remote_app: var("JUJU_REMOTE_APP"),
            action_name: var("JUJU_ACTION_NAME"),
        }
    }

    /// The hook label used in logs: hook name, or `actions/<name>` for actions.
    pub fn label(&self) -> String {
        label_for(&self.dispatch_path, &self.hook_name)
    }
}

/// `hooks/x` → `x`; `actions/y` stays; falls back to the hook name.
pub fn label_for(dispatch_path: &str, hook_name: &str) -> String {
    if let Some(h) = dispatch_path.strip_prefix("hooks/") {
        h.to_string()
    } else if !dispatch_path.is_empty() {
        dispatch_path.to_string()
    } else if !hook_name.is_empty() {
        hook_name.to_string()
    } else {
        "(no hook)".to_string()
    }
}

/// State + journal, loaded under the unit lock.
pub struct Model {
    pub state: State,
    pub journal: Journal,
    pub state_dirty: bool,
    pub journal_dirty: bool,
    _lock: Lock,
}

/// One tool invocation.
pub struct Tool {
    pub name: String,
    pub dir: PathBuf,
    pub env: HookEnv,
    out: Vec<u8>,
    used_stdin: bool,
    /// Test hook: stdin content instead of the real stdin.
    stdin: Option<Vec<u8>>,
    model: Option<Model>,
}

impl Tool {
    /// Parse flags; on `-h/--help` queue the usage text and return None.
    pub fn parse(&mut self, specs: &[Spec], args: &[String]) -> CmdResult<Option<Parsed>> {
        let p = flags::parse(specs, args)?;
        if p.help {
            self.out
                .extend_from_slice(help::usage(&self.name).as_bytes());
            return Ok(None);
        }
        Ok(Some(p))
    }

    /// Lock and load the model on first use. Read stdin BEFORE calling this (a pipe from
    /// another tool of the same hook would otherwise deadlock on the lock).
    pub fn model(&mut self) -> CmdResult<&mut Model> {
        if self.model.is_none() {
            let lock = state::lock(&self.dir)?;
            let state = state::load(&self.dir)?;
            let journal = journal::load(&self.dir)?;
            self.model = Some(Model {
                state,
                journal,
                state_dirty: false,
                journal_dirty: false,
                _lock: lock,
            });
        }
        Ok(self.model.as_mut().expect("model loaded"))
    }

    /// Queue formatted output (or write it to `-o <file>`).
    pub fn emit(&mut self, o: &OutOpts, v: &Value) -> CmdResult<()> {
        let text = render(o.format, v);
        match &o.file {
            Some(f) => std::fs::write(f, text)
                .map_err(|e| CmdError::runtime(format!("cannot write {f}: {e}")))?,
            None => self.out.extend_from_slice(text.as_bytes()),
        }
        Ok(())
    }

    /// Queue raw output.
    pub fn emit_raw(&mut self, s: &str) {
        self.out.extend_from_slice(s.as_bytes());
    }

    /// Read a `--file` argument (`-` = stdin, noted in the call log).
    pub fn read_input(&mut self, path: &str) -> CmdResult<String> {
        if path == "-" {
            self.used_stdin = true;
            if let Some(data) = self.stdin.take() {
                return Ok(String::from_utf8_lossy(&data).into_owned());
            }
        }
        crate::keyvalue::read_file_arg(path)
    }

    /// Warn about the deprecated, ignored `--format` of relation-set/open-port/close-port/juju-log.
    pub fn deprecated_format(&self, p: &Parsed) {
        if p.given("format") {
            eprintln!("--format flag deprecated for command {:?}", self.name);
        }
    }

    fn finish(&mut self) -> CmdResult<()> {
        if let Some(m) = &self.model {
            if m.state_dirty {
                state::save(&self.dir, &m.state)?;
            }
            if m.journal_dirty {
                journal::save(&self.dir, &m.journal)?;
            }
        }
        Ok(())
    }
}

fn dispatch(t: &mut Tool, args: &[String]) -> CmdResult<()> {
    match t.name.as_str() {
        "config-get" => tools_info::config_get(t, args),
        "unit-get" => tools_info::unit_get(t, args),
        "network-get" => tools_info::network_get(t, args),
        "resource-get" => tools_info::resource_get(t, args),
        "relation-ids" => tools_relation::relation_ids(t, args),
        "relation-list" => tools_relation::relation_list(t, args),
        "relation-get" => tools_relation::relation_get(t, args),
        "relation-set" => tools_relation::relation_set(t, args),
        "open-port" => tools_ports::port_change(t, args, true),
        "close-port" => tools_ports::port_change(t, args, false),
        "opened-ports" => tools_ports::opened_ports(t, args),
        "status-set" => tools_status::status_set(t, args),
        "status-get" => tools_status::status_get(t, args),
        "application-version-set" => tools_status::application_version_set(t, args),
        "juju-log" => tools_log::juju_log(t, args),
        "is-leader" => tools_leader::is_leader(t, args),
        "leader-get" => tools_leader::leader_get(t, args),
        "leader-set" => tools_leader::leader_set(t, args),
        "state-get" => tools_state::state_get(t, args),
        "state-set" => tools_state::state_set(t, args),
        "state-delete" => tools_state::state_delete(t, args),
        "action-get" => tools_action::action_get(t, args),
        "action-set" => tools_action::action_set(t, args),
        "action-fail" => tools_action::action_fail(t, args),
        "action-log" => tools_action::action_log(t, args),
        "secret-add" => tools_secret::secret_add(t, args),
        "secret-set" => tools_secret::secret_set(t, args),
        "secret-remove" => tools_secret::secret_remove(t, args),
        "secret-get" => tools_secret::secret_get(t, args),
        "secret-info-get" => tools_secret::secret_info_get(t, args),
        "secret-ids" => tools_secret::secret_ids(t, args),
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
    let mut t = Tool {
        name: name.to_string(),
        dir,
        env,
        out: Vec::new(),
        used_stdin: false,
        stdin,
        model: None,
    };
    let res = dispatch(&mut t, args).and_then(|_| t.finish());
    t.model = None; // release the lock
    let (code, err) = match res {
        Ok(()) => (0, None),
        Err(e) => (e.code, Some(e)),
    };
    log_call(&t, args, code);
    (code, std::mem::take(&mut t.out), err)
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
    if t.used_stdin {
        m.insert("stdin".into(), Value::String("<stdin>".into()));
    }
    m.insert("exit".into(), Value::from(code));
    if let Some(kb) = parent_vmhwm_kb() {
        m.insert("parent_vmhwm_kb".into(), Value::from(kb));
    }
    let line = format!("{}\n", Value::Object(m));
    let _ = crate::util::append(&t.dir.join("tool-calls.log"), &line);
}
