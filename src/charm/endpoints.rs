//! The charm's endpoints as metadata.yaml declares them: the one place their names live
//! (tests/charm_files.rs checks this table against metadata.yaml both ways).

/// `mongodb` (the legacy interface of `juju deploy mongodb`).
pub const MONGODB_LEGACY_ENDPOINT: &str = "mongodb";
/// Charmed MongoDB's `database` endpoint (interface `mongodb_client`).
pub const MONGODB_CLIENT_ENDPOINT: &str = "mongodb-client";
/// Charmed PostgreSQL's `database` endpoint (interface `postgresql_client`).
pub const POSTGRESQL_CLIENT_ENDPOINT: &str = "postgresql-client";
/// haproxy-operator's `haproxy-route` endpoint.
pub const HAPROXY_ROUTE_ENDPOINT: &str = "haproxy-route";
/// A second `haproxy-route`: Parse Dashboard's own route (its own service and host name).
pub const DASHBOARD_ROUTE_ENDPOINT: &str = "dashboard-route";
/// The legacy `http` interface a load balancer consumes.
pub const WEBSITE_ENDPOINT: &str = "website";
/// smtp-integrator's `smtp` endpoint: the SMTP server parse-server sends mail through.
pub const SMTP_ENDPOINT: &str = "smtp";
/// Charmed Valkey's `valkey-client` endpoint: the Redis every unit shares.
pub const VALKEY_ENDPOINT: &str = "valkey";
/// s3-integrator's `s3-credentials` endpoint: the bucket the units keep files in.
pub const S3_ENDPOINT: &str = "s3";
/// The units of this application (the rolling restart, the shared key).
pub const PEER_ENDPOINT: &str = "parse-peers";

/// The section of metadata.yaml an endpoint is declared in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Requires,
    Provides,
    Peers,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Requires => "requires",
            Role::Provides => "provides",
            Role::Peers => "peers",
        }
    }
}

/// One declared endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Endpoint {
    pub name: &'static str,
    pub role: Role,
    pub interface: &'static str,
    /// How many relations it takes (`None`: no limit).
    pub limit: Option<u64>,
}

/// Every endpoint of the charm.
pub const ENDPOINTS: &[Endpoint] = &[
    Endpoint {
        name: MONGODB_CLIENT_ENDPOINT,
        role: Role::Requires,
        interface: "mongodb_client",
        limit: Some(1),
    },
    Endpoint {
        name: POSTGRESQL_CLIENT_ENDPOINT,
        role: Role::Requires,
        interface: "postgresql_client",
        limit: Some(1),
    },
    Endpoint {
        name: MONGODB_LEGACY_ENDPOINT,
        role: Role::Requires,
        interface: "mongodb",
        limit: Some(1),
    },
    Endpoint {
        name: HAPROXY_ROUTE_ENDPOINT,
        role: Role::Requires,
        interface: "haproxy-route",
        limit: Some(1),
    },
    Endpoint {
        name: DASHBOARD_ROUTE_ENDPOINT,
        role: Role::Requires,
        interface: "haproxy-route",
        limit: Some(1),
    },
    Endpoint {
        name: SMTP_ENDPOINT,
        role: Role::Requires,
        interface: "smtp",
        limit: Some(1),
    },
    Endpoint {
        name: VALKEY_ENDPOINT,
        role: Role::Requires,
        interface: "valkey_client",
        limit: Some(1),
    },
    Endpoint {
        name: S3_ENDPOINT,
        role: Role::Requires,
        interface: "s3",
        limit: Some(1),
    },
    Endpoint {
        name: WEBSITE_ENDPOINT,
        role: Role::Provides,
        interface: "http",
        limit: None,
    },
    Endpoint {
        name: PEER_ENDPOINT,
        role: Role::Peers,
        interface: "parse-server-peers",
        limit: None,
    },
];
