//! A hook killed at any step of a configuration change: the next hook converges to the new
//! configuration or back to the last good one, never to a stale process reported active.

use parse_server_charm::juju::StatusKind;

use crate::harness::{hook, run, serving, Exit, On, World};

/// The checkpoints of a change, in order.
const CHANGE_STEPS: &[&str] = &["rendered", "rollout-recorded", "files-written", "restarted"];

/// Every step of a rollback after the new configuration failed.
const ROLLBACK_STEPS: &[&str] = &[
    "rendered",
    "rollout-recorded",
    "files-written",
    "restarted",
    "health-wait",
    "failure-recorded",
    "previous-files-written",
];

fn killed_at(w: World, step: &str) -> World {
    let (w, exit) = run(w, On::hook("config-changed").abort_after(step));
    assert_eq!(exit, Exit::Killed, "the hook was to die after {step}");
    w
}

#[test]
fn a_change_killed_at_any_step_is_finished_by_the_next_hook() {
    for step in CHANGE_STEPS {
        let mut w = serving(&format!("kill-{step}"));
        w.set("master-key-ips", "127.0.0.1,::1,10.0.0.0/8");
        let w = killed_at(w, step);
        // Whatever the process runs now, the next hook (any hook) makes it the new one.
        let w = hook(w, "update-status");
        w.assert_status(StatusKind::Active, "serving");
        let running = w.running_options().expect("serving");
        assert_eq!(
            running["masterKeyIps"],
            serde_json::json!(["127.0.0.1", "::1", "10.0.0.0/8"]),
            "killed after {step}: a stale process is reported active"
        );
        assert!(!w
            .root
            .join("var/lib/parse-server-charm/rollout.json")
            .exists());
    }
}

#[test]
fn a_failing_change_killed_at_any_step_ends_rolled_back() {
    for step in ROLLBACK_STEPS {
        let mut w = serving(&format!("kill-bad-{step}"));
        let good = w.options();
        w.set("extra-options", r#"{"defaultLimit": 0}"#);
        let w = killed_at(w, step);
        let w = hook(w, "update-status");
        w.assert_status(StatusKind::Blocked, "did not start");
        assert!(w.active, "killed after {step}: the API is left down");
        assert_eq!(
            w.running_options().unwrap(),
            good,
            "killed after {step}: not back on the last good configuration"
        );
        assert_eq!(w.options(), good);
        // And it stays there.
        let restarts = w.restarts;
        let w = hook(w, "update-status");
        w.assert_status(StatusKind::Blocked, "did not start before");
        assert_eq!(w.restarts, restarts);
    }
}

#[test]
fn a_killed_first_start_is_started_by_the_next_hook() {
    for step in CHANGE_STEPS {
        let mut w = World::new(&format!("kill-first-{step}"));
        w.relate_mongodb();
        let w = killed_at(w, step);
        // The killed hook's secret-add was never committed: the next one makes the key.
        let w = hook(w, "config-changed");
        w.assert_status(StatusKind::Active, "serving");
        assert_eq!(
            w.running_options().unwrap()["masterKey"],
            w.master_key().as_str(),
            "killed after {step}"
        );
    }
}
