//! A run's attempts on the queue, as a whole: each task's last attempt queued, kept by the
//! queue itself, so that when the run's orchestrator died (cancelled or resumed) every attempt
//! it left on workers is stopped, even one it queued and never recorded, and a resumed run
//! numbers its attempts past them (no attempt of the dead orchestrator's is taken for a new
//! one). A task's earlier attempts ended, or were asked to stop, before its last was queued.

use super::keys::ns_key;
use super::queue::{attempt_key, ms, work_key, DONE_TTL};
use super::{Lua, RedisStore};
use crate::store::StoreError;
use redis::Commands;
use std::collections::HashMap;

static STOP: Lua = Lua::new(include_str!("lua/queue_stop.lua"));

/// How the orchestrator's stop request went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// No worker ran it (queued, or its owner's lease ran out): it is done, and no end counts.
    Dropped,
    /// Its owner will read the request with its next renewal or events.
    Asked,
    /// It had ended already.
    Done,
}

/// HASH: task id -> the last attempt of it queued.
pub(super) fn queued_key(ns: &str, run_id: &str) -> String {
    ns_key(ns, &format!("run:{run_id}:queued"))
}

impl RedisStore {
    /// The orchestrator stops attempt `attempt` of `task`, queued on `queue` (`kill`: at once,
    /// else terminate).
    pub fn stop_attempt(
        &self,
        ns: &str,
        run_id: &str,
        (task, attempt, queue): (&str, u32, &str),
        kill: bool,
    ) -> Result<Stopped, StoreError> {
        self.stop_key(ns, &attempt_key(ns, run_id, task, attempt), queue, kill)
    }

    fn stop_key(&self, ns: &str, key: &str, queue: &str, kill: bool) -> Result<Stopped, StoreError> {
        let script = STOP.get();
        let mut inv = script.key(key);
        inv.key(work_key(ns, queue)).arg(if kill { "kill" } else { "terminate" }).arg(ms(DONE_TTL));
        let reply: Vec<String> = self.with(|c| inv.invoke(c))?;
        Ok(match reply.first().map(String::as_str) {
            Some("dropped") => Stopped::Dropped,
            Some("asked") => Stopped::Asked,
            _ => Stopped::Done,
        })
    }

    /// Stops each task's last attempt of the run (`queued`, as [`RedisStore::queued_attempts`]
    /// says) still queued or running on a worker, whether or not its orchestrator recorded it.
    /// How each open one went, as `(task, attempt, how)`.
    pub fn stop_run(
        &self,
        ns: &str,
        run_id: &str,
        queued: &HashMap<String, u32>,
        kill: bool,
    ) -> Result<Vec<(String, u32, Stopped)>, StoreError> {
        let mut stopped = Vec::new();
        for (task, &attempt) in queued {
            let key = attempt_key(ns, run_id, task, attempt);
            let queue: Option<String> = self.with(|c| c.hget(&key, "queue"))?;
            let Some(queue) = queue else { continue }; // gone (expired): nothing runs it
            match self.stop_key(ns, &key, &queue, kill)? {
                Stopped::Done => {}
                how => stopped.push((task.clone(), attempt, how)),
            }
        }
        Ok(stopped)
    }

    /// Each task's last attempt queued for the run (by whichever orchestrator queued it).
    pub fn queued_attempts(&self, ns: &str, run_id: &str) -> Result<HashMap<String, u32>, StoreError> {
        self.with(|c| c.hgetall(queued_key(ns, run_id)))
    }
}
