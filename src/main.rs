//! The charm's `dispatch`: builds the context from the environment, runs the event, maps the
//! result to an exit code (non-zero only for bugs and failed hook tools: Juju then retries).

use std::collections::BTreeMap;
use std::process::ExitCode;

use parse_server_charm::charm::{Charm, Timeouts};
use parse_server_charm::juju::{CachedTools, CliHookTools, HookTools, JujuContext};
use parse_server_charm::workload::paths::Paths;
use parse_server_charm::workload::probe::SystemProbes;
use parse_server_charm::workload::systemd::Systemctl;

fn main() -> ExitCode {
    let env: BTreeMap<String, String> = std::env::vars().collect();
    let argv0 = std::env::args().next().unwrap_or_default();
    let ctx = match JujuContext::from_env(&env, &argv0) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("parse-server-charm: {e}");
            return ExitCode::from(2);
        }
    };
    let tools = CachedTools::new(CliHookTools::new(ctx.path.clone()));
    let service = Systemctl::new(ctx.path.clone());
    let charm = Charm {
        ctx: &ctx,
        tools: &tools,
        service: &service,
        probes: &SystemProbes,
        paths: Paths::new("/"),
        timeouts: Timeouts::default(),
    };
    match charm.run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let msg = format!("{:?} failed: {e:#}", ctx.event);
            let _ = tools.log("ERROR", &msg);
            eprintln!("parse-server-charm: {msg}");
            ExitCode::FAILURE
        }
    }
}
