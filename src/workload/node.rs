//! Node.js on the unit: find one that satisfies parse-server's `engines.node` range, or
//! install the pinned official build.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::install::InstallError;

/// A `major.minor.patch` version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version(pub u64, pub u64, pub u64);

impl Version {
    /// Parses `v20.20.2`, `20.20.2`, `20.19` or `22` (missing parts are 0).
    pub fn parse(s: &str) -> Option<Version> {
        let s = s.trim().trim_start_matches('v');
        let s = s.split(['-', '+']).next()?;
        let mut parts = s.split('.').map(|p| p.parse::<u64>());
        let major = parts.next()?.ok()?;
        let minor = parts.next().unwrap_or(Ok(0)).ok()?;
        let patch = parts.next().unwrap_or(Ok(0)).ok()?;
        if parts.next().is_some() {
            return None;
        }
        Some(Version(major, minor, patch))
    }
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.0, self.1, self.2)
    }
}

/// Whether `v` satisfies an npm `engines` range made of `||` alternatives of space-separated
/// comparators (`>=20.19.0 <21 || >=22.12.0 <23`), the only shape parse-server uses. `^`,
/// `~` and `x` ranges are understood for the common cases; anything else does not match.
pub fn satisfies(v: Version, range: &str) -> bool {
    range.split("||").any(|alt| {
        let comparators: Vec<&str> = alt.split_whitespace().collect();
        !comparators.is_empty() && comparators.iter().all(|c| comparator(v, c))
    })
}

fn comparator(v: Version, c: &str) -> bool {
    let (op, rest) = ["<=", ">=", "<", ">", "=", "^", "~"]
        .iter()
        .find_map(|op| c.strip_prefix(op).map(|r| (*op, r)))
        .unwrap_or(("=", c));
    if rest == "*" || rest.eq_ignore_ascii_case("x") {
        return true;
    }
    // How many leading parts are real numbers (`20.x` gives 1).
    let given = rest
        .trim_start_matches('v')
        .split('.')
        .take_while(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        .count();
    let Some(b) = Version::parse(&rest.replace(['x', 'X', '*'], "0")) else {
        return false;
    };
    match op {
        ">=" => v >= b,
        ">" => v > b,
        "<=" => v <= b,
        "<" => v < b,
        "^" => v >= b && v.0 == b.0,
        "~" => v >= b && v.0 == b.0 && (given < 2 || v.1 == b.1),
        // "=": a partial version matches the whole line (`20` = 20.x.x).
        _ => match given {
            1 => v.0 == b.0,
            2 => v.0 == b.0 && v.1 == b.1,
            _ => v == b,
        },
    }
}

/// The official Node.js release installed when the unit has no suitable Node (an LTS line
/// that every parse-server 8.x/9.x `engines` range accepts).
pub const PINNED_NODE: &str = "22.21.1";

fn pinned_tarball() -> String {
    format!("node-v{PINNED_NODE}-linux-x64.tar.xz")
}

/// Finds `node` in the directories of `path` and returns it with its version (remembered in
/// `cache`, as [`cached_node_version`] does: a hook in the steady state starts no Node).
pub fn find_node(path: &str, cache: &Path) -> Option<(PathBuf, Version)> {
    path.split(':')
        .filter(|d| !d.is_empty())
        .map(|d| Path::new(d).join("node"))
        .filter(|p| p.is_file())
        .find_map(|p| cached_node_version(&p, cache).ok().map(|v| (p, v)))
}

/// Runs `<node> --version`.
pub fn node_version(node: &Path) -> Result<Version> {
    let out = duct::cmd(node, ["--version"])
        .stdin_null()
        .stderr_null()
        .read()
        .with_context(|| format!("running {} --version", node.display()))?;
    Version::parse(&out).with_context(|| format!("unreadable node version {out:?}"))
}

/// `<node> --version`, remembered in `cache` against the binary's path, size and mtime so that
/// hooks do not start Node just to ask (a stale or unreadable cache is simply refreshed).
pub fn cached_node_version(node: &Path, cache: &Path) -> Result<Version> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(node).with_context(|| format!("{}", node.display()))?;
    let key = format!(
        "{} {} {}.{}",
        node.display(),
        meta.size(),
        meta.mtime(),
        meta.mtime_nsec()
    );
    if let Ok(text) = std::fs::read_to_string(cache) {
        if let Some((k, v)) = text.trim_end().rsplit_once(' ') {
            if k == key {
                if let Some(v) = Version::parse(v) {
                    return Ok(v);
                }
            }
        }
    }
    let v = node_version(node)?;
    if let Some(dir) = cache.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let _ = std::fs::write(cache, format!("{key} {v}\n"));
    Ok(v)
}

