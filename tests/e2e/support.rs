//! Shared harness for the end-to-end tests: a simulated unit (a machine that boots the host's
//! own systemd as PID 1 of its own namespaces, driven by `jujusim`), the packed charm, and
//! database servers started by the test itself on the unit's loopback, inside the unit, or
//! on a model network.
//!
//! Every test ends with an explicit `Unit::teardown` (and `Network::teardown`): it powers the
//! machine off and fails the test if anything of it is left on the host (processes in its
//! namespaces, its cgroup) or if the host changed (sysctls, users and groups, mounts,
//! network links). `Drop` only cleans up, best effort, after a test that failed earlier.
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

/// A figure a test measured, printed and appended to `target/e2e/figures.log`, which
/// `scripts/e2e.sh` summarises after the run.
pub fn record_figure(kind: &str, what: &str, value: f64, unit: &str) {
    println!("figure: {kind} {what} {value:.3} {unit}");
    let dir = Path::new(REPO).join("target/e2e");
    let _ = std::fs::create_dir_all(&dir);
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("figures.log"))
    {
        // One write per line: tests append from two threads.
        let _ = f.write_all(format!("{kind}\t{what}\t{value:.3}\t{unit}\n").as_bytes());
    }
}

/// What a simulated unit must never change on the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostState {
    /// `(name, value)`: the fs.protected_* settings a booting systemd would set from the
    /// host's sysctl.d files if /proc/sys were writable, and a few other kernel-wide ones.
    pub sysctls: Vec<(String, String)>,
    /// `(file, content)` of the host's account files.
    accounts: Vec<(String, String)>,
    /// The host mount namespace's mounts (this process's /proc/self/mounts).
    pub mounts: Vec<String>,
    /// Network interfaces of the host's network namespace.
    pub links: Vec<String>,
}

pub const HOST_SYSCTLS: [&str; 7] = [
    "fs/protected_regular",
    "fs/protected_fifos",
    "fs/protected_hardlinks",
    "fs/protected_symlinks",
    "kernel/hostname",
    "kernel/domainname",
    "net/ipv4/ip_forward",
];

impl HostState {
    pub fn take() -> HostState {
        let sysctls = HOST_SYSCTLS
            .iter()
            .map(|k| {
                let v = std::fs::read_to_string(Path::new("/proc/sys").join(k))
                    .unwrap_or_else(|e| format!("<{e}>"));
                (k.replace('/', "."), v.trim().to_owned())
            })
            .collect();
        let accounts = ["/etc/passwd", "/etc/group", "/etc/shadow", "/etc/gshadow"]
            .iter()
            .map(|f| {
                (
                    f.to_string(),
                    std::fs::read_to_string(f).unwrap_or_default(),
                )
            })
            .collect();
        let mut mounts: Vec<String> = std::fs::read_to_string("/proc/self/mounts")
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect();
        mounts.sort();
        let mut links: Vec<String> = std::fs::read_dir("/sys/class/net")
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        links.sort();
        HostState {
            sysctls,
            accounts,
            mounts,
            links,
        }
    }

    /// What changed from `self` to `now`, one line each (account files by name only).
    pub fn changes(&self, now: &HostState) -> Vec<String> {
        let mut out = Vec::new();
        for ((k, before), (_, after)) in self.sysctls.iter().zip(&now.sysctls) {
            if before != after {
                out.push(format!("host sysctl {k} changed from {before} to {after}"));
            }
        }
        for ((f, before), (_, after)) in self.accounts.iter().zip(&now.accounts) {
            if before != after {
                out.push(format!("host {f} changed"));
            }
        }
        for m in now.mounts.iter().filter(|m| !self.mounts.contains(m)) {
            out.push(format!("new mount in the host's mount namespace: {m}"));
        }
        for m in self.mounts.iter().filter(|m| !now.mounts.contains(m)) {
            out.push(format!("mount gone from the host's mount namespace: {m}"));
        }
        if self.links != now.links {
            out.push(format!(
                "host network interfaces changed from {:?} to {:?}",
                self.links, now.links
            ));
        }
        out
    }

    /// Fails naming what changed since `self`.
    pub fn assert_unchanged(&self, when: &str) {
        let changes = self.changes(&HostState::take());
        assert!(
            changes.is_empty(),
            "{when}: the host changed:\n{}",
            changes.join("\n")
        );
    }
}

