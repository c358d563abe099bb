//! A gnuflag-compatible argument parser: interleaved flags, `--`, `-x v`, `-xv`, `--long v`, `--long=v`, bool flags.

use crate::errors::{q, CmdError, CmdResult};

/// One accepted flag.
#[derive(Debug, Clone, Copy)]
pub struct Spec {
    /// Long name (used with `--`), also the lookup key.
    pub long: &'static str,
    /// Optional one-letter alias (used with `-`).
    pub short: Option<char>,
    /// Whether the flag takes a value (otherwise it is a bool flag).
    pub value: bool,
}

/// A bool flag.
pub const fn flag(long: &'static str, short: Option<char>) -> Spec {
    Spec {
        long,
        short,
        value: false,
    }
}

/// A flag taking a value.
pub const fn opt(long: &'static str, short: Option<char>) -> Spec {
    Spec {
        long,
        short,
        value: true,
    }
}

/// Parse result.
#[derive(Debug, Default)]
pub struct Parsed {
    /// Positional arguments in order.
    pub args: Vec<String>,
    /// `-h`/`--help` was given.
    pub help: bool,
    set: Vec<(&'static str, String)>,
}

impl Parsed {
    /// Last value of a value flag.
    pub fn get(&self, long: &str) -> Option<&str> {
        self.set
            .iter()
            .rev()
            .find(|(k, _)| *k == long)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of a repeatable value flag, in order.
    pub fn all(&self, long: &str) -> Vec<&str> {
        self.set
            .iter()
            .filter(|(k, _)| *k == long)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// Whether a bool flag ended up true.
    pub fn on(&self, long: &str) -> bool {
        self.get(long) == Some("true")
    }

    /// Whether the flag appeared at all.
    pub fn given(&self, long: &str) -> bool {
        self.set.iter().any(|(k, _)| *k == long)
    }
}

/// Go's `strconv.ParseBool`.
pub fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

/// Parse `argv` (without the program name) against `specs`. Stops at the first `-h`/`--help`.
pub fn parse(specs: &[Spec], argv: &[String]) -> CmdResult<Parsed> {
    let mut p = Parsed::default();
    let mut i = 0;
    while i < argv.len() {
        let a = &argv[i];
        i += 1;
        if a == "--" {
            p.args.extend(argv[i..].iter().cloned());
            break;
        }
        if let Some(body) = a.strip_prefix("--") {
            let (name, inline) = match body.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (body, None),
            };
            if name == "help" {
                p.help = true;
                return Ok(p);
            }
            let spec = specs.iter().find(|s| s.long == name).ok_or_else(|| {
                CmdError::usage(format!("flag provided but not defined: --{name}"))
            })?;
            let flag_name = format!("--{name}");
            let v = take_value(spec, &flag_name, inline, argv, &mut i)?;
            p.set.push((spec.long, v));
        } else if a.len() > 1 && a.starts_with('-') {
            let body = &a[1..];
            for (idx, c) in body.char_indices() {
                if c == 'h' {
                    p.help = true;
                    return Ok(p);
                }
                let spec = specs.iter().find(|s| s.short == Some(c)).ok_or_else(|| {
                    CmdError::usage(format!("flag provided but not defined: -{c}"))
                })?;
                let flag_name = format!("-{c}");
                if spec.value {
                    let rest = &body[idx + c.len_utf8()..];
                    let rest = rest.strip_prefix('=').unwrap_or(rest);
                    let inline = (!rest.is_empty()).then(|| rest.to_string());
                    let v = take_value(spec, &flag_name, inline, argv, &mut i)?;
                    p.set.push((spec.long, v));
                    break;
                }
                p.set.push((spec.long, "true".to_string()));
            }
        } else {
            p.args.push(a.clone());
        }
    }
    Ok(p)
}

fn take_value(
    spec: &Spec,
    flag_name: &str,
    inline: Option<String>,
    argv: &[String],
    i: &mut usize,
) -> CmdResult<String> {
    if spec.value {
        if let Some(v) = inline {
            return Ok(v);
        }
        if *i < argv.len() {
            *i += 1;
            return Ok(argv[*i - 1].clone());
        }
        return Err(CmdError::usage(format!(
            "flag needs an argument: {flag_name}"
        )));
    }
    match inline {
        None => Ok("true".to_string()),
        Some(v) => match parse_bool(&v) {
            Some(b) => Ok(b.to_string()),
            None => Err(CmdError::usage(format!(
                "invalid value {} for flag {flag_name}: strconv.ParseBool: parsing {}: invalid syntax",
                q(&v),
                q(&v)
            ))),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    const SPECS: &[Spec] = &[
        opt("relation", Some('r')),
        flag("app", None),
        opt("format", None),
    ];

    #[test]
    fn interleaved_and_forms() {
        let p = parse(
            SPECS,
            &v(&["key", "-r", "db:1", "--app", "--format=json", "u/0"]),
        )
        .unwrap();
        assert_eq!(p.args, v(&["key", "u/0"]));
        assert_eq!(p.get("relation"), Some("db:1"));
        assert!(p.on("app"));
        assert_eq!(p.get("format"), Some("json"));
        let p = parse(SPECS, &v(&["-rdb:2", "--relation", "db:3", "--app=false"])).unwrap();
        assert_eq!(p.get("relation"), Some("db:3"));
        assert!(!p.on("app"));
    }

    #[test]
    fn double_dash_ends_flags() {
        let p = parse(SPECS, &v(&["--", "--app", "-x"])).unwrap();
        assert_eq!(p.args, v(&["--app", "-x"]));
        assert!(!p.on("app"));
        let p = parse(SPECS, &v(&["-"])).unwrap();
        assert_eq!(p.args, v(&["-"]));
    }

    #[test]
    fn errors_are_usage() {
        let e = parse(SPECS, &v(&["--foo"])).unwrap_err();
        assert_eq!(
            (e.code, e.msg.as_str()),
            (2, "flag provided but not defined: --foo")
        );
        assert_eq!(parse(SPECS, &v(&["-x"])).unwrap_err().code, 2);
        assert_eq!(parse(SPECS, &v(&["-r"])).unwrap_err().code, 2);
        assert_eq!(parse(SPECS, &v(&["--app=maybe"])).unwrap_err().code, 2);
    }

    #[test]
    fn help() {
        assert!(parse(SPECS, &v(&["x", "-h"])).unwrap().help);
        assert!(parse(SPECS, &v(&["--help"])).unwrap().help);
    }
}
