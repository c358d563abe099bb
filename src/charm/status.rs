//! Every status a unit of this charm can show, and why: the one list of them. Each reason
//! is a variant, rendered into its message here and nowhere else; README.md's list is
//! rendered from [`catalogue`] (a test fails when the two differ).
//!
//! Parts that come from elsewhere (a configuration error's reason, the database driver's
//! answer, a provider's unusable field) are carried as text and shown as `<reason>` in the
//! catalogue; they are made one short line by `Status::new`.

use std::fmt;

use crate::juju::Status;
use crate::relations::Missing;

/// Something the operator must fix; the service keeps what it serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Blocked {
    NoDatabase,
    /// Two database sources at once (`database-uri` or `the <endpoint> relation`).
    TwoDatabases {
        first: String,
        second: String,
    },
    /// Options that cannot work, each with its reason.
    InvalidConfig(Vec<Invalid>),
    /// Not even one worker fits the machine's memory (no option set that could help).
    MachineTooSmall {
        mib: u64,
        why: String,
    },
    /// The service's account exists but is not the service's alone.
    Account(String),
    /// The provider serves another database than `database-name` asks for.
    OtherDatabase {
        endpoint: String,
        served: String,
        wanted: String,
    },
    /// A new configuration did not start; the previous one serves again.
    RolledBack {
        why: String,
    },
    /// Neither the new configuration nor the previous one started.
    RollbackFailed {
        why: String,
        again: String,
        next_try: Minutes,
    },
    /// The first configuration did not start; nothing serves.
    FirstStartFailed {
        why: String,
        next_try: Minutes,
    },
    /// A configuration that did not start before is not retried while the previous serves.
    StillServingPrevious,
    /// A configuration that did not start before waits for its back-off while nothing serves.
    NothingServes {
        next_try: Minutes,
    },
    /// The `cloud-code` resource cannot be used (`digest`: which revision, once known).
    CloudCode {
        digest: Option<String>,
        why: String,
    },
}

/// An option and why its value cannot work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    pub option: String,
    pub reason: String,
}

impl Invalid {
    pub fn new(option: impl Into<String>, reason: impl Into<String>) -> Invalid {
        Invalid {
            option: option.into(),
            reason: reason.into(),
        }
    }
}

impl From<crate::config::ConfigError> for Invalid {
    fn from(e: crate::config::ConfigError) -> Invalid {
        Invalid::new(e.option, e.reason)
    }
}

/// Something outside the charm that will change by itself (or at the next hook).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Waiting {
    /// A non-leader waits for the leader's secret.
    MasterKey,
    /// A non-leader never starts before the leader's first start.
    LeaderFirstStart,
    /// Among serving units one restarts at a time; `holder`: who has the turn, if any.
    RestartTurn { holder: Option<String> },
    /// A database provider has not joined the relation yet.
    ProviderJoin { kind: String, endpoint: String },
    /// A database provider has joined but not yet shared `what`.
    ProviderShare { kind: String, what: Missing },
    /// The provider's data cannot be used as it is (the provider's to fix).
    ProviderData { endpoint: String, why: String },
    /// A secret the provider names cannot be read (yet).
    ProviderSecret {
        endpoint: String,
        why: SecretProblem,
    },
    /// The database does not answer.
    DatabaseUnreachable(String),
    /// The database refuses what a relation gave (the provider's to fix).
    DatabaseRefused { source: String, why: String },
    /// A download from the registry or the Node mirror failed.
    Download { what: String, why: String },
    /// The service runs but its health check does not answer `ok`.
    Unhealthy(String),
    /// The `cloud-code` resource cannot be fetched or its dependencies downloaded (yet).
    CloudCode { why: String },
    /// The smtp relation's provider has not (yet) given what mail needs (`what`: the
    /// fields, by name).
    SmtpShare { what: String },
    /// The shared Redis (`source`: `redis-url` or the valkey relation) does not answer
    /// (`server`: without credentials).
    RedisUnreachable {
        source: String,
        server: String,
        why: String,
    },
    /// The s3 relation's provider has not (yet) given what the bucket needs (`what`: the
    /// fields, by name).
    S3Share { what: String },
    /// The bucket cannot be used: the store does not answer or refuses it (`endpoint`:
    /// without credentials).
    S3Bucket {
        endpoint: String,
        bucket: String,
        why: String,
    },
    /// A non-leader waits for the leader's dashboard keys (`dashboard` on).
    DashboardKeys,
}

