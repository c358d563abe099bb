//! Parse Dashboard end to end: three booted units on PostgreSQL behind haproxy terminating
//! TLS (parse-server's route on one port, the dashboard's own `dashboard-route` on another;
//! the dashboard's page needs a secure context: over plain HTTP from another machine it
//! fails at once, `crypto.randomUUID is not a function`), `dashboard=true`,
//! users added by the leader's action (their passwords read back from the Juju secrets the
//! action names), and Debian's Chromium driven through tests/browser/dashboard.js from the
//! model network: a wrong password refused; a login; the class browser showing objects saved
//! through the REST API; a row added and a cell edited in the grid, both read back through
//! the REST API; the session still good when haproxy sends the browser to other units (the
//! first two taken out of the dashboard's route); the read-only user seeing the data and
//! refused a write; a removed user refused; then `dashboard=false` taking it all away. The
//! dashboard's memory is measured beside parse-server's, the time from `dashboard=true` to
//! the login page through haproxy, and no password, hash or key may show anywhere.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::browser::{cell_of, Browser};
use crate::model::{http_from_net, secret_leaks, Haproxy, Model, Postgres};
use crate::scale_out::{behind_haproxy, relate_postgresql, three_units, wait_serving};
use crate::tls::TestCa;
use jujusim::kit::{percent_encode, record_figure, work_dir, Network};

const APP_ID: &str = "shop";
/// parse-server through haproxy, plain (the test's REST calls) and over TLS (the public URL
/// the browser calls).
const API: &str = "http://10.77.0.1:8080/parse";
const API_TLS_PORT: u16 = 8443;
const API_TLS: &str = "https://10.77.0.1:8443";
/// The dashboard's route: its own haproxy frontend, over TLS.
const DASH_PORT: u16 = 8444;
const DASH: &str = "https://10.77.0.1:8444";

/// Whether `url` answers 200 from the model network (TLS not verified: the test's CA).
fn answers(model: &Model, url: &str) -> bool {
    let out = model.net.exec(&[
        "curl",
        "-sk",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "--max-time",
        "5",
        url,
    ]);
    String::from_utf8_lossy(&out.stdout) == "200"
}

