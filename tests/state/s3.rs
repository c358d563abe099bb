//! Files on S3 (`s3` relation): which store parse-server writes to and reads from, what the
//! leader asks, both integrators' answers (plain fields, the `secret-extra` secret), a
//! rotation, an answer the charm cannot use or a bucket the store refuses (`waiting`, the
//! service keeps what it serves), the relation removed, and the secret key in no status,
//! log or hook-tool call.

use crate::harness::{hook, run, serving, Exit, On, World};
use parse_server_charm::juju::StatusKind;
use parse_server_charm::workload::database::DbError;
use serde_json::{json, Value};

const SECRET_KEY: &str = "s3cr3t/KEY+value";
const S3_ADAPTER: &str = "/opt/parse-server/charm/s3-files-adapter.js";
const TABLE_ADAPTER: &str = "/opt/parse-server/charm/postgres-files-adapter.js";

fn track_one() -> Vec<(&'static str, &'static str)> {
    vec![
        ("bucket", "parse-files"),
        ("access-key", "AKIDPARSE"),
        ("secret-key", SECRET_KEY),
        ("endpoint", "http://10.0.0.40:8333"),
        ("path", "shop"),
    ]
}

/// Whether a secret key shows in what the hooks told Juju, logged, or called.
fn leaked(w: &World, secrets: &[&str]) -> Option<String> {
    w.statuses
        .iter()
        .map(|s| s.message.clone())
        .chain(w.logs.iter().cloned())
        .chain(w.calls.iter().cloned())
        .find(|line| secrets.iter().any(|s| line.contains(s)))
}

fn files_adapter(w: &World) -> Value {
    w.running_options().expect("a running configuration")["filesAdapter"].clone()
}

fn with_s3(tag: &str) -> (World, String) {
    let mut w = serving(tag);
    let id = w.relate_s3(&track_one());
    let w = hook(w, On::relation("s3-relation-changed", &id));
    w.assert_status(StatusKind::Active, "serving");
    (w, id)
}

#[test]
fn new_files_go_to_the_bucket_and_older_ones_are_read_from_gridfs() {
    let (w, id) = with_s3("s3-mongodb");
    // The leader asked for a bucket (the integrators answer with their configured one).
    let own = &w.relations[&id].local_app_bag;
    assert_eq!(own.get("bucket").map(String::as_str), Some("parse-server"));
    let a = files_adapter(&w);
    assert_eq!(a["module"], S3_ADAPTER);
    let o = &a["options"];
    assert_eq!(o["bucket"], "parse-files");
    assert_eq!(o["bucketPrefix"], "shop/");
    assert_eq!(o["endpoint"], "http://10.0.0.40:8333");
    assert_eq!(o["forcePathStyle"], true);
    assert_eq!(o["accessKeyId"], "AKIDPARSE");
    assert_eq!(o["secretAccessKey"], SECRET_KEY);
    let running = w.running_options().unwrap();
    assert_eq!(
        o["fallback"],
        json!({"gridfs": {
            "databaseURI": running["databaseURI"],
            "databaseOptions": running["databaseOptions"],
        }})
    );
    assert_eq!(
        w.probed_s3.borrow().last().cloned(),
        Some((
            "http://10.0.0.40:8333".into(),
            "parse-files".into(),
            "AKIDPARSE".into()
        ))
    );
    assert!(w.file(S3_ADAPTER).is_some(), "the adapter is installed");
    assert_eq!(leaked(&w, &[SECRET_KEY]), None);
    // Nothing changed, nothing restarts.
    let restarts = w.restarts;
    let w = hook(w, On::relation("s3-relation-changed", &id));
    let w = hook(w, "config-changed");
    assert_eq!(w.restarts, restarts);
}

#[test]
fn on_postgresql_older_files_are_read_from_the_charm_s_table() {
    let mut w = World::new("s3-postgresql");
    let db = w.relate_charmed_postgresql();
    let w = hook(w, "install");
    let w = hook(w, On::relation("postgresql-client-relation-changed", &db));
    w.assert_status(StatusKind::Active, "serving");
    let table = files_adapter(&w);
    assert_eq!(table["module"], TABLE_ADAPTER);
    let mut w = w;
    let id = w.relate_s3(&track_one());
    let w = hook(w, On::relation("s3-relation-changed", &id));
    w.assert_status(StatusKind::Active, "serving");
    let a = files_adapter(&w);
    assert_eq!(a["module"], S3_ADAPTER);
    assert_eq!(a["options"]["fallback"], json!({ "postgres": table }));
    // The relation removed: files go to the table again (and the table still has its own).
    let w = hook(w, On::relation("s3-relation-broken", &id));
    w.assert_status(StatusKind::Active, "serving");
    assert_eq!(files_adapter(&w), table);
}

#[test]
fn track_two_credentials_in_a_secret_and_their_rotation() {
    let mut w = serving("s3-secret");
    let secret = w.grant_secret(&[("access-key", "AKIDONE"), ("secret-key", SECRET_KEY)]);
    let id = w.relate_s3(&[
        ("bucket", "parse-files"),
        ("endpoint", "https://s3.example.com"),
        ("s3-uri-style", "host"),
        ("secret-extra", secret.as_str()),
    ]);
    let w = hook(w, On::relation("s3-relation-changed", &id));
    w.assert_status(StatusKind::Active, "serving");
    let o = files_adapter(&w)["options"].clone();
    assert_eq!(o["accessKeyId"], "AKIDONE");
    assert_eq!(o["forcePathStyle"], false);
    assert_eq!(o["endpoint"], "https://s3.example.com");
    let restarts = w.restarts;
    // A new revision: the service restarts once with it.
    let mut w = w;
    w.secrets.get_mut(&secret).unwrap().newer = Some(parse_server_charm::juju::bag_of(&[
        ("access-key", "AKIDTWO"),
        ("secret-key", "rotated/SECRET"),
    ]));
    let w = hook(w, On::secret("secret-changed", &secret));
    w.assert_status(StatusKind::Active, "serving");
    assert_eq!(files_adapter(&w)["options"]["accessKeyId"], "AKIDTWO");
    assert_eq!(w.restarts, restarts + 1);
    assert_eq!(leaked(&w, &[SECRET_KEY, "rotated/SECRET"]), None);
}

