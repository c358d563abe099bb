//! The `valkey_client` interface (Charmed Valkey's `valkey-client` endpoint). Charmed Valkey
//! answers in data_interfaces v1 and, to a requirer that writes no `version`, in the v0
//! layout this charm already speaks to Charmed PostgreSQL and MongoDB
//! ([`super::database_client`]): the request names a resource under one of its aliases
//! (`database` first), the answer gives `endpoints` (the primary's `host:port`), the user and
//! password in the secret `secret-user`, and `tls`/`tls-ca` in `secret-tls`.
//!
//! The resource is the key and channel pattern the client user's ACL allows (`~<resource>`,
//! `&<resource>`). parse-server's keys and channels do not share one prefix: the cache's
//! keys begin with the application ID and a colon, LiveQuery's channels with the application
//! ID followed by `afterSave`, `afterDelete` or `clearCache`, and the rate limiter's keys with
//! `rl:`; so the charm asks for `*` (the Redis holds this application's data only).

use super::database_client::{self, ProviderData};
use super::Missing;
use crate::juju::Databag;
use crate::uri::{Host, RedisUrl};

/// The key and channel pattern the charm asks for.
pub const RESOURCE: &str = "*";

/// What the requirer's leader writes in its application databag.
pub fn request() -> Databag {
    database_client::request(RESOURCE)
}

/// What the relation gives now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    Incomplete(Missing),
    Unusable(String),
    /// The server (its primary) with the client user's credentials.
    Ready(RedisUrl),
}

/// The URL parse-server connects with: the first of `endpoints`, the credentials, TLS when
/// the provider says it is on (its CA is the caller's).
pub fn connection(p: &ProviderData) -> Answer {
    let (Some(username), Some(password)) = (&p.username, &p.password) else {
        return Answer::Incomplete(Missing::Credentials);
    };
    let Some(endpoints) = &p.endpoints else {
        return Answer::Incomplete(Missing::Endpoints);
    };
    let host = match Host::parse_list(endpoints, true) {
        Ok(hosts) => hosts[0].clone(),
        Err(why) => return Answer::Unusable(format!("endpoints {why}")),
    };
    Answer::Ready(RedisUrl {
        tls: p.tls_enabled(),
        host: Host::new(host.name, Some(host.port.unwrap_or(RedisUrl::DEFAULT_PORT))),
        username: Some(username.clone()),
        password: Some(password.clone()),
        db: 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_asks_for_every_key_and_channel_with_secrets() {
        let r = request();
        assert_eq!(r["database"], "*");
        assert!(r["requested-secrets"].contains("password"));
    }

    #[test]
    fn the_primary_with_the_client_user() {
        let p = ProviderData {
            endpoints: Some("10.0.0.31:6379,10.0.0.32:6379".into()),
            username: Some("relation-7-abc".into()),
            password: Some("p@ss".into()),
            ..Default::default()
        };
        let Answer::Ready(u) = connection(&p) else {
            panic!()
        };
        assert_eq!(
            u.to_secret_string(),
            "redis://relation-7-abc:p%40ss@10.0.0.31:6379"
        );
        let tls = ProviderData {
            tls: Some("True".into()),
            endpoints: Some("fd00::31".into()),
            ..p.clone()
        };
        let Answer::Ready(u) = connection(&tls) else {
            panic!()
        };
        assert_eq!(u.describe(), "rediss://[fd00::31]:6379");
    }

    #[test]
    fn what_is_missing_or_unusable() {
        let none = ProviderData::default();
        assert_eq!(connection(&none), Answer::Incomplete(Missing::Credentials));
        let no_endpoints = ProviderData {
            username: Some("u".into()),
            password: Some("p".into()),
            ..Default::default()
        };
        assert_eq!(
            connection(&no_endpoints),
            Answer::Incomplete(Missing::Endpoints)
        );
        let bad = ProviderData {
            endpoints: Some("10.0.0.1:0".into()),
            ..no_endpoints
        };
        assert!(matches!(connection(&bad), Answer::Unusable(_)));
    }
}
