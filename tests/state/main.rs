//! Layer 2: state-transition tests. Each test states the Juju side and the world, runs one
//! event through `Charm` with in-memory fakes (`harness/`), and asserts on the state that
//! results: status, files written, restarts, ports, relation data, secrets. Every decision
//! the charm makes is proven here, without root, Node, Java or a database.

mod harness;

mod bad_input;
mod consistency;
mod day_two;
mod faults;
mod lifecycle;
mod memory;
mod scale_out;
