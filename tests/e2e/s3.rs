//! Files on S3 end to end: three units behind haproxy and a real S3 server (SeaweedFS, see
//! `s3_server.rs`, signatures enforced), related as the two s3 integrators relate.
//!
//! On PostgreSQL (s3-integrator track 2: the credentials in a Juju secret): files stored in
//! the charm's table before the relation; an answer without a bucket, a bucket that does not
//! exist and a secret key the store refuses each leave every unit `waiting` with the reason
//! and the service as it was; then the real bucket: a file uploaded through haproxy is in
//! the bucket (read back through the S3 API with the same credentials) and downloads byte for
//! byte through every unit, the older file too (and a byte range of it); 10 MiB up and down
//! through haproxy against the table (figures); a new revision of the credentials under load
//! (no failed request, one unit at a time, then the old key revoked and every unit still
//! serving); the relation removed (older files still download, new ones go to the table).
//!
//! On MongoDB (track 1: plain fields; the store over TLS, its CA as `tls-ca-chain`): files in
//! GridFS before, in the bucket after, GridFS files (and a byte range) still served through
//! every unit, during and after the relation.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::model::{secret_leaks, LoadRun, Model, Postgres, APP};
use crate::redis::{main_pids, option_files};
use crate::s3_server::{S3Server, S3_PORT};
use crate::scale_out::{
    assert_one_at_a_time, behind_haproxy, now_unix, relate_postgresql, relate_scram_mongodb,
    restarts_since, three_units, wait_serving,
};
use crate::tls::TestCa;
use jujusim::kit::{random_alnum, record_figure, Network};

const APP_ID: &str = "shop";
const BUCKET: &str = "parse-files";
const PREFIX: &str = "shop-app";
const THROUGH_HAPROXY: &str = "http://10.77.0.1:8080/parse";

fn unit_api(unit: &str) -> String {
    let n: usize = unit.rsplit('/').next().unwrap().parse().unwrap();
    format!("http://10.77.0.{}:1337/parse", 11 + n)
}

fn endpoint() -> String {
    format!("http://{}:{S3_PORT}", Network::GATEWAY)
}

/// curl in the model network: `(HTTP status, seconds)`, the answer's body in `out`.
fn curl(model: &Model, args: &[&str], out: &Path) -> (u16, f64) {
    let header = format!("X-Parse-Application-Id: {APP_ID}");
    let out_s = out.to_str().unwrap();
    let mut argv = vec![
        "curl",
        "-sS",
        "--max-time",
        "120",
        "-H",
        &header,
        "-o",
        out_s,
        "-w",
        "%{http_code} %{time_total}",
    ];
    argv.extend_from_slice(args);
    let o = model.net.exec(&argv);
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    let mut it = text.split_whitespace();
    let code = it.next().and_then(|c| c.parse().ok()).unwrap_or(0);
    let secs = it.next().and_then(|c| c.parse().ok()).unwrap_or(0.0);
    (code, secs)
}

/// A user's session (parse-server 9 refuses uploads without one: `fileUpload`), made once
/// per model and kept in its directory.
fn session(model: &Model) -> String {
    let keep = model.dir.join("session-token");
    if let Ok(t) = std::fs::read_to_string(&keep) {
        return t;
    }
    let out = model.dir.join("signup.json");
    let body = format!(
        r#"{{"username":"uploader","password":"{}"}}"#,
        random_alnum(20)
    );
    let (code, _) = curl(
        model,
        &[
            "-X",
            "POST",
            "-H",
            "Content-Type: application/json",
            "--data-binary",
            &body,
            &format!("{THROUGH_HAPROXY}/users"),
        ],
        &out,
    );
    let answer = std::fs::read_to_string(&out).unwrap_or_default();
    assert_eq!(code, 201, "sign-up: {answer}");
    let v: Value = serde_json::from_str(&answer).unwrap();
    let token = v["sessionToken"].as_str().unwrap().to_owned();
    std::fs::write(&keep, &token).unwrap();
    token
}