/// A REST call through haproxy from the model network with the master key.
fn rest(model: &Model, key: &str, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let headers = [
        ("X-Parse-Application-Id", APP_ID),
        ("X-Parse-Master-Key", key),
        ("Content-Type", "application/json"),
    ];
    let body = body.map(|b| b.to_string());
    let (code, text) = http_from_net(
        model,
        method,
        &format!("{API}{path}"),
        &headers,
        body.as_deref().map(str::as_bytes),
    );
    (code, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn find(model: &Model, key: &str, name: &str) -> Vec<Value> {
    let (code, found) = rest(
        model,
        key,
        "GET",
        &format!(
            "/classes/Fruit?where={}",
            percent_encode(&json!({ "name": name }).to_string())
        ),
        None,
    );
    assert_eq!(code, 200, "{found}");
    found["results"].as_array().unwrap().clone()
}

/// `juju run <unit> <action> <args>`: its results.
fn action(model: &Model, unit: &str, args: &[&str]) -> Result<Value, String> {
    let out = model.unit(unit).sim("action", args);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    if out.status.success() && v["status"] != "failed" {
        Ok(v["results"].clone())
    } else {
        Err(format!(
            "{} {}",
            v["message"],
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// `juju show-secret --reveal <uri or label>`: one key.
fn reveal(model: &Model, what: &str, key: &str) -> String {
    model
        .ok("secret-reveal", &[what, "--key", key])
        .trim()
        .to_owned()
}

/// The median wall time (ms) and peak memory (MiB) of `n` update-status hooks on `unit`.
fn update_status(model: &Model, unit: &str, n: usize) -> (f64, f64) {
    let u = model.unit(unit);
    for _ in 0..n {
        u.hook("update-status", &[]);
    }
    let mut runs: Vec<(f64, f64)> = u
        .read_unit_file("hook-times.jsonl")
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["hook"] == "update-status")
        .filter_map(|v| Some((v["ms"].as_f64()?, v["max_rss_kb"].as_f64()? / 1024.0)))
        .collect();
    runs = runs.split_off(runs.len() - n);
    runs.sort_by(|a, b| a.0.total_cmp(&b.0));
    let peak = runs.iter().map(|r| r.1).fold(0.0, f64::max);
    (runs[n / 2].0, peak)
}

/// PSS (MiB) of every process of a systemd service on a unit.
fn service_pss_mib(model: &Model, unit: &str, service: &str) -> f64 {
    let script = format!(
        "cg=$(systemctl show -p ControlGroup --value {service}); \
         for p in $(cat /sys/fs/cgroup$cg/cgroup.procs); do \
         awk '/^Pss:/ {{s+=$2}} END {{print s+0}}' /proc/$p/smaps_rollup; done"
    );
    let out = model.unit(unit).exec_ok(&["sh", "-c", &script]);
    out.lines()
        .filter_map(|l| l.trim().parse::<f64>().ok())
        .sum::<f64>()
        / 1024.0
}

#[test]
fn dashboard_on_three_units_behind_haproxy_in_a_real_browser() {
    let started = Instant::now();
    let artifacts = work_dir().join("artifacts/dashboard");
    let _ = std::fs::remove_dir_all(&artifacts);
    std::fs::create_dir_all(&artifacts).unwrap();

    let mut model = Model::new("dashboard");
    let pg = Postgres::start(&mut model, 5432);
    let units = three_units(&mut model);
    // The browser is on the model network's gateway: haproxy tells parse-server that address.
    model.config(&[
        "master-key-ips=127.0.0.1,::1,10.77.0.1",
        "read-only-master-key-ips=127.0.0.1,::1,10.77.0.1",
        "dashboard-url=https://dashboard.test",
        &format!("public-server-url={API_TLS}/parse"),
    ]);
    model.settle();
    relate_postgresql(&mut model, &pg);
    let (lb, _, _) = behind_haproxy(&mut model);
    wait_serving(&model, &format!("{API}/health"));
    // haproxy with a certificate for its address, as the browser reaches it.
    let ca = TestCa::new(&model.dir, "dash");
    let pem = ca
        .issue_server("gateway", Network::GATEWAY)
        .bundle(&model.dir.join("gateway.pem"));
    let mut api_tls = Haproxy::named(&model, API_TLS_PORT, "api-tls-haproxy");
    api_tls.tls = Some(pem.clone());
    let cfg = api_tls.render_route(&model.app_bag(&lb), &model.route_addresses(&lb));
    api_tls.apply(&mut model, &cfg);
    assert!(answers(&model, &format!("{API_TLS}/parse/health")));
    let master_key = model.master_key();
    let dash_rel = model.relate("dashboard-route", "haproxy");
    model.remote_set(&dash_rel, "haproxy/0", &[], Some(Network::GATEWAY));
    model.settle();

    // Objects saved through the REST API, with names no page shows by chance.
    let tag = jujusim::kit::random_alnum(6).to_lowercase();
    let apple = format!("apple-{tag}");
    let pear = format!("pear-{tag}");
    for (name, qty) in [(&apple, 3), (&pear, 5)] {
        let (code, body) = rest(
            &model,
            &master_key,
            "POST",
            "/classes/Fruit",
            Some(json!({"name": name, "qty": qty})),
        );
        assert_eq!(code, 201, "{body}");
    }

    // `juju config parse-server dashboard=true` to the login page through haproxy.
    let t0 = Instant::now();
    model.config(&["dashboard=true"]);
    model.settle();
    model.assert_all("active", "dashboard on port 4040");
    let mut dash_haproxy = Haproxy::named(&model, DASH_PORT, "dashboard-haproxy");
    dash_haproxy.tls = Some(pem);
    let all = model.route_addresses(&dash_rel);
    assert_eq!(all.len(), 3, "every unit in the dashboard's route");
    let route = model.app_bag(&dash_rel);
    assert_eq!(route["service"], "\"parse-server-dashboard\"");
    assert_eq!(route["hostname"], "\"dashboard.test\"");
    assert!(!route.contains_key("allow_http"), "https only");
    dash_haproxy.apply(&mut model, &dash_haproxy.render_route(&route, &all));
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if answers(&model, &format!("{DASH}/login")) {
            break;
        }
        assert!(Instant::now() < deadline, "the login page never answered");
        std::thread::sleep(Duration::from_millis(200));
    }
    let to_login = t0.elapsed();
    for u in &units {
        let mode =
            model
                .unit(u)
                .exec_ok(&["stat", "-c", "%a %U:%G", "/etc/parse-server/dashboard.json"]);
        assert_eq!(mode.trim(), "640 root:parse-server");
    }

    // Users: the leader's to add; the passwords in the secrets the action names.
    let leader = model.leader();
    let other = units.iter().find(|u| **u != leader).unwrap().clone();
    let refused = action(&model, &other, &["add-dashboard-user", "username=mallory"]);
    assert!(
        refused
            .as_ref()
            .is_err_and(|e| e.contains("only the leader")),
        "{refused:?}"
    );
    let alice = action(&model, &leader, &["add-dashboard-user", "username=alice"]).unwrap();
    let audit = action(
        &model,
        &leader,
        &["add-dashboard-user", "username=audit", "read-only=true"],
    )
    .unwrap();
    assert_eq!(audit["read-only"], "true");
    let uri = |r: &Value| r["secret-id"].as_str().unwrap().to_owned();
    let alice_password = reveal(&model, &uri(&alice), "password");
    let audit_password = reveal(&model, &uri(&audit), "password");
    let alice_hash = reveal(&model, &uri(&alice), "bcrypt-hash");
    assert_eq!(alice_password.len(), 32);
    let dup = action(&model, &leader, &["add-dashboard-user", "username=alice"]);
    assert!(dup.is_err_and(|e| e.contains("exists already")));
    model.settle();

    // The browser, on the model network, may reach only the dashboard and parse-server.
    let browser_started = Instant::now();
    let mut b = Browser::on_network(
        &model,
        &[
            "--ignore-https-errors",
            "--allow-origin",
            DASH,
            "--allow-origin",
            API_TLS,
        ],
        "browser.log",
    );
    assert!(b.version.contains("Chrome/"), "{}", b.version);

    let (in_, url, message) = b.login(DASH, "alice", "not-the-password");
    b.screenshot(&artifacts.join("1-login-refused.png"));
    assert!(!in_, "a wrong password logged in ({url})");
    if message != "Invalid username or password" {
        panic!(
            "the refused login's message is {message:?}; the page's requests: {:?}",
            b.requests()
        );
    }
    let (in_, url, message) = b.login(DASH, "alice", &alice_password);
    assert!(in_, "alice did not log in: {url} {message}");
    let cookies = b.cookies();
    let session = cookies
        .iter()
        .find(|c| c["name"] == "parse_dash")
        .unwrap_or_else(|| panic!("no parse_dash cookie: {cookies:?}"));
    assert_eq!(session["httpOnly"], true, "{session}");

    // The objects saved through REST, in the grid.
    assert_eq!(b.open_class(DASH, None, "Fruit"), 2);
    let (columns, rows) = b.grid();
    assert_eq!(cell_of(&columns, &rows, ("name", &apple), "qty"), Some("3"));
    assert_eq!(cell_of(&columns, &rows, ("name", &pear), "qty"), Some("5"));
    b.screenshot(&artifacts.join("2-grid.png"));

    // A row added and saved, a saved cell edited: parse-server has both.
    let kiwi = format!("kiwi-{tag}");
    b.add_row();
    assert_eq!(b.edit_cell(0, "name", &kiwi), kiwi);
    assert_eq!(b.edit_cell(0, "qty", "42"), "42");
    let (saved, notice) = b.save_row();
    assert!(saved, "the new row was not saved: {notice}");
    let found = find(&model, &master_key, &kiwi);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0]["qty"], 42);
    let (_, rows) = b.grid();
    let apple_row = rows
        .iter()
        .position(|r| r.iter().any(|c| c == &apple))
        .unwrap();
    let green = format!("green-apple-{tag}");
    assert_eq!(b.edit_cell(apple_row, "name", &green), green);
    assert_eq!(find(&model, &master_key, &green).len(), 1);
    b.screenshot(&artifacts.join("3-added-and-edited.png"));
    // The page talks to parse-server itself (with the master key), at its public URL, and
    // to nothing else but the dashboard (Google Fonts was asked for and blocked).
    let requests = b.requests();
    for r in &requests {
        let url = r["url"].as_str().unwrap();
        assert!(
            url.starts_with(DASH) || url.starts_with(API_TLS) || r["failure"] == "blocked",
            "the page reached {url}"
        );
    }
    assert!(
        requests
            .iter()
            .any(|r| r["url"] == format!("{API_TLS}/parse/classes/Fruit") && r["status"] == 201),
        "the browser created the row itself through the public URL"
    );

    // The session holds whichever unit serves: the first unit, then the second, out of the
    // dashboard's route; the page reloads on the last one still logged in.
    for keep in [&all[1..], &all[2..]] {
        dash_haproxy.reload(&mut model, &dash_haproxy.render_route(&route, keep));
        std::thread::sleep(Duration::from_millis(500));
        assert_eq!(
            b.open_class(DASH, None, "Fruit"),
            3,
            "logged out when haproxy sent the browser to {keep:?}"
        );
    }
    let text = b.text();
    assert!(text.contains(&green) && text.contains(&kiwi), "{text}");
    b.screenshot(&artifacts.join("4-on-the-third-unit.png"));
    dash_haproxy.reload(&mut model, &dash_haproxy.render_route(&route, &all));

    // The read-only user: sees the data, cannot add (parse-server refuses the read-only key's
    // write with 119).
    let out = b.goto(&format!("{DASH}/logout"));
    assert!(out["url"].as_str().unwrap().ends_with("/login"), "{out}");
    let (in_, url, message) = b.login(DASH, "audit", &audit_password);
    assert!(in_, "audit did not log in: {url} {message}");
    assert_eq!(b.open_class(DASH, None, "Fruit"), 3);
    b.add_row();
    b.edit_cell(0, "name", &format!("cherry-{tag}"));
    let (saved, notice) = b.save_row();
    b.screenshot(&artifacts.join("5-read-only-refused.png"));
    assert!(!saved, "the read-only user saved a row");
    assert_eq!(notice, "Permission denied");
    let (_, count) = rest(
        &model,
        &master_key,
        "GET",
        &format!(
            "/classes/Fruit?count=1&limit=0&where={}",
            percent_encode(r#"{"name":{"$exists":true}}"#)
        ),
        None,
    );
    assert_eq!(count["count"], 3, "nothing added by the read-only user");

    // A removed user is refused.
    action(
        &model,
        &leader,
        &["remove-dashboard-user", "username=alice"],
    )
    .unwrap();
    model.settle();
    b.goto(&format!("{DASH}/logout"));
    let (in_, _, _) = b.login(DASH, "alice", &alice_password);
    assert!(!in_, "a removed user logged in");
    let (_, _, chromium_pss) = b.memory();
    b.quit();
    let browser_wall = browser_started.elapsed();

    // Memory: the dashboard beside parse-server (one worker), per unit.
    for u in &units {
        let dash = service_pss_mib(&model, u, "parse-dashboard");
        let server = service_pss_mib(&model, u, "parse-server");
        assert!(dash > 10.0 && server > 10.0, "{u}: {dash} {server}");
        record_figure(
            "dashboard",
            &format!("{u} parse-dashboard PSS"),
            dash,
            "MiB",
        );
        record_figure("dashboard", &format!("{u} parse-server PSS"), server, "MiB");
    }
    record_figure(
        "dashboard",
        "chromium PSS (sum)",
        chromium_pss as f64 / 1024.0,
        "MiB",
    );

    // No password, hash or key anywhere a unit shows or logs.
    let read_only_key = reveal(&model, "dashboard", "read-only-master-key");
    let cookie_secret = reveal(&model, "dashboard", "cookie-session-secret");
    let leaks = secret_leaks(
        &model,
        &[
            &alice_password,
            &audit_password,
            &alice_hash,
            &master_key,
            &read_only_key,
            &cookie_secret,
        ],
    );
    assert!(leaks.is_empty(), "secrets shown in {leaks:?}");
    let driver_log = std::fs::read_to_string(model.dir.join("browser.log")).unwrap_or_default();
    assert!(!driver_log.contains(&alice_password) && !driver_log.contains(&audit_password));

    // update-status with the dashboard on (a full reconcile: users and keys live in the peer
    // relation and in secrets) against off (the steady check), same run.
    let (on_ms, on_mib) = update_status(&model, &leader, 5);

    // Off: the service stopped and disabled, its files and port gone, on every unit.
    model.config(&["dashboard=false"]);
    model.settle();
    model.assert_all("active", "serving");
    for u in &units {
        let unit = model.unit(u);
        let state = unit.exec(&["systemctl", "is-enabled", "parse-dashboard"]);
        assert!(!state.status.success(), "{u}: still enabled");
        let files = unit.exec_ok(&[
            "sh",
            "-c",
            "ls /etc/parse-server/dashboard.json /etc/systemd/system/parse-dashboard.service \
             /opt/parse-server/parse-dashboard 2>/dev/null | wc -l",
        ]);
        assert_eq!(files.trim(), "0", "{u}: files left");
    }
    wait_serving(&model, &format!("{API}/health"));
    let (off_ms, off_mib) = update_status(&model, &leader, 5);
    record_figure(
        "dashboard",
        "update-status, dashboard on (median of 5)",
        on_ms,
        "ms",
    );
    record_figure(
        "dashboard",
        "update-status, dashboard off (median of 5)",
        off_ms,
        "ms",
    );
    record_figure(
        "dashboard",
        "update-status on/off wall time",
        on_ms / off_ms,
        "ratio",
    );
    record_figure(
        "dashboard",
        "update-status peak memory on / off",
        on_mib / off_mib,
        "ratio",
    );
    model.teardown();

    record_figure(
        "dashboard",
        "dashboard=true to the login page through haproxy (3 units)",
        to_login.as_secs_f64(),
        "s",
    );
    record_figure(
        "dashboard",
        "browser session wall time",
        browser_wall.as_secs_f64(),
        "s",
    );
    println!(
        "dashboard_on_three_units_behind_haproxy_in_a_real_browser: {:.1} s (dashboard=true \
         to login page {:.1} s, browser {:.1} s); screenshots in {}",
        started.elapsed().as_secs_f64(),
        to_login.as_secs_f64(),
        browser_wall.as_secs_f64(),
        artifacts.display()
    );
}
