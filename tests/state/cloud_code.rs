//! Cloud Code from the `cloud-code` resource: none, empty, a revision, a new revision, and
//! every way one is refused (hostile, malformed, code that does not load, Juju unable to
//! provide it) while the code that runs keeps running.

use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::PathBuf;

use parse_server_charm::juju::StatusKind;

use crate::harness::{hook, run, serving, Exit, On, World};

const MAIN: &str = "Parse.Cloud.define('hello', () => 'hi');\n";

/// A .tar.gz of `files` (name, content, mode).
fn targz(files: &[(&str, &str, u32)]) -> Vec<u8> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut b = tar::Builder::new(gz);
    for (name, body, mode) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(body.len() as u64);
        h.set_mode(*mode);
        h.set_entry_type(tar::EntryType::Regular);
        h.set_cksum();
        b.append_data(&mut h, name, body.as_bytes()).unwrap();
    }
    b.into_inner().unwrap().finish().unwrap()
}

/// A .tar.gz with one entry whose raw name is `name` (what `tar::Builder` would refuse).
fn targz_raw_name(name: &str) -> Vec<u8> {
    let mut h = tar::Header::new_old();
    h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
    h.set_size(4);
    h.set_mode(0o644);
    h.set_entry_type(tar::EntryType::Regular);
    h.set_cksum();
    let mut raw = h.as_bytes().to_vec();
    raw.extend_from_slice(b"evil");
    raw.resize(raw.len() + 508 + 1024, 0);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&raw).unwrap();
    gz.finish().unwrap()
}

/// Attaches `bytes` as the resource (a new file, as Juju downloads each revision).
fn attach(w: &mut World, bytes: &[u8]) -> PathBuf {
    let dir = w.root.join("var/lib/juju/resources/cloud-code");
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("cloud-code.archive");
    std::fs::write(&f, bytes).unwrap();
    w.resources.insert("cloud-code".into(), f.clone());
    f
}

