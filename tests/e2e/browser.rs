//! Parse Dashboard (npm `parse-dashboard` 9.2.0, the charm's lockfile charm/npm/parse-dashboard)
//! in a real headless browser: Debian's Chromium driven by tests/browser/dashboard.js
//! (puppeteer-core; it never downloads a browser). [`Browser`] is the Rust side of that
//! driver: one JSON command per line to its stdin, one JSON reply per line from its stdout.
//!
//! The test runs everything on a booted machine's loopback (its own network namespace, no
//! Internet): PostgreSQL, parse-server from the charm's default lockfile, the dashboard, and
//! the browser, whose page may reach only the dashboard and parse-server (anything else,
//! Google Fonts included, is aborted at once and shows in the page's requests as "blocked").

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

use jujusim::kit::{private_file, random_alnum, record_figure, sim, work_dir, Unit};
use serde_json::{json, Value};

use crate::charm::{start_postgres, REPO};

/// How long one driver command may take before the test fails (the driver's own timeout
/// for a page wait is 30 s; a reply never comes only if the driver hangs).
const REPLY_TIMEOUT: Duration = Duration::from_secs(90);

/// The driver (`node tests/browser/dashboard.js`) and the Chromium it launched.
pub struct Browser {
    child: Child,
    stdin: ChildStdin,
    replies: Receiver<String>,
    /// Chromium's main process: the leader of its own process group (puppeteer starts it
    /// detached from the driver's group).
    chromium: u32,
    pub version: String,
}

