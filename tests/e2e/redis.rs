//! Redis end to end: three units on PostgreSQL behind haproxy and a real `redis-server` (the
//! host's Debian package, started by the test on the model network with its own config file,
//! port, directory and a random `requirepass`, no persistence) named by the charm's
//! `redis-url` option.
//!
//! First what the units do without it (the controls that show each later check can fail):
//! with `live-query-classes` set, the status warns that LiveQuery events stay on one unit and a
//! subscriber indeed sees the save of one unit only; a session logged out on one unit is still
//! accepted by another that cached it. Then bad URLs (a wrong password: `blocked`; nothing
//! listening: `waiting`; both leave the service serving as it was). Then the URL as a Juju user
//! secret: the rendered option file, the password nowhere on the units; LiveQuery events from
//! every unit reach a subscriber through haproxy (latency measured), survive 70 s idle and a
//! rolling restart; a logout on one unit is seen at once by the others; a rate limit counts the
//! requests of all units per client address. Last, Redis goes away under the serving units.

use std::collections::HashMap;
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::model::{http_from_net, secret_leaks, Model, Postgres, RemoteClient, APP};
use crate::scale_out::{
    assert_one_at_a_time, behind_haproxy, now_unix, relate_postgresql, restarts_since, three_units,
    wait_serving,
};
use jujusim::kit::{kill_group, private_file, random_alnum, record_figure, require, Network};

const APP_ID: &str = "shop";
/// The test's Redis server, on the model network's gateway address.
const REDIS_PORT: u16 = 6390;
/// A port on the same address where nothing listens.
const CLOSED_PORT: u16 = 6399;
/// Clients on the model network that are neither a unit nor the balancer (`RemoteClient`).
const REMOTE: &str = "10.77.0.200";
const PROBE: &str = "10.77.0.201";
/// The installed release (parse-server and the Parse JS SDK it ships).
const RELEASE: &str = "/opt/parse-server/releases/9.10.0";
/// parse-server's REST API and its LiveQuery WebSocket (same port) through haproxy.
const THROUGH_HAPROXY: &str = "http://10.77.0.1:8080/parse";
const LIVE_QUERY_URL: &str = "ws://10.77.0.1:8080/parse";

/// `redis-server` in the model network's namespace at 10.77.0.1, its password only in a 0600
/// config file (never on a command line), `save ""` (nothing written), its own directory.
/// Killed by `stop`, or on drop after a failed test.
struct RedisServer {
    dir: PathBuf,
    port: u16,
    password: String,
    child: Option<Child>,
}

impl RedisServer {
    fn start(model: &Model, port: u16) -> RedisServer {
        require("redis-server");
        require("redis-cli");
        let dir = model.dir.join("redis");
        std::fs::create_dir_all(&dir).unwrap();
        let password = random_alnum(24);
        write!(
            private_file(&dir.join("redis.conf")),
            "bind {gw}\nport {port}\nrequirepass {password}\nsave \"\"\nappendonly no\n\
             dir {dir}\ndaemonize no\nlogfile \"\"\n",
            gw = Network::GATEWAY,
            dir = dir.display(),
        )
        .unwrap();
        let mut redis = RedisServer {
            dir,
            port,
            password,
            child: None,
        };
        redis.run(model);
        redis
    }

