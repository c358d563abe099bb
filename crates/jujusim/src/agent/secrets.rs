//! Juju 3.x secrets, tool-independent parts: IDs and URIs, content arguments
//! (`key=value`, `key#base64=...`, `key#file=path`, `--file`), expiry/rotation, ownership
//! rules and the redaction of secret values in the tool-call log.

use crate::agent::state::{Secret, State};
use crate::errors::{q, CmdError, CmdResult};
use crate::util;
use std::collections::BTreeMap;

/// Valid `--rotate` policies and their intervals in seconds (None = never rotates).
pub const ROTATE_POLICIES: &[(&str, Option<i64>)] = &[
    ("never", None),
    ("hourly", Some(3600)),
    ("daily", Some(86_400)),
    ("weekly", Some(7 * 86_400)),
    ("monthly", Some(30 * 86_400)),
    ("quarterly", Some(90 * 86_400)),
    ("yearly", Some(365 * 86_400)),
];

/// Value flags of secret-add / secret-set (none of them secret).
pub const UPSERT_VALUE_FLAGS: &[&str] =
    &["owner", "label", "description", "expire", "rotate", "file"];

/// The marker that replaces secret values in the tool-call log.
pub const REDACTED: &str = "<redacted>";

/// Juju's key rule `^[a-z](-?[a-z0-9]){2,}$`.
pub fn valid_key(k: &str) -> bool {
    let b = k.as_bytes();
    if b.is_empty() || !b[0].is_ascii_lowercase() {
        return false;
    }
    let mut groups = 0;
    let mut i = 1;
    while i < b.len() {
        if b[i] == b'-' {
            i += 1;
        }
        match b.get(i) {
            Some(c) if c.is_ascii_lowercase() || c.is_ascii_digit() => {
                groups += 1;
                i += 1;
            }
            _ => return false,
        }
    }
    groups >= 2
}

fn valid_id(id: &str) -> bool {
    id.len() == 20
        && id
            .bytes()
            .all(|c| c.is_ascii_digit() || c.is_ascii_lowercase())
}

/// Parse `secret:<id>`, `secret://<model-uuid>/<id>` or a bare `<id>`; returns the ID.
pub fn parse_uri(s: &str) -> Option<String> {
    let id = if let Some(rest) = s.strip_prefix("secret://") {
        rest.rsplit_once('/').map(|(_, id)| id)?
    } else {
        s.strip_prefix("secret:").unwrap_or(s)
    };
    valid_id(id).then(|| id.to_string())
}

/// The usage error for a bad URI argument.
pub fn bad_uri(s: &str) -> CmdError {
    CmdError::usage(format!("secret URI {} not valid", q(s)))
}

/// A new random ID (xid alphabet: 0-9a-v, 20 chars) for which `taken` is false.
pub fn new_id(taken: impl Fn(&str) -> bool) -> String {
    const ALPHABET: &[u8; 32] = b"0123456789abcdefghijklmnopqrstuv";
    loop {
        let id: String = util::random_bytes(20)
            .iter()
            .map(|b| ALPHABET[(*b & 31) as usize] as char)
            .collect();
        if !taken(&id) {
            return id;
        }
    }
}

