//! "Does the database answer, and accept these credentials, the way parse-server will speak to
//! it?": MongoDB `ping` and `listCollections` through the official driver, PostgreSQL connect,
//! authenticate and a query through the `postgres` crate, each with a short timeout and with
//! TLS exactly when parse-server uses it (the provider's CA given in memory, or the URI's own
//! TLS options). Reasons returned never contain credentials.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::text::one_line;
use crate::uri::{DbKind, DbUri, Host};

/// Why the database check failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DbError {
    /// The URI cannot be used at all (a mistake in it).
    BadUri(String),
    /// Nothing answers (down, unreachable, timed out): may change by itself.
    Unreachable(String),
    /// The server answered and refused: wrong credentials, no such database, not allowed, or
    /// a certificate the CA does not vouch for.
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

/// Removes anything secret in `uri` from `text`: the password, decoded and as written.
fn redact(text: &str, uri: &DbUri) -> String {
    let mut out = text.to_owned();
    if let Some(p) = uri.password.as_deref().filter(|p| !p.is_empty()) {
        out = out.replace(&uri.to_secret_string(), &uri.to_string());
        out = out.replace(&crate::uri::percent_encode(p, b""), "***");
        out = out.replace(p, "***");
    }
    out
}

/// Checks what parse-server will need of the database behind `uri` within `timeout`:
/// connect (with TLS where parse-server uses it; `ca_pem` is the provider's CA, which the
/// check holds in memory or writes into `scratch`, a root-only directory, for as long as a
/// driver needs a file), authenticate with the URI's credentials, run a trivial command.
/// The reason in an error is short and never holds a credential.
pub fn check(
    uri: &DbUri,
    ca_pem: Option<&str>,
    scratch: &Path,
    timeout: Duration,
) -> Result<DbInfo, DbError> {
    let result = if uri.is_postgres() {
        check_postgres(uri, ca_pem, timeout)
    } else {
        check_mongodb(uri, ca_pem, scratch, timeout)
    };
    let hosts = uri.describe_hosts();
    result.map_err(|e| {
        let clean = |why: &str| one_line(&redact(why, uri), 120);
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

/// A TLS failure is the server (or its certificate) saying no, not silence.
fn is_tls_failure(why: &str) -> bool {
    let w = why.to_ascii_lowercase();
    w.contains("certificate") || w.contains("tls handshake") || w.contains("peer sent")
}

/// A file that exists while a check needs it (0600, in the root-only `scratch` dir).
struct ScratchFile(std::path::PathBuf);

impl ScratchFile {
    fn write(scratch: &Path, name: &str, content: &str) -> Result<ScratchFile, DbError> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let path = scratch.join(name);
        let _ = std::fs::remove_file(&path);
        std::fs::create_dir_all(scratch)
            .and_then(|_| {
                std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&path)
            })
            .and_then(|mut f| f.write_all(content.as_bytes()))
            .map_err(|e| DbError::BadUri(format!("cannot stage the TLS CA for the check: {e}")))?;
        Ok(ScratchFile(path))
    }
}

impl Drop for ScratchFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// MongoDB: `ping` and `listCollections` through the official driver, with the URI's
/// credentials. The driver is the 2.x line on purpose: it speaks to MongoDB 3.6 and later
/// (wire version 6), like parse-server's own driver, where the 3.x line refuses anything
/// older than 4.4. Its URI parser refuses bracketed IPv6 hosts, which parse-server's driver
/// accepts, so the hosts are given to it as addresses rather than in the URI.
fn check_mongodb(
    uri: &DbUri,
    ca_pem: Option<&str>,
    scratch: &Path,
    timeout: Duration,
) -> Result<DbInfo, DbError> {
    use mongodb::bson::doc;
    use mongodb::error::ErrorKind;
    use mongodb::options::{ClientOptions, ServerAddress, Tls, TlsOptions};
    let srv = uri.kind == DbKind::MongoDbSrv;
    let parseable = if srv {
        uri.clone()
    } else {
        let mut placeholder = uri.clone();
        placeholder.hosts = (0..uri.hosts.len())
            .map(|i| Host::new(format!("host{i}.invalid"), None))
            .collect();
        placeholder
    };
    let mut opts = ClientOptions::parse(parseable.to_secret_string())
        .map_err(|e| DbError::BadUri(e.kind.to_string()))?;
    if !srv {
        opts.hosts = uri
            .hosts
            .iter()
            .map(|h| ServerAddress::Tcp {
                host: h.name.clone(),
                port: Some(h.port.unwrap_or(DbKind::MongoDb.default_port())),
            })
            .collect();
    }
    // The provider's CA: the driver reads CA files only, so a copy lives for this check.
    let _staged = match ca_pem {
        Some(pem) => {
            let file = ScratchFile::write(scratch, "database-ca.check.pem", pem)?;
            opts.tls = Some(Tls::Enabled(
                TlsOptions::builder().ca_file_path(file.0.clone()).build(),
            ));
            Some(file)
        }
        None => None,
    };
    opts.server_selection_timeout = Some(timeout);
    opts.connect_timeout = Some(timeout);
    opts.app_name = Some("parse-server-charm".into());
    let client = mongodb::sync::Client::with_options(opts)
        .map_err(|e| DbError::BadUri(e.kind.to_string()))?;
    // `ping` needs no login, even on a real mongod: listing the application's collections
    // proves the credentials and the access parse-server needs.
    let result = client
        .database("admin")
        .run_command(doc! {"ping": 1}, None)
        .and_then(|_| {
            client.database(&uri.database).run_command(
                doc! {"listCollections": 1, "nameOnly": true, "authorizedCollections": true},
                None,
            )
        });
    match result {
        Ok(_) => Ok(DbInfo::default()),
        Err(e) => {
            let why = one_line(&e.kind.to_string(), 200);
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
                _ if auth(&why) || is_tls_failure(&why) => DbError::Refused(why),
                _ => DbError::Unreachable(why),
            })
        }
    }
}

