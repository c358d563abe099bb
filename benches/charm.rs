//! `make bench`: figures for the packed charm on simulated units (booted machines) against
//! real parse-server and PostgreSQL. Every comparison is made in the same run, as a ratio,
//! because these machines are noisy and shared. Nothing here asserts on time.
//!
//! What it prints:
//! - the packed charm's size; install -> active;
//! - update-status with nothing changed against a null charm and an ops charm
//!   (benches/ops-charm), both on the charm's own booted machine, interleaved round by round;
//! - heap settings (old-space cap, semi-space size; the charm's default among them, the
//!   others through a systemd drop-in) against V8's own (the same service without the
//!   flags), for 1 and for N workers (N = the CPUs): peak PSS per worker under load, req/s,
//!   CPU per request, the frontier of memory against req/s and the setting the rule
//!   chooses; the charm's default in detail (VmHWM, PSS after load, MiB per req/s);
//! - logins per second with UV_THREADPOOL_SIZE unset against 2x the CPUs (bcrypt);
//! - what the memory figure in the status costs a hook (cgroup.procs and every process's
//!   /proc/<pid>/status, read with the charm's own code) against the PSS read (every
//!   smaps_rollup), idle after the hooks and again after the memory sweep's load.

// The charm under test on the kit's units (packed charm, deploying it, PostgreSQL on the
// unit's loopback, the master key), shared with the end-to-end tests.
#[path = "../tests/e2e/charm.rs"]
mod charm;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use charm::{packed_charm, start_postgres, CharmUnit};
use jujusim::kit::{private_file, random_alnum, Unit};
use parse_server_charm::workload::memory;
use serde_json::Value;

const APP_ID: &str = "bench";
const BASE: &str = "http://127.0.0.1:1337/parse";
const QUERY: &str = "http://127.0.0.1:1337/parse/classes/GameScore?limit=10";
const SERVICE: &str = "parse-server.service";
const DROP_IN_DIR: &str = "/etc/systemd/system/parse-server.service.d";
const DROP_IN: &str = "/etc/systemd/system/parse-server.service.d/bench.conf";
/// Objects in GameScore before the query is measured.
const SEED_OBJECTS: usize = 300;
/// Rounds of the login cases.
const LOGIN_ROUNDS: usize = 3;
const MIB: f64 = 1024.0;

