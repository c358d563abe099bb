//! Today's Juju model, end to end: three parse-server units, each its own booted machine on
//! one model network, on a real PostgreSQL that requires a password per relation user (as
//! Charmed PostgreSQL creates them) or on a MongoDB wire-protocol server that enforces SCRAM
//! (as Charmed MongoDB does), behind a real haproxy configured from exactly what the charm
//! published. The test plays the other charms: it answers the database request, creates the
//! relation user and grants its secret, and renders haproxy.cfg.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::model::{http_from_net, start_mongo_auth_server, Haproxy, LoadRun, Model, Postgres};
use jujusim::kit::{random_alnum, record_figure};

const APP_ID: &str = "shop";

/// Waits until `url` (through haproxy) answers 200 `n` times in a row.
pub(crate) fn wait_serving(model: &Model, url: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut ok = 0;
    while ok < 6 {
        let (code, _) = http_from_net(model, "GET", url, &app(), None);
        ok = if code == 200 { ok + 1 } else { 0 };
        assert!(Instant::now() < deadline, "{url} does not serve");
        std::thread::sleep(Duration::from_millis(300));
    }
}

fn unit_url(unit: &str, path: &str) -> String {
    let n: usize = unit.rsplit('/').next().unwrap().parse().unwrap();
    format!("http://10.77.0.{}:1337{path}", 11 + n)
}

fn app() -> Vec<(&'static str, &'static str)> {
    vec![
        ("X-Parse-Application-Id", APP_ID),
        ("Content-Type", "application/json"),
    ]
}

