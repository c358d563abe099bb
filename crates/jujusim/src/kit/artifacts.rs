//! Where the kit finds what it drives and puts what it makes: the built `jujusim` and
//! `egress-proxy` binaries, the work directory of booted units and networks, the figures a
//! test measured.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The cargo target directory and profile directory of the running test or bench binary
/// (`<target>/<profile>/deps/<name>-<hash>`, or `<target>/<profile>/<name>`).
fn target_dirs() -> Option<(PathBuf, PathBuf)> {
    let exe = std::env::current_exe().ok()?;
    let mut profile = exe.parent()?.to_path_buf();
    if profile.file_name().is_some_and(|n| n == "deps") {
        profile = profile.parent()?.to_path_buf();
    }
    let target = profile.parent()?.to_path_buf();
    Some((target, profile))
}

/// A binary of this crate: named by `var`, else built next to the running test (its profile
/// directory), else in `<target>/debug`. A missing one is a loud failure, never a skip.
fn built_binary(var: &str, name: &str) -> PathBuf {
    if let Some(p) = std::env::var_os(var) {
        let path = PathBuf::from(p);
        assert!(
            path.is_file(),
            "{var}={} does not exist: run `cargo build -p jujusim`",
            path.display()
        );
        return path;
    }
    let candidates: Vec<PathBuf> = match target_dirs() {
        Some((target, profile)) => vec![profile.join(name), target.join("debug").join(name)],
        None => Vec::new(),
    };
    candidates
        .iter()
        .find(|p| p.is_file())
        .cloned()
        .unwrap_or_else(|| {
            panic!(
                "{name} is not built (looked for {candidates:?}; {var} unset): run `cargo build -p jujusim`"
            )
        })
}

/// The simulator's binary (`JUJUSIM`, else the crate's own build).
pub fn sim() -> PathBuf {
    built_binary("JUJUSIM", "jujusim")
}

/// The egress proxy that stands in for the model's `juju-https-proxy` (`EGRESS_PROXY`, else
/// the crate's own build).
pub fn egress_proxy() -> PathBuf {
    built_binary("EGRESS_PROXY", "egress-proxy")
}

/// `jujusim` as a command with stdin from /dev/null (arguments and the rest are the
/// caller's).
pub fn jujusim() -> Command {
    let mut cmd = Command::new(sim());
    cmd.stdin(Stdio::null());
    cmd
}

/// Where booted units, networks and models keep their directories, and where figures go:
/// `JUJUSIM_WORK_DIR`, else `<target>/e2e` (the target directory of the running binary).
pub fn work_dir() -> PathBuf {
    if let Some(p) = std::env::var_os("JUJUSIM_WORK_DIR") {
        return PathBuf::from(p);
    }
    let (target, _) = target_dirs().expect("the running binary's target directory");
    target.join("e2e")
}

/// A new empty directory `<work dir>/<name>-<pid>` (what was there before is removed).
pub fn fresh_work_dir(name: &str) -> PathBuf {
    let dir = work_dir().join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    dir
}

/// Fails loudly when a prerequisite program is missing.
pub fn require(program: &str) {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        found,
        "{program} is not installed: run `bash scripts/prereqs.sh`"
    );
}

/// A figure a test measured, printed and appended to `<work dir>/figures.log` (one
/// tab-separated line: kind, what, value, unit), which a summary can read after the run.
pub fn record_figure(kind: &str, what: &str, value: f64, unit: &str) {
    println!("figure: {kind} {what} {value:.3} {unit}");
    append_figure(&work_dir(), kind, what, value, unit);
}

fn append_figure(dir: &Path, kind: &str, what: &str, value: f64, unit: &str) {
    let _ = std::fs::create_dir_all(dir);
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("figures.log"))
    {
        // One write per line: tests append from several threads.
        let _ = f.write_all(format!("{kind}\t{what}\t{value:.3}\t{unit}\n").as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_are_one_line_each() {
        let dir = std::env::temp_dir().join(format!("kit-figures-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        append_figure(&dir, "boot", "u0", 812.25, "ms");
        append_figure(&dir, "load", "req/s", 3.0, "1/s");
        let text = std::fs::read_to_string(dir.join("figures.log")).unwrap();
        assert_eq!(text, "boot\tu0\t812.250\tms\nload\treq/s\t3.000\t1/s\n");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_work_dir_is_under_the_target_dir() {
        let (target, profile) = target_dirs().unwrap();
        assert_eq!(profile.parent(), Some(target.as_path()));
        let expected = std::env::var_os("JUJUSIM_WORK_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| target.join("e2e"));
        assert_eq!(work_dir(), expected);
    }

    #[test]
    fn a_missing_program_fails_loudly() {
        require("sh");
        let err = std::panic::catch_unwind(|| require("no-such-program-jujusim-kit"))
            .expect_err("a missing program");
        let msg = err.downcast_ref::<String>().unwrap();
        assert!(
            msg.contains("no-such-program-jujusim-kit is not installed"),
            "{msg}"
        );
    }
}
