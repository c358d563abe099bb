//! The charm under test on the test kit's units (`jujusim::kit`): the packed charm, what
//! deploying it on a unit means here (the model's proxy letting npm's registry through), the
//! operator's view of its master key, and the database servers its tests start on a unit's
//! loopback or inside it (mongo-java-server, PostgreSQL). The generic machinery (booted
//! units, networks, models, host-state checks) is the kit's.
#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use jujusim::kit::{percent_encode, private_file, require, Unit};
use serde_json::Value;

pub const REPO: &str = env!("CARGO_MANIFEST_DIR");

/// What the model's proxy (`juju-https-proxy`) lets a unit of this charm reach: npm's
/// registry, where the charm installs parse-server from.
pub const PROXY_ALLOW: &[&str] = &["registry.npmjs.org:443"];

/// The packed charm under test: `PARSE_SERVER_CHARM`, else `build/parse-server_amd64.charm`.
/// A missing one is a loud failure, never a skip.
pub fn packed_charm() -> PathBuf {
    let path = std::env::var_os("PARSE_SERVER_CHARM")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(REPO).join("build/parse-server_amd64.charm"));
    assert!(
        path.is_file(),
        "{} does not exist: run `make charm` (or `make test`, which builds it)",
        path.display()
    );
    path
}

/// The charm on a kit unit.
pub trait CharmUnit {
    /// A freshly booted machine with the packed charm unpacked in the unit's charm dir and
    /// the model's proxy on its loopback.
    fn deploy(name: &str) -> Unit;
    /// Unpacks the packed charm on the machine (`juju deploy`'s download), starts the egress
    /// proxy that stands for the model's `juju-https-proxy`.
    fn deploy_charm(&mut self);
    /// The generated master key, the way an operator gets it: the get-master-key action
    /// names the Juju secret, `juju show-secret --reveal` (here `jujusim secret-reveal`)
    /// shows it. The key is returned, never printed.
    fn master_key(&self) -> String;
    /// The PIDs of parse-server processes in the unit.
    fn parse_server_pids(&self) -> Vec<u32>;
    /// Runs the mongodb relation's created/joined/changed hooks for one MongoDB unit.
    fn relate_mongodb(&self, host: &str, port: u16) -> String;
}

impl CharmUnit for Unit {
    fn deploy(name: &str) -> Unit {
        let mut unit = Unit::boot(name, None);
        unit.deploy_charm();
        unit
    }

    fn deploy_charm(&mut self) {
        self.unpack_charm(&packed_charm(), &[]);
        self.start_proxy(PROXY_ALLOW);
    }

