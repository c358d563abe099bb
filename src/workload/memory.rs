//! What the service's processes really use, from /proc, the shared pages (the node binary's
//! text) never counted once per worker as RSS sums would: for the status at every hook, the
//! resident memory from each process's counters (cheap); for the memory-report action,
//! proportional set size (PSS) and anonymous memory from `smaps_rollup` (a page-table walk).
//! The processes are the members of the service's cgroup.

use std::path::{Path, PathBuf};

use super::sizing::Machine;

/// One process of the service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessMemory {
    pub pid: u32,
    pub ppid: u32,
    pub pss_kib: u64,
    pub anonymous_kib: u64,
    pub rss_kib: u64,
}

/// The service's processes (the cgroup's order: the main process first).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServiceMemory {
    pub processes: Vec<ProcessMemory>,
}

impl ServiceMemory {
    pub fn pss_kib(&self) -> u64 {
        self.processes.iter().map(|p| p.pss_kib).sum()
    }

    /// Whether `p` is the cluster master (the parent of other processes of the service).
    pub fn is_master(&self, p: &ProcessMemory) -> bool {
        self.processes.iter().any(|q| q.ppid == p.pid)
    }
}

/// Where a service's cgroup lists its processes: the unified (v2) hierarchy, else systemd's
/// own v1 hierarchy.
fn cgroup_procs(root: &Path, unit: &str) -> Option<PathBuf> {
    [
        format!("sys/fs/cgroup/system.slice/{unit}/cgroup.procs"),
        format!("sys/fs/cgroup/systemd/system.slice/{unit}/cgroup.procs"),
    ]
    .into_iter()
    .map(|p| root.join(p))
    .find(|p| p.is_file())
}

fn kib_field(text: &str, field: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

/// Reads one process (`None` if it went away meanwhile).
pub fn process(root: &Path, pid: u32) -> Option<ProcessMemory> {
    let proc_dir = root.join(format!("proc/{pid}"));
    let rollup = std::fs::read_to_string(proc_dir.join("smaps_rollup")).ok()?;
    let stat = std::fs::read_to_string(proc_dir.join("stat")).ok()?;
    let ppid = stat
        .rsplit_once(')')?
        .1
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some(ProcessMemory {
        pid,
        ppid,
        pss_kib: kib_field(&rollup, "Pss")?,
        anonymous_kib: kib_field(&rollup, "Anonymous").unwrap_or(0),
        rss_kib: kib_field(&rollup, "Rss").unwrap_or(0),
    })
}

/// The service's processes and their memory; `None` when the service has no cgroup.
pub fn service(root: &Path, unit: &str) -> Option<ServiceMemory> {
    let procs = std::fs::read_to_string(cgroup_procs(root, unit)?).ok()?;
    let processes: Vec<ProcessMemory> = procs
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .filter_map(|pid| process(root, pid))
        .collect();
    Some(ServiceMemory { processes })
}

/// The service's resident memory, the pages of mapped files counted once: each process's
/// anonymous and shared-memory pages (`RssAnon`, `RssShmem`) plus the largest `RssFile`
/// (the master and its workers map the same node binary and libraries). From the counters
/// in `/proc/<pid>/status`, which the kernel keeps up to date: reading them costs
/// microseconds, where `smaps_rollup` walks every page table of the process (milliseconds
/// for a worker with a large heap). `None` when the service has no cgroup or no process.
pub fn resident_kib(root: &Path, unit: &str) -> Option<u64> {
    resident_kib_listed(&cgroup_procs(root, unit)?, root)
}

/// The same for the processes `procs` (a `cgroup.procs` file) lists, read from `root`'s
/// /proc.
pub fn resident_kib_listed(procs: &Path, root: &Path) -> Option<u64> {
    let procs = std::fs::read_to_string(procs).ok()?;
    let (mut own, mut files, mut any) = (0, 0, false);
    for pid in procs.split_whitespace() {
        let Ok(status) = std::fs::read_to_string(root.join(format!("proc/{pid}/status"))) else {
            continue; // it went away meanwhile
        };
        let field = |f| kib_field(&status, f).unwrap_or(0);
        own += field("RssAnon") + field("RssShmem");
        files = files.max(field("RssFile"));
        any = true;
    }
    any.then_some(own + files)
}

/// A process's V8 heap, as it reported it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeapStats {
    pub used_bytes: u64,
    pub limit_bytes: u64,
}

/// A heap report a process of the service wrote, read safely: the directory belongs to the
/// service's account (which runs Cloud Code and every dependency), so the file is opened
/// without following a symlink and without blocking (it could be a FIFO), and used only if
/// it is a regular file owned by `owner`, at most 64 KiB.
fn read_report(path: &Path, owner: u32) -> Option<serde_json::Value> {
    use std::io::Read;
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .ok()?;
    let meta = file.metadata().ok()?;
    if !meta.file_type().is_file() || meta.uid() != owner || meta.len() > 64 * 1024 {
        return None;
    }
    let mut text = String::new();
    file.take(64 * 1024).read_to_string(&mut text).ok()?;
    serde_json::from_str(&text).ok()
}

