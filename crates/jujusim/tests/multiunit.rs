//! Several units of one application in a model, driven through the `jujusim` binary: a tiny
//! shell-script charm whose hooks call the real hook tools, three units with a peer relation,
//! a database relation and secrets, the event queue and `settle`.

use serde_json::Value;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use jujusim::kit::{self, ModelDir, UnitDir};

const METADATA: &str = "name: parse-server
summary: test charm
description: test charm
requires:
  database: {interface: mongodb_client, limit: 1}
  haproxy-route: {interface: haproxy-route, limit: 1}
peers:
  cluster: {interface: parse-cluster}
resources:
  bundle: {type: file, filename: bundle.tgz}
";

const CONFIG: &str = "options:
  port: {type: int, default: 1337}
  app-id: {type: string}
";

/// Logs every hook with its relation/secret variables, then sources the test's handler for
/// that hook (`handlers/<hook>`) under `set -e`.
const DISPATCH: &str = r#"#!/bin/sh
printf '%s|%s|%s|%s|%s|%s|%s\n' "$JUJU_HOOK_NAME" "${JUJU_RELATION_ID-}" \
  "${JUJU_REMOTE_UNIT-<unset>}" "${JUJU_REMOTE_APP-<unset>}" "${JUJU_DEPARTING_UNIT-}" \
  "${JUJU_SECRET_ID-}" "${JUJU_SECRET_LABEL-}" >> "$JUJUSIM_UNIT_DIR/hooks.log"
U="$JUJUSIM_UNIT_DIR"
h="$JUJU_CHARM_DIR/handlers/${JUJU_HOOK_NAME:-action-$JUJU_ACTION_NAME}"
[ -f "$h" ] || exit 0
set -e
. "$h"
"#;

