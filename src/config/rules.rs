//! What an option's value must be for parse-server AND its clients to accept it. REST clients
//! send the application ID and keys as HTTP headers (visible ASCII, no surrounding space);
//! versions are compared after normalisation, so only the normal form is accepted. (URLs,
//! hosts and database URIs have their grammar in `crate::uri`.) Each rule returns a short
//! reason that never repeats the value (the value may be a secret).

use std::net::IpAddr;

use crate::text::{code_point, plain};

/// A value clients send as an HTTP header (`X-Parse-Application-Id`, `X-Parse-Master-Key`…):
/// visible ASCII with spaces only inside.
pub fn header_value(s: &str, header: &str) -> Result<(), String> {
    plain(s)?;
    if let Some(c) = s.chars().find(|c| !(c.is_ascii_graphic() || *c == ' ')) {
        return Err(format!(
            "must be printable ASCII: clients send it as the {header} header (found {})",
            code_point(c)
        ));
    }
    Ok(())
}

/// `MAJOR.MINOR.PATCH[-PRERELEASE]` in semver's normal form (no leading zeros, no build
/// metadata, which npm drops: the installed release would never match the option).
pub fn exact_version(v: &str) -> Result<(), String> {
    let bad = || {
        "must be an exact release such as 9.10.0 or 9.0.0-alpha.1 (no range, tag, 'v' prefix, \
         leading zeros or +build)"
            .to_owned()
    };
    let (core, pre) = match v.split_once('-') {
        Some((c, p)) => (c, Some(p)),
        None => (v, None),
    };
    let numeric = |p: &str| {
        !p.is_empty()
            && p.len() <= 6
            && p.bytes().all(|b| b.is_ascii_digit())
            && (p == "0" || !p.starts_with('0'))
    };
    let parts: Vec<&str> = core.split('.').collect();
    if parts.len() != 3 || !parts.iter().all(|p| numeric(p)) {
        return Err(bad());
    }
    if let Some(pre) = pre {
        let ok = !pre.is_empty()
            && pre.len() <= 40
            && pre.split('.').all(|id| {
                !id.is_empty()
                    && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                    && (!id.bytes().all(|b| b.is_ascii_digit()) || numeric(id))
            });
        if !ok {
            return Err(bad());
        }
    }
    Ok(())
}

/// The major version of an exact release (after [`exact_version`] accepted it).
pub fn major(v: &str) -> u64 {
    v.split('.')
        .next()
        .and_then(|m| m.parse().ok())
        .unwrap_or(0)
}

/// One `masterKeyIps` entry: an IP address or CIDR range as parse-server matches it (IPv4
/// dotted quad without leading zeros, IPv6 without a zone index, prefix length in range).
pub fn ip_or_cidr(entry: &str) -> Result<(), String> {
    let (addr, prefix) = match entry.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (entry, None),
    };
    if addr.contains('%') {
        return Err("IPv6 zone indices (%…) are not supported by parse-server".into());
    }
    let ip: IpAddr = addr.parse().map_err(|_| {
        "each entry must be an IP address or CIDR range (IPv4 without leading zeros)".to_owned()
    })?;
    if let Some(p) = prefix {
        let max = if ip.is_ipv4() { 32 } else { 128 };
        let ok = !p.is_empty()
            && p.len() <= 3
            && p.bytes().all(|b| b.is_ascii_digit())
            && (p == "0" || !p.starts_with('0'))
            && p.parse::<u8>().is_ok_and(|n| n <= max);
        if !ok {
            return Err(format!("an entry has an invalid prefix length (0-{max})"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_values() {
        assert!(header_value("shop-1 x'\"\\$`", "h").is_ok());
        assert!(header_value(" shop", "h").is_err());
        assert!(header_value("shop\t", "h").is_err());
        assert!(header_value("café", "h").unwrap_err().contains("U+00E9"));
    }

    #[test]
    fn versions() {
        for ok in [
            "9.10.0",
            "8.2.3",
            "9.0.0-alpha.1",
            "10.0.0-rc.0",
            "9.0.0-beta-2",
        ] {
            assert!(exact_version(ok).is_ok(), "{ok}");
        }
        for bad in [
            "9",
            "9.1",
            "9.1.x",
            "~9.1.0",
            "9.1.0-",
            "9.1.0 ",
            "v9.1.0",
            "",
            "09.10.0",
            "9.010.0",
            "9.10.0+build.1",
            "9.0.0-alpha.01",
            "9.0.0-al pha",
            "latest",
        ] {
            assert!(exact_version(bad).is_err(), "{bad}");
        }
        assert_eq!(major("10.1.0"), 10);
    }

    #[test]
    fn ip_entries() {
        for ok in [
            "127.0.0.1",
            "::1",
            "10.0.0.0/8",
            "2001:db8::/32",
            "0.0.0.0/0",
        ] {
            assert!(ip_or_cidr(ok).is_ok(), "{ok}");
        }
        for bad in [
            "localhost",
            "010.0.0.1",
            "10.0.0.0/33",
            "10.0.0.0/08",
            "fe80::1%eth0",
            "::/129",
            "1.2.3.4/",
        ] {
            assert!(ip_or_cidr(bad).is_err(), "{bad}");
        }
    }
}
