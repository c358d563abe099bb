//! What the units of the application agree on through the peer relation: the generated
//! master key's secret ID, the leader's first start, and rolling restarts (one unit at a
//! time, each after the previous one is healthy again).

use super::{waiting, Charm, Step};
use crate::juju::Databag;
use crate::relations::peers::{
    self, Peers, ADDRESS, INITIALISED, RESTART_GRANT, RESTART_REQUEST, SERVING,
};

/// The peer endpoint from metadata.yaml.
pub const PEER_ENDPOINT: &str = "parse-peers";

impl Charm<'_> {
    /// The peer relation as this unit sees it (`None` before Juju created it).
    pub(super) fn peers(&self) -> Step<Option<Peers>> {
        let Some(id) = self.tools.relation_ids(PEER_ENDPOINT)?.into_iter().next() else {
            return Ok(None);
        };
        let app = self.tools.relation_get_app(&id, &self.ctx.app_name)?;
        let own = self.tools.relation_get(&id, &self.ctx.unit_name)?;
        let mut others = std::collections::BTreeMap::new();
        for unit in self.tools.relation_list(&id)? {
            let bag = self.tools.relation_get(&id, &unit)?;
            others.insert(unit, bag);
        }
        Ok(Some(Peers {
            relation_id: id,
            app,
            own,
            others,
        }))
    }

    /// Sets keys of this unit's peer databag that differ.
    fn set_own_peer_data(&self, peers: &mut Peers, pairs: &[(&str, &str)]) -> Step<()> {
        let changed: Databag = pairs
            .iter()
            .filter(|(k, v)| peers.own.get(*k).map(String::as_str).unwrap_or("") != *v)
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        if changed.is_empty() {
            return Ok(());
        }
        self.tools.relation_set(&peers.relation_id, &changed)?;
        for (k, v) in changed {
            if v.is_empty() {
                peers.own.remove(&k);
            } else {
                peers.own.insert(k, v);
            }
        }
        Ok(())
    }

    /// Sets keys of the application's peer databag that differ (leader only).
    pub(super) fn set_peer_app_data(&self, peers: &mut Peers, pairs: &[(&str, &str)]) -> Step<()> {
        let changed: Databag = pairs
            .iter()
            .filter(|(k, v)| peers.app.get(*k).map(String::as_str).unwrap_or("") != *v)
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        if changed.is_empty() {
            return Ok(());
        }
        self.tools.relation_set_app(&peers.relation_id, &changed)?;
        for (k, v) in changed {
            if v.is_empty() {
                peers.app.remove(&k);
            } else {
                peers.app.insert(k, v);
            }
        }
        Ok(())
    }

    /// Publishes this unit's address for its peers.
    pub(super) fn publish_peer_address(&self, peers: &mut Peers) -> Step<()> {
        if let Some(addr) = self.tools.ingress_address(PEER_ENDPOINT)? {
            self.set_own_peer_data(peers, &[(ADDRESS, &addr)])?;
        }
        Ok(())
    }

    /// Whether this unit may (re)start the service into rendering `digest` now. Alone, or
    /// for the leader's first start, it may; otherwise it asks, and waits for the leader's
    /// grant (one unit at a time).
    pub(super) fn may_restart(
        &self,
        peers: &mut Option<Peers>,
        digest: &str,
        leader: bool,
    ) -> Step<()> {
        let Some(p) = peers.as_mut() else {
            return Ok(());
        };
        if !p.has_others() || (leader && !p.initialised()) {
            return Ok(());
        }
        if !leader && !p.initialised() {
            return waiting("waiting for the leader's first start");
        }
        self.set_own_peer_data(p, &[(RESTART_REQUEST, digest)])?;
        if leader {
            self.grant_restarts(p)?;
        }
        if p.grant() == Some(self.ctx.unit_name.as_str()) {
            return Ok(());
        }
        let holder = p.grant().unwrap_or("the leader's grant").to_owned();
        waiting(format!(
            "restart queued: one unit at a time (now: {holder})"
        ))
    }

    /// After the service serves rendering `digest` (or nothing needed a restart): this unit
    /// asks for nothing; the leader records its first start and passes the grant on.
    pub(super) fn restart_done(
        &self,
        peers: &mut Option<Peers>,
        digest: &str,
        leader: bool,
    ) -> Step<()> {
        let Some(p) = peers.as_mut() else {
            return Ok(());
        };
        self.set_own_peer_data(p, &[(RESTART_REQUEST, ""), (SERVING, digest)])?;
        if leader {
            if !p.initialised() {
                self.set_peer_app_data(p, &[(INITIALISED, "true")])?;
            }
            self.grant_restarts(p)?;
        }
        Ok(())
    }

    /// The leader passes the restart grant on (or keeps it where it is).
    pub(super) fn grant_restarts(&self, p: &mut Peers) -> Step<()> {
        let next = p.next_grant(&self.ctx.unit_name).unwrap_or_default();
        self.set_peer_app_data(p, &[(RESTART_GRANT, &next)])
    }

    /// A unit that no longer needs a restart withdraws its request.
    pub(super) fn withdraw_restart_request(&self, peers: &mut Option<Peers>) -> Step<()> {
        if let Some(p) = peers.as_mut() {
            self.set_own_peer_data(p, &[(RESTART_REQUEST, "")])?;
        }
        Ok(())
    }
}

/// The master key's secret ID from the peer application databag.
pub fn master_key_secret(peers: Option<&Peers>) -> Option<String> {
    peers
        .and_then(|p| p.app.get(peers::MASTER_KEY_SECRET))
        .filter(|s| !s.is_empty())
        .cloned()
}
