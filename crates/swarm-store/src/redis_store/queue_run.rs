//! A run's attempts on the queue, as a whole: those queued and not yet done (what is stopped
//! when the run's orchestrator died, cancelled or resumed, even attempts it queued and never
//! recorded) and each task's last attempt queued (what a resumed run numbers its attempts past,
//! so that no attempt of the dead orchestrator's is taken for a new one).

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

/// SET: the run's attempts queued and not yet done (their hashes' keys).
pub(super) fn open_key(ns: &str, run_id: &str) -> String {
    ns_key(ns, &format!("run:{run_id}:open"))
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
        self.stop_key(ns, run_id, &attempt_key(ns, run_id, task, attempt), queue, kill)
    }

    fn stop_key(
        &self,
        ns: &str,
        run_id: &str,
        key: &str,
        queue: &str,
        kill: bool,
    ) -> Result<Stopped, StoreError> {
        let script = STOP.get();
        let mut inv = script.key(key);
        inv.key(work_key(ns, queue)).key(open_key(ns, run_id));
        inv.arg(if kill { "kill" } else { "terminate" }).arg(ms(DONE_TTL));
        let reply: Vec<String> = self.with(|c| inv.invoke(c))?;
        Ok(match reply.first().map(String::as_str) {
            Some("dropped") => Stopped::Dropped,
            Some("asked") => Stopped::Asked,
            _ => Stopped::Done,
        })
    }

    /// Stops every attempt of the run still queued or running on a worker, whether or not its
    /// orchestrator recorded it. How each went, as `(task, attempt, how)`.
    pub fn stop_run(
        &self,
        ns: &str,
        run_id: &str,
        kill: bool,
    ) -> Result<Vec<(String, u32, Stopped)>, StoreError> {
        let open: Vec<String> = self.with(|c| c.smembers(open_key(ns, run_id)))?;
        let mut stopped = Vec::with_capacity(open.len());
        for key in open {
            let (task, attempt, queue): (Option<String>, Option<u32>, Option<String>) = self
                .with(|c| redis::cmd("HMGET").arg(&key).arg("task").arg("attempt").arg("queue").query(c))?;
            let (Some(task), Some(attempt), Some(queue)) = (task, attempt, queue) else {
                // Gone (expired): nothing runs it.
                self.with(|c| c.srem::<_, _, ()>(open_key(ns, run_id), &key))?;
                continue;
            };
            stopped.push((task, attempt, self.stop_key(ns, run_id, &key, &queue, kill)?));
        }
        Ok(stopped)
    }

    /// Each task's last attempt queued for the run (by whichever orchestrator queued it).
    pub fn queued_attempts(&self, ns: &str, run_id: &str) -> Result<HashMap<String, u32>, StoreError> {
        self.with(|c| c.hgetall(queued_key(ns, run_id)))
    }
}
