//! parse-server releases on this machine: each exact version in its own directory under
//! `/opt/parse-server/releases`, installed with npm, switched to, and removed once unused.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde_json::{Map, Value};

use super::paths::Paths;

/// Why an install did not happen.
#[derive(Debug)]
pub enum InstallError {
    /// The registry or mirror could not be reached or answered with a server error: the
    /// same install may work at the next hook.
    Download(String),
    /// The registry or mirror answered that what was asked for does not exist.
    NotFound(String),
    /// A download does not match its published checksum.
    Integrity(String),
    /// Anything else (a full disk, a broken npm): a fault the charm cannot classify.
    Other(anyhow::Error),
}

impl std::fmt::Display for InstallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            InstallError::Download(why) => write!(f, "download failed: {why}"),
            InstallError::NotFound(why) => write!(f, "not found: {why}"),
            InstallError::Integrity(why) => write!(f, "{why}"),
            InstallError::Other(e) => write!(f, "{e:#}"),
        }
    }
}

impl std::error::Error for InstallError {}

impl From<std::io::Error> for InstallError {
    fn from(e: std::io::Error) -> Self {
        InstallError::Other(e.into())
    }
}

/// npm's error codes for a registry that could not be reached or failed (retry later).
const NPM_NETWORK_CODES: &[&str] = &[
    "ECONNREFUSED",
    "ECONNRESET",
    "ETIMEDOUT",
    "ENOTFOUND",
    "EAI_AGAIN",
    "EPROTO",
    "ENETUNREACH",
    "EHOSTUNREACH",
    "ERR_SOCKET_TIMEOUT",
    "E500",
    "E502",
    "E503",
    "E504",
    "SELF_SIGNED_CERT_IN_CHAIN",
    "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
    "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
];

/// Classifies npm's output after a failed run.
fn classify_npm_failure(output: &str) -> InstallError {
    let code = output
        .lines()
        .find_map(|l| l.trim().strip_prefix("npm error code ").map(str::trim))
        .unwrap_or("");
    let first_error = output
        .lines()
        .filter(|l| l.starts_with("npm error") && !l.starts_with("npm error code"))
        .map(|l| l.trim_start_matches("npm error").trim())
        .find(|l| !l.is_empty())
        .unwrap_or(code)
        .to_owned();
    if code == "ETARGET" || code == "E404" {
        InstallError::NotFound(first_error)
    } else if NPM_NETWORK_CODES.contains(&code)
        || code.starts_with("ERR_SOCKET")
        || output.contains("network request")
    {
        InstallError::Download(format!("{code}: {first_error}"))
    } else {
        InstallError::Other(anyhow::anyhow!("npm failed ({code}): {first_error}"))
    }
}

/// Whether release `version` is completely installed.
pub fn is_installed(paths: &Paths, version: &str) -> bool {
    paths.options_file(version).is_file()
        && installed_version(paths, version).as_deref() == Some(version)
}

fn package_field(paths: &Paths, version: &str, pointer: &str) -> Option<String> {
    let raw = std::fs::read(paths.package_json(version)).ok()?;
    let v: Value = serde_json::from_slice(&raw).ok()?;
    v.pointer(pointer)?.as_str().map(str::to_owned)
}

/// The version recorded in the release's parse-server package.json.
fn installed_version(paths: &Paths, version: &str) -> Option<String> {
    package_field(paths, version, "/version")
}

/// nodemailer, which the charm's mail adapter loads from the release: in the shipped
/// lockfile, and installed beside releases that have none.
pub const MAILER: (&str, &str) = ("nodemailer", "10.6.1");

/// Whether the installed release has nodemailer (releases installed by charm revisions
/// before the mail adapter have not).
pub fn has_mailer(paths: &Paths, version: &str) -> bool {
    paths.mailer_package_json(version).is_file()
}

/// parse-server's `engines.node` range for an installed release.
pub fn engines_node(paths: &Paths, version: &str) -> Option<String> {
    package_field(paths, version, "/engines/node")
}

/// The option names the installed release accepts (from its own Definitions.js, recorded at
/// install time).
pub fn known_options(paths: &Paths, version: &str) -> Option<BTreeSet<String>> {
    let raw = std::fs::read(paths.options_file(version)).ok()?;
    let v: Map<String, Value> = serde_json::from_slice(&raw).ok()?;
    Some(v.keys().cloned().collect())
}

