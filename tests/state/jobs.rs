//! Scheduled jobs: the scheduler's timer on exactly the leader serving Cloud Code (moving
//! with leadership, gone at stop), systemctl only on a change, the scheduler's problems in
//! the leader's status, and the `run-job` action's refusals.

use std::io::Write;

use parse_server_charm::juju::StatusKind;
use serde_json::{json, Value};

use crate::harness::{hook, serving, On, World};

const TIMER: &str = "parse-server-jobs.timer";

/// A unit serving Cloud Code (an archive with one job).
fn with_cloud_code(tag: &str) -> World {
    let mut w = serving(tag);
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut b = tar::Builder::new(gz);
    let main = b"Parse.Cloud.job('tick', () => 1);\n";
    let mut h = tar::Header::new_gnu();
    h.set_size(main.len() as u64);
    h.set_mode(0o644);
    h.set_cksum();
    b.append_data(&mut h, "main.js", &main[..]).unwrap();
    let bytes = b.into_inner().unwrap().finish().unwrap();
    let dir = w.root.join("var/lib/juju/resources/cloud-code");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::File::create(dir.join("cloud-code.archive"))
        .unwrap()
        .write_all(&bytes)
        .unwrap();
    w.resources
        .insert("cloud-code".into(), dir.join("cloud-code.archive"));
    let w = hook(w, "upgrade-charm");
    w.assert_status(StatusKind::Active, "cloud code");
    w
}

fn timer_calls(w: &World) -> Vec<String> {
    w.calls
        .iter()
        .filter(|c| c.ends_with(TIMER))
        .cloned()
        .collect()
}

#[test]
fn the_timer_runs_on_the_leader_serving_cloud_code_only() {
    let w = serving("jobs-no-code");
    assert!(w.timers.is_empty(), "no Cloud Code, no jobs to run");
    assert!(w
        .file("/etc/systemd/system/parse-server-jobs.timer")
        .is_none());

    let w = with_cloud_code("jobs-leader");
    assert!(w.timers.contains(TIMER));
    let service = w
        .file("/etc/systemd/system/parse-server-jobs.service")
        .unwrap();
    assert!(service.contains("\nUser=parse-server\n"), "{service}");
    assert!(w
        .file("/opt/parse-server/charm/job-scheduler.js")
        .unwrap()
        .contains("X-Parse-Request-Id"));
    let options = w.running_options().unwrap();
    assert_eq!(
        options["idempotencyOptions"],
        json!({"paths": ["jobs/.*"], "ttl": 172800})
    );
    // Nothing changes: systemctl is not asked again.
    let before = timer_calls(&w).len();
    let w = hook(w, "config-changed");
    assert_eq!(timer_calls(&w).len(), before);
}

#[test]
fn the_timer_moves_with_leadership() {
    let mut w = with_cloud_code("jobs-moves");
    assert!(w.timers.contains(TIMER));
    w.leader = false;
    let w = hook(w, "leader-settings-changed");
    assert!(w.timers.is_empty(), "{:?}", w.calls);
    assert_eq!(
        timer_calls(&w).last().unwrap(),
        &format!("disable --now {TIMER}")
    );
    let mut w = hook(w, "update-status");
    assert!(w.timers.is_empty());
    w.leader = true;
    let w = hook(w, "leader-elected");
    assert!(w.timers.contains(TIMER));
    assert_eq!(
        timer_calls(&w).last().unwrap(),
        &format!("enable --now {TIMER}")
    );
}

#[test]
fn stop_takes_the_timer_away() {
    let w = with_cloud_code("jobs-stop");
    let w = hook(w, "stop");
    assert!(w.timers.is_empty());
    assert!(w
        .file("/etc/systemd/system/parse-server-jobs.timer")
        .is_none());
    assert!(w
        .file("/etc/systemd/system/parse-server-jobs.service")
        .is_none());
}

#[test]
fn a_schedule_the_scheduler_cannot_read_is_named_in_the_leaders_status() {
    let w = with_cloud_code("jobs-problem");
    std::fs::write(
        w.root.join("var/lib/parse-server/job-scheduler.json"),
        r#"{"checked":"2026-12-06T10:00:05Z","skipped":{"Xy12":"timeOfDay: not HH:MM:SS.sssZ"},"ran":[],"failed":{}}"#,
    )
    .unwrap();
    let w = hook(w, "update-status");
    w.assert_status(
        StatusKind::Active,
        "; job schedule \"Xy12\": timeOfDay: not HH:MM:SS.sssZ",
    );
    let w = hook(w, "config-changed");
    w.assert_status(StatusKind::Active, "job schedule \"Xy12\"");
    // Fixed: the next run wrote no problem.
    std::fs::write(
        w.root.join("var/lib/parse-server/job-scheduler.json"),
        r#"{"checked":"2026-12-06T10:01:05Z","skipped":{},"ran":[],"failed":{}}"#,
    )
    .unwrap();
    let w = hook(w, "update-status");
    assert!(!w.statuses.last().unwrap().message.contains("job schedule"));
}

fn run_job(w: World, params: &[(&str, &str)]) -> World {
    let mut w = w;
    w.action_params = params
        .iter()
        .map(|(k, v)| ((*k).to_owned(), Value::from(*v)))
        .collect();
    hook(w, On::action("run-job"))
}

#[test]
fn run_job_refuses_what_it_cannot_send() {
    let w = with_cloud_code("jobs-action");
    let w = run_job(w, &[]);
    assert_eq!(
        w.action_failed.as_deref(),
        Some("name: the job to run is required")
    );
    let w = run_job(w, &[("name", "tick"), ("params", "[1,2]")]);
    assert_eq!(
        w.action_failed.as_deref(),
        Some("params: must be a JSON object such as {\"limit\": 10}")
    );
    // No parse-server answers in this harness: the reason, never the key. The
    // port is one the host just freed, not 1337, which a server of the host's
    // own may hold.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut w = w;
    w.set("port", i64::from(port));
    let w = hook(w, "config-changed");
    let w = run_job(w, &[("name", "tick"), ("params", "{\"n\":1}")]);
    let failed = w.action_failed.clone().unwrap();
    assert!(
        failed.starts_with(&format!("parse-server does not answer on port {port}")),
        "{failed}"
    );
    let key = w.running_options().unwrap()["masterKey"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(!failed.contains(&key));
}
