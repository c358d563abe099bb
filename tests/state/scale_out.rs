//! Today's Juju model: Charmed MongoDB and PostgreSQL relations, the peer relation, rolling
//! restarts and load balancers. Which database wins, who creates what, when a unit may
//! restart, what each unit publishes.

use parse_server_charm::juju::StatusKind;
use serde_json::{json, Value};

use crate::harness::{hook, run, Exit, On, World, UNIT};

const CA: &str =
    "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUU2V0\n-----END CERTIFICATE-----\n";

#[test]
fn charmed_mongodb_the_leader_asks_every_unit_reads_the_secret() {
    let mut w = World::new("mongodb-client");
    let (id, _) = w.relate_charmed_mongodb("s3cret");
    let w = hook(w, On::relation("mongodb-client-relation-changed", &id));
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
    let w = hook(w, On::relation("mongodb-client-relation-changed", &id));
    assert_eq!(w.count(&format!("relation-set --app {id}")), writes);
    assert_eq!(w.restarts, 1, "the same answer restarts nothing");
}

#[test]
fn a_non_leader_never_writes_the_request_but_serves_from_the_answer() {
    let mut w = World::new("mongodb-client-minion");
    w.leader = false;
    w.peer_initialised(&["parse-server/1"]);
    let (id, _) = w.relate_charmed_mongodb("s3cret");
    w.leaders_key("secret:leaders", Some("master-key"));
    let w = hook(w, On::relation("mongodb-client-relation-changed", &id));
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
    let (_, secret) = w.relate_charmed_mongodb("first");
    let mut w = hook(w, "config-changed");
    assert_eq!(w.restarts, 1);
    let content = &mut w.secrets.get_mut(&secret).unwrap().content;
    content.insert("password".into(), "second".into());
    content.insert(
        "uris".into(),
        "mongodb://relation-4:second@10.0.0.20:27017/parse?authSource=admin".into(),
    );
    let w = hook(w, On::secret("secret-changed", &secret));
    w.assert_status(StatusKind::Active, "serving");
    assert_eq!(w.restarts, 2);
    assert!(w.running_options().unwrap()["databaseURI"]
        .as_str()
        .unwrap()
        .contains("second"));
    let w = hook(w, "update-status");
    assert_eq!(w.restarts, 2);
}

#[test]
fn tls_writes_the_ca_and_tells_the_uri() {
    let mut w = World::new("tls");
    let (id, _) = w.relate_charmed_mongodb("pw");
    let tls = w.grant_secret(&[("tls", "True"), ("tls-ca", CA)]);
    w.remote_app_set(&id, &[("secret-tls", tls.as_str())]);
    let w = hook(w, "config-changed");
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
    let w = hook(w, On::secret("secret-changed", &tls_secret));
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
        let (id, _) = w.relate_charmed_mongodb("pw");
        let mut w = hook(w, "config-changed");
        let running = w.running_options();
        break_it(&mut w, &id);
        let (w, exit) = run(w, On::relation("mongodb-client-relation-changed", &id));
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
    w.relate_charmed_postgresql();
    let w = hook(w, "config-changed");
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
    let w = hook(w, "update-status");
    w.assert_status(StatusKind::Active, "parse-server 9.10.0");
    assert!(!w.status().message.contains("geo"));
    assert_eq!(w.restarts, 1);
}

#[test]
fn a_postgresql_of_the_operators_without_postgis_gets_no_juju_advice() {
    let mut w = World::new("postgis-uri");
    w.postgis = false;
    w.set("database-uri", "postgres://parse:pw123456@db.example/parse");
    let w = hook(w, "config-changed");
    w.assert_status(
        StatusKind::Active,
        "; geo queries need the postgis extension in the database",
    );
    assert!(!w.status().message.contains("juju config"));
}

