//! Cline 3.0.65: `cline --json --config DIR -c WORKDIR " "` with the prompt piped on stdin
//! (cline appends piped stdin to the positional prompt; `--json` insists on a positional one, and
//! an argument is capped at 128 KiB). A provider from `swarm.toml` becomes the attempt's own
//! `DIR/data/settings/providers.json` *without* a key: cline reads `OPENAI_API_KEY` from the
//! environment, which swarm fills from the provider's key variable, so the key is in no argv and
//! no file. `CLINE_SESSION_BACKEND_MODE=local` keeps the session in-process: in its default
//! mode cline starts a hub daemon (setsid, ~200 MB, never exits) on every headless run.

use crate::adapter::{Adapter, AdapterError, AgentOutput, AttemptSpec, Launch};
use crate::classify;
use crate::launch::{isolated_home, locate_binary, valid_env_name};
use serde_json::{json, Value};
use swarm_core::event::Stream;
use swarm_core::failure::FailureClass;

pub struct ClineAdapter;

/// cline's provider settings (the file `cline auth` writes), with no `apiKey`. `updatedAt` is
/// required: cline silently replaces a file without it.
fn provider_settings(model: &str, base_url: Option<&str>) -> Value {
    let mut settings = json!({ "provider": "openai-compatible", "model": model });
    if let Some(url) = base_url {
        settings["baseUrl"] = json!(url);
    }
    json!({
        "version": 1,
        "lastUsedProvider": "openai-compatible",
        "modes": {},
        "providers": { "openai-compatible": {
            "settings": settings,
            "updatedAt": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "tokenSource": "manual",
        } },
    })
}

impl Adapter for ClineAdapter {
    fn name(&self) -> &str {
        "cline"
    }

    fn speaks_gateway(&self) -> bool {
        true
    }

    fn launch(&self, spec: &AttemptSpec<'_>) -> Result<Launch, AdapterError> {
        let program = locate_binary("cline", "cline", spec)?;
        let workdir = spec.workdir.display().to_string();
        let invalid = |message: String| AdapterError::Invalid { agent: "cline".into(), message };
        let mut env = vec![
            ("PWD".to_string(), workdir.clone()),
            ("CLINE_SESSION_BACKEND_MODE".into(), "local".into()),
            ("CLINE_NO_AUTO_UPDATE".into(), "1".into()),
        ];
        let mut env_from = Vec::new();
        let mut args = vec!["--json".to_string()];
        match &spec.provider {
            Some(p) => {
                if !valid_env_name(&p.api_key_env) {
                    return Err(invalid(format!(
                        "`{}` is not a valid environment variable name",
                        p.api_key_env
                    )));
                }
                let config = spec.attempt_dir.join("cline-config");
                let settings = config.join("data/settings");
                std::fs::create_dir_all(&settings)
                    .map_err(|e| invalid(format!("cannot create {}: {e}", settings.display())))?;
                let file = settings.join("providers.json");
                let text = provider_settings(&p.model, p.base_url.as_deref()).to_string();
                std::fs::write(&file, text)
                    .map_err(|e| invalid(format!("cannot write {}: {e}", file.display())))?;
                env.extend(isolated_home("cline", spec)?);
                env_from.push(("OPENAI_API_KEY".to_string(), p.api_key_env.clone()));
                args.extend(["--config".into(), config.display().to_string()]);
            }
            None => {
                if let Some(m) = spec.model {
                    args.extend(["-m".into(), m.to_string()]);
                }
            }
        }
        args.extend(["-c".into(), workdir, "--".into(), " ".into()]);
        Ok(Launch { env_from, ..Launch::prompt_on_stdin(spec, program, args, env) })
    }

    /// cline 3.0.65 exits 0 without a word when a prompt holds ` @word` (it goes looking for a
    /// file to attach and never starts the run): an exit 0 with no run result is no success.
    fn needs_usage_to_succeed(&self) -> bool {
        true
    }

    /// One line of `cline --json`: `hook_event`, `agent_event` and `run_result` objects.
    fn parse_line(&self, _stream: Stream, line: &str) -> Vec<AgentOutput> {
        let trimmed = line.trim();
        let Ok(Value::Object(v)) = serde_json::from_str::<Value>(trimmed) else {
            return if trimmed.is_empty() { vec![] } else { vec![AgentOutput::Text(line.to_string())] };
        };
        let str_at = |v: &Value, p: &str| v.pointer(p).and_then(Value::as_str).map(String::from);
        let root = Value::Object(v);
        let mut out = Vec::new();
        match str_at(&root, "/type").as_deref().unwrap_or("") {
            "hook_event" => {
                if let Some(id) = str_at(&root, "/taskId") {
                    out.push(AgentOutput::Session(id));
                }
            }
            "agent_event" => {
                let ev = root.get("event").cloned().unwrap_or(Value::Null);
                match str_at(&ev, "/type").as_deref().unwrap_or("") {
                    "content_start" if str_at(&ev, "/contentType").as_deref() == Some("tool") => {
                        let name = str_at(&ev, "/toolName").unwrap_or_else(|| "tool".into());
                        let detail = ["/input/path", "/input/command", "/input/file_path", "/input/query"]
                            .iter()
                            .find_map(|p| str_at(&ev, p))
                            .unwrap_or_default();
                        out.push(AgentOutput::Tool { name, detail });
                    }
                    "content_end" if str_at(&ev, "/contentType").as_deref() == Some("text") => {
                        if let Some(t) = str_at(&ev, "/text").filter(|t| !t.trim().is_empty()) {
                            out.push(AgentOutput::Text(t));
                        }
                    }
                    "error" => {
                        let message = str_at(&ev, "/error/message")
                            .or_else(|| str_at(&ev, "/message"))
                            .unwrap_or_else(|| "unknown error".into());
                        out.push(error_from_message(&message));
                    }
                    _ => {}
                }
            }
            "run_result" => {
                let usage = root.get("aggregateUsage").or_else(|| root.get("usage"));
                let n = |k: &str| usage.and_then(|u| u.get(k)).and_then(Value::as_u64).unwrap_or(0);
                out.push(AgentOutput::Usage {
                    tokens_in: n("inputTokens"),
                    tokens_out: n("outputTokens"),
                    cost_usd: usage.and_then(|u| u.get("totalCost")).and_then(Value::as_f64).unwrap_or(0.0),
                });
            }
            "error" => {
                let message = str_at(&root, "/message").unwrap_or_else(|| "unknown error".into());
                out.push(error_from_message(&message));
            }
            _ => {}
        }
        out
    }
}

