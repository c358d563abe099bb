//! What a simulated unit must never change on the host ([`HostState`]), and the processes
//! left in a namespace ([`NsHold`]).

use std::path::Path;

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
    pub kind: &'static str,
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

/// `PID command line` of each process, `; `-separated (for a failure message).
pub fn describe(pids: &[u32]) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_changes_are_named() {
        let before = HostState::take();
        assert!(before.changes(&before.clone()).is_empty());
        let mut after = before.clone();
        after.sysctls[0].1 = "changed".into();
        after.accounts[1].1.push_str("intruder:x:0:\n");
        after.mounts.push("tmpfs /left/behind tmpfs rw 0 0".into());
        after.links.push("veth-left".into());
        let changes = after.changes(&before);
        assert_eq!(changes.len(), 4, "{changes:?}");
        let text = changes.join("\n");
        assert!(text.contains("host sysctl fs.protected_regular changed from changed to"));
        assert!(text.contains("host /etc/group changed"));
        assert!(text.contains("mount gone from the host's mount namespace: tmpfs /left/behind"));
        assert!(text.contains("host network interfaces changed"));
        let changes = before.changes(&after);
        assert!(changes.iter().any(
            |c| c == "new mount in the host's mount namespace: tmpfs /left/behind tmpfs rw 0 0"
        ));
    }

    #[test]
    fn a_namespace_hold_finds_its_processes() {
        let me = std::process::id();
        let ns = NsHold::of(me, "net");
        assert!(ns.processes().contains(&me));
        assert!(processes_in_ns("net", "").is_empty());
        assert!(describe(&[me]).starts_with(&format!("{me} ")));
    }
}
