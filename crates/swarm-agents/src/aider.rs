//! Aider: `aider --yes-always --no-auto-commits … [--model M] --message=PROMPT`, plain text
//! output. Aider exits 0 even when every model call failed, so its errors must come from its
//! text: `litellm.RateLimitError: …` lines (aider prints `str(exception)`, see
//! aider/exceptions.py and Coder.send_message) and `Model X has hit a token limit!`
//! (Coder.show_exhausted_error). Usage comes from the per-message report
//! `Tokens: 1.2k sent, 300 received. Cost: $0.01 message, $0.02 session.`
//! (Coder.calculate_and_show_tokens_and_cost).
//!
//! With a provider from `swarm.toml`: HOME/XDG private to the attempt, the model as
//! `openai/MODEL` with `--openai-api-base URL` (`gemini/…`, `anthropic/…`, `openrouter/…` for
//! those kinds), and the provider's key copied into `OPENAI_API_KEY` (or the kind's variable) by a
//! `/bin/sh` wrapper. `--env-file` points into the attempt dir so a `.env` in the repository can
//! never replace that key.

use crate::adapter::{Adapter, AdapterError, AgentOutput, AttemptSpec, Launch};
use crate::launch::{isolated_home, locate_binary, make_dir, with_key_from_env};
use crate::output::error_from;
use swarm_core::event::Stream;
use swarm_core::failure::FailureClass;

pub struct AiderAdapter;

impl AiderAdapter {
    /// Aider's exit code says nothing: an attempt that printed an error line failed even when the
    /// process exited 0. (The executor must ask `classify` on exit 0 for adapters that say so.)
    pub const FAILS_WITH_EXIT_ZERO: bool = true;
}

/// Model prefix and key variable litellm uses for a provider kind.
fn litellm_for(kind: &str) -> (&'static str, &'static str) {
    match kind {
        "anthropic" => ("anthropic", "ANTHROPIC_API_KEY"),
        "gemini" | "google" => ("gemini", "GEMINI_API_KEY"),
        "openrouter" => ("openrouter", "OPENROUTER_API_KEY"),
        _ => ("openai", "OPENAI_API_KEY"),
    }
}

impl Adapter for AiderAdapter {
    fn name(&self) -> &str {
        "aider"
    }

    fn exit_zero_may_fail(&self) -> bool {
        Self::FAILS_WITH_EXIT_ZERO
    }