/// Downloads the pinned Node.js from `mirror` (`<mirror>/v<version>/...`, nodejs.org/dist by
/// default), checks it against the release's SHASUMS256.txt and unpacks it into `dest`.
pub fn install_pinned(
    mirror: &str,
    dest: &Path,
    scratch: &Path,
    proxy_env: &[(&str, String)],
) -> Result<PathBuf, InstallError> {
    std::fs::create_dir_all(scratch)?;
    let base = format!("{}/v{PINNED_NODE}", mirror.trim_end_matches('/'));
    let name = pinned_tarball();
    let tarball = scratch.join(&name);
    let sums = scratch.join("SHASUMS256.txt");
    fetch(&format!("{base}/SHASUMS256.txt"), &sums, proxy_env)?;
    fetch(&format!("{base}/{name}"), &tarball, proxy_env)?;
    let want = std::fs::read_to_string(&sums)?
        .lines()
        .find_map(|l| {
            let (sum, file) = l.split_once(char::is_whitespace)?;
            (file.trim() == name).then(|| sum.to_owned())
        })
        .ok_or_else(|| {
            InstallError::NotFound(format!("{name} is not listed in {base}/SHASUMS256.txt"))
        })?;
    let got = duct::cmd!("sha256sum", &tarball)
        .read()
        .context("sha256sum")
        .map_err(InstallError::Other)?;
    let got = got.split_whitespace().next().unwrap_or("");
    if got != want {
        let _ = std::fs::remove_file(&tarball);
        return Err(InstallError::Integrity(format!(
            "{name} from {base} does not match its SHASUMS256.txt"
        )));
    }
    let _ = std::fs::remove_dir_all(dest);
    std::fs::create_dir_all(dest)?;
    duct::cmd!(
        "tar",
        "-xJf",
        &tarball,
        "-C",
        dest,
        "--strip-components=1",
        "--no-same-owner"
    )
    .stdin_null()
    .run()
    .context("unpacking node")
    .map_err(InstallError::Other)?;
    let _ = std::fs::remove_file(&tarball);
    Ok(dest.join("bin/node"))
}

/// curl's exit codes for a server that could not be reached or failed mid-transfer.
const CURL_NETWORK_EXITS: &[i32] = &[5, 6, 7, 18, 28, 35, 52, 55, 56, 92];

