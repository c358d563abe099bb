//! The two files that configure the service, rendered from a [`ServiceSpec`]: parse-server's
//! option file (JSON, from serde_json: every value, secrets included, is a JSON string with
//! unambiguous escaping, so no value can inject another option or line) and the systemd unit
//! (a tera template, which holds no value an operator types).

use std::path::PathBuf;

use anyhow::{bail, Result};
use serde_json::{Map, Value};

use super::cloud_code::CloudCode;
use super::database::PostgresTls;
use super::install::S3_ADAPTER;
use super::paths::Paths;
use super::s3::S3Store;
use super::user::SERVICE_USER;
use crate::relations::smtp::SmtpServer;
use crate::uri::DbUri;

const UNIT_TEMPLATE: &str = include_str!("../../templates/parse-server.service.tera");

/// Everything the rendered files depend on.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceSpec {
    pub app_id: String,
    pub master_key: String,
    pub database: DbUri,
    pub port: u16,
    pub mount_path: String,
    pub public_server_url: Option<String>,
    pub master_key_ips: Vec<String>,
    pub allow_client_class_creation: bool,
    pub log_level: String,
    /// Worker processes; 1 runs parse-server without its cluster master.
    pub workers: u32,
    /// V8 old-space limit per process, MiB.
    pub heap_mib: u32,
    /// V8 semi-space size per process (`--max-semi-space-size`), MiB.
    pub semi_space_mib: u32,
    /// systemd `MemoryMax=` and `MemoryHigh=`, MiB.
    pub memory_max_mib: u64,
    pub memory_high_mib: u64,
    pub node: PathBuf,
    pub version: String,
    /// Other parse-server options, keys the charm sets itself excluded.
    pub extra_options: Map<String, Value>,
    /// The load balancers in front of the unit, whose `X-Forwarded-For` parse-server
    /// believes (so that `masterKeyIps` sees the real client).
    pub trust_proxy: Vec<String>,
    /// Push schema changes to every instance (`databaseOptions.enableSchemaHooks`).
    pub schema_hooks: bool,
    /// The database provider's TLS CA, written next to the option file; parse-server then
    /// speaks TLS verified with it.
    pub ca_pem: Option<String>,
    /// How parse-server's PostgreSQL client speaks TLS (`Off` for MongoDB).
    pub postgres_tls: PostgresTls,
    /// On stop, how long the process answers its health check with 503 while still serving,
    /// so that a load balancer takes it out of rotation first (0: no balancer).
    pub drain_seconds: u32,
    /// The Cloud Code revision parse-server loads (its `cloud` option), if any.
    pub cloud_code: Option<CloudCode>,
    /// The mail adapter's settings (an smtp relation), if any.
    pub email: Option<EmailSpec>,
    /// The Redis every instance shares, if any.
    pub redis: Option<RedisSpec>,
    /// The classes LiveQuery serves; empty: no LiveQuery server.
    pub live_query_classes: Vec<String>,
    /// The bucket new files go to (an s3 relation), if any.
    pub s3: Option<S3Store>,
    /// The read-only master key and who may use it (the dashboard's read-only users).
    pub read_only_master_key: Option<(String, Vec<String>)>,
}

/// What parse-server sends mail with: the SMTP server the relation gives, the sender, and
/// the options that go with mail.
#[derive(Debug, Clone, PartialEq)]
pub struct EmailSpec {
    pub server: SmtpServer,
    pub from: String,
    /// parse-server's `appName` (its mails and pages name the application).
    pub app_name: String,
    pub verify_user_emails: bool,
}

/// A Redis every instance shares.
#[derive(Debug, Clone, PartialEq)]
pub struct RedisSpec {
    /// Its URL with the credentials (a secret).
    pub url: String,
    /// The CA its TLS certificate is verified with (else Node's public CAs).
    pub ca_pem: Option<String>,
    /// Whether the rate limits count in it (its user may run scripts, and no CA is needed:
    /// parse-server gives their client a URL only).
    pub rate_limits: bool,
}

/// The machine's CA store, which the mail adapter trusts besides Node's own CAs (where a
/// site's CA is installed).
pub const MACHINE_CA_STORE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// How long an instance trusts its schema cache, in seconds: another instance's schema
/// change reaches it within this time even where the database cannot push it.
pub const SCHEMA_CACHE_TTL: u64 = 60;

const FILES_ADAPTER_JS: &str = include_str!("../../charm/node/postgres-files-adapter.js");

const SERVICE_HOOKS_JS: &str = include_str!("../../charm/node/service-hooks.js");

const EMAIL_ADAPTER_JS: &str = include_str!("../../charm/node/smtp-email-adapter.js");

const REDIS_CACHE_ADAPTER_JS: &str = include_str!("../../charm/node/redis-cache-adapter.js");

const S3_FILES_ADAPTER_JS: &str = include_str!("../../charm/node/s3-files-adapter.js");

/// The S3 files adapter's source, installed at `Paths::S3_FILES_ADAPTER`.
pub fn s3_files_adapter_source() -> &'static str {
    S3_FILES_ADAPTER_JS
}

/// The shared cache's adapter, installed at `Paths::REDIS_CACHE_ADAPTER`.
pub fn redis_cache_adapter_source() -> &'static str {
    REDIS_CACHE_ADAPTER_JS
}

