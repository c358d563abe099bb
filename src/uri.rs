//! Addresses, as the charm reads and writes them: hosts and ports, http(s) URLs in the form
//! clients normalise to, and database URIs. The ground floor: config, relations and the
//! workload all speak these types, and it imports nothing of the charm but `text`.
//!
//! A database URI is parsed once, by [`DbUri::parse`], into its parts (decoded), and written
//! back by the one encoder here: IPv6 hosts bracketed, credentials and option values
//! percent-encoded. A URL crate cannot do this: `mongodb://h1,h2/db` (a host list) is not an
//! RFC 3986 URL. Reasons never repeat a credential.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

use crate::text::{code_point, invisible_char, plain};

/// A port number in normal form (`1`…`65535`, no leading zeros).
pub fn port_number(p: &str) -> Result<u16, String> {
    let bad = || "has an invalid port (1-65535, no leading zeros)".to_owned();
    if p.is_empty() || p.len() > 5 || !p.bytes().all(|b| b.is_ascii_digit()) || p.starts_with('0') {
        return Err(bad());
    }
    p.parse::<u16>().ok().filter(|n| *n > 0).ok_or_else(bad)
}

/// A host as clients write it in a URL: a lowercase DNS name, a dotted-quad IPv4 address
/// without leading zeros, or a bracketed IPv6 address.
fn client_host(h: &str) -> Result<(), String> {
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
        return h.parse::<Ipv4Addr>().map(drop).map_err(|_| {
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

/// A server's host in a list a provider or an operator gives (IPv6 unbracketed): an IP
/// address (IPv4 without leading zeros), or a DNS name of letters, digits, `-` and `_`.
pub fn is_server_host(h: &str) -> bool {
    if h.parse::<Ipv6Addr>().is_ok() {
        return true;
    }
    if h.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return h.parse::<Ipv4Addr>().is_ok();
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

/// One server: a host (IPv6 without brackets) and maybe a port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    pub name: String,
    pub port: Option<u16>,
}

impl Host {
    pub fn new(name: impl Into<String>, port: Option<u16>) -> Host {
        Host {
            name: name.into(),
            port,
        }
    }

    /// One entry of a host list: `host`, `host:port`, `[v6]`, `[v6]:port`, or (where
    /// `bare_ipv6`, as in a provider's `endpoints`) an IPv6 address without brackets.
    pub fn parse(entry: &str, bare_ipv6: bool) -> Result<Host, String> {
        let (name, port) = if let Some(v6) = entry.strip_prefix('[') {
            let (addr, after) = v6
                .split_once(']')
                .ok_or_else(|| "has an unclosed '[' in its host list".to_owned())?;
            if addr.parse::<Ipv6Addr>().is_err() {
                return Err("has an invalid IPv6 address".into());
            }
            let port =
                match after {
                    "" => None,
                    p => Some(p.strip_prefix(':').ok_or_else(|| {
                        "has an invalid port (1-65535, no leading zeros)".to_owned()
                    })?),
                };
            (addr, port)
        } else if bare_ipv6 && entry.matches(':').count() > 1 {
            (entry, None)
        } else {
            match entry.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (entry, None),
            }
        };
        if name.is_empty() {
            return Err("must name a host in every entry of its host list".into());
        }
        if !is_server_host(name) {
            return Err("has a host that is not an IP address or a DNS name".into());
        }
        let port = port.map(port_number).transpose()?;
        Ok(Host::new(name, port))
    }

    /// A comma-separated host list (empty entries skipped); the reason when it names none.
    pub fn parse_list(list: &str, bare_ipv6: bool) -> Result<Vec<Host>, String> {
        let hosts = list
            .split(',')
            .filter(|e| !e.is_empty())
            .map(|e| Host::parse(e, bare_ipv6))
            .collect::<Result<Vec<_>, _>>()?;
        if hosts.is_empty() {
            return Err("must name a host".into());
        }
        Ok(hosts)
    }

    /// `host:port` (IPv6 bracketed) with `default` where no port was given.
    pub fn with_port(&self, default: u16) -> String {
        Host::new(self.name.clone(), Some(self.port.unwrap_or(default))).to_string()
    }

    fn is_ipv6(&self) -> bool {
        self.name.contains(':')
    }
}

impl fmt::Display for Host {
    /// `name`, `name:port`, `[v6]` or `[v6]:port`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_ipv6() {
            write!(f, "[{}]", self.name)?;
        } else {
            f.write_str(&self.name)?;
        }
        match self.port {
            Some(p) => write!(f, ":{p}"),
            None => Ok(()),
        }
    }
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

/// An http(s) URL in the form clients normalise to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpUrl {
    pub https: bool,
    /// The host as written (an IPv6 address bracketed).
    pub host: String,
    pub port: Option<u16>,
    /// Empty, or a path starting with `/`.
    pub path: String,
}

