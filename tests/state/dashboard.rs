//! Parse Dashboard (`dashboard`): its service, files, port and keys when on, all of it gone
//! when off; the users the leader's actions add and remove (a generated password in a
//! secret, only its bcrypt hash in the dashboard's file); a non-leader waiting for the
//! leader's keys and sharing its cookie secret; its own `dashboard-route`; the status's word
//! on `master-key-ips`; and bad input refused with nothing else changed.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;

use crate::harness::{hook, run, serving, Exit, On, World};
use parse_server_charm::juju::StatusKind;
use serde_json::{json, Value};

const CONFIG: &str = "/etc/parse-server/dashboard.json";
const UNIT: &str = "/etc/systemd/system/parse-dashboard.service";
const SERVICE: &str = "parse-dashboard.service";

fn dashboard_config(w: &World) -> Value {
    serde_json::from_str(&w.file(CONFIG).expect("the dashboard's config")).unwrap()
}

/// A leader serving with its peer relation, the dashboard's tree installed, `dashboard` on.
fn with_dashboard(tag: &str) -> World {
    let mut w = serving(tag);
    w.peer_initialised(&[]);
    w.dashboard_installed();
    w.set("dashboard", true);
    let w = hook(w, "config-changed");
    w.assert_status(StatusKind::Active, "dashboard on port 4040");
    w
}

fn action(w: World, name: &str, params: &[(&str, Value)]) -> World {
    let mut w = w;
    w.action_params = params
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect::<BTreeMap<_, _>>();
    w.action_results = None;
    w.action_failed = None;
    hook(w, On::action(name))
}

#[test]
fn on_the_dashboard_serves_with_generated_keys_beside_parse_server() {
    let w = with_dashboard("dash-on");
    assert!(w.timers.contains(SERVICE), "{:?}", w.calls);
    assert!(w.ports.contains("4040/tcp") && w.ports.contains("1337/tcp"));
    let keys = w
        .owned_secret("dashboard")
        .expect("the keys' secret")
        .clone();
    assert_eq!(keys["cookie-session-secret"].len(), 64);
    assert_eq!(keys["read-only-master-key"].len(), 64);
    assert!(w.peer_app().contains_key("dashboard-secret"));
    let c = dashboard_config(&w);
    assert_eq!(c["cookieSessionSecret"], keys["cookie-session-secret"]);
    assert_eq!(c["port"], 4040);
    assert_eq!(c["allowInsecureHTTP"], false);
    let app = &c["dashboard"]["apps"][0];
    assert_eq!(app["appId"], "shop");
    assert_eq!(app["masterKey"], w.master_key());
    assert_eq!(app["readOnlyMasterKey"], keys["read-only-master-key"]);
    assert_eq!(app["serverURL"], "http://10.0.0.10:1337/parse");
    assert_eq!(
        c["sessionStore"]["serverURL"],
        "http://127.0.0.1:1337/parse"
    );
    assert_eq!(c["dashboard"]["users"], json!([]));
    // parse-server knows the read-only key, usable from the loopback only by default.
    let o = w.running_options().unwrap();
    assert_eq!(o["readOnlyMasterKey"], keys["read-only-master-key"]);
    assert_eq!(o["readOnlyMasterKeyIps"], json!(["127.0.0.1", "::1"]));
    // Secrets stay in files only root and the service read; none on the unit's command line.
    let meta = std::fs::metadata(w.root.join(CONFIG.trim_start_matches('/'))).unwrap();
    assert_eq!(meta.mode() & 0o777, 0o640);
    let unit = w.file(UNIT).unwrap();
    for secret in keys.values() {
        assert!(!unit.contains(secret.as_str()));
    }
    // The page calls parse-server with the master key from the browser: the status says
    // that only this unit may use it.
    w.assert_status(StatusKind::Active, "dashboard browsers need master-key-ips");
    // Nothing changed: nothing restarts.
    let calls = w.calls.len();
    let restarts = w.restarts;
    let w = hook(w, "config-changed");
    assert_eq!(w.restarts, restarts);
    assert!(
        !w.calls[calls..].iter().any(|c| c.contains(SERVICE)),
        "{:?}",
        &w.calls[calls..]
    );
    // An admin network in master-key-ips: no hint; the dashboard restarts, parse-server too
    // (its own option changed).
    let mut w = w;
    w.set("master-key-ips", "127.0.0.1,::1,10.1.0.0/16");
    let w = hook(w, "config-changed");
    assert!(
        !w.status().message.contains("master-key-ips"),
        "{:?}",
        w.status()
    );
}

