//! The workload: Node, parse-server, its files, its service and its database. Nothing here
//! knows about Juju.

pub mod archive;
pub mod cloud_code;
pub mod dashboard;
pub mod database;
pub mod files;
pub mod install;
pub mod jobs;
pub mod memory;
pub mod node;
pub mod paths;
pub mod probe;
pub mod redis;
pub mod render;
pub mod s3;
pub mod service_files;
pub mod sizing;
pub mod systemd;
pub mod user;
