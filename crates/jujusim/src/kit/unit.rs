//! A unit: its unit dir driven through `jujusim <sub> U ...` ([`UnitDir`]: hooks, config,
//! status, the simulator's files), and a unit on its own booted machine ([`Unit`]: a
//! machine that boots the host's systemd as PID 1 of its own namespaces, commands and
//! servers inside it, power off and on, and the checks that nothing of it is left).

use std::io::Write;
use std::ops::{Deref, DerefMut};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::artifacts::{egress_proxy, fresh_work_dir, jujusim, record_figure, require};
use super::files::{curl_through_files, private_file};
use super::host::{describe, HostState, NsHold};
use super::network::Network;
use super::process::{log_file, Background};

/// Where units find the model's proxy (`juju-https-proxy`), on their own loopback.
pub const UNIT_PROXY: &str = "http://127.0.0.1:3128";

/// A unit dir, driven through `jujusim <sub> U <args>`.
pub struct UnitDir {
    pub dir: PathBuf,
    /// Environment of every `jujusim` run (e.g. `JUJUSIM_HTTPS_PROXY`).
    env: Vec<(String, String)>,
}

impl UnitDir {
    /// The unit dir at `dir` (made by `jujusim init`, `add-unit` or `deploy-charm`).
    pub fn at(dir: impl Into<PathBuf>) -> UnitDir {
        UnitDir {
            dir: dir.into(),
            env: Vec::new(),
        }
    }

    /// The same with `key=value` in the environment of every `jujusim` run.
    pub fn with_env(mut self, key: &str, value: &str) -> UnitDir {
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }

    fn command(&self, sub: &str, args: &[&str]) -> Command {
        let mut cmd = jujusim();
        cmd.arg(sub).arg(&self.dir).args(args);
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd
    }

    /// Runs `jujusim <sub> <unit dir> <args...>`.
    pub fn sim(&self, sub: &str, args: &[&str]) -> Output {
        self.command(sub, args).output().expect("running jujusim")
    }

    /// Runs `jujusim argv[0] <unit dir> argv[1..]`; asserts it succeeded; returns its stdout.
    pub fn sim_ok(&self, argv: &[&str]) -> String {
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
        let mut argv = vec![name];
        argv.extend_from_slice(args);
        let out = self.sim("hook", &argv);
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
        let mut argv = vec![name];
        argv.extend_from_slice(args);
        let mut cmd = self.command("hook", &argv);
        for (k, v) in env {
            cmd.env(format!("JUJUSIM_HOOK_ENV_{k}"), v);
        }
        cmd.output().expect("running jujusim")
    }

    /// Runs one hook under the simulator's tracer (`JUJUSIM_HOOK_TRACE`, strace on the host
    /// following it into the unit) and returns every program it started, in order, as the
    /// paths given to `execve` (the machine's `nsenter` prefix left out: it is Juju's side).
    pub fn traced_hook(&self, name: &str) -> Vec<String> {
        super::artifacts::require("strace");
        let file = self.dir.join(format!("trace-{name}.log"));
        let _ = std::fs::remove_file(&file);
        let out = self
            .command("hook", &[name])
            .env("JUJUSIM_HOOK_TRACE", &file)
            .output()
            .expect("running jujusim");
        assert!(
            out.status.success(),
            "hook {name} failed under the tracer; its output:\n{}",
            self.hook_output_tail()
        );
        let text = std::fs::read_to_string(&file).expect("the tracer's log");
        text.lines()
            // A failed execve (a PATH lookup's miss) started nothing.
            .filter(|l| !l.contains(" = -"))
            .filter_map(|l| {
                let rest = l.split_once("execve(\"")?.1;
                Some(rest.split_once('"')?.0.to_owned())
            })
            .filter(|p| !p.ends_with("/nsenter") && p != "nsenter")
            .collect()
    }

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

    /// How many hooks and actions have run on this unit.
    pub fn hooks_run(&self) -> usize {
        self.read_unit_file("hook-times.jsonl").lines().count()
    }

    /// The last 40 lines the unit's hooks wrote.
    pub fn hook_output_tail(&self) -> String {
        let log = self.read_unit_file("hook-output.log");
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// `jujusim config U key=value...`.
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

    /// This unit's own databag on the first relation of `endpoint` (committed state).
    pub fn local_unit_bag(&self, endpoint: &str) -> Option<serde_json::Map<String, Value>> {
        let state: Value = serde_json::from_str(&self.read_unit_file("state.json")).ok()?;
        state["relations"]
            .as_object()?
            .values()
            .find(|r| r["endpoint"] == endpoint)
            .and_then(|r| r["local_unit_bag"].as_object().cloned())
    }

    /// A file of the unit directory (the simulator's logs and state); empty if there is none.
    pub fn read_unit_file(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.join(name)).unwrap_or_default()
    }
}

/// One simulated Juju unit on its own simulated machine. Its unit dir's commands
/// ([`UnitDir`]) run with the model's proxy named (`JUJUSIM_HTTPS_PROXY`).
pub struct Unit {
    agent: UnitDir,
    name: String,
    background: Background,
    /// The egress proxy's pid (in `background`) and the destinations it lets through, once
    /// started.
    proxy: Option<(u32, Vec<String>)>,
    /// The host before this unit's machine first booted.
    host_before: HostState,
    /// Powered off (`power_off`), not torn down: `power_on` boots the same disk again.
    down: bool,
    torn_down: bool,
}

impl Deref for Unit {
    type Target = UnitDir;
    fn deref(&self) -> &UnitDir {
        &self.agent
    }
}

