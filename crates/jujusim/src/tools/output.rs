//! Tool output: `--format smart|yaml|json` rendering and `-o/--output <file>`.

use crate::errors::{q, CmdError, CmdResult};
use crate::flags::{opt, Parsed, Spec};
use crate::gojson;
use serde_json::Value;

/// The two flags every output-producing tool accepts.
pub const FORMAT_FLAGS: [Spec; 2] = [opt("format", None), opt("output", Some('o'))];

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Smart,
    Yaml,
    Json,
}

/// Parsed output options.
#[derive(Debug, Clone)]
pub struct OutOpts {
    pub format: Format,
    pub file: Option<String>,
}

impl OutOpts {
    /// Read `--format` and `-o` from parsed flags (format defaults to smart).
    pub fn from(p: &Parsed) -> CmdResult<OutOpts> {
        let format = match p.get("format") {
            None | Some("smart") => Format::Smart,
            Some("yaml") => Format::Yaml,
            Some("json") => Format::Json,
            Some(other) => {
                return Err(CmdError::usage(format!(
                    "invalid value {} for flag --format: unknown format {}",
                    q(other),
                    q(other)
                )))
            }
        };
        Ok(OutOpts {
            format,
            file: p.get("output").map(str::to_string),
        })
    }
}

/// Render a value in the given format (including any trailing newline).
pub fn render(format: Format, v: &Value) -> String {
    match format {
        Format::Json => gojson::encode_line(v),
        Format::Yaml => yaml(v),
        Format::Smart => smart(v),
    }
}

fn smart(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) if s.is_empty() => String::new(),
        Value::String(s) => format!("{s}\n"),
        Value::Bool(true) => "True\n".to_string(),
        Value::Bool(false) => "False\n".to_string(),
        Value::Number(n) => format!("{}\n", gojson::number(n)),
        Value::Array(items) => items
            .iter()
            .map(|i| match i {
                Value::String(s) => format!("{s}\n"),
                other => format!("{}\n", gojson::encode(other)),
            })
            .collect(),
        Value::Object(_) => yaml(v),
    }
}

fn to_yaml_value(v: &Value) -> serde_yaml::Value {
    match v {
        Value::Null => serde_yaml::Value::Null,
        Value::Bool(b) => serde_yaml::Value::Bool(*b),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                serde_yaml::Value::Number(i.into())
            } else if let Some(u) = n.as_u64() {
                serde_yaml::Value::Number(u.into())
            } else {
                serde_yaml::Value::Number(n.as_f64().unwrap_or(0.0).into())
            }
        }
        Value::String(s) => serde_yaml::Value::String(s.clone()),
        Value::Array(a) => serde_yaml::Value::Sequence(a.iter().map(to_yaml_value).collect()),
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let mut out = serde_yaml::Mapping::new();
            for k in keys {
                out.insert(
                    serde_yaml::Value::String(k.clone()),
                    to_yaml_value(&m[k.as_str()]),
                );
            }
            serde_yaml::Value::Mapping(out)
        }
    }
}

fn yaml(v: &Value) -> String {
    serde_yaml::to_string(&to_yaml_value(v)).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn smart_rules() {
        assert_eq!(render(Format::Smart, &json!("")), "");
        assert_eq!(render(Format::Smart, &json!("abc")), "abc\n");
        assert_eq!(render(Format::Smart, &json!(true)), "True\n");
        assert_eq!(render(Format::Smart, &json!(false)), "False\n");
        assert_eq!(render(Format::Smart, &Value::Null), "");
        assert_eq!(render(Format::Smart, &json!(["b", "a"])), "b\na\n");
        assert_eq!(
            render(Format::Smart, &json!({"b": "1", "a": "2"})),
            "a: '2'\nb: '1'\n"
        );
    }

    #[test]
    fn json_is_go_json() {
        assert_eq!(
            render(Format::Json, &json!({"k": "<&>"})),
            "{\"k\":\"\\u003c\\u0026\\u003e\"}\n"
        );
    }

    #[test]
    fn bad_format_is_usage() {
        let p = crate::flags::parse(&FORMAT_FLAGS, &["--format=xml".to_string()]).unwrap();
        assert_eq!(OutOpts::from(&p).unwrap_err().code, 2);
    }
}
