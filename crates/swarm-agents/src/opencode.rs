//! OpenCode (and Kilo, its fork with the same JSON output): `opencode run --model P/M --format
//! json --auto` with the prompt on stdin. A provider from `swarm.toml` becomes an entry in the
//! attempt's own config (`OPENCODE_CONFIG_CONTENT` / `KILO_CONFIG_CONTENT`) whose `apiKey` is
//! `{env:VAR}`, so the key lives only in the environment; HOME and the XDG dirs are private to
//! the attempt then.

use crate::adapter::{Adapter, AdapterError, AgentOutput, AttemptSpec, Launch};
use crate::classify;
use crate::launch::{isolated_home, locate_binary};
use serde_json::{json, Value};
use swarm_core::event::Stream;

pub struct OpencodeAdapter {
    name: &'static str,
    binary: &'static str,
    /// Env var that carries the config JSON.
    config_env: &'static str,
    /// Env vars set to `1` (no autoupdate, no models.dev fetch, …).
    flags: &'static [&'static str],
}

impl OpencodeAdapter {
    pub fn opencode() -> OpencodeAdapter {
        OpencodeAdapter {
            name: "opencode",
            binary: "opencode",
            config_env: "OPENCODE_CONFIG_CONTENT",
            flags: &["OPENCODE_DISABLE_AUTOUPDATE", "OPENCODE_DISABLE_MODELS_FETCH"],
        }
    }

    pub fn kilo() -> OpencodeAdapter {
        OpencodeAdapter {
            name: "kilo",
            binary: "kilo",
            config_env: "KILO_CONFIG_CONTENT",
            flags: &[
                "KILO_DISABLE_AUTOUPDATE",
                "KILO_DISABLE_MODELS_FETCH",
                "OPENCODE_DISABLE_AUTOUPDATE",
                "OPENCODE_DISABLE_MODELS_FETCH",
            ],
        }
    }
}

/// The npm provider package opencode loads for a provider kind.
fn npm_for(kind: &str) -> &'static str {
    match kind {
        "anthropic" => "@ai-sdk/anthropic",
        "openai" => "@ai-sdk/openai",
        "gemini" | "google" => "@ai-sdk/google",
        "openrouter" => "@openrouter/ai-sdk-provider",
        _ => "@ai-sdk/openai-compatible",
    }
}

impl Adapter for OpencodeAdapter {
    fn name(&self) -> &str {
        self.name
    }

    fn speaks_gateway(&self) -> bool {
        true
    }

    fn launch(&self, spec: &AttemptSpec<'_>) -> Result<Launch, AdapterError> {
        let program = locate_binary(self.name, self.binary, spec)?;
        let mut env: Vec<(String, String)> = self.flags.iter().map(|f| (f.to_string(), "1".into())).collect();
        // opencode and kilo resolve relative paths against $PWD, not the process's directory.
        env.push(("PWD".into(), spec.workdir.display().to_string()));
        let model = match &spec.provider {
            Some(p) => {
                let full = format!("{}/{}", p.name, p.model);
                let mut options = json!({ "apiKey": format!("{{env:{}}}", p.api_key_env) });
                if let Some(url) = &p.base_url {
                    options["baseURL"] = json!(url);
                }
                let config = json!({
                    "$schema": "https://opencode.ai/config.json",
                    "autoupdate": false,
                    "share": "disabled",
                    "model": full,
                    "small_model": full,
                    "provider": { p.name.clone(): {
                        "npm": npm_for(&p.kind),
                        "name": p.name,
                        "options": options,
                        "models": { p.model.clone(): { "name": p.model, "tool_call": true } },
                    } },
                });
                env.push((self.config_env.into(), config.to_string()));
                env.extend(isolated_home(self.name, spec)?);
                Some(full)
            }
            None => spec.model.map(String::from),
        };
        let mut args = vec!["run".to_string()];
        if let Some(m) = model {
            args.extend(["--model".into(), m]);
        }
        args.extend(["--format".into(), "json".into(), "--auto".into()]);
        // A role the project defines as this CLI's own named agent (`.opencode/agent/NAME.md`).
        if let Some(role) =
            spec.task.role.as_deref().filter(|r| crate::roles::native_role(self.name, r, &spec.workdir))
        {
            args.extend(["--agent".into(), role.to_string()]);
        }
        // The prompt goes on stdin: as an argument opencode and kilo JSON-quote it (`say "hi"`
        // reaches the model as `"say \"hi\""`), and an argument is capped at 128 KiB.
        Ok(Launch::prompt_on_stdin(spec, program, args, env))
    }