/// Go's `time.ParseDuration`, in (possibly fractional, signed) seconds.
pub fn parse_go_duration(s: &str) -> Option<f64> {
    let (neg, mut rest) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if rest == "0" {
        return Some(0.0);
    }
    if rest.is_empty() {
        return None;
    }
    let mut total = 0.0;
    while !rest.is_empty() {
        let n = rest
            .bytes()
            .take_while(|c| c.is_ascii_digit() || *c == b'.')
            .count();
        let num: f64 = rest[..n].parse().ok()?;
        rest = &rest[n..];
        let u = rest
            .char_indices()
            .find(|(_, c)| c.is_ascii_digit() || *c == '.')
            .map(|(i, _)| i)
            .unwrap_or(rest.len());
        let unit = match &rest[..u] {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        rest = &rest[u..];
        total += num * unit;
    }
    Some(if neg { -total } else { total })
}

/// `--expire`: RFC 3339, `2006-01-02T15:04:05` (UTC) or a positive Go duration from `now`.
/// Returns the expiry as RFC 3339 UTC.
pub fn parse_expire(spec: &str, now: i64) -> CmdResult<String> {
    if let Some(t) = util::parse_rfc3339(spec, true) {
        return Ok(util::rfc3339_at(t));
    }
    match parse_go_duration(spec) {
        Some(d) if d > 0.0 => Ok(util::rfc3339_at(now + d.ceil() as i64)),
        Some(_) => Err(CmdError::usage(format!(
            "negative expire duration {} not valid",
            q(spec)
        ))),
        None => Err(CmdError::usage(format!(
            "expire time or duration {} not valid",
            q(spec)
        ))),
    }
}

/// Validate a `--rotate` policy; returns the next rotation time (None for `never`).
pub fn rotate_next(policy: &str, now: i64) -> CmdResult<Option<String>> {
    match ROTATE_POLICIES.iter().find(|(p, _)| *p == policy) {
        Some((_, interval)) => Ok(interval.map(|i| util::rfc3339_at(now + i))),
        None => Err(CmdError::usage(format!(
            "rotate policy {} not valid",
            q(policy)
        ))),
    }
}

/// Base64-encode raw values, resolving `#base64` keys and validating every key
/// (Juju's `encodeBase64`). Errors are usage errors.
fn encode_content(raw: Vec<(String, Vec<u8>)>) -> CmdResult<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for (k, v) in raw {
        let (key, value) = match k.strip_suffix("#base64") {
            Some(key) => {
                let text = String::from_utf8_lossy(&v).into_owned();
                if util::base64_decode(&text).is_none() {
                    return Err(CmdError::usage(format!(
                        "value of secret key {} is not valid base64",
                        q(key)
                    )));
                }
                (key.to_string(), text)
            }
            None => (k.clone(), util::base64(&v)),
        };
        if !valid_key(&key) {
            return Err(CmdError::usage(format!("key {} not valid", q(&key))));
        }
        out.insert(key, value);
    }
    Ok(out)
}

/// Parse content arguments like Juju's `CreateSecretData`: split at the first `=` (after
/// ignoring trailing base64 padding), `key#file=path` reads the file now (a read error is a
/// runtime error, exit 1), `key#base64=...` is taken as already encoded. Returns base64 values.
pub fn parse_content_args(args: &[String]) -> CmdResult<BTreeMap<String, String>> {
    let mut raw: Vec<(String, Vec<u8>)> = Vec::new();
    for a in args {
        let stripped = a.trim_end_matches('=');
        let idx = match stripped.find('=') {
            Some(i) if i >= 1 => i,
            // Never echo the argument: it may be a mistyped secret value.
            _ => {
                return Err(CmdError::usage(format!(
                "key value {} not valid (expected key=value, key#base64=value or key#file=path)",
                q(&redact_kv(a))
            )))
            }
        };
        let (key, value) = (&a[..idx], &a[idx + 1..]);
        match key.strip_suffix("#file") {
            Some(k) => {
                let data = std::fs::read(value).map_err(|e| {
                    CmdError::runtime(format!(
                        "reading content for secret key {}: open {value}: {}",
                        q(k),
                        io_text(&e)
                    ))
                })?;
                raw.push((k.to_string(), data));
            }
            None => raw.push((key.to_string(), value.as_bytes().to_vec())),
        }
    }
    encode_content(raw)
}

/// Go-style text of an I/O error (`no such file or directory`).
fn io_text(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.split_once(" (os error") {
        Some((msg, _)) => msg.to_lowercase(),
        None => s,
    }
}

/// `--file F`: a YAML or JSON mapping of key (or `key#base64`) to value. Read errors are
/// runtime errors (exit 1).
pub fn read_content_file(path: &str) -> CmdResult<BTreeMap<String, String>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| CmdError::runtime(format!("open {path}: {}", io_text(&e))))?;
    let m = crate::keyvalue::parse_settings(&text)?;
    encode_content(m.into_iter().map(|(k, v)| (k, v.into_bytes())).collect())
}

/// A stored (base64) value as the string secret-get prints.
pub fn decode_value(b64: &str) -> String {
    String::from_utf8_lossy(&util::base64_decode(b64).unwrap_or_default()).into_owned()
}

/// Decoded content map as JSON.
pub fn content_json(content: &BTreeMap<String, String>) -> serde_json::Value {
    serde_json::Value::Object(
        content
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::Value::String(decode_value(v))))
            .collect(),
    )
}

/// Whether the secret belongs to this unit or its application (may be read, by any unit of
/// the owning application, and managed, subject to the leader rule).
pub fn owned(st: &State, s: &Secret) -> bool {
    match s.owner.as_str() {
        "unit" => s.owner_id == st.unit,
        "model" => false,
        _ => s.owner_id == st.app,
    }
}

