//! The charm: one holistic `reconcile` for every hook but stop/remove, plus those two and the
//! actions. Reconcile reads every input (config, relations, Juju-held state, what is installed
//! and running), computes the files, port and status it wants, and changes only what differs.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};

use crate::config::{CharmConfig, ConfigError};
use crate::juju::{Databag, Event, HookTools, JujuContext, RelationKind, StatusKind};
use crate::relations::mongodb::{self, MongoRelation};
use crate::relations::website;
use crate::workload::files::{self, FileMode};
use crate::workload::parse_server::{self, Paths, ServiceSpec, SERVICE_UNIT, SERVICE_USER};
use crate::workload::systemd::ServiceManager;
use crate::workload::{database, node, user};

/// The endpoint names from metadata.yaml.
pub const MONGODB_ENDPOINT: &str = "mongodb";
pub const WEBSITE_ENDPOINT: &str = "website";

/// The Juju secret (owned by the application, so every unit reads the same key) holding the
/// generated master key, and its one content key.
pub const MASTER_KEY_SECRET: &str = "master-key";
const MASTER_KEY_FIELD: &str = "master-key";
/// Key of this unit's Juju-held state naming a rendering that failed to start.
const STATE_FAILED_RENDER: &str = "failed-render";

/// How long the charm waits for things outside it.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub database: Duration,
    pub health_after_start: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            database: Duration::from_secs(5),
            health_after_start: Duration::from_secs(90),
        }
    }
}

/// The outside world, injected.
pub struct Charm<'a> {
    pub ctx: &'a JujuContext,
    pub tools: &'a dyn HookTools,
    pub service: &'a dyn ServiceManager,
    pub paths: Paths,
    pub timeouts: Timeouts,
}

/// The status a reconcile ends in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub kind: StatusKind,
    pub message: String,
}

fn outcome(kind: StatusKind, message: impl Into<String>) -> Outcome {
    Outcome {
        kind,
        message: message.into(),
    }
}

/// The message for invalid options: every option named, with its reason.
pub fn config_errors_message(errors: &[ConfigError]) -> String {
    let parts: Vec<String> = errors.iter().map(ToString::to_string).collect();
    format!("invalid config: {}", parts.join("; "))
}

