//! Which parse-server options an operator may set through `extra-options`, and why:
//!
//! - **owned by the charm**: set from the charm's own options or relations, so that one
//!   value cannot be set two ways (appId, masterKey, masterKeyIps, databaseURI,
//!   databaseAdapter, port, host, mountPath, serverURL, publicServerURL, cluster, logLevel,
//!   logsFolder, verbose, silent, allowClientClassCreation, trustProxy, and for email
//!   appName, emailAdapter, verifyUserEmails; the other email options
//!   (preventLoginWithUnverifiedEmail, emailVerifyTokenValidityDuration, ...) pass through);
//! - **refused**: `mountPlayground` serves a page that hands the master key to whoever loads
//!   it, from any address (parse-server's own help says so);
//! - **allowed only with a safe companion**: `readOnlyMasterKey` only together with an
//!   explicit `readOnlyMasterKeyIps` (parse-server's default lets every address use it);
//! - keys clients send as headers (clientKey, javascriptKey, restAPIKey, dotNetKey,
//!   webhookKey, readOnlyMasterKey, maintenanceKey) must be header-safe strings, and IP lists
//!   must be valid entries;
//! - everything else the installed release knows is passed through with its JSON type.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

use super::rules;

/// Options the charm sets itself.
pub const CHARM_OWNED: &[&str] = &[
    "allowClientClassCreation",
    "appId",
    "appName",
    "cluster",
    "databaseAdapter",
    "databaseURI",
    "emailAdapter",
    "host",
    "logLevel",
    "logsFolder",
    "masterKey",
    "masterKeyIps",
    "mountPath",
    "port",
    "publicServerURL",
    "serverURL",
    "silent",
    "trustProxy",
    "verbose",
    "verifyUserEmails",
];

/// Options refused outright, with the reason.
pub const REFUSED: &[(&str, &str)] = &[
    (
        "cloud",
        "comes from the cloud-code resource (juju attach-resource <app> cloud-code=<archive>)",
    ),
    (
        "mountPlayground",
        "serves a page that hands the master key to any client",
    ),
    (
        "liveQuery",
        "comes from live-query-classes (its Redis from redis-url)",
    ),
    ("startLiveQueryServer", "comes from live-query-classes"),
    (
        "liveQueryServerOptions",
        "comes from live-query-classes (its Redis from redis-url)",
    ),
    (
        "cacheAdapter",
        "is the charm's: a cache in the shared Redis when redis-url is set",
    ),
];

/// Options clients send as HTTP headers.
const HEADER_KEYS: &[(&str, &str)] = &[
    ("clientKey", "X-Parse-Client-Key"),
    ("javascriptKey", "X-Parse-Javascript-Key"),
    ("restAPIKey", "X-Parse-REST-API-Key"),
    ("dotNetKey", "X-Parse-Windows-Key"),
    ("webhookKey", "X-Parse-Webhook-Key"),
    ("readOnlyMasterKey", "X-Parse-Master-Key"),
    ("maintenanceKey", "X-Parse-Maintenance-Key"),
];

/// Lists of IP addresses or ranges.
const IP_LISTS: &[&str] = &["readOnlyMasterKeyIps", "maintenanceKeyIps"];

/// The largest `extra-options` value accepted, in bytes.
pub const MAX_BYTES: usize = 64 * 1024;

fn names(items: &[&str]) -> String {
    items
        .iter()
        .map(|k| rules_quote(k))
        .collect::<Vec<_>>()
        .join(", ")
}

fn rules_quote(k: &str) -> String {
    crate::text::quote(k, 40)
}