/// Whether the secret belongs to a remote application and is granted to one of this unit's
/// relations, or is a user secret granted to the application: then every unit of ours in
/// that relation (or of the application) may read it (as a consumer, with its own tracked
/// revision and label).
pub fn consumable(st: &State, s: &Secret) -> bool {
    if s.owner == "model" {
        return s.granted_to_app;
    }
    !owned(st, s) && s.owner != "unit" && s.grants.iter().any(|r| st.relations.contains_key(r))
}

/// Whether secret-ids / secret-info-get show the secret: unit-owned ones of this unit, and
/// application-owned ones only on the leader (Juju's `GetSecretMetadata`).
pub fn metadata_visible(st: &State, s: &Secret) -> bool {
    owned(st, s) && (s.owner == "unit" || st.leader)
}

/// `jujusim secret-reveal` (what `juju show-secret --reveal` shows): the latest committed
/// content of the secret with this URI/ID or label as Go JSON plus newline, or with `key` that
/// value raw plus a newline.
pub fn reveal(st: &State, what: &str, key: Option<&str>) -> CmdResult<String> {
    let by_id = parse_uri(what).and_then(|id| st.secrets.get(&id));
    let s = by_id
        .or_else(|| st.secrets.values().find(|s| s.label == what))
        .ok_or_else(|| CmdError::runtime(format!("secret {} not found", q(what))))?;
    let content = s.latest_content();
    match key {
        None => Ok(crate::gojson::encode_line(&content_json(&content))),
        Some(k) => {
            let v = content
                .get(k)
                .ok_or_else(|| CmdError::runtime(format!("secret key {} not found", q(k))))?;
            Ok(format!("{}\n", decode_value(v)))
        }
    }
}

/// `key=<redacted>` for a content argument; `key#file=path` stays (the path is not secret);
/// an argument without `=` is replaced whole.
pub fn redact_kv(a: &str) -> String {
    match a.split_once('=') {
        Some((k, _)) if k.ends_with("#file") => a.to_string(),
        Some((k, _)) if !k.is_empty() => format!("{k}={REDACTED}"),
        _ => REDACTED.to_string(),
    }
}

