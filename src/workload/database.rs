//! "Does the database answer, and accept these credentials?": a MongoDB `ping` through the
//! official driver or a PostgreSQL `SELECT 1` through the `postgres` crate, each with a short
//! timeout. Reasons returned never contain credentials.

use std::time::Duration;

/// The parts of a database URI the checks need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DbUri {
    pub scheme: String,
    pub user: Option<String>,
    pub password: Option<String>,
    /// `(host, port)`; IPv6 hosts without brackets; port `None` when not given.
    pub hosts: Vec<(String, Option<u16>)>,
    pub database: Option<String>,
}

impl DbUri {
    pub fn parse(uri: &str) -> Option<DbUri> {
        let (scheme, rest) = uri.split_once("://")?;
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
        let mut hosts = Vec::new();
        for h in hostlist.split(',').filter(|h| !h.is_empty()) {
            let (host, port) = if let Some(v6) = h.strip_prefix('[') {
                let (addr, after) = v6.split_once(']')?;
                (addr.to_owned(), after.strip_prefix(':'))
            } else {
                match h.rsplit_once(':') {
                    Some((a, p)) => (a.to_owned(), Some(p)),
                    None => (h.to_owned(), None),
                }
            };
            let port = match port {
                Some(p) => Some(p.parse().ok()?),
                None => None,
            };
            hosts.push((host, port));
        }
        if hosts.is_empty() {
            return None;
        }
        let database = tail
            .strip_prefix('/')
            .map(|t| t.split('?').next().unwrap_or(""))
            .filter(|d| !d.is_empty())
            .map(percent_decode);
        Some(DbUri {
            scheme: scheme.to_owned(),
            user,
            password,
            hosts,
            database,
        })
    }

    pub fn is_postgres(&self) -> bool {
        self.scheme == "postgres" || self.scheme == "postgresql"
    }

    /// `uri` with each host of its host list replaced by a placeholder name (same count and
    /// ports), for a parser that handles the rest of the URI but not every host syntax.
    pub fn with_placeholder_hosts(&self, uri: &str) -> String {
        let Some((scheme, rest)) = uri.split_once("://") else {
            return uri.to_owned();
        };
        let end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(end);
        let userinfo = authority.rsplit_once('@').map(|(u, _)| u);
        let hosts: Vec<String> = (0..self.hosts.len())
            .map(|i| format!("host{i}.invalid"))
            .collect();
        match userinfo {
            Some(u) => format!("{scheme}://{u}@{}{tail}", hosts.join(",")),
            None => format!("{scheme}://{}{tail}", hosts.join(",")),
        }
    }

    /// `host:port, …` for messages: never the credentials.
    pub fn describe_hosts(&self) -> String {
        let default = if self.is_postgres() { 5432 } else { 27017 };
        self.hosts
            .iter()
            .map(|(h, p)| {
                let p = p.unwrap_or(default);
                if h.contains(':') {
                    format!("[{h}]:{p}")
                } else {
                    format!("{h}:{p}")
                }
            })
            .collect::<Vec<_>>()
            .join(",")
    }
}

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

/// Removes anything secret in `uri` from `text`.
pub fn redact(text: &str, uri: &str) -> String {
    let mut out = text.replace(uri, "<database-uri>");
    if let Some(DbUri {
        password: Some(p), ..
    }) = DbUri::parse(uri)
    {
        if !p.is_empty() {
            out = out.replace(&p, "***");
        }
    }
    out
}

/// Why the database check failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DbError {
    /// The URI cannot be used at all (a mistake in it).
    BadUri(String),
    /// Nothing answers (down, unreachable, timed out): may change by itself.
    Unreachable(String),
    /// The server answered and refused: wrong credentials, no such database, not allowed.
    Refused(String),
}

impl DbError {
    pub fn reason(&self) -> &str {
        match self {
            DbError::BadUri(r) | DbError::Unreachable(r) | DbError::Refused(r) => r,
        }
    }
}

/// What the check learned about a database that answered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DbInfo {
    /// PostgreSQL: whether the PostGIS extension is there (parse-server's geo queries need
    /// it); `None` for MongoDB.
    pub postgis: Option<bool>,
}

