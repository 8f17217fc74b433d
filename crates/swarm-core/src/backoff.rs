//! Retry delays: exponential backoff with jitter, as an iterator.

use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    pub initial: Duration,
    pub factor: f64,
    pub max: Duration,
    /// Fraction of each delay that is randomised: 0.25 gives a delay in [0.75d, 1.25d].
    pub jitter: f64,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff { initial: Duration::from_secs(2), factor: 2.0, max: Duration::from_secs(120), jitter: 0.25 }
    }
}

impl Backoff {
    /// The delay before retry number `n` (1 = the first retry), jittered with `rng`.
    pub fn delay(&self, n: u32, rng: &mut fastrand::Rng) -> Duration {
        let base = self.initial.as_secs_f64() * self.factor.powi(n.saturating_sub(1).min(64) as i32);
        let base = base.min(self.max.as_secs_f64());
        let spread = base * self.jitter.clamp(0.0, 1.0);
        let jittered = base - spread + rng.f64() * 2.0 * spread;
        Duration::from_secs_f64(jittered.max(0.0))
    }

    pub fn iter(self, seed: u64) -> BackoffIter {
        BackoffIter { backoff: self, n: 0, rng: fastrand::Rng::with_seed(seed) }
    }
}

pub struct BackoffIter {
    backoff: Backoff,
    n: u32,
    rng: fastrand::Rng,
}

impl Iterator for BackoffIter {
    type Item = Duration;
    fn next(&mut self) -> Option<Duration> {
        self.n += 1;
        Some(self.backoff.delay(self.n, &mut self.rng))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_and_caps_within_jitter() {
        let b = Backoff {
            initial: Duration::from_secs(1),
            factor: 2.0,
            max: Duration::from_secs(5),
            jitter: 0.25,
        };
        let delays: Vec<f64> = b.iter(7).take(6).map(|d| d.as_secs_f64()).collect();
        for (i, d) in delays.iter().enumerate() {
            let base = (2f64.powi(i as i32)).min(5.0);
            assert!(*d >= base * 0.75 - 1e-9 && *d <= base * 1.25 + 1e-9, "delay {i} = {d}");
        }
    }

    #[test]
    fn zero_jitter_is_exact() {
        let b = Backoff {
            initial: Duration::from_millis(100),
            factor: 3.0,
            max: Duration::from_secs(1),
            jitter: 0.0,
        };
        let d: Vec<u128> = b.iter(1).take(4).map(|d| d.as_millis()).collect();
        assert_eq!(d, vec![100, 300, 900, 1000]);
    }
}
