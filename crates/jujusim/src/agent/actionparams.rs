//! Action parameters for `jujusim action`: `key=value` args typed and validated by actions.yaml (defaults filled in).

use crate::errors::{q, CmdError, CmdResult};
use serde_json::{Map, Value};

/// Parse a command-line value as `juju run` does (YAML), then coerce to the schema type.
fn typed(key: &str, ty: Option<&str>, raw: &str) -> CmdResult<Value> {
    let yaml: Value = if raw.is_empty() {
        Value::String(String::new())
    } else {
        serde_yaml::from_str::<serde_yaml::Value>(raw)
            .ok()
            .and_then(|v| serde_json::to_value(v).ok())
            .unwrap_or_else(|| Value::String(raw.to_string()))
    };
    let bad = |t: &str| {
        CmdError::usage(format!(
            "validation failed: param {} must be of type {t}, got {}",
            q(key),
            q(raw)
        ))
    };
    Ok(match ty {
        Some("string") => Value::String(raw.to_string()),
        Some("integer") if yaml.is_i64() || yaml.is_u64() => yaml,
        Some("number") if yaml.is_number() => yaml,
        Some("boolean") if yaml.is_boolean() => yaml,
        Some("array") if yaml.is_array() => yaml,
        Some("object") if yaml.is_object() => yaml,
        Some(t @ ("integer" | "number" | "boolean" | "array" | "object")) => return Err(bad(t)),
        _ => yaml,
    })
}

/// Build the params of one action run from its spec and `key=value` args.
pub fn build(action: &str, spec: &Value, args: &[String]) -> CmdResult<Map<String, Value>> {
    let empty = Map::new();
    let props = spec
        .get("params")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let mut out = Map::new();
    for a in args {
        let (k, raw) = a.split_once('=').ok_or_else(|| {
            CmdError::usage(format!("argument {} must be of the form key=value", q(a)))
        })?;
        let keys: Vec<&str> = k.split('.').collect();
        if keys.iter().any(|s| s.is_empty()) {
            return Err(CmdError::usage(format!("invalid param key {}", q(k))));
        }
        let ty = props
            .get(keys[0])
            .and_then(|s| s.get("type"))
            .and_then(Value::as_str);
        let v = if keys.len() == 1 {
            typed(k, ty, raw)?
        } else {
            typed(k, None, raw)?
        };
        insert_path(&mut out, &keys, v);
    }
    for (k, s) in props {
        if let Some(d) = s.get("default") {
            out.entry(k.clone()).or_insert_with(|| d.clone());
        }
    }
    if let Some(Value::Array(req)) = spec.get("required") {
        for r in req.iter().filter_map(Value::as_str) {
            if !out.contains_key(r) {
                return Err(CmdError::usage(format!(
                    "validation failed: action {} requires param {}",
                    q(action),
                    q(r)
                )));
            }
        }
    }
    if spec.get("additionalProperties") == Some(&Value::Bool(false)) {
        for k in out.keys() {
            if !props.contains_key(k) {
                return Err(CmdError::usage(format!(
                    "validation failed: additional property {} is not allowed for action {}",
                    q(k),
                    q(action)
                )));
            }
        }
    }
    Ok(out)
}

/// Insert `value` at the dotted path `keys`, creating maps as needed.
pub fn insert_path(map: &mut Map<String, Value>, keys: &[&str], value: Value) {
    match keys {
        [] => {}
        [k] => {
            map.insert(k.to_string(), value);
        }
        [k, rest @ ..] => {
            let e = map
                .entry(k.to_string())
                .or_insert_with(|| Value::Object(Map::new()));
            if !e.is_object() {
                *e = Value::Object(Map::new());
            }
            if let Value::Object(inner) = e {
                insert_path(inner, rest, value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn v(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn typing_defaults_validation() {
        let spec = json!({
            "params": {
                "target": {"type": "string"},
                "count": {"type": "integer", "default": 3},
                "force": {"type": "boolean"}
            },
            "required": ["target"],
            "additionalProperties": false
        });
        let p = build("backup", &spec, &v(&["target=123", "force=true"])).unwrap();
        assert_eq!(
            Value::Object(p),
            json!({"target": "123", "count": 3, "force": true})
        );
        assert_eq!(
            build("backup", &spec, &v(&["count=x", "target=a"]))
                .unwrap_err()
                .code,
            2
        );
        assert_eq!(build("backup", &spec, &v(&[])).unwrap_err().code, 2);
        assert_eq!(
            build("backup", &spec, &v(&["target=a", "other=1"]))
                .unwrap_err()
                .code,
            2
        );
        assert_eq!(
            build("backup", &spec, &v(&["noequals"])).unwrap_err().code,
            2
        );
        let free = build("x", &json!({}), &v(&["a.b=1", "c=hi"])).unwrap();
        assert_eq!(Value::Object(free), json!({"a": {"b": 1}, "c": "hi"}));
    }
}
