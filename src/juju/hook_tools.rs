//! The seam between the charm and the Juju unit agent: one method per hook tool.
//!
//! The real implementation runs the tools found on `PATH` (symlinks to `jujuc` on a unit, the
//! `jujusim` simulator in tests) with `--format=json` where the tool has it, checks every exit
//! status and folds stderr into the error. Values that may be secret travel on stdin
//! (`--file -`), never on a command line.

use std::collections::BTreeMap;
use std::ffi::OsString;

use serde_json::Value;

use super::status::Status;

/// A relation databag: string keys and values only.
pub type Databag = BTreeMap<String, String>;

/// A databag from key/value pairs.
pub fn bag_of(pairs: &[(&str, &str)]) -> Databag {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// A hook tool that failed: which one, its exit code and what it said on stderr.
#[derive(Debug)]
pub struct HookToolError {
    pub tool: String,
    pub detail: String,
}

impl std::fmt::Display for HookToolError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "hook tool {} failed: {}", self.tool, self.detail)
    }
}

impl std::error::Error for HookToolError {}

pub type ToolResult<T> = Result<T, HookToolError>;

/// Every hook tool the charm uses.
pub trait HookTools {
    /// All config options with a value or a default (`config-get --format=json`).
    fn config_get(&self) -> ToolResult<BTreeMap<String, Value>>;
    fn relation_ids(&self, endpoint: &str) -> ToolResult<Vec<String>>;
    fn relation_list(&self, relation_id: &str) -> ToolResult<Vec<String>>;
    /// The whole databag of `unit` (a unit name) in `relation_id`.
    fn relation_get(&self, relation_id: &str, unit: &str) -> ToolResult<Databag>;
    /// Sets keys of this unit's databag (an empty value deletes the key).
    fn relation_set(&self, relation_id: &str, data: &Databag) -> ToolResult<()>;
    /// The application databag of `app` in `relation_id` (the remote application's, or, on
    /// a peer relation or as the leader, this application's own).
    fn relation_get_app(&self, relation_id: &str, app: &str) -> ToolResult<Databag>;
    /// Sets keys of this application's databag (leader only; an empty value deletes).
    fn relation_set_app(&self, relation_id: &str, data: &Databag) -> ToolResult<()>;
    fn opened_ports(&self) -> ToolResult<Vec<String>>;
    fn open_port(&self, port: u16) -> ToolResult<()>;
    fn close_port(&self, port: u16) -> ToolResult<()>;
    fn status_set(&self, status: &Status) -> ToolResult<()>;
    fn application_version_set(&self, version: &str) -> ToolResult<()>;
    fn log(&self, level: &str, message: &str) -> ToolResult<()>;
    fn is_leader(&self) -> ToolResult<bool>;
    /// This unit's public address (`unit-get public-address`).
    fn public_address(&self) -> ToolResult<String>;
    /// The first ingress address of an endpoint binding (`network-get`).
    fn ingress_address(&self, binding: &str) -> ToolResult<Option<String>>;
    /// A key of this unit's Juju-held state; `None` when absent.
    fn state_get(&self, key: &str) -> ToolResult<Option<String>>;
    /// Stores keys in this unit's Juju-held state (committed when the hook succeeds).
    fn state_set(&self, data: &Databag) -> ToolResult<()>;
    /// The content of the secret this application owns under `label`; `None` if no such
    /// secret exists (yet).
    fn secret_get(&self, label: &str) -> ToolResult<Option<Databag>>;
    /// Creates an application-owned secret (leader only) whose single key `key` holds the
    /// content of `file` (`key#file=…`: the value never appears on a command line). Returns
    /// the secret's URI; committed when the hook succeeds.
    fn secret_add_from_file(
        &self,
        label: &str,
        description: &str,
        key: &str,
        file: &std::path::Path,
    ) -> ToolResult<String> {
        self.secret_add_from_files(label, description, &[(key, file)])
    }
    /// The same with one key per file.
    fn secret_add_from_files(
        &self,
        label: &str,
        description: &str,
        entries: &[(&str, &std::path::Path)],
    ) -> ToolResult<String>;
    /// Removes this application's secret `uri` (leader only), every revision.
    fn secret_remove(&self, uri: &str) -> ToolResult<()>;
    /// The content of the secret `uri` (another application's, granted to a relation, or this
    /// application's own); `refresh` moves this unit to its latest revision. `None` if it
    /// does not exist (any more).
    fn secret_get_by_id(&self, uri: &str, refresh: bool) -> ToolResult<Option<Databag>>;
    /// The URI of the secret labelled `label`.
    fn secret_id(&self, label: &str) -> ToolResult<Option<String>>;
    fn action_set(&self, results: &Databag) -> ToolResult<()>;
    fn action_fail(&self, message: &str) -> ToolResult<()>;
    /// The local path of resource `name` (`resource-get`); `Err` when Juju cannot provide
    /// it (none attached, or the download from the controller failed).
    fn resource_get(&self, name: &str) -> ToolResult<std::path::PathBuf>;
    /// The running action's parameters (`action-get --format=json`).
    fn action_get(&self) -> ToolResult<BTreeMap<String, Value>>;
}