    fn launch(&self, spec: &AttemptSpec<'_>) -> Result<Launch, AdapterError> {
        let program = locate_binary("aider", "aider", spec)?;
        let env_dir = make_dir("aider", &spec.attempt_dir.join("aider"))?;
        let mut env = vec![
            ("PWD".to_string(), spec.workdir.display().to_string()),
            ("NO_COLOR".into(), "1".into()),
            ("AIDER_ANALYTICS".into(), "false".into()),
        ];
        let mut args: Vec<String> = [
            "--yes-always",
            "--no-auto-commits",
            "--no-dirty-commits",
            "--no-check-update",
            "--no-show-model-warnings",
            "--no-pretty",
            "--no-stream",
            "--no-fancy-input",
            "--no-gitignore",
            "--analytics-disable",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        for (flag, file) in [
            ("--env-file", "aider.env"),
            ("--input-history-file", "input.history"),
            ("--chat-history-file", "chat.history.md"),
        ] {
            args.extend([flag.to_string(), format!("{env_dir}/{file}")]);
        }
        let (program, mut args) = match &spec.provider {
            Some(p) => {
                env.extend(isolated_home("aider", spec)?);
                let (prefix, key_var) = litellm_for(&p.kind);
                args.extend(["--model".into(), format!("{prefix}/{}", p.model)]);
                if let Some(url) = &p.base_url {
                    match prefix {
                        "openai" => args.extend(["--openai-api-base".into(), url.clone()]),
                        "anthropic" => env.push(("ANTHROPIC_API_BASE".into(), url.clone())),
                        "gemini" => env.push(("GEMINI_API_BASE".into(), url.clone())),
                        _ => env.push(("OPENROUTER_API_BASE".into(), url.clone())),
                    }
                }
                with_key_from_env("aider", program, args, key_var, &p.api_key_env)?
            }
            None => {
                if let Some(m) = spec.model {
                    args.extend(["--model".into(), m.to_string()]);
                }
                (program, args)
            }
        };
        args.push(format!("--message={}", spec.prompt));
        Ok(Launch::in_workdir(spec, program, args, env))
    }

    /// One line of aider's text output.
    fn parse_line(&self, _stream: Stream, line: &str) -> Vec<AgentOutput> {
        let t = line.trim();
        if t.is_empty() {
            return vec![];
        }
        if let Some(u) = usage_line(t) {
            return vec![u];
        }
        if let Some(e) = litellm_error(t) {
            return vec![e];
        }
        if t.starts_with("Model ") && t.contains("has hit a token limit") {
            return vec![AgentOutput::Error {
                class: FailureClass::ContextTooLong,
                message: t.to_string(),
                retry_after: None,
            }];
        }
        vec![AgentOutput::Text(line.to_string())]
    }
}

/// `1.2k` → 1200, `15k` → 15000, `300` → 300 (aider's format_tokens).
fn token_count(s: &str) -> Option<u64> {
    let s = s.trim();
    let (num, mult) = match s.strip_suffix(['k', 'K']) {
        Some(n) => (n, 1000.0),
        None => match s.strip_suffix(['m', 'M']) {
            Some(n) => (n, 1_000_000.0),
            None => (s, 1.0),
        },
    };
    let n: f64 = num.trim().parse().ok()?;
    (n.is_finite() && n >= 0.0).then(|| (n * mult).round() as u64)
}

/// `Tokens: 2.3k sent, 1.1k cache write, 512 cache hit, 150 received. Cost: $0.0012 message,
/// $0.0030 session.` (also the newer `…; 4.5k Total (1.2k thinking, 3.3k returned)` form).
fn usage_line(line: &str) -> Option<AgentOutput> {
    let rest = line.trim().strip_prefix("Tokens:")?;
    let (tokens, cost) = match rest.find("Cost:") {
        Some(i) => (&rest[..i], Some(&rest[i + "Cost:".len()..])),
        None => (rest, None),
    };
    let mut tokens_in = None;
    let mut tokens_out = None;
    for part in tokens.split([',', ';', '(', ')']) {
        let part = part.trim().trim_end_matches('.');
        let mut words = part.split_whitespace();
        let (Some(n), Some(what)) = (words.next(), words.next()) else { continue };
        match what {
            "sent" => tokens_in = token_count(n),
            "received" => tokens_out = token_count(n),
            "Total" if tokens_out.is_none() => tokens_out = token_count(n),
            _ => {}
        }
    }
    tokens_in?;
    let cost_usd = cost
        .and_then(|c| c.trim().strip_prefix('$'))
        .and_then(|c| c.split_whitespace().next())
        .and_then(|c| c.parse::<f64>().ok())
        .unwrap_or(0.0);
    Some(AgentOutput::Usage {
        tokens_in: tokens_in.unwrap_or(0),
        tokens_out: tokens_out.unwrap_or(0),
        cost_usd,
    })
}

/// `litellm.RateLimitError: …`: the exception name decides, the message refines.
fn litellm_error(line: &str) -> Option<AgentOutput> {
    let t = line.trim();
    let rest = t.strip_prefix("litellm.")?;
    let name: String = rest.chars().take_while(|c| c.is_ascii_alphanumeric()).collect();
    if !name.ends_with("Error") && name != "Timeout" {
        return None;
    }
    let out = error_from(t, None);
    let AgentOutput::Error { class, message, retry_after } = out else { return None };
    let by_name = match name.as_str() {
        "RateLimitError" | "RouterRateLimitError" => Some(crate::classify::from_status(429, &message)),
        "AuthenticationError" | "PermissionDeniedError" => Some(FailureClass::Auth),
        "NotFoundError" => Some(FailureClass::ModelNotFound),
        "ContextWindowExceededError" => Some(FailureClass::ContextTooLong),
        "ServiceUnavailableError" | "InternalServerError" | "Timeout" => Some(FailureClass::Overloaded),
        "BudgetExceededError" => Some(FailureClass::Billing),
        _ => None,
    };
    let class = by_name.unwrap_or(class);
    Some(AgentOutput::Error { class, message, retry_after })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::*;

    #[test]
    fn launch_plain_and_with_a_provider() {
        let task = crate::custom::tests::task("t", "aider");
        let dir = project("aider");
        let l = AiderAdapter.launch(&spec(&dir, &task, "- do it", None)).unwrap();
        assert!(l.program.ends_with("aider"));
        for flag in ["--yes-always", "--no-auto-commits", "--no-pretty", "--no-stream", "--no-check-update"] {
            assert!(l.args.iter().any(|a| a == flag), "{flag}");
        }
        assert!(l.args.windows(2).any(|w| w == ["--model", "plain-model"]));
        assert_eq!(l.args.last().unwrap(), "--message=- do it");
        let history = l.args.iter().position(|a| a == "--chat-history-file").unwrap();
        assert!(l.args[history + 1].contains("attempt"));
        assert_eq!(env(&l, "HOME"), None);

        let l = AiderAdapter.launch(&spec(&dir, &task, "p", Some(provider("openai-compatible")))).unwrap();
        std::fs::remove_dir_all(&dir).ok();
        assert_eq!(l.program, "/bin/sh");
        assert!(l.args[1].contains("OPENAI_API_KEY=\"${MY_KEY}\""));
        assert!(l.args.windows(2).any(|w| w == ["--model", "openai/ok"]));
        assert!(l.args.windows(2).any(|w| w == ["--openai-api-base", "http://127.0.0.1:9/v1"]));
        assert!(env(&l, "HOME").unwrap().contains("attempt"));
        assert_eq!(l.args.last().unwrap(), "--message=p");
    }
}