/// A reference to a process's namespace (an open `/proc/PID/ns/<kind>`), so that the kernel
/// cannot free it and hand its number to a new namespace while a test looks for processes
/// left in it.
pub struct NsHold {
    kind: &'static str,
    id: String,
    _fd: std::fs::File,
}

impl NsHold {
    pub fn of(pid: u32, kind: &'static str) -> NsHold {
        let path = format!("/proc/{pid}/ns/{kind}");
        let fd = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let id = std::fs::read_link(&path).unwrap().display().to_string();
        NsHold { kind, id, _fd: fd }
    }

    /// Processes still in the namespace.
    pub fn processes(&self) -> Vec<u32> {
        processes_in_ns(self.kind, &self.id)
    }
}

/// Host PIDs of processes in the namespace `ns` (`readlink /proc/PID/ns/<kind>`).
pub fn processes_in_ns(kind: &str, ns: &str) -> Vec<u32> {
    let mut out = Vec::new();
    if ns.is_empty() {
        return out;
    }
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if std::fs::read_link(format!("/proc/{pid}/ns/{kind}"))
            .is_ok_and(|p| p.display().to_string() == ns)
        {
            out.push(pid);
        }
    }
    out
}

fn describe(pids: &[u32]) -> String {
    pids.iter()
        .map(|p| {
            let cmd = std::fs::read(format!("/proc/{p}/cmdline"))
                .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
                .unwrap_or_default();
            format!("{p} {}", cmd.trim())
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// A file only its owner can read (it holds keys or passwords), created empty.
pub fn private_file(path: &Path) -> std::fs::File {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// One HTTP request with curl, run by `exec` (inside a unit, or on the model network), its
/// headers and body passed through files in `dir` (mode 0600) so that keys never appear on a
/// command line. Returns `(status code, body)`; with no HTTP answer, 0 and curl's message.
pub fn curl_through_files(
    dir: &Path,
    exec: impl FnOnce(&[&str]) -> Output,
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> (u16, String) {
    let hfile = dir.join("curl-headers");
    let mut f = private_file(&hfile);
    for (k, v) in headers {
        writeln!(f, "{k}: {v}").unwrap();
    }
    drop(f);
    let bfile = dir.join("curl-body");
    private_file(&bfile).write_all(body.unwrap_or(b"")).unwrap();
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
    let out = exec(&argv);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    match code.trim().parse() {
        Ok(c) if c > 0 => (c, body.to_owned()),
        // No HTTP answer: say why (curl's own message) in place of a body.
        _ => (0, String::from_utf8_lossy(&out.stderr).into_owned()),
    }
}

/// Long-running processes a test started (servers), each in its own process group so that
/// what they fork (postgres under runuser) goes with them.
#[derive(Default)]
struct Background(Vec<Child>);

impl Background {
    fn spawn(&mut self, cmd: &mut Command) -> u32 {
        use std::os::unix::process::CommandExt;
        let child = cmd
            .process_group(0)
            .spawn()
            .expect("spawning a background process");
        let pid = child.id();
        self.0.push(child);
        pid
    }

    fn kill_one(child: &mut Child) {
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", child.id())])
            .stderr(Stdio::null())
            .status();
        let _ = child.kill();
        let _ = child.wait();
    }

    fn stop(&mut self, pid: u32) {
        if let Some(i) = self.0.iter().position(|c| c.id() == pid) {
            let mut child = self.0.remove(i);
            Self::kill_one(&mut child);
        }
    }

    fn stop_all(&mut self) {
        for mut c in self.0.drain(..) {
            Self::kill_one(&mut c);
        }
    }
}

fn log_file(dir: &Path, name: &str) -> (Stdio, Stdio) {
    let f = std::fs::File::create(dir.join(name)).unwrap();
    (f.try_clone().unwrap().into(), f.into())
}

/// A model network (`jujusim net-up`): a bridge every unit on it reaches at the gateway.
pub struct Network {
    pub dir: PathBuf,
    background: Background,
    torn_down: bool,
}

impl Network {
    pub const SUBNET: &'static str = "10.77.0.0/24";
    pub const GATEWAY: &'static str = "10.77.0.1";

    pub fn up(name: &str) -> Network {
        let dir = Path::new(REPO)
            .join("target/e2e")
            .join(format!("{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let out = Command::new(sim())
            .arg("net-up")
            .arg(&dir)
            .args(["--subnet", Self::SUBNET])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "net-up: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Network {
            dir,
            background: Background::default(),
            torn_down: false,
        }
    }

    fn info(&self) -> Value {
        serde_json::from_str(&std::fs::read_to_string(self.dir.join("net.json")).unwrap()).unwrap()
    }

    /// The bridge's name in the network's namespace (`jujusim net-up` names it in net.json).
    pub fn bridge(&self) -> String {
        self.info()["bridge"]
            .as_str()
            .expect("net.json bridge")
            .to_owned()
    }

    /// The subnet's prefix length.
    pub fn prefix(&self) -> u64 {
        self.info()["prefix"].as_u64().expect("net.json prefix")
    }

    /// Runs a command in the bridge's network namespace (host filesystem).
    pub fn exec(&self, cmd: &[&str]) -> Output {
        Command::new(sim())
            .arg("net-exec")
            .arg(&self.dir)
            .arg("--")
            .args(cmd)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    /// Starts a server in the bridge's network namespace; returns its pid.
    pub fn spawn(&mut self, cmd: &[&str], log: &str) -> u32 {
        let (o, e) = log_file(&self.dir, log);
        self.background.spawn(
            Command::new(sim())
                .arg("net-exec")
                .arg(&self.dir)
                .arg("--")
                .args(cmd)
                .stdin(Stdio::null())
                .stdout(o)
                .stderr(e),
        )
    }

    /// Stops one server started with `spawn`.
    pub fn stop(&mut self, pid: u32) {
        self.background.stop(pid);
    }

    /// Stops the servers, takes the network down, fails if anything is left in its
    /// namespace.
    pub fn teardown(mut self) {
        self.torn_down = true;
        self.background.stop_all();
        let holder = self.info()["pid"].as_u64().expect("net.json pid") as u32;
        let netns = NsHold::of(holder, "net");
        // A killed server's children may outlive it by a moment: PostgreSQL's backends lead
        // their own process groups and leave only when they see the postmaster gone. Those
        // still here after the wait are leaks.
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let left: Vec<u32> = netns
                .processes()
                .into_iter()
                .filter(|p| *p != holder)
                .collect();
            if left.is_empty() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "processes left in the model network 20 s after its servers were killed: {}",
                describe(&left)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let out = Command::new(sim())
            .arg("net-down")
            .arg(&self.dir)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "net-down: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let left = netns.processes();
        assert!(
            left.is_empty(),
            "processes left in the model network: {}",
            describe(&left)
        );
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        if !self.torn_down {
            self.background.stop_all();
            let _ = Command::new(sim())
                .arg("net-down")
                .arg(&self.dir)
                .stdin(Stdio::null())
                .output();
        }
    }
}

/// One simulated Juju unit on its own simulated machine.
pub struct Unit {
    pub dir: PathBuf,
    name: String,
    background: Background,
    /// The egress proxy's pid (in `background`), once the charm is deployed.
    proxy: Option<u32>,
    /// The host before this unit's machine first booted.
    host_before: HostState,
    /// Powered off (`power_off`), not torn down: `power_on` boots the same disk again.
    down: bool,
    torn_down: bool,
}

impl Unit {
    /// A freshly booted machine, no charm yet (`net`: on a model network at `ip`).
    pub fn boot(name: &str, net: Option<(&Network, &str)>) -> Unit {
        require("unshare");
        require("nsenter");
        assert!(
            Path::new("/lib/systemd/systemd").is_file(),
            "/lib/systemd/systemd is missing: simulated units boot the host's systemd"
        );
        let dir = Path::new(REPO)
            .join("target/e2e")
            .join(format!("{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let unit = Unit {
            dir,
            name: name.to_owned(),
            background: Background::default(),
            proxy: None,
            host_before: HostState::take(),
            down: false,
            torn_down: false,
        };
        let mut args = vec![];
        let netdir;
        if let Some((n, ip)) = net {
            netdir = n.dir.display().to_string();
            args = vec!["--net", netdir.as_str(), "--ip", ip];
        }
        unit.sim_ok(&[&["machine-up"], args.as_slice()].concat());
        unit.check_boot();
        unit
    }

    /// A freshly booted machine with the packed charm unpacked in the unit's charm dir and
    /// the model's proxy on its loopback.
    pub fn deploy(name: &str) -> Unit {
        let mut unit = Unit::boot(name, None);
        unit.deploy_charm();
        unit
    }

    /// Unpacks the packed charm on the machine (`juju deploy`'s download), starts the egress
    /// proxy that stands for the model's `juju-https-proxy`.
    pub fn deploy_charm(&mut self) {
        self.sim_ok(&["deploy-charm", packed_charm().to_str().unwrap()]);
        self.start_proxy();
    }

    /// The same for a unit of a model: named `unit`, at `address` on the model network.
    pub fn deploy_charm_as(&mut self, unit: &str, address: &str) {
        self.sim_ok(&[
            "deploy-charm",
            packed_charm().to_str().unwrap(),
            "--unit",
            unit,
            "--address",
            address,
        ]);
        self.start_proxy();
    }

    /// The unit's network is its loopback only; npm reaches the registry through the model's
    /// proxy, as on a firewalled Juju model with juju-https-proxy set. It listens in the
    /// machine's network namespace, so a reboot (a new namespace) needs a new one.
    fn start_proxy(&mut self) {
        if let Some(old) = self.proxy.take() {
            self.background.stop(old);
        }
        let pid = self.machine_pid().to_string();
        let (o, e) = log_file(&self.dir, "egress-proxy.log");
        self.proxy = Some(
            self.background.spawn(
                Command::new(egress_proxy())
                    .args(["--netns-pid", &pid, "--listen", "127.0.0.1:3128"])
                    .args(["--allow", "registry.npmjs.org:443"])
                    .stdin(Stdio::null())
                    .stdout(o)
                    .stderr(e),
            ),
        );
        self.wait_port(3128, Duration::from_secs(10));
    }

    /// The last boot's record (`U/machine-run.json`).
    pub fn boot_record(&self) -> Value {
        serde_json::from_str(&self.read_unit_file("machine-run.json")).expect("machine-run.json")
    }

    /// Host PID of the unit's systemd.
    pub fn machine_pid(&self) -> u32 {
        self.read_unit_file("machine.pid")
            .trim()
            .parse()
            .expect("machine.pid")
    }

    /// After every boot: systemd reached multi-user.target with nothing failed, and the host
    /// kernel's settings are what they were (a booting systemd with a writable /proc/sys
    /// applies the host's sysctl.d files to the host kernel).
    fn check_boot(&self) {
        let rec = self.boot_record();
        let failed = self.exec(&["systemctl", "list-units", "--failed", "--no-legend"]);
        assert_eq!(
            rec["system_state"],
            "running",
            "{} booted {}: {}",
            self.name,
            rec["system_state"],
            String::from_utf8_lossy(&failed.stdout)
        );
        let now = HostState::take();
        assert_eq!(
            now.sysctls, self.host_before.sysctls,
            "booting {} changed the host's sysctls",
            self.name
        );
        let ms = rec["boot_ms"].as_f64().unwrap_or(0.0);
        record_figure("boot", &self.name, ms, "ms");
    }

    /// `jujusim machine-reboot`: power off, boot again from the same disk (no hook runs).
    /// Processes started in the old machine's namespaces are gone or stranded; the model's
    /// proxy is started again in the new one.
    pub fn reboot(&mut self) {
        self.sim_ok(&["machine-reboot"]);
        self.check_boot();
        if self.proxy.is_some() {
            self.start_proxy();
        }
    }

    /// Where the running unit's `p` is, seen from the host (`jujusim machine-path`).
    pub fn path(&self, p: &str) -> PathBuf {
        PathBuf::from(self.sim_ok(&["machine-path", p]).trim())
    }

    /// Runs `jujusim <sub> <unit dir> <args...>`.
    pub fn sim(&self, sub: &str, args: &[&str]) -> Output {
        let mut cmd = Command::new(sim());
        cmd.arg(sub).arg(&self.dir).args(args);
        cmd.env("JUJUSIM_HTTPS_PROXY", UNIT_PROXY);
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

    /// Runs one hook with extra variables in its environment (the simulator's
    /// `JUJUSIM_HOOK_ENV_<NAME>`); returns how it exited, without asserting.
    pub fn hook_with_env(&self, name: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut cmd = Command::new(sim());
        cmd.arg("hook").arg(&self.dir).arg(name).args(args);
        cmd.env("JUJUSIM_HTTPS_PROXY", UNIT_PROXY);
        for (k, v) in env {
            cmd.env(format!("JUJUSIM_HOOK_ENV_{k}"), v);
        }
        cmd.stdin(Stdio::null());
        cmd.output().expect("running jujusim")
    }

    /// How many hooks and actions have run on this unit.
    pub fn hooks_run(&self) -> usize {
        self.read_unit_file("hook-times.jsonl").lines().count()
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

    /// Sets an option whose value is a secret (a database URI with a password): through a
    /// 0600 file (`juju config --file`), never on a command line.
    pub fn config_secret(&self, key: &str, value: &str) {
        let file = self.dir.join(".config-secret.yaml");
        let mut f = private_file(&file);
        writeln!(f, "{key}: {}", serde_json::to_string(value).unwrap()).unwrap();
        drop(f);
        let out = self.sim("config", &["--file", file.to_str().unwrap()]);
        let _ = std::fs::remove_file(&file);
        assert!(out.status.success(), "config --file failed");
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

    /// Runs a command inside the unit (all its namespaces).
    pub fn exec(&self, cmd: &[&str]) -> Output {
        let mut argv = vec!["--"];
        argv.extend_from_slice(cmd);
        self.sim("machine-exec", &argv)
    }

    /// Runs a command inside the unit with `input` on its stdin (SQL with a password).
    pub fn exec_with_input(&self, cmd: &[&str], input: &[u8]) -> Output {
        let mut child = Command::new(sim())
            .arg("machine-exec")
            .arg(&self.dir)
            .arg("--")
            .args(cmd)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(input).unwrap();
        child.wait_with_output().unwrap()
    }

    /// Runs a command inside the unit; asserts it succeeded; returns its stdout.
    pub fn exec_ok(&self, cmd: &[&str]) -> String {
        let out = self.exec(cmd);
        assert!(
            out.status.success(),
            "{cmd:?} in the unit failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `systemctl show -p PROP --value UNIT` inside the unit.
    pub fn service_property(&self, unit: &str, prop: &str) -> String {
        self.exec_ok(&["systemctl", "show", "-p", prop, "--value", unit])
            .trim()
            .to_owned()
    }

    /// The main PID (in the unit's PID namespace) of a service; 0 when it has none.
    pub fn main_pid(&self, unit: &str) -> u32 {
        self.service_property(unit, "MainPID").parse().unwrap_or(0)
    }

    /// What a service wrote to the unit's journal.
    pub fn journal(&self, unit: &str) -> String {
        self.exec_ok(&["journalctl", "-u", unit, "--no-pager", "-o", "cat"])
    }

    /// Starts a long-running process in the unit's network namespace only (host filesystem).
    /// Returns its pid, for `stop_background`.
    pub fn spawn_on_loopback(&mut self, cmd: &[&str], log: &str) -> u32 {
        let (o, e) = log_file(&self.dir, log);
        self.background.spawn(
            Command::new(sim())
                .arg("machine-exec")
                .arg("--net-only")
                .arg(&self.dir)
                .arg("--")
                .args(cmd)
                .stdin(Stdio::null())
                .stdout(o)
                .stderr(e),
        )
    }

    /// Starts a long-running process inside all of the unit's namespaces (its filesystem, its
    /// PID namespace); returns the pid of its `nsenter`.
    pub fn spawn_in_unit(&mut self, cmd: &[&str], log: &str) -> u32 {
        let (o, e) = log_file(&self.dir, log);
        self.background.spawn(
            Command::new(sim())
                .arg("machine-exec")
                .arg(&self.dir)
                .arg("--")
                .args(cmd)
                .stdin(Stdio::null())
                .stdout(o)
                .stderr(e),
        )
    }

    /// Kills a process started with `spawn_on_loopback`/`spawn_in_unit` (and its process
    /// group) and waits for it.
    pub fn stop_background(&mut self, pid: u32) {
        self.background.stop(pid);
    }

    /// Waits until something listens on `port` of `host` as the unit sees it.
    pub fn wait_addr(&self, host: &str, port: u16, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            let out = self.exec(&["bash", "-c", &format!("exec 3<>/dev/tcp/{host}/{port}")]);
            if out.status.success() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "nothing listens on {host}:{port} after {within:?}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Waits until something listens on `port` on the unit's loopback.
    pub fn wait_port(&self, port: u16, within: Duration) {
        self.wait_addr("127.0.0.1", port, within)
    }

    /// An HTTP request from inside the unit with curl (`curl_through_files`). Returns
    /// `(status code, body)`.
    pub fn http(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: Option<&str>,
    ) -> (u16, String) {
        curl_through_files(
            &self.dir,
            |argv| self.exec(argv),
            method,
            url,
            headers,
            body.map(str::as_bytes),
        )
    }

    /// Whether `<url>` answers 200 (e.g. parse-server's health endpoint).
    pub fn healthy(&self, url: &str) -> bool {
        self.http("GET", url, &[], None).0 == 200
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

    /// A file of the running unit's filesystem.
    pub fn read_text(&self, p: &str) -> String {
        std::fs::read_to_string(self.path(p)).unwrap_or_default()
    }

    /// Powers the machine off and checks that nothing of it is left and that the host is as
    /// it was before the unit booted; fails the test otherwise.
    pub fn teardown(mut self) {
        self.torn_down = true;
        if self.down {
            self.background.stop_all();
        } else {
            self.power_off_checked();
        }
        self.host_before
            .assert_unchanged(&format!("after unit {} went down", self.name));
    }

    /// `jujusim machine-down` of a unit that stays a unit (a lost machine: in a model its
    /// events queue until `power_on`). What the test started for it (the model's proxy,
    /// servers on its loopback) is stopped; the same checks as `teardown` that nothing of the
    /// machine is left.
    pub fn power_off(&mut self) {
        assert!(!self.down, "{} is already powered off", self.name);
        self.power_off_checked();
        self.host_before
            .assert_unchanged(&format!("after unit {} was powered off", self.name));
    }

    /// Boots a powered-off machine again from its disk, on the network and address it had
    /// (`jujusim machine-up` with what `U/machine.json` recorded), checks the boot, and
    /// starts the model's proxy again if the charm was deployed.
    pub fn power_on(&mut self) {
        assert!(self.down, "{} is not powered off", self.name);
        let cfg: Value =
            serde_json::from_str(&self.read_unit_file("machine.json")).expect("machine.json");
        let mut args = vec!["machine-up".to_owned()];
        if let (Some(net), Some(ip)) = (cfg["net"].as_str(), cfg["ip"].as_str()) {
            args.extend([
                "--net".to_owned(),
                net.to_owned(),
                "--ip".to_owned(),
                ip.to_owned(),
            ]);
        }
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        self.sim_ok(&argv);
        self.down = false;
        self.check_boot();
        if self.proxy.is_some() {
            self.start_proxy();
        }
    }

    /// Whether the machine is powered off (`power_off`).
    pub fn is_down(&self) -> bool {
        self.down
    }

    fn power_off_checked(&mut self) {
        self.background.stop_all();
        let rec = self.boot_record();
        let pid = self.machine_pid();
        let held = ["pid", "net", "mnt"].map(|kind| NsHold::of(pid, kind));
        let out = self.sim("machine-down", &[]);
        assert!(
            out.status.success(),
            "machine-down {}: {}",
            self.name,
            String::from_utf8_lossy(&out.stderr)
        );
        // machine-down has waited for the machine's systemd; what is left in its
        // namespaces (a server a test forgot, a process forked away from its group) would
        // keep them alive.
        let deadline = Instant::now() + Duration::from_secs(10);
        for ns in &held {
            let mut left = ns.processes();
            while !left.is_empty() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
                left = ns.processes();
            }
            assert!(
                left.is_empty(),
                "{}: processes left in the unit's {} namespace: {}",
                self.name,
                ns.kind,
                describe(&left)
            );
        }
        drop(held);
        let cgroup = rec["cgroup"].as_str().unwrap_or_default();
        assert!(
            !cgroup.is_empty() && !Path::new(cgroup).exists(),
            "{}: the unit's cgroup {cgroup} is still there",
            self.name
        );
        self.down = true;
    }
}

impl Drop for Unit {
    fn drop(&mut self) {
        if !self.torn_down {
            self.background.stop_all();
            let _ = self.sim("machine-down", &[]);
        }
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

/// `n` random letters and digits (passwords the test hands out, as Charmed PostgreSQL does).
pub fn random_alnum(n: usize) -> String {
    use std::io::Read;
    let mut bytes = vec![0u8; n * 2];
    std::fs::File::open("/dev/urandom")
        .unwrap()
        .read_exact(&mut bytes)
        .unwrap();
    bytes
        .iter()
        .map(|b| {
            b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"[(*b as usize) % 57] as char
        })
        .take(n)
        .collect()
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

/// Percent-encodes everything but unreserved characters (a URI's user or password).
pub fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
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
