//! Long-running processes a test started (servers), each in its own process group so that
//! what they fork (postgres under runuser) goes with them.

use std::path::Path;
use std::process::{Child, Command, Stdio};

/// The processes a unit or a network started for a test, stopped at its teardown.
#[derive(Default)]
pub struct Background(Vec<Child>);

impl Background {
    /// Starts `cmd` in a new process group; returns its pid.
    pub fn spawn(&mut self, cmd: &mut Command) -> u32 {
        use std::os::unix::process::CommandExt;
        let child = cmd
            .process_group(0)
            .spawn()
            .expect("spawning a background process");
        let pid = child.id();
        self.0.push(child);
        pid
    }

    /// Kills one process started with `spawn` (and its process group) and waits for it.
    pub fn stop(&mut self, pid: u32) {
        if let Some(i) = self.0.iter().position(|c| c.id() == pid) {
            let mut child = self.0.remove(i);
            kill_group(&mut child);
        }
    }

    /// Kills every process started with `spawn`.
    pub fn stop_all(&mut self) {
        for mut c in self.0.drain(..) {
            kill_group(&mut c);
        }
    }

    /// The pids of the processes still held.
    pub fn pids(&self) -> Vec<u32> {
        self.0.iter().map(Child::id).collect()
    }
}

/// Stdout and stderr to one new file `dir/name`.
pub fn log_file(dir: &Path, name: &str) -> (Stdio, Stdio) {
    let f = std::fs::File::create(dir.join(name)).unwrap();
    (f.try_clone().unwrap().into(), f.into())
}

/// Kills `child`'s whole process group (it was spawned in a group of its own) and reaps it.
pub fn kill_group(child: &mut Child) {
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{}", child.id())])
        .stderr(Stdio::null())
        .status();
    let _ = child.kill();
    let _ = child.wait();
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    fn alive(pid: u32) -> bool {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
            !s.rsplit(')')
                .next()
                .unwrap_or("")
                .trim_start()
                .starts_with('Z')
        })
    }

    fn wait_gone(pid: u32) -> bool {
        let deadline = Instant::now() + Duration::from_secs(5);
        while alive(pid) {
            if Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        true
    }

    #[test]
    fn stopping_kills_the_whole_process_group() {
        let dir = std::env::temp_dir().join(format!("kit-bg-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut bg = Background::default();
        let (o, e) = log_file(&dir, "sh.log");
        // A shell that forks a grandchild and reports its pid.
        let pid = bg.spawn(
            Command::new("sh")
                .args(["-c", "sleep 300 & echo $! > \"$0\"; echo started; wait"])
                .arg(dir.join("child.pid"))
                .stdout(o)
                .stderr(e),
        );
        let other = bg.spawn(Command::new("sleep").arg("300"));
        let deadline = Instant::now() + Duration::from_secs(5);
        let grandchild = loop {
            if let Some(p) = std::fs::read_to_string(dir.join("child.pid"))
                .ok()
                .and_then(|s| s.trim().parse::<u32>().ok())
            {
                break p;
            }
            assert!(
                Instant::now() < deadline,
                "the shell never started its child"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        assert_eq!(bg.pids(), vec![pid, other]);
        bg.stop(pid);
        assert!(wait_gone(grandchild), "the grandchild outlived its group");
        assert!(alive(other));
        assert_eq!(bg.pids(), vec![other]);
        bg.stop_all();
        assert!(bg.pids().is_empty());
        assert!(wait_gone(other));
        let log = std::fs::read_to_string(dir.join("sh.log")).unwrap();
        assert_eq!(log, "started\n");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