/// Why a provider's secret cannot be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretProblem {
    Missing,
    Unreadable(String),
}

/// A long step, shown while it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Maintenance {
    Installing {
        what: String,
        version: String,
    },
    Starting,
    Restarting,
    RestoringLastGood,
    Stopped,
    /// Unpacking a Cloud Code revision, installing its dependencies, loading it once.
    PreparingCloudCode {
        digest: String,
    },
}

/// `active`: what serves, on which port and path, with how many workers, how much memory,
/// which release, and what PostGIS would need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Serving {
    pub port: u16,
    pub mount_path: String,
    pub workers: u32,
    /// The service's PSS, when it could be read.
    pub memory_mib: Option<u64>,
    pub version: String,
    /// What would turn PostGIS on, when the database lacks it.
    pub postgis_hint: Option<String>,
    /// The Cloud Code revision that runs (its archive's digest), if any.
    pub cloud_code: Option<String>,
    /// What the job scheduler could not do last (a schedule it cannot read, a job that did
    /// not start), on the leader.
    pub jobs_problem: Option<String>,
    /// With LiveQuery on and no shared Redis, the widest scope its events reach when more
    /// than one process serves (`None`: every client gets every event).
    pub live_query_scope: Option<LiveQueryScope>,
    /// With a shared Redis, why the `rateLimit` entries still count per process.
    pub rate_limit_caveat: Option<String>,
    /// Parse Dashboard, when `dashboard` is on.
    pub dashboard: Option<DashboardNote>,
}

/// Parse Dashboard as the status shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DashboardNote {
    pub port: u16,
    /// `master-key-ips` lets only the unit itself use the master key: the dashboard's page
    /// (which calls parse-server from the browser) cannot.
    pub master_key_local: bool,
    /// Its service runs.
    pub running: bool,
}

/// Which clients a LiveQuery event reaches without a shared Redis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LiveQueryScope {
    /// Those of the unit that saved the object.
    Unit,
    /// Those of the worker process that saved the object (one unit, several workers).
    Process,
}

/// `N min` (at least 1), for a back-off in a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Minutes(pub u64);

impl Minutes {
    pub fn of_seconds(seconds: u64) -> Minutes {
        Minutes(seconds.div_ceil(60).max(1))
    }
}

impl fmt::Display for Minutes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} min", self.0)
    }
}

const SEE_LOG: &str = "(see juju debug-log)";

impl fmt::Display for Blocked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Blocked::NoDatabase => {
                f.write_str("add a relation to mongodb or postgresql (or set database-uri)")
            }
            Blocked::TwoDatabases { first, second } => write!(
                f,
                "two databases: {first} and {second}; remove one (the service keeps its \
                 current one)"
            ),
            Blocked::InvalidConfig(errors) => {
                f.write_str("invalid config: ")?;
                for (i, e) in errors.iter().enumerate() {
                    if i > 0 {
                        f.write_str("; ")?;
                    }
                    write!(f, "{}: {}", e.option, e.reason)?;
                }
                Ok(())
            }
            Blocked::MachineTooSmall { mib, why } => write!(
                f,
                "this machine's {mib} MiB cannot hold one parse-server worker: {why}"
            ),
            Blocked::Account(why) => f.write_str(why),
            Blocked::OtherDatabase {
                endpoint,
                served,
                wanted,
            } => write!(
                f,
                "database-name: the {endpoint} relation serves database {served}, not \
                 {wanted}: remove and re-add the relation (or set database-name back)"
            ),
            Blocked::RolledBack { why } => write!(
                f,
                "the new configuration did not start ({why}); serving the previous one \
                 {SEE_LOG}"
            ),
            Blocked::RollbackFailed {
                why,
                again,
                next_try,
            } => write!(
                f,
                "the new configuration did not start ({why}); nor did the previous one \
                 ({again}); nothing serves, next try in {next_try} {SEE_LOG}"
            ),
            Blocked::FirstStartFailed { why, next_try } => write!(
                f,
                "parse-server did not start: {why}; nothing serves, next try in {next_try} \
                 {SEE_LOG}"
            ),
            Blocked::StillServingPrevious => write!(
                f,
                "the configuration did not start before {SEE_LOG}; serving the previous \
                 one: change the config to retry"
            ),
            Blocked::NothingServes { next_try } => write!(
                f,
                "the configuration did not start and nothing serves {SEE_LOG}; next try \
                 in {next_try}"
            ),
            Blocked::CloudCode { digest, why } => {
                f.write_str("cloud-code resource")?;
                if let Some(d) = digest {
                    write!(f, " {d}")?;
                }
                write!(f, ": {why}")
            }
        }
    }
}