/// Uploads the file at `src` as `name` through `base` with a user's session: the stored
/// name and the seconds.
fn upload(model: &Model, base: &str, name: &str, src: &Path, content_type: &str) -> (String, f64) {
    let out = model.dir.join("upload-answer.json");
    let ctype = format!("Content-Type: {content_type}");
    let token = format!("X-Parse-Session-Token: {}", session(model));
    let data = format!("@{}", src.display());
    let url = format!("{base}/files/{name}");
    let (code, secs) = curl(
        model,
        &[
            "-X",
            "POST",
            "-H",
            &ctype,
            "-H",
            &token,
            "--data-binary",
            &data,
            &url,
        ],
        &out,
    );
    let answer = std::fs::read_to_string(&out).unwrap_or_default();
    assert_eq!(code, 201, "upload of {name} through {base}: {answer}");
    let v: Value = serde_json::from_str(&answer).unwrap();
    (v["name"].as_str().unwrap().to_owned(), secs)
}

/// Downloads a stored file through `base`: `(status, bytes, seconds)`.
fn download(model: &Model, base: &str, name: &str, range: Option<&str>) -> (u16, Vec<u8>, f64) {
    let out = model.dir.join("download.bin");
    let _ = std::fs::remove_file(&out);
    let url = format!("{base}/files/{APP_ID}/{name}");
    let range_header = range.map(|r| format!("Range: bytes={r}"));
    let mut args: Vec<&str> = Vec::new();
    if let Some(h) = &range_header {
        args.extend(["-H", h.as_str()]);
    }
    args.push(&url);
    let (code, secs) = curl(model, &args, &out);
    (code, std::fs::read(&out).unwrap_or_default(), secs)
}

fn sha(b: &[u8]) -> String {
    Sha256::digest(b)
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}

/// Every unit serves `name` with exactly `content`.
fn every_unit_serves(model: &Model, units: &[String], name: &str, content: &[u8]) {
    for u in units {
        let (code, body, _) = download(model, &unit_api(u), name, None);
        assert_eq!(code, 200, "{name} through {u}");
        assert!(body == content, "{name} through {u}: other bytes");
    }
}

/// The highest resident memory (VmHWM, MiB) of the units' parse-server processes.
fn peak_rss_mib(model: &Model) -> f64 {
    model
        .units
        .iter()
        .map(|(_, u)| {
            let pid = u.main_pid("parse-server");
            let status = u.exec_ok(&["cat", &format!("/proc/{pid}/status")]);
            status
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
                .map_or(0.0, |kib| kib / 1024.0)
        })
        .fold(0.0, f64::max)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

/// Three uploads and downloads of `src` through haproxy: median MiB/s up and down.
fn throughput(model: &Model, src: &Path, tag: &str) -> (f64, f64) {
    let mib = std::fs::metadata(src).unwrap().len() as f64 / (1024.0 * 1024.0);
    let expected = sha(&std::fs::read(src).unwrap());
    let (mut up, mut down) = (Vec::new(), Vec::new());
    for i in 0..3 {
        let (name, secs) = upload(
            model,
            THROUGH_HAPROXY,
            &format!("{tag}-{i}.bin"),
            src,
            "application/octet-stream",
        );
        up.push(mib / secs);
        let (code, body, secs) = download(model, THROUGH_HAPROXY, &name, None);
        assert_eq!(code, 200, "{name}");
        assert_eq!(sha(&body), expected, "{name} came back changed");
        down.push(mib / secs);
    }
    (median(up), median(down))
}

/// Every unit waits with `part` in its message; nothing serving moved; the API answers.
fn waits_and_serves_on(model: &Model, part: &str, pids: &[u32], files: &[(String, String)]) {
    model.assert_all("waiting", part);
    println!("s3 bad input: {}", model.workloads()[0].2);
    assert_eq!(main_pids(model), pids, "a unit restarted");
    assert_eq!(option_files(model), files, "a unit rendered it");
    let out = model.dir.join("probe.json");
    let (code, _) = curl(
        model,
        &[&format!("{THROUGH_HAPROXY}/classes/Item?limit=1")],
        &out,
    );
    assert_eq!(code, 200, "still serving through haproxy");
}

fn random_file(model: &Model, name: &str, mib: usize) -> std::path::PathBuf {
    let path = model.dir.join(name);
    let mut data = Vec::with_capacity(mib << 20);
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15 ^ now_unix() as u64;
    while data.len() < mib << 20 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        data.extend_from_slice(&x.to_le_bytes());
    }
    std::fs::write(&path, &data).unwrap();
    path
}

