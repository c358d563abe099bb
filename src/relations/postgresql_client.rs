//! The `postgresql_client` interface (Charmed PostgreSQL's `database` endpoint): the
//! provider's answer turned into the connection URI parse-server uses. Charmed PostgreSQL
//! sends one read-write host (the primary), which changes on failover: the URI is re-read at
//! every hook.

use super::database_client::{endpoint_hosts, host_port, userinfo_encode, Answer, ProviderData};
use crate::config::rules;

pub const POSTGRESQL_PORT: u16 = 5432;

/// The URI from `uris` or, without it, from the first of `endpoints` and the credentials.
pub fn connection(p: &ProviderData, requested_db: &str, ca_file: Option<&str>) -> Answer {
    let database = p.database.as_deref().unwrap_or(requested_db);
    let base = match (&p.uris, &p.username, &p.password, &p.endpoints) {
        (Some(uris), _, _, _) => {
            if !(uris.starts_with("postgresql://") || uris.starts_with("postgres://")) {
                return Answer::Unusable("uris is not a postgresql:// URI".into());
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
            let (host, port) = &hosts[0];
            format!(
                "postgresql://{}:{}@{}/{database}",
                userinfo_encode(user),
                userinfo_encode(password),
                host_port(host, port.unwrap_or(POSTGRESQL_PORT))
            )
        }
        (None, None, _, _) | (None, _, None, _) => {
            return Answer::Incomplete("waiting for postgresql to share the credentials".into())
        }
        (None, _, _, None) => {
            return Answer::Incomplete("waiting for postgresql to share its endpoints".into())
        }
    };
    let uri = match (p.tls_enabled(), ca_file) {
        (false, _) => base,
        (true, Some(ca)) => {
            let sep = if base.contains('?') { '&' } else { '?' };
            format!("{base}{sep}sslmode=verify-full&sslrootcert={ca}")
        }
        (true, None) => return Answer::Incomplete("waiting for postgresql's TLS CA".into()),
    };
    Answer::Ready {
        uri,
        replica_set: false,
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

    #[test]
    fn built_from_the_primary() {
        let p = ProviderData {
            database: Some("parse".into()),
            endpoints: Some("10.0.0.7:5432".into()),
            username: Some("relation-3".into()),
            password: Some("Abc123xyz".into()),
            ..Default::default()
        };
        assert_eq!(
            connection(&p, "parse", None),
            Answer::Ready {
                uri: "postgresql://relation-3:Abc123xyz@10.0.0.7:5432/parse".into(),
                replica_set: false
            }
        );
        let mut tls = p.clone();
        tls.tls = Some("True".into());
        match connection(&tls, "parse", Some("/etc/parse-server/database-ca.pem")) {
            Answer::Ready { uri, .. } => assert!(
                uri.ends_with("?sslmode=verify-full&sslrootcert=/etc/parse-server/database-ca.pem"),
                "{uri}"
            ),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn uris_win_and_are_checked() {
        let p = ProviderData {
            uris: Some("postgresql://relation-3:pw@10.0.0.7:5432/parse".into()),
            ..Default::default()
        };
        assert!(matches!(
            connection(&p, "parse", None),
            Answer::Ready { .. }
        ));
        let p = ProviderData {
            uris: Some("postgresql://relation-3:pw@/parse".into()),
            ..Default::default()
        };
        assert!(matches!(connection(&p, "parse", None), Answer::Unusable(_)));
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
