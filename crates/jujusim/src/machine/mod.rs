//! Machine mode: every simulated unit is a machine that boots the host's own systemd as PID 1
//! (machine-up, machine-down, machine-reboot, machine-exec, machine-path).
//!
//! `machine-up U` starts `unshare --fork --pid --mount --uts --ipc --net --cgroup
//! --propagation private --kill-child -- jujusim machine-boot U` from inside a new child
//! cgroup of the host's cgroup2 tree (that child becomes the unit's cgroup root).
//! `machine-boot` (boot.rs) builds the unit's root filesystem (an overlay whose lower layer is
//! the host's `/` and whose upper layer is the unit's persistent disk `U/disk`), pivots into
//! it and execs `/lib/systemd/systemd`. The host then waits for
//! `systemctl is-system-running --wait` inside and records the host PID of the unit's systemd
//! in `U/machine.pid`.
//!
//! Nothing is mounted in the host's mount namespace: every mount lives in the unit's own,
//! which the kernel tears down with the unit's last process. What the host keeps between
//! boots is `U/disk` (the unit's disk), `U/machine.json` (how it was booted: name, network)
//! and `U/machine-run.json` (the last boot: PIDs, cgroup, namespaces, boot time).
//!
//! Files of the unit are read and written from the host through `/proc/<pid>/root/...` (the
//! merged view of the running machine), never in the overlay's upper dir while it is mounted.

pub mod boot;
pub mod net;
pub mod package;

use crate::agent::state::{self, with_state};
use crate::errors::{CmdError, CmdResult};
use crate::util::pid_alive;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How a unit's machine boots (`U/machine.json`, written by machine-up, reused by reboot).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MachineConfig {
    /// Host name and `container=` value of the machine.
    pub name: String,
    /// Model network dir (`jujusim net-up`), if the machine is on one.
    pub net: Option<String>,
    /// The machine's address on that network.
    pub ip: Option<String>,
}

/// What one boot left behind (`U/machine-run.json`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct BootRecord {
    /// Host PID of the unit's systemd.
    pub pid: i32,
    /// Host PID of the `unshare` process holding it.
    pub holder: i32,
    /// The unit's cgroup (its cgroup namespace root) on the host.
    pub cgroup: String,
    /// machine-up until `systemctl is-system-running --wait` answered.
    pub boot_ms: u64,
    /// What it answered (`running` or `degraded`).
    pub system_state: String,
    /// Units systemd reported failed when the boot finished.
    pub failed_units: Vec<String>,
    /// The unit's namespaces, as `readlink /proc/<pid>/ns/<kind>` shows them.
    pub pid_ns: String,
    pub net_ns: String,
    pub mnt_ns: String,
}

/// The systemd every simulated machine boots: the host's own.
pub const SYSTEMD: &str = "/lib/systemd/systemd";

pub fn config_path(dir: &Path) -> PathBuf {
    dir.join("machine.json")
}

pub fn run_path(dir: &Path) -> PathBuf {
    dir.join("machine-run.json")
}

pub fn load_config(dir: &Path) -> Option<MachineConfig> {
    serde_json::from_str(&std::fs::read_to_string(config_path(dir)).ok()?).ok()
}

pub fn load_run(dir: &Path) -> Option<BootRecord> {
    serde_json::from_str(&std::fs::read_to_string(run_path(dir)).ok()?).ok()
}

