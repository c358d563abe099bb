//! Running one hook or action as the unit agent does: the environment (CONTRACT.md §1),
//! handler lookup (CONTRACT.md §2.1), relation membership (CONTRACT.md §3.3) and the
//! commit-or-discard of the journal and agent status (CONTRACT.md §2.3, §2.4).

use crate::agent::journal::{self, Journal};
use crate::agent::runner::{self, RunResult};
use crate::agent::state::{self, State, Status};
use crate::agent::{actionparams, relations};
use crate::errors::{q, CmdError, CmdResult};
use crate::{gojson, util};
use serde_json::{json, Map, Value};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Juju version reported to the charm.
pub const JUJU_VERSION: &str = "3.6.1";
const STD_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
const RELATION_KINDS: [&str; 5] = ["created", "joined", "changed", "departed", "broken"];

/// What to run for `jujusim hook`.
#[derive(Debug, Clone, Default)]
pub struct HookRequest {
    pub name: String,
    pub relation: Option<String>,
    pub remote_unit: Option<String>,
    pub departing: Option<String>,
    pub remote_app: Option<String>,
    /// secret-* hooks: JUJU_SECRET_ID (the URI), JUJU_SECRET_LABEL, JUJU_SECRET_REVISION.
    pub secret_id: Option<String>,
    pub secret_label: Option<String>,
    pub secret_revision: Option<u32>,
}

impl HookRequest {
    pub fn plain(name: &str) -> HookRequest {
        HookRequest {
            name: name.to_string(),
            ..Default::default()
        }
    }

    pub fn relation(name: &str, rid: u32, remote_unit: Option<&str>) -> HookRequest {
        HookRequest {
            name: name.to_string(),
            relation: Some(rid.to_string()),
            remote_unit: remote_unit.map(str::to_string),
            ..Default::default()
        }
    }
}

/// `<ep>-relation-<kind>` → (ep, kind).
pub fn relation_hook_parts(name: &str) -> Option<(String, String)> {
    RELATION_KINDS.iter().find_map(|kind| {
        name.strip_suffix(&format!("-relation-{kind}"))
            .filter(|ep| !ep.is_empty())
            .map(|ep| (ep.to_string(), kind.to_string()))
    })
}

/// The CONTRACT.md §1.1 environment (plus JUJUSIM_UNIT_DIR), built from scratch.
pub fn base_env(
    st: &State,
    dir: &Path,
    dispatch_path: &str,
    hook_name: &str,
    ctx: &str,
) -> Vec<(String, String)> {
    let agent = st.agent_name();
    let mut path = dir.join("tools").display().to_string();
    if let Ok(extra) = std::env::var("JUJUSIM_EXTRA_PATH") {
        if !extra.is_empty() {
            path = format!("{path}:{extra}");
        }
    }
    path = format!("{path}:{STD_PATH}");
    let pairs: Vec<(&str, String)> = vec![
        ("JUJU_DISPATCH_PATH", dispatch_path.to_string()),
        ("JUJU_HOOK_NAME", hook_name.to_string()),
        ("JUJU_UNIT_NAME", st.unit.clone()),
        ("JUJU_MODEL_NAME", st.model.clone()),
        ("JUJU_MODEL_UUID", st.model_uuid.clone()),
        ("JUJU_CHARM_DIR", st.charm_dir.clone()),
        ("CHARM_DIR", st.charm_dir.clone()),
        (
            "JUJU_CONTEXT_ID",
            format!("{}-{ctx}-{}", st.unit, util::random_digits()),
        ),
        (
            "JUJU_AGENT_SOCKET_ADDRESS",
            format!("@/var/lib/juju/agents/{agent}/agent.socket"),
        ),
        ("JUJU_AGENT_SOCKET_NETWORK", "unix".into()),
        ("JUJU_API_ADDRESSES", "10.0.0.1:17070".into()),
        ("JUJU_MACHINE_ID", st.machine_id.clone()),
        ("JUJU_PRINCIPAL_UNIT", String::new()),
        ("JUJU_AVAILABILITY_ZONE", String::new()),
        ("JUJU_VERSION", JUJU_VERSION.into()),
        ("JUJU_SLA", String::new()),
        ("CLOUD_API_VERSION", String::new()),
        // Model config juju-http-proxy & co; the driver's JUJUSIM_* variables stand for it.
        ("JUJU_CHARM_HTTP_PROXY", model_setting("JUJUSIM_HTTP_PROXY")),
        (
            "JUJU_CHARM_HTTPS_PROXY",
            model_setting("JUJUSIM_HTTPS_PROXY"),
        ),
        ("JUJU_CHARM_FTP_PROXY", String::new()),
        ("JUJU_CHARM_NO_PROXY", model_setting("JUJUSIM_NO_PROXY")),
        ("PATH", path),
        ("LANG", "C.UTF-8".into()),
        ("TERM", "tmux-256color".into()),
        ("DEBIAN_FRONTEND", "noninteractive".into()),
        ("APT_LISTCHANGES_FRONTEND", "none".into()),
        ("JUJUSIM_UNIT_DIR", dir.display().to_string()),
    ];
    let mut env: Vec<(String, String)> =
        pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
    env.extend(injected_env(std::env::vars()));
    env
}

