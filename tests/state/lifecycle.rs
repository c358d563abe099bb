//! Deploy, relate, steady state, leadership, teardown.

use parse_server_charm::juju::StatusKind;

use crate::harness::{hook, run, serving, Exit, On, World};

#[test]
fn deploy_without_a_database_is_blocked_and_serves_nothing() {
    let mut w = World::new("deploy");
    w.set("app-id", "shop");
    let w = hook(w, "install");
    w.assert_status(
        StatusKind::Blocked,
        "add a relation to mongodb or postgresql (or set database-uri)",
    );
    let w = hook(w, "start");
    w.assert_status(StatusKind::Blocked, "add a relation to mongodb");
    assert_eq!(w.restarts, 0);
    assert!(w.ports.is_empty());
    assert!(w.file("/etc/parse-server/config.json").is_none());
}

#[test]
fn relating_mongodb_serves_with_a_generated_key() {
    let w = serving("relate");
    assert_eq!(w.restarts, 1);
    assert!(w.enabled, "enabled for boot");
    assert_eq!(w.ports.iter().collect::<Vec<_>>(), vec!["1337/tcp"]);
    let o = w.options();
    assert_eq!(o["databaseURI"], "mongodb://127.0.0.1:27017/parse");
    assert_eq!(o["appId"], "shop");
    let key = w.master_key();
    assert_eq!(key.len(), 64);
    assert_eq!(o["masterKey"], key.as_str());
    assert_eq!(w.count("secret-add master-key"), 1);
    // The key is nowhere but in the secret and the option file.
    assert!(w.logs.iter().all(|l| !l.contains(&key)));
    assert!(w.statuses.iter().all(|s| !s.message.contains(&key)));
    assert!(!w
        .file("/etc/systemd/system/parse-server.service")
        .unwrap()
        .contains(&key));
    // The scratch file that carried it to secret-add is gone.
    let scratch: Vec<_> = std::fs::read_dir(w.root.join("var/lib/parse-server-charm"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".new"))
        .map(|e| e.file_name())
        .collect();
    assert!(scratch.is_empty(), "{scratch:?}");
}

#[test]
fn update_status_and_upgrade_charm_restart_nothing() {
    let mut w = serving("steady");
    let calls = w.calls.len();
    for _ in 0..10 {
        w = hook(w, "update-status");
        w.assert_status(StatusKind::Active, "serving on port 1337");
    }
    w = hook(w, "upgrade-charm");
    w = hook(w, "config-changed");
    w.assert_status(StatusKind::Active, "serving");
    assert_eq!(w.restarts, 1);
    assert_eq!(
        w.calls.len(),
        calls,
        "no write at all: {:?}",
        &w.calls[calls..]
    );
    assert_eq!(
        w.count("secret-add master-key"),
        1,
        "the key is generated once"
    );
}

#[test]
fn a_non_leader_waits_for_the_leaders_key_then_serves_with_it() {
    let mut w = World::new("non-leader");
    w.leader = false;
    w.relate_mongodb();
    w.peer_with(&["parse-server/1"]);
    let mut w = hook(w, "leader-settings-changed");
    w.assert_status(
        StatusKind::Waiting,
        "waiting for the leader to generate the master key",
    );
    assert_eq!(w.restarts, 0);
    assert!(w.ports.is_empty());
    assert_eq!(
        w.count("secret-add master-key"),
        0,
        "non-leaders never create it"
    );
    // The leader's secret becomes readable.
    w.leaders_key("secret:leaders", Some("master-key"));
    // Not before the leader's own first start (no other unit races its table creation).
    let mut w = hook(w, "update-status");
    w.assert_status(StatusKind::Waiting, "waiting for the leader's first start");
    assert_eq!(w.restarts, 0);
    w.leader_set(&[("initialised", "true")]);
    let w = hook(w, "update-status");
    w.assert_status(StatusKind::Active, "serving");
    assert_eq!(w.options()["masterKey"], "k".repeat(64));
}

#[test]
fn a_configured_master_key_wins_and_nothing_is_generated() {
    let mut w = World::new("configured-key");
    w.set("master-key", "it's a \"key\" \\ $HOME");
    w.relate_mongodb();
    let w = hook(w, "config-changed");
    w.assert_status(StatusKind::Active, "serving");
    assert_eq!(w.options()["masterKey"], "it's a \"key\" \\ $HOME");
    assert!(w.secrets.is_empty());
}

