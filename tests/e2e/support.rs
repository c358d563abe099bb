//! Shared harness for the end-to-end tests: a simulated unit (its own mount, network and PID
//! namespaces, driven by `jujusim`), the packed charm, and database servers started by the
//! test itself on the unit's loopback.
#![allow(dead_code)]

use std::io::Write;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// Where units find the model's proxy (`juju-https-proxy`), on their own loopback.
pub const UNIT_PROXY: &str = "http://127.0.0.1:3128";
pub const REPO: &str = env!("CARGO_MANIFEST_DIR");

/// A file the tests need that another build makes: named by `var`, else `default` under the
/// repository. A missing one is a loud failure, never a skip.
fn built_artifact(var: &str, default: &str, how: &str) -> PathBuf {
    let path = std::env::var_os(var)
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(REPO).join(default));
    assert!(
        path.is_file(),
        "{} does not exist: run `{how}` (or `make test`, which builds it)",
        path.display()
    );
    path
}

/// The packed charm under test.
pub fn packed_charm() -> PathBuf {
    built_artifact(
        "PARSE_SERVER_CHARM",
        "build/parse-server_amd64.charm",
        "make charm",
    )
}

/// The simulator's binary (crate `jujusim`, which never imports the charm).
pub fn sim() -> PathBuf {
    built_artifact("JUJUSIM", "target/debug/jujusim", "cargo build -p jujusim")
}

/// The egress proxy that stands in for the model's `juju-https-proxy`.
pub fn egress_proxy() -> PathBuf {
    built_artifact(
        "EGRESS_PROXY",
        "target/debug/egress-proxy",
        "cargo build -p jujusim",
    )
}

/// Fails loudly when a prerequisite is missing.
pub fn require(program: &str) {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        found,
        "{program} is not installed: run `bash scripts/prereqs.sh`"
    );
}

/// One simulated Juju unit on its own simulated machine.
pub struct Unit {
    pub dir: PathBuf,
    background: Vec<Child>,
}