    fn master_key(&self) -> String {
        let out = self.sim("action", &["get-master-key"]);
        assert!(
            out.status.success(),
            "get-master-key failed: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        let v: Value = serde_json::from_slice(&out.stdout).expect("action JSON");
        assert_eq!(
            v.pointer("/results/source"),
            Some(&Value::from("generated")),
            "{v}"
        );
        let id = v
            .pointer("/results/secret-id")
            .and_then(Value::as_str)
            .expect("secret-id")
            .to_owned();
        assert_eq!(
            v.pointer("/results/reveal").and_then(Value::as_str),
            Some(format!("juju show-secret --reveal {id}").as_str())
        );
        let out = self.sim("secret-reveal", &[&id, "--key", "master-key"]);
        assert!(out.status.success(), "secret-reveal failed");
        let key = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        assert_eq!(key.len(), 64, "a generated key is 32 random bytes in hex");
        key
    }

    fn parse_server_pids(&self) -> Vec<u32> {
        let out = self.exec(&["pgrep", "-f", "parse-server/bin/parse-server"]);
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect()
    }

    fn relate_mongodb(&self, host: &str, port: u16) -> String {
        let rel = String::from_utf8(self.sim("relate", &["mongodb", "mongodb"]).stdout).unwrap();
        let rel = rel.trim().to_owned();
        self.hook("mongodb-relation-created", &["--relation", &rel]);
        let (h, p) = (format!("hostname={host}"), format!("port={port}"));
        assert!(self
            .sim("remote-set", &[&rel, "mongodb/0", &h, &p])
            .status
            .success());
        self.hook(
            "mongodb-relation-joined",
            &["--relation", &rel, "--remote-unit", "mongodb/0"],
        );
        self.hook(
            "mongodb-relation-changed",
            &["--relation", &rel, "--remote-unit", "mongodb/0"],
        );
        rel
    }
}

/// The test MongoDB servers' class path (compiled by scripts/prereqs.sh).
fn mongo_class_path() -> String {
    require("java");
    let jars = Path::new(REPO).join(".prereqs/mongo-java-server");
    assert!(
        jars.join("classes/MongoAuthServerMain.class").exists(),
        "the test MongoDB servers are not built: run `bash scripts/prereqs.sh`"
    );
    format!("{}:{}/*", jars.join("classes").display(), jars.display())
}

/// Starts mongo-java-server (no authentication) on the unit's loopback at `port`; returns
/// its pid.
pub fn start_mongo_java_server(unit: &mut Unit, port: u16) -> u32 {
    let cp = mongo_class_path();
    let port_s = port.to_string();
    let pid = unit.spawn_on_loopback(
        &[
            "java",
            "-Xmx256m",
            "-cp",
            &cp,
            "MongoServerMain",
            "127.0.0.1",
            &port_s,
        ],
        "mongo-java-server.log",
    );
    unit.wait_port(port, Duration::from_secs(60));
    pid
}

/// The command that starts MongoAuthServerMain (mongo-java-server with SCRAM enforced) on
/// `host` and `port`, with `users` (`user`, `auth db`, `roles`, `password`) written to
/// `dir/mongo-users` (mode 0600).
pub fn mongo_auth_server_command(
    dir: &Path,
    host: &str,
    port: u16,
    users: &[(&str, &str, &str, &str)],
) -> Vec<String> {
    let file = dir.join("mongo-users");
    let mut f = private_file(&file);
    for (user, db, roles, password) in users {
        writeln!(f, "{user} {db} {roles} {password}").unwrap();
    }
    drop(f);
    [
        "java",
        "-Xmx256m",
        "-cp",
        &mongo_class_path(),
        "MongoAuthServerMain",
        host,
        &port.to_string(),
        "--users",
        file.to_str().unwrap(),
    ]
    .map(str::to_owned)
    .to_vec()
}

/// Starts the SCRAM MongoDB server (`mongo_auth_server_command`) inside the unit on `host`
/// (loopback or IPv6 address) and `port`; returns its pid.
pub fn start_mongo_auth_server(
    unit: &mut Unit,
    host: &str,
    port: u16,
    users: &[(&str, &str, &str, &str)],
) -> u32 {
    let command = mongo_auth_server_command(&unit.dir, host, port, users);
    let argv: Vec<&str> = command.iter().map(String::as_str).collect();
    let pid = unit.spawn_on_loopback(&argv, "mongo-auth-server.log");
    unit.wait_addr(host.trim_matches(['[', ']']), port, Duration::from_secs(60));
    pid
}

/// A PostgreSQL server (Debian's) on the unit's loopback, with a `parse` role and database.
/// Returns the database URI; the password never reaches a command line.
pub fn start_postgres(unit: &mut Unit, port: u16, password: &str) -> String {
    let bin = Path::new("/usr/lib/postgresql/15/bin");
    assert!(
        bin.join("postgres").exists(),
        "PostgreSQL 15 is not installed: run `bash scripts/prereqs.sh`"
    );
    let pg = unit.dir.join("pg");
    std::fs::create_dir_all(pg.join("sock")).unwrap();
    let chown = Command::new("chown")
        .args(["-R", "postgres:postgres"])
        .arg(&pg)
        .status()
        .unwrap();
    assert!(chown.success());
    let data = pg.join("data");
    let as_postgres = |args: &[&str]| -> Output {
        Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let initdb = bin.join("initdb");
    let out = as_postgres(&[
        initdb.to_str().unwrap(),
        "-D",
        data.to_str().unwrap(),
        "-U",
        "postgres",
        "--auth-local=trust",
        "--auth-host=scram-sha-256",
        "-E",
        "UTF8",
    ]);
    assert!(
        out.status.success(),
        "initdb: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let postgres = bin.join("postgres");
    let sock = pg.join("sock");
    let port_s = port.to_string();
    let sock_opt = format!("unix_socket_directories={}", sock.display());
    unit.spawn_on_loopback(
        &[
            "runuser",
            "-u",
            "postgres",
            "--",
            postgres.to_str().unwrap(),
            "-D",
            data.to_str().unwrap(),
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            &format!("port={port}"),
            "-c",
            &sock_opt,
            "-c",
            "fsync=off",
        ],
        "postgres.log",
    );
    unit.wait_port(port, Duration::from_secs(30));
    // SQL on stdin, through the unix socket.
    let sql = format!(
        "CREATE ROLE parse LOGIN PASSWORD '{}';\nCREATE DATABASE parse OWNER parse;\n",
        password.replace('\'', "''")
    );
    let mut psql = Command::new("runuser")
        .args([
            "-u",
            "postgres",
            "--",
            "psql",
            "-v",
            "ON_ERROR_STOP=1",
            "-q",
            "-h",
        ])
        .arg(&sock)
        .args(["-p", &port_s, "-d", "postgres"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    psql.stdin
        .take()
        .unwrap()
        .write_all(sql.as_bytes())
        .unwrap();
    let out = psql.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "psql: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    format!(
        "postgres://parse:{}@127.0.0.1:{port}/parse",
        percent_encode(password)
    )
}
