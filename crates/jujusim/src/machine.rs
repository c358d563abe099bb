//! Machine mode: a unit's private mount/net/pid namespaces with its own /etc, /opt, /var/lib,
//! /tmp ... (machine-up, machine-init as PID 1, machine-exec, machine-down).
//!
//! Host paths that must stay visible inside although they live under an overlaid directory
//! (the unit dir U, the directory of the jujusim executable, a host charm dir the unit uses
//! directly, every `JUJUSIM_EXTRA_PATH` and `JUJUSIM_KEEP_PATHS` entry present at machine-up
//! time) are bind-mounted to the same path inside the unit's rootfs before the overlays are
//! mounted.

use crate::errors::{CmdError, CmdResult};
use crate::state;
use crate::state::with_state;
use crate::util::pid_alive;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Directories of the unit's rootfs mounted over the host's.
pub const OVERLAYS: [&str; 10] = [
    "etc",
    "opt",
    "srv",
    "var/lib",
    "var/log",
    "var/cache",
    "run",
    "tmp",
    "home",
    "root",
];

/// The namespace PID 1 (host pid) if the machine is up.
pub fn running_pid(dir: &Path) -> Option<i32> {
    let pid: i32 = std::fs::read_to_string(dir.join("machine.pid"))
        .ok()?
        .trim()
        .parse()
        .ok()?;
    pid_alive(pid).then_some(pid)
}

/// `nsenter -t PID -m -n -p --wdns=<charm dir> --`.
///
/// `--wdns` (not `--wd`): util-linux 2.38's `--wd=<dir>` opens `<dir>` on the host before
/// entering the namespaces, so an in-namespace path fails; `--wdns` resolves it inside.
pub fn nsenter_prefix(pid: i32, charm_dir: &str) -> Vec<String> {
    vec![
        "nsenter".into(),
        "-t".into(),
        pid.to_string(),
        "-m".into(),
        "-n".into(),
        "-p".into(),
        format!("--wdns={charm_dir}"),
        "--".into(),
    ]
}

fn sh(cmd: &mut Command) -> CmdResult<()> {
    let desc = format!("{cmd:?}");
    let st = cmd
        .status()
        .map_err(|e| CmdError::runtime(format!("{desc}: {e}")))?;
    if !st.success() {
        return Err(CmdError::runtime(format!("{desc} failed: {st}")));
    }
    Ok(())
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

fn ppid_of(pid: i32) -> Option<i32> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = s.rsplit_once(')')?.1;
    rest.split_whitespace().nth(1)?.parse().ok()
}

fn set_prefix(dir: &Path, pid: Option<i32>) -> CmdResult<()> {
    if !state::state_path(dir).exists() {
        return Ok(());
    }
    with_state(dir, |st| {
        st.exec_prefix = pid.map(|p| nsenter_prefix(p, &st.charm_dir));
        if pid.is_some() {
            st.machine_mode = true;
        }
        Ok(())
    })
}

