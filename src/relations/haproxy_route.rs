//! The `haproxy-route` interface (what haproxy 2.8 offers): the requirer's leader describes
//! the backend in the application databag, every unit publishes its address. Every field is
//! JSON-encoded in its own key, fields at their default are left out (as the interface's
//! library writes them). The provider answers with the proxied `endpoints`.

use serde_json::{json, Value};

use crate::juju::Databag;

/// What the charm asks haproxy for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub service: String,
    /// Every port a unit serves on (more than one only while a port change rolls out).
    pub ports: Vec<u16>,
    pub mount_path: String,
    /// The public host name, when the operator gave one (a DNS name, not an address).
    pub hostname: Option<String>,
    /// Plain HTTP in addition to HTTPS (the operator's public URL is http://).
    pub allow_http: bool,
    /// The path haproxy's health check asks.
    pub check_path: String,
}

/// The path only balancers ask (charm/node/service-hooks.js answers it): parse-server's own
/// health, except while the unit drains before a stop, when it answers 503. Clients keep
/// `<mount-path>/health`, which answers as parse-server does throughout.
pub const BALANCER_CHECK_PATH: &str = "/parse-server-charm/ready";

/// Seconds between health checks, and how many in a row make a server up or down: a unit
/// that restarts is out of rotation within `FALL * INTERVAL` seconds.
pub const CHECK_INTERVAL: u32 = 2;
pub const CHECK_RISE: u32 = 2;
pub const CHECK_FALL: u32 = 2;

fn enc(v: Value) -> String {
    v.to_string()
}

/// The requirer's application databag.
pub fn app_databag(r: &Route) -> Databag {
    let mut bag = Databag::from([
        ("service".to_owned(), enc(json!(r.service))),
        ("ports".to_owned(), enc(json!(r.ports))),
        (
            "check".to_owned(),
            enc(json!({
                "interval": CHECK_INTERVAL,
                "rise": CHECK_RISE,
                "fall": CHECK_FALL,
                "path": r.check_path,
            })),
        ),
        // A request that cannot reach a restarting unit goes to another one.
        (
            "retry".to_owned(),
            enc(json!({"count": 3, "redispatch": true})),
        ),
        // The client address parse-server checks `master-key-ips` against: haproxy's view
        // of it, never a header the client sent (haproxy-operator renders each rewrite as
        // `http-request set-header <header> <expression>` in the backend).
        (
            "rewrites".to_owned(),
            enc(json!([{
                "method": "set-header",
                "header": "X-Forwarded-For",
                "expression": "%[src]",
            }])),
        ),
    ]);
    if r.mount_path != "/" {
        bag.insert("paths".into(), enc(json!([r.mount_path])));
    }
    if let Some(h) = &r.hostname {
        bag.insert("hostname".into(), enc(json!(h)));
    }
    if r.allow_http {
        bag.insert("allow_http".into(), enc(json!(true)));
    }
    bag
}

/// A unit's databag: its address.
pub fn unit_databag(address: &str) -> Databag {
    Databag::from([("address".to_owned(), enc(json!(address)))])
}

/// The provider's proxied endpoints (URLs), from its application databag; malformed data
/// gives none.
pub fn endpoints(provider_app: &Databag) -> Vec<String> {
    provider_app
        .get("endpoints")
        .and_then(|e| serde_json::from_str::<Vec<String>>(e).ok())
        .unwrap_or_default()
        .into_iter()
        .filter(|u| crate::uri::HttpUrl::parse(u.trim_end_matches('/')).is_ok())
        .collect()
}

/// Whether `current` already holds everything in `wanted`, and no key `wanted` lacks among
/// those the charm manages (so that no write is needed).
pub fn is_published(current: &Databag, wanted: &Databag, managed: &[&str]) -> bool {
    wanted.iter().all(|(k, v)| current.get(k) == Some(v))
        && managed
            .iter()
            .all(|k| wanted.contains_key(*k) || !current.contains_key(*k))
}

/// The keys of the application databag the charm writes.
pub const APP_KEYS: &[&str] = &[
    "service",
    "ports",
    "check",
    "retry",
    "rewrites",
    "paths",
    "hostname",
    "allow_http",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_encoded_fields_defaults_left_out() {
        let bag = app_databag(&Route {
            service: "parse-server".into(),
            ports: vec![1337],
            mount_path: "/parse".into(),
            hostname: Some("parse.example.com".into()),
            allow_http: false,
            check_path: BALANCER_CHECK_PATH.into(),
        });
        assert_eq!(bag["service"], "\"parse-server\"");
        assert_eq!(bag["ports"], "[1337]");
        let rewrites: Value = serde_json::from_str(&bag["rewrites"]).unwrap();
        assert_eq!(
            rewrites,
            json!([{"method": "set-header", "header": "X-Forwarded-For", "expression": "%[src]"}])
        );
        assert_eq!(bag["paths"], "[\"/parse\"]");
        assert_eq!(bag["hostname"], "\"parse.example.com\"");
        let check: Value = serde_json::from_str(&bag["check"]).unwrap();
        assert_eq!(check["path"], BALANCER_CHECK_PATH);
        assert!(!bag.contains_key("allow_http"));
        assert!(!bag.contains_key("protocol"), "http is the default");
        assert_eq!(unit_databag("10.0.0.5")["address"], "\"10.0.0.5\"");
        let mut stale = bag.clone();
        assert!(is_published(&stale, &bag, APP_KEYS));
        stale.insert("allow_http".into(), "true".into());
        assert!(!is_published(&stale, &bag, APP_KEYS));
    }

    #[test]
    fn provider_endpoints() {
        let bag = Databag::from([(
            "endpoints".to_owned(),
            r#"["https://parse.example.com/", "not a url"]"#.to_owned(),
        )]);
        assert_eq!(endpoints(&bag), vec!["https://parse.example.com/"]);
        assert!(endpoints(&Databag::new()).is_empty());
    }
}