/// The test's model (the kit's driver of a model dir), the charm dir it was made from, and
/// the root of both.
struct Sim {
    root: PathBuf,
    charm: PathBuf,
    model: ModelDir,
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Sim {
    fn new(tag: &str) -> Sim {
        let root =
            std::env::temp_dir().join(format!("jujusim-multiunit-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let charm = root.join("charm");
        std::fs::create_dir_all(charm.join("handlers")).unwrap();
        std::fs::write(charm.join("metadata.yaml"), METADATA).unwrap();
        std::fs::write(charm.join("config.yaml"), CONFIG).unwrap();
        std::fs::write(charm.join("actions.yaml"), "whoami: {description: x}\n").unwrap();
        std::fs::write(charm.join("dispatch"), DISPATCH).unwrap();
        std::fs::set_permissions(
            charm.join("dispatch"),
            std::fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        let model = ModelDir::at(root.join("model"));
        let out = model.init(&["--charm-dir", charm.to_str().unwrap()]);
        assert_eq!(out, "cluster:0\n");
        Sim { root, charm, model }
    }

    /// Run jujusim (the kit's) with `M` replaced by the model dir.
    fn run(&self, args: &[&str]) -> Out {
        let m = self.model.dir.display().to_string();
        let args: Vec<&str> = args
            .iter()
            .map(|a| if *a == "M" { m.as_str() } else { a })
            .collect();
        let o = kit::jujusim()
            .args(&args)
            .current_dir(&self.root)
            .output()
            .expect("running jujusim");
        Out {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }

    /// Run and require exit 0; returns stdout.
    fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert_eq!(o.code, 0, "jujusim {args:?}:\n{}\n{}", o.stdout, o.stderr);
        o.stdout
    }

    fn handler(&self, hook: &str, body: &str) {
        std::fs::write(self.charm.join("handlers").join(hook), body).unwrap();
    }

    fn no_handler(&self, hook: &str) {
        let _ = std::fs::remove_file(self.charm.join("handlers").join(hook));
    }

    fn add_units(&self, n: usize) -> Vec<PathBuf> {
        (0..n).map(|_| self.model.add_unit(&[]).1).collect()
    }

    fn settle(&self) -> String {
        self.model.settle()
    }

    fn events(&self) -> Vec<Value> {
        self.model.events()
    }

    fn model(&self) -> Value {
        self.model.state()
    }

    fn status(&self) -> Value {
        self.model.status()
    }
}

/// The unit dir `u`, driven by the kit.
fn unit(u: &Path) -> UnitDir {
    UnitDir::at(u)
}

/// The hooks a unit ran: `hook|relation|remote-unit|remote-app|departing|secret|label`.
fn hooks(u: &Path) -> Vec<String> {
    std::fs::read_to_string(u.join("hooks.log"))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

fn hook_names(u: &Path) -> Vec<String> {
    hooks(u)
        .iter()
        .map(|l| l.split('|').next().unwrap().to_string())
        .collect()
}

fn read(u: &Path, f: &str) -> String {
    std::fs::read_to_string(u.join(f)).unwrap_or_else(|e| panic!("{}/{f}: {e}", u.display()))
}

fn json_file(u: &Path, f: &str) -> Value {
    serde_json::from_str(&read(u, f)).unwrap_or_else(|e| panic!("{f}: {e}"))
}

fn count(v: &[Value], pred: impl Fn(&Value) -> bool) -> usize {
    v.iter().filter(|e| pred(e)).count()
}

#[test]
fn three_units_leader_publishes_the_peer_app_bag() {
    let s = Sim::new("peerapp");
    s.handler(
        "leader-elected",
        "relation-set -r cluster:0 --app shared=from-$JUJU_UNIT_NAME 'json=[\"a\",1]'\n",
    );
    s.handler(
        "cluster-relation-changed",
        r#"relation-list --format=json > "$U/list.json"
if [ -z "$JUJU_REMOTE_UNIT" ]; then
  relation-get --format=json --app - parse-server > "$U/app-bag.json"
fi
"#,
    );
    let u = s.add_units(3);
    let out = s.settle();
    assert!(
        out.contains("parse-server/0 leader-elected exit=0"),
        "{out}"
    );
    // Non-leaders hear of the peer app bag (JUJU_REMOTE_UNIT="", JUJU_REMOTE_APP = our app)
    // and read it; the leader never hears of its own write.
    for d in &u[1..] {
        assert!(
            hooks(d).contains(&"cluster-relation-changed|cluster:0||parse-server|||".to_string()),
            "{:?}",
            hooks(d)
        );
        let bag = json_file(d, "app-bag.json");
        assert_eq!(bag["shared"], "from-parse-server/0");
        assert_eq!(bag["json"], "[\"a\",1]", "values stay strings");
    }
    assert!(!hooks(&u[0])
        .iter()
        .any(|l| l.starts_with("cluster-relation-changed|cluster:0||")));
    // relation-list: the other peers, never self.
    for (i, d) in u.iter().enumerate() {
        let list: Vec<String> = serde_json::from_value(json_file(d, "list.json")).unwrap();
        let want: Vec<String> = (0..3)
            .filter(|j| *j != i)
            .map(|j| format!("parse-server/{j}"))
            .collect();
        assert_eq!(list, want, "unit {i}");
    }
    assert!(s.events().is_empty());
    let st = s.status();
    let units = &st["applications"]["parse-server"]["units"];
    assert_eq!(units["parse-server/0"]["leader"], true);
    assert_eq!(units["parse-server/1"]["leader"], false);
    assert_eq!(units["parse-server/2"]["address"], "10.0.0.12");
}

#[test]
fn unit_bag_writes_wake_the_peers_and_their_bags_are_readable() {
    let s = Sim::new("peerunit");
    let u = s.add_units(3);
    s.settle();
    s.handler(
        "update-status",
        "relation-set -r cluster:0 name=$JUJU_UNIT_NAME\n",
    );
    s.handler(
        "cluster-relation-changed",
        r#"relation-get --format=json - "$JUJU_REMOTE_UNIT" > "$U/bag-of-$(echo $JUJU_REMOTE_UNIT | tr / -).json"
"#,
    );
    unit(&u[1]).hook("update-status", &[]);
    let ev = s.events();
    assert_eq!(ev.len(), 2, "{ev:?}");
    for (e, unit) in ev.iter().zip(["parse-server/0", "parse-server/2"]) {
        assert_eq!(e["unit"], unit);
        assert_eq!(e["hook"], "cluster-relation-changed");
        assert_eq!(e["relation"], "cluster:0");
        assert_eq!(e["remote-unit"], "parse-server/1");
        assert_eq!(e["remote-app"], "parse-server");
    }
    s.settle();
    for d in [&u[0], &u[2]] {
        let bag = json_file(d, "bag-of-parse-server-1.json");
        assert_eq!(bag["name"], "parse-server/1");
        assert_eq!(bag["private-address"], "10.0.0.11");
        assert_eq!(bag["ingress-address"], "10.0.0.11");
        assert_eq!(bag["egress-subnets"], "10.0.0.11/32");
    }
    assert!(!u[1].join("bag-of-parse-server-1.json").exists());
    // Writing the same values again changes nothing and wakes nobody.
    unit(&u[1]).hook("update-status", &[]);
    assert!(s.events().is_empty());
}

#[test]
fn a_failing_hook_stops_its_unit_and_discards_its_changes() {
    let s = Sim::new("fail");
    s.handler(
        "config-changed",
        r#"relation-set -r cluster:0 mine=$JUJU_UNIT_NAME
open-port 1337
relation-set -r cluster:0 --app by=$JUJU_UNIT_NAME 2> "$U/app-set.err"
"#,
    );
    let u = s.add_units(2);
    let o = s.run(&["settle", "M"]);
    assert_eq!(o.code, 1, "{}\n{}", o.stdout, o.stderr);
    assert!(
        o.stdout.contains("parse-server/1 config-changed exit=1"),
        "{}",
        o.stdout
    );
    assert!(
        o.stderr
            .contains("settle stopped: unit parse-server/1: hook failed: \"config-changed\""),
        "{}",
        o.stderr
    );
    assert_eq!(
        read(&u[1], "app-set.err"),
        "ERROR cannot write relation settings\n"
    );
    // Its other changes of that hook are discarded; the leader's are committed.
    let m = s.model();
    let bags = &m["relations"]["0"]["unit_bags"];
    assert_eq!(bags["parse-server/0"]["mine"], "parse-server/0");
    assert!(bags["parse-server/1"].get("mine").is_none(), "{bags}");
    assert_eq!(m["relations"]["0"]["app_bag"]["by"], "parse-server/0");
    let st = s.status();
    let u1 = &st["applications"]["parse-server"]["units"]["parse-server/1"];
    assert_eq!(u1["juju-status"]["current"], "error");
    assert_eq!(
        u1["juju-status"]["message"],
        "hook failed: \"config-changed\""
    );
    assert_eq!(u1["workload-status"]["current"], "error");
    assert_eq!(u1["open-ports"], serde_json::json!([]));
    let u0 = &st["applications"]["parse-server"]["units"]["parse-server/0"];
    assert_eq!(u0["open-ports"], serde_json::json!(["1337/tcp"]));
    assert_eq!(
        st["applications"]["parse-server"]["application-status"]["current"],
        "error"
    );
    // Its queue waits (the failed hook first); the other unit carries on.
    let ev = s.events();
    assert_eq!(ev[0]["unit"], "parse-server/1");
    assert_eq!(ev[0]["hook"], "config-changed");
    let o = s.run(&["settle", "M"]);
    assert_eq!(o.code, 1);
    assert!(
        o.stderr
            .contains("not settled: units in error: parse-server/1"),
        "{}",
        o.stderr
    );
    assert!(!hook_names(&u[1]).contains(&"start".to_string()));
    // Fix the charm, resolve: the failed hook is retried, then the rest of its queue.
    s.handler(
        "config-changed",
        "relation-set -r cluster:0 mine=$JUJU_UNIT_NAME\n",
    );
    assert_eq!(s.run(&["resolve", "M", "parse-server/0"]).code, 1);
    s.ok(&["resolve", "M", "parse-server/1"]);
    let out = s.settle();
    assert!(
        out.starts_with("parse-server/1 config-changed exit=0\nparse-server/1 start exit=0\n"),
        "{out}"
    );
    assert_eq!(
        s.model()["relations"]["0"]["unit_bags"]["parse-server/1"]["mine"],
        "parse-server/1"
    );
    // --no-retry skips the failed hook.
    s.handler("update-status", "exit 3\n");
    let dir = u[0].to_str().unwrap();
    assert_eq!(s.run(&["hook", dir, "update-status"]).code, 3);
    s.ok(&["config", "M", "port=1"]);
    s.handler("config-changed", "exit 4\n");
    assert_eq!(s.run(&["settle", "M"]).code, 1);
    s.ok(&["resolve", "M", "parse-server/0", "--no-retry"]);
    s.no_handler("config-changed");
    s.settle();
    assert!(s.events().is_empty());
}

#[test]
fn add_unit_runs_the_documented_sequence_and_joins_both_ways() {
    let s = Sim::new("addunit");
    let u = s.add_units(2);
    assert_eq!(
        s.ok(&["relate", "M", "database", "mongodb"]),
        "database:1\n"
    );
    s.ok(&[
        "remote-set",
        "M",
        "database:1",
        "mongodb/0",
        "endpoints=10.0.1.1",
    ]);
    s.settle();
    let out = s.ok(&["add-unit", "M"]);
    assert!(out.starts_with("parse-server/2 "), "{out}");
    let new = PathBuf::from(out.trim_end().split_once(' ').unwrap().1);
    s.settle();
    assert_eq!(
        hooks(&new),
        vec![
            "install||<unset>|<unset>|||",
            "cluster-relation-created|cluster:0||parse-server|||",
            "database-relation-created|database:1||mongodb|||",
            "leader-settings-changed||<unset>|<unset>|||",
            "config-changed||<unset>|<unset>|||",
            "start||<unset>|<unset>|||",
            "database-relation-joined|database:1|mongodb/0|mongodb|||",
            "database-relation-changed|database:1|mongodb/0|mongodb|||",
            "cluster-relation-joined|cluster:0|parse-server/0|parse-server|||",
            "cluster-relation-changed|cluster:0|parse-server/0|parse-server|||",
            "cluster-relation-joined|cluster:0|parse-server/1|parse-server|||",
            "cluster-relation-changed|cluster:0|parse-server/1|parse-server|||",
        ]
    );
    for d in &u {
        let tail: Vec<String> = hooks(d).iter().rev().take(2).rev().cloned().collect();
        assert_eq!(
            tail,
            vec![
                "cluster-relation-joined|cluster:0|parse-server/2|parse-server|||",
                "cluster-relation-changed|cluster:0|parse-server/2|parse-server|||",
            ]
        );
    }
    // The first unit of all became leader.
    assert_eq!(
        hook_names(&u[0])[..3],
        ["install", "cluster-relation-created", "leader-elected"]
    );
    let m = s.model();
    assert_eq!(
        m["relations"]["1"]["unit_bags"]["parse-server/2"]["private-address"],
        "10.0.0.12"
    );
}

#[test]
fn removing_the_leader_elects_the_lowest_alive_unit() {
    let s = Sim::new("remove");
    s.handler(
        "leader-elected",
        "is-leader --format=json > \"$U/elected\"\n",
    );
    s.handler(
        "cluster-relation-departed",
        "relation-list --format=json >> \"$U/departed-lists\"\n",
    );
    let u = s.add_units(3);
    s.ok(&["relate", "M", "database", "mongodb"]);
    s.ok(&["remote-set", "M", "database:1", "mongodb/0"]);
    s.settle();
    s.ok(&["remove-unit", "M", "parse-server/0"]);
    assert_eq!(s.run(&["remove-unit", "M", "parse-server/0"]).code, 1);
    let before = hooks(&u[0]).len();
    s.settle();
    let teardown: Vec<String> = hooks(&u[0])[before..].to_vec();
    assert_eq!(
        teardown,
        vec![
            "cluster-relation-departed|cluster:0|parse-server/1|parse-server|parse-server/0||",
            "cluster-relation-departed|cluster:0|parse-server/2|parse-server|parse-server/0||",
            "cluster-relation-broken|cluster:0||parse-server|||",
            "database-relation-departed|database:1|mongodb/0|mongodb|parse-server/0||",
            "database-relation-broken|database:1||mongodb|||",
            "stop||<unset>|<unset>|||",
            "remove||<unset>|<unset>|||",
        ]
    );
    assert_eq!(read(&u[0], "departed-lists"), "[\"parse-server/2\"]\n[]\n");
    assert_eq!(read(&u[1], "elected"), "true\n");
    for d in &u[1..] {
        assert!(hooks(d).contains(
            &"cluster-relation-departed|cluster:0|parse-server/0|parse-server|parse-server/0||"
                .to_string()
        ));
    }
    assert!(hook_names(&u[2]).contains(&"leader-settings-changed".to_string()));
    assert!(!hook_names(&u[2]).contains(&"leader-elected".to_string()));
    let m = s.model();
    assert_eq!(m["leader"], "parse-server/1");
    assert!(m["units"].get("parse-server/0").is_none());
    for r in ["0", "1"] {
        assert!(m["relations"][r]["unit_bags"]
            .get("parse-server/0")
            .is_none());
        assert!(m["relations"][r]["views"].get("parse-server/0").is_none());
    }
    // The departed peer is gone from the others' relation-list.
    assert_eq!(read(&u[2], "departed-lists"), "[\"parse-server/1\"]\n");
}

#[test]
fn database_relation_permissions_and_remote_side_events() {
    let s = Sim::new("database");
    s.handler(
        "database-relation-created",
        r#"if [ "$(is-leader --format=json)" = true ]; then
  relation-set --app database=parse 'requested-secrets=["username","password"]'
fi
"#,
    );
    s.handler(
        "database-relation-changed",
        r#"relation-get --format=json - > "$U/seen-$JUJU_REMOTE_UNIT-x.json" 2>&1 || true
relation-get --format=json --app - parse-server > "$U/own-app.json" 2> "$U/own-app.err" || echo $? > "$U/own-app.rc"
relation-set endpoint-seen=yes
"#,
    );
    let u = s.add_units(3);
    assert_eq!(
        s.ok(&["relate", "M", "database", "mongodb"]),
        "database:1\n"
    );
    s.settle();
    s.ok(&[
        "remote-app-set",
        "M",
        "database:1",
        "endpoints=10.0.1.1,10.0.1.2",
        "database=parse",
    ]);
    let ev = s.events();
    assert_eq!(ev.len(), 3);
    assert!(ev
        .iter()
        .all(|e| e["hook"] == "database-relation-changed" && e["remote-unit"] == ""));
    s.settle();
    for d in &u {
        assert!(hooks(d).contains(&"database-relation-changed|database:1||mongodb|||".to_string()));
        // JUJU_REMOTE_UNIT="": the remote app bag.
        let seen = json_file(d, "seen--x.json");
        assert_eq!(seen["database"], "parse");
    }
    assert_eq!(json_file(&u[0], "own-app.json")["database"], "parse");
    for d in &u[1..] {
        assert_eq!(read(d, "own-app.rc"), "1\n");
        assert_eq!(read(d, "own-app.err"), "ERROR permission denied\n");
    }
    // Writes on a non-peer relation go to the remote side: nothing queued on ours.
    assert!(s.events().is_empty());
    let m = s.model();
    assert_eq!(
        m["relations"]["1"]["app_bag"]["requested-secrets"],
        "[\"username\",\"password\"]"
    );
    assert_eq!(
        m["relations"]["1"]["unit_bags"]["parse-server/2"]["endpoint-seen"],
        "yes"
    );
    // A remote unit joins (-joined then -changed everywhere), changes, leaves; then removal.
    s.ok(&["remote-set", "M", "database:1", "mongodb/0", "x=1"]);
    s.ok(&["remote-set", "M", "database:1", "mongodb/0", "x=2"]);
    let ev = s.events();
    assert_eq!(count(&ev, |e| e["hook"] == "database-relation-joined"), 3);
    assert_eq!(
        count(&ev, |e| e["hook"] == "database-relation-changed"),
        3,
        "coalesced: {ev:?}"
    );
    assert_eq!(
        s.run(&["remote-set", "M", "database:1", "haproxy/0", "x=1"])
            .code,
        2,
        "a unit of another application"
    );
    s.settle();
    s.ok(&["remote-leave", "M", "database:1", "mongodb/0"]);
    s.settle();
    assert!(hooks(&u[2]).contains(
        &"database-relation-departed|database:1|mongodb/0|mongodb|mongodb/0||".to_string()
    ));
    s.ok(&["relation-break", "M", "database:1"]);
    s.settle();
    for d in &u {
        assert_eq!(hook_names(d).last().unwrap(), "database-relation-broken");
    }
    assert!(s.model()["relations"].get("1").is_none());
    // Peer relations cannot be removed or written from the remote side.
    assert_eq!(s.run(&["relation-break", "M", "cluster:0"]).code, 2);
    assert_eq!(s.run(&["remote-app-set", "M", "cluster:0", "a=b"]).code, 2);
    assert_eq!(s.run(&["relate", "M", "cluster", "x"]).code, 2);
}

#[test]
fn application_secret_shared_by_the_leader() {
    let s = Sim::new("appsecret");
    s.handler(
        "leader-elected",
        r#"uri=$(secret-add --label parse-server.app master-key=k1-s3cret)
relation-set -r cluster:0 --app secret-id=$uri
"#,
    );
    s.handler(
        "cluster-relation-changed",
        r#"[ -n "$JUJU_REMOTE_UNIT" ] && exit 0
uri=$(relation-get -r cluster:0 --app secret-id parse-server)
secret-get --format=json "$uri" > "$U/by-uri.json"
secret-get --format=json --label parse-server.app > "$U/by-label.json"
secret-get --format=json "$uri" --label parse-server.app 2> "$U/both.err" || echo $? > "$U/both.rc"
"#,
    );
    s.handler(
        "update-status",
        r#"uri=$(relation-get -r cluster:0 --app secret-id parse-server)
secret-set "$uri" master-key=k2-s3cret
"#,
    );
    s.handler(
        "secret-changed",
        r#"secret-get --format=json "$JUJU_SECRET_ID" > "$U/plain.json"
secret-get --format=json "$JUJU_SECRET_ID" --peek > "$U/peek.json"
secret-get --format=json "$JUJU_SECRET_ID" > "$U/plain-again.json"
secret-get --format=json --label "$JUJU_SECRET_LABEL" --refresh > "$U/refresh.json"
secret-get --format=json "$JUJU_SECRET_ID" > "$U/after.json"
"#,
    );
    let u = s.add_units(3);
    s.settle();
    for d in &u[1..] {
        assert_eq!(json_file(d, "by-uri.json")["master-key"], "k1-s3cret");
        assert_eq!(json_file(d, "by-label.json")["master-key"], "k1-s3cret");
        assert_eq!(read(d, "both.rc"), "1\n");
        assert_eq!(
            read(d, "both.err"),
            "ERROR only unit leaders can update an application owned secret label\n"
        );
    }
    // A non-leader cannot manage it.
    s.handler(
        "update-status",
        r#"uri=$(relation-get -r cluster:0 --app secret-id parse-server)
if [ "$(is-leader --format=json)" = false ]; then
  secret-set "$uri" master-key=nope 2> "$U/set.err" || echo $? > "$U/set.rc"
  exit 0
fi
secret-set "$uri" master-key=k2-s3cret
"#,
    );
    unit(&u[2]).hook("update-status", &[]);
    assert_eq!(read(&u[2], "set.rc"), "1\n");
    assert!(s.events().is_empty());
    // The leader rotates: the non-leaders (tracking revision 1) get secret-changed, not it.
    unit(&u[0]).hook("update-status", &[]);
    let ev = s.events();
    assert_eq!(ev.len(), 2, "{ev:?}");
    for (e, unit) in ev.iter().zip(["parse-server/1", "parse-server/2"]) {
        assert_eq!(e["unit"], unit);
        assert_eq!(e["hook"], "secret-changed");
        assert_eq!(e["secret-label"], "parse-server.app");
    }
    s.settle();
    for d in &u[1..] {
        let line = hooks(d).last().unwrap().clone();
        assert!(
            line.starts_with("secret-changed||<unset>|<unset>||secret:"),
            "{line}"
        );
        assert!(line.ends_with("|parse-server.app"), "{line}");
        assert_eq!(json_file(d, "plain.json")["master-key"], "k1-s3cret");
        assert_eq!(json_file(d, "peek.json")["master-key"], "k2-s3cret");
        assert_eq!(json_file(d, "plain-again.json")["master-key"], "k1-s3cret");
        assert_eq!(json_file(d, "refresh.json")["master-key"], "k2-s3cret");
        assert_eq!(json_file(d, "after.json")["master-key"], "k2-s3cret");
    }
    assert!(!hook_names(&u[0]).contains(&"secret-changed".to_string()));
    let m = s.model();
    let id = m["secrets"]
        .as_object()
        .unwrap()
        .keys()
        .next()
        .unwrap()
        .clone();
    assert_eq!(
        m["units"]["parse-server/1"]["secret_tracking"][&id]["revision"],
        2
    );
    assert_eq!(
        m["units"]["parse-server/0"]["secret_tracking"][&id]["revision"],
        1
    );
    // Content never lands in the tool-call logs; reveal shows it on request.
    for d in &u {
        let log = read(d, "tool-calls.log");
        assert!(
            !log.contains("k1-s3cret") && !log.contains("k2-s3cret"),
            "{log}"
        );
    }
    assert_eq!(
        s.ok(&[
            "secret-reveal",
            "M",
            "parse-server.app",
            "--key",
            "master-key"
        ]),
        "k2-s3cret\n"
    );
    assert!(!s.ok(&["status", "M", "--format=json"]).contains("s3cret"));
}

#[test]
fn remote_secret_granted_to_the_database_relation() {
    let s = Sim::new("remotesecret");
    s.handler(
        "database-relation-changed",
        r#"uri=$(relation-get --app secret-user mongodb)
[ -n "$uri" ] || exit 0
if secret-get --label db-user > /dev/null 2>&1; then
  secret-get --format=json --label db-user > "$U/db.json"
else
  secret-get --format=json "$uri" --label db-user > "$U/db.json"
fi
"#,
    );
    s.handler(
        "secret-changed",
        r#"secret-get --format=json --label "$JUJU_SECRET_LABEL" > "$U/plain.json"
secret-get --format=json --label "$JUJU_SECRET_LABEL" --refresh > "$U/refresh.json"
"#,
    );
    let u = s.add_units(3);
    s.ok(&["relate", "M", "database", "mongodb"]);
    s.settle();
    let uri = s.ok(&[
        "remote-secret-add",
        "M",
        "--grant",
        "database:1",
        "username=relation-1",
        "password=pw1-s3cret",
    ]);
    let uri = uri.trim_end().to_string();
    assert!(uri.starts_with("secret:") && uri.len() == 27, "{uri}");
    s.ok(&[
        "remote-app-set",
        "M",
        "database:1",
        &format!("secret-user={uri}"),
        "database=parse",
    ]);
    s.settle();
    for d in &u {
        assert_eq!(json_file(d, "db.json")["password"], "pw1-s3cret");
    }
    let m = s.model();
    let id = uri.strip_prefix("secret:").unwrap();
    for n in 0..3 {
        let t = &m["units"][format!("parse-server/{n}")]["secret_tracking"][id];
        assert_eq!(
            (t["revision"].as_u64(), t["label"].as_str()),
            (Some(1), Some("db-user"))
        );
    }
    // A new revision: every consuming unit gets secret-changed with its own label.
    s.ok(&[
        "remote-secret-set",
        "M",
        &uri,
        "username=relation-1",
        "password=pw2-s3cret",
    ]);
    let ev = s.events();
    assert_eq!(ev.len(), 3);
    assert!(ev.iter().all(|e| e["hook"] == "secret-changed"
        && e["secret-id"] == uri.as_str()
        && e["secret-label"] == "db-user"));
    // Same content again: no revision, nothing queued twice.
    s.ok(&[
        "remote-secret-set",
        "M",
        &uri,
        "username=relation-1",
        "password=pw2-s3cret",
    ]);
    assert_eq!(s.events().len(), 3);
    s.settle();
    for d in &u {
        assert_eq!(json_file(d, "plain.json")["password"], "pw1-s3cret");
        assert_eq!(json_file(d, "refresh.json")["password"], "pw2-s3cret");
        assert!(!read(d, "tool-calls.log").contains("s3cret"));
    }
    // Only a remote application's secret can be set from the remote side; a grant needs a
    // relation with that application.
    assert_eq!(s.run(&["remote-secret-add", "M", "password=x"]).code, 2);
    assert_eq!(
        s.run(&[
            "remote-secret-add",
            "M",
            "--grant",
            "cluster:0",
            "password=x"
        ])
        .code,
        2
    );
    let o = s.run(&[
        "remote-secret-add",
        "M",
        "--grant",
        "database:1",
        "Bad=leaked-value",
    ]);
    assert_eq!(o.code, 2);
    assert!(!o.stderr.contains("leaked-value") && !o.stdout.contains("leaked-value"));
}

#[test]
fn user_secret_granted_to_the_application() {
    let s = Sim::new("usersecret");
    s.handler(
        "config-changed",
        r#"uri=$(config-get app-id)
case "$uri" in secret:*) ;; *) exit 0 ;; esac
if secret-get --format=json "$uri" --refresh > "$U/key.json" 2> "$U/err"; then :; else echo "$?" > "$U/code"; fi
"#,
    );
    s.handler(
        "secret-changed",
        r#"secret-get --format=json "$JUJU_SECRET_ID" > "$U/plain.json"
secret-get --format=json "$JUJU_SECRET_ID" --refresh > "$U/refresh.json"
"#,
    );
    let u = s.add_units(2);
    s.settle();
    let uri = s.ok(&["add-secret", "M", "parse-key", "master-key=k1-s3cret"]);
    let uri = uri.trim_end().to_string();
    assert!(uri.starts_with("secret:") && uri.len() == 27, "{uri}");
    // Not granted: every unit is refused, and no hook ran for the secret itself.
    s.ok(&["config", "M", &format!("app-id={uri}")]);
    s.settle();
    for d in &u {
        assert_eq!(read(d, "err").trim(), "ERROR permission denied");
    }
    // Granted (no hook runs for that): the next hook reads it.
    let before = s.events().len();
    s.ok(&["grant-secret", "M", "parse-key", "parse-server"]);
    assert_eq!(s.events().len(), before, "grant-secret runs no hook");
    for d in &u {
        let _ = std::fs::remove_file(d.join("err"));
    }
    s.ok(&["config", "M", "port=1338"]);
    s.settle();
    for d in &u {
        assert_eq!(json_file(d, "key.json")["master-key"], "k1-s3cret");
    }
    // A new revision: secret-changed on every unit that read it, the leader included.
    s.ok(&["update-secret", "M", &uri, "master-key=k2-s3cret"]);
    let ev = s.events();
    assert_eq!(ev.len(), 2, "{ev:?}");
    assert!(ev
        .iter()
        .all(|e| e["hook"] == "secret-changed" && e["secret-id"] == uri.as_str()));
    s.settle();
    for d in &u {
        assert_eq!(json_file(d, "plain.json")["master-key"], "k1-s3cret");
        assert_eq!(json_file(d, "refresh.json")["master-key"], "k2-s3cret");
        assert!(!read(d, "tool-calls.log").contains("s3cret"));
    }
    // Revoked, then removed: refused, then not found; no hook runs for either.
    s.ok(&["revoke-secret", "M", "parse-key", "parse-server"]);
    assert!(s.events().is_empty());
    s.ok(&["config", "M", "port=1339"]);
    s.settle();
    assert_eq!(read(&u[0], "err").trim(), "ERROR permission denied");
    s.ok(&["remove-secret", "M", &uri]);
    assert!(s.events().is_empty());
    s.ok(&["config", "M", "port=1340"]);
    s.settle();
    assert!(
        read(&u[0], "err").contains("not found"),
        "{}",
        read(&u[0], "err")
    );
    // Names follow Juju's rule; granting needs our application.
    assert_eq!(s.run(&["add-secret", "M", "Bad", "k=v"]).code, 2);
    assert_eq!(s.run(&["add-secret", "M", "dup", "key=v"]).code, 0);
    assert_eq!(s.run(&["add-secret", "M", "dup", "key=v"]).code, 1);
    assert_eq!(s.run(&["grant-secret", "M", "dup", "other-app"]).code, 1);
}

#[test]
fn settle_max_guards_against_event_loops() {
    let s = Sim::new("loop");
    let u = s.add_units(2);
    s.settle();
    // Each unit answers every peer change with a new write: an endless ping-pong.
    s.handler(
        "cluster-relation-changed",
        "relation-set -r cluster:0 n=$(date +%s%N)\n",
    );
    s.ok(&[
        "hook",
        u[0].to_str().unwrap(),
        "cluster-relation-changed",
        "-r",
        "cluster:0",
        "--remote-unit",
        "parse-server/1",
    ]);
    let o = s.run(&["settle", "M", "--max", "20"]);
    assert_eq!(o.code, 1);
    assert_eq!(o.stdout.lines().count(), 20);
    assert!(
        o.stderr
            .contains("20 hooks run and events are still queued"),
        "{}",
        o.stderr
    );
    assert!(o.stderr.contains("event loop"), "{}", o.stderr);
    assert_eq!(s.run(&["settle", "M", "--max", "x"]).code, 2);
}

#[test]
fn identical_pending_events_are_coalesced() {
    let s = Sim::new("coalesce");
    s.add_units(2);
    let n = s.events().len();
    // Both units already have config-changed pending (from add-unit).
    s.ok(&["config", "M", "port=1"]);
    s.ok(&["config", "M", "port=2"]);
    assert_eq!(s.events().len(), n);
    s.settle();
    s.ok(&["config", "M", "port=3"]);
    s.ok(&["config", "M", "port=4", "app-id=x"]);
    // Setting the current values again is no change.
    s.ok(&["config", "M", "port=4"]);
    let ev = s.events();
    assert_eq!(ev.len(), 2, "{ev:?}");
    assert!(ev.iter().all(|e| e["hook"] == "config-changed"));
    assert_eq!(s.ok(&["config", "M", "port"]), "4\n");
    assert_eq!(s.ok(&["config", "M"]), "{\"app-id\":\"x\",\"port\":4}\n");
    s.ok(&["config", "M", "--reset", "port,app-id"]);
    assert_eq!(s.ok(&["config", "M"]), "{\"port\":1337}\n");
    assert_eq!(s.run(&["config", "M", "nope=1"]).code, 2);
    assert_eq!(s.run(&["config", "M", "port=abc"]).code, 2);
    // What every unit's config-get returns.
    s.handler(
        "config-changed",
        "config-get --format=json > \"$U/config.json\"\n",
    );
    s.ok(&["config", "M", "app-id=shop"]);
    s.settle();
    let m = s.model();
    for n in 0..2 {
        let d = PathBuf::from(
            m["units"][format!("parse-server/{n}")]["dir"]
                .as_str()
                .unwrap(),
        );
        assert_eq!(
            read(&d, "config.json"),
            "{\"app-id\":\"shop\",\"port\":1337}\n"
        );
    }
}

#[test]
fn leadership_change_and_leader_settings() {
    let s = Sim::new("leader");
    let u = s.add_units(3);
    s.settle();
    s.ok(&["set-leader", "M", "parse-server/2"]);
    let ev = s.events();
    assert_eq!(
        ev.iter()
            .map(|e| format!(
                "{} {}",
                e["unit"].as_str().unwrap(),
                e["hook"].as_str().unwrap()
            ))
            .collect::<Vec<_>>(),
        vec![
            "parse-server/2 leader-elected",
            "parse-server/0 leader-settings-changed",
            "parse-server/1 leader-settings-changed",
        ]
    );
    s.settle();
    s.ok(&["set-leader", "M", "parse-server/2"]);
    assert!(s.events().is_empty(), "already the leader");
    // leader-set is immediate and wakes the others; a non-leader is refused.
    s.handler("update-status", "leader-set k=v\n");
    assert_eq!(
        s.run(&["hook", u[0].to_str().unwrap(), "update-status"])
            .code,
        1
    );
    assert!(s.events().is_empty());
    unit(&u[2]).hook("update-status", &[]);
    let ev = s.events();
    assert_eq!(ev.len(), 2);
    assert!(ev
        .iter()
        .all(|e| e["hook"] == "leader-settings-changed" && e["unit"] != "parse-server/2"));
    s.handler(
        "leader-settings-changed",
        "leader-get --format=json > \"$U/leader.json\"\n",
    );
    s.settle();
    assert_eq!(read(&u[0], "leader.json"), "{\"k\":\"v\"}\n");
    assert_eq!(s.run(&["set-leader", "M", "parse-server/9"]).code, 2);
}

#[test]
fn single_unit_commands_on_model_units() {
    let s = Sim::new("single");
    let u = s.add_units(1);
    let d = u[0].to_str().unwrap();
    for args in [
        vec!["config", d, "port=1"],
        vec!["relate", d, "database", "mongodb"],
        vec!["set-leader", d, "false"],
        vec!["deploy", d],
    ] {
        let o = s.run(&args);
        assert_eq!(o.code, 2, "{args:?}");
        assert!(o.stderr.contains("belongs to the model"), "{}", o.stderr);
    }
    // Read-only unit views still work; `hook U` runs against the shared model.
    assert!(unit(Path::new(d))
        .sim_ok(&["status"])
        .contains("parse-server/0*"));
    s.handler(
        "update-status",
        "status-set --application active 'all good'\nstatus-set active ready\n",
    );
    unit(Path::new(d)).hook("update-status", &[]);
    let st = s.status();
    assert_eq!(
        st["applications"]["parse-server"]["application-status"],
        serde_json::json!({"current": "active", "message": "all good"})
    );
    assert_eq!(
        st["applications"]["parse-server"]["units"]["parse-server/0"]["workload-status"]["message"],
        "ready"
    );
    // `action U` too: the action sees the model and its committed writes wake the peers.
    s.add_units(1);
    s.settle();
    s.handler(
        "action-whoami",
        "action-set leader=$(is-leader --format=json) port=$(config-get port)\nrelation-set -r cluster:0 acted=yes\n",
    );
    let out = unit(&u[0]).sim_ok(&["action", "whoami"]);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["status"], "completed");
    assert_eq!(v["results"]["leader"], "true");
    assert_eq!(v["results"]["port"], "1337");
    let ev = s.events();
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0]["remote-unit"], "parse-server/0");
    s.settle();
    let table = s.ok(&["status", "M"]);
    assert!(table.contains("parse-server/0*  active"), "{table}");
    // Standalone unit dirs are untouched by all this.
    let solo = s.root.join("solo");
    s.ok(&[
        "init",
        solo.to_str().unwrap(),
        "--charm-dir",
        s.charm.to_str().unwrap(),
    ]);
    unit(&solo).config(&["port=2"]);
    assert_eq!(unit(&solo).sim_ok(&["config", "port"]), "2\n");
}

