//! Cloud Code from the `cloud-code` resource: an archive (`.tar.gz` or `.zip`) with `main.js`
//! at its root, optionally a `package.json` with a `package-lock.json` (its dependencies
//! installed with `npm ci --omit=dev --ignore-scripts`) or a bundled `node_modules/`.
//!
//! Each revision is named by the digest of the archive (the first 12 hex digits of its
//! SHA-256) and unpacked once into `/opt/parse-server/cloud/<digest>`, root-owned and
//! read-only to the service, beside the revision that serves. The archive is hostile input
//! ([`super::archive`]): it is unpacked into a scratch directory that is renamed into place
//! only when everything in it is complete, so a hook killed at any instruction leaves either
//! nothing or a whole revision. Before the service gets a revision, the charm loads it once
//! outside the service (`charm/node/cloud-check.js`, as the service's user, with no option,
//! key or credential of the service) and refuses code that does not load, naming the first
//! line of the error.

use std::io::Read;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::{json, Value};

use super::archive::{self, LIMITS};
use super::files::{self, FileMode, ROOT_ONLY_DIR, ROOT_ONLY_FILE};
use super::install::{self, InstallError};
use super::paths::Paths;

/// The resource's name in metadata.yaml.
pub const RESOURCE: &str = "cloud-code";

/// How long the loader check may take (code that waits on the network at load time).
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(30);

/// A revision ready for the service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloudCode {
    /// The first 12 hex digits of the archive's SHA-256.
    pub digest: String,
    /// Its `package.json` says `"type": "module"`: parse-server must `import` it.
    pub module: bool,
}

impl CloudCode {
    /// `main.js` as the service sees it (parse-server's `cloud` option).
    pub fn main_path(&self) -> String {
        format!("{}/{}/main.js", Paths::CLOUD_CODE_DIR, self.digest)
    }
}

/// Why a revision cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// The archive's to fix, for good (hostile or malformed, a package that does not exist):
    /// remembered, so that the same archive is not unpacked again.
    Refused(String),
    /// Failed this time for a reason that may pass (npm failed otherwise): tried again at
    /// the next hook.
    Failed(String),
    /// The registry could not be reached: tried again at the next hook.
    Retry(String),
}

/// The digest naming the archive at `file`; `None` for an empty file (the placeholder
/// Charmhub needs: no Cloud Code).
pub fn digest(file: &Path) -> std::io::Result<Option<String>> {
    use sha2::Digest;
    let mut f = std::fs::File::open(file)?;
    let mut hasher = sha2::Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0u64;
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        total += n as u64;
        hasher.update(&buf[..n]);
    }
    if total == 0 {
        return Ok(None);
    }
    let hex: String = hasher
        .finalize()
        .iter()
        .take(6)
        .map(|b| format!("{b:02x}"))
        .collect();
    Ok(Some(hex))
}

/// The revision with `digest`, unpacked from `archive_file` (and its dependencies installed)
/// unless a hook did that before. `Err` only for a fault that is not the archive's.
pub fn prepare(
    paths: &Paths,
    archive_file: &Path,
    digest: &str,
    node: &Path,
    proxy_env: &[(&str, String)],
) -> anyhow::Result<Result<CloudCode, Problem>> {
    let dir = paths.cloud_code_dir(digest);
    if dir.is_dir() {
        return Ok(Ok(CloudCode {
            digest: digest.to_owned(),
            module: read_package(&dir).ok().flatten().is_some_and(|p| p.module),
        }));
    }
    let root = paths.cloud_code_root();
    files::ensure_dir(
        &root,
        FileMode {
            mode: 0o755,
            uid: 0,
            gid: 0,
        },
    )?;
    let scratch = root.join(format!(".{digest}.partial"));
    remove_tree(&scratch)?;
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&scratch)
        .with_context(|| format!("creating {}", scratch.display()))?;
    let result = match archive::unpack(archive_file, &scratch, &LIMITS)? {
        Err(refused) => Err(Problem::Refused(refused.to_string())),
        Ok(_) => complete(paths, &scratch, digest, node, proxy_env)?,
    };
    match result {
        Ok(code) => {
            read_only_to_others(&scratch)?;
            std::fs::rename(&scratch, &dir)
                .with_context(|| format!("moving Cloud Code into {}", dir.display()))?;
            Ok(Ok(code))
        }
        Err(problem) => {
            remove_tree(&scratch)?;
            Ok(Err(problem))
        }
    }
}

/// What `package.json` says, where there is one.
struct Package {
    module: bool,
    has_dependencies: bool,
}

