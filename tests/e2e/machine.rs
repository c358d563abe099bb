//! End to end on booted units: what only a real systemd as the unit's PID 1 shows. The
//! rendered unit's sandbox as the running service sees it, systemd restarting a killed
//! service, a clean stop staying stopped, a reboot that brings everything back before any
//! hook runs, and machines talking over a model network.

use std::time::{Duration, Instant};

use crate::charm::{start_mongo_java_server, CharmUnit};
use jujusim::kit::{record_figure, Network, Unit};
use serde_json::Value;

const SERVICE: &str = "parse-server.service";
const HEALTH: &str = "http://127.0.0.1:1337/parse/health";

/// A unit serving from mongo-java-server on its loopback.
fn serving(name: &str, app: &str) -> Unit {
    let mut unit = Unit::deploy(name);
    start_mongo_java_server(&mut unit, 27017);
    unit.deploy_hooks(&[&format!("app-id={app}")]);
    unit.relate_mongodb("127.0.0.1", 27017);
    unit.assert_status("active", "serving");
    unit
}

/// `Name:\tvalue` lines of /proc/<pid>/status inside the unit.
fn proc_status(unit: &Unit, pid: u32) -> Vec<(String, String)> {
    unit.exec_ok(&["cat", &format!("/proc/{pid}/status")])
        .lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.to_owned(), v.trim().to_owned()))
        .collect()
}

fn field<'a>(status: &'a [(String, String)], name: &str) -> &'a str {
    status
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("no {name} in /proc/PID/status"))
}

/// `systemd-analyze security` of the service as the booted systemd has it loaded.
fn exposure(unit: &Unit) -> f64 {
    let out = unit.exec(&["systemd-analyze", "security", "--no-pager", SERVICE]);
    let report = String::from_utf8_lossy(&out.stdout);
    report
        .lines()
        .find_map(|l| {
            l.split("Overall exposure level for parse-server.service:")
                .nth(1)
        })
        .and_then(|r| r.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| {
            panic!(
                "no exposure level in:\n{report}{}",
                String::from_utf8_lossy(&out.stderr)
            )
        })
}