    /// One line of `opencode run --format json` (also kilo's).
    fn parse_line(&self, _stream: Stream, line: &str) -> Vec<AgentOutput> {
        let trimmed = line.trim();
        let Ok(Value::Object(v)) = serde_json::from_str::<Value>(trimmed) else {
            return if trimmed.is_empty() { vec![] } else { vec![AgentOutput::Text(line.to_string())] };
        };
        let mut out = Vec::new();
        if let Some(s) = v.get("sessionID").and_then(Value::as_str) {
            out.push(AgentOutput::Session(s.to_string()));
        }
        let part = v.get("part").cloned().unwrap_or(Value::Null);
        match v.get("type").and_then(Value::as_str).unwrap_or("") {
            "text" => {
                if let Some(t) = part.get("text").and_then(Value::as_str).filter(|t| !t.trim().is_empty()) {
                    out.push(AgentOutput::Text(t.to_string()));
                }
            }
            "tool_use" => {
                let name = part.get("tool").and_then(Value::as_str).unwrap_or("tool").to_string();
                let input = part.pointer("/state/input");
                let detail = ["filePath", "path", "command", "pattern", "url", "description"]
                    .iter()
                    .find_map(|k| input.and_then(|i| i.get(*k)).and_then(Value::as_str))
                    .or_else(|| part.pointer("/state/title").and_then(Value::as_str))
                    .unwrap_or("")
                    .to_string();
                out.push(AgentOutput::Tool { name, detail });
            }
            "step_finish" => {
                let tokens = part.get("tokens");
                let n = |k: &str| tokens.and_then(|t| t.get(k)).and_then(Value::as_u64).unwrap_or(0);
                out.push(AgentOutput::Usage {
                    tokens_in: n("input"),
                    tokens_out: n("output") + n("reasoning"),
                    cost_usd: part.get("cost").and_then(Value::as_f64).unwrap_or(0.0),
                });
            }
            "error" => out.push(parse_error(v.get("error").unwrap_or(&Value::Null))),
            _ => {}
        }
        out
    }
}

