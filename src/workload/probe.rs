//! The questions the charm asks the world outside it: does parse-server answer its health
//! check, does the database answer (with these credentials), does another process hold a
//! port. Behind one trait so that a test can say "the database is down" or "parse-server
//! answers ok after restart" without a network.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use serde_json::Value;

use super::database::{self, DbError, DbInfo};
use super::memory::{self, HeapStats, ServiceMemory};
use super::paths::Paths;
use super::sizing::Machine;
use super::systemd::SERVICE_UNIT;
use crate::uri::DbUri;

/// The outside world's answers.
pub trait Probes {
    /// One `GET <mount>/health` on the unit's loopback; `Err` is why it is not healthy.
    fn health(&self, port: u16, mount_path: &str) -> Result<(), String>;
    /// Whether the database behind `uri` answers and accepts the credentials in it, over TLS
    /// verified with `ca_pem` when given (as parse-server will connect).
    fn database(
        &self,
        uri: &DbUri,
        ca_pem: Option<&str>,
        timeout: Duration,
    ) -> Result<DbInfo, DbError>;
    /// Whether a process holds `port` (a listener the service could not bind next to).
    fn port_in_use(&self, port: u16) -> bool;
    /// The machine's CPUs and memory.
    fn machine(&self) -> Machine;
    /// The service's processes and what they use (`None`: no such service running).
    fn service_memory(&self) -> Option<ServiceMemory>;
    /// The service's resident memory in KiB, shared file pages counted once: the status's
    /// figure, cheap enough for every hook (`None`: no such service running).
    fn service_resident_kib(&self) -> Option<u64>;
    /// The V8 heap of each of `pids` that can report it.
    fn heap_statistics(&self, pids: &[u32]) -> std::collections::BTreeMap<u32, HeapStats>;
    /// Loads a Cloud Code revision once outside the service: `Ok(Err(line))` is the first
    /// line of why it does not load.
    fn cloud_code_loads(
        &self,
        paths: &Paths,
        check: &super::cloud_code::Check,
    ) -> anyhow::Result<Result<(), String>> {
        super::cloud_code::check_loads(paths, check)
    }
    /// Whether the Redis behind `url` answers and accepts its credentials and database
    /// (over TLS verified with `ca_pem` when given), and what its user may do.
    fn redis(
        &self,
        url: &crate::uri::RedisUrl,
        ca_pem: Option<&str>,
        timeout: Duration,
    ) -> Result<super::redis::RedisInfo, DbError> {
        super::redis::check(url, ca_pem, timeout)
    }
    /// Whether the bucket exists on the store and the store accepts the credentials for it.
    fn s3(&self, store: &super::s3::S3Store, timeout: Duration) -> Result<(), DbError> {
        super::s3::check(store, timeout)
    }
    /// Waits between two health checks.
    fn pause(&self, d: Duration) {
        std::thread::sleep(d);
    }
    /// Seconds since the Unix epoch: the clock of the restart grant's lease and of the
    /// retries of a configuration that did not start.
    fn now(&self) -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    }
}

/// The real answers: HTTP on the loopback, the database's own protocol, `bind(2)`.
pub struct SystemProbes;

impl Probes for SystemProbes {
    fn health(&self, port: u16, mount_path: &str) -> Result<(), String> {
        health(port, mount_path)
    }

    fn database(
        &self,
        uri: &DbUri,
        ca_pem: Option<&str>,
        timeout: Duration,
    ) -> Result<DbInfo, DbError> {
        database::check(
            uri,
            ca_pem,
            std::path::Path::new(Paths::CHARM_STATE),
            timeout,
        )
    }

    fn port_in_use(&self, port: u16) -> bool {
        std::net::TcpListener::bind(("0.0.0.0", port))
            .map(drop)
            .is_err_and(|e| e.kind() == std::io::ErrorKind::AddrInUse)
    }

    fn machine(&self) -> Machine {
        memory::machine(std::path::Path::new("/"))
    }

    fn service_memory(&self) -> Option<ServiceMemory> {
        memory::service(std::path::Path::new("/"), SERVICE_UNIT).filter(|s| !s.processes.is_empty())
    }

    fn service_resident_kib(&self) -> Option<u64> {
        memory::resident_kib(std::path::Path::new("/"), SERVICE_UNIT)
    }

    fn heap_statistics(&self, pids: &[u32]) -> std::collections::BTreeMap<u32, HeapStats> {
        let root = Paths::new("/");
        // The reports are trusted only from files of the service's own account.
        let Some((uid, _)) = super::user::lookup(&root, super::user::SERVICE_USER) else {
            return Default::default();
        };
        memory::heap_statistics(
            std::path::Path::new("/"),
            pids,
            Paths::SERVICE_HOOKS,
            std::path::Path::new(Paths::STATE_DIR),
            uid,
            Duration::from_secs(3),
        )
    }
}

/// `GET <mount>/health` on 127.0.0.1; Ok only for `200` with `{"status":"ok"}`.
pub fn health(port: u16, mount_path: &str) -> Result<(), String> {
    let path = format!("{}/health", mount_path.trim_end_matches('/'));
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))
        .map_err(|e| format!("nothing answers on port {port} ({e})"))?;
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let request =
        format!("GET {path} HTTP/1.0\r\nHost: localhost\r\nAccept: application/json\r\n\r\n");
    s.write_all(request.as_bytes()).map_err(|e| e.to_string())?;
    let mut body = Vec::new();
    s.take(64 * 1024)
        .read_to_end(&mut body)
        .map_err(|e| format!("{path}: {e}"))?;
    let text = String::from_utf8_lossy(&body);
    let code = text
        .lines()
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap_or("?")
        .to_owned();
    let payload = text.split("\r\n\r\n").nth(1).unwrap_or("").trim();
    let status = serde_json::from_str::<Value>(payload)
        .ok()
        .and_then(|v| v.get("status").and_then(|s| s.as_str().map(str::to_owned)));
    if code == "200" && status.as_deref() == Some("ok") {
        Ok(())
    } else {
        let short: String = payload.chars().take(80).collect();
        Err(format!("{path} answers {code} {short}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_against_a_fake_server() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let t = std::thread::spawn(move || {
            for body in ["{\"status\":\"starting\"}", "{\"status\":\"ok\"}"] {
                let (mut c, _) = listener.accept().unwrap();
                let mut buf = [0u8; 1024];
                let n = c.read(&mut buf).unwrap();
                assert!(String::from_utf8_lossy(&buf[..n]).starts_with("GET /api/health "));
                let code = if body.contains("ok") {
                    "200 OK"
                } else {
                    "503 Service Unavailable"
                };
                write!(
                    c,
                    "HTTP/1.1 {code}\r\nContent-Type: application/json\r\n\r\n{body}"
                )
                .unwrap();
            }
        });
        let first = health(port, "/api").unwrap_err();
        assert!(first.contains("503"), "{first}");
        assert_eq!(health(port, "/api"), Ok(()));
        t.join().unwrap();
    }

    #[test]
    fn a_held_port_is_seen() {
        let listener = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        assert!(SystemProbes.port_in_use(port));
        drop(listener);
        assert!(!SystemProbes.port_in_use(port));
    }
}