/// Downloads `url` to `out` with curl; classifies a failure.
fn fetch(url: &str, out: &Path, proxy_env: &[(&str, String)]) -> Result<(), InstallError> {
    let mut cmd = duct::cmd!(
        "curl",
        "--silent",
        "--show-error",
        "--location",
        "--write-out",
        "%{http_code}",
        "--output",
        out,
        url
    );
    for (k, v) in proxy_env {
        cmd = cmd.env(k, v);
    }
    let res = cmd
        .stdin_null()
        .stdout_capture()
        .stderr_capture()
        .unchecked()
        .run()
        .with_context(|| format!("running curl for {url}"))
        .map_err(InstallError::Other)?;
    let code = String::from_utf8_lossy(&res.stdout).trim().to_owned();
    let stderr = String::from_utf8_lossy(&res.stderr).trim().to_owned();
    match res.status.code() {
        Some(0) if code.starts_with('2') => Ok(()),
        Some(0) if code == "404" || code == "410" => {
            Err(InstallError::NotFound(format!("{url} answers {code}")))
        }
        Some(0) => Err(InstallError::Download(format!("{url} answers {code}"))),
        Some(c) if CURL_NETWORK_EXITS.contains(&c) => {
            Err(InstallError::Download(format!("{url}: {stderr}")))
        }
        _ => Err(InstallError::Other(anyhow::anyhow!(
            "curl {url} failed: {stderr}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PARSE9: &str = ">=20.19.0 <21 || >=22.12.0 <23 || >=24.11.0 <25";

    #[test]
    fn parse_server_9_engines() {
        let v = |s| Version::parse(s).unwrap();
        assert!(satisfies(v("v20.20.2"), PARSE9));
        assert!(satisfies(v("20.19.0"), PARSE9));
        assert!(!satisfies(v("20.18.3"), PARSE9));
        assert!(!satisfies(v("21.0.0"), PARSE9));
        assert!(satisfies(v("22.21.1"), PARSE9));
        assert!(!satisfies(v("22.11.0"), PARSE9));
        assert!(!satisfies(v("23.1.0"), PARSE9));
        assert!(satisfies(v("24.11.0"), PARSE9));
        assert!(!satisfies(v("18.20.4"), PARSE9));
        assert!(!satisfies(v("25.0.0"), PARSE9));
    }

    #[test]
    fn other_range_shapes() {
        let v = |s| Version::parse(s).unwrap();
        assert!(satisfies(v("18.1.0"), ">=18"));
        assert!(satisfies(v("20.3.0"), "^20.1.0"));
        assert!(!satisfies(v("21.0.0"), "^20.1.0"));
        assert!(satisfies(v("20.1.9"), "~20.1.0"));
        assert!(!satisfies(v("20.2.0"), "~20.1.0"));
        assert!(satisfies(v("20.9.9"), "20"));
        assert!(satisfies(v("20.9.9"), "20.x"));
        assert!(satisfies(v("1.0.0"), "*"));
        assert!(!satisfies(v("20.0.0"), ""));
        assert!(!satisfies(v("20.0.0"), ">=banana"));
    }

    #[test]
    fn node_version_is_cached_against_the_binary() {
        let dir = std::env::temp_dir().join(format!("psc-node-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let fake = dir.join("node");
        std::fs::write(&fake, "#!/bin/sh\necho v20.19.1\n").unwrap();
        std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        let cache = dir.join("cache/node-version");
        assert_eq!(
            cached_node_version(&fake, &cache).unwrap(),
            Version(20, 19, 1)
        );
        // The cache answers without running the binary: make running it fail.
        let text = std::fs::read_to_string(&cache).unwrap();
        std::fs::write(&cache, text.replace("20.19.1", "20.19.7")).unwrap();
        assert_eq!(
            cached_node_version(&fake, &cache).unwrap(),
            Version(20, 19, 7)
        );
        // A changed binary invalidates it.
        std::fs::write(&fake, "#!/bin/sh\necho v22.13.0   \n").unwrap();
        assert_eq!(
            cached_node_version(&fake, &cache).unwrap(),
            Version(22, 13, 0)
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_node_on_the_path_is_asked_its_version_once() {
        let dir = std::env::temp_dir().join(format!("psc-node-path-{}", std::process::id()));
        let bin = dir.join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        let counter = dir.join("runs");
        let node = bin.join("node");
        std::fs::write(
            &node,
            format!(
                "#!/bin/sh\necho run >> {}\necho v22.12.0\n",
                counter.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&node, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        let cache = dir.join("cache/node-version");
        let path = format!("{}:/nonexistent", bin.display());
        for _ in 0..3 {
            assert_eq!(
                find_node(&path, &cache),
                Some((node.clone(), Version(22, 12, 0)))
            );
        }
        let runs = std::fs::read_to_string(&counter).unwrap();
        assert_eq!(runs.lines().count(), 1, "node started for every lookup");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn versions() {
        assert_eq!(Version::parse("v20.20.2\n"), Some(Version(20, 20, 2)));
        assert_eq!(Version::parse("22"), Some(Version(22, 0, 0)));
        assert_eq!(Version::parse("9.0.0-alpha.1"), Some(Version(9, 0, 0)));
        assert_eq!(Version::parse("1.2.3.4"), None);
        assert_eq!(Version::parse("x"), None);
    }
}
