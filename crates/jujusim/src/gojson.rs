//! JSON output byte-compatible with Go's `encoding/json`: sorted keys, `<>&` escaped, Go float format.

use serde_json::Value;

/// Encode `v` like Go's `json.Marshal` (no trailing newline).
pub fn encode(v: &Value) -> String {
    let mut out = String::new();
    write_value(&mut out, v);
    out
}

/// Encode `v` like a juju/cmd `--format=json` output: Go JSON plus one trailing newline.
pub fn encode_line(v: &Value) -> String {
    let mut s = encode(v);
    s.push('\n');
    s
}

fn write_value(out: &mut String, v: &Value) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&number(n)),
        Value::String(s) => write_string(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(out, item);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_string(out, k);
                out.push(':');
                write_value(out, &map[k.as_str()]);
            }
            out.push('}');
        }
    }
}

/// Format a JSON number the way Go formats int64 / float64.
pub fn number(n: &serde_json::Number) -> String {
    if let Some(i) = n.as_i64() {
        return i.to_string();
    }
    if let Some(u) = n.as_u64() {
        return u.to_string();
    }
    go_float(n.as_f64().unwrap_or(0.0))
}

/// Go's `encoding/json` float64 format: shortest repr, exponent form outside [1e-6, 1e21).
pub fn go_float(f: f64) -> String {
    let abs = f.abs();
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        let s = format!("{f:e}");
        match s.split_once('e') {
            Some((mant, exp)) if !exp.starts_with('-') => format!("{mant}e+{exp}"),
            _ => s,
        }
    } else {
        format!("{f}")
    }
}

fn write_string(out: &mut String, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                out.push_str(&format!("\\u{:04x}", c as u32));
            }
            c if (c as u32) < 0x20 => {
                let b = c as u32 as usize;
                out.push_str("\\u00");
                out.push(HEX[b >> 4] as char);
                out.push(HEX[b & 0xf] as char);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sorted_keys_nested() {
        let v = json!({"b": 1, "a": {"z": [1, "x"], "c": null}, "A": true});
        assert_eq!(encode(&v), r#"{"A":true,"a":{"c":null,"z":[1,"x"]},"b":1}"#);
    }

    #[test]
    fn html_escaping_and_controls() {
        let v = json!("<a href=\"x\">&</a>\n\t\u{1}\u{8}\u{c}\u{2028}é");
        assert_eq!(
            encode(&v),
            r#""\u003ca href=\"x\"\u003e\u0026\u003c/a\u003e\n\t\u0001\b\f\u2028é""#
        );
    }

    #[test]
    fn trailing_newline_and_empty_containers() {
        assert_eq!(encode_line(&json!([])), "[]\n");
        assert_eq!(encode_line(&json!({})), "{}\n");
        assert_eq!(encode_line(&Value::Null), "null\n");
    }

    #[test]
    fn go_number_format() {
        assert_eq!(encode(&json!(42)), "42");
        assert_eq!(encode(&json!(-7)), "-7");
        assert_eq!(encode(&json!(1.5)), "1.5");
        assert_eq!(encode(&json!(2.0)), "2");
        assert_eq!(go_float(1e21), "1e+21");
        assert_eq!(go_float(1.5e-7), "1.5e-7");
        assert_eq!(go_float(0.000001), "0.000001");
        assert_eq!(go_float(123456789.0), "123456789");
    }
}