/// Runs `script` with sh inside the running service's own mount namespace (its
/// ProtectSystem/ProtectHome/PrivateTmp/ProtectProc view of the filesystem), as the service's
/// user and group with no capabilities: `nsenter -t <main pid> -m` enters only the mount
/// namespace systemd made for the service, and `setpriv` drops to its uid/gid, clears the
/// supplementary groups, the inheritable and bounding capability sets and sets no_new_privs.
/// The probe is not the service process itself (it has none of the service's seccomp filter
/// or resource settings), but every path it opens is resolved exactly as the service's are.
fn probe_as_service(unit: &Unit, pid: u32, script: &str) -> Vec<(String, String)> {
    let uid = unit.exec_ok(&["id", "-u", "parse-server"]);
    let gid = unit.exec_ok(&["id", "-g", "parse-server"]);
    let out = unit.exec_ok(&[
        "nsenter",
        "-t",
        &pid.to_string(),
        "-m",
        "--",
        "setpriv",
        &format!("--reuid={}", uid.trim()),
        &format!("--regid={}", gid.trim()),
        "--clear-groups",
        "--inh-caps=-all",
        "--bounding-set=-all",
        "--no-new-privs",
        "--",
        "sh",
        "-c",
        script,
    ]);
    out.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

const PROBE: &str = r#"
try() { name=$1; shift; if out=$("$@" 2>&1); then echo "$name=ok"; else echo "$name=$out" | tr '\n' ' '; echo; fi; }
try state touch /var/lib/parse-server/.probe
rm -f /var/lib/parse-server/.probe
try etc touch /etc/.probe
try usr touch /usr/.probe
try opt touch /opt/parse-server/.probe
try var_lib touch /var/lib/.probe
try var_log touch /var/log/.probe
try juju touch /var/lib/juju/.probe
try home ls /home
try root ls /root
echo "uid=$(id -u)"
echo "proc_owners=$(for d in /proc/[0-9]*; do stat -c %u "$d"; done | sort -u | tr '\n' ' ')"
if [ -e /proc/1 ]; then echo "proc_1=visible"; else echo "proc_1=hidden"; fi
echo x > /tmp/.probe-private-tmp && echo "tmp=ok"
"#;

#[test]
fn the_sandbox_holds_in_the_running_service() {
    let unit = serving("sandbox", "sandbox");
    let pid = unit.main_pid(SERVICE);
    assert!(pid > 0, "no main PID");

    // The kernel's view of the running service: no new privileges, a seccomp filter, no
    // capabilities at all on the default port.
    let status = proc_status(&unit, pid);
    assert_eq!(field(&status, "NoNewPrivs"), "1");
    assert_eq!(field(&status, "Seccomp"), "2");
    for cap in ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"] {
        assert_eq!(field(&status, cap), "0000000000000000", "{cap}");
    }

    // The filesystem as the service sees it, probed from inside its own mount namespace.
    let probe = probe_as_service(&unit, pid, PROBE);
    println!("probe from the service's mount namespace: {probe:?}");
    let get = |k: &str| {
        probe
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("probe printed no {k}: {probe:?}"))
    };
    assert_eq!(get("state"), "ok", "its state directory is writable");
    for place in ["etc", "usr", "opt", "var_lib", "var_log", "juju"] {
        assert!(
            get(place).contains("Read-only file system"),
            "{place}: {}",
            get(place)
        );
    }
    for place in ["home", "root"] {
        assert!(
            get(place).contains("Permission denied"),
            "{place}: {}",
            get(place)
        );
    }
    let uid = get("uid");
    assert_eq!(
        get("proc_owners").trim(),
        uid,
        "only its own processes in /proc"
    );
    assert_eq!(get("proc_1"), "hidden");
    // PrivateTmp: what it writes to /tmp is not in the unit's /tmp.
    assert_eq!(get("tmp"), "ok");
    assert!(!unit.path("/tmp/.probe-private-tmp").exists());

    let default_exposure = exposure(&unit);
    record_figure(
        "exposure",
        "systemd-analyze security (booted systemd), port 1337",
        default_exposure,
        "",
    );
    assert!(default_exposure <= 2.0, "exposure {default_exposure}");

    // Its output is in the unit's journal, and no secret is.
    let key = unit.master_key();
    let journal = unit.journal(SERVICE);
    assert!(journal.contains("parse-server running on"), "{journal}");
    assert!(!journal.contains(&key), "the master key is in the journal");

    // A port below 1024 (juju config port=443): exactly CAP_NET_BIND_SERVICE.
    unit.config(&["port=443"]);
    unit.hook("config-changed", &[]);
    unit.assert_status("active", "serving on port 443");
    let pid = unit.main_pid(SERVICE);
    let status = proc_status(&unit, pid);
    const NET_BIND_SERVICE: &str = "0000000000000400"; // bit 10
    for cap in ["CapPrm", "CapEff", "CapBnd", "CapAmb"] {
        assert_eq!(field(&status, cap), NET_BIND_SERVICE, "{cap} on port 443");
    }
    assert_eq!(field(&status, "NoNewPrivs"), "1");
    assert!(unit.healthy("http://127.0.0.1:443/parse/health"));
    let low_port_exposure = exposure(&unit);
    record_figure(
        "exposure",
        "systemd-analyze security (booted systemd), port 443",
        low_port_exposure,
        "",
    );
    unit.teardown();
}

