//! Every path the workload uses, below a root (`/` on a unit; a scratch dir in tests).

use std::path::PathBuf;

/// The workload's paths below `root`. The constants are the paths as the service sees them
/// (always absolute from `/`), for rendered files.
#[derive(Debug, Clone)]
pub struct Paths {
    pub root: PathBuf,
}

impl Paths {
    pub const INSTALL_DIR: &'static str = "/opt/parse-server";
    pub const CONFIG_DIR: &'static str = "/etc/parse-server";
    /// parse-server's options (keys, database URI included): root and the service only.
    pub const CONFIG_FILE: &'static str = "/etc/parse-server/config.json";
    pub const UNIT_FILE: &'static str = "/etc/systemd/system/parse-server.service";
    /// The database provider's TLS CA (a relation's `tls-ca`).
    pub const DATABASE_CA_FILE: &'static str = "/etc/parse-server/database-ca.pem";
    /// PostgreSQL's user and password for parse-server's client (the service hooks read it).
    pub const DATABASE_CREDENTIALS_FILE: &'static str =
        "/etc/parse-server/database-credentials.json";
    /// The files adapter the charm ships for PostgreSQL (files in a table of the database).
    pub const FILES_ADAPTER: &'static str = "/opt/parse-server/charm/postgres-files-adapter.js";
    /// The mail adapter the charm ships (nodemailer, from the release that runs).
    pub const EMAIL_ADAPTER: &'static str = "/opt/parse-server/charm/smtp-email-adapter.js";
    pub const REDIS_CACHE_ADAPTER: &'static str = "/opt/parse-server/charm/redis-cache-adapter.js";
    /// The charm's files adapter for an s3 relation: new files to the bucket, older ones
    /// still read from the database's store.
    pub const S3_FILES_ADAPTER: &'static str = "/opt/parse-server/charm/s3-files-adapter.js";
    /// Parse Dashboard's options (the users' hashes and the keys: root and the service
    /// group only).
    pub const DASHBOARD_CONFIG: &'static str = "/etc/parse-server/dashboard.json";
    pub const DASHBOARD_UNIT_FILE: &'static str = "/etc/systemd/system/parse-dashboard.service";
    /// The charm's program that serves Parse Dashboard (its sessions kept in parse-server).
    pub const DASHBOARD_SERVER: &'static str = "/opt/parse-server/charm/dashboard.js";
    /// What every service process loads first (`node --require`).
    pub const SERVICE_HOOKS: &'static str = "/opt/parse-server/charm/service-hooks.js";
    /// Cloud Code revisions, each unpacked once into a directory named by its digest
    /// (root-owned, read-only to the service).
    pub const CLOUD_CODE_DIR: &'static str = "/opt/parse-server/cloud";
    /// The charm's loader check for a Cloud Code revision (run as the service's user).
    pub const CLOUD_CHECK: &'static str = "/opt/parse-server/charm/cloud-check.js";
    /// The job scheduler the timer starts on the leader, and what it wrote last.
    pub const JOB_SCHEDULER: &'static str = "/opt/parse-server/charm/job-scheduler.js";
    pub const JOB_SCHEDULER_RECORD: &'static str = "/var/lib/parse-server/job-scheduler.json";
    pub const JOBS_SERVICE_FILE: &'static str = "/etc/systemd/system/parse-server-jobs.service";
    pub const JOBS_TIMER_FILE: &'static str = "/etc/systemd/system/parse-server-jobs.timer";
    /// The service's home and only writable directory.
    pub const STATE_DIR: &'static str = "/var/lib/parse-server";
    /// The charm's own root-only state: the last configuration that served, the one being
    /// rolled out, the Node version cache, secrets on their way to `secret-add`.
    pub const CHARM_STATE: &'static str = "/var/lib/parse-server-charm";
    /// The charm's download cache (npm's cache, the Node tarball).
    pub const CHARM_CACHE: &'static str = "/var/cache/parse-server-charm";
    pub const NODE_DIR: &'static str = "/opt/parse-server/node";

    pub fn new(root: impl Into<PathBuf>) -> Self {
        Paths { root: root.into() }
    }

    /// Whether these are the machine's own paths (not a scratch root).
    pub fn is_system_root(&self) -> bool {
        self.root == std::path::Path::new("/")
    }

    fn at(&self, p: &str) -> PathBuf {
        self.root.join(p.trim_start_matches('/'))
    }
    pub fn install_dir(&self) -> PathBuf {
        self.at(Self::INSTALL_DIR)
    }
    pub fn config_dir(&self) -> PathBuf {
        self.at(Self::CONFIG_DIR)
    }
    pub fn config_file(&self) -> PathBuf {
        self.at(Self::CONFIG_FILE)
    }
    /// The environment file older charm revisions wrote (it held the keys): removed once
    /// the service serves from the option file alone.
    pub fn legacy_env_file(&self) -> PathBuf {
        self.config_dir().join("parse-server.env")
    }
    pub fn unit_file(&self) -> PathBuf {
        self.at(Self::UNIT_FILE)
    }
    pub fn database_ca_file(&self) -> PathBuf {
        self.at(Self::DATABASE_CA_FILE)
    }
    pub fn database_credentials_file(&self) -> PathBuf {
        self.at(Self::DATABASE_CREDENTIALS_FILE)
    }
    pub fn files_adapter(&self) -> PathBuf {
        self.at(Self::FILES_ADAPTER)
    }
    pub fn redis_cache_adapter(&self) -> PathBuf {
        self.at(Self::REDIS_CACHE_ADAPTER)
    }
    pub fn s3_files_adapter(&self) -> PathBuf {
        self.at(Self::S3_FILES_ADAPTER)
    }
    /// The S3 adapter's tree for `version`, as the service sees it.
    /// The tree of a package installed from one of the charm's lockfiles (its directory
    /// and pinned version: `install::Locked`), as the service sees it.
    pub fn locked_tree_path(dir: &str, version: &str) -> String {
        format!("{}/{dir}/{version}", Self::INSTALL_DIR)
    }
    pub fn locked_tree(&self, dir: &str, version: &str) -> PathBuf {
        self.at(&Self::locked_tree_path(dir, version))
    }

