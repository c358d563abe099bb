//! `make bench`: figures for the charm on a simulated unit against real parse-server and
//! mongo-java-server. Every figure is printed next to a baseline measured in the same run, as
//! a ratio, because these machines are noisy. Nothing here asserts on time.

#[path = "../tests/e2e/support.rs"]
mod support;

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use serde_json::Value;
use support::{sim, start_mongo_java_server, Unit};

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
    xs.sort_by(|a, b| a.partial_cmp(b).unwrap());
    xs.get(xs.len() / 2).copied().unwrap_or(f64::NAN)
}

/// The peak RSS of the dispatch process itself, as seen by its hook tools (VmHWM of their
/// parent), over one hook's tool calls.
fn dispatch_vmhwm_kb(dir: &Path, hook: &str) -> Option<f64> {
    std::fs::read_to_string(dir.join("tool-calls.log"))
        .ok()?
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["hook"] == hook)
        .filter_map(|v| v["parent_vmhwm_kb"].as_f64())
        .reduce(f64::max)
}

/// A charm whose dispatch only sets a status: the floor any hook pays (process start plus
/// one hook-tool round trip) on this machine, right now.
fn baseline_update_status(runs: usize) -> Vec<(f64, f64)> {
    let dir =
        Path::new(support::REPO).join(format!("target/e2e/bench-baseline-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let charm = dir.join("charm");
    std::fs::create_dir_all(&charm).unwrap();
    std::fs::write(
        charm.join("metadata.yaml"),
        "name: baseline\nsummary: s\ndescription: d\n",
    )
    .unwrap();
    let dispatch = charm.join("dispatch");
    std::fs::write(&dispatch, "#!/bin/sh\nexec status-set active ok\n").unwrap();
    Command::new("chmod")
        .arg("755")
        .arg(&dispatch)
        .status()
        .unwrap();
    let unit = dir.join("unit");
    let ok = Command::new(sim())
        .args(["init"])
        .arg(&unit)
        .arg("--charm-dir")
        .arg(&charm)
        .status()
        .unwrap();
    assert!(ok.success());
    for _ in 0..runs {
        let s = Command::new(sim())
            .arg("hook")
            .arg(&unit)
            .arg("update-status")
            .output()
            .unwrap();
        assert!(s.status.success());
    }
    let times = hook_times(&unit, "update-status");
    let _ = std::fs::remove_dir_all(&dir);
    times
}

fn wrk(unit: &Unit, port: u16, seconds: u32) -> f64 {
    let script = unit.dir.join("wrk.lua");
    std::fs::write(
        &script,
        "wrk.headers[\"X-Parse-Application-Id\"] = \"bench\"\n",
    )
    .unwrap();
    let url = format!("http://127.0.0.1:{port}/parse/classes/GameScore?limit=10");
    let out = unit.exec(&[
        "wrk",
        "-t2",
        "-c32",
        &format!("-d{seconds}s"),
        "-s",
        script.to_str().unwrap(),
        &url,
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains("Non-2xx"), "wrk saw errors:\n{text}");
    text.lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no Requests/sec in wrk output:\n{text}"))
}

/// `(pid, rss, pss, anonymous)` in MiB for each parse-server process in the unit.
fn worker_memory(unit: &Unit) -> Vec<(u32, f64, f64, f64)> {
    unit.parse_server_pids()
        .into_iter()
        .map(|pid| {
            let out = unit.exec(&["cat", &format!("/proc/{pid}/smaps_rollup")]);
            let text = String::from_utf8_lossy(&out.stdout);
            let field = |name: &str| -> f64 {
                text.lines()
                    .find_map(|l| l.strip_prefix(name))
                    .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
                    .unwrap_or(0.0)
                    / 1024.0
            };
            (pid, field("Rss:"), field("Pss:"), field("Anonymous:"))
        })
        .collect()
}

fn main() {
    let charm = support::packed_charm();
    println!(
        "packed charm: {} ({:.2} MiB)",
        charm.display(),
        std::fs::metadata(&charm).unwrap().len() as f64 / 1048576.0
    );

    let mut unit = Unit::deploy("bench");
    start_mongo_java_server(&mut unit, 27017);

    // Deploy to serving.
    let t0 = Instant::now();
    unit.hook("install", &[]);
    let installed = t0.elapsed().as_secs_f64();
    unit.hook("leader-elected", &[]);
    unit.config(&["app-id=bench"]);
    unit.hook("config-changed", &[]);
    unit.hook("start", &[]);
    unit.relate_mongodb("127.0.0.1", 27017);
    let serving = t0.elapsed().as_secs_f64();
    unit.assert_status("active", "serving");
    println!("\n== deploy to serving (install -> active)");
    println!("install hook (npm ci of 444 packages through the proxy): {installed:.1} s");
    println!(
        "install -> active: {serving:.1} s; charm work after install: {:.1} s ({:.2} of the total)",
        serving - installed,
        (serving - installed) / serving
    );

    // update-status when nothing changed, against the null-charm floor.
    const RUNS: usize = 20;
    for _ in 0..RUNS {
        unit.hook("update-status", &[]);
    }
    let ours = hook_times(&unit.dir, "update-status");
    let base = baseline_update_status(RUNS);
    let (our_ms, our_rss) = (
        median(ours.iter().map(|t| t.0).collect()),
        median(ours.iter().map(|t| t.1).collect()),
    );
    let (base_ms, base_rss) = (
        median(base.iter().map(|t| t.0).collect()),
        median(base.iter().map(|t| t.1).collect()),
    );
    let calls = std::fs::read_to_string(unit.dir.join("tool-calls.log"))
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("\"hook\":\"update-status\""))
        .count() as f64
        / RUNS as f64;
    println!("\n== update-status with nothing changed (median of {RUNS})");
    println!(
        "wall time: {our_ms:.1} ms; null-charm baseline {base_ms:.1} ms; ratio {:.1}",
        our_ms / base_ms
    );
    println!("hook tools called per update-status: {calls:.0}");
    println!(
        "peak RSS of the hook's process tree (wait4): {:.1} MiB; baseline {:.1} MiB",
        our_rss / 1024.0,
        base_rss / 1024.0
    );
    match dispatch_vmhwm_kb(&unit.dir, "update-status") {
        Some(kb) => println!(
            "peak RSS of dispatch itself (VmHWM seen by its last hook tool): {:.1} MiB",
            kb / 1024.0
        ),
        None => println!("peak RSS of dispatch itself: not recorded by this jujusim"),
    }

    // Throughput and memory: one worker, then two (parse-server's cluster mode).
    let key = unit.master_key();
    for i in 0..20 {
        let body = format!("{{\"score\":{i}}}");
        let (code, _) = unit.http(
            "POST",
            "http://127.0.0.1:1337/parse/classes/GameScore",
            &[
                ("X-Parse-Application-Id", "bench"),
                ("X-Parse-Master-Key", &key),
                ("Content-Type", "application/json"),
            ],
            Some(&body),
        );
        assert_eq!(code, 201);
    }
    println!("\n== GET /parse/classes/GameScore?limit=10, wrk -t2 -c32 -d8s");
    let mut rps = Vec::new();
    for workers in [1u32, 2] {
        unit.config(&[&format!("workers={workers}")]);
        unit.hook("config-changed", &[]);
        unit.assert_status("active", "serving");
        let _warm = wrk(&unit, 1337, 2);
        let r = wrk(&unit, 1337, 8);
        rps.push(r);
        let mem = worker_memory(&unit);
        println!("workers={workers}: {r:.0} req/s; processes (master first if any):");
        for (pid, rss, pss, anon) in &mem {
            println!("  pid {pid}: RSS {rss:.0} MiB, PSS {pss:.0} MiB, anonymous {anon:.0} MiB");
        }
        let total_pss: f64 = mem.iter().map(|m| m.2).sum();
        println!(
            "  total PSS {total_pss:.0} MiB, {:.0} MiB per serving worker",
            total_pss / workers as f64
        );
    }
    println!(
        "throughput ratio workers=2 / workers=1: {:.2} (this machine has {} CPUs)",
        rps[1] / rps[0],
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    unit.teardown();
}