/// Fault injection for tests, never part of Juju's environment: every driver variable
/// `JUJUSIM_HOOK_ENV_<NAME>=<value>` becomes `<NAME>=<value>` in the hook's environment.
pub fn injected_env(vars: impl Iterator<Item = (String, String)>) -> Vec<(String, String)> {
    vars.filter_map(|(k, v)| {
        k.strip_prefix("JUJUSIM_HOOK_ENV_")
            .filter(|name| !name.is_empty())
            .map(|name| (name.to_owned(), v))
    })
    .collect()
}

/// A model-config value the driver was given through its environment ("" when unset).
fn model_setting(var: &str) -> String {
    std::env::var(var).unwrap_or_default()
}

/// What the agent would execute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Handler {
    /// Path of the executable as the unit sees it.
    Run(String),
    /// No dispatch and no hooks/<name>: skipped (hooks) / not implemented (actions).
    Missing,
    /// The hook fails without running (no metadata.yaml, non-executable dispatch).
    Fail(i32, String),
}

fn executable(p: &Path) -> Option<bool> {
    let md = std::fs::metadata(p).ok()?;
    Some(md.is_file() && md.permissions().mode() & 0o111 != 0)
}

/// CONTRACT.md §2.1: dispatch if present (must be executable, no fallback), else `<kind>/<name>`.
pub fn find_handler(st: &State, kind: &str, name: &str) -> Handler {
    let host = Path::new(&st.host_charm_dir);
    if !host.join("metadata.yaml").exists() {
        return Handler::Fail(1, format!("charm missing from disk: {}", host.display()));
    }
    for rel in ["dispatch".to_string(), format!("{kind}/{name}")] {
        let hp = host.join(&rel);
        if std::fs::symlink_metadata(&hp).is_err() {
            continue;
        }
        let unit_path = format!("{}/{rel}", st.charm_dir.trim_end_matches('/'));
        return match executable(&hp) {
            Some(true) => Handler::Run(unit_path),
            _ => Handler::Fail(126, format!("fork/exec {unit_path}: permission denied")),
        };
    }
    Handler::Missing
}

fn cwd_for(st: &State) -> PathBuf {
    // With an exec prefix the process enters its own cwd (nsenter --wdns); the host-side
    // cwd only has to exist.
    let unit = PathBuf::from(&st.charm_dir);
    if st.exec_prefix.is_some() {
        PathBuf::from("/")
    } else if unit.is_dir() {
        unit
    } else {
        PathBuf::from(&st.host_charm_dir)
    }
}

