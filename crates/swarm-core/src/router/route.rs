//! Which model serves one request now: the first model of the task's layers that is allowed,
//! not cooling down, not disabled, has room in its declared limits and a large enough window;
//! else a wait for the one that frees up first (within `max_wait`), else `models_exhausted`.

use super::catalog::Catalog;
use super::cooldown::Cooldown;
use std::time::Duration;

/// Per-minute windows (rpm, tpm) hold at most a minute of requests, so a full one has room again
/// a minute from now at the latest, whatever the store's windowing.
const MINUTE_MS: u64 = 60_000;

/// How one model stands now (the gateway fills it from the store and its own run state).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Standing {
    /// The model is left alone until then (shared by every process on the store): cooling
    /// down, or disabled by a run that saw it fail for good.
    pub cooldown: Option<Cooldown>,
    /// Disabled for this run, with the reason (auth, billing, model_not_found).
    pub disabled: Option<String>,
    /// Requests and tokens in the current minute window, requests in the current day window.
    pub minute_requests: u64,
    pub minute_tokens: u64,
    pub day_requests: u64,
    /// When the minute windows have room again, if the store said (its answer to a refused
    /// reservation). None: a minute from now, when every request now in a minute window has
    /// left it.
    pub minute_frees_at_ms: Option<u64>,
    /// Limits the provider itself said (in a 429: `limit: 20`), used instead of the declared.
    pub learned_rpm: Option<u32>,
    pub learned_rpd: Option<u32>,
    /// When the model's day ends (the provider's next midnight): a spent daily quota frees then.
    pub day_resets_at_ms: Option<u64>,
    /// A group whose shared limit the model counts against is full.
    pub group_full: Option<GroupFull>,
}

/// A group's shared limit, spent for now.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct GroupFull {
    pub group: String,
    /// Its daily limit (else a per-minute one).
    pub per_day: bool,
    /// When it has room again, if known.
    pub frees_at_ms: Option<u64>,
}

/// One request to route.
#[derive(Debug, Clone, PartialEq)]
pub struct RouteRequest {
    /// The task's tier: the first layer it may use (default 1).
    pub start_layer: u8,
    /// The request's size (see [`super::estimate_tokens`]).
    pub est_tokens: u64,
    pub now_ms: u64,
    pub allow_paid: bool,
    /// Models that already failed this very request.
    pub tried: Vec<usize>,
    /// After `context_too_long`: only models whose window is larger than this.
    pub needs_larger_than: Option<u64>,
    pub spent_usd: f64,
    pub budget_usd: Option<f64>,
    pub spent_tokens: u64,
    pub budget_tokens: Option<u64>,
    pub max_wait_ms: u64,
}

/// The answer for one request.
#[derive(Debug, Clone, PartialEq)]
pub enum Route {
    /// Send it to `model`; `skipped` are the models before it and why each was passed over.
    Use { model: usize, skipped: Vec<(usize, Skip)> },
    /// No model can take it now, but `model` frees up at `until_ms`, within `max_wait`: wait,
    /// then route again.
    Wait { until_ms: u64, model: usize },
    /// No model can take it within `max_wait` (reason `models_exhausted`): `why` says what
    /// stands in the way, in one sentence; `frees_at_ms` is when the first model frees up, if
    /// any will.
    Exhausted { why: String, frees_at_ms: Option<u64> },
}

/// Why a model was passed over (the first reason that applies, in this order: below the tier,
/// tried, disabled, paid, too small, daily limit, cooling, per-minute limits).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skip {
    Cooling {
        until_ms: u64,
    },
    Disabled,
    OverRpm {
        frees_at_ms: Option<u64>,
    },
    OverRpd,
    OverTpm,
    /// A group's shared limit (per minute, or per day).
    OverGroup {
        per_day: bool,
    },
    Paid,
    ContextTooSmall,
    Tried,
    BelowTier,
}

impl Skip {
    pub fn as_str(self) -> &'static str {
        match self {
            Skip::Cooling { .. } => "cooling",
            Skip::Disabled => "disabled",
            Skip::OverRpm { .. } => "over_rpm",
            Skip::OverRpd => "over_rpd",
            Skip::OverTpm => "over_tpm",
            Skip::OverGroup { .. } => "over_group",
            Skip::Paid => "paid",
            Skip::ContextTooSmall => "context_too_small",
            Skip::Tried => "tried",
            Skip::BelowTier => "below_tier",
        }
    }
}

