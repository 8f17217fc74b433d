//! The gateway's Anthropic, Responses and Gemini faces through `swarm run`: agents that speak
//! as Claude Code, Codex and Gemini CLI do (curl, their bodies and headers) are served by the
//! hierarchy from an `anthropic` and a `gemini` provider (swarm's fake model), a rate limit on
//! the first model absorbed; the report meters their tokens, the provider gets its key in its
//! own header and the agents never see it.

mod support;

use serde_json::{json, Value};
use std::time::Duration;
use support::*;

const KEY: &str = "sk-provider-secret-0123456789";
const PROMPT: &str = "Say \"hi\" — ünïcode\n\tand stop";
const SCENARIO: &str = "[models.ok]\nsteps = [ { say = \"hello from the fake model\" } ]\n\
                        usage = { prompt_tokens = 11, completion_tokens = 7 }\n\
                        [models.busy]\nrate_limit = { first = 1000, retry_after = 300 }\n";

/// The three agents: name, request body, and the curl call that sends it as their CLI does.
fn agents() -> [(&'static str, Value, &'static str); 3] {
    [
        (
            "claude",
            json!({ "model": "claude-sonnet-4-5", "max_tokens": 256, "stream": true,
                    "messages": [{ "role": "user", "content": PROMPT }] }),
            "-H \"x-api-key: $SWARM_GATEWAY_TOKEN\" -H 'anthropic-version: 2023-06-01' \"$SWARM_GATEWAY_URL/messages?beta=true\"",
        ),
        (
            "codex",
            json!({ "model": "gpt-5-codex", "stream": true, "instructions": "be brief",
                    "input": [{ "type": "message", "role": "user", "content": [{ "type": "input_text", "text": PROMPT }] }] }),
            "-H \"Authorization: Bearer $SWARM_GATEWAY_TOKEN\" \"$SWARM_GATEWAY_URL/responses\"",
        ),
        (
            "gemini",
            json!({ "contents": [{ "role": "user", "parts": [{ "text": PROMPT }] }] }),
            "-H \"x-goog-api-key: $SWARM_GATEWAY_TOKEN\" \"${SWARM_GATEWAY_URL%/v1}/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse\"",
        ),
    ]
}

/// Runs one task per agent on the hierarchy `layers` over the fake as `fake`
/// (OpenAI-compatible), `anth` (anthropic) and `gem` (gemini), all holding the key.
fn run_all(fake: &Fake, layers: &str) -> (Project, Value) {
    let p = Project::new();
    let v1 = fake.base_url();
    let mut toml = String::from(FAST_CONFIG);
    let root = v1.trim_end_matches("/v1");
    for (name, kind, base) in [
        ("fake", "openai-compatible", v1.clone()),
        ("anth", "anthropic", v1.clone()),
        ("gem", "gemini", format!("{root}/v1beta")),
    ] {
        toml += &format!(
            "[providers.{name}]\nkind = \"{kind}\"\nbase_url = \"{base}\"\napi_key_env = \"SWARM_TEST_PROVIDER_KEY\"\npaid = false\n"
        );
    }
    let mut plan = String::from("---\ndefaults:\n  timeout: 60s\n---\n\n");
    for (agent, body, curl) in agents() {
        p.write(&format!("{agent}.json"), &body.to_string());
        p.write(
            &format!("{agent}.sh"),
            &format!(
                "env > {agent}.env\ncurl -sS -N -H 'content-type: application/json' --data-binary @{agent}.json {curl} > {agent}.answer\n\
                 swarm report --status done --summary called\n"
            ),
        );
        toml += &format!("[agents.{agent}-like]\ncommand = \"sh {agent}.sh\"\n");
        plan += &format!("## {agent}: Speaks as {agent}\n- agent: {agent}-like\n\nCall the gateway.\n\n");
    }
    toml += &format!("[models]\nlayers = {layers}\n");
    p.write("swarm.toml", &toml);
    p.write("plan.md", &plan);
    let mut cmd = p.command(&["run", "plan.md"]);
    cmd.env("SWARM_TEST_PROVIDER_KEY", KEY);
    let out = p.spawn_cmd(cmd).wait(Duration::from_secs(120));
    let report = p.report(&out.run_id());
    for (agent, ..) in agents() {
        assert_eq!(state(&report, agent), "succeeded", "{agent}: {}\n{}", detail(&report, agent), out.dump());
    }
    (p, report)
}

