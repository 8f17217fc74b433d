//! Gemini CLI 0.61.0: `gemini -p "" -o stream-json --approval-mode=yolo --skip-trust [-m MODEL]
//! [--include-directories DIR]`, the prompt on stdin (`-p ""` adds nothing to it). stdin reaches
//! the model byte for byte **unless** it holds `@<path of an existing file>`: Gemini CLI then
//! trims the prompt, puts a space before the `@` and appends the file's content (measured in
//! the issue 19 notes; swarm leaves it so, as a user typing the prompt would get it). The
//! completion report lies outside the worktree, where Gemini CLI's file tools refuse to write:
//! its directory is added with `--include-directories`.
//!
//! With a provider (a model of `swarm.toml`, or the gateway) the attempt gets its own HOME (with
//! `~/.gemini/settings.json` selecting API-key auth, no key in it: `GOOGLE_GEMINI_BASE_URL`
//! alone exits 41, "Invalid auth method selected"), XDG dirs and `TMPDIR`,
//! `GOOGLE_GEMINI_BASE_URL` (the root: it appends `/v1beta/models/…`) and `GEMINI_API_KEY`
//! copied from the provider's key variable. The settings also make it read the project's
//! `AGENTS.md` beside `GEMINI.md`.
//!
//! Output (packages/core/src/output/types.ts): `init{session_id,model}`,
//! `message{role,content,delta?}`, `tool_use{tool_name,tool_id,parameters}`,
//! `tool_result{tool_id,status,output?,error?}`, `error{severity,message}` and
//! `result{status,error?{type,message},stats{input_tokens,output_tokens,…}}`. On an API error
//! it exits with the HTTP status & 255 (429 → 173, 500 → 244); 41 is an auth failure.

use crate::adapter::{Adapter, AdapterError, AgentOutput, AttemptSpec, Launch};
use crate::launch::{api_root, check_env_name, isolated_home, locate_binary, make_dir, write_file};
use crate::output::{error_from, json_object, str_at, tool_detail, u64_at};
use serde_json::{json, Value};
use std::time::Duration;
use swarm_core::event::Stream;
use swarm_core::failure::FailureClass;

pub struct GeminiAdapter;

/// The attempt's own `~/.gemini/settings.json`: API-key auth (the key comes from the
/// environment), the project's AGENTS.md read as well as GEMINI.md, no update checks.
fn settings() -> Value {
    json!({
        "security": { "auth": { "selectedType": "gemini-api-key" } },
        "context": { "fileName": ["GEMINI.md", "AGENTS.md"] },
        "general": { "disableAutoUpdate": true, "disableUpdateNag": true },
        "privacy": { "usageStatisticsEnabled": false },
    })
}

/// The attempt's private HOME with its settings, and the variables pointing there.
fn private_home(spec: &AttemptSpec<'_>) -> Result<Vec<(String, String)>, AdapterError> {
    let mut env = isolated_home("gemini", spec)?;
    let home = env.iter().find(|(k, _)| k == "HOME").map(|(_, v)| v.clone()).unwrap_or_default();
    let dot = std::path::Path::new(&home).join(".gemini");
    make_dir("gemini", &dot)?;
    write_file("gemini", &dot.join("settings.json"), &settings().to_string())?;
    // It writes /tmp/gemini-client-error-*.json on API errors: keep them with the attempt.
    env.push(("TMPDIR".into(), make_dir("gemini", &spec.attempt_dir.join("agent-home/tmp"))?));
    Ok(env)
}

/// The model name Gemini CLI is given for a provider's `model`: its own aliases (`auto`,
/// `pro`, `flash`, `flash-lite`, `auto-gemini-*`) make it pick Google model names itself
/// (measured with 0.61.0: `-m auto` asked `gemini-3.5-flash-lite` to route, then
/// `gemini-3.1-pro-preview`, never `auto`), so a provider model named like one (the gateway's
/// `auto`) is sent as `PROVIDER-NAME` instead.
fn cli_model(p: &crate::adapter::ProviderSpec) -> String {
    let alias = matches!(p.model.as_str(), "auto" | "pro" | "flash" | "flash-lite")
        || p.model.starts_with("auto-gemini");
    if alias {
        format!("{}-{}", p.name, p.model)
    } else {
        p.model.clone()
    }
}

/// The HTTP status behind Gemini CLI's exit code (`process.exit(status)` keeps its low byte).
fn status_of_exit(code: i32) -> Option<u16> {
    match code {
        41 => Some(401),
        144..=255 => Some(256 + code as u16),
        _ => None,
    }
}

impl Adapter for GeminiAdapter {
    fn name(&self) -> &str {
        "gemini"
    }

    fn speaks_gateway(&self) -> bool {
        true
    }

