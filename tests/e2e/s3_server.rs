//! A real S3 server for the end-to-end tests: SeaweedFS (`weed server`, built by
//! `scripts/prereqs.sh` into `.prereqs/seaweedfs/weed`) on the model network's gateway,
//! where units reach it at `10.77.0.1:<port>`, as the Redis test's server. Signatures are
//! enforced: its identities (access key, secret key; admin actions) are in a 0600 JSON file
//! given by `-s3.config`; `set_identities` rewrites that file and sends SIGHUP, on which
//! SeaweedFS reloads it (a reload hook its S3 gateway registers, `weed/s3api/s3api_server.go`,
//! calling `loadS3ApiConfigurationFromFile` in `weed/s3api/auth_credentials.go`): the file is
//! the whole set of its identities, so a key that left it is refused from then on.
//!
//! The test's own requests (`request`, `check`, `create_bucket`) go through the charm's S3
//! client (`parse_server_charm::workload::s3`) from a thread moved into the model network's
//! namespace.
//!
//! `weed server` puts its services' gRPC Unix sockets at
//! `/tmp/seaweedfs-<service>-grpc-<port>.sock` whatever its flags say
//! (`weed/command/server.go`), and each service dials its peers through them: two servers on
//! the same ports in two model networks would take over each other's sockets. So the server
//! runs in a mount namespace of its own whose `/tmp` is its directory's `tmp`.
//!
//! A fresh server answers S3 within seconds but holds its first object writes for several
//! more (`wait_writable`); started before the units are deployed, that is over by the time
//! they write.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::model::Model;
use jujusim::kit::{kill_group, private_file, random_alnum, record_figure, require, Network};
use parse_server_charm::workload::database::DbError;
use parse_server_charm::workload::s3::{self, Response, S3Store};

/// The S3 port tests use by default (SeaweedFS's own default).
pub const S3_PORT: u16 = 8333;
/// What one request of the test may take.
const TIMEOUT: Duration = Duration::from_secs(20);

/// Runs `f` on a thread of its own moved into the network namespace `ns` (the thread ends
/// with `f`, the test's other threads stay where they are). A panic in `f` goes on in the
/// caller.
pub fn in_netns<R: Send>(ns: &File, f: impl FnOnce() -> R + Send) -> R {
    std::thread::scope(|s| {
        s.spawn(|| {
            // SAFETY: setns(2) with a namespace fd this process holds open; it moves only the
            // calling thread, which ends when `f` returns.
            let rc = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
            assert_eq!(
                rc,
                0,
                "setns into the model network: {}",
                std::io::Error::last_os_error()
            );
            f()
        })
        .join()
        .unwrap_or_else(|p| std::panic::resume_unwind(p))
    })
}

/// The model network's namespace (that of the holder process `jujusim net-up` started).
fn network_ns(net: &Network) -> File {
    let info: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(net.dir.join("net.json")).unwrap()).unwrap();
    let pid = info["pid"].as_u64().expect("net.json pid");
    File::open(format!("/proc/{pid}/ns/net")).unwrap()
}

/// The `weed` binary scripts/prereqs.sh builds.
fn weed() -> PathBuf {
    let weed = Path::new(env!("CARGO_MANIFEST_DIR")).join(".prereqs/seaweedfs/weed");
    assert!(
        weed.exists(),
        "{} is missing: run `bash scripts/prereqs.sh`",
        weed.display()
    );
    weed
}

/// `weed server` (master, volume, filer, S3 gateway in one process) in the model network's
/// namespace at 10.77.0.1, its data, config and `/tmp` in its own directory of the model
/// dir, its output in `weed.log` there. Killed on drop; its directory stays.
pub struct S3Server {
    pub dir: PathBuf,
    pub port: u16,
    /// (access key, secret key) pairs the server accepts, in file order.
    identities: Vec<(String, String)>,
    netns: File,
    child: Option<Child>,
    /// With TLS: the server's certificate and key, and the CA's certificate (PEM).
    tls: Option<(PathBuf, PathBuf, String)>,
}

impl S3Server {
    /// Starts a server with one random identity on `port`; its other services on the next
    /// three ports (master, volume, filer) and their gRPC ports 10000 above. Waits until the
    /// S3 gateway accepts the identity (within 60 s).
    pub fn start(model: &Model, port: u16) -> S3Server {
        Self::start_with(model, port, None)
    }

