//! Email through smtp-integrator's `smtp` relation: the mail adapter rendered from the
//! provider's data (STARTTLS, TLS, none; the password from its secret or a plain field), the
//! email options, what waits or blocks (and that whatever serves keeps serving then), the
//! relation removed, no restart without a change, and the password in no status, log or
//! hook-tool call.

use std::os::unix::fs::PermissionsExt;

use crate::harness::{hook, run, serving, Exit, On, World};
use parse_server_charm::juju::StatusKind;
use serde_json::Value;

const PASSWORD: &str = "smtp-pa55word-in-a-secret";
const ADAPTER: &str = "/opt/parse-server/charm/smtp-email-adapter.js";

/// Whether any of `values` shows in what the hooks told Juju, logged, or called.
fn leaked(w: &World, values: &[&str]) -> Option<String> {
    w.statuses
        .iter()
        .map(|s| s.message.clone())
        .chain(w.logs.iter().cloned())
        .chain(w.calls.iter().cloned())
        .find(|line| values.iter().any(|v| line.contains(v)))
}

fn adapter_options(w: &World) -> Value {
    let o = w.running_options().expect("a running configuration");
    assert_eq!(o["emailAdapter"]["module"], ADAPTER, "{o}");
    o["emailAdapter"]["options"].clone()
}

/// A unit serving on mongodb, then related to smtp-integrator with a secret.
fn with_smtp(tag: &str) -> (World, String, String) {
    let mut w = serving(tag);
    let (id, secret) = w.relate_smtp_with_secret(PASSWORD);
    let w = hook(
        w,
        On::relation("smtp-relation-changed", &id).unit("smtp-integrator/0"),
    );
    w.assert_status(StatusKind::Active, "serving on port 1337");
    (w, id, secret)
}

