//! "Does the database answer?": a MongoDB `ping` through the official driver, or a PostgreSQL
//! start-up handshake, each with a short timeout. Reasons returned never contain credentials.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
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

fn percent_decode(s: &str) -> String {
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

/// Checks that the database behind `uri` answers within `timeout`. `Err` is a short reason
/// fit for a status message.
pub fn check(uri: &str, timeout: Duration) -> Result<(), String> {
    let parsed = DbUri::parse(uri).ok_or_else(|| "the database URI cannot be read".to_owned())?;
    let result = if parsed.is_postgres() {
        check_postgres(&parsed, timeout)
    } else {
        check_mongodb(uri, timeout)
    };
    result.map_err(|why| {
        let why = crate::first_line(&redact(&why, uri), 200);
        format!(
            "database at {} does not answer: {why}",
            parsed.describe_hosts()
        )
    })
}

/// The driver is the 2.x line on purpose: it speaks to MongoDB 3.6 and later (wire version 6),
/// like parse-server's own driver, where the 3.x line refuses anything older than 4.4.
fn check_mongodb(uri: &str, timeout: Duration) -> Result<(), String> {
    use mongodb::bson::doc;
    use mongodb::options::ClientOptions;
    let mut opts = ClientOptions::parse(uri).map_err(|e| e.kind.to_string())?;
    opts.server_selection_timeout = Some(timeout);
    opts.connect_timeout = Some(timeout);
    opts.app_name = Some("parse-server-charm".into());
    let client = mongodb::sync::Client::with_options(opts).map_err(|e| e.kind.to_string())?;
    client
        .database("admin")
        .run_command(doc! {"ping": 1}, None)
        .map(drop)
        .map_err(|e| crate::first_line(&e.kind.to_string(), 200))
}

/// Opens a connection and sends a protocol-3 StartupMessage: an authentication request back
/// means a PostgreSQL server is there and accepts this user and database; an error response
/// carries the server's reason (e.g. the database does not exist).
fn check_postgres(uri: &DbUri, timeout: Duration) -> Result<(), String> {
    let (host, port) = &uri.hosts[0];
    let addr = (host.as_str(), port.unwrap_or(5432))
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {host}: {e}"))?
        .next()
        .ok_or_else(|| format!("{host} has no address"))?;
    let mut s = TcpStream::connect_timeout(&addr, timeout).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    s.set_write_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    let user = uri.user.clone().unwrap_or_else(|| "postgres".into());
    let database = uri.database.clone().unwrap_or_else(|| user.clone());
    let mut body = Vec::new();
    body.extend_from_slice(&196608u32.to_be_bytes()); // protocol 3.0
    for (k, v) in [("user", user.as_str()), ("database", database.as_str())] {
        body.extend_from_slice(k.as_bytes());
        body.push(0);
        body.extend_from_slice(v.as_bytes());
        body.push(0);
    }
    body.push(0);
    let mut msg = ((body.len() + 4) as u32).to_be_bytes().to_vec();
    msg.extend_from_slice(&body);
    s.write_all(&msg).map_err(|e| e.to_string())?;
    let mut head = [0u8; 5];
    s.read_exact(&mut head)
        .map_err(|e| format!("no answer: {e}"))?;
    match head[0] {
        b'R' => Ok(()),
        b'E' => {
            let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
            let mut rest = vec![0u8; len.saturating_sub(4).min(4096)];
            let _ = s.read_exact(&mut rest);
            let message = rest
                .split(|b| *b == 0)
                .find(|f| f.first() == Some(&b'M'))
                .map(|f| String::from_utf8_lossy(&f[1..]).into_owned())
                .unwrap_or_else(|| "refused".into());
            Err(message)
        }
        other => Err(format!(
            "unexpected reply {other:#x}: not a PostgreSQL server"
        )),
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
        let uri = format!("postgres://u:topsecret@127.0.0.1:{port}/db");
        let err = check(&uri, Duration::from_millis(500)).unwrap_err();
        assert!(err.contains(&format!("127.0.0.1:{port}")), "{err}");
        assert!(!err.contains("topsecret"), "{err}");
        let uri = format!("mongodb://u:topsecret@127.0.0.1:{port}/db");
        let err = check(&uri, Duration::from_millis(500)).unwrap_err();
        assert!(!err.contains("topsecret"), "{err}");
    }

    #[test]
    fn non_postgres_server_is_named() {
        // A server that answers with something else than R/E.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let t = std::thread::spawn(move || {
            let (mut c, _) = listener.accept().unwrap();
            let mut buf = [0u8; 64];
            let _ = c.read(&mut buf);
            c.write_all(b"HTTP/1.1 400 Bad\r\n\r\n").unwrap();
        });
        let err = check(
            &format!("postgres://u@127.0.0.1:{port}/db"),
            Duration::from_secs(2),
        )
        .unwrap_err();
        assert!(err.contains("not a PostgreSQL server"), "{err}");
        t.join().unwrap();
    }
}
