//! Shared model pacing: the declared limits of a model, what a reservation answers, how a model
//! stands, and the sliding-window rule both backends apply (SQLite in Rust with
//! [`window_full`], Redis in `redis_store/lua/model_reserve.lua`; the conformance suite holds
//! them to the same answers).

use swarm_core::router::{Cooldown, CooldownKind};

/// Length of the per-minute window (rpm, tpm), ms: a provider's minute and 200 ms.
/// Requests reach the provider a moment after swarm counts them, some later than others (a new
/// connection, a slow hop): a slot counted back exactly 60 s after the earlier request was
/// counted can reach the provider less than 60 s after it arrived there, and be refused
/// (bench/models.sh saw it: 429s 10-20 ms inside the provider's minute). Every slot is used
/// that much after the provider frees it: 500 ms chained into 2 s stretches of idle capacity in
/// the bench, 200 ms is ten times the skew seen. Keep in step with
/// `MINUTE` in redis_store/lua/model_window.lua.
pub const MINUTE_MS: u64 = 60_200;
/// Length of the per-day window (rpd), ms; requests older than this are trimmed.
pub const DAY_MS: u64 = 86_400_000;
/// `free_at_ms` of a request that no window can ever hold.
pub const NEVER: u64 = u64::MAX;
/// Times, token counts and limits are held to 2^53 (Redis scripts count in doubles), on both
/// backends alike: a cooldown "until u64::MAX" lasts until 2^53 ms, some 285,000 years.
pub(crate) const MAX_EXACT: u64 = 1 << 53;

/// A cooldown as a backend holds it: `kind` is `cooling` or `disabled`; records written before
/// kinds were stored said a disabled model's kind in its reason (`disabled: …`).
pub(crate) fn stored_cooldown(until_ms: u64, kind: Option<&str>, reason: &str) -> Cooldown {
    match (kind.and_then(CooldownKind::parse), reason.strip_prefix("disabled: ")) {
        (Some(kind), _) => Cooldown { until_ms, kind, reason: reason.to_string() },
        (None, Some(legacy)) => {
            Cooldown { until_ms, kind: CooldownKind::Disabled, reason: legacy.to_string() }
        }
        (None, None) => Cooldown::cooling(until_ms, reason),
    }
}

/// Declared limits of a model (None = not limited).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ModelLimits {
    /// Requests in the last 60 s.
    pub rpm: Option<u32>,
    /// Requests in the day: the provider's day when `day` is given, else the last 24 h.
    pub rpd: Option<u32>,
    /// Tokens in the last 60 s.
    pub tpm: Option<u64>,
    /// The provider's day now (store clock): rpd counts from its start and frees at its end.
    pub day: Option<DayWindow>,
}

/// One provider day, `[start_ms, end_ms)`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DayWindow {
    pub start_ms: u64,
    pub end_ms: u64,
}

/// A limit several models share (a provider account's bucket), counted under its own key
/// beside each model's: a reservation must fit every bucket it names, and is recorded in all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bucket {
    pub key: String,
    pub limits: ModelLimits,
}

/// One window to read: a model's (its id) or a group's (its key), with the limits to say when
/// it frees up by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StandingQuery {
    pub key: String,
    pub limits: ModelLimits,
}

impl StandingQuery {
    /// Usage only, no limits (nothing is ever full).
    pub fn plain(key: impl Into<String>) -> StandingQuery {
        StandingQuery { key: key.into(), limits: ModelLimits::default() }
    }
}

/// Limits a provider said itself (a 429's `limit: 20`), kept for every process on the store.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Learned {
    pub rpm: Option<u32>,
    pub rpd: Option<u32>,
    /// Where it was learned, for people (`429 from gemini/gemini-2.5-flash: limit: 20 per day`).
    pub source: String,
}

/// Requests are kept this long: a provider's day is at most 25 hours (the day summer time
/// ends), and a rolling day 24.
pub const TRIM_MS: u64 = DAY_MS + 2 * 3_600_000;

/// The answer to [`crate::Store::model_reserve`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reservation {
    /// Recorded: one request of `tokens` at `at_ms` (store clock).
    Granted { at_ms: u64 },
    /// The model is left alone until the cooldown ends (store clock).
    Cooling(Cooldown),
    /// One more request would pass `limit` ("rpm", "rpd" or "tpm"); the window frees enough at
    /// `free_at_ms` (store clock). Of several full windows, the one that frees last (the
    /// request fits only once all of them do). [`NEVER`] when no window can ever hold it (a
    /// limit of 0, or one request of more tokens than `tpm`).
    Full { limit: &'static str, free_at_ms: u64 },
}

/// How a model stands in a namespace now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModelStanding {
    pub model: String,
    /// Set only while the cooldown lasts (later than `now_ms`).
    pub cooldown: Option<Cooldown>,
    /// Requests and their tokens recorded in the last 60 s.
    pub minute_requests: u64,
    pub minute_tokens: u64,
    /// Requests and their tokens recorded in the day (the query's provider day, else 24 h).
    pub day_requests: u64,
    pub day_tokens: u64,
    /// When one more request fits again, when one does not now (by the query's limits).
    pub frees_at_ms: Option<u64>,
    /// Limits the provider said itself.
    pub learned: Option<Learned>,
    /// The store's clock when this was read.
    pub now_ms: u64,
}

