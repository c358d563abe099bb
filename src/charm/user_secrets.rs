//! Values the operator keeps in Juju user secrets (Juju ≥ 3.3): `master-key`, `redis-url` and
//! `database-uri` may hold a `secret:` URI instead of the value, after
//!
//! ```text
//! juju add-secret parse-db database-uri=postgresql://…      # prints secret:<id>
//! juju grant-secret parse-db parse-server
//! juju config parse-server database-uri=secret:<id>
//! ```
//!
//! The options stay `type: string` so that plain values keep working; Juju checks nothing
//! about a `secret:` string there (it would for a `type: secret` option), so the charm does:
//! the URI's form, that the application may read it, and which key holds the value (the key
//! named like the option, else the secret's only key). Every read is `--refresh`: a unit
//! always serves the latest revision it has read, and a new revision reaches the units one at
//! a time through the rolling restart like any other change. `juju grant-secret` and
//! `juju revoke-secret` fire no hook (crates/jujusim/CONTRACT.md §5.5): a revocation is found at the next
//! hook, `update-status` at the latest.

use std::collections::BTreeMap;

use anyhow::Result;
use serde_json::Value;

use super::status::Invalid;
use super::Charm;
use crate::juju::Databag;

/// The options that may name a user secret.
pub const SECRET_OPTIONS: [&str; 3] = ["master-key", "database-uri", "redis-url"];

/// An option whose value came from a user secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserSecret {
    pub option: String,
    pub uri: String,
    /// What the secret holds for the option (a secret itself: kept only in root-only files).
    pub value: String,
}

/// The `secret:` URI an option's raw value names, if it names one.
pub fn reference(raw: Option<&Value>) -> Option<&str> {
    raw?.as_str()
        .map(str::trim)
        .filter(|s| s.starts_with("secret:"))
}

/// Whether `uri` has the form of a Juju secret URI: `secret:<id>` or
/// `secret://<model-uuid>/<id>`, the ID letters, digits, `-` or `_` (Juju's IDs are 20
/// characters of `0-9a-v`; newer Juju makes them opaque, so only the alphabet is checked).
fn well_formed(uri: &str) -> bool {
    let Some(rest) = uri.strip_prefix("secret:") else {
        return false;
    };
    let id = match rest.strip_prefix("//") {
        Some(path) => match path.split_once('/') {
            Some((model, id)) if !model.is_empty() && model.len() <= 64 => id,
            _ => return false,
        },
        None => rest,
    };
    let id_char = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    (1..=128).contains(&id.len()) && id.chars().all(id_char)
}

/// The value for `option` in a secret's content: the key named like the option, else the
/// only key. The reasons name keys, never values.
pub fn pick(option: &str, content: &Databag) -> Result<String, String> {
    if let Some(v) = content.get(option) {
        return Ok(v.clone());
    }
    match content.len() {
        1 => Ok(content.values().next().cloned().unwrap_or_default()),
        0 => Err("is empty".to_owned()),
        _ => Err(format!(
            "has no key {option} and more than one key ({})",
            content.keys().cloned().collect::<Vec<_>>().join(", ")
        )),
    }
}

impl Charm<'_> {
    /// The value `uri` holds for `option` at its latest revision; `Err(reason)` when the
    /// application cannot have it (the operator's to fix). A hook tool that fails otherwise
    /// is a fault (the hook fails and Juju retries it).
    pub(super) fn read_user_secret(
        &self,
        option: &str,
        uri: &str,
    ) -> Result<Result<String, String>> {
        if !well_formed(uri) {
            // Not echoed: a plain value that happens to start with `secret:` is a secret.
            return Ok(Err(
                "starts with secret: but is not a Juju secret URI (secret:<id>)".to_owned(),
            ));
        }
        let app = &self.ctx.app_name;
        let content = match self.tools.secret_get_by_id(uri, true) {
            Ok(Some(c)) => c,
            Ok(None) => {
                return Ok(Err(format!(
                    "secret {uri} does not exist (removed?): juju secrets lists them"
                )))
            }
            Err(e) if e.detail.contains("permission denied") => {
                return Ok(Err(format!(
                    "{app} may not read {uri}: juju grant-secret {uri} {app}"
                )))
            }
            Err(e) if e.detail.contains("not valid") => {
                return Ok(Err(format!("{uri} is not a valid secret URI")));
            }
            Err(e) => return Err(e.into()),
        };
        Ok(pick(option, &content).map_err(|why| format!("secret {uri} {why}")))
    }

    /// Replaces in `raw` every option that names a user secret by the secret's value.
    /// Returns what was read, and the options that could not be (their raw value is then
    /// left empty, so that the rest of the configuration is still validated).
    pub(super) fn resolve_user_secrets(
        &self,
        raw: &mut BTreeMap<String, Value>,
    ) -> Result<(Vec<UserSecret>, Vec<Invalid>)> {
        let mut read = Vec::new();
        let mut invalid = Vec::new();
        for option in SECRET_OPTIONS {
            let Some(uri) = reference(raw.get(option)).map(str::to_owned) else {
                continue;
            };
            match self.read_user_secret(option, &uri)? {
                Ok(value) => {
                    raw.insert(option.to_owned(), Value::String(value.clone()));
                    read.push(UserSecret {
                        option: option.to_owned(),
                        uri,
                        value,
                    });
                }
                Err(why) => {
                    raw.insert(option.to_owned(), Value::String(String::new()));
                    invalid.push(Invalid::new(option, why));
                }
            }
        }
        Ok((read, invalid))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_values_starting_with_secret_are_references() {
        assert_eq!(reference(Some(&json!("secret:abc"))), Some("secret:abc"));
        assert_eq!(reference(Some(&json!(" secret:abc "))), Some("secret:abc"));
        assert_eq!(reference(Some(&json!("postgres://h/db"))), None);
        assert_eq!(reference(Some(&json!("a-secret:key"))), None);
        assert_eq!(reference(Some(&json!(5))), None);
        assert_eq!(reference(None), None);
    }

    #[test]
    fn the_uri_forms_juju_prints_are_accepted_and_others_are_not() {
        assert!(well_formed("secret:cj5k7v678ohs79t2aa30"));
        assert!(well_formed(
            "secret://5c1e6f2a-0f3b-4c55-8e3a-1f2e3d4c5b6a/cj5k7v678ohs79t2aa30"
        ));
        for bad in [
            "secret:",
            "secret:a b",
            "secret:../x",
            "secret:abc;rm",
            "secret:///id",
            "secret://model",
            "secrets:abc",
        ] {
            assert!(!well_formed(bad), "{bad}");
        }
    }

    #[test]
    fn the_key_named_like_the_option_else_the_only_key() {
        let bag = |kv: &[(&str, &str)]| -> Databag {
            kv.iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        };
        assert_eq!(
            pick("master-key", &bag(&[("master-key", "a"), ("other", "b")])),
            Ok("a".into())
        );
        assert_eq!(pick("master-key", &bag(&[("value", "a")])), Ok("a".into()));
        let many = pick("master-key", &bag(&[("one", "s3cr3t"), ("two", "x")])).unwrap_err();
        assert!(
            many.contains("one, two") && !many.contains("s3cr3t"),
            "{many}"
        );
        assert_eq!(pick("master-key", &bag(&[])), Err("is empty".into()));
    }
}
