//! Does the Redis behind `redis-url` answer, and accept the URL's credentials and database,
//! as parse-server's client (node-redis) will use them: `AUTH`, `SELECT`, `PING` in Redis's
//! own protocol (RESP), over TLS for `rediss://` (verified with the public CAs Node trusts).
//! What the server says is reduced to a fixed reason: nothing it echoes reaches a status.
//!
//! It also asks whether the user may run scripts: rate-limit-redis (parse-server's shared
//! rate limits) counts with `EVALSHA`, which an ACL without `@scripting` refuses (Charmed
//! Valkey gives its client users `-@all +@read +@write +@keyspace +@pubsub +@transaction
//! +info`); such a user still serves LiveQuery and the cache. A `PING` such a user may not
//! run (`NOPERM`) is no fault: the server answered and the password was accepted.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use super::database::{DbError, PostgresTls};
use crate::uri::RedisUrl;

/// One command in RESP: an array of bulk strings.
fn command(args: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// The first line of the server's reply (`+OK`, `-WRONGPASS …`, `$…`).
fn reply(r: &mut impl BufRead) -> Result<String, DbError> {
    let mut line = String::new();
    match r.take(4096).read_line(&mut line) {
        Ok(0) => Err(DbError::Unreachable(
            "the server closed the connection".into(),
        )),
        Ok(_) => Ok(line.trim_end().to_owned()),
        Err(e) => Err(DbError::Unreachable(io_reason(&e))),
    }
}

/// A socket error in a few words (for a status).
pub(super) fn io_reason(e: &std::io::Error) -> String {
    use std::io::ErrorKind::*;
    match e.kind() {
        ConnectionRefused => "connection refused".into(),
        TimedOut | WouldBlock => "timed out".into(),
        ConnectionReset | ConnectionAborted | BrokenPipe => "the connection was cut".into(),
        _ => crate::text::one_line(&e.to_string(), 60),
    }
}

/// The error's code only (`WRONGPASS`, `NOAUTH`, `ERR`): what follows may repeat input.
fn code(line: &str) -> &str {
    line.trim_start_matches('-')
        .split_whitespace()
        .next()
        .unwrap_or("")
}

/// What the server lets the URL's user do beyond LiveQuery and the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RedisInfo {
    /// Whether it may run scripts (`EVALSHA`): shared rate limits need it.
    pub scripts: bool,
}

/// A script digest no server holds: `EVALSHA` of it answers `NOSCRIPT` where scripts are
/// allowed and `NOPERM` where the ACL refuses them, and runs nothing either way.
const NO_SCRIPT: &str = "0000000000000000000000000000000000000000";

/// The conversation, on any stream.
fn converse(stream: impl Read + Write, url: &RedisUrl) -> Result<RedisInfo, DbError> {
    fn send<S: Read + Write>(r: &mut BufReader<S>, args: &[&str]) -> Result<String, DbError> {
        r.get_mut()
            .write_all(&command(args))
            .map_err(|e| DbError::Unreachable(io_reason(&e)))?;
        reply(r)
    }
    let mut r = BufReader::new(stream);
    if let Some(password) = &url.password {
        let mut args = vec!["AUTH"];
        if let Some(user) = &url.username {
            args.push(user);
        }
        args.push(password);
        let answer = send(&mut r, &args)?;
        if !answer.starts_with('+') {
            return Err(DbError::Refused(match code(&answer) {
                "WRONGPASS" => "the server refused the user and password".into(),
                _ if answer.contains("without any password configured") => {
                    "the server has no password set: remove it from the URL".into()
                }
                c => format!("the server refused AUTH ({c})"),
            }));
        }
    }
    if url.db != 0 {
        let db = url.db.to_string();
        let answer = send(&mut r, &["SELECT", &db])?;
        if !answer.starts_with('+') {
            return Err(DbError::Refused(match code(&answer) {
                "NOAUTH" => "the server requires a password (none in the URL)".into(),
                _ => format!("the server has no database {db}"),
            }));
        }
    }
    let answer = send(&mut r, &["PING"])?;
    match answer.as_str() {
        "+PONG" => {}
        _ if code(&answer) == "NOPERM" => {}
        _ => {
            return Err(DbError::Refused(match code(&answer) {
                "NOAUTH" => "the server requires a password (none in the URL)".into(),
                c if answer.starts_with('-') => format!("the server refused PING ({c})"),
                _ => "the server does not speak Redis's protocol".into(),
            }))
        }
    }
    let answer = send(&mut r, &["EVALSHA", NO_SCRIPT, "0"])?;
    Ok(RedisInfo {
        scripts: code(&answer) != "NOPERM",
    })
}