/// A test's request, never part of Juju: with `JUJUSIM_HOOK_TRACE=<host file>` in the
/// driver's environment, the hook runs under `strace -f -e trace=execve`, which writes every
/// program the hook starts (its own binary, each hook tool, anything else) to that file.
pub const TRACE_VAR: &str = "JUJUSIM_HOOK_TRACE";

/// The tracer's argv, put before everything else (the machine's `nsenter` prefix included:
/// the tracer runs on the host and follows the hook into the unit's namespaces).
fn trace_prefix(file: Option<std::ffi::OsString>) -> Vec<String> {
    match file.map(|f| f.to_string_lossy().into_owned()) {
        Some(f) if !f.is_empty() => ["strace", "-f", "-qq", "-e", "trace=execve", "-o", &f]
            .map(str::to_owned)
            .to_vec(),
        _ => Vec::new(),
    }
}

/// Run the handler, append its output to hook-output.log and its timing to hook-times.jsonl.
fn execute(
    dir: &Path,
    st: &State,
    env: &[(String, String)],
    handler: &Handler,
    label: &str,
) -> CmdResult<RunResult> {
    let res = match handler {
        Handler::Run(path) => {
            let mut argv = trace_prefix(std::env::var_os(TRACE_VAR));
            argv.extend(st.exec_prefix.clone().unwrap_or_default());
            argv.push(path.clone());
            runner::run(&argv, env, &cwd_for(st), true)?
        }
        Handler::Missing => RunResult {
            lines: vec![(false, format!("skipped {} hook (missing)", q(label)))],
            ..Default::default()
        },
        Handler::Fail(code, msg) => {
            eprintln!("{msg}");
            RunResult {
                code: *code,
                stderr: msg.clone().into_bytes(),
                lines: vec![(true, msg.clone())],
                ..Default::default()
            }
        }
    };
    let mut log = String::new();
    for (is_err, line) in &res.lines {
        let tag = if *is_err { " (stderr)" } else { "" };
        log.push_str(&format!("[{label}]{tag} {line}\n"));
    }
    if !log.is_empty() {
        util::append(&dir.join("hook-output.log"), &log)?;
    }
    let times =
        json!({"hook": label, "ms": res.ms, "max_rss_kb": res.max_rss_kb, "exit": res.code});
    util::append(&dir.join("hook-times.jsonl"), &gojson::encode_line(&times))?;
    Ok(res)
}

fn fresh_journal(dir: &Path, label: &str) -> CmdResult<()> {
    journal::clear(dir)?;
    journal::save(
        dir,
        &Journal {
            hook: label.to_string(),
            context_id: util::random_digits(),
            ..Default::default()
        },
    )?;
    Ok(())
}

fn check_machine(st: &State) -> CmdResult<()> {
    if st.machine_mode && st.exec_prefix.is_none() {
        return Err(CmdError::runtime(
            "the unit's machine is not running (run `jujusim machine-up` first)",
        ));
    }
    Ok(())
}

/// Context of a relation hook, resolved against the model.
struct RelCtx {
    rid: u32,
    kind: String,
    remote_unit: String,
    departing: Option<String>,
}

