//! A real headless browser for the Parse Dashboard tests (tests/e2e/dashboard.rs): Debian's
//! Chromium driven by tests/browser/dashboard.js (puppeteer-core; it never downloads a
//! browser). [`Browser`] is the Rust side of that driver: one JSON command per line to its
//! stdin, one JSON reply per line from its stdout. The page may reach only the origins the
//! driver is given (anything else, Google Fonts included, is aborted at once and shows in the
//! page's requests as "blocked").

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

use jujusim::kit::work_dir;
use serde_json::{json, Value};

use crate::charm::REPO;
use crate::model::Model;

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
    /// Starts the driver in the model network's namespace (on its gateway address, the
    /// host's files) with `args` (e.g. `--allow-origin https://10.77.0.1:8444`); its stderr
    /// goes to `<model dir>/<log>`. Waits for Chromium to be up.
    pub fn on_network(model: &Model, args: &[&str], log: &str) -> Browser {
        let driver = Path::new(REPO).join("tests/browser/dashboard.js");
        assert!(
            Path::new(REPO)
                .join("tests/browser/node_modules/puppeteer-core/package.json")
                .is_file(),
            "tests/browser/node_modules is not installed: run `bash scripts/prereqs.sh`"
        );
        let stderr = std::fs::File::create(model.dir.join(log)).unwrap();
        let driver = driver.to_string_lossy().into_owned();
        let mut argv = vec!["node", driver.as_str()];
        argv.extend_from_slice(args);
        let mut cmd = model.net.command(&argv);
        cmd.stdin(Stdio::piped())
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

/// The cell of `rows` in `column` for the row whose `key` column reads `value`.
pub fn cell_of<'a>(
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
