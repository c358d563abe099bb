//! Tests that drive the hook tools end to end (argument parsing, model, journal, output, call log) against a real unit dir.

use crate::agent::journal;
use crate::agent::state::{self, State};
use crate::tools::{invoke, HookEnv};
use std::path::PathBuf;

struct Unit {
    dir: PathBuf,
}

impl Drop for Unit {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn unit(tag: &str, leader: bool) -> Unit {
    let dir = std::env::temp_dir().join(format!("jujusim-tools-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut info = crate::agent::charm::CharmInfo::default();
    crate::agent::charm::parse_metadata(
        "name: demo\nrequires:\n  db: {interface: mongodb}\npeers:\n  cluster: {interface: c}\n",
        &mut info,
    )
    .unwrap();
    info.config = crate::agent::charm::parse_config(
        "options:\n  port: {type: int, default: 1337}\n  name: {type: string}\n",
    )
    .unwrap();
    let mut st = State {
        unit: "demo/0".into(),
        app: "demo".into(),
        address: "10.0.0.10".into(),
        leader,
        ..Default::default()
    };
    st.apply_charm(&info);
    let rid = st.add_relation("db", "mongo");
    st.add_member(rid, "mongo/0", None);
    let rel = st.relations.get_mut(&rid).unwrap();
    rel.unit_bags
        .get_mut("mongo/0")
        .unwrap()
        .insert("uri".into(), "<mongo&db>".into());
    rel.remote_app_bag
        .insert("app-key".into(), "app-value".into());
    state::save(&dir, &st).unwrap();
    Unit { dir }
}

fn rel_env(remote_unit: &str) -> HookEnv {
    HookEnv {
        hook_name: "db-relation-changed".into(),
        dispatch_path: "hooks/db-relation-changed".into(),
        relation: Some("db".into()),
        relation_id: Some("db:0".into()),
        remote_unit: Some(remote_unit.into()),
        remote_app: Some("mongo".into()),
        action_name: None,
    }
}

fn plain_env() -> HookEnv {
    HookEnv {
        hook_name: "config-changed".into(),
        dispatch_path: "hooks/config-changed".into(),
        ..Default::default()
    }
}

fn call(u: &Unit, env: HookEnv, tool: &str, args: &[&str]) -> (i32, String, String) {
    call_stdin(u, env, tool, args, None)
}

fn call_stdin(
    u: &Unit,
    env: HookEnv,
    tool: &str,
    args: &[&str],
    stdin: Option<&str>,
) -> (i32, String, String) {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let (code, out, err) = invoke(
        tool,
        u.dir.clone(),
        env,
        &args,
        stdin.map(|s| s.as_bytes().to_vec()),
    );
    (
        code,
        String::from_utf8(out).unwrap(),
        err.map(|e| e.msg).unwrap_or_default(),
    )
}

#[test]
fn relation_set_file_stdin_is_journaled_and_not_logged() {
    let u = unit("rset", true);
    let (code, _, err) = call_stdin(
        &u,
        rel_env("mongo/0"),
        "relation-set",
        &["--file", "-", "host=h"],
        Some("{\"user\": \"u\", \"password\": \"s3cret-pw\", \"host\": \"overridden\"}"),
    );
    assert_eq!((code, err.as_str()), (0, ""));
    // Own read sees the pending write; the committed model does not.
    let (code, out, _) = call(
        &u,
        rel_env("mongo/0"),
        "relation-get",
        &["--format=json", "-", "demo/0"],
    );
    assert_eq!(code, 0);
    assert_eq!(
        out,
        "{\"egress-subnets\":\"10.0.0.10/32\",\"host\":\"h\",\"ingress-address\":\"10.0.0.10\",\"password\":\"s3cret-pw\",\"private-address\":\"10.0.0.10\",\"user\":\"u\"}\n"
    );
    assert!(!state::load(&u.dir).unwrap().relations[&0]
        .local_unit_bag
        .contains_key("user"));
    let j = journal::load(&u.dir).unwrap();
    assert_eq!(j.unit_settings[&0]["password"], "s3cret-pw");
    // The call log notes stdin but never its content.
    let log = std::fs::read_to_string(u.dir.join("tool-calls.log")).unwrap();
    assert!(log.contains("\"<stdin>\""), "{log}");
    assert!(log.contains("\"relation-set\""));
    assert!(!log.contains("s3cret-pw"), "{log}");
    // key= deletes (in the pending view).
    assert_eq!(
        call(&u, rel_env("mongo/0"), "relation-set", &["user="]).0,
        0
    );
    let (_, out, _) = call(
        &u,
        rel_env("mongo/0"),
        "relation-get",
        &["--format=json", "user", "demo/0"],
    );
    assert_eq!(out, "null\n");
}

#[test]
fn relation_set_usage_errors() {
    let u = unit("rsetbad", true);
    let (code, _, err) = call(&u, rel_env("mongo/0"), "relation-set", &["a=1", "a=2"]);
    assert_eq!(
        (code, err.as_str()),
        (2, "key \"a\" specified more than once")
    );
    assert_eq!(
        call(&u, rel_env("mongo/0"), "relation-set", &["novalue"]).0,
        2
    );
    assert_eq!(
        call(&u, rel_env("mongo/0"), "relation-set", &["--bogus", "a=1"]).0,
        2
    );
    let (code, _, err) = call(
        &u,
        rel_env("mongo/0"),
        "relation-set",
        &["-r", "db:99", "a=1"],
    );
    assert_eq!(code, 2);
    assert!(err.contains("relation not found"));
    let (code, _, err) = call(&u, plain_env(), "relation-set", &["a=1"]);
    assert_eq!((code, err.as_str()), (2, "no relation id specified"));
    // Deprecated --format is accepted.
    assert_eq!(
        call(
            &u,
            rel_env("mongo/0"),
            "relation-set",
            &["--format=json", "a=1"]
        )
        .0,
        0
    );
    assert_eq!(call(&u, rel_env("mongo/0"), "relation-set", &[]).0, 0);
}

#[test]
fn relation_get_targets_and_escaping() {
    let u = unit("rget", false);
    let (code, out, _) = call(
        &u,
        rel_env("mongo/0"),
        "relation-get",
        &["--format=json", "uri"],
    );
    assert_eq!(
        (code, out.as_str()),
        (0, "\"\\u003cmongo\\u0026db\\u003e\"\n")
    );
    // JUJU_REMOTE_UNIT="" → remote app bag.
    let (code, out, _) = call(&u, rel_env(""), "relation-get", &["--format=json"]);
    assert_eq!((code, out.as_str()), (0, "{\"app-key\":\"app-value\"}\n"));
    let (_, out, _) = call(
        &u,
        rel_env("mongo/0"),
        "relation-get",
        &["--format=json", "--app", "app-key"],
    );
    assert_eq!(out, "\"app-value\"\n");
    // Non-leader reading its own app bag in a non-peer relation.
    let (code, _, err) = call(
        &u,
        rel_env("mongo/0"),
        "relation-get",
        &["--app", "-", "demo"],
    );
    assert_eq!((code, err.as_str()), (1, "permission denied"));
    // Non-leader writing the app bag.
    let (code, _, err) = call(&u, rel_env("mongo/0"), "relation-set", &["--app", "k=v"]);
    assert_eq!((code, err.as_str()), (1, "cannot write relation settings"));
    // Outside a relation hook: -r needed, and a target.
    assert_eq!(call(&u, plain_env(), "relation-get", &["-"]).0, 2);
    let (code, _, err) = call(&u, plain_env(), "relation-get", &["-r", "db:0", "-"]);
    assert_eq!(
        (code, err.as_str()),
        (2, "no unit or application specified")
    );
    let (code, out, _) = call(
        &u,
        plain_env(),
        "relation-get",
        &["-r", "0", "--format=json", "-", "mongo/0"],
    );
    assert_eq!(code, 0);
    assert!(out.contains("\"private-address\":\"10.0.1.1\""), "{out}");
    // Smart format: raw string.
    let (_, out, _) = call(&u, rel_env("mongo/0"), "relation-get", &["uri"]);
    assert_eq!(out, "<mongo&db>\n");
    assert_eq!(
        call(&u, rel_env("mongo/0"), "relation-get", &["a", "b", "c"]).0,
        2
    );
}

#[test]
fn relation_list_and_ids() {
    let u = unit("rlist", true);
    let (_, out, _) = call(&u, rel_env("mongo/0"), "relation-list", &["--format=json"]);
    assert_eq!(out, "[\"mongo/0\"]\n");
    let (_, out, _) = call(
        &u,
        rel_env("mongo/0"),
        "relation-list",
        &["--format=json", "--app"],
    );
    assert_eq!(out, "\"mongo\"\n");
    let (_, out, _) = call(&u, rel_env("mongo/0"), "relation-ids", &["--format=json"]);
    assert_eq!(out, "[\"db:0\"]\n");
    let (_, out, _) = call(
        &u,
        plain_env(),
        "relation-ids",
        &["--format=json", "nothing"],
    );
    assert_eq!(out, "[]\n");
    assert_eq!(call(&u, plain_env(), "relation-ids", &[]).0, 2);
    assert_eq!(call(&u, plain_env(), "relation-list", &["-r", "db:x"]).0, 2);
}

#[test]
fn ports_are_journaled_and_validated() {
    let u = unit("ports", true);
    assert_eq!(call(&u, plain_env(), "open-port", &["8080"]).0, 0);
    assert_eq!(call(&u, plain_env(), "open-port", &["53/udp"]).0, 0);
    let (_, out, _) = call(&u, plain_env(), "opened-ports", &["--format=json"]);
    assert_eq!(out, "[\"8080/tcp\",\"53/udp\"]\n");
    assert!(state::load(&u.dir).unwrap().ports.is_empty());
    assert_eq!(call(&u, plain_env(), "close-port", &["8080"]).0, 0);
    let (_, out, _) = call(&u, plain_env(), "opened-ports", &["--format=json"]);
    assert_eq!(out, "[\"53/udp\"]\n");
    let (code, _, err) = call(&u, plain_env(), "open-port", &["abc"]);
    assert_eq!(code, 2);
    assert!(err.starts_with("invalid port \"abc\""));
    assert_eq!(call(&u, plain_env(), "open-port", &[]).0, 2);
    assert_eq!(call(&u, plain_env(), "open-port", &["1", "2"]).0, 2);
    assert_eq!(call(&u, plain_env(), "close-port", &["70000"]).0, 2);
}

#[test]
fn leadership_and_immediate_writes() {
    let u = unit("leader", false);
    let (_, out, _) = call(&u, plain_env(), "is-leader", &[]);
    assert_eq!(out, "False\n");
    let (_, out, _) = call(&u, plain_env(), "is-leader", &["--format=json"]);
    assert_eq!(out, "false\n");
    let (code, _, err) = call(&u, plain_env(), "leader-set", &["a=1"]);
    assert_eq!(code, 1);
    assert!(err.contains("not the leader"));
    let (code, _, err) = call(&u, plain_env(), "status-set", &["--application", "active"]);
    assert_eq!(code, 1);
    assert!(err.contains("not the leader"));
    // status-set applies immediately (no journal).
    assert_eq!(
        call(&u, plain_env(), "status-set", &["active", "ready <1>"]).0,
        0
    );
    let st = state::load(&u.dir).unwrap();
    assert_eq!(
        (
            st.unit_status.status.as_str(),
            st.unit_status.message.as_str()
        ),
        ("active", "ready <1>")
    );
    let (_, out, _) = call(
        &u,
        plain_env(),
        "status-get",
        &["--format=json", "--include-data"],
    );
    assert_eq!(
        out,
        "{\"message\":\"ready \\u003c1\\u003e\",\"status\":\"active\",\"status-data\":{}}\n"
    );
    let (code, _, err) = call(&u, plain_env(), "status-set", &["error"]);
    assert_eq!(code, 2);
    assert!(err.starts_with("invalid status \"error\""));
    // Tools without --format reject it.
    assert_eq!(
        call(&u, plain_env(), "status-set", &["--format=json", "active"]).0,
        2
    );
    assert_eq!(call(&u, plain_env(), "leader-set", &["--format=json"]).0, 2);
    assert_eq!(
        call(&u, plain_env(), "state-set", &["--format", "json"]).0,
        2
    );
}

#[test]
fn config_get_shapes() {
    let u = unit("config", true);
    let (_, out, _) = call(&u, plain_env(), "config-get", &["--format=json"]);
    assert_eq!(out, "{\"port\":1337}\n");
    let (_, out, _) = call(&u, plain_env(), "config-get", &["--format=json", "--all"]);
    assert_eq!(out, "{\"name\":null,\"port\":1337}\n");
    let (_, out, _) = call(&u, plain_env(), "config-get", &["--format=json", "name"]);
    assert_eq!(out, "null\n");
    let (_, out, _) = call(&u, plain_env(), "config-get", &["port"]);
    assert_eq!(out, "1337\n");
    assert_eq!(call(&u, plain_env(), "config-get", &["-a", "port"]).0, 2);
    let (code, out, _) = call(&u, plain_env(), "config-get", &["--help"]);
    assert_eq!(code, 0);
    assert!(out.starts_with("Usage: config-get"));
}

#[test]
fn state_tools_and_actions_outside_action() {
    let u = unit("state", true);
    assert_eq!(call(&u, plain_env(), "state-set", &["k=v", "x=1"]).0, 0);
    assert_eq!(call(&u, plain_env(), "state-delete", &["x"]).0, 0);
    let (_, out, _) = call(&u, plain_env(), "state-get", &["--format=json"]);
    assert_eq!(out, "{\"k\":\"v\"}\n");
    let (_, out, _) = call(&u, plain_env(), "state-get", &["--format=json", "missing"]);
    assert_eq!(out, "\"\"\n");
    assert_eq!(
        call(&u, plain_env(), "state-get", &["--strict", "missing"]).0,
        1
    );
    assert!(state::load(&u.dir).unwrap().unit_state.is_empty());
    for tool in ["action-get", "action-set", "action-fail", "action-log"] {
        let (code, _, err) = call(&u, plain_env(), tool, &["a=b"]);
        assert_eq!((code, err.as_str()), (1, "not running an action"), "{tool}");
    }
    let (code, _, err) = call(&u, plain_env(), "resource-get", &["bundle"]);
    assert_eq!(code, 1);
    assert!(err.starts_with("could not download resource: "));
    assert_eq!(call(&u, plain_env(), "resource-get", &[]).0, 2);
}

#[test]
fn network_and_unit_get() {
    let u = unit("net", true);
    let (_, out, _) = call(
        &u,
        plain_env(),
        "network-get",
        &["db", "--ingress-address", "--format=json"],
    );
    assert_eq!(out, "\"10.0.0.10\"\n");
    let (_, out, _) = call(
        &u,
        plain_env(),
        "network-get",
        &[
            "db",
            "--ingress-address",
            "--egress-subnets",
            "--format=json",
        ],
    );
    assert_eq!(
        out,
        "{\"egress-subnets\":[\"10.0.0.10/32\"],\"ingress-address\":\"10.0.0.10\"}\n"
    );
    assert_eq!(call(&u, plain_env(), "network-get", &["nope"]).0, 1);
    assert_eq!(
        call(&u, plain_env(), "network-get", &["db", "-r", "db:9"]).0,
        2
    );
    let (_, out, _) = call(
        &u,
        plain_env(),
        "unit-get",
        &["private-address", "--format=json"],
    );
    assert_eq!(out, "\"10.0.0.10\"\n");
    assert_eq!(call(&u, plain_env(), "unit-get", &["foo"]).0, 2);
}

#[test]
fn juju_log_prefix_and_levels() {
    let u = unit("log", true);
    assert_eq!(
        call(
            &u,
            rel_env("mongo/0"),
            "juju-log",
            &["-l", "warning", "--", "hello", "world"]
        )
        .0,
        0
    );
    assert_eq!(call(&u, plain_env(), "juju-log", &["--debug", "dbg"]).0, 0);
    assert_eq!(call(&u, plain_env(), "juju-log", &[]).0, 2);
    let st = state::load(&u.dir).unwrap();
    assert_eq!(st.log[0].level, "WARNING");
    assert_eq!(st.log[0].message, "db:0: hello world");
    assert_eq!(st.log[0].hook, "db-relation-changed");
    assert_eq!(st.log[1].level, "DEBUG");
}
