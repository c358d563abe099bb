//! `jujusim machine-boot U` (internal): the first process of a unit's new namespaces, run by
//! `machine-up` through `unshare`. It builds the unit's root filesystem and execs the host's
//! systemd as PID 1:
//!
//! - an overlay with `lowerdir=/` and `upperdir`/`workdir` on the unit's disk (`U/disk`);
//! - a fresh `/proc` with `/proc/sys` (and `/proc/sysrq-trigger`) bound read-only: a
//!   writable `/proc/sys` lets the booting systemd apply the host's sysctl.d files to the
//!   host kernel. The boot stops if `/proc/sys` is not read-only;
//! - `/sys` read-only with a fresh cgroup2 tree on `/sys/fs/cgroup` (the unit's cgroup
//!   namespace root, made by machine-up);
//! - a tmpfs `/dev` with null, zero, full, random, urandom and tty only, its own devpts,
//!   the usual links, a tmpfs `/dev/shm` and `/dev/console` bound to `U/console.log`;
//! - tmpfs `/run` and `/tmp`;
//! - the keep paths (machine::keep_paths) bound at their own paths, so that what tools inside
//!   write there lands in the host's directories, not on the unit's disk;
//! - the host name, `pivot_root` into the overlay, and
//!   `exec env -i container=<name> /lib/systemd/systemd --system --unit=multi-user.target`.

use crate::errors::{CmdError, CmdResult};
use crate::machine::{self, SYSTEMD};
use std::ffi::CString;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

fn cstr(p: &Path) -> CmdResult<CString> {
    CString::new(p.as_os_str().as_bytes())
        .map_err(|_| CmdError::runtime(format!("{}: NUL in path", p.display())))
}

fn mount(
    src: Option<&Path>,
    target: &Path,
    fstype: Option<&str>,
    flags: libc::c_ulong,
    data: Option<&str>,
) -> CmdResult<()> {
    let src_c = src.map(cstr).transpose()?;
    let target_c = cstr(target)?;
    let fstype_c = fstype.map(|f| CString::new(f).expect("no NUL"));
    let data_c = data
        .map(|d| CString::new(d).map_err(|_| CmdError::runtime("NUL in mount options")))
        .transpose()?;
    // SAFETY: every pointer is a valid NUL-terminated string or null.
    let rc = unsafe {
        libc::mount(
            src_c.as_ref().map_or(std::ptr::null(), |s| s.as_ptr()),
            target_c.as_ptr(),
            fstype_c.as_ref().map_or(std::ptr::null(), |s| s.as_ptr()),
            flags,
            data_c
                .as_ref()
                .map_or(std::ptr::null(), |s| s.as_ptr().cast()),
        )
    };
    if rc != 0 {
        return Err(CmdError::runtime(format!(
            "mount {} on {} ({}): {}",
            src.map(|s| s.display().to_string()).unwrap_or_default(),
            target.display(),
            fstype.unwrap_or("bind/remount"),
            std::io::Error::last_os_error()
        )));
    }
    Ok(())
}

const NOSUID_NODEV_NOEXEC: libc::c_ulong = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;

/// Bind `path` onto itself and make that mount read-only.
fn bind_read_only(path: &Path) -> CmdResult<()> {
    mount(Some(path), path, None, libc::MS_BIND, None)?;
    mount(
        None,
        path,
        None,
        libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY | NOSUID_NODEV_NOEXEC,
        None,
    )
}

/// Refuse to go on unless writes to `path` fail with EROFS.
fn assert_read_only(path: &Path) -> CmdResult<()> {
    let c = cstr(path)?;
    // SAFETY: statvfs is plain data, for which all-zero bytes are a valid value.
    let mut sv: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a NUL-terminated path that outlives the call; `sv` is a valid,
    // exclusively borrowed statvfs the kernel fills.
    let rc = unsafe { libc::statvfs(c.as_ptr(), &mut sv) };
    if rc != 0 || sv.f_flag & libc::ST_RDONLY == 0 {
        return Err(CmdError::runtime(format!(
            "{} is not read-only: refusing to boot (systemd would change the host kernel's settings)",
            path.display()
        )));
    }
    Ok(())
}

