//! The `mongodb_client` interface (Charmed MongoDB's `database` endpoint): the provider's
//! answer turned into the connection URI parse-server uses (TLS is added by the renderer,
//! which knows where the CA file lives).

use super::database_client::{other_database, with_credentials, Answer, ProviderData};
use super::Missing;
use crate::uri::{DbKind, DbUri, Host};

/// The port Charmed MongoDB listens on (its `endpoints` carry no ports).
pub const MONGODB_PORT: u16 = 27017;

/// The URI from `uris` (its options kept) or, without it, from `endpoints`, `replset` and
/// the credentials; only for the database this application asked for.
pub fn connection(p: &ProviderData, requested_db: &str) -> Answer {
    let uri = match (&p.uris, &p.username, &p.password, &p.endpoints) {
        (Some(uris), _, _, _) => match DbUri::parse(uris) {
            Ok(u) if u.kind.is_mongodb() => u,
            Ok(_) => return Answer::Unusable("uris is not a mongodb:// URI".into()),
            Err(why) => return Answer::Unusable(format!("uris {why}")),
        },
        (None, Some(user), Some(password), Some(endpoints)) => {
            let hosts = match Host::parse_list(endpoints, true) {
                Ok(h) => h,
                Err(why) => return Answer::Unusable(format!("endpoints {why}")),
            };
            let hosts = hosts
                .into_iter()
                .map(|h| Host::new(h.name, Some(h.port.unwrap_or(MONGODB_PORT))))
                .collect();
            let mut uri = DbUri::new(DbKind::MongoDb, hosts, requested_db);
            uri.user = Some(user.clone());
            uri.password = Some(password.clone());
            uri.set_option("authSource", "admin");
            if let Some(rs) = &p.replset {
                if !rs
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_".contains(c))
                {
                    return Answer::Unusable("replset is not a replica-set name".into());
                }
                uri.set_option("replicaSet", rs);
            }
            uri
        }
        (None, None, _, _) | (None, _, None, _) => return Answer::Incomplete(Missing::Credentials),
        (None, _, _, None) => return Answer::Incomplete(Missing::Endpoints),
    };
    if let Some(other) = other_database(p, Some(&uri), requested_db) {
        return other;
    }
    let uri = match with_credentials(uri, p) {
        Ok(uri) => uri,
        Err(why) => return Answer::Unusable(why),
    };
    let replica_set = p.replset.is_some() || uri.option_ignore_case("replicaSet").is_some();
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

    fn ready(a: Answer) -> (String, bool) {
        match a {
            Answer::Ready { uri, replica_set } => (uri.to_secret_string(), replica_set),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn uris_are_used_as_given() {
        let mut p = provider();
        let uris = "mongodb://relation-7:pw@10.0.0.5:27017,10.0.0.6:27017/parse?replicaSet=mongodb&authMechanism=SCRAM-SHA-256&authSource=admin";
        p.uris = Some(uris.into());
        assert_eq!(ready(connection(&p, "parse")), (uris.to_owned(), true));
    }

    #[test]
    fn uris_without_credentials_take_the_fields_or_name_the_missing_one() {
        let mut p = provider();
        p.uris = Some("mongodb://10.0.0.5:27017/parse?replicaSet=mongodb".into());
        let (uri, _) = ready(connection(&p, "parse"));
        assert!(
            uri.starts_with("mongodb://relation-7:p%40ss%3Aw%2Frd@10.0.0.5"),
            "{uri}"
        );
        p.password = None;
        assert_eq!(
            connection(&p, "parse"),
            Answer::Unusable("its answer has no password (in uris, password or its secret)".into())
        );
    }

    #[test]
    fn without_uris_the_uri_is_built() {
        assert_eq!(
            ready(connection(&provider(), "parse")),
            (
                "mongodb://relation-7:p%40ss%3Aw%2Frd@10.0.0.6:27017,10.0.0.5:27017/parse?authSource=admin&replicaSet=mongodb".into(),
                true
            )
        );
    }

    #[test]
    fn another_database_is_never_used() {
        // A changed database-name on a live relation: the provider's answer is for the old one.
        assert_eq!(
            connection(&provider(), "shop"),
            Answer::OtherDatabase {
                served: "parse".into()
            }
        );
        // A system database, or options smuggled in through the field, are refused.
        for db in [
            "local",
            "admin",
            "parse?authSource=admin&tlsAllowInvalidCertificates=true&appName=",
        ] {
            let mut p = provider();
            p.database = Some(db.into());
            assert!(
                matches!(connection(&p, "parse"), Answer::Unusable(_)),
                "{db}"
            );
        }
        let mut p = provider();
        p.uris = Some("mongodb://u:p@10.0.0.5/other".into());
        p.database = None;
        assert!(matches!(
            connection(&p, "parse"),
            Answer::OtherDatabase { .. }
        ));
    }

    #[test]
    fn incomplete_and_unusable() {
        let mut p = provider();
        p.password = None;
        assert!(matches!(connection(&p, "parse"), Answer::Incomplete(_)));
        let mut p = provider();
        p.endpoints = Some(",,".into());
        assert!(matches!(connection(&p, "parse"), Answer::Unusable(w) if w.contains("host")));
        let mut p = provider();
        p.endpoints = None;
        assert!(matches!(connection(&p, "parse"), Answer::Incomplete(_)));
        let mut p = provider();
        p.uris = Some("postgres://x@h/db".into());
        assert!(matches!(connection(&p, "parse"), Answer::Unusable(_)));
        let mut p = provider();
        p.replset = Some("rs&ssl=false".into());
        assert!(matches!(connection(&p, "parse"), Answer::Unusable(_)));
    }
}