fn prepare_relation(
    st: &mut State,
    req: &HookRequest,
    ep: &str,
    kind: &str,
) -> CmdResult<(RelCtx, Vec<(String, String)>)> {
    if !st.endpoints.contains_key(ep) {
        return Err(CmdError::usage(format!(
            "hook {}: endpoint {} is not defined in metadata.yaml",
            q(&req.name),
            q(ep)
        )));
    }
    let rid = match &req.relation {
        Some(r) => relations::resolve_id(st, r)?,
        None => {
            let ids: Vec<u32> = st
                .relations
                .values()
                .filter(|r| r.endpoint == ep)
                .map(|r| r.id)
                .collect();
            match ids.as_slice() {
                [one] => *one,
                _ => {
                    return Err(CmdError::usage(format!(
                        "hook {}: --relation is required",
                        q(&req.name)
                    )))
                }
            }
        }
    };
    let rel = st.relations[&rid].clone();
    if rel.endpoint != ep {
        return Err(CmdError::usage(format!(
            "relation {} is not on endpoint {}",
            q(&rel.name()),
            q(ep)
        )));
    }
    let remote_app = req.remote_app.clone().unwrap_or_else(|| {
        if rel.is_peer() {
            st.app.clone()
        } else {
            rel.remote_app.clone()
        }
    });
    let need = |what: &str| CmdError::usage(format!("hook {}: {what} is required", q(&req.name)));
    let (remote_unit, departing) = match kind {
        "created" | "broken" => (String::new(), None),
        "joined" => (
            req.remote_unit
                .clone()
                .ok_or_else(|| need("--remote-unit"))?,
            None,
        ),
        "changed" => (req.remote_unit.clone().unwrap_or_default(), None),
        _ => {
            let dep = req
                .departing
                .clone()
                .or_else(|| req.remote_unit.clone())
                .ok_or_else(|| need("--departing-unit or --remote-unit"))?;
            (
                req.remote_unit.clone().unwrap_or_else(|| dep.clone()),
                Some(dep),
            )
        }
    };
    // CONTRACT.md §3.3 membership as seen by this hook.
    match kind {
        "joined" => st.add_member(rid, &remote_unit, None),
        "departed" => {
            // When the local unit itself is leaving (JUJU_DEPARTING_UNIT = itself), each
            // -departed takes the remote unit out of its view instead.
            let own = st.unit.clone();
            if let (Some(rel), Some(dep)) = (st.relations.get_mut(&rid), &departing) {
                let gone = if *dep == own { &remote_unit } else { dep };
                rel.members.remove(gone);
            }
        }
        "broken" => {
            if let Some(rel) = st.relations.get_mut(&rid) {
                rel.broken = true;
            }
        }
        _ => {}
    }
    if kind == "created" {
        if let Some(rel) = st.relations.get_mut(&rid) {
            rel.created_run = true;
        }
    }
    let mut env = vec![
        ("JUJU_RELATION".to_string(), ep.to_string()),
        ("JUJU_RELATION_ID".to_string(), rel.name()),
        ("JUJU_REMOTE_APP".to_string(), remote_app),
        ("JUJU_REMOTE_UNIT".to_string(), remote_unit.clone()),
    ];
    if let Some(d) = &departing {
        env.push(("JUJU_DEPARTING_UNIT".to_string(), d.clone()));
    }
    Ok((
        RelCtx {
            rid,
            kind: kind.to_string(),
            remote_unit,
            departing,
        },
        env,
    ))
}

/// CONTRACT.md §1.2 secret hook variables: JUJU_SECRET_ID and JUJU_SECRET_LABEL (possibly empty),
/// JUJU_SECRET_REVISION only when > 0.
fn secret_env(req: &HookRequest) -> Vec<(String, String)> {
    let Some(id) = &req.secret_id else {
        return Vec::new();
    };
    let mut env = vec![
        ("JUJU_SECRET_ID".to_string(), id.clone()),
        (
            "JUJU_SECRET_LABEL".to_string(),
            req.secret_label.clone().unwrap_or_default(),
        ),
    ];
    if let Some(r) = req.secret_revision.filter(|r| *r > 0) {
        env.push(("JUJU_SECRET_REVISION".to_string(), r.to_string()));
    }
    env
}

