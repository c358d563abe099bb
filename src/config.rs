//! The charm's configuration (config.yaml), typed and validated.
//!
//! `juju config` accepts any value of the right YAML type; everything else is checked here so
//! that a bad value becomes a `blocked` status naming the option, never a crashed hook or a
//! broken service. No value that reaches a rendered file can carry a line break or other
//! control character.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use serde_json::{Map, Value};

/// Parse Server options the charm sets itself; `extra-options` may not override them.
pub const CHARM_OWNED_OPTIONS: &[&str] = &[
    "allowClientClassCreation",
    "appId",
    "cluster",
    "databaseAdapter",
    "databaseURI",
    "host",
    "logLevel",
    "logsFolder",
    "masterKey",
    "masterKeyIps",
    "mountPath",
    "port",
    "publicServerURL",
    "serverURL",
];

/// Characters refused in values written to the environment file.
pub const ENV_UNSAFE: &[char] = &['\'', '"', '\\', '$'];

/// Log levels parse-server's winston logger knows.
pub const LOG_LEVELS: &[&str] = &["error", "warn", "info", "verbose", "debug", "silly"];

/// A validated configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct CharmConfig {
    pub app_id: String,
    /// `None`: the charm generates and keeps one.
    pub master_key: Option<String>,
    pub port: u16,
    pub mount_path: String,
    pub public_server_url: Option<String>,
    pub database_name: String,
    /// `None`: use the mongodb relation.
    pub database_uri: Option<String>,
    pub parse_server_version: String,
    /// 0 = one per CPU.
    pub workers: u32,
    /// MiB; `None` = Node's default.
    pub node_max_old_space_size: Option<u32>,
    pub master_key_ips: Vec<String>,
    pub allow_client_class_creation: bool,
    pub log_level: String,
    pub extra_options: Map<String, Value>,
    /// Where Node.js is downloaded from when the machine has no suitable Node.
    pub node_mirror: String,
}

/// One invalid option: its name and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub option: &'static str,
    pub reason: String,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.option, self.reason)
    }
}

/// Reads options by name from `config-get` output, recording every problem found.
struct Reader<'a> {
    raw: &'a BTreeMap<String, Value>,
    errors: Vec<ConfigError>,
}

impl Reader<'_> {
    fn fail(&mut self, option: &'static str, reason: impl Into<String>) {
        self.errors.push(ConfigError {
            option,
            reason: reason.into(),
        });
    }

    fn string(&mut self, option: &'static str, default: &str) -> String {
        match self.raw.get(option) {
            None | Some(Value::Null) => default.to_owned(),
            Some(Value::String(s)) => s.clone(),
            Some(other) => {
                self.fail(option, format!("must be a string, got {other}"));
                default.to_owned()
            }
        }
    }

    fn int(&mut self, option: &'static str, default: i64) -> i64 {
        match self.raw.get(option) {
            None | Some(Value::Null) => default,
            Some(v) => match v.as_i64() {
                Some(n) => n,
                None => {
                    self.fail(option, format!("must be an integer, got {v}"));
                    default
                }
            },
        }
    }

    fn boolean(&mut self, option: &'static str, default: bool) -> bool {
        match self.raw.get(option) {
            None | Some(Value::Null) => default,
            Some(Value::Bool(b)) => *b,
            Some(other) => {
                self.fail(option, format!("must be true or false, got {other}"));
                default
            }
        }
    }

    /// A string that may be empty but has no control characters.
    fn printable(&mut self, option: &'static str, default: &str) -> String {
        let s = self.string(option, default);
        if let Some(c) = s.chars().find(|c| c.is_control()) {
            self.fail(
                option,
                format!(
                    "must not contain control characters (found U+{:04X})",
                    c as u32
                ),
            );
        }
        s
    }

    /// A printable string that can stand in the service's environment file exactly as it
    /// is under every service manager: no quotes, backslashes or `$` (systemd and
    /// systemctl-compatible tools disagree on escapes and `$` expansion).
    fn env_safe(&mut self, option: &'static str, default: &str) -> String {
        let s = self.printable(option, default);
        if let Some(c) = s.chars().find(|c| ENV_UNSAFE.contains(c)) {
            self.fail(
                option,
                format!(
                    "must not contain {c:?} (quotes, backslashes and '$' are refused; \
                     in a URI percent-encode them: ' %27, \" %22, \\ %5C, $ %24)"
                ),
            );
        }
        s
    }
}

