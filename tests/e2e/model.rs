//! A model of several units (`jujusim model-init`, `add-unit`, `settle`): each unit a booted
//! machine on one model network, and the test playing the other applications (Charmed
//! PostgreSQL, Charmed MongoDB, haproxy) from what the charm publishes.
#![allow(dead_code)]

use std::io::Write;
use std::ops::{Deref, DerefMut};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use jujusim::kit::{self, curl_through_files, private_file, require, sim, Network};

use crate::charm::{mongo_auth_server_command, packed_charm, PROXY_ALLOW};
use crate::tls::{ServerCert, TestCa};

/// The application under test.
pub const APP: &str = "parse-server";

/// A model of the charm under test (`kit::Model`: its model dir, network and booted units)
/// deployed as `APP`, and what only this charm's tests ask of it.
pub struct Model(kit::Model);

impl Deref for Model {
    type Target = kit::Model;
    fn deref(&self) -> &kit::Model {
        &self.0
    }
}

impl DerefMut for Model {
    fn deref_mut(&mut self) -> &mut kit::Model {
        &mut self.0
    }
}

impl Model {
    pub fn new(name: &str) -> Model {
        Model(kit::Model::new(name, &packed_charm(), APP, PROXY_ALLOW))
    }

    /// Our units' `address` on a haproxy-route relation (JSON strings), in unit order.
    pub fn route_addresses(&self, rel: &str) -> Vec<String> {
        let mut out: Vec<(String, String)> = self
            .unit_bags(rel)
            .iter()
            .filter(|(u, _)| u.starts_with(&format!("{APP}/")))
            .filter_map(|(u, b)| {
                let a = b.get("address")?.as_str()?;
                Some((u.clone(), serde_json::from_str::<String>(a).ok()?))
            })
            .collect();
        out.sort();
        out.into_iter().map(|(_, a)| a).collect()
    }

    /// The generated master key, from the model's own secret store (what
    /// `juju show-secret --reveal` shows).
    pub fn master_key(&self) -> String {
        self.ok("secret-reveal", &["master-key", "--key", "master-key"])
            .trim()
            .to_owned()
    }

    pub fn teardown(self) {
        self.0.teardown();
    }
}

/// A PostgreSQL server on the model network (what Charmed PostgreSQL runs), with
/// passwords required from every client.
pub struct Postgres {
    pub host: String,
    pub port: u16,
    dir: PathBuf,
    /// Started with `start_tls`: TCP clients must use TLS.
    pub tls: bool,
}

const PG_BIN: &str = "/usr/lib/postgresql/15/bin";

/// `s` as an SQL string literal.
pub fn sql_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

impl Postgres {
    pub fn start(model: &mut Model, port: u16) -> Postgres {
        Self::start_with(model, port, None)
    }

    /// The same server with TLS, as Charmed PostgreSQL with its `certificates` relation:
    /// `ssl=on` with a certificate `ca` issues for 10.77.0.1, and the model's subnet let in
    /// only by `hostssl ... scram-sha-256` (a TCP connection without TLS is refused). The
    /// superuser's unix socket (`psql`) is as before.
    pub fn start_tls(model: &mut Model, port: u16, ca: &TestCa) -> Postgres {
        let cert = ca.issue_server("postgresql", Network::GATEWAY);
        Self::start_with(model, port, Some(&cert))
    }

