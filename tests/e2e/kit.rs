//! Self-tests of this charm's e2e fixtures (model.rs, tls.rs; the simulator's own kit tests itself): the fixtures other tests build on, checked
//! against the real servers on a model network, with no charm hook where none is needed.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::model::{
    sql_literal, start_mongo_auth_server, Haproxy, HaproxyProcess, LoadRun, Model, Postgres,
    RemoteClient,
};
use crate::tls::{start_mongo_auth_server_tls, TestCa};
use jujusim::kit::{random_alnum, Network};

/// `openssl s_client` from the model network to `10.77.0.1:<port>`, trusting only `ca`
/// (`-verify_return_error`: a certificate that does not verify ends the handshake), with
/// `input` sent once the handshake is done. `(exit code, stdout, stderr)`.
fn s_client(model: &Model, port: u16, ca: &TestCa, input: &[u8]) -> (i32, Vec<u8>, String) {
    let msg = model.dir.join("s_client.in");
    std::fs::write(&msg, input).unwrap();
    // stdin: the input, then a pause for the answer, then EOF (s_client leaves at EOF).
    let script = format!(
        "(cat {msg}; sleep 1) | openssl s_client -brief -connect {gw}:{port} -CAfile {ca} \
         -verify_return_error -verify_ip {gw}",
        msg = msg.display(),
        gw = Network::GATEWAY,
        ca = ca.cert.display()
    );
    let out = model.net.exec(&["bash", "-c", &script]);
    (
        out.status.code().unwrap_or(-1),
        out.stdout,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A MongoDB `isMaster` command (OP_MSG, one body section) on database `admin`: what a
/// driver sends first, answered before authentication.
fn is_master_op_msg() -> Vec<u8> {
    let mut doc = Vec::new();
    doc.push(0x10); // int32
    doc.extend_from_slice(b"isMaster\0");
    doc.extend_from_slice(&1i32.to_le_bytes());
    doc.push(0x02); // string
    doc.extend_from_slice(b"$db\0");
    doc.extend_from_slice(&6i32.to_le_bytes());
    doc.extend_from_slice(b"admin\0");
    doc.push(0);
    let doc_len = (doc.len() + 4) as i32;
    let mut body = doc_len.to_le_bytes().to_vec();
    body.extend_from_slice(&doc);
    let mut msg = Vec::new();
    let total = (16 + 4 + 1 + body.len()) as i32;
    msg.extend_from_slice(&total.to_le_bytes());
    msg.extend_from_slice(&1i32.to_le_bytes()); // requestID
    msg.extend_from_slice(&0i32.to_le_bytes()); // responseTo
    msg.extend_from_slice(&2013i32.to_le_bytes()); // OP_MSG
    msg.extend_from_slice(&0u32.to_le_bytes()); // flagBits
    msg.push(0); // section kind 0: body
    msg.extend_from_slice(&body);
    msg
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn kit_tls_postgres_and_a_tls_front_for_mongodb() {
    let started = Instant::now();
    let mut model = Model::new("kit-tls");
    let ca1 = TestCa::new(&model.dir, "ca1");
    let ca2 = TestCa::new(&model.dir, "ca2");
    assert_ne!(ca1.cert_pem(), ca2.cert_pem());

    // PostgreSQL with TLS: verify-full against the CA works and is encrypted; a connection
    // without TLS is refused by pg_hba; another CA's file does not verify the server.
    let pg = Postgres::start_tls(&mut model, 5432, &ca1);
    let password = random_alnum(24);
    pg.psql(&format!(
        "CREATE ROLE kit LOGIN PASSWORD {};",
        sql_literal(&password)
    ))
    .unwrap();
    let verify = |ca: &TestCa| format!("sslmode=verify-full sslrootcert={}", ca.cert.display());
    let mine = "SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid();";
    let out = pg
        .psql_from_net(&model, "kit", &password, "postgres", &verify(&ca1), mine)
        .unwrap();
    assert!(out.starts_with("t|TLSv1."), "{out}");
    let err = pg
        .psql_from_net(
            &model,
            "kit",
            &password,
            "postgres",
            "sslmode=disable",
            "SELECT 1;",
        )
        .unwrap_err();
    assert!(
        err.contains("no pg_hba.conf entry") && err.contains("no encryption"),
        "{err}"
    );
    let err = pg
        .psql_from_net(
            &model,
            "kit",
            &password,
            "postgres",
            &verify(&ca2),
            "SELECT 1;",
        )
        .unwrap_err();
    assert!(err.contains("certificate verify failed"), "{err}");
    let err = pg
        .psql_from_net(
            &model,
            "kit",
            "wrong",
            "postgres",
            &verify(&ca1),
            "SELECT 1;",
        )
        .unwrap_err();
    assert!(err.contains("password authentication failed"), "{err}");

    // The counting method sees an open TLS connection of the role, and nothing after it.
    assert_eq!(pg.connections_of("kit"), (0, 0));
    std::thread::scope(|s| {
        let held = s.spawn(|| {
            pg.psql_from_net(
                &model,
                "kit",
                &password,
                "postgres",
                &verify(&ca1),
                "SELECT pg_sleep(3);",
            )
        });
        let deadline = Instant::now() + Duration::from_secs(3);
        let mut seen = (0, 0);
        while Instant::now() < deadline && seen == (0, 0) {
            seen = pg.connections_of("kit");
            std::thread::sleep(Duration::from_millis(50));
        }
        assert_eq!(seen, (1, 1), "one connection of kit, encrypted");
        held.join().unwrap().unwrap();
    });
    assert_eq!(pg.connections_of("kit"), (0, 0));

    // A rotation: the server's certificate from the second CA, the first no longer verifies.
    pg.switch_cert(&ca2);
    let out = pg
        .psql_from_net(&model, "kit", &password, "postgres", &verify(&ca2), mine)
        .unwrap();
    assert!(out.starts_with("t|"), "{out}");
    let err = pg
        .psql_from_net(
            &model,
            "kit",
            &password,
            "postgres",
            &verify(&ca1),
            "SELECT 1;",
        )
        .unwrap_err();
    assert!(err.contains("certificate verify failed"), "{err}");

    // The SCRAM MongoDB server behind a TLS front: a handshake verified against the CA (and
    // the address in the certificate), a MongoDB answer through it; the other CA fails.
    let mongo_password = random_alnum(24);
    let mut front = start_mongo_auth_server_tls(
        &mut model,
        27017,
        27018,
        &[("kit", "admin", "readWrite@parse", mongo_password.as_str())],
        &ca1,
    );
    let (code, out, err) = s_client(&model, 27017, &ca1, &is_master_op_msg());
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("Verification: OK"), "{err}");
    assert!(
        contains(&out, b"maxWireVersion"),
        "{}",
        String::from_utf8_lossy(&out)
    );
    let (code, _, err) = s_client(&model, 27017, &ca2, b"");
    assert_ne!(code, 0, "ca2 must not verify ca1's certificate: {err}");
    assert!(err.contains("verify error"), "{err}");
    // Nothing else answers on the model network's side: the plain server is on loopback.
    let plain = model.net.exec(&[
        "bash",
        "-c",
        &format!("exec 3<>/dev/tcp/{}/27018", Network::GATEWAY),
    ]);
    assert!(!plain.status.success());

    // CA rotation of the front, the database untouched.
    let java_before = mongo_pids(&model);
    assert_eq!(java_before.len(), 1, "{java_before:?}");
    let cert2 = ca2.issue_server("mongodb", Network::GATEWAY);
    front.switch_cert(&mut model, &cert2);
    let (code, out, err) = s_client(&model, 27017, &ca2, &is_master_op_msg());
    assert_eq!(code, 0, "{err}");
    assert!(contains(&out, b"maxWireVersion"));
    let (code, _, err) = s_client(&model, 27017, &ca1, b"");
    assert_ne!(code, 0, "ca1 after the rotation: {err}");
    assert_eq!(
        mongo_pids(&model),
        java_before,
        "the database was not restarted"
    );

    // A plain SCRAM server alongside (the existing fixture) still works as before.
    start_mongo_auth_server(
        &mut model,
        27019,
        &[("other", "admin", "readWrite@parse", mongo_password.as_str())],
    );
    model.teardown();
    println!(
        "kit_tls_postgres_and_a_tls_front_for_mongodb: {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

/// PIDs of the SCRAM MongoDB servers of this model (java processes naming its users file).
fn mongo_pids(model: &Model) -> Vec<u32> {
    let users = model.dir.join("mongo-users").display().to_string();
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let cmd = String::from_utf8_lossy(&cmd);
        if cmd.contains("MongoAuthServerMain") && cmd.contains(&users) {
            out.push(pid);
        }
    }
    out
}

/// The route our charm publishes on `haproxy-route`, as JSON-encoded databag values.
fn route(ports: &[u16], rewrites: Value) -> serde_json::Map<String, Value> {
    let mut bag = serde_json::Map::new();
    for (k, v) in [
        ("service", json!("kit")),
        ("ports", json!(ports)),
        ("paths", json!(["/parse"])),
        (
            "check",
            json!({"path": "/parse/health", "interval": 1, "rise": 1, "fall": 2}),
        ),
        ("retry", json!({"count": 3, "redispatch": true})),
        ("rewrites", rewrites),
    ] {
        bag.insert(k.to_owned(), Value::from(v.to_string()));
    }
    bag
}

/// haproxy answering every request itself on `ports` of the gateway with what it received:
/// `X-Forwarded-For`, the `X-Kit` header, path and query, and its own port.
fn echo_servers(model: &mut Model, ports: &[u16]) -> HaproxyProcess {
    let mut cfg = String::from(
        "global\n    maxconn 4096\n\ndefaults\n    mode http\n    timeout connect 5s\n    timeout client 60s\n    timeout server 60s\n",
    );
    for p in ports {
        cfg.push_str(&format!(
            "\nfrontend echo_{p}\n    bind {gw}:{p}\n    http-request return status 200 content-type text/plain lf-string \"xff=%[req.hdr(x-forwarded-for)] kit=%[req.hdr(x-kit)] path=%[path] query=%[query] port={p}\\n\"\n",
            gw = Network::GATEWAY
        ));
    }
    let mut echo = HaproxyProcess::new(model.dir.join("echo.cfg"), "echo.log");
    echo.start(&mut model.net, &cfg, Network::GATEWAY, ports[0]);
    echo
}

#[test]
fn kit_haproxy_rewrites_reload_under_load_and_a_remote_client() {
    let started = Instant::now();
    let mut model = Model::new("kit-lb");
    let _echo = echo_servers(&mut model, &[18081, 18082]);
    let rewrites = json!([
        {"method": "set-header", "header": "X-Kit", "expression": "rewritten"},
        {"method": "set-path", "expression": "/parse/rewritten"},
        {"method": "set-query", "expression": "k=v"},
    ]);
    let mut haproxy = Haproxy::new(&model, 8080);
    let units = vec![Network::GATEWAY.to_owned()];
    let one = haproxy.render_route(&route(&[18081], rewrites.clone()), &units);
    // The rewrites come after the check and retry lines, before the servers.
    let at = |needle: &str| {
        one.find(needle)
            .unwrap_or_else(|| panic!("{needle:?} not in:\n{one}"))
    };
    assert!(at("    option forwardfor\n") < at("    retries 3\n"));
    assert!(
        at("    option httpchk GET /parse/health\n")
            < at("    http-request set-header X-Kit rewritten\n")
    );
    assert!(
        at("    http-request set-header X-Kit rewritten\n")
            < at("    http-request set-path /parse/rewritten\n")
    );
    assert!(
        at("    http-request set-path /parse/rewritten\n") < at("    http-request set-query k=v\n")
    );
    assert!(
        at("    http-request set-query k=v\n")
            < at("    server kit_18081_0 10.77.0.1:18081 check inter 1s rise 1 fall 2\n")
    );
    haproxy.apply(&mut model, &one);

    // A client at its own address on the model network: haproxy forwards its address.
    let client = RemoteClient::add(&model, "10.77.0.200");
    let url = haproxy.url("/parse/classes/x?limit=1");
    let (code, body) = client.http(&model, "GET", &url, &[("X-Kit", "original")], None);
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        body.trim(),
        "xff=10.77.0.200 kit=rewritten path=/parse/rewritten query=k=v port=18081"
    );

    // Without forwardfor, two ports, no rewrites: a reload applies it.
    haproxy.forwardfor = false;
    let two = haproxy.render_route(&route(&[18081, 18082], json!([])), &units);
    assert!(
        !two.contains("forwardfor") && !two.contains("http-request set-path"),
        "{two}"
    );
    assert!(
        two.contains("    server kit_18081_0 10.77.0.1:18081 check"),
        "{two}"
    );
    assert!(
        two.contains("    server kit_18082_0 10.77.0.1:18082 check"),
        "{two}"
    );
    haproxy.reload(&mut model, &two);
    let mut ports = std::collections::BTreeSet::new();
    for _ in 0..6 {
        let (code, body) = client.http(&model, "GET", &url, &[("X-Kit", "original")], None);
        assert_eq!(code, 200, "{body}");
        assert!(
            body.starts_with("xff= kit=original path=/parse/classes/x query=limit=1 port="),
            "{body}"
        );
        ports.insert(body.trim().rsplit('=').next().unwrap().to_owned());
    }
    assert_eq!(ports.len(), 2, "both servers answer: {ports:?}");

    // Reloads while a load runs: not one failed request.
    haproxy.forwardfor = true;
    let one = haproxy.render_route(&route(&[18081], rewrites), &units);
    let load = LoadRun::start(&model, &haproxy.url("/parse/health"), "kit", 10, 16);
    std::thread::sleep(Duration::from_millis(1500));
    for cfg in [&one, &two, &one, &two, &one] {
        haproxy.reload(&mut model, cfg);
        std::thread::sleep(Duration::from_millis(1200));
    }
    let load = load.finish();
    println!(
        "reloads under load: {} requests, {} failed, {:.0} req/s",
        load.requests, load.failed, load.per_second
    );
    assert!(load.requests > 1000, "{load:?}");
    assert_eq!(load.failed, 0, "a reload failed requests: {load:?}");

    client.remove(&model);
    let addrs = model.net.exec(&["ip", "-o", "addr", "show"]);
    assert!(!String::from_utf8_lossy(&addrs.stdout).contains("10.77.0.200"));
    model.teardown();
    println!(
        "kit_haproxy_rewrites_reload_under_load_and_a_remote_client: {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

#[test]
fn kit_model_machine_down_settle_step_and_run_hook() {
    let started = Instant::now();
    let mut model = Model::new("kit-down");
    let unit = model.add_unit();
    // Powered off before its first hook: everything waits, settle succeeds.
    model.machine_down(&unit);
    let queued = model.state()["queue"]["events"].as_array().unwrap().len();
    assert!(queued >= 4, "install .. start: {queued}");
    let out = model.run("settle", &[]);
    assert!(out.status.success());
    assert!(out.stdout.is_empty());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "{unit}: its machine is not running; {queued} events wait for it"
        )),
        "{err}"
    );
    assert!(!model.settle_step(), "nothing runnable");
    // Back up: one hook at a time until nothing is runnable.
    model.machine_up(&unit);
    let mut steps = 1;
    while model.settle_step() {
        steps += 1;
        assert!(steps < 50, "settle_step never ends");
    }
    assert!(steps >= queued, "{steps} steps for {queued} events");
    assert!(model.state()["queue"]["events"]
        .as_array()
        .unwrap()
        .is_empty());
    model.assert_all("blocked", "add a relation to mongodb or postgresql");
    model.run_hook(&unit, "update-status");
    model.assert_all("blocked", "add a relation to mongodb or postgresql");
    // An event for a powered-off unit waits for it; the unit is torn down while off.
    model.machine_down(&unit);
    model.config(&["app-id=kit"]);
    assert_eq!(model.settle(), "");
    model.teardown();
    println!(
        "kit_model_machine_down_settle_step_and_run_hook: {:.1} s",
        started.elapsed().as_secs_f64()
    );
}
