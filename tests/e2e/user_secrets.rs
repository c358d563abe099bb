//! `master-key` and `database-uri` as Juju user secrets on three booted units behind
//! haproxy, on a PostgreSQL that requires the password: served from the secrets, a new
//! revision of the key rolled out one unit at a time under a request loop (0 failed),
//! revoked (`blocked` naming the option, still serving the last good values), and never in
//! `juju config`, a command line, the journal or the unit's logs.

use std::time::Duration;

use crate::model::{secret_leaks, Haproxy, LoadRun, Model, Postgres, APP};
use crate::scale_out::{assert_one_at_a_time, now_unix, restarts_since, wait_serving};
use jujusim::kit::{random_alnum, record_figure};

const APP_ID: &str = "shop";

/// Whether `key` is the master key each unit serves with: a master-key-only request from the
/// unit itself (master-key-ips is the unit by default).
fn key_works(model: &Model, key: &str) -> Vec<(String, u16)> {
    model
        .units
        .iter()
        .map(|(name, unit)| {
            let (code, _) = unit.http(
                "GET",
                "http://127.0.0.1:1337/parse/schemas",
                &[
                    ("X-Parse-Application-Id", APP_ID),
                    ("X-Parse-Master-Key", key),
                ],
                None,
            );
            (name.clone(), code)
        })
        .collect()
}

#[test]
fn master_key_and_database_uri_from_user_secrets_rotated_and_revoked() {
    let mut model = Model::new("usersecrets");
    let pg = Postgres::start(&mut model, 5432);
    for _ in 0..3 {
        model.add_unit();
    }
    // The operator's own database user, and both values as user secrets granted to the app.
    let password = random_alnum(20);
    pg.create_relation_user("parse_op", &password, "parse");
    let uri = format!("postgresql://parse_op:{password}@10.77.0.1:5432/parse");
    let key1 = random_alnum(32);
    let key2 = random_alnum(32);
    let db_secret = model.add_secret("parse-db", &[("database-uri", uri.as_str())]);
    let key_secret = model.add_secret("parse-key", &[("value", key1.as_str())]);
    model.grant_secret("parse-db", APP, true);
    model.grant_secret(&key_secret, APP, true);
    model.config(&[
        &format!("app-id={APP_ID}"),
        "workers=1",
        &format!("database-uri={db_secret}"),
        &format!("master-key={key_secret}"),
    ]);
    model.settle();
    model.assert_all("active", "serving on port 1337 at /parse, 1 worker");
    assert!(
        key_works(&model, &key1).iter().all(|(_, c)| *c == 200),
        "the key from the secret serves: {:?}",
        key_works(&model, &key1)
    );

    // A class to read (clients may not create classes: the master key does, from a unit).
    let (code, _) = model.units[0].1.http(
        "POST",
        "http://127.0.0.1:1337/parse/classes/Item",
        &[
            ("X-Parse-Application-Id", APP_ID),
            ("X-Parse-Master-Key", key1.as_str()),
            ("Content-Type", "application/json"),
        ],
        Some(r#"{"n":1}"#),
    );
    assert_eq!(code, 201, "an object saved with the key from the secret");

    // Behind haproxy, with a request loop through it.
    let lb = model.relate("haproxy-route", "haproxy");
    model.remote_set(&lb, "haproxy/0", &[], Some("10.77.0.1"));
    model.settle();
    let mut haproxy = Haproxy::new(&model, 8080);
    let cfg = haproxy.render_route(&model.app_bag(&lb), &model.route_addresses(&lb));
    haproxy.apply(&mut model, &cfg);
    model.remote_app_set(&lb, &[("endpoints", "[\"http://10.77.0.1:8080/\"]")]);
    model.settle();
    let through = haproxy.url("/parse/classes/Item?limit=1");
    wait_serving(&model, &haproxy.url("/parse/health"));

    // juju update-secret parse-key value=<key2>: every unit follows, one at a time.
    let since = now_unix();
    let run = LoadRun::start(&model, &through, APP_ID, 60, 16);
    std::thread::sleep(Duration::from_secs(3));
    model.update_secret("parse-key", &[("value", key2.as_str())]);
    let hooks = model.settle();
    let load = run.finish();
    println!("new revision of the master key's secret: {hooks}");
    assert!(hooks.contains("secret-changed"), "{hooks}");
    let restarts = restarts_since(&model, since);
    assert_one_at_a_time(&restarts, 3);
    record_figure(
        "user-secrets",
        "new master-key revision rolled out to 3 units, failed requests",
        load.failed as f64,
        "requests",
    );
    assert_eq!(
        load.failed, 0,
        "failed requests during the rollout: {load:?}"
    );
    model.assert_all("active", "serving");
    assert!(key_works(&model, &key2).iter().all(|(_, c)| *c == 200));
    assert!(key_works(&model, &key1).iter().all(|(_, c)| *c != 200));

    // juju revoke-secret parse-db parse-server: no hook runs; the next update-status finds
    // it, says which option and what to run, and the service keeps serving.
    model.grant_secret(&db_secret, APP, false);
    for (_, unit) in &model.units {
        unit.hook("update-status", &[]);
    }
    model.assert_all(
        "blocked",
        &format!("database-uri: parse-server may not read {db_secret}: juju grant-secret"),
    );
    wait_serving(&model, &through);
    assert!(key_works(&model, &key2).iter().all(|(_, c)| *c == 200));
    // Granted again: active at the next hook, nothing restarted.
    let since = now_unix();
    model.grant_secret(&db_secret, APP, true);
    for (_, unit) in &model.units {
        unit.hook("update-status", &[]);
    }
    model.assert_all("active", "serving");
    assert_eq!(restarts_since(&model, since), Vec::new());

    let found = secret_leaks(&model, &[&key1, &key2, &password]);
    assert!(found.is_empty(), "a secret value shows in: {found:?}");
    model.teardown();
}
