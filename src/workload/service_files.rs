//! The service's files on disk and the charm's records about them, kept so that a hook killed
//! at any instruction leaves enough behind for the next one to finish or roll back:
//!
//! - the files the service reads (`/etc/parse-server/config.json`, the systemd unit);
//! - a copy of the last rendering that served (`last-good/`), written only after it did;
//! - the rollout in progress (`rollout.json`), written BEFORE the service's files change and
//!   removed only once the service serves the new files or the previous ones again: while
//!   it exists, the running process may be stale, whatever the files say;
//! - the rendering that did not start (`failed-rendering`), so that it is not retried in a
//!   loop while the configuration stays the same.
//!
//! All of them are files under the charm's root-only state dir, written at once (not Juju
//! unit state, which is committed only when the hook exits 0).

use std::path::Path;

use anyhow::{Context, Result};

use super::files::{self, FileMode, ROOT_ONLY_DIR, ROOT_ONLY_FILE};
use super::paths::Paths;
use super::render::Rendered;

const CONFIG_NAME: &str = "config.json";
const UNIT_NAME: &str = "parse-server.service";
const CA_NAME: &str = "database-ca.pem";
const CREDENTIALS_NAME: &str = "database-credentials.json";

/// Which of the service's files changed on disk.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Changes {
    pub config: bool,
    pub unit: bool,
    pub ca: bool,
    pub credentials: bool,
}

fn read_text(p: &Path) -> Result<Option<String>> {
    Ok(files::read_optional(p)
        .with_context(|| format!("reading {}", p.display()))?
        .map(|b| String::from_utf8_lossy(&b).into_owned()))
}

/// Where one rendering's files are: the service's own, or the charm's copy of the last
/// good one.
struct FileSet {
    config: std::path::PathBuf,
    unit: std::path::PathBuf,
    ca: std::path::PathBuf,
    credentials: std::path::PathBuf,
}

impl FileSet {
    fn service(paths: &Paths) -> FileSet {
        FileSet {
            config: paths.config_file(),
            unit: paths.unit_file(),
            ca: paths.database_ca_file(),
            credentials: paths.database_credentials_file(),
        }
    }

    fn last_good(paths: &Paths) -> FileSet {
        let dir = paths.last_good_dir();
        FileSet {
            config: dir.join(CONFIG_NAME),
            unit: dir.join(UNIT_NAME),
            ca: dir.join(CA_NAME),
            credentials: dir.join(CREDENTIALS_NAME),
        }
    }

    fn read(&self) -> Result<Option<Rendered>> {
        Ok(match (read_text(&self.config)?, read_text(&self.unit)?) {
            (Some(config_json), Some(unit)) => Some(Rendered {
                config_json,
                unit,
                ca_pem: read_text(&self.ca)?,
                db_credentials: read_text(&self.credentials)?,
            }),
            _ => None,
        })
    }
}

/// The files the service reads now.
pub fn current(paths: &Paths) -> Result<Option<Rendered>> {
    FileSet::service(paths).read()
}

/// Writes `content` at `path`, or removes the file for `None`; whether anything changed.
fn write_or_remove(path: &Path, content: Option<&str>, mode: FileMode) -> Result<bool> {
    match content {
        Some(c) => Ok(files::write_if_changed(path, c.as_bytes(), mode)?),
        None => match std::fs::remove_file(path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e).with_context(|| format!("removing {}", path.display())),
        },
    }
}

/// Writes the service's files: the option file, the CA and the database credentials 0640
/// root:<service group> (they hold the keys and the database's credentials), the unit 0644
/// root:root. Only what differs is written.
pub fn write(paths: &Paths, r: &Rendered, service_gid: u32) -> Result<Changes> {
    files::ensure_dir(
        &paths.config_dir(),
        FileMode {
            mode: 0o750,
            uid: 0,
            gid: service_gid,
        },
    )?;
    let secret = FileMode {
        mode: 0o640,
        uid: 0,
        gid: service_gid,
    };
    let public = FileMode {
        mode: 0o644,
        uid: 0,
        gid: 0,
    };
    let to = FileSet::service(paths);
    Ok(Changes {
        ca: write_or_remove(&to.ca, r.ca_pem.as_deref(), secret)?,
        credentials: write_or_remove(&to.credentials, r.db_credentials.as_deref(), secret)?,
        config: files::write_if_changed(&to.config, r.config_json.as_bytes(), secret)?,
        unit: files::write_if_changed(&to.unit, r.unit.as_bytes(), public)?,
    })
}

/// The last rendering that served, if any.
pub fn last_good(paths: &Paths) -> Result<Option<Rendered>> {
    FileSet::last_good(paths).read()
}

/// Records `r` as the last rendering that served.
pub fn save_last_good(paths: &Paths, r: &Rendered) -> Result<()> {
    files::ensure_dir(&paths.charm_state(), ROOT_ONLY_DIR)?;
    files::ensure_dir(&paths.last_good_dir(), ROOT_ONLY_DIR)?;
    let to = FileSet::last_good(paths);
    files::write_if_changed(&to.config, r.config_json.as_bytes(), ROOT_ONLY_FILE)?;
    files::write_if_changed(&to.unit, r.unit.as_bytes(), ROOT_ONLY_FILE)?;
    write_or_remove(&to.ca, r.ca_pem.as_deref(), ROOT_ONLY_FILE)?;
    write_or_remove(&to.credentials, r.db_credentials.as_deref(), ROOT_ONLY_FILE)?;
    Ok(())
}

