//! The charm's configuration (config.yaml), typed and validated once.
//!
//! `juju config` accepts any value of the right YAML type; everything else is checked here so
//! that a bad value becomes a `blocked` status naming the option, never a crashed hook or a
//! broken service. A value accepted here is one parse-server and its clients accept
//! (`rules`); `extra-options` follows its own policy (`extra_options`); defaults come from
//! config.yaml alone (`defaults`).

pub mod defaults;
pub mod extra_options;
pub mod rules;

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use crate::text::{self, quote};
use crate::uri::{self, DbUri, HttpUrl, RedisUrl};

/// Log levels the charm accepts. parse-server's `verbose`, `debug` and `silly` log every
/// request with its headers (X-Parse-Master-Key included) and every response body (session
/// tokens included) to the journal, which the `adm` group reads on Ubuntu.
pub const LOG_LEVELS: &[&str] = &["error", "warn", "info"];
const LEAKY_LOG_LEVELS: &[&str] = &["verbose", "debug", "silly"];

/// The oldest parse-server major release whose options the charm renders.
pub const OLDEST_MAJOR: u64 = 8;

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
    /// `None`: the database comes from a relation.
    pub database_uri: Option<DbUri>,
    pub parse_server_version: String,
    /// `None`: sized to the machine.
    pub workers: Option<u32>,
    /// MiB; `None`: sized to the machine.
    pub node_max_old_space_size: Option<u32>,
    pub node_max_semi_space_size: Option<u32>,
    /// MiB; `None`: 75% of the machine's memory.
    pub memory_limit: Option<u64>,
    pub master_key_ips: Vec<String>,
    pub allow_client_class_creation: bool,
    pub log_level: String,
    pub extra_options: Map<String, Value>,
    /// Where Node.js is downloaded from when the machine has no suitable Node (no trailing
    /// slash).
    pub node_mirror: String,
    /// parse-server's `appName` (shown in its mails and pages).
    pub app_name: String,
    /// The mails' sender; `None`: the smtp relation's (its `smtp_sender`, or
    /// `noreply@<domain>`).
    pub email_from: Option<String>,
    /// parse-server's `verifyUserEmails` (needs an smtp relation).
    pub verify_user_emails: bool,
    /// A Redis every instance shares (LiveQuery, the cache, rate limits); `None`: none
    /// given by the operator.
    pub redis_url: Option<RedisUrl>,
    /// The classes LiveQuery serves; empty: no LiveQuery server.
    pub live_query_classes: Vec<String>,
    /// Addresses allowed to use the read-only master key (parse-server's
    /// readOnlyMasterKeyIps).
    pub read_only_master_key_ips: Vec<String>,
    /// Parse Dashboard on every unit.
    pub dashboard: bool,
    pub dashboard_port: u16,
    /// Where users open the dashboard (https); `None`: the balancer's own name.
    pub dashboard_url: Option<HttpUrl>,
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

/// Reads options by name from `config-get` output (defaults from config.yaml), recording
/// every problem found.
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

    fn value(&self, option: &'static str) -> &Value {
        match self.raw.get(option) {
            None | Some(Value::Null) => defaults::default_of(option),
            Some(v) => v,
        }
    }

    fn string(&mut self, option: &'static str) -> String {
        match self.value(option).clone() {
            Value::String(s) => s,
            Value::Null => String::new(),
            other => {
                self.fail(
                    option,
                    format!("must be a string, got {}", quote(&other.to_string(), 24)),
                );
                String::new()
            }
        }
    }

    fn int(&mut self, option: &'static str) -> i64 {
        let v = self.value(option).clone();
        match v.as_i64() {
            Some(n) => n,
            None => {
                self.fail(
                    option,
                    format!("must be an integer, got {}", quote(&v.to_string(), 24)),
                );
                defaults::default_of(option).as_i64().unwrap_or(0)
            }
        }
    }

    fn boolean(&mut self, option: &'static str) -> bool {
        match self.value(option).clone() {
            Value::Bool(b) => b,
            other => {
                self.fail(
                    option,
                    format!(
                        "must be true or false, got {}",
                        quote(&other.to_string(), 24)
                    ),
                );
                false
            }
        }
    }

    /// A string checked by `rule`; the reason names the option.
    fn checked(
        &mut self,
        option: &'static str,
        rule: impl FnOnce(&str) -> Result<(), String>,
    ) -> String {
        let s = self.string(option);
        if let Err(why) = rule(&s) {
            self.fail(option, why);
        }
        s
    }
}

