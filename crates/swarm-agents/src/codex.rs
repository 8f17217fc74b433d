//! Codex CLI 0.171.0: `codex exec --json --skip-git-repo-check
//! --dangerously-bypass-approvals-and-sandbox -C WORKDIR [-m MODEL] -`, the prompt on stdin
//! (byte for byte; it reads the project's AGENTS.md itself). swarm already confines each attempt to its own
//! worktree, and codex's own sandbox (landlock/seccomp) often cannot start in containers, so the
//! documented "no approvals, no sandbox" mode is used (`--full-auto` would still sandbox).
//!
//! With a provider from `swarm.toml` the attempt gets its own `CODEX_HOME` holding a
//! `config.toml` with `model`, `model_provider` and a `[model_providers.swarm]` entry whose
//! `env_key` names the provider's key variable: codex reads the key from the environment, the
//! file never holds it. Codex speaks only the Responses API to a provider (`POST {base_url}/responses`,
//! so the base URL keeps its `/v1`). HOME and the XDG dirs are private to the attempt then too.
//! A model name it has no metadata for (any but OpenAI's) gives the classic function tools
//! (`exec_command`); OpenAI's own names switch it to "code mode" (a JavaScript `exec` tool).
//! Codex has no timeout of its own on a model that never answers: swarm's `stall` ends it.
//!
//! Output (codex-rs/exec/src/exec_events.rs): `thread.started{thread_id}`, `turn.started`,
//! `item.started|updated|completed{item:{id,type,…}}`, `turn.completed{usage}`,
//! `turn.failed{error:{message}}` and `error{message}`.

use crate::adapter::{Adapter, AdapterError, AgentOutput, AttemptSpec, Launch};
use crate::launch::{check_env_name, isolated_home, locate_binary, make_dir, write_file};
use crate::output::{error_from, json_object, str_at, u64_at};
use serde_json::Value;
use swarm_core::event::Stream;

pub struct CodexAdapter;

/// A TOML basic string (JSON string escapes are valid TOML escapes).
fn toml_str(s: &str) -> String {
    serde_json::Value::String(s.to_string()).to_string()
}

/// `config.toml` for a provider: no key in it, only the name of the variable that holds it.
pub fn provider_config(p: &crate::adapter::ProviderSpec) -> String {
    // Codex removed `wire_api = "chat"` in February 2026 (openai/codex#10157; a config naming it
    // no longer loads): the endpoint must serve the Responses API (`POST {base_url}/responses`).
    // A chat-completions-only server needs a responses shim in front of it.
    let wire_api = "responses";
    let mut c = format!(
        "model = {}\nmodel_provider = \"swarm\"\n\n[model_providers.swarm]\nname = {}\nenv_key = {}\nwire_api = \"{wire_api}\"\n",
        toml_str(&p.model),
        toml_str(&p.name),
        toml_str(&p.api_key_env),
    );
    if let Some(url) = &p.base_url {
        c.push_str(&format!("base_url = {}\n", toml_str(url)));
    }
    c
}

impl Adapter for CodexAdapter {
    fn name(&self) -> &str {
        "codex"
    }

    fn speaks_gateway(&self) -> bool {
        true
    }

    fn launch(&self, spec: &AttemptSpec<'_>) -> Result<Launch, AdapterError> {
        let program = locate_binary("codex", "codex", spec)?;
        let workdir = spec.workdir.display().to_string();
        let mut env = vec![("PWD".to_string(), workdir.clone()), ("NO_COLOR".into(), "1".into())];
        let mut args: Vec<String> =
            ["exec", "--json", "--skip-git-repo-check", "--dangerously-bypass-approvals-and-sandbox", "-C"]
                .iter()
                .map(|s| s.to_string())
                .collect();
        args.push(workdir);
        match &spec.provider {
            Some(p) => {
                check_env_name("codex", &p.api_key_env)?;
                env.extend(isolated_home("codex", spec)?);
                let home_dir = spec.attempt_dir.join("codex-home");
                let home = make_dir("codex", &home_dir)?;
                write_file("codex", &home_dir.join("config.toml"), &provider_config(p))?;
                env.push(("CODEX_HOME".into(), home));
                args.extend(["-m".into(), p.model.clone()]);
            }
            None => {
                if let Some(m) = spec.model {
                    args.extend(["-m".into(), m.to_string()]);
                }
            }
        }
        args.push("-".into());
        Ok(Launch::prompt_on_stdin(spec, program, args, env))
    }

