//! jujusim: a simulator of Juju's hook tools, unit agent (hook/action runner, lifecycle
//! macros) and simulated machines (the host's systemd booted as PID 1 of a unit's own
//! namespaces) for testing a machine charm without Juju.
//!
//! The simulator's parts, by what they are:
//! - `tools`: the hook tools (`relation-get`, `status-set`, ...), their help and output;
//! - `agent`: the unit agent (one unit's state, hooks and actions, lifecycle macros);
//! - `model`: a model of several units (the shared model, its event queue, `settle`);
//! - `machine`: booted machines (`machine-up`...) and the model network (`net-up`...);
//! - shared: the driver CLI (`driver`), errors, flags, Go-compatible JSON, `key=value`
//!   arguments, small file helpers.
//!
//! `kit` is the test side: the driver of the `jujusim` binary that a charm's tests use
//! (units, networks, models, host-state guards, background processes).
//!
//! The binary's `main` is [`run`]. The library never imports a charm.

mod agent;
mod driver;
mod errors;
mod flags;
mod gojson;
mod keyvalue;
mod machine;
mod model;
mod tools;
mod util;

pub mod kit;

/// Whether `name` is one of the hook tools the simulator provides (a program a hook may
/// run that is Juju's side, not the charm's).
pub fn is_hook_tool(name: &str) -> bool {
    tools::is_tool(name)
}

/// The `jujusim` binary: if argv[0]'s basename is a hook tool name it acts as that tool
/// (tool mode); otherwise it is the driver CLI (`jujusim <subcommand>`). Returns the exit
/// code.
pub fn run(args: &[String]) -> i32 {
    let argv0 = args.first().cloned().unwrap_or_default();
    let name = std::path::Path::new(&argv0)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let rest = args.get(1..).unwrap_or(&[]);
    if tools::is_tool(&name) {
        tools::run(&name, rest)
    } else {
        driver::run(rest)
    }
}
