//! Driver subcommands on a model of several units (`jujusim <command> M ...`, M = a model
//! dir). Commands that share a name with a single-unit command (config, relate, status, ...)
//! are taken here when their first argument is a model dir; single-unit commands that would
//! bypass the shared model are refused on a unit dir that belongs to one.

use crate::agent::state::{self, State};
use crate::errors::{q, CmdError, CmdResult};
use crate::flags::{self, flag, opt, Parsed, Spec};
use crate::gojson;
use crate::model::queue::Event;
use crate::model::settle;
use crate::model::topology::{self, AddUnit, ModelInit};
use crate::model::{self, Model};
use crate::model::{projection, status as modelstatus};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Help text of the model commands (appended to `jujusim help`).
pub const USAGE: &str = "
Model of several units (M = model directory; events are queued, `settle` runs them):
  model-init M (--charm-dir DIR | --charm FILE.charm) [--app NAME] [--model NAME]
             [--unit-charm-dir PATH]          (prints each peer relation ENDPOINT:ID)
  add-unit M [--address IP] [--exec-prefix JSON-ARGV] [--unit-dir PATH] [--unit-charm-dir PATH]
                                              (prints `APP/N UNIT-DIR`; --unit-dir of a unit
                                              made by deploy-charm adopts it)
  remove-unit M UNIT
  set-leader M UNIT
  attach-resource M NAME FILE   (`juju attach-resource`: every unit gets the file and runs the
                                 upgrade sequence; units added later get it too)
  config M [key=value ...] [--reset key[,key]]   (no args: config JSON; one key: its value)
  relate M ENDPOINT REMOTE-APP                    (prints ENDPOINT:ID)
  remote-set M REL-ID REMOTE-UNIT [key=value ...] [--address IP]
  remote-app-set M REL-ID [key=value ...] [--file FILE]
  remote-leave M REL-ID REMOTE-UNIT
  relation-break M REL-ID
  remote-secret-add M --grant REL-ID [--grant ...] [--owner APP] [--file FILE] key=value ...   (prints the URI)
  remote-secret-set M URI [--file FILE] key=value ...      (--file: a YAML map, values off the command line)
  add-secret M NAME [--file FILE] key=value ...    (a user secret, `juju add-secret`; prints the URI)
  update-secret M NAME|URI [--file FILE] key=value ...   (a new revision: secret-changed on its readers)
  grant-secret M NAME|URI APP / revoke-secret M NAME|URI APP   (no hook runs)
  remove-secret M NAME|URI                          (no hook runs)
  settle M [--max N]         (one line per hook: `UNIT HOOK exit=CODE [relation=..] [remote-unit=..]
                              [remote-app=..] [departing-unit=..] [secret=..]`; the events of a
                              unit whose machine is down (machine-down) wait, one stderr line per
                              such unit, and run at a settle after machine-up or machine-reboot)
  resolve M UNIT [--no-retry]
  events M [--format=json]   (queued events, oldest first)
  status M [--format=json]
  secret-reveal M LABEL-OR-URI [--key K]
  hook U ... / action U ...  on a unit of a model run against the shared model
";

/// Commands that exist only for models.
const MODEL_ONLY: [&str; 13] = [
    "model-init",
    "add-unit",
    "remove-unit",
    "settle",
    "resolve",
    "events",
    "remote-secret-add",
    "remote-secret-set",
    "add-secret",
    "update-secret",
    "grant-secret",
    "revoke-secret",
    "remove-secret",
];

/// Single-unit commands that would change a model unit behind the model's back.
const REFUSED_ON_MODEL_UNITS: [(&str, &str); 13] = [
    ("config", "config M"),
    ("relate", "relate M"),
    ("remote-set", "remote-set M"),
    ("remote-app-set", "remote-app-set M"),
    ("remote-leave", "remote-leave M"),
    ("relation-break", "relation-break M"),
    ("set-leader", "set-leader M UNIT"),
    ("deploy", "add-unit M, then settle M"),
    ("integrate", "relate M and remote-set M, then settle M"),
    ("depart", "relation-break M, then settle M"),
    ("teardown", "remove-unit M, then settle M"),
    ("upgrade", "hook U upgrade-charm"),
    ("attach-resource", "attach-resource M"),
];

