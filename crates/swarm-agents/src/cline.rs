//! Cline: `cline auth -p openai -k KEY -m MODEL -b BASE_URL --config DIR` once per attempt (a
//! setup command, run through `sh` so the key comes from the environment and never appears in
//! swarm's launch record), then `cline --json --config DIR -c WORKDIR PROMPT`.

use crate::adapter::{Adapter, AdapterError, AgentOutput, AttemptSpec, Launch, SetupCommand};
use crate::classify;
use crate::opencode::{isolated_home, locate_binary};
use serde_json::Value;
use swarm_core::event::Stream;
use swarm_core::failure::FailureClass;

pub struct ClineAdapter;

fn valid_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl Adapter for ClineAdapter {
    fn name(&self) -> &str {
        "cline"
    }

    fn launch(&self, spec: &AttemptSpec<'_>) -> Result<Launch, AdapterError> {
        let program = locate_binary("cline", "cline", spec)?;
        let workdir = spec.workdir.display().to_string();
        let mut env = vec![("PWD".to_string(), workdir.clone())];
        let mut setup = Vec::new();
        let mut args = vec!["--json".to_string()];
        match &spec.provider {
            Some(p) => {
                if !valid_env_name(&p.api_key_env) {
                    return Err(AdapterError::Invalid {
                        agent: "cline".into(),
                        message: format!("`{}` is not a valid environment variable name", p.api_key_env),
                    });
                }
                let config = spec.attempt_dir.join("cline-config");
                std::fs::create_dir_all(&config).map_err(|e| AdapterError::Invalid {
                    agent: "cline".into(),
                    message: format!("cannot create {}: {e}", config.display()),
                })?;
                env.extend(isolated_home("cline", spec)?);
                let config = config.display().to_string();
                let mut script =
                    format!("exec \"$0\" auth -p openai -k \"${}\" -m \"$1\" --config \"$2\"", p.api_key_env);
                let mut sargs = vec![program.clone(), p.model.clone(), config.clone()];
                if let Some(url) = &p.base_url {
                    script.push_str(" -b \"$3\"");
                    sargs.push(url.clone());
                }
                setup.push(SetupCommand {
                    program: "/bin/sh".into(),
                    args: std::iter::once("-c".to_string())
                        .chain(std::iter::once(script))
                        .chain(sargs)
                        .collect(),
                    env: env.clone(),
                });
                args.extend(["--config".into(), config]);
            }
            None => {
                if let Some(m) = spec.model {
                    args.extend(["-m".into(), m.to_string()]);
                }
            }
        }
        args.extend(["-c".into(), workdir, "--".into(), spec.prompt.to_string()]);
        Ok(Launch { program, args, env, cwd: spec.workdir.clone(), stdin: None, setup })
    }

    fn parse_line(&self, stream: Stream, line: &str) -> Vec<AgentOutput> {
        parse_line(stream, line)
    }
}

fn error_from_message(message: &str) -> AgentOutput {
    AgentOutput::Error {
        class: classify::from_text(message).unwrap_or(FailureClass::AgentError),
        message: message.to_string(),
        retry_after: classify::retry_after_in_text(message),
    }
}

/// One line of `cline --json`: `hook_event`, `agent_event` and `run_result` objects.
pub fn parse_line(_stream: Stream, line: &str) -> Vec<AgentOutput> {
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

#[cfg(test)]
mod tests {
    use super::*;
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
            .flat_map(|l| parse_line(Stream::Stdout, l))
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
        let outs: Vec<_> = lines.iter().flat_map(|l| parse_line(Stream::Stdout, l)).collect();
        let errors: Vec<_> =
            outs.iter().filter(|o| matches!(o, AgentOutput::Error { .. })).cloned().collect();
        assert_eq!(
            ClineAdapter.classify(Some(1), &errors, &[]),
            Some((FailureClass::RateLimited, Some(Duration::from_secs(1))))
        );
        let stderr =
            parse_line(Stream::Stderr, r#"{"type":"error","message":"Unauthorized: invalid api key"}"#);
        assert!(matches!(stderr[0], AgentOutput::Error { class: FailureClass::Auth, .. }));
    }

    #[test]
    fn garbage_is_text() {
        assert_eq!(
            parse_line(Stream::Stdout, "{\"type\":\"agent_ev"),
            vec![AgentOutput::Text("{\"type\":\"agent_ev".into())]
        );
        assert!(parse_line(Stream::Stdout, "{\"type\":\"agent_event\",\"event\":42}").is_empty());
        assert!(parse_line(Stream::Stdout, "").is_empty());
    }
}