/// What a provider has still to give, as a message's object.
fn missing(what: Missing) -> &'static str {
    match what {
        Missing::Credentials => "the credentials",
        Missing::Endpoints => "its endpoints",
        Missing::TlsCa => "its TLS CA",
        Missing::Unit => "a unit",
        Missing::Address => "its address",
    }
}

impl fmt::Display for Waiting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Waiting::MasterKey => f.write_str("waiting for the leader to generate the master key"),
            Waiting::DashboardKeys => {
                f.write_str("waiting for the leader to generate the dashboard's keys")
            }
            Waiting::LeaderFirstStart => f.write_str("waiting for the leader's first start"),
            Waiting::RestartTurn { holder } => write!(
                f,
                "restart queued: one unit at a time (now: {})",
                holder.as_deref().unwrap_or("the leader's grant")
            ),
            Waiting::ProviderJoin { kind, endpoint } => {
                write!(f, "waiting for {kind} to join the {endpoint} relation")
            }
            Waiting::ProviderShare {
                kind,
                what: Missing::Unit,
            } => write!(f, "waiting for a {kind} unit to join"),
            Waiting::ProviderShare { kind, what } => {
                let verb = if *what == Missing::Address {
                    "publish"
                } else {
                    "share"
                };
                write!(f, "waiting for {kind} to {verb} {}", missing(*what))
            }
            Waiting::ProviderData { endpoint, why } => write!(f, "{endpoint} relation: {why}"),
            Waiting::ProviderSecret { endpoint, why } => match why {
                SecretProblem::Missing => {
                    write!(f, "{endpoint} relation: its secret does not exist (yet)")
                }
                SecretProblem::Unreadable(detail) => {
                    write!(f, "{endpoint} relation: cannot read its secret ({detail})")
                }
            },
            Waiting::DatabaseUnreachable(why) => f.write_str(why),
            Waiting::DatabaseRefused { source, why } => write!(f, "{source}: {why}"),
            Waiting::Download { what, why } => write!(
                f,
                "installing {what}: download failed: {why} (retrying at the next hook)"
            ),
            Waiting::Unhealthy(why) => write!(f, "parse-server is not healthy: {why}"),
            Waiting::CloudCode { why } => {
                write!(f, "cloud-code resource: {why} (retrying at the next hook)")
            }
            Waiting::SmtpShare { what } => {
                write!(f, "smtp relation: waiting for the provider to share {what}")
            }
            Waiting::RedisUnreachable {
                source,
                server,
                why,
            } => write!(
                f,
                "{source}: {server} does not answer: {why} (the service keeps what it serves)"
            ),
            Waiting::S3Share { what } => {
                write!(f, "s3 relation: waiting for the provider to share {what}")
            }
            Waiting::S3Bucket {
                endpoint,
                bucket,
                why,
            } => write!(
                f,
                "s3 relation: bucket {bucket} at {endpoint}: {why} (files stay where they are)"
            ),
        }
    }
}

impl fmt::Display for Maintenance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Maintenance::Installing { what, version } => write!(f, "installing {what} {version}"),
            Maintenance::Starting => f.write_str("starting parse-server"),
            Maintenance::Restarting => f.write_str("restarting parse-server"),
            Maintenance::RestoringLastGood => f.write_str("restoring the last good configuration"),
            Maintenance::Stopped => f.write_str("parse-server stopped"),
            Maintenance::PreparingCloudCode { digest } => {
                write!(f, "preparing Cloud Code {digest}")
            }
        }
    }
}

