//! `[providers.NAME]`: an endpoint agents and the gateway reach, what it speaks, its key's
//! variable, whether it costs money, when its day begins and how long its answers may take.

use crate::duration;
use serde::Deserialize;
use std::time::Duration;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderConfig {
    /// What the provider speaks: one of [`PROVIDER_KINDS`].
    pub kind: String,
    pub base_url: Option<String>,
    pub api_key_env: Option<String>,
    #[serde(default)]
    pub models: Vec<String>,
    /// Whether this provider's models cost money (default: yes). A model's own
    /// `[models.limits."ID"] paid` wins over it.
    pub paid: Option<bool>,
    /// The time zone whose midnight starts the provider's day for daily quotas (an IANA name;
    /// default `America/Los_Angeles` for Gemini's API, UTC otherwise).
    pub day_reset: Option<String>,
    /// How long the gateway waits for the provider's first byte (the answer's headers, and for
    /// a stream its first chunk) before the model counts as overloaded and the request moves on.
    #[serde(default, with = "duration::opt_serde")]
    pub first_byte_timeout: Option<Duration>,
    /// How long an answer may stall between two chunks before it is given up.
    #[serde(default, with = "duration::opt_serde")]
    pub idle_timeout: Option<Duration>,
}

/// A streamed answer's first chunk comes within seconds from a healthy provider.
pub const FIRST_BYTE_TIMEOUT_STREAM: Duration = Duration::from_secs(60);
/// A whole answer at once may take minutes to generate: Codex waits 300 s for one
/// (OPENAI_TIMEOUT_MS in codex-rs/core/src/flags.rs).
pub const FIRST_BYTE_TIMEOUT_WHOLE: Duration = Duration::from_secs(300);
/// A stream that stops for two minutes has stalled (Codex allows 300 s before it reconnects:
/// OPENAI_STREAM_IDLE_TIMEOUT_MS; the gateway can move a request on, so it gives up sooner).
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(120);

impl ProviderConfig {
    /// How long to wait for the first byte of an answer (streamed or whole).
    pub fn first_byte_timeout(&self, streaming: bool) -> Duration {
        let default = if streaming { FIRST_BYTE_TIMEOUT_STREAM } else { FIRST_BYTE_TIMEOUT_WHOLE };
        self.first_byte_timeout.unwrap_or(default)
    }

    /// How long an answer may stall between chunks.
    pub fn idle_timeout(&self) -> Duration {
        self.idle_timeout.unwrap_or(IDLE_TIMEOUT)
    }

    /// Where the provider's day begins: its `day_reset`, else Gemini's Pacific midnight for a
    /// Gemini provider (by kind or by Google's API host), else UTC.
    pub fn day_reset(&self) -> crate::router::DayReset {
        if let Some(d) = self.day_reset.as_deref().and_then(crate::router::DayReset::parse) {
            return d;
        }
        let google = self.kind == "gemini"
            || self.base_url.as_deref().is_some_and(|u| u.contains("generativelanguage.googleapis.com"));
        if google {
            return crate::router::DayReset::parse(GEMINI_DAY_RESET).unwrap_or_default();
        }
        crate::router::DayReset::default()
    }
}

/// The provider kinds swarm knows. The gateway speaks Anthropic Messages to an `anthropic`
/// provider, Gemini `generateContent` to a `gemini` one (unless its `base_url` is Gemini's
/// OpenAI-compatible endpoint, `…/openai`), and OpenAI Chat to the others, including kinds it
/// does not know (`ollama`, `groq`, …).
pub const PROVIDER_KINDS: &[&str] = &["openai-compatible", "openai", "openrouter", "anthropic", "gemini"];

/// Gemini API daily quotas reset at midnight Pacific time (ai.google.dev/gemini-api/docs/rate-limits).
pub const GEMINI_DAY_RESET: &str = "America/Los_Angeles";
