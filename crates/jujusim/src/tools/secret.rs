//! Secret tools (Juju 3.x): secret-add, secret-set, secret-remove (journaled), secret-get,
//! secret-info-get, secret-ids.

use super::context::Tool;
use crate::agent::journal::SecretUpdate;
use crate::agent::secrets::{self, parse_uri};
use crate::agent::state::{Secret, SecretRevision, State};
use crate::errors::{q, unrecognized, CmdError, CmdResult};
use crate::flags::{flag, opt, Parsed, Spec};
use crate::tools::output::{Format, OutOpts, FORMAT_FLAGS};
use crate::util;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

const UPSERT_FLAGS: [Spec; 6] = [
    opt("owner", None),
    opt("label", None),
    opt("description", None),
    opt("expire", None),
    opt("rotate", None),
    opt("file", None),
];

/// The juju/cmd "not leader" error text (ops matches `not the leader`).
const NOT_LEADER: &str = "this unit is not the leader";

/// Parsed flags + content of secret-add / secret-set.
struct Upsert {
    owner: String,
    label: Option<String>,
    description: Option<String>,
    expire: Option<String>,
    rotate: Option<String>,
    next_rotate: Option<String>,
    /// base64 values; empty when no content was given.
    content: BTreeMap<String, String>,
}

/// Juju's `secretUpsertCommand.Init`: expire, rotate, owner, then content (args, `--file`).
fn parse_upsert(p: &Parsed, kv: &[String]) -> CmdResult<Upsert> {
    let now = util::now_secs();
    let non_empty = |k: &str| p.get(k).filter(|v| !v.is_empty()).map(str::to_string);
    let expire = match non_empty("expire") {
        Some(spec) => Some(secrets::parse_expire(&spec, now)?),
        None => None,
    };
    let rotate = non_empty("rotate");
    let next_rotate = match &rotate {
        Some(r) => secrets::rotate_next(r, now)?,
        None => None,
    };
    let owner = p.get("owner").unwrap_or("application").to_string();
    if owner != "application" && owner != "unit" {
        return Err(CmdError::usage(format!(
            "secret owner {} not valid",
            q(&owner)
        )));
    }
    let mut content = secrets::parse_content_args(kv)?;
    if let Some(f) = non_empty("file") {
        content.extend(secrets::read_content_file(&f)?);
    }
    Ok(Upsert {
        owner,
        label: non_empty("label"),
        description: non_empty("description"),
        expire,
        rotate,
        next_rotate,
        content,
    })
}

/// `--format yaml|json` (default yaml; no smart) and `-o`, as secret-get/secret-info-get take.
fn yaml_json_opts(p: &Parsed) -> CmdResult<OutOpts> {
    match p.get("format") {
        Some("smart") => Err(CmdError::usage(
            "invalid value \"smart\" for flag --format: unknown format \"smart\"",
        )),
        None => Ok(OutOpts {
            format: Format::Yaml,
            file: p.get("output").map(str::to_string),
        }),
        Some(_) => OutOpts::from(p),
    }
}

fn not_found(what: &str) -> CmdError {
    CmdError::runtime(format!("secret {} not found", q(what)))
}

/// Another secret of the same owner already has `label`.
fn check_label(view: &BTreeMap<String, Secret>, s: &Secret, label: &str) -> CmdResult<()> {
    let clash = view.values().any(|o| {
        o.id != s.id && o.owner == s.owner && o.owner_id == s.owner_id && o.label == label
    });
    if clash {
        return Err(CmdError::runtime(format!(
            "secret with label {} already exists",
            q(label)
        )));
    }
    Ok(())
}

fn require_leader(st: &State, s: &Secret) -> CmdResult<()> {
    if s.owner == "application" && !st.leader {
        return Err(CmdError::runtime(NOT_LEADER));
    }
    Ok(())
}