/// Asks each of `pids` that loaded the charm's service hooks (`hooks`, by its path on the
/// command line) for its V8 heap statistics (SIGUSR2; the process writes them to
/// `state_dir`, owned by the service's account `owner`), and waits up to `timeout` for the
/// answers. A process that did not load the hooks is never signalled (SIGUSR2 would end it).
pub fn heap_statistics(
    root: &Path,
    pids: &[u32],
    hooks: &str,
    state_dir: &Path,
    owner: u32,
    timeout: std::time::Duration,
) -> std::collections::BTreeMap<u32, HeapStats> {
    let mut asked = Vec::new();
    for pid in pids {
        let cmdline = std::fs::read(root.join(format!("proc/{pid}/cmdline"))).unwrap_or_default();
        let loaded = String::from_utf8_lossy(&cmdline)
            .split('\0')
            .any(|arg| arg == hooks);
        if !loaded {
            continue;
        }
        let _ = std::fs::remove_file(state_dir.join(format!("heap-{pid}.json")));
        let signalled = duct::cmd!("kill", "-USR2", pid.to_string())
            .stderr_null()
            .stdout_null()
            .unchecked()
            .run()
            .is_ok_and(|o| o.status.success());
        if signalled {
            asked.push(*pid);
        }
    }
    let mut out = std::collections::BTreeMap::new();
    let deadline = std::time::Instant::now() + timeout;
    while out.len() < asked.len() && std::time::Instant::now() < deadline {
        for pid in &asked {
            if out.contains_key(pid) {
                continue;
            }
            let file = state_dir.join(format!("heap-{pid}.json"));
            let Some(v) = read_report(&file, owner) else {
                continue;
            };
            let _ = std::fs::remove_file(&file);
            out.insert(
                *pid,
                HeapStats {
                    used_bytes: v["used_heap_size"].as_u64().unwrap_or(0),
                    limit_bytes: v["heap_size_limit"].as_u64().unwrap_or(0),
                },
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    out
}

/// The machine's CPUs (as this process may use them) and memory (`MemTotal`).
pub fn machine(root: &Path) -> Machine {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get() as u32);
    let memory_mib = std::fs::read_to_string(root.join("proc/meminfo"))
        .ok()
        .and_then(|m| kib_field(&m, "MemTotal"))
        .map_or(1024, |kib| kib / 1024);
    Machine { cpus, memory_mib }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_reads_and_the_machine_is_known() {
        let me = process(Path::new("/"), std::process::id()).expect("own smaps_rollup");
        assert!(me.pss_kib > 0 && me.rss_kib >= me.pss_kib, "{me:?}");
        let m = machine(Path::new("/"));
        assert!(m.cpus >= 1 && m.memory_mib > 256, "{m:?}");
    }

    #[test]
    fn resident_memory_counts_each_process_own_pages_and_the_files_once() {
        let root = std::env::temp_dir().join(format!("psc-resident-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let cg = root.join("sys/fs/cgroup/system.slice/svc.service");
        std::fs::create_dir_all(&cg).unwrap();
        assert_eq!(resident_kib(&root, "svc.service"), None, "no cgroup.procs");
        // 9 went away between the two reads.
        std::fs::write(cg.join("cgroup.procs"), "7\n8\n9\n").unwrap();
        assert_eq!(resident_kib(&root, "svc.service"), None, "no process left");
        for (pid, anon, file, shmem) in [(7, 1000, 300, 5), (8, 2000, 400, 0)] {
            let dir = root.join(format!("proc/{pid}"));
            std::fs::create_dir_all(&dir).unwrap();
            let status = format!(
                "Name:\tnode\nVmRSS:\t{} kB\nRssAnon:\t{anon} kB\nRssFile:\t{file} kB\n\
                 RssShmem:\t{shmem} kB\nThreads:\t11\n",
                anon + file + shmem
            );
            std::fs::write(dir.join("status"), status).unwrap();
        }
        assert_eq!(
            resident_kib(&root, "svc.service"),
            Some(1000 + 5 + 2000 + 400)
        );
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn heap_reports_are_read_only_from_regular_files_of_the_service() {
        use std::os::unix::fs::MetadataExt;
        let dir = std::env::temp_dir().join(format!("psc-heap-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let me = std::fs::metadata(&dir).unwrap().uid();
        let good = dir.join("heap-1.json");
        std::fs::write(&good, r#"{"used_heap_size": 1, "heap_size_limit": 2}"#).unwrap();
        assert_eq!(read_report(&good, me).unwrap()["heap_size_limit"], 2);
        // Another owner's file, a symlink to it, a FIFO (which would block a plain read).
        assert!(read_report(&good, me + 1).is_none());
        std::os::unix::fs::symlink(&good, dir.join("heap-2.json")).unwrap();
        assert!(read_report(&dir.join("heap-2.json"), me).is_none());
        let fifo = dir.join("heap-3.json");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: mkfifo(3) on a NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let started = std::time::Instant::now();
        assert!(read_report(&fifo, me).is_none());
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn masters_are_parents() {
        let p = |pid, ppid| ProcessMemory {
            pid,
            ppid,
            pss_kib: 10,
            anonymous_kib: 5,
            rss_kib: 20,
        };
        let s = ServiceMemory {
            processes: vec![p(10, 1), p(11, 10), p(12, 10)],
        };
        assert!(s.is_master(&s.processes[0]));
        assert!(!s.is_master(&s.processes[1]));
        assert_eq!(s.pss_kib(), 30);
    }
}