    /// One line of `codex exec --json`.
    fn parse_line(&self, _stream: Stream, line: &str) -> Vec<AgentOutput> {
        let v = match json_object(line) {
            Ok(v) => v,
            Err(out) => return out,
        };
        let mut out = Vec::new();
        let item = v.get("item").cloned().unwrap_or(Value::Null);
        match str_at(&v, "/type").unwrap_or("") {
            "thread.started" => {
                if let Some(id) = str_at(&v, "/thread_id") {
                    out.push(AgentOutput::Session(id.to_string()));
                }
            }
            "turn.completed" => out.push(AgentOutput::Usage {
                // OpenAI counts cached input inside input_tokens.
                tokens_in: u64_at(&v, "/usage/input_tokens"),
                tokens_out: u64_at(&v, "/usage/output_tokens"),
                cost_usd: 0.0,
            }),
            "turn.failed" => {
                let m = str_at(&v, "/error/message").unwrap_or("turn failed");
                out.push(error_from(m, None));
            }
            "error" => {
                let m = str_at(&v, "/message").unwrap_or("unknown error");
                // Transient stream reconnects are reported as errors but are retried by codex.
                if m.starts_with("Reconnecting") {
                    out.push(AgentOutput::Text(format!("[codex] {m}")));
                } else {
                    out.push(error_from(m, None));
                }
            }
            "item.started" => out.extend(item_tool(&item)),
            "item.completed" => match str_at(&item, "/type").unwrap_or("") {
                "agent_message" => {
                    if let Some(t) = str_at(&item, "/text").filter(|t| !t.trim().is_empty()) {
                        out.push(AgentOutput::Text(t.to_string()));
                    }
                }
                "file_change" => {
                    let paths: Vec<&str> = item
                        .get("changes")
                        .and_then(Value::as_array)
                        .map(|a| a.iter().filter_map(|c| str_at(c, "/path")).collect())
                        .unwrap_or_default();
                    out.push(AgentOutput::Tool { name: "apply_patch".into(), detail: paths.join(", ") });
                }
                // Non-fatal, surfaced as an item: shown, not counted as the attempt's failure.
                "error" => {
                    let m = str_at(&item, "/message").unwrap_or("");
                    out.push(AgentOutput::Text(format!("[codex warning] {m}")));
                }
                _ => {}
            },
            _ => {}
        }
        out
    }
}

fn item_tool(item: &Value) -> Option<AgentOutput> {
    let (name, detail) = match str_at(item, "/type")? {
        "command_execution" => ("shell".to_string(), str_at(item, "/command").unwrap_or("").to_string()),
        "mcp_tool_call" => (
            format!(
                "{}.{}",
                str_at(item, "/server").unwrap_or("mcp"),
                str_at(item, "/tool").unwrap_or("tool")
            ),
            String::new(),
        ),
        "web_search" => ("web_search".into(), str_at(item, "/query").unwrap_or("").to_string()),
        "collab_tool_call" => (str_at(item, "/tool").unwrap_or("collab").to_string(), String::new()),
        _ => return None,
    };
    Some(AgentOutput::Tool { name, detail: detail.lines().next().unwrap_or("").chars().take(200).collect() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::*;

    #[test]
    fn launch_plain_and_with_a_provider() {
        let task = crate::custom::tests::task("t", "codex");
        let dir = project("codex");
        let w = dir.display().to_string();
        let l = CodexAdapter.launch(&spec(&dir, &task, "- do it", None)).unwrap();
        assert!(l.program.ends_with("codex"));
        assert_eq!(
            l.args,
            [
                "exec",
                "--json",
                "--skip-git-repo-check",
                "--dangerously-bypass-approvals-and-sandbox",
                "-C",
                w.as_str(),
                "-m",
                "plain-model",
                "-"
            ]
        );
        assert_eq!(l.stdin.as_deref(), Some("- do it"));
        assert_eq!(env(&l, "CODEX_HOME"), None);

        let l = CodexAdapter.launch(&spec(&dir, &task, "p", Some(provider("openai-compatible")))).unwrap();
        let home = env(&l, "CODEX_HOME").unwrap().to_string();
        let config = std::fs::read_to_string(format!("{home}/config.toml")).unwrap();
        std::fs::remove_dir_all(&dir).ok();
        assert!(home.contains("attempt"));
        assert!(env(&l, "HOME").unwrap().contains("attempt"));
        assert!(l.program.ends_with("codex"), "codex reads the key itself: no wrapper");
        assert!(l.args.windows(2).any(|w| w == ["-m", "ok"]));
        assert_eq!(
            config,
            "model = \"ok\"\nmodel_provider = \"swarm\"\n\n[model_providers.swarm]\nname = \"local\"\nenv_key = \"MY_KEY\"\nwire_api = \"responses\"\nbase_url = \"http://127.0.0.1:9/v1\"\n"
        );
        // The gateway's provider: its `/v1` URL (Codex POSTs `{base_url}/responses`), its token.
        let dir2 = project("codex");
        let l = CodexAdapter.launch(&spec(&dir2, &task, "p", Some(gateway()))).unwrap();
        let config =
            std::fs::read_to_string(format!("{}/config.toml", env(&l, "CODEX_HOME").unwrap())).unwrap();
        std::fs::remove_dir_all(&dir2).ok();
        assert!(config.contains("base_url = \"http://127.0.0.1:4321/v1\""), "{config}");
        assert!(config.contains("env_key = \"SWARM_GATEWAY_TOKEN\"") && config.contains("model = \"auto\""));
        let mut bad = provider("openai");
        bad.api_key_env = "X; rm -rf".into();
        let dir = project("codex");
        assert!(CodexAdapter.launch(&spec(&dir, &task, "p", Some(bad))).is_err());
        std::fs::remove_dir_all(&dir).ok();
    }
}
