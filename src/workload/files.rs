//! Writing rendered files: atomically, with their final mode and owner from the first byte,
//! and only when the content differs (the caller learns whether anything changed).

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Who owns a file and its permission bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileMode {
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

/// The charm's own records: root's alone.
pub const ROOT_ONLY_DIR: FileMode = FileMode {
    mode: 0o700,
    uid: 0,
    gid: 0,
};
pub const ROOT_ONLY_FILE: FileMode = FileMode {
    mode: 0o600,
    uid: 0,
    gid: 0,
};

/// Writes `contents` to `path` unless it already holds exactly that with that mode and owner.
/// Returns whether the file changed. The new content is written to a temporary file created
/// with `mode` (so a secret is never readable by others, not even briefly) and renamed over.
pub fn write_if_changed(path: &Path, contents: &[u8], mode: FileMode) -> io::Result<bool> {
    if let Ok(meta) = fs::metadata(path) {
        let same_meta =
            meta.mode() & 0o7777 == mode.mode && meta.uid() == mode.uid && meta.gid() == mode.gid;
        if same_meta && fs::read(path).is_ok_and(|old| old == contents) {
            return Ok(false);
        }
    }
    let dir = path
        .parent()
        .ok_or_else(|| io::Error::other("path has no parent"))?;
    fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(
        ".{}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("file")
    ));
    let _ = fs::remove_file(&tmp);
    {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode.mode & 0o600)
            .open(&tmp)?;
        std::os::unix::fs::fchown(&f, Some(mode.uid), Some(mode.gid))?;
        f.set_permissions(fs::Permissions::from_mode(mode.mode))?;
        f.write_all(contents)?;
        f.sync_all()?;
    }
    fs::rename(&tmp, path)?;
    Ok(true)
}

/// The file's content, or `None` if it does not exist.
pub fn read_optional(path: &Path) -> io::Result<Option<Vec<u8>>> {
    match fs::read(path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Creates `dir` (and parents) and sets its mode and owner.
pub fn ensure_dir(dir: &Path, mode: FileMode) -> io::Result<()> {
    fs::create_dir_all(dir)?;
    std::os::unix::fs::chown(dir, Some(mode.uid), Some(mode.gid))?;
    fs::set_permissions(dir, fs::Permissions::from_mode(mode.mode))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// This process's own uid and gid, as a file it creates gets them.
    fn me(mode: u32) -> FileMode {
        let probe = std::env::temp_dir().join(format!("psc-me-{}", std::process::id()));
        fs::write(&probe, b"").unwrap();
        let meta = fs::metadata(&probe).unwrap();
        fs::remove_file(&probe).unwrap();
        FileMode {
            mode,
            uid: meta.uid(),
            gid: meta.gid(),
        }
    }

    #[test]
    fn writes_once_then_reports_unchanged() {
        let dir = tempdir("files");
        let p = dir.join("sub/env");
        assert!(write_if_changed(&p, b"A=1\n", me(0o640)).unwrap());
        assert!(!write_if_changed(&p, b"A=1\n", me(0o640)).unwrap());
        assert_eq!(fs::metadata(&p).unwrap().mode() & 0o777, 0o640);
        assert!(write_if_changed(&p, b"A=2\n", me(0o640)).unwrap());
        assert_eq!(fs::read(&p).unwrap(), b"A=2\n");
        // A mode change alone counts as a change.
        assert!(write_if_changed(&p, b"A=2\n", me(0o600)).unwrap());
        assert_eq!(fs::metadata(&p).unwrap().mode() & 0o777, 0o600);
        assert_eq!(read_optional(&dir.join("nope")).unwrap(), None);
        fs::remove_dir_all(dir).unwrap();
    }

    pub(crate) fn tempdir(tag: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!(
            "psc-test-{tag}-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }
}
