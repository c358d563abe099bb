//! Which database the service uses (the `database-uri` option, or the relation), and whether
//! it answers.

use super::{blocked, waiting, Charm, Step, MONGODB_ENDPOINT};
use crate::config::CharmConfig;
use crate::juju::{Event, RelationKind};
use crate::relations::mongodb::{self, MongoRelation};
use crate::workload::database::DbError;

/// Where the database URI comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The `database-uri` option: the operator's to fix.
    Config,
    /// A relation on this endpoint: the provider's to fix.
    Relation(&'static str),
}

/// The database the service is to use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabaseUri {
    pub uri: String,
    pub source: Source,
}

impl Charm<'_> {
    /// The database URI from `database-uri` or the relation; without either the service
    /// stops serving.
    pub(super) fn database_uri(&self, config: &CharmConfig) -> Step<DatabaseUri> {
        if let Some(uri) = &config.database_uri {
            return Ok(DatabaseUri {
                uri: uri.clone(),
                source: Source::Config,
            });
        }
        let broken_now = match &self.ctx.event {
            Event::Relation {
                endpoint,
                kind: RelationKind::Broken,
            } if endpoint == MONGODB_ENDPOINT => self.ctx.relation_id.clone(),
            _ => None,
        };
        let ids: Vec<String> = self
            .tools
            .relation_ids(MONGODB_ENDPOINT)?
            .into_iter()
            .filter(|id| Some(id) != broken_now.as_ref())
            .collect();
        let Some(id) = ids.first() else {
            self.stop_serving_without_database()?;
            return blocked("add a relation to mongodb (or set database-uri)");
        };
        let mut units = Vec::new();
        for unit in self.tools.relation_list(id)? {
            let bag = self.tools.relation_get(id, &unit)?;
            units.push((unit, bag));
        }
        match mongodb::relation_state(&units) {
            MongoRelation::Incomplete(why) => waiting(why),
            MongoRelation::Ready {
                endpoints,
                rejected,
            } => {
                for r in rejected {
                    self.log(&format!("ignoring unusable mongodb relation data: {r}"));
                }
                Ok(DatabaseUri {
                    uri: mongodb::mongodb_uri(&endpoints, &config.database_name),
                    source: Source::Relation(MONGODB_ENDPOINT),
                })
            }
        }
    }

    /// The database must answer with the credentials the service will use. A refusal is the
    /// operator's to fix when the URI is theirs, the provider's when it came from a
    /// relation; a server that does not answer may come back by itself.
    pub(super) fn check_database(&self, db: &DatabaseUri) -> Step<()> {
        match self.probes.database(&db.uri, self.timeouts.database) {
            Ok(()) => Ok(()),
            Err(DbError::Unreachable(why)) => waiting(why),
            Err(DbError::BadUri(why) | DbError::Refused(why)) => match db.source {
                Source::Config => blocked(format!("invalid config: database-uri: {why}")),
                Source::Relation(endpoint) => waiting(format!("{endpoint} relation: {why}")),
            },
        }
    }

    /// Stops the service and closes its port (no database to serve from).
    fn stop_serving_without_database(&self) -> Step<()> {
        self.stop_service()?;
        self.sync_ports(None)
    }
}
