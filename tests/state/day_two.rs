//! Day-2 decisions: changes, rollbacks, held ports, outages, the website relation.

use parse_server_charm::juju::StatusKind;

use crate::harness::{hook, run, serving, Db, Exit, On};

#[test]
fn a_valid_change_restarts_once_and_applies() {
    let mut w = serving("change");
    w.set("extra-options", r#"{"maxLimit": 5}"#);
    let w = hook(w, "config-changed");
    w.assert_status(StatusKind::Active, "serving");
    assert_eq!(w.restarts, 2);
    assert_eq!(w.running_options().unwrap()["maxLimit"], 5);
    let w = hook(w, "config-changed");
    assert_eq!(w.restarts, 2, "the same config again restarts nothing");
}

#[test]
fn a_configuration_that_does_not_start_is_rolled_back_and_not_retried() {
    let mut w = serving("rollback");
    let good = w.options();
    w.set("extra-options", r#"{"defaultLimit": 0}"#);
    let mut w = hook(w, "config-changed");
    w.assert_status(StatusKind::Blocked, "the new configuration did not start");
    w.assert_status(StatusKind::Blocked, "serving the previous one");
    assert!(w.active);
    assert_eq!(
        w.running_options().unwrap(),
        good,
        "the previous files serve again"
    );
    assert_eq!(w.options(), good);
    let restarts = w.restarts;
    for _ in 0..3 {
        w = hook(w, "update-status");
        w.assert_status(StatusKind::Blocked, "did not start before");
    }
    assert_eq!(w.restarts, restarts, "no restart loop");
    // A new value is tried; resetting returns to the good configuration.
    w.set("extra-options", r#"{"maxLimit": 5}"#);
    let mut w = hook(w, "config-changed");
    w.assert_status(StatusKind::Active, "serving");
    w.unset("extra-options");
    let w = hook(w, "config-changed");
    w.assert_status(StatusKind::Active, "serving");
}

#[test]
fn a_restart_systemd_refuses_rolls_back_too() {
    let mut w = serving("restart-fails");
    w.set("extra-options", r#"{"maxLimit": 7}"#);
    w.restart_fails = true;
    let (mut w, exit) = run(w, "config-changed");
    assert_eq!(exit, Exit::Ok, "a failed restart is not a crashed hook");
    w.assert_status(StatusKind::Blocked, "did not start");
    // systemd works again: the previous files serve after the next change attempt.
    w.restart_fails = false;
    w.unset("extra-options");
    let w = hook(w, "config-changed");
    w.assert_status(StatusKind::Active, "serving");
    assert!(w.running_options().unwrap().get("maxLimit").is_none());
}

#[test]
fn a_first_configuration_that_does_not_start_stops_the_service() {
    let mut w = crate::harness::World::new("first-fails");
    w.set("extra-options", r#"{"defaultLimit": 0}"#);
    w.relate_mongodb();
    let w = hook(w, "config-changed");
    w.assert_status(StatusKind::Blocked, "parse-server did not start");
    assert!(!w.active);
    let w = hook(w, "update-status");
    w.assert_status(StatusKind::Blocked, "did not start and nothing serves");
    assert_eq!(w.count("restart"), 1, "tried once, not at every hook");
}

#[test]
fn a_port_another_process_holds_is_refused_by_name() {
    let mut w = serving("held-port");
    w.held_ports.insert(1340);
    w.set("port", 1340);
    let w = hook(w, "config-changed");
    w.assert_status(
        StatusKind::Blocked,
        "invalid config: port: 1340 is in use by another process",
    );
    assert_eq!(w.restarts, 1);
    assert_eq!(w.ports.iter().collect::<Vec<_>>(), vec!["1337/tcp"]);
    assert_eq!(w.running_options().unwrap()["port"], 1337);
}

#[test]
fn a_port_change_moves_the_opened_port() {
    let mut w = serving("port-change");
    w.set("port", 1338);
    let w = hook(w, "config-changed");
    w.assert_status(StatusKind::Active, "serving on port 1338");
    assert_eq!(w.ports.iter().collect::<Vec<_>>(), vec!["1338/tcp"]);
    assert_eq!(w.running_options().unwrap()["port"], 1338);
}

#[test]
fn a_hand_edited_option_file_is_repaired_and_its_port_never_blocks() {
    let w = serving("hand-edit");
    let path = w.root.join("etc/parse-server/config.json");
    let edited = std::fs::read_to_string(&path)
        .unwrap()
        .replace("\"port\": 1337", "\"port\": 1340");
    std::fs::write(&path, edited).unwrap();
    let w = hook(w, "update-status");
    w.assert_status(StatusKind::Active, "serving on port 1337");
    assert_eq!(
        w.options()["port"],
        1337,
        "the file's header promise: local edits are overwritten"
    );
    assert_eq!(w.restarts, 2);
}

#[test]
fn a_database_outage_leaves_the_service_alone() {
    let mut w = serving("outage");
    w.db = Db::Down;
    let mut w = hook(w, "update-status");
    w.assert_status(
        StatusKind::Waiting,
        "database at 127.0.0.1:27017 does not answer",
    );
    assert!(w.active);
    assert_eq!(w.restarts, 1);
    // A config change while it is down touches nothing either.
    w.set("extra-options", r#"{"maxLimit": 5}"#);
    let mut w = hook(w, "config-changed");
    w.assert_status(StatusKind::Waiting, "does not answer");
    assert_eq!(w.restarts, 1);
    w.db = Db::Up;
    let w = hook(w, "update-status");
    w.assert_status(StatusKind::Active, "serving");
    assert_eq!(w.running_options().unwrap()["maxLimit"], 5);
}

#[test]
fn wrong_credentials_are_the_operators_to_fix_when_the_uri_is_theirs() {
    let mut w = crate::harness::World::new("wrong-password");
    w.set("database-uri", "postgres://parse:nope@db.example/parse");
    w.db = Db::WrongPassword;
    let w = hook(w, "config-changed");
    w.assert_status(
        StatusKind::Blocked,
        "invalid config: database-uri: database at",
    );
    assert!(w.status().message.contains("refused"));
    assert!(!w.status().message.contains("nope"));
    assert_eq!(w.restarts, 0);
    // From a relation, the provider fixes it: waiting.
    let mut w = crate::harness::World::new("wrong-password-rel");
    w.relate_mongodb();
    w.db = Db::WrongPassword;
    let w = hook(w, "config-changed");
    w.assert_status(StatusKind::Waiting, "mongodb relation: database at");
}

#[test]
fn the_website_relation_gets_hostname_and_port_once() {
    let mut w = serving("website");
    let id = w.relate_website("haproxy");
    let (w, exit) = run(
        w,
        On::relation("website-relation-joined", &id).unit("haproxy/0"),
    );
    assert_eq!(exit, Exit::Ok);
    let bag = &w.relations[&id].local;
    assert_eq!(bag["hostname"], "10.0.0.10");
    assert_eq!(bag["port"], "1337");
    let writes = w.count(&format!("relation-set {id}"));
    let (w, _) = run(
        w,
        On::relation("website-relation-changed", &id).unit("haproxy/0"),
    );
    assert_eq!(
        w.count(&format!("relation-set {id}")),
        writes,
        "an unchanged databag is not written again"
    );
}

#[test]
fn invalid_config_touches_nothing() {
    let mut w = serving("invalid");
    let calls = w.calls.len();
    let before = w.options();
    w.set("port", 70000);
    let w = hook(w, "config-changed");
    w.assert_status(
        StatusKind::Blocked,
        "invalid config: port: must be between 1 and 65535",
    );
    assert_eq!(w.calls.len(), calls);
    assert_eq!(w.options(), before);
    assert!(w.active);
}

#[test]
fn nothing_serves_is_said_when_nothing_serves() {
    // No previous configuration: the service is stopped, and the status says so.
    let mut w = crate::harness::World::new("nothing-first");
    w.set("extra-options", r#"{"defaultLimit": 0}"#);
    w.relate_mongodb();
    let w = hook(w, "config-changed");
    w.assert_status(StatusKind::Blocked, "nothing serves");
    let w = hook(w, "update-status");
    w.assert_status(StatusKind::Blocked, "did not start and nothing serves");
    assert!(!w.active);
    // A previous configuration that no longer starts either (the database user lost its
    // rights): not "serving the previous one".
    let mut w = serving("nothing-previous");
    w.starts_ok = |_| false;
    w.set("log-level", "warn");
    let w = hook(w, "config-changed");
    w.assert_status(StatusKind::Blocked, "nor did the previous one");
    w.assert_status(StatusKind::Blocked, "nothing serves");
    assert!(!w.active);
    let w = hook(w, "update-status");
    w.assert_status(StatusKind::Blocked, "did not start and nothing serves");
}

#[test]
fn a_configuration_that_failed_is_retried_while_nothing_serves() {
    let mut w = serving("retry");
    w.starts_ok = |_| false;
    w.set("log-level", "warn");
    let mut w = hook(w, "config-changed");
    w.assert_status(StatusKind::Blocked, "next try in 1 min");
    let restarts = w.restarts;
    // The database side is fixed; within the back-off nothing is tried...
    w.starts_ok = |_| true;
    let mut w = hook(w, "update-status");
    assert_eq!(w.restarts, restarts);
    // ...after it, the next hook tries again and serves.
    w.now += 60;
    let w = hook(w, "update-status");
    w.assert_status(StatusKind::Active, "serving");
    assert_eq!(w.running_options().unwrap()["logLevel"], "warn");
    assert!(!w
        .root
        .join("var/lib/parse-server-charm/failed-rendering")
        .exists());
}

#[test]
fn a_failing_retry_backs_off() {
    let mut w = crate::harness::World::new("backoff");
    w.starts_ok = |_| false;
    w.relate_mongodb();
    let mut w = hook(w, "config-changed");
    for (after, next) in [(60, "next try in 2 min"), (120, "next try in 4 min")] {
        w.now += after;
        w = hook(w, "update-status");
        w.assert_status(StatusKind::Blocked, next);
    }
    assert_eq!(w.count("restart"), 3, "once, then once per back-off");
}

#[test]
fn the_version_column_names_the_release_that_serves() {
    let mut w = serving("version");
    let record = "/var/lib/parse-server-charm/application-version";
    assert_eq!(w.file(record).as_deref(), Some("9.10.0"));
    crate::harness::install_release(&w.root, "9.9.0");
    w.set("parse-server-version", "9.9.0");
    w.restart_fails = true;
    let (mut w, exit) = run(w, "config-changed");
    assert_eq!(exit, Exit::Ok);
    w.assert_status(StatusKind::Blocked, "did not start");
    assert_eq!(
        w.file(record).as_deref(),
        Some("9.10.0"),
        "9.9.0 does not run"
    );
    w.restart_fails = false;
    w.unset("parse-server-version");
    let w = hook(w, "config-changed");
    assert_eq!(w.file(record).as_deref(), Some("9.10.0"));
}

#[test]
fn get_master_key_names_the_application_and_the_key_that_serves() {
    let mut w = crate::harness::World::new("shop-api-key");
    w.app = "shop-api".into();
    w.relate_mongodb();
    let mut w = hook(w, "config-changed");
    let id = w.secrets.keys().next().unwrap().clone();
    // An invalid master-key: the unit is blocked and keeps serving the generated key.
    w.set("master-key", "short");
    let w = hook(w, "config-changed");
    w.assert_status(StatusKind::Blocked, "master-key");
    let w = hook(w, On::action("get-master-key"));
    let r = w.action_results.clone().unwrap();
    assert_eq!(r["source"], "generated", "{r:?}");
    assert_eq!(r["reveal"], format!("juju show-secret --reveal {id}"));
    assert!(r["note"].contains("master-key is invalid"), "{r:?}");
    assert!(r["note"].contains("juju status shop-api"), "{r:?}");
    // A valid configured key that serves names this application's config.
    let mut w = w;
    w.set("master-key", "a-valid-key-of-ours");
    let w = hook(w, "config-changed");
    let w = hook(w, On::action("get-master-key"));
    let r = w.action_results.clone().unwrap();
    assert_eq!(r["source"], "config");
    assert_eq!(r["reveal"], "juju config shop-api master-key");
    // A non-leader that cannot find the key is sent to this application's leader.
    let mut w = w;
    w.unset("master-key");
    w.leader = false;
    // The key's secret stays (leadership moving removes no secret); with no id shared
    // through the peers, only the owner (the leader) could find it by its label.
    let w = hook(w, On::action("get-master-key"));
    assert!(
        w.action_failed
            .clone()
            .unwrap()
            .contains("juju run shop-api/leader get-master-key"),
        "{:?}",
        w.action_failed
    );
}

#[test]
fn memory_report_works_while_the_config_is_invalid() {
    let mut w = serving("report-invalid");
    w.set("port", 0);
    let w = hook(w, On::action("memory-report"));
    assert_eq!(w.action_failed, None);
    let r = w.action_results.clone().unwrap();
    assert_eq!(r["processes"], "1");
    // The caps of what runs.
    assert_eq!(r["caps.workers"], "1");
    assert_eq!(r["caps.heap-mib"], "1024");
    assert_eq!(r["caps.memory-max-mib"], "3072");
}
