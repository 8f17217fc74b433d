//! The webhook: every hook event POSTed as JSON, retried with backoff on connection errors and
//! 5xx answers; shown by its origin only (never its path or credentials).

use super::{HookResult, Webhook, WEBHOOK_BACKOFF};
use crate::os::net::is_loopback;
use std::time::Duration;

/// POSTs `body` to the webhook; retries connection errors, timeouts, 408, 429 and 5xx answers.
pub(super) fn post(hook: &Webhook, body: &[u8]) -> (HookResult, u32) {
    // A proxy from the environment cannot reach this machine's loopback: talk to it directly.
    let proxy = if is_loopback(&hook.url) { None } else { ureq::Proxy::try_from_env() };
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(hook.timeout))
        .http_status_as_error(false)
        .proxy(proxy)
        .user_agent(format!("swarm/{}", env!("CARGO_PKG_VERSION")))
        .build()
        .new_agent();
    let mut delays = WEBHOOK_BACKOFF.iter(fastrand::u64(..));
    let mut tries = 0;
    loop {
        tries += 1;
        let answer = agent.post(&hook.url).header("content-type", "application/json").send(body);
        let (error, retry) = match answer {
            Ok(response) => {
                let status = response.status().as_u16();
                if (200..300).contains(&status) {
                    return (HookResult::Ok, tries);
                }
                (format!("HTTP {status}"), status >= 500 || status == 408 || status == 429)
            }
            Err(ureq::Error::Timeout(_)) => {
                (format!("no answer within {}", swarm_core::duration::format(hook.timeout)), true)
            }
            // The URL may carry a secret; errors may quote it.
            Err(e) => (e.to_string().replace(&hook.url, &hook.origin), !matches!(e, ureq::Error::BadUri(_))),
        };
        if !retry || tries > hook.retries {
            return (HookResult::WebhookFailed { error }, tries);
        }
        std::thread::sleep(delays.next().unwrap_or_default());
    }
}

/// The longest delay before webhook retry `n`, jitter included.
pub(super) fn longest_backoff(n: u32) -> Duration {
    let b = WEBHOOK_BACKOFF;
    let base = (b.initial.as_secs_f64() * b.factor.powi(n.saturating_sub(1).min(64) as i32))
        .min(b.max.as_secs_f64());
    Duration::from_secs_f64(base * (1.0 + b.jitter))
}
