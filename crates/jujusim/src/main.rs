//! jujusim: a simulator of Juju's hook tools, unit agent (hook/action runner, lifecycle
//! macros) and simulated machines (the host's systemd booted as PID 1 of a unit's own
//! namespaces) for testing a machine charm without Juju.
//!
//! If argv[0]'s basename is a hook tool name it acts as that tool (tool mode); otherwise it
//! is the driver CLI (`jujusim <subcommand>`).

mod actionparams;
mod boot;
mod charm;
mod driver;
mod errors;
mod flags;
mod gojson;
mod help;
mod hooks;
#[cfg(test)]
mod hooks_tests;
mod journal;
mod keyvalue;
mod lifecycle;
mod machine;
mod model;
mod modelcli;
mod modelstatus;
mod net;
mod output;
mod package;
mod ports;
mod projection;
mod queue;
mod relations;
mod runner;
mod secrets;
mod settle;
mod setup;
mod state;
mod statusview;
mod tools;
mod topology;
mod util;

fn main() {
    let args: Vec<String> = std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let argv0 = args.first().cloned().unwrap_or_default();
    let name = std::path::Path::new(&argv0)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let rest = args.get(1..).unwrap_or(&[]);
    let code = if tools::is_tool(&name) {
        tools::run(&name, rest)
    } else {
        driver::run(rest)
    };
    std::process::exit(code);
}
