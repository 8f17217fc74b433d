//! What a provider's failure does to the model that answered it: cool it down (for how long),
//! disable it, look for a larger window, or pass the failure to the agent.

use super::cooldown::Cooldown;
use crate::failure::FailureClass;

/// What happens to a model after a failed request (the gateway's) or attempt (an agent's own).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Policy {
    /// Leave the model alone until the cooldown ends, in every process on the store; a disabled
    /// one also for the rest of the run that saw it (say so once, loudly). The request (or the
    /// next attempt) goes to the next model.
    Cool(Cooldown),
    /// The request does not fit: route it again to a model with a larger window.
    TryLarger,
    /// Not the model's fault: the agent gets the failure.
    PassThrough,
}

/// `rate_limited`: 30 s, doubling on each repeat, at most 10 min.
const RATE_LIMITED: (u64, u64) = (30_000, 600_000);
/// `overloaded`: 10 s, doubling on each repeat, at most 2 min.
const OVERLOADED: (u64, u64) = (10_000, 120_000);
/// Cooldowns are spread ±20% so processes sharing a model don't all come back at once.
const JITTER: f64 = 0.2;
/// A quota still used up after the first reset we assumed is probed again this often.
const QUOTA_PROBE_MS: u64 = 3_600_000;
const DAY_MS: u64 = 86_400_000;

/// The policy for a failure of `class` on a model. `retry_after_ms` is the provider's
/// `retry-after` (a duration), `repeats` how many times in a row the model failed this way
/// before (0 the first time), `jitter` a random number in [0, 1).
///
/// - `rate_limited`: with a `retry-after`, cool for it (× 2^repeats when the model keeps
///   refusing, at most 10 min or the retry-after itself; spread up to +20%, never sooner): a
///   model cooled longer than its provider asked sits idle while requests wait (bench/models.sh
///   measured 29 s idle per 429 with the old 30 s floor). Without one, 30 s × 2^repeats up to
///   10 min, ±20%.
/// - `quota_exhausted`: the day's quota is used up. The first time, cool until the provider's
///   next midnight (`day_ends_ms`: Gemini resets at Pacific midnight, OpenRouter at UTC's; UTC
///   midnight when unknown), or a later `retry-after`. A shorter one is not when the quota comes
///   back: Gemini says "Please retry in 17.7s" on a spent per-day quota too (its 429 bodies in
///   continuedev/continue#9645). When the quota is still used up
///   after that (a repeat), probe again hourly (or at retry-after, if later), so a provider that
///   resets later than we were told costs at most an hour, not another day.
/// - `overloaded`: a short cooldown: max(retry-after, 10 s × 2^repeats up to 2 min, ±20%).
/// - `billing`, `auth`, `model_not_found`: disable the model (see [`Cooldown::disabled`]).
/// - `context_too_long`: a model with a larger window.
/// - `agent_error`, `crashed`: passed through.
pub fn policy(
    class: FailureClass,
    retry_after_ms: Option<u64>,
    repeats: u32,
    now_ms: u64,
    jitter: f64,
    day_ends_ms: Option<u64>,
) -> Policy {
    let after = |ms: u64| now_ms.saturating_add(ms);
    let retry_after = retry_after_ms.unwrap_or(0);
    let cool = |until_ms: u64| Policy::Cool(Cooldown::cooling(until_ms, class.as_str()));
    let disable = |reason: &str| Policy::Cool(Cooldown::disabled(now_ms, reason));
    match class {
        FailureClass::RateLimited => cool(after(match retry_after_ms {
            Some(ms) => said(ms, repeats, jitter),
            None => grown(RATE_LIMITED, repeats, jitter),
        })),
        FailureClass::Overloaded => cool(after(grown(OVERLOADED, repeats, jitter).max(retry_after))),
        FailureClass::QuotaExhausted => {
            let midnight = day_ends_ms.filter(|&t| t > now_ms).unwrap_or((now_ms / DAY_MS + 1) * DAY_MS);
            let until_ms = match (repeats, retry_after_ms) {
                (0, _) => midnight.max(after(retry_after)),
                _ => midnight.min(after(QUOTA_PROBE_MS)).max(after(retry_after)),
            };
            cool(until_ms)
        }
        FailureClass::Billing => {
            disable("billing: the provider asks for payment or credits before it serves this model")
        }
        FailureClass::Auth => {
            disable("auth: the provider refused the API key (check the provider's api_key_env)")
        }
        FailureClass::ModelNotFound => {
            disable("model_not_found: the provider does not know this model id (check [models] layers)")
        }
        FailureClass::ContextTooLong => Policy::TryLarger,
        FailureClass::AgentError | FailureClass::Crashed => Policy::PassThrough,
    }
}