/// Parses and checks `extra-options` (without the release's option list: see
/// [`check_known`]).
pub fn parse(raw: &str) -> Result<Map<String, Value>, String> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(Map::new());
    }
    if raw.len() > MAX_BYTES {
        return Err(format!("must be at most {MAX_BYTES} bytes"));
    }
    let value: Value = serde_json::from_str(raw).map_err(|e| {
        format!(
            "is not valid JSON ({})",
            crate::text::one_line(&e.to_string(), 60)
        )
    })?;
    let Value::Object(map) = value else {
        return Err("must be a JSON object such as {\"maxLimit\": 1000}".into());
    };
    let owned: Vec<&str> = map
        .keys()
        .map(String::as_str)
        .filter(|k| CHARM_OWNED.contains(k))
        .collect();
    if !owned.is_empty() {
        return Err(format!(
            "{} {} set by the charm itself; use the charm's own options",
            names(&owned),
            if owned.len() == 1 { "is" } else { "are" }
        ));
    }
    for (key, why) in REFUSED {
        if map.contains_key(*key) {
            return Err(format!("{} is refused: it {why}", rules_quote(key)));
        }
    }
    for (key, header) in HEADER_KEYS {
        match map.get(*key) {
            None => {}
            Some(Value::String(s)) => {
                rules::header_value(s, header)
                    .map_err(|why| format!("{}: {why}", rules_quote(key)))?;
                if s.len() < 8 {
                    return Err(format!(
                        "{}: must be at least 8 characters",
                        rules_quote(key)
                    ));
                }
            }
            Some(_) => return Err(format!("{} must be a string", rules_quote(key))),
        }
    }
    for key in IP_LISTS {
        match map.get(*key) {
            None => {}
            Some(Value::Array(items)) => {
                for item in items {
                    let entry = item
                        .as_str()
                        .ok_or_else(|| format!("{} must list strings", rules_quote(key)))?;
                    rules::ip_or_cidr(entry)
                        .map_err(|why| format!("{}: {why}", rules_quote(key)))?;
                }
            }
            Some(_) => {
                return Err(format!(
                    "{} must be a JSON list such as [\"10.0.0.0/8\"]",
                    rules_quote(key)
                ))
            }
        }
    }
    // A rate limit's Redis is the charm's (a secret, and the same for every entry).
    let limits = match map.get("rateLimit") {
        Some(Value::Array(items)) => items.iter().collect(),
        Some(one) => vec![one],
        None => Vec::new(),
    };
    if limits.iter().any(|l| !l.is_object()) {
        return Err("\"rateLimit\" must be an object or a list of objects".into());
    }
    if limits.iter().any(|l| l.get("redisUrl").is_some()) {
        return Err("\"rateLimit\": redisUrl comes from redis-url (every entry gets it)".into());
    }
    if map.contains_key("readOnlyMasterKey") && !map.contains_key("readOnlyMasterKeyIps") {
        return Err(
            "\"readOnlyMasterKey\" needs \"readOnlyMasterKeyIps\" too: parse-server otherwise \
             accepts it from every address"
                .into(),
        );
    }
    Ok(map)
}

/// Checks the keys against the installed release's option list.
pub fn check_known(map: &Map<String, Value>, known: &BTreeSet<String>) -> Result<(), String> {
    let unknown: Vec<&str> = map
        .keys()
        .map(String::as_str)
        .filter(|k| !known.contains(*k))
        .collect();
    if unknown.is_empty() {
        return Ok(());
    }
    Err(format!(
        "{} {} not an option of the installed parse-server",
        names(&unknown),
        if unknown.len() == 1 { "is" } else { "are" }
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy() {
        assert_eq!(parse("").unwrap().len(), 0);
        assert_eq!(
            parse("{\"maxLimit\": 5}").unwrap()["maxLimit"],
            Value::from(5)
        );
        for (raw, why) in [
            ("{not json", "not valid JSON"),
            ("[1]", "JSON object"),
            ("{\"port\": 1}", "\"port\" is set by the charm"),
            (
                "{\"masterKey\":\"x\",\"appId\":\"y\"}",
                "are set by the charm",
            ),
            ("{\"verbose\": true}", "set by the charm"),
            ("{\"silent\": true}", "set by the charm"),
            ("{\"trustProxy\": true}", "set by the charm"),
            (
                "{\"mountGraphQL\":true,\"mountPlayground\":true}",
                "hands the master key",
            ),
            (
                "{\"readOnlyMasterKey\": \"ro-key-12345\"}",
                "needs \"readOnlyMasterKeyIps\"",
            ),
            (
                "{\"readOnlyMasterKey\": \"ro-key-12345\", \"readOnlyMasterKeyIps\": \"10.0.0.1\"}",
                "JSON list",
            ),
            (
                "{\"readOnlyMasterKey\": \"ro-key-12345\", \"readOnlyMasterKeyIps\": [\"nope\"]}",
                "IP address",
            ),
            ("{\"restAPIKey\": \"clé-secrète\"}", "printable ASCII"),
            ("{\"clientKey\": 5}", "must be a string"),
            ("{\"javascriptKey\": \"short\"}", "at least 8"),
            ("{\"liveQuery\": {}}", "live-query-classes"),
            ("{\"startLiveQueryServer\": true}", "live-query-classes"),
            ("{\"cacheAdapter\": \"x\"}", "redis-url"),
            ("{\"rateLimit\": [5]}", "list of objects"),
            (
                "{\"rateLimit\": {\"requestPath\": \"*\", \"redisUrl\": \"redis://h\"}}",
                "comes from redis-url",
            ),
        ] {
            let err = parse(raw).unwrap_err();
            assert!(err.contains(why), "{raw}: {err}");
        }
        assert!(parse(
            "{\"readOnlyMasterKey\": \"ro-key-12345\", \"readOnlyMasterKeyIps\": [\"10.0.0.0/8\"], \"mountGraphQL\": true}"
        )
        .is_ok());
        assert!(parse(&format!("{{\"a\": \"{}\"}}", "x".repeat(MAX_BYTES))).is_err());
    }

    #[test]
    fn unknown_keys_are_named() {
        let known: BTreeSet<String> = ["maxLimit".to_owned()].into();
        let map = parse("{\"maxLimit\": 5, \"maxLimt\": 5}").unwrap();
        assert_eq!(
            check_known(&map, &known).unwrap_err(),
            "\"maxLimt\" is not an option of the installed parse-server"
        );
    }
}
