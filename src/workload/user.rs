//! The system account the service runs as.

use std::path::Path;

use anyhow::{Context, Result};

/// `(uid, gid)` of `name` from `<root>/etc/passwd`, if the account exists.
pub fn lookup(root: &Path, name: &str) -> Option<(u32, u32)> {
    let passwd = std::fs::read_to_string(root.join("etc/passwd")).ok()?;
    passwd.lines().find_map(|line| {
        let mut f = line.split(':');
        (f.next()? == name).then_some(())?;
        let _password = f.next()?;
        Some((f.next()?.parse().ok()?, f.next()?.parse().ok()?))
    })
}

/// Creates the system user and its group (no login shell, home = the state dir) unless it
/// exists. Returns `(uid, gid)`.
pub fn ensure_system_user(root: &Path, name: &str, home: &str) -> Result<(u32, u32)> {
    if let Some(ids) = lookup(root, name) {
        return Ok(ids);
    }
    duct::cmd!(
        "useradd",
        "--system",
        "--user-group",
        "--no-create-home",
        "--home-dir",
        home,
        "--shell",
        "/usr/sbin/nologin",
        "--comment",
        "Parse Server",
        name
    )
    .stdin_null()
    .run()
    .with_context(|| format!("useradd {name}"))?;
    lookup(root, name).with_context(|| format!("user {name} missing after useradd"))
}

/// Removes the user and its group (on `remove`).
pub fn remove_system_user(root: &Path, name: &str) -> Result<()> {
    if lookup(root, name).is_none() {
        return Ok(());
    }
    duct::cmd!("userdel", name)
        .stdin_null()
        .run()
        .with_context(|| format!("userdel {name}"))
        .map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_passwd() {
        let dir = std::env::temp_dir().join(format!("psc-user-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("etc")).unwrap();
        std::fs::write(
            dir.join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/bash\nparse-server:x:998:997:Parse Server:/var/lib/parse-server:/usr/sbin/nologin\nparse-server2:x:5:5::/:/bin/false\n",
        )
        .unwrap();
        assert_eq!(lookup(&dir, "parse-server"), Some((998, 997)));
        assert_eq!(lookup(&dir, "parse"), None);
        assert_eq!(lookup(&dir, "root"), Some((0, 0)));
        std::fs::remove_dir_all(dir).unwrap();
    }
}
