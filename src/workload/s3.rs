//! A bucket on an S3-compatible object store, as parse-server's files adapter will use it:
//! requests signed with AWS Signature Version 4 (header form, the payload's SHA-256 signed
//! too), over HTTP/1.1, in clear text or over TLS verified with the provider's CA (else the
//! public CAs Node trusts). The charm asks one question before files go there: does
//! `HEAD /<bucket>` succeed with these credentials (a `404` names a bucket that does not
//! exist, a `403` credentials the server refuses, a `301` a bucket in another region).
//! What the server says beyond its status code never reaches a status.
//!
//! Signature Version 4 as AWS documents it ("Create a signed AWS API request",
//! docs.aws.amazon.com/IAM/latest/UserGuide/create-signed-request.html, and "Authenticating
//! Requests: Using the Authorization Header", docs.aws.amazon.com/AmazonS3/latest/API/
//! sig-v4-header-based-auth.html): canonical request, string to sign, a signing key derived
//! from the secret by HMAC-SHA256 over date, region, service and `aws4_request`.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::database::{DbError, PostgresTls};
use super::redis::io_reason;

/// Where the store is and how the bucket is addressed.
#[derive(Clone, PartialEq, Eq)]
pub struct S3Store {
    /// `https` (else `http`).
    pub tls: bool,
    pub host: String,
    pub port: u16,
    pub region: String,
    pub bucket: String,
    /// Objects' key prefix (empty, or ending in `/`).
    pub prefix: String,
    /// `https://host/bucket/key` (else `https://bucket.host/key`).
    pub path_style: bool,
    pub access_key: String,
    pub secret_key: String,
    /// The CA the server's certificate is verified with (PEM), else the public CAs.
    pub ca_pem: Option<String>,
}

impl std::fmt::Debug for S3Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secret key, not even in a panic message.
        f.debug_struct("S3Store")
            .field("endpoint", &self.endpoint())
            .field("region", &self.region)
            .field("bucket", &self.bucket)
            .field("prefix", &self.prefix)
            .field("path_style", &self.path_style)
            .field("access_key", &self.access_key)
            .field("ca", &self.ca_pem.is_some())
            .finish()
    }
}

impl S3Store {
    /// The endpoint URL (no credentials in it): what a status may name.
    pub fn endpoint(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        let default = if self.tls { 443 } else { 80 };
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        if self.port == default {
            format!("{scheme}://{host}")
        } else {
            format!("{scheme}://{host}:{}", self.port)
        }
    }

    /// The host the request goes to (with the bucket in virtual-host style).
    fn request_host(&self) -> String {
        if self.path_style {
            self.host.clone()
        } else {
            format!("{}.{}", self.bucket, self.host)
        }
    }

    /// The `Host` header: the port only when it is not the scheme's.
    fn host_header(&self) -> String {
        let host = self.request_host();
        let host = if host.contains(':') {
            format!("[{host}]")
        } else {
            host
        };
        if self.port == if self.tls { 443 } else { 80 } {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }

    /// The request's path for `key` in the bucket (`""`: the bucket itself), URI-encoded
    /// as Signature Version 4 wants it (every byte but unreserved ones and `/`).
    fn path(&self, key: &str) -> String {
        let mut raw = String::from("/");
        if self.path_style {
            raw.push_str(&self.bucket);
            if !key.is_empty() {
                raw.push('/');
            }
        }
        raw.push_str(key);
        let mut out = String::with_capacity(raw.len());
        for b in raw.bytes() {
            if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
                out.push(b as char);
            } else {
                out.push_str(&format!("%{b:02X}"));
            }
        }
        out
    }
}

/// HMAC-SHA256 (RFC 2104): SHA-256's block is 64 bytes.
fn hmac(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut block = [0u8; 64];
    if key.len() > 64 {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let pad = |x: u8| block.iter().map(|b| b ^ x).collect::<Vec<u8>>();
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(message)
        .finalize();
    Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .into()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `YYYYMMDD` and `YYYYMMDDTHHMMSSZ` of a Unix time (UTC; days to civil date as in
/// Howard Hinnant's `civil_from_days`).
fn amz_dates(unix: u64) -> (String, String) {
    let days = (unix / 86_400) as i64;
    let secs = unix % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let date = format!("{year:04}{month:02}{day:02}");
    let time = format!(
        "{date}T{:02}{:02}{:02}Z",
        secs / 3_600,
        secs / 60 % 60,
        secs % 60
    );
    (date, time)
}

/// The request's head, signed: `Authorization`, `x-amz-date`, `x-amz-content-sha256`.
fn signed_head(store: &S3Store, method: &str, key: &str, body: &[u8], unix: u64) -> String {
    let (date, time) = amz_dates(unix);
    let payload = hex(&Sha256::digest(body));
    let host = store.host_header();
    let path = store.path(key);
    let canonical = format!(
        "{method}\n{path}\n\nhost:{host}\nx-amz-content-sha256:{payload}\nx-amz-date:{time}\n\n\
         host;x-amz-content-sha256;x-amz-date\n{payload}"
    );
    let scope = format!("{date}/{}/s3/aws4_request", store.region);
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n{time}\n{scope}\n{}",
        hex(&Sha256::digest(canonical.as_bytes()))
    );
    let mut k = hmac(
        format!("AWS4{}", store.secret_key).as_bytes(),
        date.as_bytes(),
    );
    for part in [store.region.as_str(), "s3", "aws4_request"] {
        k = hmac(&k, part.as_bytes());
    }
    let signature = hex(&hmac(&k, to_sign.as_bytes()));
    format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nx-amz-date: {time}\r\n\
         x-amz-content-sha256: {payload}\r\nAuthorization: AWS4-HMAC-SHA256 \
         Credential={}/{scope}, SignedHeaders=host;x-amz-content-sha256;x-amz-date, \
         Signature={signature}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        store.access_key,
        body.len()
    )
}

/// The server's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub body: Vec<u8>,
}

