//! The context of one hook-tool call: the hook environment, the unit dir, the lazily locked
//! model (state + journal) and the output queued for stdout.

use crate::agent::journal::{self, Journal};
use crate::agent::state::{self, Lock, State};
use crate::errors::{CmdError, CmdResult};
use crate::flags::{self, Parsed, Spec};
use crate::tools::help;
use crate::tools::output::{render, OutOpts};
use serde_json::Value;
use std::path::PathBuf;

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
    pub fn new(name: &str, dir: PathBuf, env: HookEnv, stdin: Option<Vec<u8>>) -> Tool {
        Tool {
            name: name.to_string(),
            dir,
            env,
            out: Vec::new(),
            used_stdin: false,
            stdin,
            model: None,
        }
    }

    /// Releases the model lock.
    pub fn release(&mut self) {
        self.model = None;
    }

    /// The output queued so far.
    pub fn take_output(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.out)
    }

    /// Whether the call read its content from stdin (noted, never logged, in the call log).
    pub fn used_stdin(&self) -> bool {
        self.used_stdin
    }

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

    pub fn finish(&mut self) -> CmdResult<()> {
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