/// The serving units behind haproxy, and `BUCKET` made on the store: its first key pair.
fn behind_haproxy_with_a_bucket(model: &mut Model, s3: &S3Server) -> (String, String) {
    model.assert_all("active", "serving");
    behind_haproxy(model);
    wait_serving(model, &format!("{THROUGH_HAPROXY}/health"));
    s3.create_bucket(BUCKET);
    let (a, s) = s3.keys();
    (a.to_owned(), s.to_owned())
}

#[test]
fn files_on_s3_across_three_units_on_postgresql_behind_haproxy() {
    let started = Instant::now();
    let mut model = Model::new("s3-pg");
    // First: a fresh SeaweedFS holds object writes for about 9 s (s3_server.rs).
    let mut s3 = S3Server::start(&model, S3_PORT);
    let pg = Postgres::start(&mut model, 5432);
    let units = three_units(&mut model);
    model.settle();
    relate_postgresql(&mut model, &pg);
    let (key_a, secret_a) = behind_haproxy_with_a_bucket(&mut model, &s3);

    // Before the relation: files in the charm's table.
    let old_src = model.dir.join("old.txt");
    std::fs::write(&old_src, b"stored in the table before the relation").unwrap();
    let (old, _) = upload(&model, THROUGH_HAPROXY, "old.txt", &old_src, "text/plain");
    let in_table = pg
        .psql(&format!(
            "\\c parse\nSELECT count(*) FROM \"_CharmFiles\" WHERE name = '{old}'"
        ))
        .unwrap();
    assert_eq!(in_table.trim(), "1", "the file is in the table");
    let big = random_file(&model, "big.bin", 10);
    let (pg_up, pg_down) = throughput(&model, &big, "table");
    let pg_peak = peak_rss_mib(&model);

    // The integrator joins and answers in steps; each wrong step waits and touches nothing.
    let pids = main_pids(&model);
    let files = option_files(&model);
    let rel = model.relate("s3", "s3-integrator");
    model.remote_set(&rel, "s3-integrator/0", &[], Some(Network::GATEWAY));
    model.settle();
    assert_eq!(
        model.app_bag(&rel)["bucket"],
        APP,
        "the leader asks for a bucket"
    );
    let secret = model.remote_secret_add(
        &rel,
        "s3-integrator",
        &[
            ("access-key", key_a.as_str()),
            ("secret-key", secret_a.as_str()),
        ],
    );
    let endpoint = endpoint();
    model.remote_app_set(
        &rel,
        &[
            ("endpoint", endpoint.as_str()),
            ("secret-extra", secret.as_str()),
            ("path", PREFIX),
        ],
    );
    model.settle();
    waits_and_serves_on(
        &model,
        "s3 relation: waiting for the provider to share bucket",
        &pids,
        &files,
    );
    model.remote_app_set(&rel, &[("bucket", "no-such-bucket")]);
    model.settle();
    waits_and_serves_on(
        &model,
        &format!("s3 relation: bucket no-such-bucket at {endpoint}: it does not exist"),
        &pids,
        &files,
    );
    let wrong = random_alnum(40);
    model.remote_secret_set(
        &secret,
        &[
            ("access-key", key_a.as_str()),
            ("secret-key", wrong.as_str()),
        ],
    );
    model.remote_app_set(&rel, &[("bucket", BUCKET)]);
    model.settle();
    waits_and_serves_on(
        &model,
        "the store refuses the credentials (HTTP 403)",
        &pids,
        &files,
    );
    let fixed = Instant::now();
    model.remote_secret_set(
        &secret,
        &[
            ("access-key", key_a.as_str()),
            ("secret-key", secret_a.as_str()),
        ],
    );
    model.settle();
    model.assert_all("active", "serving");
    record_figure(
        "s3",
        "right credentials to 3 units serving with the bucket",
        fixed.elapsed().as_secs_f64(),
        "s",
    );

    // A file uploaded through haproxy is in the bucket, and every unit serves it; the older
    // file is still served by every unit, whole and by range.
    let new_src = model.dir.join("new.txt");
    std::fs::write(&new_src, b"stored in the bucket").unwrap();
    let (new, _) = upload(&model, THROUGH_HAPROXY, "new.txt", &new_src, "text/plain");
    let store = s3.store(BUCKET, &key_a, &secret_a);
    let object = s3
        .request(&store, "GET", &format!("{PREFIX}/{new}"), b"")
        .unwrap();
    assert_eq!(
        object.status, 200,
        "the file is in the bucket under the prefix"
    );
    assert_eq!(object.body, b"stored in the bucket");
    every_unit_serves(&model, &units, &new, b"stored in the bucket");
    every_unit_serves(
        &model,
        &units,
        &old,
        b"stored in the table before the relation",
    );
    let (code, part, _) = download(&model, &unit_api(&units[1]), &old, Some("7-12"));
    assert_eq!((code, part.as_slice()), (206, b"in the".as_slice()));
    let (code, part, _) = download(&model, &unit_api(&units[2]), &new, Some("0-5"));
    assert_eq!((code, part.as_slice()), (206, b"stored".as_slice()));
    let (code, _, _) = download(&model, &unit_api(&units[0]), "nothing-here.txt", None);
    assert_eq!(code, 404, "a file in neither store");

    // 10 MiB through haproxy: the bucket against the table, in the same run.
    let (s3_up, s3_down) = throughput(&model, &big, "bucket");
    let s3_peak = peak_rss_mib(&model);
    println!(
        "10 MiB through haproxy, MiB/s up/down: table {pg_up:.1}/{pg_down:.1}, \
         S3 {s3_up:.1}/{s3_down:.1} (ratio {:.2}/{:.2}); peak RSS of a unit's process: \
         table {pg_peak:.0} MiB, S3 {s3_peak:.0} MiB",
        s3_up / pg_up,
        s3_down / pg_down
    );
    record_figure("s3", "10 MiB upload S3/table ratio", s3_up / pg_up, "x");
    record_figure(
        "s3",
        "10 MiB download S3/table ratio",
        s3_down / pg_down,
        "x",
    );
    record_figure("s3", "peak RSS, table phase", pg_peak, "MiB");
    record_figure("s3", "peak RSS, S3 phase", s3_peak, "MiB");

    // A new revision of the credentials under load: the store takes both keys, the units
    // move to the new one one at a time with no failed request, then the old key goes.
    let (key_b, secret_b) = (
        format!("AK{}", random_alnum(18).to_uppercase()),
        random_alnum(40),
    );
    s3.set_identities(&[(&key_a, &secret_a), (&key_b, &secret_b)]);
    let since = now_unix();
    let load = LoadRun::start(
        &model,
        &format!("{THROUGH_HAPROXY}/files/{APP_ID}/{new}"),
        APP_ID,
        45,
        4,
    );
    std::thread::sleep(Duration::from_secs(3));
    model.remote_secret_set(
        &secret,
        &[
            ("access-key", key_b.as_str()),
            ("secret-key", secret_b.as_str()),
        ],
    );
    model.settle();
    let load = load.finish();
    model.assert_all("active", "serving");
    let restarts = restarts_since(&model, since);
    assert_one_at_a_time(&restarts, 3);
    println!(
        "s3 credential rotation under load: {} requests, {} failed",
        load.requests, load.failed
    );
    assert_eq!(load.failed, 0, "requests failed during the rotation");
    record_figure(
        "s3",
        "failed requests during a credential rotation",
        load.failed as f64,
        "",
    );
    s3.set_identities(&[(&key_b, &secret_b)]);
    every_unit_serves(&model, &units, &new, b"stored in the bucket");

    // The relation removed: older files still download, new files go to the table.
    model.ok("relation-break", &[&rel]);
    model.settle();
    model.assert_all("active", "serving");
    every_unit_serves(
        &model,
        &units,
        &old,
        b"stored in the table before the relation",
    );
    let after_src = model.dir.join("after.txt");
    std::fs::write(&after_src, b"after the relation").unwrap();
    let (after, _) = upload(
        &model,
        THROUGH_HAPROXY,
        "after.txt",
        &after_src,
        "text/plain",
    );
    let in_table = pg
        .psql(&format!(
            "\\c parse\nSELECT count(*) FROM \"_CharmFiles\" WHERE name = '{after}'"
        ))
        .unwrap();
    assert_eq!(in_table.trim(), "1", "new files go to the table again");
    let (code, _, _) = download(&model, &unit_api(&units[0]), &new, None);
    println!("a file stored in the bucket, after the relation is removed: HTTP {code}");

    let leaks = secret_leaks(&model, &[&secret_a, &secret_b, &wrong]);
    assert!(leaks.is_empty(), "S3 secret keys leaked: {leaks:?}");
    println!("s3 on PostgreSQL: {:.0} s", started.elapsed().as_secs_f64());
    drop(s3);
    model.teardown();
}

