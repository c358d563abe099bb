//! Email end to end: a unit on PostgreSQL behind haproxy, related to "smtp-integrator" (the
//! test writes what smtp-integrator writes: the password in a Juju secret by `password_id`,
//! STARTTLS, certificate verification on), sending through a real SMTP server on the model
//! network (Debian's aiosmtpd: STARTTLS with a certificate from the test CA, AUTH required
//! before MAIL). Until the test CA is in the unit's CA store no mail leaves (and nothing
//! crashes); then sign-up sends the verification mail, its link (through haproxy) verifies the
//! address; the password-reset mail's link leads to parse-server's page, whose form sets the
//! new password. The SMTP password shows nowhere on the unit.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::model::{http_from_net, secret_leaks, Model, Postgres};
use crate::scale_out::{behind_haproxy, relate_postgresql, wait_serving};
use crate::tls::TestCa;
use jujusim::kit::{random_alnum, record_figure};

const APP_ID: &str = "shop";
const SMTP_SERVER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/smtp-server.py");
const SMTP_HOST: &str = "10.77.0.1";
const SMTP_USER: &str = "parse-mailer";

/// MAIL without AUTH after STARTTLS (the CA trusted): prints the server's reply code.
const MAIL_WITHOUT_AUTH: &str = r#"
import smtplib, ssl, sys
s = smtplib.SMTP(sys.argv[1], 587, timeout=10)
s.ehlo()
s.starttls(context=ssl.create_default_context(cafile=sys.argv[2]))
s.ehlo()
code, _ = s.mail("someone@example.com")
print(code)
s.quit()
"#;

fn app_headers() -> Vec<(&'static str, &'static str)> {
    vec![
        ("X-Parse-Application-Id", APP_ID),
        ("Content-Type", "application/json"),
    ]
}

