//! Layer 2: state-transition tests. Each test states the Juju side and the world, names one
//! hook as Juju names it, runs it through `Charm` with in-memory fakes (`harness/`; the
//! context from the hook's environment by `JujuContext::from_env`, as `main` does), and
//! asserts on the state that results: status, files written, restarts, ports, relation data,
//! secrets. A scenario Juju cannot produce is refused before the hook runs. Every decision
//! the charm makes is proven here, without root, Node, Java or a database.

mod harness;

mod bad_input;
mod cloud_code;
mod consistency;
mod dashboard;
mod day_two;
mod email;
mod faults;
mod jobs;
mod lifecycle;
mod memory;
mod redis;
mod s3;
mod scale_out;
mod steady;
mod user_secrets;