/// PostgreSQL options libpq knows and parse-server's own URI parser ignores: with them the
/// charm's check would speak TLS while parse-server does not.
const LIBPQ_ONLY_OPTIONS: &[&str] = &["sslmode", "sslrootcert", "sslcert", "sslkey", "sslcrl"];
/// Client certificates parse-server can read but the charm's check cannot present.
const CLIENT_CERT_OPTIONS: &[&str] = &["cert", "key", "pfx", "passphrase"];

/// A database URI whose options mean to parse-server what they mean to the charm's check.
fn parse_server_reads(u: DbUri) -> Result<DbUri, String> {
    if u.is_postgres() {
        if let Some((k, _)) = u
            .options
            .iter()
            .find(|(k, _)| LIBPQ_ONLY_OPTIONS.contains(&k.as_str()))
        {
            return Err(format!(
                "{} is libpq's and parse-server ignores it (it would connect without TLS): \
                 use ssl=true, and ca=<file> for a private CA",
                quote(k, 16)
            ));
        }
        if let Some((k, _)) = u
            .options
            .iter()
            .find(|(k, _)| CLIENT_CERT_OPTIONS.contains(&k.as_str()))
        {
            return Err(format!(
                "{}: client certificates are not supported by the charm",
                quote(k, 16)
            ));
        }
    }
    Ok(u)
}

/// Parse's own classes a LiveQuery may watch (other names starting with `_` are not classes).
const SYSTEM_CLASSES: &[&str] = &["_User", "_Role", "_Session", "_Installation"];

