//! The test kit: what a charm's tests use to drive the `jujusim` binary, so that no test
//! suite writes its own driver. It holds nothing of any one charm: the charm's packed file,
//! its application name and the servers its tests play (databases, load balancers) are the
//! caller's.
//!
//! - [`artifacts`]: the built `jujusim` and `egress-proxy` binaries (`JUJUSIM`,
//!   `EGRESS_PROXY`), the directory booted units live in, prerequisites, measured figures;
//! - [`host`]: what a simulated unit must never change on the host ([`HostState`]) and
//!   references to a process's namespaces ([`NsHold`]);
//! - [`process`]: long-running processes a test started ([`Background`]);
//! - [`files`]: private files, random passwords, percent-encoding, curl through files;
//! - [`unit`]: a unit dir driven through `jujusim <sub> U ...` ([`UnitDir`]) and a unit on a
//!   booted machine ([`Unit`]);
//! - [`network`]: a model network (`jujusim net-up`, [`Network`]);
//! - [`model`]: a model dir driven through `jujusim <sub> M ...` ([`ModelDir`]) and a model
//!   of booted units on one network ([`Model`]).
//!
//! Every booted thing ends with an explicit `teardown`, which fails the test if anything of
//! it is left on the host; `Drop` only cleans up, best effort, after a test that failed.

pub mod artifacts;
pub mod files;
pub mod host;
pub mod model;
pub mod network;
pub mod process;
pub mod unit;

pub use artifacts::{egress_proxy, fresh_work_dir, jujusim, record_figure, require, sim, work_dir};
pub use files::{curl_through_files, host_port_free, percent_encode, private_file, random_alnum};
pub use host::{processes_in_ns, HostState, NsHold};
pub use model::{Model, ModelDir};
pub use network::Network;
pub use process::{kill_group, Background};
pub use unit::{Unit, UnitDir, UNIT_PROXY};
