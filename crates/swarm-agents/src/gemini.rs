//! Gemini CLI: `gemini --output-format stream-json --yolo [-m MODEL] --prompt=PROMPT` (the `=`
//! form so a prompt starting with `-` is never taken for an option). `GEMINI_CLI_TRUST_WORKSPACE`
//! keeps the trusted-folders check from downgrading `--yolo` in a fresh worktree.
//!
//! With a provider from `swarm.toml` (Gemini CLI speaks only the Gemini API, so only a
//! Gemini-compatible endpoint or proxy works) the attempt gets its own HOME/XDG dirs, a
//! `~/.gemini/settings.json` selecting API-key auth (no key in it), `GOOGLE_GEMINI_BASE_URL` for
//! the base URL, and `GEMINI_API_KEY` copied from the provider's key variable by a `/bin/sh`
//! wrapper.
//!
//! Output (packages/core/src/output/types.ts): `init{session_id,model}`,
//! `message{role,content,delta?}`, `tool_use{tool_name,tool_id,parameters}`,
//! `tool_result{tool_id,status,output?,error?}`, `error{severity,message}` and
//! `result{status,error?{type,message},stats{input_tokens,output_tokens,…}}`.

use crate::adapter::{Adapter, AdapterError, AgentOutput, AttemptSpec, Launch};
use crate::launch::{isolated_home, locate_binary, make_dir, with_key_from_env};
use crate::output::{error_from, json_object, str_at, tool_detail, u64_at};
use serde_json::{json, Value};
use swarm_core::event::Stream;

pub struct GeminiAdapter;

impl Adapter for GeminiAdapter {
    fn name(&self) -> &str {
        "gemini"
    }

    fn launch(&self, spec: &AttemptSpec<'_>) -> Result<Launch, AdapterError> {
        let program = locate_binary("gemini", "gemini", spec)?;
        let mut env = vec![
            ("PWD".to_string(), spec.workdir.display().to_string()),
            ("GEMINI_CLI_TRUST_WORKSPACE".into(), "true".into()),
            ("NO_COLOR".into(), "1".into()),
        ];
        let mut args: Vec<String> =
            ["--output-format", "stream-json", "--yolo"].iter().map(|s| s.to_string()).collect();
        let prompt = format!("--prompt={}", spec.prompt);
        let (program, args) = match &spec.provider {
            Some(p) => {
                let home = isolated_home("gemini", spec)?;
                let home_dir =
                    home.iter().find(|(k, _)| k == "HOME").map(|(_, v)| v.clone()).unwrap_or_default();
                let dot = std::path::Path::new(&home_dir).join(".gemini");
                make_dir("gemini", &dot)?;
                let settings = json!({
                    "security": { "auth": { "selectedType": "gemini-api-key" } },
                    "general": { "disableAutoUpdate": true, "disableUpdateNag": true },
                    "privacy": { "usageStatisticsEnabled": false },
                });
                std::fs::write(dot.join("settings.json"), settings.to_string()).map_err(|e| {
                    AdapterError::Invalid {
                        agent: "gemini".into(),
                        message: format!("cannot write settings: {e}"),
                    }
                })?;
                env.extend(home);
                if let Some(url) = &p.base_url {
                    env.push(("GOOGLE_GEMINI_BASE_URL".into(), url.clone()));
                }
                args.extend(["-m".into(), p.model.clone(), prompt]);
                with_key_from_env("gemini", program, args, "GEMINI_API_KEY", &p.api_key_env)?
            }
            None => {
                if let Some(m) = spec.model {
                    args.extend(["-m".into(), m.to_string()]);
                }
                args.push(prompt);
                (program, args)
            }
        };
        Ok(Launch::in_workdir(spec, program, args, env))
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
        assert_eq!(
            l.args,
            ["--output-format", "stream-json", "--yolo", "-m", "plain-model", "--prompt=- do it"]
        );
        assert_eq!(env(&l, "GEMINI_CLI_TRUST_WORKSPACE"), Some("true"));
        assert_eq!(env(&l, "HOME"), None);

        let l = GeminiAdapter.launch(&spec(&dir, &task, "p", Some(provider("gemini")))).unwrap();
        let home = env(&l, "HOME").unwrap().to_string();
        let settings = std::fs::read_to_string(format!("{home}/.gemini/settings.json")).unwrap();
        std::fs::remove_dir_all(&dir).ok();
        assert!(home.contains("attempt"));
        assert!(settings.contains("gemini-api-key") && !settings.contains("MY_KEY"));
        assert_eq!(l.program, "/bin/sh");
        assert!(l.args[1].contains("GEMINI_API_KEY=\"${MY_KEY}\""));
        assert!(l.args.ends_with(&["-m".to_string(), "ok".to_string(), "--prompt=p".to_string()]));
        assert_eq!(env(&l, "GOOGLE_GEMINI_BASE_URL"), Some("http://127.0.0.1:9/v1"));
    }
}