/// `jujusim machine-up U`.
pub fn machine_up(dir: &Path) -> CmdResult<i32> {
    std::fs::create_dir_all(dir)?;
    if let Some(pid) = running_pid(dir) {
        eprintln!("machine for {} already up (pid {pid})", dir.display());
        set_prefix(dir, Some(pid))?;
        println!("{pid}");
        return Ok(0);
    }
    let root = dir.join("rootfs");
    for d in OVERLAYS.iter().filter(|d| **d != "etc") {
        std::fs::create_dir_all(root.join(d))?;
    }
    if !root.join("etc").exists() {
        sh(Command::new("cp")
            .arg("-a")
            .arg("/etc")
            .arg(root.join("etc")))?;
    }
    std::fs::set_permissions(root.join("tmp"), std::fs::Permissions::from_mode(0o1777))?;
    let _ = std::fs::remove_file(dir.join("machine.ready"));
    let _ = std::fs::remove_file(dir.join("machine.pid"));
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("machine.log"))?;
    let exe = std::env::current_exe()?;
    let mut cmd = Command::new("unshare");
    cmd.args(["--mount", "--net", "--pid", "--fork", "--mount-proc", "--"])
        .arg(&exe)
        .arg("machine-init")
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    // SAFETY: setsid is async-signal-safe; called in the child between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| CmdError::runtime(format!("starting unshare: {e}")))?;
    let holder = child.id();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !dir.join("machine.ready").exists() {
        if let Some(st) = child.try_wait()? {
            return Err(CmdError::runtime(format!(
                "machine-init exited early ({st}); see {}",
                dir.join("machine.log").display()
            )));
        }
        if Instant::now() > deadline {
            for p in children_of(holder) {
                // SAFETY: plain kill(2).
                unsafe { libc::kill(p, libc::SIGKILL) };
            }
            let _ = child.kill();
            let _ = child.wait();
            return Err(CmdError::runtime(format!(
                "machine not ready after 10 s; see {}",
                dir.join("machine.log").display()
            )));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let pid = *children_of(holder)
        .first()
        .ok_or_else(|| CmdError::runtime("cannot find the namespace's PID 1"))?;
    crate::util::write_atomic(&dir.join("machine.pid"), format!("{pid}\n").as_bytes())?;
    set_prefix(dir, Some(pid))?;
    eprintln!(
        "machine up: {} (namespace PID 1 = host pid {pid})",
        dir.display()
    );
    println!("{pid}");
    Ok(0)
}

fn keep_paths(dir: &Path) -> Vec<PathBuf> {
    let mut out = vec![dir.to_path_buf()];
    if let Some(p) = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(Path::to_path_buf))
    {
        out.push(p);
    }
    // A unit initialised with a host charm dir (no --unit-charm-dir) must still find it.
    if let Ok(st) = state::load(dir) {
        if st.charm_dir == st.host_charm_dir {
            out.push(PathBuf::from(st.charm_dir));
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
    out.into_iter()
        .filter_map(|p| p.canonicalize().ok())
        .collect()
}

extern "C" fn on_term(_sig: libc::c_int) {
    // SAFETY: _exit is async-signal-safe.
    unsafe { libc::_exit(0) };
}

/// `jujusim machine-init U`: runs as PID 1 of the new namespaces (internal).
pub fn machine_init(dir: &Path) -> CmdResult<i32> {
    // SAFETY: installing a simple async-signal-safe handler.
    unsafe {
        libc::signal(libc::SIGTERM, on_term as *const () as libc::sighandler_t);
        libc::signal(libc::SIGINT, on_term as *const () as libc::sighandler_t);
    }
    sh(Command::new("mount").args(["--make-rprivate", "/"]))?;
    let root = dir.join("rootfs");
    for keep in keep_paths(dir) {
        for x in OVERLAYS {
            let base = Path::new("/").join(x);
            let Ok(rest) = keep.strip_prefix(&base) else {
                continue;
            };
            let target = root.join(x).join(rest);
            if keep.is_dir() {
                std::fs::create_dir_all(&target)?;
            } else {
                if let Some(parent) = target.parent() {
                    std::fs::create_dir_all(parent)?;
                }
                if !target.exists() {
                    std::fs::File::create(&target)?;
                }
            }
            sh(Command::new("mount").arg("--bind").arg(&keep).arg(&target))?;
            break;
        }
    }
    // The overlay whose host directory holds U (say the repo lives under /tmp) goes last:
    // mounted earlier, it would hide the rootfs sources of the overlays after it (and the
    // kept paths bound into them) behind U's non-recursive bind.
    let holds_unit = |x: &&str| dir.starts_with(Path::new("/").join(x));
    let ordered = OVERLAYS
        .iter()
        .filter(|x| !holds_unit(x))
        .chain(OVERLAYS.iter().filter(|x| holds_unit(x)));
    for x in ordered {
        let host = Path::new("/").join(x);
        std::fs::create_dir_all(&host)?;
        sh(Command::new("mount")
            .arg("--rbind")
            .arg(root.join(x))
            .arg(&host))?;
    }
    sh(Command::new("ip").args(["link", "set", "lo", "up"]))?;
    std::fs::write(dir.join("machine.ready"), b"ready\n")?;
    eprintln!("machine-init: ready (pid {})", std::process::id());
    loop {
        let mut status: libc::c_int = 0;
        // SAFETY: reaping any child.
        let r = unsafe { libc::waitpid(-1, &mut status, 0) };
        if r < 0 {
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// `jujusim machine-exec [--net-only] U -- CMD ARGS...` (replaces this process with nsenter).
pub fn machine_exec(dir: &Path, net_only: bool, cmd: &[String]) -> CmdResult<i32> {
    if cmd.is_empty() {
        return Err(CmdError::usage("no command specified"));
    }
    let pid = running_pid(dir)
        .ok_or_else(|| CmdError::runtime(format!("machine {} is not running", dir.display())))?;
    let mut c = Command::new("nsenter");
    c.arg("-t").arg(pid.to_string());
    if net_only {
        c.arg("-n");
    } else {
        c.args(["-m", "-n", "-p"]);
    }
    c.arg("--").args(cmd);
    let err = c.exec();
    Err(CmdError::runtime(format!("exec nsenter: {err}")))
}

/// `jujusim machine-down U` (idempotent).
pub fn machine_down(dir: &Path) -> CmdResult<i32> {
    let pid: Option<i32> = std::fs::read_to_string(dir.join("machine.pid"))
        .ok()
        .and_then(|s| s.trim().parse().ok());
    if let Some(pid) = pid.filter(|p| pid_alive(*p)) {
        let holder = ppid_of(pid).filter(|pp| {
            std::fs::read_to_string(format!("/proc/{pp}/comm")).is_ok_and(|c| c.trim() == "unshare")
        });
        // SAFETY: plain kill(2). Killing a pid namespace's init kills every process in it.
        unsafe { libc::kill(pid, libc::SIGKILL) };
        let deadline = Instant::now() + Duration::from_secs(10);
        while pid_alive(pid) || holder.is_some_and(pid_alive) {
            if Instant::now() > deadline {
                return Err(CmdError::runtime(format!(
                    "machine pid {pid} did not go away"
                )));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        eprintln!("machine down: {} (pid {pid})", dir.display());
    } else {
        eprintln!("machine {} is not running", dir.display());
    }
    let _ = std::fs::remove_file(dir.join("machine.pid"));
    let _ = std::fs::remove_file(dir.join("machine.ready"));
    set_prefix(dir, None)?;
    Ok(0)
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
                "-m",
                "-n",
                "-p",
                "--wdns=/var/lib/juju/agents/unit-x-0/charm",
                "--"
            ]
        );
    }

    #[test]
    fn proc_helpers() {
        let me = std::process::id() as i32;
        assert!(pid_alive(me));
        assert!(ppid_of(me).is_some());
        assert!(!pid_alive(-1));
    }
}