#[test]
fn two_database_sources_are_refused_by_name_and_nothing_serving_is_touched() {
    let mut w = World::new("two-sources");
    w.relate_charmed_postgresql();
    let mut w = hook(w, "config-changed");
    let running = w.running_options();
    let (id, _) = w.relate_charmed_mongodb("pw");
    let (mut w, _) = run(
        w,
        On::relation("mongodb-client-relation-joined", &id).unit("mongodb/0"),
    );
    w.assert_status(
        StatusKind::Blocked,
        "two databases: the mongodb-client relation and the postgresql-client relation",
    );
    assert!(w.active);
    assert_eq!(w.running_options(), running);
    assert!(!w.ports.is_empty(), "still serving, port open");
    w.set("database-uri", "mongodb://db.example/parse");
    let w = hook(w, "config-changed");
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
    let w = hook(w, "config-changed");
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
    let other = hook(other, "config-changed");
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
    let mut w = hook(w, "config-changed");
    let key = w.master_key();
    // Leadership moves away and back (this unit is elected again after a leader removal:
    // it sees the old leader depart, then is elected).
    w.leader = false;
    let mut w = hook(w, "leader-settings-changed");
    w.assert_status(StatusKind::Active, "serving");
    w.relations
        .get_mut(&pid)
        .unwrap()
        .units
        .remove("parse-server/1");
    let mut w = hook(
        w,
        On::relation("parse-peers-relation-departed", &pid)
            .unit("parse-server/1")
            .departing("parse-server/1"),
    );
    w.leader = true;
    let w = hook(w, "leader-elected");
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
    w.leader_set(&[("master-key-secret", "secret:k")]);
    w.leaders_key("secret:k", None);
    w.relate_mongodb();
    let mut w = hook(w, "config-changed");
    w.assert_status(StatusKind::Waiting, "waiting for the leader's first start");
    assert_eq!(w.restarts, 0);
    // The leader served: this unit asks, and is granted.
    w.leader_set(&[("initialised", "true"), ("restart-grant", UNIT)]);
    let w = hook(w, On::relation("parse-peers-relation-changed", &pid));
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
    let w = hook(w, "config-changed");
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
    let mut w = hook(w, "config-changed");
    // The leader asked too and granted the lowest asker, itself: it restarted, then passed
    // the grant to the next unit after it.
    w.assert_status(StatusKind::Active, "serving");
    assert_eq!(w.restarts, 2);
    assert_eq!(w.running_options().unwrap()["logLevel"], "warn");
    assert_eq!(w.peer_app()["restart-grant"], "parse-server/1");
    assert_eq!(w.peer_app()["restart-grant-at"], w.now.to_string());
    // Unit 1 is done: unit 2's turn.
    w.remote_set(&pid, "parse-server/1", &[("restart-request", "")]);
    let mut w = hook(
        w,
        On::relation("parse-peers-relation-changed", &pid).unit("parse-server/1"),
    );
    assert_eq!(w.peer_app()["restart-grant"], "parse-server/2");
    // Unit 2 is done: nobody holds it.
    w.remote_set(&pid, "parse-server/2", &[("restart-request", "")]);
    let w = hook(
        w,
        On::relation("parse-peers-relation-changed", &pid).unit("parse-server/2"),
    );
    assert_eq!(w.peer_app().get("restart-grant"), None);
    assert_eq!(w.restarts, 2, "the leader restarted exactly once");
}

#[test]
fn a_unit_without_the_grant_keeps_serving_the_old_configuration() {
    let (mut w, pid) = three_units("queued");
    let before = w.running_options();
    w.leader = false;
    w.leader_set(&[("restart-grant", "parse-server/1")]);
    w.set("log-level", "warn");
    let mut w = hook(w, "config-changed");
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
    w.leader_set(&[("restart-grant", UNIT)]);
    let w = hook(w, On::relation("parse-peers-relation-changed", &pid));
    w.assert_status(StatusKind::Active, "serving");
    assert_eq!(w.running_options().unwrap()["logLevel"], "warn");
    assert_eq!(w.peer_own().get("restart-request"), None);
}

