//! Hook tools with one hook's answers remembered. Every tool call is a round trip to the unit
//! agent (serialised), and Juju itself answers reads from a snapshot taken for the hook
//! (config, remote relation data, leadership once false): asking twice in one hook can only
//! cost time. The charm's own writes update what it remembers, so it reads back what it
//! wrote, as `relation-get` of its own bag does.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use serde_json::Value;

use super::hook_tools::{Databag, HookTools, ToolResult};
use super::status::Status;

/// Wraps `T`, remembering reads for the rest of the hook.
pub struct CachedTools<T: HookTools> {
    inner: T,
    config: RefCell<Option<BTreeMap<String, Value>>>,
    relation_ids: RefCell<HashMap<String, Vec<String>>>,
    relation_list: RefCell<HashMap<String, Vec<String>>>,
    relation_get: RefCell<HashMap<(String, String), Databag>>,
    relation_get_app: RefCell<HashMap<(String, String), Databag>>,
    is_leader: RefCell<Option<bool>>,
    ingress: RefCell<HashMap<String, Option<String>>>,
}

impl<T: HookTools> CachedTools<T> {
    pub fn new(inner: T) -> Self {
        CachedTools {
            inner,
            config: RefCell::new(None),
            relation_ids: RefCell::default(),
            relation_list: RefCell::default(),
            relation_get: RefCell::default(),
            relation_get_app: RefCell::default(),
            is_leader: RefCell::new(None),
            ingress: RefCell::default(),
        }
    }

    pub fn inner(&self) -> &T {
        &self.inner
    }

    pub fn into_inner(self) -> T {
        self.inner
    }
}

fn apply(bag: &mut Databag, data: &Databag) {
    for (k, v) in data {
        if v.is_empty() {
            bag.remove(k);
        } else {
            bag.insert(k.clone(), v.clone());
        }
    }
}

impl<T: HookTools> HookTools for CachedTools<T> {
    fn config_get(&self) -> ToolResult<BTreeMap<String, Value>> {
        if let Some(c) = self.config.borrow().as_ref() {
            return Ok(c.clone());
        }
        let c = self.inner.config_get()?;
        *self.config.borrow_mut() = Some(c.clone());
        Ok(c)
    }

    fn relation_ids(&self, endpoint: &str) -> ToolResult<Vec<String>> {
        if let Some(v) = self.relation_ids.borrow().get(endpoint) {
            return Ok(v.clone());
        }
        let v = self.inner.relation_ids(endpoint)?;
        self.relation_ids
            .borrow_mut()
            .insert(endpoint.to_owned(), v.clone());
        Ok(v)
    }

    fn relation_list(&self, relation_id: &str) -> ToolResult<Vec<String>> {
        if let Some(v) = self.relation_list.borrow().get(relation_id) {
            return Ok(v.clone());
        }
        let v = self.inner.relation_list(relation_id)?;
        self.relation_list
            .borrow_mut()
            .insert(relation_id.to_owned(), v.clone());
        Ok(v)
    }

    fn relation_get(&self, relation_id: &str, unit: &str) -> ToolResult<Databag> {
        let key = (relation_id.to_owned(), unit.to_owned());
        if let Some(b) = self.relation_get.borrow().get(&key) {
            return Ok(b.clone());
        }
        let b = self.inner.relation_get(relation_id, unit)?;
        self.relation_get.borrow_mut().insert(key, b.clone());
        Ok(b)
    }

    fn relation_set(&self, relation_id: &str, data: &Databag) -> ToolResult<()> {
        self.inner.relation_set(relation_id, data)?;
        // Our own bag as we left it; the key is unknown here, so forget every own-bag read.
        self.relation_get
            .borrow_mut()
            .retain(|(id, _), _| id != relation_id);
        Ok(())
    }

    fn relation_get_app(&self, relation_id: &str, app: &str) -> ToolResult<Databag> {
        let key = (relation_id.to_owned(), app.to_owned());
        if let Some(b) = self.relation_get_app.borrow().get(&key) {
            return Ok(b.clone());
        }
        let b = self.inner.relation_get_app(relation_id, app)?;
        self.relation_get_app.borrow_mut().insert(key, b.clone());
        Ok(b)
    }

    fn relation_set_app(&self, relation_id: &str, data: &Databag) -> ToolResult<()> {
        self.inner.relation_set_app(relation_id, data)?;
        let mut cache = self.relation_get_app.borrow_mut();
        for ((id, _), bag) in cache.iter_mut() {
            if id == relation_id {
                apply(bag, data);
            }
        }
        Ok(())
    }

    fn opened_ports(&self) -> ToolResult<Vec<String>> {
        self.inner.opened_ports()
    }
    fn open_port(&self, port: u16) -> ToolResult<()> {
        self.inner.open_port(port)
    }
    fn close_port(&self, port: u16) -> ToolResult<()> {
        self.inner.close_port(port)
    }
    fn status_set(&self, status: &Status) -> ToolResult<()> {
        self.inner.status_set(status)
    }
    fn application_version_set(&self, version: &str) -> ToolResult<()> {
        self.inner.application_version_set(version)
    }
    fn log(&self, level: &str, message: &str) -> ToolResult<()> {
        self.inner.log(level, message)
    }

    fn is_leader(&self) -> ToolResult<bool> {
        // A true answer holds for about 30 s, a false one for the rest of the hook.
        if let Some(l) = *self.is_leader.borrow() {
            return Ok(l);
        }
        let l = self.inner.is_leader()?;
        *self.is_leader.borrow_mut() = Some(l);
        Ok(l)
    }

    fn public_address(&self) -> ToolResult<String> {
        self.inner.public_address()
    }

    fn ingress_address(&self, binding: &str) -> ToolResult<Option<String>> {
        if let Some(a) = self.ingress.borrow().get(binding) {
            return Ok(a.clone());
        }
        let a = self.inner.ingress_address(binding)?;
        self.ingress
            .borrow_mut()
            .insert(binding.to_owned(), a.clone());
        Ok(a)
    }

    fn state_get(&self, key: &str) -> ToolResult<Option<String>> {
        self.inner.state_get(key)
    }
    fn state_set(&self, data: &Databag) -> ToolResult<()> {
        self.inner.state_set(data)
    }
    fn secret_get(&self, label: &str) -> ToolResult<Option<Databag>> {
        self.inner.secret_get(label)
    }
    fn secret_add_from_files(
        &self,
        label: &str,
        description: &str,
        entries: &[(&str, &Path)],
    ) -> ToolResult<String> {
        self.inner
            .secret_add_from_files(label, description, entries)
    }
    fn secret_remove(&self, uri: &str) -> ToolResult<()> {
        self.inner.secret_remove(uri)
    }
    fn secret_get_by_id(&self, uri: &str, refresh: bool) -> ToolResult<Option<Databag>> {
        self.inner.secret_get_by_id(uri, refresh)
    }
    fn secret_id(&self, label: &str) -> ToolResult<Option<String>> {
        self.inner.secret_id(label)
    }
    fn action_set(&self, results: &Databag) -> ToolResult<()> {
        self.inner.action_set(results)
    }
    fn action_fail(&self, message: &str) -> ToolResult<()> {
        self.inner.action_fail(message)
    }
    fn resource_get(&self, name: &str) -> ToolResult<std::path::PathBuf> {
        self.inner.resource_get(name)
    }
    fn action_get(&self) -> ToolResult<BTreeMap<String, Value>> {
        self.inner.action_get()
    }
}
