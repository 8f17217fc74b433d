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
            "--dangerously-skip-permissions",
            "--model",
            "plain-model"
        ]
    );
    assert_eq!(l.stdin.as_deref(), Some("- do it"));
    assert_eq!(env(&l, "PWD"), Some(dir.display().to_string().as_str()));
    assert_eq!(env(&l, "HOME"), None);

    let l = ClaudeAdapter.launch(&spec(&dir, &task, "p", Some(provider("anthropic")))).unwrap();
    std::fs::remove_dir_all(&dir).ok();
    assert_eq!(l.program, "/bin/sh");
    assert!(l.args[1].contains("ANTHROPIC_API_KEY=\"${MY_KEY}\""));
    assert!(l.args[2].ends_with("claude"));
    assert!(l.args.ends_with(&["--model".to_string(), "ok".to_string()]));
    assert_eq!(env(&l, "ANTHROPIC_BASE_URL"), Some("http://127.0.0.1:9"));
    assert!(env(&l, "CLAUDE_CONFIG_DIR").unwrap().contains("attempt"));
    assert!(env(&l, "HOME").unwrap().contains("attempt"));
    assert!(env(&l, "XDG_CONFIG_HOME").unwrap().contains("attempt"));
    assert!(!l.env.iter().any(|(k, _)| k == "ANTHROPIC_API_KEY"));
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