/// Connects to the URL's server and checks what parse-server's client will do first; over
/// TLS, the server's certificate is verified with `ca_pem` (else the public CAs).
pub fn check(
    url: &RedisUrl,
    ca_pem: Option<&str>,
    timeout: Duration,
) -> Result<RedisInfo, DbError> {
    let port = url.host.port.unwrap_or(RedisUrl::DEFAULT_PORT);
    let addrs: Vec<_> = (url.host.name.as_str(), port)
        .to_socket_addrs()
        .map_err(|_| DbError::Unreachable(format!("cannot resolve {}", url.host.name)))?
        .collect();
    let mut last = DbError::Unreachable(format!("cannot resolve {}", url.host.name));
    for addr in addrs {
        let tcp = match TcpStream::connect_timeout(&addr, timeout) {
            Ok(s) => s,
            Err(e) => {
                last = DbError::Unreachable(io_reason(&e));
                continue;
            }
        };
        tcp.set_read_timeout(Some(timeout))
            .and_then(|()| tcp.set_write_timeout(Some(timeout)))
            .map_err(|e| DbError::Unreachable(io_reason(&e)))?;
        if !url.tls {
            return converse(tcp, url);
        }
        let tls = match ca_pem {
            Some(pem) => PostgresTls::Ca(pem.to_owned()),
            None => PostgresTls::PublicRoots,
        };
        let config = tls
            .client_config()
            .map_err(DbError::Refused)?
            .ok_or_else(|| DbError::Refused("no TLS settings".into()))?;
        let name = rustls::ServerName::try_from(url.host.name.as_str())
            .map_err(|_| DbError::Refused("the host is not a TLS server name".into()))?;
        let conn = rustls::ClientConnection::new(Arc::new(config), name)
            .map_err(|e| DbError::Refused(format!("TLS: {e}")))?;
        return converse(rustls::StreamOwned::new(conn, tcp), url).map_err(|e| match e {
            DbError::Unreachable(why) if why.contains("certificate") || why.contains("TLS") => {
                DbError::Refused(format!("TLS: {why}"))
            }
            other => other,
        });
    }
    Err(last)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    /// A server that answers each line of commands from `answers`, in order.
    fn server(answers: &'static [&'static str]) -> (u16, std::thread::JoinHandle<Vec<String>>) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let h = std::thread::spawn(move || {
            let (s, _) = l.accept().unwrap();
            let mut r = BufReader::new(s);
            let mut seen = Vec::new();
            for a in answers {
                // One command: "*N", then N pairs of "$len" and the value.
                let mut head = String::new();
                r.read_line(&mut head).unwrap();
                let n: usize = head.trim()[1..].parse().unwrap();
                let mut args = Vec::new();
                for _ in 0..n {
                    let mut len = String::new();
                    r.read_line(&mut len).unwrap();
                    let mut v = String::new();
                    r.read_line(&mut v).unwrap();
                    args.push(v.trim_end().to_owned());
                }
                seen.push(args.join(" "));
                r.get_mut()
                    .write_all(format!("{a}\r\n").as_bytes())
                    .unwrap();
            }
            seen
        });
        (port, h)
    }

    fn url(port: u16, auth: &str, db: &str) -> RedisUrl {
        RedisUrl::parse(&format!("redis://{auth}127.0.0.1:{port}{db}")).unwrap()
    }

    #[test]
    fn auth_select_ping() {
        let (port, h) = server(&["+OK", "+OK", "+PONG", "-NOSCRIPT No matching script."]);
        let info = check(&url(port, "parse:pw@", "/3"), None, Duration::from_secs(5)).unwrap();
        assert!(info.scripts);
        assert_eq!(
            h.join().unwrap(),
            [
                "AUTH parse pw",
                "SELECT 3",
                "PING",
                &format!("EVALSHA {NO_SCRIPT} 0")
            ]
        );
        // Charmed Valkey's client user: no PING, no scripts.
        const VALKEY_USER: &[&str] = &[
            "+OK",
            "-NOPERM User parse has no permissions to run the 'ping' command",
            "-NOPERM User parse has no permissions to run the 'evalsha' command",
        ];
        let (port, h) = server(VALKEY_USER);
        let info = check(&url(port, ":pw@", ""), None, Duration::from_secs(5)).unwrap();
        assert!(!info.scripts);
        h.join().unwrap();
    }

    #[test]
    fn refusals_are_named_without_what_the_server_echoed() {
        for (answers, auth, db, why) in [
            (
                &["-WRONGPASS invalid username-password pair or user is disabled."][..],
                ":bad@",
                "",
                "refused the user and password",
            ),
            (
                &["-ERR AUTH <password> called without any password configured for the default user."][..],
                ":pw@",
                "",
                "no password set",
            ),
            (&["-NOAUTH Authentication required."][..], "", "", "requires a password"),
            (&["+OK", "-ERR DB index is out of range"][..], ":pw@", "/99", "no database 99"),
            (&["HTTP/1.1 400 Bad Request"][..], "", "", "does not speak"),
        ] {
            let answers: &'static [&'static str] = Box::leak(answers.to_vec().into_boxed_slice());
            let (port, h) = server(answers);
            match check(&url(port, auth, db), None, Duration::from_secs(5)) {
                Err(DbError::Refused(r)) => assert!(r.contains(why), "{r}"),
                other => panic!("{other:?}"),
            }
            h.join().unwrap();
        }
    }

    #[test]
    fn nothing_listening_is_unreachable() {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        match check(&url(port, "", ""), None, Duration::from_secs(2)) {
            Err(DbError::Unreachable(r)) => assert_eq!(r, "connection refused"),
            other => panic!("{other:?}"),
        }
    }
}
