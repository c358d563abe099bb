//! The workload: Node, parse-server, its files, its service and its database. Nothing here
//! knows about Juju.

pub mod database;
pub mod files;
pub mod node;
pub mod parse_server;
pub mod systemd;
pub mod user;
