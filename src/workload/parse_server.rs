//! Parse Server on this machine: where it lives, how it is installed, the files that configure
//! it and how to tell it is healthy. Knows nothing of Juju.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::{Map, Value};

use super::files::{self, FileMode};

/// The system user (and group) the service runs as.
pub const SERVICE_USER: &str = "parse-server";
/// The systemd unit name.
pub const SERVICE_UNIT: &str = "parse-server.service";

const ENV_TEMPLATE: &str = include_str!("../../templates/parse-server.env.tera");
const UNIT_TEMPLATE: &str = include_str!("../../templates/parse-server.service.tera");

/// Every path the workload uses, below a root (`/` on a unit; a scratch dir in unit tests).
#[derive(Debug, Clone)]
pub struct Paths {
    pub root: PathBuf,
}

impl Paths {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Paths { root: root.into() }
    }
    fn at(&self, p: &str) -> PathBuf {
        self.root.join(p.trim_start_matches('/'))
    }
    /// Paths as the service sees them (always absolute from `/`), for rendered files.
    pub const INSTALL_DIR: &'static str = "/opt/parse-server";
    pub const CONFIG_DIR: &'static str = "/etc/parse-server";
    pub const ENV_FILE: &'static str = "/etc/parse-server/parse-server.env";
    pub const CONFIG_FILE: &'static str = "/etc/parse-server/config.json";
    pub const UNIT_FILE: &'static str = "/etc/systemd/system/parse-server.service";
    pub const STATE_DIR: &'static str = "/var/lib/parse-server";
    /// The charm's own root-only state (the Node version cache, secrets on their way to
    /// `secret-add`) and its download cache (npm's cache, the Node tarball).
    pub const CHARM_STATE: &'static str = "/var/lib/parse-server-charm";
    pub const CHARM_CACHE: &'static str = "/var/cache/parse-server-charm";
    pub const NODE_DIR: &'static str = "/opt/parse-server/node";

    pub fn install_dir(&self) -> PathBuf {
        self.at(Self::INSTALL_DIR)
    }
    pub fn config_dir(&self) -> PathBuf {
        self.at(Self::CONFIG_DIR)
    }
    pub fn env_file(&self) -> PathBuf {
        self.at(Self::ENV_FILE)
    }
    pub fn config_file(&self) -> PathBuf {
        self.at(Self::CONFIG_FILE)
    }
    pub fn unit_file(&self) -> PathBuf {
        self.at(Self::UNIT_FILE)
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
    /// Where release `version` is installed, as the service sees it.
    pub fn release_path(version: &str) -> String {
        format!("{}/releases/{version}", Self::INSTALL_DIR)
    }
    pub fn release_dir(&self, version: &str) -> PathBuf {
        self.at(&Self::release_path(version))
    }
    fn package_json(&self, version: &str) -> PathBuf {
        self.release_dir(version)
            .join("node_modules/parse-server/package.json")
    }
    fn options_file(&self, version: &str) -> PathBuf {
        self.release_dir(version).join("charm-options.json")
    }
}

/// Whether release `version` is completely installed.
pub fn is_installed(paths: &Paths, version: &str) -> bool {
    paths.options_file(version).is_file()
        && installed_version(paths, version).as_deref() == Some(version)
}

/// The version recorded in the release's parse-server package.json.
pub fn installed_version(paths: &Paths, version: &str) -> Option<String> {
    let raw = std::fs::read(paths.package_json(version)).ok()?;
    let v: Value = serde_json::from_slice(&raw).ok()?;
    v.get("version")?.as_str().map(str::to_owned)
}

/// parse-server's `engines.node` range for an installed release.
pub fn engines_node(paths: &Paths, version: &str) -> Option<String> {
    let raw = std::fs::read(paths.package_json(version)).ok()?;
    let v: Value = serde_json::from_slice(&raw).ok()?;
    v.pointer("/engines/node")?.as_str().map(str::to_owned)
}

