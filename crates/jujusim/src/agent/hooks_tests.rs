//! Tests that run real hook processes through the driver: journal commit vs discard, agent status, env and membership (CONTRACT.md §2, §3.3).

use crate::agent::hooks::{run_hook, HookRequest};
use crate::agent::lifecycle;
use crate::agent::setup::{init_unit, InitOpts};
use crate::agent::state::{self, State};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

const DISPATCH: &str = r#"#!/bin/sh
cp "$JUJUSIM_UNIT_DIR/state.json" "$JUJUSIM_UNIT_DIR/seen-$JUJU_HOOK_NAME.json"
env > "$JUJUSIM_UNIT_DIR/env-$JUJU_HOOK_NAME"
# Simulate journaled tool writes (open-port) by writing the journal directly.
case "$JUJU_HOOK_NAME" in
  update-status)
    printf '{"port_ops":[{"open":true,"range":{"protocol":"tcp","from":1,"to":1}}]}' > "$JUJUSIM_UNIT_DIR/pending.json"
    exit 4 ;;
  config-changed)
    printf '{"port_ops":[{"open":true,"range":{"protocol":"tcp","from":80,"to":80}}]}' > "$JUJUSIM_UNIT_DIR/pending.json" ;;
esac
exit 0
"#;

struct Fixture {
    root: PathBuf,
    unit: PathBuf,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

fn fixture(tag: &str) -> Fixture {
    let root = std::env::temp_dir().join(format!("jujusim-hooks-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let charm = root.join("charm");
    std::fs::create_dir_all(&charm).unwrap();
    std::fs::write(
        charm.join("metadata.yaml"),
        "name: demo\nrequires:\n  db: {interface: mongodb}\n",
    )
    .unwrap();
    std::fs::write(charm.join("dispatch"), DISPATCH).unwrap();
    std::fs::set_permissions(
        charm.join("dispatch"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    let unit = root.join("u");
    init_unit(
        &unit,
        &InitOpts {
            charm_dir: charm,
            leader: true,
            ..Default::default()
        },
    )
    .unwrap();
    Fixture { root, unit }
}

fn seen(u: &Path, hook: &str) -> State {
    serde_json::from_str(&std::fs::read_to_string(u.join(format!("seen-{hook}.json"))).unwrap())
        .unwrap()
}

fn env_of(u: &Path, hook: &str) -> Vec<String> {
    std::fs::read_to_string(u.join(format!("env-{hook}")))
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn journal_commits_on_success_and_is_discarded_on_failure() {
    let f = fixture("journal");
    assert_eq!(
        run_hook(&f.unit, &HookRequest::plain("config-changed")).unwrap(),
        0
    );
    let st = state::load(&f.unit).unwrap();
    assert_eq!(crate::agent::ports::list(&st.ports, false), vec!["80/tcp"]);
    assert_eq!(st.agent_status.status, "idle");
    assert!(!f.unit.join("pending.json").exists());

    assert_eq!(
        run_hook(&f.unit, &HookRequest::plain("update-status")).unwrap(),
        4
    );
    let st = state::load(&f.unit).unwrap();
    assert_eq!(
        crate::agent::ports::list(&st.ports, false),
        vec!["80/tcp"],
        "failed hook's ports must be discarded"
    );
    assert_eq!(st.agent_status.status, "error");
    assert_eq!(st.agent_status.message, "hook failed: \"update-status\"");
    assert!(!f.unit.join("pending.json").exists());
    let times = std::fs::read_to_string(f.unit.join("hook-times.jsonl")).unwrap();
    assert!(
        times.contains("\"exit\":4,\"hook\":\"update-status\""),
        "{times}"
    );

    // Env of a non-relation hook: no relation vars, no HOME/USER.
    let env = env_of(&f.unit, "config-changed");
    assert!(env.contains(&"JUJU_DISPATCH_PATH=hooks/config-changed".to_string()));
    assert!(env.contains(&"JUJU_VERSION=3.6.1".to_string()));
    assert!(env.contains(&"JUJU_PRINCIPAL_UNIT=".to_string()));
    assert!(!env
        .iter()
        .any(|l| l.starts_with("JUJU_RELATION") || l.starts_with("JUJU_REMOTE_")));
    assert!(!env
        .iter()
        .any(|l| l.starts_with("HOME=") || l.starts_with("USER=")));
}

#[test]
fn membership_follows_joined_departed_broken() {
    let f = fixture("members");
    let rid = lifecycle::relate(&f.unit, "db", "mongo").unwrap();
    let created = HookRequest::relation("db-relation-created", rid, None);
    assert_eq!(run_hook(&f.unit, &created).unwrap(), 0);
    assert!(seen(&f.unit, "db-relation-created").relations[&rid]
        .members
        .is_empty());
    assert!(env_of(&f.unit, "db-relation-created").contains(&"JUJU_REMOTE_UNIT=".to_string()));

    // -joined includes the joining unit even when only the hook command is used.
    let joined = HookRequest::relation("db-relation-joined", rid, Some("mongo/1"));
    assert_eq!(run_hook(&f.unit, &joined).unwrap(), 0);
    let s = seen(&f.unit, "db-relation-joined");
    assert!(s.relations[&rid].members.contains("mongo/1"));
    assert_eq!(
        s.relations[&rid].unit_bags["mongo/1"]["private-address"],
        "10.0.1.1"
    );
    let env = env_of(&f.unit, "db-relation-joined");
    assert!(env.contains(&"JUJU_REMOTE_UNIT=mongo/1".to_string()));
    assert!(env.contains(&"JUJU_RELATION_ID=db:0".to_string()));
    assert!(env.contains(&"JUJU_REMOTE_APP=mongo".to_string()));

    // -departed excludes the departing unit.
    let mut departed = HookRequest::relation("db-relation-departed", rid, None);
    departed.departing = Some("mongo/1".into());
    assert_eq!(run_hook(&f.unit, &departed).unwrap(), 0);
    assert!(seen(&f.unit, "db-relation-departed").relations[&rid]
        .members
        .is_empty());
    assert!(env_of(&f.unit, "db-relation-departed")
        .contains(&"JUJU_DEPARTING_UNIT=mongo/1".to_string()));

    // -broken: flagged broken during the hook, removed after success.
    let broken = HookRequest::relation("db-relation-broken", rid, None);
    assert_eq!(run_hook(&f.unit, &broken).unwrap(), 0);
    assert!(seen(&f.unit, "db-relation-broken").relations[&rid].broken);
    assert!(env_of(&f.unit, "db-relation-broken").contains(&"JUJU_REMOTE_UNIT=".to_string()));
    assert!(!state::load(&f.unit).unwrap().relations.contains_key(&rid));

    // Relation hooks need a resolvable relation.
    assert_eq!(
        run_hook(&f.unit, &HookRequest::plain("db-relation-changed"))
            .unwrap_err()
            .code,
        2
    );
}

#[test]
fn secret_hook_vars_and_self_departing() {
    let f = fixture("secretenv");
    let mut req = HookRequest::plain("secret-changed");
    req.secret_id = Some("secret:0123456789abcdefghij".into());
    assert_eq!(run_hook(&f.unit, &req).unwrap(), 0);
    let env = env_of(&f.unit, "secret-changed");
    assert!(env.contains(&"JUJU_SECRET_ID=secret:0123456789abcdefghij".to_string()));
    assert!(env.contains(&"JUJU_SECRET_LABEL=".to_string()));
    assert!(!env.iter().any(|l| l.starts_with("JUJU_SECRET_REVISION=")));
    let mut req = HookRequest::plain("secret-remove");
    req.secret_id = Some("secret:0123456789abcdefghij".into());
    req.secret_label = Some("db".into());
    req.secret_revision = Some(3);
    assert_eq!(run_hook(&f.unit, &req).unwrap(), 0);
    let env = env_of(&f.unit, "secret-remove");
    assert!(env.contains(&"JUJU_SECRET_LABEL=db".to_string()));
    assert!(env.contains(&"JUJU_SECRET_REVISION=3".to_string()));
    assert_eq!(run_hook(&f.unit, &HookRequest::plain("start")).unwrap(), 0);
    assert!(!env_of(&f.unit, "start")
        .iter()
        .any(|l| l.starts_with("JUJU_SECRET")));

    // The local unit leaving: JUJU_DEPARTING_UNIT is itself, the remote unit leaves its view.
    let rid = lifecycle::relate(&f.unit, "db", "mongo").unwrap();
    for u in ["mongo/1", "mongo/2"] {
        let joined = HookRequest::relation("db-relation-joined", rid, Some(u));
        assert_eq!(run_hook(&f.unit, &joined).unwrap(), 0);
    }
    let mut departed = HookRequest::relation("db-relation-departed", rid, Some("mongo/1"));
    departed.departing = Some("demo/0".into());
    assert_eq!(run_hook(&f.unit, &departed).unwrap(), 0);
    let s = seen(&f.unit, "db-relation-departed");
    assert_eq!(
        s.relations[&rid].members.iter().collect::<Vec<_>>(),
        vec!["mongo/2"]
    );
    let env = env_of(&f.unit, "db-relation-departed");
    assert!(env.contains(&"JUJU_DEPARTING_UNIT=demo/0".to_string()));
    assert!(env.contains(&"JUJU_REMOTE_UNIT=mongo/1".to_string()));
}