#[test]
fn haproxy_route_app_data_from_the_leader_address_from_every_unit() {
    let (mut w, _) = three_units("haproxy");
    let id = w.relate_haproxy_route();
    w.remote_app_set(&id, &[("endpoints", "[\"https://parse.example.com/\"]")]);
    let w = hook(w, On::relation("haproxy-route-relation-changed", &id));
    w.assert_status(StatusKind::Active, "serving");
    let app = &w.relations[&id].local_app_bag;
    assert_eq!(app["service"], "\"parse-server\"");
    assert_eq!(app["ports"], "[1337]");
    assert_eq!(app["paths"], "[\"/parse\"]");
    let check: Value = serde_json::from_str(&app["check"]).unwrap();
    assert_eq!(check["path"], "/parse-server-charm/ready");
    assert_eq!(w.relations[&id].local["address"], "\"10.0.0.10\"");
    let o = w.options();
    assert_eq!(o["publicServerURL"], "https://parse.example.com/parse");
    assert_eq!(o["trustProxy"], json!(["10.0.0.40"]));
    assert_eq!(
        o["masterKeyIps"],
        json!(["127.0.0.1", "::1"]),
        "the key stays on localhost"
    );
    // A non-leader writes only its address. (Only the unit writes its own bag: the new
    // address it must publish is its machine's, changed.)
    let mut w = w;
    w.leader = false;
    w.relations.get_mut(&id).unwrap().local_app_bag.clear();
    w.ingress_address = Some("10.0.0.12".into());
    let w = hook(w, On::relation("haproxy-route-relation-changed", &id));
    assert!(w.relations[&id].local_app_bag.is_empty());
    assert_eq!(w.relations[&id].local["address"], "\"10.0.0.12\"");
}

#[test]
fn the_operators_public_url_wins_and_names_the_haproxy_hostname() {
    let mut w = World::new("public-url");
    w.set("public-server-url", "http://parse.example.com/parse");
    w.relate_mongodb();
    let id = w.relate_haproxy_route();
    w.remote_app_set(&id, &[("endpoints", "[\"https://other.example.com/\"]")]);
    let w = hook(w, "config-changed");
    assert_eq!(
        w.options()["publicServerURL"],
        "http://parse.example.com/parse"
    );
    let app = &w.relations[&id].local_app_bag;
    assert_eq!(app["hostname"], "\"parse.example.com\"");
    assert_eq!(app["allow_http"], "true");
}

/// A real CA certificate for the TLS scenarios (self-signed test CA; no key kept).
const TEST_CA: &str = "-----BEGIN CERTIFICATE-----\nMIIBoTCCAUegAwIBAgIUH5gpq62wkpOoVvozajlN4078xGkwCgYIKoZIzj0EAwIw\nJTEjMCEGA1UEAwwacGFyc2Utc2VydmVyLWNoYXJtLXRlc3QtY2EwIBcNMjYxMjA1\nMDkxOTIxWhgPMjEyNjExMTEwOTE5MjFaMCUxIzAhBgNVBAMMGnBhcnNlLXNlcnZl\nci1jaGFybS10ZXN0LWNhMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEGoludMsl\n391cEC74knznXFe8/tdEnd32NTzoH3CxE35F7dcmiC88+62il2mihPmAFhMgi8aY\nv92cNQdJpeY98qNTMFEwHQYDVR0OBBYEFJZJwFWIgen3J8LHlX6wQqEYkVXrMB8G\nA1UdIwQYMBaAFJZJwFWIgen3J8LHlX6wQqEYkVXrMA8GA1UdEwEB/wQFMAMBAf8w\nCgYIKoZIzj0EAwIDSAAwRQIhAMqTLEzYN2oGTKam4C93++p+KPFg7pARb3DK/LLd\n9SaKAiBs1k7V8QGojiCBifcDnn5/P9IwTaINxt6m9M4/y53zeA==\n-----END CERTIFICATE-----\n";

