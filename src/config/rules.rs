//! What a value must be for parse-server AND its clients to accept it. REST clients send the
//! application ID and keys as HTTP headers (visible ASCII, no surrounding space); browsers and
//! SDKs normalise URLs (lowercase scheme and host, no default port, no dot segments), so a
//! URL is accepted only in the form clients will use; versions are compared after
//! normalisation, so only the normal form is accepted. Each rule returns a short reason that
//! never repeats the value (the value may be a secret).

use std::net::{IpAddr, Ipv6Addr};

/// The first character no option value may hold: control characters and the invisible
/// formatting characters that make two different values look the same (zero-width spaces
/// and joiners, bidirectional controls, the byte-order mark, the soft hyphen).
pub fn invisible_char(s: &str) -> Option<char> {
    s.chars().find(|c| {
        c.is_control()
            || matches!(
                *c,
                '\u{00AD}'
                    | '\u{034F}'
                    | '\u{061C}'
                    | '\u{115F}'
                    | '\u{1160}'
                    | '\u{17B4}'
                    | '\u{17B5}'
                    | '\u{180E}'
                    | '\u{200B}'..='\u{200F}'
                    | '\u{202A}'..='\u{202E}'
                    | '\u{2060}'..='\u{206F}'
                    | '\u{3164}'
                    | '\u{FE00}'..='\u{FE0F}'
                    | '\u{FEFF}'
                    | '\u{FFA0}'
                    | '\u{FFF0}'..='\u{FFFF}'
            )
    })
}

/// `U+XXXX` for a message.
pub fn code_point(c: char) -> String {
    format!("U+{:04X}", c as u32)
}

/// No control or invisible character, no space around the value.
pub fn plain(s: &str) -> Result<(), String> {
    if let Some(c) = invisible_char(s) {
        return Err(format!(
            "must not contain control or invisible characters (found {})",
            code_point(c)
        ));
    }
    if s.trim() != s {
        return Err("must not begin or end with spaces".into());
    }
    Ok(())
}

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

/// Database names MongoDB or PostgreSQL keep for themselves (compared case-insensitively:
/// MongoDB refuses names that differ only in case).
pub const SYSTEM_DATABASES: &[&str] = &[
    "admin",
    "local",
    "config",
    "postgres",
    "template0",
    "template1",
    "databases",
];

/// A database name both MongoDB and PostgreSQL (as Charmed PostgreSQL creates them) accept.
pub fn database_name(n: &str) -> Result<(), String> {
    if n.is_empty() || n.len() > 49 {
        return Err("must be 1 to 49 characters".into());
    }
    if let Some(c) = n
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '-'))
    {
        return Err(format!(
            "may only use ASCII letters, digits, '_' and '-' (found {})",
            code_point(c)
        ));
    }
    if SYSTEM_DATABASES.iter().any(|s| s.eq_ignore_ascii_case(n)) {
        return Err(format!(
            "{n} is a database the server keeps for itself (and MongoDB's local is not \
             replicated)"
        ));
    }
    Ok(())
}

/// A URL path of segments made of unreserved characters: starts with `/`, no empty, `.` or
/// `..` segment, no trailing `/` (except the root itself).
pub fn url_path(p: &str) -> Result<(), String> {
    if !p.starts_with('/') {
        return Err("must start with '/'".into());
    }
    if p.len() > 128 {
        return Err("must be at most 128 characters".into());
    }
    if p == "/" {
        return Ok(());
    }
    if p.ends_with('/') {
        return Err("must not end with '/'".into());
    }
    for seg in p[1..].split('/') {
        if seg.is_empty() {
            return Err("must not contain '//'".into());
        }
        if seg == "." || seg == ".." {
            return Err("must not contain '.' or '..' segments (clients resolve them)".into());
        }
        if let Some(c) = seg
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || "-._~".contains(*c)))
        {
            return Err(format!(
                "may only use ASCII letters, digits and / - . _ ~ (found {})",
                code_point(c)
            ));
        }
    }
    Ok(())
}

/// A port number in normal form (`1`…`65535`, no leading zeros).
pub fn port_number(p: &str) -> Result<u16, String> {
    let bad = || "has an invalid port (1-65535, no leading zeros)".to_owned();
    if p.is_empty() || p.len() > 5 || !p.bytes().all(|b| b.is_ascii_digit()) || p.starts_with('0') {
        return Err(bad());
    }
    p.parse::<u16>().ok().filter(|n| *n > 0).ok_or_else(bad)
}

