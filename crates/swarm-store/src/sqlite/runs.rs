//! Runs, their tasks and events, and cancel requests: the documents the orchestrator writes
//! in batches (one IMMEDIATE transaction each) and every face reads.

use super::{decode, encode, SqliteStore};
use crate::store::{Batch, StoreError};
use rusqlite::{params, OptionalExtension, Transaction, TransactionBehavior};
use swarm_core::event::Event;
use swarm_core::report::{RunRecord, TaskReport};

impl SqliteStore {
    pub(super) fn insert_run(&self, run: &RunRecord, tasks: &[TaskReport]) -> Result<(), StoreError> {
        self.check_file()?;
        let mut conn = self.conn.lock().unwrap();
        let tx = conn.transaction().map_err(|e| self.err(e))?;
        tx.execute(
            "INSERT INTO runs(run_id, started_at, state, doc) VALUES(?1, ?2, ?3, ?4)",
            params![run.run_id, run.started_at.to_rfc3339(), run.state.as_str(), encode(run)],
        )
        .map_err(|e| self.err(e))?;
        {
            let mut stmt = tx
                .prepare("INSERT INTO tasks(run_id, task_id, ord, state, doc) VALUES(?1, ?2, ?3, ?4, ?5)")
                .map_err(|e| self.err(e))?;
            for (i, t) in tasks.iter().enumerate() {
                stmt.execute(params![run.run_id, t.id, i as i64, t.state.as_str(), encode(t)])
                    .map_err(|e| self.err(e))?;
            }
        }
        tx.commit().map_err(|e| self.err(e))
    }

