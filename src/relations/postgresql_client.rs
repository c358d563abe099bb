//! The `postgresql_client` interface (Charmed PostgreSQL's `database` endpoint): the
//! provider's answer turned into the connection URI parse-server uses. Charmed PostgreSQL
//! sends one read-write host (the primary), which changes on failover: the URI is re-read at
//! every hook. Only the server, the database and the credentials are taken from the
//! provider; TLS is added by the renderer in the form parse-server reads.

use super::database_client::{other_database, with_credentials, Answer, ProviderData};
use super::Missing;
use crate::uri::{DbKind, DbUri, Host};

pub const POSTGRESQL_PORT: u16 = 5432;

/// The URI from `uris` or, without it, from the first of `endpoints` and the credentials;
/// only for the database this application asked for.
pub fn connection(p: &ProviderData, requested_db: &str) -> Answer {
    let (host, user, password) = match (&p.uris, &p.username, &p.password, &p.endpoints) {
        (Some(uris), _, _, _) => match DbUri::parse(uris) {
            Ok(u) if u.is_postgres() => {
                if let Some(other) = other_database(p, Some(&u), requested_db) {
                    return other;
                }
                (u.hosts[0].clone(), u.user, u.password)
            }
            Ok(_) => return Answer::Unusable("uris is not a postgresql:// URI".into()),
            Err(why) => return Answer::Unusable(format!("uris {why}")),
        },
        (None, Some(user), Some(password), Some(endpoints)) => {
            let hosts = match Host::parse_list(endpoints, true) {
                Ok(h) => h,
                Err(why) => return Answer::Unusable(format!("endpoints {why}")),
            };
            (hosts[0].clone(), Some(user.clone()), Some(password.clone()))
        }
        (None, None, _, _) | (None, _, None, _) => return Answer::Incomplete(Missing::Credentials),
        (None, _, _, None) => return Answer::Incomplete(Missing::Endpoints),
    };
    if let Some(other) = other_database(p, None, requested_db) {
        return other;
    }
    let host = Host::new(host.name, Some(host.port.unwrap_or(POSTGRESQL_PORT)));
    let mut uri = DbUri::new(DbKind::Postgres, vec![host], requested_db);
    uri.user = user;
    uri.password = password;
    match with_credentials(uri, p) {
        Ok(uri) => Answer::Ready {
            uri,
            replica_set: false,
        },
        Err(why) => Answer::Unusable(why),
    }
}

/// The `juju config` that turns PostGIS on, for the provider's PostgreSQL release (16 renamed
/// the option).
pub fn postgis_hint(remote_app: &str, version: Option<&str>) -> String {
    let major: u32 = version
        .and_then(|v| v.split('.').next())
        .and_then(|m| m.parse().ok())
        .unwrap_or(16);
    let option = if major >= 16 {
        "plugin-postgis-enable"
    } else {
        "plugin_postgis_enable"
    };
    format!("juju config {remote_app} {option}=true")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uri_of(a: Answer) -> String {
        match a {
            Answer::Ready { uri, .. } => uri.to_secret_string(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn built_from_the_primary() {
        let p = ProviderData {
            database: Some("parse".into()),
            endpoints: Some("10.0.0.7:5432,10.0.0.8:5432".into()),
            username: Some("relation-3".into()),
            password: Some("Abc123xyz".into()),
            ..Default::default()
        };
        assert_eq!(
            uri_of(connection(&p, "parse")),
            "postgresql://relation-3:Abc123xyz@10.0.0.7:5432/parse"
        );
    }

    #[test]
    fn uris_win_and_only_their_server_and_credentials_are_taken() {
        let p = ProviderData {
            uris: Some(
                "postgresql://relation-3:pw@10.0.0.7/parse?sslmode=disable&options=-c%20x".into(),
            ),
            ..Default::default()
        };
        assert_eq!(
            uri_of(connection(&p, "parse")),
            "postgresql://relation-3:pw@10.0.0.7:5432/parse"
        );
        let p = ProviderData {
            uris: Some("postgresql://relation-3:pw@/parse".into()),
            ..Default::default()
        };
        assert!(matches!(connection(&p, "parse"), Answer::Unusable(_)));
        let p = ProviderData {
            uris: Some("postgresql://relation-3:pw@10.0.0.7/parse".into()),
            ..Default::default()
        };
        assert_eq!(
            connection(&p, "shop"),
            Answer::OtherDatabase {
                served: "parse".into()
            }
        );
    }

    #[test]
    fn an_answer_without_a_password_names_the_field() {
        // Charmed PostgreSQL's secret without its password: `uris` names none either.
        let p = ProviderData {
            uris: Some("postgresql://relation-3@10.0.0.7/parse".into()),
            username: Some("relation-3".into()),
            ..Default::default()
        };
        assert_eq!(
            connection(&p, "parse"),
            Answer::Unusable("its answer has no password (in uris, password or its secret)".into())
        );
        // A password the secret holds beside a `uris` without one is used.
        let p = ProviderData {
            password: Some("pw".into()),
            ..p
        };
        assert_eq!(
            uri_of(connection(&p, "parse")),
            "postgresql://relation-3:pw@10.0.0.7:5432/parse"
        );
        let p = ProviderData {
            uris: Some("postgresql://10.0.0.7/parse".into()),
            password: Some("pw".into()),
            ..Default::default()
        };
        assert!(
            matches!(connection(&p, "parse"), Answer::Unusable(w) if w.contains("no username"))
        );
    }

    #[test]
    fn postgis_hints_name_the_release_option() {
        assert_eq!(
            postgis_hint("postgresql", Some("16.6")),
            "juju config postgresql plugin-postgis-enable=true"
        );
        assert_eq!(
            postgis_hint("pg", Some("14.12")),
            "juju config pg plugin_postgis_enable=true"
        );
    }
}
