//! The peer relation's databags (`parse-peers`) and the rolling-restart rule, as pure data.
//!
//! Application databag (written by the leader):
//! - `master-key-secret`: the ID of the Juju secret holding the generated master key (the
//!   secret stays the store; the ID lets every unit read it and wakes them when it appears);
//! - `initialised`: `true` once the leader's service first served, so that no other unit's
//!   first start races it (parse-server creates its tables and indexes at start-up);
//! - `restart-grant`: the one unit allowed to restart now (rolling restarts), and
//!   `restart-grant-at`: when the leader granted it (seconds since the epoch, the leader's
//!   clock), for the grant's lease.
//!
//! Unit databags (each unit its own):
//! - `address`: the unit's address;
//! - `restart-request`: the digest of the rendering the unit waits to restart into;
//! - `serving`: the digest of the rendering it serves, and `serving-port` its port (the
//!   leader lists every port a unit still serves on in the load balancer's route).

use crate::juju::Databag;

pub const MASTER_KEY_SECRET: &str = "master-key-secret";
/// App key: the ID of the secret holding the dashboard's cookie secret and read-only key.
pub const DASHBOARD_SECRET: &str = "dashboard-secret";
/// App key: the dashboard's users, a JSON list of `{"user", "read-only", "secret"}` (the
/// secret holds the password and its bcrypt hash).
pub const DASHBOARD_USERS: &str = "dashboard-users";
pub const INITIALISED: &str = "initialised";
pub const RESTART_GRANT: &str = "restart-grant";
pub const RESTART_GRANT_AT: &str = "restart-grant-at";
pub const ADDRESS: &str = "address";
pub const RESTART_REQUEST: &str = "restart-request";
pub const SERVING: &str = "serving";
pub const SERVING_PORT: &str = "serving-port";

/// The number after the `/` of a unit name, for ordering (`app/10` after `app/2`).
pub fn unit_number(unit: &str) -> u64 {
    unit.rsplit('/')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(u64::MAX)
}

/// The restart grant: who may restart, since when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub unit: String,
    pub since: u64,
}

impl Grant {
    /// The grant in an application databag (a grant an older charm revision wrote without a
    /// time counts from `now`).
    pub fn from_bag(app: &Databag, now: u64) -> Option<Grant> {
        let unit = app.get(RESTART_GRANT).filter(|g| !g.is_empty())?;
        let since = app
            .get(RESTART_GRANT_AT)
            .and_then(|t| t.parse().ok())
            .unwrap_or(now);
        Some(Grant {
            unit: unit.clone(),
            since,
        })
    }
}