fn specs(cmd: &str) -> Vec<Spec> {
    match cmd {
        "model-init" => vec![
            opt("charm-dir", None),
            opt("charm", None),
            opt("app", None),
            opt("model", None),
            opt("unit-charm-dir", None),
        ],
        "add-unit" => vec![
            opt("address", None),
            opt("exec-prefix", None),
            opt("unit-dir", None),
            opt("unit-charm-dir", None),
        ],
        "config" => vec![opt("reset", None)],
        "remote-set" => vec![opt("address", None)],
        "remote-secret-add" => vec![opt("grant", None), opt("owner", None), opt("file", None)],
        "remote-secret-set" | "remote-app-set" | "add-secret" | "update-secret" => {
            vec![opt("file", None)]
        }
        "settle" => vec![opt("max", None)],
        "resolve" => vec![flag("no-retry", None)],
        "events" | "status" => vec![opt("format", None)],
        "secret-reveal" => vec![opt("key", None)],
        _ => Vec::new(),
    }
}

/// `key=value` arguments plus those of a `--file` (a YAML or JSON mapping of strings, as
/// `relation-set --file` reads), so that secret values need not be on a command line.
fn with_file_pairs(p: &Parsed, args: &[String]) -> CmdResult<Vec<String>> {
    let mut out = Vec::new();
    if let Some(f) = p.get("file") {
        let text = crate::keyvalue::read_file_arg(f)?;
        for (k, v) in crate::keyvalue::parse_settings(&text)? {
            out.push(format!("{k}={v}"));
        }
    }
    out.extend(args.iter().cloned());
    Ok(out)
}

/// Absolute path (canonical when it exists).
fn abs(s: &str) -> CmdResult<PathBuf> {
    let p = PathBuf::from(s);
    let p = if p.is_absolute() {
        p
    } else {
        std::env::current_dir()?.join(p)
    };
    Ok(p.canonicalize().unwrap_or(p))
}

/// The model a unit dir belongs to: (model dir, unit name), or None for a standalone unit.
pub fn model_unit(dir: &Path) -> CmdResult<Option<(PathBuf, String)>> {
    if !state::state_path(dir).exists() {
        return Ok(None);
    }
    let st = state::load(dir)?;
    Ok((!st.model_dir.is_empty()).then(|| (PathBuf::from(st.model_dir), st.unit)))
}

/// Refuse a single-unit command on a unit dir that belongs to a model.
fn refuse(cmd: &str, rest: &[String]) -> CmdResult<()> {
    let Some((_, instead)) = REFUSED_ON_MODEL_UNITS.iter().find(|(c, _)| *c == cmd) else {
        return Ok(());
    };
    let Some(first) = rest.iter().find(|a| !a.starts_with('-')) else {
        return Ok(());
    };
    let dir = abs(first)?;
    if let Some((m, unit)) = model_unit(&dir)? {
        return Err(CmdError::usage(format!(
            "unit {} belongs to the model in {}: use `jujusim {instead}` there",
            q(&unit),
            m.display()
        )));
    }
    Ok(())
}

