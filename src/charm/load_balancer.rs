//! The load balancers in front of the units: `haproxy-route` (haproxy 2.8) and the legacy
//! `website` (interface `http`, what a plain `juju deploy haproxy` still gives). The charm
//! publishes where each unit serves and takes the public URL from haproxy when the operator
//! gave none.
//!
//! `X-Forwarded-For` (the client address `master-key-ips` is checked against) is believed
//! only from haproxy-route balancers, which the route asks to set the header to the address
//! the request came from (`rewrites`: `http-request set-header X-Forwarded-For %[src]`), so a
//! client's own header never reaches parse-server. A `website` consumer cannot be asked for
//! that: parse-server sees its address as the client's.

use std::collections::BTreeSet;
use std::net::IpAddr;

use super::peers::Peers;
use super::{Charm, Step};
use crate::config::CharmConfig;
use crate::relations::haproxy_route::{self, Route};
use crate::relations::website;
use crate::uri::HttpUrl;

use super::endpoints::{HAPROXY_ROUTE_ENDPOINT, WEBSITE_ENDPOINT};

/// What the balancers related to this unit are and offer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadBalancers {
    /// The haproxy-route balancers' unit addresses (whose `X-Forwarded-For` parse-server
    /// believes: they set it themselves), sorted.
    pub trusted: Vec<String>,
    /// The first endpoint haproxy proxies for the application.
    pub public_url: Option<String>,
    /// How long a stopping unit must keep serving while its health check fails, for the
    /// balancers to take it out of rotation: their checks' fall × interval, plus 2 s.
    pub drain_seconds: u32,
}

/// The legacy haproxy charm's default server check: `inter 2s`, `fall 3`.
const LEGACY_CHECK_SECONDS: u32 = 2 * 3;