impl HttpUrl {
    /// Parses an http(s) URL that names a host and may have a path, but no user, query or
    /// fragment, and is already in normal form.
    pub fn parse(u: &str) -> Result<HttpUrl, String> {
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
        client_host(&hostpart)?;
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

    /// The host when it is a DNS name (not an IP address).
    pub fn dns_name(&self) -> Option<&str> {
        let ip = self.host.starts_with('[') || self.host.parse::<Ipv4Addr>().is_ok();
        (!ip).then_some(self.host.as_str())
    }
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
    if is_system_database(n) {
        return Err(format!(
            "{n} is a database the server keeps for itself (and MongoDB's local is not \
             replicated)"
        ));
    }
    Ok(())
}

fn is_system_database(n: &str) -> bool {
    SYSTEM_DATABASES.iter().any(|s| s.eq_ignore_ascii_case(n))
}

/// Decodes `%XX` escapes (invalid escapes stay as they are; bytes that are not UTF-8 become
/// U+FFFD).
pub fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("");
            if let Ok(v) = u8::from_str_radix(hex, 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Percent-encodes every byte but ASCII letters, digits, `-._~` and those in `keep`.
pub fn percent_encode(s: &str, keep: &[u8]) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) || keep.contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// What an option value may hold unencoded: characters with no meaning in a query beyond
/// being data (`&`, `=`, `#`, `%`, `+`, `?` and spaces are always encoded).
const OPTION_VALUE_KEEP: &[u8] = b":/,@!$'()*;";

/// The database servers parse-server speaks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DbKind {
    /// `mongodb://`
    MongoDb,
    /// `mongodb+srv://` (the hosts from DNS SRV records)
    MongoDbSrv,
    /// `postgres://` or `postgresql://`
    Postgres,
}

impl DbKind {
    pub fn is_mongodb(self) -> bool {
        matches!(self, DbKind::MongoDb | DbKind::MongoDbSrv)
    }

    /// The server's port when a host names none.
    pub fn default_port(self) -> u16 {
        match self {
            DbKind::Postgres => 5432,
            _ => 27017,
        }
    }
}

/// URI schemes parse-server's database adapters accept.
pub const DATABASE_SCHEMES: &[&str] = &["mongodb", "mongodb+srv", "postgres", "postgresql"];

/// A database URI, parsed: every part decoded. Built by [`DbUri::parse`] or by a relation
/// codec; written back by [`DbUri::to_secret_string`]. Its `Display` and `Debug` hide the
/// password, so that formatting one into a message or a log never leaks it.
#[derive(Clone, PartialEq, Eq)]
pub struct DbUri {
    pub kind: DbKind,
    /// The scheme as written (`postgres` and `postgresql` both name PostgreSQL).
    pub scheme: String,
    pub user: Option<String>,
    pub password: Option<String>,
    pub hosts: Vec<Host>,
    pub database: String,
    /// The query's options, in order, decoded.
    pub options: Vec<(String, String)>,
}

impl DbUri {
    /// A URI of `kind` with its canonical scheme.
    pub fn new(kind: DbKind, hosts: Vec<Host>, database: impl Into<String>) -> DbUri {
        let scheme = match kind {
            DbKind::MongoDb => "mongodb",
            DbKind::MongoDbSrv => "mongodb+srv",
            DbKind::Postgres => "postgresql",
        };
        DbUri {
            kind,
            scheme: scheme.to_owned(),
            user: None,
            password: None,
            hosts,
            database: database.into(),
            options: Vec::new(),
        }
    }