/// `secret-add [--owner application|unit] [--label L] [--description D] [--expire X]
/// [--rotate P] [--file F] key=value|key#base64=v|key#file=path ...` → prints the URI.
pub fn secret_add(t: &mut Tool, args: &[String]) -> CmdResult {
    let Some(p) = t.parse(&UPSERT_FLAGS, args)? else {
        return Ok(());
    };
    if p.args.is_empty() && p.get("file").unwrap_or_default().is_empty() {
        return Err(CmdError::usage("missing secret value or filename"));
    }
    let u = parse_upsert(&p, &p.args)?;
    let m = t.model()?;
    let owner_id = if u.owner == "unit" {
        m.state.unit.clone()
    } else {
        m.state.app.clone()
    };
    if u.owner == "application" && !m.state.leader {
        return Err(CmdError::runtime(NOT_LEADER));
    }
    if u.content.is_empty() {
        return Err(CmdError::runtime("empty secret value not valid"));
    }
    let view = m.journal.secrets(&m.state);
    let id = secrets::new_id(|id| view.contains_key(id) || m.state.secrets.contains_key(id));
    let secret = Secret {
        id,
        owner: u.owner,
        owner_id,
        label: u.label.unwrap_or_default(),
        description: u.description.unwrap_or_default(),
        rotate: u.rotate.unwrap_or_else(|| "never".to_string()),
        expire: u.expire,
        next_rotate: u.next_rotate,
        revisions: vec![SecretRevision {
            revision: 1,
            content: u.content,
        }],
        grants: Default::default(),
        granted_to_app: false,
    };
    if !secret.label.is_empty() {
        check_label(&view, &secret, &secret.label)?;
    }
    let uri = secret.uri();
    m.journal.secret_create(secret);
    m.journal_dirty = true;
    t.emit_raw(&format!("{uri}\n"));
    Ok(())
}

/// An owned secret (this hook's view) by URI argument, or `not found`.
fn owned_by_uri(st: &State, view: &BTreeMap<String, Secret>, arg: &str) -> CmdResult<Secret> {
    let id = parse_uri(arg).ok_or_else(|| secrets::bad_uri(arg))?;
    view.get(&id)
        .filter(|s| secrets::owned(st, s))
        .cloned()
        .ok_or_else(|| not_found(arg))
}

/// `secret-set <uri> [key=value ...] [--label|--description|--expire|--rotate|--file ...]`.
pub fn secret_set(t: &mut Tool, args: &[String]) -> CmdResult {
    let Some(p) = t.parse(&UPSERT_FLAGS, args)? else {
        return Ok(());
    };
    let Some(uri) = p.args.first().cloned() else {
        return Err(CmdError::usage("missing secret URI"));
    };
    if parse_uri(&uri).is_none() {
        return Err(secrets::bad_uri(&uri));
    }
    let u = parse_upsert(&p, &p.args[1..])?;
    let m = t.model()?;
    let view = m.journal.secrets(&m.state);
    let s = owned_by_uri(&m.state, &view, &uri)?;
    require_leader(&m.state, &s)?;
    if let Some(l) = &u.label {
        check_label(&view, &s, l)?;
    }
    let update = SecretUpdate {
        label: u.label,
        description: u.description,
        rotate: u.rotate,
        next_rotate: u.next_rotate,
        expire: u.expire,
        content: (!u.content.is_empty()).then_some(u.content),
    };
    if update == SecretUpdate::default() {
        return Ok(());
    }
    m.journal.secret_update(&s.id, update);
    m.journal_dirty = true;
    Ok(())
}

/// `secret-remove <uri> [--revision N]`.
pub fn secret_remove(t: &mut Tool, args: &[String]) -> CmdResult {
    let Some(p) = t.parse(&[opt("revision", None)], args)? else {
        return Ok(());
    };
    let revision = match p.get("revision") {
        None => None,
        Some(r) => match r.parse::<i64>() {
            Ok(n) if n > 0 => Some(n as u32),
            Ok(_) => None,
            Err(_) => {
                return Err(CmdError::usage(format!(
                    "invalid value {} for flag --revision: parse error",
                    q(r)
                )))
            }
        },
    };
    let uri = match p.args.as_slice() {
        [] => return Err(CmdError::usage("missing secret URI")),
        [u] => u.clone(),
        [_, rest @ ..] => return Err(unrecognized(rest)),
    };
    if parse_uri(&uri).is_none() {
        return Err(secrets::bad_uri(&uri));
    }
    let m = t.model()?;
    let view = m.journal.secrets(&m.state);
    let s = owned_by_uri(&m.state, &view, &uri)?;
    require_leader(&m.state, &s)?;
    if let Some(rev) = revision {
        if !s.revisions.iter().any(|r| r.revision == rev) {
            return Err(CmdError::runtime(format!(
                "secret {} revision {rev} not found",
                q(&s.id)
            )));
        }
    }
    m.journal.secret_remove(&s.id, revision);
    m.journal_dirty = true;
    Ok(())
}

