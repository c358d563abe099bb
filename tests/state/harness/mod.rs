//! The state-transition harness: a test states the Juju side (config, leadership, relations
//! and their databags, secrets, opened ports), the machine (service running or not, what
//! parse-server does with a configuration, ports held, memory) and the providers (database
//! up or down, what MongoDB, PostgreSQL and haproxy publish), names ONE hook as Juju names
//! it, and asserts on the state the hook leaves. The hook runs through `Charm` with
//! in-memory hook tools, service manager and probes over a scratch root; its context is
//! built by `JujuContext::from_env` from the environment Juju would give it, as `main` does.
//! No root, Node, Java or database; milliseconds.
//!
//! Split by what it fakes:
//! - `juju.rs`: the hook's environment (`On`), the consistency checker (a scenario Juju
//!   cannot produce is refused before the hook runs), the hook tools, relations, secrets,
//!   statuses;
//! - `machine.rs`: the scratch root, the installed release, the service manager, ports held
//!   by other processes, the machine's size and the processes' memory, the clock;
//! - `providers.rs`: the database's answers and what each provider charm publishes.
//!
//! Juju's transaction rule is kept: relation data, ports and secrets a hook changes are kept
//! only when it succeeds; status and logs stay whatever happens.
#![allow(dead_code)]

mod juju;
mod machine;
mod providers;

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

use parse_server_charm::charm::{Charm, Timeouts};
use parse_server_charm::juju::{CachedTools, Databag, JujuContext, Status, StatusKind};
use parse_server_charm::workload::database::DbError;
use parse_server_charm::workload::paths::Paths;
use parse_server_charm::workload::sizing::Machine;
use serde_json::Value;

pub use juju::{check, On, Rel, Secret};
pub use machine::install_release;
pub use providers::Db;

use juju::OwnWrites;

pub const UNIT: &str = "parse-server/0";
/// The restart grant's lease in these tests (the charm's own default).
pub const GRANT_LEASE: Duration = Duration::from_secs(240);
pub const VERSION: &str = "9.10.0";

/// The unit's world between two hooks: the Juju side, the machine and the providers.
pub struct World {
    pub root: PathBuf,
    /// The application's name (`parse-server` unless a test deploys it under another);
    /// the unit is its unit 0.
    pub app: String,

    // Juju (juju.rs).
    pub config: BTreeMap<String, Value>,
    pub leader: bool,
    pub relations: BTreeMap<String, Rel>,
    /// Juju never reuses a relation id.
    pub next_relation_id: u32,
    pub ports: BTreeSet<String>,
    /// Every status-set, in order.
    pub statuses: Vec<Status>,
    /// Secrets by URI: this application's own and those providers granted.
    pub secrets: BTreeMap<String, Secret>,
    /// Secrets whose `secret-get` is refused.
    pub unreadable_secrets: BTreeSet<String>,
    /// Attached resources: name -> the file `resource-get` names (absent: it fails).
    pub resources: BTreeMap<String, PathBuf>,
    /// How many times the charm loaded Cloud Code outside the service.
    pub cloud_code_checks: u32,
    /// Units enabled and started with `systemctl enable --now` (the job timer).
    pub timers: BTreeSet<String>,
    /// The running action's parameters (`action-get`).
    pub action_params: BTreeMap<String, Value>,
    pub logs: Vec<String>,
    /// Hook-tool writes and service-manager calls, in order (`relation-set mongodb:0`,
    /// `restart`, `daemon-reload`…).
    pub calls: Vec<String>,
    /// Read-only hook-tool calls, by tool and argument.
    pub reads: RefCell<BTreeMap<String, usize>>,
    /// Every hook-tool call that reached the agent (after the charm's own cache), by tool,
    /// in order.
    pub tool_calls: RefCell<Vec<&'static str>>,
    pub action_results: Option<Databag>,
    pub action_failed: Option<String>,
    pub public_address: String,
    pub ingress_address: Option<String>,
    /// What only this unit (or, while it leads, its application) wrote, as the last hook
    /// left it: nothing else may change it before the next hook.
    pub(crate) own_writes: Option<OwnWrites>,

    // The machine (machine.rs).
    pub active: bool,
    pub enabled: bool,
    /// The option file the running process read at its last (re)start.
    pub running_config: Option<String>,
    pub restarts: u32,
    /// `systemctl restart` itself fails.
    pub restart_fails: bool,
    /// Whether parse-server starts with an option file (default: unless it holds
    /// `"defaultLimit": 0`, a value real parse-server refuses at start-up).
    pub starts_ok: fn(&str) -> bool,
    /// Ports another process listens on.
    pub held_ports: BTreeSet<u16>,
    /// The machine the unit runs on.
    pub machine: Machine,
    /// The clock (seconds since the epoch) the charm reads.
    pub now: u64,

    // The providers (providers.rs).
    pub db: Db,
    /// PostgreSQL: whether PostGIS is installed (the probe's answer).
    pub postgis: bool,
    /// Every database URI the probe was asked about (the last one is what renders), and
    /// the TLS CA it was given with it.
    pub probed_uris: RefCell<Vec<String>>,
    pub probed_cas: RefCell<Vec<Option<String>>>,
    /// The Redis `redis-url` names (the probe's answer), and every URL it was asked about.
    pub redis: Db,
    pub probed_redis: RefCell<Vec<String>>,
    /// Whether the Redis user may run scripts (Charmed Valkey's may not).
    pub redis_scripts: bool,
    /// The S3 store's answer to a `HEAD` of the bucket, and every (endpoint, bucket, access
    /// key) it was asked about.
    pub s3: Result<(), DbError>,
    pub probed_s3: RefCell<Vec<(String, String, String)>>,
}

