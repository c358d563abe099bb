//! A model of several units: its model dir driven through `jujusim <sub> M ...`
//! ([`ModelDir`]: model-init, add-unit, settle, config, relate, the remote side's bags and
//! secrets, model.json and status), and a model of booted units on one model network
//! ([`Model`]).

use std::io::Write;
use std::ops::{Deref, DerefMut};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

use super::artifacts::{fresh_work_dir, jujusim};
use super::files::private_file;
use super::network::Network;
use super::unit::{Unit, UnitDir, UNIT_PROXY};

/// A model dir, driven through `jujusim <sub> M <args>`.
pub struct ModelDir {
    pub dir: PathBuf,
    /// Environment of every `jujusim` run (e.g. `JUJUSIM_HTTPS_PROXY`).
    env: Vec<(String, String)>,
}

impl ModelDir {
    /// The model dir at `dir` (`init` makes one).
    pub fn at(dir: impl Into<PathBuf>) -> ModelDir {
        ModelDir {
            dir: dir.into(),
            env: Vec::new(),
        }
    }

    /// The same with `key=value` in the environment of every `jujusim` run.
    pub fn with_env(mut self, key: &str, value: &str) -> ModelDir {
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }

    /// `jujusim model-init M <args>` (`--charm FILE` or `--charm-dir DIR`, `--app NAME`);
    /// asserts it succeeded; returns its stdout (the peer relations it made).
    pub fn init(&self, args: &[&str]) -> String {
        self.ok("model-init", args)
    }

    fn command(&self, sub: &str, args: &[&str]) -> Command {
        let mut cmd = jujusim();
        cmd.arg(sub).arg(&self.dir).args(args);
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd
    }

    /// `jujusim <sub> M <args>`.
    pub fn run(&self, sub: &str, args: &[&str]) -> Output {
        self.command(sub, args).output().expect("running jujusim")
    }