    fn launch(&self, spec: &AttemptSpec<'_>) -> Result<Launch, AdapterError> {
        let program = locate_binary("gemini", "gemini", spec)?;
        let mut env =
            vec![("PWD".to_string(), spec.workdir.display().to_string()), ("NO_COLOR".into(), "1".into())];
        let mut args: Vec<String> = ["-p", "", "-o", "stream-json", "--approval-mode=yolo", "--skip-trust"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let mut env_from = Vec::new();
        let model = match &spec.provider {
            Some(p) => {
                check_env_name("gemini", &p.api_key_env)?;
                env.extend(private_home(spec)?);
                if let Some(url) = &p.base_url {
                    env.push(("GOOGLE_GEMINI_BASE_URL".into(), api_root(url)));
                }
                env_from.push(("GEMINI_API_KEY".to_string(), p.api_key_env.clone()));
                Some(cli_model(p))
            }
            None => spec.model.map(String::from),
        };
        // Always a model: without one Gemini CLI first asks a router model (`auto`).
        if let Some(m) = model {
            args.extend(["-m".into(), m]);
        }
        if let Some(dir) = spec.completion_file.as_deref().and_then(std::path::Path::parent) {
            make_dir("gemini", dir)?;
            args.extend(["--include-directories".into(), dir.display().to_string()]);
        }
        let env_remove = vec!["GOOGLE_API_KEY".into(), "GOOGLE_GENAI_USE_VERTEXAI".into()];
        let launch = Launch::prompt_on_stdin(spec, program, args, env);
        Ok(Launch {
            env_from,
            env_remove: if spec.provider.is_some() { env_remove } else { vec![] },
            ..launch
        })
    }

    /// The errors it printed decide; else its exit code, which is the HTTP status's low byte.
    fn classify(
        &self,
        exit_code: Option<i32>,
        errors: &[AgentOutput],
        stderr_tail: &[String],
    ) -> Option<(FailureClass, Option<Duration>)> {
        let found = crate::classify::classify(exit_code, errors, stderr_tail);
        let status = exit_code.and_then(status_of_exit);
        match (found, status) {
            (Some((FailureClass::AgentError | FailureClass::Crashed, after)), Some(s)) => {
                Some((crate::classify::from_status(s, ""), after))
            }
            (found, _) => found,
        }
    }

    /// One line of `gemini --output-format stream-json`. Gemini also prints plain text (banners,
    /// "YOLO mode is enabled", stack traces) which is shown as is.
    fn parse_line(&self, _stream: Stream, line: &str) -> Vec<AgentOutput> {
        let v = match json_object(line) {
            Ok(v) => v,
            Err(out) => return out,
        };
        let mut out = Vec::new();
        match str_at(&v, "/type").unwrap_or("") {
            "init" => {
                if let Some(s) = str_at(&v, "/session_id").or_else(|| str_at(&v, "/sessionId")) {
                    out.push(AgentOutput::Session(s.to_string()));
                }
            }
            "message" if str_at(&v, "/role") == Some("assistant") => {
                if let Some(t) = str_at(&v, "/content").filter(|t| !t.trim().is_empty()) {
                    out.push(AgentOutput::Text(t.to_string()));
                }
            }
            "tool_use" => out.push(AgentOutput::Tool {
                name: str_at(&v, "/tool_name").unwrap_or("tool").to_string(),
                detail: tool_detail(v.get("parameters")),
            }),
            "tool_result" if str_at(&v, "/status") == Some("error") => {
                let m = str_at(&v, "/error/message").unwrap_or("tool failed");
                out.push(AgentOutput::Text(format!("[tool error] {m}")));
            }
            "error" => {
                let m = str_at(&v, "/message").unwrap_or("unknown error");
                if str_at(&v, "/severity") == Some("warning") {
                    out.push(AgentOutput::Text(format!("[gemini warning] {m}")));
                } else {
                    out.push(gemini_error(&v, m));
                }
            }
            "result" => {
                if let Some(stats) = v.get("stats").filter(|s| s.is_object()) {
                    out.push(AgentOutput::Usage {
                        tokens_in: u64_at(stats, "/input_tokens"),
                        tokens_out: u64_at(stats, "/output_tokens"),
                        cost_usd: 0.0,
                    });
                }
                if str_at(&v, "/status") == Some("error") {
                    let e = v.get("error").cloned().unwrap_or(Value::Null);
                    out.push(gemini_error(&e, "gemini ended with status `error`"));
                }
            }
            _ => {}
        }
        out
    }
}

/// An error object `{type, message, code?}`: the code, when an HTTP status, decides first.
fn gemini_error(e: &Value, fallback: &str) -> AgentOutput {
    let message = str_at(e, "/message").unwrap_or(fallback);
    let status = e.get("code").and_then(Value::as_u64).filter(|c| (400..600).contains(c)).map(|c| c as u16);
    let mut out = error_from(message, status);
    // A quota that resets within seconds is a per-minute limit: wait, do not switch models.
    if let AgentOutput::Error { class, retry_after: Some(_), .. } = &mut out {
        if *class == swarm_core::failure::FailureClass::QuotaExhausted {
            *class = swarm_core::failure::FailureClass::RateLimited;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::*;

    #[test]
    fn launch_plain_and_with_a_provider() {
        let task = crate::custom::tests::task("t", "gemini");
        let dir = project("gemini");
        let l = GeminiAdapter.launch(&spec(&dir, &task, "- do it", None)).unwrap();
        assert!(l.program.ends_with("gemini"));
        let reports = dir.join("completions").display().to_string();
        assert_eq!(
            l.args,
            [
                "-p",
                "",
                "-o",
                "stream-json",
                "--approval-mode=yolo",
                "--skip-trust",
                "-m",
                "plain-model",
                "--include-directories",
                reports.as_str()
            ]
        );
        assert_eq!(l.stdin.as_deref(), Some("- do it"), "the prompt goes on stdin, as it is");
        assert_eq!(env(&l, "HOME"), None);

        let l = GeminiAdapter.launch(&spec(&dir, &task, "p", Some(provider("gemini")))).unwrap();
        let home = env(&l, "HOME").unwrap().to_string();
        let settings = std::fs::read_to_string(format!("{home}/.gemini/settings.json")).unwrap();
        std::fs::remove_dir_all(&dir).ok();
        assert!(home.contains("attempt"));
        assert!(settings.contains("gemini-api-key") && !settings.contains("MY_KEY"));
        assert!(settings.contains("AGENTS.md"), "{settings}");
        assert!(l.program.ends_with("gemini"));
        assert_eq!(l.env_from, [("GEMINI_API_KEY".to_string(), "MY_KEY".to_string())]);
        assert!(l.args.windows(2).any(|w| w == ["-m", "ok"]));
        assert_eq!(env(&l, "GOOGLE_GEMINI_BASE_URL"), Some("http://127.0.0.1:9"), "the root");
        assert!(env(&l, "TMPDIR").unwrap().contains("attempt"));
    }

    /// What the gateway's provider gives (`swarm/auto` at `http://127.0.0.1:PORT/v1`, its token
    /// in `SWARM_GATEWAY_TOKEN`): the root URL, the token as the API key, and no alias.
    #[test]
    fn the_gateway_provider_is_no_gemini_cli_alias() {
        let task = crate::custom::tests::task("t", "gemini");
        let dir = project("gemini");
        let l = GeminiAdapter.launch(&spec(&dir, &task, "p", Some(gateway()))).unwrap();
        std::fs::remove_dir_all(&dir).ok();
        assert!(l.args.windows(2).any(|w| w == ["-m", "swarm-auto"]), "{:?}", l.args);
        assert_eq!(env(&l, "GOOGLE_GEMINI_BASE_URL"), Some("http://127.0.0.1:4321"));
        assert_eq!(l.env_from, [("GEMINI_API_KEY".to_string(), "SWARM_GATEWAY_TOKEN".to_string())]);
    }

    /// Gemini CLI 0.61.0 after a per-day quota 429 (issue 19 captures, `gemini-429-day`): exit
    /// 173, the provider's message in the result.
    #[test]
    fn exit_codes_are_http_statuses() {
        let result = r#"{"type":"result","status":"error","error":{"type":"unknown","message":"[API Error: You have exhausted your daily quota on this model.]\nPlease wait and try again later."},"stats":{"total_tokens":0,"input_tokens":0,"output_tokens":0}}"#;
        let errors: Vec<_> = GeminiAdapter
            .parse_line(Stream::Stdout, result)
            .into_iter()
            .filter(|o| matches!(o, AgentOutput::Error { .. }))
            .collect();
        assert_eq!(errors.len(), 1);
        assert_eq!(
            GeminiAdapter.classify(Some(173), &errors, &[]).map(|c| c.0),
            Some(FailureClass::QuotaExhausted)
        );
        assert_eq!(GeminiAdapter.classify(Some(173), &[], &[]).map(|c| c.0), Some(FailureClass::RateLimited));
        assert_eq!(GeminiAdapter.classify(Some(41), &[], &[]).map(|c| c.0), Some(FailureClass::Auth));
        assert_eq!(GeminiAdapter.classify(Some(247), &[], &[]).map(|c| c.0), Some(FailureClass::Overloaded));
        assert_eq!(GeminiAdapter.classify(Some(1), &[], &[]).map(|c| c.0), Some(FailureClass::Crashed));
    }
}