/// Installs parse-server `version` with npm into its own release directory. The directory
/// appears complete or not at all: npm works in a scratch dir that is renamed at the end.
/// `lock_dir`, when given, holds a package.json and package-lock.json for exactly this
/// version (shipped in the charm): `npm ci` then installs the tree that was tested.
pub fn install(
    paths: &Paths,
    version: &str,
    node: &Path,
    lock_dir: Option<&Path>,
    proxy_env: &[(&str, String)],
) -> Result<(), InstallError> {
    let release = paths.release_dir(version);
    let scratch = release.with_extension("partial");
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir_all(&scratch)?;
    let argv: &[&str] = match lock_dir {
        Some(dir) => {
            for f in ["package.json", "package-lock.json"] {
                std::fs::copy(dir.join(f), scratch.join(f))
                    .with_context(|| format!("copying {}", dir.join(f).display()))
                    .map_err(InstallError::Other)?;
            }
            &["ci"]
        }
        None => {
            let manifest = serde_json::json!({
                "name": "parse-server-charm-release",
                "private": true,
                "dependencies": {"parse-server": version, "nodemailer": MAILER.1},
            });
            std::fs::write(scratch.join("package.json"), manifest.to_string())?;
            &["install"]
        }
    };
    if let Err(e) = npm(paths, node, &scratch, argv, proxy_env) {
        let _ = std::fs::remove_dir_all(&scratch);
        return Err(e);
    }
    // Record the option table of exactly this release, to validate extra-options against.
    let options = duct::cmd!(
        node,
        "-e",
        "const d=require('parse-server/lib/Options/Definitions');\
         const o={};for(const [k,v] of Object.entries(d.ParseServerOptions)){o[k]=v.env||null}\
         process.stdout.write(JSON.stringify(o))"
    )
    .dir(&scratch)
    .stdin_null()
    .read()
    .context("reading parse-server's option definitions")
    .map_err(InstallError::Other)?;
    serde_json::from_str::<Map<String, Value>>(&options)
        .context("option definitions are not a JSON object")
        .map_err(InstallError::Other)?;
    std::fs::write(scratch.join("charm-options.json"), options)?;
    let _ = std::fs::remove_dir_all(&release);
    std::fs::rename(&scratch, &release)?;
    Ok(())
}

/// An npm package the charm installs from a lockfile it ships (`npm/<dir>/` in the charm),
/// into its own tree `Paths::locked_tree`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Locked {
    pub name: &'static str,
    pub version: &'static str,
    /// The lockfile's directory in the charm, and the tree's under the install directory.
    pub dir: &'static str,
}

/// `@parse/s3-files-adapter`, pinned in the charm's lockfile `npm/s3-files-adapter/`.
pub const S3_ADAPTER: Locked = Locked {
    name: "@parse/s3-files-adapter",
    version: "5.3.1",
    dir: "s3-files-adapter",
};

/// Parse Dashboard, pinned in the charm's lockfile `npm/parse-dashboard/`.
pub const DASHBOARD: Locked = Locked {
    name: "parse-dashboard",
    version: "9.2.0",
    dir: "parse-dashboard",
};

impl Locked {
    /// Its tree as the service sees it.
    pub fn tree_path(self) -> String {
        Paths::locked_tree_path(self.dir, self.version)
    }
}

/// Whether `pkg`'s tree is installed (its package.json names the pinned version).
pub fn has_locked(paths: &Paths, pkg: Locked) -> bool {
    let manifest = paths
        .locked_tree(pkg.dir, pkg.version)
        .join("node_modules")
        .join(pkg.name)
        .join("package.json");
    std::fs::read(manifest)
        .ok()
        .and_then(|raw| serde_json::from_slice::<Value>(&raw).ok())
        .is_some_and(|v| v["version"] == pkg.version)
}

