//! A shared Redis (`redis-url`) and LiveQuery (`live-query-classes`): what parse-server is
//! given (LiveQuery's publisher and servers, the cache, every rate limit), a Redis that does
//! not answer (`waiting`) or refuses the URL (`blocked`) while whatever serves keeps
//! serving, the status's word on LiveQuery's reach without Redis, the steady check, and the
//! password in no status, log or hook-tool call.

use crate::harness::{hook, serving, Db, On, World};
use parse_server_charm::juju::StatusKind;
use serde_json::{json, Value};

const PASSWORD: &str = "r3dis-pa55word";
const URL: &str = "redis://:r3dis-pa55word@10.0.0.30:6379";
const CACHE: &str = "/opt/parse-server/charm/redis-cache-adapter.js";
const LIMIT: &str = r#"{"rateLimit": [{"requestPath": "/classes/*path", "requestTimeWindow": 60000, "requestCount": 6}]}"#;

/// Whether the Redis password shows in what the hooks told Juju, logged, or called.
fn leaked(w: &World) -> Option<String> {
    w.statuses
        .iter()
        .map(|s| s.message.clone())
        .chain(w.logs.iter().cloned())
        .chain(w.calls.iter().cloned())
        .find(|line| line.contains(PASSWORD))
}

fn options(w: &World) -> Value {
    w.running_options().expect("a running configuration")
}

/// A unit serving on mongodb with LiveQuery on `Message`, a rate limit, and Redis.
fn with_redis(tag: &str) -> World {
    let mut w = serving(tag);
    w.set("live-query-classes", "Message")
        .set("extra-options", LIMIT)
        .set("redis-url", URL);
    let w = hook(w, "config-changed");
    w.assert_status(StatusKind::Active, "serving on port 1337");
    w
}

#[test]
fn every_instance_shares_live_query_the_cache_and_the_rate_limits() {
    let w = with_redis("redis-shared");
    let o = options(&w);
    assert_eq!(
        o["liveQuery"],
        json!({"classNames": ["Message"], "redisURL": URL})
    );
    assert_eq!(o["startLiveQueryServer"], true);
    assert_eq!(o["liveQueryServerOptions"], json!({"redisURL": URL}));
    assert_eq!(
        o["cacheAdapter"],
        json!({"module": CACHE, "options": {
            "url": URL,
            "releaseDir": "/opt/parse-server/releases/9.10.0",
            "revision": o["cacheAdapter"]["options"]["revision"],
        }})
    );
    assert_eq!(o["rateLimit"][0]["redisUrl"], URL);
    assert_eq!(o["rateLimit"][0]["requestCount"], 6);
    assert_eq!(
        w.probed_redis.borrow().last().map(String::as_str),
        Some(URL)
    );
    assert!(
        !w.status().message.contains("LiveQuery"),
        "{:?}",
        w.status()
    );
    assert_eq!(leaked(&w), None);
    // Nothing changed, nothing restarts.
    let restarts = w.restarts;
    let w = hook(w, "config-changed");
    assert_eq!(w.restarts, restarts);
}

#[test]
fn the_url_from_a_user_secret() {
    let mut w = serving("redis-secret");
    let uri = w.user_secret("cj5k7v678ohs79t2aa40", &[("redis-url", URL)]);
    w.set("redis-url", uri.as_str());
    let w = hook(w, "config-changed");
    w.assert_status(StatusKind::Active, "serving");
    assert_eq!(options(&w)["cacheAdapter"]["options"]["url"], URL);
    assert_eq!(w.config["redis-url"], uri.as_str());
    assert_eq!(leaked(&w), None);
}

#[test]
fn a_redis_that_does_not_answer_waits_and_the_service_keeps_what_it_serves() {
    let mut w = serving("redis-down");
    let before = w.running_config.clone();
    let restarts = w.restarts;
    w.redis = Db::Down;
    w.set("redis-url", URL).set("live-query-classes", "Message");
    let w = hook(w, "config-changed");
    w.assert_status(
        StatusKind::Waiting,
        "redis-url: redis://10.0.0.30:6379 does not answer: connection refused",
    );
    assert_eq!(w.running_config, before);
    assert_eq!(w.restarts, restarts);
    // It answers: the next hook (update-status at the latest) serves with it.
    let mut w = w;
    w.redis = Db::Up;
    let w = hook(w, "update-status");
    w.assert_status(StatusKind::Active, "serving");
    assert_eq!(options(&w)["liveQuery"]["redisURL"], URL);
    assert_eq!(leaked(&w), None);
}

#[test]
fn a_redis_that_refuses_the_password_blocks_naming_the_option() {
    let mut w = serving("redis-wrong-password");
    let before = w.running_config.clone();
    w.redis = Db::WrongPassword;
    w.set("redis-url", URL);
    let w = hook(w, "config-changed");
    w.assert_status(
        StatusKind::Blocked,
        "invalid config: redis-url: redis://10.0.0.30:6379: the server refused the user and password",
    );
    assert_eq!(w.running_config, before);
    assert_eq!(leaked(&w), None);
}

