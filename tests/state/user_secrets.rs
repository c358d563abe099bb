//! `master-key` and `database-uri` given as Juju user secrets (`juju add-secret`,
//! `juju grant-secret`, the option set to the `secret:` URI): served, followed to a new
//! revision through the rolling restart, and, when the application may no longer read one,
//! `blocked` naming the option while the last good configuration keeps serving.

use crate::harness::{hook, On, World, UNIT};
use parse_server_charm::juju::StatusKind;

const KEY: &str = "k3y-from-a-user-secret-0123456789";
const KEY2: &str = "second-k3y-from-a-user-secret-xyz";
const DB: &str = "mongodb://parse:pw-in-secret@10.0.0.20:27017/parse";

/// A unit serving with both values from user secrets.
fn from_secrets(tag: &str) -> (World, String, String) {
    let mut w = World::new(tag);
    w.set("app-id", "shop");
    let key = w.user_secret("cj5k7v678ohs79t2aa30", &[("master-key", KEY)]);
    // A secret with one key of another name: that key is the value.
    let db = w.user_secret("cj5k7v678ohs79t2aa31", &[("uri", DB)]);
    w.set("master-key", key.as_str());
    w.set("database-uri", db.as_str());
    let w = hook(w, "config-changed");
    w.assert_status(StatusKind::Active, "serving on port 1337");
    (w, key, db)
}

/// Whether any secret value shows in what the hook told Juju or logged.
fn leaked(w: &World, values: &[&str]) -> Option<String> {
    let said: Vec<String> = w
        .statuses
        .iter()
        .map(|s| s.message.clone())
        .chain(w.logs.iter().cloned())
        .chain(w.calls.iter().cloned())
        .collect();
    said.into_iter()
        .find(|line| values.iter().any(|v| line.contains(v)))
}

#[test]
fn values_from_user_secrets_serve_and_only_the_uris_are_in_the_config() {
    let (w, key, db) = from_secrets("user-secrets-serve");
    let options = w.running_options().unwrap();
    assert_eq!(options["masterKey"], KEY);
    assert_eq!(options["databaseURI"], DB);
    assert_eq!(w.probed_uris.borrow().last().map(String::as_str), Some(DB));
    assert_eq!(w.config["master-key"], key.as_str());
    assert_eq!(w.config["database-uri"], db.as_str());
    assert_eq!(leaked(&w, &[KEY, "pw-in-secret"]), None);
}

#[test]
fn plain_values_keep_working_beside_a_secret() {
    let mut w = World::new("user-secrets-mixed");
    w.set("app-id", "shop");
    let key = w.user_secret("cj5k7v678ohs79t2aa30", &[("master-key", KEY)]);
    w.set("master-key", key.as_str());
    w.set("database-uri", DB);
    let w = hook(w, "config-changed");
    w.assert_status(StatusKind::Active, "serving");
    assert_eq!(w.running_options().unwrap()["databaseURI"], DB);
    assert_eq!(w.running_options().unwrap()["masterKey"], KEY);
}

#[test]
fn a_new_revision_is_served_after_secret_changed_and_nothing_restarts_twice() {
    let (mut w, key, _) = from_secrets("user-secrets-rotate");
    assert_eq!(w.restarts, 1);
    w.update_user_secret(&key, &[("master-key", KEY2)]);
    let w = hook(w, On::secret("secret-changed", &key));
    w.assert_status(StatusKind::Active, "serving");
    assert_eq!(w.running_options().unwrap()["masterKey"], KEY2);
    assert_eq!(w.restarts, 2);
    let w = hook(w, "update-status");
    let w = hook(w, "config-changed");
    assert_eq!(w.restarts, 2, "the same revision never restarts again");
    assert_eq!(leaked(&w, &[KEY, KEY2]), None);
}

#[test]
fn a_new_revision_waits_for_this_units_turn_like_any_change() {
    let mut w = World::new("user-secrets-turn");
    let pid = w.peer_with(&["parse-server/1", "parse-server/2"]);
    w.set("app-id", "shop");
    let key = w.user_secret("cj5k7v678ohs79t2aa30", &[("master-key", KEY)]);
    w.set("master-key", key.as_str());
    w.relate_mongodb();
    let mut w = hook(w, "config-changed");
    w.assert_status(StatusKind::Active, "serving");
    // Another unit holds the turn: the new key is not served here yet.
    w.leader = false;
    w.leader_set(&[("restart-grant", "parse-server/1")]);
    w.update_user_secret(&key, &[("master-key", KEY2)]);
    let mut w = hook(w, On::secret("secret-changed", &key));
    w.assert_status(StatusKind::Waiting, "restart queued");
    assert_eq!(w.running_options().unwrap()["masterKey"], KEY);
    // Its turn comes: it serves the new revision.
    w.leader_set(&[("restart-grant", UNIT)]);
    let w = hook(w, On::relation("parse-peers-relation-changed", &pid));
    w.assert_status(StatusKind::Active, "serving");
    assert_eq!(w.running_options().unwrap()["masterKey"], KEY2);
}