    fn start_with(model: &mut Model, port: u16, tls: Option<&ServerCert>) -> Postgres {
        let bin = Path::new(PG_BIN);
        assert!(
            bin.join("postgres").exists(),
            "PostgreSQL 15 is not installed: run `bash scripts/prereqs.sh`"
        );
        let dir = model.dir.join("postgresql");
        std::fs::create_dir_all(dir.join("sock")).unwrap();
        assert!(Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(&dir)
            .status()
            .unwrap()
            .success());
        let data = dir.join("data");
        let out = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(bin.join("initdb"))
            .arg("-D")
            .arg(&data)
            .args([
                "-U",
                "postgres",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "-E",
                "UTF8",
            ])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut hba = std::fs::OpenOptions::new()
            .append(true)
            .open(data.join("pg_hba.conf"))
            .unwrap();
        let kind = if tls.is_some() { "hostssl" } else { "host" };
        writeln!(hba, "{kind} all all {} scram-sha-256", Network::SUBNET).unwrap();
        let host = Network::GATEWAY.to_owned();
        let mut argv: Vec<String> = [
            "runuser",
            "-u",
            "postgres",
            "--",
            bin.join("postgres").to_str().unwrap(),
            "-D",
            data.to_str().unwrap(),
            "-c",
            &format!("listen_addresses={host}"),
            "-c",
            &format!("port={port}"),
            "-c",
            &format!("unix_socket_directories={}", dir.join("sock").display()),
            "-c",
            "fsync=off",
        ]
        .map(str::to_owned)
        .to_vec();
        let pg = Postgres {
            host,
            port,
            dir,
            tls: tls.is_some(),
        };
        if let Some(cert) = tls {
            pg.install_cert(cert);
            for opt in [
                "ssl=on".to_owned(),
                format!(
                    "ssl_cert_file={}",
                    pg.tls_dir().join("server.pem").display()
                ),
                format!("ssl_key_file={}", pg.tls_dir().join("server.key").display()),
            ] {
                argv.extend(["-c".to_owned(), opt]);
            }
        }
        let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
        model.net.spawn(&argv, "postgresql.log");
        for _ in 0..150 {
            if pg.psql("SELECT 1;").is_ok() {
                return pg;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!("PostgreSQL did not start: see {}", pg.dir.display());
    }

    fn tls_dir(&self) -> PathBuf {
        self.dir.join("tls")
    }

    /// The server's certificate and key where it reads them (owned by postgres, the key
    /// 0600: PostgreSQL refuses a key others can read).
    fn install_cert(&self, cert: &ServerCert) {
        let tls = self.tls_dir();
        std::fs::create_dir_all(&tls).unwrap();
        std::fs::copy(&cert.cert, tls.join("server.pem")).unwrap();
        private_file(&tls.join("server.key"))
            .write_all(&std::fs::read(&cert.key).unwrap())
            .unwrap();
        assert!(Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(&tls)
            .status()
            .unwrap()
            .success());
    }

    /// Serves a certificate `ca` issues (e.g. a second CA: a rotation) from now on: the files
    /// are replaced and the configuration reloaded (`pg_reload_conf()`; PostgreSQL re-reads
    /// its certificate at a reload). New connections get it; open ones keep their session.
    pub fn switch_cert(&self, ca: &TestCa) {
        assert!(self.tls, "PostgreSQL was started without TLS");
        let cert = ca.issue_server("postgresql", Network::GATEWAY);
        self.install_cert(&cert);
        let reloaded = self
            .psql("SELECT pg_reload_conf();")
            .expect("pg_reload_conf");
        assert_eq!(reloaded.trim(), "t");
    }

    /// `(connections, encrypted)`: the current connections of `role` (pg_stat_activity) and
    /// how many of them use TLS (pg_stat_ssl).
    pub fn connections_of(&self, role: &str) -> (u64, u64) {
        let out = self
            .psql(&format!(
                "SELECT count(*), count(*) FILTER (WHERE s.ssl) FROM pg_stat_activity a \
                 LEFT JOIN pg_stat_ssl s ON s.pid = a.pid WHERE a.usename = {};",
                sql_literal(role)
            ))
            .expect("counting connections");
        let (all, ssl) = out.trim().split_once('|').expect("count|count");
        (all.parse().unwrap(), ssl.parse().unwrap())
    }

    /// Runs `sql` with psql over TCP from the model network as `user`, the password through a
    /// 0600 passfile (never a command line); `params` are more libpq connection words
    /// (`sslmode=verify-full sslrootcert=/path`). `Err` holds psql's message.
    pub fn psql_from_net(
        &self,
        model: &Model,
        user: &str,
        password: &str,
        database: &str,
        params: &str,
        sql: &str,
    ) -> Result<String, String> {
        let passfile = model.dir.join(".pgpass");
        let esc = |s: &str| s.replace('\\', "\\\\").replace(':', "\\:");
        writeln!(
            private_file(&passfile),
            "{}:{}:{}:{}:{}",
            self.host,
            self.port,
            esc(database),
            esc(user),
            esc(password)
        )
        .unwrap();
        let conninfo = format!(
            "host={} port={} user={user} dbname={database} connect_timeout=10 {params}",
            self.host, self.port
        );
        let pgpass = format!("PGPASSFILE={}", passfile.display());
        let out = model.net.exec(&[
            "env",
            &pgpass,
            "psql",
            "-X",
            "-w",
            "-qAt",
            "-v",
            "ON_ERROR_STOP=1",
            "-d",
            &conninfo,
            "-c",
            sql,
        ]);
        let _ = std::fs::remove_file(&passfile);
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    /// Runs SQL (on stdin, over the unix socket) as the superuser.
    pub fn psql(&self, sql: &str) -> Result<String, String> {
        let mut child = Command::new("runuser")
            .args([
                "-u",
                "postgres",
                "--",
                "psql",
                "-v",
                "ON_ERROR_STOP=1",
                "-qAt",
                "-h",
            ])
            .arg(self.dir.join("sock"))
            .args(["-p", &self.port.to_string(), "-d", "postgres"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(sql.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    /// What Charmed PostgreSQL does for a relation: a user `relation-<id>` with its own
    /// password, owning the requested database.
    pub fn create_relation_user(&self, user: &str, password: &str, database: &str) {
        self.psql(&format!(
            "CREATE ROLE \"{user}\" LOGIN PASSWORD {};\nCREATE DATABASE \"{database}\" OWNER \"{user}\";\n",
            sql_literal(password)
        ))
        .expect("creating the relation user");
    }
}

/// A MongoDB wire-protocol server that enforces SCRAM (mongo-java-server with
/// tests/mongo-java-server/MongoAuthServerMain.java) on the model network.
pub fn start_mongo_auth_server(model: &mut Model, port: u16, users: &[(&str, &str, &str, &str)]) {
    mongo_auth_server_on_net(
        model,
        Network::GATEWAY,
        port,
        users,
        "mongo-auth-server.log",
    );
}

/// The same server listening on `host` of the network's namespace (e.g. `127.0.0.1`, which
/// no unit reaches, behind a `tls::TlsFront`); its log is `mongo-auth-server-<port>.log`.
pub fn start_mongo_auth_server_at(
    model: &mut Model,
    host: &str,
    port: u16,
    users: &[(&str, &str, &str, &str)],
) {
    let log = format!("mongo-auth-server-{port}.log");
    mongo_auth_server_on_net(model, host, port, users, &log);
}

fn mongo_auth_server_on_net(
    model: &mut Model,
    host: &str,
    port: u16,
    users: &[(&str, &str, &str, &str)],
    log: &str,
) {
    let command = mongo_auth_server_command(&model.dir, host, port, users);
    let argv: Vec<&str> = command.iter().map(String::as_str).collect();
    model.net.spawn(&argv, log);
    for _ in 0..150 {
        let out = model
            .net
            .exec(&["bash", "-c", &format!("exec 3<>/dev/tcp/{host}/{port}")]);
        if out.status.success() {
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("the MongoDB server did not start");
}

/// haproxy in master-worker mode (`-W`) in the model network's namespace: started once,
/// reloaded gracefully (SIGUSR2 to the master: it re-executes itself with the new
/// configuration, hands the listening sockets to a new worker over its socket pair, and the
/// old worker finishes what it has in flight). Its processes share one process group, so
/// the network's teardown stops them all.
pub struct HaproxyProcess {
    cfg: PathBuf,
    log: String,
    /// The master's pid (the spawned process: net-exec and nsenter exec into it).
    pid: Option<u32>,
    /// How many reloads were asked for.
    pub reloads: u32,
}

impl HaproxyProcess {
    /// `cfg`: the configuration file it runs with (rewritten at every start and reload);
    /// `log`: its output's file in the network's directory.
    pub fn new(cfg: PathBuf, log: &str) -> HaproxyProcess {
        require("haproxy");
        HaproxyProcess {
            cfg,
            log: log.to_owned(),
            pid: None,
            reloads: 0,
        }
    }

    fn write_checked(&self, text: &str) {
        std::fs::write(&self.cfg, text).unwrap();
        let check = Command::new("haproxy")
            .arg("-c")
            .arg("-f")
            .arg(&self.cfg)
            .output()
            .unwrap();
        assert!(
            check.status.success(),
            "haproxy -c: {}\n{text}",
            String::from_utf8_lossy(&check.stderr)
        );
    }

    /// (Re)starts it with `text` (stopping a running one first) and waits until `host:port`
    /// accepts connections.
    pub fn start(&mut self, net: &mut Network, text: &str, host: &str, port: u16) {
        self.stop(net);
        self.write_checked(text);
        self.pid = Some(net.spawn(
            &["haproxy", "-W", "-db", "-f", self.cfg.to_str().unwrap()],
            &self.log,
        ));
        for _ in 0..100 {
            let out = net.exec(&["bash", "-c", &format!("exec 3<>/dev/tcp/{host}/{port}")]);
            if out.status.success() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "haproxy did not listen on {host}:{port}: see {}",
            net.dir.join(&self.log).display()
        );
    }

    /// The master's live children (its current and old workers).
    fn workers(&self) -> Vec<u32> {
        let Some(pid) = self.pid else {
            return Vec::new();
        };
        let mut out = Vec::new();
        if let Ok(rd) = std::fs::read_dir(format!("/proc/{pid}/task")) {
            for t in rd.flatten() {
                if let Ok(s) = std::fs::read_to_string(t.path().join("children")) {
                    out.extend(s.split_whitespace().filter_map(|x| x.parse::<u32>().ok()));
                }
            }
        }
        out
    }

    /// Applies `text` without a restart: checked first (`haproxy -c`), then SIGUSR2 to the
    /// master; returns once the master has forked the new worker. Connections in flight stay
    /// with the old worker, which stops when they are done (`hard-stop-after` bounds it).
    pub fn reload(&mut self, net: &Network, text: &str) {
        let pid = self.pid.expect("haproxy is not running: start it first");
        self.write_checked(text);
        let before = self.workers();
        assert!(
            !before.is_empty(),
            "haproxy (master {pid}) has no worker: see {}",
            net.dir.join(&self.log).display()
        );
        let signal = Command::new("kill")
            .args(["-USR2", &pid.to_string()])
            .status()
            .unwrap();
        assert!(signal.success(), "SIGUSR2 to haproxy's master {pid}");
        self.reloads += 1;
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let now = self.workers();
            if now.iter().any(|w| !before.contains(w)) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "haproxy reload {}: no new worker after 20 s (workers {now:?}): see {}",
                self.reloads,
                net.dir.join(&self.log).display()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn running(&self) -> bool {
        self.pid.is_some()
    }

    /// Stops the master and its workers (their process group).
    pub fn stop(&mut self, net: &mut Network) {
        if let Some(pid) = self.pid.take() {
            net.stop(pid);
        }
    }
}

/// haproxy as the haproxy charm would configure it from what the charm published.
pub struct Haproxy {
    pub port: u16,
    /// Whether `render_route` puts `option forwardfor` in the backend (the default).
    pub forwardfor: bool,
    /// TLS terminated here with this certificate-and-key file (haproxy's `crt`), and
    /// `X-Forwarded-Proto: https` sent on, as haproxy-operator does with a certificate.
    pub tls: Option<PathBuf>,
    process: HaproxyProcess,
}

/// A backend server: its name, address and port, and its check line.
pub type Server = (String, String, u16);

impl Haproxy {
    pub fn new(model: &Model, port: u16) -> Haproxy {
        Haproxy::named(model, port, "haproxy")
    }

    /// Another haproxy of the model (its config and log named `<name>.cfg`, `<name>.log`).
    pub fn named(model: &Model, port: u16, name: &str) -> Haproxy {
        Haproxy {
            port,
            forwardfor: true,
            tls: None,
            process: HaproxyProcess::new(
                model.dir.join(format!("{name}.cfg")),
                &format!("{name}.log"),
            ),
        }
    }

    /// haproxy.cfg for a `haproxy-route` backend (the route from our application databag,
    /// the servers from every unit's `address`), as haproxy-operator's template renders it
    /// (retries and redispatch, `option httpchk` on the check path, leastconn, then the
    /// requirer's `rewrites` as `http-request set-header|set-path|set-query` lines before the
    /// servers; one server line per address and port of `ports`). `option forwardfor` unless
    /// `forwardfor` is off.
    pub fn render_route(
        &self,
        app: &serde_json::Map<String, Value>,
        addresses: &[String],
    ) -> String {
        let j = |k: &str| -> Value {
            app.get(k)
                .and_then(Value::as_str)
                .and_then(|s| serde_json::from_str(s).ok())
                .unwrap_or(Value::Null)
        };
        let service = j("service").as_str().unwrap_or("backend").to_owned();
        let ports: Vec<u64> = j("ports")
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_u64).collect())
            .unwrap_or_default();
        let paths: Vec<String> = j("paths")
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|p| p.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        let check = j("check");
        let retry = j("retry");
        let mut cfg = self.preamble();
        if paths.is_empty() {
            cfg.push_str(&format!("    default_backend {service}\n"));
        } else {
            cfg.push_str(&format!(
                "    acl acl_path_{service} path_beg -i {}\n",
                paths.join(" ")
            ));
            cfg.push_str(&format!(
                "    use_backend {service} if acl_path_{service}\n"
            ));
        }
        cfg.push_str(&format!("\nbackend {service}\n"));
        if self.forwardfor {
            cfg.push_str("    option forwardfor\n");
        }
        cfg.push_str("    balance leastconn\n");
        if let Some(count) = retry["count"].as_u64() {
            cfg.push_str(&format!("    retries {count}\n"));
            if retry["redispatch"].as_bool() == Some(true) {
                cfg.push_str("    option redispatch\n");
            }
        }
        let check_line = match check["path"].as_str() {
            Some(path) => {
                cfg.push_str(&format!("    option httpchk GET {path}\n"));
                format!(
                    " check inter {}s rise {} fall {}",
                    check["interval"].as_u64().unwrap_or(2),
                    check["rise"].as_u64().unwrap_or(2),
                    check["fall"].as_u64().unwrap_or(3)
                )
            }
            None => " check".to_owned(),
        };
        for line in rewrite_lines(&j("rewrites")) {
            cfg.push_str(&format!("    {line}\n"));
        }
        for (i, addr) in addresses.iter().enumerate() {
            for p in &ports {
                cfg.push_str(&format!(
                    "    server {service}_{p}_{i} {addr}:{p}{check_line}\n"
                ));
            }
        }
        cfg
    }

    /// haproxy.cfg for the legacy `http` interface (`website`): every unit's
    /// `private-address` and `port`, the legacy charm's defaults.
    pub fn render_website(&self, bags: &[(String, u16)]) -> String {
        let mut cfg = self.preamble();
        cfg.push_str("    default_backend website\n\nbackend website\n    balance leastconn\n    option httpchk GET /parse/health\n");
        for (i, (addr, port)) in bags.iter().enumerate() {
            cfg.push_str(&format!(
                "    server website_{i} {addr}:{port} maxconn 100 check inter 2s rise 2 fall 3\n"
            ));
        }
        cfg
    }

    /// `hard-stop-after` and `idle-close-on-response` matter only to a reload: an old worker
    /// answers a keep-alive client's next request with `Connection: close` instead of
    /// closing the idle connection under it (haproxy ≥ 2.4 closes idle ones at once), and
    /// is gone 30 s after the reload at the latest. The client and server timeouts are
    /// haproxy-operator's (its `haproxy.cfg.j2` defaults: `timeout client 50000`; the route's
    /// server timeout, 60 s unless the requirer asks otherwise); no `timeout tunnel`, so a
    /// WebSocket lives under them too.
    fn preamble(&self) -> String {
        format!(
            "global\n    maxconn 4096\n    hard-stop-after 30s\n\ndefaults\n    mode http\n    option idle-close-on-response\n    timeout connect 5s\n    timeout client 50s\n    timeout server 60s\n\nfrontend haproxy\n    bind {}:{}{}\n    http-request set-header X-Forwarded-Proto {}\n",
            Network::GATEWAY,
            self.port,
            self.tls
                .as_ref()
                .map(|pem| format!(" ssl crt {}", pem.display()))
                .unwrap_or_default(),
            if self.tls.is_some() { "https" } else { "http" }
        )
    }

    /// (Re)starts haproxy with `cfg` in the model network's namespace (a running one is
    /// stopped: connections in flight fail; `reload` keeps them).
    pub fn apply(&mut self, model: &mut Model, cfg: &str) {
        self.process
            .start(&mut model.net, cfg, Network::GATEWAY, self.port);
    }

    /// Applies a new `cfg` to the running haproxy without failing a request: a graceful
    /// reload (`HaproxyProcess::reload`). Starts it if it is not running.
    pub fn reload(&mut self, model: &mut Model, cfg: &str) {
        if self.process.running() {
            self.process.reload(&model.net, cfg);
        } else {
            self.apply(model, cfg);
        }
    }

    pub fn url(&self, path: &str) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}:{}{path}", Network::GATEWAY, self.port)
    }
}

/// haproxy-operator's rendering of the requirer's `rewrites` (a JSON list of `{method,
/// expression, header}`): `http-request set-header <header> <expression>`, `http-request
/// set-path <expression>`, `http-request set-query <expression>`.
pub fn rewrite_lines(rewrites: &Value) -> Vec<String> {
    let Some(list) = rewrites.as_array() else {
        return Vec::new();
    };
    list.iter()
        .map(|r| {
            let expression = r["expression"].as_str().expect("a rewrite's expression");
            match r["method"].as_str() {
                Some("set-header") => format!(
                    "http-request set-header {} {expression}",
                    r["header"].as_str().expect("a set-header rewrite's header")
                ),
                Some(m @ ("set-path" | "set-query")) => {
                    format!("http-request {m} {expression}")
                }
                other => panic!("rewrite method {other:?} is not one haproxy-route has"),
            }
        })
        .collect()
}

/// Where any of `values` (secrets) shows on the model: `juju status` and `juju config`, and on
/// every unit the journal, every process's command line and environment, `ps`, the service's
/// `systemctl show` (its Environment), the hooks' logs, juju-log and the status history (the
/// agent's state also holds the secrets' store, as Juju's controller does: only its log and
/// status history are looked at).
pub fn secret_leaks(model: &Model, values: &[&str]) -> Vec<String> {
    let shows = |text: &str| values.iter().any(|v| text.contains(v));
    let mut found = Vec::new();
    if shows(&model.status().to_string()) {
        found.push("juju status".to_owned());
    }
    if shows(&model.ok("config", &[])) {
        found.push("juju config".to_owned());
    }
    for (name, unit) in &model.units {
        let mut places = vec![
            (
                "journal",
                unit.exec_ok(&["journalctl", "--no-pager", "-o", "cat"]),
            ),
            (
                "command lines",
                unit.exec_ok(&["sh", "-c", "cat /proc/[0-9]*/cmdline | tr '\\0' ' '"]),
            ),
            (
                "environments",
                unit.exec_ok(&["sh", "-c", "cat /proc/[0-9]*/environ | tr '\\0' '\\n'"]),
            ),
            ("ps", unit.exec_ok(&["ps", "-eww", "-o", "pid,args"])),
            (
                "systemctl show",
                unit.exec_ok(&["systemctl", "show", "parse-server"]),
            ),
        ];
        for f in ["tool-calls.log", "hook-output.log"] {
            places.push((f, unit.read_unit_file(f)));
        }
        let state: Value =
            serde_json::from_str(&unit.read_unit_file("state.json")).unwrap_or_default();
        places.push(("juju-log", state["log"].to_string()));
        places.push(("status history", state["status_history"].to_string()));
        for (place, text) in places {
            if shows(&text) {
                found.push(format!("{name}: {place}"));
            }
        }
    }
    found
}

/// One HTTP request from the model network (the load balancer's side), with curl
/// (`curl_through_files`). Returns `(status, body)`.
pub fn http_from_net(
    model: &Model,
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> (u16, String) {
    curl_through_files(
        &model.dir,
        |argv| model.net.exec(argv),
        method,
        url,
        headers,
        body,
    )
}

/// A client elsewhere on the model network: an extra address on the network's bridge (in
/// the network's namespace; e.g. 10.77.0.200, outside the units' 10.77.0.11.. range), from
/// which requests leave (`curl --interface`). Servers on the network (haproxy, the units) see
/// that address as the client's. The address goes with the network's namespace at teardown;
/// `remove` takes it away earlier.
pub struct RemoteClient {
    pub ip: String,
    bridge: String,
}

impl RemoteClient {
    pub fn add(model: &Model, ip: &str) -> RemoteClient {
        let bridge = model.net.bridge();
        let cidr = format!("{ip}/{}", model.net.prefix());
        let out = model
            .net
            .exec(&["ip", "addr", "add", &cidr, "dev", &bridge]);
        assert!(
            out.status.success(),
            "ip addr add {cidr} dev {bridge}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        RemoteClient {
            ip: ip.to_owned(),
            bridge,
        }
    }

    /// One HTTP request from this address, through `curl_through_files` (headers and body in
    /// 0600 files, never on a command line). Returns `(status, body)`.
    pub fn http(
        &self,
        model: &Model,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> (u16, String) {
        curl_through_files(
            &model.dir,
            |argv| {
                let mut with_source = vec![argv[0], "--interface", self.ip.as_str()];
                with_source.extend_from_slice(&argv[1..]);
                model.net.exec(&with_source)
            },
            method,
            url,
            headers,
            body,
        )
    }

    /// Takes the address off the bridge.
    pub fn remove(self, model: &Model) {
        let cidr = format!("{}/{}", self.ip, model.net.prefix());
        let out = model
            .net
            .exec(&["ip", "addr", "del", &cidr, "dev", &self.bridge]);
        assert!(
            out.status.success(),
            "ip addr del {cidr}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// What a bounded load run through the balancer gave.
#[derive(Debug, Clone, Copy, Default)]
pub struct Load {
    pub requests: u64,
    pub failed: u64,
    pub per_second: f64,
}

/// Starts `wrk` from the model network against `url` for `seconds`; `finish` waits for it.
pub struct LoadRun {
    child: std::process::Child,
}

impl LoadRun {
    pub fn start(
        model: &Model,
        url: &str,
        app_id: &str,
        seconds: u32,
        connections: u32,
    ) -> LoadRun {
        require("wrk");
        let header = format!("X-Parse-Application-Id: {app_id}");
        let child = Command::new(sim())
            .arg("net-exec")
            .arg(&model.net.dir)
            .args([
                "--",
                "wrk",
                "-t2",
                &format!("-c{connections}"),
                &format!("-d{seconds}s"),
                "--timeout",
                "10s",
                "-H",
                &header,
                url,
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("wrk");
        LoadRun { child }
    }

    pub fn finish(self) -> Load {
        let out = self.child.wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        println!("wrk:\n{text}");
        parse_wrk(&text).unwrap_or_else(|| {
            panic!(
                "unreadable wrk output:\n{text}\n{}",
                String::from_utf8_lossy(&out.stderr)
            )
        })
    }
}

/// Requests, failures (non-2xx/3xx answers and socket errors) and req/s from wrk's report.
pub fn parse_wrk(text: &str) -> Option<Load> {
    let num = |s: &str| s.trim().trim_end_matches(',').parse::<u64>().unwrap_or(0);
    let mut load = Load::default();
    for line in text.lines().map(str::trim) {
        if let Some((n, _)) = line.split_once(" requests in ") {
            load.requests = num(n);
        } else if let Some(v) = line.strip_prefix("Non-2xx or 3xx responses:") {
            load.failed += num(v);
        } else if let Some(v) = line.strip_prefix("Socket errors:") {
            for part in v.split(',') {
                if let Some(n) = part.split_whitespace().last() {
                    load.failed += num(n);
                }
            }
        } else if let Some(v) = line.strip_prefix("Requests/sec:") {
            load.per_second = v.trim().parse().unwrap_or(0.0);
        }
    }
    (load.requests > 0).then_some(load)
}

#[cfg(test)]
mod tests {
    #[test]
    fn wrk_reports_are_read() {
        let l = super::parse_wrk(
            "  1234 requests in 10.00s, 1.2MB read\n  Socket errors: connect 0, read 2, write 0, timeout 1\n  Non-2xx or 3xx responses: 5\nRequests/sec:    123.40\n",
        )
        .unwrap();
        assert_eq!((l.requests, l.failed), (1234, 8));
        assert!((l.per_second - 123.4).abs() < 0.01);
    }
}
