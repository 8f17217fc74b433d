//! Aider 0.86.2: `aider --yes-always --no-auto-commits … [--model M] --message-file FILE`, plain
//! text output. The prompt goes in a file (an argument is capped at 128 KiB); aider turns its
//! CRLF into LF and appends `\n\n` and its edit-format reminder in the same user message: the
//! rest reaches the model byte for byte. Aider exits 0 even when every model call failed, so its
//! errors must come from its text: `litellm.RateLimitError: …` lines (aider prints
//! `str(exception)`, see aider/exceptions.py and Coder.send_message) and `Model X has hit a token
//! limit!` (Coder.show_exhausted_error). Usage comes from the per-message report
//! `Tokens: 1.2k sent, 300 received. Cost: $0.01 message, $0.02 session.`
//! (Coder.calculate_and_show_tokens_and_cost); it has no session id.
//!
//! Aider reads no instruction file by itself: the project's AGENTS.md, CLAUDE.md, GEMINI.md and
//! CONVENTIONS.md are given with `--read`. It refuses to write outside its git root, where
//! swarm's completion report lies: the prompt names a file in the worktree instead, which a
//! `/bin/sh` wrapper moves to `$SWARM_COMPLETION_FILE` (and out of git's index: aider `git add`s
//! the files it creates) when aider ends.
//!
//! With a provider (a model of `swarm.toml`, or the gateway): HOME/XDG private to the attempt
//! (its model-prices cache seeded so it does not fetch it), the model as `openai/MODEL` with
//! `--openai-api-base URL` (`gemini/…`, `anthropic/…`, `openrouter/…` for those kinds), and the
//! provider's key copied into `OPENAI_API_KEY` (or the kind's variable). `--env-file` points into
//! the attempt dir so a `.env` in the repository can never replace that key.

use crate::adapter::{Adapter, AdapterError, AgentOutput, AttemptSpec, Launch};
use crate::launch::{check_env_name, isolated_home, locate_binary, make_dir, write_file};
use crate::output::error_from;
use std::path::Path;
use swarm_core::event::Stream;
use swarm_core::failure::FailureClass;

pub struct AiderAdapter;

impl AiderAdapter {
    /// Aider's exit code says nothing: an attempt that printed an error line failed even when the
    /// process exited 0. (The executor must ask `classify` on exit 0 for adapters that say so.)
    pub const FAILS_WITH_EXIT_ZERO: bool = true;
}

/// The project instruction files aider is given to read (it reads none by itself).
const INSTRUCTIONS: [&str; 4] = ["AGENTS.md", "CLAUDE.md", "GEMINI.md", "CONVENTIONS.md"];

/// The completion report's name in the worktree, where aider can write it.
const LOCAL_REPORT: &str = "swarm-completion.json";

/// Model prefix and key variable litellm uses for a provider kind.
fn litellm_for(kind: &str) -> (&'static str, &'static str) {
    match kind {
        "anthropic" => ("anthropic", "ANTHROPIC_API_KEY"),
        "gemini" | "google" => ("gemini", "GEMINI_API_KEY"),
        "openrouter" => ("openrouter", "OPENROUTER_API_KEY"),
        _ => ("openai", "OPENAI_API_KEY"),
    }
}

/// The flags every attempt gets: no questions, no commits, plain output, nothing written into
/// the worktree but its edits (no `.gitignore` change, no repo-map cache).
const FLAGS: [&str; 12] = [
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
    "--no-restore-chat-history",
    "--map-tokens=0",
];

/// The attempt's private HOME, with aider's model-prices cache seeded: a fresh one keeps aider
/// from fetching it from GitHub at every start.
fn private_home(spec: &AttemptSpec<'_>) -> Result<Vec<(String, String)>, AdapterError> {
    let env = isolated_home("aider", spec)?;
    if let Some((_, home)) = env.iter().find(|(k, _)| k == "HOME") {
        let caches = make_dir("aider", &Path::new(home).join(".aider/caches"))?;
        write_file("aider", &Path::new(&caches).join("model_prices_and_context_window.json"), "{}")?;
    }
    Ok(env)
}

/// `(model, env, key variable)` for a provider.
fn provider_args(
    p: &crate::adapter::ProviderSpec,
    args: &mut Vec<String>,
    env: &mut Vec<(String, String)>,
) -> &'static str {
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
    key_var
}

/// Runs aider, then moves the report it wrote in the worktree to where swarm reads it.
fn with_report_moved(program: String, args: Vec<String>, local: &Path) -> (String, Vec<String>) {
    let local = local.display().to_string().replace('\'', "'\\''");
    let script = format!(
        "\"$0\" \"$@\"; rc=$?; f='{local}'; if [ -f \"$f\" ] && [ -n \"$SWARM_COMPLETION_FILE\" ]; then \
         git rm -q --cached --ignore-unmatch -- \"$f\" >/dev/null 2>&1; mv -f \"$f\" \"$SWARM_COMPLETION_FILE\"; fi; exit $rc"
    );
    let mut all = vec!["-c".to_string(), script, program];
    all.extend(args);
    ("/bin/sh".into(), all)
}

impl Adapter for AiderAdapter {
    fn name(&self) -> &str {
        "aider"
    }

    fn speaks_gateway(&self) -> bool {
        true
    }

    fn exit_zero_may_fail(&self) -> bool {
        Self::FAILS_WITH_EXIT_ZERO
    }

