//! Workers, heap and memory limit sized to the machine; the memory figure in the status; the
//! memory-report action.

use parse_server_charm::juju::StatusKind;
use parse_server_charm::workload::sizing::Machine;

use crate::harness::{hook, On, World};

fn on(tag: &str, cpus: u32, memory_mib: u64) -> World {
    let mut w = World::new(tag);
    w.machine = Machine { cpus, memory_mib };
    w.relate_mongodb();
    w
}

fn unit_line<'a>(unit: &'a str, key: &str) -> &'a str {
    unit.lines()
        .find(|l| l.starts_with(&format!("{key}=")))
        .unwrap_or_else(|| panic!("no {key}= in the unit"))
}

#[test]
fn defaults_follow_the_machine() {
    for (cpus, gib, workers, heap, max, high, status) in [
        (1, 1, 1, 619, "768M", "691M", "1 worker, 190 MiB"),
        (2, 4, 2, 1024, "3072M", "2764M", "2 workers, 490 MiB"),
        (8, 16, 8, 1024, "12288M", "11059M", "8 workers, 1390 MiB"),
    ] {
        let w = hook(
            on(&format!("size-{cpus}"), cpus, gib * 1024),
            "config-changed",
        );
        w.assert_status(StatusKind::Active, status);
        let unit = w.file("/etc/systemd/system/parse-server.service").unwrap();
        assert!(
            unit_line(&unit, "ExecStart").contains(&format!(
                "--max-old-space-size={heap} --max-semi-space-size=8 "
            )),
            "{unit}"
        );
        assert_eq!(unit_line(&unit, "MemoryMax"), format!("MemoryMax={max}"));
        assert_eq!(unit_line(&unit, "MemoryHigh"), format!("MemoryHigh={high}"));
        let o = w.options();
        if workers > 1 {
            assert_eq!(o["cluster"], workers);
        } else {
            assert!(
                o.get("cluster").is_none(),
                "one worker runs without the master"
            );
        }
    }
}

#[test]
fn a_memory_limit_sizes_the_workers_under_it() {
    let mut w = on("limit", 8, 16 * 1024);
    w.set("memory-limit", 2048);
    let w = hook(w, "config-changed");
    w.assert_status(StatusKind::Active, "5 workers");
    let unit = w.file("/etc/systemd/system/parse-server.service").unwrap();
    assert_eq!(unit_line(&unit, "MemoryMax"), "MemoryMax=2048M");
    assert_eq!(unit_line(&unit, "MemoryHigh"), "MemoryHigh=1843M");
}

#[test]
fn settings_that_cannot_fit_are_refused_with_the_arithmetic() {
    let mut w = hook(on("too-big", 2, 4096), "config-changed");
    let running = w.running_options();
    w.set("workers", 8).set("node-max-old-space-size", 2048);
    let mut w = hook(w, "config-changed");
    w.assert_status(
        StatusKind::Blocked,
        "invalid config: workers, node-max-old-space-size: 8 × (2048+72) + 64 = 17024 MiB > 2764 MiB (MemoryHigh, 90% of 3072 MiB)",
    );
    assert_eq!(
        w.running_options(),
        running,
        "the last good configuration serves"
    );
    w.unset("workers").unset("node-max-old-space-size");
    w.set("memory-limit", 8192);
    let mut w = hook(w, "config-changed");
    w.assert_status(
        StatusKind::Blocked,
        "invalid config: memory-limit: 8192 MiB is more than the machine's 4096 MiB",
    );
    w.unset("memory-limit");
    // Explicit settings that fit are honoured.
    w.set("workers", 3).set("node-max-old-space-size", 512);
    let w = hook(w, "config-changed");
    w.assert_status(StatusKind::Active, "3 workers");
    let unit = w.file("/etc/systemd/system/parse-server.service").unwrap();
    assert!(
        unit_line(&unit, "ExecStart").contains("--max-old-space-size=512 --max-semi-space-size=8 ")
    );
}

