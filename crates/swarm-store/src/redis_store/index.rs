//! Finding runs: which namespace a run lives in, and the runs of every namespace this store
//! knows. A namespace's own index (`swarm:{<ns>}:runs`) is the truth; the global keys
//! (`swarm:runs`, `swarm:run_ns`, `swarm:namespaces`) add the namespaces this process was not
//! told about, when the user may read them. A user whose ACL stops at its namespaces sees
//! exactly those.

use super::keys::{ns_keys, run_keys, LAYOUT, META, NAMESPACES, RUNS, RUN_NS};
use super::{RedisStore, SCHEMA_VERSION};
use crate::store::StoreError;
use redis::Commands;
use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use swarm_core::report::RunRecord;

/// What the store knows about where runs live, and whether the global keys are open to it.
#[derive(Default)]
pub(super) struct Index {
    /// Namespaces to look in: those given when the store was opened and those met since.
    known: Mutex<BTreeSet<String>>,
    /// Run id -> namespace, for runs already found.
    run_ns: Mutex<HashMap<String, String>>,
    /// Namespaces whose keys this user may not read (`NOPERM`), skipped from then on.
    closed: Mutex<BTreeSet<String>>,
    /// Set once the server refused a read (`NOPERM`) of a global key.
    no_global_read: AtomicBool,
    /// Set once the server refused a write of a global key.
    no_global_write: AtomicBool,
}

impl Index {
    pub(super) fn new(namespaces: &[String]) -> Index {
        let index = Index::default();
        index.known.lock().unwrap().extend(namespaces.iter().filter(|n| !n.is_empty()).cloned());
        index
    }

    pub(super) fn remember(&self, run_id: &str, ns: &str) {
        self.run_ns.lock().unwrap().insert(run_id.into(), ns.into());
        self.known.lock().unwrap().insert(ns.into());
    }

    pub(super) fn known(&self) -> Vec<String> {
        self.known.lock().unwrap().iter().cloned().collect()
    }
}

/// A refused command of an ACL user (as opposed to a refused login).
fn is_noperm(e: &redis::RedisError) -> bool {
    e.code() == Some("NOPERM") || e.to_string().contains("NOPERM")
}

impl RedisStore {
    /// Reads a global key: `None` when the user may not (and from then on without asking).
    pub(super) fn global_read<T>(
        &self,
        mut f: impl FnMut(&mut super::conn::Conn) -> redis::RedisResult<T>,
    ) -> Result<Option<T>, StoreError> {
        self.optional(&self.index.no_global_read, &mut f)
    }

    /// Writes a global key, if the user may.
    pub(super) fn global_write(
        &self,
        mut f: impl FnMut(&mut super::conn::Conn) -> redis::RedisResult<()>,
    ) -> Result<(), StoreError> {
        self.optional(&self.index.no_global_write, &mut f).map(|_| ())
    }

    fn optional<T>(
        &self,
        refused: &AtomicBool,
        f: &mut dyn FnMut(&mut super::conn::Conn) -> redis::RedisResult<T>,
    ) -> Result<Option<T>, StoreError> {
        if refused.load(Ordering::Relaxed) {
            return Ok(None);
        }
        let answer = self.with(|c| match f(c) {
            Ok(v) => Ok(Some(v)),
            Err(e) if is_noperm(&e) => Ok(None),
            Err(e) => Err(e),
        })?;
        if answer.is_none() {
            refused.store(true, Ordering::Relaxed);
        }
        Ok(answer)
    }

    /// Runs `f` on a key of namespace `ns`: `None` when this user may not (its ACL stops at
    /// other namespaces), and `ns` is not looked in again.
    pub(super) fn in_namespace<T>(
        &self,
        ns: &str,
        mut f: impl FnMut(&mut super::conn::Conn) -> redis::RedisResult<T>,
    ) -> Result<Option<T>, StoreError> {
        let answer = self.with(|c| match f(c) {
            Ok(v) => Ok(Some(v)),
            Err(e) if is_noperm(&e) => Ok(None),
            Err(e) => Err(e),
        })?;
        if answer.is_none() {
            self.index.known.lock().unwrap().remove(ns);
            self.index.closed.lock().unwrap().insert(ns.into());
        }
        Ok(answer)
    }

    /// The namespace run `run_id` lives in, if the store has it where this user may look.
    pub(super) fn namespace_of(&self, run_id: &str) -> Result<Option<String>, StoreError> {
        if let Some(ns) = self.index.run_ns.lock().unwrap().get(run_id) {
            return Ok(Some(ns.clone()));
        }
        let global: Option<Option<String>> = self.global_read(|c| c.hget(RUN_NS, run_id))?;
        if let Some(ns) = global.flatten() {
            if self.index.closed.lock().unwrap().contains(&ns) {
                return Ok(None);
            }
            self.index.remember(run_id, &ns);
            return Ok(Some(ns));
        }
        for ns in self.namespaces()? {
            let run = run_keys(&ns, run_id).run;
            if self.in_namespace(&ns, |c| c.exists::<_, bool>(&run))? == Some(true) {
                self.index.remember(run_id, &ns);
                return Ok(Some(ns));
            }
        }
        Ok(None)
    }

