//! The peer relation (`parse-peers`): what every unit of the application must agree on.
//!
//! Application databag (written by the leader):
//! - `master-key-secret`: the ID of the Juju secret holding the generated master key (the
//!   secret stays the store; the ID lets every unit read it and wakes them when it appears);
//! - `initialised`: `true` once the leader's service first served, so that no other unit's
//!   first start races it (parse-server creates its tables and indexes at start-up);
//! - `restart-grant`: the one unit allowed to restart now (rolling restarts).
//!
//! Unit databags (each unit its own):
//! - `address`: the unit's address;
//! - `restart-request`: the digest of the rendering the unit waits to restart into;
//! - `serving`: the digest of the rendering it serves.

use std::collections::BTreeMap;

use crate::juju::Databag;

pub const MASTER_KEY_SECRET: &str = "master-key-secret";
pub const INITIALISED: &str = "initialised";
pub const RESTART_GRANT: &str = "restart-grant";
pub const ADDRESS: &str = "address";
pub const RESTART_REQUEST: &str = "restart-request";
pub const SERVING: &str = "serving";

/// The peer relation as one unit sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Peers {
    pub relation_id: String,
    pub app: Databag,
    /// This unit's own bag.
    pub own: Databag,
    /// The other units' bags, by unit name.
    pub others: BTreeMap<String, Databag>,
}

/// The number after the `/` of a unit name, for ordering (`app/10` after `app/2`).
pub fn unit_number(unit: &str) -> u64 {
    unit.rsplit('/')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(u64::MAX)
}

impl Peers {
    pub fn has_others(&self) -> bool {
        !self.others.is_empty()
    }

    pub fn initialised(&self) -> bool {
        self.app.get(INITIALISED).is_some_and(|v| v == "true")
    }

    pub fn grant(&self) -> Option<&str> {
        self.app
            .get(RESTART_GRANT)
            .map(String::as_str)
            .filter(|g| !g.is_empty())
    }

    /// Whether `unit` currently asks to restart.
    fn requests(&self, me: &str, unit: &str) -> bool {
        let bag = if unit == me {
            &self.own
        } else {
            match self.others.get(unit) {
                Some(b) => b,
                None => return false,
            }
        };
        bag.get(RESTART_REQUEST).is_some_and(|r| !r.is_empty())
    }

    /// The leader's decision: who may restart now. The current holder keeps the grant while
    /// it still asks and is still a member; otherwise the lowest-numbered unit that asks
    /// gets it (`None`: nobody asks).
    pub fn next_grant(&self, me: &str) -> Option<String> {
        if let Some(holder) = self.grant() {
            if self.requests(me, holder) {
                return Some(holder.to_owned());
            }
        }
        let mut askers: Vec<&str> = self
            .others
            .keys()
            .map(String::as_str)
            .chain(std::iter::once(me))
            .filter(|u| self.requests(me, u))
            .collect();
        askers.sort_by_key(|u| unit_number(u));
        askers.first().map(|u| (*u).to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bag(pairs: &[(&str, &str)]) -> Databag {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn peers(grant: &str, asking: &[&str]) -> Peers {
        let mut p = Peers {
            relation_id: "parse-peers:0".into(),
            app: bag(&[(RESTART_GRANT, grant)]),
            ..Default::default()
        };
        for u in ["app/1", "app/2", "app/10"] {
            let b = if asking.contains(&u) {
                bag(&[(RESTART_REQUEST, "d1")])
            } else {
                Databag::new()
            };
            p.others.insert(u.into(), b);
        }
        if asking.contains(&"app/0") {
            p.own = bag(&[(RESTART_REQUEST, "d1")]);
        }
        p
    }

    #[test]
    fn one_unit_at_a_time_lowest_first() {
        assert_eq!(peers("", &[]).next_grant("app/0"), None);
        assert_eq!(
            peers("", &["app/10", "app/2"])
                .next_grant("app/0")
                .as_deref(),
            Some("app/2")
        );
        assert_eq!(
            peers("", &["app/0", "app/1"])
                .next_grant("app/0")
                .as_deref(),
            Some("app/0")
        );
        // The holder keeps it while it asks.
        assert_eq!(
            peers("app/10", &["app/1", "app/10"])
                .next_grant("app/0")
                .as_deref(),
            Some("app/10")
        );
        // Done (no longer asking) or gone: the next one.
        assert_eq!(
            peers("app/10", &["app/1"]).next_grant("app/0").as_deref(),
            Some("app/1")
        );
        assert_eq!(
            peers("app/7", &["app/2"]).next_grant("app/0").as_deref(),
            Some("app/2")
        );
    }

    #[test]
    fn unit_numbers_sort_numerically() {
        assert!(unit_number("app/2") < unit_number("app/10"));
    }
}