/// The option names the installed release accepts (from its own Definitions.js, recorded at
/// install time).
pub fn known_options(paths: &Paths, version: &str) -> Option<BTreeSet<String>> {
    let raw = std::fs::read(paths.options_file(version)).ok()?;
    let v: Map<String, Value> = serde_json::from_slice(&raw).ok()?;
    Some(v.keys().cloned().collect())
}

/// Installs parse-server `version` with npm into its own release directory. The directory
/// appears complete or not at all: npm works in a scratch dir that is renamed at the end.
/// `lock_dir`, when given, holds a package.json and package-lock.json for exactly this
/// version (shipped in the charm): `npm ci` then installs the tree that was tested.
pub fn install(
    paths: &Paths,
    version: &str,
    node: &Path,
    lock_dir: Option<&Path>,
    proxy_env: &[(&str, String)],
) -> Result<()> {
    let release = paths.release_dir(version);
    let scratch = release.with_extension("partial");
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir_all(&scratch)?;
    std::fs::create_dir_all(paths.npm_cache())?;
    let node_bin_dir = node.parent().context("node has no directory")?;
    let npm = node_bin_dir.join("npm");
    let npm = if npm.exists() {
        npm
    } else {
        PathBuf::from("npm")
    };
    let args: Vec<String> = match lock_dir {
        Some(dir) => {
            for f in ["package.json", "package-lock.json"] {
                std::fs::copy(dir.join(f), scratch.join(f))
                    .with_context(|| format!("copying {}", dir.join(f).display()))?;
            }
            vec!["ci".into()]
        }
        None => {
            let manifest = serde_json::json!({
                "name": "parse-server-charm-release",
                "private": true,
                "dependencies": {"parse-server": version},
            });
            std::fs::write(scratch.join("package.json"), manifest.to_string())?;
            vec!["install".into()]
        }
    };
    // Hooks have no HOME; npm needs one and a cache it may write.
    let path = format!(
        "{}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        node_bin_dir.display()
    );
    let mut argv = args;
    argv.extend(
        [
            "--omit=dev",
            "--no-audit",
            "--no-fund",
            "--no-update-notifier",
            "--loglevel=error",
            // A hook waits for this: bounded retries rather than npm's minutes-long default.
            "--fetch-retries=2",
            "--fetch-retry-mintimeout=2000",
            "--fetch-retry-maxtimeout=10000",
        ]
        .map(String::from),
    );
    let mut cmd = duct::cmd(&npm, &argv).dir(&scratch);
    // Trust the machine's CA store (where a site's TLS-inspecting proxy CA is installed), not
    // only the CAs built into Node: a Node from nodejs.org has no global npmrc saying so.
    let system_cas = paths.root.join("etc/ssl/certs/ca-certificates.crt");
    if system_cas.is_file() {
        cmd = cmd.env("npm_config_cafile", &system_cas);
    }
    for (k, v) in proxy_env {
        cmd = cmd.env(k, v);
    }
    // npm's output is the hook's: Juju logs stdout at DEBUG, stderr at WARNING.
    cmd.env("HOME", paths.npm_cache())
        .env("npm_config_cache", paths.npm_cache())
        .env("PATH", &path)
        .stdin_null()
        .run()
        .with_context(|| format!("npm {} parse-server@{version}", argv[0]))?;
    // Record the option table of exactly this release, to validate extra-options against.
    let options = duct::cmd!(
        node,
        "-e",
        "const d=require('parse-server/lib/Options/Definitions');\
         const o={};for(const [k,v] of Object.entries(d.ParseServerOptions)){o[k]=v.env||null}\
         process.stdout.write(JSON.stringify(o))"
    )
    .dir(&scratch)
    .stdin_null()
    .read()
    .context("reading parse-server's option definitions")?;
    serde_json::from_str::<Map<String, Value>>(&options)
        .context("option definitions are not a JSON object")?;
    std::fs::write(scratch.join("charm-options.json"), options)?;
    let _ = std::fs::remove_dir_all(&release);
    std::fs::rename(&scratch, &release)?;
    Ok(())
}