    /// Starts the server (again: it comes back empty) and waits until it answers PING.
    fn run(&mut self, model: &Model) {
        assert!(self.child.is_none(), "redis-server is already running");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("redis.log"))
            .unwrap();
        let conf = self.dir.join("redis.conf");
        let child = model
            .net
            .command(&["/usr/bin/redis-server", conf.to_str().unwrap()])
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .process_group(0)
            .spawn()
            .expect("starting redis-server");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.cli(model, &["PING"]).trim() != "PONG" {
            assert!(
                Instant::now() < deadline,
                "redis-server does not answer: see {}",
                self.dir.join("redis.log").display()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// redis-cli from the model network, the password in its environment (`REDISCLI_AUTH`).
    fn cli(&self, model: &Model, args: &[&str]) -> String {
        let port = self.port.to_string();
        let mut argv = vec!["redis-cli", "-h", Network::GATEWAY, "-p", &port];
        argv.extend_from_slice(args);
        let out = model
            .net
            .command(&argv)
            .env("REDISCLI_AUTH", &self.password)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The URL with the user and password (database 0, the default, left out: the charm
    /// renders the URL without it).
    fn url(&self) -> String {
        format!(
            "redis://default:{}@{}:{}",
            self.password,
            Network::GATEWAY,
            self.port
        )
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            kill_group(&mut child);
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A unit's address (`juju add-unit` order: 10.77.0.11, .12, ...).
fn unit_ip(unit: &str) -> String {
    let n: usize = unit.rsplit('/').next().unwrap().parse().unwrap();
    format!("10.77.0.{}", 11 + n)
}

/// A unit's own API, not through haproxy.
fn unit_api(unit: &str) -> String {
    format!("http://{}:1337/parse", unit_ip(unit))
}

/// One REST request from the model network: `(HTTP status, JSON body)` (the body as a string
/// when it is not JSON).
fn rest(
    model: &Model,
    method: &str,
    url: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> (u16, Value) {
    let mut headers = vec![
        ("X-Parse-Application-Id", APP_ID),
        ("Content-Type", "application/json"),
    ];
    if let Some(t) = token {
        headers.push(("X-Parse-Session-Token", t));
    }
    let body = body.map(Value::to_string);
    let (code, text) = http_from_net(
        model,
        method,
        url,
        &headers,
        body.as_deref().map(str::as_bytes),
    );
    (
        code,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

fn now_ms() -> f64 {
    now_unix() * 1000.0
}

/// The `p`th percentile (nearest rank) of sorted values.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// The Parse JS SDK on a unit's machine, subscribed to `Message` through haproxy: one JSON
/// line per event (`t` its time in ms): the client's open/close/error, the subscription
/// confirmed (`subscribed`, after each reconnection too), each object created.
const SUBSCRIBER: &str = r#"
const Parse = require('parse/node');
const [serverURL, liveQueryURL] = process.argv.slice(1);
const out = (o) => console.log(JSON.stringify(Object.assign({ t: Date.now() }, o)));
Parse.initialize('shop');
Parse.serverURL = serverURL;
Parse.liveQueryServerURL = liveQueryURL;
Parse.LiveQuery.on('open', () => out({ ev: 'client-open' }));
Parse.LiveQuery.on('close', () => out({ ev: 'client-close' }));
Parse.LiveQuery.on('error', (e) => out({ ev: 'client-error', error: String((e && e.message) || e) }));
(async () => {
  const sub = await new Parse.Query('Message').subscribe();
  sub.on('open', () => out({ ev: 'subscribed' }));
  sub.on('create', (o) => out({ ev: 'create', id: o.id, sentAt: o.get('sentAt'), tag: o.get('tag') }));
})().catch((e) => { out({ ev: 'fatal', error: String(e) }); process.exit(1); });
"#;

/// Saves `Message` objects by REST, round robin over the API base URLs given (a JSON list),
/// `gap` ms apart: `count` of them, or (count 0) until the file `stop` exists. Each object
/// carries the time it was sent (`sentAt`, ms). Prints one JSON list of what each save gave.
const SAVER: &str = r#"
const fs = require('fs');
const [bases, count, gap, tag, stop] = process.argv.slice(1);
const list = JSON.parse(bases);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
(async () => {
  const saves = [];
  for (let seq = 0; Number(count) > 0 ? seq < Number(count) : !fs.existsSync(stop); seq++) {
    const base = list[seq % list.length];
    const sentAt = Date.now();
    let status = 0, id = null, error = null;
    try {
      const r = await fetch(base + '/classes/Message', {
        method: 'POST',
        headers: { 'X-Parse-Application-Id': 'shop', 'Content-Type': 'application/json' },
        body: JSON.stringify({ tag, seq, sentAt }),
        signal: AbortSignal.timeout(10000),
      });
      status = r.status;
      const b = await r.json();
      id = b.objectId || null;
      if (!id) error = JSON.stringify(b);
    } catch (e) {
      error = String(e);
    }
    saves.push({ seq, base, status, id, sentAt, error });
    await sleep(Math.max(0, Number(gap) - (Date.now() - sentAt)));
  }
  console.log(JSON.stringify(saves));
})();
"#;

/// One save: `(status, objectId, sent at in ms, error)`.
#[derive(Debug, Clone)]
struct Save {
    status: u64,
    id: Option<String>,
    sent_at: f64,
    error: Value,
}

fn read_saves(stdout: &[u8], stderr: &[u8]) -> Vec<Save> {
    let v: Value = serde_json::from_slice(stdout).unwrap_or_else(|_| {
        panic!(
            "the saver's output: {}\n{}",
            String::from_utf8_lossy(stdout),
            String::from_utf8_lossy(stderr)
        )
    });
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| Save {
            status: s["status"].as_u64().unwrap_or(0),
            id: s["id"].as_str().map(str::to_owned),
            sent_at: s["sentAt"].as_f64().unwrap(),
            error: s["error"].clone(),
        })
        .collect()
}

/// `count` saves from the model network, round robin over `bases`, `gap_ms` apart; all must
/// be saved.
fn save_batch(model: &Model, bases: &[String], count: usize, gap_ms: u64, tag: &str) -> Vec<Save> {
    let list = json!(bases).to_string();
    let out = model.net.exec(&[
        "node",
        "-e",
        SAVER,
        &list,
        &count.to_string(),
        &gap_ms.to_string(),
        tag,
        "",
    ]);
    let saves = read_saves(&out.stdout, &out.stderr);
    assert_eq!(saves.len(), count);
    for s in &saves {
        assert!(s.status == 201 && s.id.is_some(), "a save failed: {s:?}");
    }
    saves
}

/// The subscriber (`SUBSCRIBER`) running on a unit's machine, its lines in the unit dir.
struct Subscriber {
    unit: String,
    pid: u32,
    log: PathBuf,
}

impl Subscriber {
    /// Starts it on `unit`'s machine and waits until its subscription is confirmed.
    fn start(model: &mut Model, unit: &str, log: &str) -> Subscriber {
        let modules = format!("NODE_PATH={RELEASE}/node_modules");
        let pid = model.unit_mut(unit).spawn_in_unit(
            &[
                "env",
                &modules,
                "node",
                "-e",
                SUBSCRIBER,
                THROUGH_HAPROXY,
                LIVE_QUERY_URL,
            ],
            log,
        );
        let sub = Subscriber {
            unit: unit.to_owned(),
            pid,
            log: model.unit(unit).dir.join(log),
        };
        sub.wait_event("subscribed", 0.0, Duration::from_secs(60));
        sub
    }

    fn lines(&self) -> Vec<Value> {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<Value> = text
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        if let Some(f) = lines.iter().find(|l| l["ev"] == "fatal") {
            panic!("the LiveQuery subscriber failed: {f}\n{text}");
        }
        lines
    }

    /// Times (ms) of the events `ev` at or after `after`.
    fn times(&self, ev: &str, after: f64) -> Vec<f64> {
        self.lines()
            .iter()
            .filter(|l| l["ev"] == ev)
            .filter_map(|l| l["t"].as_f64())
            .filter(|t| *t >= after)
            .collect()
    }

    /// Waits for an event `ev` at or after `after`; returns its time.
    fn wait_event(&self, ev: &str, after: f64, within: Duration) -> f64 {
        let deadline = Instant::now() + within;
        loop {
            if let Some(t) = self.times(ev, after).first() {
                return *t;
            }
            assert!(
                Instant::now() < deadline,
                "no {ev} from the LiveQuery subscriber within {within:?}: {}",
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The objects created so far: id → the time (ms) the event arrived.
    fn received(&self) -> HashMap<String, f64> {
        self.lines()
            .iter()
            .filter(|l| l["ev"] == "create")
            .filter_map(|l| Some((l["id"].as_str()?.to_owned(), l["t"].as_f64()?)))
            .collect()
    }

    /// Waits until every one of `ids` arrived (or `within` passed); returns what arrived.
    fn wait_received(&self, ids: &[&str], within: Duration) -> HashMap<String, f64> {
        let deadline = Instant::now() + within;
        loop {
            let got = self.received();
            if ids.iter().all(|id| got.contains_key(*id)) || Instant::now() >= deadline {
                return got;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn stop(self, model: &mut Model) {
        model.unit_mut(&self.unit).stop_background(self.pid);
    }
}

/// What the other units answered about a session logged out on the first one.
struct SessionProbe {
    /// `(unit, HTTP status, Parse error code)` of reading the user's own object after the
    /// logout (a request whose access rests on the session alone).
    object: Vec<(String, u16, Value)>,
    /// The same for `GET /users/me`.
    me: Vec<(String, u16, Value)>,
    /// From the first read that put the session in another unit's cache to the last check.
    since_cached: Duration,
    /// From the logout's answer to the last check.
    since_logout: Duration,
}

/// A user signs up and logs in through the first of `units` (REST to the unit itself), saves
/// an object only they may read, reads it and `/users/me` through each other unit (which
/// caches the session), logs out through the first, and at once asks each other unit again.
fn session_after_logout(model: &Model, units: &[String], user: &str) -> SessionProbe {
    let (a, others) = units.split_first().unwrap();
    let api = unit_api(a);
    let creds = json!({"username": user, "password": format!("{user}-pass-1")});
    let (code, body) = rest(model, "POST", &format!("{api}/users"), None, Some(&creds));
    assert_eq!(code, 201, "sign-up through {a}: {body}");
    let (code, body) = rest(model, "POST", &format!("{api}/login"), None, Some(&creds));
    assert_eq!(code, 200, "login through {a}: {body}");
    let token = body["sessionToken"].as_str().unwrap().to_owned();
    let user_id = body["objectId"].as_str().unwrap().to_owned();
    let mut acl = serde_json::Map::new();
    acl.insert(user_id, json!({"read": true, "write": true}));
    let (code, body) = rest(
        model,
        "POST",
        &format!("{api}/classes/Private"),
        Some(&token),
        Some(&json!({"owner": user, "ACL": acl})),
    );
    assert_eq!(code, 201, "a private object through {a}: {body}");
    let id = body["objectId"].as_str().unwrap().to_owned();
    let object = |u: &str| format!("{}/classes/Private/{id}", unit_api(u));
    let me = |u: &str| format!("{}/users/me", unit_api(u));

    let cached = Instant::now();
    for u in others {
        let (code, body) = rest(model, "GET", &object(u), Some(&token), None);
        assert_eq!(code, 200, "the private object through {u}: {body}");
        let (code, body) = rest(model, "GET", &me(u), Some(&token), None);
        assert_eq!(code, 200, "/users/me through {u}: {body}");
        assert_eq!(body["username"], user, "{body}");
    }
    let (code, body) = rest(model, "POST", &format!("{api}/logout"), Some(&token), None);
    assert_eq!(code, 200, "logout through {a}: {body}");
    let logged_out = Instant::now();
    let ask = |url: &dyn Fn(&str) -> String| -> Vec<(String, u16, Value)> {
        others
            .iter()
            .map(|u| {
                let (code, body) = rest(model, "GET", &url(u), Some(&token), None);
                (u.clone(), code, body["code"].clone())
            })
            .collect()
    };
    let object = ask(&object);
    let me = ask(&me);
    SessionProbe {
        object,
        me,
        since_cached: cached.elapsed(),
        since_logout: logged_out.elapsed(),
    }
}

/// Every unit's option file, by unit.
pub(crate) fn option_files(model: &Model) -> Vec<(String, String)> {
    model
        .units
        .iter()
        .map(|(n, u)| (n.clone(), u.read_text("/etc/parse-server/config.json")))
        .collect()
}

/// Every unit's parse-server main PID.
pub(crate) fn main_pids(model: &Model) -> Vec<u32> {
    model
        .units
        .iter()
        .map(|(_, u)| u.main_pid("parse-server"))
        .collect()
}

/// Every unit's status is `kind` with a message that names `redis-url:` first and holds no
/// `secret`; returns the messages. A refused URL is `blocked` as the charm says of every
/// option it refuses, `invalid config: redis-url: ...` (the brief had the message start
/// with `redis-url:`).
fn assert_redis_url_status(model: &Model, kind: &str, secret: &str) -> Vec<String> {
    let mut messages = Vec::new();
    for (name, k, m) in model.workloads() {
        assert_eq!(k, kind, "{name}: {m}\n{}", model.hook_tails());
        let named = m.strip_prefix("invalid config: ").unwrap_or(&m);
        assert!(named.starts_with("redis-url:"), "{name}: {m:?}");
        assert!(!m.contains(secret), "{name}: the password in the status");
        messages.push(m);
    }
    messages
}

#[test]
fn redis_shares_live_query_sessions_and_rate_limits_across_three_units_behind_haproxy() {
    let started = Instant::now();
    let mut model = Model::new("redis");
    let pg = Postgres::start(&mut model, 5432);
    let units = three_units(&mut model);
    model.settle();
    relate_postgresql(&mut model, &pg);
    model.assert_all("active", "serving");
    let (_lb, mut haproxy, haproxy_cfg) = behind_haproxy(&mut model);
    wait_serving(&model, &haproxy.url("/parse/health"));
    let mut redis = RedisServer::start(&model, REDIS_PORT);
    record_figure(
        "redis",
        "deploy of 3 units on PostgreSQL behind haproxy",
        started.elapsed().as_secs_f64(),
        "s",
    );
    let bases: Vec<String> = units.iter().map(|u| unit_api(u)).collect();

    // --- Without Redis (the controls). LiveQuery on 3 units: the status says that events
    // reach only the clients of the unit that saved the object, and so it is: a subscriber
    // through haproxy sees exactly one of three objects saved one on each unit.
    model.config(&["live-query-classes=Message"]);
    model.settle();
    model.assert_all(
        "active",
        "LiveQuery events stay within each unit: set redis-url",
    );
    let lonely_status = model.workloads()[0].2.clone();
    println!("LiveQuery without Redis on 3 units: {lonely_status}");
    for (name, o) in option_files(&model) {
        let o: Value = serde_json::from_str(&o).unwrap();
        assert_eq!(o["startLiveQueryServer"], true, "{name}");
        assert_eq!(o["liveQuery"]["classNames"], json!(["Message"]), "{name}");
        assert!(o["liveQuery"].get("redisURL").is_none(), "{name}: {o}");
        assert!(o.get("cacheAdapter").is_none(), "{name}: {o}");
    }
    let sub = Subscriber::start(&mut model, &units[0], "livequery-control.log");
    let saves = save_batch(&model, &bases, 3, 200, "control");
    std::thread::sleep(Duration::from_secs(5));
    let got = sub.received();
    let seen = saves
        .iter()
        .filter(|s| got.contains_key(s.id.as_deref().unwrap()))
        .count();
    assert_eq!(
        seen, 1,
        "without Redis a subscriber sees the saves of its own unit only"
    );
    sub.stop(&mut model);

    // Each unit caches a session for 5 s (parse-server's default cacheTTL, in the unit's
    // memory): a session logged out on A is still accepted by B within that window. Asked
    // with a request whose access rests on the session alone (an object only the user may
    // read): `/users/me` looks the session up in the database itself, so it says 209 on B
    // even without a shared cache and cannot tell the two apart.
    let control = session_after_logout(&model, &units, "carol");
    assert!(
        control.since_cached < Duration::from_millis(4500),
        "the control took {:?}, too close to the 5 s cache window to mean anything",
        control.since_cached
    );
    for (u, code, parse_code) in &control.object {
        assert_eq!(
            *code, 200,
            "without Redis {u} accepts the logged-out session from its cache ({parse_code})"
        );
    }
    println!(
        "without Redis, /users/me after logout: {:?}; object reads: {:?}",
        control.me, control.object
    );

    // --- Bad input before any working URL. A wrong password: every unit blocked, saying
    // which option (and not the password); the service serves on, as it was.
    let pids = main_pids(&model);
    let files = option_files(&model);
    let wrong = random_alnum(24);
    let wrong_url = format!("redis://default:{wrong}@10.77.0.1:{REDIS_PORT}/0");
    model.config(&[&format!("redis-url={wrong_url}")]);
    model.settle();
    let blocked = assert_redis_url_status(&model, "blocked", &wrong);
    println!("wrong Redis password: {blocked:?}");
    let (code, body) = rest(
        &model,
        "GET",
        &haproxy.url("/parse/classes/Message?limit=1"),
        None,
        None,
    );
    assert_eq!(code, 200, "still serving through haproxy: {body}");
    assert_eq!(main_pids(&model), pids, "a wrong password restarted a unit");
    assert_eq!(option_files(&model), files, "a wrong password was rendered");
    // Nothing listening there: waiting, the same way.
    let nobody = random_alnum(24);
    model.config(&[&format!(
        "redis-url=redis://default:{nobody}@10.77.0.1:{CLOSED_PORT}"
    )]);
    model.settle();
    let waiting = assert_redis_url_status(&model, "waiting", &nobody);
    println!("Redis unreachable: {waiting:?}");
    let (code, body) = rest(
        &model,
        "GET",
        &haproxy.url("/parse/classes/Message?limit=1"),
        None,
        None,
    );
    assert_eq!(code, 200, "still serving through haproxy: {body}");
    assert_eq!(
        main_pids(&model),
        pids,
        "an unreachable Redis restarted a unit"
    );
    assert_eq!(
        option_files(&model),
        files,
        "an unreachable Redis was rendered"
    );

    // --- The URL as a Juju user secret (juju add-secret; juju grant-secret).
    let url = redis.url();
    let secret = model.add_secret("parse-redis", &[("redis-url", url.as_str())]);
    model.grant_secret("parse-redis", APP, true);
    let since = now_unix();
    let configured = Instant::now();
    model.config(&[&format!("redis-url={secret}")]);
    model.settle();
    record_figure(
        "redis",
        "redis-url set (a user secret) to 3 units active",
        configured.elapsed().as_secs_f64(),
        "s",
    );
    model.assert_all("active", "serving");
    let shared_status = model.workloads()[0].2.clone();
    println!("LiveQuery with Redis: {shared_status}");
    assert_ne!(
        shared_status, lonely_status,
        "the LiveQuery warning stays with Redis"
    );
    println!(
        "restarts for redis-url: {:?}",
        restarts_since(&model, since)
    );
    let adapter = "/opt/parse-server/charm/redis-cache-adapter.js";
    for (name, unit) in &model.units {
        let o: Value =
            serde_json::from_str(&unit.read_text("/etc/parse-server/config.json")).unwrap();
        assert_eq!(o["startLiveQueryServer"], true, "{name}");
        assert_eq!(o["liveQuery"]["classNames"], json!(["Message"]), "{name}");
        assert_eq!(o["liveQuery"]["redisURL"], url.as_str(), "{name}");
        assert_eq!(
            o["liveQueryServerOptions"]["redisURL"],
            url.as_str(),
            "{name}"
        );
        assert_eq!(o["cacheAdapter"]["module"], adapter, "{name}");
        assert_eq!(
            o["cacheAdapter"]["options"]["releaseDir"], RELEASE,
            "{name}"
        );
        assert_eq!(o["cacheAdapter"]["options"]["url"], url.as_str(), "{name}");
        let mode = unit.exec_ok(&["stat", "-c", "%a", "/etc/parse-server/config.json"]);
        assert_eq!(mode.trim(), "640", "{name}");
    }
    // Every unit is Redis's client now.
    let clients = redis.cli(&model, &["CLIENT", "LIST"]);
    for u in &units {
        let ip = unit_ip(u);
        assert!(
            clients.contains(&format!("addr={ip}:")),
            "{u} ({ip}) is not connected to Redis:\n{clients}"
        );
    }
    // A hook that checks Redis, traced: no program it starts has the password in its
    // arguments (strace shows 32 characters of each: the password's first 12 are looked for).
    model.unit(&units[0]).traced_hook("config-changed");
    let trace = model
        .unit(&units[0])
        .read_unit_file("trace-config-changed.log");
    assert!(!trace.is_empty());
    assert!(
        !trace.contains(&redis.password[..12]),
        "the Redis password on a command line of config-changed"
    );
    let found = secret_leaks(&model, &[&redis.password]);
    assert!(found.is_empty(), "the Redis password shows in: {found:?}");

    // --- LiveQuery across units: a subscriber through haproxy gets what is saved directly
    // on each of the three units.
    let sub = Subscriber::start(&mut model, &units[0], "livequery.log");
    let saves = save_batch(&model, &bases, 36, 150, "across");
    let ids: Vec<&str> = saves.iter().map(|s| s.id.as_deref().unwrap()).collect();
    let got = sub.wait_received(&ids, Duration::from_secs(30));
    let missing: Vec<&&str> = ids.iter().filter(|id| !got.contains_key(**id)).collect();
    assert!(
        missing.is_empty(),
        "{} of 36 saves never reached the subscriber: {missing:?}",
        missing.len()
    );
    let mut latency: Vec<f64> = saves
        .iter()
        .map(|s| got[s.id.as_deref().unwrap()] - s.sent_at)
        .collect();
    latency.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!("save→event latencies (ms): {latency:?}");
    record_figure(
        "redis",
        "LiveQuery save (REST to a unit) to event (WebSocket through haproxy), median of 36",
        percentile(&latency, 50.0),
        "ms",
    );
    record_figure(
        "redis",
        "LiveQuery save to event, p95 of 36",
        percentile(&latency, 95.0),
        "ms",
    );
    record_figure(
        "redis",
        "LiveQuery save to event, max of 36",
        latency[latency.len() - 1],
        "ms",
    );

    // Idle longer than haproxy's client and server timeouts (50 s and 60 s, as
    // haproxy-operator renders them; parse-server pings every WebSocket each 10 s): the
    // connection stays, a save arrives.
    let idle_from = now_ms();
    std::thread::sleep(Duration::from_secs(70));
    let closed = sub.times("client-close", idle_from);
    assert!(
        closed.is_empty(),
        "the idle subscription closed at {closed:?}"
    );
    let saves = save_batch(&model, &bases, 3, 100, "after-idle");
    let ids: Vec<&str> = saves.iter().map(|s| s.id.as_deref().unwrap()).collect();
    let got = sub.wait_received(&ids, Duration::from_secs(10));
    assert!(
        ids.iter().all(|id| got.contains_key(*id)),
        "saves after 70 s idle did not arrive"
    );

    // A rolling restart (juju config log-level) while an object is saved through haproxy
    // once a second: the client reconnects (through haproxy, to a unit that is up) and gets
    // every object saved after that. What was saved while it was away is lost: counted.
    let stop = model.dir.join("stop-saving");
    let saver = model
        .net
        .command(&[
            "node",
            "-e",
            SAVER,
            &json!([THROUGH_HAPROXY]).to_string(),
            "0",
            "1000",
            "rollout",
            stop.to_str().unwrap(),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let since = now_unix();
    let changed_at = now_ms();
    std::thread::sleep(Duration::from_secs(2));
    let rolling = Instant::now();
    model.config(&["log-level=warn"]);
    model.settle();
    let rollout_s = rolling.elapsed().as_secs_f64();
    let rollout_end = now_ms();
    assert_one_at_a_time(&restarts_since(&model, since), 3);
    model.assert_all("active", "serving");
    // Back: the last lifecycle line is a confirmed subscription after the last close.
    let deadline = Instant::now() + Duration::from_secs(60);
    let (last_close, reopened) = loop {
        let closes = sub.times("client-close", changed_at);
        let last_close = closes.last().copied();
        let reopened = last_close.and_then(|c| sub.times("subscribed", c).first().copied());
        if let (Some(c), Some(r)) = (last_close, reopened) {
            break (c, r);
        }
        assert!(
            Instant::now() < deadline,
            "the subscriber did not come back within 60 s of the rollout (closes: {closes:?})"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let closes = sub.times("client-close", changed_at).len();
    std::thread::sleep(Duration::from_secs(8));
    std::fs::write(&stop, "").unwrap();
    let out = saver.wait_with_output().unwrap();
    let saves = read_saves(&out.stdout, &out.stderr);
    let cut = rollout_end.max(reopened);
    let ok: Vec<&Save> = saves.iter().filter(|s| s.status == 201).collect();
    let after: Vec<&str> = ok
        .iter()
        .filter(|s| s.sent_at > cut)
        .map(|s| s.id.as_deref().unwrap())
        .collect();
    let got = sub.wait_received(&after, Duration::from_secs(15));
    let lost_after: Vec<&&str> = after.iter().filter(|id| !got.contains_key(**id)).collect();
    let during: Vec<&&Save> = ok.iter().filter(|s| s.sent_at <= cut).collect();
    let lost_during = during
        .iter()
        .filter(|s| !got.contains_key(s.id.as_deref().unwrap()))
        .count();
    let failed: Vec<&Save> = saves.iter().filter(|s| s.status != 201).collect();
    println!(
        "rollout: {closes} close(s), last at {last_close}, subscribed again at {reopened}, \
         rollout ended at {rollout_end}; {} saves, {} failed {:?}",
        saves.len(),
        failed.len(),
        failed.iter().map(|s| &s.error).collect::<Vec<_>>()
    );
    record_figure(
        "redis",
        "rolling restart of 3 units with a LiveQuery subscriber, duration",
        rollout_s,
        "s",
    );
    record_figure(
        "redis",
        "rolling restart: LiveQuery client reconnections",
        closes as f64,
        "closes",
    );
    record_figure(
        "redis",
        "rolling restart: last close to subscribed again",
        (reopened - last_close) / 1000.0,
        "s",
    );
    record_figure(
        "redis",
        "rolling restart: objects saved (1/s through haproxy) until it ended and the client was back",
        during.len() as f64,
        "objects",
    );
    record_figure(
        "redis",
        "rolling restart: of those, events lost",
        lost_during as f64,
        "objects",
    );
    record_figure(
        "redis",
        "rolling restart: saves through haproxy that failed",
        failed.len() as f64,
        "requests",
    );
    assert!(
        closes >= 1,
        "every unit restarted, yet the WebSocket never closed"
    );
    assert!(
        after.len() >= 3,
        "too few saves after the rollout: {after:?}"
    );
    assert!(
        lost_after.is_empty(),
        "objects saved after the rollout never arrived: {lost_after:?}"
    );
    let saves = save_batch(&model, &bases, 3, 100, "after-rollout");
    let ids: Vec<&str> = saves.iter().map(|s| s.id.as_deref().unwrap()).collect();
    let got = sub.wait_received(&ids, Duration::from_secs(10));
    assert!(
        ids.iter().all(|id| got.contains_key(*id)),
        "saves on each unit after the rollout did not all arrive"
    );
    sub.stop(&mut model);

    // --- A shared session cache: the logout on A is seen at once on B and C (with the
    // control above: without Redis, B accepted the session).
    let shared = session_after_logout(&model, &units, "dave");
    println!(
        "with Redis: object reads {:?}, /users/me {:?}, {:?} after the logout",
        shared.object, shared.me, shared.since_logout
    );
    // Within the 5 s a unit would have kept the session on its own: the refusals come from
    // the shared cache, not from an expired local entry.
    assert!(
        shared.since_cached < Duration::from_millis(4500),
        "the checks took {:?}, too long to tell a shared cache from an expired one",
        shared.since_cached
    );
    record_figure(
        "redis",
        "logout on one unit to refusals checked on the two others",
        shared.since_logout.as_secs_f64(),
        "s",
    );
    for (u, code, parse_code) in shared.object.iter().chain(shared.me.iter()) {
        assert_eq!(
            (*code, parse_code),
            (400, &json!(209)),
            "{u} accepted a session logged out on {}",
            units[0]
        );
    }

    // --- A shared rate limit, per client address: 6 GETs a minute on /classes/*.
    let limit = json!({"rateLimit": [{
        "requestPath": "/classes/*path",
        "requestTimeWindow": 60000,
        "requestCount": 6
    }]});
    model.config(&[&format!("extra-options={limit}")]);
    model.settle();
    model.assert_all("active", "serving");
    for (name, o) in option_files(&model) {
        let o: Value = serde_json::from_str(&o).unwrap();
        let rl = o["rateLimit"].as_array().expect("rateLimit");
        assert_eq!(rl.len(), 1, "{name}: {o}");
        assert_eq!(rl[0]["requestPath"], "/classes/*path", "{name}");
        assert_eq!(rl[0]["requestCount"], 6, "{name}");
        assert_eq!(rl[0]["redisUrl"], url.as_str(), "{name}");
    }
    // Round robin for this part (the route's leastconn would likely rotate sequential
    // requests too): each unit gets at most 3 of the 7 requests, so a unit counting alone
    // would allow all of them; only the count shared in Redis refuses the 7th.
    haproxy.reload(
        &mut model,
        &haproxy_cfg.replace("balance leastconn", "balance roundrobin"),
    );
    wait_serving(&model, &haproxy.url("/parse/health"));
    let list = haproxy.url("/parse/classes/Message?limit=1");
    for i in 1..=6 {
        let (code, body) = rest(&model, "GET", &list, None, None);
        assert_eq!(code, 200, "request {i} of 6: {body}");
    }
    let (code, body) = rest(&model, "GET", &list, None, None);
    assert_eq!(code, 429, "the 7th request within the minute: {body}");
    println!("7th request: {code} {body}");
    // Another client address (haproxy passes it on; parse-server trusts haproxy's header)
    // has its own count.
    let remote = RemoteClient::add(&model, REMOTE);
    let (code, body) = remote.http(
        &model,
        "GET",
        &list,
        &[("X-Parse-Application-Id", APP_ID)],
        None,
    );
    assert_eq!(code, 200, "from {REMOTE}: {body}");
    let keys = redis.cli(&model, &["--scan"]);
    assert!(
        keys.lines().any(|k| k.ends_with(Network::GATEWAY))
            && keys.lines().any(|k| k.ends_with(REMOTE)),
        "no count per client address in Redis: {keys}"
    );

    // --- Redis goes away under the serving units. Only the hooks' exit 0 is promised; the
    // rest is recorded.
    redis.stop();
    for (_, unit) in &model.units {
        unit.hook("update-status", &[]);
    }
    let after_update = model.workloads();
    println!("Redis stopped, after update-status: {after_update:?}");
    model.config(&["log-level=info"]);
    model.settle();
    let after_change = model.workloads();
    println!("Redis stopped, after a config change: {after_change:?}");
    for (what, ws) in [
        ("update-status", &after_update),
        ("config change", &after_change),
    ] {
        record_figure(
            "redis",
            &format!("Redis stopped, after {what}: units waiting with redis-url:"),
            ws.iter()
                .filter(|(_, k, m)| k == "waiting" && m.starts_with("redis-url:"))
                .count() as f64,
            "units",
        );
    }
    let probe = RemoteClient::add(&model, PROBE);
    for path in ["/parse/health", "/parse/classes/Message?limit=1"] {
        let asked = Instant::now();
        let (code, body) = probe.http(
            &model,
            "GET",
            &haproxy.url(path),
            &[("X-Parse-Application-Id", APP_ID)],
            None,
        );
        let s = asked.elapsed().as_secs_f64();
        println!("Redis stopped: GET {path} through haproxy: {code} in {s:.3} s: {body}");
        record_figure(
            "redis",
            &format!("Redis stopped: GET {path} through haproxy, HTTP status"),
            code as f64,
            "status",
        );
        record_figure(
            "redis",
            &format!("Redis stopped: GET {path} through haproxy, time"),
            s,
            "s",
        );
    }
    // A request that reads the cache (a session lookup) still answers while Redis is down:
    // the charm's cache adapter fails at once and parse-server asks the database (with
    // node-redis's offline queue it would wait for Redis). Not rate-limited, unlike
    // /classes above, whose limiter's client does wait.
    let asked = Instant::now();
    let (code, body) = probe.http(
        &model,
        "GET",
        &haproxy.url("/parse/users/me"),
        &[
            ("X-Parse-Application-Id", APP_ID),
            ("X-Parse-Session-Token", "r:no-such-session"),
        ],
        None,
    );
    let s = asked.elapsed().as_secs_f64();
    println!("Redis stopped: a session lookup through haproxy: {code} in {s:.3} s: {body}");
    assert!(
        code == 400 && body.contains("209"),
        "a session lookup with Redis down: {code} {body}"
    );
    assert!(s < 10.0, "a session lookup with Redis down took {s:.1} s");
    record_figure(
        "redis",
        "Redis stopped: a session lookup through haproxy, time",
        s,
        "s",
    );
    // Back (empty: nothing was saved). How long until a request that reads the cache (a
    // session lookup) answers again, and what the next hooks say.
    redis.run(&model);
    let back = Instant::now();
    let recovered = loop {
        let (code, _) = probe.http(
            &model,
            "GET",
            &haproxy.url("/parse/users/me"),
            &[
                ("X-Parse-Application-Id", APP_ID),
                ("X-Parse-Session-Token", "r:no-such-session"),
            ],
            None,
        );
        if code != 0 {
            break Some((code, back.elapsed().as_secs_f64()));
        }
        if back.elapsed() > Duration::from_secs(60) {
            break None;
        }
    };
    println!("Redis back: a session lookup through haproxy answered {recovered:?}");
    record_figure(
        "redis",
        "Redis back: until a session lookup through haproxy answers (-1: not within 60 s)",
        recovered.map_or(-1.0, |(_, s)| s),
        "s",
    );
    for (_, unit) in &model.units {
        unit.hook("update-status", &[]);
    }
    model.settle();
    println!("Redis back, after update-status: {:?}", model.workloads());

    let found = secret_leaks(&model, &[&redis.password]);
    assert!(found.is_empty(), "the Redis password shows in: {found:?}");
    probe.remove(&model);
    remote.remove(&model);
    redis.stop();
    model.teardown();
    record_figure("redis", "whole test", started.elapsed().as_secs_f64(), "s");
}

/// `juju integrate parse-server valkey`, played as Charmed Valkey answers a requirer that
/// writes no `version` (the v0 layout): it creates a client user with its own ACL, the one
/// Charmed Valkey gives (canonical/valkey-operator `src/managers/config.py`: no scripts, no
/// PING), on the real server, and shares it in a secret. Settles; returns the relation.
fn relate_valkey(model: &mut Model, redis: &RedisServer) -> (String, String) {
    let rel = model.relate("valkey", "valkey");
    model.remote_set(&rel, "valkey/0", &[], Some(Network::GATEWAY));
    model.settle();
    let ours = model.app_bag(&rel);
    assert_eq!(
        ours["database"], "*",
        "the charm asks for every key and channel"
    );
    assert!(ours["requested-secrets"]
        .as_str()
        .unwrap()
        .contains("\"password\""));
    let user = format!("relation-{}", rel.rsplit(':').next().unwrap());
    let password = random_alnum(24);
    let set = redis.cli(
        model,
        &[
            "ACL",
            "SETUSER",
            &user,
            "on",
            &format!(">{password}"),
            "-@all",
            "+@read",
            "+@write",
            "+@keyspace",
            "+@pubsub",
            "+@transaction",
            "+info",
            "~*",
            "&*",
        ],
    );
    assert_eq!(set.trim(), "OK", "ACL SETUSER: {set}");
    let secret = model.remote_secret_add(
        &rel,
        "valkey",
        &[("username", user.as_str()), ("password", password.as_str())],
    );
    let endpoint = format!("{}:{}", Network::GATEWAY, redis.port);
    model.remote_app_set(
        &rel,
        &[
            ("database", "*"),
            ("endpoints", endpoint.as_str()),
            ("secret-user", secret.as_str()),
            ("version", "9.0.1"),
            ("mode", "sentinel"),
        ],
    );
    model.settle();
    (rel, password)
}

#[test]
fn charmed_valkey_s_client_user_shares_live_query_and_the_cache_and_rate_limits_stay_per_process() {
    let started = Instant::now();
    let mut model = Model::new("valkey");
    let pg = Postgres::start(&mut model, 5432);
    let units = three_units(&mut model);
    model.settle();
    relate_postgresql(&mut model, &pg);
    let (_lb, _haproxy, _) = behind_haproxy(&mut model);
    let redis = RedisServer::start(&model, REDIS_PORT);
    model.config(&[
        "live-query-classes=Message",
        r#"extra-options={"rateLimit":[{"requestPath":"/classes/*path","requestTimeWindow":60000,"requestCount":100}]}"#,
    ]);
    model.settle();
    let (_rel, password) = relate_valkey(&mut model, &redis);
    // Serving with it, and saying that the rate limits cannot use it.
    model.assert_all(
        "active",
        "rate limits count per process: the Redis user may not run scripts",
    );
    for (name, unit) in &model.units {
        let o: Value =
            serde_json::from_str(&unit.read_text("/etc/parse-server/config.json")).unwrap();
        let url = o["cacheAdapter"]["options"]["url"].as_str().unwrap();
        assert!(
            url.starts_with("redis://relation-"),
            "{name}: the client user"
        );
        assert_eq!(o["liveQuery"]["redisURL"], url, "{name}");
        assert!(o["rateLimit"][0].get("redisUrl").is_none(), "{name}: {o}");
    }
    // LiveQuery across the units, through the client user's channels.
    let bases: Vec<String> = units.iter().map(|u| unit_api(u)).collect();
    let sub = Subscriber::start(&mut model, &units[0], "valkey-subscriber.log");
    let saves = save_batch(&model, &bases, 6, 100, "valkey");
    let ids: Vec<&str> = saves.iter().filter_map(|s| s.id.as_deref()).collect();
    let got = sub.wait_received(&ids, Duration::from_secs(20));
    assert_eq!(
        ids.iter().filter(|id| got.contains_key(**id)).count(),
        ids.len(),
        "every unit's saves reach the subscriber through Valkey's client user"
    );
    sub.stop(&mut model);
    // The cache in the shared Redis: a session looked up on one unit is kept there.
    let (code, user) = rest(
        &model,
        "POST",
        &format!("{}/users", bases[1]),
        None,
        Some(&json!({"username": "val", "password": "kv-pass-1"})),
    );
    assert_eq!(code, 201, "{user}");
    let token = user["sessionToken"].as_str().unwrap();
    let (code, me) = rest(
        &model,
        "GET",
        &format!("{}/users/me", bases[2]),
        Some(token),
        None,
    );
    assert_eq!(code, 200, "{me}");
    let keys = redis.cli(&model, &["--scan", "--pattern", &format!("{APP_ID}:*")]);
    assert!(
        !keys.trim().is_empty(),
        "no cache entry of the application in the shared Redis"
    );
    let found = secret_leaks(&model, &[&password]);
    assert!(
        found.is_empty(),
        "the client user's password shows in: {found:?}"
    );
    drop(redis);
    model.teardown();
    record_figure("valkey", "whole test", started.elapsed().as_secs_f64(), "s");
}