    fn launch(&self, spec: &AttemptSpec<'_>) -> Result<Launch, AdapterError> {
        let program = locate_binary("aider", "aider", spec)?;
        let own = spec.attempt_dir.join("aider");
        let own_dir = make_dir("aider", &own)?;
        let mut env = vec![
            ("PWD".to_string(), spec.workdir.display().to_string()),
            ("NO_COLOR".into(), "1".into()),
            ("AIDER_ANALYTICS".into(), "false".into()),
            ("LITELLM_LOCAL_MODEL_COST_MAP".into(), "True".into()),
        ];
        let mut args: Vec<String> = FLAGS.iter().map(|s| s.to_string()).collect();
        for (flag, file) in [
            ("--env-file", "aider.env"),
            ("--input-history-file", "input.history"),
            ("--chat-history-file", "chat.history.md"),
        ] {
            args.extend([flag.to_string(), format!("{own_dir}/{file}")]);
        }
        if !spec.workdir.ancestors().any(|d| d.join(".git").exists()) {
            // Outside a repository aider would offer to create one (and `--yes-always` accepts).
            args.push("--no-git".into());
        }
        for file in INSTRUCTIONS.iter().filter(|f| spec.workdir.join(f).is_file()) {
            args.extend(["--read".into(), file.to_string()]);
        }
        let mut env_from = Vec::new();
        match &spec.provider {
            Some(p) => {
                check_env_name("aider", &p.api_key_env)?;
                env.extend(private_home(spec)?);
                let key_var = provider_args(p, &mut args, &mut env);
                env_from.push((key_var.to_string(), p.api_key_env.clone()));
            }
            None => {
                if let Some(m) = spec.model {
                    args.extend(["--model".into(), m.to_string()]);
                }
            }
        }
        let mut prompt = spec.prompt.to_string();
        let local = spec.workdir.join(LOCAL_REPORT);
        let report = spec.completion_file.as_deref().map(|f| f.display().to_string());
        if let Some(report) = report.filter(|r| prompt.contains(r.as_str())) {
            prompt = prompt.replace(&report, &local.display().to_string());
        }
        let message = own.join("message.md");
        write_file("aider", &message, &prompt)?;
        args.extend(["--message-file".into(), message.display().to_string()]);
        let (program, args) = with_report_moved(program, args, &local);
        Ok(Launch { env_from, ..Launch::in_workdir(spec, program, args, env) })
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
        std::fs::write(dir.join("AGENTS.md"), "be brief").unwrap();
        let footer = format!("- do it\nwrite `{}` as JSON", dir.join("completions/t.1.json").display());
        let l = AiderAdapter.launch(&spec(&dir, &task, &footer, None)).unwrap();
        assert_eq!(l.program, "/bin/sh", "a wrapper moves the report aider wrote in the worktree");
        assert!(l.args[2].ends_with("aider"));
        for flag in ["--yes-always", "--no-auto-commits", "--no-pretty", "--no-stream", "--no-check-update"] {
            assert!(l.args.iter().any(|a| a == flag), "{flag}");
        }
        assert!(l.args.windows(2).any(|w| w == ["--model", "plain-model"]));
        assert!(l.args.windows(2).any(|w| w == ["--read", "AGENTS.md"]));
        assert!(l.args.iter().any(|a| a == "--no-git"), "the test project is no repository");
        let file = l.args.iter().position(|a| a == "--message-file").unwrap();
        let message = std::fs::read_to_string(&l.args[file + 1]).unwrap();
        let local = dir.join("swarm-completion.json").display().to_string();
        assert_eq!(message, format!("- do it\nwrite `{local}` as JSON"));
        assert!(l.args[1].contains(&local));
        let history = l.args.iter().position(|a| a == "--chat-history-file").unwrap();
        assert!(l.args[history + 1].contains("attempt"));
        assert_eq!(env(&l, "HOME"), None);

        let l = AiderAdapter.launch(&spec(&dir, &task, "p", Some(provider("openai-compatible")))).unwrap();
        let home = env(&l, "HOME").unwrap().to_string();
        assert!(Path::new(&home).join(".aider/caches/model_prices_and_context_window.json").is_file());
        std::fs::remove_dir_all(&dir).ok();
        assert_eq!(l.env_from, [("OPENAI_API_KEY".to_string(), "MY_KEY".to_string())]);
        assert!(l.args.windows(2).any(|w| w == ["--model", "openai/ok"]));
        assert!(l.args.windows(2).any(|w| w == ["--openai-api-base", "http://127.0.0.1:9/v1"]));
        assert!(home.contains("attempt"));
    }

    /// The wrapper moves the report and keeps aider's exit code.
    #[test]
    fn the_report_written_in_the_worktree_is_moved_where_swarm_reads_it() {
        let dir = project("aider");
        let local = dir.join("swarm-completion.json");
        let target = dir.join("out/c.json");
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        let fake = format!("echo '{{}}' > '{}'; exit 3", local.display());
        let (p, a) = with_report_moved("/bin/sh".into(), vec!["-c".into(), fake], &local);
        let status = std::process::Command::new(p)
            .args(a)
            .current_dir(&dir)
            .env("SWARM_COMPLETION_FILE", &target)
            .status()
            .unwrap();
        assert_eq!(status.code(), Some(3));
        assert!(!local.exists());
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "{}\n");
        std::fs::remove_dir_all(&dir).ok();
    }
}
