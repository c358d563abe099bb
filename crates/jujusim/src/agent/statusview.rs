//! `jujusim status` and `jujusim log`: what `juju status` / `juju debug-log` would show for the unit.

use crate::agent::ports;
use crate::agent::state::{State, Status};
use crate::gojson;
use serde_json::{json, Value};

fn st_json(s: &Status) -> Value {
    json!({"status": s.status, "message": s.message})
}

/// The application status as `juju status` shows it: the set one, else the unit's.
fn effective_app_status(st: &State) -> Status {
    if st.app_status.status.is_empty() || st.app_status.status == "unknown" {
        st.unit_status.clone()
    } else {
        st.app_status.clone()
    }
}

/// JSON document for `jujusim status --format=json`.
pub fn status_json(st: &State) -> Value {
    let relations: Vec<Value> = st
        .relations
        .values()
        .map(|r| {
            json!({
                "id": r.name(),
                "endpoint": r.endpoint,
                "interface": r.interface,
                "remote-app": r.remote_app,
                "members": r.members.iter().cloned().collect::<Vec<_>>(),
                "broken": r.broken,
            })
        })
        .collect();
    // Metadata only: secret content is never shown here (see `jujusim secret-reveal`).
    let secrets: Vec<Value> = st
        .secrets
        .values()
        .map(|s| {
            json!({
                "id": s.id,
                "uri": s.uri(),
                "label": s.label,
                "owner": s.owner,
                "owner-id": s.owner_id,
                "description": s.description,
                "rotation": s.rotate,
                "latest-revision": s.latest_revision(),
                "revisions": s.revisions.len(),
            })
        })
        .collect();
    json!({
        "secrets": secrets,
        "unit": st.unit,
        "application": st.app,
        "model": st.model,
        "address": st.address,
        "leader": st.leader,
        "workload-status": st_json(&st.unit_status),
        "agent-status": st_json(&st.agent_status),
        "application-status": st_json(&effective_app_status(st)),
        "workload-version": st.workload_version,
        "opened-ports": ports::list(&st.ports, false),
        "relations": relations,
        "machine": st.exec_prefix.is_some(),
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
            if i + 1 == r.len() {
                line.push_str(c);
            } else {
                line.push_str(&format!("{c:<w$}  ", w = widths[i]));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// Tabular `jujusim status`.
pub fn status_table(st: &State) -> String {
    let app = effective_app_status(st);
    let star = if st.leader { "*" } else { "" };
    let ports = ports::list(&st.ports, false).join(",");
    let mut out = format!("Model  {}\n\n", st.model);
    out.push_str(&table(&[
        vec![
            "App".into(),
            "Version".into(),
            "Status".into(),
            "Message".into(),
        ],
        vec![
            st.app.clone(),
            st.workload_version.clone(),
            app.status,
            app.message,
        ],
    ]));
    out.push('\n');
    out.push_str(&table(&[
        vec![
            "Unit".into(),
            "Workload".into(),
            "Agent".into(),
            "Address".into(),
            "Ports".into(),
            "Message".into(),
        ],
        vec![
            format!("{}{star}", st.unit),
            st.unit_status.status.clone(),
            st.agent_status.status.clone(),
            st.address.clone(),
            ports,
            if st.agent_status.status == "error" {
                st.agent_status.message.clone()
            } else {
                st.unit_status.message.clone()
            },
        ],
    ]));
    if !st.relations.is_empty() {
        out.push('\n');
        let mut rows = vec![vec![
            "Relation".into(),
            "Remote".into(),
            "Members".into(),
            "State".into(),
        ]];
        for r in st.relations.values() {
            rows.push(vec![
                r.name(),
                r.remote_app.clone(),
                r.members.iter().cloned().collect::<Vec<_>>().join(","),
                if r.broken {
                    "broken".into()
                } else {
                    "joined".into()
                },
            ]);
        }
        out.push_str(&table(&rows));
    }
    out
}

/// `jujusim log`: `LEVEL [hook] message` lines, or JSON.
pub fn log_text(st: &State, json_out: bool) -> String {
    if json_out {
        let v: Vec<Value> = st
            .log
            .iter()
            .map(|l| json!({"hook": l.hook, "level": l.level, "message": l.message}))
            .collect();
        return gojson::encode_line(&json!(v));
    }
    st.log
        .iter()
        .map(|l| format!("{} [{}] {}\n", l.level, l.hook, l.message))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_and_json() {
        let mut st = State {
            unit: "demo/0".into(),
            app: "demo".into(),
            leader: true,
            address: "10.0.0.10".into(),
            ..Default::default()
        };
        st.unit_status = Status::new("active", "ready");
        st.agent_status = Status::new("idle", "");
        let t = status_table(&st);
        assert!(t.contains("demo/0*"), "{t}");
        assert!(t.contains("active"));
        let j = status_json(&st);
        assert_eq!(j["workload-status"]["message"], "ready");
        assert_eq!(j["application-status"]["status"], "active");
    }
}
