//! The per-hook journal (`U/pending.json`): transactional writes, read-your-writes views, commit on exit 0.

use crate::agent::ports::{self, PortMap, PortOp};
use crate::agent::state::{Bag, Secret, SecretRevision, State};
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Queued changes of the running hook. An empty string value means "delete the key".
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Journal {
    pub hook: String,
    pub context_id: String,
    /// relation id -> local unit bag changes.
    pub unit_settings: BTreeMap<u32, BTreeMap<String, String>>,
    /// relation id -> local app bag changes.
    pub app_settings: BTreeMap<u32, BTreeMap<String, String>>,
    pub port_ops: Vec<PortOp>,
    /// state key -> Some(value) to set, None to delete.
    pub state_ops: BTreeMap<String, Option<String>>,
    /// Secret mutations, in call order (at most one create/update per secret: later calls
    /// are merged into it, as the unit agent does).
    pub secret_ops: Vec<SecretOp>,
}

/// Metadata/content changes of `secret-set` (None = unchanged).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SecretUpdate {
    pub label: Option<String>,
    pub description: Option<String>,
    pub rotate: Option<String>,
    pub next_rotate: Option<String>,
    pub expire: Option<String>,
    /// New content (base64 values); replaces the whole content.
    pub content: Option<BTreeMap<String, String>>,
}

impl SecretUpdate {
    /// Fields set in `later` override ours.
    fn merge(&mut self, later: &SecretUpdate) {
        let later = later.clone();
        self.label = later.label.or(self.label.take());
        self.description = later.description.or(self.description.take());
        self.rotate = later.rotate.or(self.rotate.take());
        self.next_rotate = later.next_rotate.or(self.next_rotate.take());
        self.expire = later.expire.or(self.expire.take());
        self.content = later.content.or(self.content.take());
    }

    /// Apply to `s`. New content that differs from the latest revision adds a revision, or
    /// (for a secret created in this same hook) replaces the initial content.
    fn apply(&self, s: &mut Secret, pending_create: bool) {
        if let Some(v) = &self.label {
            s.label = v.clone();
        }
        if let Some(v) = &self.description {
            s.description = v.clone();
        }
        if let Some(v) = &self.rotate {
            s.rotate = v.clone();
            s.next_rotate = self.next_rotate.clone();
        }
        if let Some(v) = &self.expire {
            s.expire = Some(v.clone());
        }
        if let Some(content) = &self.content {
            if pending_create {
                if let Some(r) = s.revisions.last_mut() {
                    r.content = content.clone();
                }
            } else if *content != s.latest_content() {
                let revision = s.latest_revision() + 1;
                s.revisions.push(SecretRevision {
                    revision,
                    content: content.clone(),
                });
            }
        }
    }
}

/// One queued secret mutation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case")]
pub enum SecretOp {
    Create {
        secret: Secret,
    },
    Update {
        id: String,
        update: SecretUpdate,
    },
    /// Remove one revision, or (revision None) the whole secret.
    Remove {
        id: String,
        revision: Option<u32>,
    },
}

fn apply_secret_op(m: &mut BTreeMap<String, Secret>, op: &SecretOp) {
    match op {
        SecretOp::Create { secret } => {
            m.insert(secret.id.clone(), secret.clone());
        }
        SecretOp::Update { id, update } => {
            if let Some(s) = m.get_mut(id) {
                update.apply(s, false);
            }
        }
        SecretOp::Remove { id, revision } => match revision {
            None => {
                m.remove(id);
            }
            Some(rev) => {
                if let Some(s) = m.get_mut(id) {
                    s.revisions.retain(|r| r.revision != *rev);
                    if s.revisions.is_empty() {
                        m.remove(id);
                    }
                }
            }
        },
    }
}

/// Path of pending.json.
pub fn path(dir: &Path) -> PathBuf {
    dir.join("pending.json")
}

/// Load the journal (missing file = empty journal).
pub fn load(dir: &Path) -> Result<Journal> {
    let p = path(dir);
    match std::fs::read_to_string(&p) {
        Ok(text) => serde_json::from_str(&text).with_context(|| format!("parsing {}", p.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Journal::default()),
        Err(e) => Err(e).with_context(|| format!("reading {}", p.display())),
    }
}

/// Save the journal atomically.
pub fn save(dir: &Path, j: &Journal) -> Result<()> {
    crate::util::write_atomic(&path(dir), serde_json::to_string_pretty(j)?.as_bytes())
}

/// Remove the journal file.
pub fn clear(dir: &Path) -> Result<()> {
    match std::fs::remove_file(path(dir)) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
        _ => Ok(()),
    }
}

/// `base` with `changes` applied ("" deletes).
pub fn overlay(base: &Bag, changes: Option<&BTreeMap<String, String>>) -> Bag {
    let mut out = base.clone();
    if let Some(ch) = changes {
        for (k, v) in ch {
            if v.is_empty() {
                out.remove(k);
            } else {
                out.insert(k.clone(), v.clone());
            }
        }
    }
    out
}

impl Journal {
    /// Queue bag changes (later writes override earlier ones).
    pub fn set_relation(&mut self, rid: u32, app: bool, kv: &BTreeMap<String, String>) {
        let target = if app {
            &mut self.app_settings
        } else {
            &mut self.unit_settings
        };
        let e = target.entry(rid).or_default();
        for (k, v) in kv {
            e.insert(k.clone(), v.clone());
        }
    }

    /// Own unit bag including this hook's pending writes.
    pub fn local_unit_bag(&self, st: &State, rid: u32) -> Bag {
        let base = st
            .relations
            .get(&rid)
            .map(|r| r.local_unit_bag.clone())
            .unwrap_or_default();
        overlay(&base, self.unit_settings.get(&rid))
    }