/// Handle `cmd` if it is a model command; None lets the single-unit driver take it.
pub fn dispatch(cmd: &str, rest: &[String]) -> Option<CmdResult<i32>> {
    if let Err(e) = refuse(cmd, rest) {
        return Some(Err(e));
    }
    let model_only = MODEL_ONLY.contains(&cmd);
    let shared = matches!(
        cmd,
        "config"
            | "relate"
            | "remote-set"
            | "remote-app-set"
            | "remote-leave"
            | "relation-break"
            | "set-leader"
            | "status"
            | "secret-reveal"
            | "attach-resource"
    );
    if !model_only && !shared {
        return None;
    }
    let p = match flags::parse(&specs(cmd), rest) {
        Ok(p) => p,
        Err(e) if model_only => return Some(Err(e)),
        Err(_) => return None,
    };
    if p.help {
        return if model_only {
            emit(USAGE);
            Some(Ok(0))
        } else {
            None
        };
    }
    let dir = match p.args.first().map(|a| abs(a)) {
        Some(Ok(d)) => d,
        Some(Err(e)) => return Some(Err(e)),
        None if model_only => {
            return Some(Err(CmdError::usage(
                "missing model dir (see `jujusim help`)",
            )))
        }
        None => return None,
    };
    if cmd != "model-init" && !model::is_model_dir(&dir) {
        return if model_only {
            Some(Err(CmdError::runtime(format!(
                "{}: no model (run `jujusim model-init` first)",
                dir.display()
            ))))
        } else {
            None
        };
    }
    Some(run(cmd, &dir, &p))
}

/// Write to stdout; a reader that went away (`| head`) is not an error.
fn emit(text: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|_| out.flush());
}

fn arity(p: &Parsed, min: usize, max: Option<usize>) -> CmdResult<()> {
    if p.args.len() < min {
        return Err(CmdError::usage("missing arguments (see `jujusim help`)"));
    }
    if let Some(max) = max {
        if p.args.len() > max {
            return Err(crate::errors::unrecognized(&p.args[max..]));
        }
    }
    Ok(())
}

fn run(cmd: &str, dir: &Path, p: &Parsed) -> CmdResult<i32> {
    let a = &p.args;
    match cmd {
        "model-init" => cmd_model_init(dir, p),
        "add-unit" => cmd_add_unit(dir, p),
        "remove-unit" => {
            arity(p, 2, Some(2))?;
            topology::remove_unit(dir, &a[1])?;
            Ok(0)
        }
        "set-leader" => {
            arity(p, 2, Some(2))?;
            topology::set_leader(dir, &a[1])?;
            Ok(0)
        }
        "config" => cmd_config(dir, p),
        "attach-resource" => {
            arity(p, 3, Some(3))?;
            topology::attach_resource(dir, &a[1], Path::new(&a[2]))?;
            Ok(0)
        }
        "relate" => {
            arity(p, 3, Some(3))?;
            let rid = topology::relate(dir, &a[1], &a[2])?;
            println!("{}:{rid}", a[1]);
            Ok(0)
        }
        "remote-set" => {
            arity(p, 3, None)?;
            topology::remote_set(dir, &a[1], &a[2], &a[3..], p.get("address"))?;
            Ok(0)
        }
        "remote-app-set" => {
            arity(p, 2, None)?;
            topology::remote_app_set(dir, &a[1], &with_file_pairs(p, &a[2..])?)?;
            Ok(0)
        }
        "remote-leave" => {
            arity(p, 3, Some(3))?;
            topology::remote_leave(dir, &a[1], &a[2])?;
            Ok(0)
        }
        "relation-break" => {
            arity(p, 2, Some(2))?;
            topology::relation_break(dir, &a[1])?;
            Ok(0)
        }
        "remote-secret-add" => {
            arity(p, 1, None)?;
            let grants: Vec<String> = p.all("grant").iter().map(|s| s.to_string()).collect();
            let kvs = with_file_pairs(p, &a[1..])?;
            let uri = topology::remote_secret_add(dir, p.get("owner"), &grants, &kvs)?;
            println!("{uri}");
            Ok(0)
        }
        "remote-secret-set" => {
            arity(p, 2, None)?;
            topology::remote_secret_set(dir, &a[1], &with_file_pairs(p, &a[2..])?)?;
            Ok(0)
        }
        "add-secret" => {
            arity(p, 2, None)?;
            let uri = topology::user_secret_add(dir, &a[1], &with_file_pairs(p, &a[2..])?)?;
            println!("{uri}");
            Ok(0)
        }
        "update-secret" => {
            arity(p, 2, None)?;
            topology::user_secret_update(dir, &a[1], &with_file_pairs(p, &a[2..])?)?;
            Ok(0)
        }
        "grant-secret" | "revoke-secret" => {
            arity(p, 3, Some(3))?;
            topology::user_secret_grant(dir, &a[1], &a[2], cmd == "grant-secret")?;
            Ok(0)
        }
        "remove-secret" => {
            arity(p, 2, Some(2))?;
            topology::user_secret_remove(dir, &a[1])?;
            Ok(0)
        }
        "settle" => {
            arity(p, 1, Some(1))?;
            let max = match p.get("max") {
                None => settle::DEFAULT_MAX,
                Some(v) => v.parse().map_err(|_| {
                    CmdError::usage(format!("--max: expected a number, got {}", q(v)))
                })?,
            };
            let n = settle::settle(dir, max, &mut std::io::stdout())?;
            eprintln!("settled: {n} hooks run");
            Ok(0)
        }
        "resolve" => {
            arity(p, 2, Some(2))?;
            settle::resolve(dir, &a[1], p.on("no-retry"))?;
            Ok(0)
        }
        "events" => cmd_events(dir, p),
        "status" => cmd_status(dir, p),
        "secret-reveal" => {
            arity(p, 2, Some(2))?;
            let m = model::load(dir)?;
            let st = State {
                secrets: m.secrets,
                ..Default::default()
            };
            emit(&crate::agent::secrets::reveal(&st, &a[1], p.get("key"))?);
            Ok(0)
        }
        other => Err(CmdError::usage(format!("unknown command {}", q(other)))),
    }
}