/// Each agent's answer was its own format's stream, its tokens metered on `model`, and no
/// agent saw the provider's key.
fn check(p: &Project, report: &Value, model: &str) {
    let ends = [
        ("claude", "event: message_stop"),
        ("codex", "event: response.completed"),
        ("gemini", "\"finishReason\":\"STOP\""),
    ];
    for (agent, end) in ends {
        let answer = p.read(&format!("{agent}.answer"));
        assert!(answer.contains(end), "{agent}: {answer}");
        let a = attempts(report, agent).last().unwrap().clone();
        assert_eq!(a["model"], model, "{agent}: {a:#}");
        let r = &a["requests"][0];
        assert_eq!((r["model"].as_str(), r["count"].as_u64()), (Some(model), Some(1)), "{agent}: {a:#}");
        assert_eq!(
            (r["tokens_in"].as_u64(), r["tokens_out"].as_u64()),
            (Some(11), Some(7)),
            "{agent}: {a:#}"
        );
        let env = p.read(&format!("{agent}.env"));
        assert!(!env.contains(KEY) && env.contains("SWARM_GATEWAY_TOKEN=swarm-attempt-"), "{agent}");
    }
}

#[test]
fn claude_codex_and_gemini_speakers_are_served_by_an_anthropic_provider_after_a_rate_limit() {
    let fake = Fake::start(SCENARIO);
    let (p, report) = run_all(&fake, "[[\"fake/busy\"], [\"anth/ok\"]]");
    check(&p, &report, "anth/ok");
    let log = fake.server.as_ref().unwrap().log().records();
    assert!(log.iter().any(|r| r.model.as_deref() == Some("busy")), "the first model was asked and refused");
    let served: Vec<_> = log.iter().filter(|r| r.path == "/v1/messages").collect();
    assert_eq!(served.len(), 3, "{log:#?}");
    for r in &served {
        assert_eq!(r.bearer.as_deref(), Some(KEY), "the provider's key, in its own header");
        assert_eq!(r.user, [PROMPT], "the prompt byte for byte");
        assert_eq!(r.model.as_deref(), Some("ok"));
    }
    // Claude Code's own format reached the provider as it sent it, but for the model id.
    let mut claude: Value = serde_json::from_str(&p.read("claude.json")).unwrap();
    claude["model"] = json!("ok");
    assert!(served.iter().any(|r| r.body == claude), "passed through unchanged");
}

#[test]
fn claude_codex_and_gemini_speakers_are_served_by_a_gemini_provider() {
    let fake = Fake::start(SCENARIO);
    let (p, report) = run_all(&fake, "[[\"gem/ok\"]]");
    check(&p, &report, "gem/ok");
    let log = fake.server.as_ref().unwrap().log().records();
    assert_eq!(log.len(), 3, "{log:#?}");
    for r in &log {
        assert_eq!(r.path, "/v1beta/models/ok:streamGenerateContent");
        assert_eq!(r.bearer.as_deref(), Some(KEY), "the provider's key, in its own header");
        assert_eq!(r.user, [PROMPT], "the prompt byte for byte");
    }
    let gemini: Value = serde_json::from_str(&p.read("gemini.json")).unwrap();
    assert!(log.iter().any(|r| r.body == gemini), "Gemini CLI's body passed through unchanged");
}

/// The pinned CLIs of the agents that speak their own format (`scripts/install-agents.sh`).
fn cli(name: &str) -> String {
    let bin = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.tools/node_modules/.bin");
    let path = bin.join(name);
    assert!(path.exists(), "{} is missing: run ./scripts/install-agents.sh", path.display());
    path.canonicalize().unwrap().display().to_string()
}

