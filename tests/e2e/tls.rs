//! TLS on the model network, made by the test with the openssl CLI: a CA (`TestCa`; a second
//! one for a CA rotation), server certificates it issues for an address of the network, and
//! a TLS-terminating front (`TlsFront`: haproxy in `mode tcp`) for a server that speaks no
//! TLS itself, such as the SCRAM MongoDB server. PostgreSQL terminates TLS itself
//! (`Postgres::start_tls` in model.rs). Every key is a 0600 file.
#![allow(dead_code)]

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::model::{start_mongo_auth_server_at, HaproxyProcess, Model};
use jujusim::kit::{private_file, require, Network};

/// Runs openssl with `args`; fails the test with its stderr.
fn openssl(args: &[&str]) {
    require("openssl");
    let out = Command::new("openssl")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("running openssl");
    assert!(
        out.status.success(),
        "openssl {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A 0600 file for openssl to write a key into (it keeps the mode of an existing file).
fn key_file(path: &Path) -> PathBuf {
    drop(private_file(path));
    path.to_path_buf()
}

fn assert_private(path: &Path) {
    let mode = std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "{} has mode {mode:o}", path.display());
}

/// A certificate authority of the test: `<dir>/tls-<name>/ca.pem` and its key `ca.key`
/// (0600). Each CA has its own name in its subject (`parse-server e2e test CA <name>`), so
/// two of them (a rotation) are told apart by clients and by `openssl verify`.
pub struct TestCa {
    pub name: String,
    pub dir: PathBuf,
    /// The CA certificate (PEM): what a provider sends as `tls-ca`, what clients trust.
    pub cert: PathBuf,
    key: PathBuf,
}

/// A server certificate a `TestCa` issued, and its key (0600).
pub struct ServerCert {
    pub name: String,
    pub cert: PathBuf,
    pub key: PathBuf,
    /// The issuing CA's certificate.
    pub ca: PathBuf,
}

impl TestCa {
    /// A new CA (RSA 2048, SHA-256, valid 7 days) under `dir`; `name` is a short word
    /// (`ca1`, `ca2`), its directory's name and part of its subject.
    pub fn new(dir: &Path, name: &str) -> TestCa {
        assert!(
            !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'),
            "CA name {name:?}: letters, digits and '-'"
        );
        let dir = dir.join(format!("tls-{name}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        let cnf = dir.join("ca.cnf");
        std::fs::write(
            &cnf,
            format!(
                "[req]\nprompt = no\ndistinguished_name = dn\nx509_extensions = v3_ca\n\n\
                 [dn]\nCN = parse-server e2e test CA {name}\n\n\
                 [v3_ca]\nbasicConstraints = critical, CA:TRUE\n\
                 keyUsage = critical, keyCertSign, cRLSign\n\
                 subjectKeyIdentifier = hash\n"
            ),
        )
        .unwrap();
        let key = key_file(&dir.join("ca.key"));
        let cert = dir.join("ca.pem");
        openssl(&[
            "req",
            "-x509",
            "-config",
            cnf.to_str().unwrap(),
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-sha256",
            "-days",
            "7",
            "-keyout",
            key.to_str().unwrap(),
            "-out",
            cert.to_str().unwrap(),
        ]);
        assert_private(&key);
        TestCa {
            name: name.to_owned(),
            dir,
            cert,
            key,
        }
    }

    /// The CA certificate's PEM text.
    pub fn cert_pem(&self) -> String {
        std::fs::read_to_string(&self.cert).unwrap()
    }

    /// A server certificate for `ip` (subjectAltName `IP:<ip>, DNS:<name>`, serverAuth),
    /// signed by this CA: `<name>.pem` and `<name>.key` (0600) in the CA's directory.
    /// Issuing the same name again replaces them (a renewal).
    pub fn issue_server(&self, name: &str, ip: &str) -> ServerCert {
        assert!(
            !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'),
            "server name {name:?}: a DNS label (lowercase letters, digits, '-')"
        );
        ip.parse::<std::net::IpAddr>()
            .unwrap_or_else(|_| panic!("{ip:?} is not an IP address"));
        let cnf = self.dir.join(format!("{name}.cnf"));
        std::fs::write(
            &cnf,
            format!(
                "[req]\nprompt = no\ndistinguished_name = dn\n\n[dn]\nCN = {name}\n\n\
                 [server]\nbasicConstraints = critical, CA:FALSE\n\
                 keyUsage = critical, digitalSignature, keyEncipherment\n\
                 extendedKeyUsage = serverAuth\n\
                 subjectAltName = IP:{ip}, DNS:{name}\n\
                 subjectKeyIdentifier = hash\nauthorityKeyIdentifier = keyid\n"
            ),
        )
        .unwrap();
        let key = key_file(&self.dir.join(format!("{name}.key")));
        let csr = self.dir.join(format!("{name}.csr"));
        let cert = self.dir.join(format!("{name}.pem"));
        openssl(&[
            "req",
            "-new",
            "-config",
            cnf.to_str().unwrap(),
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            key.to_str().unwrap(),
            "-out",
            csr.to_str().unwrap(),
        ]);
        openssl(&[
            "x509",
            "-req",
            "-in",
            csr.to_str().unwrap(),
            "-CA",
            self.cert.to_str().unwrap(),
            "-CAkey",
            self.key.to_str().unwrap(),
            "-CAserial",
            self.dir.join("ca.srl").to_str().unwrap(),
            "-CAcreateserial",
            "-sha256",
            "-days",
            "7",
            "-extfile",
            cnf.to_str().unwrap(),
            "-extensions",
            "server",
            "-out",
            cert.to_str().unwrap(),
        ]);
        let _ = std::fs::remove_file(csr);
        assert_private(&key);
        ServerCert {
            name: name.to_owned(),
            cert,
            key,
            ca: self.cert.clone(),
        }
    }
}

impl ServerCert {
    /// The certificate followed by its key in one 0600 file (what haproxy's `crt` takes).
    pub fn bundle(&self, path: &Path) -> PathBuf {
        let mut f = private_file(path);
        f.write_all(&std::fs::read(&self.cert).unwrap()).unwrap();
        f.write_all(&std::fs::read(&self.key).unwrap()).unwrap();
        path.to_path_buf()
    }
}

/// A TLS front on the model network: haproxy in `mode tcp` (master-worker) listening on
/// `10.77.0.1:<port>` with a certificate issued for 10.77.0.1, forwarding the decrypted
/// stream to a plain server at `backend` (an address only the network's namespace reaches,
/// e.g. `127.0.0.1:<port>`).
pub struct TlsFront {
    pub port: u16,
    backend: String,
    pem: PathBuf,
    process: HaproxyProcess,
}

impl TlsFront {
    pub fn start(model: &mut Model, port: u16, backend: &str, cert: &ServerCert) -> TlsFront {
        let pem = model.dir.join(format!("tls-front-{port}.pem"));
        let mut front = TlsFront {
            port,
            backend: backend.to_owned(),
            process: HaproxyProcess::new(
                model.dir.join(format!("tls-front-{port}.cfg")),
                &format!("tls-front-{port}.log"),
            ),
            pem,
        };
        cert.bundle(&front.pem);
        let cfg = front.config();
        front
            .process
            .start(&mut model.net, &cfg, Network::GATEWAY, port);
        front
    }

    /// `hard-stop-after 5s`: after a certificate switch the old worker keeps the
    /// connections it has (TLS sessions with the old certificate) for at most 5 s, as a
    /// database server restarted for its new certificate would drop them.
    fn config(&self) -> String {
        format!(
            "global\n    maxconn 1024\n    hard-stop-after 5s\n\n\
             defaults\n    mode tcp\n    timeout connect 5s\n    timeout client 1h\n    timeout server 1h\n\n\
             frontend tls_front\n    bind {}:{} ssl crt {}\n    default_backend plain\n\n\
             backend plain\n    server plain {}\n",
            Network::GATEWAY,
            self.port,
            self.pem.display(),
            self.backend
        )
    }

    /// Serves `cert` from now on (e.g. one a second CA issued): new connections get it at
    /// once; the plain server behind is not touched.
    pub fn switch_cert(&mut self, model: &mut Model, cert: &ServerCert) {
        cert.bundle(&self.pem);
        let cfg = self.config();
        self.process.reload(&model.net, &cfg);
    }

    pub fn stop(&mut self, model: &mut Model) {
        self.process.stop(&mut model.net);
    }
}

/// The SCRAM MongoDB server (`start_mongo_auth_server`) behind TLS: the server itself on the
/// network namespace's loopback at `plain_port` (no unit reaches it), a `TlsFront` at
/// `10.77.0.1:<port>` with a certificate `ca` issues for 10.77.0.1. Clients connect with
/// `tls=true` and `ca`'s certificate; `TlsFront::switch_cert` rotates the certificate
/// without restarting the database.
pub fn start_mongo_auth_server_tls(
    model: &mut Model,
    port: u16,
    plain_port: u16,
    users: &[(&str, &str, &str, &str)],
    ca: &TestCa,
) -> TlsFront {
    start_mongo_auth_server_at(model, "127.0.0.1", plain_port, users);
    let cert = ca.issue_server("mongodb", Network::GATEWAY);
    TlsFront::start(model, port, &format!("127.0.0.1:{plain_port}"), &cert)
}