#[test]
fn postgresql_over_tls_serves_with_the_options_parse_server_reads() {
    let mut w = World::new("pg-tls");
    let id = w.relate_charmed_postgresql();
    let tls = w.grant_secret(&[("tls", "True"), ("tls-ca", TEST_CA)]);
    w.remote_app_set(&id, &[("secret-tls", tls.as_str())]);
    let w = hook(w, "config-changed");
    w.assert_status(StatusKind::Active, "serving");
    // The check connects as parse-server will: TLS verified with the provider's CA, given
    // in memory (the database was checked before any file was written).
    assert_eq!(
        w.probed_cas.borrow().last().unwrap().as_deref(),
        Some(TEST_CA)
    );
    let uri = w.probed_uris.borrow().last().cloned().unwrap();
    assert_eq!(
        uri,
        "postgresql://relation-5:Xy7q2w9e0r1t2y3u@10.0.0.30:5432/parse"
    );
    // parse-server's client gets TLS in its own `ssl` options, with the address its
    // certificate must name (libpq's sslmode in the URI would have been ignored: clear text).
    let o = w.options();
    assert_eq!(o["databaseURI"], "postgresql://10.0.0.30:5432/parse");
    let ssl = json!({"ca": TEST_CA, "host": "10.0.0.30"});
    assert_eq!(o["databaseOptions"]["ssl"], ssl);
    assert_eq!(o["filesAdapter"]["options"]["ssl"], ssl);
    assert_eq!(
        w.file("/etc/parse-server/database-ca.pem").as_deref(),
        Some(TEST_CA)
    );
}

#[test]
fn mongodb_over_tls_is_checked_with_the_ca_in_memory_and_follows_a_rotation() {
    let mut w = World::new("mongo-tls");
    let (id, _) = w.relate_charmed_mongodb("pw");
    let tls = w.grant_secret(&[("tls", "True"), ("tls-ca", TEST_CA)]);
    w.remote_app_set(&id, &[("secret-tls", tls.as_str())]);
    let w = hook(w, "config-changed");
    w.assert_status(StatusKind::Active, "serving");
    assert_eq!(w.probed_cas.borrow()[0].as_deref(), Some(TEST_CA));
    assert_eq!(w.restarts, 1);
    // The provider rotates its CA: the check uses the new one (not the file on disk, which
    // still holds the old one), then one restart onto it.
    let rotated = TEST_CA.replace("MIIBoTCC", "MIIBoTCD");
    let mut w = w;
    w.secrets
        .get_mut(&tls)
        .unwrap()
        .content
        .insert("tls-ca".into(), rotated.clone());
    let w = hook(w, On::secret("secret-changed", &tls));
    w.assert_status(StatusKind::Active, "serving");
    assert_eq!(
        w.probed_cas.borrow().last().unwrap().as_deref(),
        Some(rotated.as_str())
    );
    assert_eq!(w.file("/etc/parse-server/database-ca.pem"), Some(rotated));
    assert_eq!(w.restarts, 2);
}

#[test]
fn a_providers_database_field_never_names_another_database() {
    for db in [
        "local",
        "admin",
        "parse?authSource=admin&tlsAllowInvalidCertificates=true&appName=",
    ] {
        let mut w = World::new("provider-db");
        w.relate_charmed_mongodb_plain(&[
            ("database", db),
            ("endpoints", "10.0.0.20"),
            ("username", "relation-4"),
            ("password", "pw123456"),
        ]);
        let w = hook(w, "config-changed");
        w.assert_status(StatusKind::Waiting, "mongodb-client relation: database");
        assert_eq!(w.restarts, 0, "{db}");
        assert!(w.probed_uris.borrow().is_empty(), "{db}: never used");
    }
}

#[test]
fn a_database_name_changed_on_a_live_relation_is_blocked_naming_both() {
    let mut w = World::new("db-name-change");
    let id = w.relate_charmed_postgresql();
    let mut w = hook(w, "config-changed");
    w.assert_status(StatusKind::Active, "serving");
    let before = w.running_options();
    w.set("database-name", "shop");
    let w = hook(w, "config-changed");
    w.assert_status(
        StatusKind::Blocked,
        "database-name: the postgresql-client relation serves database parse, not shop",
    );
    // Asked for (a provider that answers changes may still do so), nothing served touched.
    assert_eq!(w.relations[&id].local_app_bag["database"], "shop");
    assert_eq!(w.running_options(), before);
    assert_eq!(w.restarts, 1);
}