/// The `n`th mail the server received (`<n>.json`), waiting at most `within`.
fn wait_mail(dir: &Path, n: usize, within: Duration) -> Value {
    let path = dir.join(format!("{n}.json"));
    let deadline = Instant::now() + within;
    loop {
        if let Ok(text) = std::fs::read_to_string(&path) {
            return serde_json::from_str(&text).unwrap();
        }
        assert!(
            Instant::now() < deadline,
            "no mail {n} within {within:?} (received: {:?})",
            std::fs::read_dir(dir)
                .map(|d| d
                    .filter_map(|e| e.ok())
                    .map(|e| e.file_name())
                    .collect::<Vec<_>>())
                .unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The one link in a mail's text.
fn link_in(mail: &Value) -> String {
    let text = mail["text"].as_str().unwrap();
    let links: Vec<&str> = text
        .split_whitespace()
        .filter(|w| w.starts_with("http"))
        .collect();
    assert_eq!(links.len(), 1, "{text}");
    links[0].to_owned()
}

/// A GET from the model network following redirects, as a browser would: `(status, final
/// URL, body)`.
fn browse(model: &Model, url: &str) -> (u16, String, String) {
    let out = model.net.exec(&[
        "curl",
        "-sS",
        "-L",
        "--max-time",
        "20",
        "-o",
        "-",
        "-w",
        "\n%{http_code} %{url_effective}",
        url,
    ]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, tail) = text.rsplit_once('\n').unwrap_or(("", ""));
    let (code, url) = tail.split_once(' ').unwrap_or(("0", ""));
    (code.parse().unwrap_or(0), url.to_owned(), body.to_owned())
}

/// The value of the attribute `attr` of the first `<tag` whose text contains `marker`.
fn attribute(html: &str, marker: &str, attr: &str) -> String {
    let tag = html
        .split('<')
        .find(|t| t.contains(marker))
        .unwrap_or_else(|| panic!("no tag with {marker} in {html}"));
    let at = tag
        .find(&format!("{attr}="))
        .unwrap_or_else(|| panic!("no {attr} in <{tag}"));
    let rest = &tag[at + attr.len() + 1..];
    let quote = rest.chars().next().unwrap();
    unescape_html(rest[1..].split(quote).next().unwrap())
}

/// An attribute's value as a browser reads it (character references decoded; parse-server
/// escapes `/` as `&#x2F;`).
fn unescape_html(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let Some(end) = after.find(';') else {
            out.push_str(&rest[at..]);
            return out;
        };
        let name = &after[..end];
        let c = match name {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => name
                .strip_prefix("#x")
                .or_else(|| name.strip_prefix("#X"))
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .or_else(|| name.strip_prefix('#').and_then(|d| d.parse().ok()))
                .and_then(char::from_u32),
        };
        match c {
            Some(c) => {
                out.push(c);
                rest = &after[end + 1..];
            }
            None => {
                out.push('&');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// `application/x-www-form-urlencoded` of `pairs`.
fn form(pairs: &[(&str, &str)]) -> String {
    let enc = |s: &str| {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect::<String>()
    };
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn login(model: &Model, url: &str, user: &str, password: &str) -> (u16, Value) {
    let body = serde_json::json!({"username": user, "password": password}).to_string();
    let (code, body) = http_from_net(model, "POST", url, &app_headers(), Some(body.as_bytes()));
    (code, serde_json::from_str(&body).unwrap_or(Value::Null))
}

#[test]
fn verification_and_password_reset_mails_through_a_real_smtp_server_behind_haproxy() {
    let mut model = Model::new("email");
    let pg = Postgres::start(&mut model, 5432);
    let unit = model.add_unit();
    model.config(&[&format!("app-id={APP_ID}"), "workers=1", "app-name=Shop"]);
    model.settle();
    relate_postgresql(&mut model, &pg);
    model.assert_all("active", "serving");
    let (_lb, haproxy, _cfg) = behind_haproxy(&mut model);
    wait_serving(&model, &haproxy.url("/parse/health"));

    // The SMTP server: STARTTLS with a certificate the test CA issued for its address,
    // AUTH required; its user and password in a 0600 file.
    let ca = TestCa::new(&model.dir, "smtp");
    let cert = ca.issue_server("smtp", SMTP_HOST);
    let password = random_alnum(24);
    let creds = model.dir.join("smtp-credentials");
    std::fs::write(&creds, format!("{SMTP_USER}\n{password}\n")).unwrap();
    std::fs::set_permissions(&creds, std::fs::Permissions::from_mode(0o600)).unwrap();
    let mails: PathBuf = model.dir.join("mails");
    let path = |p: &Path| p.to_str().unwrap().to_owned();
    model.net.spawn(
        &[
            "/usr/bin/python3",
            SMTP_SERVER,
            SMTP_HOST,
            "587",
            &path(&cert.cert),
            &path(&cert.key),
            &path(&creds),
            &path(&mails),
        ],
        "smtp.log",
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while !model.net.accepts(SMTP_HOST, 587) {
        assert!(Instant::now() < deadline, "the SMTP server does not listen");
        std::thread::sleep(Duration::from_millis(100));
    }
    // It refuses MAIL without AUTH (after STARTTLS, the certificate verified).
    let refused = model.net.exec(&[
        "/usr/bin/python3",
        "-c",
        MAIL_WITHOUT_AUTH,
        SMTP_HOST,
        &path(&ca.cert),
    ]);
    assert_eq!(
        String::from_utf8_lossy(&refused.stdout).trim(),
        "530",
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );

    // A release an earlier charm revision installed has no nodemailer: mail makes the charm
    // install the release again (the same locked tree, with it).
    let mailer = "/opt/parse-server/releases/9.10.0/node_modules/nodemailer";
    model
        .unit(&unit)
        .exec_ok(&["test", "-f", &format!("{mailer}/package.json")]);
    model.unit(&unit).exec_ok(&["rm", "-rf", mailer]);

    // juju deploy smtp-integrator; juju integrate parse-server smtp-integrator.
    let rel = model.relate("smtp", "smtp-integrator");
    model.remote_set(&rel, "smtp-integrator/0", &[], Some(SMTP_HOST));
    let secret = model.remote_secret_add(&rel, "smtp-integrator", &[("password", &password)]);
    model.remote_app_set(
        &rel,
        &[
            ("host", SMTP_HOST),
            ("port", "587"),
            ("user", SMTP_USER),
            ("password_id", secret.as_str()),
            ("auth_type", "plain"),
            ("transport_security", "starttls"),
            ("domain", "shop.example"),
            ("skip_ssl_verify", "False"),
        ],
    );
    model.config(&["verify-user-emails=true"]);
    model.settle();
    model.assert_all("active", "serving");
    wait_serving(&model, &haproxy.url("/parse/health"));
    let o: Value =
        serde_json::from_str(&model.unit(&unit).read_text("/etc/parse-server/config.json"))
            .unwrap();
    assert_eq!(o["verifyUserEmails"], true);
    assert_eq!(
        o["emailAdapter"]["module"],
        "/opt/parse-server/charm/smtp-email-adapter.js"
    );
    assert_eq!(o["publicServerURL"], "http://10.77.0.1:8080/parse");
    let version = model.unit(&unit).exec_ok(&[
        "node",
        "-p",
        &format!("require('{mailer}/package.json').version"),
    ]);
    assert_eq!(version.trim(), "10.6.1");

    // Before the site's CA is in the unit's store the server's certificate is refused: no
    // mail leaves, the journal says why, and the worker that tried keeps serving.
    let users = haproxy.url("/parse/users");
    let u = model.unit(&unit);
    let pid = u.main_pid("parse-server");
    let restarts = u.service_property("parse-server", "NRestarts");
    let early = serde_json::json!({
        "username": "bob", "password": "bob-pass-1", "email": "bob@shop.example"
    })
    .to_string();
    let (code, body) = http_from_net(
        &model,
        "POST",
        &users,
        &app_headers(),
        Some(early.as_bytes()),
    );
    assert_eq!(code, 201, "{body}");
    let deadline = Instant::now() + Duration::from_secs(30);
    let refused = loop {
        let journal = u.journal("parse-server");
        if let Some(line) = journal
            .lines()
            .find(|l| l.contains("smtp-email-adapter: a mail was not sent"))
        {
            break line.to_owned();
        }
        assert!(
            Instant::now() < deadline,
            "no failed mail in the journal:\n{journal}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(refused.contains("certificate"), "{refused}");
    assert!(!mails.join("0.json").exists(), "a mail left unverified");
    assert_eq!(u.main_pid("parse-server"), pid, "the worker died");
    assert_eq!(u.service_property("parse-server", "NRestarts"), restarts);
    let (code, _) = http_from_net(
        &model,
        "GET",
        &haproxy.url("/parse/health"),
        &app_headers(),
        None,
    );
    assert_eq!(code, 200);

    // The site's CA in the unit's CA store, as an operator installs it: the next mail is
    // verified against it (the adapter reads the store at each mail; nothing restarts).
    for (_, u) in &model.units {
        let out = u.exec_with_input(
            &["sh", "-c", "cat >> /etc/ssl/certs/ca-certificates.crt"],
            ca.cert_pem().as_bytes(),
        );
        assert!(out.status.success());
    }

    // Sign-up through haproxy: the verification mail arrives, sent with STARTTLS and AUTH.
    let signup = serde_json::json!({
        "username": "alice", "password": "old-pass-1", "email": "alice@shop.example"
    })
    .to_string();
    let sent = Instant::now();
    let (code, body) = http_from_net(
        &model,
        "POST",
        &users,
        &app_headers(),
        Some(signup.as_bytes()),
    );
    assert_eq!(code, 201, "{body}");
    let mail = wait_mail(&mails, 0, Duration::from_secs(60));
    record_figure(
        "email",
        "sign-up through haproxy to verification mail received",
        sent.elapsed().as_secs_f64(),
        "s",
    );
    assert_eq!(mail["rcpt_tos"], serde_json::json!(["alice@shop.example"]));
    assert_eq!(mail["mail_from"], "noreply@shop.example");
    assert_eq!(mail["subject"], "Please verify your e-mail for Shop");
    assert_eq!(mail["tls"], true);
    assert_eq!(mail["authenticated"], true);
    let link = link_in(&mail);
    assert!(
        link.starts_with("http://10.77.0.1:8080/parse/apps/shop/verify_email?token="),
        "{link}"
    );
    let login_url = haproxy.url("/parse/login");
    let (_, before) = login(&model, &login_url, "alice", "old-pass-1");
    assert_eq!(before["emailVerified"], false, "{before}");
    // parse-server answers a GET with the page itself (no redirect).
    let (code, landed, page) = browse(&model, &link);
    assert_eq!(code, 200, "{landed}: {page}");
    assert!(page.contains("Email verified!"), "{page}");
    assert!(page.contains("<h1>Shop</h1>"), "{page}");
    let (code, after) = login(&model, &login_url, "alice", "old-pass-1");
    assert_eq!(code, 200, "{after}");
    assert_eq!(after["emailVerified"], true, "{after}");

    // Password reset: the mail's link leads to parse-server's page through haproxy; its form
    // posted as a browser posts it sets the new password.
    let reset = serde_json::json!({"email": "alice@shop.example"}).to_string();
    let sent = Instant::now();
    let (code, body) = http_from_net(
        &model,
        "POST",
        &haproxy.url("/parse/requestPasswordReset"),
        &app_headers(),
        Some(reset.as_bytes()),
    );
    assert_eq!(code, 200, "{body}");
    let mail = wait_mail(&mails, 1, Duration::from_secs(60));
    record_figure(
        "email",
        "password-reset request through haproxy to mail received",
        sent.elapsed().as_secs_f64(),
        "s",
    );
    assert_eq!(mail["subject"], "Password Reset for Shop");
    let link = link_in(&mail);
    assert!(
        link.starts_with("http://10.77.0.1:8080/parse/apps/shop/request_password_reset?token="),
        "{link}"
    );
    let (code, page_url, page) = browse(&model, &link);
    assert_eq!(code, 200, "{page_url}: {page}");
    assert!(
        page.contains("new_password"),
        "not the choose-password page: {page}"
    );
    let action = attribute(&page, "id='form'", "action");
    assert_eq!(
        action, "http://10.77.0.1:8080/parse/apps/shop/request_password_reset",
        "the page's form posts through the load balancer"
    );
    let token = attribute(&page, "name=\"token\"", "value");
    let username = attribute(&page, "name=\"username\"", "value");
    let locale = attribute(&page, "name=\"locale\"", "value");
    let posted = form(&[
        ("utf-8", "✓"),
        ("username", &username),
        ("token", &token),
        ("locale", &locale),
        ("new_password", "new-pass-2"),
        ("confirm_new_password", "new-pass-2"),
    ]);
    let out = model.net.exec(&[
        "curl",
        "-sS",
        "-L",
        "--max-time",
        "20",
        "-o",
        "-",
        "-w",
        "\n%{http_code}",
        "-H",
        "Content-Type: application/x-www-form-urlencoded",
        "--data-raw",
        &posted,
        &action,
    ]);
    let answer = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        answer.ends_with("\n200") && answer.contains("Your password has been updated."),
        "{answer} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (code, body) = login(&model, &login_url, "alice", "new-pass-2");
    assert_eq!(code, 200, "the new password: {body}");
    let (code, body) = login(&model, &login_url, "alice", "old-pass-1");
    assert_ne!(code, 200, "the old password still works: {body}");

    assert_eq!(model.unit(&unit).main_pid("parse-server"), pid, "restarted");
    // Nothing failed to authenticate, and the password is nowhere on the unit.
    assert!(
        !mails.join("auth-failures").exists(),
        "an AUTH attempt failed"
    );
    let found = secret_leaks(&model, &[&password]);
    assert!(found.is_empty(), "the SMTP password shows in: {found:?}");
    model.teardown();
}
