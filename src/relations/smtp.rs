//! The `smtp` interface (smtp-integrator's `smtp` endpoint): the provider's application
//! databag turned into the SMTP transport parse-server's mail adapter uses.
//!
//! The provider (library `charms.smtp_integrator.v0.smtp`) writes `host`, `port`,
//! `auth_type` (`none`, `not_provided`, `plain`), `transport_security` (`none`, `starttls`,
//! `tls`), `skip_ssl_verify` (Python's `True`/`False`), optionally `user`, `domain`,
//! `smtp_sender` and `recipients`, and the password either as `password_id` (a Juju secret
//! granted to the relation, whose key `password` holds it) or as a plain `password`. The
//! requirer writes nothing.

use crate::juju::Databag;
use crate::text::quote;

/// How the connection to the SMTP server is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// Plain SMTP (nodemailer still upgrades when the server offers STARTTLS).
    None,
    /// SMTP, then STARTTLS, which must succeed (`requireTLS`).
    StartTls,
    /// TLS from the first byte (`secure`, usually port 465).
    Tls,
}

impl Security {
    pub fn as_str(self) -> &'static str {
        match self {
            Security::None => "none",
            Security::StartTls => "starttls",
            Security::Tls => "tls",
        }
    }
}

/// What the charm hands the mail adapter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpServer {
    pub host: String,
    pub port: u16,
    /// User and password for SMTP AUTH, when the provider asks for authentication.
    pub auth: Option<(String, String)>,
    pub security: Security,
    /// Whether the server's certificate is checked (the provider's `skip_ssl_verify` off).
    pub verify_certificate: bool,
    pub domain: Option<String>,
    /// The sender address the provider suggests (`smtp_sender`).
    pub sender: Option<String>,
}

/// The provider's answer, the secret not yet read.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProviderBag {
    fields: Databag,
    /// URI of the secret holding `password`.
    pub password_id: Option<String>,
}

/// What the relation gives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// Fields the provider has not written yet, by name.
    Incomplete(Vec<&'static str>),
    /// A field that cannot be used as it is (the reason never holds the password).
    Unusable(String),
    Ready(SmtpServer),
}

fn field<'a>(bag: &'a Databag, key: &str) -> Option<&'a str> {
    bag.get(key).map(|s| s.trim()).filter(|s| !s.is_empty())
}

impl ProviderBag {
    pub fn from_bag(bag: &Databag) -> ProviderBag {
        ProviderBag {
            password_id: field(bag, "password_id").map(str::to_owned),
            fields: bag.clone(),
        }
    }

    /// The server, with the password from the secret (`secret`: its content) or, without
    /// a `password_id`, from the plain `password` field.
    pub fn server(&self, secret: Option<&Databag>) -> Answer {
        let bag = &self.fields;
        let missing: Vec<&'static str> = ["host", "port", "auth_type", "transport_security"]
            .into_iter()
            .filter(|k| field(bag, k).is_none())
            .collect();
        if !missing.is_empty() {
            return Answer::Incomplete(missing);
        }
        let host = field(bag, "host").unwrap_or_default();
        if host.len() > 253
            || !host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || ".-_:[]".contains(c))
        {
            return Answer::Unusable(format!("host {} is not a host name", quote(host, 40)));
        }
        let port_raw = field(bag, "port").unwrap_or_default();
        let port = match port_raw.parse::<u16>() {
            Ok(p) if p >= 1 => p,
            _ => {
                return Answer::Unusable(format!(
                    "port {} is not a port (1-65535)",
                    quote(port_raw, 12)
                ))
            }
        };
        let security = match field(bag, "transport_security").unwrap_or_default() {
            "none" => Security::None,
            "starttls" => Security::StartTls,
            "tls" => Security::Tls,
            other => {
                return Answer::Unusable(format!(
                    "transport_security {} is not none, starttls or tls",
                    quote(other, 16)
                ))
            }
        };
        let auth_type = field(bag, "auth_type").unwrap_or_default();
        if !["none", "not_provided", "plain"].contains(&auth_type) {
            return Answer::Unusable(format!(
                "auth_type {} is not none, not_provided or plain",
                quote(auth_type, 16)
            ));
        }
        let verify_certificate = match field(bag, "skip_ssl_verify") {
            None => true,
            Some(v) if v.eq_ignore_ascii_case("false") => true,
            Some(v) if v.eq_ignore_ascii_case("true") => false,
            Some(v) => {
                return Answer::Unusable(format!(
                    "skip_ssl_verify {} is not True or False",
                    quote(v, 12)
                ))
            }
        };
        let user = field(bag, "user");
        // The secret's value wins; the plain field serves providers without secrets.
        let password = match (&self.password_id, secret) {
            (Some(_), Some(content)) => content.get("password").cloned(),
            (Some(_), None) => None,
            (None, _) => bag.get("password").cloned(),
        }
        .filter(|p| !p.is_empty());
        if password
            .as_deref()
            .is_some_and(|p| p.contains(['\r', '\n']))
        {
            return Answer::Unusable("its password holds a line break".into());
        }
        // `plain` needs both; `not_provided` authenticates when a user is given.
        let auth = match (auth_type, user, password) {
            ("none", _, _) => None,
            (_, Some(u), Some(p)) => Some((u.to_owned(), p)),
            ("plain", None, _) => return Answer::Incomplete(vec!["user"]),
            (_, Some(_), None) => {
                return Answer::Incomplete(vec![if self.password_id.is_some() {
                    "password (its secret has no password key)"
                } else {
                    "password"
                }])
            }
            _ => None,
        };
        if user.is_some_and(|u| u.chars().any(char::is_control)) {
            return Answer::Unusable("user holds a control character".into());
        }
        let domain = field(bag, "domain").map(str::to_owned);
        if let Some(d) = &domain {
            if !d
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || ".-".contains(c))
                || d.starts_with(['.', '-'])
                || d.len() > 253
            {
                return Answer::Unusable(format!("domain {} is not a domain", quote(d, 40)));
            }
        }
        Answer::Ready(SmtpServer {
            host: host.to_owned(),
            port,
            auth,
            security,
            verify_certificate,
            domain,
            sender: field(bag, "smtp_sender").map(str::to_owned),
        })
    }
}

