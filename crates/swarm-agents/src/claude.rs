//! Claude Code 2.1.332: `claude -p --output-format stream-json --verbose --permission-mode
//! bypassPermissions [--model M] [--agent ROLE]`, the prompt on stdin (kept byte for byte: CRLF,
//! unicode, `@x` and `/x` mid-text; measured in the issue 19 notes). As root it refuses the
//! bypass unless `IS_SANDBOX=1`, which swarm sets then (each attempt has its own worktree).
//!
//! With a provider (a model of `swarm.toml`, or the gateway) the attempt gets its own
//! `CLAUDE_CONFIG_DIR`, HOME and XDG dirs, `ANTHROPIC_BASE_URL` (the root: Claude Code appends
//! `/v1/messages`), `ANTHROPIC_API_KEY` copied from the provider's key variable (`env_from`: the
//! key is in no argv, file or launch record) and no `ANTHROPIC_AUTH_TOKEN` (with both it sends
//! both headers), and every model alias (opus is the default; subagents use haiku, sonnet or
//! fable) mapped to the attempt's model, so no request names a model the provider lacks.
//!
//! Output shapes (stream-json, one object per line; see tests/fixtures/README.md):
//! `{"type":"system","subtype":"init","session_id",…}`, `{"type":"assistant","message":{"content":
//! [{"type":"text"}|{"type":"tool_use","name","input"}]}}`, `{"type":"user",…}` (tool results) and a
//! final `{"type":"result","subtype","is_error","result","total_cost_usd","usage":{…}}`. API errors
//! arrive as a synthetic assistant text `API Error: Request rejected (429) · …` (flagged
//! `is_api_error_message`, with `api_error_status` and an `error` kind) and a result with
//! `is_error: true` and `api_error_status`; the exit code is then 1.

use crate::adapter::{Adapter, AdapterError, AgentOutput, AttemptSpec, Launch};
use crate::launch::{api_root, check_env_name, isolated_home, locate_binary, make_dir, running_as_root};
use crate::output::{error_from, json_object, str_at, tool_detail, u64_at};
use serde_json::Value;
use swarm_core::event::Stream;
use swarm_core::failure::FailureClass;

pub struct ClaudeAdapter;

/// The model aliases Claude Code resolves through `ANTHROPIC_DEFAULT_<ALIAS>_MODEL`.
const ALIASES: [&str; 4] = ["OPUS", "SONNET", "HAIKU", "FABLE"];

/// Variables of swarm's environment that would send Claude Code elsewhere or with another key.
const REMOVED: [&str; 7] = [
    "ANTHROPIC_AUTH_TOKEN",
    "ANTHROPIC_MODEL",
    "ANTHROPIC_SMALL_FAST_MODEL",
    "CLAUDE_CODE_USE_BEDROCK",
    "CLAUDE_CODE_USE_VERTEX",
    "CLAUDE_CODE_USE_FOUNDRY",
    "CLAUDE_CODE_OAUTH_TOKEN",
];

