//! The charm's YAML files: they parse, agree with each other and with the code.

use std::collections::BTreeMap;

use parse_server_charm::config::CharmConfig;
use serde_json::Value;

fn yaml(path: &str) -> serde_yaml::Value {
    let text = std::fs::read_to_string(format!("{}/{path}", env!("CARGO_MANIFEST_DIR"))).unwrap();
    serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn config_yaml_defaults_are_valid_config() {
    let config = yaml("config.yaml");
    let options = config["options"].as_mapping().expect("options");
    let mut raw = BTreeMap::new();
    for (name, opt) in options {
        let name = name.as_str().unwrap();
        assert!(
            opt["description"].as_str().is_some_and(|d| !d.is_empty()),
            "{name} lacks a description"
        );
        let ty = opt["type"].as_str().unwrap();
        let default = &opt["default"];
        let v: Value = match ty {
            "string" => Value::from(default.as_str().unwrap_or_else(|| panic!("{name} default"))),
            "int" => Value::from(default.as_i64().unwrap_or_else(|| panic!("{name} default"))),
            "boolean" => Value::from(
                default
                    .as_bool()
                    .unwrap_or_else(|| panic!("{name} default")),
            ),
            other => panic!("{name}: unexpected type {other}"),
        };
        assert!(!name.contains('_'), "{name}: options are kebab-case");
        raw.insert(name.to_owned(), v);
    }
    let parsed = CharmConfig::from_raw(&raw).expect("defaults validate");
    assert_eq!(parsed.port, 1337);
    // Every option the issue lists is declared.
    for name in [
        "app-id",
        "master-key",
        "port",
        "mount-path",
        "public-server-url",
        "database-name",
        "database-uri",
        "parse-server-version",
        "workers",
        "node-max-old-space-size",
        "master-key-ips",
        "allow-client-class-creation",
        "log-level",
        "extra-options",
        "node-mirror",
        "memory-limit",
        "app-name",
        "email-from",
        "verify-user-emails",
        "redis-url",
        "live-query-classes",
        "read-only-master-key-ips",
        "dashboard",
        "dashboard-port",
        "dashboard-url",
    ] {
        assert!(raw.contains_key(name), "config.yaml lacks {name}");
    }
    assert_eq!(
        raw.len(),
        26,
        "an option the code does not read: {:?}",
        raw.keys()
    );
}

#[test]
fn metadata_declares_the_endpoints_the_code_uses() {
    let meta = yaml("metadata.yaml");
    assert_eq!(meta["name"].as_str(), Some("parse-server"));
    for key in ["summary", "description"] {
        assert!(meta[key].as_str().is_some(), "metadata.yaml lacks {key}");
    }
    use parse_server_charm::charm::endpoints::ENDPOINTS;
    use parse_server_charm::charm::*;
    // The code's table of endpoints is metadata.yaml's, both ways.
    let mut declared = Vec::new();
    for role in ["requires", "provides", "peers"] {
        for (name, spec) in meta[role].as_mapping().into_iter().flatten() {
            declared.push((
                role,
                name.as_str().unwrap().to_owned(),
                spec["interface"].as_str().map(str::to_owned),
                spec["limit"].as_u64(),
            ));
        }
    }
    declared.sort();
    let mut coded: Vec<_> = ENDPOINTS
        .iter()
        .map(|e| {
            (
                e.role.as_str(),
                e.name.to_owned(),
                Some(e.interface.to_owned()),
                e.limit,
            )
        })
        .collect();
    coded.sort();
    assert_eq!(declared, coded, "metadata.yaml and src/charm/endpoints.rs");
    // One database at a time per provider: each relation endpoint takes one.
    for endpoint in [
        MONGODB_CLIENT_ENDPOINT,
        POSTGRESQL_CLIENT_ENDPOINT,
        MONGODB_LEGACY_ENDPOINT,
    ] {
        assert_eq!(
            meta["requires"][endpoint]["limit"].as_u64(),
            Some(1),
            "{endpoint}"
        );
    }
    assert!(
        meta.get("series").is_none(),
        "series: would make this a v1 charm"
    );
}

#[test]
fn manifest_lists_both_bases_with_quoted_channels() {
    let text = std::fs::read_to_string(format!(
        "{}/charm/manifest.yaml",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let m: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
    let channels: Vec<&str> = m["bases"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|b| {
            b["channel"]
                .as_str()
                .expect("channel must be a string, not a float")
        })
        .collect();
    assert_eq!(channels, vec!["22.04", "24.04"]);
}

#[test]
fn actions_yaml_parses() {
    let actions = yaml("actions.yaml");
    assert!(actions["get-master-key"]["description"].as_str().is_some());
}

#[test]
fn shipped_lockfile_matches_the_default_version() {
    let default = parse_server_charm::config::defaults::default_of("parse-server-version")
        .as_str()
        .unwrap();
    let dir = format!("{}/charm/npm/{default}", env!("CARGO_MANIFEST_DIR"));
    let lock: Value =
        serde_json::from_str(&std::fs::read_to_string(format!("{dir}/package-lock.json")).unwrap())
            .unwrap();
    assert_eq!(
        lock["packages"]["node_modules/parse-server"]["version"].as_str(),
        Some(default)
    );
    assert_eq!(
        lock["packages"]["node_modules/router"]["version"].as_str(),
        Some("2.2.0")
    );
    // The mail adapter's transport: the version releases without a lockfile get too.
    let (name, version) = parse_server_charm::workload::install::MAILER;
    assert_eq!(
        lock["packages"][format!("node_modules/{name}")]["version"].as_str(),
        Some(version)
    );
    assert_eq!(
        lock["packages"][""]["dependencies"][name].as_str(),
        Some(version)
    );
}

#[test]
fn the_balancer_check_path_is_the_one_the_service_hooks_answer() {
    use parse_server_charm::relations::haproxy_route::BALANCER_CHECK_PATH;
    let hooks = std::fs::read_to_string(format!(
        "{}/charm/node/service-hooks.js",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    assert!(
        hooks.contains(&format!("const BALANCER_CHECK = '{BALANCER_CHECK_PATH}';")),
        "service-hooks.js answers another path than the route's check"
    );
}

/// The shipped Node files' own tests (tests/node, run with `node --test`): the job
/// scheduler's reading of `_JobSchedule`.
#[test]
fn node_tests_pass() {
    let out = std::process::Command::new("node")
        .args(["--test", "tests/node/"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("node is on PATH (scripts/prereqs.sh checks it)");
    assert!(
        out.status.success(),
        "node --test tests/node/:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("# pass "));
}
