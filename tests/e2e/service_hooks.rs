//! The code every parse-server process loads first (charm/node/service-hooks.js), under the
//! machine's Node in front of a plain HTTP server standing in for parse-server: the balancer's
//! check answers as `<mount>/health` does, and while the process drains after SIGTERM only
//! the balancer's check fails; clients' requests, `<mount>/health` included, are served.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const REPO: &str = env!("CARGO_MANIFEST_DIR");
const CHECK: &str = "/parse-server-charm/ready";

/// `GET path` on 127.0.0.1:port: the status code and the body.
fn get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: unit\r\n\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    let code = out.split(' ').nth(1)?.parse().ok()?;
    let body = out.split_once("\r\n\r\n").map(|(_, b)| b.to_owned())?;
    Some((code, body))
}

fn node_available() {
    let ok = Command::new("node")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "node is not on the PATH: `make prereqs` installs it (this test needs the machine's Node)"
    );
}

#[test]
fn only_the_balancers_check_fails_while_a_process_drains() {
    node_available();
    let dir = Path::new(REPO)
        .join("target/e2e")
        .join(format!("service-hooks-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("options.json"), r#"{"mountPath": "/shop/"}"#).unwrap();
    // Answers every request with the URL it saw (after the hooks had their say).
    std::fs::write(
        dir.join("server.js"),
        "const http = require('http');\n\
         const s = http.createServer((req, res) => { res.end('seen ' + req.url); });\n\
         s.listen(0, '127.0.0.1', () => console.log(s.address().port));\n",
    )
    .unwrap();
    let mut child = Command::new("node")
        .arg("--require")
        .arg(Path::new(REPO).join("charm/node/service-hooks.js"))
        .arg(dir.join("server.js"))
        .arg(dir.join("options.json"))
        .env("PARSE_SERVER_CHARM_DRAIN_SECONDS", "3")
        .env("PARSE_SERVER_CHARM_STATE_DIR", &dir)
        .env(
            "PARSE_SERVER_CHARM_DATABASE_CREDENTIALS",
            dir.join("no-credentials.json"),
        )
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    {
        use std::io::BufRead;
        let stdout = child.stdout.as_mut().unwrap();
        std::io::BufReader::new(stdout)
            .read_line(&mut line)
            .unwrap();
    }
    let port: u16 = line.trim().parse().expect("the server prints its port");

    assert_eq!(get(port, CHECK), Some((200, "seen /shop/health".into())));
    assert_eq!(
        get(port, "/shop/health"),
        Some((200, "seen /shop/health".into()))
    );
    assert_eq!(
        get(port, "/shop/classes/A"),
        Some((200, "seen /shop/classes/A".into()))
    );

    let pid = child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let started = Instant::now();
    // The drain: the balancer's check fails, everything else is served.
    let mut checked = false;
    while started.elapsed() < Duration::from_millis(2000) {
        let (code, _) = get(port, CHECK).expect("still listening while it drains");
        if code == 503 {
            assert_eq!(
                get(port, "/shop/health"),
                Some((200, "seen /shop/health".into()))
            );
            assert_eq!(
                get(port, "/shop/classes/A"),
                Some((200, "seen /shop/classes/A".into()))
            );
            checked = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        checked,
        "the balancer's check never answered 503 after SIGTERM"
    );
    // Then it stops listening and exits by itself.
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "the process did not exit after its drain"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success(), "{status:?}");
    assert!(
        started.elapsed() >= Duration::from_secs(3),
        "exited before its drain ended"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
