use super::*;
use swarm_core::failure::FailureClass;

#[test]
fn launch_plain_and_with_a_provider() {
    use crate::test_support::*;
    let task = crate::custom::tests::task("t", "claude");
    let dir = project("claude");
    let l = ClaudeAdapter.launch(&spec(&dir, &task, "- do it", None)).unwrap();
    assert!(l.program.ends_with("claude"));
    assert_eq!(
        l.args,
        [
            "-p",
            "--output-format",
            "stream-json",
            "--verbose",
            "--permission-mode",
            "bypassPermissions",
            "--model",
            "plain-model"
        ]
    );
    assert_eq!(l.stdin.as_deref(), Some("- do it"));
    assert_eq!(env(&l, "PWD"), Some(dir.display().to_string().as_str()));
    assert_eq!(env(&l, "HOME"), None, "without a provider Claude Code keeps the user's own login");
    assert!(l.env_from.is_empty());

    let l = ClaudeAdapter.launch(&spec(&dir, &task, "p", Some(provider("anthropic")))).unwrap();
    std::fs::remove_dir_all(&dir).ok();
    assert!(l.program.ends_with("claude"), "the key comes by env_from, no shell wrapper");
    assert_eq!(l.env_from, [("ANTHROPIC_API_KEY".to_string(), "MY_KEY".to_string())]);
    assert!(l.env_remove.iter().any(|v| v == "ANTHROPIC_AUTH_TOKEN"), "exactly one credential");
    assert!(l.args.ends_with(&["--model".to_string(), "ok".to_string()]));
    assert_eq!(env(&l, "ANTHROPIC_BASE_URL"), Some("http://127.0.0.1:9"), "the root, without /v1");
    for alias in ["OPUS", "SONNET", "HAIKU", "FABLE"] {
        assert_eq!(env(&l, &format!("ANTHROPIC_DEFAULT_{alias}_MODEL")), Some("ok"), "{alias}");
    }
    assert!(env(&l, "CLAUDE_CONFIG_DIR").unwrap().contains("attempt"));
    assert!(env(&l, "HOME").unwrap().contains("attempt"));
    assert!(env(&l, "XDG_CONFIG_HOME").unwrap().contains("attempt"));
    assert!(!l.env.iter().any(|(k, _)| k == "ANTHROPIC_API_KEY"));
}

#[test]
fn a_placeholder_binary_is_replaced_by_the_platform_package() {
    let dir = std::env::temp_dir().join(format!("swarm-claude-native-{}", std::process::id()));
    let pkg = dir.join("node_modules/@anthropic-ai/claude-code/bin");
    let arch = if std::env::consts::ARCH == "aarch64" { "arm64" } else { "x64" };
    let native = dir.join(format!("node_modules/@anthropic-ai/claude-code-linux-{arch}/claude"));
    std::fs::create_dir_all(&pkg).unwrap();
    std::fs::create_dir_all(native.parent().unwrap()).unwrap();
    std::fs::write(pkg.join("claude.exe"), "#!/bin/sh\necho placeholder\n").unwrap();
    std::fs::write(&native, "native").unwrap();
    let placed = native_binary(&pkg.join("claude.exe"));
    std::fs::remove_dir_all(&dir).ok();
    assert_eq!(placed, native.canonicalize().unwrap_or(native));
}

#[test]
fn root_refusal_is_explained() {
    let outs = ClaudeAdapter.parse_line(
        Stream::Stderr,
        "--dangerously-skip-permissions cannot be used with root/sudo privileges for security reasons",
    );
    assert!(matches!(&outs[0], AgentOutput::Error { class: FailureClass::AgentError, message, .. }
        if message.contains("IS_SANDBOX=1")));
}

/// The two lines Claude Code 2.1.332 printed when it gave up on a 429 (issue 19 captures,
/// `claude-err-429`; trimmed to the fields read).
#[test]
fn a_rate_limit_it_gave_up_on_is_rate_limited() {
    let assistant = r#"{"type":"assistant","message":{"model":"<synthetic>","role":"assistant","content":[{"type":"text","text":"API Error: Request rejected (429) · This request would exceed the rate limit for your organization of 50 requests per minute."}]},"session_id":"a5a5","error":"rate_limit","is_api_error_message":true,"api_error_status":429,"api_error_type":"rate_limit_error"}"#;
    let result = r#"{"type":"result","subtype":"success","is_error":true,"result":"API Error: Request rejected (429) · This request would exceed the rate limit","api_error_status":429,"terminal_reason":"api_error","session_id":"a5a5","total_cost_usd":0,"usage":{"input_tokens":0,"output_tokens":0}}"#;
    let outs: Vec<_> =
        [assistant, result].iter().flat_map(|l| ClaudeAdapter.parse_line(Stream::Stdout, l)).collect();
    let errors: Vec<_> = outs.iter().filter(|o| matches!(o, AgentOutput::Error { .. })).cloned().collect();
    assert_eq!(errors.len(), 2, "{outs:?}");
    assert_eq!(ClaudeAdapter.classify(Some(1), &errors, &[]).map(|c| c.0), Some(FailureClass::RateLimited));
    assert!(outs.contains(&AgentOutput::Session("a5a5".into())));
}

#[test]
fn a_role_defined_as_claude_codes_own_agent_is_passed_as_agent() {
    use crate::test_support::*;
    let mut task = crate::custom::tests::task("t", "claude");
    task.role = Some("critic".into());
    let dir = project("claude");
    let plain = ClaudeAdapter.launch(&spec(&dir, &task, "p", None)).unwrap();
    assert!(!plain.args.contains(&"--agent".to_string()), "no .claude/agents/critic.md yet");
    std::fs::create_dir_all(dir.join(".claude/agents")).unwrap();
    std::fs::write(dir.join(".claude/agents/critic.md"), "---\nname: critic\n---\nBe harsh.\n").unwrap();
    let l = ClaudeAdapter.launch(&spec(&dir, &task, "p", None)).unwrap();
    assert!(l.args.windows(2).any(|w| w == ["--agent", "critic"]), "{:?}", l.args);
    assert_eq!(
        crate::roles::role_file_text("claude", "critic", &dir),
        None,
        "not also put before the prompt"
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// The gateway's provider: Claude Code gets its root URL and its token as the API key, every
/// alias mapped to `auto` (the gateway routes each request itself).
#[test]
fn the_gateway_provider() {
    use crate::test_support::*;
    let task = crate::custom::tests::task("t", "claude");
    let dir = project("claude");
    let l = ClaudeAdapter.launch(&spec(&dir, &task, "p", Some(gateway()))).unwrap();
    std::fs::remove_dir_all(&dir).ok();
    assert_eq!(env(&l, "ANTHROPIC_BASE_URL"), Some("http://127.0.0.1:4321"));
    assert_eq!(l.env_from, [("ANTHROPIC_API_KEY".to_string(), "SWARM_GATEWAY_TOKEN".to_string())]);
    assert_eq!(env(&l, "ANTHROPIC_DEFAULT_HAIKU_MODEL"), Some("auto"));
    assert!(l.args.ends_with(&["--model".to_string(), "auto".to_string()]));
}
