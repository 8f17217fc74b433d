//! When each attempt went through its phases — queued, waiting for a model, checks, merging —
//! kept on its record for the timelines (dashboard, report.md). Running is what lies between.

use super::Dispatcher;
use chrono::{DateTime, TimeZone, Utc};
use swarm_core::report::{AttemptReport, ModelWaitSpan};

/// A gateway request that waited less than this was not held up for a model (a refusal
/// absorbed in passing): not worth a phase of its own.
const NOTICEABLE_WAIT_MS: u64 = 200;

impl Dispatcher {
    /// The task became ready to run.
    pub(super) fn note_ready(&mut self, task: u32) {
        self.ready_at.entry(task).or_insert_with(Utc::now);
    }

    /// Since when attempt `attempt`, starting now, was queued: since the task became ready,
    /// or for a retry since its previous attempt ended.
    pub(super) fn queued_since(&mut self, task: u32, attempt: u32) -> Option<DateTime<Utc>> {
        let ready = self.ready_at.remove(&task);
        let previous = self.docs[task as usize].attempts.iter().rev().find(|a| a.n + 1 == attempt);
        previous.and_then(|a| a.ended_at).or(ready)
    }

    fn attempt_mut(&mut self, task: u32, attempt: u32) -> Option<&mut AttemptReport> {
        self.docs[task as usize].attempts.iter_mut().find(|a| a.n == attempt)
    }

    pub(super) fn merging_began(&mut self, task: u32, attempt: u32) {
        if let Some(a) = self.attempt_mut(task, attempt) {
            a.merging_at.get_or_insert_with(Utc::now);
        }
        self.save_task(task);
    }

    /// The attempt waits for `model` (one wait is open at a time).
    pub(super) fn wait_began(&mut self, task: u32, attempt: u32, model: &str) {
        let Some(a) = self.attempt_mut(task, attempt) else { return };
        if a.model_waits.last().is_some_and(|w| w.to.is_none()) {
            return;
        }
        a.model_waits.push(ModelWaitSpan { from: Utc::now(), to: None, model: Some(model.to_string()) });
        self.save_task(task);
    }

    /// A request of the attempt that arrived at `arrived_ms` was served after waiting
    /// `waited_ms`: the open wait ends then, or a noticeable one is recorded.
    pub(super) fn wait_served(&mut self, task: u32, attempt: u32, arrived_ms: u64, waited_ms: u64) {
        let ms = |v: u64| Utc.timestamp_millis_opt(v as i64).single();
        let Some(a) = self.attempt_mut(task, attempt) else { return };
        let end = ms(arrived_ms + waited_ms).unwrap_or_else(Utc::now);
        match a.model_waits.last_mut().filter(|w| w.to.is_none()) {
            Some(open) => open.to = Some(end.max(open.from)),
            None if waited_ms >= NOTICEABLE_WAIT_MS => {
                let from = ms(arrived_ms).unwrap_or(end);
                a.model_waits.push(ModelWaitSpan { from, to: Some(end), model: None });
            }
            None => {}
        }
    }

    /// The attempt's model was picked (a hierarchy route) or the attempt ended: a wait still
    /// open ends now.
    pub(super) fn wait_over(&mut self, task: u32, attempt: u32) {
        let Some(a) = self.attempt_mut(task, attempt) else { return };
        if let Some(open) = a.model_waits.last_mut().filter(|w| w.to.is_none()) {
            open.to = Some(Utc::now());
        }
    }
}