/// `base × 2^repeats`, at most `cap`, then spread by ±[`JITTER`] (`jitter` 0 → −20%, → 1 → +20%).
fn grown((base, cap): (u64, u64), repeats: u32, jitter: f64) -> u64 {
    let doubled = base.saturating_mul(1u64.checked_shl(repeats).unwrap_or(u64::MAX));
    let capped = doubled.min(cap) as f64;
    let spread = 1.0 - JITTER + 2.0 * JITTER * jitter.clamp(0.0, 1.0);
    (capped * spread).round() as u64
}

/// The provider's `retry-after` (`ms`), doubled per repeat up to the 10 min cap (or `ms` when
/// longer), spread up to +[`JITTER`]: never sooner than it said.
fn said(ms: u64, repeats: u32, jitter: f64) -> u64 {
    let doubled = ms.saturating_mul(1u64.checked_shl(repeats).unwrap_or(u64::MAX));
    let capped = doubled.min(RATE_LIMITED.1.max(ms)) as f64;
    (capped * (1.0 + JITTER * jitter.clamp(0.0, 1.0))).round() as u64
}

/// A request's size in tokens, estimated from its bytes: about 4 bytes a token, rounded up.
pub fn estimate_tokens(request_bytes: usize) -> u64 {
    request_bytes.div_ceil(4) as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::router::{CooldownKind, DISABLED_FOR_MS};
    use FailureClass::*;

    const NOW: u64 = 1_750_000_000_000; // 2025-06-15T15:06:40Z

    fn cool(p: Policy) -> u64 {
        match p {
            Policy::Cool(c) if !c.is_disabled() => c.until_ms - NOW,
            other => panic!("expected a cooldown, got {other:?}"),
        }
    }

    #[test]
    fn rate_limited_grows_doubling_up_to_ten_minutes() {
        let mid = |repeats| cool(policy(RateLimited, None, repeats, NOW, 0.5, None));
        assert_eq!(
            [0, 1, 2, 3, 4, 5, 6, 40, u32::MAX].map(mid),
            [30_000, 60_000, 120_000, 240_000, 480_000, 600_000, 600_000, 600_000, 600_000]
        );
    }

    #[test]
    fn rate_limited_cools_as_long_as_the_provider_said() {
        assert_eq!(cool(policy(RateLimited, Some(90_000), 0, NOW, 0.0, None)), 90_000);
        // Its word, not 30 s: a model cooled longer than it asked idles while requests wait.
        assert_eq!(cool(policy(RateLimited, Some(1_000), 0, NOW, 0.0, None)), 1_000);
        // Refused again after waiting as told: it grows from there, up to 10 minutes.
        assert_eq!(cool(policy(RateLimited, Some(1_000), 2, NOW, 0.0, None)), 4_000);
        assert_eq!(cool(policy(RateLimited, Some(1_000), 30, NOW, 0.0, None)), 600_000);
        // Spread only upwards: never sooner than it said, at most 20% later.
        let spread = cool(policy(RateLimited, Some(1_000), 0, NOW, 0.99, None));
        assert!((1_000..=1_200).contains(&spread), "{spread}");
        assert_eq!(cool(policy(RateLimited, Some(3_600_000), 9, NOW, 0.0, None)), 3_600_000);
    }

    #[test]
    fn jitter_stays_within_twenty_percent() {
        for class in [RateLimited, Overloaded] {
            for repeats in [0, 1, 3, 10] {
                let at = |j| cool(policy(class, None, repeats, NOW, j, None));
                let base = at(0.5) as f64;
                let (lo, hi) = (at(0.0) as f64, at(0.999_999) as f64);
                assert!((lo - base * 0.8).abs() <= 1.0, "{class} {repeats}: {lo} vs {base}");
                assert!(hi <= base * 1.2 + 1.0 && hi >= base * 1.199, "{class} {repeats}: {hi} vs {base}");
                for j in [0.1, 0.3, 0.7, 0.9] {
                    let d = at(j) as f64;
                    assert!(d >= lo && d <= hi, "{class} {repeats} {j}: {d}");
                }
                // Out-of-range jitter is clamped.
                assert_eq!(at(-3.0), at(0.0));
                assert!(at(7.0) as f64 <= base * 1.2 + 1.0);
            }
        }
    }

    #[test]
    fn overloaded_is_short_and_capped_at_two_minutes() {
        let mid = |repeats| cool(policy(Overloaded, None, repeats, NOW, 0.5, None));
        assert_eq!(
            [0, 1, 2, 3, 4, 63, 64].map(mid),
            [10_000, 20_000, 40_000, 80_000, 120_000, 120_000, 120_000]
        );
        assert_eq!(cool(policy(Overloaded, Some(300_000), 0, NOW, 0.5, None)), 300_000);
    }

    #[test]
    fn quota_cools_until_the_next_utc_midnight_or_a_later_retry_after() {
        let midnight = 1_750_032_000_000; // 2025-06-16T00:00:00Z
        let quota = |until_ms| Policy::Cool(Cooldown::cooling(until_ms, "quota_exhausted"));
        assert_eq!(policy(QuotaExhausted, None, 0, NOW, 0.3, None), quota(midnight));
        // Gemini's "retry in 17s" on a spent day is not the day's end.
        assert_eq!(policy(QuotaExhausted, Some(17_000), 0, NOW, 0.3, None), quota(midnight));
        let two_days = 2 * DAY_MS;
        assert_eq!(policy(QuotaExhausted, Some(two_days), 0, NOW, 0.3, None), quota(NOW + two_days));
        // Exactly at midnight: the next one.
        assert_eq!(policy(QuotaExhausted, None, 0, midnight, 0.3, None), quota(midnight + DAY_MS));
        // Still used up after the reset we assumed: probe hourly, never past the next midnight.
        assert_eq!(cool(policy(QuotaExhausted, None, 1, NOW, 0.3, None)), 3_600_000);
        assert_eq!(cool(policy(QuotaExhausted, Some(7_200_000), 2, NOW, 0.3, None)), 7_200_000);
        let late = midnight - 600_000;
        assert_eq!(policy(QuotaExhausted, None, 3, late, 0.3, None), quota(midnight));
    }

    #[test]
    fn quota_cools_until_the_providers_own_midnight() {
        // Gemini's day ends at 08:00 UTC in winter: not at 00:00 UTC, 8 hours early.
        let pacific_midnight = 1_750_057_200_000; // 2025-06-16T07:00:00Z (PDT)
        let quota = |until_ms| Policy::Cool(Cooldown::cooling(until_ms, "quota_exhausted"));
        assert_eq!(
            policy(QuotaExhausted, None, 0, NOW, 0.3, Some(pacific_midnight)),
            quota(pacific_midnight)
        );
        // A day end already past is no day end.
        assert_eq!(policy(QuotaExhausted, None, 0, NOW, 0.3, Some(NOW - 1)), quota(1_750_032_000_000));
    }

    #[test]
    fn billing_auth_and_unknown_models_are_disabled_with_a_reason() {
        for (class, word) in [(Billing, "billing"), (Auth, "auth"), (ModelNotFound, "model_not_found")] {
            match policy(class, Some(1_000), 3, NOW, 0.5, None) {
                Policy::Cool(Cooldown { until_ms, kind: CooldownKind::Disabled, reason }) => {
                    assert!(reason.starts_with(word), "{reason}");
                    assert!(reason.len() > word.len() + 10, "a human reason: {reason}");
                    assert_eq!(until_ms, NOW + DISABLED_FOR_MS);
                }
                other => panic!("{class}: {other:?}"),
            }
        }
    }

    #[test]
    fn model_level_classes_are_exactly_those_the_policy_acts_on() {
        for class in [
            RateLimited,
            QuotaExhausted,
            Billing,
            Overloaded,
            Auth,
            ContextTooLong,
            ModelNotFound,
            AgentError,
            Crashed,
        ] {
            let acts = policy(class, None, 0, NOW, 0.5, None) != Policy::PassThrough;
            assert_eq!(class.is_model_level(), acts, "{class}");
        }
    }

    #[test]
    fn context_wants_a_larger_model_and_agent_failures_pass_through() {
        assert_eq!(policy(ContextTooLong, None, 0, NOW, 0.5, None), Policy::TryLarger);
        assert_eq!(policy(AgentError, Some(1), 0, NOW, 0.5, None), Policy::PassThrough);
        assert_eq!(policy(Crashed, None, 5, NOW, 0.5, None), Policy::PassThrough);
    }

    #[test]
    fn tokens_are_about_four_bytes_rounded_up() {
        assert_eq!([0, 1, 3, 4, 5, 8, 4001].map(estimate_tokens), [0, 1, 1, 1, 2, 2, 1001]);
    }
}
