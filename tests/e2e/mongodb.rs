//! End to end: the packed charm's dispatch on a simulated unit (a booted machine: the host's
//! systemd runs the rendered unit), real parse-server from npm, mongo-java-server as the
//! database behind the `mongodb` relation. Follows the operator's path from deploy to
//! teardown.

use std::os::unix::fs::MetadataExt;

use crate::charm::{start_mongo_java_server, CharmUnit};
use jujusim::kit::Unit;
use serde_json::Value;

const APP: &str = "shop";

fn parse_headers(key: &str) -> Vec<(&'static str, &str)> {
    vec![
        ("X-Parse-Application-Id", APP),
        ("X-Parse-Master-Key", key),
        ("Content-Type", "application/json"),
    ]
}

#[test]
fn deploy_relate_serve_reconfigure_and_tear_down() {
    let mut unit = Unit::deploy("mongodb-scenario");
    start_mongo_java_server(&mut unit, 27017);

    // Deploy: install → leader-elected → config-changed → start. No database yet.
    unit.deploy_hooks(&["app-id=shop"]);
    unit.assert_status(
        "blocked",
        "add a relation to mongodb or postgresql (or set database-uri)",
    );
    assert!(unit.opened_ports().is_empty());
    assert_eq!(
        unit.status()["workload-version"],
        "9.10.0",
        "{}",
        unit.status()
    );

    // juju integrate parse-server mongodb
    let rel = String::from_utf8(unit.sim("relate", &["mongodb", "mongodb"]).stdout).unwrap();
    let rel = rel.trim().to_owned();
    unit.hook("mongodb-relation-created", &["--relation", &rel]);
    unit.assert_status("waiting", "mongodb");
    assert_eq!(
        unit.sim("remote-set", &[&rel, "mongodb/0"]).status.code(),
        Some(0)
    );
    unit.hook(
        "mongodb-relation-joined",
        &["--relation", &rel, "--remote-unit", "mongodb/0"],
    );
    unit.assert_status("waiting", "mongodb to publish");
    assert!(unit
        .sim(
            "remote-set",
            &[&rel, "mongodb/0", "hostname=127.0.0.1", "port=27017"]
        )
        .status
        .success());
    unit.hook(
        "mongodb-relation-changed",
        &["--relation", &rel, "--remote-unit", "mongodb/0"],
    );
    // Workers sized to the machine: one per CPU here (memory is plenty), with their PSS.
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    let (kind, message) = unit.workload();
    assert_eq!(kind, "active", "{message}");
    let expected = if workers == 1 {
        "serving on port 1337 at /parse, 1 worker, ".to_owned()
    } else {
        format!("serving on port 1337 at /parse, {workers} workers, ")
    };
    assert!(message.starts_with(&expected), "{message}");
    assert!(message.ends_with(" MiB, parse-server 9.10.0"), "{message}");
    assert_eq!(unit.opened_ports(), vec!["1337/tcp"]);
    let options: Value =
        serde_json::from_str(&unit.read_text("/etc/parse-server/config.json")).unwrap();
    assert_eq!(options["databaseURI"], "mongodb://127.0.0.1:27017/parse");
    assert!(!unit.path("/etc/parse-server/parse-server.env").exists());

    // Secrets: 0640 root:parse-server, never on a command line, in a log or a status.
    let meta = std::fs::metadata(unit.path("/etc/parse-server/config.json")).unwrap();
    assert_eq!((meta.mode() & 0o777, meta.uid()), (0o640, 0));
    let dir = std::fs::metadata(unit.path("/etc/parse-server")).unwrap();
    assert_eq!(dir.mode() & 0o777, 0o750);
    let group = unit.read_text("/etc/group");
    let gid_line = group
        .lines()
        .find(|l| l.starts_with("parse-server:"))
        .expect("group");
    assert_eq!(gid_line.split(':').nth(2).unwrap(), meta.gid().to_string());
    let key = unit.master_key();
    let juju_log = String::from_utf8(unit.sim("log", &[]).stdout).unwrap();
    let status = unit.status().to_string();
    for (place, text) in [
        (
            "tool-calls.log (every hook tool's command line)",
            unit.read_unit_file("tool-calls.log"),
        ),
        (
            "hook-output.log (dispatch's stdout and stderr)",
            unit.read_unit_file("hook-output.log"),
        ),
        ("juju-log", juju_log),
        ("juju status", status),
    ] {
        assert!(!text.contains(&key), "the master key leaked into {place}");
    }
    // It reached secret-add through a file, and the file is gone.
    assert!(unit
        .read_unit_file("tool-calls.log")
        .contains("master-key#file="));
    let scratch = unit.exec_ok(&[
        "sh",
        "-c",
        "ls /var/lib/parse-server-charm | grep '\\.new$' || true",
    ]);
    assert_eq!(scratch.trim(), "", "a scratch file left");

    // The REST API through the opened port: create, read back.
    let base = "http://127.0.0.1:1337/parse";
    let (code, body) = unit.http(
        "POST",
        &format!("{base}/classes/GameScore"),
        &parse_headers(&key),
        Some(r#"{"score":1337,"player":"Sean"}"#),
    );
    assert_eq!(code, 201, "{body}");
    let created: Value = serde_json::from_str(&body).unwrap();
    let id = created["objectId"].as_str().expect("objectId").to_owned();
    let get = |port: u16| {
        unit.http(
            "GET",
            &format!("http://127.0.0.1:{port}/parse/classes/GameScore/{id}"),
            &parse_headers(&key),
            None,
        )
    };
    let (code, body) = get(1337);
    assert_eq!(code, 200, "{body}");
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["score"], 1337);

    // The rest of the REST API this deployment relies on, on mongo-java-server
    // (tests/mongo-java-server/COMPAT.md has the full matrix).
    let h = parse_headers(&key);
    let url = |p: &str| format!("{base}{p}");
    let obj = format!("/classes/GameScore/{id}");
    let (code, body) = unit.http(
        "PUT",
        &url(&obj),
        &h,
        Some(r#"{"score":{"__op":"Increment","amount":1}}"#),
    );
    assert_eq!(code, 200, "update: {body}");
    let (code, body) = unit.http(
        "GET",
        &url(r#"/classes/GameScore?where=%7B%22score%22%3A%7B%22%24gt%22%3A1337%7D%7D&count=1"#),
        &h,
        None,
    );
    assert_eq!(code, 200, "query: {body}");
    let found: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(found["count"], 1, "{body}");
    assert_eq!(found["results"][0]["score"], 1338);
    // /batch works: the charm's lockfile pins router 2.2.0 (2.3.0 breaks it, see COMPAT.md).
    let batch = r#"{"requests":[{"method":"POST","path":"/parse/classes/GameScore","body":{"score":1}},{"method":"POST","path":"/parse/classes/GameScore","body":{"score":2}}]}"#;
    let (code, body) = unit.http("POST", &url("/batch"), &h, Some(batch));
    assert_eq!(code, 200, "batch: {body}");
    assert_eq!(
        serde_json::from_str::<Value>(&body)
            .unwrap()
            .as_array()
            .map(Vec::len),
        Some(2),
        "{body}"
    );
    let app_only = [
        ("X-Parse-Application-Id", APP),
        ("Content-Type", "application/json"),
    ];
    let (code, body) = unit.http(
        "POST",
        &url("/users"),
        &app_only,
        Some(r#"{"username":"sean","password":"pl4yer-One"}"#),
    );
    assert_eq!(code, 201, "signup: {body}");
    let (code, body) = unit.http(
        "POST",
        &url("/login"),
        &app_only,
        Some(r#"{"username":"sean","password":"pl4yer-One"}"#),
    );
    assert_eq!(code, 200, "login: {body}");
    let token = serde_json::from_str::<Value>(&body).unwrap()["sessionToken"]
        .as_str()
        .unwrap()
        .to_owned();
    let with_session = [
        ("X-Parse-Application-Id", APP),
        ("X-Parse-Session-Token", token.as_str()),
    ];
    let (code, body) = unit.http("GET", &url("/users/me"), &with_session, None);
    assert_eq!(code, 200, "me: {body}");
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["username"],
        "sean"
    );
    let (code, body) = unit.http(
        "POST",
        &url("/users"),
        &app_only,
        Some(r#"{"username":"sean","password":"x"}"#),
    );
    assert_eq!(
        (
            code,
            serde_json::from_str::<Value>(&body).unwrap()["code"].clone()
        ),
        (400, Value::from(202)),
        "duplicate username: {body}"
    );
    let (code, _) = unit.http(
        "DELETE",
        &url("/classes/GameScore/does-not-exist"),
        &h,
        None,
    );
    assert_eq!(code, 404);

    // Change the port: the old one closes, the new one serves the same data.
    unit.config(&["port=1338"]);
    unit.hook("config-changed", &[]);
    unit.assert_status("active", "serving on port 1338");
    assert_eq!(unit.opened_ports(), vec!["1338/tcp"]);
    assert_eq!(get(1338).0, 200);
    assert_eq!(get(1337).0, 0, "nothing may answer on the old port");
    let pids_before = unit.parse_server_pids();
    assert!(!pids_before.is_empty());

    // Invalid values: blocked naming the option, hook exits 0, the old config keeps serving.
    for (bad, option) in [
        ("port=70000", "port"),
        ("mount-path=parse", "mount-path"),
        ("extra-options={not json", "extra-options"),
        ("extra-options={\"masterKey\":\"x\"}", "extra-options"),
        ("log-level=loud", "log-level"),
        ("app-id=", "app-id"),
    ] {
        unit.config(&[bad]);
        unit.hook("config-changed", &[]);
        unit.assert_status("blocked", &format!("invalid config: {option}: "));
        assert_eq!(
            get(1338).0,
            200,
            "the last good config must keep serving after {bad}"
        );
        assert_eq!(
            unit.parse_server_pids(),
            pids_before,
            "{bad} restarted the service"
        );
        assert_eq!(unit.opened_ports(), vec!["1338/tcp"]);
        let (k, _) = bad.split_once('=').unwrap();
        match k {
            "app-id" => unit.config(&["app-id=shop"]),
            _ => unit.reset_config(k),
        }
    }
    unit.config(&["port=1338"]);
    unit.hook("config-changed", &[]);
    unit.assert_status("active", "serving on port 1338");
    assert_eq!(
        unit.parse_server_pids(),
        pids_before,
        "an unchanged config restarted the service"
    );

    // Nothing changed: update-status ten times restarts nothing.
    for _ in 0..10 {
        unit.hook("update-status", &[]);
        unit.assert_status("active", "serving on port 1338");
    }
    assert_eq!(unit.parse_server_pids(), pids_before);

    // The rendered unit passes systemd's own checker without a warning about it, and its
    // sandboxing scores as systemd rates it.
    let unit_file = "/etc/systemd/system/parse-server.service";
    let verify = unit.exec(&["systemd-analyze", "verify", unit_file]);
    let stderr = String::from_utf8_lossy(&verify.stderr);
    let ours: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("parse-server.service"))
        .collect();
    assert!(
        verify.status.success() && ours.is_empty(),
        "systemd-analyze verify:\n{stderr}"
    );
    let security = unit.exec(&["systemd-analyze", "security", "--offline=yes", unit_file]);
    let report = String::from_utf8_lossy(&security.stdout);
    let exposure: f64 = report
        .lines()
        .find_map(|l| {
            l.split("Overall exposure level for parse-server.service:")
                .nth(1)
        })
        .and_then(|r| r.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no exposure level in:\n{report}"));
    println!("systemd-analyze security: exposure {exposure}");
    assert!(
        exposure <= 2.0,
        "exposure {exposure} (a bare unit scores 9.6):\n{report}"
    );

    // juju remove-relation: departed, then broken → blocked, stopped, port closed.
    assert!(unit
        .sim("remote-leave", &[&rel, "mongodb/0"])
        .status
        .success());
    unit.hook(
        "mongodb-relation-departed",
        &[
            "--relation",
            &rel,
            "--remote-unit",
            "mongodb/0",
            "--departing-unit",
            "mongodb/0",
        ],
    );
    assert!(unit.sim("relation-break", &[&rel]).status.success());
    unit.hook("mongodb-relation-broken", &["--relation", &rel]);
    unit.assert_status("blocked", "add a relation to mongodb");
    assert!(unit.opened_ports().is_empty());
    assert!(
        unit.parse_server_pids().is_empty(),
        "the service must be stopped"
    );

    // Teardown.
    unit.hook("stop", &[]);
    unit.hook("remove", &[]);
    assert!(!unit
        .path("/etc/systemd/system/parse-server.service")
        .exists());
    assert!(!unit.path("/etc/parse-server").exists());
    assert!(!unit.path("/opt/parse-server").exists());
    assert!(!unit.path("/var/lib/parse-server-charm").exists());
    assert!(!unit.path("/var/cache/parse-server-charm").exists());
    unit.teardown();
}
