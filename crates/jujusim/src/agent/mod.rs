//! The unit agent: one unit's state and charm, running its hooks and actions (environment,
//! the charm process, the per-hook journal and its commit), the lifecycle macros, and what
//! the hook tools share (relations, secrets, ports, action parameters, the status view).

pub mod actionparams;
pub mod charm;
pub mod hooks;
#[cfg(test)]
mod hooks_tests;
pub mod journal;
pub mod lifecycle;
pub mod ports;
pub mod relations;
pub mod runner;
pub mod secrets;
pub mod setup;
pub mod state;
pub mod statusview;
