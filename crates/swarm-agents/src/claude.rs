//! Claude Code: `claude -p --output-format stream-json --verbose --dangerously-skip-permissions
//! [--model M]`, the prompt on stdin. With a provider from `swarm.toml` the attempt gets its own
//! `CLAUDE_CONFIG_DIR`, HOME and XDG dirs, `ANTHROPIC_BASE_URL`, and `ANTHROPIC_API_KEY` copied
//! from the provider's key variable by a `/bin/sh` wrapper (so the key is never in a file nor in
//! swarm's launch record).
//!
//! Output shapes (stream-json, one object per line; see tests/fixtures/README.md):
//! `{"type":"system","subtype":"init","session_id",…}`, `{"type":"assistant","message":{"content":
//! [{"type":"text"}|{"type":"tool_use","name","input"}]}}`, `{"type":"user",…}` (tool results) and a
//! final `{"type":"result","subtype","is_error","result","total_cost_usd","usage":{…}}`. API errors
//! arrive as an assistant text `API Error: 429 {…}` (flagged `isApiErrorMessage`, with an `error`
//! kind) and a result with `is_error: true`.

use crate::adapter::{Adapter, AdapterError, AgentOutput, AttemptSpec, Launch};
use crate::classify;
use crate::opencode::{isolated_home, locate_binary};
use serde_json::Value;
use std::time::Duration;
use swarm_core::event::Stream;
use swarm_core::failure::FailureClass;

pub struct ClaudeAdapter;

// ---- helpers shared by the claude, codex, gemini and aider adapters ----

pub(crate) fn valid_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

pub(crate) fn make_dir(agent: &str, dir: &std::path::Path) -> Result<String, AdapterError> {
    std::fs::create_dir_all(dir).map_err(|e| AdapterError::Invalid {
        agent: agent.into(),
        message: format!("cannot create {}: {e}", dir.display()),
    })?;
    Ok(dir.display().to_string())
}

/// Runs `program args…` with `target` set to the value of `source` in the environment, through
/// `/bin/sh` so the key itself never appears in the launch (nor in any file). Without a rename
/// (`target == source`) the program is run directly: it inherits the variable.
pub(crate) fn with_key_from_env(
    agent: &str,
    program: String,
    args: Vec<String>,
    target: &str,
    source: &str,
) -> Result<(String, Vec<String>), AdapterError> {
    if target == source {
        return Ok((program, args));
    }
    for name in [target, source] {
        if !valid_env_name(name) {
            return Err(AdapterError::Invalid {
                agent: agent.into(),
                message: format!("`{name}` is not a valid environment variable name"),
            });
        }
    }
    let script = format!("{target}=\"${{{source}}}\"; export {target}; exec \"$0\" \"$@\"");
    let mut all = vec!["-c".to_string(), script, program];
    all.extend(args);
    Ok(("/bin/sh".into(), all))
}

/// An HTTP status quoted in an error message: `API Error: 429`, `status: 429`, `status 503`,
/// `Error code: 401`, `"code":429`, `[429 Too Many Requests]`.
pub(crate) fn status_in_text(message: &str) -> Option<u16> {
    let lower = message.to_lowercase();
    for marker in [
        "api error: ",
        "status: ",
        "status code: ",
        "status code ",
        "status ",
        "error code: ",
        "\"code\":",
        "\"code\": ",
        "'code': ",
        "http ",
    ] {
        for (i, _) in lower.match_indices(marker) {
            let rest = &lower[i + marker.len()..];
            let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
            if digits.len() == 3 {
                if let Ok(code) = digits.parse::<u16>() {
                    if (400..=599).contains(&code) {
                        return Some(code);
                    }
                }
            }
        }
    }
    None
}

/// Provider and CLI phrasings the shared table does not know, checked first.
const EXTRA_RULES: &[(&str, FailureClass)] = &[
    ("api key not valid", FailureClass::Auth),
    ("api_key_invalid", FailureClass::Auth),
    ("authentication_error", FailureClass::Auth),
    ("permission_denied", FailureClass::Auth),
    ("please run /login", FailureClass::Auth),
    ("usage limit", FailureClass::QuotaExhausted),
    ("not_found_error", FailureClass::ModelNotFound),
    ("is not found for api version", FailureClass::ModelNotFound),
    ("does not exist or you do not have access", FailureClass::ModelNotFound),
    ("overloaded_error", FailureClass::Overloaded),
    ("has hit a token limit", FailureClass::ContextTooLong),
    ("contextwindowexceeded", FailureClass::ContextTooLong),
    ("exceeds the context window", FailureClass::ContextTooLong),
    ("input token count", FailureClass::ContextTooLong),
];

/// The class of an error message, with the status it quotes if any.
pub(crate) fn class_of(message: &str, status: Option<u16>) -> FailureClass {
    let lower = message.to_lowercase();
    let extra = EXTRA_RULES.iter().find(|(n, _)| lower.contains(n)).map(|(_, c)| *c);
    match (status, extra) {
        // A status is authoritative, except that the text refines it (a 429 about quota, a 400
        // about the context window, a 404 that is not about a model).
        (Some(s), Some(c)) if !matches!(s, 401 | 403 | 429 | 500..=599) => c,
        (Some(s), _) => classify::from_status(s, message),
        (None, Some(c)) => c,
        (None, None) => classify::from_text(message).unwrap_or(FailureClass::AgentError),
    }
}

