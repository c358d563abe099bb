//! The hook's process environment, parsed once into a typed context.
//!
//! Juju builds the environment of a hook from scratch (see crates/jujusim/CONTRACT.md §1), so
//! everything the charm learns from the environment is read here and nowhere else.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::event::Event;

/// Everything the charm needs from the hook environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JujuContext {
    pub event: Event,
    pub unit_name: String,
    pub app_name: String,
    pub charm_dir: PathBuf,
    pub model_name: String,
    pub juju_version: String,
    /// `JUJU_RELATION_ID` in relation hooks, e.g. `mongodb:3`.
    pub relation_id: Option<String>,
    /// `JUJU_REMOTE_UNIT`; `None` when absent or empty (created/broken/app-changed hooks).
    pub remote_unit: Option<String>,
    /// `JUJU_DEPARTING_UNIT` in `-relation-departed`.
    pub departing_unit: Option<String>,
    /// The PATH the hook was started with: the unit agent's tools dir comes first.
    pub path: Option<String>,
    /// The model's `juju-http(s)-proxy` / `juju-no-proxy` settings, for downloads.
    pub proxy: ProxySettings,
    /// Test-only (`PARSE_SERVER_CHARM_ABORT_AFTER`, never set by Juju): the named step after
    /// which the hook dies at once, as if SIGKILLed, to prove the next hook converges.
    pub abort_after: Option<String>,
}

/// The variable that names a step to die after (fault tests only).
pub const ABORT_AFTER_VAR: &str = "PARSE_SERVER_CHARM_ABORT_AFTER";

/// Proxy settings from the model config (`JUJU_CHARM_*_PROXY`); empty means none.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProxySettings {
    pub http: Option<String>,
    pub https: Option<String>,
    pub no_proxy: Option<String>,
}

impl ProxySettings {
    /// Environment variables that curl and npm understand.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if let Some(p) = &self.http {
            out.extend([("http_proxy", p.clone()), ("npm_config_proxy", p.clone())]);
        }
        if let Some(p) = &self.https {
            out.extend([
                ("https_proxy", p.clone()),
                ("npm_config_https_proxy", p.clone()),
            ]);
        }
        if let Some(p) = &self.no_proxy {
            out.extend([("no_proxy", p.clone()), ("npm_config_noproxy", p.clone())]);
        }
        out
    }
}

/// Why the environment does not describe a hook we can run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContextError(pub String);

impl std::fmt::Display for ContextError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ContextError {}