/// The digest of the rendering a rollout in progress moves the service to, if one is.
pub fn rollout(paths: &Paths) -> Option<String> {
    let text = std::fs::read_to_string(paths.rollout_file()).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    v.get("target")?.as_str().map(str::to_owned)
}

/// Records that the service is about to move to rendering `digest`.
pub fn begin_rollout(paths: &Paths, digest: &str) -> Result<()> {
    files::ensure_dir(&paths.charm_state(), ROOT_ONLY_DIR)?;
    let body = serde_json::json!({ "target": digest }).to_string();
    files::write_if_changed(&paths.rollout_file(), body.as_bytes(), ROOT_ONLY_FILE)?;
    Ok(())
}

/// The service serves what the rollout moved it to (or the previous rendering again).
pub fn end_rollout(paths: &Paths) -> Result<()> {
    remove_if_present(&paths.rollout_file())
}

/// A rendering that did not start: which, when it last failed (seconds since the epoch) and
/// how many times in a row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failed {
    pub digest: String,
    pub at: u64,
    pub attempts: u32,
}

impl Failed {
    /// When to try this rendering again while nothing serves: 1 minute after the first
    /// failure, doubling, at most 30 minutes.
    pub fn retry_at(&self) -> u64 {
        let minutes = 1u64 << self.attempts.saturating_sub(1).min(5);
        self.at + 60 * minutes.min(30)
    }
}

/// The rendering that did not start, if one is recorded (a record from an older charm
/// revision, a bare digest, counts as one failure long ago).
pub fn failed(paths: &Paths) -> Option<Failed> {
    let text = std::fs::read_to_string(paths.failed_file()).ok()?;
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) {
        return Some(Failed {
            digest: v.get("digest")?.as_str()?.to_owned(),
            at: v.get("at").and_then(|a| a.as_u64()).unwrap_or(0),
            attempts: v
                .get("attempts")
                .and_then(|a| a.as_u64())
                .map_or(1, |a| a as u32),
        });
    }
    let digest = text.trim();
    (!digest.is_empty()).then(|| Failed {
        digest: digest.to_owned(),
        at: 0,
        attempts: 1,
    })
}

/// Records that rendering `digest` did not start at `now` (one more failure in a row when
/// it is the one recorded already).
pub fn record_failed(paths: &Paths, digest: &str, now: u64) -> Result<()> {
    let attempts = match failed(paths) {
        Some(f) if f.digest == digest => f.attempts.saturating_add(1),
        _ => 1,
    };
    files::ensure_dir(&paths.charm_state(), ROOT_ONLY_DIR)?;
    let body = serde_json::json!({"digest": digest, "at": now, "attempts": attempts}).to_string();
    files::write_if_changed(&paths.failed_file(), body.as_bytes(), ROOT_ONLY_FILE)?;
    Ok(())
}

pub fn clear_failed(paths: &Paths) -> Result<()> {
    remove_if_present(&paths.failed_file())
}

fn remove_if_present(p: &Path) -> Result<()> {
    match std::fs::remove_file(p) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("removing {}", p.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::files::tests::tempdir;

    fn own_gid(p: &Path) -> u32 {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(p).unwrap().gid()
    }

    #[test]
    fn records_survive_as_files() {
        let root = tempdir("service-files");
        let paths = Paths::new(&root);
        let r = Rendered {
            config_json: "{\"port\": 1337, \"mountPath\": \"/parse\"}\n".into(),
            unit: "[Service]\n".into(),
            ca_pem: Some("-----BEGIN CERTIFICATE-----\n".into()),
            db_credentials: Some("{\"user\":\"u\"}\n".into()),
        };
        assert_eq!(current(&paths).unwrap(), None);
        assert_eq!(last_good(&paths).unwrap(), None);
        let gid = own_gid(&root);
        // Run as root in CI; as another user the chown to root fails, which is not this
        // test's concern.
        if write(&paths, &r, gid).is_ok() {
            assert_eq!(current(&paths).unwrap(), Some(r.clone()));
        }
        if save_last_good(&paths, &r).is_ok() {
            assert_eq!(last_good(&paths).unwrap(), Some(r.clone()));
            assert_eq!(rollout(&paths), None);
            begin_rollout(&paths, &r.digest()).unwrap();
            assert_eq!(rollout(&paths), Some(r.digest()));
            end_rollout(&paths).unwrap();
            end_rollout(&paths).unwrap();
            assert_eq!(rollout(&paths), None);
            record_failed(&paths, "abc", 1000).unwrap();
            record_failed(&paths, "abc", 1100).unwrap();
            let f = failed(&paths).unwrap();
            assert_eq!((f.digest.as_str(), f.at, f.attempts), ("abc", 1100, 2));
            assert_eq!(f.retry_at(), 1100 + 120);
            record_failed(&paths, "def", 1200).unwrap();
            assert_eq!(failed(&paths).unwrap().attempts, 1);
            // An older revision's record: a bare digest.
            std::fs::write(paths.failed_file(), "abc\n").unwrap();
            assert_eq!(failed(&paths).unwrap().digest, "abc");
            clear_failed(&paths).unwrap();
            assert_eq!(failed(&paths), None);
        }
        std::fs::remove_dir_all(root).unwrap();
    }
}