fn touch(path: &Path) -> CmdResult<()> {
    if !path.exists() {
        if let Some(p) = path.parent() {
            std::fs::create_dir_all(p)?;
        }
        std::fs::File::create(path)?;
    }
    Ok(())
}

fn symlink(target: &str, link: &Path) -> CmdResult<()> {
    std::os::unix::fs::symlink(target, link)
        .map_err(|e| CmdError::runtime(format!("symlink {}: {e}", link.display())))
}

fn wait_for_host() -> CmdResult<()> {
    let Ok(fd) = std::env::var("JUJUSIM_BOOT_FD") else {
        return Ok(());
    };
    let fd: i32 = fd
        .parse()
        .map_err(|_| CmdError::runtime("bad JUJUSIM_BOOT_FD"))?;
    // SAFETY: the fd was set up by machine-up for this process and is read once here.
    let mut f = unsafe {
        use std::os::fd::FromRawFd;
        std::fs::File::from_raw_fd(fd)
    };
    let mut buf = [0u8; 2];
    f.read_exact(&mut buf)
        .map_err(|e| CmdError::runtime(format!("waiting for machine-up: {e}")))?;
    if &buf != b"go" {
        return Err(CmdError::runtime("machine-up did not say go"));
    }
    Ok(())
}

fn overlay(dir: &Path, root: &Path) -> CmdResult<()> {
    let upper = dir.join("disk/upper");
    let work = dir.join("disk/work");
    for p in [&upper, &work] {
        let s = p.display().to_string();
        if s.contains([',', ':', '\\']) {
            return Err(CmdError::runtime(format!(
                "{s}: overlay options cannot name a path with ',' ':' or '\\'"
            )));
        }
    }
    let opts = format!(
        "lowerdir=/,upperdir={},workdir={}",
        upper.display(),
        work.display()
    );
    // The previous boot's mount namespace may take a moment to let go of the upper dir.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match mount(
            Some(Path::new("overlay")),
            root,
            Some("overlay"),
            0,
            Some(&opts),
        ) {
            Ok(()) => return Ok(()),
            Err(e) if e.msg.contains("busy") && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(e) => return Err(e),
        }
    }
}

fn dev(root: &Path, console_log: &Path) -> CmdResult<()> {
    let d = root.join("dev");
    mount(
        Some(Path::new("tmpfs")),
        &d,
        Some("tmpfs"),
        libc::MS_NOSUID | libc::MS_STRICTATIME,
        Some("mode=755,size=4m"),
    )?;
    for n in ["null", "zero", "full", "random", "urandom", "tty"] {
        let node = d.join(n);
        touch(&node)?;
        mount(
            Some(&Path::new("/dev").join(n)),
            &node,
            None,
            libc::MS_BIND,
            None,
        )?;
    }
    let pts = d.join("pts");
    std::fs::create_dir(&pts)?;
    mount(
        Some(Path::new("devpts")),
        &pts,
        Some("devpts"),
        libc::MS_NOSUID | libc::MS_NOEXEC,
        Some("newinstance,ptmxmode=0666,mode=620,gid=5"),
    )?;
    symlink("pts/ptmx", &d.join("ptmx"))?;
    symlink("/proc/self/fd", &d.join("fd"))?;
    for (i, n) in ["stdin", "stdout", "stderr"].iter().enumerate() {
        symlink(&format!("/proc/self/fd/{i}"), &d.join(n))?;
    }
    let shm = d.join("shm");
    std::fs::create_dir(&shm)?;
    mount(
        Some(Path::new("tmpfs")),
        &shm,
        Some("tmpfs"),
        libc::MS_NOSUID | libc::MS_NODEV,
        Some("mode=1777"),
    )?;
    let console = d.join("console");
    touch(&console)?;
    mount(Some(console_log), &console, None, libc::MS_BIND, None)
}