/// Removes every release but `keep` (after the service moved to `keep`).
pub fn remove_other_releases(paths: &Paths, keep: &str) -> Result<()> {
    let dir = paths.install_dir().join("releases");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Ok(());
    };
    for e in entries.flatten() {
        if e.file_name() != keep {
            std::fs::remove_dir_all(e.path())
                .with_context(|| format!("removing {}", e.path().display()))?;
        }
    }
    Ok(())
}

/// Everything the rendered files depend on.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceSpec {
    pub app_id: String,
    pub master_key: String,
    pub database_uri: String,
    pub port: u16,
    pub mount_path: String,
    pub public_server_url: Option<String>,
    pub master_key_ips: Vec<String>,
    pub allow_client_class_creation: bool,
    pub log_level: String,
    /// Worker processes; 1 runs parse-server without its cluster master.
    pub workers: u32,
    pub heap_mib: Option<u32>,
    pub node: PathBuf,
    pub version: String,
    pub extra_options: Map<String, Value>,
}

/// The three files that configure the service.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Rendered {
    pub env: String,
    pub config_json: String,
    pub unit: String,
}

/// Quotes a value for an `EnvironmentFile=` line: single quotes, inside which neither
/// systemd nor systemctl-compatible tools process escapes. Values holding a character that no
/// quoting delivers identically everywhere (control characters, quotes, backslashes, `$`)
/// are refused: config validation names the option long before this.
pub fn env_quote(value: &str) -> Result<String, String> {
    if let Some(c) = value
        .chars()
        .find(|c| c.is_control() || crate::config::ENV_UNSAFE.contains(c))
    {
        return Err(format!(
            "a value holds {c:?}, which cannot be written to the environment file"
        ));
    }
    Ok(format!("'{value}'"))
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

/// Renders the environment file, the JSON config file and the systemd unit.
pub fn render(spec: &ServiceSpec) -> Result<Rendered> {
    let node = spec.node.to_string_lossy().into_owned();
    check_unit_path(&node)?;
    let release_dir = Paths::release_path(&spec.version);
    check_unit_path(&release_dir)?;

    let mut tera = tera::Tera::default();
    tera.register_filter(
        "env_quote",
        |v: &tera::Value, _: &std::collections::HashMap<String, tera::Value>| {
            let s = v
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| v.to_string());
            env_quote(&s)
                .map(tera::Value::String)
                .map_err(tera::Error::msg)
        },
    );
    tera.add_raw_templates(vec![("env", ENV_TEMPLATE), ("unit", UNIT_TEMPLATE)])?;

    let mut ctx = tera::Context::new();
    ctx.insert("group", SERVICE_USER);
    ctx.insert("user", SERVICE_USER);
    ctx.insert("app_id", &spec.app_id);
    ctx.insert("master_key", &spec.master_key);
    ctx.insert("database_uri", &spec.database_uri);
    ctx.insert("port", &spec.port);
    ctx.insert("mount_path", &spec.mount_path);
    ctx.insert(
        "server_url",
        &format!("http://localhost:{}{}", spec.port, spec.mount_path),
    );
    ctx.insert("public_server_url", &spec.public_server_url);
    ctx.insert("master_key_ips", &spec.master_key_ips.join(","));
    ctx.insert(
        "allow_client_class_creation",
        &spec.allow_client_class_creation,
    );
    ctx.insert("log_level", &spec.log_level);
    ctx.insert("version", &spec.version);
    ctx.insert("state_dir", Paths::STATE_DIR);
    ctx.insert("env_file", Paths::ENV_FILE);
    ctx.insert("config_file", Paths::CONFIG_FILE);
    ctx.insert("node", &node);
    ctx.insert("heap_mib", &spec.heap_mib);
    ctx.insert("release_dir", &release_dir);
    ctx.insert("low_port", &(spec.port < 1024));

    // Options without a fixed environment name, typed as JSON: the worker count must be a
    // number (parse-server treats a string as "all CPUs"), extra options keep their types.
    // Environment variables win over this file, so nothing here can override the charm's keys.
    let mut config = spec.extra_options.clone();
    if spec.workers > 1 {
        config.insert("cluster".into(), Value::from(spec.workers));
    }
    let mut config_json = serde_json::to_string_pretty(&Value::Object(config))?;
    config_json.push('\n');

    Ok(Rendered {
        env: tera.render("env", &ctx)?,
        config_json,
        unit: tera.render("unit", &ctx)?,
    })
}