/// The archive's `package.json`, if any (`Err`: it is not a JSON object).
fn read_package(dir: &Path) -> Result<Option<Package>, String> {
    let path = dir.join("package.json");
    let Ok(meta) = std::fs::symlink_metadata(&path) else {
        return Ok(None);
    };
    if !meta.is_file() || meta.len() > 1024 * 1024 {
        return Err("package.json is not a regular file under 1 MiB".into());
    }
    let text = std::fs::read(&path).map_err(|e| format!("package.json: {e}"))?;
    let Ok(Value::Object(v)) = serde_json::from_slice::<Value>(&text) else {
        return Err("package.json is not a JSON object".into());
    };
    Ok(Some(Package {
        module: v.get("type").and_then(Value::as_str) == Some("module"),
        has_dependencies: v
            .get("dependencies")
            .and_then(Value::as_object)
            .is_some_and(|d| !d.is_empty()),
    }))
}

/// Checks an unpacked archive's layout and installs its dependencies.
fn complete(
    paths: &Paths,
    scratch: &Path,
    digest: &str,
    node: &Path,
    proxy_env: &[(&str, String)],
) -> anyhow::Result<Result<CloudCode, Problem>> {
    let is_file = |p: PathBuf| std::fs::symlink_metadata(p).is_ok_and(|m| m.is_file());
    if !is_file(scratch.join("main.js")) {
        let nested = std::fs::read_dir(scratch)?
            .flatten()
            .find(|e| is_file(e.path().join("main.js")))
            .map(|e| e.file_name().to_string_lossy().into_owned());
        let why = match nested {
            Some(d) => format!(
                "main.js is in {}/, not at the archive's root (pack the folder's contents)",
                crate::text::quote(&d, 40)
            ),
            None => "the archive has no main.js at its root".to_owned(),
        };
        return Ok(Err(Problem::Refused(why)));
    }
    let package = match read_package(scratch) {
        Ok(p) => p,
        Err(why) => return Ok(Err(Problem::Refused(why))),
    };
    let module = package.as_ref().is_some_and(|p| p.module);
    let code = CloudCode {
        digest: digest.to_owned(),
        module,
    };
    let bundled = std::fs::symlink_metadata(scratch.join("node_modules")).is_ok_and(|m| m.is_dir());
    if bundled || !package.as_ref().is_some_and(|p| p.has_dependencies) {
        return Ok(Ok(code));
    }
    if !is_file(scratch.join("package-lock.json")) && !is_file(scratch.join("npm-shrinkwrap.json"))
    {
        return Ok(Err(Problem::Refused(
            "package.json has dependencies but no package-lock.json or node_modules/".into(),
        )));
    }
    Ok(
        match install::npm(paths, node, scratch, &["ci", "--ignore-scripts"], proxy_env) {
            Ok(()) => Ok(code),
            Err(InstallError::NotFound(why)) => Err(Problem::Refused(format!("npm ci: {why}"))),
            Err(InstallError::Download(why)) => Err(Problem::Retry(format!("npm ci: {why}"))),
            Err(e) => Err(Problem::Failed(format!("npm ci: {e}"))),
        },
    )
}

/// Directories 0755 and files 0644 (0755 where executable), so that the service (another
/// user) reads what root wrote and can change none of it. Symlinks are left as they are.
fn read_only_to_others(dir: &Path) -> std::io::Result<()> {
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755))?;
        for e in std::fs::read_dir(&d)? {
            let e = e?;
            let meta = std::fs::symlink_metadata(e.path())?;
            if meta.is_dir() {
                stack.push(e.path());
            } else if meta.is_file() {
                let mode = if meta.permissions().mode() & 0o111 != 0 {
                    0o755
                } else {
                    0o644
                };
                std::fs::set_permissions(e.path(), std::fs::Permissions::from_mode(mode))?;
            }
        }
    }
    Ok(())
}

fn remove_tree(p: &Path) -> anyhow::Result<()> {
    match std::fs::remove_dir_all(p) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("removing {}", p.display()))
        }
        _ => Ok(()),
    }
}

/// Removes the unpacked revision `digest` (one refused after it was unpacked).
pub fn remove(paths: &Paths, digest: &str) -> anyhow::Result<()> {
    remove_tree(&paths.cloud_code_dir(digest))
}

/// Removes every unpacked revision (and any scratch a killed hook left) but `keep`.
pub fn remove_others(paths: &Paths, keep: &[&str]) -> anyhow::Result<()> {
    let Ok(entries) = std::fs::read_dir(paths.cloud_code_root()) else {
        return Ok(());
    };
    for e in entries.flatten() {
        let name = e.file_name();
        if !keep.iter().any(|k| name == *k) {
            remove_tree(&e.path())?;
        }
    }
    Ok(())
}

/// The charm's record: revisions refused (by digest, and for code that did not load, the
/// parse-server release it was loaded with) and the last one that loaded.
fn record(paths: &Paths) -> Value {
    std::fs::read(paths.cloud_code_record())
        .ok()
        .and_then(|t| serde_json::from_slice(&t).ok())
        .unwrap_or_else(|| json!({}))
}

fn write_record(paths: &Paths, v: &Value) -> anyhow::Result<()> {
    files::ensure_dir(&paths.charm_state(), ROOT_ONLY_DIR)?;
    files::write_if_changed(
        &paths.cloud_code_record(),
        v.to_string().as_bytes(),
        ROOT_ONLY_FILE,
    )
    .context("writing the Cloud Code record")?;
    Ok(())
}