    /// Every namespace this store may look in: those it was opened with and those the
    /// global index names (when the user may read it).
    pub fn namespaces(&self) -> Result<Vec<String>, StoreError> {
        let mut all: BTreeSet<String> = self.index.known().into_iter().collect();
        if let Some(more) = self.global_read(|c| c.smembers::<_, BTreeSet<String>>(NAMESPACES))? {
            let closed = self.index.closed.lock().unwrap();
            all.extend(more.into_iter().filter(|ns| !closed.contains(ns)));
        }
        Ok(all.into_iter().collect())
    }

    /// The newest `limit` run ids of every namespace this store may look in, newest first
    /// (same start: the greater id first).
    pub(super) fn run_ids(&self, limit: usize) -> Result<Vec<String>, StoreError> {
        if limit == 0 {
            return Ok(vec![]);
        }
        let stop = if limit == usize::MAX { -1 } else { limit as isize - 1 };
        let mut scored: HashMap<String, f64> = HashMap::new();
        for ns in self.namespaces()? {
            let key = ns_keys(&ns).runs;
            let ids: Option<Vec<(String, f64)>> =
                self.in_namespace(&ns, |c| c.zrevrange_withscores(&key, 0, stop))?;
            for (id, score) in ids.unwrap_or_default() {
                self.index.remember(&id, &ns);
                scored.insert(id, score);
            }
        }
        // Runs of a store written before the per-namespace indexes, not migrated yet.
        let global: Option<Vec<(String, f64)>> =
            self.global_read(|c| c.zrevrange_withscores(RUNS, 0, stop))?;
        for (id, score) in global.unwrap_or_default() {
            scored.entry(id).or_insert(score);
        }
        let mut ids: Vec<(String, f64)> = scored.into_iter().collect();
        ids.sort_by(|a, b| b.1.total_cmp(&a.1).then(b.0.cmp(&a.0)));
        ids.truncate(limit);
        Ok(ids.into_iter().map(|(id, _)| id).collect())
    }

    /// Adds a new run to the global index, where the user may write it.
    pub(super) fn index_globally(&self, run: &RunRecord) -> Result<(), StoreError> {
        let (id, ns) = (&run.run_id, &run.namespace);
        let at = run.started_at.timestamp_millis();
        // One command per key: on a Cluster the global keys live in different slots.
        self.global_write(|c| c.hset_nx(RUN_NS, id, ns))?;
        self.global_write(|c| c.zadd(RUNS, id, at))?;
        self.global_write(|c| c.sadd(NAMESPACES, ns))
    }

    /// A store written before the per-namespace indexes gets them, from the global ones: each
    /// run goes into its namespace's index (idempotent), then `swarm:meta` says `layout` 2.
    pub(super) fn migrate(&self) -> Result<(), StoreError> {
        let Some((version, layout)) = self.global_read(|c| {
            c.hmget::<_, _, (Option<String>, Option<u32>)>(META, &["schema_version", "layout"])
        })?
        else {
            return Ok(());
        };
        if version.is_none() || layout.is_some_and(|l| l >= LAYOUT) {
            return Ok(());
        }
        let run_ns: HashMap<String, String> = self.global_read(|c| c.hgetall(RUN_NS))?.unwrap_or_default();
        let starts: HashMap<String, f64> =
            self.global_read(|c| c.zrange_withscores(RUNS, 0, -1))?.unwrap_or_default();
        let mut complete = true;
        for (id, ns) in &run_ns {
            let keys = ns_keys(ns);
            let at = starts.get(id).copied().unwrap_or(0.0);
            // Two commands, each on one key: a Cluster needs no transaction across slots. A
            // namespace this user may not write is left to one who may (`layout` stays 1).
            let written = self.with(|c| {
                let marked = c.hset_nx::<_, _, _, ()>(&keys.meta, "schema_version", SCHEMA_VERSION);
                match marked.and_then(|()| c.zadd::<_, _, _, ()>(&keys.runs, id, at)) {
                    Err(e) if is_noperm(&e) => Ok(false),
                    other => other.map(|()| true),
                }
            })?;
            complete &= written;
            self.global_write(|c| c.sadd(NAMESPACES, ns))?;
        }
        if complete {
            self.global_write(|c| c.hset(META, "layout", LAYOUT))?;
        }
        Ok(())
    }
}