fn comm(pid: i32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// The host PID of the unit's systemd if the machine is up.
pub fn running_pid(dir: &Path) -> Option<i32> {
    let pid: i32 = std::fs::read_to_string(dir.join("machine.pid"))
        .ok()?
        .trim()
        .parse()
        .ok()?;
    (pid_alive(pid) && comm(pid) == "systemd").then_some(pid)
}

/// Whether a unit in machine mode has no running machine: powered off (`machine-down`, which
/// drops the exec prefix) or its systemd gone. Its agent is lost: hooks cannot run there.
pub fn is_down(dir: &Path, st: &state::State) -> bool {
    st.machine_mode
        && (st.exec_prefix.is_none() || (config_path(dir).exists() && running_pid(dir).is_none()))
}

fn require_running(dir: &Path) -> CmdResult<i32> {
    running_pid(dir)
        .ok_or_else(|| CmdError::runtime(format!("machine {} is not running", dir.display())))
}

/// The address a unit on this machine has (its model-network IP), if any.
pub fn machine_ip(dir: &Path) -> Option<String> {
    load_config(dir)?.ip
}

/// `nsenter -t PID -a --wdns=<charm dir> --`: all of the unit's namespaces.
///
/// `--wdns` (not `--wd`): util-linux 2.38's `--wd=<dir>` opens `<dir>` on the host before
/// entering the namespaces, so an in-namespace path fails; `--wdns` resolves it inside.
pub fn nsenter_prefix(pid: i32, charm_dir: &str) -> Vec<String> {
    vec![
        "nsenter".into(),
        "-t".into(),
        pid.to_string(),
        "-a".into(),
        format!("--wdns={charm_dir}"),
        "--".into(),
    ]
}

/// The host path of `path` inside the running machine `pid` (through its root).
///
/// An absolute symlink met on the way resolves against the reader's root, not the unit's.
pub fn host_path(pid: i32, path: &str) -> PathBuf {
    PathBuf::from(format!("/proc/{pid}/root/{}", path.trim_start_matches('/')))
}

fn children_of(pid: u32) -> Vec<i32> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for t in rd.flatten() {
            if let Ok(s) = std::fs::read_to_string(t.path().join("children")) {
                out.extend(s.split_whitespace().filter_map(|x| x.parse::<i32>().ok()));
            }
        }
    }
    out
}

/// Point the unit's state at the running machine (or at none).
fn set_prefix(dir: &Path, pid: Option<i32>) -> CmdResult<()> {
    if !state::state_path(dir).exists() {
        return Ok(());
    }
    let ip = machine_ip(dir);
    with_state(dir, |st| {
        st.exec_prefix = pid.map(|p| nsenter_prefix(p, &st.charm_dir));
        if let Some(p) = pid {
            st.machine_mode = true;
            if st.charm_in_machine {
                st.host_charm_dir = host_path(p, &st.charm_dir).display().to_string();
            }
            if let Some(ip) = &ip {
                st.address = ip.clone();
            }
        }
        Ok(())
    })
}

/// Host name of a unit's machine: the unit dir's name, as a valid host name.
pub fn machine_name(dir: &Path) -> String {
    let base = dir
        .file_name()
        .map(|n| n.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    let mut name: String = base
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    name.truncate(63);
    let name = name.trim_matches('-').to_string();
    if name.is_empty() {
        "unit".into()
    } else {
        name
    }
}

/// Units a simulated machine never starts, whatever the host enables: they would act on the
/// host's kernel or hardware (the clock, modules, the entropy pool, pstore, sysctls, binfmt,
/// kernel filesystems), want a terminal, or are the host's own maintenance jobs.
const ALWAYS_MASKED: &[&str] = &[
    "getty.target",
    "getty@.service",
    "serial-getty@.service",
    "console-getty.service",
    "container-getty@.service",
    "systemd-timesyncd.service",
    "systemd-modules-load.service",
    "kmod-static-nodes.service",
    "systemd-random-seed.service",
    "systemd-pstore.service",
    "systemd-sysctl.service",
    "systemd-binfmt.service",
    "proc-sys-fs-binfmt_misc.automount",
    "proc-sys-fs-binfmt_misc.mount",
    "sys-kernel-debug.mount",
    "sys-kernel-tracing.mount",
    "sys-kernel-config.mount",
    "sys-fs-fuse-connections.mount",
    "postgresql.service",
    "e2scrub_all.timer",
    "e2scrub_reap.service",
    "fstrim.timer",
    "apt-daily.timer",
    "apt-daily-upgrade.timer",
    "man-db.timer",
    "dpkg-db-backup.timer",
];

/// Every unit (not target) the host enables in `/etc/systemd/system/*.wants|*.requires`: the
/// lower layer of the unit's root is the host's `/`, so these would start inside too.
fn host_enabled_units() -> Vec<String> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir("/etc/systemd/system") else {
        return out;
    };
    for d in rd.flatten() {
        let n = d.file_name().to_string_lossy().into_owned();
        if !(n.ends_with(".wants") || n.ends_with(".requires")) {
            continue;
        }
        if let Ok(links) = std::fs::read_dir(d.path()) {
            out.extend(
                links
                    .flatten()
                    .map(|l| l.file_name().to_string_lossy().into_owned())
                    .filter(|u| !u.ends_with(".target")),
            );
        }
    }
    out.sort();
    out.dedup();
    out
}