/// Runs the real hook tools from `PATH`.
pub struct CliHookTools {
    path: Option<String>,
}

impl CliHookTools {
    /// `path` is the hook's PATH (from the context); `None` keeps the process's own.
    pub fn new(path: Option<String>) -> Self {
        CliHookTools { path }
    }

    fn run(&self, tool: &str, args: &[&str], stdin: Option<&[u8]>) -> ToolResult<Vec<u8>> {
        let argv: Vec<OsString> = args.iter().map(OsString::from).collect();
        let mut expr = duct::cmd(tool, argv)
            .stdout_capture()
            .stderr_capture()
            .unchecked();
        if let Some(path) = &self.path {
            expr = expr.env("PATH", path);
        }
        expr = match stdin {
            Some(bytes) => expr.stdin_bytes(bytes.to_vec()),
            None => expr.stdin_null(),
        };
        let out = expr.run().map_err(|e| HookToolError {
            tool: tool.to_owned(),
            detail: format!("cannot run: {e}"),
        })?;
        if !out.status.success() {
            let stderr = String::from_utf8_lossy(&out.stderr);
            return Err(HookToolError {
                tool: tool.to_owned(),
                detail: format!(
                    "exit {}: {}",
                    out.status.code().map_or("signal".into(), |c| c.to_string()),
                    stderr.trim()
                ),
            });
        }
        Ok(out.stdout)
    }

    fn json(&self, tool: &str, args: &[&str]) -> ToolResult<Value> {
        let mut full = vec!["--format=json"];
        full.extend_from_slice(args);
        let out = self.run(tool, &full, None)?;
        serde_json::from_slice(&out).map_err(|e| HookToolError {
            tool: tool.to_owned(),
            detail: format!("unreadable JSON output: {e}"),
        })
    }
}