impl Browser {
    /// Starts the driver on `unit`'s loopback (its network namespace, the host's files)
    /// with `args` (e.g. `--allow-origin http://127.0.0.1:4040`); its stderr goes to
    /// `<unit dir>/<log>`. Waits for Chromium to be up.
    pub fn start(unit: &Unit, args: &[&str], log: &str) -> Browser {
        let driver = Path::new(REPO).join("tests/browser/dashboard.js");
        assert!(
            Path::new(REPO)
                .join("tests/browser/node_modules/puppeteer-core/package.json")
                .is_file(),
            "tests/browser/node_modules is not installed: run `bash scripts/prereqs.sh`"
        );
        let stderr = std::fs::File::create(unit.dir.join(log)).unwrap();
        let mut cmd = Command::new(sim());
        cmd.arg("machine-exec")
            .arg("--net-only")
            .arg(&unit.dir)
            .arg("--")
            .arg("node")
            .arg(&driver)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr);
        Self::spawn(cmd)
    }

    /// Starts the driver with `cmd` (its stdio is the caller's to set: stdin and stdout
    /// piped).
    pub fn spawn(mut cmd: Command) -> Browser {
        use std::os::unix::process::CommandExt;
        let mut child = cmd.process_group(0).spawn().expect("starting the driver");
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, replies) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut b = Browser {
            child,
            stdin,
            replies,
            chromium: 0,
            version: String::new(),
        };
        let ready = b.read_reply("launch");
        assert_eq!(ready["ok"], true, "the browser did not start: {ready}");
        b.chromium = ready["pid"].as_u64().unwrap_or(0) as u32;
        b.version = ready["version"].as_str().unwrap_or("").to_owned();
        b
    }

    fn read_reply(&mut self, what: &str) -> Value {
        let line = match self.replies.recv_timeout(REPLY_TIMEOUT) {
            Ok(line) => line,
            Err(e) => panic!("the browser driver gave no reply to {what} ({e:?}); see its log"),
        };
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{what}: not JSON ({e}): {line}"))
    }

    /// Sends one command (`{"cmd": name, ...args}`) and returns the reply, `ok` true or
    /// false. The command is never printed: it may hold a password.
    pub fn send(&mut self, name: &str, args: Value) -> Value {
        let mut cmd = args;
        if cmd.is_null() {
            cmd = json!({});
        }
        cmd["cmd"] = Value::from(name);
        writeln!(self.stdin, "{cmd}").expect("writing to the driver");
        self.stdin.flush().unwrap();
        self.read_reply(name)
    }

    /// Sends a command that must succeed; fails the test with the driver's error otherwise.
    pub fn ok(&mut self, name: &str, args: Value) -> Value {
        let r = self.send(name, args);
        if r["ok"] != true {
            // What the page showed and asked for, to tell why.
            let shot = work_dir().join(format!("artifacts/failed-{name}.png"));
            let _ = self.send("screenshot", json!({ "path": shot }));
            let requests = self.send("requests", json!({}));
            panic!(
                "{name} failed: {}; screenshot {}; the page's requests: {}",
                r["error"],
                shot.display(),
                requests["requests"]
            );
        }
        r
    }

    pub fn goto(&mut self, url: &str) -> Value {
        self.ok("goto", json!({ "url": url }))
    }

    /// Logs in on `<base>/login`; `(logged in, final URL, the message shown)`.
    pub fn login(&mut self, base: &str, user: &str, password: &str) -> (bool, String, String) {
        let r = self.ok(
            "login",
            json!({ "url": base, "user": user, "password": password }),
        );
        (
            r["loggedIn"] == true,
            r["url"].as_str().unwrap_or("").to_owned(),
            r["message"].as_str().unwrap_or("").to_owned(),
        )
    }

    /// Opens the data browser of `class` (of `app`, else the first app); returns the number
    /// of rows shown.
    pub fn open_class(&mut self, base: &str, app: Option<&str>, class: &str) -> usize {
        let mut args = json!({ "base": base, "className": class });
        if let Some(app) = app {
            args["app"] = Value::from(app);
        }
        let r = self.ok("openClass", args);
        r["rows"].as_u64().unwrap() as usize
    }

    /// The grid's text (tab-separated, header first), else the page's.
    pub fn text(&mut self) -> String {
        self.ok("text", json!({}))["text"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// The grid: column names and each row's cell texts.
    pub fn grid(&mut self) -> (Vec<String>, Vec<Vec<String>>) {
        let r = self.ok("text", json!({}));
        let strings = |v: &Value| -> Vec<String> {
            v.as_array()
                .unwrap()
                .iter()
                .map(|s| s.as_str().unwrap_or("").to_owned())
                .collect()
        };
        let columns = strings(&r["columns"]);
        let rows = r["rows"].as_array().unwrap().iter().map(strings).collect();
        (columns, rows)
    }

    /// The toolbar's "Add Row": an unsaved row at the top (row 0).
    pub fn add_row(&mut self) {
        self.ok("addRow", json!({}));
    }

    /// Types `value` into a cell and commits it with Enter; returns the cell's text then.
    pub fn edit_cell(&mut self, row: usize, column: &str, value: &str) -> String {
        self.ok(
            "editCell",
            json!({ "row": row, "column": column, "value": value }),
        )["text"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// The added row's "Add": `(saved, the dashboard's notice)`.
    pub fn save_row(&mut self) -> (bool, String) {
        let r = self.ok("saveRow", json!({}));
        (
            r["saved"] == true,
            r["notice"].as_str().unwrap_or("").to_owned(),
        )
    }

    pub fn screenshot(&mut self, path: &Path) {
        self.ok("screenshot", json!({ "path": path }));
    }

    /// The page's requests since the last call: `{method, url, status, body?}` or
    /// `{method, url, failure}`.
    pub fn requests(&mut self) -> Vec<Value> {
        self.ok("requests", json!({}))["requests"]
            .as_array()
            .unwrap()
            .clone()
    }

    pub fn cookies(&mut self) -> Vec<Value> {
        self.ok("cookies", json!({}))["cookies"]
            .as_array()
            .unwrap()
            .clone()
    }

    /// Chromium's process tree: `(processes, RSS kB, PSS kB)`.
    pub fn memory(&mut self) -> (u64, u64, u64) {
        let r = self.ok("memory", json!({}));
        (
            r["processes"].as_u64().unwrap(),
            r["rssKb"].as_u64().unwrap(),
            r["pssKb"].as_u64().unwrap(),
        )
    }

    /// Asks the driver to close Chromium and leave; Drop makes sure of it.
    pub fn quit(mut self) {
        let _ = self.send("quit", json!({}));
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Browser {
    /// Chromium's process group, then the driver's (both SIGKILL), whatever state they are in.
    fn drop(&mut self) {
        let mut groups = vec![self.child.id()];
        if self.chromium != 0 {
            groups.insert(0, self.chromium);
        }
        for pgid in groups {
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{pgid}")])
                .stderr(Stdio::null())
                .status();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `npm ci --omit=dev --ignore-scripts` of the lockfile in `REPO/<lock_dir>`, once per
/// lockfile: kept in `<target>/e2e-cache/npm/<name>-<hash of the lockfile>` (installed
/// beside and renamed into place, so an interrupted install is never used).
pub fn npm_tree(lock_dir: &str) -> PathBuf {
    let src = Path::new(REPO).join(lock_dir);
    let lock = std::fs::read(src.join("package-lock.json")).unwrap();
    let hash = {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        lock.hash(&mut h);
        format!("{:016x}", h.finish())
    };
    let name = Path::new(lock_dir).file_name().unwrap().to_string_lossy();
    let cache = work_dir().with_file_name("e2e-cache").join("npm");
    let dir = cache.join(format!("{name}-{hash}"));
    if dir.join("node_modules/.package-lock.json").is_file() {
        return dir;
    }
    let tmp = cache.join(format!(".{name}-{hash}.{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).unwrap();
    for f in ["package.json", "package-lock.json"] {
        std::fs::copy(src.join(f), tmp.join(f)).unwrap();
    }
    let out = Command::new("npm")
        .args([
            "ci",
            "--omit=dev",
            "--ignore-scripts",
            "--no-audit",
            "--no-fund",
            "--loglevel=error",
        ])
        .current_dir(&tmp)
        .stdin(Stdio::null())
        .output()
        .expect("npm is on the PATH (the machine's Node)");
    assert!(
        out.status.success(),
        "npm ci of {lock_dir}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::rename(&tmp, &dir).unwrap();
    dir
}

/// A bcrypt hash of `password` (bcryptjs from the dashboard's own tree, cost 10), the form
/// `useEncryptedPasswords: true` wants. The password goes through stdin, never argv.
fn bcrypt(dashboard_tree: &Path, password: &str) -> String {
    let mut child = Command::new("node")
        .args([
            "-e",
            "let s='';process.stdin.on('data',d=>s+=d).on('end',()=>console.log(require('bcryptjs').hashSync(s,10)))",
        ])
        .current_dir(dashboard_tree)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(password.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let hash = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert!(hash.starts_with("$2"), "not a bcrypt hash");
    hash
}

/// A REST call to parse-server from inside `unit` with `key` as the master key:
/// `(status, JSON body or null)`.
fn rest(
    unit: &Unit,
    app: &str,
    key: &str,
    method: &str,
    url: &str,
    body: Option<&str>,
) -> (u16, Value) {
    let headers = [
        ("X-Parse-Application-Id", app),
        ("X-Parse-Master-Key", key),
        ("Content-Type", "application/json"),
    ];
    let (code, text) = unit.http(method, url, &headers, body);
    (code, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// Writes `value` as JSON to a new 0600 file.
fn write_private_json(path: &Path, value: &Value) {
    let mut f = private_file(path);
    f.write_all(serde_json::to_string_pretty(value).unwrap().as_bytes())
        .unwrap();
}

/// The cell of `rows` in `column` for the row whose `key` column reads `value`.
fn cell_of<'a>(
    columns: &[String],
    rows: &'a [Vec<String>],
    key: (&str, &str),
    column: &str,
) -> Option<&'a str> {
    let k = columns.iter().position(|c| c == key.0)?;
    let c = columns.iter().position(|c| c == column)?;
    rows.iter()
        .find(|r| r.get(k).map(String::as_str) == Some(key.1))
        .and_then(|r| r.get(c))
        .map(String::as_str)
}

#[test]
fn dashboard_in_a_real_browser_logs_in_shows_edits_and_stays_read_only() {
    let started = Instant::now();
    let artifacts = work_dir().join("artifacts/browser");
    let _ = std::fs::remove_dir_all(&artifacts);
    std::fs::create_dir_all(&artifacts).unwrap();

    // The npm trees first (cached): parse-server from the charm's default lockfile, the
    // dashboard from its own.
    let server_tree = npm_tree("charm/npm/9.10.0");
    let dash_tree = npm_tree("charm/npm/parse-dashboard");
    let trees_ready = started.elapsed();

    let mut unit = Unit::boot("browser-dashboard", None);
    let pg_password = random_alnum(24);
    let database_uri = start_postgres(&mut unit, 5432, &pg_password);

    // parse-server on the machine's loopback, its keys in a 0600 config file.
    let app = "dashshop";
    let master_key = random_alnum(40);
    let read_only_key = random_alnum(40);
    let server_config = unit.dir.join("parse-server.json");
    write_private_json(
        &server_config,
        &json!({
            "appId": app,
            "masterKey": master_key,
            "readOnlyMasterKey": read_only_key,
            "databaseURI": database_uri,
            "port": 1337,
            "host": "127.0.0.1",
            "mountPath": "/parse",
            "serverURL": "http://127.0.0.1:1337/parse",
            // Its default is ./logs of the working directory: the repository's.
            "logsFolder": unit.dir.join("parse-server-logs"),
        }),
    );
    let server_bin = server_tree.join("node_modules/parse-server/bin/parse-server");
    // In the unit's directory: parse-server logs its deprecation warnings to ./logs before
    // it reads logsFolder.
    let server_cmd = format!(
        "cd {dir} && exec node {bin} {config}",
        dir = unit.dir.display(),
        bin = server_bin.display(),
        config = server_config.display()
    );
    unit.spawn_on_loopback(&["bash", "-c", &server_cmd], "parse-server.log");
    unit.wait_port(1337, Duration::from_secs(60));
    let server = "http://127.0.0.1:1337/parse";
    let rest = |unit: &Unit, method: &str, path: &str, key: &str, body: Option<&str>| {
        rest(unit, app, key, method, &format!("{server}{path}"), body)
    };
    // parse-server answers once it has its schema; the port opens slightly earlier.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !unit.healthy(&format!("{server}/health")) {
        assert!(Instant::now() < deadline, "parse-server never healthy");
        std::thread::sleep(Duration::from_millis(200));
    }
    // Objects saved through REST, with names no page shows by chance.
    let tag = random_alnum(6).to_lowercase();
    let apple = format!("apple-{tag}");
    let pear = format!("pear-{tag}");
    for (name, qty) in [(&apple, 3), (&pear, 5)] {
        let (code, body) = rest(
            &unit,
            "POST",
            "/classes/Fruit",
            &master_key,
            Some(&json!({"name": name, "qty": qty}).to_string()),
        );
        assert_eq!(code, 201, "{body}");
    }

    // The dashboard: one admin (bcrypt hash), one read-only user (the app's
    // readOnlyMasterKey), plain HTTP on loopback. Its session secret from the environment
    // (the CLI reads it nowhere else), out of argv through a 0600 file.
    let admin_password = random_alnum(20);
    let viewer_password = random_alnum(20);
    let dash_config = unit.dir.join("parse-dashboard.json");
    write_private_json(
        &dash_config,
        &json!({
            "apps": [{
                "appId": app,
                "appName": app,
                "serverURL": server,
                "masterKey": master_key,
                "readOnlyMasterKey": read_only_key,
            }],
            "users": [
                {"user": "admin", "pass": bcrypt(&dash_tree, &admin_password)},
                {"user": "viewer", "pass": bcrypt(&dash_tree, &viewer_password), "readOnly": true},
            ],
            "useEncryptedPasswords": true,
        }),
    );
    let secret_file = unit.dir.join("dashboard-session-secret");
    private_file(&secret_file)
        .write_all(random_alnum(48).as_bytes())
        .unwrap();
    let dash_bin = dash_tree.join("node_modules/parse-dashboard/bin/parse-dashboard");
    let dash_cmd = format!(
        "PARSE_DASHBOARD_COOKIE_SESSION_SECRET=$(cat {secret}) exec node {bin} --config {config} \
         --host 127.0.0.1 --port 4040 --allowInsecureHTTP",
        secret = secret_file.display(),
        bin = dash_bin.display(),
        config = dash_config.display()
    );
    let dash_started = Instant::now();
    unit.spawn_on_loopback(&["bash", "-c", &dash_cmd], "parse-dashboard.log");
    unit.wait_port(4040, Duration::from_secs(60));
    let dash_up = dash_started.elapsed();
    let base = "http://127.0.0.1:4040";

    let mut b = Browser::start(
        &unit,
        &[
            "--allow-origin",
            base,
            "--allow-origin",
            "http://127.0.0.1:1337",
        ],
        "browser.log",
    );
    assert!(b.version.contains("Chrome/"), "{}", b.version);

    // A wrong password is refused, on the login page with the dashboard's message.
    let (in_, url, message) = b.login(base, "admin", "not-the-password");
    b.screenshot(&artifacts.join("1-login-refused.png"));
    assert!(!in_, "a wrong password logged in ({url})");
    assert!(url.ends_with("/login"), "{url}");
    assert_eq!(message, "Invalid username or password");

    // The right one: on to the apps, with an httpOnly session cookie.
    let (in_, url, message) = b.login(base, "admin", &admin_password);
    assert!(in_, "admin did not log in: {url} {message}");
    assert_eq!(url, format!("{base}/apps"));
    let cookies = b.cookies();
    let session = cookies
        .iter()
        .find(|c| c["name"] == "parse_dash")
        .unwrap_or_else(|| panic!("no parse_dash cookie: {cookies:?}"));
    assert_eq!(session["httpOnly"], true, "{session}");
    assert_eq!(session["sameSite"], "Lax", "{session}");

    // The class's objects saved through REST are in the grid.
    let rows = b.open_class(base, None, "Fruit");
    assert_eq!(rows, 2);
    let (columns, rows) = b.grid();
    for c in ["objectId", "name", "qty"] {
        assert!(columns.iter().any(|x| x == c), "{columns:?}");
    }
    assert_eq!(cell_of(&columns, &rows, ("name", &apple), "qty"), Some("3"));
    assert_eq!(cell_of(&columns, &rows, ("name", &pear), "qty"), Some("5"));
    b.screenshot(&artifacts.join("2-grid.png"));

    // A row added in the grid, two cells typed in and committed with Enter, then "Add":
    // parse-server has it.
    let kiwi = format!("kiwi-{tag}");
    b.add_row();
    assert_eq!(b.edit_cell(0, "name", &kiwi), kiwi);
    assert_eq!(b.edit_cell(0, "qty", "42"), "42");
    b.screenshot(&artifacts.join("3-row-typed.png"));
    let (saved, notice) = b.save_row();
    assert!(saved, "the new row was not saved: {notice}");
    assert!(notice.contains("created"), "{notice}");
    let where_kiwi = format!(
        "/classes/Fruit?where={}",
        jujusim::kit::percent_encode(&json!({"name": kiwi}).to_string())
    );
    let (code, found) = rest(&unit, "GET", &where_kiwi, &master_key, None);
    assert_eq!(code, 200, "{found}");
    let results = found["results"].as_array().unwrap();
    assert_eq!(results.len(), 1, "{found}");
    assert_eq!(results[0]["qty"], 42, "a Number column keeps a number");
    let kiwi_id = results[0]["objectId"].as_str().unwrap().to_owned();
    let (columns, rows) = b.grid();
    assert_eq!(
        cell_of(&columns, &rows, ("name", &kiwi), "objectId"),
        Some(kiwi_id.as_str())
    );
    // A saved object's cell edited in place: the dashboard saves it at Enter.
    let apple_row = rows
        .iter()
        .position(|r| r.iter().any(|c| c == &apple))
        .unwrap();
    let green = format!("green-apple-{tag}");
    assert_eq!(b.edit_cell(apple_row, "name", &green), green);
    let (code, found) = rest(
        &unit,
        "GET",
        &format!(
            "/classes/Fruit?where={}",
            jujusim::kit::percent_encode(&json!({"name": green}).to_string())
        ),
        &master_key,
        None,
    );
    assert_eq!(
        found["results"].as_array().map(Vec::len),
        Some(1),
        "{code} {found}"
    );
    b.screenshot(&artifacts.join("4-saved-and-edited.png"));

    // What the page asked for: the dashboard and parse-server only (the browser talks to
    // parse-server directly, with the master key); Google Fonts was asked for and blocked.
    let requests = b.requests();
    let mut blocked_hosts = std::collections::BTreeSet::new();
    for r in &requests {
        let url = r["url"].as_str().unwrap();
        if r["failure"] == "blocked" {
            blocked_hosts.insert(url.split('/').nth(2).unwrap_or("").to_owned());
        } else {
            assert!(
                url.starts_with(base) || url.starts_with(server),
                "the page reached {url}"
            );
        }
    }
    assert_eq!(
        blocked_hosts.into_iter().collect::<Vec<_>>(),
        vec!["fonts.googleapis.com"],
        "the only outside requests are Google Fonts'"
    );
    assert!(
        requests
            .iter()
            .any(|r| r["url"] == format!("{server}/classes/Fruit") && r["status"] == 201),
        "the row was created by the browser itself"
    );
    let (processes, rss_kb, pss_kb) = b.memory();
    record_figure("browser", "chromium processes", processes as f64, "");
    record_figure(
        "browser",
        "chromium RSS (sum)",
        rss_kb as f64 / 1024.0,
        "MiB",
    );
    record_figure(
        "browser",
        "chromium PSS (sum)",
        pss_kb as f64 / 1024.0,
        "MiB",
    );

    // Logged out, then the read-only user: sees the data, cannot add (parse-server refuses
    // the read-only master key's write with code 119, even though "Add Row" is enabled).
    let out = b.goto(&format!("{base}/logout"));
    assert!(out["url"].as_str().unwrap().ends_with("/login"), "{out}");
    let (in_, url, message) = b.login(base, "viewer", &viewer_password);
    assert!(in_, "viewer did not log in: {url} {message}");
    let rows = b.open_class(base, Some(app), "Fruit");
    assert_eq!(rows, 3);
    let text = b.text();
    for name in [&green, &pear, &kiwi] {
        assert!(text.contains(name.as_str()), "{name} not in:\n{text}");
    }
    b.add_row();
    let cherry = format!("cherry-{tag}");
    b.edit_cell(0, "name", &cherry);
    let (saved, notice) = b.save_row();
    b.screenshot(&artifacts.join("5-read-only-refused.png"));
    assert!(!saved, "the read-only user saved a row");
    assert_eq!(notice, "Permission denied");
    // The page's queries are POSTs too (the JS SDK sends `_method: GET` in the body): the
    // create is the one that did not answer 200.
    let posts: Vec<Value> = b
        .requests()
        .into_iter()
        .filter(|r| r["method"] == "POST" && r["url"] == format!("{server}/classes/Fruit"))
        .filter(|r| r["status"] != 200)
        .collect();
    assert_eq!(posts.len(), 1, "one create tried: {posts:?}");
    let refused = &posts[0];
    assert_eq!(refused["status"], 400, "{refused}");
    let body: Value = serde_json::from_str(refused["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["code"], 119, "{body}");
    // A count with a where clause: PostgreSQL's count of a whole class is an estimate
    // (pg_class.reltuples), which is why the dashboard's header says "0 objects" here.
    let (_, found) = rest(
        &unit,
        "GET",
        &format!(
            "/classes/Fruit?count=1&limit=0&where={}",
            jujusim::kit::percent_encode(r#"{"name":{"$exists":true}}"#)
        ),
        &master_key,
        None,
    );
    assert_eq!(found["count"], 3, "nothing was added by the read-only user");
    b.quit();

    // No password, key or secret in what the dashboard, the driver or parse-server logged.
    for log in ["parse-dashboard.log", "browser.log"] {
        let text = std::fs::read_to_string(unit.dir.join(log)).unwrap_or_default();
        for secret in [
            &admin_password,
            &viewer_password,
            &master_key,
            &read_only_key,
        ] {
            assert!(!text.contains(secret.as_str()), "a secret in {log}");
        }
    }
    unit.teardown();
    let total = started.elapsed();
    record_figure(
        "browser",
        "dashboard start to listening",
        dash_up.as_secs_f64(),
        "s",
    );
    println!(
        "dashboard_in_a_real_browser_logs_in_shows_edits_and_stays_read_only: {:.1} s \
         (npm trees ready after {:.1} s); screenshots in {}",
        total.as_secs_f64(),
        trees_ready.as_secs_f64(),
        artifacts.display()
    );
}