impl Unit {
    /// A fresh machine with the packed charm unpacked in the unit's charm dir.
    pub fn deploy(name: &str) -> Unit {
        require("unshare");
        require("nsenter");
        require("systemctl3.py");
        let dir = Path::new(REPO)
            .join("target/e2e")
            .join(format!("{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut unit = Unit {
            dir,
            background: Vec::new(),
        };
        let pid = unit.sim_ok(&["machine-up"]).trim().to_owned();
        unit.sim_ok(&["deploy-charm", packed_charm().to_str().unwrap()]);
        // The unit's network is its loopback only; npm reaches the registry through the
        // model's proxy, as on a firewalled Juju model with juju-https-proxy set.
        let log = std::fs::File::create(unit.dir.join("egress-proxy.log")).unwrap();
        let proxy = Command::new(egress_proxy())
            .args(["--netns-pid", &pid, "--listen", "127.0.0.1:3128"])
            .args(["--allow", "registry.npmjs.org:443"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("starting egress-proxy");
        unit.background.push(proxy);
        unit.wait_port(3128, Duration::from_secs(10));
        unit
    }

    pub fn path(&self, p: &str) -> PathBuf {
        self.dir.join("rootfs").join(p.trim_start_matches('/'))
    }

    /// Runs `jujusim <sub> <unit dir> <args...>`.
    pub fn sim(&self, sub: &str, args: &[&str]) -> Output {
        let mut cmd = Command::new(sim());
        cmd.arg(sub).arg(&self.dir).args(args);
        cmd.env("JUJUSIM_EXTRA_PATH", Path::new(REPO).join(".prereqs/bin"));
        cmd.env("JUJUSIM_HTTPS_PROXY", UNIT_PROXY);
        let keep = std::fs::read_to_string(Path::new(REPO).join(".prereqs/keep-paths"))
            .expect(".prereqs/keep-paths is missing: run `bash scripts/prereqs.sh`");
        cmd.env("JUJUSIM_KEEP_PATHS", keep.trim());
        cmd.stdin(Stdio::null());
        cmd.output().expect("running jujusim")
    }

    fn sim_ok(&self, argv: &[&str]) -> String {
        let out = self.sim(argv[0], &argv[1..]);
        assert!(
            out.status.success(),
            "jujusim {argv:?} failed: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs one hook; asserts it exited 0 (a charm hook never fails on bad input).
    pub fn hook(&self, name: &str, args: &[&str]) {
        let mut argv = vec!["hook", name];
        argv.extend_from_slice(args);
        let out = self.sim(argv[0], &argv[1..]);
        assert!(
            out.status.success(),
            "hook {name} {args:?} failed (exit {:?}); its output:\n{}",
            out.status.code(),
            self.hook_output_tail()
        );
    }

    pub fn hook_output_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.join("hook-output.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    pub fn config(&self, pairs: &[&str]) {
        let mut argv = vec!["config"];
        argv.extend_from_slice(pairs);
        self.sim_ok(&argv);
    }

    pub fn reset_config(&self, key: &str) {
        self.sim_ok(&["config", "--reset", key]);
    }

    /// `jujusim status --format=json`.
    pub fn status(&self) -> Value {
        serde_json::from_str(&self.sim_ok(&["status", "--format=json"])).expect("status JSON")
    }

    /// `(workload status, message)`.
    pub fn workload(&self) -> (String, String) {
        let s = self.status();
        let pick = |keys: &[&str]| -> String {
            keys.iter()
                .find_map(|k| s.pointer(k).and_then(Value::as_str))
                .unwrap_or_default()
                .to_owned()
        };
        (
            pick(&[
                "/workload-status/current",
                "/workload_status/status",
                "/workload-status/status",
            ]),
            pick(&["/workload-status/message", "/workload_status/message"]),
        )
    }

    pub fn assert_status(&self, kind: &str, message_part: &str) {
        let (k, m) = self.workload();
        assert_eq!(k, kind, "status is {k}: {m}\n{}", self.hook_output_tail());
        assert!(
            m.contains(message_part),
            "status message {m:?} lacks {message_part:?}"
        );
    }

    pub fn opened_ports(&self) -> Vec<String> {
        let s = self.status();
        s.get("opened-ports")
            .or_else(|| s.get("ports"))
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Runs a command inside the unit's namespaces.
    pub fn exec(&self, cmd: &[&str]) -> Output {
        let mut argv = vec!["--"];
        argv.extend_from_slice(cmd);
        self.sim("machine-exec", &argv)
    }

    /// Starts a long-running process in the unit's network namespace only (host filesystem).
    /// Returns its pid, for `stop_background`.
    pub fn spawn_on_loopback(&mut self, cmd: &[&str], log: &str) -> u32 {
        let logf = std::fs::File::create(self.dir.join(log)).unwrap();
        let child = Command::new(sim())
            .arg("machine-exec")
            .arg("--net-only")
            .arg(&self.dir)
            .arg("--")
            .args(cmd)
            .stdin(Stdio::null())
            .stdout(logf.try_clone().unwrap())
            .stderr(logf)
            .spawn()
            .expect("spawning a server in the unit's network namespace");
        let pid = child.id();
        self.background.push(child);
        pid
    }

    /// Starts a long-running process inside all of the unit's namespaces (its filesystem, its
    /// PID namespace), e.g. a service supervisor; returns the pid of its `nsenter`.
    pub fn spawn_in_unit(&mut self, cmd: &[&str], log: &str) -> u32 {
        let logf = std::fs::File::create(self.dir.join(log)).unwrap();
        let child = Command::new(sim())
            .arg("machine-exec")
            .arg(&self.dir)
            .arg("--")
            .args(cmd)
            .env("JUJUSIM_EXTRA_PATH", Path::new(REPO).join(".prereqs/bin"))
            .env(
                "PATH",
                format!(
                    "{}:/usr/sbin:/usr/bin:/sbin:/bin",
                    Path::new(REPO).join(".prereqs/bin").display()
                ),
            )
            .stdin(Stdio::null())
            .stdout(logf.try_clone().unwrap())
            .stderr(logf)
            .spawn()
            .expect("spawning a process in the unit");
        let pid = child.id();
        self.background.push(child);
        pid
    }

    /// Kills a process started with `spawn_on_loopback` and waits for it.
    pub fn stop_background(&mut self, pid: u32) {
        if let Some(i) = self.background.iter().position(|c| c.id() == pid) {
            let mut child = self.background.remove(i);
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Waits until something listens on `port` on the unit's loopback.
    pub fn wait_port(&self, port: u16, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            let out = self.exec(&["bash", "-c", &format!("exec 3<>/dev/tcp/127.0.0.1/{port}")]);
            if out.status.success() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "nothing listens on {port} after {within:?}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// An HTTP request from inside the unit with curl; headers come from a file so that keys
    /// never appear on a command line. Returns `(status code, body)`.
    pub fn http(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: Option<&str>,
    ) -> (u16, String) {
        let hfile = self.dir.join("curl-headers");
        {
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .open(&hfile)
                .unwrap();
            for (k, v) in headers {
                writeln!(f, "{k}: {v}").unwrap();
            }
        }
        let bfile = self.dir.join("curl-body");
        std::fs::write(&bfile, body.unwrap_or("")).unwrap();
        let hf = format!("@{}", hfile.display());
        let bf = format!("@{}", bfile.display());
        let mut argv = vec![
            "curl",
            "-sS",
            "--max-time",
            "20",
            "-o",
            "-",
            "-w",
            "\n%{http_code}",
            "-X",
            method,
            "-H",
            &hf,
        ];
        if body.is_some() {
            argv.extend_from_slice(&["--data-binary", &bf]);
        }
        argv.push(url);
        let out = self.exec(&argv);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
        match code.trim().parse() {
            Ok(c) if c > 0 => (c, body.to_owned()),
            // No HTTP answer: say why (curl's own message) in place of a body.
            _ => (0, String::from_utf8_lossy(&out.stderr).into_owned()),
        }
    }

    /// The generated master key, the way an operator gets it: the get-master-key action
    /// names the Juju secret, `juju show-secret --reveal` (here `jujusim secret-reveal`)
    /// shows it. The key is returned, never printed.
    pub fn master_key(&self) -> String {
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

    /// The PIDs of parse-server processes in the unit.
    pub fn parse_server_pids(&self) -> Vec<u32> {
        let out = self.exec(&["pgrep", "-f", "parse-server/bin/parse-server"]);
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect()
    }

    /// A file of the unit directory (the simulator's logs and state).
    pub fn read_unit_file(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.join(name)).unwrap_or_default()
    }

    pub fn read_text(&self, p: &str) -> String {
        std::fs::read_to_string(self.path(p)).unwrap_or_default()
    }
}

impl Drop for Unit {
    fn drop(&mut self) {
        for c in &mut self.background {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = self.sim("machine-down", &[]);
    }
}

/// Starts mongo-java-server on the unit's loopback at `port`; returns its pid.
pub fn start_mongo_java_server(unit: &mut Unit, port: u16) -> u32 {
    require("java");
    let jars = Path::new(REPO).join(".prereqs/mongo-java-server");
    assert!(
        jars.join(".complete").exists(),
        "mongo-java-server is not fetched: run `bash scripts/prereqs.sh`"
    );
    let cp = format!("{}/*", jars.display());
    let main = Path::new(REPO).join("tests/mongo-java-server/MongoServerMain.java");
    let port_s = port.to_string();
    let pid = unit.spawn_on_loopback(
        &[
            "java",
            "-Xmx256m",
            "-cp",
            &cp,
            main.to_str().unwrap(),
            "127.0.0.1",
            &port_s,
        ],
        "mongo-java-server.log",
    );
    unit.wait_port(port, Duration::from_secs(60));
    pid
}

/// Whether a TCP port on the host's loopback is free (the unit's loopback is separate).
pub fn host_port_free(port: u16) -> bool {
    TcpStream::connect(("127.0.0.1", port)).is_err()
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
        "CREATE ROLE parse LOGIN PASSWORD '{password}';\nCREATE DATABASE parse OWNER parse;\n"
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
    format!("postgres://parse:{password}@127.0.0.1:{port}/parse")
}

impl Unit {
    /// What `juju deploy` runs on a leader unit: install, leader-elected, config-changed,
    /// start (with `config` set before config-changed).
    pub fn deploy_hooks(&self, config: &[&str]) {
        self.hook("install", &[]);
        self.hook("leader-elected", &[]);
        if !config.is_empty() {
            self.config(config);
        }
        self.hook("config-changed", &[]);
        self.hook("start", &[]);
    }

    /// This unit's own databag on the first relation of `endpoint` (committed state).
    pub fn local_unit_bag(&self, endpoint: &str) -> Option<serde_json::Map<String, Value>> {
        let state: Value = serde_json::from_str(&self.read_unit_file("state.json")).ok()?;
        state["relations"]
            .as_object()?
            .values()
            .find(|r| r["endpoint"] == endpoint)
            .and_then(|r| r["local_unit_bag"].as_object().cloned())
    }

    /// Runs the mongodb relation's created/joined/changed hooks for one MongoDB unit.
    pub fn relate_mongodb(&self, host: &str, port: u16) -> String {
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