#[test]
fn a_url_that_cannot_work_blocks_without_repeating_it() {
    for (url, why) in [
        ("http://:r3dis-pa55word@h", "must start with redis://"),
        ("redis://:r3dis-pa55word@", "must name a host"),
        (
            "redis://:r3dis-pa55word%@h",
            "has a '%' in its password that starts no escape",
        ),
    ] {
        let mut w = serving("redis-bad-url");
        w.set("redis-url", url);
        let w = hook(w, "config-changed");
        w.assert_status(StatusKind::Blocked, &format!("redis-url: {why}"));
        assert_eq!(leaked(&w), None, "{url}");
        assert!(w.probed_redis.borrow().is_empty());
    }
}

#[test]
fn live_query_options_are_the_charm_s() {
    let mut w = serving("redis-extra-options");
    let before = w.running_config.clone();
    w.set("extra-options", r#"{"liveQuery": {"classNames": ["A"]}}"#);
    let w = hook(w, "config-changed");
    w.assert_status(
        StatusKind::Blocked,
        "extra-options: \"liveQuery\" is refused",
    );
    assert_eq!(w.running_config, before);
    let mut w = w;
    w.set("extra-options", r#"{"rateLimit": {"requestPath": "*", "requestTimeWindow": 1000, "requestCount": 1, "redisUrl": "redis://h"}}"#);
    let w = hook(w, "config-changed");
    w.assert_status(StatusKind::Blocked, "redisUrl comes from redis-url");
}

#[test]
fn without_redis_the_status_says_how_far_live_query_events_reach() {
    // One unit, one worker: every client is the same process's.
    let mut w = serving("redis-none-one");
    w.set("live-query-classes", "Message");
    let w = hook(w, "config-changed");
    w.assert_status(StatusKind::Active, "serving");
    assert!(
        !w.status().message.contains("LiveQuery"),
        "{:?}",
        w.status()
    );
    assert_eq!(options(&w)["liveQuery"], json!({"classNames": ["Message"]}));
    assert!(options(&w).get("cacheAdapter").is_none());

    // One unit, two workers: each process has its own LiveQuery server.
    let mut w = w;
    w.set("workers", 2);
    let w = hook(w, "config-changed");
    w.assert_status(
        StatusKind::Active,
        "; LiveQuery events stay within each worker process: set redis-url",
    );

    // Another unit joins: each unit hears only its own saves.
    let mut w = w;
    w.set("workers", 1);
    let id = w.peer_with(&["parse-server/1"]);
    let w = hook(
        w,
        On::relation("parse-peers-relation-joined", &id).unit("parse-server/1"),
    );
    w.assert_status(
        StatusKind::Active,
        "; LiveQuery events stay within each unit: set redis-url",
    );
    // And a steady update-status says the same.
    let w = hook(w, "update-status");
    w.assert_status(StatusKind::Active, "stay within each unit");

    // With Redis, no caveat.
    let mut w = w;
    w.set("redis-url", URL);
    let w = hook(w, "config-changed");
    w.assert_status(StatusKind::Active, "serving");
    assert!(
        !w.status().message.contains("LiveQuery"),
        "{:?}",
        w.status()
    );
}

#[test]
fn a_steady_update_status_checks_redis_and_says_when_it_stops_answering() {
    let w = with_redis("redis-steady");
    let asked = w.probed_redis.borrow().len();
    let w = hook(w, "update-status");
    w.assert_status(StatusKind::Active, "serving");
    assert_eq!(w.probed_redis.borrow().len(), asked + 1);
    let mut w = w;
    w.redis = Db::Down;
    let restarts = w.restarts;
    let w = hook(w, "update-status");
    w.assert_status(
        StatusKind::Waiting,
        "redis-url: redis://10.0.0.30:6379 does not answer",
    );
    assert_eq!(w.restarts, restarts, "a running service is left alone");
    assert_eq!(leaked(&w), None);
}

const VALKEY_PASSWORD: &str = "v4lkey-client-pa55";

/// A unit serving on mongodb with LiveQuery and a rate limit, related to Charmed Valkey
/// that answered with `extra` besides the client user's secret.
fn with_valkey(tag: &str, extra: &[(&str, &str)]) -> (World, String) {
    let mut w = serving(tag);
    w.set("live-query-classes", "Message")
        .set("extra-options", LIMIT);
    let w = hook(w, "config-changed");
    let mut w = w;
    let secret = w.grant_secret(&[("username", "relation-7"), ("password", VALKEY_PASSWORD)]);
    let mut bag = vec![
        ("database", "*"),
        ("endpoints", "10.0.0.31:6379"),
        ("secret-user", secret.as_str()),
        ("version", "9.0.1"),
    ];
    bag.extend_from_slice(extra);
    let id = w.relate_valkey(&bag);
    let w = hook(
        w,
        On::relation("valkey-relation-changed", &id).unit("valkey/0"),
    );
    (w, id)
}

#[test]
fn charmed_valkey_asks_for_every_key_and_serves_with_its_client_user() {
    let (w, id) = with_valkey("valkey-plain", &[]);
    w.assert_status(StatusKind::Active, "serving");
    let asked = &w.relations[&id].local_app_bag;
    assert_eq!(asked["database"], "*");
    assert!(asked["requested-secrets"].contains("password"));
    let url = format!("redis://relation-7:{VALKEY_PASSWORD}@10.0.0.31:6379");
    let o = options(&w);
    assert_eq!(o["liveQuery"]["redisURL"], url.as_str());
    assert_eq!(o["cacheAdapter"]["options"]["url"], url.as_str());
    assert_eq!(o["rateLimit"][0]["redisUrl"], url.as_str());
    assert!(w
        .logs
        .iter()
        .chain(w.statuses.iter().map(|s| &s.message))
        .all(|l| !l.contains(VALKEY_PASSWORD)));
}

#[test]
fn valkey_s_client_user_may_not_run_scripts_so_rate_limits_stay_per_process() {
    let mut w = serving("valkey-no-scripts");
    w.redis_scripts = false;
    let w = hook(w, "config-changed");
    let (w, _) = {
        let mut w = w;
        w.set("live-query-classes", "Message")
            .set("extra-options", LIMIT);
        let secret = w.grant_secret(&[("username", "relation-7"), ("password", VALKEY_PASSWORD)]);
        let id = w.relate_valkey(&[
            ("endpoints", "10.0.0.31:6379"),
            ("secret-user", secret.as_str()),
        ]);
        let w = hook(
            w,
            On::relation("valkey-relation-changed", &id).unit("valkey/0"),
        );
        (w, id)
    };
    let o = options(&w);
    assert!(o["rateLimit"][0].get("redisUrl").is_none(), "{o}");
    w.assert_status(
        StatusKind::Active,
        "; rate limits count per process: the Redis user may not run scripts",
    );
    assert!(o["cacheAdapter"].is_object());
    assert!(o["liveQuery"]["redisURL"].is_string());
}

#[test]
fn valkey_over_tls_with_its_ca() {
    let ca = "-----BEGIN CERTIFICATE-----\nMIIBdGVzdA==\n-----END CERTIFICATE-----";
    let mut w = serving("valkey-tls");
    let user = w.grant_secret(&[("username", "relation-7"), ("password", VALKEY_PASSWORD)]);
    let tls = w.grant_secret(&[("tls", "True"), ("tls-ca", ca)]);
    w.set("live-query-classes", "Message");
    let id = w.relate_valkey(&[
        ("endpoints", "10.0.0.31:6379"),
        ("secret-user", user.as_str()),
        ("secret-tls", tls.as_str()),
    ]);
    let w = hook(
        w,
        On::relation("valkey-relation-changed", &id).unit("valkey/0"),
    );
    w.assert_status(StatusKind::Active, "serving");
    let o = options(&w);
    assert_eq!(
        o["cacheAdapter"]["options"]["url"],
        format!("rediss://relation-7:{VALKEY_PASSWORD}@10.0.0.31:6379").as_str()
    );
    assert_eq!(
        o["cacheAdapter"]["options"]["socket"]["ca"],
        format!("{ca}\n").as_str()
    );
    assert!(
        w.probed_cas
            .borrow()
            .iter()
            .any(|c| c.as_deref() == Some(format!("{ca}\n").as_str())),
        "the check verifies the server with the provider's CA"
    );
}

#[test]
fn valkey_before_it_answers_and_when_it_refuses() {
    // Joined, nothing written yet: waiting, nothing touched.
    let mut w = serving("valkey-waits");
    let before = w.running_config.clone();
    let id = w.relate_valkey(&[]);
    let w = hook(
        w,
        On::relation("valkey-relation-joined", &id).unit("valkey/0"),
    );
    w.assert_status(StatusKind::Waiting, "waiting for valkey to share");
    assert_eq!(w.running_config, before);
    // The client user refused: the provider's to fix.
    let mut w = w;
    let secret = w.grant_secret(&[("username", "relation-7"), ("password", "stale")]);
    w.remote_app_set(
        &id,
        &[
            ("endpoints", "10.0.0.31:6379"),
            ("secret-user", secret.as_str()),
        ],
    );
    w.redis = Db::WrongPassword;
    let w = hook(
        w,
        On::relation("valkey-relation-changed", &id).unit("valkey/0"),
    );
    w.assert_status(
        StatusKind::Waiting,
        "valkey relation: redis://10.0.0.31:6379: the server refused the user and password",
    );
    assert_eq!(w.running_config, before);
    // And redis-url besides the relation: one Redis only.
    let mut w = w;
    w.redis = Db::Up;
    w.set("redis-url", URL);
    let w = hook(w, "config-changed");
    w.assert_status(
        StatusKind::Blocked,
        "redis-url: and the valkey relation both give a Redis",
    );
    assert_eq!(w.running_config, before);
}
