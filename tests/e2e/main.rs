//! End-to-end tests: the packed charm's `dispatch` driven by the `jujusim` simulator on
//! simulated units, against the real workload (parse-server from npm, real databases). One
//! test binary; each module is one scenario family.

mod browser;
mod charm;
mod model;
mod tls;

mod cloud_code;
mod dashboard;
mod email;
mod hostile;
mod kit;
mod machine;
mod mongodb;
mod node_install;
mod operations;
mod postgres;
mod redis;
mod resilience;
mod s3;
mod s3_server;
mod scale_out;
mod service_hooks;
mod user_secrets;
