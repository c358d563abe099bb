//! Which database the service uses, and whether it answers with the credentials it will use.
//!
//! Four sources, one at a time: the `database-uri` option, Charmed MongoDB
//! (`mongodb-client`, interface `mongodb_client`), Charmed PostgreSQL (`postgresql-client`,
//! interface `postgresql_client`), or the legacy `mongodb` interface. Two at once is the
//! operator's to fix, and nothing that serves is touched meanwhile.

use super::status::{Blocked, Invalid, SecretProblem, Waiting};
use super::{blocked, waiting, Charm, Step};
use crate::config::CharmConfig;
use crate::juju::{Event, RelationKind};
use crate::relations::database_client::{self, Answer, ProviderData};
use crate::relations::mongodb::{self, MongoRelation};
use crate::relations::{mongodb_client, postgresql_client, Missing};
use crate::uri::DbUri;
use crate::workload::database::DbError;

use super::endpoints::{
    MONGODB_CLIENT_ENDPOINT, MONGODB_LEGACY_ENDPOINT, POSTGRESQL_CLIENT_ENDPOINT,
};

/// Where the database URI comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The `database-uri` option: the operator's to fix.
    Config,
    /// A relation on this endpoint: the provider's to fix.
    Relation {
        endpoint: &'static str,
        remote_app: String,
    },
}

impl Source {
    fn describe(&self) -> String {
        match self {
            Source::Config => "database-uri".into(),
            Source::Relation { endpoint, .. } => format!("the {endpoint} relation"),
        }
    }
}

/// The database the service is to use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Database {
    pub uri: DbUri,
    pub source: Source,
    /// The provider's TLS CA: parse-server (and the charm's check) speak TLS verified with
    /// it.
    pub ca_pem: Option<String>,
    /// Schema changes can be pushed to every instance (PostgreSQL's LISTEN/NOTIFY, or a
    /// MongoDB replica set's change streams).
    pub schema_hooks: bool,
    /// The provider's release (`version`), when it said.
    pub version: Option<String>,
}

impl Database {
    fn from_uri(uri: DbUri, source: Source) -> Database {
        let schema_hooks = uri.is_postgres() || uri.option_ignore_case("replicaSet").is_some();
        Database {
            uri,
            source,
            ca_pem: None,
            schema_hooks,
            version: None,
        }
    }
}