/// The native binary when `located` is npm's placeholder: Claude Code's package ships
/// `bin/claude.exe` as a stub its postinstall replaces with the binary of the optional
/// dependency `@anthropic-ai/claude-code-linux-<arch>`; with install scripts skipped the stub
/// stays, and the binary is run from the platform package directly.
pub fn native_binary(located: &std::path::Path) -> std::path::PathBuf {
    let real = located.canonicalize().unwrap_or_else(|_| located.to_path_buf());
    let placeholder = real.metadata().is_ok_and(|m| m.len() < 1_000_000);
    let scope = real.parent().and_then(|bin| bin.parent()).and_then(|pkg| pkg.parent());
    let (Some(scope), true) = (scope, placeholder) else { return located.to_path_buf() };
    let arch = match std::env::consts::ARCH {
        "x86_64" => "x64",
        "aarch64" => "arm64",
        other => other,
    };
    [format!("claude-code-linux-{arch}"), format!("claude-code-linux-{arch}-musl")]
        .iter()
        .map(|p| scope.join(p).join("claude"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| located.to_path_buf())
}

impl Adapter for ClaudeAdapter {
    fn name(&self) -> &str {
        "claude"
    }

    fn speaks_gateway(&self) -> bool {
        true
    }

    fn launch(&self, spec: &AttemptSpec<'_>) -> Result<Launch, AdapterError> {
        let program = locate_binary("claude", "claude", spec)?;
        let program = native_binary(std::path::Path::new(&program)).display().to_string();
        let mut env = vec![
            ("PWD".to_string(), spec.workdir.display().to_string()),
            ("DISABLE_AUTOUPDATER".into(), "1".into()),
            ("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC".into(), "1".into()),
            ("NO_COLOR".into(), "1".into()),
        ];
        if running_as_root() {
            env.push(("IS_SANDBOX".into(), "1".into()));
        }
        let mut args: Vec<String> =
            ["-p", "--output-format", "stream-json", "--verbose", "--permission-mode", "bypassPermissions"]
                .iter()
                .map(|s| s.to_string())
                .collect();
        let (mut env_from, mut env_remove) = (Vec::new(), Vec::new());
        match &spec.provider {
            Some(p) => {
                check_env_name("claude", &p.api_key_env)?;
                env.extend(isolated_home("claude", spec)?);
                let config = make_dir("claude", &spec.attempt_dir.join("claude-config"))?;
                env.push(("CLAUDE_CONFIG_DIR".into(), config));
                if let Some(url) = &p.base_url {
                    env.push(("ANTHROPIC_BASE_URL".into(), api_root(url)));
                }
                for alias in ALIASES {
                    env.push((format!("ANTHROPIC_DEFAULT_{alias}_MODEL"), p.model.clone()));
                }
                env_from.push(("ANTHROPIC_API_KEY".into(), p.api_key_env.clone()));
                env_remove = REMOVED.iter().map(|s| s.to_string()).collect();
                args.extend(["--model".into(), p.model.clone()]);
            }
            None => {
                if let Some(m) = spec.model {
                    args.extend(["--model".into(), m.to_string()]);
                }
            }
        }
        // A role the project defines as Claude Code's own named agent (`.claude/agents/NAME.md`):
        // `--agent NAME` makes its body the system prompt (observed with Claude Code 2.1.332).
        if let Some(role) =
            spec.task.role.as_deref().filter(|r| crate::roles::native_role("claude", r, &spec.workdir))
        {
            args.extend(["--agent".into(), role.to_string()]);
        }
        Ok(Launch { env_from, env_remove, ..Launch::prompt_on_stdin(spec, program, args, env) })
    }

    /// One line of `claude -p --output-format stream-json --verbose`.
    fn parse_line(&self, _stream: Stream, line: &str) -> Vec<AgentOutput> {
        let v = match json_object(line) {
            Ok(v) => v,
            Err(_) if line.contains("cannot be used with root/sudo privileges") => {
                return vec![root_refusal(line)]
            }
            Err(out) => return out,
        };
        let session = str_at(&v, "/session_id").map(|s| AgentOutput::Session(s.to_string()));
        let rest = match str_at(&v, "/type").unwrap_or("") {
            "system" => system_line(&v),
            "assistant" => assistant_line(&v),
            "result" => result_line(&v),
            _ => return vec![],
        };
        session.into_iter().chain(rest).collect()
    }
}

/// Claude Code refuses the permission bypass as root unless told the host is a sandbox.
fn root_refusal(line: &str) -> AgentOutput {
    AgentOutput::Error {
        class: FailureClass::AgentError,
        message: format!(
            "{} (claude refuses to skip permissions as root: run swarm as a non-root user, or set \
             IS_SANDBOX=1 in the environment if this host really is a disposable sandbox)",
            line.trim()
        ),
        retry_after: None,
    }
}

/// The assistant message `error` kinds Claude Code attaches to an API error message.
fn class_of_kind(kind: &str) -> Option<FailureClass> {
    Some(match kind {
        "rate_limit" => FailureClass::RateLimited,
        "authentication_failed" => FailureClass::Auth,
        "billing_error" => FailureClass::Billing,
        "server_error" | "overloaded" => FailureClass::Overloaded,
        _ => return None,
    })
}

/// The HTTP status of the provider's answer an API error line carries (`api_error_status`).
fn api_status(v: &Value) -> Option<u16> {
    v.get("api_error_status").and_then(Value::as_u64).and_then(|s| u16::try_from(s).ok())
}

/// `API Error: Request rejected (429) · …` (or the older `API Error: 429 {…}`): classed by the
/// status the line carries, else the one the text quotes, else the assistant message's error
/// kind.
fn claude_error(text: &str, kind: Option<&str>, status: Option<u16>) -> AgentOutput {
    match error_from(text, status) {
        AgentOutput::Error { class: FailureClass::AgentError, message, retry_after } => AgentOutput::Error {
            class: kind.and_then(class_of_kind).unwrap_or(FailureClass::AgentError),
            message,
            retry_after,
        },
        other => other,
    }
}

/// `{"type":"system"}`: the session starts, or an API request is retried.
fn system_line(v: &Value) -> Vec<AgentOutput> {
    if str_at(v, "/subtype") != Some("api_retry") {
        return vec![];
    }
    let status = v.get("error_status").and_then(Value::as_u64).map(|s| format!(" ({s})"));
    vec![AgentOutput::Text(format!(
        "[retrying API request {}/{}{}]",
        u64_at(v, "/attempt"),
        u64_at(v, "/max_retries"),
        status.unwrap_or_default()
    ))]
}

/// `{"type":"assistant"}`: text and tool calls, or an API error dressed as text.
fn assistant_line(v: &Value) -> Vec<AgentOutput> {
    let api_error = ["/is_api_error_message", "/isApiErrorMessage"]
        .iter()
        .any(|p| v.pointer(p).and_then(Value::as_bool).unwrap_or(false))
        || v.get("error").is_some_and(Value::is_string);
    let kind = str_at(v, "/error");
    let status = api_status(v);
    let content = v.pointer("/message/content").and_then(Value::as_array).cloned().unwrap_or_default();
    let mut out = Vec::new();
    for block in &content {
        match str_at(block, "/type").unwrap_or("") {
            "text" => {
                let Some(t) = str_at(block, "/text").filter(|t| !t.trim().is_empty()) else {
                    continue;
                };
                if api_error {
                    out.push(claude_error(t, kind, status));
                } else {
                    out.push(AgentOutput::Text(t.to_string()));
                }
            }
            "tool_use" => out.push(AgentOutput::Tool {
                name: str_at(block, "/name").unwrap_or("tool").to_string(),
                detail: tool_detail(block.get("input")),
            }),
            _ => {}
        }
    }
    out
}

/// `{"type":"result"}`: the run's usage, and its error if it failed.
fn result_line(v: &Value) -> Vec<AgentOutput> {
    let u = v.get("usage").cloned().unwrap_or(Value::Null);
    let mut out = vec![AgentOutput::Usage {
        tokens_in: u64_at(&u, "/input_tokens")
            + u64_at(&u, "/cache_creation_input_tokens")
            + u64_at(&u, "/cache_read_input_tokens"),
        tokens_out: u64_at(&u, "/output_tokens"),
        cost_usd: v.get("total_cost_usd").and_then(Value::as_f64).unwrap_or(0.0),
    }];
    let subtype = str_at(v, "/subtype").unwrap_or("");
    let is_error = v.get("is_error").and_then(Value::as_bool).unwrap_or(false);
    if is_error || subtype.starts_with("error") {
        let errors: Vec<&str> = v
            .get("errors")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let message = str_at(v, "/result")
            .filter(|r| !r.trim().is_empty())
            .map(String::from)
            .or_else(|| (!errors.is_empty()).then(|| errors.join("; ")))
            .unwrap_or_else(|| format!("claude ended with `{subtype}`"));
        out.push(claude_error(&message, None, api_status(v)));
    }
    out
}

#[cfg(test)]
mod tests;
