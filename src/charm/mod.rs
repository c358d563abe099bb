//! The charm: one holistic `reconcile` for every hook but stop/remove, plus those two and the
//! actions. Reconcile reads every input (config, relations, Juju-held state, what is installed
//! and running), computes the files, port and status it wants, and changes only what differs.
//!
//! Every step returns `Step<T>`: its value, or [`Stop::Report`] (stop here and report this
//! status; the hook exits 0), or [`Stop::Bug`] (the hook exits non-zero, Juju shows `error`
//! and retries). Steps run in a fixed order (config valid → installed → database chosen and
//! answering → key available → files rendered → serving) and the first one that cannot go
//! on decides the status; long steps also show `maintenance` live while they run.

mod cloud_code;
mod dashboard;
mod database_source;
mod email;
pub mod endpoints;
mod files_store;
mod handlers;
mod jobs;
mod load_balancer;
mod master_key;
mod peers;
mod reconcile;
mod redis;
mod service;
pub mod status;
mod steady;
mod user_secrets;

use std::time::Duration;

use crate::juju::{HookTools, JujuContext, Status};
use crate::workload::paths::Paths;
use crate::workload::probe::Probes;
use crate::workload::systemd::ServiceManager;
use status::{Blocked, Maintenance, Waiting};

pub use endpoints::{
    DASHBOARD_ROUTE_ENDPOINT, HAPROXY_ROUTE_ENDPOINT, MONGODB_CLIENT_ENDPOINT,
    MONGODB_LEGACY_ENDPOINT, PEER_ENDPOINT, POSTGRESQL_CLIENT_ENDPOINT, S3_ENDPOINT, SMTP_ENDPOINT,
    VALKEY_ENDPOINT, WEBSITE_ENDPOINT,
};
pub use master_key::MASTER_KEY_SECRET;
pub use peers::Peers;

/// How a step stops the hook early.
#[derive(Debug)]
pub enum Stop {
    /// Stop here and report this status (the hook succeeds).
    Report(Status),
    /// A fault the charm cannot classify: the hook fails and Juju retries it.
    Bug(anyhow::Error),
}

/// A reconcile step's result.
pub type Step<T> = Result<T, Stop>;

impl<E: Into<anyhow::Error>> From<E> for Stop {
    fn from(e: E) -> Self {
        Stop::Bug(e.into())
    }
}

/// Stops with `blocked`: something the operator must fix.
pub fn blocked<T>(why: Blocked) -> Step<T> {
    Err(Stop::Report(why.into()))
}

/// Stops with `waiting`: something outside the charm that will change.
pub fn waiting<T>(why: Waiting) -> Step<T> {
    Err(Stop::Report(why.into()))
}

/// How long the charm waits for things outside it.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub database: Duration,
    pub health_after_start: Duration,
    /// Between two health checks while waiting.
    pub health_poll: Duration,
    /// How long the restart grant holds: a live holder's hook restarts, waits for health and
    /// may roll back (two health waits and a drain) well within it; a holder whose machine
    /// died keeps the others waiting no longer.
    pub grant_lease: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        let health_after_start = Duration::from_secs(90);
        Timeouts {
            database: Duration::from_secs(5),
            health_after_start,
            health_poll: Duration::from_millis(250),
            grant_lease: 2 * health_after_start + Duration::from_secs(60),
        }
    }
}

/// The outside world, injected.
pub struct Charm<'a> {
    pub ctx: &'a JujuContext,
    pub tools: &'a dyn HookTools,
    pub service: &'a dyn ServiceManager,
    pub probes: &'a dyn Probes,
    pub paths: Paths,
    pub timeouts: Timeouts,
}

impl Charm<'_> {
    /// Handles the event the process was started for. `Err` only for a bug or a hook tool
    /// that failed: the hook then exits non-zero.
    pub fn run(&self) -> anyhow::Result<()> {
        use crate::juju::Event;
        match &self.ctx.event {
            Event::Action(name) => self.action(name),
            Event::Stop => {
                self.forget_steady()?;
                self.stop()
            }
            Event::Remove => {
                self.forget_steady()?;
                self.remove()
            }
            event => {
                if *event == Event::UpdateStatus {
                    if let Some(status) = self.steady_status()? {
                        self.tools.status_set(&status)?;
                        return Ok(());
                    }
                }
                self.forget_steady()?;
                self.reconcile_and_report()
            }
        }
    }

    /// Reconciles, keeps the rolling restart moving and sets the status (every hook but
    /// stop/remove, and actions that change what the units serve).
    fn reconcile_and_report(&self) -> anyhow::Result<()> {
        // The peer relation is read before anything can stop the hook: whatever stops this
        // unit's own reconcile, its stale request is withdrawn and the leader keeps rolling
        // restarts moving.
        let peers = self.peers()?;
        let (status, steady) = match self.reconcile(&peers) {
            Ok((serving, steady)) => (serving.into(), Some(steady)),
            Err(Stop::Report(status)) => (status, None),
            Err(Stop::Bug(e)) => return Err(e),
        };
        peers.finish(self.probes.now())?;
        if let Some(steady) = steady.filter(|_| peers.idle()) {
            self.remember_steady(&steady)?;
        }
        self.tools.status_set(&status)?;
        Ok(())
    }

    /// The peer relation for this hook.
    fn peers(&self) -> anyhow::Result<Peers<'_>> {
        let leader = self.tools.is_leader()?;
        Ok(Peers::read(
            self.tools,
            &self.ctx.unit_name,
            &self.ctx.app_name,
            leader,
            self.timeouts.grant_lease.as_secs(),
        )?)
    }

    /// Shows `maintenance` while a long step runs.
    fn maintenance(&self, step: Maintenance) -> Step<()> {
        self.tools.status_set(&step.into())?;
        Ok(())
    }

    /// A named point of a change where a fault test may kill the hook
    /// (`JujuContext::abort_after`). The release build aborts on panic: the process dies
    /// with no cleanup, as under SIGKILL; a test build unwinds to the test.
    fn checkpoint(&self, step: &str) {
        if self.ctx.abort_after.as_deref() == Some(step) {
            panic!(
                "aborting after {step} ({})",
                crate::juju::context::ABORT_AFTER_VAR
            );
        }
    }

    fn log(&self, message: &str) {
        // Logging must never fail a hook.
        let _ = self.tools.log("INFO", message);
    }
}