#[test]
fn a_killed_service_is_restarted_by_systemd() {
    let unit = serving("crash", "crash");
    let before = unit.main_pid(SERVICE);
    let restarts: u32 = unit.service_property(SERVICE, "NRestarts").parse().unwrap();
    let started = Instant::now();
    unit.exec_ok(&["kill", "-9", &before.to_string()]);
    let deadline = started + Duration::from_secs(60);
    loop {
        let now = unit.main_pid(SERVICE);
        if now != 0 && now != before && unit.healthy(HEALTH) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "parse-server did not come back within 60 s after SIGKILL (Restart=on-failure)"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let latency = started.elapsed();
    record_figure(
        "restart",
        "kill -9 of the main PID to health ok",
        latency.as_secs_f64() * 1000.0,
        "ms",
    );
    assert_eq!(
        unit.service_property(SERVICE, "NRestarts"),
        (restarts + 1).to_string()
    );
    unit.hook("update-status", &[]);
    unit.assert_status("active", "serving");
    unit.teardown();
}

#[test]
fn a_clean_stop_leaves_the_service_stopped_and_disabled() {
    let unit = serving("stop", "stop");
    assert_eq!(unit.service_property(SERVICE, "UnitFileState"), "enabled");
    let restarts = unit.service_property(SERVICE, "NRestarts");
    unit.hook("stop", &[]);
    // Longer than RestartSec=2: a restart would have happened by now.
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(unit.service_property(SERVICE, "ActiveState"), "inactive");
    assert_eq!(unit.service_property(SERVICE, "UnitFileState"), "disabled");
    assert_eq!(unit.service_property(SERVICE, "NRestarts"), restarts);
    assert!(unit.parse_server_pids().is_empty());
    assert!(!unit.healthy(HEALTH));
    unit.teardown();
}

/// 16 random bytes from the OS, hex.
fn random_password() -> String {
    use std::io::Read;
    let mut buf = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .unwrap()
        .read_exact(&mut buf)
        .unwrap();
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn a_reboot_brings_the_service_back_before_any_hook_runs() {
    let mut unit = Unit::deploy("reboot");
    // A PostgreSQL cluster on the unit's own disk, run by the unit's systemd and enabled
    // for boot, with a password-protected role.
    unit.exec_ok(&[
        "pg_createcluster",
        "15",
        "parse",
        "--port",
        "5433",
        "--start",
    ]);
    unit.exec_ok(&["systemctl", "enable", "postgresql@15-parse"]);
    assert_eq!(
        unit.service_property("postgresql@15-parse.service", "ActiveState"),
        "active"
    );
    let password = random_password();
    let sql = format!(
        "CREATE ROLE parse LOGIN PASSWORD '{password}';\nCREATE DATABASE parse OWNER parse;\n"
    );
    let out = unit.exec_with_input(
        &[
            "runuser",
            "-u",
            "postgres",
            "--",
            "psql",
            "-p",
            "5433",
            "-v",
            "ON_ERROR_STOP=1",
            "-q",
        ],
        sql.as_bytes(),
    );
    assert!(
        out.status.success(),
        "psql: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    unit.deploy_hooks(&["app-id=reboot"]);
    unit.config_secret(
        "database-uri",
        &format!("postgres://parse:{password}@127.0.0.1:5433/parse"),
    );
    unit.hook("config-changed", &[]);
    unit.assert_status("active", "serving on port 1337");
    let key = unit.master_key();
    let headers = [
        ("X-Parse-Application-Id", "reboot"),
        ("X-Parse-Master-Key", key.as_str()),
        ("Content-Type", "application/json"),
    ];
    for n in 0..3 {
        let (code, body) = unit.http(
            "POST",
            "http://127.0.0.1:1337/parse/classes/Thing",
            &headers,
            Some(&format!(r#"{{"n":{n}}}"#)),
        );
        assert_eq!(code, 201, "{body}");
    }
    // With a `where`: on PostgreSQL parse-server answers an unfiltered count with the
    // planner's estimate (pg_class.reltuples), which is 0 until the table is analysed.
    let count = |unit: &Unit| {
        let (code, body) = unit.http(
            "GET",
            "http://127.0.0.1:1337/parse/classes/Thing?where=%7B%22n%22%3A%7B%22%24gte%22%3A0%7D%7D&count=1&limit=0",
            &headers,
            None,
        );
        assert_eq!(code, 200, "{body}");
        serde_json::from_str::<Value>(&body).unwrap()["count"].clone()
    };
    assert_eq!(count(&unit), 3);

    // Reboot: parse-server (enabled for boot) serves again before any hook has run.
    let hooks_before = unit.hooks_run();
    let started = Instant::now();
    unit.reboot();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !unit.healthy(HEALTH) {
        assert!(
            Instant::now() < deadline,
            "parse-server does not serve 60 s after the reboot:\n{}",
            unit.journal(SERVICE)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    record_figure(
        "reboot",
        "machine-reboot to parse-server health ok",
        started.elapsed().as_secs_f64() * 1000.0,
        "ms",
    );
    assert_eq!(
        unit.hooks_run(),
        hooks_before,
        "a hook ran during the reboot"
    );
    assert_eq!(count(&unit), 3, "the objects survive the reboot");

    // The start hook Juju runs after a reboot changes nothing and reports active.
    let pid = unit.main_pid(SERVICE);
    unit.hook("start", &[]);
    unit.assert_status("active", "serving on port 1337");
    assert_eq!(
        unit.main_pid(SERVICE),
        pid,
        "the start hook restarted the service"
    );
    assert_eq!(count(&unit), 3);

    // The database password stayed off logs and command lines.
    for file in ["tool-calls.log", "hook-output.log"] {
        assert!(
            !unit.read_unit_file(file).contains(&password),
            "database password in {file}"
        );
    }
    assert!(!unit.journal(SERVICE).contains(&password));
    unit.teardown();
}

#[test]
fn two_machines_on_a_model_network_reach_each_other() {
    let mut net = Network::up("net");
    let mut a = Unit::boot("net-a", Some((&net, "10.77.0.11")));
    let b = Unit::boot("net-b", Some((&net, "10.77.0.12")));
    let alone = Unit::boot("net-alone", None);

    a.spawn_in_unit(
        &[
            "/usr/bin/python3",
            "-m",
            "http.server",
            "--bind",
            "10.77.0.11",
            "8080",
        ],
        "httpd.log",
    );
    b.wait_addr("10.77.0.11", 8080, Duration::from_secs(20));
    let (code, _) = b.http("GET", "http://10.77.0.11:8080/", &[], None);
    assert_eq!(code, 200, "b reaches the port a listens on");

    // A server on the network itself (where a database or proxy would run) answers both.
    let served = net.dir.display().to_string();
    net.spawn(
        &[
            "/usr/bin/python3",
            "-m",
            "http.server",
            "--bind",
            Network::GATEWAY,
            "8081",
            "--directory",
            &served,
        ],
        "gateway-httpd.log",
    );
    for u in [&a, &b] {
        u.wait_addr(Network::GATEWAY, 8081, Duration::from_secs(20));
    }

    // A unit without --net keeps a loopback-only network.
    let links = alone.exec_ok(&["ip", "-o", "link", "show"]);
    assert_eq!(links.lines().count(), 1, "{links}");
    assert!(links.contains(": lo:"), "{links}");
    assert!(!alone
        .exec(&["bash", "-c", "exec 3<>/dev/tcp/10.77.0.11/8080"])
        .status
        .success());

    // The unit's address is its network address: unit-get and the automatic relation keys.
    a.deploy_charm();
    let state: Value = serde_json::from_str(&a.read_unit_file("state.json")).unwrap();
    assert_eq!(state["address"], "10.77.0.11");
    let rel = String::from_utf8(a.sim("relate", &["website", "haproxy"]).stdout).unwrap();
    assert!(rel.starts_with("website:"), "{rel}");
    let bag = a.local_unit_bag("website").expect("website relation");
    assert_eq!(bag["private-address"], "10.77.0.11");
    assert_eq!(bag["ingress-address"], "10.77.0.11");

    // After a reboot, a is on the network again.
    a.reboot();
    a.spawn_in_unit(
        &[
            "/usr/bin/python3",
            "-m",
            "http.server",
            "--bind",
            "10.77.0.11",
            "8082",
        ],
        "httpd-2.log",
    );
    b.wait_addr("10.77.0.11", 8082, Duration::from_secs(20));

    alone.teardown();
    a.teardown();
    b.teardown();
    net.teardown();
}

/// A charm packed from a directory holding `metadata.yaml` and a `dispatch` shell script.
fn shell_charm(dir: &std::path::Path, name: &str, dispatch: &str) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let src = dir.join(format!("{name}-src"));
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(
        src.join("metadata.yaml"),
        format!("name: {name}\nsummary: s\ndescription: d\n"),
    )
    .unwrap();
    std::fs::write(src.join("dispatch"), dispatch).unwrap();
    std::fs::set_permissions(src.join("dispatch"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let packed = dir.join(format!("{name}.charm"));
    let ok = std::process::Command::new("zip")
        .args(["-q", "-X", "-r"])
        .arg(&packed)
        .arg(".")
        .current_dir(&src)
        .status()
        .unwrap()
        .success();
    assert!(ok, "zip of {name} failed");
    packed
}

/// The kit's `deploy_beside` (jujusim `deploy-charm --machine`): a second unit's hooks run
/// inside the first unit's machine (its files, its host name), with
/// their own tools and state; a unit dir outside the machine's is refused.
#[test]
fn a_second_unit_runs_its_hooks_inside_the_same_machine() {
    let unit = Unit::boot("beside", None);
    // Only the running machine has this file: /run is its own tmpfs.
    unit.exec_ok(&["sh", "-c", "echo inside-$$ > /run/beside-marker"]);
    let marker = unit
        .exec_ok(&["cat", "/run/beside-marker"])
        .trim()
        .to_owned();
    let hostname = unit.exec_ok(&["hostname"]).trim().to_owned();
    let charm = shell_charm(
        &unit.dir,
        "second",
        "#!/bin/sh\nexec status-set active \"$(cat /run/beside-marker) $(hostname)\"\n",
    );
    let second = unit.deploy_beside(&charm, "second/0");
    second.hook("update-status", &[]);
    let (kind, message) = second.workload();
    assert_eq!(kind, "active", "{}", second.hook_output_tail());
    assert_eq!(message, format!("{marker} {hostname}"));
    // The charm lies in the machine's agent dir; the tools logged to the second unit's dir.
    assert!(unit
        .path("/var/lib/juju/agents/unit-second-0/charm/dispatch")
        .is_file());
    assert!(second
        .read_unit_file("tool-calls.log")
        .contains("status-set"));
    assert!(!unit.dir.join("tool-calls.log").exists());

    // A unit dir the machine does not see at its own path is refused.
    let outside = unit.dir.with_file_name(format!(
        "{}-outside",
        unit.dir.file_name().unwrap().to_string_lossy()
    ));
    let out = jujusim::kit::UnitDir::at(&outside).sim(
        "deploy-charm",
        &[
            charm.to_str().unwrap(),
            "--unit",
            "second/1",
            "--machine",
            unit.dir.to_str().unwrap(),
        ],
    );
    assert!(
        !out.status.success(),
        "a unit dir outside the machine's was accepted"
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("must lie inside"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = std::fs::remove_dir_all(&outside);
    unit.teardown();
}