    pub fn dashboard_config(&self) -> PathBuf {
        self.at(Self::DASHBOARD_CONFIG)
    }
    pub fn dashboard_unit_file(&self) -> PathBuf {
        self.at(Self::DASHBOARD_UNIT_FILE)
    }
    pub fn dashboard_server(&self) -> PathBuf {
        self.at(Self::DASHBOARD_SERVER)
    }
    pub fn email_adapter(&self) -> PathBuf {
        self.at(Self::EMAIL_ADAPTER)
    }
    pub fn service_hooks(&self) -> PathBuf {
        self.at(Self::SERVICE_HOOKS)
    }
    pub fn cloud_code_root(&self) -> PathBuf {
        self.at(Self::CLOUD_CODE_DIR)
    }
    /// Where the Cloud Code revision with this digest is unpacked.
    pub fn cloud_code_dir(&self, digest: &str) -> PathBuf {
        self.cloud_code_root().join(digest)
    }
    pub fn cloud_check(&self) -> PathBuf {
        self.at(Self::CLOUD_CHECK)
    }
    /// The charm's record of Cloud Code revisions it refused or checked.
    pub fn cloud_code_record(&self) -> PathBuf {
        self.charm_state().join("cloud-code.json")
    }
    pub fn job_scheduler(&self) -> PathBuf {
        self.at(Self::JOB_SCHEDULER)
    }
    pub fn job_scheduler_record(&self) -> PathBuf {
        self.at(Self::JOB_SCHEDULER_RECORD)
    }
    pub fn jobs_service_file(&self) -> PathBuf {
        self.at(Self::JOBS_SERVICE_FILE)
    }
    pub fn jobs_timer_file(&self) -> PathBuf {
        self.at(Self::JOBS_TIMER_FILE)
    }
    /// Whether the charm last turned the job timer on (`on`) or off (`off`).
    pub fn job_timer_record(&self) -> PathBuf {
        self.charm_state().join("job-timer")
    }
    pub fn state_dir(&self) -> PathBuf {
        self.at(Self::STATE_DIR)
    }
    pub fn charm_state(&self) -> PathBuf {
        self.at(Self::CHARM_STATE)
    }
    pub fn charm_cache(&self) -> PathBuf {
        self.at(Self::CHARM_CACHE)
    }
    pub fn npm_cache(&self) -> PathBuf {
        self.charm_cache().join("npm")
    }
    pub fn node_dir(&self) -> PathBuf {
        self.at(Self::NODE_DIR)
    }
    /// The charm's own Node binary, when it installed one.
    pub fn own_node(&self) -> PathBuf {
        self.node_dir().join("bin/node")
    }
    /// Where release `version` is installed, as the service sees it.
    pub fn release_path(version: &str) -> String {
        format!("{}/releases/{version}", Self::INSTALL_DIR)
    }
    pub fn releases_dir(&self) -> PathBuf {
        self.install_dir().join("releases")
    }
    pub fn release_dir(&self, version: &str) -> PathBuf {
        self.at(&Self::release_path(version))
    }
    /// nodemailer's package.json in a release (the mail adapter's transport).
    pub fn mailer_package_json(&self, version: &str) -> PathBuf {
        self.release_dir(version)
            .join("node_modules/nodemailer/package.json")
    }
    /// parse-server's own package.json in a release.
    pub fn package_json(&self, version: &str) -> PathBuf {
        self.release_dir(version)
            .join("node_modules/parse-server/package.json")
    }
    /// The release's option table, recorded at install time.
    pub fn options_file(&self, version: &str) -> PathBuf {
        self.release_dir(version).join("charm-options.json")
    }
    /// The files of the configuration that last served (for rolling back to it).
    pub fn last_good_dir(&self) -> PathBuf {
        self.charm_state().join("last-good")
    }
    /// The rollout in progress: written before the service's files change, removed once the
    /// service serves them (or the previous ones again).
    pub fn rollout_file(&self) -> PathBuf {
        self.charm_state().join("rollout.json")
    }
    /// The configuration that did not start, so that it is not retried in a loop.
    pub fn failed_file(&self) -> PathBuf {
        self.charm_state().join("failed-rendering")
    }
    pub fn node_version_cache(&self) -> PathBuf {
        self.charm_state().join("node-version")
    }
    pub fn etc_passwd(&self) -> PathBuf {
        self.at("/etc/passwd")
    }
    pub fn etc_group(&self) -> PathBuf {
        self.at("/etc/group")
    }
    pub fn system_cas(&self) -> PathBuf {
        self.at("/etc/ssl/certs/ca-certificates.crt")
    }
}