#[test]
fn starttls_with_the_password_from_the_secret() {
    let (w, _, _) = with_smtp("email-starttls");
    let a = adapter_options(&w);
    assert_eq!(a["host"], "smtp.example.com");
    assert_eq!(a["port"], 587);
    assert_eq!(a["transportSecurity"], "starttls");
    assert_eq!(a["rejectUnauthorized"], true);
    assert_eq!(a["user"], "mailer");
    assert_eq!(a["password"], PASSWORD);
    assert_eq!(
        a["from"], "noreply@example.com",
        "from the relation's domain"
    );
    assert_eq!(a["caFile"], "/etc/ssl/certs/ca-certificates.crt");
    assert_eq!(a["releaseDir"], "/opt/parse-server/releases/9.10.0");
    let o = w.running_options().unwrap();
    assert_eq!(o["appName"], "Parse");
    assert!(o.get("verifyUserEmails").is_none(), "{o}");
    // The adapter the charm ships, root-owned and readable; the password only in the
    // option file, which only root and the service's group read.
    let src = w.file(ADAPTER).expect("the adapter is installed");
    assert!(src.contains("sendMail"));
    let mode = std::fs::metadata(w.root.join("etc/parse-server/config.json"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o640);
    assert_eq!(w.restarts, 2, "one start, one restart for the mail adapter");
    assert_eq!(leaked(&w, &[PASSWORD]), None);
}

#[test]
fn tls_with_a_plain_password_and_no_verification() {
    let mut w = serving("email-tls");
    let id = w.relate_smtp(&[
        ("host", "mail.example.org"),
        ("port", "465"),
        ("user", "parse"),
        ("password", "plain-field-pw"),
        ("auth_type", "plain"),
        ("transport_security", "tls"),
        ("skip_ssl_verify", "True"),
        ("smtp_sender", "Shop <shop@example.org>"),
    ]);
    let w = hook(w, On::relation("smtp-relation-changed", &id));
    w.assert_status(StatusKind::Active, "serving");
    let a = adapter_options(&w);
    assert_eq!(a["transportSecurity"], "tls");
    assert_eq!(a["port"], 465);
    assert_eq!(a["rejectUnauthorized"], false);
    assert_eq!(a["password"], "plain-field-pw");
    assert_eq!(
        a["from"], "Shop <shop@example.org>",
        "the provider's sender"
    );
    assert_eq!(leaked(&w, &["plain-field-pw"]), None);
}

#[test]
fn no_auth_and_no_transport_security() {
    let mut w = serving("email-none");
    w.set("email-from", "app@example.net");
    let id = w.relate_smtp(&[
        ("host", "10.0.0.50"),
        ("port", "25"),
        ("auth_type", "none"),
        ("transport_security", "none"),
        ("user", "ignored"),
    ]);
    let w = hook(w, On::relation("smtp-relation-changed", &id));
    w.assert_status(StatusKind::Active, "serving");
    let a = adapter_options(&w);
    assert_eq!(a["transportSecurity"], "none");
    assert!(
        a.get("user").is_none() && a.get("password").is_none(),
        "{a}"
    );
    assert_eq!(a["from"], "app@example.net", "the operator's sender wins");
}

#[test]
fn incomplete_data_waits_and_the_service_keeps_its_configuration() {
    // A relation whose provider wrote nothing yet: nothing restarts.
    let mut w = serving("email-incomplete");
    let before = w.running_config.clone();
    let id = w.relate_smtp(&[]);
    let w = hook(
        w,
        On::relation("smtp-relation-joined", &id).unit("smtp-integrator/0"),
    );
    w.assert_status(
        StatusKind::Waiting,
        "smtp relation: waiting for the provider to share host, port, auth_type, transport_security",
    );
    assert_eq!(w.running_config, before);
    assert_eq!(w.restarts, 1);
    assert!(w.active);

    // Serving with mail, then the provider loses its port and user: waits, keeps mail.
    let (mut w, id, _) = with_smtp("email-incomplete-later");
    let before = w.running_config.clone();
    w.remote_app_set(&id, &[("port", "")]);
    let w = hook(w, On::relation("smtp-relation-changed", &id));
    w.assert_status(StatusKind::Waiting, "to share port");
    assert_eq!(w.running_config, before);
    assert_eq!(w.restarts, 2);
    let mut w = w;
    w.remote_app_set(&id, &[("port", "587"), ("user", "")]);
    let w = hook(w, On::relation("smtp-relation-changed", &id));
    w.assert_status(StatusKind::Waiting, "to share user");
    assert_eq!(w.running_config, before);
    // An unusable value is named (never the password).
    let mut w = w;
    w.remote_app_set(&id, &[("user", "mailer"), ("transport_security", "ssl")]);
    let w = hook(w, On::relation("smtp-relation-changed", &id));
    w.assert_status(
        StatusKind::Waiting,
        "smtp relation: transport_security \"ssl\" is not none, starttls or tls",
    );
    assert_eq!(w.running_config, before);
    assert_eq!(w.restarts, 2);
    assert_eq!(leaked(&w, &[PASSWORD]), None);
}

#[test]
fn a_missing_or_unreadable_secret_waits() {
    let (mut w, id, secret) = with_smtp("email-secret");
    let before = w.running_config.clone();
    w.unreadable_secrets.insert(secret.clone());
    let w = hook(w, On::relation("smtp-relation-changed", &id));
    w.assert_status(StatusKind::Waiting, "smtp relation: cannot read its secret");
    assert_eq!(w.running_config, before);
    let mut w = w;
    w.unreadable_secrets.clear();
    w.secrets.remove(&secret);
    let w = hook(w, On::relation("smtp-relation-changed", &id));
    w.assert_status(
        StatusKind::Waiting,
        "smtp relation: its secret does not exist (yet)",
    );
    assert_eq!(w.running_config, before);
    assert_eq!(w.restarts, 2);
}

#[test]
fn a_new_password_revision_restarts_once() {
    let (mut w, _, secret) = with_smtp("email-rotate");
    w.secrets.get_mut(&secret).unwrap().newer = Some(parse_server_charm::juju::bag_of(&[(
        "password",
        "rotated-pw-2",
    )]));
    let w = hook(w, On::secret("secret-changed", &secret));
    w.assert_status(StatusKind::Active, "serving");
    assert_eq!(adapter_options(&w)["password"], "rotated-pw-2");
    assert_eq!(w.restarts, 3);
    assert_eq!(leaked(&w, &[PASSWORD, "rotated-pw-2"]), None);
}

#[test]
fn email_from_empty_without_a_domain_blocks() {
    let mut w = serving("email-from");
    let before = w.running_config.clone();
    let id = w.relate_smtp(&[
        ("host", "smtp.example.com"),
        ("port", "587"),
        ("auth_type", "none"),
        ("transport_security", "starttls"),
    ]);
    let w = hook(w, On::relation("smtp-relation-changed", &id));
    w.assert_status(
        StatusKind::Blocked,
        "invalid config: email-from: must be set: the smtp relation gives no sender or domain",
    );
    assert_eq!(w.running_config, before);
    let mut w = w;
    w.set("email-from", "not an address");
    let w = hook(w, "config-changed");
    w.assert_status(StatusKind::Blocked, "invalid config: email-from:");
    let mut w = w;
    w.set("email-from", "Shop <noreply@shop.example>");
    let w = hook(w, "config-changed");
    w.assert_status(StatusKind::Active, "serving");
    assert_eq!(adapter_options(&w)["from"], "Shop <noreply@shop.example>");
}

#[test]
fn verify_user_emails_needs_the_relation() {
    let mut w = serving("email-verify");
    let before = w.running_config.clone();
    w.set("verify-user-emails", true);
    let w = hook(w, "config-changed");
    w.assert_status(
        StatusKind::Blocked,
        "invalid config: verify-user-emails: needs an smtp relation",
    );
    assert_eq!(w.running_config, before, "the service keeps what it serves");
    assert!(w.active);
    let mut w = w;
    let (id, _) = w.relate_smtp_with_secret(PASSWORD);
    w.set("app-name", "Shop");
    let w = hook(w, On::relation("smtp-relation-changed", &id));
    w.assert_status(StatusKind::Active, "serving");
    let o = w.running_options().unwrap();
    assert_eq!(o["verifyUserEmails"], true);
    assert_eq!(o["appName"], "Shop");
}

#[test]
fn the_relation_removed_takes_the_adapter_away_with_one_restart() {
    let (w, id, _) = with_smtp("email-removed");
    let (w, exit) = run(w, On::relation("smtp-relation-broken", &id));
    assert_eq!(exit, Exit::Ok);
    w.assert_status(StatusKind::Active, "serving");
    let o = w.running_options().unwrap();
    for key in ["emailAdapter", "appName", "verifyUserEmails"] {
        assert!(o.get(key).is_none(), "{key} left: {o}");
    }
    assert_eq!(w.restarts, 3);
    assert!(!w.options().to_string().contains(PASSWORD));
    // With verify-user-emails set, removing the relation blocks and keeps mail serving.
    let (mut w, id, _) = with_smtp("email-removed-verify");
    w.set("verify-user-emails", true);
    let w = hook(w, "config-changed");
    assert_eq!(w.restarts, 3);
    let before = w.running_config.clone();
    let w = hook(w, On::relation("smtp-relation-broken", &id));
    w.assert_status(
        StatusKind::Blocked,
        "verify-user-emails: needs an smtp relation",
    );
    assert_eq!(w.running_config, before);
}

#[test]
fn nothing_restarts_when_nothing_changed() {
    let (w, id, _) = with_smtp("email-steady");
    let w = hook(w, "update-status");
    let w = hook(w, "config-changed");
    let w = hook(w, On::relation("smtp-relation-changed", &id));
    let w = hook(w, "update-status");
    w.assert_status(StatusKind::Active, "serving");
    assert_eq!(w.restarts, 2);
    assert_eq!(leaked(&w, &[PASSWORD]), None);
}

#[test]
fn extra_options_cannot_set_the_charms_email_keys() {
    for key in ["emailAdapter", "appName", "verifyUserEmails"] {
        let mut w = serving(&format!("email-extra-{key}"));
        w.set("extra-options", format!("{{\"{key}\": true}}"));
        let w = hook(w, "config-changed");
        w.assert_status(
            StatusKind::Blocked,
            &format!("extra-options: \"{key}\" is set by the charm itself"),
        );
    }
    // The other email options pass through.
    let (mut w, _, _) = with_smtp("email-extra-pass");
    w.set(
        "extra-options",
        r#"{"preventLoginWithUnverifiedEmail": true, "emailVerifyTokenValidityDuration": 7200}"#,
    );
    w.set("verify-user-emails", true);
    let w = hook(w, "config-changed");
    w.assert_status(StatusKind::Active, "serving");
    let o = w.running_options().unwrap();
    assert_eq!(o["preventLoginWithUnverifiedEmail"], true);
    assert_eq!(o["emailVerifyTokenValidityDuration"], 7200);
}
