//! Running the model's queued events, one hook at a time, as the unit agents would: each hook
//! runs in its unit's dir against the projected model (host or exec prefix, as for a single
//! unit), its committed changes queue further events; a failing hook puts its unit in error,
//! leaving the event first in that unit's queue until `resolve`. A unit whose machine is
//! powered off is a lost agent: its events wait, untouched, until the machine runs again.

use crate::agent::hooks::{self, HookRequest};
use crate::agent::state::{self, Status};
use crate::errors::{q, CmdError, CmdResult};
use crate::machine;
use crate::model::projection;
use crate::model::queue::Event;
use crate::model::{self, with_model, Model};
use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Default `--max` of settle: more hooks than this in one settle is taken as an event loop.
pub const DEFAULT_MAX: usize = 1000;

/// Run one hook of a model unit: project the model into its unit dir, run, fold its changes
/// back (queueing events). The `remove` hook, once it succeeds, buries the unit.
pub fn run_unit_hook(model_dir: &Path, unit: &str, req: &HookRequest) -> CmdResult<i32> {
    let m = model::load(model_dir)?;
    let dir = PathBuf::from(&m.unit(unit)?.dir);
    let _l = state::lock_named(&dir, ".model-hook-lock")?;
    projection::push(model_dir, &m, unit)?;
    let res = hooks::run_hook(&dir, req);
    projection::pull(model_dir, unit, &dir)?;
    let code = res?;
    if code == 0 && req.name == "remove" {
        bury(model_dir, unit)?;
    }
    Ok(code)
}

/// Run an action on a model unit (same projection as a hook; the unit is not put in error
/// by a failed action).
pub fn run_unit_action(
    model_dir: &Path,
    unit: &str,
    name: &str,
    args: &[String],
) -> CmdResult<i32> {
    let m = model::load(model_dir)?;
    let dir = PathBuf::from(&m.unit(unit)?.dir);
    let _l = state::lock_named(&dir, ".model-hook-lock")?;
    projection::push(model_dir, &m, unit)?;
    let res = hooks::run_action(&dir, name, args);
    projection::pull(model_dir, unit, &dir)?;
    res
}

/// After its `remove` hook the unit is gone: its bags, views, unit-owned secrets and pending
/// events leave the model (its unit dir stays on disk).
pub fn bury(model_dir: &Path, unit: &str) -> CmdResult<()> {
    with_model(model_dir, |m| {
        m.units.remove(unit);
        for r in m.relations.values_mut() {
            r.unit_bags.remove(unit);
            r.views.remove(unit);
            for v in r.views.values_mut() {
                v.members.remove(unit);
            }
        }
        m.relations.retain(|_, r| !(r.dying && r.views.is_empty()));
        m.secrets
            .retain(|_, s| !(s.owner == "unit" && s.owner_id == unit));
        if m.leader == unit {
            m.leader.clear();
        }
        m.queue.forget(unit);
        Ok(())
    })
}

/// Why an event can no longer run (its unit or relation is gone), if so.
fn stale(m: &Model, e: &Event) -> Option<String> {
    if !m.units.contains_key(&e.unit) {
        return Some(format!("unit {} is gone", q(&e.unit)));
    }
    let rid = e.relation?;
    match m.relations.get(&rid) {
        Some(r) if r.views.contains_key(&e.unit) => None,
        _ => Some(format!("{} is no longer in relation {rid}", e.unit)),
    }
}

/// The `<endpoint>:<id>` of an event's relation, if it has one.
pub fn relation_name(m: &Model, e: &Event) -> Option<String> {
    let rid = e.relation?;
    Some(
        m.relations
            .get(&rid)
            .map(|r| r.name())
            .unwrap_or_else(|| rid.to_string()),
    )
}

/// Units of the model whose machine is not running (`machine::is_down`): their agents are
/// lost, so Juju keeps their events until they come back.
fn units_without_machine(m: &Model) -> BTreeSet<String> {
    m.units
        .values()
        .filter(|u| {
            let dir = Path::new(&u.dir);
            state::load(dir).is_ok_and(|st| machine::is_down(dir, &st))
        })
        .map(|u| u.name.clone())
        .collect()
}