/// Reads a whole `Connection: close` response (a chunked body decoded).
fn read_response(mut stream: impl Read, head_only: bool) -> Result<Response, DbError> {
    let mut raw = Vec::new();
    if let Err(e) = stream.read_to_end(&mut raw) {
        // A TLS peer that closes without close_notify still sent everything.
        if raw.is_empty() || e.kind() != std::io::ErrorKind::UnexpectedEof {
            return Err(DbError::Unreachable(io_reason(&e)));
        }
    }
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| DbError::Unreachable("the server's answer is not HTTP".into()))?;
    let head = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
    let status = head
        .lines()
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| DbError::Unreachable("the server's answer is not HTTP".into()))?;
    let mut body = raw[split + 4..].to_vec();
    if !head_only && head.contains("\ntransfer-encoding: chunked") {
        body = dechunk(&body)
            .ok_or_else(|| DbError::Unreachable("a chunked body is cut short".into()))?;
    }
    Ok(Response { status, body })
}

fn dechunk(mut data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let eol = data.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&data[..eol]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        data = &data[eol + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(data.get(..size)?);
        data = data.get(size + 2..)?;
    }
}

/// One signed request for `key` in the bucket (`""`: the bucket itself).
pub fn request(
    store: &S3Store,
    method: &str,
    key: &str,
    body: &[u8],
    timeout: Duration,
) -> Result<Response, DbError> {
    let unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let head = signed_head(store, method, key, body, unix);
    let host = store.request_host();
    let addrs: Vec<_> = (host.as_str(), store.port)
        .to_socket_addrs()
        .map_err(|_| DbError::Unreachable(format!("cannot resolve {host}")))?
        .collect();
    let mut last = DbError::Unreachable(format!("cannot resolve {host}"));
    for addr in addrs {
        let mut tcp = match TcpStream::connect_timeout(&addr, timeout) {
            Ok(s) => s,
            Err(e) => {
                last = DbError::Unreachable(io_reason(&e));
                continue;
            }
        };
        tcp.set_read_timeout(Some(timeout))
            .and_then(|()| tcp.set_write_timeout(Some(timeout)))
            .map_err(|e| DbError::Unreachable(io_reason(&e)))?;
        let head_only = method == "HEAD";
        if !store.tls {
            tcp.write_all(head.as_bytes())
                .and_then(|()| tcp.write_all(body))
                .map_err(|e| DbError::Unreachable(io_reason(&e)))?;
            return read_response(tcp, head_only);
        }
        let tls = match &store.ca_pem {
            Some(pem) => PostgresTls::Ca(pem.clone()),
            None => PostgresTls::PublicRoots,
        };
        let config = tls
            .client_config()
            .map_err(DbError::Refused)?
            .ok_or_else(|| DbError::Refused("no TLS settings".into()))?;
        let name = rustls::ServerName::try_from(host.as_str())
            .map_err(|_| DbError::Refused("the host is not a TLS server name".into()))?;
        let conn = rustls::ClientConnection::new(Arc::new(config), name)
            .map_err(|e| DbError::Refused(format!("TLS: {e}")))?;
        let mut stream = rustls::StreamOwned::new(conn, tcp);
        let sent = stream
            .write_all(head.as_bytes())
            .and_then(|()| stream.write_all(body))
            .and_then(|()| stream.flush());
        return match sent.map_err(|e| DbError::Unreachable(io_reason(&e))) {
            Ok(()) => read_response(stream, head_only),
            Err(e) => Err(e),
        }
        .map_err(|e| match e {
            DbError::Unreachable(why) if why.contains("certificate") || why.contains("TLS") => {
                DbError::Refused(format!("TLS: {why}"))
            }
            other => other,
        });
    }
    Err(last)
}