/// A host as clients write it: a lowercase DNS name, a dotted-quad IPv4 address without
/// leading zeros, or a bracketed IPv6 address.
pub fn host(h: &str) -> Result<(), String> {
    if let Some(inner) = h.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
        return inner
            .parse::<Ipv6Addr>()
            .map(drop)
            .map_err(|_| "has an invalid IPv6 address".into());
    }
    if h.is_empty() || h.len() > 253 {
        return Err("must name a host".into());
    }
    if h.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return h.parse::<std::net::Ipv4Addr>().map(drop).map_err(|_| {
            "has an invalid IPv4 address (four numbers 0-255, no leading zeros)".into()
        });
    }
    if h.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err("must write the host in lowercase (clients lowercase it)".into());
    }
    let ok = h.split('.').all(|label| {
        !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    });
    if !ok {
        return Err(
            "must name a host with letters, digits and '-' (an international name in its \
             xn-- form)"
                .into(),
        );
    }
    Ok(())
}

/// An http(s) URL in the form clients normalise to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpUrl {
    pub https: bool,
    pub host: String,
    pub port: Option<u16>,
    /// Empty, or a path starting with `/`.
    pub path: String,
}

/// Parses an http(s) URL that names a host and may have a path, but no user, query or
/// fragment, and is already in normal form.
pub fn http_url(u: &str) -> Result<HttpUrl, String> {
    plain(u)?;
    if let Some(c) = u.chars().find(|c| !c.is_ascii_graphic()) {
        return Err(format!(
            "must be printable ASCII without spaces (found {})",
            code_point(c)
        ));
    }
    if u.len() > 2048 {
        return Err("must be at most 2048 characters".into());
    }
    let (https, rest) = if let Some(r) = u.strip_prefix("https://") {
        (true, r)
    } else if let Some(r) = u.strip_prefix("http://") {
        (false, r)
    } else {
        return Err("must start with http:// or https:// (lowercase)".into());
    };
    if rest.contains(['?', '#']) {
        return Err("must not have a query or fragment".into());
    }
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    if authority.contains('@') {
        return Err("must not hold a user name or password".into());
    }
    let (hostpart, port) = if authority.starts_with('[') {
        match authority.rsplit_once("]:") {
            Some((h, p)) => (format!("{h}]"), Some(p)),
            None => (authority.to_owned(), None),
        }
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h.to_owned(), Some(p)),
            None => (authority.to_owned(), None),
        }
    };
    host(&hostpart)?;
    let port = port.map(port_number).transpose()?;
    if port == Some(if https { 443 } else { 80 }) {
        return Err("must leave out the scheme's default port (clients drop it)".into());
    }
    if !path.is_empty() {
        url_path(path).map_err(|why| format!("path {why}"))?;
    }
    Ok(HttpUrl {
        https,
        host: hostpart,
        port,
        path: path.to_owned(),
    })
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

/// URI schemes parse-server's database adapters accept.
pub const DATABASE_SCHEMES: &[&str] = &["mongodb", "mongodb+srv", "postgres", "postgresql"];

