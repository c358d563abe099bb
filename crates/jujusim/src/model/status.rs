//! `jujusim status M`: what `juju status` shows for a model of several units — the
//! application status, every unit's workload and agent status, leader marker, address and
//! opened ports, and the relations — as a table or JSON.

use crate::agent::ports;
use crate::agent::state::{State, Status};
use crate::model::{Model, ModelUnit};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

/// Severity order of `juju status`'s application status derived from its units (most
/// severe first). From memory of Juju's status code, not from the shared documents.
const SEVERITY: [&str; 6] = [
    "error",
    "blocked",
    "maintenance",
    "waiting",
    "active",
    "unknown",
];

/// A unit's agent status: its own, unless the model holds it in error (a queued hook that
/// failed, or could not even start, e.g. on a machine that is down).
fn shown_agent(mu: &ModelUnit, st: &State) -> Status {
    match &mu.error {
        Some(why) if st.agent_status.status != "error" => Status::new("error", why),
        _ => st.agent_status.clone(),
    }
}

/// A unit's workload status as `juju status` shows it: `error` while its agent is in error.
fn shown_workload(mu: &ModelUnit, st: &State) -> Status {
    let agent = shown_agent(mu, st);
    if agent.status == "error" {
        agent
    } else {
        st.unit_status.clone()
    }
}

/// The application status: the one the leader set, else the most severe of its units.
pub fn app_status(m: &Model, units: &BTreeMap<String, State>) -> Status {
    if !m.app_status.status.is_empty() && m.app_status.status != "unknown" {
        return m.app_status.clone();
    }
    let rank = |s: &Status| {
        SEVERITY
            .iter()
            .position(|x| *x == s.status)
            .unwrap_or(SEVERITY.len())
    };
    m.unit_names()
        .iter()
        .filter_map(|u| Some(shown_workload(&m.units[u], units.get(u)?)))
        .min_by_key(rank)
        .unwrap_or_else(|| Status::new("unknown", ""))
}

fn cur(s: &Status) -> Value {
    json!({"current": s.status, "message": s.message})
}

/// `status M --format=json`; `units` holds each unit's own state.json.
pub fn status_json(m: &Model, units: &BTreeMap<String, State>) -> Value {
    let mut us = Map::new();
    for name in m.unit_names() {
        let mu = &m.units[&name];
        let st = units.get(&name).cloned().unwrap_or_default();
        us.insert(
            name.clone(),
            json!({
                "workload-status": cur(&shown_workload(mu, &st)),
                "juju-status": cur(&shown_agent(mu, &st)),
                "leader": m.leader == name,
                "address": mu.address,
                "open-ports": ports::list(&st.ports, false),
                "workload-version": st.workload_version,
                "life": mu.life,
                "error": mu.error,
                "pending-events": m.queue.of(&name).count(),
                "unit-dir": mu.dir,
                "machine": st.exec_prefix.is_some(),
            }),
        );
    }
    let mut endpoints: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let relations: Vec<Value> = m
        .relations
        .values()
        .map(|r| {
            endpoints
                .entry(r.endpoint.clone())
                .or_default()
                .push(r.remote_app.clone());
            json!({
                "id": r.name(),
                "endpoint": r.endpoint,
                "interface": r.interface,
                "role": r.role,
                "remote-app": r.remote_app,
                "remote-units": r.remote_units.iter().cloned().collect::<Vec<_>>(),
                "units": r.views.keys().cloned().collect::<Vec<_>>(),
                "dying": r.dying,
            })
        })
        .collect();
    // Metadata only, never content (see `jujusim secret-reveal`).
    let secrets: Vec<Value> = m
        .secrets
        .values()
        .map(|s| {
            json!({
                "uri": s.uri(),
                "owner": s.owner,
                "owner-id": s.owner_id,
                "label": s.label,
                "latest-revision": s.latest_revision(),
                "granted-to": s.grants.iter().map(|g| m.relations.get(g).map(|r| r.name()).unwrap_or_else(|| g.to_string())).collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({
        "model": {"name": m.name, "uuid": m.uuid},
        "applications": {
            m.app.clone(): {
                "application-status": cur(&app_status(m, units)),
                "leader": m.leader,
                "units": Value::Object(us),
                "relations": endpoints,
            }
        },
        "relations": relations,
        "secrets": secrets,
        "pending-events": m.queue.events.len(),
    })
}

fn table(rows: &[Vec<String>]) -> String {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut widths = vec![0; cols];
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    let mut out = String::new();
    for r in rows {
        let mut line = String::new();
        for (i, c) in r.iter().enumerate() {
            line.push_str(&format!("{c:<w$}  ", w = widths[i]));
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// Tabular `status M`.
pub fn status_table(m: &Model, units: &BTreeMap<String, State>) -> String {
    let app = app_status(m, units);
    let version = units
        .get(&m.leader)
        .map(|s| s.workload_version.clone())
        .unwrap_or_default();
    let mut out = format!("Model  {}\n\n", m.name);
    out.push_str(&table(&[
        vec![
            "App".into(),
            "Version".into(),
            "Status".into(),
            "Units".into(),
            "Message".into(),
        ],
        vec![
            m.app.clone(),
            version,
            app.status,
            m.units.len().to_string(),
            app.message,
        ],
    ]));
    out.push('\n');
    let mut rows = vec![vec![
        "Unit".into(),
        "Workload".into(),
        "Agent".into(),
        "Address".into(),
        "Ports".into(),
        "Message".into(),
    ]];
    for name in m.unit_names() {
        let mu = &m.units[&name];
        let st = units.get(&name).cloned().unwrap_or_default();
        let shown = shown_workload(mu, &st);
        let star = if m.leader == name { "*" } else { "" };
        let agent = shown_agent(mu, &st).status;
        let agent = if mu.alive() {
            agent
        } else {
            format!("{agent} (dying)")
        };
        rows.push(vec![
            format!("{name}{star}"),
            shown.status,
            agent,
            mu.address.clone(),
            ports::list(&st.ports, false).join(","),
            shown.message,
        ]);
    }
    out.push_str(&table(&rows));
    if !m.relations.is_empty() {
        out.push('\n');
        let mut rows = vec![vec![
            "Relation".into(),
            "Remote".into(),
            "Remote units".into(),
            "State".into(),
        ]];
        for r in m.relations.values() {
            rows.push(vec![
                r.name(),
                r.remote_app.clone(),
                r.remote_units.iter().cloned().collect::<Vec<_>>().join(","),
                if r.dying { "dying" } else { "joined" }.into(),
            ]);
        }
        out.push_str(&table(&rows));
    }
    out
}