#[test]
fn files_on_s3_across_three_units_on_mongodb_with_gridfs_behind_it() {
    let mut model = Model::new("s3-mongo");
    // Over TLS, its CA given as the relation's tls-ca-chain.
    let ca = TestCa::new(&model.dir, "s3ca");
    let cert = ca.issue_server("seaweedfs", Network::GATEWAY);
    let s3 = S3Server::start_tls(&model, S3_PORT, &cert);
    let password = random_alnum(32);
    let units = three_units(&mut model);
    model.settle();
    relate_scram_mongodb(&mut model, &password);
    let (key, secret_key) = behind_haproxy_with_a_bucket(&mut model, &s3);

    // GridFS before the relation.
    let old_src = model.dir.join("old.txt");
    std::fs::write(&old_src, b"stored in GridFS before the relation").unwrap();
    let (old, _) = upload(&model, THROUGH_HAPROXY, "old.txt", &old_src, "text/plain");
    every_unit_serves(
        &model,
        &units,
        &old,
        b"stored in GridFS before the relation",
    );

    // s3-integrator track 1: plain fields.
    let s3_rel = model.relate("s3", "s3-integrator");
    model.remote_set(&s3_rel, "s3-integrator/0", &[], Some(Network::GATEWAY));
    model.settle();
    let endpoint = format!("https://{}:{S3_PORT}", Network::GATEWAY);
    let chain = serde_json::to_string(&[ca.cert_pem()]).unwrap();
    model.remote_app_set(
        &s3_rel,
        &[
            ("bucket", BUCKET),
            ("endpoint", endpoint.as_str()),
            ("access-key", key.as_str()),
            ("secret-key", secret_key.as_str()),
            ("s3-uri-style", "path"),
            ("tls-ca-chain", chain.as_str()),
        ],
    );
    model.settle();
    model.assert_all("active", "serving");
    let new_src = model.dir.join("new.txt");
    std::fs::write(&new_src, b"stored in the bucket").unwrap();
    let (new, _) = upload(
        &model,
        &unit_api(&units[2]),
        "new.txt",
        &new_src,
        "text/plain",
    );
    let object = s3
        .request(&s3.store(BUCKET, &key, &secret_key), "GET", &new, b"")
        .unwrap();
    assert_eq!(object.status, 200, "the file is in the bucket");
    assert_eq!(object.body, b"stored in the bucket");
    every_unit_serves(&model, &units, &new, b"stored in the bucket");
    every_unit_serves(
        &model,
        &units,
        &old,
        b"stored in GridFS before the relation",
    );
    let (code, part, _) = download(&model, &unit_api(&units[0]), &old, Some("10-15"));
    assert_eq!(
        (code, String::from_utf8_lossy(&part).into_owned()),
        (206, "GridFS".to_owned()),
        "a byte range of a GridFS file"
    );

    // The relation removed: GridFS again, its files still served.
    model.ok("relation-break", &[&s3_rel]);
    model.settle();
    model.assert_all("active", "serving");
    every_unit_serves(
        &model,
        &units,
        &old,
        b"stored in GridFS before the relation",
    );
    let leaks = secret_leaks(&model, &[&secret_key, &password]);
    assert!(leaks.is_empty(), "secrets leaked: {leaks:?}");
    drop(s3);
    model.teardown();
}
