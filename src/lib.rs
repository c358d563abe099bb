//! A Juju machine charm for Parse Server. The `parse-server-charm` binary is the charm's
//! `dispatch`: Juju runs it for every hook and action.

pub mod charm;
pub mod config;
pub mod juju;
pub mod relations;
pub mod text;
pub mod uri;
pub mod workload;
