//! The `s3` interface (charm-relation-interfaces `interfaces/s3`), as the two integrators on
//! Charmhub serve it: s3-integrator track 1 (canonical/s3-integrator, library
//! `charms.data_platform_libs.v0.s3`) and track 2 (canonical/object-storage-integrators,
//! directory `s3/`, endpoint `s3-credentials`).
//!
//! The requirer's leader writes `bucket` in its application databag (v0): both providers
//! answer nothing before a requirer has written it, and both then serve the bucket the
//! operator configured on the integrator (a v0 requirer's name is not a request they
//! honour). The provider's application databag holds `bucket`, `endpoint`, `region`,
//! `path` (a key prefix), `s3-uri-style` (`host` or `path`), `tls-ca-chain` (a JSON list of
//! PEM certificates), `s3-api-version`, `storage-class`, and the credentials either as plain
//! `access-key`/`secret-key` (v0) or in a Juju secret named by `secret-extra` whose content
//! has the same two keys (v1). This module reads those fields; it never calls a hook tool.

use crate::juju::Databag;
use crate::text::quote;
use crate::workload::s3::S3Store;

/// The region when the provider names none (AWS's and most stores' default).
pub const DEFAULT_REGION: &str = "us-east-1";

/// What the requirer's leader writes: the bucket it would like (its application's name,
/// a valid bucket name), which the integrators above answer with their configured one.
pub fn request(app_name: &str) -> Databag {
    Databag::from([("bucket".to_owned(), app_name.to_owned())])
}

/// What the relation gives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// Fields the provider has not written yet, by name.
    Incomplete(Vec<&'static str>),
    /// A field that cannot be used as it is (the reason never holds a credential).
    Unusable(String),
    Ready(S3Store),
}

/// The provider's answer, its secret not yet read.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProviderBag {
    fields: Databag,
    /// URI of the secret holding `access-key` and `secret-key` (v1).
    pub secret_extra: Option<String>,
}

fn field<'a>(bag: &'a Databag, key: &str) -> Option<&'a str> {
    bag.get(key).map(|s| s.trim()).filter(|s| !s.is_empty())
}

/// A bucket name S3-compatible stores take: 3-255 of letters, digits, `.`, `-`, `_`,
/// beginning and ending with a letter or digit (AWS's rules since 2018 are stricter; the
/// store refuses what it does not take, and the check names that).
fn bucket_name(b: &str) -> Result<(), String> {
    let edge = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    if (3..=255).contains(&b.len())
        && b.chars()
            .all(|c| c.is_ascii_alphanumeric() || ".-_".contains(c))
        && edge(b.chars().next())
        && edge(b.chars().last())
    {
        Ok(())
    } else {
        Err(format!(
            "bucket {} is not a bucket name (3-255 letters, digits, '.', '-', '_')",
            quote(b, 40)
        ))
    }
}