/// A sender address parse-server's mails can carry: `local@domain` or
/// `Display Name <local@domain>`.
pub fn sender_address(s: &str) -> Result<(), String> {
    if s.len() > 320 {
        return Err("must be at most 320 characters".into());
    }
    if s.chars().any(char::is_control) {
        return Err("must not hold control characters".into());
    }
    let addr = match (s.rfind('<'), s.strip_suffix('>')) {
        (Some(open), Some(_)) => &s[open + 1..s.len() - 1],
        (None, None) => s,
        _ => return Err("must be name@domain or \"Name <name@domain>\"".into()),
    };
    let (local, domain) = addr
        .rsplit_once('@')
        .ok_or_else(|| "must be name@domain or \"Name <name@domain>\"".to_string())?;
    let plain = |p: &str| {
        !p.is_empty()
            && p.chars()
                .all(|c| c.is_ascii_graphic() && !"<>()[]\\,;:\"@".contains(c))
    };
    if !plain(local) || !plain(domain) || !domain.contains('.') && domain != "localhost" {
        return Err(format!(
            "{} is not an address (name@domain)",
            quote(addr, 40)
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::juju::bag_of;

    fn full(extra: &[(&str, &str)]) -> Databag {
        let mut b = bag_of(&[
            ("host", "smtp.example.com"),
            ("port", "587"),
            ("auth_type", "plain"),
            ("transport_security", "starttls"),
            ("skip_ssl_verify", "False"),
            ("user", "mailer"),
            ("password_id", "secret:abc"),
            ("domain", "example.com"),
        ]);
        for (k, v) in extra {
            b.insert(k.to_string(), v.to_string());
        }
        b
    }

    #[test]
    fn the_password_comes_from_the_secret() {
        let p = ProviderBag::from_bag(&full(&[]));
        assert_eq!(p.password_id.as_deref(), Some("secret:abc"));
        let secret = bag_of(&[("password", "s3cret")]);
        match p.server(Some(&secret)) {
            Answer::Ready(s) => {
                assert_eq!(s.auth, Some(("mailer".into(), "s3cret".into())));
                assert_eq!(s.security, Security::StartTls);
                assert!(s.verify_certificate);
                assert_eq!(s.port, 587);
                assert_eq!(s.domain.as_deref(), Some("example.com"));
            }
            other => panic!("{other:?}"),
        }
        // A secret without the key is not a password.
        assert_eq!(
            p.server(Some(&bag_of(&[("other", "x")]))),
            Answer::Incomplete(vec!["password (its secret has no password key)"])
        );
    }

    #[test]
    fn plain_fields_and_no_auth() {
        let mut b = full(&[("password", "plain-pw"), ("auth_type", "none")]);
        b.remove("password_id");
        match ProviderBag::from_bag(&b).server(None) {
            Answer::Ready(s) => assert_eq!(s.auth, None),
            other => panic!("{other:?}"),
        }
        b.insert("auth_type".into(), "plain".into());
        b.insert("skip_ssl_verify".into(), "True".into());
        b.insert("transport_security".into(), "tls".into());
        match ProviderBag::from_bag(&b).server(None) {
            Answer::Ready(s) => {
                assert_eq!(s.auth, Some(("mailer".into(), "plain-pw".into())));
                assert!(!s.verify_certificate);
                assert_eq!(s.security, Security::Tls);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn what_is_missing_or_unusable_is_named() {
        assert_eq!(
            ProviderBag::from_bag(&Databag::new()).server(None),
            Answer::Incomplete(vec!["host", "port", "auth_type", "transport_security"])
        );
        let mut b = full(&[]);
        b.remove("user");
        assert_eq!(
            ProviderBag::from_bag(&b).server(Some(&bag_of(&[("password", "x")]))),
            Answer::Incomplete(vec!["user"])
        );
        for (k, v, why) in [
            ("port", "70000", "port"),
            ("transport_security", "ssl", "transport_security"),
            ("auth_type", "login", "auth_type"),
            ("skip_ssl_verify", "maybe", "skip_ssl_verify"),
            ("host", "smtp example", "host"),
        ] {
            match ProviderBag::from_bag(&full(&[(k, v)])).server(None) {
                Answer::Unusable(r) => assert!(r.starts_with(why), "{r}"),
                other => panic!("{k}={v}: {other:?}"),
            }
        }
    }

    #[test]
    fn sender_addresses() {
        for ok in [
            "noreply@example.com",
            "Shop <noreply@example.com>",
            "a@localhost",
        ] {
            assert_eq!(sender_address(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            "noreply",
            "a@b",
            "x <a@example.com",
            "a b@example.com",
            "a@ex\nample.com",
        ] {
            assert!(sender_address(bad).is_err(), "{bad:?}");
        }
    }
}
