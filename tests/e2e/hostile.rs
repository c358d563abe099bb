//! What only a real workload proves about bad input and faults: any printable secret works
//! and none reaches the journal, the playground stays off, no log files, a hook killed in the
//! middle of a change is finished (or rolled back) by the next one, and MongoDB over IPv6
//! with authentication.

use serde_json::Value;

use crate::charm::{start_mongo_auth_server, start_mongo_java_server, start_postgres, CharmUnit};
use jujusim::kit::{percent_encode, Unit};

const BASE: &str = "http://127.0.0.1:1337/parse";

fn headers<'a>(app: &'a str, key: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("X-Parse-Application-Id", app),
        ("X-Parse-Master-Key", key),
        ("Content-Type", "application/json"),
    ]
}

#[test]
fn any_printable_secret_works_and_none_reaches_the_journal() {
    let mut unit = Unit::deploy("hostile-values");
    // A database password and a master key with ' " \ $ and a space.
    let password = "it's \"q\" \\ $HOME x";
    let uri = start_postgres(&mut unit, 5432, password);
    unit.config_secret("database-uri", &uri);
    let key = "k3y with 'single' \"double\" \\back $dollar";
    unit.config_secret("master-key", key);
    unit.deploy_hooks(&["app-id=hostile", "workers=1"]);
    unit.assert_status("active", "serving on port 1337");
    let h = headers("hostile", key);
    let (code, body) = unit.http(
        "POST",
        &format!("{BASE}/classes/Thing"),
        &h,
        Some(r#"{"n":1}"#),
    );
    assert_eq!(code, 201, "{body}");

    // At every log level the charm accepts, requests that carry the key leave no secret in
    // the journal.
    for level in ["error", "warn", "info"] {
        unit.config(&[&format!("log-level={level}")]);
        unit.hook("config-changed", &[]);
        unit.assert_status("active", "serving");
        let (code, _) = unit.http(
            "POST",
            &format!("{BASE}/classes/Thing"),
            &h,
            Some(r#"{"n":2}"#),
        );
        assert_eq!(code, 201);
        let (code, _) = unit.http("GET", &format!("{BASE}/classes/Thing?limit=5"), &h, None);
        assert_eq!(code, 200);
        let journal = unit.journal("parse-server");
        for (what, secret) in [
            ("master key", key),
            ("database password", password),
            (
                "encoded database password",
                percent_encode(password).as_str(),
            ),
        ] {
            assert!(
                !journal.contains(secret),
                "the {what} is in the journal at {level}"
            );
        }
    }
    // The levels that would log every request's headers are refused.
    unit.config(&["log-level=verbose"]);
    unit.hook("config-changed", &[]);
    unit.assert_status(
        "blocked",
        "invalid config: log-level: verbose logs every request's headers",
    );
    unit.config(&["log-level=info"]);

    // The playground (it serves the master key to any client) cannot be turned on.
    unit.config(&[r#"extra-options={"mountGraphQL": true, "mountPlayground": true}"#]);
    unit.hook("config-changed", &[]);
    unit.assert_status("blocked", "\"mountPlayground\" is refused");
    let (code, _) = unit.http("GET", "http://127.0.0.1:1337/playground", &[], None);
    assert_eq!(code, 404);
    unit.reset_config("extra-options");
    unit.hook("config-changed", &[]);
    unit.assert_status("active", "serving");

    // No log files beside the journal, anywhere the service may write: parse-server's
    // default logger makes ./logs as its modules load (the service hooks keep it from it),
    // and PARSE_SERVER_LOGS_FOLDER=null would make a folder named "null".
    let listing = unit.exec_ok(&["ls", "-A", "/var/lib/parse-server"]);
    assert!(
        !listing
            .split_whitespace()
            .any(|f| f == "logs" || f == "null"),
        "log folders: {listing}"
    );
    let files = unit.exec_ok(&["find", "/var/lib/parse-server", "-name", "parse-server.*"]);
    assert!(files.trim().is_empty(), "log files: {files}");
    unit.teardown();
}

fn objects_returned(unit: &Unit, h: &[(&str, &str)]) -> usize {
    let (code, body) = unit.http("GET", &format!("{BASE}/classes/Item?limit=10"), h, None);
    assert_eq!(code, 200, "{body}");
    serde_json::from_str::<Value>(&body).unwrap()["results"]
        .as_array()
        .unwrap()
        .len()
}

#[test]
fn a_hook_killed_in_the_middle_of_a_change_is_finished_by_the_next() {
    let mut unit = Unit::deploy("killed-hook");
    start_mongo_java_server(&mut unit, 27017);
    unit.deploy_hooks(&["app-id=killed", "workers=1"]);
    unit.relate_mongodb("127.0.0.1", 27017);
    unit.assert_status("active", "serving");
    let key = unit.master_key();
    let h = headers("killed", &key);
    for n in 0..5 {
        let (code, _) = unit.http(
            "POST",
            &format!("{BASE}/classes/Item"),
            &h,
            Some(&format!("{{\"n\":{n}}}")),
        );
        assert_eq!(code, 201);
    }
    assert_eq!(objects_returned(&unit, &h), 5);

    // Killed after the new files are written, before the restart: the old process still
    // runs the old settings. The next hook (any hook) restarts it into the new ones.
    unit.config(&[r#"extra-options={"maxLimit": 2}"#]);
    let out = unit.hook_with_env(
        "config-changed",
        &[],
        &[("PARSE_SERVER_CHARM_ABORT_AFTER", "files-written")],
    );
    assert!(!out.status.success(), "the hook was to die");
    assert_eq!(objects_returned(&unit, &h), 5, "still the old process");
    unit.hook("update-status", &[]);
    unit.assert_status("active", "serving");
    assert_eq!(
        objects_returned(&unit, &h),
        2,
        "a stale process reported active"
    );

    // Killed while waiting for a configuration that never starts: the next hook rolls back
    // to the last good one instead of waiting for ever with the API down.
    unit.config(&[r#"extra-options={"maxLimit": 2, "defaultLimit": 0}"#]);
    let out = unit.hook_with_env(
        "config-changed",
        &[],
        &[("PARSE_SERVER_CHARM_ABORT_AFTER", "health-wait")],
    );
    assert!(!out.status.success(), "the hook was to die");
    unit.hook("update-status", &[]);
    unit.assert_status("blocked", "did not start");
    assert_eq!(
        objects_returned(&unit, &h),
        2,
        "the last good configuration serves"
    );
    unit.teardown();
}

#[test]
fn mongodb_over_ipv6_with_authentication() {
    let mut unit = Unit::deploy("mongodb-ipv6");
    let password = jujusim::kit::random_alnum(24);
    start_mongo_auth_server(
        &mut unit,
        "::1",
        27018,
        &[("relation-1", "admin", "readWrite@parse", password.as_str())],
    );
    unit.config_secret(
        "database-uri",
        &format!("mongodb://relation-1:{password}@[::1]:27018/parse?authSource=admin"),
    );
    unit.deploy_hooks(&["app-id=six", "workers=1"]);
    unit.assert_status("active", "serving on port 1337");
    let key = unit.master_key();
    let (code, body) = unit.http(
        "POST",
        &format!("{BASE}/classes/Six"),
        &headers("six", &key),
        Some(r#"{"v":6}"#),
    );
    assert_eq!(code, 201, "{body}");
    // A wrong password is refused by the server; the operator's to fix.
    unit.config_secret(
        "database-uri",
        "mongodb://relation-1:wrong-password@[::1]:27018/parse?authSource=admin",
    );
    unit.hook("config-changed", &[]);
    unit.assert_status(
        "blocked",
        "invalid config: database-uri: database at [::1]:27018 refused",
    );
    let (code, _) = unit.http(
        "GET",
        &format!("{BASE}/classes/Six"),
        &headers("six", &key),
        None,
    );
    assert_eq!(code, 200, "the last good configuration still serves");
    unit.teardown();
}
