//! The model network (net-up, net-exec, net-down; net-hold is internal): a holder process in
//! its own network namespace with a bridge at the subnet's first address. Machines booted
//! with `machine-up U --net NETDIR --ip IP` get a veth into that bridge (`eth0` inside, the
//! default route via the bridge). `net-exec` runs a command in the bridge's namespace with
//! the host's filesystem: servers every unit reaches at the gateway address (a database, a
//! proxy). Nothing on the host's own network changes: the bridge and both veth ends live in
//! namespaces of their own, and they go when the holder and the machines go.

use crate::errors::{CmdError, CmdResult};
use crate::util::pid_alive;
use serde::{Deserialize, Serialize};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// `NETDIR/net.json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct NetInfo {
    /// Host PID of the holder (its network namespace is the bridge's).
    pub pid: i32,
    /// `10.77.0.0/24`.
    pub subnet: String,
    pub prefix: u8,
    /// The bridge's address (the subnet's first), the units' default route.
    pub gateway: String,
    pub bridge: String,
    /// `readlink /proc/<pid>/ns/net` of the holder.
    pub netns: String,
}

pub const DEFAULT_SUBNET: &str = "10.77.0.0/24";
const BRIDGE: &str = "br0";

fn info_path(netdir: &Path) -> PathBuf {
    netdir.join("net.json")
}

pub fn parse_ipv4(s: &str) -> CmdResult<u32> {
    s.parse::<std::net::Ipv4Addr>()
        .map(u32::from)
        .map_err(|_| CmdError::usage(format!("{s:?} is not an IPv4 address")))
}

fn ipv4(a: u32) -> String {
    std::net::Ipv4Addr::from(a).to_string()
}

/// `10.77.0.0/24` → (network address, prefix length).
pub fn parse_cidr(s: &str) -> CmdResult<(u32, u8)> {
    let bad = || CmdError::usage(format!("{s:?} is not an IPv4 subnet like 10.77.0.0/24"));
    let (a, p) = s.split_once('/').ok_or_else(bad)?;
    let prefix: u8 = p.parse().map_err(|_| bad())?;
    if !(8..=30).contains(&prefix) {
        return Err(bad());
    }
    let mask = u32::MAX << (32 - prefix);
    Ok((parse_ipv4(a)? & mask, prefix))
}

fn holder_alive(info: &NetInfo) -> bool {
    pid_alive(info.pid)
        && std::fs::read_link(format!("/proc/{}/ns/net", info.pid))
            .is_ok_and(|p| p.display().to_string() == info.netns)
}

/// The network of `netdir`, which must be up.
pub fn load_running(netdir: &Path) -> CmdResult<NetInfo> {
    let info: NetInfo = std::fs::read_to_string(info_path(netdir))
        .ok()
        .and_then(|s| serde_json::from_str(&s).ok())
        .ok_or_else(|| {
            CmdError::runtime(format!(
                "no network at {} (jujusim net-up first)",
                netdir.display()
            ))
        })?;
    if !holder_alive(&info) {
        return Err(CmdError::runtime(format!(
            "the network at {} is down",
            netdir.display()
        )));
    }
    Ok(info)
}

/// `ip` must be a host address of the network's subnet other than the gateway.
pub fn check_address(netdir: &Path, ip: &str) -> CmdResult<()> {
    let info = load_running(netdir)?;
    let (net, prefix) = parse_cidr(&info.subnet)?;
    let a = parse_ipv4(ip)?;
    let mask = u32::MAX << (32 - prefix);
    let broadcast = net | !mask;
    if a & mask != net || a == net || a == broadcast || ipv4(a) == info.gateway {
        return Err(CmdError::usage(format!(
            "{ip} is not a free host address of {} (the gateway is {})",
            info.subnet, info.gateway
        )));
    }
    Ok(())
}