/// Run one hook; prints `hook <name>: exit <code> in <ms> ms` on stderr; returns the exit code.
pub fn run_hook(dir: &Path, req: &HookRequest) -> CmdResult<i32> {
    let _hook_lock = state::lock_named(dir, ".hook-lock")?;
    let name = req.name.clone();
    let (snapshot, env, handler, relctx) = {
        let _l = state::lock(dir)?;
        let mut st = state::load(dir)?;
        check_machine(&st)?;
        let mut env_extra = Vec::new();
        let mut relctx = None;
        if let Some((ep, kind)) = relation_hook_parts(&name) {
            let (ctx, extra) = prepare_relation(&mut st, req, &ep, &kind)?;
            env_extra = extra;
            relctx = Some(ctx);
        }
        if name == "install" && !st.charm_set_status {
            st.set_unit_status(
                Status::new("maintenance", "installing charm software"),
                &name,
            );
        }
        st.set_agent_status(
            Status::new("executing", &format!("running {name} hook")),
            &name,
        );
        fresh_journal(dir, &name)?;
        state::save(dir, &st)?;
        let mut env = base_env(&st, dir, &format!("hooks/{name}"), &name, &name);
        env.extend(env_extra);
        env.extend(secret_env(req));
        let handler = find_handler(&st, "hooks", &name);
        (st, env, handler, relctx)
    };
    let res = execute(dir, &snapshot, &env, &handler, &name)?;
    {
        let _l = state::lock(dir)?;
        let mut st = state::load(dir)?;
        let j = journal::load(dir)?;
        if res.code == 0 {
            j.commit(&mut st);
            st.set_agent_status(Status::new("idle", ""), &name);
            if name == "install" && !st.charm_set_status {
                st.set_unit_status(Status::new("unknown", ""), &name);
            }
            if let Some(ctx) = &relctx {
                if ctx.kind == "broken" {
                    st.relations.remove(&ctx.rid);
                }
            }
        } else {
            let mut s = Status::new("error", &format!("hook failed: {}", q(&name)));
            s.data.insert("hook".into(), json!(name));
            if let Some(ctx) = &relctx {
                s.data.insert("relation-id".into(), json!(ctx.rid));
                let ru = ctx
                    .departing
                    .clone()
                    .unwrap_or_else(|| ctx.remote_unit.clone());
                if !ru.is_empty() {
                    s.data.insert("remote-unit".into(), json!(ru));
                }
            }
            st.set_agent_status(s, &name);
        }
        journal::clear(dir)?;
        state::save(dir, &st)?;
    }
    eprintln!("hook {name}: exit {} in {} ms", res.code, res.ms);
    Ok(res.code)
}

fn output_field(results: &mut Map<String, Value>, key: &str, data: &[u8]) {
    if data.is_empty() {
        return;
    }
    match std::str::from_utf8(data) {
        Ok(s) => {
            results.insert(key.into(), json!(s));
        }
        Err(_) => {
            results.insert(key.into(), json!(util::base64(data)));
            results.insert(format!("{key}-encoding"), json!("base64"));
        }
    }
}