/// Checks what parse-server will need of the database behind `uri` within `timeout`:
/// connect, authenticate with the URI's credentials, run a trivial command. The reason in
/// an error is short and never holds a credential.
pub fn check(uri: &str, timeout: Duration) -> Result<DbInfo, DbError> {
    let parsed =
        DbUri::parse(uri).ok_or_else(|| DbError::BadUri("the URI cannot be read".to_owned()))?;
    let result = if parsed.is_postgres() {
        check_postgres(uri, timeout)
    } else {
        check_mongodb(uri, &parsed, timeout)
    };
    let hosts = parsed.describe_hosts();
    result.map_err(|e| {
        let clean = |why: &str| crate::juju::status::one_line(&redact(why, uri), 120);
        match e {
            DbError::BadUri(why) => DbError::BadUri(clean(&why)),
            DbError::Unreachable(why) => DbError::Unreachable(format!(
                "database at {hosts} does not answer: {}",
                clean(&why)
            )),
            DbError::Refused(why) => {
                DbError::Refused(format!("database at {hosts} refused: {}", clean(&why)))
            }
        }
    })
}

/// MongoDB: a `ping` through the official driver, with the URI's credentials. The driver is
/// the 2.x line on purpose: it speaks to MongoDB 3.6 and later (wire version 6), like
/// parse-server's own driver, where the 3.x line refuses anything older than 4.4. Its URI
/// parser refuses bracketed IPv6 hosts (`mongodb://[fd00::1]:27017/db`), which parse-server's
/// driver accepts, so the host list is given to it as addresses rather than in the URI.
fn check_mongodb(uri: &str, parsed: &DbUri, timeout: Duration) -> Result<DbInfo, DbError> {
    use mongodb::bson::doc;
    use mongodb::error::ErrorKind;
    use mongodb::options::{ClientOptions, ServerAddress};
    let srv = parsed.scheme == "mongodb+srv";
    let parseable = if srv {
        uri.to_owned()
    } else {
        parsed.with_placeholder_hosts(uri)
    };
    let mut opts =
        ClientOptions::parse(parseable).map_err(|e| DbError::BadUri(e.kind.to_string()))?;
    if !srv {
        opts.hosts = parsed
            .hosts
            .iter()
            .map(|(host, port)| ServerAddress::Tcp {
                host: host.clone(),
                port: Some(port.unwrap_or(27017)),
            })
            .collect();
    }
    opts.server_selection_timeout = Some(timeout);
    opts.connect_timeout = Some(timeout);
    opts.app_name = Some("parse-server-charm".into());
    let client = mongodb::sync::Client::with_options(opts)
        .map_err(|e| DbError::BadUri(e.kind.to_string()))?;
    // `ping` needs no login, even on a real mongod: listing the application's collections
    // proves the credentials and the access parse-server needs.
    let database = parsed
        .database
        .clone()
        .unwrap_or_else(|| "admin".to_owned());
    let result = client
        .database("admin")
        .run_command(doc! {"ping": 1}, None)
        .and_then(|_| {
            client.database(&database).run_command(
                doc! {"listCollections": 1, "nameOnly": true, "authorizedCollections": true},
                None,
            )
        });
    match result {
        Ok(_) => Ok(DbInfo::default()),
        Err(e) => {
            let why = crate::juju::status::one_line(&e.kind.to_string(), 200);
            let auth = |text: &str| {
                text.contains("Authentication failed")
                    || text.contains("AuthenticationFailed")
                    || text.contains("requires authentication")
                    || text.contains("Unauthorized")
                    || text.contains("not authorized")
            };
            Err(match *e.kind {
                ErrorKind::Authentication { .. } => DbError::Refused(why),
                ErrorKind::Command(ref c) if c.code == 13 || c.code == 18 => DbError::Refused(why),
                ErrorKind::InvalidArgument { .. } => DbError::BadUri(why),
                _ if auth(&why) => DbError::Refused(why),
                _ => DbError::Unreachable(why),
            })
        }
    }
}