impl Charm<'_> {
    /// Reads every balancer relation.
    pub(super) fn load_balancers(&self) -> Step<LoadBalancers> {
        let mut lb = LoadBalancers::default();
        for endpoint in [HAPROXY_ROUTE_ENDPOINT, WEBSITE_ENDPOINT] {
            for id in self.tools.relation_ids(endpoint)? {
                let units = self.tools.relation_list(&id)?;
                let detect = if endpoint == HAPROXY_ROUTE_ENDPOINT {
                    haproxy_route::CHECK_FALL * haproxy_route::CHECK_INTERVAL
                } else {
                    LEGACY_CHECK_SECONDS
                };
                if !units.is_empty() {
                    lb.drain_seconds = lb.drain_seconds.max(detect + 2);
                }
                if endpoint == HAPROXY_ROUTE_ENDPOINT {
                    lb.trusted.extend(self.unit_addresses(&id, &units)?);
                }
                if endpoint == HAPROXY_ROUTE_ENDPOINT && lb.public_url.is_none() {
                    if let Some(app) = units
                        .first()
                        .and_then(|u| u.split_once('/'))
                        .map(|(a, _)| a)
                    {
                        let provider = self.tools.relation_get_app(&id, app)?;
                        lb.public_url = haproxy_route::endpoints(&provider).into_iter().next();
                    }
                }
            }
        }
        lb.trusted.sort();
        lb.trusted.dedup();
        Ok(lb)
    }

    /// The addresses of the balancers on `endpoint` (haproxy-route's kind), sorted.
    pub(super) fn route_balancers(&self, endpoint: &str) -> Step<Vec<String>> {
        let mut out = Vec::new();
        for id in self.tools.relation_ids(endpoint)? {
            let units = self.tools.relation_list(&id)?;
            out.extend(self.unit_addresses(&id, &units)?);
        }
        out.sort();
        out.dedup();
        Ok(out)
    }

    /// Each remote unit's address as it published it (an IP address, or nothing).
    fn unit_addresses(&self, id: &str, units: &[String]) -> Step<Vec<String>> {
        let mut out = Vec::new();
        for unit in units {
            let bag = self.tools.relation_get(id, unit)?;
            let addr = bag
                .get("ingress-address")
                .or_else(|| bag.get("private-address"));
            if let Some(ip) = addr.and_then(|a| a.parse::<IpAddr>().ok()) {
                out.push(ip.to_string());
            }
        }
        Ok(out)
    }

    /// The leader's route on every haproxy-route relation: the backend, its health check,
    /// the header rewrite, and every port a unit serves on (the configured one, and the old
    /// one while units still serve there during a rolling restart).
    pub(super) fn publish_route(&self, config: &CharmConfig, peers: &Peers) -> Step<()> {
        if !peers.is_leader() {
            return Ok(());
        }
        let ids = self.tools.relation_ids(HAPROXY_ROUTE_ENDPOINT)?;
        if ids.is_empty() {
            return Ok(());
        }
        let public = config
            .public_server_url
            .as_deref()
            .and_then(|u| HttpUrl::parse(u).ok());
        let mut ports: BTreeSet<u16> = peers.serving_ports();
        ports.insert(config.port);
        let wanted = haproxy_route::app_databag(&Route {
            service: self.ctx.app_name.clone(),
            ports: ports.into_iter().collect(),
            mount_path: config.mount_path.clone(),
            hostname: public
                .as_ref()
                .and_then(|u| u.dns_name().map(str::to_owned)),
            allow_http: public.as_ref().is_some_and(|u| !u.https),
            check_path: haproxy_route::BALANCER_CHECK_PATH.into(),
        });
        for id in ids {
            self.set_route(&id, &wanted)?;
        }
        Ok(())
    }

    /// Writes the route `wanted` into relation `id`'s application databag when it differs
    /// (keys it no longer has are cleared).
    pub(super) fn set_route(&self, id: &str, wanted: &crate::juju::Databag) -> Step<()> {
        let current = self.tools.relation_get_app(id, &self.ctx.app_name)?;
        if !haproxy_route::is_published(&current, wanted, haproxy_route::APP_KEYS) {
            let mut update = wanted.clone();
            for k in haproxy_route::APP_KEYS {
                if !wanted.contains_key(*k) && current.contains_key(*k) {
                    update.insert((*k).to_owned(), String::new());
                }
            }
            self.tools.relation_set_app(id, &update)?;
        }
        Ok(())
    }

    /// After the service serves: the route again (the leader's own port may have moved),
    /// this unit's address on every haproxy-route relation, and `website`.
    pub(super) fn publish_to_load_balancers(
        &self,
        config: &CharmConfig,
        peers: &Peers,
    ) -> Step<()> {
        self.publish_route(config, peers)?;
        self.publish_route_address(HAPROXY_ROUTE_ENDPOINT)?;
        self.publish_website(config.port)
    }

    /// This unit's address on every relation of `endpoint` (haproxy-route's kind), where it
    /// is not already.
    pub(super) fn publish_route_address(&self, endpoint: &str) -> Step<()> {
        for id in self.tools.relation_ids(endpoint)? {
            if let Some(addr) = self.tools.ingress_address(endpoint)? {
                let wanted = haproxy_route::unit_databag(&addr);
                let current = self.tools.relation_get(&id, &self.ctx.unit_name)?;
                if !website::is_published(&current, &wanted) {
                    self.tools.relation_set(&id, &wanted)?;
                }
            }
        }
        Ok(())
    }

    /// Publishes `hostname`/`port` on every website relation whose databag lacks them.
    fn publish_website(&self, port: u16) -> Step<()> {
        let ids = self.tools.relation_ids(WEBSITE_ENDPOINT)?;
        if ids.is_empty() {
            return Ok(());
        }
        let Some(host) = self.tools.ingress_address(WEBSITE_ENDPOINT)? else {
            return Ok(());
        };
        let wanted = website::website_databag(&host, port);
        for id in ids {
            let current = self.tools.relation_get(&id, &self.ctx.unit_name)?;
            if !website::is_published(&current, &wanted) {
                self.tools.relation_set(&id, &wanted)?;
            }
        }
        Ok(())
    }
}

/// parse-server's `publicServerURL` from haproxy's endpoint: the endpoint with the mount
/// path, unless the endpoint already ends with it.
pub fn public_url_from(endpoint: &str, mount_path: &str) -> String {
    let base = endpoint.trim_end_matches('/');
    if mount_path == "/" || base.ends_with(mount_path) {
        base.to_owned()
    } else {
        format!("{base}{mount_path}")
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn public_urls() {
        assert_eq!(
            super::public_url_from("https://p.example.com/", "/parse"),
            "https://p.example.com/parse"
        );
        assert_eq!(
            super::public_url_from("https://p.example.com/parse", "/parse"),
            "https://p.example.com/parse"
        );
        assert_eq!(
            super::public_url_from("https://p.example.com", "/"),
            "https://p.example.com"
        );
    }
}
