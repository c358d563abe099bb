//! The steady state: an `update-status` after a full reconcile that ended `active` with
//! nothing pending only looks (health, database, memory) and reports with one hook-tool
//! call; whatever it finds amiss, and every other hook, goes through the full reconcile.

use crate::harness::{hook, run, Db, Exit, On, World};
use parse_server_charm::juju::StatusKind;

/// Three units on Charmed PostgreSQL behind haproxy-route, this one the leader, all serving
/// and nothing asked: the unit every operator has.
fn steady(tag: &str) -> World {
    steady_with(tag, true)
}

fn steady_with(tag: &str, postgis: bool) -> World {
    let mut w = World::new(tag);
    w.postgis = postgis;
    w.peer_with(&["parse-server/1", "parse-server/2"]);
    w.relate_charmed_postgresql();
    w.relate_haproxy_route();
    let w = hook(w, "config-changed");
    w.assert_status(StatusKind::Active, "serving on port 1337");
    w
}

fn tool_calls(w: &World) -> Vec<&'static str> {
    w.tool_calls.borrow().clone()
}

#[test]
fn a_steady_update_status_makes_one_hook_tool_call_and_changes_nothing() {
    let w = steady("steady-one-call");
    let restarts = w.restarts;
    w.tool_calls.borrow_mut().clear();
    let calls_before = w.calls.len();
    let w = hook(w, "update-status");
    assert_eq!(tool_calls(&w), ["status-set"]);
    assert_eq!(
        w.calls.len(),
        calls_before,
        "{:?}",
        &w.calls[calls_before..]
    );
    assert_eq!(w.restarts, restarts);
    // The truth at this hook: health answered, the database was asked, memory read afresh.
    w.assert_status(StatusKind::Active, "serving on port 1337 at /parse");
    assert!(
        w.status().message.contains(" MiB, parse-server "),
        "{:?}",
        w.status()
    );
    let asked = w.probed_uris.borrow().len();
    let w = hook(w, "update-status");
    assert_eq!(
        w.probed_uris.borrow().len(),
        asked + 1,
        "the database is checked at every hook"
    );
    // A full reconcile of the same unit asks many more.
    w.tool_calls.borrow_mut().clear();
    let w = hook(w, "config-changed");
    assert!(tool_calls(&w).len() > 5, "{:?}", tool_calls(&w));
}

#[test]
fn update_status_reconciles_in_full_when_what_changes_without_a_hook_changed() {
    // The service died and systemd gave up: the full reconcile starts it again.
    let mut w = steady("steady-dead");
    w.active = false;
    w.tool_calls.borrow_mut().clear();
    let restarts = w.restarts;
    let w = hook(w, "update-status");
    assert!(tool_calls(&w).len() > 1, "{:?}", tool_calls(&w));
    assert_eq!(w.restarts, restarts + 1);
    w.assert_status(StatusKind::Active, "serving");

    // The database stopped answering: said at once.
    let mut w = steady("steady-db-down");
    w.db = Db::Down;
    let w = hook(w, "update-status");
    w.assert_status(StatusKind::Waiting, "does not answer");
    // And once it answers again, the unit is active again (and steady after that).
    let mut w = w;
    w.db = Db::Up;
    let w = hook(w, "update-status");
    w.assert_status(StatusKind::Active, "serving");
    w.tool_calls.borrow_mut().clear();
    let w = hook(w, "update-status");
    assert_eq!(tool_calls(&w), ["status-set"]);

    // Someone edited the option file on disk: the full reconcile writes it back.
    let w = steady("steady-edited");
    let path = w.paths().config_file();
    std::fs::write(&path, "{}").unwrap();
    let w = hook(w, "update-status");
    assert_ne!(std::fs::read_to_string(&path).unwrap(), "{}");
    w.assert_status(StatusKind::Active, "serving");

    // PostGIS appeared in the database: the hint goes; and comes back when it goes.
    let mut w = steady_with("steady-postgis", false);
    assert!(
        w.status().message.contains("geo queries need"),
        "{:?}",
        w.status()
    );
    w.postgis = true;
    let mut w = hook(w, "update-status");
    assert!(
        !w.status().message.contains("geo queries"),
        "{:?}",
        w.status()
    );
    w.postgis = false;
    let w = hook(w, "update-status");
    assert!(
        w.status().message.contains("geo queries need"),
        "{:?}",
        w.status()
    );
}

#[test]
fn a_hook_that_does_not_end_active_leaves_update_status_in_full() {
    let mut w = steady("steady-blocked");
    w.set("log-level", "verbose");
    let w = hook(w, "config-changed");
    w.assert_status(StatusKind::Blocked, "log-level");
    w.tool_calls.borrow_mut().clear();
    let w = hook(w, "update-status");
    w.assert_status(StatusKind::Blocked, "log-level");
    assert!(
        tool_calls(&w).contains(&"config-get"),
        "{:?}",
        tool_calls(&w)
    );
}

#[test]
fn a_restart_asked_or_granted_keeps_update_status_in_full() {
    let mut w = steady("steady-queue");
    let pid = w.peer_id().unwrap();
    // Unit 1 asks: the leader grants it in its peer hook, and keeps the grant moving at
    // every hook after (the lease of a holder that died ends at an update-status).
    w.remote_set(&pid, "parse-server/1", &[("restart-request", "aaaa")]);
    let w = hook(
        w,
        On::relation("parse-peers-relation-changed", &pid).unit("parse-server/1"),
    );
    assert_eq!(w.peer_app()["restart-grant"], "parse-server/1");
    w.tool_calls.borrow_mut().clear();
    let w = hook(w, "update-status");
    assert!(
        tool_calls(&w).contains(&"relation-get"),
        "{:?}",
        tool_calls(&w)
    );
}

#[test]
fn a_hook_killed_anywhere_leaves_no_steady_state() {
    let mut w = steady("steady-killed");
    w.set("log-level", "warn");
    let (w, exit) = run(w, On::hook("config-changed").abort_after("rendered"));
    assert_eq!(exit, Exit::Killed);
    w.tool_calls.borrow_mut().clear();
    // The next update-status reconciles in full and finishes the change.
    let w = hook(w, "update-status");
    assert!(
        tool_calls(&w).contains(&"config-get"),
        "{:?}",
        tool_calls(&w)
    );
    assert_eq!(w.running_options().unwrap()["logLevel"], "warn");
}
