//! A provider's declared limits (`limits = { rpm, rpd, tpm }`), enforced over sliding windows of
//! a minute and a day.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::scenario::Limits;

/// The requests one model served in the last day: when, and how many prompt tokens.
#[derive(Debug, Default)]
pub struct Window {
    served: Mutex<VecDeque<(Instant, u64)>>,
}

impl Window {
    /// Whether one more request of `tokens` passes `limits`; if it does, it is recorded. `Some((what,
    /// seconds until enough of the window frees))` when it does not.
    #[cfg(test)]
    pub fn admit(&self, limits: &Limits, tokens: u64) -> Option<(String, u64)> {
        admit_all(&[(self, limits, "")], tokens)
    }

    /// What of `limits` one more request of `tokens` would pass at `now`, if any (the window
    /// trimmed to the last day meanwhile).
    fn over(&self, limits: &Limits, tokens: u64, now: Instant) -> Option<(String, u64)> {
        let (minute, day) = (Duration::from_secs(60), Duration::from_secs(86_400));
        let mut w = self.served.lock().unwrap_or_else(|e| e.into_inner());
        while w.front().is_some_and(|(at, _)| now.duration_since(*at) >= day) {
            w.pop_front();
        }
        let recent: Vec<(Instant, u64)> =
            w.iter().copied().filter(|(at, _)| now.duration_since(*at) < minute).collect();
        let secs_until = |at: Instant, span: Duration| {
            (span.saturating_sub(now.duration_since(at)).as_millis() as u64).div_ceil(1000).max(1)
        };
        if let Some(rpm) = limits.rpm.filter(|&l| recent.len() as u64 >= l) {
            let oldest = recent[recent.len() - rpm as usize].0;
            return Some((format!("limit {rpm} requests per minute"), secs_until(oldest, minute)));
        }
        if let Some(rpd) = limits.rpd.filter(|&l| w.len() as u64 >= l) {
            let oldest = w[w.len() - rpd as usize].0;
            return Some((format!("limit {rpd} requests per day"), secs_until(oldest, day)));
        }
        let tpm = limits.tpm?;
        let used: u64 = recent.iter().map(|(_, t)| t).sum();
        if used + tokens <= tpm {
            return None;
        }
        // When enough of the minute's tokens have aged out.
        let mut freed = 0;
        let need = used + tokens - tpm;
        let at = recent.iter().find(|(_, t)| {
            freed += t;
            freed >= need
        });
        let wait = at.map_or(60, |(at, _)| secs_until(*at, minute));
        Some((format!("limit {tpm} tokens per minute"), wait))
    }

    fn record(&self, now: Instant, tokens: u64) {
        self.served.lock().unwrap_or_else(|e| e.into_inner()).push_back((now, tokens));
    }
}

/// Whether one more request of `tokens` passes every window's limits (a model's own, then the
/// shared ones of its groups, each with its name for the message); if it does, it is recorded
/// in all of them, atomically. The first limit it would pass, and when that one frees, if not.
pub fn admit_all(windows: &[(&Window, &Limits, &str)], tokens: u64) -> Option<(String, u64)> {
    static GATE: Mutex<()> = Mutex::new(());
    let _gate = GATE.lock().unwrap_or_else(|e| e.into_inner());
    let now = Instant::now();
    for (window, limits, group) in windows {
        if let Some((what, wait)) = window.over(limits, tokens, now) {
            let whose = if group.is_empty() { String::new() } else { format!(" shared by group `{group}`") };
            return Some((format!("{what}{whose}"), wait));
        }
    }
    for (window, _, _) in windows {
        window.record(now, tokens);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_per_minute_then_tokens() {
        let window = Window::default();
        let rpm = Limits { rpm: Some(2), ..Limits::default() };
        assert_eq!(window.admit(&rpm, 1), None);
        assert_eq!(window.admit(&rpm, 1), None);
        let (what, wait) = window.admit(&rpm, 1).unwrap();
        assert_eq!(what, "limit 2 requests per minute");
        assert!((1..=60).contains(&wait));
        let tokens = Window::default();
        let tpm = Limits { tpm: Some(100), ..Limits::default() };
        assert_eq!(tokens.admit(&tpm, 80), None);
        assert_eq!(tokens.admit(&tpm, 30).unwrap().0, "limit 100 tokens per minute");
    }

    #[test]
    fn a_group_window_is_shared_and_a_refusal_records_nothing() {
        let (a, b, group) = (Window::default(), Window::default(), Window::default());
        let own = Limits { rpm: Some(5), ..Limits::default() };
        let shared = Limits { rpm: Some(2), ..Limits::default() };
        assert_eq!(admit_all(&[(&a, &own, ""), (&group, &shared, "free")], 1), None);
        assert_eq!(admit_all(&[(&b, &own, ""), (&group, &shared, "free")], 1), None);
        let (what, _) = admit_all(&[(&a, &own, ""), (&group, &shared, "free")], 1).unwrap();
        assert_eq!(what, "limit 2 requests per minute shared by group `free`");
        assert_eq!(a.served.lock().unwrap().len(), 1, "the refused request was not counted");
    }
}