/// How parse-server's PostgreSQL adapter speaks TLS for a URI (its own option names:
/// `ssl=true`, `ca=<file>`, `rejectUnauthorized=false`; libpq's `sslmode` means nothing to
/// it), with the provider's CA in place of `ca` for a relation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PostgresTls {
    /// In clear text.
    Off,
    /// Verified against these CA certificates (PEM).
    Ca(String),
    /// Verified against the Mozilla roots Node.js ships.
    PublicRoots,
    /// Encrypted, the certificate not checked (`rejectUnauthorized=false`).
    Unverified,
}

impl PostgresTls {
    /// What parse-server will do for `uri` (reading a `ca` file the URI names).
    pub fn of(uri: &DbUri, ca_pem: Option<&str>) -> Result<PostgresTls, String> {
        let on = |k: &str| {
            uri.option(k)
                .is_some_and(|v| v.eq_ignore_ascii_case("true"))
        };
        let off = |k: &str| {
            uri.option(k)
                .is_some_and(|v| v.eq_ignore_ascii_case("false"))
        };
        if let Some(pem) = ca_pem {
            return Ok(PostgresTls::Ca(pem.to_owned()));
        }
        let wants_object = uri.option("ca").is_some() || uri.option("rejectUnauthorized").is_some();
        if wants_object && off("rejectUnauthorized") {
            return Ok(PostgresTls::Unverified);
        }
        if let Some(file) = uri.option("ca") {
            return std::fs::read_to_string(file)
                .map(PostgresTls::Ca)
                .map_err(|e| format!("ca file {}: {e}", crate::text::quote(file, 60)));
        }
        if on("ssl") || wants_object {
            return Ok(PostgresTls::PublicRoots);
        }
        Ok(PostgresTls::Off)
    }

    pub(super) fn client_config(&self) -> Result<Option<rustls::ClientConfig>, String> {
        let builder = rustls::ClientConfig::builder().with_safe_defaults();
        let roots = |certs: Vec<Vec<u8>>| -> Result<rustls::RootCertStore, String> {
            let mut store = rustls::RootCertStore::empty();
            let (added, _) = store.add_parsable_certificates(&certs);
            if added == 0 {
                return Err("the CA holds no usable certificate".into());
            }
            Ok(store)
        };
        Ok(Some(match self {
            PostgresTls::Off => return Ok(None),
            PostgresTls::Ca(pem) => {
                let certs = rustls_pemfile::certs(&mut pem.as_bytes())
                    .map_err(|e| format!("the CA is not PEM: {e}"))?;
                builder
                    .with_root_certificates(roots(certs)?)
                    .with_no_client_auth()
            }
            PostgresTls::PublicRoots => {
                let mut store = rustls::RootCertStore::empty();
                store.add_trust_anchors(webpki_roots::TLS_SERVER_ROOTS.iter().map(|ta| {
                    rustls::OwnedTrustAnchor::from_subject_spki_name_constraints(
                        ta.subject,
                        ta.spki,
                        ta.name_constraints,
                    )
                }));
                builder.with_root_certificates(store).with_no_client_auth()
            }
            PostgresTls::Unverified => builder
                .with_custom_certificate_verifier(Arc::new(AnyCertificate))
                .with_no_client_auth(),
        }))
    }
}