/// The leader's decision: who may restart now, among the members that ask (`asking`).
///
/// The holder keeps the grant while it asks and its lease (`lease` seconds from the grant)
/// runs. Otherwise the grant goes round: to the first asker numbered after the holder,
/// wrapping around to the lowest (with no holder, the lowest asker). A holder that is gone,
/// or whose machine died with the grant, therefore costs the others at most one lease, and
/// gets its turn again only after every other asker had one. `None`: nobody asks.
pub fn next_grant(current: Option<&Grant>, asking: &[&str], now: u64, lease: u64) -> Option<Grant> {
    if let Some(g) = current {
        if asking.contains(&g.unit.as_str()) && now < g.since.saturating_add(lease) {
            return Some(g.clone());
        }
    }
    let mut askers: Vec<&str> = asking.to_vec();
    askers.sort_by_key(|u| unit_number(u));
    askers.dedup();
    let after = current.map(|g| unit_number(&g.unit));
    let next = askers
        .iter()
        .find(|u| after.is_some_and(|a| unit_number(u) > a))
        .or_else(|| askers.first())?;
    Some(Grant {
        unit: (*next).to_owned(),
        since: now,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(unit: &str, since: u64) -> Grant {
        Grant {
            unit: unit.into(),
            since,
        }
    }

    const LEASE: u64 = 240;

    #[test]
    fn one_unit_at_a_time_lowest_first() {
        assert_eq!(next_grant(None, &[], 100, LEASE), None);
        assert_eq!(
            next_grant(None, &["app/10", "app/2"], 100, LEASE),
            Some(g("app/2", 100))
        );
        // The holder keeps it while it asks, with its own start time.
        assert_eq!(
            next_grant(Some(&g("app/10", 90)), &["app/1", "app/10"], 100, LEASE),
            Some(g("app/10", 90))
        );
        // Done (no longer asking) or gone: the next one after it, wrapping around.
        assert_eq!(
            next_grant(Some(&g("app/1", 90)), &["app/0", "app/2"], 100, LEASE),
            Some(g("app/2", 100))
        );
        assert_eq!(
            next_grant(Some(&g("app/10", 90)), &["app/1"], 100, LEASE),
            Some(g("app/1", 100))
        );
        assert_eq!(
            next_grant(Some(&g("app/7", 90)), &["app/2"], 100, LEASE),
            Some(g("app/2", 100))
        );
        assert_eq!(next_grant(Some(&g("app/7", 90)), &[], 100, LEASE), None);
    }

    #[test]
    fn a_dead_holder_costs_one_lease() {
        // app/2's machine died holding the grant: app/0 and app/1 wait until its lease ends,
        // then the grant moves on and comes back to app/2 only after them.
        let dead = g("app/2", 1000);
        let asking = ["app/0", "app/1", "app/2"];
        assert_eq!(
            next_grant(Some(&dead), &asking, 1000 + LEASE - 1, LEASE),
            Some(dead.clone())
        );
        let moved = next_grant(Some(&dead), &asking, 1000 + LEASE, LEASE).unwrap();
        assert_eq!(moved, g("app/0", 1000 + LEASE));
        let next = next_grant(Some(&moved), &["app/1", "app/2"], 1300, LEASE).unwrap();
        assert_eq!(next.unit, "app/1");
        // Alone in asking, the dead one gets a fresh lease: nobody else waits on it.
        assert_eq!(
            next_grant(Some(&dead), &["app/2"], 2000, LEASE),
            Some(g("app/2", 2000))
        );
    }

    #[test]
    fn grants_in_the_databag() {
        let bag = Databag::from([
            (RESTART_GRANT.to_owned(), "app/1".to_owned()),
            (RESTART_GRANT_AT.to_owned(), "1234".to_owned()),
        ]);
        assert_eq!(Grant::from_bag(&bag, 9), Some(g("app/1", 1234)));
        let old = Databag::from([(RESTART_GRANT.to_owned(), "app/1".to_owned())]);
        assert_eq!(Grant::from_bag(&old, 9), Some(g("app/1", 9)));
        assert_eq!(Grant::from_bag(&Databag::new(), 9), None);
    }

    #[test]
    fn unit_numbers_sort_numerically() {
        assert!(unit_number("app/2") < unit_number("app/10"));
    }
}

/// One dashboard user as the peer relation lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DashboardUserEntry {
    pub user: String,
    pub read_only: bool,
    /// The application secret holding its password and bcrypt hash.
    pub secret: String,
}

impl DashboardUserEntry {
    pub fn list_from_json(text: &str) -> Vec<DashboardUserEntry> {
        let Ok(serde_json::Value::Array(items)) = serde_json::from_str(text) else {
            return Vec::new();
        };
        items
            .iter()
            .filter_map(|i| {
                Some(DashboardUserEntry {
                    user: i.get("user")?.as_str()?.to_owned(),
                    read_only: i.get("read-only")?.as_bool()?,
                    secret: i.get("secret")?.as_str()?.to_owned(),
                })
            })
            .collect()
    }

    pub fn list_to_json(users: &[DashboardUserEntry]) -> String {
        serde_json::Value::Array(
            users
                .iter()
                .map(|u| {
                    serde_json::json!({"user": u.user, "read-only": u.read_only, "secret": u.secret})
                })
                .collect(),
        )
        .to_string()
    }
}
