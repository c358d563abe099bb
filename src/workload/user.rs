//! The system account and group the service runs as. The option file holds the keys and the
//! database credentials and is readable by root and this group only, so the group must be
//! the service's own: no other account may be in it.

use anyhow::{bail, Context, Result};

use super::paths::Paths;

/// The system user, and its group, the service runs as.
pub const SERVICE_USER: &str = "parse-server";

/// The service's account: who runs it, and the group its secret files belong to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Account {
    pub uid: u32,
    pub gid: u32,
}

struct PasswdEntry {
    name: String,
    uid: u32,
    gid: u32,
}

fn passwd(paths: &Paths) -> Vec<PasswdEntry> {
    std::fs::read_to_string(paths.etc_passwd())
        .unwrap_or_default()
        .lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split(':').collect();
            Some(PasswdEntry {
                name: f.first()?.to_string(),
                uid: f.get(2)?.parse().ok()?,
                gid: f.get(3)?.parse().ok()?,
            })
        })
        .collect()
}

/// `(gid, members)` of group `name` from `/etc/group`.
fn group(paths: &Paths, name: &str) -> Option<(u32, Vec<String>)> {
    let text = std::fs::read_to_string(paths.etc_group()).ok()?;
    text.lines().find_map(|line| {
        let f: Vec<&str> = line.split(':').collect();
        (*f.first()? == name).then_some(())?;
        let gid = f.get(2)?.parse().ok()?;
        let members = f
            .get(3)
            .map(|m| {
                m.split(',')
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        Some((gid, members))
    })
}

/// `(uid, primary gid)` of user `name`.
pub fn lookup(paths: &Paths, name: &str) -> Option<(u32, u32)> {
    passwd(paths)
        .into_iter()
        .find(|e| e.name == name)
        .map(|e| (e.uid, e.gid))
}

/// What is wrong with existing accounts that would let someone else read the service's
/// secrets; `None` when the account and its group are the service's alone.
fn conflict(paths: &Paths) -> Option<String> {
    let (uid, primary) = lookup(paths, SERVICE_USER)?;
    let _ = uid;
    let Some((gid, members)) = group(paths, SERVICE_USER) else {
        return Some(format!(
            "the existing {SERVICE_USER} account has no {SERVICE_USER} group"
        ));
    };
    if primary != gid {
        return Some(format!(
            "the existing {SERVICE_USER} account's primary group is gid {primary}, not the \
             {SERVICE_USER} group (gid {gid}): make it its primary group"
        ));
    }
    if let Some(m) = members.iter().find(|m| *m != SERVICE_USER) {
        return Some(format!(
            "account {m:?} is a member of the {SERVICE_USER} group, which may read the \
             service's secrets: remove it from the group"
        ));
    }
    if let Some(e) = passwd(paths)
        .into_iter()
        .find(|e| e.gid == gid && e.name != SERVICE_USER)
    {
        return Some(format!(
            "account {:?} has the {SERVICE_USER} group as its primary group, which may read \
             the service's secrets",
            e.name
        ));
    }
    None
}

/// Makes sure the service's group and user exist (creating them as system accounts) and are
/// the service's alone. `Ok(Err(why))`: an existing account the operator must fix first.
/// Below a scratch root nothing is ever created: a test must provide the account.
pub fn ensure_service_account(paths: &Paths) -> Result<std::result::Result<Account, String>> {
    if !paths.is_system_root() {
        if lookup(paths, SERVICE_USER).is_none() || group(paths, SERVICE_USER).is_none() {
            bail!(
                "refusing to create the {SERVICE_USER} account for the scratch root {}: \
                 useradd would change the host's accounts",
                paths.root.display()
            );
        }
    } else {
        if group(paths, SERVICE_USER).is_none() && lookup(paths, SERVICE_USER).is_none() {
            run("groupadd", &["--system", SERVICE_USER])?;
        }
        if lookup(paths, SERVICE_USER).is_none() && group(paths, SERVICE_USER).is_some() {
            run(
                "useradd",
                &[
                    "--system",
                    "--gid",
                    SERVICE_USER,
                    "--no-create-home",
                    "--home-dir",
                    Paths::STATE_DIR,
                    "--shell",
                    "/usr/sbin/nologin",
                    "--comment",
                    "Parse Server",
                    SERVICE_USER,
                ],
            )?;
        }
    }
    if let Some(why) = conflict(paths) {
        return Ok(Err(why));
    }
    let (uid, gid) = lookup(paths, SERVICE_USER)
        .with_context(|| format!("user {SERVICE_USER} missing after useradd"))?;
    Ok(Ok(Account { uid, gid }))
}

fn run(program: &str, args: &[&str]) -> Result<()> {
    // The tools' output is the hook's: Juju logs a hook's stdout at DEBUG.
    duct::cmd(program, args)
        .stdin_null()
        .stderr_to_stdout()
        .run()
        .with_context(|| format!("{program} {}", args.join(" ")))
        .map(drop)
}

/// Removes the user and its group (on `remove`).
pub fn remove_service_account(paths: &Paths) -> Result<()> {
    if !paths.is_system_root() {
        return Ok(());
    }
    if lookup(paths, SERVICE_USER).is_some() {
        run("userdel", &[SERVICE_USER])?;
    }
    if group(paths, SERVICE_USER).is_some() {
        run("groupdel", &[SERVICE_USER])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::files::tests::tempdir;

    fn root_with(tag: &str, passwd: &str, group: &str) -> (std::path::PathBuf, Paths) {
        let dir = tempdir(tag);
        std::fs::create_dir_all(dir.join("etc")).unwrap();
        std::fs::write(dir.join("etc/passwd"), passwd).unwrap();
        std::fs::write(dir.join("etc/group"), group).unwrap();
        let paths = Paths::new(&dir);
        (dir, paths)
    }

    const ROOT: &str = "root:x:0:0:root:/root:/bin/bash\n";

    #[test]
    fn the_service_account_alone() {
        let (dir, paths) = root_with(
            "user-1",            &format!("{ROOT}parse-server:x:998:997:Parse Server:/var/lib/parse-server:/usr/sbin/nologin\n"),
            "root:x:0:\nparse-server:x:997:\n",
        );
        assert_eq!(lookup(&paths, "parse-server"), Some((998, 997)));
        assert_eq!(
            ensure_service_account(&paths).unwrap(),
            Ok(Account { uid: 998, gid: 997 })
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn an_account_with_another_primary_group_is_refused() {
        let (dir, paths) = root_with(
            "user-2",
            &format!("{ROOT}parse-server:x:998:100::/:/bin/false\n"),
            "users:x:100:\nparse-server:x:997:\n",
        );
        let why = ensure_service_account(&paths).unwrap().unwrap_err();
        assert!(why.contains("primary group is gid 100"), "{why}");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn other_members_of_the_group_are_refused() {
        let (dir, paths) = root_with(
            "user-3",
            &format!("{ROOT}parse-server:x:998:997::/:/bin/false\nmallory:x:1000:997::/:/bin/sh\n"),
            "parse-server:x:997:\n",
        );
        let why = ensure_service_account(&paths).unwrap().unwrap_err();
        assert!(why.contains("\"mallory\""), "{why}");
        let (dir2, paths2) = root_with(
            "user-4",
            &format!("{ROOT}parse-server:x:998:997::/:/bin/false\n"),
            "parse-server:x:997:parse-server,eve\n",
        );
        let why = ensure_service_account(&paths2).unwrap().unwrap_err();
        assert!(why.contains("\"eve\""), "{why}");
        std::fs::remove_dir_all(dir).unwrap();
        std::fs::remove_dir_all(dir2).unwrap();
    }

    #[test]
    fn a_scratch_root_never_creates_accounts() {
        let (dir, paths) = root_with("user-5", ROOT, "root:x:0:\n");
        let err = ensure_service_account(&paths).unwrap_err().to_string();
        assert!(err.contains("refusing to create"), "{err}");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
