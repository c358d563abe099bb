//! A model network (`jujusim net-up`): a bridge every unit on it reaches at the gateway, and
//! servers a test runs in the bridge's network namespace.

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::artifacts::{fresh_work_dir, jujusim};
use super::host::{describe, NsHold};
use super::process::{log_file, Background};

/// A model network (`jujusim net-up`): a bridge every unit on it reaches at the gateway.
pub struct Network {
    pub dir: PathBuf,
    background: Background,
    torn_down: bool,
}

impl Network {
    pub const SUBNET: &'static str = "10.77.0.0/24";
    pub const GATEWAY: &'static str = "10.77.0.1";

    /// `jujusim net-up` on `SUBNET`, its directory `<work dir>/<name>-<pid>`.
    pub fn up(name: &str) -> Network {
        let dir = fresh_work_dir(name);
        let out = jujusim()
            .arg("net-up")
            .arg(&dir)
            .args(["--subnet", Self::SUBNET])
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

    /// `jujusim net-exec NETDIR -- <cmd>`: a command in the bridge's network namespace (host
    /// filesystem), for the caller to run or spawn.
    pub fn command(&self, cmd: &[&str]) -> Command {
        let mut c = jujusim();
        c.arg("net-exec").arg(&self.dir).arg("--").args(cmd);
        c
    }

    /// Runs a command in the bridge's network namespace (host filesystem).
    pub fn exec(&self, cmd: &[&str]) -> Output {
        self.command(cmd).output().unwrap()
    }

    /// Whether something on the network's side accepts TCP connections on `host:port`.
    pub fn accepts(&self, host: &str, port: u16) -> bool {
        self.exec(&["bash", "-c", &format!("exec 3<>/dev/tcp/{host}/{port}")])
            .status
            .success()
    }

    /// Starts a server in the bridge's network namespace, its output in `log` of the
    /// network's directory; returns its pid.
    pub fn spawn(&mut self, cmd: &[&str], log: &str) -> u32 {
        let (o, e) = log_file(&self.dir, log);
        self.background.spawn(self.command(cmd).stdout(o).stderr(e))
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
        let out = jujusim().arg("net-down").arg(&self.dir).output().unwrap();
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
            let _ = jujusim()
                .arg("net-down")
                .arg(&self.dir)
                .stdin(Stdio::null())
                .output();
        }
    }
}
