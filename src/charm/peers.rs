//! The peer relation as one value: read once at the start of a hook, written through (each
//! write is a `relation-set` and updates what the value holds), with the rolling-restart
//! protocol as its methods.
//!
//! - A unit that serves nothing starts without asking (it takes no capacity away); a
//!   non-leader never starts before the leader's first start (`initialised`).
//! - A unit that serves and must restart asks (`restart-request`) and waits for the grant.
//! - After the restart (or the rollback) it withdraws; a hook that did not ask withdraws any
//!   request left from before ([`Peers::finish`]), so a unit that stopped for another reason
//!   (invalid config, its machine too small) never holds the queue.
//! - The leader keeps the grant moving at the end of every hook it runs, whatever stopped
//!   its own reconcile, and right after it asks itself: the only two places that grant.
//!   The grant is a lease: a holder whose machine died with it is passed over once the
//!   lease ends (see `relations::peers::next_grant`).

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet};

use super::status::Waiting;
use crate::juju::hook_tools::ToolResult;
use crate::juju::{Databag, HookTools};
use crate::relations::peers::{
    self, Grant, ADDRESS, DASHBOARD_SECRET, DASHBOARD_USERS, INITIALISED, MASTER_KEY_SECRET,
    RESTART_GRANT, RESTART_GRANT_AT, RESTART_REQUEST, SERVING, SERVING_PORT,
};

use super::endpoints::PEER_ENDPOINT;

/// The relation's data as this unit sees it.
#[derive(Debug, Clone, Default)]
struct Bags {
    id: String,
    app: Databag,
    own: Databag,
    /// The other units' bags, by unit name.
    others: BTreeMap<String, Databag>,
}

/// Whether this unit may (re)start the service now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Turn {
    Go,
    /// Not yet: why, for the status.
    Wait(Waiting),
}

/// The peer relation for one hook.
pub struct Peers<'a> {
    tools: &'a dyn HookTools,
    unit: String,
    leader: bool,
    /// How long a grant holds, in seconds.
    lease: u64,
    /// `None` before Juju created the relation.
    bags: RefCell<Option<Bags>>,
    /// Whether this hook asked to restart (a request it did not renew is withdrawn).
    asked: Cell<bool>,
}

