//! `[hooks]`: the commands and the webhook that hear of task and run ends.

use super::defaults;
use crate::duration;
use serde::Deserialize;
use std::time::Duration;

/// `[hooks]`: shell commands run (and a webhook called) when tasks and runs end. A hook that
/// fails or hangs is reported as a warning and never holds up the run.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HooksConfig {
    /// Run (`sh -c`) after every task reaches a final state, with the task's JSON on stdin.
    pub on_task_end: Option<String>,
    /// Run after a task fails or is blocked.
    pub on_failure: Option<String>,
    /// Run when the run ends, with the run report's JSON on stdin.
    pub on_run_end: Option<String>,
    /// A hook command still running after this is killed with its whole process group (default 30s).
    #[serde(default, with = "duration::opt_serde")]
    pub timeout: Option<Duration>,
    /// `http://` or `https://` URL that receives every hook event as a JSON POST.
    pub webhook: Option<String>,
    /// Time allowed for one webhook request (default 10s).
    #[serde(default, with = "duration::opt_serde")]
    pub webhook_timeout: Option<Duration>,
    /// Extra tries after a connection error or a 5xx answer (default 3).
    pub webhook_retries: Option<u32>,
}

impl HooksConfig {
    pub fn timeout(&self) -> Duration {
        self.timeout.unwrap_or(defaults::HOOK_TIMEOUT)
    }

    pub fn webhook_timeout(&self) -> Duration {
        self.webhook_timeout.unwrap_or(defaults::WEBHOOK_TIMEOUT)
    }

    pub fn webhook_retries(&self) -> u32 {
        self.webhook_retries.unwrap_or(defaults::WEBHOOK_RETRIES)
    }

    pub(super) fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (key, value) in [
            ("on_task_end", &self.on_task_end),
            ("on_failure", &self.on_failure),
            ("on_run_end", &self.on_run_end),
        ] {
            if value.as_deref().is_some_and(|c| c.trim().is_empty()) {
                out.push(format!("hooks.{key} must not be empty (leave it out to run nothing)"));
            }
        }
        for (key, value) in [("timeout", self.timeout), ("webhook_timeout", self.webhook_timeout)] {
            if value == Some(Duration::ZERO) {
                out.push(format!("hooks.{key} must be longer than 0s"));
            }
        }
        if let Some(url) = &self.webhook {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                out.push(format!("hooks.webhook must be an http:// or https:// URL, not `{url}`"));
            }
        }
        out
    }
}