/// A JSON list of strings; anything else (e.g. `null`) is an empty list.
fn string_list(v: Value) -> Vec<String> {
    match v {
        Value::Array(items) => items
            .into_iter()
            .filter_map(|i| i.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    }
}

/// A databag from JSON; values that are not strings are dropped, not trusted.
fn databag(v: Value) -> Databag {
    match v {
        Value::Object(map) => map
            .into_iter()
            .filter_map(|(k, v)| match v {
                Value::String(s) => Some((k, s)),
                _ => None,
            })
            .collect(),
        _ => Databag::new(),
    }
}

impl HookTools for CliHookTools {
    fn config_get(&self) -> ToolResult<BTreeMap<String, Value>> {
        match self.json("config-get", &[])? {
            Value::Object(map) => Ok(map.into_iter().collect()),
            _ => Ok(BTreeMap::new()),
        }
    }

    fn relation_ids(&self, endpoint: &str) -> ToolResult<Vec<String>> {
        self.json("relation-ids", &[endpoint]).map(string_list)
    }

    fn relation_list(&self, relation_id: &str) -> ToolResult<Vec<String>> {
        self.json("relation-list", &["-r", relation_id])
            .map(string_list)
    }

    fn relation_get(&self, relation_id: &str, unit: &str) -> ToolResult<Databag> {
        self.json("relation-get", &["-r", relation_id, "-", unit])
            .map(databag)
    }

    fn relation_set(&self, relation_id: &str, data: &Databag) -> ToolResult<()> {
        let body = serde_json::to_vec(data).expect("a map of strings serialises");
        self.run(
            "relation-set",
            &["-r", relation_id, "--file", "-"],
            Some(&body),
        )
        .map(drop)
    }

    fn relation_get_app(&self, relation_id: &str, app: &str) -> ToolResult<Databag> {
        self.json("relation-get", &["-r", relation_id, "--app", "-", app])
            .map(databag)
    }

    fn relation_set_app(&self, relation_id: &str, data: &Databag) -> ToolResult<()> {
        let body = serde_json::to_vec(data).expect("a map of strings serialises");
        self.run(
            "relation-set",
            &["-r", relation_id, "--app", "--file", "-"],
            Some(&body),
        )
        .map(drop)
    }

    fn opened_ports(&self) -> ToolResult<Vec<String>> {
        self.json("opened-ports", &[]).map(string_list)
    }

    fn open_port(&self, port: u16) -> ToolResult<()> {
        self.run("open-port", &[&format!("{port}/tcp")], None)
            .map(drop)
    }

    fn close_port(&self, port: u16) -> ToolResult<()> {
        self.run("close-port", &[&format!("{port}/tcp")], None)
            .map(drop)
    }

    fn status_set(&self, status: &Status) -> ToolResult<()> {
        self.run("status-set", &[status.kind.as_str(), &status.message], None)
            .map(drop)
    }

    fn application_version_set(&self, version: &str) -> ToolResult<()> {
        self.run("application-version-set", &["--", version], None)
            .map(drop)
    }

    fn log(&self, level: &str, message: &str) -> ToolResult<()> {
        self.run("juju-log", &["--log-level", level, "--", message], None)
            .map(drop)
    }

    fn is_leader(&self) -> ToolResult<bool> {
        Ok(self.json("is-leader", &[])? == Value::Bool(true))
    }

    fn public_address(&self) -> ToolResult<String> {
        match self.json("unit-get", &["public-address"])? {
            Value::String(s) => Ok(s),
            other => Err(HookToolError {
                tool: "unit-get".into(),
                detail: format!("expected a string, got {other}"),
            }),
        }
    }

    fn ingress_address(&self, binding: &str) -> ToolResult<Option<String>> {
        let v = self.json("network-get", &[binding, "--ingress-address"])?;
        Ok(match v {
            Value::String(s) => Some(s),
            list => string_list(list).into_iter().next(),
        })
    }

    fn state_get(&self, key: &str) -> ToolResult<Option<String>> {
        // A missing key prints "" (or null); both mean absent.
        Ok(match self.json("state-get", &[key])? {
            Value::String(s) if !s.is_empty() => Some(s),
            _ => None,
        })
    }

    fn state_set(&self, data: &Databag) -> ToolResult<()> {
        let body = serde_json::to_vec(data).expect("a map of strings serialises");
        self.run("state-set", &["--file", "-"], Some(&body))
            .map(drop)
    }

    fn secret_get(&self, label: &str) -> ToolResult<Option<Databag>> {
        match self.json("secret-get", &["--label", label]) {
            Ok(v) => Ok(Some(databag(v))),
            Err(e) if e.detail.contains("not found") => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn secret_add_from_files(
        &self,
        label: &str,
        description: &str,
        entries: &[(&str, &std::path::Path)],
    ) -> ToolResult<String> {
        let mut args = vec![
            "--label".to_owned(),
            label.to_owned(),
            "--description".to_owned(),
            description.to_owned(),
        ];
        args.extend(
            entries
                .iter()
                .map(|(key, file)| format!("{key}#file={}", file.display())),
        );
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = self.run("secret-add", &refs, None)?;
        Ok(String::from_utf8_lossy(&out).trim().to_owned())
    }

    fn secret_remove(&self, uri: &str) -> ToolResult<()> {
        self.run("secret-remove", &[uri], None).map(drop)
    }

    fn secret_get_by_id(&self, uri: &str, refresh: bool) -> ToolResult<Option<Databag>> {
        let mut args = vec![uri];
        if refresh {
            args.push("--refresh");
        }
        match self.json("secret-get", &args) {
            Ok(v) => Ok(Some(databag(v))),
            Err(e) if e.detail.contains("not found") => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn secret_id(&self, label: &str) -> ToolResult<Option<String>> {
        match self.json("secret-info-get", &["--label", label]) {
            Ok(Value::Object(map)) => Ok(map.keys().next().map(|id| {
                if id.starts_with("secret:") {
                    id.clone()
                } else {
                    format!("secret:{id}")
                }
            })),
            Ok(_) => Ok(None),
            Err(e) if e.detail.contains("not found") => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn action_set(&self, results: &Databag) -> ToolResult<()> {
        let args: Vec<String> = results.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        self.run("action-set", &refs, None).map(drop)
    }

    fn action_fail(&self, message: &str) -> ToolResult<()> {
        self.run("action-fail", &[message], None).map(drop)
    }

    fn action_get(&self) -> ToolResult<BTreeMap<String, Value>> {
        match self.json("action-get", &[])? {
            Value::Object(m) => Ok(m.into_iter().collect()),
            _ => Ok(BTreeMap::new()),
        }
    }

    fn resource_get(&self, name: &str) -> ToolResult<std::path::PathBuf> {
        let out = self.run("resource-get", &[name], None)?;
        Ok(std::path::PathBuf::from(
            String::from_utf8_lossy(&out).trim_end_matches('\n'),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn null_and_odd_shapes_become_empty() {
        assert!(string_list(Value::Null).is_empty());
        assert_eq!(string_list(json!(["a", 1, "b"])), vec!["a", "b"]);
        let bag = databag(json!({"hostname": "h", "port": 27017, "x": null}));
        assert_eq!(bag.len(), 1);
        assert_eq!(bag["hostname"], "h");
        assert!(databag(json!("nope")).is_empty());
    }
}