fn keep(root: &Path, paths: &[PathBuf]) -> CmdResult<()> {
    for p in paths {
        let target = root.join(p.strip_prefix("/").unwrap_or(p));
        if p.is_dir() {
            std::fs::create_dir_all(&target)?;
        } else {
            touch(&target)?;
        }
        // Not recursive: U holds the overlay's own mount point.
        mount(Some(p), &target, None, libc::MS_BIND, None)?;
    }
    Ok(())
}

fn pivot(root: &Path) -> CmdResult<()> {
    std::env::set_current_dir(root)?;
    let dot = CString::new(".").expect("no NUL");
    // SAFETY: pivot_root(".", ".") stacks the old root on the new one; it is then detached.
    let rc = unsafe { libc::syscall(libc::SYS_pivot_root, dot.as_ptr(), dot.as_ptr()) };
    if rc != 0 {
        return Err(CmdError::runtime(format!(
            "pivot_root: {}",
            std::io::Error::last_os_error()
        )));
    }
    // SAFETY: detaching the old root, now mounted on ".".
    if unsafe { libc::umount2(dot.as_ptr(), libc::MNT_DETACH) } != 0 {
        return Err(CmdError::runtime(format!(
            "detaching the old root: {}",
            std::io::Error::last_os_error()
        )));
    }
    std::env::set_current_dir("/")?;
    Ok(())
}

/// `jujusim machine-boot U`.
pub fn machine_boot(dir: &Path) -> CmdResult<i32> {
    if std::process::id() != 1 {
        return Err(CmdError::runtime(
            "machine-boot runs as PID 1 of a unit's namespaces (machine-up starts it)",
        ));
    }
    let cfg = machine::load_config(dir)
        .ok_or_else(|| CmdError::runtime(format!("{}: no machine.json", dir.display())))?;
    wait_for_host()?;
    let keep_paths = machine::keep_paths(dir);
    mount(
        None,
        Path::new("/"),
        None,
        libc::MS_REC | libc::MS_PRIVATE,
        None,
    )?;
    let root = dir.join("root");
    overlay(dir, &root)?;

    let proc_ = root.join("proc");
    mount(
        Some(Path::new("proc")),
        &proc_,
        Some("proc"),
        NOSUID_NODEV_NOEXEC,
        None,
    )?;
    bind_read_only(&proc_.join("sys"))?;
    if proc_.join("sysrq-trigger").exists() {
        bind_read_only(&proc_.join("sysrq-trigger"))?;
    }
    assert_read_only(&proc_.join("sys"))?;

    let sys = root.join("sys");
    mount(
        Some(Path::new("sysfs")),
        &sys,
        Some("sysfs"),
        libc::MS_RDONLY | NOSUID_NODEV_NOEXEC,
        None,
    )?;
    mount(
        Some(Path::new("cgroup2")),
        &sys.join("fs/cgroup"),
        Some("cgroup2"),
        NOSUID_NODEV_NOEXEC,
        None,
    )?;

    dev(&root, &dir.join("console.log"))?;
    for (d, mode) in [("run", "mode=755"), ("tmp", "mode=1777")] {
        mount(
            Some(Path::new("tmpfs")),
            &root.join(d),
            Some("tmpfs"),
            libc::MS_NOSUID | libc::MS_NODEV,
            Some(mode),
        )?;
    }
    keep(&root, &keep_paths)?;

    // SAFETY: sethostname with a valid buffer and length, in the unit's own UTS namespace.
    if unsafe { libc::sethostname(cfg.name.as_ptr().cast(), cfg.name.len()) } != 0 {
        return Err(CmdError::runtime(format!(
            "sethostname: {}",
            std::io::Error::last_os_error()
        )));
    }
    pivot(&root)?;
    assert_read_only(Path::new("/proc/sys"))?;

    // SAFETY: umask(2) cannot fail.
    unsafe { libc::umask(0o022) };
    let err = Command::new(SYSTEMD)
        .args(["--system", "--unit=multi-user.target"])
        .env_clear()
        .env("container", &cfg.name)
        .stdin(std::process::Stdio::null())
        .exec();
    Err(CmdError::runtime(format!("exec {SYSTEMD}: {err}")))
}