/// `http(s)://host[:port][/]` (no scheme: https) → (tls, host, port).
pub fn endpoint(raw: &str) -> Result<(bool, String, u16), String> {
    let bad = || format!("endpoint {} is not an http(s) URL", quote(raw, 60));
    let (tls, rest) = match raw.split_once("://") {
        Some((s, rest)) if s.eq_ignore_ascii_case("https") => (true, rest),
        Some((s, rest)) if s.eq_ignore_ascii_case("http") => (false, rest),
        Some(_) => return Err(bad()),
        None => (true, raw),
    };
    let authority = rest.strip_suffix('/').unwrap_or(rest);
    if authority.is_empty() || authority.contains(['/', '?', '#', '@']) {
        return Err(bad());
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (h, after) = v6.split_once(']').ok_or_else(bad)?;
        (h, after.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    let port = match port {
        None => {
            if tls {
                443
            } else {
                80
            }
        }
        Some(p) => match p.parse::<u16>() {
            Ok(p) if p > 0 => p,
            _ => return Err(bad()),
        },
    };
    if host.is_empty()
        || host.len() > 253
        || !host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ".-_:".contains(c))
    {
        return Err(bad());
    }
    Ok((tls, host.to_ascii_lowercase(), port))
}

fn is_ip(host: &str) -> bool {
    host.parse::<std::net::IpAddr>().is_ok()
}

impl ProviderBag {
    pub fn from_bag(bag: &Databag) -> ProviderBag {
        ProviderBag {
            secret_extra: field(bag, "secret-extra").map(str::to_owned),
            fields: bag.clone(),
        }
    }

    /// The store, with the credentials from the secret (`secret`: its content) or, without
    /// a `secret-extra`, from the plain fields.
    pub fn store(&self, secret: Option<&Databag>) -> Answer {
        let bag = &self.fields;
        let creds = secret.unwrap_or(bag);
        let mut missing: Vec<&'static str> = Vec::new();
        for (k, from) in [
            ("bucket", bag),
            ("access-key", creds),
            ("secret-key", creds),
        ] {
            if field(from, k).is_none() {
                missing.push(k);
            }
        }
        if !missing.is_empty() {
            return Answer::Incomplete(missing);
        }
        let bucket = field(bag, "bucket").unwrap_or_default();
        if let Err(why) = bucket_name(bucket) {
            return Answer::Unusable(why);
        }
        if let Some(v) = field(bag, "s3-api-version") {
            if v != "4" {
                return Answer::Unusable(format!(
                    "s3-api-version {} is not 4 (the files adapter signs with version 4)",
                    quote(v, 8)
                ));
            }
        }
        let region = field(bag, "region").unwrap_or(DEFAULT_REGION);
        if region.len() > 64
            || !region
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Answer::Unusable(format!("region {} is not a region name", quote(region, 30)));
        }
        let (tls, host, port, aws) = match field(bag, "endpoint") {
            Some(raw) => match endpoint(raw) {
                Ok((tls, host, port)) => {
                    let aws = host.ends_with(".amazonaws.com");
                    (tls, host, port, aws)
                }
                Err(why) => return Answer::Unusable(why),
            },
            None => (true, format!("s3.{region}.amazonaws.com"), 443, true),
        };
        // Virtual-host style needs the bucket as a DNS label in front of the host: AWS's
        // default. A store of one's own (an IP address, a host without wildcard DNS) is
        // addressed by path unless the provider says otherwise.
        let path_style = match field(bag, "s3-uri-style") {
            Some("path") => true,
            Some("host") if is_ip(&host) => {
                return Answer::Unusable(
                    "s3-uri-style host needs a host name as endpoint, not an IP address".into(),
                )
            }
            Some("host") => false,
            Some(other) => {
                return Answer::Unusable(format!(
                    "s3-uri-style {} is not host or path",
                    quote(other, 12)
                ))
            }
            None => !aws || bucket.contains('.'),
        };
        let path = field(bag, "path").unwrap_or("").trim_matches('/');
        if path.len() > 512 || path.chars().any(|c| c.is_control() || c == '\\') {
            return Answer::Unusable(format!("path {} is not a key prefix", quote(path, 40)));
        }
        let prefix = if path.is_empty() {
            String::new()
        } else {
            format!("{path}/")
        };
        let ca_pem = match field(bag, "tls-ca-chain") {
            None => None,
            Some(raw) => match serde_json::from_str::<Vec<String>>(raw) {
                Ok(certs) if certs.is_empty() => None,
                Ok(certs) => match super::database_client::pem_bundle(&certs.join("\n")) {
                    Ok(pem) => Some(pem),
                    Err(why) => return Answer::Unusable(format!("tls-ca-chain: {why}")),
                },
                Err(_) => {
                    return Answer::Unusable(
                        "tls-ca-chain is not a JSON list of PEM certificates".into(),
                    )
                }
            },
        };
        let credential = |k: &str| field(creds, k).unwrap_or_default().to_owned();
        let (access_key, secret_key) = (credential("access-key"), credential("secret-key"));
        if access_key.len() > 256
            || secret_key.len() > 256
            || access_key
                .chars()
                .chain(secret_key.chars())
                .any(|c| c.is_control())
        {
            return Answer::Unusable("access-key or secret-key is not a key".into());
        }
        Answer::Ready(S3Store {
            tls,
            host,
            port,
            region: region.to_owned(),
            bucket: bucket.to_owned(),
            prefix,
            path_style,
            access_key,
            secret_key,
            ca_pem,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::juju::hook_tools::bag_of;

    fn ready(a: Answer) -> S3Store {
        match a {
            Answer::Ready(s) => s,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn track_one_plain_fields() {
        let bag = bag_of(&[
            ("bucket", "parse-files"),
            ("access-key", "AK"),
            ("secret-key", "SK"),
            ("endpoint", "http://10.77.0.1:8333/"),
            ("path", "/apps/one/"),
        ]);
        let s = ready(ProviderBag::from_bag(&bag).store(None));
        assert_eq!(s.endpoint(), "http://10.77.0.1:8333");
        assert_eq!(
            (s.bucket.as_str(), s.prefix.as_str()),
            ("parse-files", "apps/one/")
        );
        assert!(s.path_style, "a store of one's own is addressed by path");
        assert_eq!(s.region, DEFAULT_REGION);
        assert_eq!((s.access_key.as_str(), s.secret_key.as_str()), ("AK", "SK"));
    }

    #[test]
    fn track_two_credentials_in_the_secret_win() {
        let bag = bag_of(&[
            ("bucket", "b1b"),
            ("secret-extra", "secret:abc"),
            ("access-key", "stale"),
            ("region", "eu-west-1"),
        ]);
        let p = ProviderBag::from_bag(&bag);
        assert_eq!(p.secret_extra.as_deref(), Some("secret:abc"));
        let secret = bag_of(&[("access-key", "AK2"), ("secret-key", "SK2")]);
        let s = ready(p.store(Some(&secret)));
        assert_eq!(s.access_key, "AK2");
        assert_eq!(s.endpoint(), "https://s3.eu-west-1.amazonaws.com");
        assert!(!s.path_style, "AWS is addressed by host");
        assert_eq!(
            p.store(Some(&bag_of(&[("access-key", "AK2")]))),
            Answer::Incomplete(vec!["secret-key"])
        );
    }

    #[test]
    fn what_is_missing_or_unusable() {
        assert_eq!(
            ProviderBag::from_bag(&bag_of(&[])).store(None),
            Answer::Incomplete(vec!["bucket", "access-key", "secret-key"])
        );
        let base = [
            ("bucket", "parse"),
            ("access-key", "a"),
            ("secret-key", "s"),
        ];
        for (extra, reason) in [
            (("endpoint", "ftp://x"), "not an http(s) URL"),
            (("endpoint", "http://x:0"), "not an http(s) URL"),
            (("endpoint", "http://x/sub"), "not an http(s) URL"),
            (("s3-uri-style", "virtual"), "not host or path"),
            (("s3-api-version", "2"), "not 4"),
            (("tls-ca-chain", "nope"), "JSON list"),
            (("tls-ca-chain", "[\"x\"]"), "tls-ca-chain"),
            (("bucket", "-x-"), "not a bucket name"),
            (("region", "eu west"), "not a region"),
        ] {
            let mut pairs = base.to_vec();
            pairs.retain(|(k, _)| *k != extra.0);
            pairs.push(extra);
            match ProviderBag::from_bag(&bag_of(&pairs)).store(None) {
                Answer::Unusable(why) => assert!(why.contains(reason), "{extra:?}: {why}"),
                other => panic!("{extra:?}: {other:?}"),
            }
        }
        let mut ip_host = base.to_vec();
        ip_host.extend([("endpoint", "http://10.0.0.1"), ("s3-uri-style", "host")]);
        assert!(matches!(
            ProviderBag::from_bag(&bag_of(&ip_host)).store(None),
            Answer::Unusable(_)
        ));
    }

    #[test]
    fn endpoints() {
        assert_eq!(
            endpoint("https://[fd00::1]:9000").unwrap(),
            (true, "fd00::1".into(), 9000)
        );
        assert_eq!(
            endpoint("S3.Example.com").unwrap(),
            (true, "s3.example.com".into(), 443)
        );
        assert!(endpoint("http://user:pw@host").is_err());
    }
}
