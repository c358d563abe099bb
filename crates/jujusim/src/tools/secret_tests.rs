//! Tests of the secret tools end to end (parsing, ownership/leader rules, journal view,
//! commit/discard through a real hook process, call-log redaction, status and reveal).

use crate::agent::hooks::{run_hook, HookRequest};
use crate::agent::journal;
use crate::agent::setup::{init_unit, InitOpts};
use crate::agent::state::{self, Secret, SecretRevision};
use crate::tools::{invoke, HookEnv};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

struct Unit {
    root: PathBuf,
    dir: PathBuf,
}

impl Drop for Unit {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// The dispatch of the test charm: installs a journal prepared by the test (as if the hook had
/// called the tools) and exits with the code in `U/exit-code`.
const DISPATCH: &str = r#"#!/bin/sh
cp "$JUJUSIM_UNIT_DIR/prepared.json" "$JUJUSIM_UNIT_DIR/pending.json"
exit "$(cat "$JUJUSIM_UNIT_DIR/exit-code")"
"#;

fn unit(tag: &str, leader: bool) -> Unit {
    let root = std::env::temp_dir().join(format!("jujusim-secret-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let charm = root.join("charm");
    std::fs::create_dir_all(&charm).unwrap();
    std::fs::write(charm.join("metadata.yaml"), "name: demo\n").unwrap();
    std::fs::write(charm.join("dispatch"), DISPATCH).unwrap();
    std::fs::set_permissions(
        charm.join("dispatch"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    let dir = root.join("u");
    init_unit(
        &dir,
        &InitOpts {
            charm_dir: charm,
            leader,
            ..Default::default()
        },
    )
    .unwrap();
    Unit { root, dir }
}

fn env() -> HookEnv {
    HookEnv {
        hook_name: "config-changed".into(),
        dispatch_path: "hooks/config-changed".into(),
        ..Default::default()
    }
}

fn call(u: &Unit, tool: &str, args: &[&str]) -> (i32, String, String) {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let (code, out, err) = invoke(tool, u.dir.clone(), env(), &args, None);
    (
        code,
        String::from_utf8(out).unwrap(),
        err.map(|e| e.msg).unwrap_or_default(),
    )
}

/// secret-add that must succeed; returns the URI.
fn add(u: &Unit, args: &[&str]) -> String {
    let (code, out, err) = call(u, "secret-add", args);
    assert_eq!((code, err.as_str()), (0, ""), "secret-add {args:?}");
    let uri = out.strip_suffix('\n').expect("newline").to_string();
    let id = uri.strip_prefix("secret:").expect("secret: prefix");
    assert_eq!(id.len(), 20, "{uri}");
    assert!(
        id.bytes()
            .all(|c| c.is_ascii_digit() || c.is_ascii_lowercase()),
        "{uri}"
    );
    uri
}

/// End the "hook" the way run_hook does on exit 0.
fn commit(u: &Unit) {
    let mut st = state::load(&u.dir).unwrap();
    journal::load(&u.dir).unwrap().commit(&mut st);
    state::save(&u.dir, &st).unwrap();
    journal::clear(&u.dir).unwrap();
}

fn set_leader(u: &Unit, leader: bool) {
    let mut st = state::load(&u.dir).unwrap();
    st.leader = leader;
    state::save(&u.dir, &st).unwrap();
}

fn id_of(uri: &str) -> &str {
    uri.strip_prefix("secret:").unwrap()
}

#[test]
fn add_is_pending_but_visible_to_own_hook_then_committed() {
    let u = unit("add", true);
    let uri = add(
        &u,
        &[
            "--label",
            "db-password",
            "--description",
            "db <creds>",
            "password=hunter2",
            "user=admin",
        ],
    );
    let id = id_of(&uri);
    let (code, out, _) = call(&u, "secret-get", &["--format=json", &uri]);
    assert_eq!(
        (code, out.as_str()),
        (0, "{\"password\":\"hunter2\",\"user\":\"admin\"}\n")
    );
    // By label; one key as a JSON string; default format is YAML.
    let (_, out, _) = call(
        &u,
        "secret-get",
        &["--label", "db-password", "--format", "json"],
    );
    assert_eq!(out, "{\"password\":\"hunter2\",\"user\":\"admin\"}\n");
    let (_, out, _) = call(&u, "secret-get", &[&uri, "password", "--format", "json"]);
    assert_eq!(out, "\"hunter2\"\n");
    // As in Juju, the first positional is always the URI, even with --label.
    let (code, _, err) = call(&u, "secret-get", &["--label", "db-password", "password"]);
    assert_eq!(
        (code, err.as_str()),
        (2, "secret URI \"password\" not valid")
    );
    let (_, out, _) = call(&u, "secret-get", &[&uri]);
    assert_eq!(out, "password: hunter2\nuser: admin\n");
    let (_, out, _) = call(&u, "secret-get", &[&uri, "user#base64", "--format=json"]);
    assert_eq!(out, "\"YWRtaW4=\"\n");
    let (_, out, _) = call(&u, "secret-info-get", &["--format=json", &uri]);
    assert_eq!(
        out,
        format!("{{\"{id}\":{{\"description\":\"db \\u003ccreds\\u003e\",\"label\":\"db-password\",\"owner\":\"application\",\"revision\":1,\"rotation\":\"never\"}}}}\n")
    );
    let (_, out2, _) = call(
        &u,
        "secret-info-get",
        &["--label=db-password", "--format=json"],
    );
    assert_eq!(out2, out);
    let (_, out, _) = call(&u, "secret-ids", &["--format=json"]);
    assert_eq!(out, format!("[\"{id}\"]\n"));
    // Journaled, not in the model yet.
    assert!(state::load(&u.dir).unwrap().secrets.is_empty());
    assert_eq!(journal::load(&u.dir).unwrap().secret_ops.len(), 1);
    commit(&u);
    let st = state::load(&u.dir).unwrap();
    let s = &st.secrets[id];
    assert_eq!(
        (s.owner.as_str(), s.owner_id.as_str(), s.label.as_str()),
        ("application", "demo", "db-password")
    );
    assert_eq!(s.latest_revision(), 1);
    let (_, out, _) = call(&u, "secret-get", &["--format=json", id, "user"]);
    assert_eq!(out, "\"admin\"\n");
}

#[test]
fn failed_hook_discards_secret_ops_and_successful_hook_commits_them() {
    let u = unit("hook", true);
    // What the charm's tool calls queue during the hook.
    let uri = add(&u, &["--label", "api-token", "token=s3cret-t0ken"]);
    std::fs::rename(u.dir.join("pending.json"), u.dir.join("prepared.json")).unwrap();

    std::fs::write(u.dir.join("exit-code"), "1").unwrap();
    assert_eq!(
        run_hook(&u.dir, &HookRequest::plain("config-changed")).unwrap(),
        1
    );
    let st = state::load(&u.dir).unwrap();
    assert!(
        st.secrets.is_empty(),
        "a failed hook's secrets must be discarded"
    );
    assert_eq!(st.agent_status.status, "error");
    let (code, _, err) = call(&u, "secret-get", &[&uri]);
    assert_eq!(code, 1);
    assert_eq!(err, format!("secret \"{uri}\" not found"));

    std::fs::write(u.dir.join("exit-code"), "0").unwrap();
    assert_eq!(
        run_hook(&u.dir, &HookRequest::plain("config-changed")).unwrap(),
        0
    );
    let st = state::load(&u.dir).unwrap();
    assert_eq!(st.secrets[id_of(&uri)].label, "api-token");
    assert!(!u.dir.join("pending.json").exists());
    assert_eq!(
        crate::agent::secrets::reveal(&st, "api-token", None).unwrap(),
        "{\"token\":\"s3cret-t0ken\"}\n"
    );
    assert_eq!(
        crate::agent::secrets::reveal(&st, &uri, Some("token")).unwrap(),
        "s3cret-t0ken\n"
    );
    assert_eq!(
        crate::agent::secrets::reveal(&st, id_of(&uri), Some("token")).unwrap(),
        "s3cret-t0ken\n"
    );
    let e = crate::agent::secrets::reveal(&st, "nope", None).unwrap_err();
    assert_eq!((e.code, e.msg.as_str()), (1, "secret \"nope\" not found"));
    assert_eq!(
        crate::agent::secrets::reveal(&st, "api-token", Some("x"))
            .unwrap_err()
            .code,
        1
    );
    // Status shows metadata, never content.
    let status = crate::agent::statusview::status_json(&st);
    assert_eq!(status["secrets"][0]["label"], "api-token");
    assert_eq!(status["secrets"][0]["owner"], "application");
    assert_eq!(status["secrets"][0]["revisions"], 1);
    assert_eq!(status["secrets"][0]["id"], id_of(&uri));
    let text = crate::gojson::encode(&status);
    assert!(!text.contains("s3cret-t0ken"), "{text}");
    assert!(
        !text.contains(&crate::util::base64(b"s3cret-t0ken")),
        "{text}"
    );
}

#[test]
fn app_owned_needs_leader_unit_owned_does_not() {
    let u = unit("leader", false);
    let (code, out, err) = call(&u, "secret-add", &["password=hunter2"]);
    assert_eq!(
        (code, out.as_str(), err.as_str()),
        (1, "", "this unit is not the leader")
    );
    let (code, _, err) = call(&u, "secret-add", &["--owner=application", "a-key=v"]);
    assert_eq!((code, err.as_str()), (1, "this unit is not the leader"));
    assert!(journal::load(&u.dir).unwrap().secret_ops.is_empty());
    let uri = add(
        &u,
        &["--owner", "unit", "--label", "mine", "password=hunter2"],
    );
    let (_, out, _) = call(&u, "secret-info-get", &["--format=json", "--label", "mine"]);
    assert!(out.contains("\"owner\":\"unit\""), "{out}");
    let (_, out, _) = call(&u, "secret-ids", &["--format=json"]);
    assert_eq!(out, format!("[\"{}\"]\n", id_of(&uri)));
    commit(&u);
    assert_eq!(
        state::load(&u.dir).unwrap().secrets[id_of(&uri)].owner_id,
        "demo/0"
    );
}

#[test]
fn non_leader_unit_of_owning_app_reads_app_owned_secret() {
    let u = unit("nonleader", true);
    let uri = add(&u, &["--label", "shared", "password=hunter2"]);
    commit(&u);
    set_leader(&u, false);
    // Content: by URI and by the owner label.
    let (code, out, _) = call(&u, "secret-get", &["--format=json", &uri]);
    assert_eq!((code, out.as_str()), (0, "{\"password\":\"hunter2\"}\n"));
    let (code, out, _) = call(&u, "secret-get", &["--format=json", "--label", "shared"]);
    assert_eq!((code, out.as_str()), (0, "{\"password\":\"hunter2\"}\n"));
    let (code, out, _) = call(&u, "secret-get", &["--format=json", &uri, "password"]);
    assert_eq!((code, out.as_str()), (0, "\"hunter2\"\n"));
    // Metadata of app-owned secrets is leader-only; managing it needs leadership.
    let (code, _, err) = call(&u, "secret-info-get", &[&uri]);
    assert_eq!(code, 1);
    assert!(err.contains("not found"), "{err}");
    let (_, out, _) = call(&u, "secret-ids", &["--format=json"]);
    assert_eq!(out, "[]\n");
    let (code, _, err) = call(&u, "secret-set", &[&uri, "password=new"]);
    assert_eq!((code, err.as_str()), (1, "this unit is not the leader"));
    let (code, _, err) = call(&u, "secret-remove", &[&uri]);
    assert_eq!((code, err.as_str()), (1, "this unit is not the leader"));
    // Another unit's unit-owned secret is not readable.
    let mut st = state::load(&u.dir).unwrap();
    let other = "0123456789abcdefghij";
    st.secrets.insert(
        other.into(),
        Secret {
            id: other.into(),
            owner: "unit".into(),
            owner_id: "demo/1".into(),
            label: "theirs".into(),
            rotate: "never".into(),
            revisions: vec![SecretRevision {
                revision: 1,
                content: [("k-e-y".to_string(), "eA==".to_string())].into(),
            }],
            ..Default::default()
        },
    );
    state::save(&u.dir, &st).unwrap();
    let (code, _, err) = call(&u, "secret-get", &[other]);
    assert_eq!((code, err.as_str()), (1, "permission denied"));
    let (code, _, err) = call(&u, "secret-get", &["--label", "theirs"]);
    assert_eq!((code, err.as_str()), (1, "secret \"theirs\" not found"));
}

#[test]
fn file_values_are_read_at_call_time() {
    let u = unit("file", true);
    let f = u.root.join("password.txt");
    std::fs::write(&f, "from-file\nsecond line").unwrap();
    let arg = format!("password#file={}", f.display());
    let uri = add(&u, &["--label", "f", &arg, "user=admin"]);
    // Changing the file afterwards does not change the secret.
    std::fs::write(&f, "changed").unwrap();
    let (_, out, _) = call(&u, "secret-get", &["--format=json", &uri]);
    assert_eq!(
        out,
        "{\"password\":\"from-file\\nsecond line\",\"user\":\"admin\"}\n"
    );
    // --file: YAML mapping of values.
    let y = u.root.join("content.yaml");
    std::fs::write(&y, "cert: abc\nkey#base64: aHVudGVyMg==\n").unwrap();
    let uri2 = add(&u, &["--file", y.to_str().unwrap()]);
    let (_, out, _) = call(&u, "secret-get", &["--format=json", &uri2]);
    assert_eq!(out, "{\"cert\":\"abc\",\"key\":\"hunter2\"}\n");
    // A missing file: ERROR line, exit 1, nothing queued.
    let ops = journal::load(&u.dir).unwrap().secret_ops.len();
    let (code, out, err) = call(&u, "secret-add", &["password#file=/nonexistent/pw"]);
    assert_eq!((code, out.as_str()), (1, ""));
    assert!(
        err.starts_with("reading content for secret key \"password\": open /nonexistent/pw"),
        "{err}"
    );
    assert_eq!(journal::load(&u.dir).unwrap().secret_ops.len(), ops);
    // secret-set reads #file too.
    std::fs::write(&f, "rotated").unwrap();
    assert_eq!(call(&u, "secret-set", &[&uri, &arg]).0, 0);
    let (_, out, _) = call(&u, "secret-get", &["--format=json", &uri, "password"]);
    assert_eq!(out, "\"rotated\"\n");
}

#[test]
fn labels_are_unique_per_owner() {
    let u = unit("labels", true);
    let a = add(&u, &["--label", "db", "password=one"]);
    let (code, out, err) = call(&u, "secret-add", &["--label", "db", "password=two"]);
    assert_eq!((code, out.as_str()), (1, ""));
    assert_eq!(err, "secret with label \"db\" already exists");
    // Also against committed secrets.
    commit(&u);
    let (code, _, err) = call(&u, "secret-add", &["--label=db", "password=two"]);
    assert_eq!(code, 1);
    assert!(err.contains("already exists"), "{err}");
    // A different owner may use it.
    add(&u, &["--owner", "unit", "--label", "db", "password=three"]);
    // Relabelling onto a used label fails; onto its own label is fine.
    let b = add(&u, &["--label", "other", "password=four"]);
    let (code, _, err) = call(&u, "secret-set", &[&b, "--label", "db"]);
    assert_eq!(code, 1);
    assert!(err.contains("already exists"), "{err}");
    assert_eq!(call(&u, "secret-set", &[&a, "--label", "db"]).0, 0);
}

#[test]
fn not_found_and_usage_errors() {
    let u = unit("errors", true);
    let missing = "secret:0123456789abcdefghij";
    let (code, _, err) = call(&u, "secret-get", &[missing]);
    assert_eq!(code, 1);
    assert_eq!(err, format!("secret \"{missing}\" not found"));
    let (code, _, err) = call(&u, "secret-get", &["--label", "nope"]);
    assert_eq!((code, err.as_str()), (1, "secret \"nope\" not found"));
    let (code, _, err) = call(&u, "secret-info-get", &[missing]);
    assert_eq!(code, 1);
    assert!(err.contains("not found"), "{err}");
    let (code, _, err) = call(&u, "secret-info-get", &["--label", "nope"]);
    assert_eq!((code, err.as_str()), (1, "secret \"nope\" not found"));
    assert_eq!(call(&u, "secret-set", &[missing, "abc=c"]).0, 1);
    assert_eq!(call(&u, "secret-remove", &[missing]).0, 1);
    let uri = add(&u, &["password=x"]);
    let (code, _, err) = call(&u, "secret-get", &[&uri, "nokey"]);
    assert_eq!((code, err.as_str()), (1, "secret key \"nokey\" not found"));
    let (_, out, _) = call(&u, "secret-ids", &[]);
    assert_eq!(out, format!("{}\n", id_of(&uri)));

    let usage: &[(&str, &[&str])] = &[
        ("secret-get", &[&uri, "--peek", "--refresh"]),
        ("secret-get", &[]),
        ("secret-get", &["not-a-uri"]),
        ("secret-get", &[&uri, "--format=smart"]),
        ("secret-get", &[&uri, "k", "extra"]),
        ("secret-info-get", &[&uri, "--label", "x"]),
        ("secret-info-get", &[]),
        ("secret-add", &[]),
        ("secret-add", &["--format=json", "abc=c"]),
        ("secret-add", &["a-b=c"]),
        ("secret-add", &["Password=x"]),
        ("secret-add", &["ab=x"]),
        ("secret-add", &["hunter2"]),
        ("secret-add", &["--owner", "model", "abc=x"]),
        ("secret-add", &["--rotate", "fortnightly", "abc=x"]),
        ("secret-add", &["--expire", "-1h", "abc=x"]),
        ("secret-add", &["abc#base64=not base64!"]),
        ("secret-set", &[]),
        ("secret-set", &["bogus", "abc=x"]),
        ("secret-remove", &[]),
        ("secret-remove", &[&uri, "--revision", "x"]),
        ("secret-remove", &[&uri, "extra"]),
        ("secret-ids", &["extra"]),
        ("secret-ids", &["--format=xml"]),
    ];
    for (tool, args) in usage {
        let (code, _, err) = call(&u, tool, args);
        assert_eq!(code, 2, "{tool} {args:?}: {err}");
    }
    let (_, _, err) = call(&u, "secret-get", &[&uri, "--peek", "--refresh"]);
    assert_eq!(err, "specify one of --peek or --refresh but not both");
    let (_, _, err) = call(&u, "secret-add", &[]);
    assert_eq!(err, "missing secret value or filename");
    // Help works for every secret tool.
    for tool in [
        "secret-add",
        "secret-get",
        "secret-ids",
        "secret-info-get",
        "secret-remove",
        "secret-set",
    ] {
        let (code, out, _) = call(&u, tool, &["--help"]);
        assert_eq!(code, 0);
        assert!(out.starts_with(&format!("Usage: {tool} ")), "{out}");
    }
}

#[test]
fn values_are_redacted_in_tool_calls_log() {
    let u = unit("redact", true);
    let f = u.root.join("pw.txt");
    std::fs::write(&f, "file-s3cret").unwrap();
    let file_arg = format!("cert#file={}", f.display());
    let uri = add(
        &u,
        &[
            "--label",
            "creds",
            "password=hunter2",
            "token#base64=c2VrcmV0LXRva2Vu",
            &file_arg,
        ],
    );
    assert_eq!(
        call(
            &u,
            "secret-set",
            &[&uri, "password=rotated-pw", "--description", "d"]
        )
        .0,
        0
    );
    // Failing calls are logged (redacted) too.
    assert_eq!(call(&u, "secret-add", &["Bad=leaked-value"]).0, 2);
    assert_eq!(call(&u, "secret-add", &["leaked-bare-value"]).0, 2);
    let (code, _, err) = call(&u, "secret-add", &["=leaked-too"]);
    assert_eq!(code, 2);
    assert!(!err.contains("leaked-too"), "{err}");
    let log = std::fs::read_to_string(u.dir.join("tool-calls.log")).unwrap();
    for leak in [
        "hunter2",
        "c2VrcmV0LXRva2Vu",
        "rotated-pw",
        "file-s3cret",
        "leaked",
        &crate::util::base64(b"hunter2"),
    ] {
        assert!(
            !log.contains(leak),
            "{leak} leaked into tool-calls.log:\n{log}"
        );
    }
    assert!(log.contains("\"password=<redacted>\""), "{log}");
    assert!(log.contains("\"token#base64=<redacted>\""), "{log}");
    assert!(log.contains(&format!("\"{file_arg}\"")), "{log}");
    assert!(log.contains(&format!("\"{uri}\"")), "{log}");
    assert!(log.contains("\"--label\",\"creds\""), "{log}");
    assert!(log.contains("\"Bad=<redacted>\""), "{log}");
}

#[test]
fn set_makes_revisions_and_remove_deletes() {
    let u = unit("revs", true);
    let uri = add(&u, &["--label", "r", "password=one"]);
    commit(&u);
    assert_eq!(call(&u, "secret-set", &[&uri, "password=two"]).0, 0);
    // Pending update: plain get keeps the committed revision, --peek/--refresh see it.
    let (_, out, _) = call(&u, "secret-get", &["--format=json", &uri, "password"]);
    assert_eq!(out, "\"one\"\n");
    let (_, out, _) = call(
        &u,
        "secret-get",
        &["--format=json", &uri, "password", "--peek"],
    );
    assert_eq!(out, "\"two\"\n");
    let (_, out, _) = call(
        &u,
        "secret-get",
        &["--format=json", "--label=r", "--refresh"],
    );
    assert_eq!(out, "{\"password\":\"two\"}\n");
    let (_, out, _) = call(&u, "secret-info-get", &["--format=json", &uri]);
    assert!(out.contains("\"revision\":1"), "{out}");
    // A second set in the same hook merges: one new revision.
    assert_eq!(
        call(
            &u,
            "secret-set",
            &[&uri, "password=three", "--rotate", "daily"]
        )
        .0,
        0
    );
    commit(&u);
    let s = state::load(&u.dir).unwrap().secrets[id_of(&uri)].clone();
    assert_eq!(s.latest_revision(), 2);
    assert_eq!(s.rotate, "daily");
    assert!(s.next_rotate.is_some());
    let (_, out, _) = call(&u, "secret-get", &["--format=json", &uri]);
    assert_eq!(out, "{\"password\":\"three\"}\n");
    let (_, out, _) = call(&u, "secret-info-get", &["--format=json", &uri]);
    assert!(
        out.contains("\"revision\":2")
            && out.contains("\"rotation\":\"daily\"")
            && out.contains("\"rotates\":"),
        "{out}"
    );
    // Same content again: no new revision; metadata-only set: no new revision.
    assert_eq!(call(&u, "secret-set", &[&uri, "password=three"]).0, 0);
    assert_eq!(
        call(&u, "secret-set", &[&uri, "--description", "desc"]).0,
        0
    );
    commit(&u);
    let s = state::load(&u.dir).unwrap().secrets[id_of(&uri)].clone();
    assert_eq!((s.latest_revision(), s.revisions.len()), (2, 2));
    assert_eq!(s.description, "desc");
    // Remove one revision, then the secret.
    let (code, _, err) = call(&u, "secret-remove", &[&uri, "--revision", "9"]);
    assert_eq!(code, 1);
    assert!(err.contains("not found"), "{err}");
    assert_eq!(call(&u, "secret-remove", &[&uri, "--revision=1"]).0, 0);
    commit(&u);
    let s = state::load(&u.dir).unwrap().secrets[id_of(&uri)].clone();
    assert_eq!(s.revisions.len(), 1);
    assert_eq!(call(&u, "secret-remove", &[&uri]).0, 0);
    // Removal is pending: still committed until the hook succeeds.
    assert!(state::load(&u.dir)
        .unwrap()
        .secrets
        .contains_key(id_of(&uri)));
    let (_, out, _) = call(&u, "secret-ids", &["--format=json"]);
    assert_eq!(out, "[]\n");
    commit(&u);
    assert!(state::load(&u.dir).unwrap().secrets.is_empty());
}

#[test]
fn expiry_is_reported() {
    let u = unit("expiry", true);
    let uri = add(&u, &["--expire", "2030-01-02T03:04:05+01:00", "abc=x"]);
    let (_, out, _) = call(&u, "secret-info-get", &["--format=json", &uri]);
    assert!(out.contains("\"expiry\":\"2030-01-02T02:04:05Z\""), "{out}");
    let uri = add(&u, &["--expire", "24h", "abc=x"]);
    let (_, out, _) = call(&u, "secret-info-get", &["--format=json", &uri]);
    assert!(out.contains("\"expiry\":\"20"), "{out}");
    assert!(!out.contains("rotates"), "{out}");
}

/// A committed secret put straight into the unit's state (as another unit or a remote
/// application would have written it), with revisions 1..=n of `{"password": "v<rev>"}`.
fn put_secret(u: &Unit, id: &str, owner_id: &str, label: &str, n: u32, grants: &[u32]) {
    let mut st = state::load(&u.dir).unwrap();
    st.secrets.insert(
        id.into(),
        Secret {
            id: id.into(),
            owner: "application".into(),
            owner_id: owner_id.into(),
            label: label.into(),
            rotate: "never".into(),
            revisions: (1..=n)
                .map(|r| SecretRevision {
                    revision: r,
                    content: [(
                        "password".to_string(),
                        crate::util::base64(format!("v{r}").as_bytes()),
                    )]
                    .into(),
                })
                .collect(),
            grants: grants.iter().copied().collect(),
            ..Default::default()
        },
    );
    state::save(&u.dir, &st).unwrap();
}

fn add_revision(u: &Unit, id: &str) {
    let mut st = state::load(&u.dir).unwrap();
    let s = st.secrets.get_mut(id).unwrap();
    let r = s.latest_revision() + 1;
    s.revisions.push(SecretRevision {
        revision: r,
        content: [(
            "password".to_string(),
            crate::util::base64(format!("v{r}").as_bytes()),
        )]
        .into(),
    });
    state::save(&u.dir, &st).unwrap();
}

/// The `password` value secret-get returns, JSON-quoted with a newline (`"v2"\n`).
fn password(u: &Unit, args: &[&str]) -> String {
    let mut a = vec!["--format=json"];
    a.extend_from_slice(args);
    let (code, out, err) = call(u, "secret-get", &a);
    assert_eq!((code, err.as_str()), (0, ""), "secret-get {args:?}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    format!("{}\n", v["password"])
}

#[test]
fn reader_tracks_its_revision_until_refresh() {
    let u = unit("track", false);
    let id = "0123456789abcdefghij";
    let uri = format!("secret:{id}");
    put_secret(&u, id, "demo", "shared", 2, &[]);
    // First read: the latest committed revision, tracked from then on.
    assert_eq!(password(&u, &[&uri]), "\"v2\"\n");
    assert_eq!(state::load(&u.dir).unwrap().secret_tracking[id].revision, 2);
    add_revision(&u, id);
    assert_eq!(password(&u, &[&uri]), "\"v2\"\n");
    assert_eq!(password(&u, &["--label", "shared"]), "\"v2\"\n");
    // --peek: the latest just this once.
    assert_eq!(password(&u, &[&uri, "--peek"]), "\"v3\"\n");
    assert_eq!(password(&u, &[&uri]), "\"v2\"\n");
    // --refresh: the latest, and tracked.
    assert_eq!(
        password(&u, &["--label", "shared", "--refresh"]),
        "\"v3\"\n"
    );
    assert_eq!(password(&u, &[&uri]), "\"v3\"\n");
    assert_eq!(state::load(&u.dir).unwrap().secret_tracking[id].revision, 3);
}

#[test]
fn owner_tracks_what_it_created_not_what_it_set() {
    let u = unit("ownertrack", true);
    let uri = add(&u, &["--label", "k", "password=v1"]);
    commit(&u);
    assert_eq!(call(&u, "secret-set", &[&uri, "password=v2"]).0, 0);
    commit(&u);
    // juju since 3.1.7: the owner gets its tracked revision too unless it refreshes.
    assert_eq!(password(&u, &[&uri]), "\"v1\"\n");
    assert_eq!(password(&u, &[&uri, "--refresh"]), "\"v2\"\n");
    assert_eq!(password(&u, &[&uri]), "\"v2\"\n");
}

#[test]
fn uri_with_label_relabels_on_the_leader_and_is_refused_on_others() {
    let u = unit("relabel", true);
    let uri = add(&u, &["--label", "old", "password=v1"]);
    commit(&u);
    // The leader: queues a label change of its application's secret.
    assert_eq!(password(&u, &[&uri, "--label", "new"]), "\"v1\"\n");
    commit(&u);
    assert_eq!(
        state::load(&u.dir).unwrap().secrets[id_of(&uri)].label,
        "new"
    );
    assert_eq!(password(&u, &["--label", "new"]), "\"v1\"\n");
    // A non-leader may read by URI or by owner label, never both (juju#17340, operator#1135).
    set_leader(&u, false);
    assert_eq!(password(&u, &[&uri]), "\"v1\"\n");
    assert_eq!(password(&u, &["--label", "new"]), "\"v1\"\n");
    let (code, out, err) = call(&u, "secret-get", &[&uri, "--label", "new"]);
    assert_eq!(
        (code, out.as_str(), err.as_str()),
        (
            1,
            "",
            "only unit leaders can update an application owned secret label"
        )
    );
}

#[test]
fn remote_secret_granted_to_a_relation_is_consumed_with_a_consumer_label() {
    let u = unit("remote", false);
    let mut st = state::load(&u.dir).unwrap();
    let rid = st.add_relation("database", "mongodb");
    state::save(&u.dir, &st).unwrap();
    let id = "remote0123456789abcd";
    let uri = format!("secret:{id}");
    put_secret(&u, id, "mongodb", "provider-label", 1, &[rid]);
    // Not by the owner's label; by URI, giving it our own label on first read.
    let (code, _, err) = call(&u, "secret-get", &["--label", "provider-label"]);
    assert_eq!(
        (code, err.as_str()),
        (1, "secret \"provider-label\" not found")
    );
    assert_eq!(password(&u, &[&uri, "--label", "db-user"]), "\"v1\"\n");
    assert_eq!(password(&u, &["--label", "db-user"]), "\"v1\"\n");
    let track = state::load(&u.dir).unwrap().secret_tracking[id].clone();
    assert_eq!((track.revision, track.label.as_str()), (1, "db-user"));
    add_revision(&u, id);
    assert_eq!(password(&u, &["--label", "db-user"]), "\"v1\"\n");
    assert_eq!(
        password(&u, &["--label", "db-user", "--refresh"]),
        "\"v2\"\n"
    );
    // Consumers cannot manage it or see its metadata.
    assert_eq!(call(&u, "secret-set", &[&uri, "password=x"]).0, 1);
    assert_eq!(call(&u, "secret-info-get", &[&uri]).0, 1);
    let (_, out, _) = call(&u, "secret-ids", &["--format=json"]);
    assert_eq!(out, "[]\n");
    // A secret granted to a relation this unit does not have is not readable.
    let other = "remote9999999999abcd";
    put_secret(&u, other, "mongodb", "", 1, &[rid + 7]);
    let (code, _, err) = call(&u, "secret-get", &[other]);
    assert_eq!((code, err.as_str()), (1, "permission denied"));
}