/// Unpack a `.charm` (zip) into `M/charm`; returns that dir.
fn unpack_charm(dir: &Path, file: &Path) -> CmdResult<PathBuf> {
    if !file.is_file() {
        return Err(CmdError::runtime(format!(
            "{}: no such file",
            file.display()
        )));
    }
    let target = dir.join("charm");
    if target.exists() {
        std::fs::remove_dir_all(&target)?;
    }
    std::fs::create_dir_all(&target)?;
    let st = Command::new("unzip")
        .arg("-q")
        .arg("-o")
        .arg(file)
        .arg("-d")
        .arg(&target)
        .status()
        .map_err(|e| CmdError::runtime(format!("unzip: {e}")))?;
    if !st.success() {
        return Err(CmdError::runtime(format!(
            "unzip {} failed: {st}",
            file.display()
        )));
    }
    Ok(target)
}

fn cmd_model_init(dir: &Path, p: &Parsed) -> CmdResult<i32> {
    arity(p, 1, Some(1))?;
    let charm_dir = match (p.get("charm-dir"), p.get("charm")) {
        (Some(d), None) => PathBuf::from(d),
        (None, Some(f)) => {
            std::fs::create_dir_all(dir)?;
            unpack_charm(dir, &abs(f)?)?
        }
        _ => {
            return Err(CmdError::usage(
                "exactly one of --charm-dir or --charm is required",
            ))
        }
    };
    let m = topology::model_init(
        dir,
        &ModelInit {
            charm_dir,
            app: p.get("app").map(str::to_string),
            model: p.get("model").map(str::to_string),
            unit_charm_dir: p.get("unit-charm-dir").map(str::to_string),
        },
    )?;
    for r in m.relations.values() {
        println!("{}", r.name());
    }
    eprintln!(
        "initialised model {} of {} in {}",
        m.name,
        m.app,
        dir.display()
    );
    Ok(0)
}