#[test]
fn off_stops_disables_and_removes_everything_of_it() {
    let w = with_dashboard("dash-off");
    let mut w = w;
    w.set("dashboard", false);
    let w = hook(w, "config-changed");
    w.assert_status(StatusKind::Active, "serving on port 1337");
    assert!(!w.status().message.contains("dashboard"));
    assert!(w.calls.contains(&format!("disable --now {SERVICE}")));
    assert!(!w.timers.contains(SERVICE));
    assert!(w.file(CONFIG).is_none() && w.file(UNIT).is_none());
    assert!(!w.root.join("opt/parse-server/parse-dashboard").exists());
    assert!(!w.root.join("opt/parse-server/charm/dashboard.js").exists());
    assert!(!w.ports.contains("4040/tcp"));
    let o = w.running_options().unwrap();
    assert!(o.get("readOnlyMasterKey").is_none());
    // Off again changes nothing.
    let calls = w.calls.len();
    let w = hook(w, "config-changed");
    assert_eq!(w.calls.len(), calls, "{:?}", &w.calls[calls..]);
}

#[test]
fn users_are_the_leader_s_to_add_and_remove() {
    let w = with_dashboard("dash-users");
    let w = action(w, "add-dashboard-user", &[("username", json!("alice"))]);
    assert_eq!(w.action_failed, None);
    let r = w.action_results.clone().unwrap();
    let uri = r["secret-id"].clone();
    assert_eq!(r["reveal"], format!("juju show-secret --reveal {uri}"));
    assert_eq!(r["read-only"], "false");
    let secret = w.secrets[&uri].content.clone();
    let password = secret["password"].clone();
    assert_eq!(password.len(), 32);
    assert!(secret["bcrypt-hash"].starts_with("$2b$10$"));
    let c = dashboard_config(&w);
    assert_eq!(
        c["dashboard"]["users"],
        json!([{"user": "alice", "pass": secret["bcrypt-hash"], "readOnly": false}])
    );
    assert_eq!(c["dashboard"]["useEncryptedPasswords"], true);
    // The password is nowhere but in its secret.
    let everywhere: Vec<&String> = w.logs.iter().chain(&w.calls).chain(r.values()).collect();
    assert!(everywhere.iter().all(|l| !l.contains(password.as_str())));
    assert!(!w.file(CONFIG).unwrap().contains(password.as_str()));
    // The leader's own dashboard took the user at once.
    assert!(w.calls.contains(&format!("restart {SERVICE}")));

    let w = action(
        w,
        "add-dashboard-user",
        &[("username", json!("audit")), ("read-only", json!(true))],
    );
    let c = dashboard_config(&w);
    assert_eq!(c["dashboard"]["users"][1]["user"], "audit");
    assert_eq!(c["dashboard"]["users"][1]["readOnly"], true);

    // Refused, with nothing changed.
    let users = w.peer_app()["dashboard-users"].clone();
    let mut w = w;
    for (params, why) in [
        (vec![("username", json!("alice"))], "exists already"),
        (vec![("username", json!(""))], "username: is required"),
        (vec![("username", json!("a b"))], "letters, digits"),
        (vec![("username", json!("x".repeat(65)))], "at most 64"),
    ] {
        w = action(w, "add-dashboard-user", &params);
        let failed = w.action_failed.clone().unwrap_or_default();
        assert!(failed.contains(why), "{failed:?} lacks {why:?}");
        assert_eq!(w.peer_app()["dashboard-users"], users);
    }
    let w = action(w, "remove-dashboard-user", &[("username", json!("bob"))]);
    assert_eq!(w.action_failed.as_deref(), Some("no dashboard user bob"));

    // Removed: out of the file, its secret gone.
    let w = action(w, "remove-dashboard-user", &[("username", json!("alice"))]);
    assert_eq!(w.action_failed, None);
    assert!(!w.secrets.contains_key(&uri));
    let c = dashboard_config(&w);
    assert_eq!(c["dashboard"]["users"].as_array().unwrap().len(), 1);
    assert_eq!(c["dashboard"]["users"][0]["user"], "audit");

    // Elsewhere than on the leader: refused, naming where to run it.
    let mut w = w;
    w.leader = false;
    let w = action(w, "add-dashboard-user", &[("username", json!("carol"))]);
    assert!(w
        .action_failed
        .clone()
        .unwrap()
        .contains("juju run parse-server/leader add-dashboard-user"));
}

