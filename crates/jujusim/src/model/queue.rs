//! The model's event queue: the hooks Juju has decided to run on each unit, in order, with
//! an identical pending event for the same unit coalesced into the one already queued.

use crate::agent::hooks::HookRequest;
use serde::{Deserialize, Serialize};

/// One queued hook for one unit.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Event {
    /// Order of queueing (unique, increasing).
    pub seq: u64,
    pub unit: String,
    pub hook: String,
    pub relation: Option<u32>,
    /// JUJU_REMOTE_UNIT; `Some("")` for an application-bag change.
    pub remote_unit: Option<String>,
    pub remote_app: Option<String>,
    pub departing: Option<String>,
    /// JUJU_SECRET_ID (a URI), JUJU_SECRET_LABEL, JUJU_SECRET_REVISION.
    pub secret_id: Option<String>,
    pub secret_label: Option<String>,
    pub secret_revision: Option<u32>,
}

impl Event {
    /// A hook without context (install, config-changed, leader-elected, ...).
    pub fn new(unit: &str, hook: &str) -> Event {
        Event {
            unit: unit.to_string(),
            hook: hook.to_string(),
            ..Default::default()
        }
    }

    /// `<endpoint>-relation-<kind>` on relation `rid`.
    pub fn relation(unit: &str, endpoint: &str, kind: &str, rid: u32) -> Event {
        Event {
            relation: Some(rid),
            ..Event::new(unit, &format!("{endpoint}-relation-{kind}"))
        }
    }

    pub fn remote(mut self, unit: &str) -> Event {
        self.remote_unit = Some(unit.to_string());
        self
    }

    pub fn app(mut self, app: &str) -> Event {
        self.remote_app = Some(app.to_string());
        self
    }

    pub fn departing(mut self, unit: &str) -> Event {
        self.departing = Some(unit.to_string());
        self
    }

    pub fn secret(mut self, uri: &str, label: &str) -> Event {
        self.secret_id = Some(uri.to_string());
        self.secret_label = Some(label.to_string());
        self
    }

    /// Everything but the sequence number is equal.
    pub fn same_as(&self, other: &Event) -> bool {
        Event {
            seq: 0,
            ..self.clone()
        } == Event {
            seq: 0,
            ..other.clone()
        }
    }

    /// What `hooks::run_hook` needs.
    pub fn request(&self) -> HookRequest {
        HookRequest {
            name: self.hook.clone(),
            relation: self.relation.map(|r| r.to_string()),
            remote_unit: self.remote_unit.clone(),
            departing: self.departing.clone(),
            remote_app: self.remote_app.clone(),
            secret_id: self.secret_id.clone(),
            secret_label: self.secret_label.clone(),
            secret_revision: self.secret_revision,
        }
    }

    /// `key=value` words of the context (relation, remote unit/app, departing unit, secret),
    /// as `settle` and `events` print them after the unit and hook.
    pub fn context(&self, relation_name: Option<String>) -> String {
        let mut words = Vec::new();
        if let Some(r) = relation_name.or_else(|| self.relation.map(|r| r.to_string())) {
            words.push(format!("relation={r}"));
        }
        if let Some(u) = &self.remote_unit {
            words.push(format!("remote-unit={u}"));
        }
        if let Some(a) = &self.remote_app {
            words.push(format!("remote-app={a}"));
        }
        if let Some(d) = &self.departing {
            words.push(format!("departing-unit={d}"));
        }
        if let Some(s) = &self.secret_id {
            words.push(format!("secret={s}"));
        }
        if let Some(l) = self.secret_label.as_ref().filter(|l| !l.is_empty()) {
            words.push(format!("secret-label={l}"));
        }
        words.join(" ")
    }
}

/// Pending events of every unit, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Queue {
    pub events: Vec<Event>,
    pub next_seq: u64,
}

impl Queue {
    /// Queue `e` unless an identical event is already pending for that unit; returns
    /// whether it was added.
    pub fn push(&mut self, mut e: Event) -> bool {
        if self.events.iter().any(|p| p.same_as(&e)) {
            return false;
        }
        self.next_seq += 1;
        e.seq = self.next_seq;
        self.events.push(e);
        true
    }

    /// Take the event with sequence number `seq` off the queue.
    pub fn take(&mut self, seq: u64) -> Option<Event> {
        let i = self.events.iter().position(|e| e.seq == seq)?;
        Some(self.events.remove(i))
    }

    /// Put an event that could not complete back in front of everything (it stays first for
    /// its unit; nothing is coalesced into it).
    pub fn put_back(&mut self, e: Event) {
        self.events.insert(0, e);
    }

    /// The oldest event of a unit for which `runnable` holds.
    pub fn next(&self, runnable: impl Fn(&Event) -> bool) -> Option<&Event> {
        self.events.iter().find(|e| runnable(e))
    }

    /// Pending events of `unit`, oldest first.
    pub fn of<'a>(&'a self, unit: &'a str) -> impl Iterator<Item = &'a Event> + 'a {
        self.events.iter().filter(move |e| e.unit == unit)
    }

    /// Drop every pending event of `unit`.
    pub fn forget(&mut self, unit: &str) {
        self.events.retain(|e| e.unit != unit);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_pending_events_coalesce_per_unit() {
        let mut q = Queue::default();
        let changed = |u: &str, from: &str| {
            Event::relation(u, "cluster", "changed", 0)
                .remote(from)
                .app("app")
        };
        assert!(q.push(Event::new("app/1", "config-changed")));
        assert!(!q.push(Event::new("app/1", "config-changed")));
        assert!(q.push(Event::new("app/2", "config-changed")));
        assert!(q.push(changed("app/1", "app/0")));
        assert!(!q.push(changed("app/1", "app/0")));
        assert!(q.push(changed("app/1", "app/2")));
        // The app-bag change (JUJU_REMOTE_UNIT="") is a different event.
        assert!(q.push(changed("app/1", "")));
        assert_eq!(q.events.len(), 5);
        assert_eq!(q.of("app/1").count(), 4);
        // Once taken (running), a new identical event is queued again.
        let first = q.next(|e| e.unit == "app/1").unwrap().seq;
        let e = q.take(first).unwrap();
        assert!(q.push(e.clone()));
        q.put_back(e);
        assert_eq!(q.events[0].hook, "config-changed");
        let seqs: std::collections::BTreeSet<u64> = q.events.iter().map(|e| e.seq).collect();
        assert_eq!(seqs.len(), q.events.len(), "sequence numbers stay unique");
    }

    #[test]
    fn request_and_context() {
        let e = Event::relation("app/1", "cluster", "departed", 3)
            .remote("app/0")
            .app("app")
            .departing("app/0");
        let r = e.request();
        assert_eq!(r.name, "cluster-relation-departed");
        assert_eq!(r.relation.as_deref(), Some("3"));
        assert_eq!(r.departing.as_deref(), Some("app/0"));
        assert_eq!(
            e.context(Some("cluster:3".into())),
            "relation=cluster:3 remote-unit=app/0 remote-app=app departing-unit=app/0"
        );
        let s = Event::new("app/2", "secret-changed").secret("secret:x", "");
        assert_eq!(s.context(None), "secret=secret:x");
    }
}