impl std::fmt::Display for Skip {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

const IDLE: Standing = Standing {
    cooldown: None,
    disabled: None,
    minute_requests: 0,
    minute_tokens: 0,
    day_requests: 0,
    minute_frees_at_ms: None,
    learned_rpm: None,
    learned_rpd: None,
    day_resets_at_ms: None,
    group_full: None,
};

/// Picks the model for one request. `standings[i]` is how model `i` of `catalog` stands (a
/// missing one is idle). A model at its rpm is full: the gateway's reservation counts too.
pub fn route(catalog: &Catalog, standings: &[Standing], req: &RouteRequest) -> Route {
    if let Some(why) = budget_spent(req) {
        return Route::Exhausted { why, frees_at_ms: None };
    }
    let mut skipped = Vec::new();
    // The model that frees up first, among those only temporarily blocked.
    let mut soonest: Option<(u64, usize)> = None;
    for i in 0..catalog.models.len() {
        match assess(catalog, standings.get(i).unwrap_or(&IDLE), req, i) {
            None => return Route::Use { model: i, skipped },
            Some((skip, frees)) => {
                if let Some(at) = frees {
                    if soonest.is_none_or(|(s, _)| at < s) {
                        soonest = Some((at, i));
                    }
                }
                skipped.push((i, skip));
            }
        }
    }
    match soonest {
        Some((until_ms, model)) if until_ms - req.now_ms <= req.max_wait_ms => {
            Route::Wait { until_ms, model }
        }
        _ => Route::Exhausted {
            why: exhausted_why(catalog, req, &skipped, soonest.map(|(at, _)| at)),
            frees_at_ms: soonest.map(|(at, _)| at),
        },
    }
}

/// One attempt of an agent that cannot use the gateway (it talks to a provider itself, for the
/// whole attempt).
#[derive(Debug, Clone, PartialEq)]
pub struct AttemptRequest {
    /// The task's tier: the first layer it may use (default 1).
    pub start_layer: u8,
    pub now_ms: u64,
    pub allow_paid: bool,
    /// Models an earlier attempt of the task failed on for the model's sake.
    pub failed: Vec<usize>,
    pub max_wait_ms: u64,
    pub spent_usd: f64,
    pub budget_usd: Option<f64>,
    pub spent_tokens: u64,
    pub budget_tokens: Option<u64>,
}

/// The model for one whole attempt: the same rule as for a request ([`route`]) — shared
/// cooldowns, disabled models, rpm/rpd limits, the spend gate, the task's tier — with the models
/// that already failed the task for the model's sake left out. The attempt's size is unknown, so
/// no token or context check applies.
pub fn route_attempt(catalog: &Catalog, standings: &[Standing], req: &AttemptRequest) -> Route {
    let request = RouteRequest {
        start_layer: req.start_layer,
        est_tokens: 0,
        now_ms: req.now_ms,
        allow_paid: req.allow_paid,
        tried: req.failed.clone(),
        needs_larger_than: None,
        spent_usd: req.spent_usd,
        budget_usd: req.budget_usd,
        spent_tokens: req.spent_tokens,
        budget_tokens: req.budget_tokens,
        max_wait_ms: req.max_wait_ms,
    };
    route(catalog, standings, &request)
}

/// Why model `i` cannot take the request now, and when it can if only time stands in the way
/// (None: usable now).
fn assess(catalog: &Catalog, s: &Standing, req: &RouteRequest, i: usize) -> Option<(Skip, Option<u64>)> {
    let m = &catalog.models[i];
    let now = req.now_ms;
    let permanent = |skip| Some((skip, None));
    if m.layer < req.start_layer {
        return permanent(Skip::BelowTier);
    }
    if req.tried.contains(&i) {
        return permanent(Skip::Tried);
    }
    let disabled_here = s.cooldown.as_ref().is_some_and(|c| c.is_disabled() && c.lasts(now));
    if s.disabled.is_some() || disabled_here {
        return permanent(Skip::Disabled);
    }
    if m.paid && !req.allow_paid {
        return permanent(Skip::Paid);
    }
    if let Some(context) = m.context {
        if context < req.est_tokens || req.needs_larger_than.is_some_and(|n| context <= n) {
            return permanent(Skip::ContextTooSmall);
        }
    }
    if s.learned_rpd.or(m.rpd).is_some_and(|rpd| s.day_requests >= u64::from(rpd)) {
        // Spent for the day: it frees at the provider's next midnight (if that is known).
        return Some((Skip::OverRpd, s.day_resets_at_ms.filter(|&t| t > now)));
    }
    // What is left passes with time; the model frees up once every one of them has.
    let mut first: Option<Skip> = None;
    let mut frees = Some(now);
    let mut wait_until = |skip: Skip, at: Option<u64>| {
        first.get_or_insert(skip);
        frees = frees.zip(at).map(|(a, b)| a.max(b));
    };
    if let Some(until_ms) = s.cooldown.as_ref().filter(|c| c.lasts(now)).map(|c| c.until_ms) {
        wait_until(Skip::Cooling { until_ms }, Some(until_ms));
    }
    // A picture a moment old may show a full minute whose oldest request has left since: the
    // model has room now (the reservation checks it for sure). Assuming a whole minute instead
    // left slots idle for up to 60 s while requests waited (bench/models.sh).
    let freed = s.minute_frees_at_ms.is_some_and(|t| t <= now);
    let minute_free = s.minute_frees_at_ms.filter(|&t| t > now).unwrap_or(now.saturating_add(MINUTE_MS));
    if !freed && s.learned_rpm.or(m.rpm).is_some_and(|rpm| s.minute_requests >= u64::from(rpm)) {
        wait_until(Skip::OverRpm { frees_at_ms: Some(minute_free) }, Some(minute_free));
    }
    if let Some(tpm) = m.tpm {
        if req.est_tokens > tpm {
            // No minute will ever hold it.
            wait_until(Skip::OverTpm, None);
        } else if !freed && s.minute_tokens.saturating_add(req.est_tokens) > tpm {
            wait_until(Skip::OverTpm, Some(minute_free));
        }
    }
    if let Some(g) = &s.group_full {
        wait_until(Skip::OverGroup { per_day: g.per_day }, g.frees_at_ms.filter(|&t| t > now));
    }
    first.map(|skip| (skip, frees))
}

fn budget_spent(req: &RouteRequest) -> Option<String> {
    budget_spent_why(req.spent_usd, req.budget_usd, req.spent_tokens, req.budget_tokens)
}

/// Why nothing more may be spent, once a run's budget (USD or tokens) is used up: the one
/// wording of the spend gate, for the router and the run's ledger alike.
pub fn budget_spent_why(
    spent_usd: f64,
    budget_usd: Option<f64>,
    spent_tokens: u64,
    budget_tokens: Option<u64>,
) -> Option<String> {
    if let Some(budget) = budget_usd.filter(|&b| spent_usd >= b) {
        return Some(format!("the run's budget of ${budget:.2} is spent (${spent_usd:.2} used)"));
    }
    if let Some(budget) = budget_tokens.filter(|&b| spent_tokens >= b) {
        return Some(format!("the run's budget of {budget} tokens is spent ({spent_tokens} used)"));
    }
    None
}

/// One sentence naming every kind of obstacle, e.g. "every allowed model is cooling down or at
/// its limit; the first frees up at 12:03:10 UTC (in 2m5s, past max_wait 1m)".
fn exhausted_why(
    catalog: &Catalog,
    req: &RouteRequest,
    skipped: &[(usize, Skip)],
    frees: Option<u64>,
) -> String {
    if catalog.is_empty() {
        return "no model hierarchy is configured ([models] layers is empty)".into();
    }
    let mut count = [0usize; 8];
    let kinds = [
        "cooling down",
        "at their per-minute limit",
        "at their daily limit",
        "disabled for this run",
        "paid while allow_paid is off",
        "with too small a context window",
        "already failed this request",
    ];
    for (_, skip) in skipped {
        let k = match skip {
            Skip::Cooling { .. } => 0,
            Skip::OverRpm { .. } | Skip::OverTpm | Skip::OverGroup { per_day: false } => 1,
            Skip::OverRpd | Skip::OverGroup { per_day: true } => 2,
            Skip::Disabled => 3,
            Skip::Paid => 4,
            Skip::ContextTooSmall => 5,
            Skip::Tried => 6,
            Skip::BelowTier => 7,
        };
        count[k] += 1;
    }
    let candidates: usize = count[..7].iter().sum();
    let mut why = if candidates == 0 {
        format!(
            "no model is in layer {} or later (the task's tier; the hierarchy has {} layers)",
            req.start_layer.max(1),
            catalog.layers()
        )
    } else if count[4] == candidates {
        "only paid models are left and allow_paid is off (set `allow_paid = true` in [models] or run with --allow-paid)"
            .into()
    } else if count[..2].iter().sum::<usize>() == candidates {
        "every allowed model is cooling down or at its limit".into()
    } else {
        let parts: Vec<String> = kinds
            .iter()
            .zip(count)
            .filter(|(_, n)| *n > 0)
            .map(|(kind, n)| {
                let kind = if n == 1 { kind.replace("their", "its") } else { kind.to_string() };
                format!("{n} {kind}")
            })
            .collect();
        let context = if count[5] > 0 {
            format!(" (the request is ~{} tokens)", req.est_tokens)
        } else {
            String::new()
        };
        format!(
            "no model of layer {} or later can take this request: {}{context}",
            req.start_layer.max(1),
            parts.join(", ")
        )
    };
    if let Some(at) = frees {
        let wait = Duration::from_millis(at.saturating_sub(req.now_ms).div_ceil(1000) * 1000);
        why.push_str(&format!(
            "; the first frees up at {} (in {}, past max_wait {})",
            clock(at.div_ceil(1000) * 1000, req.now_ms),
            crate::duration::format(wait),
            crate::duration::format(Duration::from_millis(req.max_wait_ms)),
        ));
    }
    why
}

/// `12:03:10 UTC`, with the date when it is not today's.
fn clock(at_ms: u64, now_ms: u64) -> String {
    let at = |ms: u64| chrono::DateTime::from_timestamp_millis(ms.min(i64::MAX as u64) as i64);
    match (at(at_ms), at(now_ms)) {
        (Some(t), Some(now)) if t.date_naive() == now.date_naive() => t.format("%H:%M:%S UTC").to_string(),
        (Some(t), _) => t.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
        (None, _) => format!("{at_ms} ms after the epoch"),
    }
}