#[test]
fn a_prepared_unit_dir_is_adopted() {
    let s = Sim::new("adopt");
    // Stands for `jujusim deploy-charm U FILE.charm --unit parse-server/5 --address ...`.
    let prepared = s.root.join("machine-5");
    s.ok(&[
        "init",
        prepared.to_str().unwrap(),
        "--charm-dir",
        s.charm.to_str().unwrap(),
        "--unit",
        "parse-server/5",
        "--address",
        "192.0.2.5",
        "--exec-prefix",
        "[\"env\"]",
    ]);
    let out = s.ok(&["add-unit", "M", "--unit-dir", prepared.to_str().unwrap()]);
    assert_eq!(
        out,
        format!(
            "parse-server/5 {}\n",
            prepared.canonicalize().unwrap().display()
        )
    );
    let out = s.ok(&["add-unit", "M", "--address", "192.0.2.6"]);
    assert!(out.starts_with("parse-server/6 "), "{out}");
    assert_eq!(
        s.run(&["add-unit", "M", "--unit-dir", prepared.to_str().unwrap()])
            .code,
        2
    );
    s.handler(
        "install",
        "unit-get private-address > \"$U/address\"\necho \"$JUJU_MACHINE_ID\" > \"$U/machine\"\n",
    );
    s.settle();
    // The adopted unit keeps its exec prefix (its hooks ran through `env`) and address.
    assert_eq!(read(&prepared, "address"), "192.0.2.5\n");
    let m = s.model();
    let six = PathBuf::from(m["units"]["parse-server/6"]["dir"].as_str().unwrap());
    assert_eq!(read(&six, "address"), "192.0.2.6\n");
    assert_eq!(read(&six, "machine"), "6\n");
    let m = s.model();
    assert_eq!(m["leader"], "parse-server/5");
    assert_eq!(
        m["relations"]["0"]["unit_bags"]["parse-server/6"]["ingress-address"],
        "192.0.2.6"
    );
    let st = s.status();
    assert_eq!(
        st["applications"]["parse-server"]["units"]["parse-server/5"]["machine"],
        true
    );
}