/// The mail adapter's source, installed at `Paths::EMAIL_ADAPTER`.
pub fn email_adapter_source() -> &'static str {
    EMAIL_ADAPTER_JS
}

/// The files adapter's source, installed at `Paths::FILES_ADAPTER`.
pub fn files_adapter_source() -> &'static str {
    FILES_ADAPTER_JS
}

/// The code every service process loads first (`Paths::SERVICE_HOOKS`): heap statistics on
/// SIGUSR2.
pub fn service_hooks_source() -> &'static str {
    SERVICE_HOOKS_JS
}

/// The files that configure the service.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Rendered {
    pub config_json: String,
    pub unit: String,
    /// The database's TLS CA bundle, if the database uses TLS.
    pub ca_pem: Option<String>,
    /// PostgreSQL's user and password (JSON), which the service hooks hand to parse-server's
    /// client as `PGUSER`/`PGPASSWORD`: parse-server's own URI parser would pass them on
    /// still percent-encoded.
    pub db_credentials: Option<String>,
}

impl Rendered {
    /// A stable digest of both files (FNV-1a, 64 bits): names a rendering in the charm's
    /// records across hooks and charm upgrades.
    pub fn digest(&self) -> String {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in self
            .config_json
            .bytes()
            .chain([0u8])
            .chain(self.unit.bytes())
            .chain([0u8])
            .chain(self.ca_pem.as_deref().unwrap_or("").bytes())
            .chain([0u8])
            .chain(self.db_credentials.as_deref().unwrap_or("").bytes())
        {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        format!("{h:016x}")
    }

    /// The parse-server release this rendering runs (from its unit's command line).
    pub fn version(&self) -> Option<String> {
        let releases = format!("{}/releases/", Paths::INSTALL_DIR);
        let exec = self.unit.lines().find(|l| l.starts_with("ExecStart="))?;
        let after = exec.split_once(releases.as_str())?.1;
        Some(after.split('/').next()?.to_owned())
    }

    /// The digest of the Cloud Code revision this rendering loads, if any.
    pub fn cloud_code_digest(&self) -> Option<String> {
        let v: Value = serde_json::from_str(&self.config_json).ok()?;
        let main = v.get("cloud")?.as_str()?;
        let rest = main
            .strip_prefix(Paths::CLOUD_CODE_DIR)?
            .strip_prefix('/')?;
        Some(rest.split('/').next()?.to_owned())
    }

    /// The memory caps this rendering runs with.
    pub fn caps(&self) -> Caps {
        let unit_value = |key: &str| {
            self.unit
                .lines()
                .find_map(|l| l.strip_prefix(key)?.strip_suffix('M')?.parse().ok())
        };
        let exec_flag = |flag: &str| {
            self.unit
                .lines()
                .find(|l| l.starts_with("ExecStart="))
                .and_then(|l| {
                    l.split_whitespace()
                        .find_map(|a| a.strip_prefix(flag)?.parse().ok())
                })
        };
        let heap_mib = exec_flag("--max-old-space-size=");
        let semi_space_mib = exec_flag("--max-semi-space-size=");
        let workers = serde_json::from_str::<Value>(&self.config_json)
            .ok()
            .and_then(|v| v.get("cluster")?.as_u64())
            .map_or(1, |n| n as u32);
        Caps {
            workers,
            heap_mib,
            semi_space_mib,
            memory_max_mib: unit_value("MemoryMax="),
            memory_high_mib: unit_value("MemoryHigh="),
        }
    }

    /// The bucket this rendering keeps new files in, if any (read back from the S3
    /// adapter's options, as `s3_adapter_options` wrote them).
    pub fn s3_store(&self) -> Option<S3Store> {
        let v: Value = serde_json::from_str(&self.config_json).ok()?;
        let adapter = v.get("filesAdapter")?;
        if adapter.get("module")?.as_str()? != Paths::S3_FILES_ADAPTER {
            return None;
        }
        let o = adapter.get("options")?;
        let text = |k: &str| Some(o.get(k)?.as_str()?.to_owned());
        let (tls, host, port) =
            crate::relations::s3::endpoint(o.get("endpoint")?.as_str()?).ok()?;
        Some(S3Store {
            tls,
            host,
            port,
            region: text("region")?,
            bucket: text("bucket")?,
            prefix: text("bucketPrefix")?,
            path_style: o.get("forcePathStyle")?.as_bool()?,
            access_key: text("accessKeyId")?,
            secret_key: text("secretAccessKey")?,
            ca_pem: text("ca"),
        })
    }

    /// The port and mount path this rendering serves on.
    pub fn endpoint(&self) -> Option<(u16, String)> {
        let v: Value = serde_json::from_str(&self.config_json).ok()?;
        let port = u16::try_from(v.get("port")?.as_u64()?).ok()?;
        Some((port, v.get("mountPath")?.as_str()?.to_owned()))
    }
}

/// Workers and memory caps of a rendering.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caps {
    pub workers: u32,
    pub heap_mib: Option<u32>,
    pub semi_space_mib: Option<u32>,
    pub memory_max_mib: Option<u64>,
    pub memory_high_mib: Option<u64>,
}