fn hook_times(dir: &Path, hook: &str) -> Vec<(f64, f64)> {
    std::fs::read_to_string(dir.join("hook-times.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["hook"] == hook)
        .map(|v| {
            (
                v["ms"].as_f64().unwrap_or(0.0),
                v["max_rss_kb"].as_f64().unwrap_or(0.0),
            )
        })
        .collect()
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(|a, b| a.total_cmp(b));
    match xs.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => xs[n / 2],
        n => (xs[n / 2 - 1] + xs[n / 2]) / 2.0,
    }
}

fn percentile(mut xs: Vec<f64>, p: f64) -> f64 {
    xs.sort_by(|a, b| a.total_cmp(b));
    if xs.is_empty() {
        return f64::NAN;
    }
    let i = ((xs.len() - 1) as f64 * p).round() as usize;
    xs[i]
}

fn mean(xs: &[f64]) -> f64 {
    xs.iter().sum::<f64>() / xs.len() as f64
}

/// One hook's record of `hook-times.jsonl`: `(ms, max RSS kB)` of the hook's process tree.
fn last_hook_time(dir: &Path, hook: &str) -> (f64, f64) {
    *hook_times(dir, hook)
        .last()
        .expect("the hook's timing record")
}

/// A charm directory packed as `juju deploy` gets it (a zip, exec bits kept).
fn zip_charm(src: &Path, packed: &Path) {
    let _ = std::fs::remove_file(packed);
    let zipped = Command::new("zip")
        .args(["-q", "-X", "-r"])
        .arg(packed)
        .arg(".")
        .current_dir(src)
        .status()
        .unwrap();
    assert!(zipped.success(), "zip of {} failed", src.display());
}

/// The null charm: its dispatch only sets a status (`exec status-set active ok`), the floor
/// any hook pays (entering the machine, process start, one hook-tool round trip).
fn pack_null_charm(work: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let charm = work.join("null-charm");
    std::fs::create_dir_all(&charm).unwrap();
    std::fs::write(
        charm.join("metadata.yaml"),
        "name: baseline\nsummary: s\ndescription: d\n",
    )
    .unwrap();
    let dispatch = charm.join("dispatch");
    std::fs::write(&dispatch, "#!/bin/sh\nexec status-set active ok\n").unwrap();
    std::fs::set_permissions(&dispatch, std::fs::Permissions::from_mode(0o755)).unwrap();
    let packed = work.join("null.charm");
    zip_charm(&charm, &packed);
    packed
}

/// The ops charm (benches/ops-charm) packed the way charmcraft lays it out: its files and
/// `venv/` with its pinned dependencies, which `scripts/prereqs.sh` installed from PyPI
/// (`.prereqs/ops-charm-venv`, with the units' python3).
fn pack_ops_charm(work: &Path) -> PathBuf {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let venv = repo.join(".prereqs/ops-charm-venv");
    assert!(
        venv.join("ops").is_dir() && venv.join("pg8000").is_dir(),
        "{} lacks ops and pg8000: run `make prereqs` (scripts/prereqs.sh installs the ops \
         charm's dependencies from PyPI)",
        venv.display()
    );
    let charm = work.join("ops-charm");
    let _ = std::fs::remove_dir_all(&charm);
    let copied = Command::new("cp")
        .arg("-a")
        .arg(repo.join("benches/ops-charm"))
        .arg(&charm)
        .status()
        .unwrap()
        .success()
        && Command::new("cp")
            .arg("-a")
            .arg(&venv)
            .arg(charm.join("venv"))
            .status()
            .unwrap()
            .success();
    assert!(copied, "copying the ops charm failed");
    let packed = work.join("ops.charm");
    zip_charm(&charm, &packed);
    packed
}

/// After a teardown that passed (the machine is down, nothing of it is mounted): its disk
/// (an overlay upper directory holding the npm install) is not kept. A failed run keeps it.
fn remove_unit_dir(dir: &Path) {
    let _ = Command::new("rm")
        .args(["-rf", "--one-file-system"])
        .arg(dir)
        .status();
}

/// The host path of the service's `cgroup.procs` (host PIDs: the kernel translates them to
/// the reader's PID namespace).
fn service_procs_file(unit: &Unit) -> PathBuf {
    let cgroup = unit.boot_record()["cgroup"]
        .as_str()
        .expect("machine-run.json cgroup")
        .to_owned();
    let f = Path::new(&cgroup)
        .join("system.slice")
        .join(SERVICE)
        .join("cgroup.procs");
    assert!(f.is_file(), "{} does not exist", f.display());
    f
}

fn service_pids(procs: &Path) -> Vec<u32> {
    std::fs::read_to_string(procs)
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

/// The service's processes and their memory, read with the charm's own code (the same reads
/// as every hook's status figure: `cgroup.procs`, then each process's smaps_rollup and stat).
fn snapshot(procs: &Path) -> Vec<memory::ProcessMemory> {
    service_pids(procs)
        .into_iter()
        .filter_map(|pid| memory::process(Path::new("/"), pid))
        .collect()
}

/// A `kB` field of /proc/<pid>/status, in MiB.
fn status_mib(pid: u32, field: &str) -> Option<f64> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        .map(|kb| kb / MIB)
}

fn cmdline(pid: u32) -> Vec<String> {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|c| {
            String::from_utf8_lossy(&c)
                .split('\0')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

fn environ_var(pid: u32, name: &str) -> Option<String> {
    let env = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
    String::from_utf8_lossy(&env)
        .split('\0')
        .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
        .map(str::to_owned)
}

/// How many threads `pid` has (Node 20 does not name libuv's pool threads; the pool is
/// started at its first use, so the count after the load includes it).
fn threads(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task")).map_or(0, |rd| rd.count())
}

/// Runs wrk inside the unit; returns requests per second. Fails on any non-2xx answer.
fn wrk(unit: &Unit, script: &Path, url: &str, conns: u32, seconds: u32) -> f64 {
    wrk_counts(unit, script, url, conns, seconds).0
}

/// The same, with the number of requests wrk completed: `(req/s, requests)`.
fn wrk_counts(unit: &Unit, script: &Path, url: &str, conns: u32, seconds: u32) -> (f64, f64) {
    let out = unit.exec(&[
        "wrk",
        "-t2",
        &format!("-c{conns}"),
        &format!("-d{seconds}s"),
        "--timeout",
        "10s",
        "-s",
        script.to_str().unwrap(),
        url,
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains("Non-2xx"), "wrk saw errors:\n{text}");
    if let Some(l) = text.lines().find(|l| l.contains("Socket errors")) {
        println!("  (wrk: {})", l.trim());
    }
    let rps = text
        .lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no Requests/sec in wrk output:\n{text}"));
    let requests = text
        .lines()
        .find(|l| l.contains(" requests in "))
        .and_then(|l| l.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no request count in wrk output:\n{text}"));
    (rps, requests)
}

/// CPU time the service's cgroup has used (`cpu.stat` usage_usec, always there in the
/// unified hierarchy), in ms.
fn service_cpu_ms(procs: &Path) -> f64 {
    std::fs::read_to_string(procs.with_file_name("cpu.stat"))
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("usage_usec "))
                .and_then(|v| v.trim().parse::<f64>().ok())
        })
        .map_or(f64::NAN, |us| us / 1000.0)
}

/// Writes a wrk script (0600: a login script holds a test user's password).
fn wrk_script(unit: &Unit, name: &str, text: &str) -> PathBuf {
    use std::io::Write;
    let path = unit.dir.join(name);
    private_file(&path).write_all(text.as_bytes()).unwrap();
    path
}

/// The service's drop-in: `Some(text)` writes it, `None` removes it (and its directory when
/// empty). Takes effect at the next daemon-reload.
fn set_drop_in(unit: &Unit, text: Option<&str>) {
    let file = unit.path(DROP_IN);
    match text {
        Some(t) => {
            std::fs::create_dir_all(unit.path(DROP_IN_DIR)).unwrap();
            std::fs::write(&file, t).unwrap();
        }
        None => {
            let _ = std::fs::remove_file(&file);
            let _ = std::fs::remove_dir(unit.path(DROP_IN_DIR));
        }
    }
}

/// The charm's ExecStart= line with node's heap flags replaced by `heap`'s (a flag `None`
/// removed: V8's own value): the same service, another heap setting.
fn heap_drop_in(unit: &Unit, heap: HeapFlags) -> String {
    let unit_file = unit.read_text("/etc/systemd/system/parse-server.service");
    let exec = unit_file
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .expect("the charm's unit file has an ExecStart= line");
    let words: Vec<&str> = exec.split_whitespace().collect();
    assert!(
        words.first().is_some_and(|w| w.ends_with("/node")),
        "expected node first in {exec:?}"
    );
    let mut kept: Vec<String> = vec![words[0].to_owned()];
    kept.extend(heap.args());
    kept.extend(
        words[1..]
            .iter()
            .filter(|w| {
                !w.starts_with("--max-old-space-size=") && !w.starts_with("--max-semi-space-size=")
            })
            .map(|w| (*w).to_owned()),
    );
    format!(
        "# make bench: heap setting {} (the charm's command line with these heap flags)\n\
         [Service]\nExecStart=\nExecStart={}\n",
        heap.label(),
        kept.join(" ")
    )
}

/// daemon-reload, restart, and wait until `expect` processes are in the service's cgroup and
/// the health check answers.
fn restart(unit: &Unit, procs: &Path, expect: usize) {
    unit.exec_ok(&["systemctl", "daemon-reload"]);
    unit.exec_ok(&["systemctl", "restart", SERVICE]);
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let n = service_pids(procs).len();
        if n == expect && unit.healthy(&format!("{BASE}/health")) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "after a restart: {n} processes (expected {expect}), health {}\n{}",
            unit.healthy(&format!("{BASE}/health")),
            unit.journal(SERVICE)
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Node's heap flags: `--max-old-space-size` and `--max-semi-space-size` in MiB (`None`: the
/// flag absent, V8's own value).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
struct HeapFlags {
    old: Option<u32>,
    semi: Option<u32>,
}

impl HeapFlags {
    const V8: HeapFlags = HeapFlags {
        old: None,
        semi: None,
    };

    fn args(self) -> Vec<String> {
        let mut a = Vec::new();
        if let Some(o) = self.old {
            a.push(format!("--max-old-space-size={o}"));
        }
        if let Some(s) = self.semi {
            a.push(format!("--max-semi-space-size={s}"));
        }
        a
    }

    /// What a process's command line says.
    fn of_cmdline(args: &[String]) -> HeapFlags {
        let flag = |name: &str| {
            args.iter()
                .find_map(|a| a.strip_prefix(name)?.parse::<u32>().ok())
        };
        HeapFlags {
            old: flag("--max-old-space-size="),
            semi: flag("--max-semi-space-size="),
        }
    }

    /// `old/semi` in MiB, `v8` for a flag left to V8.
    fn label(self) -> String {
        let f = |v: Option<u32>| v.map_or("v8".to_owned(), |v| v.to_string());
        format!("{}/{}", f(self.old), f(self.semi))
    }
}

/// One setting of the sweep: heap flags, applied by a drop-in, or the charm's own service
/// (no drop-in: what the charm renders is what is measured).
#[derive(Clone, Debug)]
struct Setting {
    flags: HeapFlags,
    charm_default: bool,
}

impl Setting {
    fn name(&self) -> String {
        if self.charm_default {
            format!("charm {}", self.flags.label())
        } else if self.flags == HeapFlags::V8 {
            "V8 v8/v8".to_owned()
        } else {
            self.flags.label()
        }
    }
}

/// Heap settings swept besides the charm's default and V8's (old-space cap / semi-space
/// size in MiB; `None`: V8's own). A first sweep (1 and 2 workers, 3 rounds) measured
/// 256/v8 (the charm's earlier default), 256/4, 512/8, 1024/16, 1024/8 and 1024/4: 1024/8 was
/// the choice for 1 worker (0.58 of V8's peak at 0.98 of its req/s), no capped setting
/// reached 0.95 for 2 (1024/16 0.93, 1024/8 0.91), 256/4 cost the most req/s (0.81-0.83)
/// and 1024/4 measured as 512/8. Kept: the earlier default, the frugal end (512/8), V8's
/// semi-space under the new cap (1024/16), and 2048 MiB (V8 grows a heap of 2 GiB or more
/// as it does its default one) with 8 and 16 MiB. A setting equal to the charm's default is
/// measured once, as the charm's.
const SWEEP: &[(u32, Option<u32>)] = &[
    (256, None),
    (512, Some(8)),
    (1024, Some(16)),
    (2048, Some(8)),
    (2048, Some(16)),
];
/// Rounds of the sweep per worker count (`BENCH_SWEEP_ROUNDS`), each setting's run adjacent
/// to a run of V8's default.
const SWEEP_ROUNDS: usize = 4;
/// Seconds wrk measures each run (after its 2 s warm-up).
const SWEEP_SECONDS: u32 = 5;
/// The goal: at most this much of V8's peak PSS per worker ...
const GOAL_MEMORY: f64 = 0.6;
/// ... at no less than this much of its req/s (also the rule's floor for the default).
const GOAL_RPS: f64 = 0.95;

/// The `p` quantile, interpolated between the two nearest values (with 3 or 4 rounds the
/// nearest rank would print the median or an extreme as a quartile).
fn quartile(xs: &[f64], p: f64) -> f64 {
    let mut xs = xs.to_vec();
    xs.sort_by(|a, b| a.total_cmp(b));
    if xs.is_empty() {
        return f64::NAN;
    }
    let at = (xs.len() - 1) as f64 * p;
    let (lo, hi) = (at.floor() as usize, at.ceil() as usize);
    xs[lo] + (xs[hi] - xs[lo]) * (at - lo as f64)
}

/// Round by round, a setting's run against the adjacent V8 run: (req/s, peak PSS per worker,
/// CPU per request).
fn ratios(s: &Run, v: &Run) -> (f64, f64, f64) {
    (
        s.rps / v.rps,
        s.worker_peak_pss / v.worker_peak_pss,
        s.cpu_per_request / v.cpu_per_request,
    )
}

/// One measured run (MiB, req/s).
#[derive(Clone, Debug, Default)]
struct Run {
    rps: f64,
    /// CPU time of the whole service per request over the measured run (ms): less sensitive
    /// than req/s to what else the shared machine runs.
    cpu_per_request: f64,
    /// Mean over the workers of each worker's peak PSS while wrk ran.
    worker_peak_pss: f64,
    /// The largest worker peak.
    worker_peak_pss_max: f64,
    /// The cluster master's peak PSS (0 for one worker: no master).
    master_peak_pss: f64,
    /// Largest sum over the service's processes at one sample.
    service_peak_pss: f64,
    /// Mean over the workers of VmHWM (peak RSS since the process started).
    worker_vmhwm: f64,
    /// 2 s after wrk ended.
    worker_after_pss: f64,
    service_after_pss: f64,
    samples: usize,
}

/// Runs the GameScore query with wrk (2 s warm-up, then `seconds`) while a thread samples
/// every process of the service every 200 ms.
fn measure(unit: &Unit, procs: &Path, script: &Path, seconds: u32) -> Run {
    let stop = AtomicBool::new(false);
    let (rps, (peaks, service_peak, samples)) = std::thread::scope(|s| {
        let sampler = s.spawn(|| {
            // pid -> (peak PSS kB, ppid)
            let mut peaks: BTreeMap<u32, (u64, u32)> = BTreeMap::new();
            let mut service_peak = 0u64;
            let mut samples = 0usize;
            while !stop.load(Ordering::SeqCst) {
                let snap = snapshot(procs);
                service_peak = service_peak.max(snap.iter().map(|p| p.pss_kib).sum());
                for p in &snap {
                    let e = peaks.entry(p.pid).or_insert((0, p.ppid));
                    e.0 = e.0.max(p.pss_kib);
                }
                samples += 1;
                std::thread::sleep(Duration::from_millis(200));
            }
            (peaks, service_peak, samples)
        });
        let _warm = wrk(unit, script, QUERY, 32, 2);
        let cpu0 = service_cpu_ms(procs);
        let (r, requests) = wrk_counts(unit, script, QUERY, 32, seconds);
        let cpu = service_cpu_ms(procs) - cpu0;
        stop.store(true, Ordering::SeqCst);
        ((r, cpu / requests), sampler.join().unwrap())
    });
    let (rps, cpu_per_request) = rps;
    let is_master = |pid: u32| peaks.values().any(|(_, ppid)| *ppid == pid);
    let workers: Vec<u32> = peaks.keys().copied().filter(|p| !is_master(*p)).collect();
    let master: Option<u32> = peaks.keys().copied().find(|p| is_master(*p));
    let worker_peaks: Vec<f64> = workers.iter().map(|p| peaks[p].0 as f64 / MIB).collect();
    let vmhwm: Vec<f64> = workers
        .iter()
        .filter_map(|p| status_mib(*p, "VmHWM"))
        .collect();
    std::thread::sleep(Duration::from_secs(2));
    let after = snapshot(procs);
    let worker_after: Vec<f64> = after
        .iter()
        .filter(|p| workers.contains(&p.pid))
        .map(|p| p.pss_kib as f64 / MIB)
        .collect();
    Run {
        rps,
        cpu_per_request,
        worker_peak_pss: mean(&worker_peaks),
        worker_peak_pss_max: worker_peaks.iter().copied().fold(0.0, f64::max),
        master_peak_pss: master.map_or(0.0, |m| peaks[&m].0 as f64 / MIB),
        service_peak_pss: service_peak as f64 / MIB,
        worker_vmhwm: mean(&vmhwm),
        worker_after_pss: mean(&worker_after),
        service_after_pss: after.iter().map(|p| p.pss_kib as f64 / MIB).sum(),
        samples,
    }
}

/// The median of each figure over runs.
fn median_run(runs: &[Run]) -> Run {
    let m = |f: fn(&Run) -> f64| median(runs.iter().map(f).collect());
    Run {
        rps: m(|r| r.rps),
        cpu_per_request: m(|r| r.cpu_per_request),
        worker_peak_pss: m(|r| r.worker_peak_pss),
        worker_peak_pss_max: m(|r| r.worker_peak_pss_max),
        master_peak_pss: m(|r| r.master_peak_pss),
        service_peak_pss: m(|r| r.service_peak_pss),
        worker_vmhwm: m(|r| r.worker_vmhwm),
        worker_after_pss: m(|r| r.worker_after_pss),
        service_after_pss: m(|r| r.service_after_pss),
        samples: runs.iter().map(|r| r.samples).min().unwrap_or(0),
    }
}

/// The V8 heap limit of each process as it reports it (the memory-report action), in MiB.
fn heap_limits(unit: &Unit) -> Vec<String> {
    let out = unit.sim("action", &["memory-report"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    let mut limits = Vec::new();
    if let Some(results) = v["results"].as_object() {
        for (k, p) in results {
            if k.starts_with("process-") {
                limits.push(format!(
                    "{} {}",
                    p["role"].as_str().unwrap_or("?"),
                    p["heap-limit-mib"].as_str().unwrap_or("?")
                ));
            }
        }
    }
    limits
}

/// What the status's memory figure costs, against the PSS read it replaced.
struct FigureCost {
    processes: usize,
    /// The charm's figure (`memory::resident_kib_listed`: cgroup.procs, each
    /// /proc/<pid>/status).
    resident_ms: Vec<f64>,
    /// cgroup.procs, then every process's smaps_rollup and stat (`memory::process`, what
    /// the memory-report action reads).
    pss_ms: Vec<f64>,
    resident_kib: u64,
    pss_kib: u64,
}

/// Times both reads of the service's memory, alternating run by run.
fn status_figure_cost(procs: &Path, runs: usize) -> FigureCost {
    let mut c = FigureCost {
        processes: 0,
        resident_ms: Vec::with_capacity(runs),
        pss_ms: Vec::with_capacity(runs),
        resident_kib: 0,
        pss_kib: 0,
    };
    for _ in 0..runs {
        let t = Instant::now();
        c.resident_kib =
            std::hint::black_box(memory::resident_kib_listed(procs, Path::new("/"))).unwrap_or(0);
        c.resident_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        let t = Instant::now();
        let ps: Vec<memory::ProcessMemory> = std::fs::read_to_string(procs)
            .unwrap_or_default()
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .filter_map(|pid| memory::process(Path::new("/"), pid))
            .collect();
        c.pss_kib = std::hint::black_box(ps.iter().map(|p| p.pss_kib).sum());
        c.pss_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        c.processes = ps.len();
    }
    c
}

/// The same reads one process at a time: `(role, RSS MiB, mappings, median ms)` each, to
/// show what the cost follows.
fn status_figure_cost_per_process(procs: &Path, runs: usize) -> Vec<(String, f64, usize, f64)> {
    let ps = snapshot(procs);
    ps.iter()
        .map(|p| {
            let role = if ps.iter().any(|q| q.ppid == p.pid) {
                "master"
            } else {
                "worker"
            };
            let maps = std::fs::read_to_string(format!("/proc/{}/maps", p.pid))
                .map_or(0, |m| m.lines().count());
            let times: Vec<f64> = (0..runs)
                .map(|_| {
                    let t = Instant::now();
                    std::hint::black_box(memory::process(Path::new("/"), p.pid));
                    t.elapsed().as_secs_f64() * 1000.0
                })
                .collect();
            (role.to_owned(), p.rss_kib as f64 / MIB, maps, median(times))
        })
        .collect()
}

/// How long a fixed piece of CPU work takes this process right now (ms, best of 3): how much
/// of the shared machine's CPU is there for the benchmark at that moment.
fn cpu_gauge_ms() -> f64 {
    (0..3)
        .map(|_| {
            let t = Instant::now();
            let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
            for _ in 0..20_000_000u32 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
            }
            std::hint::black_box(x);
            t.elapsed().as_secs_f64() * 1000.0
        })
        .fold(f64::INFINITY, f64::min)
}

/// The host's 1, 5 and 15 minute load averages: how busy the shared machine was.
fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// One worker, or the charm's default (one per CPU here), applied by config-changed.
fn set_workers(unit: &Unit, workers: usize) {
    if workers == 1 {
        unit.config(&["workers=1"]);
    } else {
        unit.reset_config("workers");
    }
    unit.hook("config-changed", &[]);
    unit.assert_status("active", "serving");
}

fn expected_processes(workers: usize) -> usize {
    if workers > 1 {
        workers + 1
    } else {
        1
    }
}

fn seed(unit: &Unit, key: &str) {
    let headers = [
        ("X-Parse-Application-Id", APP_ID),
        ("X-Parse-Master-Key", key),
        ("Content-Type", "application/json"),
    ];
    for batch in 0..SEED_OBJECTS.div_ceil(50) {
        let requests: Vec<Value> = (batch * 50..((batch + 1) * 50).min(SEED_OBJECTS))
            .map(|i| {
                serde_json::json!({
                    "method": "POST",
                    "path": "/parse/classes/GameScore",
                    "body": {"score": i, "playerName": format!("player-{i}"), "cheatMode": i % 7 == 0},
                })
            })
            .collect();
        let body = serde_json::json!({ "requests": requests }).to_string();
        let (code, text) = unit.http("POST", &format!("{BASE}/batch"), &headers, Some(&body));
        assert_eq!(code, 200, "batch: {text}");
        let answers: Vec<Value> = serde_json::from_str(&text).expect("batch answer");
        assert!(
            answers.iter().all(|a| a.get("success").is_some()),
            "batch: {text}"
        );
    }
}

fn ratio_line(what: &str, charm: f64, v8: f64, unit_name: &str) {
    let p = if charm.abs() < 10.0 { 3 } else { 1 };
    println!(
        "  {what:<30} charm {charm:>8.p$} {unit_name:<10} V8 {v8:>8.p$} {unit_name:<10} \
         charm/V8 {:.2}",
        charm / v8
    );
}

/// Which of the sections to run: `BENCH_SECTIONS=hooks,memory,logins` (all when unset), so
/// that one section can be worked on without the others' minutes. Deploy to serving always
/// runs: every section needs the serving unit.
fn wants(section: &str) -> bool {
    std::env::var("BENCH_SECTIONS")
        .map(|v| v.split(',').any(|s| s.trim() == section))
        .unwrap_or(true)
}

fn main() {
    let started = Instant::now();
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let charm = packed_charm();
    println!(
        "packed charm: {} ({:.2} MiB)",
        charm.display(),
        std::fs::metadata(&charm).unwrap().len() as f64 / 1048576.0
    );
    println!(
        "this machine: {cpus} CPUs; load average at the start: {}; CPU gauge (a fixed loop, \
         best of 3; higher: less CPU for the benchmark) {:.0} ms",
        loadavg(),
        cpu_gauge_ms()
    );

    let mut unit = Unit::deploy("bench");
    let db_password = random_alnum(24);
    let uri = start_postgres(&mut unit, 5432, &db_password);

    // Deploy to serving (database-uri to PostgreSQL on the unit's loopback).
    let t0 = Instant::now();
    unit.hook("install", &[]);
    let installed = t0.elapsed().as_secs_f64();
    unit.hook("leader-elected", &[]);
    unit.config(&[&format!("app-id={APP_ID}")]);
    unit.config_secret("database-uri", &uri);
    unit.hook("config-changed", &[]);
    unit.hook("start", &[]);
    let serving = t0.elapsed().as_secs_f64();
    unit.assert_status("active", "serving");
    let installed_packages = serde_json::from_str::<Value>(
        &unit.read_text("/opt/parse-server/releases/9.10.0/node_modules/.package-lock.json"),
    )
    .ok()
    .and_then(|v| v["packages"].as_object().map(|p| p.len()))
    .unwrap_or(0);
    println!("\n== deploy to serving (install -> active, database-uri to PostgreSQL)");
    println!(
        "install hook (npm ci, {installed_packages} packages installed, through the proxy): \
         {installed:.1} s"
    );
    println!(
        "install -> active: {serving:.1} s; charm work after install: {:.1} s ({:.2} of the total)",
        serving - installed,
        (serving - installed) / serving
    );
    let (_, message) = unit.workload();
    println!("status with the charm's defaults: {message}");
    let procs = service_procs_file(&unit);
    let n_workers = cpus;
    assert_eq!(
        service_pids(&procs).len(),
        expected_processes(n_workers),
        "the charm's default should be one worker per CPU here: {message}"
    );

    let our_ms = wants("hooks").then(|| hook_cost(&unit, n_workers, &uri));
    if wants("figure") {
        let costs = (
            vec![status_figure_cost(&procs, 500)],
            vec![status_figure_cost_per_process(&procs, 200)],
        );
        status_figure("idle, as the hooks above saw it", &costs, our_ms, n_workers);
    }
    if wants("memory") {
        // Seed the class the benchmark queries.
        let key = unit.master_key();
        seed(&unit, &key);
        let query_script = wrk_script(
            &unit,
            "wrk-query.lua",
            &format!("wrk.headers[\"X-Parse-Application-Id\"] = \"{APP_ID}\"\n"),
        );

        let costs = memory_sweep(&unit, &procs, n_workers, &query_script);
        status_figure("after the sweep's load", &costs, our_ms, n_workers);
    }
    if wants("logins") {
        logins(&unit, &procs, cpus, n_workers);
    }

    let dir = unit.dir.clone();
    unit.teardown();
    remove_unit_dir(&dir);
    println!(
        "\nbench wall time (after the build): {:.0} s; load average at the end: {}",
        started.elapsed().as_secs_f64(),
        loadavg()
    );
}

/// Which of the three charms a round runs.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Side {
    Charm,
    Null,
    Ops,
}

/// update-status when nothing changed: the charm against the null charm and the ops charm,
/// all three on the charm's own booted machine (the other two as units beside it, `jujusim
/// deploy-charm --machine`), interleaved round by round in a rotating order. Returns the
/// charm's median ms.
fn hook_cost(unit: &Unit, n_workers: usize, database_uri: &str) -> f64 {
    const ROUNDS: usize = 20;
    const HOOK: &str = "update-status";
    let work = unit.dir.join("bench-charms");
    std::fs::create_dir_all(&work).unwrap();
    let null = unit.deploy_beside(&pack_null_charm(&work), "baseline/0");
    let ops = unit.deploy_beside(&pack_ops_charm(&work), "parse-server-ops/0");
    ops.config_secret("database-uri", database_uri);
    let expected = format!(
        "serving on port 1337 at /parse, {} processes, ",
        expected_processes(n_workers)
    );
    let check_ops = || {
        let (kind, message) = ops.workload();
        assert!(
            kind == "active" && message.starts_with(&expected) && message.ends_with(" MiB"),
            "the ops charm did not find parse-server and the database healthy: {kind} {message:?}\n{}",
            ops.hook_output_tail()
        );
    };
    // One unmeasured run each: the ops charm's first hook makes its state database and
    // Python's caches of the charm's own modules.
    unit.hook(HOOK, &[]);
    null.hook(HOOK, &[]);
    ops.hook(HOOK, &[]);
    check_ops();
    let first_tool_lines = |d: &Path| {
        std::fs::read_to_string(d.join("tool-calls.log"))
            .unwrap_or_default()
            .lines()
            .count()
    };
    let skip = [&unit.dir, &null.dir, &ops.dir].map(|d| first_tool_lines(d));
    let mut runs: BTreeMap<u8, Vec<(f64, f64)>> = BTreeMap::new();
    let orders = [
        [Side::Charm, Side::Null, Side::Ops],
        [Side::Null, Side::Ops, Side::Charm],
        [Side::Ops, Side::Charm, Side::Null],
    ];
    for round in 0..ROUNDS {
        for side in orders[round % 3] {
            let (dir, key) = match side {
                Side::Charm => (&unit.dir, 0u8),
                Side::Null => (&null.dir, 1),
                Side::Ops => (&ops.dir, 2),
            };
            match side {
                Side::Charm => unit.hook(HOOK, &[]),
                Side::Null => null.hook(HOOK, &[]),
                Side::Ops => ops.hook(HOOK, &[]),
            }
            runs.entry(key).or_default().push(last_hook_time(dir, HOOK));
            if side == Side::Ops {
                check_ops();
            }
        }
    }
    unit.assert_status("active", "serving");
    null.assert_status("active", "ok");
    let (_, ops_message) = ops.workload();

    // Tool calls and dispatch's own VmHWM over the measured runs only.
    let mut logged = std::collections::BTreeSet::new();
    let mut measured = |d: &Path, skip: usize| -> (BTreeMap<String, usize>, Option<f64>) {
        let text = std::fs::read_to_string(d.join("tool-calls.log")).unwrap_or_default();
        let mut tools = BTreeMap::new();
        let mut hwm: Option<f64> = None;
        for v in text
            .lines()
            .skip(skip)
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| v["hook"] == HOOK)
        {
            *tools
                .entry(v["tool"].as_str().unwrap_or("?").to_owned())
                .or_insert(0) += 1;
            if v["tool"] == "juju-log" {
                logged.insert(v["args"].to_string());
            }
            if let Some(kb) = v["parent_vmhwm_kb"].as_f64() {
                hwm = Some(hwm.map_or(kb, |h: f64| h.max(kb)));
            }
        }
        (tools, hwm)
    };
    let names = ["charm", "null charm", "ops charm"];
    let dirs = [&unit.dir, &null.dir, &ops.dir];
    let mut ms = [0.0; 3];
    let mut rss = [0.0; 3];
    let mut calls = [0.0; 3];
    println!(
        "\n== update-status with nothing changed: the charm, the null charm and the ops charm \
         on the same booted machine ({n_workers} workers), {ROUNDS} rounds in rotating order"
    );
    println!(
        "(the null charm's dispatch is `exec status-set active ok`; the ops charm is \
         benches/ops-charm: ops 3.9.0, pg8000, python3 {}; its status: {ops_message:?})",
        python_version()
    );
    for i in 0..3 {
        let r = &runs[&(i as u8)];
        assert_eq!(r.len(), ROUNDS);
        ms[i] = median(r.iter().map(|t| t.0).collect());
        rss[i] = median(r.iter().map(|t| t.1).collect());
        let (tools, hwm) = measured(dirs[i], skip[i]);
        calls[i] = tools.values().sum::<usize>() as f64 / ROUNDS as f64;
        let per_hook: Vec<String> = tools
            .iter()
            .map(|(t, n)| format!("{t} x{}", *n as f64 / ROUNDS as f64))
            .collect();
        println!(
            "  {:<10} wall median {:>7.1} ms (p90 {:>7.1}); tool calls per hook {:>4.1} ({}); \
             peak RSS of the hook's process tree (wait4) {:>5.1} MiB; dispatch's VmHWM \
             (seen by its hook tools) {}",
            names[i],
            ms[i],
            percentile(r.iter().map(|t| t.0).collect(), 0.9),
            calls[i],
            per_hook.join(", "),
            rss[i] / MIB,
            match (i, hwm) {
                (1, None) => "none (dispatch execs the tool)".to_owned(),
                (_, hwm) => rss_or_none(hwm),
            },
        );
    }
    for args in &logged {
        println!("  the ops charm's juju-log calls: {args}");
    }
    println!(
        "  ratios: wall charm/null {:.2}, charm/ops {:.3}; tool calls charm/null {:.2}, \
         charm/ops {:.2}; peak RSS charm/null {:.2}, charm/ops {:.3}",
        ms[0] / ms[1],
        ms[0] / ms[2],
        calls[0] / calls[1],
        calls[0] / calls[2],
        rss[0] / rss[1],
        rss[0] / rss[2],
    );
    let goal = |met: bool| if met { "met" } else { "NOT met" };
    println!(
        "  goals in this run: wall <= 2x the null charm: {} ({:.2}x); wall <= 0.2 of the ops \
         charm: {} ({:.3})",
        goal(ms[0] <= 2.0 * ms[1]),
        ms[0] / ms[1],
        goal(ms[0] <= 0.2 * ms[2]),
        ms[0] / ms[2],
    );
    ms[0]
}

fn rss_or_none(kb: Option<f64>) -> String {
    kb.map_or("not recorded".to_owned(), |kb| {
        format!("{:.1} MiB", kb / MIB)
    })
}

/// The units' python3 (the host's: a unit's root is the host's / under an overlay).
fn python_version() -> String {
    Command::new("/usr/bin/python3")
        .arg("--version")
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .trim()
                .replace("Python ", "")
        })
        .unwrap_or_default()
}