impl CharmConfig {
    /// Validates `config-get` output. `known_options` is the installed parse-server's option
    /// list (absent before the first install), used to check `extra-options` keys.
    pub fn from_raw(
        raw: &BTreeMap<String, Value>,
        known_options: Option<&BTreeSet<String>>,
    ) -> Result<CharmConfig, Vec<ConfigError>> {
        let mut r = Reader {
            raw,
            errors: Vec::new(),
        };

        let app_id = r.env_safe("app-id", "parse");
        if app_id.trim().is_empty() {
            r.fail("app-id", "must not be empty");
        } else if app_id.len() > 256 {
            r.fail("app-id", "must be at most 256 characters");
        }

        let master_key = r.env_safe("master-key", "");
        if !master_key.is_empty() && master_key.len() < 8 {
            r.fail(
                "master-key",
                "must be at least 8 characters (or empty to generate one)",
            );
        }

        let port_raw = r.int("port", 1337);
        let port = match u16::try_from(port_raw) {
            Ok(p) if p >= 1 => p,
            _ => {
                r.fail(
                    "port",
                    format!("must be between 1 and 65535, got {port_raw}"),
                );
                1337
            }
        };

        let mount_path = r.printable("mount-path", "/parse");
        if let Err(why) = check_mount_path(&mount_path) {
            r.fail("mount-path", why);
        }

        let public_server_url = r.env_safe("public-server-url", "");
        if !public_server_url.is_empty() {
            if let Err(why) = check_http_url(&public_server_url) {
                r.fail("public-server-url", why);
            }
        }

        let database_name = r.printable("database-name", "parse");
        if let Err(why) = check_database_name(&database_name) {
            r.fail("database-name", why);
        }

        let database_uri = r.env_safe("database-uri", "");
        if !database_uri.is_empty() {
            // The reason never echoes the value: it may hold a password.
            if let Err(why) = check_database_uri(&database_uri) {
                r.fail("database-uri", why);
            }
        }

        let parse_server_version = r.printable("parse-server-version", DEFAULT_PARSE_SERVER);
        if !is_exact_version(&parse_server_version) {
            r.fail(
                "parse-server-version",
                format!("must be an exact version such as {DEFAULT_PARSE_SERVER}, got {parse_server_version:?}"),
            );
        }

        let workers_raw = r.int("workers", 1);
        let workers = match u32::try_from(workers_raw) {
            Ok(w) if w <= 256 => w,
            _ => {
                r.fail(
                    "workers",
                    format!("must be between 0 (one per CPU) and 256, got {workers_raw}"),
                );
                1
            }
        };

        let heap_raw = r.int("node-max-old-space-size", 0);
        let node_max_old_space_size = match heap_raw {
            0 => None,
            64..=1_048_576 => Some(heap_raw as u32),
            _ => {
                r.fail(
                    "node-max-old-space-size",
                    format!(
                        "must be 0 (Node's default) or between 64 and 1048576 MiB, got {heap_raw}"
                    ),
                );
                None
            }
        };

        let ips_raw = r.printable("master-key-ips", "127.0.0.1,::1");
        let master_key_ips: Vec<String> = ips_raw
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        if master_key_ips.is_empty() {
            r.fail(
                "master-key-ips",
                "must list at least one address or CIDR range",
            );
        }
        for entry in &master_key_ips {
            if let Err(why) = check_ip_or_cidr(entry) {
                r.fail("master-key-ips", why);
                break;
            }
        }

        let allow_client_class_creation = r.boolean("allow-client-class-creation", false);

        let log_level = r.printable("log-level", "info").to_ascii_lowercase();
        if !LOG_LEVELS.contains(&log_level.as_str()) {
            r.fail(
                "log-level",
                format!(
                    "must be one of {}, got {log_level:?}",
                    LOG_LEVELS.join(", ")
                ),
            );
        }

        let extra_raw = r.string("extra-options", "{}");
        let extra_options = match parse_extra_options(&extra_raw, known_options) {
            Ok(map) => map,
            Err(why) => {
                r.fail("extra-options", why);
                Map::new()
            }
        };

        let node_mirror = r.printable("node-mirror", DEFAULT_NODE_MIRROR);
        if let Err(why) = check_http_url(&node_mirror) {
            r.fail("node-mirror", why);
        }

        if !r.errors.is_empty() {
            return Err(r.errors);
        }
        Ok(CharmConfig {
            app_id,
            master_key: (!master_key.is_empty()).then_some(master_key),
            port,
            mount_path,
            public_server_url: (!public_server_url.is_empty()).then_some(public_server_url),
            database_name,
            database_uri: (!database_uri.is_empty()).then_some(database_uri),
            parse_server_version,
            workers,
            node_max_old_space_size,
            master_key_ips,
            allow_client_class_creation,
            log_level,
            extra_options,
            node_mirror: node_mirror.trim_end_matches('/').to_owned(),
        })
    }
}

