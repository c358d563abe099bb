//! Relation databags turned into typed values; nothing here sets status or calls a tool.

pub mod database_client;
pub mod haproxy_route;
pub mod mongodb;
pub mod mongodb_client;
pub mod peers;
pub mod postgresql_client;
pub mod s3;
pub mod smtp;
pub mod valkey_client;
pub mod website;

/// What a database provider has not yet given (the charm says so in its status).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Missing {
    /// The legacy `mongodb` interface: no unit has joined.
    Unit,
    /// The legacy `mongodb` interface: joined units published no address yet.
    Address,
    Credentials,
    Endpoints,
    TlsCa,
}