#[test]
fn a_non_leader_alone_in_the_peer_relation_waits_for_the_leaders_first_start() {
    // Early in a deployment (bundle, or deploy -n 3 with a key and a URI), a non-leader may
    // see no other unit yet: it still never races the leader's table creation.
    let mut w = World::new("alone");
    w.leader = false;
    w.peer_with(&[]);
    w.set("master-key", "k".repeat(40));
    w.set("database-uri", "mongodb://10.0.0.20:27017/parse");
    let w = hook(w, "config-changed");
    w.assert_status(StatusKind::Waiting, "waiting for the leader's first start");
    assert_eq!(w.restarts, 0);
}

#[test]
fn a_grant_holder_whose_machine_died_is_passed_over_after_its_lease() {
    let (mut w, pid) = three_units("dead-holder");
    // Unit 2 asks and this leader grants it; then its machine dies (its bag keeps asking).
    let t = w.now;
    w.remote_set(&pid, "parse-server/2", &[("restart-request", "d2")]);
    let mut w = hook(
        w,
        On::relation("parse-peers-relation-changed", &pid).unit("parse-server/2"),
    );
    assert_eq!(w.peer_app()["restart-grant"], "parse-server/2");
    assert_eq!(w.peer_app()["restart-grant-at"], t.to_string());
    w.set("log-level", "warn");
    let mut w = hook(w, "config-changed");
    w.assert_status(
        StatusKind::Waiting,
        "restart queued: one unit at a time (now: parse-server/2)",
    );
    w.now = t + crate::harness::GRANT_LEASE.as_secs() - 1;
    let mut w = hook(w, "update-status");
    w.assert_status(StatusKind::Waiting, "(now: parse-server/2)");
    assert_eq!(w.restarts, 1, "nothing moves within the lease");
    // The lease ends: the leader's next hook passes the dead holder over.
    w.now = t + crate::harness::GRANT_LEASE.as_secs();
    let w = hook(w, "update-status");
    w.assert_status(StatusKind::Active, "serving");
    assert_eq!(w.running_options().unwrap()["logLevel"], "warn");
    assert_eq!(w.restarts, 2);
    // Done, it hands the grant round again: the dead unit, the only one still asking,
    // gets a fresh lease that keeps nobody waiting.
    assert_eq!(w.peer_app()["restart-grant"], "parse-server/2");
    assert_eq!(w.peer_app()["restart-grant-at"], w.now.to_string());
}

#[test]
fn a_unit_that_serves_nothing_starts_without_waiting_for_the_grant() {
    let (mut w, _) = three_units("stopped-starts");
    w.leader = false;
    w.leader_set(&[("restart-grant", "parse-server/2")]);
    // `systemctl stop parse-server` (or a crash systemd gave up on): nothing serves here.
    w.active = false;
    w.running_config = None;
    let w = hook(w, "update-status");
    w.assert_status(StatusKind::Active, "serving");
    assert!(w.active);
    assert_eq!(w.peer_own().get("restart-request"), None);
}

#[test]
fn a_leader_blocked_on_its_own_machine_still_passes_the_grant() {
    let (mut w, pid) = three_units("blocked-leader");
    for u in ["parse-server/1", "parse-server/2"] {
        w.remote_set(&pid, u, &[("restart-request", "d")]);
    }
    // More workers than this leader's machine holds (the others' are bigger).
    w.set("workers", 16);
    let w = hook(w, "config-changed");
    w.assert_status(StatusKind::Blocked, "invalid config: workers");
    assert_eq!(w.peer_app()["restart-grant"], "parse-server/1");
    assert_eq!(w.restarts, 1, "the leader's own service is left alone");
}