    /// Parses and checks a database URI's shape: a known scheme, printable ASCII without
    /// spaces (a space in a password is written `%20`), well-formed escapes, no fragment, at
    /// least one host (IPv6 bracketed), valid ports, and a database that is not a system
    /// one. The drivers judge the rest. The reason never repeats the URI.
    pub fn parse(u: &str) -> Result<DbUri, String> {
        if let Some(c) = invisible_char(u) {
            return Err(format!(
                "must not contain control or invisible characters (found {})",
                code_point(c)
            ));
        }
        if let Some(c) = u.chars().find(|c| !c.is_ascii_graphic()) {
            return Err(format!(
                "must be printable ASCII without spaces: percent-encode such characters, e.g. \
                 a space as %20 (found {})",
                code_point(c)
            ));
        }
        if u.len() > 4096 {
            return Err("must be at most 4096 characters".into());
        }
        let must_start = || format!("must start with {}://", DATABASE_SCHEMES.join("://, "));
        let (scheme, rest) = u.split_once("://").ok_or_else(must_start)?;
        let kind = match scheme {
            "mongodb" => DbKind::MongoDb,
            "mongodb+srv" => DbKind::MongoDbSrv,
            "postgres" | "postgresql" => DbKind::Postgres,
            _ => return Err(must_start()),
        };
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
        if u.contains('#') {
            return Err(
                "must not contain '#' (clients cut the URI there): percent-encode it as %23".into(),
            );
        }
        let end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(end);
        let (userinfo, hostlist) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, authority),
        };
        let (user, password) = match userinfo {
            Some(u) => match u.split_once(':') {
                Some((n, p)) => (Some(percent_decode(n)), Some(percent_decode(p))),
                None => (Some(percent_decode(u)), None),
            },
            None => (None, None),
        };
        if hostlist.is_empty() {
            return Err("must name a host".into());
        }
        let hosts = hostlist
            .split(',')
            .map(|h| Host::parse(h, false))
            .collect::<Result<Vec<_>, _>>()?;
        if kind == DbKind::MongoDbSrv {
            if hosts.iter().any(|h| h.port.is_some()) {
                return Err("mongodb+srv:// takes no port".into());
            }
            if hosts.len() != 1 {
                return Err("mongodb+srv:// names exactly one host".into());
            }
        }
        let (path, query) = match tail.split_once('?') {
            Some((p, q)) => (p, q),
            None => (tail, ""),
        };
        let path = path.strip_prefix('/').unwrap_or("");
        if path.contains('/') {
            return Err("must name one database after the hosts (…/parse)".into());
        }
        let database = percent_decode(path);
        if database.is_empty() {
            return Err("must name the database after the hosts (…/parse)".into());
        }
        if is_system_database(&database) {
            return Err(format!(
                "names the system database {}: use a database of the application's own",
                crate::text::quote(&database, 20)
            ));
        }
        let options = query
            .split('&')
            .filter(|o| !o.is_empty())
            .map(|o| match o.split_once('=') {
                Some((k, v)) => (percent_decode(k), percent_decode(v)),
                None => (percent_decode(o), String::new()),
            })
            .collect();
        Ok(DbUri {
            kind,
            scheme: scheme.to_owned(),
            user,
            password,
            hosts,
            database,
            options,
        })
    }

    pub fn is_postgres(&self) -> bool {
        self.kind == DbKind::Postgres
    }

    /// The value of option `key` (the last one, as drivers read it).
    pub fn option(&self, key: &str) -> Option<&str> {
        self.options
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The value of option `key`, its name compared case-insensitively (MongoDB's rule).
    pub fn option_ignore_case(&self, key: &str) -> Option<&str> {
        self.options
            .iter()
            .rev()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.as_str())
    }

    /// Sets option `key` (replacing every earlier value of it, its name compared
    /// case-insensitively).
    pub fn set_option(&mut self, key: &str, value: impl Into<String>) {
        self.options.retain(|(k, _)| !k.eq_ignore_ascii_case(key));
        self.options.push((key.to_owned(), value.into()));
    }

    /// The same URI without user name and password.
    pub fn without_credentials(&self) -> DbUri {
        DbUri {
            user: None,
            password: None,
            ..self.clone()
        }
    }

    /// `host:port, …` for messages (never the credentials).
    pub fn describe_hosts(&self) -> String {
        self.hosts
            .iter()
            .map(|h| match self.kind {
                DbKind::MongoDbSrv => h.to_string(),
                k => h.with_port(k.default_port()),
            })
            .collect::<Vec<_>>()
            .join(",")
    }

    fn write(&self, f: &mut impl fmt::Write, password: Option<&str>) -> fmt::Result {
        write!(f, "{}://", self.scheme)?;
        if let Some(user) = &self.user {
            f.write_str(&percent_encode(user, b""))?;
            if let Some(p) = password {
                write!(f, ":{p}")?;
            }
            f.write_char('@')?;
        }
        let hosts: Vec<String> = self.hosts.iter().map(Host::to_string).collect();
        write!(
            f,
            "{}/{}",
            hosts.join(","),
            percent_encode(&self.database, b"")
        )?;
        for (i, (k, v)) in self.options.iter().enumerate() {
            f.write_char(if i == 0 { '?' } else { '&' })?;
            write!(
                f,
                "{}={}",
                percent_encode(k, b""),
                percent_encode(v, OPTION_VALUE_KEEP)
            )?;
        }
        Ok(())
    }

    /// The whole URI, password included: only for the files parse-server reads.
    pub fn to_secret_string(&self) -> String {
        let mut s = String::new();
        let password = self.password.as_deref().map(|p| percent_encode(p, b""));
        self.write(&mut s, password.as_deref())
            .expect("writing to a String");
        s
    }
}