impl Charm<'_> {
    /// The relations of `endpoint` that still exist (not the one breaking in this hook).
    pub(super) fn live_relations(&self, endpoint: &str) -> Step<Vec<String>> {
        let broken_now = match &self.ctx.event {
            Event::Relation {
                endpoint: e,
                kind: RelationKind::Broken,
            } if e == endpoint => self.ctx.relation_id.clone(),
            _ => None,
        };
        Ok(self
            .tools
            .relation_ids(endpoint)?
            .into_iter()
            .filter(|id| Some(id) != broken_now.as_ref())
            .collect())
    }

    /// The database from the one source there is; without any the service stops serving.
    pub(super) fn database(&self, config: &CharmConfig) -> Step<Database> {
        let mut sources: Vec<(&'static str, Option<String>)> = Vec::new();
        if config.database_uri.is_some() {
            sources.push(("database-uri", None));
        }
        for endpoint in [
            MONGODB_CLIENT_ENDPOINT,
            POSTGRESQL_CLIENT_ENDPOINT,
            MONGODB_LEGACY_ENDPOINT,
        ] {
            for id in self.live_relations(endpoint)? {
                sources.push((endpoint, Some(id)));
            }
        }
        match sources.as_slice() {
            [] => {
                self.stop_serving_without_database()?;
                return blocked(Blocked::NoDatabase);
            }
            [_] => {}
            [(a, _), (b, _), ..] => {
                let name = |s: &str| {
                    if s == "database-uri" {
                        s.to_owned()
                    } else {
                        format!("the {s} relation")
                    }
                };
                return blocked(Blocked::TwoDatabases {
                    first: name(a),
                    second: name(b),
                });
            }
        }
        let (endpoint, id) = sources.remove(0);
        match (endpoint, id) {
            ("database-uri", _) => Ok(Database::from_uri(
                config
                    .database_uri
                    .clone()
                    .expect("a database-uri source has a URI"),
                Source::Config,
            )),
            (MONGODB_LEGACY_ENDPOINT, Some(id)) => self.legacy_mongodb(&id, config),
            (endpoint, Some(id)) => self.client_database(endpoint, &id, config),
            _ => unreachable!("every relation source has an id"),
        }
    }

    /// The legacy `mongodb` interface: every MongoDB unit publishes its host and port.
    fn legacy_mongodb(&self, id: &str, config: &CharmConfig) -> Step<Database> {
        let mut units = Vec::new();
        for unit in self.tools.relation_list(id)? {
            let bag = self.tools.relation_get(id, &unit)?;
            units.push((unit, bag));
        }
        match mongodb::relation_state(&units) {
            MongoRelation::Incomplete(what) => waiting(Waiting::ProviderShare {
                kind: "mongodb".into(),
                what,
            }),
            MongoRelation::Unusable(why) => waiting(Waiting::ProviderData {
                endpoint: MONGODB_LEGACY_ENDPOINT.into(),
                why: format!("unusable data from {why}"),
            }),
            MongoRelation::Ready {
                endpoints,
                rejected,
            } => {
                for r in rejected {
                    self.log(&format!("ignoring unusable mongodb relation data: {r}"));
                }
                let uri = mongodb::mongodb_uri(&endpoints, &config.database_name);
                Ok(Database::from_uri(
                    uri,
                    Source::Relation {
                        endpoint: MONGODB_LEGACY_ENDPOINT,
                        remote_app: "mongodb".into(),
                    },
                ))
            }
        }
    }

    /// Charmed MongoDB or PostgreSQL: the leader asks for the database (and for secrets);
    /// every unit reads the answer, the credentials from the provider's secret.
    fn client_database(
        &self,
        endpoint: &'static str,
        id: &str,
        config: &CharmConfig,
    ) -> Step<Database> {
        let postgres = endpoint == POSTGRESQL_CLIENT_ENDPOINT;
        let kind = if postgres { "postgresql" } else { "mongodb" };
        let (remote_app, provider, ca_pem) = self.client_answer(
            endpoint,
            kind,
            id,
            database_client::request(&config.database_name),
        )?;
        let answer = if postgres {
            postgresql_client::connection(&provider, &config.database_name)
        } else {
            mongodb_client::connection(&provider, &config.database_name)
        };
        match answer {
            Answer::Incomplete(what) => waiting(Waiting::ProviderShare {
                kind: kind.into(),
                what,
            }),
            Answer::Unusable(why) => waiting(Waiting::ProviderData {
                endpoint: endpoint.into(),
                why,
            }),
            Answer::OtherDatabase { served } => blocked(Blocked::OtherDatabase {
                endpoint: endpoint.into(),
                served,
                wanted: config.database_name.clone(),
            }),
            Answer::Ready { uri, replica_set } => Ok(Database {
                uri,
                source: Source::Relation {
                    endpoint,
                    remote_app,
                },
                ca_pem,
                schema_hooks: postgres || replica_set,
                version: provider.version.clone(),
            }),
        }
    }

    /// A data_interfaces v0 provider (`kind` in statuses): the leader writes `request` unless
    /// it is there; every unit reads the answer (remote application, data with its secrets
    /// read, the TLS CA when TLS is on).
    pub(super) fn client_answer(
        &self,
        endpoint: &'static str,
        kind: &str,
        id: &str,
        request: crate::juju::Databag,
    ) -> Step<(String, ProviderData, Option<String>)> {
        if self.tools.is_leader()? {
            let own = self.tools.relation_get_app(id, &self.ctx.app_name)?;
            if !request.iter().all(|(k, v)| own.get(k) == Some(v)) {
                self.tools.relation_set_app(id, &request)?;
            }
        }
        let Some(remote_app) = self.remote_app(id)? else {
            return waiting(Waiting::ProviderJoin {
                kind: kind.into(),
                endpoint: endpoint.into(),
            });
        };
        let raw = ProviderData::from_bag(&self.tools.relation_get_app(id, &remote_app)?);
        let user = self.provider_secret(endpoint, raw.secret_user.as_deref())?;
        let tls = self.provider_secret(endpoint, raw.secret_tls.as_deref())?;
        let provider = raw.with_secrets(user.as_ref(), tls.as_ref());
        let ca_pem = match (&provider.tls_ca, provider.tls_enabled()) {
            (Some(ca), true) => match database_client::pem_bundle(ca) {
                Ok(pem) => Some(pem),
                Err(why) => {
                    return waiting(Waiting::ProviderData {
                        endpoint: endpoint.into(),
                        why,
                    })
                }
            },
            (None, true) => {
                return waiting(Waiting::ProviderShare {
                    kind: kind.into(),
                    what: Missing::TlsCa,
                })
            }
            _ => None,
        };
        Ok((remote_app, provider, ca_pem))
    }

    /// The remote application of relation `id`, once one of its units joined.
    pub(super) fn remote_app(&self, id: &str) -> Step<Option<String>> {
        Ok(self
            .tools
            .relation_list(id)?
            .first()
            .and_then(|u| u.split_once('/').map(|(app, _)| app.to_owned())))
    }

    /// A secret the provider granted to the relation, at its latest revision.
    pub(super) fn provider_secret(
        &self,
        endpoint: &str,
        uri: Option<&str>,
    ) -> Step<Option<crate::juju::Databag>> {
        let Some(uri) = uri else {
            return Ok(None);
        };
        match self.tools.secret_get_by_id(uri, true) {
            Ok(Some(content)) => Ok(Some(content)),
            Ok(None) => waiting(Waiting::ProviderSecret {
                endpoint: endpoint.into(),
                why: SecretProblem::Missing,
            }),
            Err(e) => waiting(Waiting::ProviderSecret {
                endpoint: endpoint.into(),
                why: SecretProblem::Unreadable(crate::text::one_line(&e.detail, 60)),
            }),
        }
    }

    /// The database must answer with the credentials the service will use. A refusal is the
    /// operator's to fix when the URI is theirs, the provider's when it came from a
    /// relation; a server that does not answer may come back by itself.
    pub(super) fn check_database(&self, db: &Database) -> Step<crate::workload::database::DbInfo> {
        match self
            .probes
            .database(&db.uri, db.ca_pem.as_deref(), self.timeouts.database)
        {
            Ok(info) => Ok(info),
            Err(DbError::Unreachable(why)) => waiting(Waiting::DatabaseUnreachable(why)),
            Err(DbError::BadUri(why) | DbError::Refused(why)) => match &db.source {
                Source::Config => blocked(Blocked::InvalidConfig(vec![Invalid::new(
                    "database-uri",
                    why,
                )])),
                source => waiting(Waiting::DatabaseRefused {
                    source: source.describe(),
                    why,
                }),
            },
        }
    }

    /// Stops the service and closes its port (no database to serve from).
    fn stop_serving_without_database(&self) -> Step<()> {
        self.stop_service()?;
        self.sync_ports(&[])
    }
}