/// `settle`: run queued events until none is runnable, oldest first (one interleaving Juju
/// allows: each unit's hooks stay in queue order). Prints one line per hook run on `out`:
/// `<unit> <hook> exit=<code>` plus the context (`relation=`, `remote-unit=`, ...). Stops with
/// an error when a hook fails (that unit goes into error), when more than `max` hooks ran
/// (an event loop), or at the end if units in error still have queued events. The events of
/// a unit whose machine is not running are not runnable: they stay queued (as Juju keeps a
/// lost agent's events) and settle says on stderr, one line per such unit, how many wait.
/// Returns the number of hooks run.
pub fn settle(model_dir: &Path, max: usize, out: &mut dyn Write) -> CmdResult<usize> {
    let mut ran = 0;
    loop {
        let m = model::load(model_dir)?;
        let down = units_without_machine(&m);
        let runnable = |e: &Event| {
            m.units.get(&e.unit).is_some_and(|u| u.error.is_none()) && !down.contains(&e.unit)
        };
        let Some(ev) = m.queue.next(runnable).cloned() else {
            break;
        };
        if let Some(why) = stale(&m, &ev) {
            with_model(model_dir, |mm| {
                mm.queue.take(ev.seq);
                Ok(())
            })?;
            eprintln!("dropped {} {}: {why}", ev.unit, ev.hook);
            continue;
        }
        if ran >= max {
            return Err(CmdError::runtime(format!(
                "settle: {max} hooks run and events are still queued (next: {} {}); an event loop? (raise --max if not)",
                ev.unit, ev.hook
            )));
        }
        let context = ev.context(relation_name(&m, &ev));
        with_model(model_dir, |mm| {
            mm.queue.take(ev.seq);
            Ok(())
        })?;
        let res = run_unit_hook(model_dir, &ev.unit, &ev.request());
        ran += 1;
        let failure = match &res {
            Ok(0) => None,
            Ok(code) => Some(format!("hook failed: {} (exit {code})", q(&ev.hook))),
            Err(e) => Some(format!("hook {} could not run: {}", q(&ev.hook), e.msg)),
        };
        if let Ok(code) = &res {
            let line = format!("{} {} exit={code} {context}", ev.unit, ev.hook);
            // Output is informational: a closed stdout must not lose the bookkeeping below.
            let _ = writeln!(out, "{}", line.trim_end()).and_then(|_| out.flush());
        }
        if let Some(why) = failure {
            let unit = ev.unit.clone();
            with_model(model_dir, |mm| {
                if let Some(u) = mm.units.get_mut(&unit) {
                    u.error = Some(why.clone());
                    mm.queue.put_back(ev);
                }
                Ok(())
            })?;
            return Err(CmdError::runtime(format!(
                "settle stopped: unit {unit}: {why}; its queue waits for `jujusim resolve {} {unit}`",
                model_dir.display()
            )));
        }
    }
    let m = model::load(model_dir)?;
    let down = units_without_machine(&m);
    for u in m.unit_names().iter().filter(|u| down.contains(*u)) {
        let n = m.queue.of(u).count();
        if n > 0 {
            eprintln!(
                "{u}: its machine is not running; {n} {} wait for it (they run at a settle after machine-up or machine-reboot)",
                if n == 1 { "event" } else { "events" }
            );
        }
    }
    let stuck: Vec<String> = m
        .unit_names()
        .into_iter()
        .filter_map(|u| {
            let mu = &m.units[&u];
            let n = m.queue.of(&u).count();
            match &mu.error {
                Some(why) if n > 0 => Some(format!("{u} ({why}; {n} events queued)")),
                _ => None,
            }
        })
        .collect();
    if !stuck.is_empty() {
        return Err(CmdError::runtime(format!(
            "not settled: units in error: {}; run `jujusim resolve {} UNIT`",
            stuck.join(", "),
            model_dir.display()
        )));
    }
    Ok(ran)
}

/// `juju resolved`: clear the unit's error so settle retries its failed hook, or with
/// `no_retry` drop that hook (and mark the agent idle).
pub fn resolve(model_dir: &Path, unit: &str, no_retry: bool) -> CmdResult<()> {
    let dir = with_model(model_dir, |m| {
        let u = m
            .units
            .get_mut(unit)
            .ok_or_else(|| CmdError::usage(format!("unit {} is not in the model", q(unit))))?;
        if u.error.take().is_none() {
            return Err(CmdError::runtime(format!(
                "unit {} is not in error",
                q(unit)
            )));
        }
        let dir = PathBuf::from(&u.dir);
        if no_retry {
            let first = m.queue.of(unit).next().map(|e| e.seq);
            if let Some(seq) = first {
                m.queue.take(seq);
            }
        }
        Ok(dir)
    })?;
    if no_retry {
        state::with_state(&dir, |st| {
            st.set_agent_status(Status::new("idle", ""), "");
            Ok(())
        })?;
    }
    Ok(())
}
