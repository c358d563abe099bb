//! The options' defaults, from config.yaml (embedded at build time): the one place they are
//! written. `config-get` already includes them on a unit; the charm needs them itself for an
//! option Juju reports without a value.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde_json::Value;

const CONFIG_YAML: &str = include_str!("../../config.yaml");

/// Every option declared in config.yaml, with its default (`Value::Null` when it has none).
pub fn defaults() -> &'static BTreeMap<String, Value> {
    static DEFAULTS: OnceLock<BTreeMap<String, Value>> = OnceLock::new();
    DEFAULTS.get_or_init(|| {
        let doc: serde_yaml::Value =
            serde_yaml::from_str(CONFIG_YAML).expect("config.yaml is embedded and valid YAML");
        let options = doc
            .get("options")
            .and_then(|o| o.as_mapping())
            .expect("config.yaml has an options mapping");
        options
            .iter()
            .filter_map(|(k, v)| {
                let name = k.as_str()?.to_owned();
                let default = v
                    .get("default")
                    .map(|d| serde_json::to_value(d).unwrap_or(Value::Null))
                    .unwrap_or(Value::Null);
                Some((name, default))
            })
            .collect()
    })
}

/// The default of `option`. Panics for an option config.yaml does not declare: the code
/// and config.yaml disagree, which the unit tests catch.
pub fn default_of(option: &str) -> &'static Value {
    defaults()
        .get(option)
        .unwrap_or_else(|| panic!("option {option:?} is not declared in config.yaml"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_yaml_declares_defaults() {
        assert_eq!(default_of("port"), &Value::from(1337));
        assert_eq!(default_of("mount-path"), &Value::from("/parse"));
        assert_eq!(default_of("master-key"), &Value::from(""));
    }
}
