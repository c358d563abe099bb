//! Today's Juju model: Charmed MongoDB and PostgreSQL relations, the peer relation, rolling
//! restarts and load balancers. Which database wins, who creates what, when a unit may
//! restart, what each unit publishes.

use parse_server_charm::juju::{Event, RelationKind, StatusKind};
use serde_json::{json, Value};

use crate::world::{hook, relation_event, run_with, Exit, World, UNIT};

const CA: &str =
    "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUU2V0\n-----END CERTIFICATE-----\n";

/// A Charmed MongoDB relation whose leader answered with a `secret-user` secret.
fn relate_charmed_mongodb(w: &mut World, password: &str) -> (String, String) {
    let id = w.relate("mongodb-client", "mongodb");
    w.remote_set(&id, "mongodb/0", &[("ingress-address", "10.0.0.20")]);
    let uris = format!("mongodb://relation-4:{password}@10.0.0.20:27017/parse?authSource=admin");
    let secret = w.grant_secret(&[
        ("username", "relation-4"),
        ("password", password),
        ("uris", uris.as_str()),
    ]);
    w.remote_app_set(
        &id,
        &[
            ("database", "parse"),
            ("endpoints", "10.0.0.20"),
            ("secret-user", secret.as_str()),
        ],
    );
    (id, secret)
}

/// A Charmed PostgreSQL relation with plain fields (a provider without secrets).
fn relate_charmed_postgresql(w: &mut World) -> String {
    let id = w.relate("postgresql-client", "postgresql");
    w.remote_set(&id, "postgresql/0", &[("ingress-address", "10.0.0.30")]);
    w.remote_app_set(
        &id,
        &[
            ("database", "parse"),
            ("endpoints", "10.0.0.30:5432"),
            ("username", "relation-5"),
            ("password", "Xy7q2w9e0r1t2y3u"),
            ("version", "16.6"),
        ],
    );
    id
}

#[test]
fn charmed_mongodb_the_leader_asks_every_unit_reads_the_secret() {
    let mut w = World::new("mongodb-client");
    let (id, _) = relate_charmed_mongodb(&mut w, "s3cret");
    let w = hook(w, relation_event("mongodb-client", RelationKind::Changed));
    w.assert_status(StatusKind::Active, "serving");
    let ours = &w.relations[&id].local_app_bag;
    assert_eq!(ours["database"], "parse");
    assert_eq!(
        serde_json::from_str::<Value>(&ours["requested-secrets"]).unwrap(),
        json!(["username", "password", "tls", "tls-ca", "uris"])
    );
    assert_eq!(
        w.options()["databaseURI"],
        "mongodb://relation-4:s3cret@10.0.0.20:27017/parse?authSource=admin"
    );
    // No replica set in this answer: no change streams, only the cache TTL.
    assert_eq!(
        w.options()["databaseOptions"],
        json!({"schemaCacheTtl": 60})
    );
    // The request is written once.
    let writes = w.count(&format!("relation-set --app {id}"));
    let w = hook(w, relation_event("mongodb-client", RelationKind::Changed));
    assert_eq!(w.count(&format!("relation-set --app {id}")), writes);
    assert_eq!(w.restarts, 1, "the same answer restarts nothing");
}

#[test]
fn a_non_leader_never_writes_the_request_but_serves_from_the_answer() {
    let mut w = World::new("mongodb-client-minion");
    w.leader = false;
    w.peer_initialised(&["parse-server/1"]);
    let (id, _) = relate_charmed_mongodb(&mut w, "s3cret");
    w.secrets.insert(
        "secret:leaders".into(),
        crate::world::Secret {
            label: Some("master-key".into()),
            content: [("master-key".to_owned(), "k".repeat(64))].into(),
            owned: true,
        },
    );
    let w = hook(w, relation_event("mongodb-client", RelationKind::Changed));
    w.assert_status(StatusKind::Active, "serving");
    assert!(w.relations[&id].local_app_bag.is_empty());
    assert!(w.options()["databaseURI"]
        .as_str()
        .unwrap()
        .contains("relation-4"));
}

