//! Reading an unpacked charm: metadata.yaml (endpoints, extra-bindings, resources), config.yaml, actions.yaml.

use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;

/// One relation endpoint declared in metadata.yaml.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    /// `provides`, `requires` or `peers`.
    pub role: String,
    pub interface: String,
}

/// One option from config.yaml.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConfigOption {
    /// `string`, `int`, `float`, `boolean` or `secret`.
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub default: Option<Value>,
    #[serde(default)]
    pub description: String,
}

/// A resource declared in metadata.yaml.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ResourceMeta {
    #[serde(default)]
    pub filename: String,
}

/// What the simulator needs from a charm directory.
#[derive(Debug, Clone, Default)]
pub struct CharmInfo {
    pub name: String,
    pub endpoints: BTreeMap<String, Endpoint>,
    pub extra_bindings: Vec<String>,
    pub resources: BTreeMap<String, ResourceMeta>,
    pub config: BTreeMap<String, ConfigOption>,
    /// Raw action specs (JSON-schema-ish), by action name.
    pub actions: BTreeMap<String, Value>,
}

fn yaml_to_json(v: serde_yaml::Value) -> Result<Value> {
    serde_json::to_value(v).map_err(|e| anyhow!("cannot convert YAML to JSON: {e}"))
}

/// Parse metadata.yaml text into `info` (name, endpoints, extra-bindings, resources).
pub fn parse_metadata(text: &str, info: &mut CharmInfo) -> Result<()> {
    let v: Value = yaml_to_json(serde_yaml::from_str(text).context("parsing metadata.yaml")?)?;
    info.name = v
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| anyhow!("metadata.yaml has no name"))?
        .to_string();
    for role in ["provides", "requires", "peers"] {
        if let Some(Value::Object(eps)) = v.get(role) {
            for (name, spec) in eps {
                let interface = match spec {
                    Value::String(s) => s.clone(),
                    Value::Object(m) => m
                        .get("interface")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string(),
                    _ => String::new(),
                };
                info.endpoints.insert(
                    name.clone(),
                    Endpoint {
                        role: role.to_string(),
                        interface,
                    },
                );
            }
        }
    }
    if let Some(Value::Object(b)) = v.get("extra-bindings") {
        info.extra_bindings = b.keys().cloned().collect();
    }
    if let Some(Value::Object(r)) = v.get("resources") {
        for (name, spec) in r {
            let filename = spec
                .get("filename")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            info.resources
                .insert(name.clone(), ResourceMeta { filename });
        }
    }
    Ok(())
}

/// Parse config.yaml text (`options:` map). Defaults are normalised to their declared type.
pub fn parse_config(text: &str) -> Result<BTreeMap<String, ConfigOption>> {
    let v: Value = yaml_to_json(serde_yaml::from_str(text).context("parsing config.yaml")?)?;
    let mut out = BTreeMap::new();
    if let Some(Value::Object(opts)) = v.get("options") {
        for (name, spec) in opts {
            let mut opt: ConfigOption = serde_json::from_value(spec.clone())
                .with_context(|| format!("config option {name:?}"))?;
            if let Some(d) = opt.default.take() {
                opt.default = match d {
                    Value::Null => None,
                    d => Some(
                        normalise_default(&opt.kind, d)
                            .with_context(|| format!("default of option {name:?}"))?,
                    ),
                };
            }
            out.insert(name.clone(), opt);
        }
    }
    Ok(out)
}

fn normalise_default(kind: &str, d: Value) -> Result<Value> {
    Ok(match (kind, &d) {
        ("float", Value::Number(n)) => serde_json::json!(n.as_f64().unwrap_or(0.0)),
        ("int", Value::Number(n)) if n.is_i64() || n.is_u64() => d,
        ("boolean", Value::Bool(_)) => d,
        ("string" | "secret", Value::String(_)) => d,
        ("string" | "secret", Value::Number(n)) => Value::String(n.to_string()),
        _ => bail!("default {d} does not match type {kind:?}"),
    })
}

/// Parse a `juju config` value for an option of type `kind`. Err = message for a usage error.
pub fn parse_config_value(kind: &str, raw: &str) -> std::result::Result<Value, String> {
    match kind {
        "int" => raw
            .trim()
            .parse::<i64>()
            .map(Value::from)
            .map_err(|_| format!("expected int, got {raw:?}")),
        "float" => raw
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|f| f.is_finite())
            .map(Value::from)
            .ok_or_else(|| format!("expected float, got {raw:?}")),
        "boolean" => crate::flags::parse_bool(raw.trim())
            .map(Value::Bool)
            .ok_or_else(|| format!("expected boolean, got {raw:?}")),
        "string" | "secret" => Ok(Value::String(raw.to_string())),
        other => Err(format!("unknown option type {other:?}")),
    }
}

/// Parse actions.yaml text.
pub fn parse_actions(text: &str) -> Result<BTreeMap<String, Value>> {
    let v: Value = yaml_to_json(serde_yaml::from_str(text).context("parsing actions.yaml")?)?;
    match v {
        Value::Object(m) => Ok(m.into_iter().collect()),
        Value::Null => Ok(BTreeMap::new()),
        _ => bail!("actions.yaml is not a mapping"),
    }
}

/// Read metadata.yaml (required), config.yaml and actions.yaml (optional) from a charm dir.
pub fn read_charm_dir(dir: &Path) -> Result<CharmInfo> {
    let mut info = CharmInfo::default();
    let meta = std::fs::read_to_string(dir.join("metadata.yaml"))
        .with_context(|| format!("reading {}/metadata.yaml", dir.display()))?;
    parse_metadata(&meta, &mut info)?;
    if let Ok(text) = std::fs::read_to_string(dir.join("config.yaml")) {
        info.config = parse_config(&text)?;
    }
    if let Ok(text) = std::fs::read_to_string(dir.join("actions.yaml")) {
        info.actions = parse_actions(&text)?;
    }
    Ok(info)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_endpoints() {
        let mut info = CharmInfo::default();
        parse_metadata(
            "name: demo\nprovides: {website: http}\nrequires:\n  db: {interface: mongodb, limit: 1}\npeers:\n  cluster: {interface: c}\nextra-bindings: {admin: }\nresources:\n  bundle: {type: file, filename: b.tgz}\n",
            &mut info,
        )
        .unwrap();
        assert_eq!(info.name, "demo");
        assert_eq!(info.endpoints["website"].interface, "http");
        assert_eq!(info.endpoints["db"].role, "requires");
        assert_eq!(info.endpoints["cluster"].role, "peers");
        assert_eq!(info.extra_bindings, vec!["admin"]);
        assert_eq!(info.resources["bundle"].filename, "b.tgz");
    }

    #[test]
    fn config_types() {
        let c = parse_config("options:\n  port: {type: int, default: 1337}\n  ratio: {type: float, default: 1}\n  id: {type: string}\n").unwrap();
        assert_eq!(c["port"].default, Some(serde_json::json!(1337)));
        assert!(c["ratio"].default.as_ref().unwrap().is_f64());
        assert_eq!(c["id"].default, None);
        assert!(parse_config("options:\n  p: {type: int, default: abc}\n").is_err());
        assert_eq!(parse_config_value("int", "12"), Ok(serde_json::json!(12)));
        assert!(parse_config_value("int", "1.5").is_err());
        assert_eq!(
            parse_config_value("boolean", "True"),
            Ok(serde_json::json!(true))
        );
        assert!(parse_config_value("boolean", "yes").is_err());
        assert_eq!(parse_config_value("float", "2"), Ok(serde_json::json!(2.0)));
    }
}
