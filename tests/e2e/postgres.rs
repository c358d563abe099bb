//! End to end through `database-uri`: the packed charm serving from PostgreSQL (Debian's
//! server, started by the test on the unit's loopback) instead of the mongodb relation.

use crate::charm::{start_postgres, CharmUnit};
use jujusim::kit::Unit;
use serde_json::Value;

#[test]
fn serves_from_postgresql_via_database_uri() {
    let mut unit = Unit::deploy("postgres-scenario");
    let uri = start_postgres(&mut unit, 5432, "pg-Secret-42");

    unit.deploy_hooks(&[]);
    unit.assert_status(
        "blocked",
        "add a relation to mongodb or postgresql (or set database-uri)",
    );

    // A database that does not answer: waiting with the reason, hook still exits 0.
    unit.config_secret(
        "database-uri",
        "postgres://parse:pg-Secret-42@127.0.0.1:5999/parse",
    );
    unit.hook("config-changed", &[]);
    unit.assert_status("waiting", "database at 127.0.0.1:5999 does not answer");
    assert!(unit.opened_ports().is_empty());

    unit.config(&["app-id=pgshop"]);
    unit.config_secret("master-key", "pg-master-key-0123456789");
    unit.config_secret("database-uri", &uri);
    unit.hook("config-changed", &[]);
    unit.assert_status("active", "serving on port 1337 at /parse");
    assert_eq!(unit.opened_ports(), vec!["1337/tcp"]);

    let headers = [
        ("X-Parse-Application-Id", "pgshop"),
        ("X-Parse-Master-Key", "pg-master-key-0123456789"),
        ("Content-Type", "application/json"),
    ];
    let base = "http://127.0.0.1:1337/parse";
    let (code, body) = unit.http(
        "POST",
        &format!("{base}/classes/GameScore"),
        &headers,
        Some(r#"{"score":42}"#),
    );
    assert_eq!(code, 201, "{body}");
    let id = serde_json::from_str::<Value>(&body).unwrap()["objectId"]
        .as_str()
        .unwrap()
        .to_owned();
    let (code, body) = unit.http(
        "GET",
        &format!("{base}/classes/GameScore/{id}"),
        &headers,
        None,
    );
    assert_eq!(code, 200, "{body}");
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["score"], 42);

    // Neither the database password nor the master key leaked into logs or command lines.
    for file in ["tool-calls.log", "hook-output.log"] {
        let text = std::fs::read_to_string(unit.dir.join(file)).unwrap_or_default();
        assert!(
            !text.contains("pg-Secret-42"),
            "database password in {file}"
        );
        assert!(
            !text.contains("pg-master-key-0123456789"),
            "master key in {file}"
        );
    }
    let (_, message) = unit.workload();
    assert!(!message.contains("pg-Secret-42"));
    // The credentials reach parse-server's client from their own 0640 file, so every option
    // it runs with is one it knows: no "Invalid key(s)" error at start-up.
    let journal = unit.journal("parse-server");
    assert!(!journal.contains("Invalid key"), "{journal}");
    assert!(
        !journal.contains("pg-Secret-42"),
        "database password in the journal"
    );
    let mode = unit.exec_ok(&[
        "stat",
        "-c",
        "%a %U:%G",
        "/etc/parse-server/database-credentials.json",
    ]);
    assert_eq!(mode.trim(), "640 root:parse-server");

    unit.hook("stop", &[]);
    unit.assert_status("maintenance", "stopped");
    assert!(unit.opened_ports().is_empty());
    assert!(unit.parse_server_pids().is_empty());
    unit.teardown();
}
