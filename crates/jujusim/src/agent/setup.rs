//! Creating a unit directory (`jujusim init`): state.json from the charm's YAML files and the `U/tools` symlinks;
//! registering a resource file with a unit (`attach-resource`).

use crate::agent::state::{self, State, Status};
use crate::agent::{charm, journal};
use crate::errors::{q, CmdError, CmdResult};
use crate::{machine, tools, util};
use std::path::{Path, PathBuf};

/// Options of `jujusim init`.
#[derive(Debug, Clone, Default)]
pub struct InitOpts {
    /// Charm dir on the host.
    pub charm_dir: PathBuf,
    pub unit: Option<String>,
    pub model: Option<String>,
    pub leader: bool,
    pub address: Option<String>,
    pub exec_prefix: Option<Vec<String>>,
    /// Charm dir as the dispatch process sees it (default: the host dir).
    pub unit_charm_dir: Option<String>,
    /// The unit lives in a machine namespace.
    pub machine_mode: bool,
    /// `charm_dir` is a path into the running machine (`/proc/<pid>/root/...`): used as is,
    /// not canonicalized (that would resolve the machine's root to the host's).
    pub charm_in_machine: bool,
}

/// Validate `app/N`.
pub fn split_unit(unit: &str) -> CmdResult<(String, u32)> {
    let bad = || CmdError::usage(format!("invalid unit name {}", q(unit)));
    let (app, n) = unit.split_once('/').ok_or_else(bad)?;
    let n: u32 = n.parse().map_err(|_| bad())?;
    if app.is_empty() {
        return Err(bad());
    }
    Ok((app.to_string(), n))
}

/// (Re)create the `U/tools` dir: one symlink per tool → this executable.
pub fn make_tools(dir: &Path) -> CmdResult<()> {
    let exe = std::env::current_exe()?;
    let tools_dir = dir.join("tools");
    std::fs::create_dir_all(&tools_dir)?;
    for t in tools::TOOLS {
        let link = tools_dir.join(t);
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(&exe, &link)?;
    }
    Ok(())
}

/// Create `U/state.json` (overwriting any previous state) and `U/tools`.
pub fn init_unit(dir: &Path, o: &InitOpts) -> CmdResult<State> {
    std::fs::create_dir_all(dir)?;
    let host = if o.charm_in_machine {
        o.charm_dir.clone()
    } else {
        o.charm_dir
            .canonicalize()
            .map_err(|e| CmdError::runtime(format!("charm dir {}: {e}", o.charm_dir.display())))?
    };
    let info = charm::read_charm_dir(&host)?;
    let unit = o.unit.clone().unwrap_or_else(|| format!("{}/0", info.name));
    let (app, _) = split_unit(&unit)?;
    let charm_dir = o
        .unit_charm_dir
        .clone()
        .unwrap_or_else(|| host.display().to_string());
    let mut st = State {
        unit,
        app,
        model: o.model.clone().unwrap_or_else(|| "demo".to_string()),
        model_uuid: util::uuid4(),
        machine_id: "0".into(),
        leader: o.leader,
        charm_dir: charm_dir.clone(),
        host_charm_dir: host.display().to_string(),
        address: o
            .address
            .clone()
            .or_else(|| machine::machine_ip(dir))
            .unwrap_or_else(|| "10.0.0.10".to_string()),
        machine_mode: o.machine_mode,
        charm_in_machine: o.charm_in_machine,
        ..Default::default()
    };
    st.apply_charm(&info);
    st.set_unit_status(Status::new("waiting", "agent initialising"), "");
    st.set_app_status(Status::new("unknown", ""), "");
    st.set_agent_status(Status::new("allocating", ""), "");
    st.exec_prefix = o.exec_prefix.clone();
    if st.exec_prefix.is_none() {
        if let Some(pid) = machine::running_pid(dir) {
            st.exec_prefix = Some(machine::nsenter_prefix(pid, &charm_dir));
            st.machine_mode = true;
        }
    }
    {
        let _l = state::lock(dir)?;
        state::save(dir, &st)?;
        journal::clear(dir)?;
    }
    make_tools(dir)?;
    Ok(st)
}

/// Registers `src` as resource `name` of the unit in `dir` (copied where `resource-get`
/// finds it, as Juju's download would leave it).
pub fn attach_resource(dir: &Path, name: &str, src: &Path) -> CmdResult<()> {
    if !src.is_file() {
        return Err(CmdError::runtime(format!(
            "{}: no such file",
            src.display()
        )));
    }
    state::with_state(dir, |st| {
        let meta = st.resource_meta.get(name).ok_or_else(|| {
            CmdError::usage(format!(
                "resource {} is not declared in metadata.yaml",
                q(name)
            ))
        })?;
        let filename = if meta.filename.is_empty() {
            src.file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_else(|| name.to_owned())
        } else {
            meta.filename.clone()
        };
        let parent = |p: &str| {
            Path::new(p)
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_default()
        };
        let host = parent(&st.host_charm_dir).join("resources").join(name);
        std::fs::create_dir_all(&host)?;
        // A new file (not overwritten in place): a hook reading the old one keeps it whole.
        let staged = host.join(format!(".{filename}.new"));
        std::fs::copy(src, &staged)?;
        std::fs::rename(&staged, host.join(&filename))?;
        let unit_path = parent(&st.charm_dir)
            .join("resources")
            .join(name)
            .join(&filename);
        st.resources
            .insert(name.to_owned(), unit_path.display().to_string());
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unit_names() {
        assert_eq!(
            split_unit("parse-server/0").unwrap(),
            ("parse-server".to_string(), 0)
        );
        assert_eq!(split_unit("x").unwrap_err().code, 2);
        assert_eq!(split_unit("x/a").unwrap_err().code, 2);
        assert_eq!(split_unit("/1").unwrap_err().code, 2);
    }
}