impl JujuContext {
    /// Builds the context from a snapshot of the environment and argv[0].
    pub fn from_env(env: &BTreeMap<String, String>, argv0: &str) -> Result<Self, ContextError> {
        let get = |k: &str| env.get(k).map(String::as_str).filter(|v| !v.is_empty());
        let dispatch_path = get("JUJU_DISPATCH_PATH")
            .map(str::to_owned)
            .unwrap_or_else(|| {
                // Juju < 2.8: hooks/<name> symlinks to the binary.
                let base = argv0.rsplit('/').next().unwrap_or(argv0);
                format!("hooks/{base}")
            });
        let event = Event::parse(&dispatch_path)
            .ok_or_else(|| ContextError(format!("cannot tell the event from {dispatch_path:?}")))?;
        let unit_name = get("JUJU_UNIT_NAME")
            .ok_or_else(|| ContextError("JUJU_UNIT_NAME is not set: not run by Juju".into()))?
            .to_owned();
        let app_name = unit_name
            .split_once('/')
            .map(|(a, _)| a.to_owned())
            .ok_or_else(|| ContextError(format!("malformed JUJU_UNIT_NAME {unit_name:?}")))?;
        let charm_dir = get("JUJU_CHARM_DIR")
            .or_else(|| get("CHARM_DIR"))
            .map(PathBuf::from)
            .ok_or_else(|| ContextError("JUJU_CHARM_DIR is not set".into()))?;
        Ok(JujuContext {
            event,
            unit_name,
            app_name,
            charm_dir,
            model_name: get("JUJU_MODEL_NAME").unwrap_or_default().to_owned(),
            juju_version: get("JUJU_VERSION").unwrap_or_default().to_owned(),
            relation_id: get("JUJU_RELATION_ID").map(str::to_owned),
            remote_unit: get("JUJU_REMOTE_UNIT").map(str::to_owned),
            departing_unit: get("JUJU_DEPARTING_UNIT").map(str::to_owned),
            path: get("PATH").map(str::to_owned),
            proxy: ProxySettings {
                http: get("JUJU_CHARM_HTTP_PROXY").map(str::to_owned),
                https: get("JUJU_CHARM_HTTPS_PROXY").map(str::to_owned),
                no_proxy: get("JUJU_CHARM_NO_PROXY").map(str::to_owned),
            },
            abort_after: get(ABORT_AFTER_VAR).map(str::to_owned),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn relation_hook_context() {
        let e = env(&[
            ("JUJU_DISPATCH_PATH", "hooks/mongodb-relation-departed"),
            ("JUJU_UNIT_NAME", "parse-server/3"),
            (
                "JUJU_CHARM_DIR",
                "/var/lib/juju/agents/unit-parse-server-3/charm",
            ),
            ("JUJU_RELATION_ID", "mongodb:7"),
            ("JUJU_REMOTE_UNIT", "mongodb/1"),
            ("JUJU_DEPARTING_UNIT", "mongodb/1"),
        ]);
        let c = JujuContext::from_env(&e, "/x/dispatch").unwrap();
        assert_eq!(c.app_name, "parse-server");
        assert_eq!(c.relation_id.as_deref(), Some("mongodb:7"));
        assert_eq!(c.departing_unit.as_deref(), Some("mongodb/1"));
        assert_eq!(
            c.event,
            Event::Relation {
                endpoint: "mongodb".into(),
                kind: crate::juju::event::RelationKind::Departed
            }
        );
    }

    #[test]
    fn empty_remote_unit_is_none() {
        let e = env(&[
            ("JUJU_DISPATCH_PATH", "hooks/mongodb-relation-broken"),
            ("JUJU_UNIT_NAME", "parse-server/0"),
            ("CHARM_DIR", "/c"),
            ("JUJU_REMOTE_UNIT", ""),
        ]);
        let c = JujuContext::from_env(&e, "dispatch").unwrap();
        assert_eq!(c.remote_unit, None);
        assert_eq!(c.charm_dir, PathBuf::from("/c"));
    }

    #[test]
    fn proxy_settings_become_curl_and_npm_variables() {
        let e = env(&[
            ("JUJU_DISPATCH_PATH", "hooks/install"),
            ("JUJU_UNIT_NAME", "parse-server/0"),
            ("JUJU_CHARM_DIR", "/c"),
            ("JUJU_CHARM_HTTP_PROXY", ""),
            ("JUJU_CHARM_HTTPS_PROXY", "http://squid:3128"),
        ]);
        let c = JujuContext::from_env(&e, "dispatch").unwrap();
        assert_eq!(c.proxy.http, None, "empty means no proxy");
        assert_eq!(
            c.proxy.env(),
            vec![
                ("https_proxy", "http://squid:3128".to_string()),
                ("npm_config_https_proxy", "http://squid:3128".to_string())
            ]
        );
    }

    #[test]
    fn falls_back_to_argv0_without_dispatch_path() {
        let e = env(&[
            ("JUJU_UNIT_NAME", "parse-server/0"),
            ("JUJU_CHARM_DIR", "/c"),
        ]);
        let c = JujuContext::from_env(&e, "/c/hooks/config-changed").unwrap();
        assert_eq!(c.event, Event::ConfigChanged);
    }

    #[test]
    fn missing_unit_name_is_an_error() {
        let e = env(&[("JUJU_DISPATCH_PATH", "hooks/install")]);
        let err = JujuContext::from_env(&e, "dispatch").unwrap_err();
        assert!(err.0.contains("JUJU_UNIT_NAME"), "{err}");
    }
}