/// Custom agents running the real Claude Code, Codex and Gemini CLI against the gateway, each
/// configured the way its own docs say (a base URL and the attempt's token as its key).
fn live_agents(p: &Project) -> String {
    let claude = format!(
        "export ANTHROPIC_BASE_URL=\"${{SWARM_GATEWAY_URL%/v1}}\" ANTHROPIC_API_KEY=\"$SWARM_GATEWAY_TOKEN\" \
         IS_SANDBOX=1 CLAUDE_CONFIG_DIR=\"$PWD/.claude-cfg\" DISABLE_AUTOUPDATER=1\n\
         exec {} -p --output-format stream-json --verbose --permission-mode bypassPermissions --model claude-sonnet-4-5\n",
        cli("claude")
    );
    let codex = format!(
        "mkdir -p \"$PWD/.codex-home\"\nprintf 'model = \"swarm-auto\"\\nmodel_provider = \"swarm\"\\n\
         [model_providers.swarm]\\nname = \"swarm\"\\nbase_url = \"%s\"\\nenv_key = \"SWARM_GATEWAY_TOKEN\"\\n\
         wire_api = \"responses\"\\n' \"$SWARM_GATEWAY_URL\" > \"$PWD/.codex-home/config.toml\"\n\
         export CODEX_HOME=\"$PWD/.codex-home\"\n\
         exec {} exec --json --skip-git-repo-check --dangerously-bypass-approvals-and-sandbox -C \"$PWD\" -\n",
        cli("codex")
    );
    let gemini = format!(
        "mkdir -p \"$PWD/.gem-home/.gemini\"\n\
         echo '{{\"security\":{{\"auth\":{{\"selectedType\":\"gemini-api-key\"}}}}}}' > \"$PWD/.gem-home/.gemini/settings.json\"\n\
         export HOME=\"$PWD/.gem-home\" GOOGLE_GEMINI_BASE_URL=\"${{SWARM_GATEWAY_URL%/v1}}\" GEMINI_API_KEY=\"$SWARM_GATEWAY_TOKEN\"\n\
         exec {} -p '' -o stream-json --approval-mode=yolo --skip-trust -m gemini-2.5-flash \
         --include-directories \"$(dirname \"$SWARM_COMPLETION_FILE\")\"\n",
        cli("gemini")
    );
    let mut plan = String::from("---\ndefaults:\n  timeout: 150s\n---\n\n");
    let mut toml = String::new();
    for (agent, script) in [("claude", claude), ("codex", codex), ("gemini", gemini)] {
        p.write(&format!("live-{agent}.sh"), &script);
        toml += &format!("[agents.live-{agent}]\ncommand = \"sh live-{agent}.sh\"\n");
        plan += &format!("## {agent}: The real {agent} CLI\n- agent: live-{agent}\n\nWrite hello.txt, report, say DONE.\n\n");
    }
    p.write("live.md", &plan);
    toml
}

#[test]
fn the_real_claude_codex_and_gemini_clis_work_through_the_gateway_on_every_provider_kind() {
    let worker = "steps = [ { write = { path = \"hello.txt\", content = \"hi\\n\" } }, \
                  { report = { status = \"done\", summary = \"wrote hello.txt\" } }, { say = \"DONE\" } ]\n";
    let fake = Fake::start(&format!(
        "[models.ok]\n{worker}[models.busy]\nrate_limit = {{ first = 1000, retry_after = 300 }}\n"
    ));
    let v1 = fake.base_url();
    let root = v1.trim_end_matches("/v1").to_string();
    for (layers, model, path) in [
        ("[[\"fake/busy\"], [\"fake/ok\"]]", "fake/ok", "/v1/chat/completions"),
        ("[[\"anth/ok\"]]", "anth/ok", "/v1/messages"),
        ("[[\"gem/ok\"]]", "gem/ok", "/v1beta/models/ok:streamGenerateContent"),
    ] {
        let p = Project::new();
        let agents = live_agents(&p);
        p.write(
            "swarm.toml",
            &format!(
                "{FAST_CONFIG}[providers.fake]\nkind = \"openai-compatible\"\nbase_url = \"{v1}\"\npaid = false\n\
                 [providers.anth]\nkind = \"anthropic\"\nbase_url = \"{v1}\"\npaid = false\n\
                 [providers.gem]\nkind = \"gemini\"\nbase_url = \"{root}/v1beta\"\npaid = false\n\
                 {agents}[models]\nlayers = {layers}\n"
            ),
        );
        let before = fake.server.as_ref().unwrap().log().records().len();
        let out = p.spawn_cmd(p.command(&["run", "live.md"])).wait(Duration::from_secs(200));
        let report = p.report(&out.run_id());
        for agent in ["claude", "codex", "gemini"] {
            assert_eq!(
                state(&report, agent),
                "succeeded",
                "{agent} on {model}: {}\n{}",
                detail(&report, agent),
                out.dump()
            );
            let a = attempts(&report, agent);
            assert_eq!(a.len(), 1, "{agent} on {model}: no retry spent");
            assert_eq!(a[0]["model"], model, "{agent}: {:#}", a[0]);
            let r = &a[0]["requests"][0];
            assert!(
                r["count"].as_u64().unwrap() >= 2 && r["tokens_in"].as_u64().unwrap() > 0,
                "{agent}: {:#}",
                a[0]
            );
        }
        assert_eq!(p.read("hello.txt"), "hi\n");
        let log = fake.server.as_ref().unwrap().log().records().split_off(before);
        if model == "fake/ok" {
            assert!(log.iter().any(|r| r.model.as_deref() == Some("busy")), "the rate limit came first");
        }
        let served: Vec<_> = log.iter().filter(|r| r.model.as_deref() == Some("ok")).collect();
        assert!(served.len() >= 9 && served.iter().all(|r| r.path == path), "{model}: {log:#?}");
    }
}