/// A path that can stand unquoted in a unit file's `ExecStart=`.
fn check_unit_path(p: &str) -> Result<()> {
    if !p.starts_with('/')
        || !p
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._+-".contains(c))
    {
        bail!("path {p:?} cannot be used in a systemd unit");
    }
    Ok(())
}

/// The URL parse-server uses to reach itself (health check at start, Cloud Code's SDK): the
/// unit's own loopback, never a load balancer.
fn local_server_url(port: u16, mount_path: &str) -> String {
    format!("http://127.0.0.1:{port}{mount_path}")
}

/// Renders the option file and the systemd unit.
pub fn render(spec: &ServiceSpec) -> Result<Rendered> {
    let node = spec.node.to_string_lossy().into_owned();
    check_unit_path(&node)?;
    let release_dir = Paths::release_path(&spec.version);
    check_unit_path(&release_dir)?;

    // Extra options first, then the charm's own keys (config validation refuses extra
    // options that name them; inserting last makes that a second guarantee).
    let mut options = spec.extra_options.clone();
    fn put(options: &mut Map<String, Value>, k: &str, v: Value) {
        options.insert(k.to_owned(), v);
    }
    let mut set = |k: &str, v: Value| put(&mut options, k, v);
    set("appId", spec.app_id.clone().into());
    set("masterKey", spec.master_key.clone().into());
    let (database_uri, db_credentials) = database_for_parse_server(spec);
    set("databaseURI", database_uri.clone().into());
    set("port", spec.port.into());
    set("mountPath", spec.mount_path.clone().into());
    set(
        "serverURL",
        local_server_url(spec.port, &spec.mount_path).into(),
    );
    if let Some(u) = &spec.public_server_url {
        set("publicServerURL", u.clone().into());
    }
    set("masterKeyIps", spec.master_key_ips.clone().into());
    if let Some((key, ips)) = &spec.read_only_master_key {
        set("readOnlyMasterKey", key.clone().into());
        set("readOnlyMasterKeyIps", ips.clone().into());
    }
    set(
        "allowClientClassCreation",
        spec.allow_client_class_creation.into(),
    );
    set("logLevel", spec.log_level.clone().into());
    // JSON null turns file logging off; the environment's PARSE_SERVER_LOGS_FOLDER=null
    // does not (parse-server 9.10.0 takes the string "null" as a folder name).
    set("logsFolder", Value::Null);
    // A JSON number: the worker count (a string would mean "one per CPU" in older releases).
    if spec.workers > 1 {
        set("cluster", spec.workers.into());
    }
    if let Some(code) = &spec.cloud_code {
        set("cloud", code.main_path().into());
    }
    if !spec.trust_proxy.is_empty() {
        set("trustProxy", spec.trust_proxy.clone().into());
    }
    if spec.cloud_code.is_some() {
        // A scheduled job's run carries a request id that parse-server stores with a unique
        // index before the job starts, so that it runs once across units (`super::jobs`).
        let mut idempotency = match options.get("idempotencyOptions") {
            Some(Value::Object(m)) => m.clone(),
            _ => Map::new(),
        };
        let mut paths = match idempotency.get("paths") {
            Some(Value::Array(a)) => a.clone(),
            _ => Vec::new(),
        };
        if !paths.iter().any(|p| p == super::jobs::IDEMPOTENCY_PATH) {
            paths.push(super::jobs::IDEMPOTENCY_PATH.into());
        }
        idempotency.insert("paths".into(), Value::Array(paths));
        idempotency
            .entry("ttl")
            .or_insert(super::jobs::IDEMPOTENCY_TTL_SECONDS.into());
        options.insert("idempotencyOptions".into(), Value::Object(idempotency));
    }
    // Several instances on one database keep their schema caches in step: pushed where the
    // database can (PostgreSQL, MongoDB replica sets), refetched within a minute anyway.
    let mut db_options = match options.get("databaseOptions") {
        Some(Value::Object(m)) => m.clone(),
        _ => Map::new(),
    };
    db_options.insert("schemaCacheTtl".into(), SCHEMA_CACHE_TTL.into());
    let postgres_ssl = postgres_ssl(spec);
    if let Some(ssl) = &postgres_ssl {
        db_options.insert("ssl".into(), ssl.clone());
    }
    if spec.schema_hooks {
        db_options.insert("enableSchemaHooks".into(), true.into());
    } else {
        db_options.remove("enableSchemaHooks");
    }
    let db_options = Value::Object(db_options);
    options.insert("databaseOptions".into(), db_options.clone());
    // Where files go: the database's own store (GridFS on MongoDB, the charm's table on
    // PostgreSQL), or with an s3 relation the bucket, the database's store still read for
    // the files written before it.
    let database_store = (spec.database.is_postgres()
        && !spec.extra_options.contains_key("filesAdapter"))
    .then(|| {
        let mut adapter = serde_json::json!({
            "databaseURI": database_uri,
            "revision": source_digest(FILES_ADAPTER_JS),
        });
        if let Some(ssl) = postgres_ssl {
            adapter["ssl"] = ssl;
        }
        serde_json::json!({"module": Paths::FILES_ADAPTER, "options": adapter})
    });
    if let Some(store) = &spec.s3 {
        let fallback = match database_store {
            Some(table) => serde_json::json!({"postgres": table}),
            None => {
                let mut gridfs = serde_json::json!({
                    "databaseURI": database_uri,
                    "databaseOptions": db_options,
                });
                if let Some(key) = spec.extra_options.get("fileKey") {
                    gridfs["fileKey"] = key.clone();
                }
                serde_json::json!({"gridfs": gridfs})
            }
        };
        options.insert(
            "filesAdapter".into(),
            serde_json::json!({
                "module": Paths::S3_FILES_ADAPTER,
                "options": s3_adapter_options(store, fallback),
            }),
        );
    } else if let Some(table) = database_store {
        options.insert("filesAdapter".into(), table);
    }
    if let Some(email) = &spec.email {
        set_email(&mut options, email, &release_dir);
    }
    set_shared_state(&mut options, spec, &release_dir);
    let mut config_json = serde_json::to_string_pretty(&Value::Object(options))?;
    config_json.push('\n');

    let mut tera = tera::Tera::default();
    tera.add_raw_template("unit", UNIT_TEMPLATE)?;
    let mut ctx = tera::Context::new();
    ctx.insert("user", SERVICE_USER);
    ctx.insert("version", &spec.version);
    ctx.insert("state_dir", Paths::STATE_DIR);
    ctx.insert("config_file", Paths::CONFIG_FILE);
    ctx.insert("node", &node);
    ctx.insert("heap_mib", &spec.heap_mib);
    ctx.insert("semi_space_mib", &spec.semi_space_mib);
    ctx.insert("drain_seconds", &spec.drain_seconds);
    ctx.insert("memory_max", &spec.memory_max_mib);
    ctx.insert("memory_high", &spec.memory_high_mib);
    ctx.insert("service_hooks", Paths::SERVICE_HOOKS);
    // The hooks file's digest, so that a new one restarts the service that loads it.
    ctx.insert("service_hooks_digest", &source_digest(SERVICE_HOOKS_JS));
    ctx.insert("release_dir", &release_dir);
    ctx.insert("low_port", &(spec.port < 1024));
    // parse-server `import`s Cloud Code (rather than `require`s it) when npm would say the
    // package is an ES module.
    ctx.insert(
        "cloud_code_module",
        &spec.cloud_code.as_ref().is_some_and(|c| c.module),
    );

    Ok(Rendered {
        config_json,
        unit: tera.render("unit", &ctx)?,
        ca_pem: spec.ca_pem.clone(),
        db_credentials,
    })
}

