//! State-transition tests of `Charm::reconcile` with in-memory hook tools and service
//! manager, over a scratch root with parse-server "installed": (event, state) -> state, in
//! milliseconds, no namespaces, no Node, no database.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use parse_server_charm::charm::{Charm, Timeouts};
use parse_server_charm::juju::hook_tools::ToolResult;
use parse_server_charm::juju::{
    Databag, Event, HookTools, JujuContext, ProxySettings, RelationKind, StatusKind,
};
use parse_server_charm::workload::parse_server::Paths;
use parse_server_charm::workload::systemd::ServiceManager;
use serde_json::Value;

#[derive(Default)]
struct Model {
    config: BTreeMap<String, Value>,
    /// relation id -> (unit -> bag)
    relations: BTreeMap<String, BTreeMap<String, Databag>>,
    ports: Vec<String>,
    statuses: Vec<(StatusKind, String)>,
    secrets: BTreeMap<String, Databag>,
    state: Databag,
    writes: Vec<String>,
}

#[derive(Default)]
struct FakeTools(RefCell<Model>);

impl HookTools for FakeTools {
    fn config_get(&self) -> ToolResult<BTreeMap<String, Value>> {
        Ok(self.0.borrow().config.clone())
    }
    fn relation_ids(&self, endpoint: &str) -> ToolResult<Vec<String>> {
        let prefix = format!("{endpoint}:");
        Ok(self
            .0
            .borrow()
            .relations
            .keys()
            .filter(|k| k.starts_with(&prefix))
            .cloned()
            .collect())
    }
    fn relation_list(&self, id: &str) -> ToolResult<Vec<String>> {
        Ok(self
            .0
            .borrow()
            .relations
            .get(id)
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default())
    }
    fn relation_get(&self, id: &str, unit: &str) -> ToolResult<Databag> {
        Ok(self
            .0
            .borrow()
            .relations
            .get(id)
            .and_then(|m| m.get(unit).cloned())
            .unwrap_or_default())
    }
    fn relation_set(&self, id: &str, _: &Databag) -> ToolResult<()> {
        self.0
            .borrow_mut()
            .writes
            .push(format!("relation-set {id}"));
        Ok(())
    }
    fn opened_ports(&self) -> ToolResult<Vec<String>> {
        Ok(self.0.borrow().ports.clone())
    }
    fn open_port(&self, port: u16) -> ToolResult<()> {
        let mut m = self.0.borrow_mut();
        m.writes.push(format!("open-port {port}"));
        m.ports.push(format!("{port}/tcp"));
        Ok(())
    }
    fn close_port(&self, port: u16) -> ToolResult<()> {
        let mut m = self.0.borrow_mut();
        m.writes.push(format!("close-port {port}"));
        m.ports.retain(|p| p != &format!("{port}/tcp"));
        Ok(())
    }
    fn status_set(&self, kind: StatusKind, message: &str) -> ToolResult<()> {
        self.0
            .borrow_mut()
            .statuses
            .push((kind, message.to_owned()));
        Ok(())
    }
    fn application_version_set(&self, _: &str) -> ToolResult<()> {
        Ok(())
    }
    fn log(&self, _: &str, _: &str) -> ToolResult<()> {
        Ok(())
    }
    fn is_leader(&self) -> ToolResult<bool> {
        Ok(true)
    }
    fn public_address(&self) -> ToolResult<String> {
        Ok("10.0.0.10".into())
    }
    fn ingress_address(&self, _: &str) -> ToolResult<Option<String>> {
        Ok(Some("10.0.0.10".into()))
    }
    fn state_get(&self, key: &str) -> ToolResult<Option<String>> {
        Ok(self.0.borrow().state.get(key).cloned())
    }
    fn state_set(&self, data: &Databag) -> ToolResult<()> {
        self.0.borrow_mut().state.extend(data.clone());
        Ok(())
    }
    fn secret_get(&self, label: &str) -> ToolResult<Option<Databag>> {
        Ok(self.0.borrow().secrets.get(label).cloned())
    }
    fn secret_add_from_file(
        &self,
        label: &str,
        _: &str,
        key: &str,
        file: &Path,
    ) -> ToolResult<String> {
        let value = std::fs::read_to_string(file).unwrap();
        let mut m = self.0.borrow_mut();
        m.writes.push(format!("secret-add {label}"));
        m.secrets
            .insert(label.into(), Databag::from([(key.to_owned(), value)]));
        Ok("secret:fake".into())
    }
    fn secret_id(&self, label: &str) -> ToolResult<Option<String>> {
        Ok(self
            .0
            .borrow()
            .secrets
            .contains_key(label)
            .then(|| "secret:fake".into()))
    }
    fn action_set(&self, _: &Databag) -> ToolResult<()> {
        Ok(())
    }
    fn action_fail(&self, _: &str) -> ToolResult<()> {
        Ok(())
    }
}

