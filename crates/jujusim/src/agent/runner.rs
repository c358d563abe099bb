//! Running the charm process: clean env, stdin=/dev/null, stdout/stderr captured (Juju-style
//! 100 ms grace after exit so a daemon holding the pipes cannot hang us), wait4 for peak RSS.
//!
//! Peak RSS: `ru_maxrss` from `wait4` on the direct child. Linux reports the maximum RSS of
//! that process and of every descendant it (transitively) waited for. With an exec prefix
//! (`nsenter ... -- dispatch`) the direct child is nsenter, which waits for the dispatch
//! process, so the figure covers dispatch and whatever dispatch itself waited for — but not
//! daemons it started and left running.

use anyhow::{Context, Result};
use std::io::{Read, Write};
use std::os::unix::io::AsRawFd;
use std::path::Path;
use std::process::{ChildStderr, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Outcome of one charm process.
#[derive(Debug, Default, Clone)]
pub struct RunResult {
    pub code: i32,
    pub ms: u64,
    pub max_rss_kb: i64,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    /// Output lines in arrival order: (is_stderr, line).
    pub lines: Vec<(bool, String)>,
}

/// Run `argv` with exactly `env`, in `cwd`; echo stderr to ours when `echo_stderr`.
pub fn run(
    argv: &[String],
    env: &[(String, String)],
    cwd: &Path,
    echo_stderr: bool,
) -> Result<RunResult> {
    let mut cmd = Command::new(&argv[0]);
    cmd.args(&argv[1..])
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let start = Instant::now();
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            let code = match e.kind() {
                std::io::ErrorKind::NotFound => 127,
                std::io::ErrorKind::PermissionDenied => 126,
                _ => 1,
            };
            let msg = format!("fork/exec {}: {e}", argv[0]);
            if echo_stderr {
                eprintln!("{msg}");
            }
            return Ok(RunResult {
                code,
                stderr: msg.clone().into_bytes(),
                lines: vec![(true, msg)],
                ..Default::default()
            });
        }
    };
    let pid = child.id() as libc::pid_t;
    let out = child.stdout.take().context("child stdout")?;
    let err = child.stderr.take().context("child stderr")?;
    let done = Arc::new(AtomicBool::new(false));
    let done2 = done.clone();
    let reader = std::thread::spawn(move || capture(out, err, &done2, echo_stderr));

    let mut status: libc::c_int = 0;
    // SAFETY: rusage is plain old data; zeroed is a valid value.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: waiting for our own child with valid out-pointers.
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
        if r == pid {
            break;
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(e).context("wait4");
        }
    }
    let ms = start.elapsed().as_millis() as u64;
    done.store(true, Ordering::SeqCst);
    let (stdout, stderr, lines) = reader.join().unwrap_or_default();
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else if libc::WIFSIGNALED(status) {
        128 + libc::WTERMSIG(status)
    } else {
        1
    };
    drop(child); // already reaped by wait4; dropping does not wait again
    Ok(RunResult {
        code,
        ms,
        max_rss_kb: ru.ru_maxrss,
        stdout,
        stderr,
        lines,
    })
}

type Captured = (Vec<u8>, Vec<u8>, Vec<(bool, String)>);

fn capture(out: ChildStdout, err: ChildStderr, done: &AtomicBool, echo: bool) -> Captured {
    let mut files: [Option<std::fs::File>; 2] = [
        Some(std::fs::File::from(std::os::fd::OwnedFd::from(out))),
        Some(std::fs::File::from(std::os::fd::OwnedFd::from(err))),
    ];
    let mut bufs: [Vec<u8>; 2] = [Vec::new(), Vec::new()];
    let mut partial: [Vec<u8>; 2] = [Vec::new(), Vec::new()];
    let mut lines = Vec::new();
    let mut done_at: Option<Instant> = None;
    let mut chunk = vec![0u8; 65536];
    loop {
        if files.iter().all(Option::is_none) {
            break;
        }
        if done.load(Ordering::SeqCst) {
            let t = *done_at.get_or_insert_with(Instant::now);
            if t.elapsed() > Duration::from_millis(100) {
                break; // a background process still holds the pipe: stop like Juju does
            }
        }
        let mut pfds: Vec<libc::pollfd> = Vec::new();
        let mut which = Vec::new();
        for (i, f) in files.iter().enumerate() {
            if let Some(f) = f {
                pfds.push(libc::pollfd {
                    fd: f.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                });
                which.push(i);
            }
        }
        // SAFETY: pfds is a valid array of pollfd of the given length.
        let r = unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, 20) };
        if r <= 0 {
            continue;
        }
        for (pfd, &i) in pfds.iter().zip(&which) {
            if pfd.revents == 0 {
                continue;
            }
            let n = match files[i].as_mut().map(|f| f.read(&mut chunk)) {
                Some(Ok(n)) => n,
                Some(Err(e)) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                _ => 0,
            };
            if n == 0 {
                files[i] = None;
                continue;
            }
            let data = &chunk[..n];
            bufs[i].extend_from_slice(data);
            if i == 1 && echo {
                let mut se = std::io::stderr().lock();
                let _ = se.write_all(data);
                let _ = se.flush();
            }
            partial[i].extend_from_slice(data);
            while let Some(pos) = partial[i].iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = partial[i].drain(..=pos).collect();
                lines.push((
                    i == 1,
                    String::from_utf8_lossy(&line[..line.len() - 1]).into_owned(),
                ));
            }
        }
    }
    for (i, p) in partial.iter().enumerate() {
        if !p.is_empty() {
            lines.push((i == 1, String::from_utf8_lossy(p).into_owned()));
        }
    }
    let [o, e] = bufs;
    (o, e, lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> RunResult {
        let argv = vec!["/bin/sh".to_string(), "-c".to_string(), script.to_string()];
        let env = vec![("PATH".to_string(), "/usr/bin:/bin".to_string())];
        run(&argv, &env, Path::new("/"), false).unwrap()
    }

    #[test]
    fn captures_and_exit_codes() {
        let r = sh("echo out; echo err >&2; printf partial; exit 3");
        assert_eq!(r.code, 3);
        assert_eq!(r.stdout, b"out\npartial");
        assert_eq!(r.stderr, b"err\n");
        assert!(r.lines.contains(&(false, "out".to_string())));
        assert!(r.lines.contains(&(true, "err".to_string())));
        assert!(r.lines.contains(&(false, "partial".to_string())));
        assert!(r.max_rss_kb > 0);
    }

    #[test]
    fn env_is_clean_and_stdin_null() {
        let r = sh("echo \"HOME=${HOME-unset}\"; cat; echo end");
        assert_eq!(String::from_utf8_lossy(&r.stdout), "HOME=unset\nend\n");
    }

    #[test]
    fn background_holder_does_not_hang() {
        let t = Instant::now();
        let r = sh("sleep 3 & echo started");
        assert_eq!(r.code, 0);
        assert!(t.elapsed() < Duration::from_secs(2));
        assert_eq!(r.stdout, b"started\n");
    }

    #[test]
    fn signal_exit_code() {
        assert_eq!(sh("kill -9 $$").code, 137);
    }
}
