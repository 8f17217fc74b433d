//! The end of a run: leftovers ended, the last writes stored (or counted lost), the report and
//! mirror written, the run-end hook fired, the event stream closed. Blocking: it runs off the
//! runtime's threads.

use super::Dispatcher;
use crate::dispatcher::report_files;
use crate::dispatcher::sweeper::Swept;
use crate::dispatcher::writer::{Note, Write};
use crate::hooks::HookKind;
use chrono::Utc;
use std::time::Duration;
use swarm_core::event::EventKind;
use swarm_core::report::RunReport;
use swarm_core::state::RunState;
use tokio::sync::mpsc;

impl Dispatcher {
    /// A worktree task whose work never reached the integration branch (it failed, was
    /// blocked or cancelled) ends with `merge: skipped`, and its branch named when it has one.
    fn mark_unmerged(&mut self) {
        let Some(git) = self.record.git.clone() else { return };
        for i in 0..self.docs.len() {
            let id = &self.docs[i].id;
            let Some(task) = self.record.spec.tasks.iter().find(|t| &t.id == id) else { continue };
            if task.workdir(true) != swarm_core::plan::Workdir::Worktree || self.docs[i].merge.is_some() {
                continue;
            }
            let doc = &mut self.docs[i];
            doc.merge = Some(swarm_core::report::MergeState::Skipped);
            if !doc.attempts.is_empty() {
                doc.branch = Some(crate::os::git::task_branch(&git.integration_branch, &doc.id));
            }
            self.writer.send(Write::Task(doc.clone()));
        }
    }

    /// A run whose workers pushed their work to its repository (`--repo`): what they pushed
    /// was fetched (and merged, or not) when their attempts ended, so those refs go.
    fn delete_pushed_refs(&mut self) {
        let Some(g) = self.record.git.clone().filter(|_| self.record.workers) else { return };
        let Some(url) = g.remote.as_deref() else { return };
        let repo = std::path::Path::new(&g.repo);
        if let Err(e) = crate::os::git_remote::delete_run_refs(repo, url, &self.record.run_id, None) {
            let message = format!("cannot delete the refs the run's workers pushed to {url}: {e}");
            self.emit(EventKind::Warning { message });
        }
    }

    pub(super) fn finish(
        mut self,
        notes: &mut mpsc::UnboundedReceiver<Note>,
        swept: &mut mpsc::UnboundedReceiver<Swept>,
        store: &dyn swarm_store::Store,
    ) -> RunReport {
        let mut state = self.ending.finished.expect("finish after the scheduler finished");
        // Every finished attempt's leftovers are ended (and recorded) before the run ends.
        self.sweeper.flush();
        while let Ok(s) = swept.try_recv() {
            self.on_swept(s);
        }
        // Anything of the run still alive now escaped that (e.g. forked while its attempt was
        // being stopped).
        let run = crate::os::reaper::Marker::run(&self.record.run_id);
        let left = crate::os::reaper::end(&run, crate::os::reaper::Scope::Mine, self.ctx.config.grace());
        if left.found > 0 {
            self.emit(EventKind::Warning {
                message: format!("ended {} process(es) of the run still running at its end", left.found),
            });
        }
        self.mark_unmerged();
        self.delete_pushed_refs();
        let counts = swarm_core::report::Counts::of(self.docs.iter().map(|t| &t.state));
        self.record.state = state;
        self.record.ended_at = Some(Utc::now());
        self.emit(EventKind::RunFinished {
            state,
            succeeded: counts.succeeded,
            failed: counts.failed,
            blocked: counts.blocked,
            cancelled: counts.cancelled,
        });
        self.writer.send(Write::Run(self.record.clone()));
        // Everything is in the store (or known lost) before the report says how the run ended.
        let closed = self.writer.close();
        // What the writer said while saving the last writes (a store that came back, or not).
        while let Ok(Note::Warning(message) | Note::LeaseLost(message)) = notes.try_recv() {
            self.emit(EventKind::Warning { message });
        }
        let failure = closed.failure(&self.docs);
        if let Some(f) = &failure {
            // A run the store could not record did not succeed, whatever its tasks did.
            if state == RunState::Succeeded {
                state = RunState::Failed;
                self.record.state = state;
            }
            self.emit(EventKind::StoreLost { message: f.message.clone(), lost_writes: f.lost_writes });
        }
        let mut report = RunReport::build(&self.record, self.docs.clone());
        report.store_error = failure;
        report.state_changes = state_changes_of(store, &self.record);
        if let Err(e) = report_files::write(&self.ctx.run_dir, &report) {
            self.emit(EventKind::Warning { message: format!("cannot write report: {e}") });
        }
        if let Err(e) = self.mirror.run_status(&self.record.run_id, &report) {
            self.emit(EventKind::Warning { message: e.to_string() });
        }
        self.hooks.fire(HookKind::RunEnd, serde_json::to_value(&report).expect("report serializes"));
        // Hooks never block the run, but the run does not end under them: they get their time —
        // unless the run was cancelled, when they get the grace period and are then stopped.
        let bound = match &self.ending.cancelled_by {
            Some(_) => self.ctx.config.grace(),
            None => self.hooks.max_duration() + Duration::from_secs(1),
        };
        if !self.hooks.wait_idle(bound) {
            self.hooks.abort();
            self.hooks.wait_idle(Duration::from_secs(2));
        }
        // What the hooks said.
        while let Ok(Note::Warning(message) | Note::LeaseLost(message)) = notes.try_recv() {
            self.emit(EventKind::Warning { message });
        }
        self.bus.close();
        report
    }
}

/// The changes of the run's namespace feed made by its agents (the last 200): the run is over,
/// so reading the feed here holds nothing up.
fn state_changes_of(
    store: &dyn swarm_store::Store,
    run: &swarm_core::report::RunRecord,
) -> Vec<swarm_core::state_doc::StateChange> {
    let mut mine = Vec::new();
    let mut after = 0;
    while let Ok(batch) = store.state_changes(&run.namespace, after, 1000) {
        let Some(last) = batch.last() else { break };
        after = last.seq;
        let of_run = |c: &swarm_core::state_doc::StateChange| {
            c.by.as_ref().and_then(|b| b.run_id.as_deref()) == Some(run.run_id.as_str())
        };
        mine.extend(batch.into_iter().filter(of_run));
    }
    let skip = mine.len().saturating_sub(200);
    mine.split_off(skip)
}