impl fmt::Display for Serving {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "serving on port {} at {}, {} worker{}",
            self.port,
            self.mount_path,
            self.workers,
            if self.workers == 1 { "" } else { "s" }
        )?;
        if let Some(mib) = self.memory_mib {
            write!(f, ", {mib} MiB")?;
        }
        write!(f, ", parse-server {}", self.version)?;
        if let Some(digest) = &self.cloud_code {
            write!(f, ", cloud code {digest}")?;
        }
        if let Some(d) = &self.dashboard {
            if d.running {
                write!(f, ", dashboard on port {}", d.port)?;
            } else {
                write!(
                    f,
                    "; the dashboard does not run (journalctl -u parse-dashboard)"
                )?;
            }
            if d.master_key_local {
                write!(f, "; dashboard browsers need master-key-ips")?;
            }
        }
        if let Some(scope) = self.live_query_scope {
            let who = match scope {
                LiveQueryScope::Unit => "unit",
                LiveQueryScope::Process => "worker process",
            };
            write!(
                f,
                "; LiveQuery events stay within each {who}: set redis-url"
            )?;
        }
        if let Some(why) = &self.rate_limit_caveat {
            write!(f, "; rate limits count per process: {why}")?;
        }
        if let Some(hint) = &self.postgis_hint {
            write!(f, "; geo queries need {hint}")?;
        }
        if let Some(problem) = &self.jobs_problem {
            write!(f, "; {problem}")?;
        }
        Ok(())
    }
}

impl From<Blocked> for Status {
    fn from(b: Blocked) -> Status {
        Status::blocked(b.to_string())
    }
}

impl From<Waiting> for Status {
    fn from(w: Waiting) -> Status {
        Status::waiting(w.to_string())
    }
}

impl From<Maintenance> for Status {
    fn from(m: Maintenance) -> Status {
        Status::maintenance(m.to_string())
    }
}

impl From<Serving> for Status {
    fn from(s: Serving) -> Status {
        Status::active(s.to_string())
    }
}

/// One entry of the catalogue: the status as rendered from placeholder parts, and when a
/// unit shows it.
pub struct Entry {
    pub status: Status,
    pub when: &'static str,
}

fn part(name: &str) -> String {
    format!("<{name}>")
}

impl Blocked {
    /// When a unit shows it (every variant must say: the match is exhaustive).
    pub fn when(&self) -> &'static str {
        match self {
            Blocked::NoDatabase => "no database relation and no `database-uri`",
            Blocked::TwoDatabases { .. } => "two database sources at once; the service keeps the one it serves",
            Blocked::InvalidConfig(_) => "a `juju config` value that cannot work (every invalid option is named); the service keeps serving its last good configuration. Also the arithmetic when the set `workers`, `node-max-old-space-size`, `node-max-semi-space-size` or `memory-limit` cannot fit the machine, `verify-user-emails` without an `smtp` relation, and an empty `email-from` when the relation gives no sender or domain",
            Blocked::MachineTooSmall { .. } => "the machine's memory cannot hold one worker with nothing set that could help",
            Blocked::Account(_) => "an existing `parse-server` account with another primary group, or a group with other members (the service's secrets would be shared)",
            Blocked::OtherDatabase { .. } => "`database-name` changed on a live relation: providers answer a request once, so remove and re-add the relation, or set the name back; the service keeps its database",
            Blocked::RolledBack { .. } => "a new configuration did not become healthy; the previous one was restored and serves",
            Blocked::RollbackFailed { .. } => "neither the new nor the previous configuration started; retried with a back-off (1 to 30 min)",
            Blocked::FirstStartFailed { .. } => "the first configuration did not start; retried with a back-off",
            Blocked::StillServingPrevious => "a later hook, while the configuration that did not start is still the one asked for",
            Blocked::NothingServes { .. } => "a later hook, while nothing serves and the back-off runs",
            Blocked::CloudCode { .. } => "the attached `cloud-code` archive cannot be used: unreadable, not a .tar.gz or .zip, hostile (a path leaving it, a link pointing outside, a device, a setuid bit, over 512 MiB or 100 000 entries unpacked), no `main.js` at its root, dependencies without a lockfile, a package npm cannot find, or code that does not load (the first line of its error); the service keeps the code it runs",
        }
    }

    fn examples() -> Vec<Blocked> {
        vec![
            Blocked::NoDatabase,
            Blocked::TwoDatabases {
                first: part("source"),
                second: part("source"),
            },
            Blocked::InvalidConfig(vec![Invalid::new(part("option"), part("reason"))]),
            Blocked::MachineTooSmall {
                mib: 1024,
                why: part("arithmetic"),
            },
            Blocked::Account(part("what to fix in the parse-server account or group")),
            Blocked::OtherDatabase {
                endpoint: part("endpoint"),
                served: part("served"),
                wanted: part("database-name"),
            },
            Blocked::RolledBack { why: part("why") },
            Blocked::RollbackFailed {
                why: part("why"),
                again: part("why"),
                next_try: Minutes(5),
            },
            Blocked::FirstStartFailed {
                why: part("why"),
                next_try: Minutes(5),
            },
            Blocked::StillServingPrevious,
            Blocked::NothingServes {
                next_try: Minutes(5),
            },
            Blocked::CloudCode {
                digest: Some(part("digest")),
                why: part("reason"),
            },
        ]
    }
}