/// What a client needs to see across units: an object, a class and a file written through
/// one unit are read through the others.
fn data_crosses_units(model: &Model, units: &[String]) {
    let (first, rest) = units.split_first().unwrap();
    let (code, body) = http_from_net(
        model,
        "POST",
        &unit_url(first, "/parse/users"),
        &app(),
        Some(br#"{"username":"sean","password":"pl4yer-One"}"#),
    );
    assert_eq!(code, 201, "signup: {body}");
    let token = serde_json::from_str::<Value>(&body).unwrap()["sessionToken"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut session = app();
    session.push(("X-Parse-Session-Token", token.as_str()));
    let (code, body) = http_from_net(
        model,
        "POST",
        &unit_url(first, "/parse/classes/Item"),
        &session,
        Some(br#"{"n":1}"#),
    );
    assert_eq!(code, 201, "a new class from {first}: {body}");
    let id = serde_json::from_str::<Value>(&body).unwrap()["objectId"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut file_headers = session.clone();
    file_headers[1] = ("Content-Type", "text/plain");
    let (code, body) = http_from_net(
        model,
        "POST",
        &unit_url(first, "/parse/files/hello.txt"),
        &file_headers,
        Some(b"hello from one unit"),
    );
    assert_eq!(code, 201, "file upload through {first}: {body}");
    let file_name = serde_json::from_str::<Value>(&body).unwrap()["name"]
        .as_str()
        .unwrap()
        .to_owned();
    for other in rest {
        let (code, body) = http_from_net(
            model,
            "GET",
            &unit_url(other, &format!("/parse/classes/Item/{id}")),
            &session,
            None,
        );
        assert_eq!(code, 200, "the object through {other}: {body}");
        let (code, body) = http_from_net(
            model,
            "GET",
            &unit_url(other, "/parse/classes/Item?where=%7B%22n%22%3A1%7D"),
            &session,
            None,
        );
        assert_eq!(code, 200, "the class through {other}: {body}");
        assert_eq!(
            serde_json::from_str::<Value>(&body).unwrap()["results"]
                .as_array()
                .map(Vec::len),
            Some(1),
            "{body}"
        );
        let (code, body) = http_from_net(
            model,
            "GET",
            &unit_url(other, &format!("/parse/files/{APP_ID}/{file_name}")),
            &[],
            None,
        );
        assert_eq!(
            (code, body.as_str()),
            (200, "hello from one unit"),
            "the file through {other}"
        );
    }
}

/// `juju deploy -n 3` of the app `shop` with one worker each and class creation open to
/// clients (its events queued); returns the units' names.
pub(crate) fn three_units(model: &mut Model) -> Vec<String> {
    let units: Vec<String> = (0..3).map(|_| model.add_unit()).collect();
    model.config(&[
        &format!("app-id={APP_ID}"),
        "workers=1",
        "allow-client-class-creation=true",
    ]);
    units
}

/// `juju integrate parse-server postgresql`, played as Charmed PostgreSQL does it: the
/// leader asks for the database and for secrets; the provider creates `relation-<id>` with
/// its own password on `pg` (at 10.77.0.1:5432) and shares it in a secret. Settles.
pub(crate) fn relate_postgresql(model: &mut Model, pg: &Postgres) -> String {
    let rel = model.relate("postgresql-client", "postgresql");
    model.remote_set(&rel, "postgresql/0", &[], Some("10.77.0.1"));
    model.settle();
    let ours = model.app_bag(&rel);
    assert_eq!(ours["database"], "parse");
    assert!(ours["requested-secrets"]
        .as_str()
        .unwrap()
        .contains("\"password\""));
    let user = format!("relation-{}", rel.rsplit(':').next().unwrap());
    let password = random_alnum(16);
    pg.create_relation_user(&user, &password, "parse");
    let uris = format!("postgresql://{user}:{password}@10.77.0.1:5432/parse");
    let secret = model.remote_secret_add(
        &rel,
        "postgresql",
        &[
            ("username", user.as_str()),
            ("password", password.as_str()),
            ("uris", uris.as_str()),
        ],
    );
    model.remote_app_set(
        &rel,
        &[
            ("database", "parse"),
            ("endpoints", "10.77.0.1:5432"),
            ("secret-user", secret.as_str()),
            ("version", "15.14"),
        ],
    );
    model.settle();
    rel
}

/// `juju integrate parse-server:haproxy-route haproxy`: haproxy at 10.77.0.1:8080 rendered
/// from what the units published, and its endpoint given back. Settles; returns the
/// relation, haproxy and the config it runs.
pub(crate) fn behind_haproxy(model: &mut Model) -> (String, Haproxy, String) {
    let lb = model.relate("haproxy-route", "haproxy");
    model.remote_set(&lb, "haproxy/0", &[], Some("10.77.0.1"));
    model.settle();
    let mut haproxy = Haproxy::new(model, 8080);
    let cfg = haproxy.render_route(&model.app_bag(&lb), &model.route_addresses(&lb));
    haproxy.apply(model, &cfg);
    model.remote_app_set(&lb, &[("endpoints", "[\"http://10.77.0.1:8080/\"]")]);
    model.settle();
    (lb, haproxy, cfg)
}

/// `juju integrate parse-server mongodb` (Charmed MongoDB's `mongodb_client`), played with a
/// SCRAM-enforcing test server at 10.77.0.1:27017 whose user `relation-<id>` has `password`;
/// the credentials shared in a secret. Settles; returns the relation, the user and the secret.
pub(crate) fn relate_scram_mongodb(model: &mut Model, password: &str) -> (String, String, String) {
    let rel = model.relate("mongodb-client", "mongodb");
    let user = format!("relation-{}", rel.rsplit(':').next().unwrap());
    start_mongo_auth_server(
        model,
        27017,
        &[(user.as_str(), "admin", "readWrite@parse", password)],
    );
    model.remote_set(&rel, "mongodb/0", &[], Some("10.77.0.1"));
    model.settle();
    assert_eq!(model.app_bag(&rel)["database"], "parse");
    let uris = format!("mongodb://{user}:{password}@10.77.0.1:27017/parse?authSource=admin");
    let secret = model.remote_secret_add(
        &rel,
        "mongodb",
        &[
            ("username", user.as_str()),
            ("password", password),
            ("uris", uris.as_str()),
        ],
    );
    model.remote_app_set(
        &rel,
        &[
            ("database", "parse"),
            ("endpoints", "10.77.0.1"),
            ("secret-user", secret.as_str()),
        ],
    );
    model.settle();
    (rel, user, secret)
}

/// Each of `units` restarted once, and none began stopping before the one before it was
/// started again.
pub(crate) fn assert_one_at_a_time(restarts: &[(String, f64, f64)], units: usize) {
    assert_eq!(
        restarts.len(),
        units,
        "each unit restarted once: {restarts:?}"
    );
    for w in restarts.windows(2) {
        assert!(
            w[1].1 >= w[0].2,
            "{} began stopping before {} was started again: {restarts:?}",
            w[1].0,
            w[0].0
        );
    }
}

/// `(unit, stopping, started again)` of every restart the units' journals show after
/// `since` (unix seconds), in order.
pub(crate) fn restarts_since(model: &Model, since: f64) -> Vec<(String, f64, f64)> {
    let mut out = Vec::new();
    for (name, unit) in &model.units {
        let log = unit.exec_ok(&[
            "journalctl",
            "-u",
            "parse-server",
            "-o",
            "short-unix",
            "--no-pager",
        ]);
        let mut stopping = None;
        for line in log.lines() {
            let Some((t, rest)) = line.split_once(' ') else {
                continue;
            };
            let Ok(t) = t.parse::<f64>() else { continue };
            if t < since {
                continue;
            }
            if rest.contains("Stopping parse-server.service") {
                stopping = Some(t);
            } else if rest.contains("Started parse-server.service") {
                if let Some(s) = stopping.take() {
                    out.push((name.clone(), s, t));
                }
            }
        }
    }
    out.sort_by(|a, b| a.1.partial_cmp(&b.1).unwrap());
    out
}

pub(crate) fn now_unix() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

#[test]
fn three_units_on_postgresql_behind_haproxy() {
    let mut model = Model::new("scale-pg");
    let pg = Postgres::start(&mut model, 5432);
    let units = three_units(&mut model);
    let installed = Instant::now();
    model.settle();
    // The baseline of the same figure with Cloud Code (tests/e2e/cloud_code.rs).
    record_figure(
        "scale-out",
        "install of 3 units, no Cloud Code (to waiting for a database)",
        installed.elapsed().as_secs_f64(),
        "s",
    );
    model.assert_all(
        "blocked",
        "add a relation to mongodb or postgresql (or set database-uri)",
    );
    assert_eq!(model.leader(), units[0]);

    let related = Instant::now();
    relate_postgresql(&mut model, &pg);
    record_figure(
        "scale-out",
        "relation answered to three units serving",
        related.elapsed().as_secs_f64(),
        "s",
    );
    model.assert_all("active", "serving on port 1337 at /parse, 1 worker");
    // No PostGIS on this server: still serving, and the status says how to turn it on.
    model.assert_all(
        "active",
        "geo queries need `juju config postgresql plugin_postgis_enable=true`",
    );
    // One key for the application, generated once by the leader.
    let key = model.master_key();
    for (name, unit) in &model.units {
        let o: Value =
            serde_json::from_str(&unit.read_text("/etc/parse-server/config.json")).unwrap();
        assert_eq!(o["masterKey"], key.as_str(), "{name}");
        assert_eq!(
            o["filesAdapter"]["module"],
            "/opt/parse-server/charm/postgres-files-adapter.js"
        );
        assert_eq!(o["databaseOptions"]["enableSchemaHooks"], true);
    }
    data_crosses_units(&model, &units);

    let (lb, mut haproxy, cfg) = behind_haproxy(&mut model);
    assert!(
        cfg.contains("option httpchk GET /parse-server-charm/ready"),
        "{cfg}"
    );
    assert!(
        cfg.contains("retries 3") && cfg.contains("option redispatch"),
        "{cfg}"
    );
    model.assert_all("active", "serving on port 1337");
    for (name, unit) in &model.units {
        let o: Value =
            serde_json::from_str(&unit.read_text("/etc/parse-server/config.json")).unwrap();
        assert_eq!(
            o["publicServerURL"], "http://10.77.0.1:8080/parse",
            "{name}"
        );
        assert_eq!(o["trustProxy"], serde_json::json!(["10.77.0.1"]), "{name}");
    }
    let through = haproxy.url("/parse/classes/Item?limit=1");
    wait_serving(&model, &haproxy.url("/parse/health"));

    // Throughput through haproxy, 1 unit and 3 units (same run).
    let one = haproxy.render_route(&model.app_bag(&lb), &model.route_addresses(&lb)[..1]);
    haproxy.apply(&mut model, &one);
    wait_serving(&model, &haproxy.url("/parse/health"));
    let rps1 = LoadRun::start(&model, &through, APP_ID, 8, 16).finish();
    haproxy.apply(&mut model, &cfg);
    wait_serving(&model, &haproxy.url("/parse/health"));
    std::thread::sleep(Duration::from_secs(5));
    let rps3 = LoadRun::start(&model, &through, APP_ID, 8, 16).finish();
    record_figure(
        "scale-out",
        "req/s through haproxy, 1 unit",
        rps1.per_second,
        "req/s",
    );
    record_figure(
        "scale-out",
        "req/s through haproxy, 3 units",
        rps3.per_second,
        "req/s",
    );
    record_figure(
        "scale-out",
        "3 units / 1 unit",
        rps3.per_second / rps1.per_second,
        "x",
    );

    // juju config under load: every unit restarts, one at a time; no request fails, and
    // an uptime monitor polling the public health URL through haproxy sees no failure
    // either (only haproxy's own check, on another path, fails while a unit drains).
    let since = now_unix();
    let run = LoadRun::start(&model, &through, APP_ID, 75, 16);
    let monitor = LoadRun::start(&model, &haproxy.url("/parse/health"), APP_ID, 75, 2);
    std::thread::sleep(Duration::from_secs(3));
    model.config(&["log-level=warn"]);
    let settled = Instant::now();
    let hooks = model.settle();
    let rolling_s = settled.elapsed().as_secs_f64();
    let load = run.finish();
    let health = monitor.finish();
    let restarts = restarts_since(&model, since);
    println!("rolling restart: {hooks}");
    record_figure(
        "scale-out",
        "rolling restart of 3 units, failed health requests through haproxy",
        health.failed as f64,
        "requests",
    );
    println!("restart sequence: {restarts:?}");
    record_figure(
        "scale-out",
        "rolling restart of 3 units, failed requests",
        load.failed as f64,
        "requests",
    );
    record_figure(
        "scale-out",
        "rolling restart of 3 units, requests",
        load.requests as f64,
        "requests",
    );
    record_figure(
        "scale-out",
        "rolling restart of 3 units, duration",
        rolling_s,
        "s",
    );
    assert_one_at_a_time(&restarts, 3);
    assert_eq!(
        load.failed, 0,
        "failed requests during the rolling restart: {load:?}"
    );
    assert_eq!(
        health.failed, 0,
        "failed health requests through haproxy during the rolling restart: {health:?}"
    );
    model.assert_all("active", "serving");

    // A steady update-status on a unit with a database, its peers and haproxy-route: every
    // program it starts, traced. The charm's own binary, then hook tools only (at most 10),
    // no other process.
    for (name, _) in &model.units {
        let started = model.unit(name).traced_hook("update-status");
        let (dispatch, rest) = started
            .split_first()
            .expect("the hook started its dispatch");
        assert!(dispatch.ends_with("/dispatch"), "{started:?}");
        let basename = |p: &String| p.rsplit('/').next().unwrap_or(p).to_owned();
        let others: Vec<&String> = rest
            .iter()
            .filter(|p| !jujusim::is_hook_tool(&basename(p)))
            .collect();
        assert!(
            others.is_empty(),
            "{name}'s update-status started {others:?}"
        );
        assert!(
            rest.len() <= 10,
            "{name}: {} hook-tool calls: {rest:?}",
            rest.len()
        );
        println!(
            "{name} update-status: {:?}",
            rest.iter().map(basename).collect::<Vec<_>>()
        );
        record_figure(
            "scale-out",
            "steady update-status hook-tool calls (db, peers, haproxy-route)",
            rest.len() as f64,
            "calls",
        );
    }
    model.assert_all("active", "serving");

    // Baseline: the same restart without coordination (every unit at once).
    wait_serving(&model, &haproxy.url("/parse/health"));
    let run = LoadRun::start(&model, &through, APP_ID, 25, 16);
    std::thread::sleep(Duration::from_secs(3));
    let all: Vec<_> = model
        .units
        .iter()
        .map(|(_, u)| {
            let dir = u.dir.clone();
            std::thread::spawn(move || {
                std::process::Command::new(jujusim::kit::sim())
                    .args(["machine-exec"])
                    .arg(&dir)
                    .args(["--", "systemctl", "restart", "parse-server"])
                    .output()
                    .unwrap()
            })
        })
        .collect();
    for t in all {
        assert!(t.join().unwrap().status.success());
    }
    let baseline = run.finish();
    record_figure(
        "scale-out",
        "uncoordinated restart of 3 units (baseline), failed requests",
        baseline.failed as f64,
        "requests",
    );

    // update-status on a 3-unit model: wall time of the hook.
    for (_, unit) in &model.units {
        unit.hook("update-status", &[]);
    }
    for (name, unit) in &model.units {
        let ms = unit
            .read_unit_file("hook-times.jsonl")
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| v["hook"] == "update-status")
            .filter_map(|v| v["ms"].as_f64())
            .next_back()
            .unwrap();
        record_figure(
            "scale-out",
            &format!("update-status on a 3-unit model ({name})"),
            ms,
            "ms",
        );
    }

    // The leader goes: a new leader, the same key, every unit serving.
    let old_leader = model.leader();
    model.remove_unit(&old_leader);
    let new_leader = model.leader();
    assert_ne!(new_leader, old_leader);
    assert_eq!(model.master_key(), key);
    model.assert_all("active", "serving");
    let cfg = haproxy.render_route(&model.app_bag(&lb), &model.route_addresses(&lb));
    haproxy.apply(&mut model, &cfg);
    wait_serving(&model, &haproxy.url("/parse/health"));

    // juju add-unit: the new unit serves with the same key.
    let added = Instant::now();
    let fresh = model.add_unit();
    model.settle();
    record_figure(
        "scale-out",
        "add-unit to serving",
        added.elapsed().as_secs_f64(),
        "s",
    );
    model.assert_all("active", "serving");
    let o: Value = serde_json::from_str(
        &model
            .unit(&fresh)
            .read_text("/etc/parse-server/config.json"),
    )
    .unwrap();
    assert_eq!(o["masterKey"], key.as_str());
    let addresses = model.route_addresses(&lb);
    assert_eq!(addresses.len(), 3, "{addresses:?}");

    // juju remove-unit: it leaves the relation data, so haproxy no longer sends to it.
    let gone = units[1].clone();
    let gone_ip = "10.77.0.12".to_owned();
    model.remove_unit(&gone);
    let addresses = model.route_addresses(&lb);
    assert!(!addresses.contains(&gone_ip), "{addresses:?}");
    let cfg = haproxy.render_route(&model.app_bag(&lb), &addresses);
    haproxy.apply(&mut model, &cfg);
    wait_serving(&model, &through);
    model.teardown();
}

#[test]
fn three_units_on_scram_mongodb_and_bad_credentials_are_refused_by_the_server() {
    let mut model = Model::new("scale-mongo");
    let password = random_alnum(32);
    let units: Vec<String> = (0..3).map(|_| model.add_unit()).collect();
    model.config(&[
        &format!("app-id={APP_ID}"),
        "workers=1",
        "allow-client-class-creation=true",
    ]);
    model.settle();
    let (_, user, secret) = relate_scram_mongodb(&mut model, &password);
    model.assert_all("active", "serving on port 1337");
    data_crosses_units(&model, &units);

    // A wrong password (the provider rotated it wrongly): refused by the server, every unit
    // waits with the server's reason, and the service that serves is left alone.
    let pids: Vec<u32> = model
        .units
        .iter()
        .map(|(_, u)| u.main_pid("parse-server"))
        .collect();
    let wrong = random_alnum(32);
    let bad_uris = format!("mongodb://{user}:{wrong}@10.77.0.1:27017/parse?authSource=admin");
    model.remote_secret_set(
        &secret,
        &[
            ("username", user.as_str()),
            ("password", wrong.as_str()),
            ("uris", bad_uris.as_str()),
        ],
    );
    model.settle();
    model.assert_all(
        "waiting",
        "mongodb-client relation: database at 10.77.0.1:27017 refused",
    );
    let after: Vec<u32> = model
        .units
        .iter()
        .map(|(_, u)| u.main_pid("parse-server"))
        .collect();
    assert_eq!(pids, after, "nothing serving was touched");
    for (name, unit) in &model.units {
        let journal = unit.journal("parse-server");
        assert!(
            !journal.contains(&password) && !journal.contains(&wrong),
            "{name}: a password in the journal"
        );
    }
    model.teardown();
}
