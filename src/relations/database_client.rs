//! The protocol Charmed MongoDB (`mongodb_client`) and Charmed PostgreSQL
//! (`postgresql_client`) share, data_interfaces v0: the requirer's leader asks for a database
//! and for its credentials to travel in Juju secrets; the provider's leader answers in its
//! application databag, with the credentials (and the TLS CA) in secrets granted to the
//! relation, or in plain fields from providers that do not use secrets. This module reads and
//! writes those databags; it never sets status and never calls a hook tool.

use crate::juju::Databag;
use crate::text::quote;
use crate::uri::{self, DbUri};

/// The fields the charm asks the provider to put in secrets.
pub const REQUESTED_SECRETS: &[&str] = &["username", "password", "tls", "tls-ca", "uris"];

/// What the requirer's leader writes in its application databag.
pub fn request(database: &str) -> Databag {
    let secrets: Vec<String> = REQUESTED_SECRETS.iter().map(|s| s.to_string()).collect();
    Databag::from([
        ("database".to_owned(), database.to_owned()),
        (
            "requested-secrets".to_owned(),
            serde_json::to_string(&secrets).expect("a list of strings serialises"),
        ),
    ])
}

/// What the relation gives now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// Not everything has arrived yet (normal while the provider creates the user).
    Incomplete(super::Missing),
    /// The provider's data cannot be used (the provider's to fix).
    Unusable(String),
    /// The provider serves another database than the one this application asks for (after
    /// `database-name` changed on a live relation: providers answer a request once).
    OtherDatabase { served: String },
    /// The URI (TLS not yet applied), and whether the database is a replica set (change
    /// streams available).
    Ready { uri: DbUri, replica_set: bool },
}

/// The database a provider's answer names must be the one asked for: a system database, an
/// injected option or another application's database is never used. `Some`: the answer to
/// give instead.
pub fn other_database(p: &ProviderData, uri: Option<&DbUri>, requested: &str) -> Option<Answer> {
    let served = p
        .database
        .iter()
        .chain(uri.map(|u| &u.database))
        .find(|served| *served != requested)?;
    Some(match uri::database_name(served) {
        Ok(()) => Answer::OtherDatabase {
            served: served.clone(),
        },
        Err(why) => Answer::Unusable(format!("database {} {why}", quote(served, 30))),
    })
}

/// The credentials of `uri` as the provider answered: those `uris` holds, else its
/// `username` and `password` fields (from the bag or the secret). An answer without one
/// names the field that is missing: the database would refuse it, but is not at fault.
pub fn with_credentials(mut uri: DbUri, p: &ProviderData) -> Result<DbUri, String> {
    if uri.user.is_none() {
        uri.user = p.username.clone();
    }
    if uri.password.is_none() {
        uri.password = p.password.clone();
    }
    for (missing, field) in [
        (uri.user.is_none(), "username"),
        (uri.password.is_none(), "password"),
    ] {
        if missing {
            return Err(format!(
                "its answer has no {field} (in uris, {field} or its secret)"
            ));
        }
    }
    Ok(uri)
}

/// The provider's answer, secrets not yet read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProviderData {
    pub database: Option<String>,
    pub endpoints: Option<String>,
    pub replset: Option<String>,
    pub uris: Option<String>,
    pub username: Option<String>,
    pub password: Option<String>,
    /// URI of the secret holding `username`, `password` (and `uris`).
    pub secret_user: Option<String>,
    pub tls: Option<String>,
    pub tls_ca: Option<String>,
    /// URI of the secret holding `tls` and `tls-ca`.
    pub secret_tls: Option<String>,
    pub version: Option<String>,
}

fn field(bag: &Databag, key: &str) -> Option<String> {
    bag.get(key).filter(|v| !v.is_empty()).cloned()
}

impl ProviderData {
    /// Reads the provider's application databag (the library's `data` copy is ignored).
    pub fn from_bag(bag: &Databag) -> ProviderData {
        ProviderData {
            database: field(bag, "database"),
            endpoints: field(bag, "endpoints"),
            replset: field(bag, "replset"),
            uris: field(bag, "uris"),
            username: field(bag, "username"),
            password: field(bag, "password"),
            secret_user: field(bag, "secret-user"),
            tls: field(bag, "tls"),
            tls_ca: field(bag, "tls-ca"),
            secret_tls: field(bag, "secret-tls"),
            version: field(bag, "version"),
        }
    }