/// Installs `pkg`'s tree with `npm ci` from the charm's lockfile in `lock_dir`, complete or
/// not at all (a scratch directory renamed at the end); older versions' trees go.
pub fn install_locked(
    paths: &Paths,
    pkg: Locked,
    node: &Path,
    lock_dir: &Path,
    proxy_env: &[(&str, String)],
) -> Result<(), InstallError> {
    let tree = paths.locked_tree(pkg.dir, pkg.version);
    let scratch = tree.with_extension("partial");
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir_all(&scratch)?;
    for f in ["package.json", "package-lock.json"] {
        std::fs::copy(lock_dir.join(f), scratch.join(f))
            .with_context(|| format!("copying {}", lock_dir.join(f).display()))
            .map_err(InstallError::Other)?;
    }
    if let Err(e) = npm(
        paths,
        node,
        &scratch,
        &["ci", "--ignore-scripts"],
        proxy_env,
    ) {
        let _ = std::fs::remove_dir_all(&scratch);
        return Err(e);
    }
    let _ = std::fs::remove_dir_all(&tree);
    std::fs::rename(&scratch, &tree)?;
    if let Some(parent) = tree.parent() {
        for e in std::fs::read_dir(parent)?.flatten() {
            if e.path() != tree {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
    Ok(())
}

/// Removes `pkg`'s trees (a feature turned off).
pub fn remove_locked(paths: &Paths, pkg: Locked) -> anyhow::Result<()> {
    let dir = paths.install_dir().join(pkg.dir);
    if dir.exists() {
        std::fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))?;
    }
    Ok(())
}

/// Runs `npm <args>` in `dir` with the Node at `node` (its own npm when it has one) as a
/// hook may: production dependencies only, bounded retries, the charm's cache, the model's
/// proxy settings and the machine's CA store. npm's output goes to the hook's stdout (Juju
/// logs it at DEBUG); a failure is classified from it.
pub fn npm(
    paths: &Paths,
    node: &Path,
    dir: &Path,
    args: &[&str],
    proxy_env: &[(&str, String)],
) -> Result<(), InstallError> {
    std::fs::create_dir_all(paths.npm_cache())?;
    let node_bin_dir = node
        .parent()
        .ok_or_else(|| InstallError::Other(anyhow::anyhow!("node has no directory")))?;
    let npm = node_bin_dir.join("npm");
    let npm = if npm.exists() {
        npm
    } else {
        PathBuf::from("npm")
    };
    let mut argv: Vec<&str> = args.to_vec();
    argv.extend([
        "--omit=dev",
        "--no-audit",
        "--no-fund",
        "--no-update-notifier",
        "--loglevel=error",
        // A hook waits for this: bounded retries rather than npm's minutes-long default.
        "--fetch-retries=2",
        "--fetch-retry-mintimeout=2000",
        "--fetch-retry-maxtimeout=10000",
    ]);
    // Hooks have no HOME; npm needs one and a cache it may write.
    let path = format!(
        "{}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        node_bin_dir.display()
    );
    let mut cmd = duct::cmd(&npm, &argv).dir(dir);
    // Trust the machine's CA store (where a site's TLS-inspecting proxy CA is installed), not
    // only the CAs built into Node: a Node from nodejs.org has no global npmrc saying so.
    let system_cas = paths.system_cas();
    if system_cas.is_file() {
        cmd = cmd.env("npm_config_cafile", &system_cas);
    }
    for (k, v) in proxy_env {
        cmd = cmd.env(k, v);
    }
    let out = cmd
        .env("HOME", paths.npm_cache())
        .env("npm_config_cache", paths.npm_cache())
        .env("PATH", &path)
        .stdin_null()
        .stderr_to_stdout()
        .stdout_capture()
        .unchecked()
        .run()
        .with_context(|| format!("running npm {}", argv[0]))
        .map_err(InstallError::Other)?;
    let output = String::from_utf8_lossy(&out.stdout);
    print!("{output}");
    if !out.status.success() {
        return Err(classify_npm_failure(&output));
    }
    Ok(())
}

/// Removes every release but `keep` (after the service moved to `keep`).
pub fn remove_other_releases(paths: &Paths, keep: &str) -> anyhow::Result<()> {
    let Ok(entries) = std::fs::read_dir(paths.releases_dir()) else {
        return Ok(());
    };
    for e in entries.flatten() {
        if e.file_name() != keep {
            std::fs::remove_dir_all(e.path())
                .with_context(|| format!("removing {}", e.path().display()))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn npm_failures_are_classified() {
        let notarget = "npm error code ETARGET\nnpm error notarget No matching version found for parse-server@9.99.0.\n";
        assert!(matches!(
            classify_npm_failure(notarget),
            InstallError::NotFound(w) if w.contains("No matching version")
        ));
        let offline = "npm error code ECONNREFUSED\nnpm error syscall connect\nnpm error errno ECONNREFUSED\nnpm error FetchError: request to https://registry.npmjs.org/x failed\n";
        assert!(matches!(
            classify_npm_failure(offline),
            InstallError::Download(w) if w.starts_with("ECONNREFUSED")
        ));
        let full = "npm error code ENOSPC\nnpm error syscall write\nnpm error nospc no space left on device\n";
        assert!(matches!(classify_npm_failure(full), InstallError::Other(_)));
    }
}