/// Run an action; prints `{"message","results","status"}` JSON on stdout; returns 0 when
/// completed, 1 when failed.
pub fn run_action(dir: &Path, name: &str, args: &[String]) -> CmdResult<i32> {
    let _hook_lock = state::lock_named(dir, ".hook-lock")?;
    let label = format!("actions/{name}");
    let (snapshot, env, handler) = {
        let _l = state::lock(dir)?;
        let mut st = state::load(dir)?;
        check_machine(&st)?;
        let spec = st.actions.get(name).cloned().ok_or_else(|| {
            CmdError::usage(format!(
                "action {} not defined on unit {}",
                q(name),
                q(&st.unit)
            ))
        })?;
        let params = actionparams::build(name, &spec, args)?;
        st.next_action_id += 1;
        let id = st.next_action_id.to_string();
        st.action = Some(state::ActionRun {
            name: name.to_string(),
            id: id.clone(),
            params,
            ..Default::default()
        });
        fresh_journal(dir, &label)?;
        state::save(dir, &st)?;
        let mut env = base_env(&st, dir, &label, "", name);
        env.push(("JUJU_ACTION_NAME".into(), name.to_string()));
        env.push(("JUJU_ACTION_UUID".into(), id.clone()));
        env.push(("JUJU_ACTION_TAG".into(), format!("action-{id}")));
        let handler = find_handler(&st, "actions", name);
        (st, env, handler)
    };
    let res = execute(dir, &snapshot, &env, &handler, &label)?;
    let (status, message, results, logs) = {
        let _l = state::lock(dir)?;
        let mut st = state::load(dir)?;
        let j = journal::load(dir)?;
        let action = st.action.take().unwrap_or_default();
        let mut results = action.results.clone();
        let (status, message) = match &handler {
            Handler::Missing => (
                "failed",
                format!("action not implemented on unit {}", q(&st.unit)),
            ),
            Handler::Fail(_, msg) => ("failed", msg.clone()),
            Handler::Run(_) if res.code != 0 => ("failed", format!("exit status {}", res.code)),
            Handler::Run(_) => match &action.failed {
                Some(m) => ("failed", m.clone()),
                None => ("completed", String::new()),
            },
        };
        if matches!(handler, Handler::Run(_)) {
            results.insert("return-code".into(), json!(res.code));
            output_field(&mut results, "stdout", &res.stdout);
            output_field(&mut results, "stderr", &res.stderr);
            if res.code == 0 {
                j.commit(&mut st);
            }
        }
        st.history("action", status, &message, &label);
        journal::clear(dir)?;
        state::save(dir, &st)?;
        (status, message, results, action.logs)
    };
    for l in logs {
        eprintln!("{l}");
    }
    eprintln!(
        "action {name}: {status} (exit {}) in {} ms",
        res.code, res.ms
    );
    let out = json!({"status": status, "message": message, "results": Value::Object(results)});
    print!("{}", gojson::encode_line(&out));
    Ok(if status == "completed" { 0 } else { 1 })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn injected_variables_lose_their_prefix() {
        let vars = vec![
            (
                "JUJUSIM_HOOK_ENV_PARSE_SERVER_CHARM_ABORT_AFTER".to_string(),
                "files-written".to_string(),
            ),
            ("JUJUSIM_HOOK_ENV_".to_string(), "ignored".to_string()),
            ("PATH".to_string(), "/bin".to_string()),
        ];
        assert_eq!(
            injected_env(vars.into_iter()),
            vec![(
                "PARSE_SERVER_CHARM_ABORT_AFTER".to_string(),
                "files-written".to_string()
            )]
        );
    }

    #[test]
    fn relation_hook_names() {
        assert_eq!(
            relation_hook_parts("db-relation-joined"),
            Some(("db".to_string(), "joined".to_string()))
        );
        assert_eq!(
            relation_hook_parts("my-db-relation-broken"),
            Some(("my-db".to_string(), "broken".to_string()))
        );
        assert_eq!(relation_hook_parts("install"), None);
        assert_eq!(relation_hook_parts("-relation-joined"), None);
    }

    #[test]
    fn handler_lookup() {
        let dir = std::env::temp_dir().join(format!("jujusim-handler-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("hooks")).unwrap();
        let st = State {
            host_charm_dir: dir.display().to_string(),
            charm_dir: "/charm".into(),
            ..Default::default()
        };
        assert!(matches!(
            find_handler(&st, "hooks", "install"),
            Handler::Fail(1, _)
        ));
        std::fs::write(dir.join("metadata.yaml"), "name: x\n").unwrap();
        assert_eq!(find_handler(&st, "hooks", "install"), Handler::Missing);
        std::fs::write(dir.join("hooks/install"), "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(
            dir.join("hooks/install"),
            std::fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        assert_eq!(
            find_handler(&st, "hooks", "install"),
            Handler::Run("/charm/hooks/install".into())
        );
        // A non-executable dispatch fails the hook; no fallback to hooks/.
        std::fs::write(dir.join("dispatch"), "#!/bin/sh\n").unwrap();
        assert!(matches!(
            find_handler(&st, "hooks", "install"),
            Handler::Fail(126, _)
        ));
        std::fs::set_permissions(dir.join("dispatch"), std::fs::Permissions::from_mode(0o755))
            .unwrap();
        assert_eq!(
            find_handler(&st, "hooks", "install"),
            Handler::Run("/charm/dispatch".into())
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