/// `jujusim net-up NETDIR [--subnet CIDR]`.
pub fn net_up(netdir: &Path, subnet: &str) -> CmdResult<i32> {
    let (net, prefix) = parse_cidr(subnet)?;
    std::fs::create_dir_all(netdir)?;
    if let Ok(info) = load_running(netdir) {
        if info.subnet != format!("{}/{prefix}", ipv4(net)) {
            return Err(CmdError::runtime(format!(
                "the network at {} is up with subnet {}",
                netdir.display(),
                info.subnet
            )));
        }
        eprintln!("network {} already up (pid {})", netdir.display(), info.pid);
        println!("{}", info.pid);
        return Ok(0);
    }
    let ready = netdir.join("net.ready");
    let _ = std::fs::remove_file(&ready);
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(netdir.join("net.log"))?;
    let mut cmd = Command::new(std::env::current_exe()?);
    cmd.arg("net-hold")
        .arg(netdir)
        .arg(format!("{}/{prefix}", ipv4(net)))
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    // SAFETY: setsid and unshare are plain syscalls, safe between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            if libc::unshare(libc::CLONE_NEWNET) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| CmdError::runtime(format!("starting the network holder: {e}")))?;
    let pid = child.id() as i32;
    let deadline = Instant::now() + Duration::from_secs(10);
    while !ready.exists() {
        if child.try_wait()?.is_some() || Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(CmdError::runtime(format!(
                "the network holder did not come up; see {}",
                netdir.join("net.log").display()
            )));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let info = NetInfo {
        pid,
        subnet: format!("{}/{prefix}", ipv4(net)),
        prefix,
        gateway: ipv4(net + 1),
        bridge: BRIDGE.into(),
        netns: std::fs::read_link(format!("/proc/{pid}/ns/net"))?
            .display()
            .to_string(),
    };
    crate::util::write_atomic(
        &info_path(netdir),
        serde_json::to_string_pretty(&info)?.as_bytes(),
    )?;
    eprintln!(
        "network up: {} ({} on {}, holder pid {pid})",
        netdir.display(),
        info.gateway,
        info.subnet
    );
    println!("{pid}");
    Ok(0)
}

extern "C" fn on_term(_sig: libc::c_int) {
    // SAFETY: _exit is async-signal-safe.
    unsafe { libc::_exit(0) };
}

fn ip(args: &[&str]) -> CmdResult<()> {
    let st = Command::new("ip")
        .args(args)
        .status()
        .map_err(|e| CmdError::runtime(format!("ip: {e}")))?;
    if !st.success() {
        return Err(CmdError::runtime(format!("ip {} failed", args.join(" "))));
    }
    Ok(())
}

/// `jujusim net-hold NETDIR SUBNET` (internal): runs in the network's own namespace.
pub fn net_hold(netdir: &Path, subnet: &str) -> CmdResult<i32> {
    // SAFETY: installing a simple async-signal-safe handler.
    unsafe {
        libc::signal(libc::SIGTERM, on_term as *const () as libc::sighandler_t);
        libc::signal(libc::SIGINT, on_term as *const () as libc::sighandler_t);
    }
    let (net, prefix) = parse_cidr(subnet)?;
    ip(&["link", "set", "lo", "up"])?;
    ip(&["link", "add", BRIDGE, "type", "bridge"])?;
    // A bridge without an address of its own takes the lowest MAC of its ports, so a unit
    // leaving (machine-down) could change the gateway's MAC under every other unit's ARP
    // cache, and their connections to servers on the gateway stall for seconds. A fixed,
    // locally administered MAC (02:00 and the gateway's IPv4 address) never moves.
    let g = (net + 1).to_be_bytes();
    let mac = format!("02:00:{:02x}:{:02x}:{:02x}:{:02x}", g[0], g[1], g[2], g[3]);
    ip(&["link", "set", BRIDGE, "address", &mac])?;
    ip(&[
        "addr",
        "add",
        &format!("{}/{prefix}", ipv4(net + 1)),
        "dev",
        BRIDGE,
    ])?;
    ip(&["link", "set", BRIDGE, "up"])?;
    std::fs::write(netdir.join("net.ready"), b"ready\n")?;
    eprintln!("net-hold: {} up on {subnet}", ipv4(net + 1));
    loop {
        // SAFETY: pause(2) until a signal ends this process.
        unsafe { libc::pause() };
    }
}

/// `jujusim net-exec NETDIR -- CMD ARGS...` (replaces this process with nsenter).
pub fn net_exec(netdir: &Path, cmd: &[String]) -> CmdResult<i32> {
    if cmd.is_empty() {
        return Err(CmdError::usage("no command specified"));
    }
    let info = load_running(netdir)?;
    let err = Command::new("nsenter")
        .args(["-t", &info.pid.to_string(), "-n", "--"])
        .args(cmd)
        .exec();
    Err(CmdError::runtime(format!("exec nsenter: {err}")))
}

/// Host PIDs of processes whose network namespace is `netns` (`net:[inode]`).
pub fn processes_in_netns(netns: &str) -> Vec<i32> {
    let mut out = Vec::new();
    if netns.is_empty() {
        return out;
    }
    if let Ok(rd) = std::fs::read_dir("/proc") {
        for e in rd.flatten() {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            if std::fs::read_link(format!("/proc/{pid}/ns/net"))
                .is_ok_and(|p| p.display().to_string() == netns)
            {
                out.push(pid);
            }
        }
    }
    out
}

/// `jujusim net-down NETDIR` (idempotent). Fails, naming them, if processes are still in the
/// network's namespace once the holder is gone.
pub fn net_down(netdir: &Path) -> CmdResult<i32> {
    let Some(info) = std::fs::read_to_string(info_path(netdir))
        .ok()
        .and_then(|s| serde_json::from_str::<NetInfo>(&s).ok())
    else {
        eprintln!("network {} is not up", netdir.display());
        return Ok(0);
    };
    // Held open while we look: a freed namespace's number goes to the next new one.
    let held = std::fs::File::open(format!("/proc/{}/ns/net", info.pid))
        .ok()
        .filter(|_| holder_alive(&info));
    if holder_alive(&info) {
        // SAFETY: plain kill(2) of the holder net-up started.
        unsafe { libc::kill(info.pid, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(5);
        while pid_alive(info.pid) {
            if Instant::now() > deadline {
                // SAFETY: as above.
                unsafe { libc::kill(info.pid, libc::SIGKILL) };
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    std::fs::remove_file(info_path(netdir))?;
    let _ = std::fs::remove_file(netdir.join("net.ready"));
    let left = if held.is_some() {
        processes_in_netns(&info.netns)
    } else {
        Vec::new()
    };
    drop(held);
    if !left.is_empty() {
        return Err(CmdError::runtime(format!(
            "network {} is down but processes still use its namespace: {left:?}",
            netdir.display()
        )));
    }
    eprintln!("network down: {}", netdir.display());
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidrs() {
        assert_eq!(
            parse_cidr("10.77.0.0/24").unwrap(),
            (u32::from(std::net::Ipv4Addr::new(10, 77, 0, 0)), 24)
        );
        assert_eq!(
            parse_cidr("10.77.0.9/24").unwrap().0,
            parse_ipv4("10.77.0.0").unwrap()
        );
        assert!(parse_cidr("10.77.0.0").is_err());
        assert!(parse_cidr("10.77.0.0/33").is_err());
        assert!(parse_ipv4("10.77.0.256").is_err());
    }
}