/// The official Node.js download site.
pub const DEFAULT_NODE_MIRROR: &str = "https://nodejs.org/dist";

/// The parse-server release the charm installs unless told otherwise.
pub const DEFAULT_PARSE_SERVER: &str = "9.10.0";

/// `x.y.z` or `x.y.z-pre.N`: an exact npm version, never a range or a tag.
pub fn is_exact_version(v: &str) -> bool {
    let (core, pre) = match v.split_once('-') {
        Some((c, p)) => (c, Some(p)),
        None => (v, None),
    };
    let parts: Vec<&str> = core.split('.').collect();
    parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.len() <= 6 && p.bytes().all(|b| b.is_ascii_digit()))
        && pre.is_none_or(|p| {
            !p.is_empty() && p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.')
        })
}

fn check_mount_path(p: &str) -> Result<(), String> {
    if !p.starts_with('/') {
        return Err(format!("must start with '/', got {p:?}"));
    }
    if p.len() > 1 && p.ends_with('/') {
        return Err(format!("must not end with '/', got {p:?}"));
    }
    if p.contains("//") {
        return Err(format!("must not contain '//', got {p:?}"));
    }
    if let Some(c) = p
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "/-._~".contains(*c)))
    {
        return Err(format!(
            "may only use letters, digits and / - . _ ~ (found {c:?})"
        ));
    }
    Ok(())
}

fn check_http_url(u: &str) -> Result<(), String> {
    let rest = u
        .strip_prefix("https://")
        .or_else(|| u.strip_prefix("http://"))
        .ok_or_else(|| format!("must start with http:// or https://, got {u:?}"))?;
    if rest.is_empty() || rest.starts_with('/') {
        return Err("must name a host".into());
    }
    if u.chars().any(char::is_whitespace) {
        return Err("must not contain spaces".into());
    }
    Ok(())
}

fn check_database_name(n: &str) -> Result<(), String> {
    if n.is_empty() || n.len() > 63 {
        return Err("must be 1 to 63 characters".into());
    }
    if let Some(c) = n
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '-'))
    {
        return Err(format!(
            "may only use letters, digits, '_' and '-' (found {c:?})"
        ));
    }
    Ok(())
}

/// URI schemes parse-server's adapters accept.
pub const DATABASE_SCHEMES: &[&str] = &[
    "mongodb://",
    "mongodb+srv://",
    "postgres://",
    "postgresql://",
];

fn check_database_uri(u: &str) -> Result<(), String> {
    let Some(scheme) = DATABASE_SCHEMES.iter().find(|s| u.starts_with(**s)) else {
        return Err(format!(
            "must start with one of {}",
            DATABASE_SCHEMES.join(", ")
        ));
    };
    if u.chars().any(char::is_whitespace) {
        return Err("must not contain spaces".into());
    }
    let rest = &u[scheme.len()..];
    let authority = rest.split(['/', '?']).next().unwrap_or("");
    let hosts = authority.rsplit('@').next().unwrap_or("");
    if hosts.is_empty() {
        return Err("must name a host".into());
    }
    Ok(())
}

fn check_ip_or_cidr(entry: &str) -> Result<(), String> {
    let (addr, prefix) = match entry.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (entry, None),
    };
    let ip: IpAddr = addr
        .parse()
        .map_err(|_| format!("{entry:?} is not an IP address or CIDR range"))?;
    if let Some(p) = prefix {
        let max = if ip.is_ipv4() { 32 } else { 128 };
        match p.parse::<u8>() {
            Ok(n) if n <= max => {}
            _ => return Err(format!("{entry:?} has an invalid prefix length (0-{max})")),
        }
    }
    Ok(())
}