#[test]
fn relation_broken_stops_the_service_and_closes_the_port() {
    let w = serving("broken");
    let id = w.relations.keys().next().unwrap().clone();
    let (mut w, exit) = run(w, On::relation("mongodb-relation-broken", &id));
    assert_eq!(exit, Exit::Ok);
    w.assert_status(StatusKind::Blocked, "add a relation to mongodb");
    assert!(!w.active);
    assert!(w.ports.is_empty());
    // Juju then drops the relation; related again (a new relation id), it serves again.
    w.relations.remove(&id);
    let id = w.relate_mongodb();
    let w = hook(
        w,
        On::relation("mongodb-relation-changed", &id).unit("mongodb/0"),
    );
    w.assert_status(StatusKind::Active, "serving");
    assert!(w.active);
}

#[test]
fn joined_without_data_waits_for_the_address() {
    let mut w = World::new("joined");
    let id = w.relate_mongodb_unpublished();
    let (w, exit) = run(
        w,
        On::relation("mongodb-relation-joined", &id).unit("mongodb/0"),
    );
    assert_eq!(exit, Exit::Ok);
    w.assert_status(
        StatusKind::Waiting,
        "waiting for mongodb to publish its address",
    );
    assert_eq!(w.restarts, 0);
}

#[test]
fn malformed_relation_data_is_skipped_not_trusted() {
    let mut w = World::new("malformed");
    let id = w.relate_mongodb();
    w.remote_set(
        &id,
        "mongodb/1",
        &[("hostname", "evil/x?y"), ("port", "27017")],
    );
    let w = hook(w, "config-changed");
    w.assert_status(StatusKind::Active, "serving");
    assert_eq!(
        w.options()["databaseURI"],
        "mongodb://127.0.0.1:27017/parse"
    );
    assert!(
        w.logs.iter().any(|l| l.contains("mongodb/1")),
        "{:?}",
        w.logs
    );
}

#[test]
fn stop_leaves_the_service_stopped_and_disabled() {
    let w = serving("stop");
    let w = hook(w, "stop");
    assert!(!w.active);
    assert!(!w.enabled);
    assert!(w.ports.is_empty());
    let w = hook(w, "remove");
    assert!(w.file("/etc/parse-server/config.json").is_none());
    assert!(w.file("/etc/systemd/system/parse-server.service").is_none());
    assert!(!w.root.join("var/lib/parse-server-charm").exists());
    assert!(!w.root.join("opt/parse-server").exists());
}

#[test]
fn the_start_hook_after_a_reboot_changes_nothing() {
    let w = serving("reboot");
    // After a reboot the service is back (enabled) before any hook runs.
    let calls = w.calls.len();
    let w = hook(w, "start");
    w.assert_status(StatusKind::Active, "serving");
    assert_eq!(w.restarts, 1);
    assert_eq!(w.calls.len(), calls);
}

#[test]
fn get_master_key_names_the_secret_never_the_key() {
    let w = serving("action");
    let w = hook(w, On::action("get-master-key"));
    let r = w.action_results.clone().unwrap();
    assert_eq!(r["source"], "generated");
    assert_eq!(r["reveal"], "juju show-secret --reveal secret:own0");
    let key = w.master_key();
    assert!(r.values().all(|v| !v.contains(key.as_str())));
    let mut w = w;
    w.leader = false;
    // The key's secret stays (leadership moving removes no secret); with no id shared
    // through the peers, only the owner (the leader) could find it by its label.
    let w = hook(w, On::action("get-master-key"));
    assert!(w
        .action_failed
        .clone()
        .unwrap()
        .contains("juju run parse-server/leader"));
}

#[test]
fn a_hook_asks_each_question_once() {
    let w = serving("asks-once");
    w.reads.borrow_mut().clear();
    // A full reconcile (a steady update-status asks nothing at all).
    let w = hook(w, "config-changed");
    for (call, n) in w.reads.borrow().iter() {
        assert_eq!(*n, 1, "{call} asked {n} times in one hook");
    }
    assert!(w.reads.borrow().len() >= 5);
}