/// Which rendered files changed on disk.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Changes {
    pub env: bool,
    pub config: bool,
    pub unit: bool,
}

impl Changes {
    pub fn any(self) -> bool {
        self.env || self.config || self.unit
    }
}

/// The files currently on disk (for rolling back a configuration that fails to start).
pub fn current_files(paths: &Paths) -> Result<Option<Rendered>> {
    let read = |p: PathBuf| -> Result<Option<String>> {
        Ok(files::read_optional(&p)?.map(|b| String::from_utf8_lossy(&b).into_owned()))
    };
    match (
        read(paths.env_file())?,
        read(paths.config_file())?,
        read(paths.unit_file())?,
    ) {
        (Some(env), Some(config_json), Some(unit)) => Ok(Some(Rendered {
            env,
            config_json,
            unit,
        })),
        _ => Ok(None),
    }
}

/// Writes the rendered files (secrets 0640 root:service-group, the unit 0644 root:root).
pub fn write_files(paths: &Paths, r: &Rendered, service_gid: u32) -> Result<Changes> {
    let secret = FileMode {
        mode: 0o640,
        uid: 0,
        gid: service_gid,
    };
    files::ensure_dir(
        &paths.config_dir(),
        FileMode {
            mode: 0o750,
            uid: 0,
            gid: service_gid,
        },
    )?;
    Ok(Changes {
        env: files::write_if_changed(&paths.env_file(), r.env.as_bytes(), secret)?,
        config: files::write_if_changed(&paths.config_file(), r.config_json.as_bytes(), secret)?,
        unit: files::write_if_changed(
            &paths.unit_file(),
            r.unit.as_bytes(),
            FileMode {
                mode: 0o644,
                uid: 0,
                gid: 0,
            },
        )?,
    })
}

/// The port and mount path the service on disk is configured for (from the environment
/// file).
pub fn configured_endpoint(paths: &Paths) -> Option<(u16, String)> {
    let env = std::fs::read_to_string(paths.env_file()).ok()?;
    let value = |key: &str| {
        env.lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
            .map(|v| v.trim_matches('\'').to_owned())
    };
    Some((
        value("PORT")?.parse().ok()?,
        value("PARSE_SERVER_MOUNT_PATH")?,
    ))
}