impl fmt::Display for DbUri {
    /// The URI with its password as `***`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write(f, self.password.as_ref().map(|_| "***"))
    }
}

impl fmt::Debug for DbUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DbUri({self})")
    }
}

/// A Redis server as parse-server's Redis client (node-redis) reads its URL:
/// `redis://[user[:password]@]host[:port][/db]`, or `rediss://` for TLS. node-redis parses it
/// as a WHATWG URL and `decodeURIComponent`s the user and password, so a `%` must start a
/// valid escape. Reasons never repeat a credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisUrl {
    pub tls: bool,
    /// The server (its port always set: 6379 where the URL names none).
    pub host: Host,
    pub username: Option<String>,
    pub password: Option<String>,
    /// The logical database (`SELECT`), 0 where the URL names none.
    pub db: u32,
}

impl RedisUrl {
    pub const DEFAULT_PORT: u16 = 6379;

    pub fn parse(u: &str) -> Result<RedisUrl, String> {
        if u.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err("must not contain spaces or control characters".into());
        }
        let (tls, rest) = if let Some(r) = u.strip_prefix("rediss://") {
            (true, r)
        } else if let Some(r) = u.strip_prefix("redis://") {
            (false, r)
        } else {
            return Err("must start with redis:// or rediss://".into());
        };
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(end);
        if tail.contains(['?', '#']) {
            return Err("must not have a query or a fragment (?…, #…)".into());
        }
        let db = match tail.strip_prefix('/').unwrap_or(tail) {
            "" => 0,
            n if n.len() <= 4 && n.bytes().all(|b| b.is_ascii_digit()) => {
                n.parse::<u32>().unwrap_or(0)
            }
            _ => return Err("must end with a database number (/0, /1, …) or nothing".into()),
        };
        let (userinfo, hostport) = match authority.rsplit_once('@') {
            Some((info, hp)) => (Some(info), hp),
            None => (None, authority),
        };
        let decoded = |part: &str, what: &str| -> Result<Option<String>, String> {
            if part.is_empty() {
                return Ok(None);
            }
            if !valid_escapes(part) {
                return Err(format!(
                    "has a '%' in its {what} that starts no escape (write '%' as %25)"
                ));
            }
            Ok(Some(percent_decode(part)))
        };
        let (username, password) = match userinfo {
            None => (None, None),
            Some(info) => {
                let (user, pass) = info.split_once(':').unwrap_or((info, ""));
                (decoded(user, "user")?, decoded(pass, "password")?)
            }
        };
        if username.is_some() && password.is_none() {
            return Err("names a user without a password".into());
        }
        if hostport.is_empty() {
            return Err("must name a host".into());
        }
        let mut host = Host::parse(hostport, false)?;
        host.port = Some(host.port.unwrap_or(Self::DEFAULT_PORT));
        Ok(RedisUrl {
            tls,
            host,
            username,
            password,
            db,
        })
    }

    fn scheme(&self) -> &'static str {
        if self.tls {
            "rediss"
        } else {
            "redis"
        }
    }

    /// The URL with its credentials (encoded so that node-redis decodes them back): for
    /// root-only files, never for a log or status.
    pub fn to_secret_string(&self) -> String {
        let mut out = format!("{}://", self.scheme());
        if let Some(p) = &self.password {
            if let Some(u) = &self.username {
                out.push_str(&percent_encode(u, &[]));
            }
            out.push(':');
            out.push_str(&percent_encode(p, &[]));
            out.push('@');
        }
        out.push_str(&self.host.to_string());
        if self.db != 0 {
            out.push_str(&format!("/{}", self.db));
        }
        out
    }

    /// The server without credentials, for a status or a log: `redis://host:port`.
    pub fn describe(&self) -> String {
        format!("{}://{}", self.scheme(), self.host)
    }
}