fn parse_extra_options(
    raw: &str,
    known: Option<&BTreeSet<String>>,
) -> Result<Map<String, Value>, String> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(Map::new());
    }
    let value: Value = serde_json::from_str(raw).map_err(|e| format!("is not valid JSON ({e})"))?;
    let Value::Object(map) = value else {
        return Err("must be a JSON object such as {\"maxLimit\": 1000}".into());
    };
    let owned: Vec<&str> = map
        .keys()
        .map(String::as_str)
        .filter(|k| CHARM_OWNED_OPTIONS.contains(k))
        .collect();
    if !owned.is_empty() {
        return Err(format!(
            "{} set by the charm itself; use the charm's own options",
            quoted_list(&owned, "is", "are")
        ));
    }
    if let Some(known) = known {
        let unknown: Vec<&str> = map
            .keys()
            .map(String::as_str)
            .filter(|k| !known.contains(*k))
            .collect();
        if !unknown.is_empty() {
            return Err(format!(
                "{} not a parse-server option",
                quoted_list(&unknown, "is", "are")
            ));
        }
    }
    Ok(map)
}

fn quoted_list(items: &[&str], one: &str, many: &str) -> String {
    let names: Vec<String> = items.iter().map(|k| format!("{k:?}")).collect();
    format!(
        "{} {}",
        names.join(", "),
        if items.len() == 1 { one } else { many }
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn raw(pairs: &[(&str, Value)]) -> BTreeMap<String, Value> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }

    fn errors_for(option: &str, value: Value) -> Vec<ConfigError> {
        CharmConfig::from_raw(&raw(&[(option, value)]), None).unwrap_err()
    }

    #[test]
    fn defaults_are_valid() {
        let c = CharmConfig::from_raw(&BTreeMap::new(), None).unwrap();
        assert_eq!(c.port, 1337);
        assert_eq!(c.mount_path, "/parse");
        assert_eq!(c.master_key, None);
        assert_eq!(c.master_key_ips, vec!["127.0.0.1", "::1"]);
        assert_eq!(c.workers, 1);
        assert_eq!(c.parse_server_version, DEFAULT_PARSE_SERVER);
        assert!(!c.allow_client_class_creation);
    }

    #[test]
    fn validation_table() {
        // (option, value, substring the reason must contain)
        let cases: Vec<(&str, Value, &str)> = vec![
            ("port", json!(0), "between 1 and 65535"),
            ("port", json!(70000), "got 70000"),
            ("port", json!(-1), "between 1 and 65535"),
            ("port", json!("1337"), "must be an integer"),
            ("app-id", json!(""), "must not be empty"),
            ("app-id", json!("   "), "must not be empty"),
            (
                "app-id",
                json!("shop\nPARSE_SERVER_MASTER_KEY=x"),
                "control characters",
            ),
            ("app-id", json!("a\u{7f}"), "control characters"),
            ("master-key", json!("short"), "at least 8"),
            ("master-key", json!("longenough\r"), "control characters"),
            ("mount-path", json!("parse"), "must start with '/'"),
            ("mount-path", json!("/parse/"), "must not end with '/'"),
            ("mount-path", json!("/pa rse"), "may only use"),
            ("mount-path", json!("//parse"), "'//'"),
            ("public-server-url", json!("ftp://x"), "http://"),
            ("public-server-url", json!("http://"), "must name a host"),
            ("database-name", json!("a/b"), "may only use"),
            ("database-name", json!(""), "1 to 63"),
            (
                "database-uri",
                json!("mysql://h/db"),
                "must start with one of",
            ),
            ("database-uri", json!("mongodb:///db"), "must name a host"),
            (
                "database-uri",
                json!("mongodb://u:p@/db"),
                "must name a host",
            ),
            ("parse-server-version", json!("^9.0.0"), "exact version"),
            ("parse-server-version", json!("latest"), "exact version"),
            ("workers", json!(-2), "between 0"),
            ("node-max-old-space-size", json!(-5), "must be 0"),
            ("node-max-old-space-size", json!(10), "must be 0"),
            ("master-key-ips", json!("10.0.0.0/33"), "prefix length"),
            ("master-key-ips", json!("localhost"), "not an IP address"),
            ("master-key-ips", json!(" , "), "at least one"),
            ("log-level", json!("loud"), "must be one of"),
            ("extra-options", json!("{not json"), "not valid JSON"),
            ("extra-options", json!("[1,2]"), "JSON object"),
            (
                "extra-options",
                json!("{\"port\": 1}"),
                "\"port\" is set by the charm",
            ),
            (
                "extra-options",
                json!("{\"masterKey\":\"x\",\"appId\":\"y\"}"),
                "are set by the charm",
            ),
            ("allow-client-class-creation", json!("yes"), "true or false"),
            ("node-mirror", json!("file:///srv/node"), "http://"),
            ("master-key", json!("abc$HOME12"), "'$'"),
            ("master-key", json!("it's-a-key"), "quotes"),
            ("app-id", json!("a\\b"), "backslashes"),
            ("database-uri", json!("mongodb://u:pa\"ss@h/db"), "%22"),
            ("database-uri", json!("postgres://u:pa$s@h/db"), "%24"),
        ];
        for (option, value, want) in cases {
            let errs = errors_for(option, value.clone());
            assert_eq!(errs.len(), 1, "{option}={value}: {errs:?}");
            assert_eq!(errs[0].option, option);
            assert!(
                errs[0].reason.contains(want),
                "{option}={value}: {:?} lacks {want:?}",
                errs[0].reason
            );
        }
    }

    #[test]
    fn accepted_values() {
        let c = CharmConfig::from_raw(
            &raw(&[
                ("app-id", json!("shop")),
                ("master-key", json!("a#b%c=d e`f~g!h")),
                ("port", json!(8080)),
                ("mount-path", json!("/")),
                ("public-server-url", json!("https://api.example.com/parse")),
                (
                    "database-uri",
                    json!("mongodb+srv://u:p%40ss@cluster0.example.net/db?retryWrites=true"),
                ),
                ("parse-server-version", json!("9.0.0-alpha.3")),
                ("workers", json!(0)),
                ("node-max-old-space-size", json!(512)),
                ("master-key-ips", json!("10.0.0.0/8, ::1, 2001:db8::/32")),
                ("log-level", json!("WARN")),
                (
                    "extra-options",
                    json!("{\"maxLimit\": 1000, \"liveQuery\": {\"classNames\": [\"A\"]}}"),
                ),
            ]),
            None,
        )
        .unwrap();
        assert_eq!(c.port, 8080);
        assert_eq!(c.workers, 0);
        assert_eq!(c.node_max_old_space_size, Some(512));
        assert_eq!(c.master_key_ips.len(), 3);
        assert_eq!(c.log_level, "warn");
        assert_eq!(c.extra_options["maxLimit"], json!(1000));
    }

    #[test]
    fn every_problem_is_reported() {
        let errs = CharmConfig::from_raw(
            &raw(&[("port", json!(0)), ("mount-path", json!("x"))]),
            None,
        )
        .unwrap_err();
        let names: Vec<&str> = errs.iter().map(|e| e.option).collect();
        assert_eq!(names, vec!["port", "mount-path"]);
    }

    #[test]
    fn database_uri_reason_never_echoes_the_secret() {
        let errs = errors_for("database-uri", json!("mysql://admin:hunter2@db/x"));
        assert!(!errs[0].reason.contains("hunter2"));
    }

    #[test]
    fn unknown_extra_option_is_named_once_the_option_list_is_known() {
        let known: BTreeSet<String> = ["maxLimit", "liveQuery"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let r = raw(&[("extra-options", json!("{\"maxLimit\": 5, \"maxLimt\": 5}"))]);
        let errs = CharmConfig::from_raw(&r, Some(&known)).unwrap_err();
        assert_eq!(errs[0].reason, "\"maxLimt\" is not a parse-server option");
        // Without the list the key is accepted (parse-server itself is the judge then).
        assert!(CharmConfig::from_raw(&r, None).is_ok());
    }

    #[test]
    fn exact_versions() {
        for ok in ["9.10.0", "8.2.3", "9.0.0-alpha.1"] {
            assert!(is_exact_version(ok), "{ok}");
        }
        for bad in [
            "9", "9.1", "9.1.x", "~9.1.0", "9.1.0-", "9.1.0 ", "v9.1.0", "",
        ] {
            assert!(!is_exact_version(bad), "{bad}");
        }
    }
}
