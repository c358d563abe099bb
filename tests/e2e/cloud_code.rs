//! A real Parse app on the charm: Cloud Code from the `cloud-code` resource (triggers, a
//! function with an npm dependency installed from the archive's lockfile through the
//! model's proxy, a job) on three booted units on PostgreSQL behind haproxy, called with the
//! Parse JS SDK; a new revision rolled out under load; a broken one refused while the
//! previous serves; and every class of hostile archive refused with nothing written outside.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::model::{LoadRun, Model, Postgres};
use crate::scale_out::{
    assert_one_at_a_time, behind_haproxy, now_unix, relate_postgresql, restarts_since, three_units,
    wait_serving,
};
use jujusim::kit::record_figure;

const APP_ID: &str = "shop";
const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/cloud-code");
const RELEASE_MODULES: &str = "/opt/parse-server/releases/9.10.0/node_modules";

/// One archive entry: a name, what it is, its mode.
enum Entry<'a> {
    File(String, Vec<u8>, u32),
    Symlink(&'a str, &'a str),
    HardLink(&'a str, &'a str),
    CharDevice(&'a str),
    /// A regular file whose raw header name is given as is (tar::Builder refuses `..` and
    /// absolute names).
    RawName(&'a str),
}

fn file<'a>(name: &str, body: impl Into<Vec<u8>>, mode: u32) -> Entry<'a> {
    Entry::File(name.to_owned(), body.into(), mode)
}

/// A .tar.gz of `entries` written under `dir` as `name`.
fn targz(dir: &Path, name: &str, entries: &[Entry]) -> PathBuf {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut b = tar::Builder::new(gz);
    for e in entries {
        let mut h = tar::Header::new_gnu();
        match e {
            Entry::File(path, body, mode) => {
                h.set_size(body.len() as u64);
                h.set_mode(*mode);
                h.set_entry_type(tar::EntryType::Regular);
                h.set_cksum();
                b.append_data(&mut h, path, body.as_slice()).unwrap();
            }
            Entry::Symlink(path, target) | Entry::HardLink(path, target) => {
                h.set_size(0);
                h.set_mode(0o777);
                h.set_entry_type(if matches!(e, Entry::Symlink(..)) {
                    tar::EntryType::Symlink
                } else {
                    tar::EntryType::Link
                });
                h.set_link_name(target).unwrap();
                h.set_cksum();
                b.append_data(&mut h, path, std::io::empty()).unwrap();
            }
            Entry::CharDevice(path) => {
                h.set_size(0);
                h.set_mode(0o666);
                h.set_entry_type(tar::EntryType::Char);
                h.set_device_major(1).unwrap();
                h.set_device_minor(3).unwrap();
                h.set_cksum();
                b.append_data(&mut h, path, std::io::empty()).unwrap();
            }
            Entry::RawName(raw) => {
                let mut h = tar::Header::new_old();
                h.as_old_mut().name[..raw.len()].copy_from_slice(raw.as_bytes());
                h.set_size(4);
                h.set_mode(0o644);
                h.set_entry_type(tar::EntryType::Regular);
                h.set_cksum();
                b.get_mut().write_all(h.as_bytes()).unwrap();
                let mut block = [0u8; 512];
                block[..4].copy_from_slice(b"evil");
                b.get_mut().write_all(&block).unwrap();
            }
        }
    }
    let bytes = b.into_inner().unwrap().finish().unwrap();
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

/// The fixture app as revision `revision` (its functions report it), with its lockfile.
fn app_archive(dir: &Path, revision: u32) -> PathBuf {
    let read = |f: &str| std::fs::read(Path::new(FIXTURE).join(f)).unwrap();
    let main = String::from_utf8(read("main.js")).unwrap().replace(
        "const REVISION = 1;",
        &format!("const REVISION = {revision};"),
    );
    targz(
        dir,
        &format!("cloud-v{revision}.tar.gz"),
        &[
            file("main.js", main.into_bytes(), 0o644),
            file("package.json", read("package.json"), 0o644),
            file("package-lock.json", read("package-lock.json"), 0o644),
        ],
    )
}

/// The first 12 hex digits of the file's SHA-256 (what the status shows).
fn digest(file: &Path) -> String {
    let out = std::process::Command::new("sha256sum")
        .arg(file)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)[..12].to_owned()
}

fn unit_url(unit: &str, path: &str) -> String {
    let n: usize = unit.rsplit('/').next().unwrap().parse().unwrap();
    format!("http://10.77.0.{}:1337{path}", 11 + n)
}

/// `Parse.Cloud.run('duration')` answered by `unit` itself: the revision it runs.
fn revision_on(model: &Model, unit: &str) -> u64 {
    let (code, body) = crate::model::http_from_net(
        model,
        "POST",
        &unit_url(unit, "/parse/functions/duration"),
        &[
            ("X-Parse-Application-Id", APP_ID),
            ("Content-Type", "application/json"),
        ],
        Some(br#"{"text":"2h"}"#),
    );
    assert_eq!(code, 200, "{unit}: {body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["result"]["ms"], 7_200_000, "{body}");
    v["result"]["revision"].as_u64().unwrap()
}

/// The Parse JS SDK (the `parse` package parse-server ships) run on `unit`'s machine
/// against haproxy: calls the function, saves an order (the triggers' effects) and one the
/// beforeSave refuses.
const SDK_SCRIPT: &str = r#"
const Parse = require('parse/node');
Parse.initialize('shop');
Parse.serverURL = 'http://10.77.0.1:8080/parse';
(async () => {
  const run = await Parse.Cloud.run('duration', { text: '1m' });
  const order = new Parse.Object('Order');
  order.set('item', 'book');
  await order.save();
  const fetched = await new Parse.Query('Order').get(order.id);
  const logs = await new Parse.Query('OrderLog').equalTo('orderId', order.id).find();
  let refused = null;
  try {
    await new Parse.Object('Order').save();
  } catch (e) {
    refused = e.message;
  }
  console.log(JSON.stringify({ run, status: fetched.get('status'), logs: logs.length, refused }));
})().catch((e) => { console.log(JSON.stringify({ error: String(e) })); process.exit(1); });
"#;

/// Polls the function through haproxy until `stop` exists: per revision seen, failures.
const POLL_SCRIPT: &str = r#"
const fs = require('fs');
const [url, stop] = process.argv.slice(1);
const seen = {};
let total = 0, failed = 0, first = null;
(async () => {
  while (!fs.existsSync(stop)) {
    total++;
    try {
      const r = await fetch(url, { method: 'POST', body: '{"text":"1s"}',
        headers: { 'X-Parse-Application-Id': 'shop', 'Content-Type': 'application/json' } });
      const b = await r.json();
      if (r.status !== 200) { failed++; first = first || `${r.status} ${JSON.stringify(b)}`; }
      else { seen[b.result.revision] = (seen[b.result.revision] || 0) + 1; }
    } catch (e) { failed++; first = first || String(e); }
  }
  console.log(JSON.stringify({ total, failed, seen, first }));
})();
"#;

#[test]
fn a_parse_app_with_cloud_code_on_three_units_behind_haproxy() {
    let mut model = Model::new("cloud");
    let work = model.dir.join("archives");
    std::fs::create_dir_all(&work).unwrap();
    let pg = Postgres::start(&mut model, 5432);
    let v1 = app_archive(&work, 1);
    let d1 = digest(&v1);
    // juju deploy -n 3 --resource cloud-code=./cloud.tar.gz
    model.attach_resource("cloud-code", &v1);
    let units = three_units(&mut model);
    let installed = Instant::now();
    model.settle();
    record_figure(
        "cloud-code",
        "install of 3 units with a Cloud Code archive with dependencies (to waiting for a database)",
        installed.elapsed().as_secs_f64(),
        "s",
    );
    model.assert_all("blocked", "add a relation to mongodb or postgresql");
    let related = Instant::now();
    relate_postgresql(&mut model, &pg);
    record_figure(
        "cloud-code",
        "relation answered to three units serving Cloud Code",
        related.elapsed().as_secs_f64(),
        "s",
    );
    model.assert_all("active", &format!("cloud code {d1}"));

    // Each revision unpacked once, root-owned, read-only to the service, its dependency
    // installed from the lockfile (through the unit's proxy: the registry only).
    for (name, unit) in &model.units {
        let dir = format!("/opt/parse-server/cloud/{d1}");
        let o: Value =
            serde_json::from_str(&unit.read_text("/etc/parse-server/config.json")).unwrap();
        assert_eq!(o["cloud"], format!("{dir}/main.js"), "{name}");
        let stat = unit.exec_ok(&[
            "stat",
            "-c",
            "%U %a",
            &dir,
            &format!("{dir}/main.js"),
            &format!("{dir}/node_modules/ms/package.json"),
        ]);
        assert_eq!(stat, "root 755\nroot 644\nroot 644\n", "{name}");
        let write = unit.exec(&[
            "setpriv",
            "--reuid=parse-server",
            "--regid=parse-server",
            "--clear-groups",
            "--",
            "touch",
            &format!("{dir}/main.js"),
        ]);
        assert!(
            !write.status.success(),
            "{name}: the service wrote its code"
        );
    }

    let (_lb, haproxy, _cfg) = behind_haproxy(&mut model);
    wait_serving(&model, &haproxy.url("/parse/health"));

    // The Parse JS SDK through haproxy: the function with its npm dependency, the triggers.
    let (_, first) = &model.units[0];
    let out = first.exec_ok(&[
        "env",
        &format!("NODE_PATH={RELEASE_MODULES}"),
        "node",
        "-e",
        SDK_SCRIPT,
    ]);
    let sdk: Value = serde_json::from_str(out.trim()).unwrap_or_else(|_| panic!("{out}"));
    assert_eq!(
        sdk["run"],
        serde_json::json!({"ms": 60000, "revision": 1}),
        "{sdk}"
    );
    assert_eq!(sdk["status"], "new", "beforeSave set the status: {sdk}");
    assert_eq!(sdk["logs"], 1, "afterSave wrote the log entry: {sdk}");
    assert_eq!(sdk["refused"], "an order needs an item", "{sdk}");

    // juju attach-resource under load: each unit moves to revision 2 in turn, no request
    // fails (the API through haproxy, and the function itself, polled all along).
    let v2 = app_archive(&work, 2);
    let d2 = digest(&v2);
    let stop = work.join("stop-polling");
    let poller = model
        .net
        .command(&[
            "node",
            "-e",
            POLL_SCRIPT,
            &haproxy.url("/parse/functions/duration"),
            stop.to_str().unwrap(),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let since = now_unix();
    let load = LoadRun::start(
        &model,
        &haproxy.url("/parse/classes/Order?limit=1"),
        APP_ID,
        90,
        8,
    );
    std::thread::sleep(Duration::from_secs(3));
    let attached = Instant::now();
    model.attach_resource("cloud-code", &v2);
    model.settle();
    let rollout_s = attached.elapsed().as_secs_f64();
    std::thread::sleep(Duration::from_secs(2));
    std::fs::write(&stop, "").unwrap();
    let polled = poller.wait_with_output().unwrap();
    let polled: Value = serde_json::from_slice(&polled.stdout)
        .unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&polled.stderr)));
    let load = load.finish();
    record_figure(
        "cloud-code",
        "new revision attached to all 3 units serving it",
        rollout_s,
        "s",
    );
    record_figure(
        "cloud-code",
        "new revision rollout, failed API requests through haproxy",
        load.failed as f64,
        "requests",
    );
    record_figure(
        "cloud-code",
        "new revision rollout, failed function calls through haproxy",
        polled["failed"].as_f64().unwrap(),
        "requests",
    );
    println!("function calls during the rollout: {polled}");
    assert_eq!(load.failed, 0, "{load:?}");
    assert_eq!(polled["failed"], 0, "{polled}");
    assert!(polled["seen"]["2"].as_u64().unwrap_or(0) > 0, "{polled}");
    assert_one_at_a_time(&restarts_since(&model, since), 3);
    model.assert_all("active", &format!("cloud code {d2}"));
    for u in &units {
        assert_eq!(revision_on(&model, u), 2, "{u}");
    }

    // A revision whose code does not load: refused on every unit before any restart,
    // naming the resource and the error's first line; revision 2 keeps serving.
    let broken = targz(
        &work,
        "cloud-broken.tar.gz",
        &[file(
            "main.js",
            "Parse.Cloud.define('x', () => {\n  return 1;\n}});\n",
            0o644,
        )],
    );
    let since = now_unix();
    model.attach_resource("cloud-code", &broken);
    model.settle();
    model.assert_all(
        "blocked",
        &format!(
            "cloud-code resource {}: its code does not load: SyntaxError:",
            digest(&broken)
        ),
    );
    model.assert_all("blocked", "at main.js:3");
    assert!(restarts_since(&model, since).is_empty());
    for u in &units {
        assert_eq!(revision_on(&model, u), 2, "{u}");
    }
    // Fixed: the next revision serves again.
    let v3 = app_archive(&work, 3);
    model.attach_resource("cloud-code", &v3);
    model.settle();
    model.assert_all("active", &format!("cloud code {}", digest(&v3)));
    for u in &units {
        assert_eq!(revision_on(&model, u), 3, "{u}");
    }
    model.teardown();
}

#[test]
fn hostile_cloud_code_archives_are_refused_and_nothing_lands_outside_and_an_es_module_serves() {
    let mut model = Model::new("cloud-hostile");
    let work = model.dir.join("archives");
    std::fs::create_dir_all(&work).unwrap();
    let pg = Postgres::start(&mut model, 5432);
    let unit = model.add_unit();
    model.config(&[&format!("app-id={APP_ID}"), "workers=1"]);
    let good = targz(
        &work,
        "good.tar.gz",
        &[file(
            "main.js",
            "Parse.Cloud.define('duration', () => ({ ms: 7200000, revision: 7 }));\n",
            0o644,
        )],
    );
    model.attach_resource("cloud-code", &good);
    model.settle();
    relate_postgresql(&mut model, &pg);
    model.assert_all("active", &format!("cloud code {}", digest(&good)));

    let main = || file("main.js", "Parse.Cloud.define('h', () => 1);\n", 0o644);
    let big = vec![0u8; 513 * 1024 * 1024];
    let many: Vec<Entry> = (0..100_001)
        .map(|i| file(&format!("f/{i}"), Vec::new(), 0o644))
        .collect();
    let cases: Vec<(&str, Vec<Entry>, &str)> = vec![
        (
            "dotdot",
            vec![main(), Entry::RawName("../../../../tmp/cloud-evil")],
            "leaves",
        ),
        (
            "absolute",
            vec![main(), Entry::RawName("/tmp/cloud-evil-abs")],
            "absolute",
        ),
        (
            "symlink-out",
            vec![
                main(),
                Entry::Symlink("etc", "/etc"),
                file("etc/cloud-evil", "x", 0o644),
            ],
            "",
        ),
        (
            "symlink-up",
            vec![main(), Entry::Symlink("up", "../../../../tmp")],
            "",
        ),
        (
            "hardlink-out",
            vec![main(), Entry::HardLink("pw", "/etc/passwd")],
            "",
        ),
        ("device", vec![main(), Entry::CharDevice("null")], ""),
        (
            "setuid",
            vec![main(), file("run", "#!/bin/sh\n", 0o4755)],
            "setuid",
        ),
        ("big", vec![main(), file("zeros", big, 0o644)], "512 MiB"),
        ("many", many, "100000"),
    ];
    let outside = [
        "/tmp/cloud-evil",
        "/tmp/cloud-evil-abs",
        "/etc/cloud-evil",
        "/opt/parse-server/cloud-evil",
    ];
    for (name, entries, why) in cases {
        let archive = targz(&work, &format!("{name}.tar.gz"), &entries);
        let started = Instant::now();
        model.attach_resource("cloud-code", &archive);
        model.settle();
        println!(
            "{name}: refused in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        let status = model.workloads();
        let (_, kind, message) = &status[0];
        assert_eq!(kind, "blocked", "{name}: {message}");
        assert!(
            message.starts_with(&format!("cloud-code resource {}: ", digest(&archive))),
            "{name}: {message}"
        );
        assert!(message.contains(why), "{name}: {message}");
        let u = model.unit(&unit);
        for p in outside {
            assert!(
                !u.exec(&["test", "-e", p]).status.success(),
                "{name} wrote {p}"
            );
        }
        let left = u.exec_ok(&["ls", "-A", "/opt/parse-server/cloud"]);
        assert_eq!(left.trim(), digest(&good), "{name}: {left}");
        assert_eq!(revision_on(&model, &unit), 7, "{name}");
    }

    // An ES module (`"type": "module"`) with a top-level await, which `require` cannot load:
    // parse-server imports it.
    let esm = targz(
        &work,
        "esm.tar.gz",
        &[
            file("package.json", r#"{"type": "module"}"#, 0o644),
            file(
                "main.js",
                "const revision = await Promise.resolve(8);\n\
                 Parse.Cloud.define('duration', () => ({ ms: 7200000, revision }));\n",
                0o644,
            ),
        ],
    );
    model.attach_resource("cloud-code", &esm);
    model.settle();
    model.assert_all("active", &format!("cloud code {}", digest(&esm)));
    assert_eq!(revision_on(&model, &unit), 8);
    model.teardown();
}

/// `(unit, due time)` of every scheduled run the units' journals show.
fn scheduled_runs(model: &Model) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (name, unit) in &model.units {
        let log = unit
            .exec(&[
                "journalctl",
                "-u",
                "parse-server-jobs.service",
                "-o",
                "cat",
                "--no-pager",
            ])
            .stdout;
        for line in String::from_utf8_lossy(&log).lines() {
            if let Some(rest) = line.strip_prefix("ran countOrders (schedule ") {
                let due = rest.split(" for ").nth(1).unwrap_or("").split(':').take(3);
                let due: Vec<&str> = due.collect();
                out.push((name.clone(), due.join(":")));
            }
        }
    }
    out.sort_by(|a, b| a.1.cmp(&b.1));
    out
}

/// Whether the job timer runs on `unit`.
fn timer_on(model: &Model, unit: &str) -> bool {
    model
        .unit(unit)
        .exec(&["systemctl", "is-active", "parse-server-jobs.timer"])
        .status
        .success()
}

fn wait_for_runs(model: &Model, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(150);
    while scheduled_runs(model).len() < n {
        assert!(
            Instant::now() < deadline,
            "{n} scheduled runs did not happen: {:?}",
            scheduled_runs(model)
        );
        std::thread::sleep(Duration::from_secs(2));
    }
}

#[test]
fn scheduled_jobs_run_once_per_period_on_the_leader_through_a_leader_change_and_a_reboot() {
    let mut model = Model::new("jobs");
    let work = model.dir.join("archives");
    std::fs::create_dir_all(&work).unwrap();
    let pg = Postgres::start(&mut model, 5432);
    model.attach_resource("cloud-code", &app_archive(&work, 1));
    let units: Vec<String> = (0..3).map(|_| model.add_unit()).collect();
    model.config(&[&format!("app-id={APP_ID}"), "workers=1"]);
    model.settle();
    relate_postgresql(&mut model, &pg);
    model.assert_all("active", "cloud code");
    assert_eq!(model.leader(), units[0]);
    assert_eq!(
        units
            .iter()
            .map(|u| timer_on(&model, u))
            .collect::<Vec<_>>(),
        [true, false, false]
    );

    // A schedule made through REST (as the Dashboard makes them): every minute, from the
    // next whole minute.
    let key = model.master_key();
    let headers = [
        ("X-Parse-Application-Id", APP_ID),
        ("X-Parse-Master-Key", key.as_str()),
        ("Content-Type", "application/json"),
    ];
    let now = now_unix() as u64;
    let start = (now / 60 + 1) * 60;
    let start_iso = String::from_utf8(
        std::process::Command::new("date")
            .args(["-u", "-d", &format!("@{start}"), "+%Y-%m-%dT%H:%M:%S.000Z"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap()
    .trim()
    .to_owned();
    let body = serde_json::json!({"job_schedule": {
        "jobName": "countOrders",
        "description": "every minute",
        "params": "{\"scheduled\": true}",
        "startAfter": start_iso,
        "repeatMinutes": 1,
    }})
    .to_string();
    let leader = model.unit(&units[0]);
    let (code, created) = leader.http(
        "POST",
        "http://127.0.0.1:1337/parse/cloud_code/jobs",
        &headers,
        Some(&body),
    );
    assert_eq!(code, 201, "{created}");
    let schedule = serde_json::from_str::<Value>(&created).unwrap()["objectId"]
        .as_str()
        .unwrap()
        .to_owned();

    // Two periods on the first leader.
    wait_for_runs(&model, 2);
    // juju: leadership moves to unit 1 (unit 0 gets leader-settings-changed).
    model.ok("set-leader", &[&units[1]]);
    model.settle();
    assert_eq!(
        units
            .iter()
            .map(|u| timer_on(&model, u))
            .collect::<Vec<_>>(),
        [false, true, false]
    );
    wait_for_runs(&model, 3);
    // The new leader reboots right after its run: back before the next period, its timer
    // with it (no hook runs).
    model.unit_mut(&units[1]).reboot();
    let up = Instant::now();
    while !timer_on(&model, &units[1]) {
        assert!(
            up.elapsed() < Duration::from_secs(30),
            "the timer is not back"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    wait_for_runs(&model, 5);
    // Five periods: the schedule goes, and one more period shows nothing more ran.
    let (code, body) = model.unit(&units[1]).http(
        "DELETE",
        &format!("http://127.0.0.1:1337/parse/cloud_code/jobs/{schedule}"),
        &headers,
        None,
    );
    assert_eq!(code, 200, "{body}");
    let runs = scheduled_runs(&model);
    println!("scheduled runs: {runs:?}");
    let expected: Vec<String> = (0..5)
        .map(|k| {
            String::from_utf8(
                std::process::Command::new("date")
                    .args([
                        "-u",
                        "-d",
                        &format!("@{}", start + 60 * k),
                        "+%Y-%m-%dT%H:%M",
                    ])
                    .output()
                    .unwrap()
                    .stdout,
            )
            .unwrap()
            .trim()
            .to_owned()
        })
        .collect();
    let dues: Vec<String> = runs.iter().map(|(_, d)| d[..16].to_owned()).collect();
    assert_eq!(dues, expected, "one run per period: {runs:?}");
    let who: Vec<&str> = runs.iter().map(|(u, _)| u.as_str()).collect();
    assert_eq!(
        who,
        [
            units[0].as_str(),
            &units[0],
            &units[1],
            &units[1],
            &units[1]
        ],
        "each run on the leader of its time"
    );
    // What keeps a period from running twice (two units that both think they lead, a
    // rerun after a reboot): the same request id again is refused by the database.
    let mut again = headers.to_vec();
    let request_id = format!("parse-server-charm-job:{schedule}:{}", runs[4].1);
    again.push(("X-Parse-Request-Id", request_id.as_str()));
    let (code, body) = model.unit(&units[0]).http(
        "POST",
        "http://127.0.0.1:1337/parse/jobs/countOrders",
        &again,
        Some("{\"scheduled\": true}"),
    );
    assert_eq!(code, 400, "{body}");
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["code"],
        159,
        "Duplicate request: {body}"
    );
    // The database agrees: five JobRun objects from the schedule.
    let count = |filter: &str| {
        let (code, body) = model.unit(&units[2]).http(
            "GET",
            &format!(
                "http://127.0.0.1:1337/parse/classes/JobRun?count=1&limit=0&where={}",
                filter
            ),
            &headers,
            None,
        );
        assert_eq!(code, 200, "{body}");
        serde_json::from_str::<Value>(&body).unwrap()["count"]
            .as_u64()
            .unwrap()
    };
    assert_eq!(count("%7B%22params.scheduled%22%3Atrue%7D"), 5);
    record_figure(
        "cloud-code",
        "scheduled runs over 5 one-minute periods across 3 units (expected 5)",
        runs.len() as f64,
        "runs",
    );

    // juju run parse-server/2 run-job: on a unit that does not lead.
    let out = model.unit(&units[2]).sim(
        "action",
        &["run-job", "name=countOrders", "params={\"manual\": true}"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let id = v
        .pointer("/results/job-status-id")
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("{v}"))
        .to_owned();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (code, body) = model.unit(&units[2]).http(
            "GET",
            &format!("http://127.0.0.1:1337/parse/classes/_JobStatus/{id}"),
            &headers,
            None,
        );
        assert_eq!(code, 200, "{body}");
        if serde_json::from_str::<Value>(&body).unwrap()["status"] == "succeeded" {
            break;
        }
        assert!(Instant::now() < deadline, "{body}");
        std::thread::sleep(Duration::from_millis(500));
    }
    assert_eq!(count("%7B%22params.manual%22%3Atrue%7D"), 1);
    model.teardown();
}