    /// Own app bag including this hook's pending writes.
    pub fn local_app_bag(&self, st: &State, rid: u32) -> Bag {
        let base = st
            .relations
            .get(&rid)
            .map(|r| r.local_app_bag.clone())
            .unwrap_or_default();
        overlay(&base, self.app_settings.get(&rid))
    }

    /// Opened ports including pending open/close requests.
    pub fn ports(&self, st: &State) -> PortMap {
        let mut m = st.ports.clone();
        for op in &self.port_ops {
            ports::apply(&mut m, op);
        }
        m
    }

    /// Unit state including pending sets/deletes.
    pub fn unit_state(&self, st: &State) -> BTreeMap<String, String> {
        let mut m = st.unit_state.clone();
        for (k, v) in &self.state_ops {
            match v {
                Some(v) => {
                    m.insert(k.clone(), v.clone());
                }
                None => {
                    m.remove(k);
                }
            }
        }
        m
    }

    /// Queue the creation of a secret.
    pub fn secret_create(&mut self, secret: Secret) {
        self.secret_ops.push(SecretOp::Create { secret });
    }

    /// Queue a `secret-set`, merged into this hook's create or update of the same secret.
    pub fn secret_update(&mut self, id: &str, update: SecretUpdate) {
        for op in self.secret_ops.iter_mut().rev() {
            match op {
                SecretOp::Create { secret } if secret.id == id => {
                    update.apply(secret, true);
                    return;
                }
                SecretOp::Update { id: i, update: u } if i == id => {
                    u.merge(&update);
                    return;
                }
                SecretOp::Remove { id: i, .. } if i == id => break,
                _ => {}
            }
        }
        self.secret_ops.push(SecretOp::Update {
            id: id.to_string(),
            update,
        });
    }

    /// Queue a `secret-remove`.
    pub fn secret_remove(&mut self, id: &str, revision: Option<u32>) {
        self.secret_ops.push(SecretOp::Remove {
            id: id.to_string(),
            revision,
        });
    }

    /// Whether the secret was created by this hook (not committed yet).
    pub fn secret_pending_create(&self, id: &str) -> bool {
        self.secret_ops
            .iter()
            .any(|op| matches!(op, SecretOp::Create { secret } if secret.id == id))
    }

    /// Secrets including this hook's pending creates/updates/removes.
    pub fn secrets(&self, st: &State) -> BTreeMap<String, Secret> {
        let mut m = st.secrets.clone();
        for op in &self.secret_ops {
            apply_secret_op(&mut m, op);
        }
        m
    }

    /// Apply everything to the model (the hook exited 0).
    pub fn commit(&self, st: &mut State) {
        for rid in self.unit_settings.keys().chain(self.app_settings.keys()) {
            let unit = self.local_unit_bag(st, *rid);
            let app = self.local_app_bag(st, *rid);
            if let Some(rel) = st.relations.get_mut(rid) {
                rel.local_unit_bag = unit;
                rel.local_app_bag = app;
            }
        }
        st.ports = self.ports(st);
        st.unit_state = self.unit_state(st);
        st.secrets = self.secrets(st);
        // The creator tracks the first revision of what it created; a removed secret is no
        // longer tracked by anyone.
        for op in &self.secret_ops {
            if let SecretOp::Create { secret } = op {
                st.secret_tracking
                    .entry(secret.id.clone())
                    .or_default()
                    .revision = secret.latest_revision();
            }
        }
        let secrets = &st.secrets;
        st.secret_tracking.retain(|id, _| secrets.contains_key(id));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn state() -> State {
        let mut s = State {
            unit: "demo/0".into(),
            address: "10.0.0.10".into(),
            ..Default::default()
        };
        s.add_relation("db", "mongo");
        s
    }

    #[test]
    fn pending_visible_then_committed() {
        let mut s = state();
        let mut j = Journal::default();
        j.set_relation(0, false, &kv(&[("user", "u"), ("private-address", "")]));
        j.set_relation(0, true, &kv(&[("shared", "1")]));
        j.port_ops.push(PortOp {
            open: true,
            range: ports::parse("8080").unwrap(),
            endpoints: vec![],
        });
        j.state_ops.insert("k".into(), Some("v".into()));
        // Visible to the hook's own reads, not in the committed model yet.
        assert_eq!(j.local_unit_bag(&s, 0)["user"], "u");
        assert!(!j.local_unit_bag(&s, 0).contains_key("private-address"));
        assert_eq!(ports::list(&j.ports(&s), false), vec!["8080/tcp"]);
        assert_eq!(j.unit_state(&s)["k"], "v");
        assert!(!s.relations[&0].local_unit_bag.contains_key("user"));
        assert!(s.ports.is_empty());
        j.commit(&mut s);
        assert_eq!(s.relations[&0].local_unit_bag["user"], "u");
        assert!(!s.relations[&0]
            .local_unit_bag
            .contains_key("private-address"));
        assert_eq!(s.relations[&0].local_app_bag["shared"], "1");
        assert_eq!(ports::list(&s.ports, false), vec!["8080/tcp"]);
        assert_eq!(s.unit_state["k"], "v");
    }

    #[test]
    fn discard_leaves_model_untouched_and_file_roundtrip() {
        let s = state();
        let before = s.clone();
        let mut j = Journal::default();
        j.set_relation(0, false, &kv(&[("user", "u")]));
        j.state_ops.insert("k".into(), None);
        // Discarding = simply not committing and clearing the file.
        let dir = std::env::temp_dir().join(format!("jujusim-journal-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        save(&dir, &j).unwrap();
        assert_eq!(load(&dir).unwrap(), j);
        clear(&dir).unwrap();
        assert_eq!(load(&dir).unwrap(), Journal::default());
        assert_eq!(s, before);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