#[test]
fn a_revoked_secret_is_blocked_naming_the_option_and_the_service_keeps_serving() {
    let (mut w, key, db) = from_secrets("user-secrets-revoked");
    let before = w.running_options();
    let restarts = w.restarts;
    // `juju revoke-secret` fires no hook: the next update-status finds it.
    w.unreadable_secrets.insert(db.clone());
    let w = hook(w, "update-status");
    w.assert_status(
        StatusKind::Blocked,
        "database-uri: parse-server may not read",
    );
    w.assert_status(
        StatusKind::Blocked,
        &format!("juju grant-secret {db} parse-server"),
    );
    assert_eq!(w.running_options(), before);
    assert_eq!(w.restarts, restarts);
    assert!(w.active, "still serving");
    // Granted again: served as before, nothing restarted.
    let mut w = w;
    w.unreadable_secrets.remove(&db);
    let w = hook(w, "update-status");
    w.assert_status(StatusKind::Active, "serving");
    assert_eq!(w.restarts, restarts);
    // Removed (`juju remove-secret`): said so.
    let mut w = w;
    w.secrets.remove(&key);
    let w = hook(w, "config-changed");
    w.assert_status(StatusKind::Blocked, "master-key: secret");
    w.assert_status(StatusKind::Blocked, "does not exist");
    assert_eq!(w.running_options(), before);
    assert_eq!(leaked(&w, &[KEY, "pw-in-secret"]), None);
}

#[test]
fn a_secret_whose_value_is_invalid_or_ambiguous_is_blocked_without_echoing_it() {
    let mut w = World::new("user-secrets-invalid");
    w.set("app-id", "shop");
    w.relate_mongodb();
    let short = w.user_secret("cj5k7v678ohs79t2aa30", &[("master-key", "shortk")]);
    w.set("master-key", short.as_str());
    let w = hook(w, "config-changed");
    w.assert_status(StatusKind::Blocked, "master-key: must be at least 8");
    w.assert_status(StatusKind::Blocked, &format!("(the value in {short})"));
    assert_eq!(leaked(&w, &["shortk"]), None);

    let mut w = w;
    let two = w.user_secret(
        "cj5k7v678ohs79t2aa32",
        &[("a-key", "v1-secret"), ("b-key", "v2")],
    );
    w.set("master-key", two.as_str());
    let w = hook(w, "config-changed");
    w.assert_status(StatusKind::Blocked, "has no key master-key");
    w.assert_status(StatusKind::Blocked, "a-key, b-key");
    assert_eq!(leaked(&w, &["v1-secret"]), None);

    let mut w = w;
    w.set("master-key", "secret:not a uri");
    let w = hook(w, "config-changed");
    w.assert_status(StatusKind::Blocked, "master-key: starts with secret:");
    assert_eq!(leaked(&w, &["not a uri"]), None);
}

#[test]
fn a_steady_update_status_reads_each_user_secret_and_follows_a_missed_revision() {
    let (mut w, key, _) = from_secrets("user-secrets-steady");
    let w2 = hook(w, "update-status");
    w = w2;
    w.tool_calls.borrow_mut().clear();
    let w = hook(w, "update-status");
    assert_eq!(
        w.tool_calls.borrow().clone(),
        ["secret-get", "secret-get", "status-set"],
        "one read per user secret, then the status"
    );
    let restarts = w.restarts;
    // A revision whose secret-changed this unit never ran: the steady hook sees it.
    let mut w = w;
    w.update_user_secret(&key, &[("master-key", KEY2)]);
    let w = hook(w, "update-status");
    assert_eq!(w.running_options().unwrap()["masterKey"], KEY2);
    assert_eq!(w.restarts, restarts + 1);
}

#[test]
fn get_master_key_names_the_user_secret() {
    let (w, key, _) = from_secrets("user-secrets-action");
    let w = hook(w, On::action("get-master-key"));
    let r = w.action_results.clone().unwrap();
    assert_eq!(r["source"], "user-secret");
    assert_eq!(r["secret-id"], key);
    assert_eq!(r["reveal"], format!("juju show-secret --reveal {key}"));
    assert!(r.values().all(|v| !v.contains(KEY)));
}