impl Waiting {
    /// When a unit shows it (every variant must say: the match is exhaustive).
    pub fn when(&self) -> &'static str {
        match self {
            Waiting::MasterKey => "a non-leader before the leader generated the application's master key",
            Waiting::LeaderFirstStart => "a non-leader before the leader's service first served",
            Waiting::RestartTurn { .. } => "a serving unit that must restart waits for its turn (one unit at a time; the grant is a lease of 240 s)",
            Waiting::ProviderJoin { .. } => "the database relation exists but no provider unit has joined",
            Waiting::ProviderShare { .. } => "the provider has not yet shared the credentials, its endpoints or its TLS CA (legacy `mongodb`: a unit, its address)",
            Waiting::ProviderData { .. } => "the provider's data cannot be used: an unparsable field, a system database, options in its `database` field, a TLS CA that is not PEM; on `smtp`, a host, port, `auth_type`, `transport_security`, `skip_ssl_verify` or `domain` the charm cannot use (the service keeps what it serves)",
            Waiting::ProviderSecret { .. } => "the secret the provider names does not exist yet or cannot be read (on `smtp`: the password's `password_id`; the service keeps what it serves)",
            Waiting::DatabaseUnreachable(_) => "the database does not answer (it is checked before anything is started or restarted; a running service is left alone)",
            Waiting::DatabaseRefused { .. } => "the database refuses what a relation gave (a `database-uri` the database refuses is `blocked` as invalid config)",
            Waiting::Download { .. } => "a download from the npm registry or `node-mirror` failed; retried at the next hook",
            Waiting::Unhealthy(_) => "the service runs but `<mount-path>/health` does not answer `ok`",
            Waiting::CloudCode { .. } => "Juju cannot provide the `cloud-code` resource while a revision of it runs, or npm cannot reach the registry for its dependencies; retried at the next hook",
            Waiting::SmtpShare { .. } => "the `smtp` relation exists but smtp-integrator has not (yet) written `host`, `port`, `auth_type`, `transport_security`, or the `user` or password its `auth_type` needs; the service keeps serving its last good configuration",
            Waiting::S3Share { .. } => "the `s3` relation exists but the integrator has not (yet) written `bucket`, `access-key` or `secret-key` (plain, or in the secret `secret-extra` names); files stay where they are and the service keeps serving its last good configuration",
            Waiting::DashboardKeys => "`dashboard` on, on a non-leader, before the leader generated the dashboard's cookie secret and read-only master key",
            Waiting::S3Bucket { .. } => "the bucket the `s3` relation names cannot be used: the store does not answer, the bucket does not exist, the store refuses the credentials or the bucket is in another region (checked with a signed `HEAD` of the bucket before anything is rendered); files stay where they are and the service keeps serving its last good configuration",
            Waiting::RedisUnreachable { .. } => "the shared Redis (`redis-url` or the `valkey` relation) does not answer (checked with AUTH, SELECT and PING before anything is rendered; one that refuses `redis-url`'s password or database is `blocked` as invalid config, the relation's `waiting` as refused); the service keeps serving its last good configuration",
        }
    }

    fn examples() -> Vec<Waiting> {
        vec![
            Waiting::MasterKey,
            Waiting::LeaderFirstStart,
            Waiting::RestartTurn {
                holder: Some(part("unit")),
            },
            Waiting::ProviderJoin {
                kind: part("mongodb|postgresql"),
                endpoint: part("endpoint"),
            },
            Waiting::ProviderShare {
                kind: part("mongodb|postgresql"),
                what: Missing::Credentials,
            },
            Waiting::ProviderData {
                endpoint: part("endpoint"),
                why: part("reason"),
            },
            Waiting::ProviderSecret {
                endpoint: part("endpoint"),
                why: SecretProblem::Missing,
            },
            Waiting::DatabaseUnreachable(format!(
                "database at {} does not answer: {}",
                part("hosts"),
                part("reason")
            )),
            Waiting::DatabaseRefused {
                source: part("relation"),
                why: format!("database at {} refused: {}", part("hosts"), part("reason")),
            },
            Waiting::Download {
                what: part("parse-server|Node.js|@parse/s3-files-adapter"),
                why: part("reason"),
            },
            Waiting::Unhealthy(part("reason")),
            Waiting::CloudCode {
                why: part("reason"),
            },
            Waiting::SmtpShare {
                what: part("fields"),
            },
            Waiting::RedisUnreachable {
                source: part("redis-url|valkey relation"),
                server: part("redis://host:port"),
                why: part("reason"),
            },
            Waiting::S3Share {
                what: part("fields"),
            },
            Waiting::S3Bucket {
                endpoint: part("endpoint"),
                bucket: part("bucket"),
                why: part("reason"),
            },
            Waiting::DashboardKeys,
        ]
    }
}