impl<'a> Peers<'a> {
    /// Reads the relation (every bag once).
    pub fn read(
        tools: &'a dyn HookTools,
        unit: &str,
        app: &str,
        leader: bool,
        lease: u64,
    ) -> ToolResult<Peers<'a>> {
        let bags = match tools.relation_ids(PEER_ENDPOINT)?.into_iter().next() {
            None => None,
            Some(id) => {
                let app_bag = tools.relation_get_app(&id, app)?;
                let own = tools.relation_get(&id, unit)?;
                let mut others = BTreeMap::new();
                for u in tools.relation_list(&id)? {
                    let bag = tools.relation_get(&id, &u)?;
                    others.insert(u, bag);
                }
                Some(Bags {
                    id,
                    app: app_bag,
                    own,
                    others,
                })
            }
        };
        Ok(Peers {
            tools,
            unit: unit.to_owned(),
            leader,
            lease,
            bags: RefCell::new(bags),
            asked: Cell::new(false),
        })
    }

    /// Whether other units of the application are in the relation (they serve beside this
    /// one).
    pub fn has_other_units(&self) -> bool {
        self.bags
            .borrow()
            .as_ref()
            .is_some_and(|b| !b.others.is_empty())
    }

    pub fn is_leader(&self) -> bool {
        self.leader
    }

    fn app_value(&self, key: &str) -> Option<String> {
        self.bags
            .borrow()
            .as_ref()
            .and_then(|b| b.app.get(key).filter(|v| !v.is_empty()).cloned())
    }

    /// The leader's service has served once (so others may start).
    pub fn initialised(&self) -> bool {
        self.app_value(INITIALISED).as_deref() == Some("true")
    }

    /// The generated master key's secret ID, once the leader published it.
    pub fn master_key_secret(&self) -> Option<String> {
        self.app_value(MASTER_KEY_SECRET)
    }

    /// Publishes the generated master key's secret ID (leader only; no-op without the
    /// relation).
    pub fn set_master_key_secret(&self, id: &str) -> ToolResult<()> {
        self.set_app(&[(MASTER_KEY_SECRET, id)])
    }

    /// The dashboard keys' secret ID, once the leader published it.
    pub fn dashboard_secret(&self) -> Option<String> {
        self.app_value(DASHBOARD_SECRET)
    }

    /// Publishes the dashboard keys' secret ID (leader only).
    pub fn set_dashboard_secret(&self, id: &str) -> ToolResult<()> {
        self.set_app(&[(DASHBOARD_SECRET, id)])
    }

    /// The dashboard's users as the leader published them (an unreadable list: none).
    pub fn dashboard_users(&self) -> Vec<peers::DashboardUserEntry> {
        self.app_value(DASHBOARD_USERS)
            .map(|v| peers::DashboardUserEntry::list_from_json(&v))
            .unwrap_or_default()
    }

    /// Whether Juju created the relation yet.
    pub fn exists(&self) -> bool {
        self.bags.borrow().is_some()
    }

    /// Publishes the dashboard's users (leader only; no-op without the relation).
    pub fn set_dashboard_users(&self, users: &[peers::DashboardUserEntry]) -> ToolResult<()> {
        let text = if users.is_empty() {
            String::new()
        } else {
            peers::DashboardUserEntry::list_to_json(users)
        };
        self.set_app(&[(DASHBOARD_USERS, &text)])
    }

    /// Publishes this unit's address for its peers.
    pub fn publish_address(&self, address: &str) -> ToolResult<()> {
        self.set_own(&[(ADDRESS, address)])
    }

    /// Every port a unit of the application serves on now (its own included), as the
    /// units last published them.
    pub fn serving_ports(&self) -> BTreeSet<u16> {
        let bags = self.bags.borrow();
        let Some(b) = bags.as_ref() else {
            return BTreeSet::new();
        };
        std::iter::once(&b.own)
            .chain(b.others.values())
            .filter_map(|bag| bag.get(SERVING_PORT)?.parse().ok())
            .collect()
    }

    /// Whether this unit may (re)start the service into rendering `digest` now; `serving`:
    /// whether its service answers (so a restart takes capacity away).
    pub fn may_restart(&self, digest: &str, serving: bool, now: u64) -> ToolResult<Turn> {
        let (exists, others) = match self.bags.borrow().as_ref() {
            Some(b) => (true, !b.others.is_empty()),
            None => (false, false),
        };
        if !self.leader && (!exists || !self.initialised()) {
            return Ok(Turn::Wait(Waiting::LeaderFirstStart));
        }
        if !serving || !exists || (self.leader && (!others || !self.initialised())) {
            return Ok(Turn::Go);
        }
        self.set_own(&[(RESTART_REQUEST, digest)])?;
        self.asked.set(true);
        if self.leader {
            self.keep_grant_moving(now)?;
        }
        Ok(match self.app_value(RESTART_GRANT) {
            Some(g) if g == self.unit => Turn::Go,
            holder => Turn::Wait(Waiting::RestartTurn { holder }),
        })
    }

    /// The service serves rendering `digest` on `port`: this unit asks for nothing; the
    /// leader records its first start.
    pub fn done(&self, digest: &str, port: u16) -> ToolResult<()> {
        self.asked.set(false);
        self.set_own(&[
            (RESTART_REQUEST, ""),
            (SERVING, digest),
            (SERVING_PORT, &port.to_string()),
        ])?;
        if self.leader && !self.initialised() {
            self.set_app(&[(INITIALISED, "true")])?;
        }
        Ok(())
    }

    /// This unit no longer waits to restart (it tried, and rolled back).
    pub fn withdraw(&self) -> ToolResult<()> {
        self.asked.set(false);
        self.set_own(&[(RESTART_REQUEST, "")])
    }

    /// The end of every hook (whatever stopped it): a request this hook did not renew is
    /// withdrawn, and the leader passes the grant on (or keeps it where it is).
    pub fn finish(&self, now: u64) -> ToolResult<()> {
        if !self.asked.get() {
            self.set_own(&[(RESTART_REQUEST, "")])?;
        }
        if self.leader {
            self.keep_grant_moving(now)?;
        }
        Ok(())
    }

    /// No unit asks to restart and none holds the grant (as this hook leaves the relation).
    pub fn idle(&self) -> bool {
        match self.bags.borrow().as_ref() {
            None => true,
            Some(b) => {
                !asks_to_restart(&b.own)
                    && !b.others.values().any(asks_to_restart)
                    && b.app.get(RESTART_GRANT).is_none_or(|g| g.is_empty())
            }
        }
    }

    /// The leader's grant, from what every member asks now.
    fn keep_grant_moving(&self, now: u64) -> ToolResult<()> {
        let next = {
            let bags = self.bags.borrow();
            let Some(b) = bags.as_ref() else {
                return Ok(());
            };
            let asking: Vec<&str> = std::iter::once((self.unit.as_str(), &b.own))
                .chain(b.others.iter().map(|(u, bag)| (u.as_str(), bag)))
                .filter(|(_, bag)| asks_to_restart(bag))
                .map(|(u, _)| u)
                .collect();
            peers::next_grant(
                Grant::from_bag(&b.app, now).as_ref(),
                &asking,
                now,
                self.lease,
            )
        };
        let (unit, since) = match &next {
            Some(g) => (g.unit.clone(), g.since.to_string()),
            None => (String::new(), String::new()),
        };
        self.set_app(&[(RESTART_GRANT, &unit), (RESTART_GRANT_AT, &since)])
    }

    /// Sets keys of this unit's bag that differ (an empty value deletes the key).
    fn set_own(&self, pairs: &[(&str, &str)]) -> ToolResult<()> {
        self.write(pairs, false)
    }

    /// Sets keys of the application's bag that differ (leader only).
    fn set_app(&self, pairs: &[(&str, &str)]) -> ToolResult<()> {
        self.write(pairs, true)
    }

    fn write(&self, pairs: &[(&str, &str)], app: bool) -> ToolResult<()> {
        let mut bags = self.bags.borrow_mut();
        let Some(b) = bags.as_mut() else {
            return Ok(());
        };
        let bag = if app { &mut b.app } else { &mut b.own };
        let changed: Databag = pairs
            .iter()
            .filter(|(k, v)| bag.get(*k).map(String::as_str).unwrap_or("") != *v)
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        if changed.is_empty() {
            return Ok(());
        }
        if app {
            self.tools.relation_set_app(&b.id, &changed)?;
        } else {
            self.tools.relation_set(&b.id, &changed)?;
        }
        for (k, v) in changed {
            if v.is_empty() {
                bag.remove(&k);
            } else {
                bag.insert(k, v);
            }
        }
        Ok(())
    }
}
/// Whether a member's bag asks to restart.
fn asks_to_restart(bag: &Databag) -> bool {
    bag.get(RESTART_REQUEST).is_some_and(|r| !r.is_empty())
}