/// `retryDelay":"13s"` (Google RPC RetryInfo) or "try again in 2s" in a message.
pub(crate) fn retry_after_of(message: &str) -> Option<Duration> {
    let lower = message.to_lowercase();
    if let Some(i) = lower.find("retrydelay") {
        let rest = &lower[i + "retrydelay".len()..];
        let rest = rest.trim_start_matches(['"', '\'', ':', ' ', '\\']);
        let num: String = rest.chars().take_while(|c| c.is_ascii_digit() || *c == '.').collect();
        if rest[num.len()..].starts_with('s') {
            if let Ok(n) = num.parse::<f64>() {
                return Some(Duration::from_millis((n * 1000.0) as u64));
            }
        }
    }
    classify::retry_after_in_text(message)
}

pub(crate) fn error_from(message: &str, status: Option<u16>) -> AgentOutput {
    let status = status.or_else(|| status_in_text(message));
    AgentOutput::Error {
        class: class_of(message, status),
        message: message.to_string(),
        retry_after: retry_after_of(message),
    }
}

/// The most telling string argument of a tool call.
pub(crate) fn tool_detail(input: Option<&Value>) -> String {
    [
        "file_path",
        "absolute_path",
        "filePath",
        "path",
        "notebook_path",
        "dir_path",
        "command",
        "pattern",
        "url",
        "query",
        "description",
        "prompt",
    ]
    .iter()
    .find_map(|k| input.and_then(|i| i.get(*k)).and_then(Value::as_str))
    .map(|s| s.lines().next().unwrap_or("").chars().take(200).collect())
    .unwrap_or_default()
}

pub(crate) fn json_object(line: &str) -> Result<Value, Vec<AgentOutput>> {
    let trimmed = line.trim();
    match serde_json::from_str::<Value>(trimmed) {
        Ok(v @ Value::Object(_)) => Ok(v),
        _ if trimmed.is_empty() => Err(vec![]),
        _ => Err(vec![AgentOutput::Text(line.to_string())]),
    }
}

pub(crate) fn str_at<'v>(v: &'v Value, pointer: &str) -> Option<&'v str> {
    v.pointer(pointer).and_then(Value::as_str)
}

pub(crate) fn u64_at(v: &Value, pointer: &str) -> u64 {
    v.pointer(pointer).and_then(Value::as_u64).unwrap_or(0)
}

// ---- claude ----

impl Adapter for ClaudeAdapter {
    fn name(&self) -> &str {
        "claude"
    }

    fn launch(&self, spec: &AttemptSpec<'_>) -> Result<Launch, AdapterError> {
        let program = locate_binary("claude", "claude", spec)?;
        let workdir = spec.workdir.display().to_string();
        let mut env = vec![
            ("PWD".to_string(), workdir),
            ("DISABLE_AUTOUPDATER".into(), "1".into()),
            ("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC".into(), "1".into()),
            ("NO_COLOR".into(), "1".into()),
        ];
        let mut args: Vec<String> =
            ["-p", "--output-format", "stream-json", "--verbose", "--dangerously-skip-permissions"]
                .iter()
                .map(|s| s.to_string())
                .collect();
        let (program, args) = match &spec.provider {
            Some(p) => {
                env.extend(isolated_home("claude", spec)?);
                let config = make_dir("claude", &spec.attempt_dir.join("claude-config"))?;
                env.push(("CLAUDE_CONFIG_DIR".into(), config));
                if let Some(url) = &p.base_url {
                    // The SDK appends `/v1/messages` itself.
                    let url = url.trim_end_matches('/');
                    let url = url.strip_suffix("/v1").unwrap_or(url);
                    env.push(("ANTHROPIC_BASE_URL".into(), url.to_string()));
                }
                args.extend(["--model".into(), p.model.clone()]);
                with_key_from_env("claude", program, args, "ANTHROPIC_API_KEY", &p.api_key_env)?
            }
            None => {
                if let Some(m) = spec.model {
                    args.extend(["--model".into(), m.to_string()]);
                }
                (program, args)
            }
        };
        Ok(Launch {
            program,
            args,
            env,
            cwd: spec.workdir.clone(),
            stdin: Some(spec.prompt.to_string()),
            ..Default::default()
        })
    }