/// What the status's memory figure costs (per process count), and the PSS read one process
/// at a time.
type FigureCosts = (Vec<FigureCost>, Vec<Vec<(String, f64, usize, f64)>>);

/// The sweep's figures for one setting at one worker count.
struct Swept {
    setting: Setting,
    runs: Vec<Run>,
    /// Round by round against the adjacent V8 run: (req/s, peak PSS per worker, CPU/req).
    paired: Vec<(f64, f64, f64)>,
    limits: Vec<String>,
}

impl Swept {
    fn rps(&self) -> f64 {
        median(self.paired.iter().map(|p| p.0).collect())
    }
    fn mem(&self) -> f64 {
        median(self.paired.iter().map(|p| p.1).collect())
    }
}

/// Heap settings against V8's default, for 1 worker and for N: the frontier of peak memory
/// per worker against req/s, and the setting the rule chooses.
fn memory_sweep(unit: &Unit, procs: &Path, n_workers: usize, query_script: &Path) -> FigureCosts {
    let rounds: usize = std::env::var("BENCH_SWEEP_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(SWEEP_ROUNDS);
    println!(
        "\n== heap settings against V8's default (GET /parse/classes/GameScore?limit=10, \
         {SEED_OBJECTS} objects, PostgreSQL; wrk -t2 -c32, 2 s warm-up then {SWEEP_SECONDS} s; \
         PSS of every process of the service sampled every 200 ms; {rounds} rounds; in a round \
         each setting's run is adjacent to a run of V8's default, its ratios are against that \
         run; the order rotates and alternates round by round; settings are old-space cap / \
         semi-space size in MiB, v8: the flag absent)"
    );
    let mut costs: Vec<FigureCost> = Vec::new();
    let mut per_process_costs = Vec::new();
    let mut goal_lines = Vec::new();
    let mut charm_runs: Vec<Run> = Vec::new();
    for workers in [1, n_workers] {
        set_workers(unit, workers);
        let (_, message) = unit.workload();
        println!("workers={workers}: status \"{message}\"");
        let expect = expected_processes(workers);
        set_drop_in(unit, None);
        restart(unit, procs, expect);
        let charm_flags = HeapFlags::of_cmdline(&cmdline(service_pids(procs)[0]));
        let mut swept: Vec<Swept> = std::iter::once(Setting {
            flags: charm_flags,
            charm_default: true,
        })
        .chain(
            SWEEP
                .iter()
                .map(|&(old, semi)| HeapFlags {
                    old: Some(old),
                    semi,
                })
                .filter(|f| *f != charm_flags)
                .map(|flags| Setting {
                    flags,
                    charm_default: false,
                }),
        )
        .map(|setting| Swept {
            setting,
            runs: Vec::new(),
            paired: Vec::new(),
            limits: Vec::new(),
        })
        .collect();
        let mut v8_runs: Vec<Run> = Vec::new();
        let mut v8_limits: Vec<String> = Vec::new();
        let k = swept.len();
        for round in 0..rounds {
            // Two settings around one V8 run: [a, V8, b], [c, V8, d], ...
            let order: Vec<usize> = (0..k).map(|i| (i + round) % k).collect();
            let mut groups: Vec<Vec<Option<usize>>> = order
                .chunks(2)
                .map(|c| {
                    let mut g = vec![Some(c[0]), None];
                    g.extend(c.get(1).copied().map(Some));
                    g
                })
                .collect();
            if round % 2 == 1 {
                groups.reverse();
                groups.iter_mut().for_each(|g| g.reverse());
            }
            for group in groups {
                let mut v8_run: Option<Run> = None;
                let mut ran = Vec::new();
                for item in group {
                    let (flags, drop_in, name) = match item {
                        None => (
                            HeapFlags::V8,
                            Some(heap_drop_in(unit, HeapFlags::V8)),
                            "V8 v8/v8".to_owned(),
                        ),
                        Some(i) => {
                            let s = &swept[i].setting;
                            (
                                s.flags,
                                (!s.charm_default).then(|| heap_drop_in(unit, s.flags)),
                                s.name(),
                            )
                        }
                    };
                    set_drop_in(unit, drop_in.as_deref());
                    restart(unit, procs, expect);
                    for pid in service_pids(procs) {
                        assert_eq!(
                            HeapFlags::of_cmdline(&cmdline(pid)),
                            flags,
                            "pid {pid}: {:?}",
                            cmdline(pid)
                        );
                    }
                    let gauge = cpu_gauge_ms();
                    let run = measure(unit, procs, query_script, SWEEP_SECONDS);
                    println!(
                        "  round {} {name:<14}: {:>6.0} req/s, {:.2} CPU ms/req, worker peak PSS \
                         {:>5.0} MiB (max {:.0}), VmHWM {:>5.0} MiB, after {:>5.0} MiB, service \
                         peak {:>5.0} MiB, {} samples; CPU gauge {gauge:.0} ms",
                        round + 1,
                        run.rps,
                        run.cpu_per_request,
                        run.worker_peak_pss,
                        run.worker_peak_pss_max,
                        run.worker_vmhwm,
                        run.worker_after_pss,
                        run.service_peak_pss,
                        run.samples
                    );
                    match item {
                        None => {
                            if v8_limits.is_empty() {
                                v8_limits = heap_limits(unit);
                            }
                            v8_runs.push(run.clone());
                            v8_run = Some(run);
                        }
                        Some(i) => {
                            if swept[i].limits.is_empty() {
                                swept[i].limits = heap_limits(unit);
                            }
                            swept[i].runs.push(run);
                            ran.push(i);
                        }
                    }
                }
                let v = v8_run.expect("a V8 run in every group");
                for i in ran {
                    let r = ratios(swept[i].runs.last().unwrap(), &v);
                    swept[i].paired.push(r);
                }
            }
        }
        // Back to the charm's own service.
        set_drop_in(unit, None);
        restart(unit, procs, expect);
        std::thread::sleep(Duration::from_secs(5));
        costs.push(status_figure_cost(procs, 500));
        per_process_costs.push(status_figure_cost_per_process(procs, 200));

        let v = median_run(&v8_runs);
        let charm = &swept[0];
        let c = median_run(&charm.runs);
        println!(
            "workers={workers}: the charm's default {} against V8's (medians of the runs; V8 \
             heap limit per process, from memory-report: charm [{}], V8 [{}])",
            charm.setting.flags.label(),
            charm.limits.join(", "),
            v8_limits.join(", ")
        );
        ratio_line("req/s", c.rps, v.rps, "req/s");
        ratio_line(
            "service CPU per request",
            c.cpu_per_request,
            v.cpu_per_request,
            "ms",
        );
        ratio_line(
            "peak PSS per worker",
            c.worker_peak_pss,
            v.worker_peak_pss,
            "MiB",
        );
        ratio_line(
            "peak PSS, largest worker",
            c.worker_peak_pss_max,
            v.worker_peak_pss_max,
            "MiB",
        );
        ratio_line("VmHWM per worker", c.worker_vmhwm, v.worker_vmhwm, "MiB");
        ratio_line(
            "PSS per worker after load",
            c.worker_after_pss,
            v.worker_after_pss,
            "MiB",
        );
        if workers > 1 {
            ratio_line(
                "master peak PSS",
                c.master_peak_pss,
                v.master_peak_pss,
                "MiB",
            );
        }
        ratio_line(
            "service peak PSS",
            c.service_peak_pss,
            v.service_peak_pss,
            "MiB",
        );
        ratio_line(
            "service peak PSS per (req/s)",
            c.service_peak_pss / c.rps,
            v.service_peak_pss / v.rps,
            "MiB/(r/s)",
        );
        charm_runs.push(c);

        // The frontier: V8's default is (1, 1); a setting is on it when no other has at most
        // its memory and at least its req/s (one of them strictly).
        let points: Vec<(f64, f64)> = std::iter::once((1.0, 1.0))
            .chain(swept.iter().map(|s| (s.mem(), s.rps())))
            .collect();
        let on_frontier = |j: usize| {
            let (m, r) = points[j];
            !points
                .iter()
                .enumerate()
                .any(|(i, &(mi, ri))| i != j && mi <= m && ri >= r && (mi < m || ri > r))
        };
        // The rule: the lowest memory among the settings at >= 0.95 of V8's req/s (V8's own
        // default qualifies: there is always a choice).
        let chosen = (0..points.len())
            .filter(|&j| points[j].1 >= GOAL_RPS)
            .min_by(|&a, &b| points[a].0.total_cmp(&points[b].0))
            .unwrap_or(0);
        let name = |j: usize| {
            if j == 0 {
                "V8 v8/v8".to_owned()
            } else {
                swept[j - 1].setting.name()
            }
        };
        let q = |xs: Vec<f64>| (median(xs.clone()), quartile(&xs, 0.25), quartile(&xs, 0.75));
        println!(
            "workers={workers}: FRONTIER (ratios to V8's default in the same round: median \
             [quartiles] of {rounds}; V8's medians {:.0} req/s, {:.0} MiB peak PSS per worker, \
             {:.3} CPU ms/req)",
            v.rps, v.worker_peak_pss, v.cpu_per_request
        );
        println!(
            "  {:<15} {:<22} {:<22} {:>6} {:>7} {:>7}",
            "setting", "peak PSS/worker", "req/s", "CPU/rq", "MiB", "req/s"
        );
        for j in 0..points.len() {
            let (mem, rps, cpu, mib, abs_rps) = if j == 0 {
                let one = (1.0, 1.0, 1.0);
                (one, one, one, v.worker_peak_pss, v.rps)
            } else {
                let s = &swept[j - 1];
                let m = median_run(&s.runs);
                (
                    q(s.paired.iter().map(|p| p.1).collect()),
                    q(s.paired.iter().map(|p| p.0).collect()),
                    q(s.paired.iter().map(|p| p.2).collect()),
                    m.worker_peak_pss,
                    m.rps,
                )
            };
            println!(
                "  {:<15} {:>4.2} [{:.2}-{:.2}]       {:>4.2} [{:.2}-{:.2}]       {:>6.2} \
                 {mib:>7.0} {abs_rps:>7.0} {}{}",
                name(j),
                mem.0,
                mem.1,
                mem.2,
                rps.0,
                rps.1,
                rps.2,
                cpu.0,
                if on_frontier(j) { " frontier" } else { "" },
                if j == chosen { " CHOSEN" } else { "" },
            );
        }
        let is_default = chosen == 1;
        let (cm, cr) = points[chosen];
        let met = cm <= GOAL_MEMORY && cr >= GOAL_RPS;
        goal_lines.push(format!(
            "workers={workers}: chosen {} ({cm:.2} of V8's peak PSS per worker, {cr:.2} of its \
             req/s); the charm's default {} {} the choice; goal (<= {GOAL_MEMORY:.2} at >= \
             {GOAL_RPS:.2}) {} by the choice, {} by the charm's default ({:.2}, {:.2})",
            name(chosen),
            swept[0].setting.flags.label(),
            if is_default { "IS" } else { "is NOT" },
            if met { "met" } else { "NOT met" },
            if points[1].0 <= GOAL_MEMORY && points[1].1 >= GOAL_RPS {
                "met"
            } else {
                "NOT met"
            },
            points[1].0,
            points[1].1,
        ));
    }
    println!("the rule (lowest peak PSS per worker among the settings at >= {GOAL_RPS:.2} of V8's req/s, medians of the round-by-round ratios):");
    for l in &goal_lines {
        println!("  {l}");
    }
    let (c1, cn) = (&charm_runs[0], &charm_runs[charm_runs.len() - 1]);
    println!(
        "throughput with the charm's defaults: workers={n_workers} / workers=1 = {:.2} \
         ({:.0} / {:.0} req/s); service PSS at peak {:.0} / {:.0} MiB",
        cn.rps / c1.rps,
        cn.rps,
        c1.rps,
        cn.service_peak_pss,
        c1.service_peak_pss
    );

    (costs, per_process_costs)
}

/// Logins per second against UV_THREADPOOL_SIZE.
fn logins(unit: &Unit, procs: &Path, cpus: usize, n_workers: usize) {
    // Logins: bcrypt on libuv's thread pool (native @node-rs/bcrypt) or on the main thread
    // (bcryptjs).
    println!("\n== POST /parse/login (bcrypt), UV_THREADPOOL_SIZE");
    let release = "/opt/parse-server/releases/9.10.0/node_modules";
    let native_installed = unit.path(&format!("{release}/@node-rs/bcrypt")).is_dir();
    let platform_pkgs: Vec<String> = std::fs::read_dir(unit.path(&format!("{release}/@node-rs")))
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with("bcrypt-"))
                .collect()
        })
        .unwrap_or_default();
    let bcryptjs_installed = unit.path(&format!("{release}/bcryptjs")).is_dir();
    let password = random_alnum(20);
    let (code, body) = unit.http(
        "POST",
        &format!("{BASE}/users"),
        &[
            ("X-Parse-Application-Id", APP_ID),
            ("Content-Type", "application/json"),
        ],
        Some(&serde_json::json!({"username": "bench-login", "password": password}).to_string()),
    );
    assert_eq!(code, 201, "sign-up: {body}");
    let login_body = serde_json::json!({"username": "bench-login", "password": password});
    let login_script = wrk_script(
        unit,
        "wrk-login.lua",
        &format!(
            "wrk.method = \"POST\"\nwrk.body = {}\nwrk.headers[\"X-Parse-Application-Id\"] = \
             \"{APP_ID}\"\nwrk.headers[\"Content-Type\"] = \"application/json\"\n",
            serde_json::to_string(&login_body.to_string()).unwrap()
        ),
    );
    let login_url = format!("{BASE}/login");
    let mut maps_native = false;
    let mut login_rows: Vec<(usize, Option<usize>, f64)> = Vec::new();
    let doubled = 2 * cpus;
    // (workers, UV_THREADPOOL_SIZE): the asked comparison at the charm's default workers,
    // and one worker with a pool of 1 against the default, which shows whether the pool is
    // on the login path at all. Rounds in alternating order, so that each comparison's two
    // runs are adjacent in time.
    let cases: Vec<(usize, Option<usize>)> = vec![
        (n_workers, None),
        (n_workers, Some(doubled)),
        (1, None),
        (1, Some(1)),
    ];
    let mut current_workers = n_workers;
    for round in 0..LOGIN_ROUNDS {
        let mut order = cases.clone();
        if round % 2 == 1 {
            order.reverse();
        }
        for (workers, pool) in order {
            if workers != current_workers {
                set_workers(unit, workers);
                current_workers = workers;
            }
            let expect = expected_processes(workers);
            set_drop_in(
                unit,
                pool.map(|n| format!("[Service]\nEnvironment=UV_THREADPOOL_SIZE={n}\n"))
                    .as_deref(),
            );
            restart(unit, procs, expect);
            let pids = service_pids(procs);
            for pid in &pids {
                assert_eq!(
                    environ_var(*pid, "UV_THREADPOOL_SIZE"),
                    pool.map(|n| n.to_string()),
                    "pid {pid}"
                );
            }
            let _warm = wrk(unit, &login_script, &login_url, 8, 2);
            let gauge = cpu_gauge_ms();
            let cpu0 = service_cpu_ms(procs);
            let (r, logins) = wrk_counts(unit, &login_script, &login_url, 8, 8);
            let cpu_per_login = (service_cpu_ms(procs) - cpu0) / logins;
            let threads: Vec<String> = pids.iter().map(|p| threads(*p).to_string()).collect();
            maps_native |= pids.iter().any(|p| {
                std::fs::read_to_string(format!("/proc/{p}/maps"))
                    .is_ok_and(|m| m.contains("bcrypt") && m.contains(".node"))
            });
            let label = pool.map_or("unset (libuv: 4)".to_owned(), |n| n.to_string());
            println!(
                "  round {} workers={workers} UV_THREADPOOL_SIZE={label:<16}: {r:>6.1} logins/s, \
                 {cpu_per_login:.0} CPU ms/login; threads per process after the load [{}]; CPU \
                 gauge {gauge:.0} ms",
                round + 1,
                threads.join(", ")
            );
            login_rows.push((workers, pool, r));
        }
    }
    set_drop_in(unit, None);
    restart(unit, procs, expected_processes(current_workers));
    let rates = |w: usize, p: Option<usize>| -> Vec<f64> {
        login_rows
            .iter()
            .filter(|(a, b, _)| *a == w && *b == p)
            .map(|r| r.2)
            .collect()
    };
    let login_ratio = |w: usize, a: Option<usize>, b: Option<usize>| -> (f64, Vec<f64>) {
        let per_round: Vec<f64> = rates(w, a)
            .iter()
            .zip(rates(w, b))
            .map(|(x, y)| x / y)
            .collect();
        (median(per_round.clone()), per_round)
    };
    println!(
        "bcrypt: @node-rs/bcrypt {} ({}), bcryptjs {}; the processes map {}",
        if native_installed {
            "installed"
        } else {
            "absent"
        },
        if platform_pkgs.is_empty() {
            "no platform package".to_owned()
        } else {
            platform_pkgs.join(", ")
        },
        if bcryptjs_installed {
            "installed"
        } else {
            "absent"
        },
        if maps_native {
            "the native module (bcrypt.*.node): native bcrypt on libuv's thread pool"
        } else {
            "no native bcrypt module: bcryptjs on the main thread"
        }
    );
    for (w, p) in &cases {
        println!(
            "workers={w} UV_THREADPOOL_SIZE={}: median {:.1} logins/s",
            p.map_or("unset".to_owned(), |n| n.to_string()),
            median(rates(*w, *p))
        );
    }
    let fmt = |xs: &[f64]| {
        xs.iter()
            .map(|x| format!("{x:.2}"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let (r, per) = login_ratio(n_workers, Some(doubled), None);
    println!(
        "workers={n_workers}: UV_THREADPOOL_SIZE={doubled} / unset = {r:.2} (rounds [{}]){}",
        fmt(&per),
        if doubled == 4 {
            " (2x the CPUs is libuv's default 4 on this machine: the same setting twice, the \
             ratio shows the noise)"
        } else {
            ""
        }
    );
    let (r, per) = login_ratio(1, Some(1), None);
    println!(
        "workers=1: UV_THREADPOOL_SIZE=1 / unset = {r:.2} (rounds [{}])",
        fmt(&per)
    );
    println!(
        "unset: workers={n_workers} / workers=1 = {:.2}",
        median(rates(n_workers, None)) / median(rates(1, None))
    );
}

fn status_figure(when: &str, costs: &FigureCosts, our_ms: Option<f64>, n_workers: usize) {
    let (costs, per_process_costs) = costs;
    println!(
        "\n== the memory figure in the status ({when}): cgroup.procs + every process's /proc/<pid>/status \
         (resident, files once), against cgroup.procs + every smaps_rollup (PSS, what \
         memory-report reads), alternating"
    );
    for (c, each) in costs.iter().zip(per_process_costs) {
        let (r, p) = (median(c.resident_ms.clone()), median(c.pss_ms.clone()));
        println!(
            "{} process{}: resident median {r:.3} ms (p90 {:.3}), PSS median {p:.3} ms (p90 \
             {:.3}) over {} runs each: cost ratio {:.3}; figures {:.0} MiB resident, {:.0} MiB \
             PSS (ratio {:.2}); the PSS read one process at a time: {}",
            c.processes,
            if c.processes == 1 { "" } else { "es" },
            percentile(c.resident_ms.clone(), 0.9),
            percentile(c.pss_ms.clone(), 0.9),
            c.resident_ms.len(),
            r / p,
            c.resident_kib as f64 / 1024.0,
            c.pss_kib as f64 / 1024.0,
            c.resident_kib as f64 / c.pss_kib.max(1) as f64,
            each.iter()
                .map(|(role, rss, maps, ms)| format!(
                    "{role} (RSS {rss:.0} MiB, {maps} mappings) {ms:.3} ms"
                ))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    if let (Some(our_ms), Some(last)) = (our_ms, costs.last()) {
        println!(
            "update-status median {our_ms:.1} ms ({n_workers} workers): the figure's reads are \
             {:.1}% of it (the PSS read would be {:.1}%)",
            100.0 * median(last.resident_ms.clone()) / our_ms,
            100.0 * median(last.pss_ms.clone()) / our_ms
        );
    }
}