/// `{"name":"APIError","data":{"message","statusCode","responseHeaders":{"retry-after"}}}`.
fn parse_error(e: &Value) -> AgentOutput {
    let data = e.get("data").unwrap_or(&Value::Null);
    let message = data
        .get("message")
        .and_then(Value::as_str)
        .or_else(|| e.get("message").and_then(Value::as_str))
        .or_else(|| e.get("name").and_then(Value::as_str))
        .unwrap_or("unknown error")
        .to_string();
    let status = data.get("statusCode").and_then(Value::as_u64).map(|s| s as u16);
    let class = match status {
        Some(s) => classify::from_status(s, &message),
        None => classify::from_text(&message).unwrap_or(swarm_core::failure::FailureClass::AgentError),
    };
    let headers = data.get("responseHeaders");
    let header = |k: &str| headers.and_then(|h| h.get(k)).and_then(Value::as_str);
    let retry_after = header("retry-after-ms")
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map(|ms| std::time::Duration::from_millis(ms.max(0.0) as u64))
        .or_else(|| header("retry-after").and_then(classify::parse_retry_after))
        .or_else(|| classify::retry_after_in_text(&message));
    AgentOutput::Error { class, message, retry_after }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::*;
    use std::time::Duration;
    use swarm_core::failure::FailureClass;

    fn fixture(name: &str) -> String {
        let path = format!("{}/../swarm-fakellm/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    fn all(name: &str) -> Vec<AgentOutput> {
        fixture(name)
            .lines()
            .flat_map(|l| OpencodeAdapter::opencode().parse_line(Stream::Stdout, l))
            .collect()
    }

    fn usage(outs: &[AgentOutput]) -> (u64, u64) {
        outs.iter().fold((0, 0), |(i, o), x| match x {
            AgentOutput::Usage { tokens_in, tokens_out, .. } => (i + tokens_in, o + tokens_out),
            _ => (i, o),
        })
    }

    #[test]
    fn opencode_fixture_usage_session_tool_text() {
        let outs = all("opencode-1.18.33-write-hello.stdout.jsonl");
        assert_eq!(usage(&outs), (2437 + 2508, 18 + 1));
        assert!(outs.contains(&AgentOutput::Session("ses_df268bbf4ffe7vjtm1502qQKTQ".into())));
        assert!(outs.contains(&AgentOutput::Tool { name: "write".into(), detail: "hello.txt".into() }));
        assert!(outs.contains(&AgentOutput::Text("DONE".into())));
    }

    #[test]
    fn kilo_fixture_has_the_same_shape() {
        let outs = all("kilo-7.7.7-write-hello.stdout.jsonl");
        assert_eq!(usage(&outs), (3503 + 3575, 18 + 1));
        assert!(outs.contains(&AgentOutput::Session("ses_df2686109ffew8gIOAaNWlug2q".into())));
        assert!(outs.iter().any(|o| matches!(o, AgentOutput::Tool { name, .. } if name == "write")));
    }

    #[test]
    fn opencode_429_is_rate_limited_with_retry_after() {
        let outs = all("opencode-1.18.33-r429.stdout.jsonl");
        let errors: Vec<_> =
            outs.iter().filter(|o| matches!(o, AgentOutput::Error { .. })).cloned().collect();
        assert_eq!(errors.len(), 1);
        let AgentOutput::Error { class, retry_after, message } = &errors[0] else { unreachable!() };
        assert_eq!(*class, FailureClass::RateLimited);
        assert_eq!(*retry_after, Some(Duration::from_secs(1)));
        assert!(message.contains("Rate limit"), "{message}");
        let a = OpencodeAdapter::opencode();
        assert_eq!(
            a.classify(Some(1), &errors, &[]),
            Some((FailureClass::RateLimited, Some(Duration::from_secs(1))))
        );
    }

    #[test]
    fn garbage_and_truncated_lines_are_text() {
        for line in [
            "not json",
            "{\"type\":\"step_finish\",\"part\":{\"tok",
            "[1,2]",
            "{\"type\":\"error\"}",
            "\u{0}\u{1}",
        ] {
            let outs = OpencodeAdapter::opencode().parse_line(Stream::Stdout, line);
            assert!(!outs.is_empty() || line.trim().is_empty(), "{line}");
        }
        assert_eq!(
            OpencodeAdapter::opencode().parse_line(Stream::Stderr, "INFO hello"),
            vec![AgentOutput::Text("INFO hello".into())]
        );
        assert!(matches!(
            OpencodeAdapter::opencode().parse_line(Stream::Stdout, "{\"type\":\"error\"}")[0],
            AgentOutput::Error { class: FailureClass::AgentError, .. }
        ));
        // A step_finish without numbers is zero usage, not a panic.
        assert_eq!(
            OpencodeAdapter::opencode().parse_line(
                Stream::Stdout,
                "{\"type\":\"step_finish\",\"part\":{\"tokens\":{\"input\":\"x\"}}}"
            ),
            vec![AgentOutput::Usage { tokens_in: 0, tokens_out: 0, cost_usd: 0.0 }]
        );
    }

    #[test]
    fn launch_with_a_provider_keeps_the_key_out_of_the_config() {
        let task = crate::custom::tests::task("t", "opencode");
        let dir = project("opencode");
        let l = OpencodeAdapter::opencode()
            .launch(&spec(&dir, &task, "- do it", Some(provider("openai-compatible"))))
            .unwrap();
        std::fs::remove_dir_all(&dir).ok();
        assert!(l.program.ends_with("opencode"));
        assert_eq!(l.args, ["run", "--model", "local/ok", "--format", "json", "--auto"]);
        assert_eq!(l.stdin.as_deref(), Some("- do it"), "the prompt goes on stdin, as it is");
        let config = &l.env.iter().find(|(k, _)| k == "OPENCODE_CONFIG_CONTENT").unwrap().1;
        let v: Value = serde_json::from_str(config).unwrap();
        assert_eq!(v.pointer("/provider/local/options/apiKey").unwrap(), "{env:MY_KEY}");
        assert_eq!(v.pointer("/provider/local/options/baseURL").unwrap(), "http://127.0.0.1:9/v1");
        assert!(l.env.iter().any(|(k, v)| k == "HOME" && v.contains("attempt")));
    }
}