#[test]
fn the_semi_space_size_is_the_operators_where_set() {
    let mut w = hook(on("semi", 2, 4096), "config-changed");
    w.set("node-max-semi-space-size", 16);
    let w = hook(w, "config-changed");
    w.assert_status(StatusKind::Active, "2 workers");
    let unit = w.file("/etc/systemd/system/parse-server.service").unwrap();
    assert!(
        unit_line(&unit, "ExecStart")
            .contains("--max-old-space-size=1024 --max-semi-space-size=16 "),
        "{unit}"
    );
    // Too big for the machine with the other settings: refused, the option named.
    let mut w = w;
    w.set("node-max-semi-space-size", 256)
        .set("node-max-old-space-size", 2048)
        .set("workers", 2);
    let w = hook(w, "config-changed");
    w.assert_status(
        StatusKind::Blocked,
        "invalid config: workers, node-max-old-space-size, node-max-semi-space-size: 2 × (2048+816) + 64 = 5792 MiB > 2764 MiB",
    );
}

#[test]
fn memory_report_names_every_process_and_the_caps() {
    let w = hook(on("report", 2, 4096), "config-changed");
    let w = hook(w, On::action("memory-report"));
    let r = w.action_results.clone().expect("results");
    assert_eq!(r["processes"], "3");
    assert_eq!(r["total-pss-mib"], "510");
    // The status's figure: each process's own 150 MiB, the node binary's 40 MiB once.
    assert_eq!(r["total-resident-mib"], "490");
    assert_eq!(r["process-100.role"], "master");
    assert_eq!(r["process-101.role"], "worker");
    assert_eq!(r["process-102.pss-mib"], "170");
    assert_eq!(r["process-102.anonymous-mib"], "120");
    assert_eq!(r["process-102.heap-used-mib"], "60");
    assert_eq!(r["process-102.heap-limit-mib"], "304");
    assert_eq!(r["caps.workers"], "2");
    assert_eq!(r["caps.heap-mib"], "1024");
    assert_eq!(r["caps.semi-space-mib"], "8");
    assert_eq!(r["caps.memory-max-mib"], "3072");
    assert_eq!(r["caps.memory-high-mib"], "2764");
}

#[test]
fn a_machine_too_small_for_one_worker_is_said_whatever_the_settings_and_names_memory_limit() {
    // 256 MiB: 75% is the limit, 90% of that the budget: 172 MiB, less than one worker at
    // the smallest heap. Sized to the machine or asked for, the same worker is refused (it
    // would run over the limit the status claims), and the message names the lever.
    let w = hook(on("small-auto", 1, 256), "config-changed");
    w.assert_status(
        StatusKind::Blocked,
        "invalid config: memory-limit: 1 × (128+72) = 200 MiB > 172 MiB (MemoryHigh, 90% of 192 MiB): raise it (up to the machine's 256 MiB)",
    );
    let mut w = on("small-one", 1, 256);
    w.set("workers", 1);
    let w = hook(w, "config-changed");
    w.assert_status(
        StatusKind::Blocked,
        "invalid config: workers: 1 × (128+72) = 200 MiB > 172 MiB (MemoryHigh, 90% of 192 MiB); or raise memory-limit (up to 256 MiB)",
    );
    assert!(!w.active);
    // The whole machine as the limit holds one worker.
    let mut w = on("small-whole", 1, 256);
    w.set("memory-limit", 256);
    let w = hook(w, "config-changed");
    w.assert_status(StatusKind::Active, "1 worker");
    // Too small whatever the limit: said as the machine's, not as a config value.
    let w = hook(on("tiny", 1, 128), "config-changed");
    w.assert_status(
        StatusKind::Blocked,
        "this machine's 128 MiB cannot hold one parse-server worker",
    );
    // The options the operator set are the ones named.
    let mut w = on("named", 2, 4096);
    w.set("memory-limit", 256)
        .set("node-max-old-space-size", 65536);
    let w = hook(w, "config-changed");
    w.assert_status(
        StatusKind::Blocked,
        "invalid config: node-max-old-space-size, memory-limit: 1 × (65536+72) = 65608 MiB",
    );
}