#[test]
fn a_holder_that_stops_before_its_restart_gives_the_grant_back() {
    let (mut w, pid) = three_units("blocked-holder");
    w.leader = false;
    w.set("log-level", "warn");
    w.leader_set(&[("restart-grant", "parse-server/1")]);
    let mut w = hook(w, "config-changed");
    w.assert_status(StatusKind::Waiting, "restart queued");
    assert!(w.peer_own().contains_key("restart-request"));
    // Granted, but before its hook runs the operator sets a limit this machine cannot take.
    w.leader_set(&[("restart-grant", UNIT)]);
    w.set("memory-limit", 8192);
    let w = hook(w, On::relation("parse-peers-relation-changed", &pid));
    w.assert_status(StatusKind::Blocked, "memory-limit");
    assert_eq!(
        w.peer_own().get("restart-request"),
        None,
        "no longer asking: the leader passes the grant on"
    );
}

#[test]
fn a_port_change_keeps_the_old_port_in_the_route_until_every_unit_moved() {
    let (mut w, pid) = three_units("port-change");
    let lb = w.relate_haproxy_route();
    for u in ["parse-server/1", "parse-server/2"] {
        w.remote_set(&pid, u, &[("serving-port", "1337")]);
    }
    let mut w = hook(
        w,
        On::relation("haproxy-route-relation-joined", &lb).unit("haproxy/0"),
    );
    assert_eq!(w.relations[&lb].local_app_bag["ports"], "[1337]");
    // Unit 1 asks and this leader grants it.
    w.remote_set(&pid, "parse-server/1", &[("restart-request", "d")]);
    let mut w = hook(
        w,
        On::relation("parse-peers-relation-changed", &pid).unit("parse-server/1"),
    );
    assert_eq!(w.peer_app()["restart-grant"], "parse-server/1");
    // Unit 1 holds the grant: the leader queues, and publishes the new port beside the old
    // one before any unit moves, so haproxy reaches each unit on whichever it serves.
    w.set("port", 1338);
    let mut w = hook(w, "config-changed");
    w.assert_status(StatusKind::Waiting, "restart queued");
    assert_eq!(w.relations[&lb].local_app_bag["ports"], "[1337,1338]");
    // The others moved; the leader's turn: once it serves on 1338 too, the old port goes.
    for u in ["parse-server/1", "parse-server/2"] {
        w.remote_set(
            &pid,
            u,
            &[("serving-port", "1338"), ("restart-request", "")],
        );
    }
    let w = hook(
        w,
        On::relation("parse-peers-relation-changed", &pid).unit("parse-server/2"),
    );
    w.assert_status(StatusKind::Active, "serving on port 1338");
    assert_eq!(w.relations[&lb].local_app_bag["ports"], "[1338]");
    assert_eq!(w.peer_own()["serving-port"], "1338");
}

#[test]
fn only_haproxy_route_balancers_are_trusted_and_asked_to_set_x_forwarded_for() {
    let mut w = crate::harness::serving("trust");
    // Any application related on `website` (interface http) passes a client's own header
    // through: never a trusted proxy.
    let web = w.relate_website("some-http-consumer");
    let mut w = hook(
        w,
        On::relation("website-relation-joined", &web).unit("some-http-consumer/0"),
    );
    assert!(w.options().get("trustProxy").is_none(), "{}", w.options());
    // haproxy-route: trusted, and asked to set the header to the address it saw.
    let lb = w.relate_haproxy_route();
    let w = hook(
        w,
        On::relation("haproxy-route-relation-joined", &lb).unit("haproxy/0"),
    );
    assert_eq!(w.options()["trustProxy"], json!(["10.0.0.40"]));
    let rewrites: Value =
        serde_json::from_str(&w.relations[&lb].local_app_bag["rewrites"]).unwrap();
    assert_eq!(
        rewrites,
        json!([{"method": "set-header", "header": "X-Forwarded-For", "expression": "%[src]"}])
    );
}