impl Maintenance {
    /// When a unit shows it (every variant must say: the match is exhaustive).
    pub fn when(&self) -> &'static str {
        match self {
            Maintenance::Installing { .. } => "while installing a parse-server release, Node.js, or the S3 files adapter (where an s3 relation exists)",
            Maintenance::Starting => "while starting the service and waiting for its health check",
            Maintenance::Restarting => "while restarting the service into a new configuration",
            Maintenance::RestoringLastGood => {
                "while putting back the configuration that served last"
            }
            Maintenance::Stopped => "after `stop`: the service is stopped and disabled",
            Maintenance::PreparingCloudCode { .. } => "while a new `cloud-code` revision is unpacked, its dependencies installed and its code loaded once outside the service",
        }
    }

    fn examples() -> Vec<Maintenance> {
        vec![
            Maintenance::Installing {
                what: part("parse-server|Node.js|@parse/s3-files-adapter"),
                version: part("version"),
            },
            Maintenance::Starting,
            Maintenance::Restarting,
            Maintenance::RestoringLastGood,
            Maintenance::Stopped,
            Maintenance::PreparingCloudCode {
                digest: part("digest"),
            },
        ]
    }
}

/// Every status the charm sets, from placeholder parts, with when a unit shows it.
pub fn catalogue() -> Vec<Entry> {
    let serving = Serving {
        port: 1337,
        mount_path: "/parse".into(),
        workers: 2,
        memory_mib: Some(318),
        version: "9.10.0".into(),
        postgis_hint: None,
        cloud_code: None,
        jobs_problem: None,
        live_query_scope: None,
        rate_limit_caveat: None,
        dashboard: None,
    };
    let with_cloud_code = Serving {
        cloud_code: Some(part("digest")),
        ..serving.clone()
    };
    let with_jobs_problem = Serving {
        jobs_problem: Some(format!("job schedule {}: {}", part("id"), part("reason"))),
        ..with_cloud_code.clone()
    };
    let live_query_per_unit = Serving {
        live_query_scope: Some(LiveQueryScope::Unit),
        ..serving.clone()
    };
    let live_query_per_process = Serving {
        live_query_scope: Some(LiveQueryScope::Process),
        ..serving.clone()
    };
    let rate_limits_per_process = Serving {
        rate_limit_caveat: Some(part("reason")),
        ..serving.clone()
    };
    let with_dashboard = Serving {
        dashboard: Some(DashboardNote {
            port: 4040,
            master_key_local: false,
            running: true,
        }),
        ..serving.clone()
    };
    let dashboard_master_key_local = Serving {
        dashboard: Some(DashboardNote {
            port: 4040,
            master_key_local: true,
            running: true,
        }),
        ..serving.clone()
    };
    let dashboard_down = Serving {
        dashboard: Some(DashboardNote {
            port: 4040,
            master_key_local: false,
            running: false,
        }),
        ..serving.clone()
    };
    let without_postgis = Serving {
        postgis_hint: Some("`juju config postgresql plugin-postgis-enable=true`".into()),
        ..serving.clone()
    };
    let mut out = Vec::new();
    for m in Maintenance::examples() {
        out.push(Entry {
            when: m.when(),
            status: m.into(),
        });
    }
    for b in Blocked::examples() {
        out.push(Entry {
            when: b.when(),
            status: b.into(),
        });
    }
    for w in Waiting::examples() {
        out.push(Entry {
            when: w.when(),
            status: w.into(),
        });
    }
    out.push(Entry {
        status: serving.into(),
        when: "once `<mount-path>/health` answers `ok`: port, path, workers, the service's resident memory, mapped files counted once (read from `/proc/<pid>/status` at every hook; PSS is in `memory-report`) and the release that serves",
    });
    out.push(Entry {
        status: with_cloud_code.into(),
        when: "the same with Cloud Code from the `cloud-code` resource: the first 12 hex digits of the archive's SHA-256 (`sha256sum cloud.tar.gz`)",
    });
    out.push(Entry {
        status: with_jobs_problem.into(),
        when: "on the leader, when the job scheduler's last run skipped a `_JobSchedule` entry whose fields it cannot read, or a due job did not start (parse-server's answer); the other schedules run",
    });
    out.push(Entry {
        status: live_query_per_unit.into(),
        when: "`live-query-classes` set, no `redis-url`, and more than one unit: each unit's LiveQuery server hears only the saves its own unit makes",
    });
    out.push(Entry {
        status: live_query_per_process.into(),
        when: "the same on one unit with several workers: each worker process has its own LiveQuery server",
    });
    out.push(Entry {
        status: rate_limits_per_process.into(),
        when: "`extra-options` has `rateLimit` and the shared Redis cannot hold its counters: the Redis user may not run scripts (rate-limit-redis counts with `EVALSHA`; Charmed Valkey's client users may not), or its TLS needs a CA parse-server cannot give the limiter's client",
    });
    out.push(Entry {
        status: with_dashboard.into(),
        when: "`dashboard` on: Parse Dashboard's service runs on `dashboard-port`",
    });
    out.push(Entry {
        status: dashboard_master_key_local.into(),
        when: "`dashboard` on while `master-key-ips` lets only the unit itself use the master key: the dashboard's page calls parse-server from the user's browser, whose address must be in `master-key-ips`",
    });
    out.push(Entry {
        status: dashboard_down.into(),
        when: "`dashboard` on but its service is not running (it failed to start: its journal says why)",
    });
    out.push(Entry {
        status: without_postgis.into(),
        when: "the same on PostgreSQL without PostGIS, naming the provider's `juju config` (a `database-uri` database: the postgis extension)",
    });
    out
}