fn default_starts_ok(config_json: &str) -> bool {
    !config_json.contains("\"defaultLimit\": 0")
}

impl World {
    /// A fresh unit: parse-server installed (release, Node and account present in a scratch
    /// root), nothing configured or running, a leader, the database up.
    pub fn new(tag: &str) -> World {
        World {
            root: machine::scratch_root(tag),
            app: "parse-server".into(),
            config: BTreeMap::new(),
            leader: true,
            relations: BTreeMap::new(),
            next_relation_id: 0,
            ports: BTreeSet::new(),
            statuses: Vec::new(),
            secrets: BTreeMap::new(),
            unreadable_secrets: BTreeSet::new(),
            resources: BTreeMap::new(),
            cloud_code_checks: 0,
            timers: BTreeSet::new(),
            action_params: BTreeMap::new(),
            logs: Vec::new(),
            calls: Vec::new(),
            reads: RefCell::new(BTreeMap::new()),
            tool_calls: RefCell::new(Vec::new()),
            action_results: None,
            action_failed: None,
            public_address: "10.0.0.10".into(),
            ingress_address: Some("10.0.0.10".into()),
            own_writes: None,
            active: false,
            enabled: false,
            running_config: None,
            restarts: 0,
            restart_fails: false,
            starts_ok: default_starts_ok,
            held_ports: BTreeSet::new(),
            machine: Machine {
                cpus: 1,
                memory_mib: 4096,
            },
            now: 1_800_000_000,
            db: Db::Up,
            postgis: true,
            probed_uris: RefCell::new(Vec::new()),
            probed_cas: RefCell::new(Vec::new()),
            redis: Db::Up,
            probed_redis: RefCell::new(Vec::new()),
            redis_scripts: true,
            s3: Ok(()),
            probed_s3: RefCell::new(Vec::new()),
        }
    }

    /// This unit's name.
    pub fn unit(&self) -> String {
        format!("{}/0", self.app)
    }

    pub fn paths(&self) -> Paths {
        Paths::new(&self.root)
    }
}

impl Drop for World {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// The hook tools, service manager and probes, all backed by one `World`.
pub struct Sim(pub RefCell<World>);

/// How a hook ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Exit {
    Ok,
    /// The hook failed (Juju shows `error` and retries).
    Error(String),
    /// The hook died at a checkpoint (a fault test's SIGKILL).
    Killed,
}

/// Runs one hook against `world`, as the unit agent would: the scenario is checked for
/// consistency first (a test that states what Juju cannot produce fails here), the context
/// is built from the hook's environment by `JujuContext::from_env`, and a hook that fails or
/// dies loses its relation data, port and secret changes.
pub fn run(world: World, on: impl Into<On>) -> (World, Exit) {
    let on = on.into();
    if let Err(why) = check(&world, &on) {
        panic!("inconsistent scenario for {}: {why}", on.name());
    }
    let env = world.env(&on);
    let ctx = JujuContext::from_env(&env, "dispatch")
        .unwrap_or_else(|e| panic!("{}: the charm refuses its environment: {e}", on.name()));
    let before = (
        world.relations.clone(),
        world.ports.clone(),
        world.secrets.clone(),
    );
    let paths = world.paths();
    // As on a unit: the hook tools remember a hook's reads.
    let sim = CachedTools::new(Sim(RefCell::new(world)));
    let timeouts = Timeouts {
        database: Duration::from_millis(10),
        health_after_start: Duration::ZERO,
        health_poll: Duration::ZERO,
        grant_lease: GRANT_LEASE,
    };
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let charm = Charm {
            ctx: &ctx,
            tools: &sim,
            service: sim.inner(),
            probes: sim.inner(),
            paths: paths.clone(),
            timeouts,
        };
        charm.run()
    }));
    let mut world = sim.into_inner().0.into_inner();
    let exit = match outcome {
        Ok(Ok(())) => Exit::Ok,
        Ok(Err(e)) => Exit::Error(format!("{e:#}")),
        Err(_) => Exit::Killed,
    };
    if exit != Exit::Ok {
        (world.relations, world.ports, world.secrets) = before;
    }
    world.own_writes = Some(OwnWrites::of(&world));
    (world, exit)
}

/// Runs one hook and asserts it succeeded.
pub fn hook(world: World, on: impl Into<On>) -> World {
    let (w, exit) = run(world, on);
    assert_eq!(exit, Exit::Ok, "last status {:?}", w.statuses.last());
    w
}

/// A unit deployed and serving on the mongodb relation: what most scenarios start from.
pub fn serving(tag: &str) -> World {
    let mut w = World::new(tag);
    w.set("app-id", "shop");
    w.relate_mongodb();
    let w = hook(w, "config-changed");
    w.assert_status(StatusKind::Active, "serving on port 1337");
    w
}

/// A value as a test message shows it: at most 40 characters, escaped.
pub fn short(v: &Value) -> String {
    let s = v.to_string();
    let cut: String = s.chars().take(40).collect();
    if cut.len() < s.len() {
        format!("{cut}…")
    } else {
        cut
    }
}