    fn parse_line(&self, stream: Stream, line: &str) -> Vec<AgentOutput> {
        parse_line(stream, line)
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

/// `API Error: 429 {"type":"error","error":{"type":"rate_limit_error","message":"…"}}` → the
/// status, and the inner message appended so the class tables see it.
fn claude_error(text: &str, kind: Option<&str>) -> AgentOutput {
    match error_from(text, None) {
        AgentOutput::Error { class: FailureClass::AgentError, message, retry_after } => AgentOutput::Error {
            class: kind.and_then(class_of_kind).unwrap_or(FailureClass::AgentError),
            message,
            retry_after,
        },
        other => other,
    }
}

/// One line of `claude -p --output-format stream-json --verbose`.
pub fn parse_line(_stream: Stream, line: &str) -> Vec<AgentOutput> {
    let v = match json_object(line) {
        Ok(v) => v,
        // Claude Code refuses the permission bypass as root unless told the host is a sandbox.
        Err(_) if line.contains("cannot be used with root/sudo privileges") => {
            return vec![AgentOutput::Error {
                class: FailureClass::AgentError,
                message: format!(
                    "{} (claude refuses to skip permissions as root: run swarm as a non-root user, or set \
                     IS_SANDBOX=1 in the environment if this host really is a disposable sandbox)",
                    line.trim()
                ),
                retry_after: None,
            }]
        }
        Err(out) => return out,
    };
    let mut out = Vec::new();
    let session = str_at(&v, "/session_id").map(|s| AgentOutput::Session(s.to_string()));
    match str_at(&v, "/type").unwrap_or("") {
        "system" => {
            out.extend(session);
            if str_at(&v, "/subtype") == Some("api_retry") {
                let status = v.get("error_status").and_then(Value::as_u64).map(|s| format!(" ({s})"));
                out.push(AgentOutput::Text(format!(
                    "[retrying API request {}/{}{}]",
                    u64_at(&v, "/attempt"),
                    u64_at(&v, "/max_retries"),
                    status.unwrap_or_default()
                )));
            }
        }
        "assistant" => {
            out.extend(session);
            let api_error = v.get("isApiErrorMessage").and_then(Value::as_bool).unwrap_or(false)
                || v.get("error").is_some_and(Value::is_string);
            let kind = str_at(&v, "/error");
            let content =
                v.pointer("/message/content").and_then(Value::as_array).cloned().unwrap_or_default();
            for block in &content {
                match str_at(block, "/type").unwrap_or("") {
                    "text" => {
                        let Some(t) = str_at(block, "/text").filter(|t| !t.trim().is_empty()) else {
                            continue;
                        };
                        if api_error {
                            out.push(claude_error(t, kind));
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
        }
        "result" => {
            out.extend(session);
            let u = v.get("usage").cloned().unwrap_or(Value::Null);
            out.push(AgentOutput::Usage {
                tokens_in: u64_at(&u, "/input_tokens")
                    + u64_at(&u, "/cache_creation_input_tokens")
                    + u64_at(&u, "/cache_read_input_tokens"),
                tokens_out: u64_at(&u, "/output_tokens"),
                cost_usd: v.get("total_cost_usd").and_then(Value::as_f64).unwrap_or(0.0),
            });
            let subtype = str_at(&v, "/subtype").unwrap_or("");
            let is_error = v.get("is_error").and_then(Value::as_bool).unwrap_or(false);
            if is_error || subtype.starts_with("error") {
                let errors: Vec<&str> = v
                    .get("errors")
                    .and_then(Value::as_array)
                    .map(|a| a.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default();
                let message = str_at(&v, "/result")
                    .filter(|r| !r.trim().is_empty())
                    .map(String::from)
                    .or_else(|| (!errors.is_empty()).then(|| errors.join("; ")))
                    .unwrap_or_else(|| format!("claude ended with `{subtype}`"));
                out.push(claude_error(&message, None));
            }
        }
        _ => {}
    }
    out
}

/// Test helpers shared by the claude, codex, gemini and aider launch tests.
#[cfg(test)]
pub(crate) mod test_support {
    use crate::adapter::{AttemptSpec, ProviderSpec};
    use std::path::PathBuf;

    /// A project dir with an executable fake `binary` in `.tools/node_modules/.bin`.
    pub fn project(binary: &str) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("swarm-agents-{binary}-{}", std::process::id()));
        let bin = dir.join(".tools/node_modules/.bin");
        std::fs::create_dir_all(&bin).unwrap();
        let fake = bin.join(binary);
        std::fs::write(&fake, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
        dir
    }

    pub fn provider(kind: &str) -> ProviderSpec {
        ProviderSpec {
            name: "local".into(),
            kind: kind.into(),
            base_url: Some("http://127.0.0.1:9/v1".into()),
            model: "ok".into(),
            api_key_env: "MY_KEY".into(),
        }
    }

    pub fn spec<'a>(
        dir: &std::path::Path,
        task: &'a swarm_core::plan::Task,
        prompt: &'a str,
        provider: Option<ProviderSpec>,
    ) -> AttemptSpec<'a> {
        AttemptSpec {
            run_id: "r",
            task,
            attempt: 1,
            prompt,
            model: provider.as_ref().map(|_| "local/ok").or(Some("plain-model")),
            workdir: dir.to_path_buf(),
            provider,
            attempt_dir: dir.join("attempt"),
            project_root: dir.to_path_buf(),
        }
    }

    pub fn env<'l>(l: &'l crate::adapter::Launch, k: &str) -> Option<&'l str> {
        l.env.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str())
    }
}

#[cfg(test)]
mod tests;