/// PostgreSQL: connect, authenticate and ask whether PostGIS is there, through the
/// `postgres` crate.
fn check_postgres(uri: &str, timeout: Duration) -> Result<DbInfo, DbError> {
    use std::str::FromStr;
    let mut config = postgres::Config::from_str(uri).map_err(|e| DbError::BadUri(e.to_string()))?;
    config.connect_timeout(timeout);
    config.application_name("parse-server-charm");
    let mut client = config.connect(postgres::NoTls).map_err(classify_postgres)?;
    let rows = client
        .query(
            "SELECT extname FROM pg_extension WHERE extname = 'postgis'",
            &[],
        )
        .map_err(classify_postgres)?;
    Ok(DbInfo {
        postgis: Some(!rows.is_empty()),
    })
}

fn classify_postgres(e: postgres::Error) -> DbError {
    match e.as_db_error() {
        // The server answered: wrong password, unknown role or database, no pg_hba entry.
        Some(db) => DbError::Refused(format!("{} ({})", db.message(), db.code().code())),
        None => {
            let mut why = e.to_string();
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                why = format!("{why}: {s}");
                source = s.source();
            }
            DbError::Unreachable(why)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_uris() {
        let u =
            DbUri::parse("mongodb://u:p%40ss@h1:27017,[fd00::1]:27018/shop?replicaSet=rs").unwrap();
        assert_eq!(u.user.as_deref(), Some("u"));
        assert_eq!(u.password.as_deref(), Some("p@ss"));
        assert_eq!(
            u.hosts,
            vec![("h1".into(), Some(27017)), ("fd00::1".into(), Some(27018))]
        );
        assert_eq!(u.database.as_deref(), Some("shop"));
        assert_eq!(u.describe_hosts(), "h1:27017,[fd00::1]:27018");
        let p = DbUri::parse("postgres://parse@localhost/parse").unwrap();
        assert!(p.is_postgres());
        assert_eq!(p.describe_hosts(), "localhost:5432");
        assert_eq!(DbUri::parse("mongodb:///x"), None);
        assert_eq!(DbUri::parse("mongodb://h:notaport/x"), None);
    }

    #[test]
    fn redacts_passwords() {
        let uri = "postgres://parse:s3cr%21t@db/parse";
        let r = redact(
            "auth failed for s3cr!t at postgres://parse:s3cr%21t@db/parse",
            uri,
        );
        assert!(!r.contains("s3cr"), "{r}");
    }

    #[test]
    fn closed_port_is_reported_without_secrets() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        for scheme in ["postgres", "mongodb"] {
            let uri = format!("{scheme}://u:topsecret@127.0.0.1:{port}/db");
            let err = check(&uri, Duration::from_millis(500)).unwrap_err();
            assert!(matches!(err, DbError::Unreachable(_)), "{err:?}");
            assert!(
                err.reason().contains(&format!("127.0.0.1:{port}")),
                "{err:?}"
            );
            assert!(!err.reason().contains("topsecret"), "{err:?}");
        }
    }

    #[test]
    fn ipv6_hosts_reach_the_driver_as_addresses() {
        let u =
            DbUri::parse("mongodb://u:p%40ss@[fd00::1]:27017,10.0.0.1/db?replicaSet=rs").unwrap();
        assert_eq!(
            u.with_placeholder_hosts(
                "mongodb://u:p%40ss@[fd00::1]:27017,10.0.0.1/db?replicaSet=rs"
            ),
            "mongodb://u:p%40ss@host0.invalid,host1.invalid/db?replicaSet=rs"
        );
        // Nothing listens on ::1 at this port: the driver tries, and says it is unreachable
        // (its URI parser alone would have refused the URI).
        let port = std::net::TcpListener::bind("[::1]:0")
            .expect("an IPv6 loopback")
            .local_addr()
            .unwrap()
            .port();
        let err = check(
            &format!("mongodb://[::1]:{port}/db"),
            Duration::from_millis(300),
        )
        .unwrap_err();
        assert!(matches!(err, DbError::Unreachable(_)), "{err:?}");
    }

    #[test]
    fn unusable_uris_are_bad_uris() {
        let err = check("postgres://u@h:notaport/db", Duration::from_millis(200)).unwrap_err();
        assert!(matches!(err, DbError::BadUri(_)), "{err:?}");
    }
}