/// The catalogue as README.md lists it (between its `statuses` markers).
pub fn readme_list() -> String {
    catalogue()
        .iter()
        .map(|e| {
            let status = format!("{}: {}", e.status.kind.as_str(), e.status.message);
            // Markdown code: a message that holds a backtick is fenced by two.
            let code = if status.contains('`') {
                format!("`` {status} ``")
            } else {
                format!("`{status}`")
            };
            format!("- {code}: {}.\n", e.when)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    /// A variant's position, by an exhaustive match: adding a variant fails to compile until
    /// it is numbered here, and the test below fails until the catalogue shows it.
    fn blocked_ordinal(b: &Blocked) -> usize {
        match b {
            Blocked::NoDatabase => 0,
            Blocked::TwoDatabases { .. } => 1,
            Blocked::InvalidConfig(_) => 2,
            Blocked::MachineTooSmall { .. } => 3,
            Blocked::Account(_) => 4,
            Blocked::OtherDatabase { .. } => 5,
            Blocked::RolledBack { .. } => 6,
            Blocked::RollbackFailed { .. } => 7,
            Blocked::FirstStartFailed { .. } => 8,
            Blocked::StillServingPrevious => 9,
            Blocked::NothingServes { .. } => 10,
            Blocked::CloudCode { .. } => 11,
        }
    }

    fn waiting_ordinal(w: &Waiting) -> usize {
        match w {
            Waiting::MasterKey => 0,
            Waiting::LeaderFirstStart => 1,
            Waiting::RestartTurn { .. } => 2,
            Waiting::ProviderJoin { .. } => 3,
            Waiting::ProviderShare { .. } => 4,
            Waiting::ProviderData { .. } => 5,
            Waiting::ProviderSecret { .. } => 6,
            Waiting::DatabaseUnreachable(_) => 7,
            Waiting::DatabaseRefused { .. } => 8,
            Waiting::Download { .. } => 9,
            Waiting::Unhealthy(_) => 10,
            Waiting::CloudCode { .. } => 11,
            Waiting::SmtpShare { .. } => 12,
            Waiting::RedisUnreachable { .. } => 13,
            Waiting::S3Share { .. } => 14,
            Waiting::S3Bucket { .. } => 15,
            Waiting::DashboardKeys => 16,
        }
    }

    fn maintenance_ordinal(m: &Maintenance) -> usize {
        match m {
            Maintenance::Installing { .. } => 0,
            Maintenance::Starting => 1,
            Maintenance::Restarting => 2,
            Maintenance::RestoringLastGood => 3,
            Maintenance::Stopped => 4,
            Maintenance::PreparingCloudCode { .. } => 5,
        }
    }

    #[test]
    fn the_catalogue_shows_every_variant_once() {
        let b: Vec<usize> = Blocked::examples().iter().map(blocked_ordinal).collect();
        let w: Vec<usize> = Waiting::examples().iter().map(waiting_ordinal).collect();
        let m: Vec<usize> = Maintenance::examples()
            .iter()
            .map(maintenance_ordinal)
            .collect();
        assert_eq!(b, (0..12).collect::<Vec<_>>());
        assert_eq!(w, (0..17).collect::<Vec<_>>());
        assert_eq!(m, (0..6).collect::<Vec<_>>());
        let messages: BTreeSet<_> = catalogue()
            .into_iter()
            .map(|e| (e.status.kind.as_str(), e.status.message))
            .collect();
        assert_eq!(messages.len(), catalogue().len(), "two entries read alike");
    }

    #[test]
    fn readme_lists_the_catalogue() {
        let readme = include_str!("../../README.md");
        let begin =
            "<!-- statuses: rendered from src/charm/status.rs; `cargo test` checks it -->\n";
        let end = "<!-- end of statuses -->";
        let start = readme
            .find(begin)
            .expect("README.md has the statuses marker")
            + begin.len();
        let stop = start
            + readme[start..]
                .find(end)
                .expect("README.md ends the statuses list");
        let listed = &readme[start..stop];
        let want = readme_list();
        assert!(
            listed == want,
            "README.md's status list differs from the catalogue; replace it with:\n{want}"
        );
    }

    #[test]
    fn messages_read_as_before() {
        assert_eq!(
            Status::from(Blocked::InvalidConfig(vec![
                Invalid::new("port", "0 is not a port"),
                Invalid::new("workers", "must be 1..64"),
            ]))
            .message,
            "invalid config: port: 0 is not a port; workers: must be 1..64"
        );
        assert_eq!(
            Waiting::ProviderShare {
                kind: "mongodb".into(),
                what: Missing::Unit
            }
            .to_string(),
            "waiting for a mongodb unit to join"
        );
        assert_eq!(
            Waiting::ProviderShare {
                kind: "mongodb".into(),
                what: Missing::Address
            }
            .to_string(),
            "waiting for mongodb to publish its address"
        );
        assert_eq!(Minutes::of_seconds(61).to_string(), "2 min");
        assert_eq!(Minutes::of_seconds(0).to_string(), "1 min");
        let s = Serving {
            port: 1337,
            mount_path: "/parse".into(),
            workers: 1,
            memory_mib: None,
            version: "9.10.0".into(),
            postgis_hint: None,
            cloud_code: None,
            jobs_problem: None,
            live_query_scope: None,
            rate_limit_caveat: None,
            dashboard: None,
        };
        assert_eq!(
            s.to_string(),
            "serving on port 1337 at /parse, 1 worker, parse-server 9.10.0"
        );
        let with_code = Serving {
            cloud_code: Some("1a2b3c4d5e6f".into()),
            ..s
        };
        assert_eq!(
            with_code.to_string(),
            "serving on port 1337 at /parse, 1 worker, parse-server 9.10.0, cloud code 1a2b3c4d5e6f"
        );
    }
}
