//! The protocol Charmed MongoDB (`mongodb_client`) and Charmed PostgreSQL
//! (`postgresql_client`) share, data_interfaces v0: the requirer's leader asks for a database
//! and for its credentials to travel in Juju secrets; the provider's leader answers in its
//! application databag, with the credentials (and the TLS CA) in secrets granted to the
//! relation, or in plain fields from providers that do not use secrets. This module reads and
//! writes those databags; it never sets status and never calls a hook tool.

use crate::juju::status::quote;
use crate::juju::Databag;

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
    Incomplete(String),
    /// The provider's data cannot be used (the provider's to fix).
    Unusable(String),
    /// The URI, and whether the database is a replica set (change streams available).
    Ready { uri: String, replica_set: bool },
}

/// Whether `current` (the requirer's own app bag) already asks for `database`.
pub fn is_requested(current: &Databag, database: &str) -> bool {
    request(database)
        .iter()
        .all(|(k, v)| current.get(k) == Some(v))
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

/// The hosts of a comma-separated `endpoints` value (`h1,h2` or `h1:p1,h2:p2`), each as
/// `(host, port)`, IPv6 unbracketed. The reason when it holds no usable host.
pub fn endpoint_hosts(endpoints: &str) -> Result<Vec<(String, Option<u16>)>, String> {
    let mut out = Vec::new();
    for e in endpoints.split(',') {
        if e.is_empty() {
            continue;
        }
        let (host, port) = if let Some(v6) = e.strip_prefix('[') {
            let (h, after) = v6
                .split_once(']')
                .ok_or_else(|| format!("endpoint {} is not host[:port]", quote(e, 40)))?;
            (h.to_owned(), after.strip_prefix(':'))
        } else if e.matches(':').count() > 1 {
            // A bare IPv6 address.
            (e.to_owned(), None)
        } else {
            match e.rsplit_once(':') {
                Some((h, p)) => (h.to_owned(), Some(p)),
                None => (e.to_owned(), None),
            }
        };
        if !valid_host(&host) {
            return Err(format!("endpoint {} is not host[:port]", quote(e, 40)));
        }
        let port = match port {
            Some(p) => Some(
                crate::config::rules::port_number(p)
                    .map_err(|_| format!("endpoint {} has an invalid port", quote(e, 40)))?,
            ),
            None => None,
        };
        out.push((host, port));
    }
    if out.is_empty() {
        return Err("endpoints names no host".into());
    }
    Ok(out)
}

fn valid_host(h: &str) -> bool {
    if h.parse::<std::net::IpAddr>().is_ok() {
        return true;
    }
    !h.is_empty()
        && h.len() <= 253
        && h.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// `host:port` with IPv6 bracketed.
pub fn host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Percent-encodes a URI userinfo component (user name or password).
pub fn userinfo_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bag(pairs: &[(&str, &str)]) -> Databag {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn the_request() {
        let r = request("parse");
        assert_eq!(r["database"], "parse");
        assert_eq!(
            r["requested-secrets"],
            r#"["username","password","tls","tls-ca","uris"]"#
        );
        assert!(is_requested(&r, "parse"));
        assert!(!is_requested(&r, "shop"));
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
    fn endpoints() {
        assert_eq!(
            endpoint_hosts("10.0.0.5,10.0.0.6:27018,[fd00::1]:27017,fd00::2").unwrap(),
            vec![
                ("10.0.0.5".into(), None),
                ("10.0.0.6".into(), Some(27018)),
                ("fd00::1".into(), Some(27017)),
                ("fd00::2".into(), None)
            ]
        );
        for bad in ["", ",,", "h/evil", "h:0", "h:070000", "[fd00::1"] {
            assert!(endpoint_hosts(bad).is_err(), "{bad}");
        }
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
    fn userinfo_is_percent_encoded() {
        assert_eq!(
            userinfo_encode("a b'\"\\$@:/"),
            "a%20b%27%22%5C%24%40%3A%2F"
        );
        assert_eq!(userinfo_encode("relation-7"), "relation-7");
    }
}