#[test]
fn an_answer_without_a_bucket_waits_and_files_stay_where_they_are() {
    let mut w = serving("s3-no-bucket");
    let before = w.running_config.clone();
    let restarts = w.restarts;
    let id = w.relate_s3(&[("access-key", "AK"), ("secret-key", SECRET_KEY)]);
    let (w, exit) = run(w, On::relation("s3-relation-changed", &id));
    assert_eq!(exit, Exit::Ok);
    w.assert_status(
        StatusKind::Waiting,
        "s3 relation: waiting for the provider to share bucket",
    );
    assert_eq!(w.running_config, before);
    assert_eq!(w.restarts, restarts);
    assert!(w.probed_s3.borrow().is_empty());
}

#[test]
fn a_bucket_the_store_refuses_waits_naming_why_and_nothing_serving_changes() {
    for (answer, why) in [
        (
            DbError::Refused("it does not exist".into()),
            "s3 relation: bucket parse-files at http://10.0.0.40:8333: it does not exist \
             (files stay where they are)",
        ),
        (
            DbError::Refused("the store refuses the credentials (HTTP 403)".into()),
            "the store refuses the credentials (HTTP 403)",
        ),
        (
            DbError::Unreachable("connection refused".into()),
            "at http://10.0.0.40:8333: connection refused",
        ),
    ] {
        let mut w = serving("s3-refused");
        let before = w.running_config.clone();
        let restarts = w.restarts;
        w.s3 = Err(answer);
        let id = w.relate_s3(&track_one());
        let (w, exit) = run(w, On::relation("s3-relation-changed", &id));
        assert_eq!(exit, Exit::Ok);
        w.assert_status(StatusKind::Waiting, why);
        assert_eq!(w.running_config, before);
        assert_eq!(w.restarts, restarts);
        assert_eq!(leaked(&w, &[SECRET_KEY]), None);
        // Fixed on the store's side: the next hook moves new files to the bucket.
        let mut w = w;
        w.s3 = Ok(());
        let w = hook(w, "update-status");
        w.assert_status(StatusKind::Active, "serving");
        assert_eq!(files_adapter(&w)["module"], S3_ADAPTER);
    }
}

#[test]
fn provider_data_the_charm_cannot_use_waits_naming_the_field() {
    let mut w = serving("s3-unusable");
    let before = w.running_config.clone();
    let mut bag = track_one();
    bag.retain(|(k, _)| *k != "endpoint");
    bag.push(("endpoint", "ftp://10.0.0.40"));
    let id = w.relate_s3(&bag);
    let w = hook(w, On::relation("s3-relation-changed", &id));
    w.assert_status(
        StatusKind::Waiting,
        "s3 relation: endpoint \"ftp://10.0.0.40\" is not an http(s) URL",
    );
    assert_eq!(w.running_config, before);
}

#[test]
fn a_files_adapter_in_extra_options_and_the_relation_block() {
    let mut w = serving("s3-extra-options");
    w.set(
        "extra-options",
        r#"{"filesAdapter": {"module": "@parse/fs-files-adapter"}}"#,
    );
    let w = hook(w, "config-changed");
    let before = w.running_config.clone();
    let mut w = w;
    let id = w.relate_s3(&track_one());
    let w = hook(w, On::relation("s3-relation-changed", &id));
    w.assert_status(
        StatusKind::Blocked,
        "extra-options: filesAdapter and the s3 relation both say where files go",
    );
    assert_eq!(w.running_config, before);
}

#[test]
fn the_relation_removed_on_mongodb_gives_files_back_to_gridfs() {
    let (w, id) = with_s3("s3-removed");
    let restarts = w.restarts;
    let w = hook(w, On::relation("s3-relation-broken", &id));
    w.assert_status(StatusKind::Active, "serving");
    assert_eq!(
        files_adapter(&w),
        Value::Null,
        "parse-server's default: GridFS"
    );
    assert_eq!(w.restarts, restarts + 1);
    assert!(!w.options().to_string().contains(SECRET_KEY));
}

#[test]
fn a_steady_update_status_asks_the_store_again() {
    let (w, _) = with_s3("s3-steady");
    let w = hook(w, "update-status");
    w.assert_status(StatusKind::Active, "serving");
    let asked = w.probed_s3.borrow().len();
    // The steady path (the record from the update-status before) asks only what changes
    // with no hook: the bucket among it.
    let w = hook(w, "update-status");
    assert_eq!(
        w.probed_s3.borrow().len(),
        asked + 1,
        "the bucket is asked again"
    );
    // The bucket went away: the next update-status says so; files stay where they are.
    let mut w = w;
    let before = w.running_config.clone();
    w.s3 = Err(DbError::Refused("it does not exist".into()));
    let w = hook(w, "update-status");
    w.assert_status(
        StatusKind::Waiting,
        "bucket parse-files at http://10.0.0.40:8333: it does not exist",
    );
    assert_eq!(w.running_config, before);
}