/// The charm's S3 adapter's options: the bucket and how to reach it, the credentials (the
/// option file is root's and the service's only), the store read for older files.
fn s3_adapter_options(store: &S3Store, fallback: Value) -> Value {
    let mut o = serde_json::json!({
        "adapterDir": S3_ADAPTER.tree_path(),
        "revision": source_digest(S3_FILES_ADAPTER_JS),
        "bucket": store.bucket,
        "region": store.region,
        "bucketPrefix": store.prefix,
        "endpoint": store.endpoint(),
        "forcePathStyle": store.path_style,
        "accessKeyId": store.access_key,
        "secretAccessKey": store.secret_key,
        "awsChecksums": store.host.ends_with(".amazonaws.com"),
        "fallback": fallback,
    });
    if let Some(ca) = &store.ca_pem {
        o["ca"] = ca.clone().into();
    }
    o
}

/// LiveQuery, and what the instances share through Redis: LiveQuery's events (published by
/// the REST API's instance, delivered by every instance's WebSocket server), the cache of
/// sessions, users and roles (a logout is seen by every instance at once) and the rate
/// limits' counters. Without Redis each of these is per process.
fn set_shared_state(options: &mut Map<String, Value>, spec: &ServiceSpec, release_dir: &str) {
    // node-redis takes a CA as a TLS socket option beside the URL.
    let socket = |r: &RedisSpec| {
        r.ca_pem
            .as_ref()
            .map(|ca| serde_json::json!({"socket": {"ca": ca}}))
    };
    if !spec.live_query_classes.is_empty() {
        let mut live_query = serde_json::json!({"classNames": spec.live_query_classes});
        options.insert("startLiveQueryServer".into(), true.into());
        if let Some(r) = &spec.redis {
            let mut server = serde_json::json!({"redisURL": r.url});
            live_query["redisURL"] = r.url.clone().into();
            if let Some(o) = socket(r) {
                live_query["redisOptions"] = o.clone();
                server["redisOptions"] = o;
            }
            options.insert("liveQueryServerOptions".into(), server);
        }
        options.insert("liveQuery".into(), live_query);
    }
    let Some(r) = &spec.redis else {
        return;
    };
    // The charm's adapter around the release's RedisCacheAdapter: fails fast while Redis
    // is unreachable (charm/node/redis-cache-adapter.js).
    let mut cache = serde_json::json!({
        "url": r.url,
        "releaseDir": release_dir,
        "revision": source_digest(REDIS_CACHE_ADAPTER_JS),
    });
    if let Some(Value::Object(o)) = socket(r) {
        cache.as_object_mut().expect("an object").extend(o);
    }
    options.insert(
        "cacheAdapter".into(),
        serde_json::json!({"module": Paths::REDIS_CACHE_ADAPTER, "options": cache}),
    );
    if !r.rate_limits {
        return;
    }
    let url = r.url.as_str();
    match options.get_mut("rateLimit") {
        Some(Value::Array(limits)) => {
            for limit in limits.iter_mut().filter_map(Value::as_object_mut) {
                limit.insert("redisUrl".into(), url.into());
            }
        }
        Some(Value::Object(limit)) => {
            limit.insert("redisUrl".into(), url.into());
        }
        _ => {}
    }
}

