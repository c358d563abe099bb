//! Relation databags turned into typed values; nothing here sets status or calls a tool.

pub mod database_client;
pub mod haproxy_route;
pub mod mongodb;
pub mod mongodb_client;
pub mod peers;
pub mod postgresql_client;
pub mod website;