/// The argv of secret-add / secret-set as logged: every content value replaced by
/// `<redacted>` (flag values, the URI of secret-set and `#file` paths are kept).
pub fn redact_args(tool: &str, args: &[String]) -> Vec<String> {
    let mut out = Vec::with_capacity(args.len());
    let mut positional = 0;
    let mut flags_done = false;
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        i += 1;
        if !flags_done {
            if a == "--" {
                flags_done = true;
                out.push(a.clone());
                continue;
            }
            if let Some(body) = a.strip_prefix("--") {
                out.push(a.clone());
                if !body.contains('=') && UPSERT_VALUE_FLAGS.contains(&body) && i < args.len() {
                    out.push(args[i].clone());
                    i += 1;
                }
                continue;
            }
            if a.len() > 1 && a.starts_with('-') {
                out.push(a.clone());
                continue;
            }
        }
        if tool == "secret-set" && positional == 0 {
            out.push(a.clone());
        } else {
            out.push(redact_kv(a));
        }
        positional += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn key_rule() {
        for ok in ["abc", "a-b-c", "pass-word2", "a12", "abc-def"] {
            assert!(valid_key(ok), "{ok}");
        }
        for bad in [
            "ab", "Abc", "1ab", "a--b", "ab-", "a_bc", "a-b", "", "-abc", "abc!",
        ] {
            assert!(!valid_key(bad), "{bad}");
        }
    }

    #[test]
    fn uris() {
        let id = "cq1v7bvmp25c77di8nm0";
        assert_eq!(parse_uri(&format!("secret:{id}")).as_deref(), Some(id));
        assert_eq!(parse_uri(id).as_deref(), Some(id));
        assert_eq!(
            parse_uri(&format!(
                "secret://0e5b7d6c-1234-4c1a-9b8e-2f1f1a1a1a1a/{id}"
            ))
            .as_deref(),
            Some(id)
        );
        assert_eq!(parse_uri("secret:short"), None);
        assert_eq!(parse_uri("secret:CQ1V7BVMP25C77DI8NM0"), None);
        let n = new_id(|_| false);
        assert_eq!(parse_uri(&format!("secret:{n}")), Some(n));
    }

    #[test]
    fn durations_and_expiry() {
        assert_eq!(parse_go_duration("24h"), Some(86_400.0));
        assert_eq!(parse_go_duration("1h30m"), Some(5400.0));
        assert_eq!(parse_go_duration("1.5h"), Some(5400.0));
        assert_eq!(parse_go_duration("-1h"), Some(-3600.0));
        assert_eq!(parse_go_duration("10"), None);
        assert_eq!(parse_go_duration("2022-01-01"), None);
        assert_eq!(parse_expire("1h", 0).unwrap(), "1970-01-01T01:00:00Z");
        assert_eq!(
            parse_expire("2025-01-01T06:06:06", 0).unwrap(),
            "2025-01-01T06:06:06Z"
        );
        let e = parse_expire("-1h", 0).unwrap_err();
        assert_eq!(
            (e.code, e.msg.as_str()),
            (2, "negative expire duration \"-1h\" not valid")
        );
        let e = parse_expire("2022-01-01", 0).unwrap_err();
        assert_eq!(
            (e.code, e.msg.as_str()),
            (2, "expire time or duration \"2022-01-01\" not valid")
        );
        assert_eq!(rotate_next("never", 0).unwrap(), None);
        assert_eq!(
            rotate_next("daily", 0).unwrap().as_deref(),
            Some("1970-01-02T00:00:00Z")
        );
        assert_eq!(rotate_next("fortnightly", 0).unwrap_err().code, 2);
    }

    #[test]
    fn content_forms() {
        let dir = std::env::temp_dir().join(format!("jujusim-secrets-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("pw");
        std::fs::write(&f, "line1\nline2=x\n").unwrap();
        let m = parse_content_args(&v(&[
            "user=admin=x",
            "token#base64=czNjcmV0",
            &format!("password#file={}", f.display()),
        ]))
        .unwrap();
        assert_eq!(decode_value(&m["user"]), "admin=x");
        assert_eq!(decode_value(&m["token"]), "s3cret");
        assert_eq!(decode_value(&m["password"]), "line1\nline2=x\n");
        // Missing #file: runtime error naming the key and path, exit 1.
        let e = parse_content_args(&v(&["password#file=/nonexistent/pw"])).unwrap_err();
        assert_eq!(e.code, 1);
        assert!(
            e.msg.contains("\"password\"") && e.msg.contains("/nonexistent/pw"),
            "{}",
            e.msg
        );
        // Bad keys and shapes are usage errors; the value is never echoed.
        let e = parse_content_args(&v(&["Password=hunter2"])).unwrap_err();
        assert_eq!((e.code, e.msg.as_str()), (2, "key \"Password\" not valid"));
        let e = parse_content_args(&v(&["hunter2"])).unwrap_err();
        assert_eq!(e.code, 2);
        assert!(!e.msg.contains("hunter2"), "{}", e.msg);
        assert_eq!(parse_content_args(&v(&["abc="])).unwrap_err().code, 2);
        assert_eq!(parse_content_args(&v(&["=abc"])).unwrap_err().code, 2);
        assert_eq!(
            parse_content_args(&v(&["abc#base64=!!"])).unwrap_err().code,
            2
        );
        // --file: YAML mapping.
        let y = dir.join("c.yaml");
        std::fs::write(&y, "user: admin\nport: 5\ncert#base64: czNjcmV0\n").unwrap();
        let m = read_content_file(y.to_str().unwrap()).unwrap();
        assert_eq!(decode_value(&m["port"]), "5");
        assert_eq!(decode_value(&m["cert"]), "s3cret");
        assert_eq!(
            read_content_file("/nonexistent/c.yaml").unwrap_err().code,
            1
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn redaction() {
        let args = v(&[
            "--label",
            "db=pw",
            "password=hunter2",
            "--description=x=y",
            "token#base64=czNjcmV0",
            "cert#file=/tmp/c.pem",
            "oops",
            "--",
            "--not-a-flag=zzz",
        ]);
        assert_eq!(
            redact_args("secret-add", &args),
            v(&[
                "--label",
                "db=pw",
                "password=<redacted>",
                "--description=x=y",
                "token#base64=<redacted>",
                "cert#file=/tmp/c.pem",
                "<redacted>",
                "--",
                "--not-a-flag=<redacted>",
            ])
        );
        let args = v(&[
            "secret:cq1v7bvmp25c77di8nm0",
            "pw=hunter2",
            "--rotate",
            "daily",
        ]);
        assert_eq!(
            redact_args("secret-set", &args),
            v(&[
                "secret:cq1v7bvmp25c77di8nm0",
                "pw=<redacted>",
                "--rotate",
                "daily"
            ])
        );
    }
}
