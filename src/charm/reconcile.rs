//! The holistic reconcile: config valid → installed → database chosen and answering → key
//! available → files rendered → serving.

use std::path::PathBuf;

use super::database_source::{Database, Source};
use super::endpoints::PEER_ENDPOINT;
use super::load_balancer::{public_url_from, LoadBalancers};
use super::peers::Peers;
use super::status::{Blocked, Invalid, Maintenance, Serving, Waiting};
use super::steady::Steady;
use super::user_secrets::UserSecret;
use super::{blocked, waiting, Charm, Step, Stop};
use crate::config::CharmConfig;
use crate::relations::postgresql_client;
use crate::workload::database::PostgresTls;
use crate::workload::files::{self, FileMode};
use crate::workload::install::{self, InstallError};
use crate::workload::node;
use crate::workload::render::{self, ServiceSpec};
use crate::workload::sizing::{self, Requested, Sizing};
use crate::workload::user::{self, Account};

impl Charm<'_> {
    /// Computes and applies the desired state; returns what serves (for the status) and
    /// what a steady `update-status` needs besides the rendering.
    pub fn reconcile(&self, peers: &Peers) -> Step<(Serving, Steady)> {
        let (config, user_secrets) = self.validated_config()?;
        let sizing = self.sized(&config)?;
        // Mail settings are read before anything is touched: a provider whose data cannot
        // be used yet leaves whatever serves as it is.
        let email = self.email(&config)?;
        let redis = self.redis(&config)?;
        let s3 = self.s3(&config)?;
        let account = self.ensure_service_account()?;
        self.ensure_release_installed(&config, email.is_some())?;
        let node = self.ensure_node(&config)?;
        let version = config.parse_server_version.as_str();
        // The Version column: the release that serves; before any served, the installed one.
        let last_good = crate::workload::service_files::last_good(&self.paths)?;
        if last_good.is_none() {
            self.publish_application_version(version)?;
        }
        self.check_options_known(&config)?;
        let cloud_code = self.cloud_code(&node, version, account, last_good.as_ref())?;

        if let Some(addr) = self.tools.ingress_address(PEER_ENDPOINT)? {
            peers.publish_address(&addr)?;
        }
        let database = self.database(&config)?;
        let serving = self.serving_now(last_good)?;
        self.check_port_free(config.port, &serving)?;
        let master_key = self.master_key(&config, peers)?;
        let dashboard_keys = self.dashboard_keys(&config, peers)?;
        let balancers = self.load_balancers()?;
        self.ensure_charm_file(&self.paths.service_hooks(), render::service_hooks_source())?;
        if database.uri.is_postgres() {
            self.ensure_charm_file(&self.paths.files_adapter(), render::files_adapter_source())?;
        }
        if email.is_some() {
            self.ensure_charm_file(&self.paths.email_adapter(), render::email_adapter_source())?;
        }
        if s3.is_some() {
            self.ensure_locked_installed(&node, install::S3_ADAPTER)?;
            self.ensure_charm_file(
                &self.paths.s3_files_adapter(),
                render::s3_files_adapter_source(),
            )?;
        }
        if redis.is_some() {
            self.ensure_charm_file(
                &self.paths.redis_cache_adapter(),
                render::redis_cache_adapter_source(),
            )?;
        }
        let spec = ServiceSpec {
            app_id: config.app_id.clone(),
            master_key,
            database: database.uri.clone(),
            port: config.port,
            mount_path: config.mount_path.clone(),
            public_server_url: self.public_server_url(&config, &balancers)?,
            master_key_ips: config.master_key_ips.clone(),
            allow_client_class_creation: config.allow_client_class_creation,
            log_level: config.log_level.clone(),
            workers: sizing.workers,
            heap_mib: sizing.heap_mib,
            semi_space_mib: sizing.semi_space_mib,
            memory_max_mib: sizing.memory_max_mib,
            memory_high_mib: sizing.memory_high_mib,
            node,
            version: version.to_owned(),
            extra_options: config.extra_options.clone(),
            trust_proxy: balancers.trusted.clone(),
            schema_hooks: database.schema_hooks,
            ca_pem: database.ca_pem.clone(),
            postgres_tls: self.postgres_tls(&database)?,
            drain_seconds: balancers.drain_seconds,
            cloud_code: cloud_code.clone(),
            email,
            redis: redis.as_ref().map(|r| r.spec.clone()),
            live_query_classes: config.live_query_classes.clone(),
            s3,
            read_only_master_key: dashboard_keys.as_ref().map(|k| {
                (
                    k.read_only_master_key.clone(),
                    config.read_only_master_key_ips.clone(),
                )
            }),
        };
        let rendered = render::render(&spec)?;
        self.checkpoint("rendered");
        // The route lists every port a unit serves on before any unit moves, so that the
        // balancer reaches each unit on its old port or its new one throughout the rollout.
        self.publish_route(&config, peers)?;
        // The database must answer before anything is (re)started; a running service is
        // left alone while it does not.
        let info = self.check_database(&database)?;
        self.ensure_serving(&rendered, &serving, account, peers)?;

        self.publish_to_load_balancers(&config, peers)?;
        let dashboard =
            self.ensure_dashboard(&config, peers, &spec, dashboard_keys.as_ref(), account)?;
        let mut ports = vec![config.port];
        ports.extend(dashboard.map(|d| d.port));
        self.sync_ports(&ports)?;
        // Scheduled jobs run on the leader, once Cloud Code (which defines them) serves.
        let schedules = self.tools.is_leader()? && cloud_code.is_some();
        self.ensure_job_timer(&spec.node, schedules)?;
        let workers = spec.workers;
        // What the service's processes hold resident now (a few counters from /proc).
        let memory_mib = self
            .probes
            .service_resident_kib()
            .map(|kib| kib.div_ceil(1024));
        // A related Charmed PostgreSQL turns the extension on with its own config; a
        // database given by `database-uri` is the operator's to change.
        let postgis_hint = (info.postgis == Some(false)).then(|| match &database.source {
            Source::Relation { remote_app, .. } => format!(
                "`{}`",
                postgresql_client::postgis_hint(remote_app, database.version.as_deref())
            ),
            Source::Config => "the postgis extension in the database".to_string(),
        });
        let live_query_scope =
            super::redis::live_query_scope(&config, redis.is_some(), peers, workers);
        let steady = Steady {
            digest: rendered.digest(),
            database: database.uri,
            postgis_hint: postgis_hint.clone(),
            user_secrets,
            redis: redis
                .as_ref()
                .map(|r| (r.spec.url.clone(), r.spec.ca_pem.clone())),
            live_query_scope,
            rate_limit_caveat: redis.as_ref().and_then(|r| r.rate_limit_caveat.clone()),
            // Remembered only while it runs: a dashboard that does not keeps every
            // update-status reconciling (and the status saying so).
            dashboard: dashboard.filter(|d| d.running),
        };
        let serving = Serving {
            port: config.port,
            mount_path: config.mount_path.clone(),
            workers,
            memory_mib,
            version: version.to_owned(),
            postgis_hint,
            cloud_code: cloud_code.map(|c| c.digest),
            jobs_problem: self.jobs_problem(),
            live_query_scope,
            rate_limit_caveat: steady.rate_limit_caveat.clone(),
            dashboard,
        };
        Ok((serving, steady))
    }

    /// The Version column of `juju status`, set when it changes (the charm remembers what it
    /// set last in its own state: Juju's value cannot be read back).
    pub(super) fn publish_application_version(&self, version: &str) -> Step<()> {
        let record = self.paths.charm_state().join("application-version");
        if std::fs::read_to_string(&record).is_ok_and(|v| v == version) {
            return Ok(());
        }
        self.tools.application_version_set(version)?;
        files::ensure_dir(
            &self.paths.charm_state(),
            FileMode {
                mode: 0o700,
                uid: 0,
                gid: 0,
            },
        )?;
        files::write_if_changed(
            &record,
            version.as_bytes(),
            FileMode {
                mode: 0o600,
                uid: 0,
                gid: 0,
            },
        )?;
        Ok(())
    }

    /// How parse-server will speak TLS to PostgreSQL (a `ca` file the operator's URI names
    /// must be readable).
    fn postgres_tls(&self, database: &Database) -> Step<PostgresTls> {
        if !database.uri.is_postgres() {
            return Ok(PostgresTls::Off);
        }
        PostgresTls::of(&database.uri, database.ca_pem.as_deref())
            .or_else(|why| blocked(invalid("database-uri", why)))
    }

    /// A file of the charm's own (code parse-server loads), written when it differs.
    pub(super) fn ensure_charm_file(&self, path: &std::path::Path, content: &str) -> Step<()> {
        if let Some(dir) = path.parent() {
            files::ensure_dir(
                dir,
                FileMode {
                    mode: 0o755,
                    uid: 0,
                    gid: 0,
                },
            )?;
        }
        files::write_if_changed(
            path,
            content.as_bytes(),
            FileMode {
                mode: 0o644,
                uid: 0,
                gid: 0,
            },
        )?;
        Ok(())
    }

    /// Workers, heap cap and memory limit for this machine (the operator's where set);
    /// what cannot fit is refused with the arithmetic, naming the options the operator set
    /// and, where raising it would do, `memory-limit`.
    fn sized(&self, config: &CharmConfig) -> Step<Sizing> {
        let machine = self.probes.machine();
        let requested = Requested {
            workers: config.workers,
            heap_mib: config.node_max_old_space_size,
            semi_space_mib: config.node_max_semi_space_size,
            memory_limit_mib: config.memory_limit,
        };
        let why = match sizing::size(machine, requested) {
            Ok(s) => return Ok(s),
            Err(why) => why,
        };
        if let Some(why) = why.strip_prefix("memory-limit: ") {
            return blocked(invalid("memory-limit", why));
        }
        let whole_machine = Requested {
            memory_limit_mib: Some(machine.memory_mib),
            ..requested
        };
        let raising_helps = config.memory_limit != Some(machine.memory_mib)
            && sizing::size(machine, whole_machine).is_ok();
        let set: Vec<&str> = [
            ("workers", config.workers.is_some()),
            (
                "node-max-old-space-size",
                config.node_max_old_space_size.is_some(),
            ),
            (
                "node-max-semi-space-size",
                config.node_max_semi_space_size.is_some(),
            ),
            ("memory-limit", config.memory_limit.is_some()),
        ]
        .into_iter()
        .filter_map(|(name, set)| set.then_some(name))
        .collect();
        let mib = machine.memory_mib;
        match (set.is_empty(), raising_helps) {
            (true, true) => blocked(invalid(
                "memory-limit",
                format!("{why}: raise it (up to the machine's {mib} MiB)"),
            )),
            (true, false) => blocked(Blocked::MachineTooSmall { mib, why }),
            (false, true) if !set.contains(&"memory-limit") => blocked(invalid(
                set.join(", "),
                format!("{why}; or raise memory-limit (up to {mib} MiB)"),
            )),
            (false, _) => blocked(invalid(set.join(", "), why)),
        }
    }

    /// The configuration, validated once, with the values options take from user secrets;
    /// an invalid one stops everything (nothing is touched: whatever serves keeps serving).
    pub(super) fn validated_config(&self) -> Step<(CharmConfig, Vec<UserSecret>)> {
        let mut raw = self.tools.config_get()?;
        let (read, unreadable) = self.resolve_user_secrets(&mut raw)?;
        let from_secret = |option: &str| read.iter().find(|s| s.option == option);
        let mut errors: Vec<Invalid> = unreadable;
        match CharmConfig::from_raw(&raw) {
            Ok(config) if errors.is_empty() => return Ok((config, read)),
            Ok(_) => {}
            Err(invalid) => errors.extend(invalid.into_iter().map(|e| {
                let mut i = Invalid::from(e);
                if let Some(s) = from_secret(&i.option) {
                    i.reason = format!("{} (the value in {})", i.reason, s.uri);
                }
                i
            })),
        }
        blocked(Blocked::InvalidConfig(errors))
    }

    /// The service's account, created if missing; an existing one that would share the
    /// service's secrets with others stops the charm until the operator fixes it.
    fn ensure_service_account(&self) -> Step<Account> {
        let account = match user::ensure_service_account(&self.paths)? {
            Ok(a) => a,
            Err(why) => return blocked(Blocked::Account(why)),
        };
        let state_dir = self.paths.state_dir();
        if !state_dir.is_dir() {
            files::ensure_dir(
                &state_dir,
                FileMode {
                    mode: 0o750,
                    uid: account.uid,
                    gid: account.gid,
                },
            )?;
        }
        Ok(account)
    }

    /// Makes sure release `parse-server-version` is installed (with nodemailer when mail is
    /// sent: a release an older charm revision installed is installed again, into the same
    /// path with the same locked tree, so the service that runs from it is unaffected).
    fn ensure_release_installed(&self, config: &CharmConfig, mailer: bool) -> Step<()> {
        let version = config.parse_server_version.as_str();
        if install::is_installed(&self.paths, version)
            && (!mailer || install::has_mailer(&self.paths, version))
        {
            return Ok(());
        }
        let node = match self.any_node() {
            Some(n) => n,
            None => self.install_node(config)?,
        };
        self.maintenance(Maintenance::Installing {
            what: "parse-server".into(),
            version: version.to_owned(),
        })?;
        let lock_dir = self.ctx.charm_dir.join("npm").join(version);
        let lock_dir = lock_dir
            .join("package-lock.json")
            .is_file()
            .then_some(lock_dir);
        let result = install::install(
            &self.paths,
            version,
            &node,
            lock_dir.as_deref(),
            &self.ctx.proxy.env(),
        );
        match result {
            Ok(()) => {
                self.log(&format!("installed parse-server {version}"));
                Ok(())
            }
            Err(InstallError::NotFound(why)) => blocked(invalid(
                "parse-server-version",
                format!("{version} is not on the npm registry ({why})"),
            )),
            Err(e) => install_failed("parse-server", e),
        }
    }

    /// The charm's own Node if present, else one on PATH.
    fn any_node(&self) -> Option<PathBuf> {
        let own = self.paths.own_node();
        if own.is_file() {
            return Some(own);
        }
        node::find_node(
            self.ctx.path.as_deref().unwrap_or("/usr/bin:/bin"),
            &self.paths.node_version_cache(),
        )
        .map(|(p, _)| p)
    }

    /// Downloads and unpacks the pinned Node.js from `node-mirror`.
    fn install_node(&self, config: &CharmConfig) -> Step<PathBuf> {
        self.maintenance(Maintenance::Installing {
            what: "Node.js".into(),
            version: node::PINNED_NODE.into(),
        })?;
        match node::install_pinned(
            &config.node_mirror,
            &self.paths.node_dir(),
            &self.paths.charm_cache(),
            &self.ctx.proxy.env(),
        ) {
            Ok(p) => Ok(p),
            Err(e @ (InstallError::NotFound(_) | InstallError::Integrity(_))) => {
                blocked(invalid("node-mirror", e.to_string()))
            }
            Err(e) => install_failed("Node.js", e),
        }
    }

    /// A Node that satisfies the installed release's `engines`, installing the pinned one
    /// when the machine's does not.
    fn ensure_node(&self, config: &CharmConfig) -> Step<PathBuf> {
        let version = config.parse_server_version.as_str();
        let range = install::engines_node(&self.paths, version).unwrap_or_default();
        let cache = self.paths.node_version_cache();
        let fits = |p: &std::path::Path| -> bool {
            node::cached_node_version(p, &cache)
                .is_ok_and(|v| range.is_empty() || node::satisfies(v, &range))
        };
        if let Some(p) = self.any_node().filter(|p| fits(p)) {
            return Ok(p);
        }
        if !self.paths.own_node().is_file() {
            let p = self.install_node(config)?;
            if fits(&p) {
                return Ok(p);
            }
        }
        blocked(invalid(
            "parse-server-version",
            format!(
                "{version} needs Node {range}, which the charm's Node {} does not satisfy",
                node::PINNED_NODE
            ),
        ))
    }

    /// `extra-options` checked against the installed release's own option list.
    fn check_options_known(&self, config: &CharmConfig) -> Step<()> {
        let Some(known) = install::known_options(&self.paths, &config.parse_server_version) else {
            return Ok(());
        };
        config
            .check_options_known(&known)
            .or_else(|e| blocked(Blocked::InvalidConfig(vec![e.into()])))
    }

    /// A port another process holds is refused by name (the service keeps its own).
    fn check_port_free(&self, port: u16, serving: &super::service::Serving) -> Step<()> {
        if serving.holds(port) || !self.probes.port_in_use(port) {
            return Ok(());
        }
        blocked(invalid(
            "port",
            format!("{port} is in use by another process"),
        ))
    }

    /// The URL clients reach parse-server at: the operator's, else haproxy's, else this
    /// unit's own address.
    fn public_server_url(
        &self,
        config: &CharmConfig,
        balancers: &LoadBalancers,
    ) -> Step<Option<String>> {
        if let Some(u) = &config.public_server_url {
            return Ok(Some(u.clone()));
        }
        if let Some(endpoint) = &balancers.public_url {
            return Ok(Some(public_url_from(endpoint, &config.mount_path)));
        }
        let addr = self.tools.public_address()?;
        if addr.is_empty() {
            return Ok(None);
        }
        let host = crate::uri::Host::new(addr, Some(config.port));
        Ok(Some(format!("http://{host}{}", config.mount_path)))
    }

    /// Opens `want` (closing any other port first), or closes everything for `None`.
    pub(super) fn sync_ports(&self, want: &[u16]) -> Step<()> {
        let opened = self.tools.opened_ports()?;
        let wanted: Vec<String> = want.iter().map(|p| format!("{p}/tcp")).collect();
        for p in &opened {
            if !wanted.contains(p) {
                if let Some(n) = p.strip_suffix("/tcp").and_then(|n| n.parse().ok()) {
                    self.tools.close_port(n)?;
                }
            }
        }
        for (port, w) in want.iter().zip(&wanted) {
            if !opened.contains(w) {
                self.tools.open_port(*port)?;
            }
        }
        Ok(())
    }
}

/// An install that failed: a download waits (retried at the next hook); anything else is a
/// fault the hook reports as an error.
pub(super) fn install_failed<T>(what: &str, e: InstallError) -> Step<T> {
    match e {
        InstallError::Download(why) => waiting(Waiting::Download {
            what: what.into(),
            why,
        }),
        other => Err(Stop::Bug(
            anyhow::Error::new(other).context(format!("installing {what}")),
        )),
    }
}

/// `blocked` naming one option (or several, joined) and why its value cannot work.
fn invalid(option: impl Into<String>, reason: impl Into<String>) -> Blocked {
    Blocked::InvalidConfig(vec![Invalid::new(option, reason)])
}