/// parse-server's mail options: the charm's adapter (nodemailer from the release that runs,
/// the password in this file only), `appName`, `verifyUserEmails`. Without an smtp relation
/// none is set (parse-server's own defaults: no mail).
fn set_email(options: &mut Map<String, Value>, email: &EmailSpec, release_dir: &str) {
    let server = &email.server;
    let mut adapter = serde_json::json!({
        "releaseDir": release_dir,
        "revision": source_digest(EMAIL_ADAPTER_JS),
        "from": email.from,
        "host": server.host,
        "port": server.port,
        "transportSecurity": server.security.as_str(),
        "rejectUnauthorized": server.verify_certificate,
        "caFile": MACHINE_CA_STORE,
    });
    if let Some((user, password)) = &server.auth {
        adapter["user"] = user.clone().into();
        adapter["password"] = password.clone().into();
    }
    options.insert(
        "emailAdapter".into(),
        serde_json::json!({"module": Paths::EMAIL_ADAPTER, "options": adapter}),
    );
    options.insert("appName".into(), email.app_name.clone().into());
    if email.verify_user_emails {
        options.insert("verifyUserEmails".into(), true.into());
    }
}

/// A digest of a file the charm ships, so that a new one restarts the service loading it.
pub(crate) fn source_digest(source: &str) -> String {
    Rendered {
        config_json: source.into(),
        unit: String::new(),
        ca_pem: None,
        db_credentials: None,
    }
    .digest()
}

/// parse-server's PostgreSQL client's `ssl` options (`databaseOptions.ssl`, which replace
/// what its URI parser made of `ssl`/`ca`), or `None` without TLS.
///
/// `host` is there for the certificate check: the `pg` release parse-server 9.10.0's
/// pg-promise bundles (8.18) leaves Node to check the server's certificate against
/// `localhost` when the server is named by an IP address (as Charmed PostgreSQL names it), so
/// no certificate of the provider's would pass; with `host`, Node checks the address the
/// client connects to (what `pg` 8.23 does itself).
fn postgres_ssl(spec: &ServiceSpec) -> Option<Value> {
    let host = spec.database.hosts.first()?.name.clone();
    match &spec.postgres_tls {
        PostgresTls::Off => None,
        PostgresTls::Ca(pem) => Some(serde_json::json!({"ca": pem, "host": host})),
        PostgresTls::PublicRoots => Some(serde_json::json!({"host": host})),
        PostgresTls::Unverified => Some(serde_json::json!({"rejectUnauthorized": false})),
    }
}

