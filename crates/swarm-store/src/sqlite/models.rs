//! Model pacing on SQLite: cooldowns in `model_cooldowns`, recent requests in `model_requests`
//! (a group's shared window under the group's key), limits providers said in `model_learned`;
//! a reservation or a cooldown is one IMMEDIATE transaction on SQLite's clock.

use super::{SqliteStore, SELECT_NOW_MS};
use crate::models::{
    stored_cooldown, window_full, Bucket, Learned, ModelLimits, ModelStanding, Reservation, StandingQuery,
    DAY_MS, MAX_EXACT, MINUTE_MS, TRIM_MS,
};
use crate::store::StoreError;
use rusqlite::{params, OptionalExtension, TransactionBehavior};
use swarm_core::router::Cooldown;

/// Times and token counts as SQLite integers, held to what the Redis store keeps exactly.
fn to_db(v: u64) -> i64 {
    v.min(MAX_EXACT) as i64
}

/// What one window holds now.
struct Window {
    /// The last minute's requests `(at_ms, tokens)`, oldest first.
    minute: Vec<(u64, u64)>,
    day_requests: u64,
    day_tokens: u64,
}

impl SqliteStore {
    pub(super) fn reserve(
        &self,
        ns: &str,
        model: &str,
        tokens: u64,
        limits: &ModelLimits,
        groups: &[Bucket],
    ) -> Result<Reservation, StoreError> {
        let tokens = tokens.min(MAX_EXACT);
        self.check_file()?;
        let mut conn = self.conn.lock().unwrap();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(|e| self.err(e))?;
        let now: i64 = tx.query_row(SELECT_NOW_MS, [], |r| r.get(0)).map_err(|e| self.err(e))?;
        let buckets: Vec<(&str, &ModelLimits)> = std::iter::once((model, limits))
            .chain(groups.iter().map(|g| (g.key.as_str(), &g.limits)))
            .collect();
        for (key, _) in &buckets {
            tx.execute(
                "DELETE FROM model_requests WHERE namespace=?1 AND model=?2 AND at_ms<=?3",
                params![ns, key, now - TRIM_MS as i64],
            )
            .map_err(|e| self.err(e))?;
        }
        if let Some(cooldown) = self.cooldown_of(&tx, ns, model, now)? {
            tx.commit().map_err(|e| self.err(e))?;
            return Ok(Reservation::Cooling(cooldown));
        }
        // Of several full windows, the one that frees last: the request fits only once all have.
        let mut full: Option<(&'static str, u64)> = None;
        for (key, limits) in &buckets {
            if let Some((limit, at)) = self.full_at(&tx, ns, key, limits, tokens, now)? {
                if full.is_none_or(|(_, seen)| at > seen) {
                    full = Some((limit, at));
                }
            }
        }
        if let Some((limit, free_at_ms)) = full {
            tx.commit().map_err(|e| self.err(e))?;
            return Ok(Reservation::Full { limit, free_at_ms });
        }
        for (key, _) in &buckets {
            tx.execute(
                "INSERT INTO model_requests(namespace, model, at_ms, tokens) VALUES(?1, ?2, ?3, ?4)",
                params![ns, key, now, to_db(tokens)],
            )
            .map_err(|e| self.err(e))?;
        }
        tx.commit().map_err(|e| self.err(e))?;
        Ok(Reservation::Granted { at_ms: now as u64 })
    }

    /// The limit one more request of `tokens` would pass in window `key`, and when it frees.
    fn full_at(
        &self,
        tx: &rusqlite::Transaction<'_>,
        ns: &str,
        key: &str,
        limits: &ModelLimits,
        tokens: u64,
        now: i64,
    ) -> Result<Option<(&'static str, u64)>, StoreError> {
        let limits = &ModelLimits { tpm: limits.tpm.map(|t| t.min(MAX_EXACT)), ..*limits };
        let day_start = day_start(limits, now);
        // Only what the limits need is read: an unlimited model's window is never scanned.
        let minute = (limits.rpm.is_some() || limits.tpm.is_some()).then_some(now);
        let day = limits.rpd.is_some().then_some(day_start);
        if minute.is_none() && day.is_none() {
            return Ok(None);
        }
        let w = self.window(tx, ns, key, minute, day)?;
        window_full(limits, tokens, &w.minute, w.day_requests, |i| {
            tx.query_row(
                "SELECT at_ms FROM model_requests WHERE namespace=?1 AND model=?2 AND at_ms>?3
                 ORDER BY at_ms, rowid LIMIT 1 OFFSET ?4",
                params![ns, key, day_start, to_db(i)],
                |r| r.get::<_, i64>(0),
            )
            .map(|at| at as u64)
            .map_err(|e| self.err(e))
        })
    }

    /// Window `key`'s requests: the minute's before `now` and the day's (after `day_start`);
    /// a part not asked for (`None`) is left empty.
    fn window(
        &self,
        tx: &rusqlite::Transaction<'_>,
        ns: &str,
        key: &str,
        now: Option<i64>,
        day_start: Option<i64>,
    ) -> Result<Window, StoreError> {
        let mut w = Window { minute: vec![], day_requests: 0, day_tokens: 0 };
        if let Some(now) = now {
            w.minute = self.minute(tx, ns, key, now)?;
        }
        if let Some(day_start) = day_start {
            let (requests, tokens): (i64, i64) = tx
                .query_row(
                    "SELECT COUNT(*), COALESCE(SUM(tokens), 0) FROM model_requests
                     WHERE namespace=?1 AND model=?2 AND at_ms>?3",
                    params![ns, key, day_start],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .map_err(|e| self.err(e))?;
            (w.day_requests, w.day_tokens) = (requests as u64, tokens as u64);
        }
        Ok(w)
    }

    /// The last minute's requests `(at_ms, tokens)` of window `key`, oldest first.
    fn minute(
        &self,
        tx: &rusqlite::Transaction<'_>,
        ns: &str,
        key: &str,
        now: i64,
    ) -> Result<Vec<(u64, u64)>, StoreError> {
        let mut stmt = tx
            .prepare_cached(
                "SELECT at_ms, tokens FROM model_requests WHERE namespace=?1 AND model=?2 AND at_ms>?3
                 ORDER BY at_ms, rowid",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(params![ns, key, now - MINUTE_MS as i64], |r| {
                Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64))
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(e))
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

    pub(super) fn standings(
        &self,
        ns: &str,
        queries: &[StandingQuery],
    ) -> Result<Vec<ModelStanding>, StoreError> {
        let mut conn = self.conn.lock().unwrap();
        // One read transaction: every window is read at the same `now`.
        let tx = conn.transaction().map_err(|e| self.err(e))?;
        let now: i64 = tx.query_row(SELECT_NOW_MS, [], |r| r.get(0)).map_err(|e| self.err(e))?;
        let mut out = Vec::with_capacity(queries.len());
        for q in queries {
            let w = self.window(&tx, ns, &q.key, Some(now), Some(day_start(&q.limits, now)))?;
            let frees_at_ms = self.full_at(&tx, ns, &q.key, &q.limits, 1, now)?.map(|(_, at)| at);
            out.push(ModelStanding {
                model: q.key.clone(),
                cooldown: self.cooldown_of(&tx, ns, &q.key, now)?,
                minute_requests: w.minute.len() as u64,
                minute_tokens: w.minute.iter().map(|(_, t)| t).sum(),
                day_requests: w.day_requests,
                day_tokens: w.day_tokens,
                frees_at_ms,
                learned: self.learned_of(&tx, ns, &q.key)?,
                now_ms: now as u64,
            });
        }
        tx.commit().map_err(|e| self.err(e))?;
        Ok(out)
    }

    fn learned_of(
        &self,
        tx: &rusqlite::Transaction<'_>,
        ns: &str,
        model: &str,
    ) -> Result<Option<Learned>, StoreError> {
        tx.query_row(
            "SELECT rpm, rpd, source FROM model_learned WHERE namespace=?1 AND model=?2",
            params![ns, model],
            |r| {
                let limit = |v: Option<i64>| v.map(|v| v.clamp(0, u32::MAX as i64) as u32);
                Ok(Learned { rpm: limit(r.get(0)?), rpd: limit(r.get(1)?), source: r.get(2)? })
            },
        )
        .optional()
        .map_err(|e| self.err(e))
    }

    pub(super) fn learn(&self, ns: &str, model: &str, learned: &Learned) -> Result<(), StoreError> {
        self.check_file()?;
        let conn = self.conn.lock().unwrap();
        let now: i64 = conn.query_row(SELECT_NOW_MS, [], |r| r.get(0)).map_err(|e| self.err(e))?;
        conn.execute(
            "INSERT INTO model_learned(namespace, model, rpm, rpd, source, at_ms) VALUES(?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT(namespace, model) DO UPDATE SET rpm=COALESCE(excluded.rpm, rpm),
             rpd=COALESCE(excluded.rpd, rpd), source=excluded.source, at_ms=excluded.at_ms",
            params![ns, model, learned.rpm, learned.rpd, learned.source, now],
        )
        .map_err(|e| self.err(e))?;
        Ok(())
    }
}

/// Where window `limits`' day begins (exclusive): the provider's day start, else 24 h ago.
fn day_start(limits: &ModelLimits, now: i64) -> i64 {
    match limits.day {
        Some(d) => to_db(d.start_ms) - 1,
        None => now - DAY_MS as i64,
    }
}
