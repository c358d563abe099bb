//! The `mongodb_client` interface (Charmed MongoDB's `database` endpoint): the provider's
//! answer turned into the connection URI parse-server uses.

use super::database_client::{endpoint_hosts, host_port, userinfo_encode, Answer, ProviderData};
use crate::config::rules;

/// The port Charmed MongoDB listens on (its `endpoints` carry no ports).
pub const MONGODB_PORT: u16 = 27017;

/// The URI from `uris` (used as the provider wrote it) or, without it, from `endpoints`,
/// `replset` and the credentials. `ca_file`: where the provider's TLS CA was written, when
/// TLS is on.
pub fn connection(p: &ProviderData, requested_db: &str, ca_file: Option<&str>) -> Answer {
    let database = p.database.as_deref().unwrap_or(requested_db);
    let base = match (&p.uris, &p.username, &p.password, &p.endpoints) {
        (Some(uris), _, _, _) => {
            if !(uris.starts_with("mongodb://") || uris.starts_with("mongodb+srv://")) {
                return Answer::Unusable("uris is not a mongodb:// URI".into());
            }
            if let Err(why) = rules::database_uri(uris) {
                return Answer::Unusable(format!("uris {why}"));
            }
            uris.clone()
        }
        (None, Some(user), Some(password), Some(endpoints)) => {
            let hosts = match endpoint_hosts(endpoints) {
                Ok(h) => h,
                Err(why) => return Answer::Unusable(why),
            };
            let hosts: Vec<String> = hosts
                .iter()
                .map(|(h, port)| host_port(h, port.unwrap_or(MONGODB_PORT)))
                .collect();
            let mut uri = format!(
                "mongodb://{}:{}@{}/{database}?authSource=admin",
                userinfo_encode(user),
                userinfo_encode(password),
                hosts.join(",")
            );
            if let Some(rs) = &p.replset {
                if !rs
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_".contains(c))
                {
                    return Answer::Unusable("replset is not a replica-set name".into());
                }
                uri.push_str("&replicaSet=");
                uri.push_str(rs);
            }
            uri
        }
        (None, None, _, _) | (None, _, None, _) => {
            return Answer::Incomplete("waiting for mongodb to share the credentials".into())
        }
        (None, _, _, None) => {
            return Answer::Incomplete("waiting for mongodb to share its endpoints".into())
        }
    };
    let replica_set = p.replset.is_some() || base.contains("replicaSet=");
    let uri = match (p.tls_enabled(), ca_file) {
        (false, _) => base,
        (true, Some(ca)) => {
            let sep = if base.contains('?') { '&' } else { '?' };
            format!("{base}{sep}tls=true&tlsCAFile={ca}")
        }
        (true, None) => return Answer::Incomplete("waiting for mongodb's TLS CA".into()),
    };
    Answer::Ready { uri, replica_set }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn provider() -> ProviderData {
        ProviderData {
            database: Some("parse".into()),
            endpoints: Some("10.0.0.6,10.0.0.5".into()),
            replset: Some("mongodb".into()),
            username: Some("relation-7".into()),
            password: Some("p@ss:w/rd".into()),
            ..Default::default()
        }
    }

    #[test]
    fn uris_are_used_as_given() {
        let mut p = provider();
        p.uris = Some("mongodb://relation-7:pw@10.0.0.5:27017,10.0.0.6:27017/parse?replicaSet=mongodb&authMechanism=SCRAM-SHA-256&authSource=admin".into());
        assert_eq!(
            connection(&p, "parse", None),
            Answer::Ready {
                uri: p.uris.clone().unwrap(),
                replica_set: true
            }
        );
    }

    #[test]
    fn without_uris_the_uri_is_built() {
        assert_eq!(
            connection(&provider(), "parse", None),
            Answer::Ready {
                uri: "mongodb://relation-7:p%40ss%3Aw%2Frd@10.0.0.6:27017,10.0.0.5:27017/parse?authSource=admin&replicaSet=mongodb".into(),
                replica_set: true
            }
        );
    }

    #[test]
    fn tls_adds_the_ca_file() {
        let mut p = provider();
        p.tls = Some("True".into());
        assert!(matches!(
            connection(&p, "parse", None),
            Answer::Incomplete(_)
        ));
        match connection(&p, "parse", Some("/etc/parse-server/database-ca.pem")) {
            Answer::Ready { uri, .. } => {
                assert!(
                    uri.ends_with("&tls=true&tlsCAFile=/etc/parse-server/database-ca.pem"),
                    "{uri}"
                )
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn incomplete_and_unusable() {
        let mut p = provider();
        p.password = None;
        assert!(matches!(
            connection(&p, "parse", None),
            Answer::Incomplete(_)
        ));
        let mut p = provider();
        p.endpoints = Some(",,".into());
        assert!(
            matches!(connection(&p, "parse", None), Answer::Unusable(w) if w.contains("no host"))
        );
        let mut p = provider();
        p.uris = Some("".into());
        p.uris = None;
        p.endpoints = None;
        assert!(matches!(
            connection(&p, "parse", None),
            Answer::Incomplete(_)
        ));
        let mut p = provider();
        p.uris = Some("postgres://x@h/db".into());
        assert!(matches!(connection(&p, "parse", None), Answer::Unusable(_)));
        let mut p = provider();
        p.replset = Some("rs&ssl=false".into());
        assert!(matches!(connection(&p, "parse", None), Answer::Unusable(_)));
    }
}
