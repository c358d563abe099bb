//! The legacy `mongodb` interface (what `juju deploy mongodb` provides): every MongoDB unit
//! publishes `hostname`, `port` and `replset` in its own unit databag, no credentials. This
//! module turns those databags into a connection URI; it never sets status itself.

use crate::juju::Databag;
use crate::text::quote;
use crate::uri::{self, DbKind, DbUri, Host};

/// One MongoDB unit as published on the relation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MongoEndpoint {
    pub host: String,
    pub port: u16,
    pub replset: Option<String>,
}

/// What an existing relation offers right now (no relation at all is the caller's case).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MongoRelation {
    /// Related, but no unit has published an address yet.
    Incomplete(super::Missing),
    /// Units published only unusable data: the first unit's, and why.
    Unusable(String),
    /// At least one usable unit; `rejected` lists units whose data was unusable, and why.
    Ready {
        endpoints: Vec<MongoEndpoint>,
        rejected: Vec<String>,
    },
}

/// Reads one unit's databag. `Ok(None)`: nothing published yet (normal right after
/// `-joined`); `Err`: published but unusable (the reason quotes at most a short, escaped
/// piece of the value).
pub fn endpoint_from_databag(bag: &Databag) -> Result<Option<MongoEndpoint>, String> {
    // The 2014 charm misspelt the key as `hostnme`; accept it rather than wait forever.
    let host = bag.get("hostname").or_else(|| bag.get("hostnme"));
    let (Some(host), Some(port)) = (host, bag.get("port")) else {
        return Ok(None);
    };
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if !uri::is_server_host(bare) {
        return Err(format!(
            "hostname {} is not a host name or IP address",
            quote(host, 40)
        ));
    }
    let port = uri::port_number(port)
        .map_err(|_| format!("port {} is not a port number", quote(port, 12)))?;
    let replset = match bag.get("replset").map(String::as_str) {
        None | Some("") => None,
        Some(r)
            if r.len() <= 128
                && r.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_".contains(c)) =>
        {
            Some(r.to_owned())
        }
        Some(r) => {
            return Err(format!(
                "replset {} is not a replica-set name",
                quote(r, 40)
            ))
        }
    };
    Ok(Some(MongoEndpoint {
        host: bare.to_owned(),
        port,
        replset,
    }))
}

/// Combines every unit's databag (`(unit, bag)` pairs, in relation-list order).
pub fn relation_state(units: &[(String, Databag)]) -> MongoRelation {
    let mut endpoints = Vec::new();
    let mut rejected = Vec::new();
    for (unit, bag) in units {
        match endpoint_from_databag(bag) {
            Ok(Some(e)) if !endpoints.contains(&e) => endpoints.push(e),
            Ok(_) => {}
            Err(why) => rejected.push(format!("{unit}: {why}")),
        }
    }
    if endpoints.is_empty() {
        return match (units.is_empty(), rejected.first()) {
            (true, _) => MongoRelation::Incomplete(super::Missing::Unit),
            (false, Some(r)) => MongoRelation::Unusable(r.clone()),
            (false, None) => MongoRelation::Incomplete(super::Missing::Address),
        };
    }
    MongoRelation::Ready {
        endpoints,
        rejected,
    }
}