    /// `jujusim <sub> M <args>`; asserts it succeeded (else fails with its output and the
    /// tail of every unit's hook output); returns its stdout.
    pub fn ok(&self, sub: &str, args: &[&str]) -> String {
        let out = self.run(sub, args);
        assert!(
            out.status.success(),
            "jujusim {sub} {args:?}: {}\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.hook_tails()
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The units of model.json and their unit dirs, by name.
    pub fn unit_dirs(&self) -> Vec<(String, UnitDir)> {
        let Ok(text) = std::fs::read_to_string(self.dir.join("model.json")) else {
            return Vec::new();
        };
        let state: Value = serde_json::from_str(&text).unwrap_or_default();
        state["units"]
            .as_object()
            .map(|units| {
                units
                    .iter()
                    .filter_map(|(n, u)| Some((n.clone(), UnitDir::at(u["dir"].as_str()?))))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The tail of every unit's hook output (for a failure message).
    pub fn hook_tails(&self) -> String {
        self.unit_dirs()
            .iter()
            .map(|(n, u)| format!("--- {n}:\n{}", u.hook_output_tail()))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// `jujusim add-unit M <args>` (`--unit-dir U` adopts a prepared unit dir); returns the
    /// new unit's name and dir.
    pub fn add_unit(&self, args: &[&str]) -> (String, PathBuf) {
        let out = self.ok("add-unit", args);
        let (name, dir) = out.trim_end().split_once(' ').expect("add-unit: UNIT DIR");
        (name.to_owned(), PathBuf::from(dir))
    }

    /// Runs every queued hook (at most the simulator's default number); returns what ran
    /// (one line per hook).
    pub fn settle(&self) -> String {
        self.ok("settle", &[])
    }

    /// Runs every queued hook, at most `max`; returns what ran.
    pub fn settle_max(&self, max: usize) -> String {
        self.ok("settle", &["--max", &max.to_string()])
    }

    /// Runs exactly one queued hook (`settle --max 1`); returns whether runnable events remain.
    /// Events of a unit whose machine is down are not runnable: they wait.
    /// A hook that fails, or any other settle error, fails the test with the hook tails.
    pub fn settle_step(&self) -> bool {
        let out = self.run("settle", &["--max", "1"]);
        let ran = String::from_utf8_lossy(&out.stdout);
        if !ran.trim().is_empty() {
            println!("settle step: {}", ran.trim_end());
        }
        if out.status.success() {
            return false;
        }
        let err = String::from_utf8_lossy(&out.stderr);
        // What settle says when it stops at --max with runnable events left.
        if out.status.code() == Some(1) && err.contains("hooks run and events are still queued") {
            return true;
        }
        panic!(
            "jujusim settle --max 1: {ran}\n{err}\n{}",
            self.hook_tails()
        );
    }

    /// `jujusim events M --format=json`: the queued events.
    pub fn events(&self) -> Vec<Value> {
        let v: Value = serde_json::from_str(&self.ok("events", &["--format=json"])).unwrap();
        v.as_array().expect("events: a list").clone()
    }

    pub fn config(&self, pairs: &[&str]) {
        self.ok("config", pairs);
    }

    /// `juju attach-resource`: `file` becomes resource `name` of every unit (and of units
    /// added later); the upgrade sequence queues on each (`settle` runs it).
    pub fn attach_resource(&self, name: &str, file: &Path) {
        self.ok("attach-resource", &[name, file.to_str().unwrap()]);
    }

    /// `jujusim relate M <endpoint> <remote app>`; returns the relation (`endpoint:id`).
    pub fn relate(&self, endpoint: &str, remote_app: &str) -> String {
        self.ok("relate", &[endpoint, remote_app]).trim().to_owned()
    }

    pub fn remote_set(&self, rel: &str, unit: &str, pairs: &[&str], address: Option<&str>) {
        let mut args = vec![rel, unit];
        args.extend_from_slice(pairs);
        if let Some(a) = address {
            args.extend_from_slice(&["--address", a]);
        }
        self.ok("remote-set", &args);
    }

    /// The remote application's databag; values through a 0600 file, never argv.
    pub fn remote_app_set(&self, rel: &str, pairs: &[(&str, &str)]) {
        self.ok_with_pairs("remote-app-set", &[rel], pairs);
    }

    /// A secret the provider `owner` grants to `rel`; returns its URI.
    pub fn remote_secret_add(&self, rel: &str, owner: &str, pairs: &[(&str, &str)]) -> String {
        self.ok_with_pairs(
            "remote-secret-add",
            &["--grant", rel, "--owner", owner],
            pairs,
        )
        .trim()
        .to_owned()
    }

    pub fn remote_secret_set(&self, uri: &str, pairs: &[(&str, &str)]) {
        self.ok_with_pairs("remote-secret-set", &[uri], pairs);
    }

    /// A user secret (`juju add-secret NAME`), values through a 0600 file; returns its URI.
    pub fn add_secret(&self, name: &str, pairs: &[(&str, &str)]) -> String {
        self.ok_with_pairs("add-secret", &[name], pairs)
            .trim()
            .to_owned()
    }

    /// `juju update-secret NAME|URI`: a new revision.
    pub fn update_secret(&self, what: &str, pairs: &[(&str, &str)]) {
        self.ok_with_pairs("update-secret", &[what], pairs);
    }

    /// `juju grant-secret` (`grant`) or `juju revoke-secret` to application `app`.
    pub fn grant_secret(&self, what: &str, app: &str, grant: bool) {
        let cmd = if grant {
            "grant-secret"
        } else {
            "revoke-secret"
        };
        self.ok(cmd, &[what, app]);
    }

    /// `jujusim cmd M args… --file F` with `pairs` in F (a 0600 file, removed after), so that
    /// values never reach a command line; returns stdout.
    fn ok_with_pairs(&self, cmd: &str, args: &[&str], pairs: &[(&str, &str)]) -> String {
        let file = self.secret_file(pairs);
        let mut argv = args.to_vec();
        argv.extend_from_slice(&["--file", file.to_str().unwrap()]);
        let out = self.ok(cmd, &argv);
        let _ = std::fs::remove_file(file);
        out
    }

    /// `pairs` as a JSON object in a 0600 file of the model dir.
    fn secret_file(&self, pairs: &[(&str, &str)]) -> PathBuf {
        let file = self.dir.join(".pairs.json");
        let map: serde_json::Map<String, Value> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), Value::from(*v)))
            .collect();
        let mut f = private_file(&file);
        f.write_all(Value::Object(map).to_string().as_bytes())
            .unwrap();
        file
    }

    /// model.json.
    pub fn state(&self) -> Value {
        serde_json::from_str(&std::fs::read_to_string(self.dir.join("model.json")).unwrap())
            .unwrap()
    }

    /// model.json's record of the relation `rel` (`endpoint:id`).
    pub fn relation(&self, rel: &str) -> Value {
        let id = rel.rsplit(':').next().unwrap();
        self.state()["relations"][id].clone()
    }

    /// Our application's databag on `rel`.
    pub fn app_bag(&self, rel: &str) -> serde_json::Map<String, Value> {
        self.relation(rel)["app_bag"]
            .as_object()
            .cloned()
            .unwrap_or_default()
    }

    /// Every unit databag on `rel` (ours and the remote ones), by unit.
    pub fn unit_bags(&self, rel: &str) -> serde_json::Map<String, Value> {
        self.relation(rel)["unit_bags"]
            .as_object()
            .cloned()
            .unwrap_or_default()
    }

    /// `jujusim status M --format=json`.
    pub fn status(&self) -> Value {
        serde_json::from_str(&self.ok("status", &["--format=json"])).unwrap()
    }

    /// `(unit, workload status, message)` of every unit of `app`.
    pub fn workloads_of(&self, app: &str) -> Vec<(String, String, String)> {
        let s = self.status();
        let units = s["applications"][app]["units"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        units
            .iter()
            .map(|(name, u)| {
                (
                    name.clone(),
                    u["workload-status"]["current"]
                        .as_str()
                        .unwrap_or("")
                        .to_owned(),
                    u["workload-status"]["message"]
                        .as_str()
                        .unwrap_or("")
                        .to_owned(),
                )
            })
            .collect()
    }

    /// The leader unit's name.
    pub fn leader(&self) -> String {
        self.state()["leader"].as_str().unwrap_or("").to_owned()
    }
}

/// A model of one application whose units are booted machines on one model network: its
/// model dir ([`ModelDir`], `Deref`), network and units. Every `jujusim` run names the
/// model's proxy (`JUJUSIM_HTTPS_PROXY`).
pub struct Model {
    pub model: ModelDir,
    pub net: Network,
    pub units: Vec<(String, Unit)>,
    name: String,
    app: String,
    charm: PathBuf,
    /// What each unit's proxy lets through (`Unit::start_proxy`).
    proxy_allow: Vec<String>,
    /// The number of the next unit (Juju never reuses one).
    next: usize,
}

impl Deref for Model {
    type Target = ModelDir;
    fn deref(&self) -> &ModelDir {
        &self.model
    }
}

impl DerefMut for Model {
    fn deref_mut(&mut self) -> &mut ModelDir {
        &mut self.model
    }
}

impl Model {
    /// A model network `<name>-net` and a model `<work dir>/<name>-model-<pid>` of the
    /// packed `charm` deployed as `app`; units get a proxy that lets `proxy_allow` through.
    pub fn new(name: &str, charm: &Path, app: &str, proxy_allow: &[&str]) -> Model {
        let net = Network::up(&format!("{name}-net"));
        let dir = fresh_work_dir(&format!("{name}-model"));
        // model-init makes the dir itself.
        std::fs::remove_dir(&dir).unwrap();
        let model = Model {
            model: ModelDir::at(dir).with_env("JUJUSIM_HTTPS_PROXY", UNIT_PROXY),
            net,
            units: Vec::new(),
            name: name.to_owned(),
            app: app.to_owned(),
            charm: charm.to_owned(),
            proxy_allow: proxy_allow.iter().map(|a| a.to_string()).collect(),
            next: 0,
        };
        model.init(&["--charm", charm.to_str().unwrap(), "--app", app]);
        model
    }

    /// The application's name.
    pub fn app(&self) -> &str {
        &self.app
    }

    /// `juju add-unit`: a new machine on the model network (at 10.77.0.11, .12, ...) with the
    /// charm unpacked, joined to the model (its hooks are queued; `settle` runs them).
    /// Returns the unit's name.
    pub fn add_unit(&mut self) -> String {
        let n = self.next;
        self.next += 1;
        let ip = format!("10.77.0.{}", 11 + n);
        let unit_name = format!("{}/{n}", self.app);
        let mut unit = Unit::boot(&format!("{}-u{n}", self.name), Some((&self.net, &ip)));
        unit.unpack_charm(&self.charm, &["--unit", &unit_name, "--address", &ip]);
        let allow: Vec<&str> = self.proxy_allow.iter().map(String::as_str).collect();
        unit.start_proxy(&allow);
        self.model
            .add_unit(&["--unit-dir", unit.dir.to_str().unwrap()]);
        self.units.push((unit_name.clone(), unit));
        unit_name
    }

    /// Runs every queued hook (at most 400); returns what ran (one line per hook).
    pub fn settle(&self) -> String {
        self.settle_max(400)
    }

    /// Runs one hook (e.g. `update-status`) on one unit of the model, against the shared model
    /// (`jujusim hook U HOOK`); asserts that it exited 0.
    pub fn run_hook(&self, unit: &str, hook: &str) {
        self.unit(unit).hook(hook, &[]);
    }

    /// Powers a unit's machine off (`jujusim machine-down`) while it stays in the model: its
    /// agent is lost, its events queue and `settle` leaves them waiting until `machine_up`.
    /// Fails if anything of the machine is left (as at teardown).
    pub fn machine_down(&mut self, unit: &str) {
        self.unit_mut(unit).power_off();
    }

    /// Boots a unit's powered-off machine again from its disk (same network address, the
    /// model's proxy restarted); the next `settle` runs the events that waited.
    pub fn machine_up(&mut self, unit: &str) {
        self.unit_mut(unit).power_on();
    }

    /// `(unit, workload status, message)` of every unit of the application.
    pub fn workloads(&self) -> Vec<(String, String, String)> {
        self.workloads_of(&self.app)
    }

    /// Every unit's workload status is `kind` with a message containing `part`.
    pub fn assert_all(&self, kind: &str, part: &str) {
        for (name, k, m) in self.workloads() {
            assert_eq!(k, kind, "{name}: {m}\n{}", self.hook_tails());
            assert!(m.contains(part), "{name}: {m:?} lacks {part:?}");
        }
    }

    pub fn unit(&self, name: &str) -> &Unit {
        &self.units.iter().find(|(n, _)| n == name).expect(name).1
    }

    pub fn unit_mut(&mut self, name: &str) -> &mut Unit {
        &mut self
            .units
            .iter_mut()
            .find(|(n, _)| n == name)
            .expect(name)
            .1
    }

    /// `juju remove-unit`: queues its teardown; after `settle` its machine is powered off
    /// (`Unit::teardown`'s checks).
    pub fn remove_unit(&mut self, name: &str) {
        self.ok("remove-unit", &[name]);
        self.settle();
        let i = self.units.iter().position(|(n, _)| n == name).unwrap();
        let (_, unit) = self.units.remove(i);
        unit.teardown();
    }

    /// Tears every unit down, then the network (their checks that nothing is left).
    pub fn teardown(mut self) {
        for (_, u) in self.units.drain(..) {
            u.teardown();
        }
        let Model { net, .. } = self;
        net.teardown();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unit_dirs_and_hook_tails_come_from_model_json() {
        let root = std::env::temp_dir().join(format!("kit-model-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let u0 = root.join("u0");
        std::fs::create_dir_all(&u0).unwrap();
        let lines: String = (1..=45).map(|i| format!("line {i}\n")).collect();
        std::fs::write(u0.join("hook-output.log"), lines).unwrap();
        let m = ModelDir::at(root.join("m"));
        assert!(m.unit_dirs().is_empty());
        assert_eq!(m.hook_tails(), "");
        std::fs::create_dir_all(&m.dir).unwrap();
        let state = serde_json::json!({"units": {
            "app/0": {"dir": u0.to_str().unwrap()},
            "app/1": {"dir": root.join("u1").to_str().unwrap()},
        }});
        std::fs::write(m.dir.join("model.json"), state.to_string()).unwrap();
        let names: Vec<String> = m.unit_dirs().into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["app/0", "app/1"]);
        let tails = m.hook_tails();
        assert!(tails.starts_with("--- app/0:\nline 6\n"), "{tails}");
        assert!(tails.contains("line 45\n--- app/1:\n"), "{tails}");
        assert!(!tails.contains("line 5\n"), "{tails}");
        std::fs::remove_dir_all(&root).unwrap();
    }
}
