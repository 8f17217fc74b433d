use super::*;

#[test]
fn status_patterns() {
    assert_eq!(status_in_text("API Error: 429 {\"type\":\"error\"}"), Some(429));
    assert_eq!(status_in_text("exceeded retry limit, last status: 429 Too Many Requests"), Some(429));
    assert_eq!(status_in_text("litellm.NotFoundError: Error code: 404 - {}"), Some(404));
    assert_eq!(status_in_text("took 1429 ms"), None);
    assert_eq!(status_in_text("status: 200"), None);
}

#[test]
fn key_wrapper_never_holds_the_key() {
    let (p, a) =
        with_key_from_env("x", "/bin/claude".into(), vec!["-p".into()], "ANTHROPIC_API_KEY", "MY_KEY")
            .unwrap();
    assert_eq!(p, "/bin/sh");
    assert_eq!(a[1], "ANTHROPIC_API_KEY=\"${MY_KEY}\"; export ANTHROPIC_API_KEY; exec \"$0\" \"$@\"");
    assert_eq!(&a[2..], ["/bin/claude", "-p"]);
    let (p, _) = with_key_from_env("x", "/bin/claude".into(), vec![], "A", "A").unwrap();
    assert_eq!(p, "/bin/claude");
    assert!(with_key_from_env("x", "c".into(), vec![], "A", "B; rm").is_err());
    // The wrapper really exports the variable.
    let (p, a) =
        with_key_from_env("x", "/bin/sh".into(), vec!["-c".into(), "echo $DST".into()], "DST", "SRC_KEY_T")
            .unwrap();
    let o = std::process::Command::new(p).args(a).env("SRC_KEY_T", "v4lue").output().unwrap();
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "v4lue");
}

#[test]
fn launch_plain_and_with_a_provider() {
    use super::test_support::*;
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
    let outs = parse_line(
        Stream::Stderr,
        "--dangerously-skip-permissions cannot be used with root/sudo privileges for security reasons",
    );
    assert!(matches!(&outs[0], AgentOutput::Error { class: FailureClass::AgentError, message, .. }
        if message.contains("IS_SANDBOX=1")));
}

#[test]
fn retry_delay_and_classes() {
    assert_eq!(retry_after_of("\"retryDelay\": \"13s\""), Some(Duration::from_secs(13)));
    assert_eq!(retry_after_of("please retry in 1.5s"), Some(Duration::from_millis(1500)));
    assert_eq!(class_of("API key not valid", Some(400)), FailureClass::Auth);
    assert_eq!(class_of("You exceeded your current quota", Some(429)), FailureClass::QuotaExhausted);
    assert_eq!(class_of("something odd", None), FailureClass::AgentError);
}
