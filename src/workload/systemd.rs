//! The service manager seam: `systemctl` on a unit.

use anyhow::{bail, Context, Result};

/// The service's systemd unit.
pub const SERVICE_UNIT: &str = "parse-server.service";

/// What the charm needs from the service manager.
pub trait ServiceManager {
    fn daemon_reload(&self) -> Result<()>;
    fn enable(&self, unit: &str) -> Result<()>;
    fn disable(&self, unit: &str) -> Result<()>;
    fn restart(&self, unit: &str) -> Result<()>;
    fn stop(&self, unit: &str) -> Result<()>;
    fn is_active(&self, unit: &str) -> Result<bool>;
    /// Enables `unit` and starts it now (`systemctl enable --now`).
    fn enable_now(&self, unit: &str) -> Result<()>;
    /// Stops `unit` and disables it (`systemctl disable --now`).
    fn disable_now(&self, unit: &str) -> Result<()>;
}

/// Runs `systemctl` from PATH.
pub struct Systemctl {
    path: Option<String>,
}

impl Systemctl {
    pub fn new(path: Option<String>) -> Self {
        Systemctl { path }
    }

    fn run(&self, args: &[&str]) -> Result<std::process::Output> {
        let mut expr = duct::cmd("systemctl", args)
            .stdin_null()
            .stdout_capture()
            .stderr_capture()
            .unchecked();
        if let Some(p) = &self.path {
            expr = expr.env("PATH", p);
        }
        expr.run()
            .with_context(|| format!("running systemctl {}", args.join(" ")))
    }

    fn checked(&self, args: &[&str]) -> Result<()> {
        let out = self.run(args)?;
        if !out.status.success() {
            bail!(
                "systemctl {} failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(())
    }
}

impl ServiceManager for Systemctl {
    fn daemon_reload(&self) -> Result<()> {
        self.checked(&["daemon-reload"])
    }
    fn enable(&self, unit: &str) -> Result<()> {
        self.checked(&["enable", unit])
    }
    fn disable(&self, unit: &str) -> Result<()> {
        self.checked(&["disable", unit])
    }
    fn restart(&self, unit: &str) -> Result<()> {
        self.checked(&["restart", unit])
    }
    fn stop(&self, unit: &str) -> Result<()> {
        self.checked(&["stop", unit])
    }
    fn enable_now(&self, unit: &str) -> Result<()> {
        self.checked(&["enable", "--now", unit])
    }
    fn disable_now(&self, unit: &str) -> Result<()> {
        self.checked(&["disable", "--now", unit])
    }
    fn is_active(&self, unit: &str) -> Result<bool> {
        // Exit 0 = active; non-zero with "inactive"/"failed"/"unknown" is an answer, not an
        // error (a unit file that does not exist yet is simply not active).
        let out = self.run(&["is-active", unit])?;
        Ok(out.status.success() && String::from_utf8_lossy(&out.stdout).trim() == "active")
    }
}