#[test]
fn a_rotated_password_restarts_once_and_the_same_uri_never() {
    let mut w = World::new("rotation");
    let (_, secret) = relate_charmed_mongodb(&mut w, "first");
    let mut w = hook(w, Event::ConfigChanged);
    assert_eq!(w.restarts, 1);
    let content = &mut w.secrets.get_mut(&secret).unwrap().content;
    content.insert("password".into(), "second".into());
    content.insert(
        "uris".into(),
        "mongodb://relation-4:second@10.0.0.20:27017/parse?authSource=admin".into(),
    );
    let w = hook(w, Event::Other("secret-changed".into()));
    w.assert_status(StatusKind::Active, "serving");
    assert_eq!(w.restarts, 2);
    assert!(w.running_options().unwrap()["databaseURI"]
        .as_str()
        .unwrap()
        .contains("second"));
    let w = hook(w, Event::UpdateStatus);
    assert_eq!(w.restarts, 2);
}

#[test]
fn tls_writes_the_ca_and_tells_the_uri() {
    let mut w = World::new("tls");
    let (id, _) = relate_charmed_mongodb(&mut w, "pw");
    let tls = w.grant_secret(&[("tls", "True"), ("tls-ca", CA)]);
    w.remote_app_set(&id, &[("secret-tls", tls.as_str())]);
    let w = hook(w, Event::ConfigChanged);
    w.assert_status(StatusKind::Active, "serving");
    assert!(w.options()["databaseURI"]
        .as_str()
        .unwrap()
        .ends_with("&tls=true&tlsCAFile=/etc/parse-server/database-ca.pem"));
    assert_eq!(
        w.file("/etc/parse-server/database-ca.pem").as_deref(),
        Some(CA)
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(w.root.join("etc/parse-server/database-ca.pem"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o640);
    // A new CA restarts the service (the process reads the file at start).
    let mut w = w;
    let tls_secret = w.relations[&id].remote_app_bag["secret-tls"].clone();
    w.secrets
        .get_mut(&tls_secret)
        .unwrap()
        .content
        .insert("tls-ca".into(), CA.replace("U2V0", "U2V1"));
    let w = hook(w, Event::Other("secret-changed".into()));
    assert_eq!(w.restarts, 2);
}

#[test]
fn bad_provider_data_waits_and_touches_nothing() {
    type BreakIt = Box<dyn Fn(&mut World, &str)>;
    let cases: Vec<(&str, BreakIt, &str)> = vec![
        (
            "empty uris, no credentials",
            Box::new(|w: &mut World, id: &str| {
                w.remote_app_set(
                    id,
                    &[
                        ("secret-user", ""),
                        ("uris", ""),
                        ("endpoints", "10.0.0.20"),
                    ],
                );
            }),
            "waiting for mongodb to share the credentials",
        ),
        (
            "a secret that cannot be read",
            Box::new(|w: &mut World, id: &str| {
                let s = w.relations[id].remote_app_bag["secret-user"].clone();
                w.unreadable_secrets.insert(s);
            }),
            "cannot read its secret",
        ),
        (
            "a secret that is gone",
            Box::new(|w: &mut World, id: &str| {
                w.remote_app_set(id, &[("secret-user", "secret:gone")]);
            }),
            "does not exist",
        ),
        (
            "endpoints without hosts",
            Box::new(|w: &mut World, id: &str| {
                let s = w.relations[id].remote_app_bag["secret-user"].clone();
                w.secrets.get_mut(&s).unwrap().content.remove("uris");
                w.remote_app_set(id, &[("endpoints", ",,")]);
            }),
            "must name a host",
        ),
        (
            "garbage TLS CA",
            Box::new(|w: &mut World, id: &str| {
                w.remote_app_set(
                    id,
                    &[("tls", "True"), ("tls-ca", "<html>not a cert</html>")],
                );
            }),
            "not a PEM certificate",
        ),
        (
            "uris of another database kind",
            Box::new(|w: &mut World, id: &str| {
                let s = w.relations[id].remote_app_bag["secret-user"].clone();
                w.secrets
                    .get_mut(&s)
                    .unwrap()
                    .content
                    .insert("uris".into(), "postgres://x:y@h/db".into());
            }),
            "not a mongodb:// URI",
        ),
    ];
    for (what, break_it, reason) in cases {
        let mut w = World::new("bad-provider");
        let (id, _) = relate_charmed_mongodb(&mut w, "pw");
        let mut w = hook(w, Event::ConfigChanged);
        let running = w.running_options();
        break_it(&mut w, &id);
        let (w, exit) = run_with(
            w,
            relation_event("mongodb-client", RelationKind::Changed),
            Some(id),
            None,
        );
        assert_eq!(exit, Exit::Ok, "{what}");
        w.assert_status(StatusKind::Waiting, reason);
        assert!(w.status().message.len() < 200);
        assert_eq!(
            w.running_options(),
            running,
            "{what}: the service was touched"
        );
        assert_eq!(w.restarts, 1, "{what}");
    }
}

#[test]
fn charmed_postgresql_files_in_the_database_and_the_postgis_hint() {
    let mut w = World::new("postgresql-client");
    w.postgis = false;
    relate_charmed_postgresql(&mut w);
    let w = hook(w, Event::ConfigChanged);
    w.assert_status(StatusKind::Active, "serving on port 1337");
    w.assert_status(
        StatusKind::Active,
        "geo queries need `juju config postgresql plugin-postgis-enable=true`",
    );
    let o = w.options();
    // The credentials reach parse-server's client through its own file (PGUSER/PGPASSWORD),
    // never through options it does not know.
    assert_eq!(o["databaseURI"], "postgresql://10.0.0.30:5432/parse");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(
            &w.file("/etc/parse-server/database-credentials.json")
                .unwrap()
        )
        .unwrap(),
        json!({"user": "relation-5", "password": "Xy7q2w9e0r1t2y3u"})
    );
    assert_eq!(
        o["filesAdapter"]["module"],
        "/opt/parse-server/charm/postgres-files-adapter.js"
    );
    assert_eq!(
        o["filesAdapter"]["options"]["databaseURI"],
        o["databaseURI"]
    );
    assert_eq!(
        o["databaseOptions"],
        json!({
            "schemaCacheTtl": 60,
            "enableSchemaHooks": true,
        })
    );
    assert!(w
        .file("/opt/parse-server/charm/postgres-files-adapter.js")
        .unwrap()
        .contains("class PostgresFilesAdapter"));
    // PostGIS turned on by the operator: the hint goes, nothing restarts.
    let mut w = w;
    w.postgis = true;
    let w = hook(w, Event::UpdateStatus);
    w.assert_status(StatusKind::Active, "parse-server 9.10.0");
    assert!(!w.status().message.contains("geo"));
    assert_eq!(w.restarts, 1);
}

#[test]
fn a_postgresql_of_the_operators_without_postgis_gets_no_juju_advice() {
    let mut w = World::new("postgis-uri");
    w.postgis = false;
    w.set("database-uri", "postgres://parse:pw123456@db.example/parse");
    let w = hook(w, Event::ConfigChanged);
    w.assert_status(
        StatusKind::Active,
        "; geo queries need the postgis extension in the database",
    );
    assert!(!w.status().message.contains("juju config"));
}

#[test]
fn two_database_sources_are_refused_by_name_and_nothing_serving_is_touched() {
    let mut w = World::new("two-sources");
    relate_charmed_postgresql(&mut w);
    let mut w = hook(w, Event::ConfigChanged);
    let running = w.running_options();
    let (id, _) = relate_charmed_mongodb(&mut w, "pw");
    let (mut w, _) = run_with(
        w,
        relation_event("mongodb-client", RelationKind::Joined),
        Some(id),
        None,
    );
    w.assert_status(
        StatusKind::Blocked,
        "two databases: the mongodb-client relation and the postgresql-client relation",
    );
    assert!(w.active);
    assert_eq!(w.running_options(), running);
    assert!(!w.ports.is_empty(), "still serving, port open");
    w.set("database-uri", "mongodb://db.example/parse");
    let w = hook(w, Event::ConfigChanged);
    w.assert_status(
        StatusKind::Blocked,
        "two databases: database-uri and the mongodb-client relation",
    );
    assert_eq!(w.running_options(), running);
}

#[test]
fn the_leader_generates_the_key_once_and_shares_its_id_through_the_peers() {
    let mut w = World::new("peers-key");
    w.peer_with(&["parse-server/1"]);
    w.relate_mongodb();
    let w = hook(w, Event::ConfigChanged);
    w.assert_status(StatusKind::Active, "serving");
    let app = w.peer_app();
    assert_eq!(app["master-key-secret"], "secret:own0");
    assert_eq!(app["initialised"], "true");
    assert_eq!(w.peer_own()["address"], "10.0.0.10");
    assert_eq!(w.count("secret-add master-key"), 1);

    // Another unit (a non-leader) reads the key by the ID, never creates one.
    let key = w.master_key();
    let mut other = World::new("peers-key-minion");
    other.leader = false;
    let pid = other.peer_with(&["parse-server/1"]);
    other.relations.get_mut(&pid).unwrap().local_app_bag = app.clone();
    other.secrets = w.secrets.clone();
    // Only by URI: the owner label is the leader's.
    for s in other.secrets.values_mut() {
        s.label = None;
    }
    other.relate_mongodb();
    let other = hook(other, Event::ConfigChanged);
    // The leader served first (initialised); this unit serves nothing yet, so its first
    // start takes no capacity away: it starts without waiting for the grant.
    other.assert_status(StatusKind::Active, "serving");
    assert_eq!(other.running_options().unwrap()["masterKey"], key.as_str());
    assert_eq!(other.count("secret-add master-key"), 0);
    assert_eq!(other.peer_own().get("restart-request"), None);
}

#[test]
fn a_new_leader_keeps_the_key() {
    let mut w = World::new("leader-change");
    let pid = w.peer_with(&["parse-server/1"]);
    w.relate_mongodb();
    let mut w = hook(w, Event::ConfigChanged);
    let key = w.master_key();
    // Leadership moves away and back (this unit is elected again after a leader removal).
    w.leader = false;
    let mut w = hook(w, Event::LeaderSettingsChanged);
    w.assert_status(StatusKind::Active, "serving");
    w.leader = true;
    w.relations
        .get_mut(&pid)
        .unwrap()
        .units
        .remove("parse-server/1");
    let w = hook(w, Event::LeaderElected);
    w.assert_status(StatusKind::Active, "serving");
    assert_eq!(w.master_key(), key);
    assert_eq!(w.count("secret-add master-key"), 1);
    assert_eq!(w.restarts, 1);
}

#[test]
fn a_non_leader_waits_for_the_leaders_first_start() {
    let mut w = World::new("first-start");
    w.leader = false;
    let pid = w.peer_with(&["parse-server/1"]);
    w.relations
        .get_mut(&pid)
        .unwrap()
        .local_app_bag
        .insert("master-key-secret".into(), "secret:k".into());
    w.secrets.insert(
        "secret:k".into(),
        crate::world::Secret {
            label: None,
            content: [("master-key".to_owned(), "k".repeat(64))].into(),
            owned: true,
        },
    );
    w.relate_mongodb();
    let mut w = hook(w, Event::ConfigChanged);
    w.assert_status(StatusKind::Waiting, "waiting for the leader's first start");
    assert_eq!(w.restarts, 0);
    // The leader served: this unit asks, and is granted.
    let app = &mut w.relations.get_mut(&pid).unwrap().local_app_bag;
    app.insert("initialised".into(), "true".into());
    app.insert("restart-grant".into(), UNIT.into());
    let w = hook(w, Event::Other("parse-peers-relation-changed".into()));
    w.assert_status(StatusKind::Active, "serving");
    assert_eq!(w.restarts, 1);
    assert_eq!(
        w.peer_own().get("restart-request"),
        None,
        "done: the grant can move on"
    );
    assert_eq!(w.peer_own()["serving"].len(), 16);
}

/// A leader serving with two other units that serve too.
fn three_units(tag: &str) -> (World, String) {
    let mut w = World::new(tag);
    let pid = w.peer_with(&["parse-server/1", "parse-server/2"]);
    w.relate_mongodb();
    let w = hook(w, Event::ConfigChanged);
    w.assert_status(StatusKind::Active, "serving");
    (w, pid)
}

#[test]
fn rolling_restarts_one_unit_at_a_time_round_the_units() {
    let (mut w, pid) = three_units("rolling");
    // Units 1 and 2 asked first (their config-changed ran before the leader's).
    for u in ["parse-server/1", "parse-server/2"] {
        w.remote_set(&pid, u, &[("restart-request", "aaaa")]);
    }
    w.set("log-level", "warn");
    let mut w = hook(w, Event::ConfigChanged);
    // The leader asked too and granted the lowest asker, itself: it restarted, then passed
    // the grant to the next unit after it.
    w.assert_status(StatusKind::Active, "serving");
    assert_eq!(w.restarts, 2);
    assert_eq!(w.running_options().unwrap()["logLevel"], "warn");
    assert_eq!(w.peer_app()["restart-grant"], "parse-server/1");
    assert_eq!(w.peer_app()["restart-grant-at"], w.now.to_string());
    // Unit 1 is done: unit 2's turn.
    w.remote_set(&pid, "parse-server/1", &[("restart-request", "")]);
    let mut w = hook(w, Event::Other("parse-peers-relation-changed".into()));
    assert_eq!(w.peer_app()["restart-grant"], "parse-server/2");
    // Unit 2 is done: nobody holds it.
    w.remote_set(&pid, "parse-server/2", &[("restart-request", "")]);
    let w = hook(w, Event::Other("parse-peers-relation-changed".into()));
    assert_eq!(w.peer_app().get("restart-grant"), None);
    assert_eq!(w.restarts, 2, "the leader restarted exactly once");
}

#[test]
fn a_unit_without_the_grant_keeps_serving_the_old_configuration() {
    let (mut w, pid) = three_units("queued");
    let before = w.running_options();
    w.leader = false;
    w.relations
        .get_mut(&pid)
        .unwrap()
        .local_app_bag
        .insert("restart-grant".into(), "parse-server/1".into());
    w.set("log-level", "warn");
    let mut w = hook(w, Event::ConfigChanged);
    w.assert_status(
        StatusKind::Waiting,
        "restart queued: one unit at a time (now: parse-server/1)",
    );
    assert_eq!(w.running_options(), before, "no restart before its turn");
    assert_eq!(
        w.options(),
        before.clone().unwrap(),
        "no file changed either"
    );
    assert_eq!(w.peer_own()["restart-request"].len(), 16);
    // Its turn comes.
    w.relations
        .get_mut(&pid)
        .unwrap()
        .local_app_bag
        .insert("restart-grant".into(), UNIT.into());
    let w = hook(w, Event::Other("parse-peers-relation-changed".into()));
    w.assert_status(StatusKind::Active, "serving");
    assert_eq!(w.running_options().unwrap()["logLevel"], "warn");
    assert_eq!(w.peer_own().get("restart-request"), None);
}

#[test]
fn haproxy_route_app_data_from_the_leader_address_from_every_unit() {
    let (mut w, _) = three_units("haproxy");
    let id = w.relate("haproxy-route", "haproxy");
    w.remote_set(&id, "haproxy/0", &[("ingress-address", "10.0.0.40")]);
    w.remote_app_set(&id, &[("endpoints", "[\"https://parse.example.com/\"]")]);
    let w = hook(w, relation_event("haproxy-route", RelationKind::Changed));
    w.assert_status(StatusKind::Active, "serving");
    let app = &w.relations[&id].local_app_bag;
    assert_eq!(app["service"], "\"parse-server\"");
    assert_eq!(app["ports"], "[1337]");
    assert_eq!(app["paths"], "[\"/parse\"]");
    let check: Value = serde_json::from_str(&app["check"]).unwrap();
    assert_eq!(check["path"], "/parse/health");
    assert_eq!(w.relations[&id].local["address"], "\"10.0.0.10\"");
    let o = w.options();
    assert_eq!(o["publicServerURL"], "https://parse.example.com/parse");
    assert_eq!(o["trustProxy"], json!(["10.0.0.40"]));
    assert_eq!(
        o["masterKeyIps"],
        json!(["127.0.0.1", "::1"]),
        "the key stays on localhost"
    );
    // A non-leader writes only its address.
    let mut w = w;
    w.leader = false;
    w.relations.get_mut(&id).unwrap().local_app_bag.clear();
    w.relations.get_mut(&id).unwrap().local.clear();
    let w = hook(w, relation_event("haproxy-route", RelationKind::Changed));
    assert!(w.relations[&id].local_app_bag.is_empty());
    assert_eq!(w.relations[&id].local["address"], "\"10.0.0.10\"");
}

#[test]
fn the_operators_public_url_wins_and_names_the_haproxy_hostname() {
    let mut w = World::new("public-url");
    w.set("public-server-url", "http://parse.example.com/parse");
    w.relate_mongodb();
    let id = w.relate("haproxy-route", "haproxy");
    w.remote_set(&id, "haproxy/0", &[("ingress-address", "10.0.0.40")]);
    w.remote_app_set(&id, &[("endpoints", "[\"https://other.example.com/\"]")]);
    let w = hook(w, Event::ConfigChanged);
    assert_eq!(
        w.options()["publicServerURL"],
        "http://parse.example.com/parse"
    );
    let app = &w.relations[&id].local_app_bag;
    assert_eq!(app["hostname"], "\"parse.example.com\"");
    assert_eq!(app["allow_http"], "true");
}