/// The units masked on a unit's disk.
pub fn masked_units() -> Vec<String> {
    let mut all: Vec<String> = ALWAYS_MASKED.iter().map(|s| s.to_string()).collect();
    all.extend(host_enabled_units());
    all.sort();
    all.dedup();
    all
}

/// Before a boot (the overlay is not mounted): masks, host name and machine ID on the disk.
fn prepare_disk(upper: &Path, name: &str) -> CmdResult<()> {
    let units = upper.join("etc/systemd/system");
    std::fs::create_dir_all(&units)?;
    for u in masked_units() {
        let link = units.join(&u);
        if std::fs::symlink_metadata(&link).is_err() {
            std::os::unix::fs::symlink("/dev/null", &link)?;
        }
    }
    std::fs::write(upper.join("etc/hostname"), format!("{name}\n"))?;
    let id = upper.join("etc/machine-id");
    if !id.exists() {
        let hex: String = crate::util::random_bytes(16)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        std::fs::write(id, format!("{hex}\n"))?;
    }
    Ok(())
}

/// The host's cgroup2 mount (`/sys/fs/cgroup/unified` on a hybrid host).
fn cgroup2_root() -> CmdResult<PathBuf> {
    let mounts = std::fs::read_to_string("/proc/self/mounts")?;
    mounts
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() > 2 && f[2] == "cgroup2").then(|| PathBuf::from(f[1]))
        })
        .next()
        .ok_or_else(|| CmdError::runtime("the host has no cgroup2 mount"))
}

fn fnv(s: &str) -> u32 {
    s.bytes().fold(0x811c9dc5u32, |h, b| {
        (h ^ b as u32).wrapping_mul(0x0100_0193)
    })
}

/// `<cgroup2>/jujusim-<name>-<hash of U>`.
fn unit_cgroup(dir: &Path) -> CmdResult<PathBuf> {
    let mut name = machine_name(dir);
    name.truncate(40);
    Ok(cgroup2_root()?.join(format!(
        "jujusim-{name}-{:08x}",
        fnv(&dir.display().to_string())
    )))
}

fn populated(cg: &Path) -> bool {
    std::fs::read_to_string(cg.join("cgroup.events"))
        .map(|s| s.lines().any(|l| l == "populated 1"))
        .unwrap_or(false)
}

