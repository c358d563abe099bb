//! End to end on a machine without a suitable Node.js (what a fresh Ubuntu 22.04/24.04 unit
//! is): the charm downloads the pinned Node.js from `node-mirror`, checks it against the
//! mirror's SHASUMS256.txt, and serves with it. The mirror is served on the unit's loopback
//! from a tarball made of this machine's own Node in the official layout.

use std::path::Path;
use std::process::Command;

use crate::charm::{start_mongo_java_server, CharmUnit};
use jujusim::kit::Unit;

const PINNED: &str = "22.21.1";

fn sh(script: &str) {
    let out = Command::new("bash")
        .args(["-euo", "pipefail", "-c", script])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{script}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `<mirror>/v<PINNED>/node-v<PINNED>-linux-x64.tar.xz` and SHASUMS256.txt.
fn build_mirror(mirror: &Path) {
    let name = format!("node-v{PINNED}-linux-x64");
    let stage = mirror.join("stage").join(&name);
    let release = mirror.join(format!("v{PINNED}"));
    std::fs::create_dir_all(stage.join("bin")).unwrap();
    std::fs::create_dir_all(stage.join("lib/node_modules")).unwrap();
    std::fs::create_dir_all(&release).unwrap();
    sh(&format!(
        "node=$(command -v node); npm_dir=$(dirname \"$(readlink -f \"$(command -v npm)\")\")/..; \
         cp \"$node\" {stage}/bin/node; cp -a \"$npm_dir\" {stage}/lib/node_modules/npm; \
         ln -s ../lib/node_modules/npm/bin/npm-cli.js {stage}/bin/npm; \
         tar -C {parent} -cf - {name} | xz -0 -T0 > {release}/{name}.tar.xz; \
         (cd {release} && sha256sum {name}.tar.xz > SHASUMS256.txt)",
        stage = stage.display(),
        parent = stage.parent().unwrap().display(),
        release = release.display(),
    ));
    std::fs::remove_dir_all(mirror.join("stage")).unwrap();
}

#[test]
fn installs_node_from_the_mirror_when_the_machine_has_none() {
    let mut unit = Unit::deploy("node-install");
    start_mongo_java_server(&mut unit, 27017);
    let mirror = unit.dir.join("mirror");
    build_mirror(&mirror);
    unit.spawn_on_loopback(
        &[
            "python3",
            "-m",
            "http.server",
            "8099",
            "--bind",
            "127.0.0.1",
            "--directory",
            mirror.to_str().unwrap(),
        ],
        "mirror.log",
    );
    unit.wait_port(8099, std::time::Duration::from_secs(20));
    // This machine's Node disappears from the unit's view.
    let hide = unit.exec(&["mount", "--bind", "/dev/null", "/usr/bin/node"]);
    assert!(
        hide.status.success(),
        "{}",
        String::from_utf8_lossy(&hide.stderr)
    );
    assert!(!unit.exec(&["sh", "-c", "node --version"]).status.success());

    // A mirror whose download does not match its checksum: the operator's to fix (blocked,
    // naming node-mirror); the hook exits 0.
    let sums = mirror.join(format!("v{PINNED}/SHASUMS256.txt"));
    let good = std::fs::read_to_string(&sums).unwrap();
    std::fs::write(
        &sums,
        format!("{}  node-v{PINNED}-linux-x64.tar.xz\n", "0".repeat(64)),
    )
    .unwrap();
    unit.config(&["node-mirror=http://127.0.0.1:8099/", "app-id=nodeless"]);
    unit.hook("install", &[]);
    unit.assert_status("blocked", "invalid config: node-mirror:");
    unit.assert_status("blocked", "does not match its SHASUMS256.txt");
    assert!(!unit.path("/opt/parse-server/node/bin/node").exists());

    // The right checksum: Node is installed next to the release and runs the service.
    std::fs::write(&sums, good).unwrap();
    unit.hook("leader-elected", &[]);
    unit.hook("config-changed", &[]);
    unit.hook("start", &[]);
    unit.assert_status("blocked", "add a relation to mongodb");
    assert!(unit.path("/opt/parse-server/node/bin/node").is_file());
    assert!(unit.path("/opt/parse-server/node/bin/npm").exists());
    unit.relate_mongodb("127.0.0.1", 27017);
    unit.assert_status("active", "serving on port 1337");
    let service = unit.read_text("/etc/systemd/system/parse-server.service");
    assert!(
        service.contains("\nExecStart=/opt/parse-server/node/bin/node --max-old-space-size="),
        "{service}"
    );
    unit.teardown();
}