/// `secret-get [--format yaml|json] [<uri>] [<key>[#base64]] [--label L] [--peek|--refresh]`.
pub fn secret_get(t: &mut Tool, args: &[String]) -> CmdResult {
    let specs = [
        FORMAT_FLAGS[0],
        FORMAT_FLAGS[1],
        opt("label", None),
        flag("peek", None),
        flag("refresh", None),
    ];
    let Some(p) = t.parse(&specs, args)? else {
        return Ok(());
    };
    let o = yaml_json_opts(&p)?;
    let (uri, key) = match p.args.as_slice() {
        [] => (None, None),
        [u] => (Some(u.clone()), None),
        [u, k] => (Some(u.clone()), Some(k.clone())),
        [_, _, rest @ ..] => return Err(unrecognized(rest)),
    };
    let id = match &uri {
        Some(u) => Some(parse_uri(u).ok_or_else(|| secrets::bad_uri(u))?),
        None => None,
    };
    let label = p.get("label").filter(|l| !l.is_empty()).map(str::to_string);
    if id.is_none() && label.is_none() {
        return Err(CmdError::usage("require either a secret URI or label"));
    }
    let (peek, refresh) = (p.on("peek"), p.on("refresh"));
    if peek && refresh {
        return Err(CmdError::usage(
            "specify one of --peek or --refresh but not both",
        ));
    }
    let m = t.model()?;
    let view = m.journal.secrets(&m.state);
    let wanted = uri.clone().or(label.clone()).unwrap_or_default();
    let st = &m.state;
    let found = match &id {
        Some(id) => view.get(id).or(st.secrets.get(id)).cloned(),
        None => {
            // Owner labels first (a unit-owned secret before an application-owned one), then
            // this unit's consumer labels.
            let l = label.as_deref().unwrap_or_default();
            let mut c: Vec<&Secret> = view
                .values()
                .filter(|s| s.label == l && secrets::owned(st, s))
                .collect();
            c.sort_by_key(|s| s.owner != "unit");
            c.first().map(|s| (*s).clone()).or_else(|| {
                st.secret_tracking
                    .iter()
                    .find(|(_, tr)| tr.label == l)
                    .and_then(|(id, _)| view.get(id).or(st.secrets.get(id)))
                    .filter(|s| secrets::consumable(st, s))
                    .cloned()
            })
        }
    };
    let s = found.ok_or_else(|| not_found(&wanted))?;
    let owned = secrets::owned(st, &s);
    if !owned && !secrets::consumable(st, &s) {
        return Err(CmdError::runtime("permission denied"));
    }
    // URI and label together: the owner (re)labels its secret — for an application-owned one
    // only the leader may (canonical/operator#1135; peers use the owner label, juju#17340);
    // a consumer sets its own label.
    let relabel = match (&id, &label) {
        (Some(_), Some(l)) => Some(l.clone()),
        _ => None,
    };
    if let (Some(l), true) = (&relabel, owned) {
        if s.owner == "application" && !st.leader {
            return Err(CmdError::runtime(
                "only unit leaders can update an application owned secret label",
            ));
        }
        if s.label != *l {
            check_label(&view, &s, l)?;
            m.journal.secret_update(
                &s.id,
                SecretUpdate {
                    label: Some(l.clone()),
                    ..Default::default()
                },
            );
            m.journal_dirty = true;
        }
    }
    // Which revision: --peek/--refresh the latest (for the owner including this hook's own
    // pending revision), else the tracked one; a unit that never read the secret gets the
    // latest committed revision and tracks it from then on. A secret created in this hook is
    // visible to its own hook. Tracking is recorded at read time, not at hook commit.
    let st = &m.state;
    let latest = s.latest_revision();
    let pending_create = m.journal.secret_pending_create(&s.id);
    let tracked = st.secret_tracking.get(&s.id).map(|tr| tr.revision);
    let committed = st.secrets.get(&s.id).map(Secret::latest_revision);
    let revision = match (peek || refresh || pending_create, tracked) {
        (true, _) => latest,
        (false, Some(r)) => r,
        (false, None) => committed.unwrap_or(latest),
    };
    let content = s.content_at(revision);
    if !pending_create {
        let track =
            (refresh || tracked.is_none()).then_some(if refresh { latest } else { revision });
        let consumer_label = relabel.filter(|_| !owned);
        if track.is_some() || consumer_label.is_some() {
            let e = m.state.secret_tracking.entry(s.id.clone()).or_default();
            if let Some(r) = track {
                e.revision = r;
            }
            if let Some(l) = consumer_label {
                e.label = l;
            }
            m.state_dirty = true;
        }
    }
    let v = match key {
        None => secrets::content_json(&content),
        Some(k) => {
            let (name, raw) = match k.strip_suffix("#base64") {
                Some(n) => (n.to_string(), true),
                None => (k.clone(), false),
            };
            let b64 = content
                .get(&name)
                .ok_or_else(|| CmdError::runtime(format!("secret key {} not found", q(&name))))?;
            Value::String(if raw {
                b64.clone()
            } else {
                secrets::decode_value(b64)
            })
        }
    };
    t.emit(&o, &v)
}