/// Why the revision `digest` was refused before, if it was (with `version`, when the refusal
/// was code that did not load on that release).
pub fn refused(paths: &Paths, digest: &str, version: &str) -> Option<String> {
    let r = record(paths);
    let entry = r.get("refused")?;
    let same_release = |v: &Value| v.as_str().is_none_or(|v| v == version);
    (entry.get("digest")?.as_str()? == digest && same_release(entry.get("release")?))
        .then(|| entry.get("why")?.as_str().map(str::to_owned))?
}

/// Remembers that `digest` is refused (`release`: the release its code did not load on).
pub fn record_refused(
    paths: &Paths,
    digest: &str,
    release: Option<&str>,
    why: &str,
) -> anyhow::Result<()> {
    let mut r = record(paths);
    r["refused"] = json!({"digest": digest, "release": release, "why": why});
    write_record(paths, &r)
}

/// Whether `digest` loaded on `version` before.
pub fn loaded_before(paths: &Paths, digest: &str, version: &str) -> bool {
    record(paths).get("loaded") == Some(&json!({"digest": digest, "release": version}))
}

/// Remembers that `digest` loaded on `version`.
pub fn record_loaded(paths: &Paths, digest: &str, version: &str) -> anyhow::Result<()> {
    let mut r = record(paths);
    r["loaded"] = json!({"digest": digest, "release": version});
    write_record(paths, &r)
}

/// What the loader check is given.
#[derive(Debug, Clone)]
pub struct Check<'a> {
    pub node: &'a Path,
    /// The parse-server release directory the service runs.
    pub release_dir: PathBuf,
    pub main: PathBuf,
    pub module: bool,
    /// The service's account.
    pub uid: u32,
    pub gid: u32,
}

/// Loads the code once outside the service (as the service's user, with an empty
/// environment): `Ok(Err(line))` is the first line of why it does not load.
pub fn check_loads(paths: &Paths, c: &Check) -> anyhow::Result<Result<(), String>> {
    let dir = c.main.parent().unwrap_or(Path::new("/"));
    let handle = duct::cmd(
        "setpriv",
        [
            format!("--reuid={}", c.uid),
            format!("--regid={}", c.gid),
            "--clear-groups".into(),
            "--".into(),
            c.node.display().to_string(),
            paths.cloud_check().display().to_string(),
            c.release_dir.display().to_string(),
            c.main.display().to_string(),
            if c.module { "module" } else { "commonjs" }.into(),
        ],
    )
    .dir(dir)
    .full_env([("PATH", "/usr/bin:/bin")])
    .stdin_null()
    .stderr_null()
    .stdout_capture()
    .unchecked()
    .start()
    .context("starting the Cloud Code check")?;
    let deadline = Instant::now() + CHECK_TIMEOUT;
    let out = loop {
        if let Some(out) = handle
            .try_wait()
            .context("waiting for the Cloud Code check")?
        {
            break out.clone();
        }
        if Instant::now() >= deadline {
            let _ = handle.kill();
            return Ok(Err(format!(
                "did not finish loading within {} s",
                CHECK_TIMEOUT.as_secs()
            )));
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    if out.status.success() {
        return Ok(Ok(()));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("exited with no message");
    Ok(Err(crate::text::one_line(line, 100)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("psc-cloud-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn an_empty_file_has_no_digest_and_others_a_stable_one() {
        let d = scratch("digest");
        std::fs::write(d.join("empty"), "").unwrap();
        std::fs::write(d.join("a"), "abc").unwrap();
        assert_eq!(digest(&d.join("empty")).unwrap(), None);
        // SHA-256("abc") = ba7816bf8f01cfea414140de5dae2223…
        assert_eq!(
            digest(&d.join("a")).unwrap().as_deref(),
            Some("ba7816bf8f01")
        );
    }

    #[test]
    fn refusals_and_loads_are_remembered_per_digest_and_release() {
        let d = scratch("record");
        let paths = Paths::new(&d);
        assert_eq!(refused(&paths, "aaa", "9.10.0"), None);
        record_refused(&paths, "aaa", None, "hostile").unwrap();
        assert_eq!(refused(&paths, "aaa", "9.10.0").as_deref(), Some("hostile"));
        assert_eq!(refused(&paths, "bbb", "9.10.0"), None);
        record_refused(&paths, "bbb", Some("9.10.0"), "does not load").unwrap();
        assert_eq!(
            refused(&paths, "bbb", "9.10.0").as_deref(),
            Some("does not load")
        );
        assert_eq!(refused(&paths, "bbb", "9.11.0"), None);
        assert!(!loaded_before(&paths, "ccc", "9.10.0"));
        record_loaded(&paths, "ccc", "9.10.0").unwrap();
        assert!(loaded_before(&paths, "ccc", "9.10.0"));
        assert!(!loaded_before(&paths, "ccc", "9.11.0"));
    }
}
