//! Parse Dashboard's two files, rendered from a [`DashboardSpec`]: its option file (JSON,
//! holding the keys and the users' bcrypt hashes: root and the service group only) and its
//! systemd unit (the same sandbox as parse-server's; no value on its command line).

use anyhow::Result;
use serde_json::json;

use super::install::DASHBOARD;
use super::paths::Paths;
use super::render::source_digest;
use super::user::SERVICE_USER;

const UNIT_TEMPLATE: &str = include_str!("../../templates/parse-dashboard.service.tera");
/// The program that serves the dashboard (installed at `Paths::DASHBOARD_SERVER`).
pub const SERVER_JS: &str = include_str!("../../charm/node/dashboard.js");
/// The dashboard's systemd unit.
pub const DASHBOARD_UNIT: &str = "parse-dashboard.service";
/// What the balancers ask (answered without a session).
pub const READY_PATH: &str = "/parse-dashboard-charm/ready";
/// V8's heap and the unit's memory cap (MiB): the dashboard serves a few admins.
const HEAP_MIB: u32 = 192;
const MEMORY_MAX_MIB: u32 = 384;
/// How long a login lasts without use.
const SESSION_MAX_AGE_MS: u64 = 8 * 3600 * 1000;

/// One dashboard user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DashboardUser {
    pub user: String,
    /// bcrypt (`useEncryptedPasswords`).
    pub pass: String,
    pub read_only: bool,
}

/// Everything the dashboard's files depend on.
#[derive(Debug, Clone, PartialEq)]
pub struct DashboardSpec {
    pub port: u16,
    pub node: String,
    pub app_id: String,
    pub app_name: String,
    /// The URL the browser calls parse-server at.
    pub public_server_url: String,
    /// parse-server on this unit's loopback (where sessions are kept).
    pub local_server_url: String,
    pub master_key: String,
    pub read_only_master_key: String,
    pub cookie_secret: String,
    pub users: Vec<DashboardUser>,
    /// The balancers' addresses, whose X-Forwarded-* headers are believed.
    pub trust_proxy: Vec<String>,
}

/// The rendered files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DashboardFiles {
    pub config_json: String,
    pub unit: String,
}

pub fn render(spec: &DashboardSpec) -> Result<DashboardFiles> {
    let app = json!({
        "appId": spec.app_id,
        "appName": spec.app_name,
        "serverURL": spec.public_server_url,
        "masterKey": spec.master_key,
        "readOnlyMasterKey": spec.read_only_master_key,
    });
    let users: Vec<_> = spec
        .users
        .iter()
        .map(|u| json!({"user": u.user, "pass": u.pass, "readOnly": u.read_only}))
        .collect();
    let config = json!({
        "version": DASHBOARD.version,
        "tree": DASHBOARD.tree_path(),
        "port": spec.port,
        "trustProxy": spec.trust_proxy,
        // Logins only over HTTPS (as haproxy says in X-Forwarded-Proto) or from the unit
        // itself: the page needs a secure context anyway.
        "allowInsecureHTTP": false,
        "cookieSessionSecret": spec.cookie_secret,
        "cookieSessionMaxAgeMs": SESSION_MAX_AGE_MS,
        "sessionStore": {
            "serverURL": spec.local_server_url,
            "appId": spec.app_id,
            "masterKey": spec.master_key,
        },
        "dashboard": {
            "apps": [app],
            "users": users,
            "useEncryptedPasswords": true,
        },
    });
    let mut config_json = serde_json::to_string_pretty(&config)?;
    config_json.push('\n');

    let mut tera = tera::Tera::default();
    tera.add_raw_template("unit", UNIT_TEMPLATE)?;
    let mut ctx = tera::Context::new();
    ctx.insert("user", SERVICE_USER);
    ctx.insert("version", DASHBOARD.version);
    ctx.insert("state_dir", Paths::STATE_DIR);
    ctx.insert("config_file", Paths::DASHBOARD_CONFIG);
    ctx.insert("node", &spec.node);
    ctx.insert("heap_mib", &HEAP_MIB);
    ctx.insert("memory_max", &MEMORY_MAX_MIB);
    ctx.insert("server", Paths::DASHBOARD_SERVER);
    ctx.insert("server_digest", &source_digest(SERVER_JS));
    ctx.insert("low_port", &(spec.port < 1024));
    Ok(DashboardFiles {
        config_json,
        unit: tera.render("unit", &ctx)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn spec() -> DashboardSpec {
        DashboardSpec {
            port: 4040,
            node: "/usr/bin/node".into(),
            app_id: "app".into(),
            app_name: "My App".into(),
            public_server_url: "https://parse.example.com/parse".into(),
            local_server_url: "http://127.0.0.1:1337/parse".into(),
            master_key: "m".repeat(64),
            read_only_master_key: "r".repeat(64),
            cookie_secret: "c".repeat(64),
            users: vec![
                DashboardUser {
                    user: "alice".into(),
                    pass: "$2b$10$hash".into(),
                    read_only: false,
                },
                DashboardUser {
                    user: "audit".into(),
                    pass: "$2b$10$other".into(),
                    read_only: true,
                },
            ],
            trust_proxy: vec!["10.0.0.9".into()],
        }
    }

    #[test]
    fn the_dashboard_s_options_hold_the_app_users_and_store() {
        let f = render(&spec()).unwrap();
        let v: serde_json::Value = serde_json::from_str(&f.config_json).unwrap();
        let app = &v["dashboard"]["apps"][0];
        assert_eq!(app["serverURL"], "https://parse.example.com/parse");
        assert_eq!(app["readOnlyMasterKey"], "r".repeat(64));
        assert_eq!(v["dashboard"]["useEncryptedPasswords"], true);
        assert_eq!(v["dashboard"]["users"][1]["readOnly"], true);
        assert_eq!(v["dashboard"]["users"][0]["pass"], "$2b$10$hash");
        assert_eq!(
            v["sessionStore"]["serverURL"],
            "http://127.0.0.1:1337/parse"
        );
        assert_eq!(v["trustProxy"], json!(["10.0.0.9"]));
        assert_eq!(v["tree"], "/opt/parse-server/parse-dashboard/9.2.0");
        assert_eq!(v["allowInsecureHTTP"], false);
    }

    #[test]
    fn no_secret_on_the_unit_s_command_line() {
        let f = render(&spec()).unwrap();
        for secret in ["m".repeat(64), "r".repeat(64), "c".repeat(64)] {
            assert!(!f.unit.contains(&secret));
        }
        let exec = f
            .unit
            .lines()
            .find(|l| l.starts_with("ExecStart="))
            .unwrap();
        assert_eq!(
            exec,
            "ExecStart=/usr/bin/node --max-old-space-size=192 \
             /opt/parse-server/charm/dashboard.js /etc/parse-server/dashboard.json"
        );
        assert!(f.unit.contains("ProtectSystem=strict"));
        assert!(f.unit.contains("CapabilityBoundingSet=\n"));
    }
}
