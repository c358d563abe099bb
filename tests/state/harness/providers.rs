//! The providers: whether the database answers, and what each provider charm publishes on
//! its relation (legacy MongoDB, Charmed MongoDB and PostgreSQL, haproxy, an http consumer),
//! with the interface it offers.

use parse_server_charm::juju::bag_of;
use parse_server_charm::uri::DbUri;
use parse_server_charm::workload::database::{DbError, DbInfo};

use super::juju::Secret;
use super::World;

/// What the database answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Db {
    Up,
    Down,
    WrongPassword,
}

impl World {
    /// The database probe's answer (`Probes::database`).
    pub(super) fn database_answer(
        &self,
        uri: &DbUri,
        ca_pem: Option<&str>,
    ) -> Result<DbInfo, DbError> {
        self.probed_uris.borrow_mut().push(uri.to_secret_string());
        self.probed_cas.borrow_mut().push(ca_pem.map(str::to_owned));
        match self.db {
            Db::Up => Ok(DbInfo {
                postgis: uri.is_postgres().then_some(self.postgis),
            }),
            Db::Down => Err(DbError::Unreachable(
                "database at 127.0.0.1:27017 does not answer: connection refused".into(),
            )),
            Db::WrongPassword => Err(DbError::Refused(
                "database at 127.0.0.1:27017 refused: Authentication failed.".into(),
            )),
        }
    }

    /// A secret a provider granted to a relation; returns its URI.
    pub fn grant_secret(&mut self, pairs: &[(&str, &str)]) -> String {
        let uri = format!("secret:remote{}", self.secrets.len());
        self.secrets.insert(
            uri.clone(),
            Secret {
                label: None,
                content: bag_of(pairs),
                owned: false,
                newer: None,
            },
        );
        uri
    }

    /// A legacy mongodb relation (interface `mongodb`) whose one unit has joined and
    /// published nothing but its address yet.
    pub fn relate_mongodb_unpublished(&mut self) -> String {
        let id = self.relate_as("mongodb", "mongodb", "mongodb");
        self.remote_set(&id, "mongodb/0", &[("private-address", "10.0.0.5")]);
        id
    }

    /// A legacy mongodb relation whose one unit published `127.0.0.1:27017`.
    pub fn relate_mongodb(&mut self) -> String {
        let id = self.relate_as("mongodb", "mongodb", "mongodb");
        self.remote_set(
            &id,
            "mongodb/0",
            &[("hostname", "127.0.0.1"), ("port", "27017")],
        );
        id
    }

    /// A Charmed MongoDB relation (`mongodb_client`) whose leader answered with a
    /// `secret-user` secret; returns the relation and the secret.
    pub fn relate_charmed_mongodb(&mut self, password: &str) -> (String, String) {
        let id = self.relate_as("mongodb-client", "mongodb", "mongodb_client");
        self.remote_set(&id, "mongodb/0", &[("ingress-address", "10.0.0.20")]);
        let uris =
            format!("mongodb://relation-4:{password}@10.0.0.20:27017/parse?authSource=admin");
        let secret = self.grant_secret(&[
            ("username", "relation-4"),
            ("password", password),
            ("uris", uris.as_str()),
        ]);
        self.remote_app_set(
            &id,
            &[
                ("database", "parse"),
                ("endpoints", "10.0.0.20"),
                ("secret-user", secret.as_str()),
            ],
        );
        (id, secret)
    }

    /// A Charmed MongoDB relation whose leader answered with plain fields: `app_bag`.
    pub fn relate_charmed_mongodb_plain(&mut self, app_bag: &[(&str, &str)]) -> String {
        let id = self.relate_as("mongodb-client", "mongodb", "mongodb_client");
        self.remote_set(&id, "mongodb/0", &[("ingress-address", "10.0.0.20")]);
        self.remote_app_set(&id, app_bag);
        id
    }

    /// A Charmed PostgreSQL relation (`postgresql_client`) with plain fields (a provider
    /// without secrets).
    pub fn relate_charmed_postgresql(&mut self) -> String {
        let id = self.relate_as("postgresql-client", "postgresql", "postgresql_client");
        self.remote_set(&id, "postgresql/0", &[("ingress-address", "10.0.0.30")]);
        self.remote_app_set(
            &id,
            &[
                ("database", "parse"),
                ("endpoints", "10.0.0.30:5432"),
                ("username", "relation-5"),
                ("password", "Xy7q2w9e0r1t2y3u"),
                ("version", "16.6"),
            ],
        );
        id
    }

    /// A haproxy relation (`haproxy-route`) whose one unit is at 10.0.0.40.
    pub fn relate_haproxy_route(&mut self) -> String {
        let id = self.relate_as("haproxy-route", "haproxy", "haproxy-route");
        self.remote_set(&id, "haproxy/0", &[("ingress-address", "10.0.0.40")]);
        id
    }

    /// An smtp-integrator relation (`smtp`) whose unit joined and whose leader wrote
    /// `app_bag` (nothing yet when empty).
    pub fn relate_smtp(&mut self, app_bag: &[(&str, &str)]) -> String {
        let id = self.relate_as("smtp", "smtp-integrator", "smtp");
        self.remote_set(
            &id,
            "smtp-integrator/0",
            &[("ingress-address", "10.0.0.50")],
        );
        self.remote_app_set(&id, app_bag);
        id
    }

    /// smtp-integrator as it answers with a password in a secret granted to the relation
    /// (`password_id`), STARTTLS, plain AUTH, a domain; returns the relation and the secret.
    pub fn relate_smtp_with_secret(&mut self, password: &str) -> (String, String) {
        let secret = self.grant_secret(&[("password", password)]);
        let id = self.relate_smtp(&[
            ("host", "smtp.example.com"),
            ("port", "587"),
            ("user", "mailer"),
            ("password_id", secret.as_str()),
            ("auth_type", "plain"),
            ("transport_security", "starttls"),
            ("domain", "example.com"),
            ("skip_ssl_verify", "False"),
        ]);
        (id, secret)
    }

    /// Charmed Valkey, joined, answering in the v0 layout with `app_bag` (the client
    /// user's credentials are the caller's to put in a secret).
    pub fn relate_valkey(&mut self, app_bag: &[(&str, &str)]) -> String {
        let id = self.relate_as("valkey", "valkey", "valkey_client");
        self.remote_set(&id, "valkey/0", &[("ingress-address", "10.0.0.31")]);
        self.remote_app_set(&id, app_bag);
        id
    }

    /// s3-integrator related on `s3`, its unit 0 joined, its application databag `app_bag`;
    /// the S3 adapter's npm tree is installed as `workload::install` leaves it.
    pub fn relate_s3(&mut self, app_bag: &[(&str, &str)]) -> String {
        let id = self.relate_as("s3", "s3-integrator", "s3");
        self.remote_set(&id, "s3-integrator/0", &[("ingress-address", "10.0.0.40")]);
        self.remote_app_set(&id, app_bag);
        let pkg = self
            .root
            .join("opt/parse-server/s3-files-adapter/5.3.1/node_modules/@parse/s3-files-adapter");
        std::fs::create_dir_all(&pkg).unwrap();
        std::fs::write(pkg.join("package.json"), r#"{"version":"5.3.1"}"#).unwrap();
        id
    }

    /// An application related on `website` (interface `http`), its unit 0 at 10.0.0.99.
    pub fn relate_website(&mut self, remote_app: &str) -> String {
        let id = self.relate_as("website", remote_app, "http");
        self.remote_set(
            &id,
            &format!("{remote_app}/0"),
            &[("private-address", "10.0.0.99")],
        );
        id
    }
}
