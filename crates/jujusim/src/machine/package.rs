//! `jujusim deploy-charm`: unpack a `.charm` (zip) into the unit's agent dir on its running
//! machine, as `juju deploy`/`juju refresh` would.

use crate::agent::lifecycle::refresh_charm;
use crate::agent::setup::{init_unit, InitOpts};
use crate::agent::state::with_state;
use crate::agent::{charm, state};
use crate::errors::{CmdError, CmdResult};
use std::path::Path;
use std::process::Command;

/// Unpack `charm_file` into `/var/lib/juju/agents/unit-<app>-<n>/charm` of the running
/// machine (cleared first), written through the machine's root (`/proc/<pid>/root`), so it
/// lands on the unit's disk like any write from inside; init the unit dir if it has no state
/// yet, else re-read the charm's YAML.
///
/// With `machine` (`--machine U0`) the unit is a second unit on U0's running machine (as a
/// subordinate, or any unit placed on an existing machine, lives beside the first): its
/// hooks enter U0's namespaces and see U0's services and files. `dir` must lie inside U0's
/// unit dir, the one host directory every boot binds into the machine at its own path, so
/// that the unit's hook tools (`dir/tools`) are reachable there and write its state on the
/// host. The second unit has no machine of its own: after U0's machine reboots, deploy the
/// charm again to enter the new namespaces.
pub fn deploy_charm(
    dir: &Path,
    charm_file: &Path,
    mut opts: InitOpts,
    machine: Option<&Path>,
) -> CmdResult<i32> {
    if !charm_file.is_file() {
        return Err(CmdError::runtime(format!(
            "{}: no such file",
            charm_file.display()
        )));
    }
    std::fs::create_dir_all(dir)?;
    let machine_dir = match machine {
        Some(m) => {
            let (m, d) = (m.canonicalize()?, dir.canonicalize()?);
            if m == d || !d.starts_with(&m) {
                return Err(CmdError::usage(format!(
                    "--machine {}: the unit dir {} must lie inside it (the machine sees only \
                     that host directory at its own path)",
                    m.display(),
                    d.display()
                )));
            }
            m
        }
        None => dir.to_path_buf(),
    };
    let pid = crate::machine::running_pid(&machine_dir).ok_or_else(|| {
        CmdError::runtime(format!(
            "machine {} is not running (jujusim machine-up first)",
            machine_dir.display()
        ))
    })?;
    if machine.is_some() {
        opts.exec_prefix = Some(crate::machine::nsenter_prefix(pid, "/"));
        if opts.address.is_none() {
            opts.address = crate::machine::machine_ip(&machine_dir);
        }
    }
    let existing = state::state_path(dir).exists();
    let unit = if existing {
        state::load(dir)?.unit
    } else if let Some(u) = &opts.unit {
        u.clone()
    } else {
        let out = Command::new("unzip")
            .arg("-p")
            .arg(charm_file)
            .arg("metadata.yaml")
            .output()
            .map_err(|e| CmdError::runtime(format!("unzip: {e}")))?;
        if !out.status.success() {
            return Err(CmdError::runtime(format!(
                "{}: cannot read metadata.yaml from the charm",
                charm_file.display()
            )));
        }
        let mut info = charm::CharmInfo::default();
        charm::parse_metadata(&String::from_utf8_lossy(&out.stdout), &mut info)?;
        format!("{}/0", info.name)
    };
    crate::agent::setup::split_unit(&unit)?;
    let agent = format!("unit-{}", unit.replace('/', "-"));
    let unit_path = format!("/var/lib/juju/agents/{agent}/charm");
    let host = crate::machine::host_path(pid, &unit_path);
    if host.exists() {
        std::fs::remove_dir_all(&host)?;
    }
    std::fs::create_dir_all(&host)?;
    let st = Command::new("unzip")
        .arg("-q")
        .arg("-o")
        .arg(charm_file)
        .arg("-d")
        .arg(&host)
        .status()
        .map_err(|e| CmdError::runtime(format!("unzip: {e}")))?;
    if !st.success() {
        return Err(CmdError::runtime(format!(
            "unzip {} failed: {st}",
            charm_file.display()
        )));
    }
    if existing {
        with_state(dir, |st| {
            st.host_charm_dir = host.display().to_string();
            st.charm_dir = unit_path.clone();
            st.machine_mode = true;
            st.charm_in_machine = true;
            st.exec_prefix = Some(crate::machine::nsenter_prefix(pid, &unit_path));
            Ok(())
        })?;
        refresh_charm(dir)?;
    } else {
        opts.charm_dir = host.clone();
        opts.unit = Some(unit);
        if let Some(prefix) = opts.exec_prefix.as_mut() {
            *prefix = crate::machine::nsenter_prefix(pid, &unit_path);
        }
        opts.unit_charm_dir = Some(unit_path);
        opts.machine_mode = true;
        opts.charm_in_machine = true;
        init_unit(dir, &opts)?;
    }
    eprintln!("deployed {} to {}", charm_file.display(), host.display());
    Ok(0)
}
