//! `key=value` argument parsing and `--file` settings (YAML/JSON mapping) for relation-set, state-set, leader-set.

use crate::errors::{q, CmdError, CmdResult};
use std::collections::BTreeMap;

/// Parse `key=value` args (juju/utils keyvalues): split on the first `=`, trim whitespace,
/// `key=` keeps an empty value (meaning delete), duplicates and missing `=` are usage errors.
pub fn parse_pairs(args: &[String]) -> CmdResult<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for a in args {
        let (k, v) = a
            .split_once('=')
            .ok_or_else(|| CmdError::usage(format!("expected \"key=value\", got {}", q(a))))?;
        let (k, v) = (k.trim(), v.trim());
        if k.is_empty() {
            return Err(CmdError::usage(format!(
                "expected \"key=value\", got {}",
                q(a)
            )));
        }
        if out.insert(k.to_string(), v.to_string()).is_some() {
            return Err(CmdError::usage(format!(
                "key {} specified more than once",
                q(k)
            )));
        }
    }
    Ok(out)
}

/// Parse a settings file: a YAML (or JSON) mapping of strings; scalars keep their literal
/// text, null becomes "" (delete). Errors are runtime errors (the file is read at run time).
pub fn parse_settings(text: &str) -> CmdResult<BTreeMap<String, String>> {
    if text.trim().is_empty() {
        return Ok(BTreeMap::new());
    }
    let m: BTreeMap<String, Option<String>> = serde_yaml::from_str(text)
        .map_err(|e| CmdError::runtime(format!("cannot parse settings: {e}")))?;
    Ok(m.into_iter()
        .map(|(k, v)| (k, v.unwrap_or_default()))
        .collect())
}

/// Read a settings `--file` argument: `-` reads stdin. Returns the text.
pub fn read_file_arg(path: &str) -> CmdResult<String> {
    use std::io::Read;
    if path == "-" {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .map_err(|e| CmdError::runtime(format!("cannot read settings from stdin: {e}")))?;
        Ok(s)
    } else {
        std::fs::read_to_string(path)
            .map_err(|e| CmdError::runtime(format!("cannot read settings file {}: {e}", q(path))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn pairs_basic_and_delete() {
        let m = parse_pairs(&v(&["a=1", "b=", "c = x=y "])).unwrap();
        assert_eq!(m["a"], "1");
        assert_eq!(m["b"], "");
        assert_eq!(m["c"], "x=y");
    }

    #[test]
    fn pairs_errors_exit_2() {
        let e = parse_pairs(&v(&["a=1", "a=2"])).unwrap_err();
        assert_eq!(e.code, 2);
        assert_eq!(e.msg, "key \"a\" specified more than once");
        let e = parse_pairs(&v(&["novalue"])).unwrap_err();
        assert_eq!(
            (e.code, e.msg.as_str()),
            (2, "expected \"key=value\", got \"novalue\"")
        );
        assert_eq!(parse_pairs(&v(&["=x"])).unwrap_err().code, 2);
        assert!(parse_pairs(&[]).unwrap().is_empty());
    }

    #[test]
    fn settings_yaml_and_json() {
        let m = parse_settings("{\"user\": \"u\", \"port\": 27017, \"gone\": \"\"}").unwrap();
        assert_eq!(m["user"], "u");
        assert_eq!(m["port"], "27017");
        assert_eq!(m["gone"], "");
        let m = parse_settings("a: 1.0\nb: true\nc: ~\n").unwrap();
        assert_eq!(
            (m["a"].as_str(), m["b"].as_str(), m["c"].as_str()),
            ("1.0", "true", "")
        );
        assert!(parse_settings("").unwrap().is_empty());
        assert_eq!(parse_settings("- a\n").unwrap_err().code, 1);
        assert_eq!(parse_settings("a: [1]\n").unwrap_err().code, 1);
    }
}
