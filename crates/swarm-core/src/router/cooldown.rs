//! A model left alone for a while, by every process on the store: cooling down after a rate
//! limit, a quota or an overload, or disabled after a failure that does not mend itself within
//! minutes (a refused key, billing, an unknown model id).

use serde::{Deserialize, Serialize};

/// How long a model disabled by one run is left alone by the others on the store.
pub const DISABLED_FOR_MS: u64 = 15 * 60 * 1000;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cooldown {
    /// The store's clock, ms since the Unix epoch.
    pub until_ms: u64,
    pub kind: CooldownKind,
    /// For people: the failure class of a cooling model (`rate_limited`, …), what is wrong with
    /// a disabled one.
    pub reason: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CooldownKind {
    /// Passes with time: a rate limit, a quota, an overload.
    Cooling,
    /// Needs a person: the run that saw it stops using the model, the others leave it alone for
    /// [`DISABLED_FOR_MS`].
    Disabled,
}

impl CooldownKind {
    pub fn as_str(self) -> &'static str {
        match self {
            CooldownKind::Cooling => "cooling",
            CooldownKind::Disabled => "disabled",
        }
    }

    pub fn parse(s: &str) -> Option<CooldownKind> {
        match s {
            "cooling" => Some(CooldownKind::Cooling),
            "disabled" => Some(CooldownKind::Disabled),
            _ => None,
        }
    }
}

impl Cooldown {
    pub fn cooling(until_ms: u64, reason: impl Into<String>) -> Cooldown {
        Cooldown { until_ms, kind: CooldownKind::Cooling, reason: reason.into() }
    }

    /// Disabled from `now_ms` on, for [`DISABLED_FOR_MS`].
    pub fn disabled(now_ms: u64, reason: impl Into<String>) -> Cooldown {
        Cooldown {
            until_ms: now_ms.saturating_add(DISABLED_FOR_MS),
            kind: CooldownKind::Disabled,
            reason: reason.into(),
        }
    }

    pub fn is_disabled(&self) -> bool {
        self.kind == CooldownKind::Disabled
    }

    /// Still in force at `now_ms`.
    pub fn lasts(&self, now_ms: u64) -> bool {
        self.until_ms > now_ms
    }
}