fn cmd_add_unit(dir: &Path, p: &Parsed) -> CmdResult<i32> {
    arity(p, 1, Some(1))?;
    let exec_prefix = match p.get("exec-prefix") {
        None | Some("") => None,
        Some(s) => Some(serde_json::from_str::<Vec<String>>(s).map_err(|e| {
            CmdError::usage(format!("--exec-prefix must be a JSON list of strings: {e}"))
        })?),
    };
    let unit_dir = p.get("unit-dir").map(abs).transpose()?;
    let (name, udir) = topology::add_unit(
        dir,
        &AddUnit {
            address: p.get("address").map(str::to_string),
            exec_prefix,
            unit_dir,
            unit_charm_dir: p.get("unit-charm-dir").map(str::to_string),
        },
    )?;
    println!("{name} {}", udir.display());
    Ok(0)
}

fn cmd_config(dir: &Path, p: &Parsed) -> CmdResult<i32> {
    let kvs = &p.args[1..];
    let resets: Vec<String> = p
        .all("reset")
        .iter()
        .flat_map(|r| r.split(','))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    if kvs.is_empty() && resets.is_empty() {
        let m = model::load(dir)?;
        emit(&gojson::encode_line(&Value::Object(topology::config_view(
            &m,
        ))));
        return Ok(0);
    }
    if let [key] = kvs {
        if !key.contains('=') && resets.is_empty() {
            let m = model::load(dir)?;
            let v = topology::config_view(&m)
                .get(key)
                .cloned()
                .unwrap_or(Value::Null);
            emit(&gojson::encode_line(&v));
            return Ok(0);
        }
    }
    topology::set_config(dir, kvs, &resets)?;
    Ok(0)
}

fn event_json(m: &Model, e: &Event) -> Value {
    json!({
        "unit": e.unit,
        "hook": e.hook,
        "relation": settle::relation_name(m, e),
        "remote-unit": e.remote_unit,
        "remote-app": e.remote_app,
        "departing-unit": e.departing,
        "secret-id": e.secret_id,
        "secret-label": e.secret_label,
    })
}

fn cmd_events(dir: &Path, p: &Parsed) -> CmdResult<i32> {
    arity(p, 1, Some(1))?;
    let m = model::load(dir)?;
    match p.get("format") {
        Some("json") => {
            let v: Vec<Value> = m.queue.events.iter().map(|e| event_json(&m, e)).collect();
            emit(&gojson::encode_line(&json!(v)));
        }
        None | Some("tabular") => {
            let mut text = String::new();
            for e in &m.queue.events {
                let line = format!(
                    "{} {} {}",
                    e.unit,
                    e.hook,
                    e.context(settle::relation_name(&m, e))
                );
                text.push_str(line.trim_end());
                text.push('\n');
            }
            emit(&text);
        }
        Some(f) => return Err(CmdError::usage(format!("unknown format {}", q(f)))),
    }
    Ok(0)
}

/// Every unit's own state.json (statuses, ports), refreshed from the model first.
fn unit_states(dir: &Path, m: &Model) -> CmdResult<BTreeMap<String, State>> {
    let mut out = BTreeMap::new();
    for (name, mu) in &m.units {
        let udir = PathBuf::from(&mu.dir);
        if let Ok(st) = state::load(&udir) {
            let mut st = st;
            projection::project(m, dir, name, &mut st);
            out.insert(name.clone(), st);
        }
    }
    Ok(out)
}

fn cmd_status(dir: &Path, p: &Parsed) -> CmdResult<i32> {
    arity(p, 1, Some(1))?;
    let m = model::load(dir)?;
    let units = unit_states(dir, &m)?;
    match p.get("format") {
        Some("json") => emit(&gojson::encode_line(&modelstatus::status_json(&m, &units))),
        None | Some("tabular") => emit(&modelstatus::status_table(&m, &units)),
        Some(f) => return Err(CmdError::usage(format!("unknown format {}", q(f)))),
    }
    Ok(0)
}