#[test]
fn a_non_leader_waits_for_the_leader_s_keys_and_shares_its_cookie_secret() {
    let mut w = serving("dash-follower");
    w.leader = false;
    w.peer_initialised(&["parse-server/1"]);
    w.dashboard_installed();
    w.set("dashboard", true);
    let w = hook(w, "config-changed");
    w.assert_status(
        StatusKind::Waiting,
        "waiting for the leader to generate the dashboard's keys",
    );
    assert!(w.file(CONFIG).is_none());
    // The leader's secret, shared through the peer relation.
    let mut w = w;
    w.leaders_key("secret:lead1", None);
    w.secrets.get_mut("secret:lead1").unwrap().content = [
        ("cookie-session-secret".to_owned(), "c".repeat(64)),
        ("read-only-master-key".to_owned(), "r".repeat(64)),
    ]
    .into();
    w.leader_set(&[("dashboard-secret", "secret:lead1")]);
    let mut w = hook(w, "leader-settings-changed");
    // parse-server's options gained the read-only key: a restart, in its turn.
    w.assert_status(StatusKind::Waiting, "restart queued");
    let pid = w.peer_id().unwrap();
    w.leader_set(&[("restart-grant", "parse-server/0")]);
    let w = hook(w, On::relation("parse-peers-relation-changed", &pid));
    w.assert_status(StatusKind::Active, "dashboard on port 4040");
    assert_eq!(dashboard_config(&w)["cookieSessionSecret"], "c".repeat(64));
    assert_eq!(
        w.running_options().unwrap()["readOnlyMasterKey"],
        "r".repeat(64)
    );
}

#[test]
fn a_hook_killed_between_the_files_and_the_restart_restarts_at_the_next() {
    let w = with_dashboard("dash-killed");
    let mut w = w;
    w.set("app-name", "Shop Admin");
    let (w, exit) = run(
        w,
        On::hook("config-changed").abort_after("dashboard-rendered"),
    );
    assert_eq!(exit, Exit::Killed);
    assert_eq!(
        dashboard_config(&w)["dashboard"]["apps"][0]["appName"],
        "Shop Admin"
    );
    let restarts = w.count(&format!("restart {SERVICE}"));
    let w = hook(w, "update-status");
    assert_eq!(w.count(&format!("restart {SERVICE}")), restarts + 1);
    let w = hook(w, "update-status");
    assert_eq!(w.count(&format!("restart {SERVICE}")), restarts + 1);
}

#[test]
fn on_before_a_database_waits_for_one_and_starts_nothing() {
    let mut w = World::new("dash-no-db");
    w.dashboard_installed();
    w.set("dashboard", true);
    let (w, exit) = run(w, "config-changed");
    assert_eq!(exit, Exit::Ok);
    w.assert_status(
        StatusKind::Blocked,
        "add a relation to mongodb or postgresql",
    );
    assert!(w.file(CONFIG).is_none() && !w.timers.contains(SERVICE));
    assert!(
        w.owned_secret("dashboard").is_none(),
        "no keys before a database"
    );
}