/// Remove a cgroup tree whose processes are gone (bottom-up; cgroups are removed by rmdir).
fn remove_cgroup(cg: &Path) -> CmdResult<()> {
    if !cg.exists() {
        return Ok(());
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while populated(cg) {
        if Instant::now() > deadline {
            // Last resort: cgroup.kill (Linux 5.14) kills every process left in the tree.
            let _ = std::fs::write(cg.join("cgroup.kill"), "1");
            std::thread::sleep(Duration::from_millis(200));
            if populated(cg) {
                return Err(CmdError::runtime(format!(
                    "cgroup {} still has processes",
                    cg.display()
                )));
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    fn rmdirs(p: &Path) -> std::io::Result<()> {
        for e in std::fs::read_dir(p)?.flatten() {
            if e.file_type()?.is_dir() {
                rmdirs(&e.path())?;
            }
        }
        std::fs::remove_dir(p)
    }
    rmdirs(cg).map_err(|e| CmdError::runtime(format!("removing cgroup {}: {e}", cg.display())))
}

fn ns_id(pid: i32, kind: &str) -> String {
    std::fs::read_link(format!("/proc/{pid}/ns/{kind}"))
        .map(|p| p.display().to_string())
        .unwrap_or_default()
}

fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Run `argv` with a deadline; `(exit code, stdout)`; None when it had to be killed.
fn run_with_deadline(argv: &[String], within: Duration) -> CmdResult<Option<(i32, String)>> {
    let mut child = Command::new(&argv[0])
        .args(&argv[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| CmdError::runtime(format!("{}: {e}", argv[0])))?;
    let deadline = Instant::now() + within;
    loop {
        if let Some(st) = child.try_wait()? {
            let mut out = String::new();
            if let Some(mut o) = child.stdout.take() {
                use std::io::Read;
                let _ = o.read_to_string(&mut out);
            }
            return Ok(Some((st.code().unwrap_or(-1), out)));
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Ok(None);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn in_unit(pid: i32, cmd: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = ["nsenter", "-t", &pid.to_string(), "-a", "--"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    v.extend(cmd.iter().map(|s| s.to_string()));
    v
}

fn ip_cmd(netns_pid: i32, args: &[&str]) -> CmdResult<()> {
    let out = Command::new("nsenter")
        .args(["-t", &netns_pid.to_string(), "-n", "--", "ip"])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| CmdError::runtime(format!("nsenter ip: {e}")))?;
    if !out.status.success() {
        return Err(CmdError::runtime(format!(
            "ip {} (in the network namespace of pid {netns_pid}): {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}

/// A veth pair between the model network's bridge and `eth0` of the unit, made from inside
/// the bridge's namespace: the host's own network never sees either end.
fn attach_to_network(cfg: &MachineConfig, pid: i32) -> CmdResult<()> {
    let (Some(netdir), Some(ip)) = (&cfg.net, &cfg.ip) else {
        return Ok(());
    };
    let net = crate::machine::net::load_running(Path::new(netdir))?;
    let addr = crate::machine::net::parse_ipv4(ip)?;
    let host_end = format!("vu{addr:08x}");
    // A leftover end from an earlier boot whose namespace is still held: replace it.
    let _ = ip_cmd(net.pid, &["link", "del", &host_end]);
    ip_cmd(
        net.pid,
        &[
            "link",
            "add",
            &host_end,
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "netns",
            &pid.to_string(),
        ],
    )?;
    ip_cmd(
        net.pid,
        &["link", "set", &host_end, "master", &net.bridge, "up"],
    )?;
    ip_cmd(pid, &["link", "set", "lo", "up"])?;
    ip_cmd(
        pid,
        &[
            "addr",
            "add",
            &format!("{ip}/{}", net.prefix),
            "dev",
            "eth0",
        ],
    )?;
    ip_cmd(pid, &["link", "set", "eth0", "up"])?;
    ip_cmd(pid, &["route", "add", "default", "via", &net.gateway])?;
    Ok(())
}

/// Kill a half-booted machine and release its cgroup.
fn abandon(holder: i32, pid: Option<i32>, cg: &Path) {
    for p in pid.into_iter().chain([holder]) {
        // SAFETY: plain kill(2) of processes this command started.
        unsafe { libc::kill(p, libc::SIGKILL) };
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while pid_alive(holder) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = remove_cgroup(cg);
}

/// Boot the machine from its disk; returns what the boot recorded.
fn boot(dir: &Path, cfg: &MachineConfig) -> CmdResult<BootRecord> {
    let started = Instant::now();
    if !Path::new(SYSTEMD).is_file() {
        return Err(CmdError::runtime(format!(
            "{SYSTEMD} does not exist: a simulated unit boots the host's own systemd"
        )));
    }
    let upper = dir.join("disk/upper");
    std::fs::create_dir_all(&upper)?;
    std::fs::create_dir_all(dir.join("disk/work"))?;
    std::fs::create_dir_all(dir.join("root"))?;
    prepare_disk(&upper, &cfg.name)?;
    let console = dir.join("console.log");
    crate::util::append(
        &console,
        &format!(
            "--- boot of {} at {}\n",
            cfg.name,
            crate::util::now_rfc3339()
        ),
    )?;

    let cg = unit_cgroup(dir)?;
    if cg.exists() {
        remove_cgroup(&cg)?; // left by a machine that was killed without machine-down
    }
    std::fs::create_dir(&cg)
        .map_err(|e| CmdError::runtime(format!("creating cgroup {}: {e}", cg.display())))?;
    let procs = std::fs::OpenOptions::new()
        .write(true)
        .open(cg.join("cgroup.procs"))?;

    // The boot step waits on fd 3 until the host has wired the machine's network.
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: pipe2 with a valid two-element array.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error().into());
    }
    // SAFETY: both fds were just created and are owned here.
    let (rd, wr) = unsafe {
        use std::os::fd::FromRawFd;
        (
            std::os::fd::OwnedFd::from_raw_fd(fds[0]),
            std::fs::File::from_raw_fd(fds[1]),
        )
    };
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("machine.log"))?;
    let exe = std::env::current_exe()?;
    let mut cmd = Command::new("unshare");
    cmd.args([
        "--fork",
        "--pid",
        "--mount",
        "--uts",
        "--ipc",
        "--net",
        "--cgroup",
        "--propagation",
        "private",
        "--kill-child",
        "--",
    ])
    .arg(&exe)
    .arg("machine-boot")
    .arg(dir)
    .env("JUJUSIM_BOOT_FD", "3")
    .stdin(Stdio::null())
    .stdout(log.try_clone()?)
    .stderr(log);
    let procs_fd = {
        use std::os::fd::AsRawFd;
        procs.as_raw_fd()
    };
    let rd_fd = {
        use std::os::fd::AsRawFd;
        rd.as_raw_fd()
    };
    // SAFETY: only async-signal-safe calls (setsid, write, dup2, fcntl) between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            libc::setsid();
            // Into the unit's cgroup before `unshare --cgroup`: it becomes the namespace root.
            if libc::write(procs_fd, b"0".as_ptr().cast(), 1) != 1 {
                return Err(std::io::Error::last_os_error());
            }
            if rd_fd == 3 {
                libc::fcntl(3, libc::F_SETFD, 0);
            } else if libc::dup2(rd_fd, 3) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = cmd
        .spawn()
        .map_err(|e| CmdError::runtime(format!("starting unshare: {e}")))?;
    drop(rd);
    drop(procs);
    let holder = child.id() as i32;
    let fail = |pid: Option<i32>, msg: String| -> CmdError {
        abandon(holder, pid, &cg);
        CmdError::runtime(format!(
            "{msg}\n--- {}:\n{}\n--- {}:\n{}",
            dir.join("machine.log").display(),
            tail(&dir.join("machine.log"), 15),
            console.display(),
            tail(&console, 25)
        ))
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    let pid = loop {
        if let Some(p) = children_of(holder as u32).first() {
            break *p;
        }
        if !pid_alive(holder) || Instant::now() > deadline {
            return Err(fail(
                None,
                "the machine's namespaces did not come up".into(),
            ));
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    if let Err(e) = attach_to_network(cfg, pid) {
        return Err(fail(Some(pid), format!("network: {e}")));
    }
    let mut wr = wr;
    if wr.write_all(b"go").is_err() {
        return Err(fail(Some(pid), "the boot step went away".into()));
    }
    drop(wr);

    // systemd is PID 1 once the boot step has exec'd it.
    let deadline = Instant::now() + Duration::from_secs(30);
    while comm(pid) != "systemd" {
        if !pid_alive(pid) || Instant::now() > deadline {
            return Err(fail(Some(pid), "systemd did not start".into()));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    let system_state = loop {
        if !pid_alive(pid) || Instant::now() > deadline {
            return Err(fail(
                Some(pid),
                "systemd did not finish booting within 120 s".into(),
            ));
        }
        let probe = in_unit(pid, &["systemctl", "is-system-running", "--wait"]);
        if let Some((_, out)) = run_with_deadline(&probe, Duration::from_secs(60))? {
            let s = out.trim().to_string();
            if s == "running" || s == "degraded" {
                break s;
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let boot_ms = started.elapsed().as_millis() as u64;
    let failed_units = if system_state == "running" {
        Vec::new()
    } else {
        let probe = in_unit(
            pid,
            &[
                "systemctl",
                "list-units",
                "--failed",
                "--plain",
                "--no-legend",
            ],
        );
        run_with_deadline(&probe, Duration::from_secs(20))?
            .map(|(_, out)| {
                out.lines()
                    .filter_map(|l| l.split_whitespace().next().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let rec = BootRecord {
        pid,
        holder,
        cgroup: cg.display().to_string(),
        boot_ms,
        system_state,
        failed_units,
        pid_ns: ns_id(pid, "pid"),
        net_ns: ns_id(pid, "net"),
        mnt_ns: ns_id(pid, "mnt"),
    };
    crate::util::write_atomic(
        &run_path(dir),
        serde_json::to_string_pretty(&rec)?.as_bytes(),
    )?;
    crate::util::write_atomic(&dir.join("machine.pid"), format!("{pid}\n").as_bytes())?;
    set_prefix(dir, Some(pid))?;
    if !rec.failed_units.is_empty() {
        eprintln!(
            "machine {}: degraded, failed units: {}",
            cfg.name,
            rec.failed_units.join(" ")
        );
    }
    eprintln!(
        "machine up: {} ({}; systemd = host pid {pid}) in {boot_ms} ms",
        dir.display(),
        rec.system_state
    );
    Ok(rec)
}

/// `jujusim machine-up U [--net NETDIR --ip IP]`: prints the host PID of the unit's systemd.
pub fn machine_up(dir: &Path, net: Option<&str>, ip: Option<&str>) -> CmdResult<i32> {
    std::fs::create_dir_all(dir)?;
    if net.is_some() != ip.is_some() {
        return Err(CmdError::usage("--net and --ip go together"));
    }
    let net = match net {
        Some(n) => Some(
            Path::new(n)
                .canonicalize()
                .map_err(|e| CmdError::runtime(format!("network dir {n}: {e}")))?
                .display()
                .to_string(),
        ),
        None => None,
    };
    let cfg = MachineConfig {
        name: machine_name(dir),
        net,
        ip: ip.map(str::to_string),
    };
    if let Some(pid) = running_pid(dir) {
        if load_config(dir).is_some_and(|c| c != cfg) {
            return Err(CmdError::runtime(format!(
                "machine {} is already up with another network setup (machine-down first)",
                dir.display()
            )));
        }
        eprintln!("machine for {} already up (pid {pid})", dir.display());
        set_prefix(dir, Some(pid))?;
        println!("{pid}");
        return Ok(0);
    }
    if let (Some(n), Some(ip)) = (&cfg.net, &cfg.ip) {
        crate::machine::net::check_address(Path::new(n), ip)?;
    }
    crate::util::write_atomic(
        &config_path(dir),
        serde_json::to_string_pretty(&cfg)?.as_bytes(),
    )?;
    let rec = boot(dir, &cfg)?;
    println!("{}", rec.pid);
    Ok(0)
}

fn stat_fields(pid: i32) -> Option<(char, i32)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = s.rsplit_once(')')?.1;
    let mut f = rest.split_whitespace();
    let state = f.next()?.chars().next()?;
    Some((state, f.next()?.parse().ok()?))
}

/// At shutdown systemd stops every process of the machine (SIGSTOP) before it signals them.
/// A process entered with nsenter has its nsenter parent outside the machine, and nsenter
/// stops itself when its child stops; nothing outside resumes it, so it never reaps its
/// child and the machine's PID namespace cannot finish. Resume such parents.
fn resume_stopped_parents(pid_ns: &str) {
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return;
    };
    for e in rd.flatten() {
        let Ok(p) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if ns_id(p, "pid") != pid_ns {
            continue;
        }
        if let Some((_, parent)) = stat_fields(p) {
            if parent > 0
                && ns_id(parent, "pid") != pid_ns
                && stat_fields(parent).is_some_and(|(st, _)| st == 'T')
            {
                // SAFETY: plain kill(2); SIGCONT only resumes the stopped nsenter.
                unsafe { libc::kill(parent, libc::SIGCONT) };
            }
        }
    }
}

/// Whether `pid` is the `unshare ... -- jujusim machine-boot <dir>` that machine-up started for
/// this unit: after a power-off its PID in the boot record may belong to another process
/// (another unit's `unshare` included), which must be neither waited for nor killed.
fn holds(pid: i32, dir: &Path) -> bool {
    let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    let args: Vec<&[u8]> = cmdline
        .split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .collect();
    comm(pid) == "unshare"
        && args.len() >= 2
        && args[args.len() - 2] == b"machine-boot"
        && args[args.len() - 1] == dir.as_os_str().as_encoded_bytes()
}

/// Power the machine off (`systemctl poweroff` inside; SIGKILL if it hangs), release its
/// cgroup. Keeps the disk. Idempotent.
fn power_off(dir: &Path) -> CmdResult<()> {
    let rec = load_run(dir);
    if let Some(pid) = running_pid(dir) {
        let t0 = Instant::now();
        let pid_ns = ns_id(pid, "pid");
        let _ = run_with_deadline(
            &in_unit(pid, &["systemctl", "poweroff", "--no-block"]),
            Duration::from_secs(10),
        )?;
        let deadline = Instant::now() + Duration::from_secs(30);
        while pid_alive(pid) && Instant::now() < deadline {
            resume_stopped_parents(&pid_ns);
            std::thread::sleep(Duration::from_millis(50));
        }
        if pid_alive(pid) {
            eprintln!(
                "machine {}: poweroff hung for 30 s, killing it",
                dir.display()
            );
            // SAFETY: plain kill(2); killing a PID namespace's init kills all of it.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            let deadline = Instant::now() + Duration::from_secs(10);
            while pid_alive(pid) {
                resume_stopped_parents(&pid_ns);
                if Instant::now() > deadline {
                    return Err(CmdError::runtime(format!(
                        "machine pid {pid} did not go away"
                    )));
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        eprintln!(
            "machine down: {} (pid {pid}) in {} ms",
            dir.display(),
            t0.elapsed().as_millis()
        );
    } else {
        eprintln!("machine {} is not running", dir.display());
    }
    if let Some(rec) = rec {
        let started = Instant::now();
        while rec.holder > 0 && pid_alive(rec.holder) && holds(rec.holder, dir) {
            if started.elapsed() > Duration::from_secs(20) {
                return Err(CmdError::runtime(format!(
                    "the machine's unshare process {} does not exit",
                    rec.holder
                )));
            }
            if started.elapsed() > Duration::from_secs(10) {
                // SAFETY: plain kill(2) of the unshare process machine-up started.
                unsafe { libc::kill(rec.holder, libc::SIGKILL) };
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        if !rec.cgroup.is_empty() {
            remove_cgroup(Path::new(&rec.cgroup))?;
        }
    }
    let _ = std::fs::remove_file(dir.join("machine.pid"));
    set_prefix(dir, None)
}

/// `jujusim machine-down U`.
pub fn machine_down(dir: &Path) -> CmdResult<i32> {
    power_off(dir)?;
    Ok(0)
}

/// `jujusim machine-reboot U`: power off, boot again from the same disk with the same setup.
pub fn machine_reboot(dir: &Path) -> CmdResult<i32> {
    let cfg = load_config(dir).ok_or_else(|| {
        CmdError::runtime(format!(
            "machine {} was never booted (machine-up first)",
            dir.display()
        ))
    })?;
    power_off(dir)?;
    let rec = boot(dir, &cfg)?;
    println!("{}", rec.pid);
    Ok(0)
}

/// `jujusim machine-path U PATH`: where the running unit's `PATH` is, seen from the host.
pub fn machine_path(dir: &Path, path: &str) -> CmdResult<i32> {
    if !path.starts_with('/') {
        return Err(CmdError::usage("the path must be absolute"));
    }
    println!("{}", host_path(require_running(dir)?, path).display());
    Ok(0)
}

/// `jujusim machine-exec [--net-only] U -- CMD ARGS...` (replaces this process with nsenter).
pub fn machine_exec(dir: &Path, net_only: bool, cmd: &[String]) -> CmdResult<i32> {
    if cmd.is_empty() {
        return Err(CmdError::usage("no command specified"));
    }
    let pid = require_running(dir)?;
    let mut c = Command::new("nsenter");
    c.arg("-t").arg(pid.to_string());
    c.arg(if net_only { "-n" } else { "-a" });
    c.arg("--").args(cmd);
    let err = c.exec();
    Err(CmdError::runtime(format!("exec nsenter: {err}")))
}

/// Host paths a unit must see at the same path because tools write there: U itself, the
/// directory of the jujusim executable, a host charm dir used directly, every
/// `JUJUSIM_EXTRA_PATH` and `JUJUSIM_KEEP_PATHS` entry. Parents come before children.
pub fn keep_paths(dir: &Path) -> Vec<PathBuf> {
    let mut out = vec![dir.to_path_buf()];
    if let Some(p) = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(Path::to_path_buf))
    {
        out.push(p);
    }
    if let Ok(st) = state::load(dir) {
        if !st.charm_in_machine && !st.host_charm_dir.is_empty() {
            out.push(PathBuf::from(st.host_charm_dir));
        }
    }
    for var in ["JUJUSIM_EXTRA_PATH", "JUJUSIM_KEEP_PATHS"] {
        if let Ok(v) = std::env::var(var) {
            out.extend(
                v.split(':')
                    .filter(|s| s.starts_with('/'))
                    .map(PathBuf::from),
            );
        }
    }
    let mut out: Vec<PathBuf> = out
        .into_iter()
        .filter_map(|p| p.canonicalize().ok())
        .collect();
    out.sort_by_key(|p| p.components().count());
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_shape() {
        assert_eq!(
            nsenter_prefix(42, "/var/lib/juju/agents/unit-x-0/charm"),
            vec![
                "nsenter",
                "-t",
                "42",
                "-a",
                "--wdns=/var/lib/juju/agents/unit-x-0/charm",
                "--"
            ]
        );
    }

    #[test]
    fn names_and_paths() {
        assert_eq!(
            machine_name(Path::new("/x/Postgres_Scenario-123")),
            "postgres-scenario-123"
        );
        assert_eq!(machine_name(Path::new("/")), "unit");
        assert_eq!(host_path(7, "/etc/x"), PathBuf::from("/proc/7/root/etc/x"));
    }

    #[test]
    fn masks_cover_the_dangerous_units() {
        let m = masked_units();
        for u in [
            "systemd-timesyncd.service",
            "systemd-sysctl.service",
            "getty.target",
            "postgresql.service",
        ] {
            assert!(m.iter().any(|x| x == u), "{u} is not masked");
        }
        assert!(m
            .iter()
            .all(|u| !u.ends_with(".target") || u == "getty.target"));
    }

    #[test]
    fn a_unit_is_down_when_its_machine_does_not_run() {
        let dir = std::env::temp_dir().join(format!("jujusim-isdown-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut st = state::State::default();
        assert!(!is_down(&dir, &st), "not a machine unit");
        st.machine_mode = true;
        assert!(is_down(&dir, &st), "powered off: no exec prefix");
        st.exec_prefix = Some(nsenter_prefix(1, "/charm"));
        assert!(!is_down(&dir, &st), "an exec prefix and no machine record");
        // A booted machine whose systemd is gone (no machine-down ran).
        std::fs::write(config_path(&dir), "{}").unwrap();
        std::fs::write(dir.join("machine.pid"), "2147483646\n").unwrap();
        assert!(is_down(&dir, &st));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn only_this_units_holder_is_waited_for() {
        let me = std::process::id() as i32;
        assert!(!holds(me, Path::new("/x")), "a test binary is no unshare");
        assert!(!holds(-1, Path::new("/x")));
    }

    #[test]
    fn proc_helpers() {
        let me = std::process::id() as i32;
        assert!(pid_alive(me));
        assert!(!pid_alive(-1));
        assert_eq!(fnv(""), 0x811c9dc5);
    }
}