#[derive(Default)]
struct FakeService(RefCell<Vec<String>>);

impl ServiceManager for FakeService {
    fn daemon_reload(&self) -> anyhow::Result<()> {
        self.0.borrow_mut().push("daemon-reload".into());
        Ok(())
    }
    fn enable(&self, u: &str) -> anyhow::Result<()> {
        self.0.borrow_mut().push(format!("enable {u}"));
        Ok(())
    }
    fn disable(&self, u: &str) -> anyhow::Result<()> {
        self.0.borrow_mut().push(format!("disable {u}"));
        Ok(())
    }
    fn restart(&self, u: &str) -> anyhow::Result<()> {
        self.0.borrow_mut().push(format!("restart {u}"));
        Ok(())
    }
    fn stop(&self, u: &str) -> anyhow::Result<()> {
        self.0.borrow_mut().push(format!("stop {u}"));
        Ok(())
    }
    fn is_active(&self, _: &str) -> anyhow::Result<bool> {
        Ok(false)
    }
}

/// A scratch root where user, release and Node look installed.
fn scratch_root(tag: &str) -> PathBuf {
    let root = std::env::temp_dir().join(format!("psc-reconcile-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(root.join("etc")).unwrap();
    let (uid, gid) = {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::metadata(root.join("etc")).unwrap();
        (m.uid(), m.gid())
    };
    std::fs::write(
        root.join("etc/passwd"),
        format!("parse-server:x:{uid}:{gid}::/var/lib/parse-server:/usr/sbin/nologin\n"),
    )
    .unwrap();
    let release = root.join("opt/parse-server/releases/9.10.0");
    std::fs::create_dir_all(release.join("node_modules/parse-server")).unwrap();
    std::fs::write(
        release.join("node_modules/parse-server/package.json"),
        r#"{"version":"9.10.0","engines":{"node":">=20.19.0 <21 || >=22.12.0 <23"}}"#,
    )
    .unwrap();
    std::fs::write(
        release.join("charm-options.json"),
        r#"{"maxLimit":"PARSE_SERVER_MAX_LIMIT"}"#,
    )
    .unwrap();
    let bin = root.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::write(bin.join("node"), "#!/bin/sh\necho v20.20.2\n").unwrap();
    std::process::Command::new("chmod")
        .arg("755")
        .arg(bin.join("node"))
        .status()
        .unwrap();
    root
}

fn context(root: &Path, event: Event, relation_id: Option<&str>) -> JujuContext {
    JujuContext {
        event,
        unit_name: "parse-server/0".into(),
        app_name: "parse-server".into(),
        charm_dir: root.join("charm"),
        model_name: "test".into(),
        juju_version: "3.6.1".into(),
        relation_id: relation_id.map(str::to_owned),
        remote_unit: None,
        departing_unit: None,
        path: Some(root.join("bin").display().to_string()),
        proxy: ProxySettings::default(),
    }
}

fn run(
    root: &Path,
    tools: &FakeTools,
    service: &FakeService,
    event: Event,
    rel: Option<&str>,
) -> (StatusKind, String) {
    let ctx = context(root, event, rel);
    let charm = Charm {
        ctx: &ctx,
        tools,
        service,
        paths: Paths::new(root),
        timeouts: Timeouts {
            database: Duration::from_millis(300),
            health_after_start: Duration::from_secs(1),
        },
    };
    charm.run().expect("the hook succeeds");
    tools
        .0
        .borrow()
        .statuses
        .last()
        .cloned()
        .expect("a status was set")
}

/// A loopback port nothing listens on.
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

#[test]
fn without_a_database_the_unit_is_blocked_and_nothing_runs() {
    let root = scratch_root("nodb");
    let (tools, service) = (FakeTools::default(), FakeService::default());
    tools.0.borrow_mut().ports.push("1337/tcp".into());
    let status = run(&root, &tools, &service, Event::ConfigChanged, None);
    assert_eq!(
        status,
        (
            StatusKind::Blocked,
            "add a relation to mongodb (or set database-uri)".into()
        )
    );
    assert!(tools.0.borrow().ports.is_empty(), "the port is closed");
    assert!(service.0.borrow().iter().all(|c| !c.starts_with("restart")));
    assert!(!root.join("etc/parse-server/parse-server.env").exists());
}

#[test]
fn invalid_config_blocks_before_anything_is_touched() {
    let root = scratch_root("invalid");
    let (tools, service) = (FakeTools::default(), FakeService::default());
    tools
        .0
        .borrow_mut()
        .config
        .insert("port".into(), Value::from(0));
    tools
        .0
        .borrow_mut()
        .config
        .insert("log-level".into(), Value::from("loud"));
    let (kind, message) = run(&root, &tools, &service, Event::ConfigChanged, None);
    assert_eq!(kind, StatusKind::Blocked);
    assert!(message.starts_with("invalid config: port: "), "{message}");
    assert!(message.contains("; log-level: "), "{message}");
    assert!(tools.0.borrow().writes.is_empty());
    assert!(service.0.borrow().is_empty());
}

#[test]
fn unknown_extra_option_is_named_against_the_installed_release() {
    let root = scratch_root("extra");
    let (tools, service) = (FakeTools::default(), FakeService::default());
    tools
        .0
        .borrow_mut()
        .config
        .insert("extra-options".into(), Value::from(r#"{"maxLimt": 3}"#));
    let (kind, message) = run(&root, &tools, &service, Event::ConfigChanged, None);
    assert_eq!(kind, StatusKind::Blocked);
    assert_eq!(
        message,
        r#"invalid config: extra-options: "maxLimt" is not a parse-server option"#
    );
}

#[test]
fn relation_states_and_an_unreachable_database() {
    let root = scratch_root("relation");
    let (tools, service) = (FakeTools::default(), FakeService::default());
    let rel = "mongodb:3";
    let changed = || Event::Relation {
        endpoint: "mongodb".into(),
        kind: RelationKind::Changed,
    };
    tools
        .0
        .borrow_mut()
        .relations
        .insert(rel.into(), BTreeMap::new());
    assert_eq!(
        run(&root, &tools, &service, changed(), Some(rel)),
        (
            StatusKind::Waiting,
            "waiting for a mongodb unit to join".into()
        )
    );
    let port = closed_port().to_string();
    let bag = Databag::from([
        ("hostname".to_owned(), "127.0.0.1".to_owned()),
        ("port".to_owned(), port.clone()),
    ]);
    tools
        .0
        .borrow_mut()
        .relations
        .get_mut(rel)
        .unwrap()
        .insert("mongodb/0".into(), bag);
    let (kind, message) = run(&root, &tools, &service, changed(), Some(rel));
    assert_eq!(kind, StatusKind::Waiting);
    assert!(
        message.starts_with(&format!("database at 127.0.0.1:{port} does not answer")),
        "{message}"
    );
    // Nothing was written or started while the database does not answer.
    assert!(!root.join("etc/parse-server/parse-server.env").exists());
    assert!(service.0.borrow().iter().all(|c| !c.starts_with("restart")));
    // The broken hook of that relation: the relation no longer counts.
    let broken = Event::Relation {
        endpoint: "mongodb".into(),
        kind: RelationKind::Broken,
    };
    assert_eq!(
        run(&root, &tools, &service, broken, Some(rel)),
        (
            StatusKind::Blocked,
            "add a relation to mongodb (or set database-uri)".into()
        )
    );
}

#[test]
fn malformed_relation_data_never_fails_the_hook() {
    let root = scratch_root("malformed");
    let (tools, service) = (FakeTools::default(), FakeService::default());
    let rel = "mongodb:1";
    let bag = Databag::from([
        ("hostname".to_owned(), "db/evil?x=\n".to_owned()),
        ("port".to_owned(), "many".to_owned()),
    ]);
    tools
        .0
        .borrow_mut()
        .relations
        .insert(rel.into(), BTreeMap::from([("mongodb/0".to_owned(), bag)]));
    let ev = Event::Relation {
        endpoint: "mongodb".into(),
        kind: RelationKind::Changed,
    };
    let (kind, message) = run(&root, &tools, &service, ev, Some(rel));
    assert_eq!(kind, StatusKind::Waiting);
    assert!(
        message.contains("unusable mongodb relation data (mongodb/0: "),
        "{message}"
    );
}