/// The limit one more request of `tokens` would pass, and when its window frees enough, if any.
/// `minute` holds the requests `(at_ms, tokens)` recorded in the last 60 s, oldest first;
/// `day_requests` counts those of the last 24 h, and `day_at(i)` gives the time of the i-th
/// oldest of them (asked only when rpd is reached). A request is in a window while
/// `now < at + window`, so it leaves at `at + window`.
pub(crate) fn window_full<E>(
    limits: &ModelLimits,
    tokens: u64,
    minute: &[(u64, u64)],
    day_requests: u64,
    day_at: impl FnOnce(u64) -> Result<u64, E>,
) -> Result<Option<(&'static str, u64)>, E> {
    let rpm = limits.rpm.and_then(|l| must_leave(l, minute.len() as u64)).map(|i| match i {
        Some(i) => minute[i as usize].0.saturating_add(MINUTE_MS),
        None => NEVER,
    });
    let rpd = match (limits.rpd.and_then(|l| must_leave(l, day_requests)), limits.day) {
        // A provider's day frees all at once, at its end.
        (Some(Some(_)), Some(day)) => Some(day.end_ms),
        (Some(Some(i)), None) => Some(day_at(i)?.saturating_add(DAY_MS)),
        (Some(None), _) => Some(NEVER),
        (None, _) => None,
    };
    let tpm = limits.tpm.and_then(|tpm| {
        let used = minute.iter().fold(0u64, |sum, (_, t)| sum.saturating_add(*t));
        if used.saturating_add(tokens) <= tpm {
            return None;
        }
        let mut left = used;
        for (at, t) in minute {
            left = left.saturating_sub(*t);
            if left.saturating_add(tokens) <= tpm {
                return Some(at.saturating_add(MINUTE_MS));
            }
        }
        Some(NEVER) // more tokens than even an empty window holds
    });
    // The request fits only once every full window has freed enough: name the last to.
    Ok([("rpm", rpm), ("rpd", rpd), ("tpm", tpm)]
        .into_iter()
        .filter_map(|(limit, at)| at.map(|at| (limit, at)))
        .fold(None, |last, (limit, at)| match last {
            Some((_, seen)) if seen >= at => last,
            _ => Some((limit, at)),
        }))
}

/// For a window holding `n` requests with room for `limit`: `None` if one more fits, else
/// `Some(index)` (oldest first) of the request whose leaving makes room, or `Some(None)` when
/// nothing ever will (a limit of 0).
fn must_leave(limit: u32, n: u64) -> Option<Option<u64>> {
    let limit = u64::from(limit);
    (n >= limit).then(|| (limit > 0).then(|| n - limit))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(rpm: Option<u32>, rpd: Option<u32>, tpm: Option<u64>) -> ModelLimits {
        ModelLimits { rpm, rpd, tpm, day: None }
    }

    /// `window_full` with one list of requests for both windows.
    fn full(limits: &ModelLimits, tokens: u64, w: &[(u64, u64)]) -> Option<(&'static str, u64)> {
        window_full(limits, tokens, w, w.len() as u64, |i| Ok::<_, ()>(w[i as usize].0)).unwrap()
    }

    #[test]
    fn unlimited_is_never_full() {
        let many: Vec<(u64, u64)> = (0..1000).map(|i| (i, 1_000_000)).collect();
        assert_eq!(full(&ModelLimits::default(), u64::MAX, &many), None);
    }

    #[test]
    fn counts_free_with_the_request_that_must_leave() {
        let w = [(10, 1), (20, 1), (30, 1)];
        assert_eq!(full(&limits(Some(4), None, None), 1, &w), None);
        assert_eq!(full(&limits(Some(3), None, None), 1, &w), Some(("rpm", 10 + MINUTE_MS)));
        // A limit lowered below what is recorded: two must leave.
        assert_eq!(full(&limits(Some(2), None, None), 1, &w), Some(("rpm", 20 + MINUTE_MS)));
        assert_eq!(full(&limits(None, Some(3), None), 1, &w), Some(("rpd", 10 + DAY_MS)));
        assert_eq!(full(&limits(Some(0), None, None), 1, &[]), Some(("rpm", NEVER)));
    }

    #[test]
    fn tokens_free_once_enough_have_left() {
        let w = [(10, 10), (20, 40), (30, 50)];
        let tpm = limits(None, None, Some(100));
        assert_eq!(full(&tpm, 0, &w), None, "exactly at the limit fits");
        assert_eq!(full(&tpm, 10, &w), Some(("tpm", 10 + MINUTE_MS)));
        assert_eq!(full(&tpm, 45, &w), Some(("tpm", 20 + MINUTE_MS)));
        assert_eq!(full(&tpm, 100, &w), Some(("tpm", 30 + MINUTE_MS)));
        assert_eq!(full(&tpm, 101, &[]), Some(("tpm", NEVER)));
    }

    #[test]
    fn the_window_that_frees_last_is_named() {
        let w = [(10, 10), (20, 10)];
        assert_eq!(full(&limits(Some(2), Some(2), Some(5)), 1, &w), Some(("rpd", 10 + DAY_MS)));
        assert_eq!(full(&limits(Some(2), None, Some(5)), 1, &w), Some(("tpm", 20 + MINUTE_MS)));
        assert_eq!(
            full(&limits(Some(2), None, Some(15)), 1, &w),
            Some(("rpm", 10 + MINUTE_MS)),
            "a tie names rpm"
        );
    }
}