#[test]
fn a_steady_update_status_checks_that_the_dashboard_runs() {
    let w = with_dashboard("dash-steady");
    let w = hook(w, "update-status");
    w.tool_calls.borrow_mut().clear();
    let w = hook(w, "update-status");
    assert_eq!(
        *w.tool_calls.borrow(),
        ["status-set"],
        "steady: nothing asked"
    );
    w.assert_status(StatusKind::Active, "dashboard on port 4040");
    // The dashboard died between hooks: the next update-status reconciles and starts it.
    let mut w = w;
    w.timers.remove(SERVICE);
    let w = hook(w, "update-status");
    assert!(w.timers.contains(SERVICE), "{:?}", w.calls);
    assert_eq!(w.count(&format!("enable --now {SERVICE}")), 2);
    w.assert_status(StatusKind::Active, "dashboard on port 4040");
}

#[test]
fn its_own_route_on_haproxy() {
    let mut w = with_dashboard("dash-route");
    w.set("dashboard-url", "https://dashboard.example.com");
    let id = w.relate_as("dashboard-route", "haproxy", "haproxy-route");
    w.remote_set(&id, "haproxy/0", &[("ingress-address", "10.0.0.41")]);
    let w = hook(
        w,
        On::relation("dashboard-route-relation-changed", &id).unit("haproxy/0"),
    );
    let app = w.relations[&id].local_app_bag.clone();
    assert_eq!(app["service"], "\"parse-server-dashboard\"");
    assert_eq!(app["ports"], "[4040]");
    assert_eq!(app["hostname"], "\"dashboard.example.com\"");
    assert!(!app.contains_key("allow_http"), "HTTPS only");
    let check: Value = serde_json::from_str(&app["check"]).unwrap();
    assert_eq!(check["path"], "/parse-dashboard-charm/ready");
    assert!(!app.contains_key("paths"));
    assert_eq!(w.relations[&id].local["address"], "\"10.0.0.10\"");
    let c = dashboard_config(&w);
    assert_eq!(c["trustProxy"], json!(["10.0.0.41"]));
    assert_eq!(c["allowInsecureHTTP"], false);
    // Off: this unit leaves the route.
    let mut w = w;
    w.set("dashboard", false);
    let w = hook(w, "config-changed");
    assert_eq!(
        w.relations[&id].local.get("address").map(String::as_str),
        None
    );
}

#[test]
fn bad_input_is_named_and_changes_nothing() {
    let w = with_dashboard("dash-bad");
    let restarts = w.restarts;
    let config = w.file(CONFIG);
    let mut w = w;
    for (option, value, why) in [
        (
            "dashboard-port",
            json!(1337),
            "dashboard-port: 1337 is parse-server's port",
        ),
        (
            "dashboard-port",
            json!(70000),
            "dashboard-port: must be between 1 and 65535",
        ),
        (
            "dashboard-url",
            json!("https://d.example.com/admin"),
            "dashboard-url: must have no path",
        ),
        (
            "dashboard-url",
            json!("https://10.0.0.5"),
            "dashboard-url: must name the host by a DNS name",
        ),
        (
            "read-only-master-key-ips",
            json!("10.0.0.0/33"),
            "read-only-master-key-ips",
        ),
    ] {
        w.set(option, value.clone());
        let (w2, exit) = run(w, "config-changed");
        assert_eq!(exit, Exit::Ok);
        w2.assert_status(StatusKind::Blocked, why);
        assert_eq!(w2.restarts, restarts, "{option}");
        assert_eq!(w2.file(CONFIG), config, "{option}");
        w = w2;
        w.unset(option);
    }
    // A port another process holds.
    w.held_ports.insert(4041);
    w.set("dashboard-port", 4041);
    let (w, exit) = run(w, "config-changed");
    assert_eq!(exit, Exit::Ok);
    w.assert_status(
        StatusKind::Blocked,
        "dashboard-port: 4041 is in use by another process",
    );
    assert_eq!(w.file(CONFIG), config);
    assert!(w.timers.contains(SERVICE), "the dashboard keeps serving");
}