/// Whether every `%` in `s` starts a `%XX` escape.
fn valid_escapes(s: &str) -> bool {
    let b = s.as_bytes();
    b.iter().enumerate().all(|(i, c)| {
        *c != b'%'
            || (i + 2 < b.len() && b[i + 1].is_ascii_hexdigit() && b[i + 2].is_ascii_hexdigit())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_uris_round_trip() {
        for uri in [
            "mongodb://h1:27017,[fd00::1]:27018/shop?replicaSet=rs0",
            "mongodb+srv://u:p%40ss@cluster0.example.net/db?retryWrites=true",
            "postgresql://u@db/parse",
            "mongodb://relation-7:p%40ss%3Aw%2Frd@10.0.0.6:27017,10.0.0.5:27017/parse?authSource=admin&replicaSet=mongodb",
            "mongodb://u:pw@h/parse?tls=true&tlsCAFile=/etc/parse-server/database-ca.pem",
        ] {
            let u = DbUri::parse(uri).unwrap_or_else(|e| panic!("{uri}: {e}"));
            assert_eq!(u.to_secret_string(), uri);
        }
        let u = DbUri::parse("postgres://parse:it's$%22q%22%5C%20@127.0.0.1:5432/parse").unwrap();
        assert_eq!(u.password.as_deref(), Some("it's$\"q\"\\ "));
        assert_eq!(u.hosts, vec![Host::new("127.0.0.1", Some(5432))]);
        assert_eq!(u.database, "parse");
        assert!(u.is_postgres());
        // Written back in one canonical encoding, which reads back the same.
        assert_eq!(DbUri::parse(&u.to_secret_string()).unwrap(), u);
    }

    #[test]
    fn shapes_refused() {
        for (bad, why) in [
            ("mysql://h/db", "must start with"),
            ("mongodb:///db", "must name a host"),
            ("mongodb://u:p@/db", "must name a host"),
            ("mongodb://h/db x", "printable ASCII"),
            ("mongodb://h:070000/db", "invalid port"),
            ("mongodb://h:027017/db", "invalid port"),
            ("mongodb://h:notaport/x", "invalid port"),
            ("mongodb://h", "must name the database"),
            ("mongodb://h/admin", "system database"),
            ("mongodb://h/LOCAL?x=1", "system database"),
            ("postgres://u:p%zz@h/db", "%XX"),
            ("mongodb+srv://c.example.net:27017/db", "no port"),
            ("mongodb://[fd00::1/db", "unclosed"),
            ("mongodb://h1,,h2/db", "every entry"),
            ("mongodb://h/db?x=1#frag", "'#'"),
            ("postgresql://u:p#w@h/db", "'#'"),
            ("mongodb://h/evil/db", "one database"),
        ] {
            let err = DbUri::parse(bad)
                .err()
                .unwrap_or_else(|| panic!("{bad} accepted"));
            assert!(err.contains(why), "{bad}: {err}");
        }
        // The reason never repeats the URI (it may hold a password).
        assert!(!DbUri::parse("mysql://admin:hunter2@db/x")
            .unwrap_err()
            .contains("hunter2"));
    }

    #[test]
    fn the_password_never_shows_in_display_or_debug() {
        let u = DbUri::parse("postgresql://relation-4:S3cr%2Ft@10.0.0.7/parse").unwrap();
        for shown in [u.to_string(), format!("{u:?}")] {
            assert!(!shown.contains("S3cr"), "{shown}");
            assert!(shown.contains("relation-4:***@10.0.0.7/parse"), "{shown}");
        }
        assert_eq!(u.describe_hosts(), "10.0.0.7:5432");
        assert_eq!(
            u.without_credentials().to_secret_string(),
            "postgresql://10.0.0.7/parse"
        );
    }

    #[test]
    fn options_are_data_never_syntax() {
        let mut u = DbUri::new(DbKind::MongoDb, vec![Host::new("fd00::1", None)], "parse");
        u.user = Some("a b'\"\\$@:/".into());
        u.password = Some("p&w=d?#".into());
        u.set_option("authSource", "admin");
        u.set_option("appName", "x&tlsInsecure=true");
        let s = u.to_secret_string();
        assert_eq!(
            s,
            "mongodb://a%20b%27%22%5C%24%40%3A%2F:p%26w%3Dd%3F%23@[fd00::1]/parse?authSource=admin&appName=x%26tlsInsecure%3Dtrue"
        );
        let back = DbUri::parse(&s).unwrap();
        assert_eq!(back, u);
        assert_eq!(back.option("tlsInsecure"), None);
        assert_eq!(back.option_ignore_case("authsource"), Some("admin"));
    }

    #[test]
    fn host_lists() {
        assert_eq!(
            Host::parse_list("10.0.0.5,10.0.0.6:27018,[fd00::1]:27017,fd00::2", true).unwrap(),
            vec![
                Host::new("10.0.0.5", None),
                Host::new("10.0.0.6", Some(27018)),
                Host::new("fd00::1", Some(27017)),
                Host::new("fd00::2", None)
            ]
        );
        for bad in [
            "",
            ",,",
            "h/evil",
            "h:0",
            "h:070000",
            "[fd00::1",
            "[fd00::1]x",
        ] {
            assert!(Host::parse_list(bad, true).is_err(), "{bad}");
        }
        assert_eq!(Host::new("fd00::1", None).with_port(5432), "[fd00::1]:5432");
        assert_eq!(Host::new("db", Some(1)).to_string(), "db:1");
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
        let u = HttpUrl::parse("https://api.example.com/parse").unwrap();
        assert!(u.https);
        assert_eq!(
            (u.host.as_str(), u.port, u.path.as_str()),
            ("api.example.com", None, "/parse")
        );
        assert_eq!(u.dns_name(), Some("api.example.com"));
        let v6 = HttpUrl::parse("http://[fd00::1]:8080").unwrap();
        assert_eq!((v6.port, v6.dns_name()), (Some(8080), None));
        assert_eq!(
            HttpUrl::parse("http://10.0.0.1:1337/parse")
                .unwrap()
                .dns_name(),
            None
        );
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
            assert!(HttpUrl::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn decoding() {
        assert_eq!(percent_decode("a%20b%zz%4"), "a b%zz%4");
        assert_eq!(percent_decode("%41"), "A");
        assert_eq!(percent_encode("a b/c", b"/"), "a%20b/c");
    }

    #[test]
    fn redis_urls_as_node_redis_reads_them() {
        let u = RedisUrl::parse("redis://:s%40cret@10.0.0.5/2").unwrap();
        assert!(!u.tls);
        assert_eq!(u.host, Host::new("10.0.0.5", Some(6379)));
        assert_eq!(u.username, None);
        assert_eq!(u.password.as_deref(), Some("s@cret"));
        assert_eq!(u.db, 2);
        assert_eq!(u.to_secret_string(), "redis://:s%40cret@10.0.0.5:6379/2");
        assert_eq!(u.describe(), "redis://10.0.0.5:6379");
        let u = RedisUrl::parse("rediss://parse:pw@cache.example.com:6380").unwrap();
        assert!(u.tls);
        assert_eq!(u.username.as_deref(), Some("parse"));
        assert_eq!(
            u.to_secret_string(),
            "rediss://parse:pw@cache.example.com:6380"
        );
        let u = RedisUrl::parse("redis://[fd00::5]:7000/").unwrap();
        assert_eq!(u.host.to_string(), "[fd00::5]:7000");
        assert_eq!(u.password, None);
        assert_eq!(
            RedisUrl::parse("redis://h").unwrap().to_secret_string(),
            "redis://h:6379"
        );
    }

    #[test]
    fn redis_urls_refused_never_echo_the_password() {
        for (bad, why) in [
            ("http://h", "redis://"),
            ("redis://", "host"),
            ("redis://:pw@", "host"),
            ("redis://h:0", "port"),
            ("redis://h:99999", "port"),
            ("redis://h/x", "database number"),
            ("redis://h/1?tls=1", "query"),
            ("redis://:p%zzsecret@h", "escape"),
            ("redis://:trailing%@h", "escape"),
            ("redis://user@h", "without a password"),
            ("redis://:pw with space@h", "spaces"),
            ("redis://h_1 x", "spaces"),
        ] {
            let e = RedisUrl::parse(bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
            assert!(!e.contains("secret") && !e.contains("pw"), "{bad}: {e}");
        }
    }
}