/// Asks `GET <mount>/health` on localhost until it answers `ok` or `timeout` passes; gives
/// up early once `alive` (asked about once a second) says the service has exited.
/// `Err` carries the last answer (or connection error) for a status message.
pub fn wait_healthy(
    port: u16,
    mount_path: &str,
    timeout: Duration,
    alive: &dyn Fn() -> bool,
) -> Result<(), String> {
    let start = Instant::now();
    let mut next_alive_check = start + Duration::from_secs(1);
    loop {
        let last = match health(port, mount_path) {
            Ok(()) => return Ok(()),
            Err(e) => e,
        };
        let now = Instant::now();
        if now >= start + timeout {
            return Err(last);
        }
        if now >= next_alive_check {
            if !alive() {
                return Err(format!("parse-server exited ({last})"));
            }
            next_alive_check = now + Duration::from_secs(1);
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// One `GET <mount>/health` on localhost.
pub fn health(port: u16, mount_path: &str) -> Result<(), String> {
    let path = format!("{}/health", mount_path.trim_end_matches('/'));
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))
        .map_err(|e| format!("nothing answers on port {port} ({e})"))?;
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let request =
        format!("GET {path} HTTP/1.0\r\nHost: localhost\r\nAccept: application/json\r\n\r\n");
    s.write_all(request.as_bytes()).map_err(|e| e.to_string())?;
    let mut body = Vec::new();
    s.take(64 * 1024)
        .read_to_end(&mut body)
        .map_err(|e| format!("{path}: {e}"))?;
    let text = String::from_utf8_lossy(&body);
    let status_line = text.lines().next().unwrap_or("");
    let payload = text.split("\r\n\r\n").nth(1).unwrap_or("").trim();
    let ok = status_line.split_whitespace().nth(1) == Some("200")
        && serde_json::from_str::<Value>(payload)
            .ok()
            .and_then(|v| v.get("status").and_then(|s| s.as_str().map(str::to_owned)))
            .as_deref()
            == Some("ok");
    if ok {
        Ok(())
    } else {
        let short: String = payload.chars().take(80).collect();
        Err(format!(
            "{path} answers {} {short}",
            status_line.split_whitespace().nth(1).unwrap_or("?")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec() -> ServiceSpec {
        ServiceSpec {
            app_id: "shop".into(),
            master_key: "k=e y#x`q`%!~".into(),
            database_uri: "mongodb://10.0.0.5:27017,[fd00::1]:27017/parse?replicaSet=rs0".into(),
            port: 1337,
            mount_path: "/parse".into(),
            public_server_url: None,
            master_key_ips: vec!["127.0.0.1".into(), "::1".into()],
            allow_client_class_creation: false,
            log_level: "info".into(),
            workers: 1,
            heap_mib: None,
            node: "/usr/bin/node".into(),
            version: "9.10.0".into(),
            extra_options: Map::new(),
        }
    }

    #[test]
    fn env_file_snapshot() {
        let r = render(&spec()).unwrap();
        assert_eq!(
            r.env,
            r#"# Managed by the parse-server Juju charm: local edits are overwritten.
# Holds secrets (master key, database URI): mode 0640, root:parse-server.
PARSE_SERVER_APPLICATION_ID='shop'
PARSE_SERVER_MASTER_KEY='k=e y#x`q`%!~'
PARSE_SERVER_DATABASE_URI='mongodb://10.0.0.5:27017,[fd00::1]:27017/parse?replicaSet=rs0'
PORT=1337
PARSE_SERVER_MOUNT_PATH='/parse'
PARSE_SERVER_URL='http://localhost:1337/parse'
PARSE_SERVER_MASTER_KEY_IPS='127.0.0.1,::1'
PARSE_SERVER_ALLOW_CLIENT_CLASS_CREATION=false
PARSE_SERVER_LOG_LEVEL=info
PARSE_SERVER_LOGS_FOLDER=null
NODE_ENV=production
"#
        );
        assert_eq!(r.config_json, "{}\n");
    }

    #[test]
    fn unit_file_snapshot() {
        let mut s = spec();
        s.heap_mib = Some(512);
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
            "ExecStart=/usr/bin/node --max-old-space-size=512 /opt/parse-server/releases/9.10.0/node_modules/parse-server/bin/parse-server /etc/parse-server/config.json"
        );
        assert!(r.unit.contains("\nUser=parse-server\n"));
        assert!(r
            .unit
            .contains("\nEnvironmentFile=/etc/parse-server/parse-server.env\n"));
        assert!(r.unit.contains("\nRestart=on-failure\n"));
        assert!(r.unit.contains("\nCapabilityBoundingSet=\n"));
        assert!(!r.unit.contains("AmbientCapabilities"));
        assert!(r
            .env
            .contains("\nPARSE_PUBLIC_SERVER_URL='https://api.example.com/parse'\n"));
        assert_eq!(
            serde_json::from_str::<Value>(&r.config_json).unwrap(),
            json!({"cluster": 3})
        );
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
    fn no_value_can_inject_a_line_or_an_expansion() {
        for (field, value) in [
            ("app_id", "shop\nPARSE_SERVER_MASTER_KEY=evil"),
            ("master_key", "x\r\nPORT=1"),
            ("database_uri", "mongodb://h/db\nX=1"),
            ("master_key", "key'\nPORT=1'"),
            ("app_id", "$HOME"),
            ("database_uri", "mongodb://u:a\\b@h/db"),
        ] {
            let mut s = spec();
            match field {
                "app_id" => s.app_id = value.into(),
                "master_key" => s.master_key = value.into(),
                _ => s.database_uri = value.into(),
            }
            assert!(render(&s).is_err(), "{field}={value:?} was rendered");
        }
        // A node path that would need quoting is refused, not written.
        let mut s = spec();
        s.node = "/usr/bin/node --inspect=0.0.0.0".into();
        assert!(render(&s).is_err());
    }

    #[test]
    fn extra_options_keep_their_json_types() {
        let mut s = spec();
        s.extra_options = json!({"maxLimit": 100, "liveQuery": {"classNames": ["A"]}})
            .as_object()
            .unwrap()
            .clone();
        let r = render(&s).unwrap();
        let v: Value = serde_json::from_str(&r.config_json).unwrap();
        assert_eq!(v["maxLimit"], json!(100));
        assert_eq!(v["liveQuery"]["classNames"][0], json!("A"));
        assert!(
            v.get("cluster").is_none(),
            "one worker runs without the cluster master"
        );
    }

    #[test]
    fn reads_the_endpoint_back_from_the_rendered_file() {
        let root = std::env::temp_dir().join(format!("psc-endpoint-{}", std::process::id()));
        let paths = Paths::new(&root);
        assert_eq!(configured_endpoint(&paths), None);
        let mut s = spec();
        s.port = 8443;
        s.mount_path = "/api/v1".into();
        std::fs::create_dir_all(paths.config_dir()).unwrap();
        std::fs::write(paths.env_file(), render(&s).unwrap().env).unwrap();
        assert_eq!(configured_endpoint(&paths), Some((8443, "/api/v1".into())));
        std::fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn env_quote_rule() {
        assert_eq!(env_quote("plain value #1").unwrap(), "'plain value #1'");
        for bad in ["a'b", "a\"b", "a\\b", "a$b", "a\nb", "a\u{7f}"] {
            assert!(env_quote(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn waiting_stops_when_the_service_is_gone() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let t = Instant::now();
        let err = wait_healthy(port, "/parse", Duration::from_secs(60), &|| false).unwrap_err();
        assert!(err.starts_with("parse-server exited"), "{err}");
        assert!(t.elapsed() < Duration::from_secs(10));
    }

    #[test]
    fn health_against_a_fake_server() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let t = std::thread::spawn(move || {
            for body in ["{\"status\":\"starting\"}", "{\"status\":\"ok\"}"] {
                let (mut c, _) = listener.accept().unwrap();
                let mut buf = [0u8; 1024];
                let n = c.read(&mut buf).unwrap();
                assert!(String::from_utf8_lossy(&buf[..n]).starts_with("GET /api/health "));
                let code = if body.contains("ok") {
                    "200 OK"
                } else {
                    "503 Service Unavailable"
                };
                write!(
                    c,
                    "HTTP/1.1 {code}\r\nContent-Type: application/json\r\n\r\n{body}"
                )
                .unwrap();
            }
        });
        let first = health(port, "/api").unwrap_err();
        assert!(first.contains("503"), "{first}");
        assert_eq!(
            wait_healthy(port, "/api", Duration::from_secs(5), &|| true),
            Ok(())
        );
        t.join().unwrap();
    }
}