#[test]
fn model_from_a_packed_charm() {
    let s = Sim::new("packed");
    let file = s.root.join("parse-server.charm");
    let st = Command::new("zip")
        .arg("-qr")
        .arg(&file)
        .arg(".")
        .current_dir(&s.charm)
        .status()
        .expect("zip (needed to pack the test charm)");
    assert!(st.success());
    let m2 = s.root.join("m2");
    let out = s.ok(&[
        "model-init",
        m2.to_str().unwrap(),
        "--charm",
        file.to_str().unwrap(),
        "--app",
        "parse",
    ]);
    assert_eq!(out, "cluster:0\n");
    assert_eq!(
        s.run(&["model-init", m2.to_str().unwrap(), "--charm-dir", "x"])
            .code,
        1
    );
    let out = s.ok(&["add-unit", m2.to_str().unwrap()]);
    assert!(out.starts_with("parse/0 "), "{out}");
    s.ok(&["settle", m2.to_str().unwrap()]);
    let help = s.ok(&["help"]);
    assert!(
        help.contains("add-unit M") && help.contains("settle M [--max N]"),
        "{help}"
    );
}

/// Puts a unit in machine mode, as `deploy-charm` on a booted machine does, without booting
/// one: `running` gives it an exec prefix (`env`, standing for `nsenter` into the machine),
/// otherwise none (what `machine-down` leaves).
fn set_machine(u: &Path, running: bool) {
    let file = u.join("state.json");
    let mut st: Value = serde_json::from_str(&read(u, "state.json")).unwrap();
    st["machine_mode"] = Value::Bool(true);
    st["exec_prefix"] = if running {
        serde_json::json!(["env"])
    } else {
        Value::Null
    };
    std::fs::write(file, serde_json::to_string_pretty(&st).unwrap()).unwrap();
}