/// `mongodb://h1:p1,h2:p2/<db>[?replicaSet=<rs>]`. The replica-set name is the first one
/// published (units of one MongoDB application share it).
pub fn mongodb_uri(endpoints: &[MongoEndpoint], database: &str) -> DbUri {
    let hosts = endpoints
        .iter()
        .map(|e| Host::new(e.host.clone(), Some(e.port)))
        .collect();
    let mut uri = DbUri::new(DbKind::MongoDb, hosts, database);
    if let Some(rs) = endpoints.iter().find_map(|e| e.replset.as_deref()) {
        uri.set_option("replicaSet", rs);
    }
    uri
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::juju::bag_of as bag;

    fn ep(host: &str, port: u16, rs: Option<&str>) -> MongoEndpoint {
        MongoEndpoint {
            host: host.into(),
            port,
            replset: rs.map(str::to_owned),
        }
    }

    #[test]
    fn single_unit_without_replset() {
        assert_eq!(
            mongodb_uri(&[ep("10.0.0.5", 27017, None)], "parse").to_secret_string(),
            "mongodb://10.0.0.5:27017/parse"
        );
    }

    #[test]
    fn replica_set_of_three_with_ipv6() {
        let eps = [
            ep("10.0.0.5", 27017, Some("myset")),
            ep("2001:db8::7", 27018, Some("myset")),
            ep("mongo-2.lan", 27017, Some("myset")),
        ];
        assert_eq!(
            mongodb_uri(&eps, "shop").to_secret_string(),
            "mongodb://10.0.0.5:27017,[2001:db8::7]:27018,mongo-2.lan:27017/shop?replicaSet=myset"
        );
    }

    #[test]
    fn databag_parsing() {
        let e = endpoint_from_databag(&bag(&[
            ("hostname", "[fd00::1]"),
            ("port", "27017"),
            ("replset", "rs0"),
            ("private-address", "fd00::1"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(e, ep("fd00::1", 27017, Some("rs0")));
        // Typo of the 2014 charm.
        let e = endpoint_from_databag(&bag(&[("hostnme", "db1"), ("port", "27017")]))
            .unwrap()
            .unwrap();
        assert_eq!(e.host, "db1");
        // Nothing yet.
        assert_eq!(
            endpoint_from_databag(&bag(&[("private-address", "10.1.1.1")])),
            Ok(None)
        );
    }

    #[test]
    fn malformed_data_is_rejected_not_trusted() {
        for (k, v) in [
            ("hostname", "db1/evil?x=1"),
            ("hostname", "db1,evil"),
            ("hostname", "user@db1"),
            ("hostname", ""),
            ("port", "99999"),
            ("port", "0"),
            ("port", "27017\n"),
            ("port", "027017"),
            ("port", "abc"),
            ("replset", "rs0&ssl=false"),
            ("hostname", " db1"),
            ("hostname", "010.0.0.1"),
        ] {
            let mut b = bag(&[("hostname", "db1"), ("port", "27017")]);
            b.insert(k.into(), v.into());
            assert!(endpoint_from_databag(&b).is_err(), "{k}={v:?} accepted");
        }
    }

    #[test]
    fn relation_state_combines_units() {
        assert_eq!(
            relation_state(&[]),
            MongoRelation::Incomplete(crate::relations::Missing::Unit)
        );
        let joined_only = vec![(
            "mongodb/0".to_string(),
            bag(&[("private-address", "10.0.0.5")]),
        )];
        assert!(matches!(
            relation_state(&joined_only),
            MongoRelation::Incomplete(_)
        ));
        let units = vec![
            (
                "mongodb/0".to_string(),
                bag(&[("hostname", "10.0.0.5"), ("port", "27017")]),
            ),
            (
                "mongodb/1".to_string(),
                bag(&[("hostname", "bad host"), ("port", "27017")]),
            ),
            (
                "mongodb/2".to_string(),
                bag(&[("hostname", "10.0.0.5"), ("port", "27017")]),
            ),
        ];
        match relation_state(&units) {
            MongoRelation::Ready {
                endpoints,
                rejected,
            } => {
                assert_eq!(endpoints.len(), 1, "duplicates collapse");
                assert_eq!(rejected.len(), 1);
                assert!(rejected[0].starts_with("mongodb/1: "));
            }
            other => panic!("{other:?}"),
        }
        let only_bad = vec![(
            "mongodb/1".to_string(),
            bag(&[("hostname", "x"), ("port", "-1")]),
        )];
        match relation_state(&only_bad) {
            MongoRelation::Unusable(why) => assert!(why.starts_with("mongodb/1: "), "{why}"),
            other => panic!("{other:?}"),
        }
    }
}