/// `live-query-classes`: comma-separated class names as parse-server accepts them (a letter,
/// then letters, digits or `_`), or Parse's own classes; no duplicates.
fn live_query_classes(s: &str) -> Result<Vec<String>, String> {
    if s.trim().is_empty() {
        return Ok(Vec::new());
    }
    let mut out: Vec<String> = Vec::new();
    for name in s.split(',').map(str::trim) {
        if name.is_empty() {
            return Err("has an empty entry (two commas in a row?)".into());
        }
        let valid = SYSTEM_CLASSES.contains(&name)
            || (name.len() <= 128
                && name.starts_with(|c: char| c.is_ascii_alphabetic())
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
        if !valid {
            return Err(format!(
                "{} is not a class name (a letter, then letters, digits or _; or one of {})",
                quote(name, 32),
                SYSTEM_CLASSES.join(", ")
            ));
        }
        if out.iter().any(|c| c == name) {
            return Err(format!("names {} twice", quote(name, 32)));
        }
        out.push(name.to_owned());
    }
    if out.len() > 100 {
        return Err("must name at most 100 classes".into());
    }
    Ok(out)
}

/// A comma-separated list of addresses and CIDR ranges (`master-key-ips` and the like).
fn ip_list(r: &mut Reader, option: &'static str) -> Vec<String> {
    let raw = r.checked(option, |s| {
        text::visible(s)?;
        let entries: Vec<&str> = s.split(',').map(str::trim).collect();
        if entries.iter().all(|e| e.is_empty()) {
            return Err("must list at least one address or CIDR range".into());
        }
        if entries.iter().any(|e| e.is_empty()) {
            return Err("has an empty entry (two commas in a row?)".into());
        }
        if entries.len() > 64 {
            return Err("must list at most 64 entries".into());
        }
        entries.iter().try_for_each(|e| rules::ip_or_cidr(e))
    });
    raw.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

impl CharmConfig {
    /// Validates `config-get` output.
    pub fn from_raw(raw: &BTreeMap<String, Value>) -> Result<CharmConfig, Vec<ConfigError>> {
        let mut r = Reader {
            raw,
            errors: Vec::new(),
        };

        let app_id = r.checked("app-id", |s| {
            if s.is_empty() {
                return Err("must not be empty".into());
            }
            if s.len() > 256 {
                return Err("must be at most 256 characters".into());
            }
            rules::header_value(s, "X-Parse-Application-Id")
        });

        let master_key = r.checked("master-key", |s| {
            if s.is_empty() {
                return Ok(());
            }
            rules::header_value(s, "X-Parse-Master-Key")?;
            if s.len() < 8 {
                return Err("must be at least 8 characters (or empty to generate one)".into());
            }
            if s.len() > 1024 {
                return Err("must be at most 1024 characters".into());
            }
            Ok(())
        });

        let port_raw = r.int("port");
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

        let mount_path = r.checked("mount-path", |s| {
            text::plain(s)?;
            uri::url_path(s)
        });

        let public_server_url = r.checked("public-server-url", |s| {
            if s.is_empty() {
                return Ok(());
            }
            HttpUrl::parse(s).map(drop)
        });

        let database_name = r.checked("database-name", uri::database_name);

        // The reasons never echo the value: it may hold a password.
        let database_uri_raw = r.string("database-uri");
        let database_uri = match database_uri_raw.as_str() {
            "" => None,
            s => match DbUri::parse(s).and_then(parse_server_reads) {
                Ok(u) => Some(u),
                Err(why) => {
                    r.fail("database-uri", why);
                    None
                }
            },
        };

        let parse_server_version = r.checked("parse-server-version", |s| {
            rules::exact_version(s)?;
            if rules::major(s) < OLDEST_MAJOR {
                return Err(format!(
                    "must be parse-server {OLDEST_MAJOR}.0.0 or later (the options this charm \
                     renders)"
                ));
            }
            Ok(())
        });

        let workers_raw = r.int("workers");
        let workers = match workers_raw {
            0 => None,
            1..=64 => Some(workers_raw as u32),
            _ => {
                r.fail(
                    "workers",
                    format!("must be between 0 (sized to the machine) and 64, got {workers_raw}"),
                );
                None
            }
        };

        let heap_raw = r.int("node-max-old-space-size");
        let node_max_old_space_size = match heap_raw {
            0 => None,
            64..=65_536 => Some(heap_raw as u32),
            _ => {
                r.fail(
                    "node-max-old-space-size",
                    format!("must be 0 (sized to the machine) or 64 to 65536 MiB, got {heap_raw}"),
                );
                None
            }
        };

        let semi_raw = r.int("node-max-semi-space-size");
        let node_max_semi_space_size = match semi_raw {
            0 => None,
            1..=256 => Some(semi_raw as u32),
            _ => {
                r.fail(
                    "node-max-semi-space-size",
                    format!("must be 0 (the charm's default) or 1 to 256 MiB, got {semi_raw}"),
                );
                None
            }
        };

        let limit_raw = r.int("memory-limit");
        let memory_limit = match limit_raw {
            0 => None,
            256..=16_777_216 => Some(limit_raw as u64),
            _ => {
                r.fail(
                    "memory-limit",
                    format!("must be 0 (75% of the machine's memory) or at least 256 MiB, got {limit_raw}"),
                );
                None
            }
        };

        let master_key_ips = ip_list(&mut r, "master-key-ips");
        let read_only_master_key_ips = ip_list(&mut r, "read-only-master-key-ips");

        let allow_client_class_creation = r.boolean("allow-client-class-creation");

        let log_level = r
            .checked("log-level", |s| {
                text::plain(s)?;
                let l = s.to_ascii_lowercase();
                if LEAKY_LOG_LEVELS.contains(&l.as_str()) {
                    return Err(format!(
                        "{l} logs every request's headers (the master key included) to the \
                         journal; use {}",
                        LOG_LEVELS.join(", ")
                    ));
                }
                if !LOG_LEVELS.contains(&l.as_str()) {
                    return Err(format!("must be one of {}", LOG_LEVELS.join(", ")));
                }
                Ok(())
            })
            .to_ascii_lowercase();

        let extra_raw = r.string("extra-options");
        let extra_options = match extra_options::parse(&extra_raw) {
            Ok(map) => map,
            Err(why) => {
                r.fail("extra-options", why);
                Map::new()
            }
        };

        let node_mirror = r.checked("node-mirror", |s| {
            let trimmed = s.strip_suffix('/').unwrap_or(s);
            HttpUrl::parse(trimmed).map(drop)
        });

        let app_name = r.checked("app-name", |s| {
            if s.trim().is_empty() {
                return Err("must not be empty".into());
            }
            if s.chars().count() > 128 {
                return Err("must be at most 128 characters".into());
            }
            text::visible(s)
        });
        let email_from = r.checked("email-from", |s| {
            if s.is_empty() {
                return Ok(());
            }
            text::visible(s)?;
            crate::relations::smtp::sender_address(s)
        });
        let verify_user_emails = r.boolean("verify-user-emails");

        // Never echoed: the URL may hold a password.
        let redis_url = match r.string("redis-url").as_str() {
            "" => None,
            s => match RedisUrl::parse(s) {
                Ok(u) => Some(u),
                Err(why) => {
                    r.fail("redis-url", why);
                    None
                }
            },
        };
        let live_query_raw = r.checked("live-query-classes", |s| live_query_classes(s).map(drop));
        let live_query_classes = live_query_classes(&live_query_raw).unwrap_or_default();

        let dashboard = r.boolean("dashboard");
        let dashboard_port_raw = r.int("dashboard-port");
        let dashboard_port = match u16::try_from(dashboard_port_raw) {
            Ok(p) if p >= 1 && p == port => {
                r.fail(
                    "dashboard-port",
                    format!("{p} is parse-server's port: choose another"),
                );
                4040
            }
            Ok(p) if p >= 1 => p,
            _ => {
                r.fail(
                    "dashboard-port",
                    format!("must be between 1 and 65535, got {dashboard_port_raw}"),
                );
                4040
            }
        };
        let dashboard_url_raw = r.checked("dashboard-url", |s| {
            if s.is_empty() {
                return Ok(());
            }
            let u = HttpUrl::parse(s.strip_suffix('/').unwrap_or(s))?;
            if !u.https {
                return Err(
                    "must be https://: Parse Dashboard's page runs only in a secure \
                            context (it fails at once over plain HTTP)"
                        .into(),
                );
            }
            if u.dns_name().is_none() {
                return Err("must name the host by a DNS name (haproxy routes by it)".into());
            }
            if !matches!(u.path.as_str(), "" | "/") {
                return Err("must have no path: the dashboard is served at the root".into());
            }
            Ok(())
        });
        let dashboard_url = match dashboard_url_raw.as_str() {
            "" => None,
            s => HttpUrl::parse(s.strip_suffix('/').unwrap_or(s)).ok(),
        };

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
            database_uri,
            parse_server_version,
            workers,
            node_max_old_space_size,
            node_max_semi_space_size,
            memory_limit,
            master_key_ips,
            allow_client_class_creation,
            log_level,
            extra_options,
            node_mirror: node_mirror.trim_end_matches('/').to_owned(),
            app_name,
            email_from: (!email_from.is_empty()).then_some(email_from),
            verify_user_emails,
            redis_url,
            live_query_classes,
            read_only_master_key_ips,
            dashboard,
            dashboard_port,
            dashboard_url,
        })
    }

    /// Checks `extra-options` against the installed release's option list.
    pub fn check_options_known(&self, known: &BTreeSet<String>) -> Result<(), ConfigError> {
        extra_options::check_known(&self.extra_options, known).map_err(|reason| ConfigError {
            option: "extra-options",
            reason,
        })
    }
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
        CharmConfig::from_raw(&raw(&[(option, value)])).unwrap_err()
    }

    #[test]
    fn defaults_come_from_config_yaml_and_are_valid() {
        let c = CharmConfig::from_raw(&BTreeMap::new()).unwrap();
        assert_eq!(c.port, 1337);
        assert_eq!(c.mount_path, "/parse");
        assert_eq!(c.master_key, None);
        assert_eq!(c.master_key_ips, vec!["127.0.0.1", "::1"]);
        assert_eq!(c.workers, None);
        assert_eq!(c.memory_limit, None);
        assert_eq!(c.node_max_semi_space_size, None);
        assert_eq!(c.app_id, "parse");
        assert_eq!(c.node_mirror, "https://nodejs.org/dist");
        assert!(!c.allow_client_class_creation);
        // config-get's own view of the defaults (what Juju sends) validates the same way.
        let from_juju: BTreeMap<String, Value> = defaults::defaults()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        assert_eq!(CharmConfig::from_raw(&from_juju).unwrap(), c);
    }

    #[test]
    fn validation_table() {
        // (option, value, substring the reason must contain)
        let cases: Vec<(&str, Value, &str)> = vec![
            ("port", json!(0), "between 1 and 65535"),
            ("port", json!(70000), "got 70000"),
            ("port", json!("1337"), "must be an integer"),
            ("app-id", json!(""), "must not be empty"),
            ("app-id", json!("   "), "spaces"),
            (
                "app-id",
                json!("shop\nPARSE_SERVER_MASTER_KEY=x"),
                "control",
            ),
            ("app-id", json!("a\u{7f}"), "control"),
            ("app-id", json!("shöp"), "X-Parse-Application-Id"),
            ("app-id", json!("shop\u{200b}"), "invisible"),
            ("master-key", json!("short"), "at least 8"),
            ("master-key", json!("longenough\r"), "control"),
            ("master-key", json!(" longenough"), "spaces"),
            (
                "master-key",
                json!("clé-très-secrète"),
                "X-Parse-Master-Key",
            ),
            ("mount-path", json!("parse"), "must start with '/'"),
            ("mount-path", json!("/parse/"), "must not end with '/'"),
            ("mount-path", json!("/pa rse"), "may only use"),
            ("mount-path", json!("//parse"), "'//'"),
            ("mount-path", json!("/a/../parse"), "'..'"),
            ("public-server-url", json!("ftp://x"), "http://"),
            ("public-server-url", json!("http://"), "must name a host"),
            (
                "public-server-url",
                json!("https://Parse.Example.com/parse"),
                "lowercase",
            ),
            (
                "public-server-url",
                json!("https://x.example.com:443/parse"),
                "default port",
            ),
            ("database-name", json!("a/b"), "may only use"),
            ("database-name", json!(""), "1 to 49"),
            ("database-name", json!("local"), "keeps for itself"),
            ("database-name", json!("admin"), "keeps for itself"),
            ("database-uri", json!("mysql://h/db"), "must start with"),
            ("database-uri", json!("mongodb:///db"), "must name a host"),
            (
                "database-uri",
                json!("mongodb://h/local"),
                "system database",
            ),
            (
                "database-uri",
                json!("postgres://u:pw@h/db?sslmode=verify-full"),
                "parse-server ignores it",
            ),
            (
                "database-uri",
                json!("postgresql://u:pw@h/db?ssl=true&pfx=/etc/c.p12"),
                "client certificates",
            ),
            ("parse-server-version", json!("^9.0.0"), "exact release"),
            ("parse-server-version", json!("latest"), "exact release"),
            ("parse-server-version", json!("9.10.0+b1"), "exact release"),
            ("parse-server-version", json!("09.10.0"), "exact release"),
            ("parse-server-version", json!("7.4.0"), "8.0.0 or later"),
            ("workers", json!(-2), "between 0"),
            ("workers", json!(65), "between 0"),
            ("node-max-old-space-size", json!(-5), "must be 0"),
            ("node-max-old-space-size", json!(10), "must be 0"),
            ("node-max-semi-space-size", json!(-1), "must be 0"),
            ("node-max-semi-space-size", json!(257), "1 to 256"),
            ("memory-limit", json!(100), "at least 256"),
            ("memory-limit", json!(-1), "at least 256"),
            ("master-key-ips", json!("10.0.0.0/33"), "prefix length"),
            ("master-key-ips", json!("localhost"), "IP address"),
            ("master-key-ips", json!(" , "), "at least one"),
            ("master-key-ips", json!("10.0.0.1,,::1"), "empty entry"),
            ("master-key-ips", json!("010.0.0.1"), "leading zeros"),
            ("log-level", json!("loud"), "must be one of"),
            ("log-level", json!("verbose"), "master key"),
            ("log-level", json!("silly"), "master key"),
            ("log-level", json!(" info"), "spaces"),
            ("extra-options", json!("{not json"), "not valid JSON"),
            ("extra-options", json!("[1,2]"), "JSON object"),
            (
                "extra-options",
                json!("{\"port\": 1}"),
                "\"port\" is set by the charm",
            ),
            ("allow-client-class-creation", json!("yes"), "true or false"),
            ("node-mirror", json!("file:///srv/node"), "http://"),
            (
                "node-mirror",
                json!("https://u:p@mirror.example/dist"),
                "user name",
            ),
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
    fn values_of_the_wrong_type_are_refused_by_name() {
        // Juju itself refuses these at `juju config`; the charm does not rely on it.
        let cases: Vec<(&str, Value, &str)> = vec![
            ("port", json!(1.5), "must be an integer"),
            ("workers", json!("2"), "must be an integer"),
            ("app-id", json!(5), "must be a string"),
            ("master-key", json!(true), "must be a string"),
            (
                "allow-client-class-creation",
                json!(1),
                "must be true or false",
            ),
        ];
        for (option, value, want) in cases {
            let errs = errors_for(option, value.clone());
            assert!(
                errs.iter().any(|e| e.reason.contains(want)),
                "{option}={value}: {errs:?} lacks {want:?}"
            );
            assert!(
                errs.iter().all(|e| e.option == option),
                "{option}={value}: {errs:?}"
            );
        }
    }

    #[test]
    fn accepted_values() {
        let c = CharmConfig::from_raw(&raw(&[
            ("app-id", json!("shop")),
            ("master-key", json!("it's a \"key\" with \\ and $HOME")),
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
            ("node-max-semi-space-size", json!(8)),
            ("master-key-ips", json!("10.0.0.0/8, ::1, 2001:db8::/32")),
            ("log-level", json!("WARN")),
            (
                "extra-options",
                json!("{\"maxLimit\": 1000, \"enableAnonymousUsers\": false}"),
            ),
            ("node-mirror", json!("https://mirror.example/node/")),
        ]))
        .unwrap();
        assert_eq!(c.port, 8080);
        assert_eq!(c.workers, None);
        assert_eq!(c.node_max_old_space_size, Some(512));
        assert_eq!(c.node_max_semi_space_size, Some(8));
        assert_eq!(c.master_key_ips.len(), 3);
        assert_eq!(c.log_level, "warn");
        assert_eq!(c.extra_options["maxLimit"], json!(1000));
        assert_eq!(c.node_mirror, "https://mirror.example/node");
    }

    #[test]
    fn parse_servers_own_database_options_are_accepted() {
        // What parse-server's PostgreSQL URI parser reads: TLS (ssl, ca, rejectUnauthorized)
        // and its pool and query options; and any MongoDB driver option.
        for uri in [
            "postgres://u:pw@db.example/parse?ssl=true",
            "postgres://u:pw@db.example/parse?ssl=true&ca=/etc/ssl/certs/ca-certificates.crt",
            "postgresql://u:pw@10.0.0.7:5432/parse?max=20&query_timeout=5000&binary=true",
            "mongodb://u:pw@h1,h2/parse?replicaSet=rs0&tls=true&tlsCAFile=/etc/ssl/ca.pem",
        ] {
            let c = CharmConfig::from_raw(&raw(&[("database-uri", json!(uri))]))
                .unwrap_or_else(|e| panic!("{uri}: {e:?}"));
            assert_eq!(c.database_uri.unwrap().to_secret_string(), uri);
        }
    }

    #[test]
    fn every_problem_is_reported() {
        let errs = CharmConfig::from_raw(&raw(&[("port", json!(0)), ("mount-path", json!("x"))]))
            .unwrap_err();
        let names: Vec<&str> = errs.iter().map(|e| e.option).collect();
        assert_eq!(names, vec!["port", "mount-path"]);
    }

    #[test]
    fn secrets_are_never_echoed() {
        for (option, value) in [
            ("database-uri", "mysql://admin:hunter2@db/x"),
            ("database-uri", "mongodb://admin:hunter2@db/local"),
            ("master-key", "hunter2é"),
        ] {
            let errs = errors_for(option, json!(value));
            assert!(!errs[0].reason.contains("hunter2"), "{errs:?}");
        }
    }

    #[test]
    fn long_values_make_short_reasons() {
        let huge = "x".repeat(100_000);
        for option in [
            "log-level",
            "port",
            "parse-server-version",
            "allow-client-class-creation",
        ] {
            let errs = errors_for(option, json!(huge.clone()));
            assert!(
                errs[0].reason.len() < 200,
                "{option}: {}",
                errs[0].reason.len()
            );
        }
    }

    #[test]
    fn redis_url_and_live_query_classes() {
        let c = CharmConfig::from_raw(&raw(&[
            ("redis-url", json!("redis://:pw@10.0.0.9:6380")),
            ("live-query-classes", json!(" Message, _User,Room_2 ")),
        ]))
        .unwrap();
        assert_eq!(c.redis_url.unwrap().describe(), "redis://10.0.0.9:6380");
        assert_eq!(c.live_query_classes, vec!["Message", "_User", "Room_2"]);
        let d = CharmConfig::from_raw(&BTreeMap::new()).unwrap();
        assert_eq!(d.redis_url, None);
        assert!(d.live_query_classes.is_empty());
        let e = errors_for("redis-url", json!("redis://:hunter2@"));
        assert_eq!(e[0].option, "redis-url");
        assert!(!e[0].reason.contains("hunter2"), "{}", e[0].reason);
        for bad in [
            "Message,,Room",
            "1Room",
            "_Secret",
            "Room-1",
            "Message,Message",
        ] {
            let e = errors_for("live-query-classes", json!(bad));
            assert_eq!(e[0].option, "live-query-classes", "{bad}");
        }
    }
}