impl Charm<'_> {
    /// Handles the event the process was started for.
    pub fn run(&self) -> Result<()> {
        match &self.ctx.event {
            Event::Stop => self.stop(),
            Event::Remove => self.remove(),
            Event::Action(name) => self.action(name),
            _ => {
                let o = self.reconcile()?;
                self.tools.status_set(o.kind, &o.message)?;
                Ok(())
            }
        }
    }

    fn maintenance(&self, message: &str) -> Result<()> {
        self.tools
            .status_set(StatusKind::Maintenance, message)
            .map_err(Into::into)
    }

    fn log(&self, message: &str) {
        // Logging must never fail a hook.
        let _ = self.tools.log("INFO", message);
    }

    /// Computes and applies the desired state; returns the status to report.
    pub fn reconcile(&self) -> Result<Outcome> {
        let raw = self.tools.config_get()?;
        let config = match CharmConfig::from_raw(&raw, None) {
            Ok(c) => c,
            // Nothing is touched: whatever serves keeps serving.
            Err(errors) => return Ok(outcome(StatusKind::Blocked, config_errors_message(&errors))),
        };

        let version = config.parse_server_version.clone();
        let gid = match self.ensure_installed(&config) {
            Ok(gid) => gid,
            // Downloads fail for reasons outside the charm (network, mirror): say so and try
            // again at the next hook rather than fail this one.
            Err(e) => return Ok(download_failed(&e)),
        };
        let node = match self.node_for(&version, &config.node_mirror)? {
            Ok(node) => node,
            Err(o) => return Ok(o),
        };
        self.tools.application_version_set(&version)?;

        // Now that the release is installed, extra-options can be checked against its options.
        let known = parse_server::known_options(&self.paths, &version);
        let config = match CharmConfig::from_raw(&raw, known.as_ref()) {
            Ok(c) => c,
            Err(errors) => return Ok(outcome(StatusKind::Blocked, config_errors_message(&errors))),
        };

        let database_uri = match &config.database_uri {
            Some(uri) => uri.clone(),
            None => match self.mongodb_relation(&config)? {
                Ok(uri) => uri,
                Err(o) => return Ok(o),
            },
        };

        // A healthy answer from the configured endpoint means the service runs; only without
        // one is the service manager asked (the steady state needs no systemctl at all).
        let current_endpoint = parse_server::configured_endpoint(&self.paths);
        let healthy_now = current_endpoint
            .as_ref()
            .is_some_and(|(port, mount)| parse_server::health(*port, mount).is_ok());
        let running = healthy_now || self.service.is_active(SERVICE_UNIT)?;
        let serving_port = current_endpoint.filter(|_| running).map(|(port, _)| port);
        if serving_port != Some(config.port) && port_in_use(config.port) {
            return Ok(outcome(
                StatusKind::Blocked,
                format!(
                    "invalid config: port: {} is in use by another process",
                    config.port
                ),
            ));
        }

        let master_key = match self.master_key(&config)? {
            Ok(k) => k,
            Err(o) => return Ok(o),
        };
        let spec = ServiceSpec {
            app_id: config.app_id.clone(),
            master_key,
            database_uri: database_uri.clone(),
            port: config.port,
            mount_path: config.mount_path.clone(),
            public_server_url: self.public_server_url(&config)?,
            master_key_ips: config.master_key_ips.clone(),
            allow_client_class_creation: config.allow_client_class_creation,
            log_level: config.log_level.clone(),
            workers: effective_workers(config.workers),
            heap_mib: config.node_max_old_space_size,
            node,
            version: version.clone(),
            extra_options: config.extra_options.clone(),
        };
        let rendered = parse_server::render(&spec)?;
        let current = parse_server::current_files(&self.paths)?;
        let changed = current.as_ref() != Some(&rendered);

        // The database must answer before anything is (re)started; a running service is left
        // alone while it does not.
        if let Err(why) = database::check(&database_uri, self.timeouts.database) {
            return Ok(outcome(StatusKind::Waiting, why));
        }

        let render_hash = hash_of(&rendered);
        if changed && self.tools.state_get(STATE_FAILED_RENDER)?.as_deref() == Some(&render_hash) {
            return Ok(outcome(
                StatusKind::Blocked,
                "the configuration did not start before (see juju debug-log); \
                 serving the previous one: change the config to retry",
            ));
        }

        if changed || !running {
            self.maintenance(if running {
                "restarting parse-server"
            } else {
                "starting parse-server"
            })?;
            let changes = parse_server::write_files(&self.paths, &rendered, gid)?;
            if changes.unit {
                self.service.daemon_reload()?;
                self.service.enable(SERVICE_UNIT)?;
            }
            self.log(&format!(
                "(re)starting parse-server: files changed {changes:?}, was running {running}"
            ));
            if let Err(why) = self.restart_until_healthy(config.port, &config.mount_path)? {
                return self.roll_back(current, &rendered, &render_hash, &why, gid);
            }
            parse_server::remove_other_releases(&self.paths, &version)?;
        } else if !healthy_now {
            // Running but not (yet) answering: asked once more, since it may just have come up.
            if let Err(why) = parse_server::health(config.port, &config.mount_path) {
                self.sync_ports(Some(config.port))?;
                return Ok(outcome(
                    StatusKind::Waiting,
                    format!("parse-server is not healthy: {why}"),
                ));
            }
        }

        self.sync_ports(Some(config.port))?;
        self.publish_website(config.port)?;
        let workers = spec.workers;
        Ok(outcome(
            StatusKind::Active,
            format!(
                "serving on port {} at {}, {} worker{}, parse-server {}",
                config.port,
                config.mount_path,
                workers,
                if workers == 1 { "" } else { "s" },
                version
            ),
        ))
    }

    /// Restarts the service and waits for `<mount>/health`; `Err` is why it is not healthy.
    fn restart_until_healthy(&self, port: u16, mount_path: &str) -> Result<Result<(), String>> {
        self.service.restart(SERVICE_UNIT)?;
        let alive = || self.service.is_active(SERVICE_UNIT).unwrap_or(false);
        Ok(parse_server::wait_healthy(
            port,
            mount_path,
            self.timeouts.health_after_start,
            &alive,
        ))
    }

    /// Puts the last good files back after a new rendering failed to become healthy, and
    /// remembers the failed rendering so later hooks do not retry it in a loop.
    fn roll_back(
        &self,
        previous: Option<parse_server::Rendered>,
        failed: &parse_server::Rendered,
        failed_hash: &str,
        why: &str,
        gid: u32,
    ) -> Result<Outcome> {
        self.tools.state_set(&Databag::from([(
            STATE_FAILED_RENDER.to_owned(),
            failed_hash.to_owned(),
        )]))?;
        let Some(previous) = previous.filter(|p| p != failed) else {
            return Ok(outcome(
                StatusKind::Blocked,
                format!("parse-server did not start: {why} (see juju debug-log)"),
            ));
        };
        self.log(&format!(
            "new configuration failed ({why}); restoring the previous one"
        ));
        let changes = parse_server::write_files(&self.paths, &previous, gid)?;
        if changes.unit {
            self.service.daemon_reload()?;
        }
        let (port, mount_path) = parse_server::configured_endpoint(&self.paths)
            .context("the previous environment file names no port")?;
        let serving = match self.restart_until_healthy(port, &mount_path)? {
            Ok(()) => "serving the previous one".to_owned(),
            Err(again) => format!("the previous one did not start either ({again})"),
        };
        Ok(outcome(
            StatusKind::Blocked,
            format!("the new configuration did not start ({why}); {serving} (see juju debug-log)"),
        ))
    }

    /// Makes sure the service user and release `version` exist. Returns the service's gid.
    fn ensure_installed(&self, config: &CharmConfig) -> Result<u32> {
        let version = config.parse_server_version.as_str();
        let root = &self.paths.root;
        let (uid, gid) = match user::lookup(root, SERVICE_USER) {
            Some(ids) => ids,
            None => {
                self.maintenance("creating the parse-server user")?;
                user::ensure_system_user(root, SERVICE_USER, Paths::STATE_DIR)?
            }
        };
        let state_dir = self.paths.state_dir();
        if !state_dir.is_dir() {
            files::ensure_dir(
                &state_dir,
                FileMode {
                    mode: 0o750,
                    uid,
                    gid,
                },
            )?;
        }
        if !parse_server::is_installed(&self.paths, version) {
            let node = match self.any_node() {
                Some(n) => n,
                None => {
                    self.maintenance(&format!("installing Node.js {}", node::PINNED_NODE))?;
                    self.install_node(&config.node_mirror)?
                }
            };
            self.maintenance(&format!("installing parse-server {version}"))?;
            let lock_dir = self.ctx.charm_dir.join("npm").join(version);
            let lock_dir = lock_dir
                .join("package-lock.json")
                .is_file()
                .then_some(lock_dir);
            parse_server::install(
                &self.paths,
                version,
                &node,
                lock_dir.as_deref(),
                &self.ctx.proxy.env(),
            )
            .with_context(|| format!("installing parse-server {version}"))?;
            self.log(&format!("installed parse-server {version}"));
        }
        Ok(gid)
    }

    /// The charm's own Node if present, else one on PATH.
    fn any_node(&self) -> Option<PathBuf> {
        let own = self.paths.node_dir().join("bin/node");
        if own.is_file() {
            return Some(own);
        }
        node::find_node(self.ctx.path.as_deref().unwrap_or("/usr/bin:/bin")).map(|(p, _)| p)
    }

    fn install_node(&self, mirror: &str) -> Result<PathBuf> {
        node::install_pinned(
            mirror,
            &self.paths.node_dir(),
            &self.paths.charm_cache(),
            &self.ctx.proxy.env(),
        )
    }

    /// A Node that satisfies the release's `engines`, or the status to report instead.
    fn node_for(&self, version: &str, mirror: &str) -> Result<Result<PathBuf, Outcome>> {
        let range = parse_server::engines_node(&self.paths, version).unwrap_or_default();
        let cache = self.paths.charm_state().join("node-version");
        let fits = |p: &Path| -> bool {
            node::cached_node_version(p, &cache)
                .is_ok_and(|v| range.is_empty() || node::satisfies(v, &range))
        };
        if let Some(p) = self.any_node().filter(|p| fits(p)) {
            return Ok(Ok(p));
        }
        // The Node found does not fit: install the pinned one next to the release.
        if !self.paths.node_dir().join("bin/node").is_file() {
            self.maintenance(&format!("installing Node.js {}", node::PINNED_NODE))?;
            match self.install_node(mirror) {
                Ok(p) if fits(&p) => return Ok(Ok(p)),
                Ok(_) => {}
                Err(e) => return Ok(Err(download_failed(&e))),
            }
        }
        Ok(Err(outcome(
            StatusKind::Blocked,
            format!("parse-server {version} needs Node {range}; no such Node is installed"),
        )))
    }

    /// The MongoDB URI from the relation, or the status to report instead.
    fn mongodb_relation(&self, config: &CharmConfig) -> Result<Result<String, Outcome>> {
        let broken_now = match &self.ctx.event {
            Event::Relation {
                endpoint,
                kind: RelationKind::Broken,
            } if endpoint == MONGODB_ENDPOINT => self.ctx.relation_id.clone(),
            _ => None,
        };
        let ids: Vec<String> = self
            .tools
            .relation_ids(MONGODB_ENDPOINT)?
            .into_iter()
            .filter(|id| Some(id) != broken_now.as_ref())
            .collect();
        let Some(id) = ids.first() else {
            self.stop_serving()?;
            return Ok(Err(outcome(
                StatusKind::Blocked,
                "add a relation to mongodb (or set database-uri)",
            )));
        };
        let mut units = Vec::new();
        for unit in self.tools.relation_list(id)? {
            let bag = self.tools.relation_get(id, &unit)?;
            units.push((unit, bag));
        }
        match mongodb::relation_state(&units) {
            MongoRelation::Incomplete(why) => Ok(Err(outcome(StatusKind::Waiting, why))),
            MongoRelation::Ready {
                endpoints,
                rejected,
            } => {
                for r in rejected {
                    self.log(&format!("ignoring unusable mongodb relation data: {r}"));
                }
                Ok(Ok(mongodb::mongodb_uri(&endpoints, &config.database_name)))
            }
        }
    }

    /// The configured master key, else the application's generated one (a Juju secret the
    /// leader creates once). `Err(outcome)`: a non-leader waiting for the leader.
    fn master_key(&self, config: &CharmConfig) -> Result<Result<String, Outcome>> {
        if let Some(k) = &config.master_key {
            return Ok(Ok(k.clone()));
        }
        if let Some(k) = self
            .tools
            .secret_get(MASTER_KEY_SECRET)?
            .and_then(|mut c| c.remove(MASTER_KEY_FIELD))
        {
            return Ok(Ok(k));
        }
        if !self.tools.is_leader()? {
            return Ok(Err(outcome(
                StatusKind::Waiting,
                "waiting for the leader to generate the master key",
            )));
        }
        let key = generate_key()?;
        let root_only = |mode| FileMode {
            mode,
            uid: 0,
            gid: 0,
        };
        let scratch = self.paths.charm_state();
        files::ensure_dir(&scratch, root_only(0o700))?;
        let file = scratch.join("master-key.new");
        files::write_if_changed(&file, key.as_bytes(), root_only(0o600))?;
        let added = self.tools.secret_add_from_file(
            MASTER_KEY_SECRET,
            "Parse Server master key generated by the charm",
            MASTER_KEY_FIELD,
            &file,
        );
        let _ = std::fs::remove_file(&file);
        let uri = added?;
        self.log(&format!(
            "generated the master key: juju show-secret --reveal {uri}"
        ));
        Ok(Ok(key))
    }

    fn public_server_url(&self, config: &CharmConfig) -> Result<Option<String>> {
        if let Some(u) = &config.public_server_url {
            return Ok(Some(u.clone()));
        }
        let addr = self.tools.public_address()?;
        if addr.is_empty() {
            return Ok(None);
        }
        let host = if addr.contains(':') {
            format!("[{addr}]")
        } else {
            addr
        };
        Ok(Some(format!(
            "http://{host}:{}{}",
            config.port, config.mount_path
        )))
    }

    /// Opens `want` (closing any other port first), or closes everything for `None`.
    fn sync_ports(&self, want: Option<u16>) -> Result<()> {
        let opened = self.tools.opened_ports()?;
        let wanted = want.map(|p| format!("{p}/tcp"));
        for p in &opened {
            if Some(p) != wanted.as_ref() {
                if let Some(n) = p.strip_suffix("/tcp").and_then(|n| n.parse().ok()) {
                    self.tools.close_port(n)?;
                }
            }
        }
        if let (Some(port), Some(w)) = (want, wanted) {
            if !opened.contains(&w) {
                self.tools.open_port(port)?;
            }
        }
        Ok(())
    }

    /// Publishes `hostname`/`port` on every website relation whose databag lacks them.
    fn publish_website(&self, port: u16) -> Result<()> {
        let ids = self.tools.relation_ids(WEBSITE_ENDPOINT)?;
        if ids.is_empty() {
            return Ok(());
        }
        let Some(host) = self.tools.ingress_address(WEBSITE_ENDPOINT)? else {
            return Ok(());
        };
        let wanted = website::website_databag(&host, port);
        for id in ids {
            let current = self.tools.relation_get(&id, &self.ctx.unit_name)?;
            if !website::is_published(&current, &wanted) {
                self.tools.relation_set(&id, &wanted)?;
            }
        }
        Ok(())
    }

    /// Stops the service and closes its port (no database to serve from).
    fn stop_serving(&self) -> Result<()> {
        if self.service.is_active(SERVICE_UNIT)? {
            self.service.stop(SERVICE_UNIT)?;
            self.log("stopped parse-server: no database");
        }
        self.sync_ports(None)
    }

    fn stop(&self) -> Result<()> {
        if self.paths.unit_file().exists() {
            self.service.stop(SERVICE_UNIT)?;
            self.service.disable(SERVICE_UNIT)?;
        }
        self.sync_ports(None)?;
        self.maintenance("parse-server stopped")
    }

    fn remove(&self) -> Result<()> {
        self.stop()?;
        let _ = std::fs::remove_file(self.paths.unit_file());
        self.service.daemon_reload()?;
        for dir in [
            self.paths.config_dir(),
            self.paths.install_dir(),
            self.paths.state_dir(),
            self.paths.charm_state(),
            self.paths.charm_cache(),
        ] {
            if dir.exists() {
                std::fs::remove_dir_all(&dir)
                    .with_context(|| format!("removing {}", dir.display()))?;
            }
        }
        user::remove_system_user(&self.paths.root, SERVICE_USER)
    }

    fn action(&self, name: &str) -> Result<()> {
        match name {
            "get-master-key" => {
                let configured = self
                    .tools
                    .config_get()?
                    .get("master-key")
                    .and_then(|v| v.as_str())
                    .is_some_and(|s| !s.is_empty());
                // The key itself is never an action result: results travel to the hook tool
                // on its command line. The operator reveals the Juju secret instead.
                let results = if configured {
                    Databag::from([
                        ("source".to_owned(), "config".to_owned()),
                        (
                            "reveal".to_owned(),
                            "juju config parse-server master-key".to_owned(),
                        ),
                    ])
                } else {
                    match self.tools.secret_id(MASTER_KEY_SECRET)? {
                        Some(id) => Databag::from([
                            ("source".to_owned(), "generated".to_owned()),
                            ("secret-id".to_owned(), id.clone()),
                            (
                                "reveal".to_owned(),
                                format!("juju show-secret --reveal {id}"),
                            ),
                        ]),
                        // Only the owner (the leader) can look the secret up by label.
                        None if !self.tools.is_leader()? => {
                            self.tools.action_fail(
                                "run this action on the leader: juju run parse-server/leader get-master-key",
                            )?;
                            return Ok(());
                        }
                        None => {
                            self.tools.action_fail(
                                "no master key yet: the leader generates it on its next hook",
                            )?;
                            return Ok(());
                        }
                    }
                };
                self.tools.action_set(&results)?;
                Ok(())
            }
            other => {
                self.tools
                    .action_fail(&format!("unknown action {other:?}"))?;
                Ok(())
            }
        }
    }
}

/// Worker processes for `workers` (0 = one per CPU).
pub fn effective_workers(workers: u32) -> u32 {
    if workers == 0 {
        std::thread::available_parallelism().map_or(1, |n| n.get() as u32)
    } else {
        workers
    }
}

/// Whether another process holds `port` (a listener we cannot bind next to).
fn port_in_use(port: u16) -> bool {
    std::net::TcpListener::bind(("0.0.0.0", port))
        .map(drop)
        .is_err_and(|e| e.kind() == std::io::ErrorKind::AddrInUse)
}

/// 32 bytes from the OS CSPRNG, as 64 hex characters.
fn generate_key() -> Result<String> {
    let mut buf = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .context("reading /dev/urandom")?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

/// A download that failed (network, mirror, registry): waiting, retried at the next hook.
fn download_failed(e: &anyhow::Error) -> Outcome {
    outcome(
        StatusKind::Waiting,
        format!(
            "{} (retrying at the next hook)",
            crate::first_line(&format!("{e:#}"), 300)
        ),
    )
}

fn hash_of(r: &parse_server::Rendered) -> String {
    let mut h = DefaultHasher::new();
    r.hash(&mut h);
    format!("{:016x}", h.finish())
}