fn error_from_message(message: &str) -> AgentOutput {
    AgentOutput::Error {
        class: classify::from_text(message).unwrap_or(FailureClass::AgentError),
        message: message.to_string(),
        retry_after: classify::retry_after_in_text(message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::*;
    use std::time::Duration;

    #[test]
    fn cline_fixture_usage_session_tool_text() {
        let path = format!(
            "{}/../swarm-fakellm/tests/fixtures/cline-3.0.65-write-hello.stdout.jsonl",
            env!("CARGO_MANIFEST_DIR")
        );
        let outs: Vec<_> = std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .flat_map(|l| ClineAdapter.parse_line(Stream::Stdout, l))
            .collect();
        assert!(outs.contains(&AgentOutput::Session("conv_1795524361510_bax9l83".into())));
        assert!(outs.contains(&AgentOutput::Tool { name: "editor".into(), detail: "hello.txt".into() }));
        assert!(outs.contains(&AgentOutput::Text("DONE".into())));
        let usage: Vec<_> = outs.iter().filter(|o| matches!(o, AgentOutput::Usage { .. })).collect();
        assert_eq!(usage, [&AgentOutput::Usage { tokens_in: 2283, tokens_out: 18, cost_usd: 0.0 }]);
    }

    #[test]
    fn cline_429_is_classified_from_the_message_text() {
        let lines = [
            r#"{"ts":"x","type":"agent_event","event":{"type":"error","error":{"message":"429 Rate limit reached for model `r429` (fake-llm): 429 Too Many Requests. Please try again in 1s."},"errorClass":"unknown","recoverable":false}}"#,
            r#"{"ts":"x","type":"run_result","finishReason":"error","usage":{"inputTokens":0,"outputTokens":0,"totalCost":0}}"#,
        ];
        let outs: Vec<_> = lines.iter().flat_map(|l| ClineAdapter.parse_line(Stream::Stdout, l)).collect();
        let errors: Vec<_> =
            outs.iter().filter(|o| matches!(o, AgentOutput::Error { .. })).cloned().collect();
        assert_eq!(
            ClineAdapter.classify(Some(1), &errors, &[]),
            Some((FailureClass::RateLimited, Some(Duration::from_secs(1))))
        );
        let stderr = ClineAdapter
            .parse_line(Stream::Stderr, r#"{"type":"error","message":"Unauthorized: invalid api key"}"#);
        assert!(matches!(stderr[0], AgentOutput::Error { class: FailureClass::Auth, .. }));
    }

    #[test]
    fn launch_keeps_the_key_out_of_argv_and_files_and_runs_without_the_hub() {
        let task = crate::custom::tests::task("t", "cline");
        let dir = project("cline");
        let l =
            ClineAdapter.launch(&spec(&dir, &task, "- do it", Some(provider("openai-compatible")))).unwrap();
        let config = dir.join("attempt/cline-config");
        let settings: Value =
            serde_json::from_slice(&std::fs::read(config.join("data/settings/providers.json")).unwrap())
                .unwrap();
        std::fs::remove_dir_all(&dir).ok();
        let expected_args = [
            "--json",
            "--config",
            &config.display().to_string(),
            "-c",
            &dir.display().to_string(),
            "--",
            " ",
        ];
        assert_eq!(l.args, expected_args);
        assert_eq!(l.stdin.as_deref(), Some("- do it"), "the prompt is piped on stdin");
        assert!(l.setup.is_empty(), "no `cline auth` with the key in its argv");
        assert_eq!(l.env_from, [("OPENAI_API_KEY".to_string(), "MY_KEY".to_string())]);
        assert!(l.env.contains(&("CLINE_SESSION_BACKEND_MODE".into(), "local".into())));
        let p = &settings["providers"]["openai-compatible"];
        assert_eq!(p["settings"]["baseUrl"], "http://127.0.0.1:9/v1");
        assert_eq!(p["settings"]["model"], "ok");
        assert!(p["settings"].get("apiKey").is_none() && p["updatedAt"].is_string(), "{settings:#}");
    }

    #[test]
    fn garbage_is_text() {
        assert_eq!(
            ClineAdapter.parse_line(Stream::Stdout, "{\"type\":\"agent_ev"),
            vec![AgentOutput::Text("{\"type\":\"agent_ev".into())]
        );
        assert!(ClineAdapter
            .parse_line(Stream::Stdout, "{\"type\":\"agent_event\",\"event\":42}")
            .is_empty());
        assert!(ClineAdapter.parse_line(Stream::Stdout, "").is_empty());
    }
}