/// A database URI's shape: a known scheme, printable ASCII without spaces (characters a URI
/// cannot hold raw, such as a space in a password, are percent-encoded), well-formed
/// percent-escapes, at least one host, valid ports, and a database that is not a system
/// one. The drivers judge the rest when the charm checks the database.
pub fn database_uri(u: &str) -> Result<(), String> {
    if let Some(c) = invisible_char(u) {
        return Err(format!(
            "must not contain control or invisible characters (found {})",
            code_point(c)
        ));
    }
    if let Some(c) = u.chars().find(|c| !c.is_ascii_graphic()) {
        return Err(format!(
            "must be printable ASCII without spaces: percent-encode such characters, e.g. a \
             space as %20 (found {})",
            code_point(c)
        ));
    }
    if u.len() > 4096 {
        return Err("must be at most 4096 characters".into());
    }
    let Some((scheme, rest)) = u.split_once("://") else {
        return Err(format!(
            "must start with {}://",
            DATABASE_SCHEMES.join("://, ")
        ));
    };
    if !DATABASE_SCHEMES.contains(&scheme) {
        return Err(format!(
            "must start with {}://",
            DATABASE_SCHEMES.join("://, ")
        ));
    }
    let bytes = u.as_bytes();
    for (i, b) in bytes.iter().enumerate() {
        if *b == b'%'
            && !(i + 2 < bytes.len()
                && bytes[i + 1].is_ascii_hexdigit()
                && bytes[i + 2].is_ascii_hexdigit())
        {
            return Err("has a '%' that is not a %XX escape".into());
        }
    }
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let hostlist = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if hostlist.is_empty() {
        return Err("must name a host".into());
    }
    for h in hostlist.split(',') {
        let (name, port) = if h.starts_with('[') {
            match h.split_once(']') {
                Some((a, after)) => (format!("{a}]"), after.strip_prefix(':')),
                None => return Err("has an unclosed '[' in its host list".into()),
            }
        } else {
            match h.rsplit_once(':') {
                Some((a, p)) => (a.to_owned(), Some(p)),
                None => (h.to_owned(), None),
            }
        };
        if name.is_empty() {
            return Err("must name a host in every entry of its host list".into());
        }
        if name.starts_with('[') {
            host(&name)?;
        }
        if scheme == "mongodb+srv" && port.is_some() {
            return Err("mongodb+srv:// takes no port".into());
        }
        if let Some(p) = port {
            port_number(p)?;
        }
    }
    let database = tail
        .strip_prefix('/')
        .map(|t| t.split('?').next().unwrap_or(""))
        .unwrap_or("");
    if database.is_empty() {
        return Err("must name the database after the hosts (…/parse)".into());
    }
    let decoded = crate::workload::database::percent_decode(database);
    if SYSTEM_DATABASES
        .iter()
        .any(|s| s.eq_ignore_ascii_case(&decoded))
    {
        return Err(format!(
            "names the system database {decoded}: use a database of the application's own"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invisible_and_control_characters() {
        for s in [
            "a\u{200B}b",
            "\u{FEFF}a",
            "a\u{202E}b",
            "a\u{00AD}b",
            "a\nb",
            "a\u{7f}",
        ] {
            assert!(invisible_char(s).is_some(), "{s:?}");
        }
        assert_eq!(invisible_char("ümlaut é 鍵"), None);
    }

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
    fn database_names() {
        assert!(database_name("parse_prod-1").is_ok());
        for bad in [
            "",
            "a/b",
            "a.b",
            "Admin",
            "local",
            "config",
            "postgres",
            "TEMPLATE1",
            "é",
        ] {
            assert!(database_name(bad).is_err(), "{bad}");
        }
        assert!(database_name(&"x".repeat(50)).is_err());
    }

    #[test]
    fn paths() {
        for ok in ["/", "/parse", "/api/v1", "/a-b_c.d~e"] {
            assert!(url_path(ok).is_ok(), "{ok}");
        }
        for bad in [
            "parse", "/parse/", "//parse", "/a/../b", "/./a", "/a b", "/ä", "/a%20",
        ] {
            assert!(url_path(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn urls() {
        let u = http_url("https://api.example.com/parse").unwrap();
        assert!(u.https);
        assert_eq!(
            (u.host.as_str(), u.port, u.path.as_str()),
            ("api.example.com", None, "/parse")
        );
        assert_eq!(http_url("http://[fd00::1]:8080").unwrap().port, Some(8080));
        assert!(http_url("http://10.0.0.1:1337/parse").is_ok());
        for bad in [
            "ftp://x",
            "HTTPS://api.example.com",
            "https://API.example.com/parse",
            "https://api.example.com:443/parse",
            "http://api.example.com:80",
            "https://api.example.com/parse/",
            "https://api.example.com/a/../parse",
            "https://user:pw@api.example.com",
            "https://api.example.com/parse?x=1",
            "https://api.example.com:0080",
            "https://bücher.example",
            "https://010.0.0.1",
            "https:// api.example.com",
            "http://",
            "http:///parse",
        ] {
            assert!(http_url(bad).is_err(), "{bad}");
        }
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

    #[test]
    fn database_uris() {
        for ok in [
            "mongodb://h1:27017,[fd00::1]:27018/shop?replicaSet=rs0",
            "mongodb+srv://u:p%40ss@cluster0.example.net/db?retryWrites=true",
            "postgres://parse:it's$%22q%22%5C%20@127.0.0.1:5432/parse",
            "postgresql://u@db/parse",
        ] {
            assert!(database_uri(ok).is_ok(), "{ok}: {:?}", database_uri(ok));
        }
        for (bad, why) in [
            ("mysql://h/db", "must start with"),
            ("mongodb:///db", "must name a host"),
            ("mongodb://u:p@/db", "must name a host"),
            ("mongodb://h/db x", "printable ASCII"),
            ("mongodb://h:070000/db", "invalid port"),
            ("mongodb://h:027017/db", "invalid port"),
            ("mongodb://h", "must name the database"),
            ("mongodb://h/admin", "system database"),
            ("mongodb://h/LOCAL?x=1", "system database"),
            ("postgres://u:p%zz@h/db", "%XX"),
            ("mongodb+srv://c.example.net:27017/db", "no port"),
            ("mongodb://[fd00::1/db", "unclosed"),
        ] {
            let err = database_uri(bad).unwrap_err();
            assert!(err.contains(why), "{bad}: {err}");
        }
        // The reason never repeats the URI (it may hold a password).
        assert!(!database_uri("mysql://admin:hunter2@db/x")
            .unwrap_err()
            .contains("hunter2"));
    }
}