/// Whether the bucket exists and the server accepts the credentials for it.
pub fn check(store: &S3Store, timeout: Duration) -> Result<(), DbError> {
    let r = request(store, "HEAD", "", b"", timeout)?;
    match r.status {
        200..=299 => Ok(()),
        404 => Err(DbError::Refused("it does not exist".into())),
        401 | 403 => Err(DbError::Refused(
            "the store refuses the credentials (HTTP 403)".into(),
        )),
        301 | 307 | 400 => Err(DbError::Refused(format!(
            "it is not in region {} (HTTP {})",
            crate::text::quote(&store.region, 30),
            r.status
        ))),
        500..=599 => Err(DbError::Unreachable(format!(
            "the store answers HTTP {}",
            r.status
        ))),
        s => Err(DbError::Refused(format!("the store answers HTTP {s}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    fn store(port: u16) -> S3Store {
        S3Store {
            tls: false,
            host: "127.0.0.1".into(),
            port,
            region: "us-east-1".into(),
            bucket: "examplebucket".into(),
            prefix: String::new(),
            path_style: true,
            access_key: "AKIAIOSFODNN7EXAMPLE".into(),
            secret_key: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".into(),
            ca_pem: None,
        }
    }

    #[test]
    fn hmac_matches_rfc_4231_case_2() {
        assert_eq!(
            hex(&hmac(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // A key longer than the block is hashed first (RFC 4231 case 6).
        assert_eq!(
            hex(&hmac(
                &[0xaa; 131],
                b"Test Using Larger Than Block-Size Key - Hash Key First"
            )),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    #[test]
    fn dates_in_utc() {
        assert_eq!(
            amz_dates(1_369_353_600),
            ("20130524".into(), "20130524T000000Z".into())
        );
        assert_eq!(
            amz_dates(951_782_399).1,
            "20000228T235959Z",
            "the day before a leap day"
        );
        assert_eq!(amz_dates(951_782_400).0, "20000229");
    }

    /// AWS's worked example "GET Object" (sig-v4-header-based-auth.html), whose request
    /// signs one more header (`range`) than the charm's: the signing key and the string to
    /// sign are checked with its published values instead.
    #[test]
    fn signing_key_and_signature_of_aws_example() {
        let s = store(443);
        let mut k = hmac(
            format!("AWS4{}", s.secret_key).as_bytes(),
            "20130524".as_bytes(),
        );
        for part in ["us-east-1", "s3", "aws4_request"] {
            k = hmac(&k, part.as_bytes());
        }
        let to_sign = "AWS4-HMAC-SHA256\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n\
                       7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972";
        assert_eq!(
            hex(&hmac(&k, to_sign.as_bytes())),
            "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
        );
    }

    #[test]
    fn paths_and_hosts_in_both_styles() {
        let mut s = store(8333);
        assert_eq!(s.path(""), "/examplebucket");
        assert_eq!(s.path("a b/c+d.txt"), "/examplebucket/a%20b/c%2Bd.txt");
        assert_eq!(s.host_header(), "127.0.0.1:8333");
        s.path_style = false;
        s.host = "s3.example.com".into();
        s.port = 443;
        s.tls = true;
        assert_eq!(s.path(""), "/");
        assert_eq!(s.path("k"), "/k");
        assert_eq!(s.host_header(), "examplebucket.s3.example.com");
        assert_eq!(s.endpoint(), "https://s3.example.com");
        assert!(!format!("{s:?}").contains("EXAMPLEKEY"));
    }

    /// A server that answers one request with `status` and returns what it received.
    fn server(status: &'static str) -> (u16, std::thread::JoinHandle<String>) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let h = std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            let mut buf = [0u8; 4096];
            let n = s.read(&mut buf).unwrap();
            write!(s, "HTTP/1.1 {status}\r\nContent-Length: 0\r\n\r\n").unwrap();
            String::from_utf8_lossy(&buf[..n]).into_owned()
        });
        (port, h)
    }

    #[test]
    fn the_check_names_each_refusal() {
        let (port, h) = server("200 OK");
        assert_eq!(check(&store(port), Duration::from_secs(5)), Ok(()));
        let sent = h.join().unwrap();
        assert!(
            sent.starts_with("HEAD /examplebucket HTTP/1.1\r\n"),
            "{sent}"
        );
        assert!(sent.contains("Credential=AKIAIOSFODNN7EXAMPLE/"), "{sent}");
        assert!(!sent.contains("EXAMPLEKEY"), "the secret is never sent");
        for (answer, reason) in [
            ("404 Not Found", "it does not exist"),
            ("403 Forbidden", "refuses the credentials"),
            ("301 Moved Permanently", "not in region"),
        ] {
            let (port, h) = server(answer);
            match check(&store(port), Duration::from_secs(5)) {
                Err(DbError::Refused(why)) => assert!(why.contains(reason), "{why}"),
                other => panic!("{answer}: {other:?}"),
            }
            h.join().unwrap();
        }
        let (port, h) = server("503 Slow Down");
        assert!(matches!(
            check(&store(port), Duration::from_secs(5)),
            Err(DbError::Unreachable(_))
        ));
        h.join().unwrap();
    }

    #[test]
    fn nothing_listening_is_unreachable() {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        assert_eq!(
            check(&store(port), Duration::from_secs(2)),
            Err(DbError::Unreachable("connection refused".into()))
        );
    }

    #[test]
    fn chunked_bodies() {
        assert_eq!(
            dechunk(b"3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n").unwrap(),
            b"abcde"
        );
        assert_eq!(dechunk(b"5\r\nab"), None);
    }
}