#[test]
fn events_of_a_unit_whose_machine_is_down_wait_for_it() {
    let s = Sim::new("machinedown");
    let u0 = s.add_units(1).remove(0);
    let out = s.ok(&["add-unit", "M", "--exec-prefix", "[\"env\"]"]);
    let u1 = PathBuf::from(out.trim_end().split_once(' ').unwrap().1);
    set_machine(&u1, true);
    // The real command on a unit whose machine is not running: it drops the exec prefix.
    let o = s.run(&["machine-down", u1.to_str().unwrap()]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(o.stderr.contains("is not running"), "{}", o.stderr);
    let waiting = count(&s.events(), |e| e["unit"] == "parse-server/1");
    assert!(waiting >= 4, "install .. start are queued: {waiting}");

    // settle runs everything else, succeeds, and names the unit whose events wait.
    let o = s.run(&["settle", "M"]);
    assert_eq!(o.code, 0, "{}\n{}", o.stdout, o.stderr);
    assert!(
        o.stdout.contains("parse-server/0 start exit=0"),
        "{}",
        o.stdout
    );
    assert!(
        !o.stdout.lines().any(|l| l.starts_with("parse-server/1 ")),
        "{}",
        o.stdout
    );
    let line = format!("parse-server/1: its machine is not running; {waiting} events wait for it");
    assert_eq!(
        o.stderr.lines().filter(|l| l.starts_with(&line)).count(),
        1,
        "{}",
        o.stderr
    );
    assert!(hooks(&u1).is_empty(), "{:?}", hooks(&u1));
    let ev = s.events();
    assert_eq!(ev.len(), waiting);
    assert_eq!(ev[0]["hook"], "install");
    let st = s.status();
    let unit1 = &st["applications"]["parse-server"]["units"]["parse-server/1"];
    assert_ne!(unit1["juju-status"]["current"], "error", "{unit1}");

    // Again: nothing to run, the same line; new events of the live unit run, `--max 1`
    // included (the waiting events are not runnable, so none is "still queued").
    let o = s.run(&["settle", "M"]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(o.stderr.contains(&line), "{}", o.stderr);
    s.ok(&["config", "M", "port=5"]);
    let o = s.run(&["settle", "M", "--max", "1"]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert_eq!(o.stdout, "parse-server/0 config-changed exit=0\n");
    assert!(
        o.stderr.contains(&line),
        "its config-changed coalesced: {}",
        o.stderr
    );
    let before = hooks(&u0).len();

    // The machine runs again: the next settle runs its events, oldest first.
    s.handler(
        "start",
        "relation-set -r cluster:0 started=$JUJU_UNIT_NAME\n",
    );
    set_machine(&u1, true);
    let o = s.run(&["settle", "M"]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(!o.stderr.contains("not running"), "{}", o.stderr);
    let names = hook_names(&u1);
    assert_eq!(names[0], "install");
    assert!(names.contains(&"start".to_string()), "{names:?}");
    assert_eq!(
        names.iter().filter(|h| *h == "config-changed").count(),
        1,
        "{names:?}"
    );
    assert!(s.events().is_empty());
    // The live unit hears of what the returning unit published.
    assert_eq!(
        hooks(&u0)[before..],
        ["cluster-relation-changed|cluster:0|parse-server/1|parse-server|||"]
    );
}

#[test]
fn attach_resource_reaches_every_unit_and_those_added_later() {
    let s = Sim::new("attach");
    let u = s.add_units(2);
    s.settle();
    s.handler(
        "upgrade-charm",
        "cat \"$(resource-get bundle)\" >> \"$U/seen\"\n",
    );
    let v1 = s.root.join("v1");
    std::fs::write(&v1, "one\n").unwrap();
    s.ok(&["attach-resource", "M", "bundle", v1.to_str().unwrap()]);
    let queued: Vec<String> = s
        .events()
        .iter()
        .map(|e| {
            format!(
                "{} {}",
                e["unit"].as_str().unwrap(),
                e["hook"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        queued,
        [
            "parse-server/0 upgrade-charm",
            "parse-server/0 config-changed",
            "parse-server/0 start",
            "parse-server/1 upgrade-charm",
            "parse-server/1 config-changed",
            "parse-server/1 leader-settings-changed",
            "parse-server/1 start",
        ]
    );
    s.settle();
    for d in &u {
        assert_eq!(read(d, "seen"), "one\n");
    }
    // A new revision is a new file: the unit reads the new content.
    let v2 = s.root.join("v2");
    std::fs::write(&v2, "two\n").unwrap();
    s.ok(&["attach-resource", "M", "bundle", v2.to_str().unwrap()]);
    s.settle();
    assert_eq!(read(&u[1], "seen"), "one\ntwo\n");
    // A unit added later has the latest revision from its first hook.
    s.handler("install", "cat \"$(resource-get bundle)\" > \"$U/seen\"\n");
    let new = s.add_units(1);
    s.settle();
    assert_eq!(read(&new[0], "seen"), "two\n");
    // Undeclared names and model-unit bypasses are refused.
    let o = s.run(&["attach-resource", "M", "nope", v2.to_str().unwrap()]);
    assert_ne!(o.code, 0);
    assert!(
        o.stderr.contains("not declared in metadata.yaml"),
        "{}",
        o.stderr
    );
    let o = s.run(&[
        "attach-resource",
        u[0].to_str().unwrap(),
        "bundle",
        v2.to_str().unwrap(),
    ]);
    assert_ne!(o.code, 0);
    assert!(o.stderr.contains("attach-resource M"), "{}", o.stderr);
}
