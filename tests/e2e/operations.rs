//! End to end, day-2 operations on one unit: a configuration parse-server refuses is rolled
//! back, a port held by another process is refused, the website relation is published,
//! cluster workers and the heap limit reach the processes, upgrade-charm restarts nothing,
//! and a non-leader waits for the leader's master key.

use crate::charm::{start_mongo_java_server, CharmUnit};
use jujusim::kit::{record_figure, Unit};
use serde_json::Value;

#[test]
fn day_two_operations() {
    let mut unit = Unit::deploy("operations");
    let mongo = start_mongo_java_server(&mut unit, 27017);
    unit.deploy_hooks(&["app-id=ops"]);
    unit.relate_mongodb("127.0.0.1", 27017);
    unit.assert_status("active", "serving on port 1337");
    let key = unit.master_key();
    let headers = [
        ("X-Parse-Application-Id", "ops"),
        ("X-Parse-Master-Key", key.as_str()),
        ("Content-Type", "application/json"),
    ];
    let (code, body) = unit.http(
        "POST",
        "http://127.0.0.1:1337/parse/classes/Item",
        &headers,
        Some(r#"{"n":1}"#),
    );
    assert_eq!(code, 201, "{body}");
    let count = |unit: &Unit| {
        let (code, body) = unit.http(
            "GET",
            "http://127.0.0.1:1337/parse/classes/Item?count=1&limit=0",
            &headers,
            None,
        );
        assert_eq!(code, 200, "{body}");
        serde_json::from_str::<Value>(&body).unwrap()["count"].clone()
    };
    assert_eq!(count(&unit), 1);

    // An extra option parse-server refuses at start-up: rolled back, blocked, still serving.
    unit.config(&[r#"extra-options={"defaultLimit": 0}"#]);
    unit.hook("config-changed", &[]);
    unit.assert_status("blocked", "the new configuration did not start");
    assert_eq!(
        count(&unit),
        1,
        "the previous configuration must serve again"
    );
    assert!(!unit
        .read_text("/etc/parse-server/config.json")
        .contains("defaultLimit"));
    let pids = unit.parse_server_pids();
    // Later hooks do not retry the same failed configuration (no restart loop).
    unit.hook("update-status", &[]);
    unit.assert_status("blocked", "did not start before");
    assert_eq!(unit.parse_server_pids(), pids);
    // A valid extra option applies (and restarts); resetting returns to active.
    unit.config(&[r#"extra-options={"maxLimit": 5}"#]);
    unit.hook("config-changed", &[]);
    unit.assert_status("active", "serving");
    assert!(unit
        .read_text("/etc/parse-server/config.json")
        .contains("\"maxLimit\": 5"));
    unit.reset_config("extra-options");
    unit.hook("config-changed", &[]);
    unit.assert_status("active", "serving");

    // A port another process holds is refused by name; the service stays where it is.
    unit.spawn_on_loopback(
        &[
            "python3",
            "-m",
            "http.server",
            "--bind",
            "127.0.0.1",
            "1340",
        ],
        "squatter.log",
    );
    unit.wait_port(1340, std::time::Duration::from_secs(20));
    let pids = unit.parse_server_pids();
    unit.config(&["port=1340"]);
    unit.hook("config-changed", &[]);
    unit.assert_status(
        "blocked",
        "invalid config: port: 1340 is in use by another process",
    );
    assert_eq!(unit.opened_ports(), vec!["1337/tcp"]);
    assert_eq!(unit.parse_server_pids(), pids);
    assert_eq!(count(&unit), 1);
    unit.reset_config("port");
    unit.hook("config-changed", &[]);
    unit.assert_status("active", "serving on port 1337");

    // The website relation: hostname and port for a load balancer.
    let rel = String::from_utf8(unit.sim("relate", &["website", "haproxy"]).stdout).unwrap();
    let rel = rel.trim().to_owned();
    unit.hook(
        "website-relation-joined",
        &["--relation", &rel, "--remote-unit", "haproxy/0"],
    );
    let bag = unit.local_unit_bag("website").expect("website relation");
    assert_eq!(bag["port"], "1337");
    assert_eq!(bag["hostname"], "10.0.0.10");
    let calls_before = unit
        .read_unit_file("tool-calls.log")
        .matches("relation-set")
        .count();
    unit.hook(
        "website-relation-changed",
        &["--relation", &rel, "--remote-unit", "haproxy/0"],
    );
    assert_eq!(
        unit.read_unit_file("tool-calls.log")
            .matches("relation-set")
            .count(),
        calls_before,
        "an unchanged databag is not written again"
    );

    // Two workers and a heap limit: parse-server's cluster master forks two workers.
    unit.config(&["workers=2", "node-max-old-space-size=256"]);
    unit.hook("config-changed", &[]);
    unit.assert_status("active", "2 workers");
    let pids = unit.parse_server_pids();
    assert_eq!(pids.len(), 3, "cluster master plus two workers: {pids:?}");
    for pid in &pids {
        let cmdline = unit.exec(&["cat", &format!("/proc/{pid}/cmdline")]);
        let cmdline = String::from_utf8_lossy(&cmdline.stdout).replace('\0', " ");
        assert!(cmdline.contains("--max-old-space-size=256"), "{cmdline}");
        assert!(
            !cmdline.contains(&key),
            "the master key is on a command line"
        );
    }
    let user = unit.exec(&["ps", "-o", "user=", "-p", &pids[0].to_string()]);
    assert_eq!(String::from_utf8_lossy(&user.stdout).trim(), "parse-server");
    assert_eq!(count(&unit), 1);
    memory_is_shown_as_proc_says(&unit, &pids);

    // upgrade-charm with nothing new restarts nothing.
    unit.hook("upgrade-charm", &[]);
    unit.hook("config-changed", &[]);
    unit.assert_status("active", "2 workers");
    assert_eq!(unit.parse_server_pids(), pids);

    // Another parse-server release: installed next to the running one, switched to, the old
    // one removed; the data stays.
    unit.config(&["parse-server-version=9.9.0", "workers=1"]);
    unit.hook("config-changed", &[]);
    unit.assert_status("active", "1 worker, ");
    unit.assert_status("active", "parse-server 9.9.0");
    assert_eq!(unit.status()["workload-version"], "9.9.0");
    assert!(unit.path("/opt/parse-server/releases/9.9.0").is_dir());
    assert!(!unit.path("/opt/parse-server/releases/9.10.0").exists());
    assert_eq!(count(&unit), 1);

    // A non-leader keeps serving with the application's secret it can read.
    assert!(unit.sim("set-leader", &["false"]).status.success());
    unit.hook("update-status", &[]);
    unit.assert_status("active", "parse-server 9.9.0");
    let action = unit.sim("action", &["get-master-key"]);
    let result: Value = serde_json::from_slice(&action.stdout).unwrap();
    assert_eq!(result["status"], "failed", "{result}");
    assert!(
        result["message"]
            .as_str()
            .unwrap()
            .contains("juju run parse-server/leader"),
        "{result}"
    );

    // The database goes away: update-status says so (the service is left alone), and comes
    // back to active when the database answers again.
    unit.stop_background(mongo);
    unit.hook("update-status", &[]);
    unit.assert_status("waiting", "database at 127.0.0.1:27017 does not answer");
    start_mongo_java_server(&mut unit, 27017);
    unit.hook("update-status", &[]);
    unit.assert_status("active", "parse-server 9.9.0");
    unit.teardown();
}

#[test]
fn a_non_leader_without_the_key_waits() {
    let mut unit = Unit::deploy("non-leader");
    start_mongo_java_server(&mut unit, 27017);
    assert!(unit.sim("set-leader", &["false"]).status.success());
    unit.hook("install", &[]);
    unit.hook("leader-settings-changed", &[]);
    unit.hook("config-changed", &[]);
    unit.hook("start", &[]);
    unit.relate_mongodb("127.0.0.1", 27017);
    unit.assert_status(
        "waiting",
        "waiting for the leader to generate the master key",
    );
    assert!(unit.parse_server_pids().is_empty());
    assert!(unit.opened_ports().is_empty());
    unit.teardown();
}

/// The status's memory figure is the service's resident memory with mapped files counted
/// once: within 10% of what /proc/<pid>/status says right after the hook (Σ RssAnon +
/// RssShmem, plus the largest RssFile); its ratio to PSS is recorded. The memory-report
/// action returns every process of the service (the cluster master and each worker) with
/// PSS, anonymous memory, V8 heap used and limit, the caps, and the status's figure.
fn memory_is_shown_as_proc_says(unit: &Unit, pids: &[u32]) {
    unit.hook("update-status", &[]);
    let (_, message) = unit.workload();
    let shown: f64 = message
        .split(", ")
        .find_map(|part| part.strip_suffix(" MiB"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no memory figure in {message:?}"));
    let field_kib = |pid: u32, file: &str, field: &str| -> f64 {
        let text = unit.exec_ok(&["cat", &format!("/proc/{pid}/{file}")]);
        text.lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|kib| kib.parse().ok())
            .unwrap_or_else(|| panic!("no {field} for {pid}: {text}"))
    };
    let own: f64 = pids
        .iter()
        .map(|&p| field_kib(p, "status", "RssAnon:") + field_kib(p, "status", "RssShmem:"))
        .sum();
    let files = pids
        .iter()
        .map(|&p| field_kib(p, "status", "RssFile:"))
        .fold(0.0, f64::max);
    let measured = (own + files) / 1024.0;
    assert!(
        (shown - measured).abs() <= 0.1 * measured,
        "status says {shown} MiB, /proc says {measured:.1} MiB ({message})"
    );
    let pss: f64 = pids
        .iter()
        .map(|&p| field_kib(p, "smaps_rollup", "Pss:"))
        .sum::<f64>()
        / 1024.0;
    record_figure(
        "memory",
        "status figure (resident, files once) / proc PSS",
        shown / pss,
        "ratio",
    );

    let out = unit.sim("action", &["memory-report"]);
    let report: Value = serde_json::from_slice(&out.stdout).expect("action JSON");
    assert_eq!(report["status"], "completed", "{report}");
    let r = &report["results"];
    assert_eq!(r["processes"], pids.len().to_string(), "{report}");
    assert_eq!(r["caps"]["workers"], "2", "{report}");
    assert_eq!(r["caps"]["heap-mib"], "256", "{report}");
    let resident: f64 = r["total-resident-mib"]
        .as_str()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no total-resident-mib in {report}"));
    assert!(
        (resident - shown).abs() <= 0.1 * shown,
        "memory-report's resident {resident} MiB against the status's {shown} MiB"
    );
    let mut roles = Vec::new();
    for pid in pids {
        let p = &r[format!("process-{pid}")];
        roles.push(p["role"].as_str().unwrap_or_default().to_owned());
        for field in ["pss-mib", "anonymous-mib", "heap-used-mib"] {
            let v: u64 = p[field].as_str().and_then(|v| v.parse().ok()).unwrap_or(0);
            assert!(v > 0, "process {pid}: {field} in {report}");
        }
        // --max-old-space-size=256: V8's limit is the old space plus the young generation.
        let limit: u64 = p["heap-limit-mib"]
            .as_str()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        assert!(
            (256..=400).contains(&limit),
            "process {pid}: heap limit {limit} MiB"
        );
    }
    roles.sort();
    assert_eq!(roles, ["master", "worker", "worker"], "{report}");
}
