//! Model pacing on SQLite: cooldowns in `model_cooldowns`, recent requests in `model_requests`;
//! a reservation or a cooldown is one IMMEDIATE transaction on SQLite's clock.

use super::{SqliteStore, SELECT_NOW_MS};
use crate::models::{
    stored_cooldown, window_full, ModelLimits, ModelStanding, Reservation, DAY_MS, MAX_EXACT, MINUTE_MS,
};
use crate::store::StoreError;
use rusqlite::{params, OptionalExtension, TransactionBehavior};
use swarm_core::router::Cooldown;

/// Times and token counts as SQLite integers, held to what the Redis store keeps exactly.
fn to_db(v: u64) -> i64 {
    v.min(MAX_EXACT) as i64
}

impl SqliteStore {
    pub(super) fn reserve(
        &self,
        ns: &str,
        model: &str,
        tokens: u64,
        limits: &ModelLimits,
    ) -> Result<Reservation, StoreError> {
        let tokens = tokens.min(MAX_EXACT);
        let limits = &ModelLimits { tpm: limits.tpm.map(|t| t.min(MAX_EXACT)), ..*limits };
        self.check_file()?;
        let mut conn = self.conn.lock().unwrap();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(|e| self.err(e))?;
        let now: i64 = tx.query_row(SELECT_NOW_MS, [], |r| r.get(0)).map_err(|e| self.err(e))?;
        let (minute_start, day_start) = (now - MINUTE_MS as i64, now - DAY_MS as i64);
        tx.execute(
            "DELETE FROM model_requests WHERE namespace=?1 AND model=?2 AND at_ms<=?3",
            params![ns, model, day_start],
        )
        .map_err(|e| self.err(e))?;
        if let Some(cooldown) = self.cooldown_of(&tx, ns, model, now)? {
            tx.commit().map_err(|e| self.err(e))?;
            return Ok(Reservation::Cooling(cooldown));
        }
        let minute: Vec<(u64, u64)> = {
            let mut stmt = tx
                .prepare_cached(
                    "SELECT at_ms, tokens FROM model_requests WHERE namespace=?1 AND model=?2 AND at_ms>?3
                     ORDER BY at_ms, rowid",
                )
                .map_err(|e| self.err(e))?;
            let rows = stmt
                .query_map(params![ns, model, minute_start], |r| {
                    Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64))
                })
                .map_err(|e| self.err(e))?;
            rows.collect::<Result<_, _>>().map_err(|e| self.err(e))?
        };
        let day_requests: i64 = tx
            .query_row(
                "SELECT COUNT(*) FROM model_requests WHERE namespace=?1 AND model=?2 AND at_ms>?3",
                params![ns, model, day_start],
                |r| r.get(0),
            )
            .map_err(|e| self.err(e))?;
        let full = window_full(limits, tokens, &minute, day_requests as u64, |i| {
            tx.query_row(
                "SELECT at_ms FROM model_requests WHERE namespace=?1 AND model=?2 AND at_ms>?3
                 ORDER BY at_ms, rowid LIMIT 1 OFFSET ?4",
                params![ns, model, day_start, to_db(i)],
                |r| r.get::<_, i64>(0),
            )
            .map(|at| at as u64)
            .map_err(|e| self.err(e))
        })?;
        if let Some((limit, free_at_ms)) = full {
            tx.commit().map_err(|e| self.err(e))?;
            return Ok(Reservation::Full { limit, free_at_ms });
        }
        tx.execute(
            "INSERT INTO model_requests(namespace, model, at_ms, tokens) VALUES(?1, ?2, ?3, ?4)",
            params![ns, model, now, to_db(tokens)],
        )
        .map_err(|e| self.err(e))?;
        tx.commit().map_err(|e| self.err(e))?;
        Ok(Reservation::Granted { at_ms: now as u64 })
    }

    /// The cooldown of `model` still in force at `now`, if any.
    fn cooldown_of(
        &self,
        tx: &rusqlite::Transaction<'_>,
        ns: &str,
        model: &str,
        now: i64,
    ) -> Result<Option<Cooldown>, StoreError> {
        let row: Option<(i64, Option<String>, String)> = tx
            .query_row(
                "SELECT until_ms, kind, reason FROM model_cooldowns WHERE namespace=?1 AND model=?2 AND until_ms>?3",
                params![ns, model, now],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()
            .map_err(|e| self.err(e))?;
        Ok(row.map(|(until, kind, reason)| stored_cooldown(until as u64, kind.as_deref(), &reason)))
    }

    pub(super) fn cool(&self, ns: &str, model: &str, cooldown: &Cooldown) -> Result<(), StoreError> {
        self.check_file()?;
        let mut conn = self.conn.lock().unwrap();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(|e| self.err(e))?;
        let now: i64 = tx.query_row(SELECT_NOW_MS, [], |r| r.get(0)).map_err(|e| self.err(e))?;
        let until = to_db(cooldown.until_ms);
        if until <= now {
            return Ok(()); // over already: nothing to keep
        }
        // An expired cooldown is replaced whatever its length; a live one only by a longer one.
        tx.execute(
            "INSERT INTO model_cooldowns(namespace, model, until_ms, reason, kind) VALUES(?1, ?2, ?3, ?4, ?5)
             ON CONFLICT(namespace, model) DO UPDATE
             SET until_ms=excluded.until_ms, reason=excluded.reason, kind=excluded.kind
             WHERE excluded.until_ms > model_cooldowns.until_ms",
            params![ns, model, until, cooldown.reason, cooldown.kind.as_str()],
        )
        .map_err(|e| self.err(e))?;
        tx.commit().map_err(|e| self.err(e))
    }

    pub(super) fn standings(&self, ns: &str, models: &[String]) -> Result<Vec<ModelStanding>, StoreError> {
        let mut conn = self.conn.lock().unwrap();
        // One read transaction: every model is read at the same `now`.
        let tx = conn.transaction().map_err(|e| self.err(e))?;
        let now: i64 = tx.query_row(SELECT_NOW_MS, [], |r| r.get(0)).map_err(|e| self.err(e))?;
        let mut out = Vec::with_capacity(models.len());
        for model in models {
            let cooldown = self.cooldown_of(&tx, ns, model, now)?;
            let (minute_requests, minute_tokens, day_requests, day_tokens): (i64, i64, i64, i64) = tx
                .query_row(
                    "SELECT COALESCE(SUM(at_ms>?3), 0), COALESCE(SUM(CASE WHEN at_ms>?3 THEN tokens END), 0),
                            COUNT(*), COALESCE(SUM(tokens), 0)
                     FROM model_requests WHERE namespace=?1 AND model=?2 AND at_ms>?4",
                    params![ns, model, now - MINUTE_MS as i64, now - DAY_MS as i64],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
                )
                .map_err(|e| self.err(e))?;
            out.push(ModelStanding {
                model: model.clone(),
                cooldown,
                minute_requests: minute_requests as u64,
                minute_tokens: minute_tokens as u64,
                day_requests: day_requests as u64,
                day_tokens: day_tokens as u64,
                now_ms: now as u64,
            });
        }
        tx.commit().map_err(|e| self.err(e))?;
        Ok(out)
    }
}