    /// As `start`, S3 served over TLS with `cert` (its CA is what clients trust).
    pub fn start_tls(model: &Model, port: u16, cert: &crate::tls::ServerCert) -> S3Server {
        let ca = std::fs::read_to_string(&cert.ca).unwrap();
        Self::start_with(model, port, Some((cert.cert.clone(), cert.key.clone(), ca)))
    }

    fn start_with(model: &Model, port: u16, tls: Option<(PathBuf, PathBuf, String)>) -> S3Server {
        require("unshare");
        let dir = model.dir.join(format!("seaweedfs-{port}"));
        for sub in ["data", "config", "tmp"] {
            std::fs::create_dir_all(dir.join(sub)).unwrap();
        }
        // One volume per bucket (SeaweedFS grows 7 at once by default): small and quick.
        std::fs::write(
            dir.join("config/master.toml"),
            "[master.volume_growth]\ncopy_1 = 1\n",
        )
        .unwrap();
        let access = format!("AK{}", random_alnum(18).to_uppercase());
        let mut server = S3Server {
            dir,
            port,
            identities: vec![(access, random_alnum(40))],
            netns: network_ns(&model.net),
            child: None,
            tls,
        };
        server.write_identities();
        let started = Instant::now();
        server.run(model);
        let s = started.elapsed().as_secs_f64();
        eprintln!(
            "SeaweedFS on {}:{port} answered in {s:.2} s",
            Network::GATEWAY
        );
        record_figure("s3", "SeaweedFS start, until S3 answers", s, "s");
        server
    }

    fn config(&self) -> PathBuf {
        self.dir.join("config/identities.json")
    }

    pub fn log(&self) -> PathBuf {
        self.dir.join("weed.log")
    }