/// `secret-info-get [--format yaml|json] <uri> | --label L` → `{"<id>": {...}}`.
pub fn secret_info_get(t: &mut Tool, args: &[String]) -> CmdResult {
    let specs = [FORMAT_FLAGS[0], FORMAT_FLAGS[1], opt("label", None)];
    let Some(p) = t.parse(&specs, args)? else {
        return Ok(());
    };
    let o = yaml_json_opts(&p)?;
    let uri = match p.args.as_slice() {
        [] => None,
        [u] => Some(u.clone()),
        [_, rest @ ..] => return Err(unrecognized(rest)),
    };
    let id = match &uri {
        Some(u) => Some(parse_uri(u).ok_or_else(|| secrets::bad_uri(u))?),
        None => None,
    };
    let label = p.get("label").filter(|l| !l.is_empty()).map(str::to_string);
    match (&id, &label) {
        (None, None) => return Err(CmdError::usage("require either a secret URI or label")),
        (Some(_), Some(_)) => {
            return Err(CmdError::usage(
                "specify either a secret URI or label but not both",
            ))
        }
        _ => {}
    }
    let m = t.model()?;
    let st = &m.state;
    let view = m.journal.secrets(st);
    let visible = |s: &&Secret| secrets::metadata_visible(st, s);
    let found = match (&id, &label) {
        (Some(id), _) => view.get(id).filter(visible),
        (None, Some(l)) => view.values().filter(visible).find(|s| &s.label == l),
        _ => None,
    };
    let want = id.clone().or(label).unwrap_or_default();
    let s = found.ok_or_else(|| not_found(&want))?;
    // A pending update does not bump the revision shown until it is committed.
    let revision = st
        .secrets
        .get(&s.id)
        .map(Secret::latest_revision)
        .unwrap_or_else(|| s.latest_revision());
    let mut md = Map::new();
    md.insert("revision".into(), json!(revision));
    md.insert("label".into(), json!(s.label));
    md.insert("owner".into(), json!(s.owner));
    if !s.description.is_empty() {
        md.insert("description".into(), json!(s.description));
    }
    if !s.rotate.is_empty() {
        md.insert("rotation".into(), json!(s.rotate));
    }
    if let Some(e) = &s.expire {
        md.insert("expiry".into(), json!(e));
    }
    if let Some(r) = &s.next_rotate {
        md.insert("rotates".into(), json!(r));
    }
    let mut out = Map::new();
    out.insert(s.id.clone(), Value::Object(md));
    t.emit(&o, &Value::Object(out))
}

/// `secret-ids [--format]` → the IDs of the secrets this unit (and, on the leader, its
/// application) owns, sorted; `[]` when none.
pub fn secret_ids(t: &mut Tool, args: &[String]) -> CmdResult {
    let Some(p) = t.parse(&FORMAT_FLAGS, args)? else {
        return Ok(());
    };
    let o = OutOpts::from(&p)?;
    if !p.args.is_empty() {
        return Err(unrecognized(&p.args));
    }
    let m = t.model()?;
    let view = m.journal.secrets(&m.state);
    let ids: Vec<String> = view
        .values()
        .filter(|s| secrets::metadata_visible(&m.state, s))
        .map(|s| s.id.clone())
        .collect();
    t.emit(&o, &json!(ids))
}