/// `rejectUnauthorized=false`: the operator's choice, mirrored so that the check connects
/// the way parse-server will.
struct AnyCertificate;

impl rustls::client::ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _: &rustls::Certificate,
        _: &[rustls::Certificate],
        _: &rustls::ServerName,
        _: &mut dyn Iterator<Item = &[u8]>,
        _: &[u8],
        _: std::time::SystemTime,
    ) -> Result<rustls::client::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::ServerCertVerified::assertion())
    }
}

/// The account parse-server's PostgreSQL client logs in as when the URI names none: the
/// service's own (`pg` falls back to the process's user).
const DEFAULT_POSTGRES_USER: &str = super::user::SERVICE_USER;

/// PostgreSQL: connect, authenticate and ask whether PostGIS is there, through the
/// `postgres` crate. Only the parts parse-server's own URI parser reads are taken: hosts,
/// port, user, password, database and its TLS options; the rest (pool sizes, timeouts) are
/// parse-server's business.
fn check_postgres(uri: &DbUri, ca_pem: Option<&str>, timeout: Duration) -> Result<DbInfo, DbError> {
    let mut config = postgres::Config::new();
    for h in &uri.hosts {
        config.host(&h.name);
        config.port(h.port.unwrap_or(DbKind::Postgres.default_port()));
    }
    config.user(uri.user.as_deref().unwrap_or(DEFAULT_POSTGRES_USER));
    if let Some(p) = &uri.password {
        config.password(p);
    }
    config.dbname(&uri.database);
    config.connect_timeout(timeout);
    config.application_name("parse-server-charm");
    let tls = PostgresTls::of(uri, ca_pem)
        .and_then(|t| t.client_config())
        .map_err(DbError::BadUri)?;
    let connected = match tls {
        None => config
            .ssl_mode(postgres::config::SslMode::Disable)
            .connect(postgres::NoTls),
        Some(tls) => config
            .ssl_mode(postgres::config::SslMode::Require)
            .connect(tokio_postgres_rustls::MakeRustlsConnect::new(tls)),
    };
    let mut client = connected.map_err(classify_postgres)?;
    // The simple query protocol: one round trip (a prepared statement costs three: parse,
    // execute, close).
    let answer = client
        .simple_query("SELECT extname FROM pg_extension WHERE extname = 'postgis'")
        .map_err(classify_postgres)?;
    let postgis = answer
        .iter()
        .any(|m| matches!(m, postgres::SimpleQueryMessage::Row(_)));
    Ok(DbInfo {
        postgis: Some(postgis),
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
            if is_tls_failure(&why) || why.contains("server does not support TLS") {
                DbError::Refused(why)
            } else {
                DbError::Unreachable(why)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch() -> std::path::PathBuf {
        std::env::temp_dir().join(format!("psc-dbcheck-{}", std::process::id()))
    }

    #[test]
    fn redacts_passwords() {
        let uri = DbUri::parse("postgres://parse:s3cr%21t@db/parse").unwrap();
        let r = redact(
            "auth failed for s3cr!t at postgres://parse:s3cr%21t@db/parse",
            &uri,
        );
        assert!(!r.contains("s3cr"), "{r}");
    }

    #[test]
    fn closed_port_is_reported_without_secrets() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        for scheme in ["postgres", "mongodb"] {
            let uri = DbUri::parse(&format!("{scheme}://u:topsecret@127.0.0.1:{port}/db")).unwrap();
            let err = check(&uri, None, &scratch(), Duration::from_millis(500)).unwrap_err();
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
        // Nothing listens on ::1 at this port: the driver tries, and says it is unreachable
        // (its URI parser alone would have refused the bracketed host).
        let port = std::net::TcpListener::bind("[::1]:0")
            .expect("an IPv6 loopback")
            .local_addr()
            .unwrap()
            .port();
        let uri = DbUri::parse(&format!("mongodb://[::1]:{port}/db")).unwrap();
        let err = check(&uri, None, &scratch(), Duration::from_millis(300)).unwrap_err();
        assert!(matches!(err, DbError::Unreachable(_)), "{err:?}");
    }

    #[test]
    fn parse_server_options_are_not_the_checks_business() {
        // parse-server's own pool and timeout options, and its TLS options, never make the
        // URI unusable for the check: it reaches the server (here: nothing listens).
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        for q in [
            "?max=20",
            "?ssl=true",
            "?poolSize=5&query_timeout=100&binary=true",
            "",
        ] {
            let uri = DbUri::parse(&format!("postgres://u:pw@127.0.0.1:{port}/parse{q}")).unwrap();
            let err = check(&uri, None, &scratch(), Duration::from_millis(300)).unwrap_err();
            assert!(matches!(err, DbError::Unreachable(_)), "{q}: {err:?}");
        }
    }

    /// A real CA certificate (self-signed test CA, no key kept), for drivers that parse it.
    const TEST_CA: &str = "-----BEGIN CERTIFICATE-----\nMIIBoTCCAUegAwIBAgIUH5gpq62wkpOoVvozajlN4078xGkwCgYIKoZIzj0EAwIw\nJTEjMCEGA1UEAwwacGFyc2Utc2VydmVyLWNoYXJtLXRlc3QtY2EwIBcNMjYxMjA1\nMDkxOTIxWhgPMjEyNjExMTEwOTE5MjFaMCUxIzAhBgNVBAMMGnBhcnNlLXNlcnZl\nci1jaGFybS10ZXN0LWNhMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEGoludMsl\n391cEC74knznXFe8/tdEnd32NTzoH3CxE35F7dcmiC88+62il2mihPmAFhMgi8aY\nv92cNQdJpeY98qNTMFEwHQYDVR0OBBYEFJZJwFWIgen3J8LHlX6wQqEYkVXrMB8G\nA1UdIwQYMBaAFJZJwFWIgen3J8LHlX6wQqEYkVXrMA8GA1UdEwEB/wQFMAMBAf8w\nCgYIKoZIzj0EAwIDSAAwRQIhAMqTLEzYN2oGTKam4C93++p+KPFg7pARb3DK/LLd\n9SaKAiBs1k7V8QGojiCBifcDnn5/P9IwTaINxt6m9M4/y53zeA==\n-----END CERTIFICATE-----\n";

    #[test]
    fn the_providers_ca_is_used_from_memory_before_any_file_exists() {
        // The CA travels with the URI: neither driver needs the file the charm writes for
        // parse-server (a check that did would never pass before that file exists). Nothing
        // listens here, so each gets as far as connecting.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let scratch = scratch();
        for scheme in ["mongodb", "postgresql"] {
            let uri = DbUri::parse(&format!("{scheme}://u:pw@127.0.0.1:{port}/parse")).unwrap();
            let err = check(&uri, Some(TEST_CA), &scratch, Duration::from_millis(300)).unwrap_err();
            assert!(matches!(err, DbError::Unreachable(_)), "{scheme}: {err:?}");
        }
        assert!(
            !scratch.join("database-ca.check.pem").exists(),
            "the staged copy lives only during the check"
        );
    }

    #[test]
    fn tls_as_parse_server_reads_it() {
        let u = |q: &str| DbUri::parse(&format!("postgresql://u@h/db{q}")).unwrap();
        assert_eq!(PostgresTls::of(&u(""), None), Ok(PostgresTls::Off));
        assert_eq!(
            PostgresTls::of(&u("?ssl=true"), None),
            Ok(PostgresTls::PublicRoots)
        );
        assert_eq!(
            PostgresTls::of(&u("?ssl=TRUE"), None),
            Ok(PostgresTls::PublicRoots)
        );
        assert_eq!(
            PostgresTls::of(&u("?ssl=true&rejectUnauthorized=false"), None),
            Ok(PostgresTls::Unverified)
        );
        assert_eq!(
            PostgresTls::of(&u(""), Some("PEM")),
            Ok(PostgresTls::Ca("PEM".into()))
        );
        assert!(PostgresTls::of(&u("?ca=/nonexistent/ca.pem"), None)
            .unwrap_err()
            .contains("/nonexistent/ca.pem"));
        // A CA that is not one is the URI's mistake, said before any connection.
        let uri = u("");
        let err = check(
            &uri,
            Some("garbage"),
            &scratch(),
            Duration::from_millis(100),
        )
        .unwrap_err();
        assert!(matches!(err, DbError::BadUri(_)), "{err:?}");
    }
}