fn digest(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .take(6)
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn cloud_option(w: &World) -> Option<String> {
    w.running_options()?["cloud"].as_str().map(str::to_owned)
}

/// A unit serving Cloud Code revision `main`; returns its digest.
fn serving_code(tag: &str, main: &str) -> (World, String) {
    let mut w = serving(tag);
    let archive = targz(&[("main.js", main, 0o644)]);
    attach(&mut w, &archive);
    let w = hook(w, "upgrade-charm");
    let d = digest(&archive);
    w.assert_status(StatusKind::Active, &format!("cloud code {d}"));
    (w, d)
}

#[test]
fn no_resource_or_an_empty_one_serves_no_cloud_code() {
    let w = serving("cloud-none");
    assert_eq!(cloud_option(&w), None);
    let mut w = w;
    attach(&mut w, b"");
    let w = hook(w, "upgrade-charm");
    w.assert_status(StatusKind::Active, "serving");
    assert!(!w.statuses.last().unwrap().message.contains("cloud code"));
    assert_eq!(cloud_option(&w), None);
    assert_eq!(w.restarts, 1, "an empty resource changes nothing");
}

#[test]
fn a_revision_is_unpacked_once_root_owned_read_only_and_loaded_once() {
    let (w, d) = serving_code("cloud-serve", MAIN);
    assert_eq!(
        cloud_option(&w).as_deref(),
        Some(format!("/opt/parse-server/cloud/{d}/main.js").as_str())
    );
    let dir = w.root.join(format!("opt/parse-server/cloud/{d}"));
    let main = std::fs::metadata(dir.join("main.js")).unwrap();
    assert_eq!(main.uid(), 0);
    assert_eq!(main.permissions().mode() & 0o7777, 0o644);
    assert_eq!(
        std::fs::metadata(&dir).unwrap().permissions().mode() & 0o7777,
        0o755
    );
    assert_eq!(std::fs::read_to_string(dir.join("main.js")).unwrap(), MAIN);
    assert_eq!(w.cloud_code_checks, 1);
    let restarts = w.restarts;
    let w = hook(w, "config-changed");
    let w = hook(w, "upgrade-charm");
    assert_eq!(w.restarts, restarts, "the same revision restarts nothing");
    assert_eq!(w.cloud_code_checks, 1, "a revision is loaded once");
    let w = hook(w, "update-status");
    w.assert_status(StatusKind::Active, &format!("cloud code {d}"));
}

#[test]
fn a_new_revision_rolls_out_and_the_previous_stays_beside_it_until_the_next() {
    let (mut w, d1) = serving_code("cloud-revisions", MAIN);
    let v2 = targz(&[("main.js", "Parse.Cloud.define('v', () => 2);\n", 0o644)]);
    attach(&mut w, &v2);
    let w = hook(w, "upgrade-charm");
    let d2 = digest(&v2);
    w.assert_status(StatusKind::Active, &format!("cloud code {d2}"));
    assert!(cloud_option(&w).unwrap().contains(&d2));
    let cloud = w.root.join("opt/parse-server/cloud");
    assert!(cloud.join(&d1).is_dir(), "the previous revision stays");
    let mut w = w;
    let v3 = targz(&[("main.js", "Parse.Cloud.define('v', () => 3);\n", 0o644)]);
    attach(&mut w, &v3);
    let w = hook(w, "upgrade-charm");
    let d3 = digest(&v3);
    w.assert_status(StatusKind::Active, &format!("cloud code {d3}"));
    let mut left: Vec<String> = std::fs::read_dir(&cloud)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    let mut want = vec![d2, d3];
    want.sort();
    assert_eq!(
        left, want,
        "only the running revision and the one before it"
    );
}

#[test]
fn a_bundled_node_modules_is_used_as_it_is_with_no_npm() {
    // The harness has no npm: a run of `npm ci` would fail the hook's preparation.
    let mut w = serving("cloud-bundled");
    let archive = targz(&[
        ("main.js", "const pad = require('left-pad');\n", 0o644),
        (
            "package.json",
            r#"{"dependencies": {"left-pad": "1.3.0"}}"#,
            0o644,
        ),
        (
            "node_modules/left-pad/index.js",
            "module.exports = (s) => s;\n",
            0o644,
        ),
        (
            "node_modules/left-pad/package.json",
            r#"{"name": "left-pad"}"#,
            0o644,
        ),
    ]);
    attach(&mut w, &archive);
    let w = hook(w, "upgrade-charm");
    w.assert_status(
        StatusKind::Active,
        &format!("cloud code {}", digest(&archive)),
    );
    let unpacked = w.root.join(format!(
        "opt/parse-server/cloud/{}/node_modules/left-pad/index.js",
        digest(&archive)
    ));
    assert!(unpacked.is_file());
}

#[test]
fn an_es_module_is_imported() {
    let mut w = serving("cloud-esm");
    attach(
        &mut w,
        &targz(&[
            ("package.json", r#"{"type": "module"}"#, 0o644),
            (
                "main.js",
                "Parse.Cloud.define('m', async () => 1);\n",
                0o644,
            ),
        ]),
    );
    let w = hook(w, "upgrade-charm");
    w.assert_status(StatusKind::Active, "cloud code");
    let unit = w.file("/etc/systemd/system/parse-server.service").unwrap();
    assert!(unit.contains("\nEnvironment=npm_package_type=module\n"));
}

/// `bytes` attached to a unit serving `MAIN`: blocked with `why`, and the service still runs
/// the first revision, never restarted.
fn refused(tag: &str, bytes: &[u8], why: &str) -> World {
    let (mut w, d1) = serving_code(tag, MAIN);
    let restarts = w.restarts;
    let running = w.running_config.clone();
    attach(&mut w, bytes);
    let w = hook(w, "upgrade-charm");
    w.assert_status(
        StatusKind::Blocked,
        &format!("cloud-code resource {}", digest(bytes)),
    );
    w.assert_status(StatusKind::Blocked, why);
    assert_eq!(w.restarts, restarts);
    assert_eq!(w.running_config, running);
    assert!(cloud_option(&w).unwrap().contains(&d1));
    let partial: Vec<_> = std::fs::read_dir(w.root.join("opt/parse-server/cloud"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n.to_string_lossy() != d1)
        .collect();
    assert!(partial.is_empty(), "nothing of it is left: {partial:?}");
    w
}

#[test]
fn a_hostile_archive_is_refused_and_nothing_lands_outside() {
    let w = refused("cloud-dotdot", &targz_raw_name("../../evil.js"), "leaves");
    assert!(!w.root.join("opt/parse-server/evil.js").exists());
    assert!(!w.root.join("opt/evil.js").exists());
    let w = refused("cloud-abs", &targz_raw_name("/etc/evil.js"), "absolute");
    assert!(!w.root.join("etc/evil.js").exists());
    refused(
        "cloud-setuid",
        &targz(&[("main.js", MAIN, 0o4755)]),
        "setuid",
    );
    refused(
        "cloud-junk",
        b"this is not an archive",
        "not a .tar.gz or .zip archive",
    );
}

#[test]
fn an_archive_without_main_js_at_its_root_is_refused_with_a_hint() {
    refused(
        "cloud-nested",
        &targz(&[("app/main.js", MAIN, 0o644)]),
        "main.js is in \"app\"/, not at the archive's root",
    );
    refused(
        "cloud-nomain",
        &targz(&[("index.js", MAIN, 0o644)]),
        "no main.js at its root",
    );
    refused(
        "cloud-nolock",
        &targz(&[
            ("main.js", MAIN, 0o644),
            (
                "package.json",
                r#"{"dependencies": {"left-pad": "1.3.0"}}"#,
                0o644,
            ),
        ]),
        "has dependencies but no package-lock.json or node_modules/",
    );
}

#[test]
fn code_that_does_not_load_is_refused_naming_its_error_once() {
    let broken = targz(&[("main.js", "BROKEN(\n", 0o644)]);
    let w = refused(
        "cloud-broken",
        &broken,
        "its code does not load: Error: BROKEN at load",
    );
    assert_eq!(w.cloud_code_checks, 2);
    let w = hook(w, "config-changed");
    w.assert_status(StatusKind::Blocked, "Error: BROKEN at load");
    assert_eq!(
        w.cloud_code_checks, 2,
        "a refused revision is not loaded again"
    );
    // A fixed revision serves.
    let mut w = w;
    let fixed = targz(&[("main.js", "Parse.Cloud.define('f', () => 1);\n", 0o644)]);
    attach(&mut w, &fixed);
    let w = hook(w, "upgrade-charm");
    w.assert_status(
        StatusKind::Active,
        &format!("cloud code {}", digest(&fixed)),
    );
}

#[test]
fn code_that_loads_but_does_not_start_rolls_back_naming_the_revision() {
    static BAD: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let (mut w, d1) = serving_code("cloud-nostart", MAIN);
    let bad = targz(&[("main.js", "// loads, then does not start\n", 0o644)]);
    BAD.set(format!("/cloud/{}/", digest(&bad))).unwrap();
    w.starts_ok = |config| !config.contains(BAD.get().unwrap().as_str());
    attach(&mut w, &bad);
    let w = hook(w, "upgrade-charm");
    w.assert_status(StatusKind::Blocked, "did not start");
    w.assert_status(StatusKind::Blocked, &format!("cloud-code {}", digest(&bad)));
    assert!(cloud_option(&w).unwrap().contains(&d1));
    assert!(w.active);
}

#[test]
fn juju_unable_to_provide_the_resource_keeps_the_running_revision() {
    let (mut w, d1) = serving_code("cloud-unavailable", MAIN);
    w.resources.clear();
    let w = hook(w, "upgrade-charm");
    w.assert_status(
        StatusKind::Waiting,
        "cloud-code resource: Juju cannot provide it",
    );
    w.assert_status(StatusKind::Waiting, &format!("{d1} runs"));
    assert!(cloud_option(&w).unwrap().contains(&d1));
    assert!(w.active);
}

#[test]
fn a_hook_killed_after_unpacking_is_finished_by_the_next() {
    let mut w = serving("cloud-killed");
    let archive = targz(&[("main.js", MAIN, 0o644)]);
    attach(&mut w, &archive);
    let (w, exit) = run(
        w,
        On::hook("upgrade-charm").abort_after("cloud-code-prepared"),
    );
    assert_eq!(exit, Exit::Killed);
    assert_eq!(w.cloud_code_checks, 0);
    let w = hook(w, "update-status");
    w.assert_status(
        StatusKind::Active,
        &format!("cloud code {}", digest(&archive)),
    );
    assert_eq!(w.cloud_code_checks, 1);
}

#[test]
fn cloud_in_extra_options_is_refused() {
    let mut w = serving("cloud-extra");
    w.set("extra-options", r#"{"cloud": "/tmp/x.js"}"#);
    let w = hook(w, "config-changed");
    w.assert_status(
        StatusKind::Blocked,
        "\"cloud\" is refused: it comes from the cloud-code resource",
    );
}