impl DerefMut for Unit {
    fn deref_mut(&mut self) -> &mut UnitDir {
        &mut self.agent
    }
}

impl Unit {
    /// A freshly booted machine, no charm yet (`net`: on a model network at `ip`); its unit
    /// dir is `<work dir>/<name>-<pid>`.
    pub fn boot(name: &str, net: Option<(&Network, &str)>) -> Unit {
        require("unshare");
        require("nsenter");
        assert!(
            Path::new("/lib/systemd/systemd").is_file(),
            "/lib/systemd/systemd is missing: simulated units boot the host's systemd"
        );
        let dir = fresh_work_dir(name);
        let unit = Unit {
            agent: UnitDir::at(dir).with_env("JUJUSIM_HTTPS_PROXY", UNIT_PROXY),
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

    /// The name the unit was booted with.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `jujusim deploy-charm U <charm> <args>` (`juju deploy`'s download: the packed charm
    /// unpacked on the machine; `args` e.g. `--unit app/1 --address IP` for a unit of a
    /// model).
    pub fn unpack_charm(&self, charm: &Path, args: &[&str]) {
        let mut argv = vec!["deploy-charm", charm.to_str().unwrap()];
        argv.extend_from_slice(args);
        self.sim_ok(&argv);
    }

    /// A second unit on this unit's machine (`jujusim deploy-charm D <charm> --unit <unit>
    /// --machine <this unit dir>`, `D` = `<this unit dir>/beside/<unit as a file name>`): its
    /// hooks run inside this machine, against the same services and files, with tools,
    /// state and logs of its own. It has no machine of its own (no power off, no teardown of
    /// its own: it goes with this unit's); after a reboot, call this again.
    pub fn deploy_beside(&self, charm: &Path, unit: &str) -> UnitDir {
        let dir = self.dir.join("beside").join(unit.replace('/', "-"));
        std::fs::create_dir_all(&dir).expect("the second unit's dir");
        let this = self.dir.to_str().unwrap();
        let beside = UnitDir::at(dir).with_env("JUJUSIM_HTTPS_PROXY", UNIT_PROXY);
        beside.sim_ok(&[
            "deploy-charm",
            charm.to_str().unwrap(),
            "--unit",
            unit,
            "--machine",
            this,
        ]);
        beside
    }

    /// Starts the egress proxy that stands for the model's `juju-https-proxy` on the unit's
    /// loopback (`UNIT_PROXY`), letting through only `allow` (`host:port` each): the unit's
    /// network is its loopback only, as on a firewalled Juju model. It listens in the
    /// machine's network namespace, so a reboot (a new namespace) starts it again.
    pub fn start_proxy(&mut self, allow: &[&str]) {
        if let Some((old, _)) = self.proxy.take() {
            self.background.stop(old);
        }
        let pid = self.machine_pid().to_string();
        let (o, e) = log_file(&self.dir, "egress-proxy.log");
        let mut cmd = Command::new(egress_proxy());
        cmd.args(["--netns-pid", &pid, "--listen", "127.0.0.1:3128"]);
        for a in allow {
            cmd.args(["--allow", a]);
        }
        let proxy = self
            .background
            .spawn(cmd.stdin(Stdio::null()).stdout(o).stderr(e));
        self.proxy = Some((proxy, allow.iter().map(|a| a.to_string()).collect()));
        self.wait_port(3128, Duration::from_secs(10));
    }

    fn restart_proxy(&mut self) {
        if let Some((_, allow)) = self.proxy.clone() {
            let allow: Vec<&str> = allow.iter().map(String::as_str).collect();
            self.start_proxy(&allow);
        }
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
    /// applies the host's sysctl.d files to the host kernel). Records the boot time.
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
        self.restart_proxy();
    }

    /// Where the running unit's `p` is, seen from the host (`jujusim machine-path`).
    pub fn path(&self, p: &str) -> PathBuf {
        PathBuf::from(self.sim_ok(&["machine-path", p]).trim())
    }

    /// Runs a command inside the unit (all its namespaces).
    pub fn exec(&self, cmd: &[&str]) -> Output {
        let mut argv = vec!["--"];
        argv.extend_from_slice(cmd);
        self.sim("machine-exec", &argv)
    }

    /// Runs a command inside the unit with `input` on its stdin (SQL with a password).
    pub fn exec_with_input(&self, cmd: &[&str], input: &[u8]) -> Output {
        let mut child = jujusim()
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
        let mut c = jujusim();
        c.arg("machine-exec")
            .arg("--net-only")
            .arg(&self.dir)
            .arg("--")
            .args(cmd)
            .stdout(o)
            .stderr(e);
        self.background.spawn(&mut c)
    }

    /// Starts a long-running process inside all of the unit's namespaces (its filesystem, its
    /// PID namespace); returns the pid of its `nsenter`.
    pub fn spawn_in_unit(&mut self, cmd: &[&str], log: &str) -> u32 {
        let (o, e) = log_file(&self.dir, log);
        let mut c = jujusim();
        c.arg("machine-exec")
            .arg(&self.dir)
            .arg("--")
            .args(cmd)
            .stdout(o)
            .stderr(e);
        self.background.spawn(&mut c)
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

    /// Whether `<url>` answers 200 from inside the unit (e.g. a health endpoint).
    pub fn healthy(&self, url: &str) -> bool {
        self.http("GET", url, &[], None).0 == 200
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
    /// starts the model's proxy again if it was started.
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
        self.restart_proxy();
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