/// The database URI as parse-server reads it, and PostgreSQL's credentials beside it.
///
/// - MongoDB's driver gets the provider's CA as `tls=true&tlsCAFile=…`. PostgreSQL's TLS is
///   in `databaseOptions.ssl` ([`postgres_ssl`]); libpq's `sslmode`/`sslrootcert` would mean
///   nothing to parse-server's URI parser.
/// - PostgreSQL's user and password stay out of the URI: that parser takes them from
///   `new URL(uri)` still percent-encoded, so a password with a space or a quote would
///   never authenticate. Without them in the URI, its client (`pg`) reads `PGUSER` and
///   `PGPASSWORD`, which the service hooks set from the credentials file.
fn database_for_parse_server(spec: &ServiceSpec) -> (String, Option<String>) {
    let mut uri = spec.database.clone();
    if !uri.is_postgres() {
        if spec.ca_pem.is_some() {
            uri.set_option("tls", "true");
            uri.set_option("tlsCAFile", Paths::DATABASE_CA_FILE);
        }
        return (uri.to_secret_string(), None);
    }
    let credentials = (uri.user.is_some() || uri.password.is_some()).then(|| {
        let mut c = Map::new();
        if let Some(u) = &uri.user {
            c.insert("user".into(), u.clone().into());
        }
        if let Some(p) = &uri.password {
            c.insert("password".into(), p.clone().into());
        }
        let mut text = Value::Object(c).to_string();
        text.push('\n');
        text
    });
    (uri.without_credentials().to_secret_string(), credentials)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    pub(crate) fn spec() -> ServiceSpec {
        ServiceSpec {
            app_id: "shop".into(),
            master_key: "k=e y#x`q`%!~".into(),
            database: DbUri::parse("mongodb://10.0.0.5:27017,[fd00::1]:27017/parse?replicaSet=rs0")
                .unwrap(),
            port: 1337,
            mount_path: "/parse".into(),
            public_server_url: None,
            master_key_ips: vec!["127.0.0.1".into(), "::1".into()],
            allow_client_class_creation: false,
            log_level: "info".into(),
            workers: 1,
            heap_mib: 256,
            semi_space_mib: 16,
            memory_max_mib: 3072,
            memory_high_mib: 2764,
            node: "/usr/bin/node".into(),
            version: "9.10.0".into(),
            extra_options: Map::new(),
            trust_proxy: Vec::new(),
            schema_hooks: false,
            ca_pem: None,
            postgres_tls: PostgresTls::Off,
            drain_seconds: 0,
            cloud_code: None,
            email: None,
            redis: None,
            live_query_classes: Vec::new(),
            s3: None,
            read_only_master_key: None,
        }
    }

    fn bucket() -> S3Store {
        S3Store {
            tls: true,
            host: "s3.example.com".into(),
            port: 9000,
            region: "eu-west-1".into(),
            bucket: "parse-files".into(),
            prefix: "shop/".into(),
            path_style: true,
            access_key: "AK".into(),
            secret_key: "S/K+".into(),
            ca_pem: Some("PEM".into()),
        }
    }

    #[test]
    fn files_go_to_the_bucket_and_older_ones_are_read_from_the_database_s_store() {
        // MongoDB: GridFS by default (parse-server's own), read behind the bucket.
        assert!(options(&spec()).get("filesAdapter").is_none());
        let mut s = spec();
        s.s3 = Some(bucket());
        let v = options(&s);
        let a = &v["filesAdapter"];
        assert_eq!(a["module"], Paths::S3_FILES_ADAPTER);
        let o = &a["options"];
        assert_eq!(o["endpoint"], "https://s3.example.com:9000");
        assert_eq!(o["bucket"], "parse-files");
        assert_eq!(o["bucketPrefix"], "shop/");
        assert_eq!(o["region"], "eu-west-1");
        assert_eq!(o["forcePathStyle"], true);
        assert_eq!(o["secretAccessKey"], "S/K+");
        assert_eq!(o["ca"], "PEM");
        assert_eq!(o["awsChecksums"], false);
        assert_eq!(o["adapterDir"], S3_ADAPTER.tree_path().as_str());
        assert_eq!(o["fallback"]["gridfs"]["databaseURI"], v["databaseURI"]);
        assert_eq!(render(&s).unwrap().s3_store(), Some(bucket()));
        assert_eq!(render(&spec()).unwrap().s3_store(), None);
        assert_eq!(
            o["fallback"]["gridfs"]["databaseOptions"],
            v["databaseOptions"]
        );
        // PostgreSQL: the charm's table, read behind the bucket.
        let mut pg = spec();
        pg.database = DbUri::parse("postgres://u:p@db:5432/parse").unwrap();
        let table = options(&pg)["filesAdapter"].clone();
        assert_eq!(table["module"], Paths::FILES_ADAPTER);
        pg.s3 = Some(bucket());
        let v = options(&pg);
        assert_eq!(v["filesAdapter"]["options"]["fallback"]["postgres"], table);
    }

    fn options(s: &ServiceSpec) -> Value {
        serde_json::from_str(&render(s).unwrap().config_json).unwrap()
    }

    #[test]
    fn live_query_and_redis_shared_by_every_instance() {
        let plain = options(&spec());
        for k in ["liveQuery", "startLiveQueryServer", "cacheAdapter"] {
            assert!(plain.get(k).is_none(), "{k}");
        }
        let mut s = spec();
        s.live_query_classes = vec!["Message".into()];
        let v = options(&s);
        assert_eq!(v["liveQuery"], json!({"classNames": ["Message"]}));
        assert_eq!(v["startLiveQueryServer"], true);
        assert!(v.get("liveQueryServerOptions").is_none());
        assert!(v.get("cacheAdapter").is_none());

        let url = "redis://:pw@10.0.0.9:6379";
        s.redis = Some(RedisSpec {
            url: url.into(),
            ca_pem: None,
            rate_limits: true,
        });
        s.extra_options = json!({"rateLimit": [{"requestPath": "*", "requestTimeWindow": 1000, "requestCount": 5}]})
            .as_object()
            .unwrap()
            .clone();
        let v = options(&s);
        assert_eq!(v["liveQuery"]["redisURL"], url);
        assert_eq!(v["liveQueryServerOptions"], json!({"redisURL": url}));
        assert_eq!(
            v["cacheAdapter"]["module"],
            "/opt/parse-server/charm/redis-cache-adapter.js"
        );
        assert_eq!(v["cacheAdapter"]["options"]["url"], url);
        assert_eq!(
            v["cacheAdapter"]["options"]["releaseDir"],
            "/opt/parse-server/releases/9.10.0"
        );
        assert!(v["cacheAdapter"]["options"]["revision"].is_string());
        assert_eq!(v["rateLimit"][0]["redisUrl"], url);
        assert_eq!(v["rateLimit"][0]["requestCount"], 5);
        // Redis without LiveQuery: the cache and the limits only.
        s.live_query_classes.clear();
        s.extra_options = json!({"rateLimit": {"requestPath": "*", "requestTimeWindow": 1000, "requestCount": 5}})
            .as_object()
            .unwrap()
            .clone();
        let v = options(&s);
        assert!(v.get("liveQuery").is_none());
        assert_eq!(v["rateLimit"]["redisUrl"], url);
        assert!(v["cacheAdapter"].is_object());
        // A user that may not run scripts, or a private CA: the limits stay per process,
        // the CA goes with every other client.
        let ca = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
        s.redis = Some(RedisSpec {
            url: "rediss://u:pw@10.0.0.9:6379".into(),
            ca_pem: Some(ca.into()),
            rate_limits: false,
        });
        s.live_query_classes = vec!["Message".into()];
        let v = options(&s);
        assert!(v["rateLimit"].get("redisUrl").is_none(), "{v}");
        assert_eq!(v["cacheAdapter"]["options"]["socket"]["ca"], ca);
        assert_eq!(
            v["cacheAdapter"]["options"]["url"],
            "rediss://u:pw@10.0.0.9:6379"
        );
        assert_eq!(
            v["liveQuery"]["redisOptions"],
            json!({"socket": {"ca": ca}})
        );
        assert_eq!(
            v["liveQueryServerOptions"]["redisOptions"]["socket"]["ca"],
            ca
        );
    }

    #[test]
    fn cloud_code_is_the_charm_s_option_and_an_es_module_is_imported() {
        let plain = render(&spec()).unwrap();
        assert_eq!(plain.cloud_code_digest(), None);
        assert!(!plain.unit.contains("npm_package_type"));
        let mut s = spec();
        s.extra_options = json!({"cloud": "/tmp/evil.js"})
            .as_object()
            .unwrap()
            .clone();
        s.cloud_code = Some(CloudCode {
            digest: "0123456789ab".into(),
            module: false,
        });
        let r = render(&s).unwrap();
        let v: Value = serde_json::from_str(&r.config_json).unwrap();
        assert_eq!(
            v["cloud"],
            json!("/opt/parse-server/cloud/0123456789ab/main.js")
        );
        assert_eq!(r.cloud_code_digest().as_deref(), Some("0123456789ab"));
        assert_eq!(
            v["idempotencyOptions"],
            json!({"paths": ["jobs/.*"], "ttl": 172800})
        );
        s.extra_options = json!({"idempotencyOptions": {"paths": ["functions/.*"], "ttl": 60}})
            .as_object()
            .unwrap()
            .clone();
        let theirs: Value = serde_json::from_str(&render(&s).unwrap().config_json).unwrap();
        assert_eq!(
            theirs["idempotencyOptions"],
            json!({"paths": ["functions/.*", "jobs/.*"], "ttl": 60})
        );
        assert!(!r.unit.contains("npm_package_type"));
        s.cloud_code = Some(CloudCode {
            digest: "0123456789ab".into(),
            module: true,
        });
        let m = render(&s).unwrap();
        assert!(m.unit.contains("\nEnvironment=npm_package_type=module\n"));
        assert_ne!(m.digest(), r.digest());
    }

    #[test]
    fn option_file_snapshot() {
        let r = render(&spec()).unwrap();
        assert_eq!(
            r.config_json,
            r#"{
  "appId": "shop",
  "masterKey": "k=e y#x`q`%!~",
  "databaseURI": "mongodb://10.0.0.5:27017,[fd00::1]:27017/parse?replicaSet=rs0",
  "port": 1337,
  "mountPath": "/parse",
  "serverURL": "http://127.0.0.1:1337/parse",
  "masterKeyIps": [
    "127.0.0.1",
    "::1"
  ],
  "allowClientClassCreation": false,
  "logLevel": "info",
  "logsFolder": null,
  "databaseOptions": {
    "schemaCacheTtl": 60
  }
}
"#
        );
        assert_eq!(r.endpoint(), Some((1337, "/parse".to_owned())));
        assert_eq!(r.version().as_deref(), Some("9.10.0"));
    }

    #[test]
    fn unit_file_snapshot() {
        let mut s = spec();
        s.heap_mib = 512;
        s.semi_space_mib = 8;
        s.workers = 3;
        s.public_server_url = Some("https://api.example.com/parse".into());
        let r = render(&s).unwrap();
        let exec = r
            .unit
            .lines()
            .find(|l| l.starts_with("ExecStart="))
            .unwrap();
        assert_eq!(
            exec,
            "ExecStart=/usr/bin/node --max-old-space-size=512 --max-semi-space-size=8 --require /opt/parse-server/charm/service-hooks.js /opt/parse-server/releases/9.10.0/node_modules/parse-server/bin/parse-server /etc/parse-server/config.json"
        );
        assert!(r.unit.contains("\nUser=parse-server\n"));
        assert!(r.unit.contains("\nGroup=parse-server\n"));
        assert!(r.unit.contains("\nRestart=on-failure\n"));
        assert!(r.unit.contains("\nMemoryMax=3072M\n"));
        assert!(r.unit.contains("\nMemoryHigh=2764M\n"));
        assert!(r.unit.contains("\nCapabilityBoundingSet=\n"));
        assert!(!r.unit.contains("AmbientCapabilities"));
        assert!(!r.unit.contains("EnvironmentFile"), "no value in the unit");
        let v: Value = serde_json::from_str(&r.config_json).unwrap();
        assert_eq!(v["cluster"], json!(3));
        assert_eq!(
            r.caps(),
            Caps {
                workers: 3,
                heap_mib: Some(512),
                semi_space_mib: Some(8),
                memory_max_mib: Some(3072),
                memory_high_mib: Some(2764)
            }
        );
        assert_eq!(v["publicServerURL"], json!("https://api.example.com/parse"));
    }

    #[test]
    fn low_port_gets_the_bind_capability_only() {
        let mut s = spec();
        s.port = 443;
        let r = render(&s).unwrap();
        assert!(r
            .unit
            .contains("\nAmbientCapabilities=CAP_NET_BIND_SERVICE\n"));
        assert!(r
            .unit
            .contains("\nCapabilityBoundingSet=CAP_NET_BIND_SERVICE\n"));
    }

    #[test]
    fn any_printable_value_stays_one_json_string() {
        for value in [
            "it's \"quoted\" \\ $HOME ${X} `id` %s",
            "line\nPORT=1",
            "key'\nPORT=1'",
            "ümlaut 鍵",
        ] {
            let mut s = spec();
            s.master_key = value.into();
            s.app_id = value.into();
            let mut db = DbUri::parse("postgres://u@h/db").unwrap();
            db.password = Some(value.into());
            s.database = db;
            let r = render(&s).unwrap();
            let c: Value = serde_json::from_str(r.db_credentials.as_deref().unwrap()).unwrap();
            assert_eq!(c["password"], json!(value));
            let v: Value = serde_json::from_str(&r.config_json).unwrap();
            assert_eq!(v["masterKey"], json!(value));
            assert_eq!(v["appId"], json!(value));
            assert_eq!(v["port"], json!(1337), "{value:?} changed another option");
            assert!(!r.unit.contains(value));
        }
        // A node path that would need quoting is refused, not written.
        let mut s = spec();
        s.node = "/usr/bin/node --inspect=0.0.0.0".into();
        assert!(render(&s).is_err());
    }

    #[test]
    fn extra_options_keep_their_json_types_and_never_win() {
        let mut s = spec();
        s.extra_options = json!({"maxLimit": 100, "liveQuery": {"classNames": ["A"]}, "port": 1})
            .as_object()
            .unwrap()
            .clone();
        let r = render(&s).unwrap();
        let v: Value = serde_json::from_str(&r.config_json).unwrap();
        assert_eq!(v["maxLimit"], json!(100));
        assert_eq!(v["liveQuery"]["classNames"][0], json!("A"));
        assert_eq!(v["port"], json!(1337));
        assert!(
            v.get("cluster").is_none(),
            "one worker runs without the cluster master"
        );
    }

    #[test]
    fn postgresql_credentials_reach_parse_server_decoded_and_outside_its_options() {
        let mut s = spec();
        s.database = DbUri::parse(
            "postgres://parse:it%27s%20%22q%22%20%5C%20%24HOME%20x@127.0.0.1:5432/parse",
        )
        .unwrap();
        let r = render(&s).unwrap();
        let v: Value = serde_json::from_str(&r.config_json).unwrap();
        // No key parse-server does not know (it would log "Invalid key(s)" at every start).
        assert_eq!(v["databaseOptions"], json!({"schemaCacheTtl": 60}));
        assert_eq!(v["databaseURI"], json!("postgres://127.0.0.1:5432/parse"));
        assert_eq!(
            v["filesAdapter"]["options"]["databaseURI"],
            json!("postgres://127.0.0.1:5432/parse")
        );
        let c: Value = serde_json::from_str(r.db_credentials.as_deref().unwrap()).unwrap();
        assert_eq!(
            c,
            json!({"user": "parse", "password": "it's \"q\" \\ $HOME x"})
        );
        assert!(
            !r.config_json.contains("HOME"),
            "no credential in the option file"
        );
        // MongoDB's driver decodes the URI itself: its credentials stay in it.
        assert!(render(&spec()).unwrap().db_credentials.is_none());
    }

    #[test]
    fn tls_in_the_options_each_adapter_reads() {
        let mut s = spec();
        s.ca_pem = Some("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n".into());
        let v: Value = serde_json::from_str(&render(&s).unwrap().config_json).unwrap();
        assert_eq!(
            v["databaseURI"],
            json!("mongodb://10.0.0.5:27017,[fd00::1]:27017/parse?replicaSet=rs0&tls=true&tlsCAFile=/etc/parse-server/database-ca.pem")
        );
        s.database = DbUri::parse("postgresql://relation-4:pw@10.0.0.7:5432/parse").unwrap();
        s.postgres_tls = PostgresTls::Ca(s.ca_pem.clone().unwrap());
        let v: Value = serde_json::from_str(&render(&s).unwrap().config_json).unwrap();
        // parse-server's PostgreSQL client gets the CA and the address its certificate must
        // name; its URI stays plain (libpq's sslmode would mean nothing to it).
        assert_eq!(v["databaseURI"], json!("postgresql://10.0.0.7:5432/parse"));
        let ssl = json!({"ca": s.ca_pem, "host": "10.0.0.7"});
        assert_eq!(v["databaseOptions"]["ssl"], ssl);
        assert_eq!(v["filesAdapter"]["options"]["ssl"], ssl);
        s.postgres_tls = PostgresTls::Unverified;
        let v: Value = serde_json::from_str(&render(&s).unwrap().config_json).unwrap();
        assert_eq!(
            v["databaseOptions"]["ssl"],
            json!({"rejectUnauthorized": false})
        );
    }

    #[test]
    fn digests_differ_when_anything_differs() {
        let a = render(&spec()).unwrap();
        let mut s = spec();
        s.log_level = "warn".into();
        let b = render(&s).unwrap();
        assert_ne!(a.digest(), b.digest());
        assert_eq!(a.digest(), render(&spec()).unwrap().digest());
        assert_eq!(a.digest().len(), 16);
    }
}