    /// Fills in what the provider's secrets hold (`user` from `secret-user`, `tls` from
    /// `secret-tls`); plain fields the provider also sent lose to the secret's.
    pub fn with_secrets(mut self, user: Option<&Databag>, tls: Option<&Databag>) -> ProviderData {
        if let Some(u) = user {
            for (k, slot) in [
                ("username", &mut self.username),
                ("password", &mut self.password),
                ("uris", &mut self.uris),
            ] {
                if let Some(v) = field(u, k) {
                    *slot = Some(v);
                }
            }
        }
        if let Some(t) = tls {
            for (k, slot) in [("tls", &mut self.tls), ("tls-ca", &mut self.tls_ca)] {
                if let Some(v) = field(t, k) {
                    *slot = Some(v);
                }
            }
        }
        self
    }

    /// Whether the provider says TLS is on.
    pub fn tls_enabled(&self) -> bool {
        self.tls
            .as_deref()
            .is_some_and(|t| t.eq_ignore_ascii_case("true"))
    }
}

/// A PEM certificate bundle (one or more `CERTIFICATE` blocks of base64), trimmed; the reason
/// otherwise.
pub fn pem_bundle(ca: &str) -> Result<String, String> {
    let ca = ca.trim();
    if ca.len() > 256 * 1024 {
        return Err("tls-ca is larger than 256 KiB".into());
    }
    let mut blocks = 0;
    let mut inside = false;
    for line in ca.lines().map(str::trim) {
        match line {
            "-----BEGIN CERTIFICATE-----" if !inside => inside = true,
            "-----END CERTIFICATE-----" if inside => {
                inside = false;
                blocks += 1;
            }
            "" if !inside => {}
            l if inside
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/' || b == b'=') => {}
            _ => return Err("tls-ca is not a PEM certificate".into()),
        }
    }
    if inside || blocks == 0 {
        return Err("tls-ca is not a PEM certificate".into());
    }
    Ok(format!("{ca}\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::juju::bag_of as bag;

    #[test]
    fn the_request() {
        let r = request("parse");
        assert_eq!(r["database"], "parse");
        assert_eq!(
            r["requested-secrets"],
            r#"["username","password","tls","tls-ca","uris"]"#
        );
    }

    #[test]
    fn secrets_win_over_plain_fields() {
        let p = ProviderData::from_bag(&bag(&[
            ("database", "parse"),
            ("endpoints", "10.0.0.5"),
            ("secret-user", "secret://m/abc"),
            ("username", "old"),
            ("data", "{\"ignored\": true}"),
        ]))
        .with_secrets(
            Some(&bag(&[("username", "relation-7"), ("password", "pw")])),
            Some(&bag(&[("tls", "True"), ("tls-ca", "PEM")])),
        );
        assert_eq!(p.username.as_deref(), Some("relation-7"));
        assert_eq!(p.password.as_deref(), Some("pw"));
        assert!(p.tls_enabled());
        assert_eq!(p.secret_user.as_deref(), Some("secret://m/abc"));
    }

    #[test]
    fn pem() {
        let ok = "-----BEGIN CERTIFICATE-----\nMIIB\nabc+/=\n-----END CERTIFICATE-----\n";
        assert!(pem_bundle(ok).is_ok());
        assert!(pem_bundle(&format!("{ok}{ok}")).is_ok());
        for bad in [
            "",
            "garbage",
            "-----BEGIN CERTIFICATE-----\nMIIB\n",
            "-----BEGIN CERTIFICATE-----\n<script>\n-----END CERTIFICATE-----",
        ] {
            assert!(pem_bundle(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn only_the_requested_database_is_served() {
        let p = |db: &str| ProviderData {
            database: Some(db.into()),
            ..Default::default()
        };
        assert_eq!(other_database(&p("parse"), None, "parse"), None);
        assert_eq!(
            other_database(&p("parse"), None, "shop"),
            Some(Answer::OtherDatabase {
                served: "parse".into()
            })
        );
        for bad in ["local", "admin", "parse?authSource=admin&tlsInsecure=true"] {
            assert!(
                matches!(
                    other_database(&p(bad), None, "parse"),
                    Some(Answer::Unusable(_))
                ),
                "{bad}"
            );
        }
        let uri = DbUri::parse("postgresql://u:p@h/other").unwrap();
        assert!(matches!(
            other_database(&ProviderData::default(), Some(&uri), "parse"),
            Some(Answer::OtherDatabase { .. })
        ));
    }
}