    /// The identities file (0600): every pair an admin.
    fn write_identities(&self) {
        let identities: Vec<_> = self
            .identities
            .iter()
            .enumerate()
            .map(|(i, (access, secret))| {
                json!({
                    "name": format!("test-{i}"),
                    "credentials": [{"accessKey": access, "secretKey": secret}],
                    "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                })
            })
            .collect();
        let text = json!({ "identities": identities }).to_string();
        let tmp = self.dir.join("config/identities.json.new");
        std::io::Write::write_all(&mut private_file(&tmp), text.as_bytes()).unwrap();
        std::fs::rename(&tmp, self.config()).unwrap();
    }

    /// Starts `weed server` and waits until S3 accepts the first identity.
    fn run(&mut self, model: &Model) {
        assert!(self.child.is_none(), "SeaweedFS is already running");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log())
            .unwrap();
        let (p, gw) = (self.port, Network::GATEWAY);
        let data = self.dir.join("data");
        let config = self.dir.join("config");
        let flags = [
            "-logtostderr".to_owned(),
            "-v=1".to_owned(),
            format!("-config_dir={}", config.display()),
            "server".to_owned(),
            format!("-dir={}", data.display()),
            format!("-ip={gw}"),
            format!("-ip.bind={gw}"),
            format!("-master.port={}", p + 1),
            format!("-master.port.grpc={}", p + 10001),
            "-master.volumeSizeLimitMB=64".to_owned(),
            "-master.telemetry=false".to_owned(),
            format!("-volume.port={}", p + 2),
            format!("-volume.port.grpc={}", p + 10002),
            "-volume.max=16".to_owned(),
            "-volume.preStopSeconds=0".to_owned(),
            "-filer".to_owned(),
            format!("-filer.port={}", p + 3),
            format!("-filer.port.grpc={}", p + 10003),
            "-s3".to_owned(),
            format!("-s3.port={p}"),
            format!("-s3.port.grpc={}", p + 10000),
            "-s3.port.iceberg=0".to_owned(),
            "-s3.port.lance=0".to_owned(),
            "-s3.iam=false".to_owned(),
            // As AWS: a PUT into a missing bucket does not create it.
            "-s3.autoCreateBucket=false".to_owned(),
            format!("-s3.config={}", self.config().display()),
        ];
        let mut flags = flags.to_vec();
        if let Some((cert, key, _)) = &self.tls {
            flags.push(format!("-s3.cert.file={}", cert.display()));
            flags.push(format!("-s3.key.file={}", key.display()));
        }
        let weed = weed();
        let tmp = self.dir.join("tmp");
        let mut argv = vec![
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "--",
            "sh",
            "-c",
            "mount --bind \"$0\" /tmp && exec \"$@\"",
            tmp.to_str().unwrap(),
            weed.to_str().unwrap(),
        ];
        argv.extend(flags.iter().map(String::as_str));
        let child = model
            .net
            .command(&argv)
            .current_dir(&config)
            .env("GOMEMLIMIT", "256MiB")
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .process_group(0)
            .spawn()
            .expect("starting weed server");
        self.child = Some(child);
        let (access, secret) = self.keys();
        let root = self.store("", access, secret);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let r = self.request(&root, "GET", "", b"");
            if matches!(r, Ok(Response { status: 200, .. })) {
                return;
            }
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!(
                    "weed server exited ({status}) before S3 answered: see {}",
                    self.log().display()
                );
            }
            assert!(
                Instant::now() < deadline,
                "SeaweedFS's S3 gateway does not accept its key within 60 s (last: {}): see {}",
                describe(&r),
                self.log().display()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The first identity: (access key, secret key).
    pub fn keys(&self) -> (&str, &str) {
        let (a, s) = &self.identities[0];
        (a, s)
    }

    /// `bucket` on this server as the charm addresses it, with these credentials.
    pub fn store(&self, bucket: &str, access: &str, secret: &str) -> S3Store {
        S3Store {
            tls: self.tls.is_some(),
            host: Network::GATEWAY.to_owned(),
            port: self.port,
            region: "us-east-1".to_owned(),
            bucket: bucket.to_owned(),
            prefix: String::new(),
            path_style: true,
            access_key: access.to_owned(),
            secret_key: secret.to_owned(),
            ca_pem: self.tls.as_ref().map(|(_, _, ca)| ca.clone()),
        }
    }

    /// One signed request from the model network (`s3::request`).
    pub fn request(
        &self,
        store: &S3Store,
        method: &str,
        key: &str,
        body: &[u8],
    ) -> Result<Response, DbError> {
        in_netns(&self.netns, || {
            s3::request(store, method, key, body, TIMEOUT)
        })
    }

    /// The charm's bucket check from the model network (`s3::check`).
    pub fn check(&self, store: &S3Store) -> Result<(), DbError> {
        in_netns(&self.netns, || s3::check(store, TIMEOUT))
    }

    /// One request with no signature at all from the model network: its HTTP status.
    pub fn unsigned(&self, method: &str, path: &str) -> u16 {
        use std::io::{Read, Write};
        let addr = format!("{}:{}", Network::GATEWAY, self.port);
        let raw = in_netns(&self.netns, || {
            let mut tcp = std::net::TcpStream::connect(&addr).unwrap();
            tcp.set_read_timeout(Some(TIMEOUT)).unwrap();
            write!(
                tcp,
                "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
            )
            .unwrap();
            let mut raw = Vec::new();
            let _ = tcp.read_to_end(&mut raw);
            raw
        });
        let head = String::from_utf8_lossy(&raw);
        head.split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("not an HTTP answer to {method} {path}: {head}"))
    }

    /// Creates `bucket` (a signed PUT with the first identity).
    pub fn create_bucket(&self, bucket: &str) {
        let (access, secret) = self.keys();
        let r = self.request(&self.store(bucket, access, secret), "PUT", "", b"");
        match r {
            Ok(Response { status: 200, .. }) => {}
            other => panic!(
                "creating bucket {bucket}: {}: see {}",
                describe(&other),
                self.log().display()
            ),
        }
    }

    /// Waits until the server stores objects without delay, and returns how long that took.
    /// A fresh SeaweedFS answers S3 at once but holds its first writes for several seconds:
    /// its master defers volume id allocation after minting a new topology id
    /// (`Topology::DeferAllocation`, `weed/topology/topology.go`) and the filer's lock ring
    /// forms (an object write takes a lock). A first write waits that out inside the server;
    /// this does it with a scratch object in a scratch bucket, then deletes both.
    pub fn wait_writable(&self) -> Duration {
        let started = Instant::now();
        let bucket = "s3server-warmup";
        self.create_bucket(bucket);
        let (access, secret) = self.keys();
        let scratch = self.store(bucket, access, secret);
        let deadline = started + Duration::from_secs(60);
        loop {
            let r = self.request(&scratch, "PUT", "probe", b"probe");
            if matches!(r, Ok(Response { status: 200, .. })) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "SeaweedFS stores no object within 60 s (last: {}): see {}",
                describe(&r),
                self.log().display()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        for key in ["probe", ""] {
            let r = self.request(&scratch, "DELETE", key, b"");
            assert!(
                matches!(r, Ok(Response { status: 204, .. })),
                "deleting the scratch {}: {}",
                if key.is_empty() { "bucket" } else { "object" },
                describe(&r)
            );
        }
        started.elapsed()
    }

    /// Makes the running server accept exactly `pairs` (access key, secret key), all admins:
    /// rewrites the identities file, sends SIGHUP, waits until every new key is accepted and
    /// every dropped one refused. Returns how long that took.
    pub fn set_identities(&mut self, pairs: &[(&str, &str)]) -> Duration {
        assert!(!pairs.is_empty(), "at least one identity");
        let dropped: Vec<(String, String)> = self
            .identities
            .iter()
            .filter(|(a, s)| !pairs.contains(&(a.as_str(), s.as_str())))
            .cloned()
            .collect();
        self.identities = pairs
            .iter()
            .map(|(a, s)| ((*a).to_owned(), (*s).to_owned()))
            .collect();
        self.write_identities();
        let started = Instant::now();
        self.signal("HUP");
        let deadline = started + Duration::from_secs(30);
        loop {
            let accepted = self.identities.iter().all(|(a, s)| {
                matches!(
                    self.request(&self.store("", a, s), "GET", "", b""),
                    Ok(Response { status: 200, .. })
                )
            });
            let refused = dropped.iter().all(|(a, s)| {
                matches!(
                    self.request(&self.store("", a, s), "GET", "", b""),
                    Ok(Response { status: 403, .. })
                )
            });
            if accepted && refused {
                return started.elapsed();
            }
            assert!(
                Instant::now() < deadline,
                "SeaweedFS did not take its new identities within 30 s of SIGHUP \
                 (new keys accepted: {accepted}, dropped keys refused: {refused}): see {}",
                self.log().display()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `kill -<sig>` to `weed` itself (its pid is the child's: net-exec, nsenter, unshare
    /// and sh each exec the next).
    fn signal(&self, sig: &str) {
        let pid = self.child.as_ref().expect("SeaweedFS is not running").id();
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        assert_eq!(comm.trim(), "weed", "pid {pid} is not weed");
        let ok = std::process::Command::new("kill")
            .args([&format!("-{sig}"), &pid.to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{sig} {pid}");
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            kill_group(&mut child);
        }
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A request's outcome for a message: the status (and the start of the body), or why it
/// failed. Never a key (the server's error bodies name the access key at most).
fn describe(r: &Result<Response, DbError>) -> String {
    match r {
        Ok(r) => format!(
            "HTTP {} {}",
            r.status,
            String::from_utf8_lossy(&r.body[..r.body.len().min(300)])
        ),
        Err(e) => format!("{e:?}"),
    }
}

#[test]
fn seaweedfs_enforces_signatures_and_reloads_its_keys() {
    let started = Instant::now();
    let model = Model::new("s3smoke");
    let mut s3 = S3Server::start(&model, S3_PORT);
    let start_s = started.elapsed().as_secs_f64();
    let (access, secret) = {
        let (a, s) = s3.keys();
        (a.to_owned(), s.to_owned())
    };
    let bucket = "parse-files";

    // No signature, or no keys: refused.
    assert_eq!(s3.unsigned("GET", "/"), 403, "an unsigned ListBuckets");
    assert_eq!(s3.unsigned("PUT", &format!("/{bucket}")), 403);
    let anonymous = s3.store(bucket, "", "");
    assert!(matches!(
        s3.request(&anonymous, "PUT", "", b""),
        Ok(Response { status: 403, .. })
    ));

    // The right key creates the bucket; a wrong secret is refused by name.
    s3.create_bucket(bucket);
    let wrong = s3.store(bucket, &access, "not-the-secret");
    match s3.check(&wrong) {
        Err(DbError::Refused(why)) => assert!(why.contains("refuses the credentials"), "{why}"),
        other => panic!("a wrong secret: {other:?}"),
    }
    let good = s3.store(bucket, &access, &secret);
    assert_eq!(s3.check(&good), Ok(()));

    let writable = s3.wait_writable();
    eprintln!(
        "SeaweedFS stores objects {:.2} s after it answered",
        writable.as_secs_f64()
    );
    record_figure(
        "s3",
        "SeaweedFS, from answering to storing objects",
        writable.as_secs_f64(),
        "s",
    );

    // A 1 MiB object round trip, byte for byte.
    let mut payload = vec![0u8; 1 << 20];
    std::io::Read::read_exact(&mut File::open("/dev/urandom").unwrap(), &mut payload[..]).unwrap();
    let put_started = Instant::now();
    let r = s3
        .request(&good, "PUT", "smoke/blob.bin", &payload)
        .unwrap();
    assert_eq!(r.status, 200, "PUT: {}", describe(&Ok(r.clone())));
    let put_s = put_started.elapsed().as_secs_f64();
    let r = s3.request(&good, "GET", "smoke/blob.bin", b"").unwrap();
    assert_eq!(r.status, 200);
    assert!(
        r.body == payload,
        "GET gave {} bytes, not the same",
        r.body.len()
    );
    eprintln!("1 MiB PUT in {put_s:.3} s");
    let r = s3.request(&good, "GET", "smoke/missing", b"").unwrap();
    assert_eq!(r.status, 404, "a missing key");
    match s3.check(&s3.store("no-such-bucket", &access, &secret)) {
        Err(DbError::Refused(why)) => assert!(why.contains("does not exist"), "{why}"),
        other => panic!("a missing bucket: {other:?}"),
    }
    // No bucket appears by a PUT into it (-s3.autoCreateBucket=false).
    let r = s3
        .request(
            &s3.store("no-such-bucket", &access, &secret),
            "PUT",
            "k",
            b"x",
        )
        .unwrap();
    assert_eq!(r.status, 404, "a PUT into a missing bucket");

    // New keys only, by SIGHUP: the old ones refused, the new ones work.
    let new_access = format!("AK{}", random_alnum(18).to_uppercase());
    let new_secret = random_alnum(40);
    let pid_before = s3.child.as_ref().unwrap().id();
    let reload = s3.set_identities(&[(&new_access, &new_secret)]);
    assert_eq!(
        s3.child.as_ref().unwrap().id(),
        pid_before,
        "the same process"
    );
    match s3.check(&good) {
        Err(DbError::Refused(why)) => assert!(why.contains("refuses the credentials"), "{why}"),
        other => panic!("the old key after the reload: {other:?}"),
    }
    let new = s3.store(bucket, &new_access, &new_secret);
    assert_eq!(s3.check(&new), Ok(()));
    let r = s3.request(&new, "GET", "smoke/blob.bin", b"").unwrap();
    assert!(
        r.status == 200 && r.body == payload,
        "the object with the new key"
    );
    // Rotating the secret of the same identity (same file position and name) works too.
    let rotated = random_alnum(40);
    let rotate = s3.set_identities(&[(&new_access, &rotated)]);
    assert!(matches!(
        s3.check(&new),
        Err(DbError::Refused(why)) if why.contains("refuses the credentials")
    ));
    assert_eq!(s3.check(&s3.store(bucket, &new_access, &rotated)), Ok(()));
    let log = std::fs::read_to_string(s3.log()).unwrap();
    assert!(
        log.contains("Loaded 1 identities from config file"),
        "no reload in {}",
        s3.log().display()
    );
    for key in [&secret, &new_secret, &rotated] {
        assert!(!log.contains(key.as_str()), "a secret key in weed.log");
    }
    eprintln!(
        "SeaweedFS: started (with the model) in {start_s:.2} s; new keys taken in {:.3} s, \
         a rotated secret in {:.3} s",
        reload.as_secs_f64(),
        rotate.as_secs_f64()
    );
    record_figure(
        "s3",
        "SeaweedFS reload of its keys (SIGHUP)",
        reload.as_secs_f64(),
        "s",
    );
    record_figure("s3", "SeaweedFS 1 MiB PUT", put_s, "s");
    drop(s3);
    model.teardown();
}