    pub(super) fn apply_batch(&self, run_id: &str, batch: &Batch) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        self.check_file()?;
        let mut conn = self.conn.lock().unwrap();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(|e| self.err(e))?;
        if self.is_replay(&tx, run_id, batch)? {
            return Ok(());
        }
        if let Some(refused) = self.refusal(&tx, run_id, batch)? {
            return self.refuse(tx, run_id, batch, refused);
        }
        self.write_batch(&tx, run_id, batch)?;
        tx.commit().map_err(|e| self.err(e))
    }

    /// Whether `batch` is the batch applied last, sent again after its answer was lost.
    fn is_replay(&self, tx: &Transaction<'_>, run_id: &str, batch: &Batch) -> Result<bool, StoreError> {
        let Some(id) = &batch.id else { return Ok(false) };
        let last: Option<Option<String>> = tx
            .query_row("SELECT last_batch FROM runs WHERE run_id=?1", [run_id], |r| r.get(0))
            .optional()
            .map_err(|e| self.err(e))?;
        Ok(last.flatten().as_deref() == Some(id.as_str()))
    }

    /// Why `batch` may not be written, if it may not: another writer holds the run's lease
    /// (`Fenced`), or a task is not in the state the writer expects (`Conflict`).
    fn refusal(
        &self,
        tx: &Transaction<'_>,
        run_id: &str,
        batch: &Batch,
    ) -> Result<Option<StoreError>, StoreError> {
        if let Some(token) = &batch.lease {
            let held: Option<Option<String>> = tx
                .query_row("SELECT lease FROM runs WHERE run_id=?1", [run_id], |r| r.get(0))
                .optional()
                .map_err(|e| self.err(e))?;
            let Some(held) = held else { return Err(StoreError::NoSuchRun(run_id.into())) };
            if let Some(holder) = held.filter(|h| h != token) {
                return Ok(Some(StoreError::Fenced { run_id: run_id.into(), holder }));
            }
        }
        for (task, expected) in &batch.expect {
            let found: Option<String> = tx
                .query_row(
                    "SELECT state FROM tasks WHERE run_id=?1 AND task_id=?2",
                    params![run_id, task],
                    |r| r.get(0),
                )
                .optional()
                .map_err(|e| self.err(e))?;
            let found = found.unwrap_or_else(|| "absent".into());
            if found != expected.as_str() {
                return Ok(Some(StoreError::Conflict {
                    run_id: run_id.into(),
                    task: task.clone(),
                    expected: expected.as_str().into(),
                    found,
                }));
            }
        }
        Ok(None)
    }

    fn write_batch(&self, tx: &Transaction<'_>, run_id: &str, batch: &Batch) -> Result<(), StoreError> {
        if let Some(id) = &batch.id {
            tx.execute("UPDATE runs SET last_batch=?2 WHERE run_id=?1", params![run_id, id])
                .map_err(|e| self.err(e))?;
        }
        if let Some(run) = &batch.run {
            tx.execute(
                "UPDATE runs SET state=?2, doc=?3 WHERE run_id=?1",
                params![run_id, run.state.as_str(), encode(run)],
            )
            .map_err(|e| self.err(e))?;
        }
        if !batch.tasks.is_empty() {
            let mut stmt = tx
                .prepare_cached("UPDATE tasks SET state=?3, doc=?4 WHERE run_id=?1 AND task_id=?2")
                .map_err(|e| self.err(e))?;
            for t in &batch.tasks {
                stmt.execute(params![run_id, t.id, t.state.as_str(), encode(t)]).map_err(|e| self.err(e))?;
            }
        }
        if !batch.events.is_empty() {
            self.append_events(tx, run_id, &batch.events)?;
        }
        Ok(())
    }

    /// Records why a batch was refused (as a `write_rejected` event), commits that alone, and
    /// returns `err`.
    fn refuse(
        &self,
        tx: Transaction<'_>,
        run_id: &str,
        batch: &Batch,
        err: StoreError,
    ) -> Result<(), StoreError> {
        self.append_events(&tx, run_id, &[crate::store::rejection(run_id, batch)])?;
        tx.commit().map_err(|e| self.err(e))?;
        Err(err)
    }

    /// Appends `events` to the run's events, after its last one.
    pub(super) fn append_events(
        &self,
        tx: &Transaction<'_>,
        run_id: &str,
        events: &[Event],
    ) -> Result<(), StoreError> {
        let last: u64 = tx
            .query_row("SELECT COALESCE(MAX(seq), 0) FROM events WHERE run_id=?1", [run_id], |r| r.get(0))
            .map_err(|e| self.err(e))?;
        let mut stmt = tx
            .prepare_cached("INSERT INTO events(run_id, seq, doc) VALUES(?1, ?2, ?3)")
            .map_err(|e| self.err(e))?;
        for (i, ev) in events.iter().enumerate() {
            stmt.execute(params![run_id, last + 1 + i as u64, encode(ev)]).map_err(|e| self.err(e))?;
        }
        Ok(())
    }

    pub(super) fn read_run(&self, run_id: &str) -> Result<Option<RunRecord>, StoreError> {
        let conn = self.conn.lock().unwrap();
        let doc: Option<String> = conn
            .query_row("SELECT doc FROM runs WHERE run_id=?1", [run_id], |r| r.get(0))
            .optional()
            .map_err(|e| self.err(e))?;
        doc.map(|d| decode(|| format!("runs[{run_id}]"), &d)).transpose()
    }

    pub(super) fn read_tasks(&self, run_id: &str) -> Result<Vec<TaskReport>, StoreError> {
        let conn = self.conn.lock().unwrap();
        let mut stmt = conn
            .prepare_cached("SELECT task_id, doc FROM tasks WHERE run_id=?1 ORDER BY ord")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([run_id], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
            .map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for row in rows {
            let (id, doc) = row.map_err(|e| self.err(e))?;
            out.push(decode(|| format!("tasks[{run_id}/{id}]"), &doc)?);
        }
        Ok(out)
    }

    pub(super) fn read_runs(&self, limit: usize) -> Result<Vec<RunRecord>, StoreError> {
        let conn = self.conn.lock().unwrap();
        let mut stmt = conn
            .prepare_cached("SELECT run_id, doc FROM runs ORDER BY started_at DESC, run_id DESC LIMIT ?1")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([limit.min(i64::MAX as usize) as i64], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
            })
            .map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for row in rows {
            let (id, doc) = row.map_err(|e| self.err(e))?;
            out.push(decode(|| format!("runs[{id}]"), &doc)?);
        }
        Ok(out)
    }

    pub(super) fn read_events(
        &self,
        run_id: &str,
        after: u64,
        limit: usize,
    ) -> Result<Vec<(u64, Event)>, StoreError> {
        let conn = self.conn.lock().unwrap();
        let mut stmt = conn
            .prepare_cached("SELECT seq, doc FROM events WHERE run_id=?1 AND seq>?2 ORDER BY seq LIMIT ?3")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(params![run_id, after as i64, limit.min(i64::MAX as usize) as i64], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
            })
            .map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for row in rows {
            let (seq, doc) = row.map_err(|e| self.err(e))?;
            out.push((seq as u64, decode(|| format!("events[{run_id}/{seq}]"), &doc)?));
        }
        Ok(out)
    }

    pub(super) fn mark_cancel(&self, run_id: &str) -> Result<(), StoreError> {
        let conn = self.conn.lock().unwrap();
        let n = conn
            .execute("UPDATE runs SET cancel_requested=1 WHERE run_id=?1", [run_id])
            .map_err(|e| self.err(e))?;
        if n == 0 {
            return Err(StoreError::NoSuchRun(run_id.into()));
        }
        Ok(())
    }

    pub(super) fn read_cancel(&self, run_id: &str) -> Result<bool, StoreError> {
        let conn = self.conn.lock().unwrap();
        let v: Option<i64> = conn
            .query_row("SELECT cancel_requested FROM runs WHERE run_id=?1", [run_id], |r| r.get(0))
            .optional()
            .map_err(|e| self.err(e))?;
        Ok(v.unwrap_or(0) != 0)
    }

    pub(super) fn unmark_cancel(&self, run_id: &str) -> Result<(), StoreError> {
        let conn = self.conn.lock().unwrap();
        conn.execute("UPDATE runs SET cancel_requested=0 WHERE run_id=?1", [run_id])
            .map_err(|e| self.err(e))?;
        Ok(())
    }
}
