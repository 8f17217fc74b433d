//! Hooks on real processes and a real (local) HTTP server: what a hook command receives, that a
//! hanging one is cut off with everything it started, that failures are reported, and that the
//! webhook retries and gives up within its bound.

use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};
use swarm_core::config::HooksConfig;
use swarm_runner::hooks::{HookKind, HookOutcome, HookResult, HookTarget, Hooks};
use swarm_testkit::{pid_alive, wait_until};

/// Hooks for `config`, and every outcome their callback received.
fn hooks(config: HooksConfig) -> (Hooks, Arc<Mutex<Vec<HookOutcome>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    (Hooks::new(&config, move |o| sink.lock().unwrap().push(o)), seen)
}

fn only(outcomes: Vec<HookOutcome>) -> HookOutcome {
    assert_eq!(outcomes.len(), 1, "{outcomes:#?}");
    outcomes.into_iter().next().unwrap()
}

fn read_pid(dir: &Path, name: &str) -> u32 {
    let mut pid = None;
    wait_until(Duration::from_secs(5), &format!("{name} holds a pid"), || {
        pid = std::fs::read_to_string(dir.join(name)).ok().and_then(|s| s.trim().parse().ok());
        pid.is_some()
    });
    pid.unwrap()
}

#[test]
fn a_hook_gets_the_exact_json_on_stdin_and_in_its_environment() {
    let dir = tempfile::tempdir().unwrap();
    let (hooks, seen) = hooks(HooksConfig {
        on_task_end: Some(
            r#"cat > stdin.json; printf %s "$SWARM_HOOK_PAYLOAD" > env.json; printf %s "$SWARM_HOOK_EVENT" > event"#
                .into(),
        ),
        ..HooksConfig::default()
    });
    let hooks = hooks.in_dir(dir.path());
    let payload = json!({
        "id": "build", "state": "failed", "reason": "exit_code",
        "detail": "quotes \" and 'single', $HOME, `ticks`, a\nnewline, ünïcödé",
        "attempts": [{ "n": 1, "exit_code": 3 }]
    });
    let outcome = only(hooks.fire(HookKind::TaskEnd, payload.clone()).wait());
    assert!(outcome.is_ok(), "{outcome}");
    let text = serde_json::to_string(&payload).unwrap();
    assert_eq!(std::fs::read_to_string(dir.path().join("stdin.json")).unwrap(), format!("{text}\n"));
    assert_eq!(std::fs::read_to_string(dir.path().join("env.json")).unwrap(), text);
    assert_eq!(std::fs::read_to_string(dir.path().join("event")).unwrap(), "task_end");
    assert_eq!(*seen.lock().unwrap(), vec![outcome], "the callback saw the same outcome");
}

#[test]
fn a_large_payload_reaches_stdin_even_when_too_big_for_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let (hooks, _) = hooks(HooksConfig {
        on_run_end: Some(r#"wc -c > size; printf %s "${SWARM_HOOK_PAYLOAD-unset}" > env"#.into()),
        on_failure: Some("exit 0".into()), // never reads its stdin
        ..HooksConfig::default()
    });
    let hooks = hooks.in_dir(dir.path());
    let payload = json!({ "tasks": vec!["x".repeat(1000); 300] });
    let len = serde_json::to_string(&payload).unwrap().len();
    assert!(only(hooks.fire(HookKind::RunEnd, payload.clone()).wait()).is_ok());
    assert_eq!(std::fs::read_to_string(dir.path().join("size")).unwrap().trim(), (len + 1).to_string());
    assert_eq!(std::fs::read_to_string(dir.path().join("env")).unwrap(), "unset");
    let started = Instant::now();
    assert!(only(hooks.fire(HookKind::Failure, payload).wait()).is_ok());
    assert!(started.elapsed() < Duration::from_secs(5), "an unread stdin does not stall the hook");
}

#[test]
fn a_hanging_hook_is_killed_at_the_timeout_with_everything_it_started() {
    let dir = tempfile::tempdir().unwrap();
    let (hooks, seen) = hooks(HooksConfig {
        on_failure: Some(
            "echo $$ > leader.pid; sh -c 'echo $$ > grandchild.pid; exec sleep 60' & sleep 60".into(),
        ),
        timeout: Some(Duration::from_millis(500)),
        ..HooksConfig::default()
    });
    let hooks = hooks.in_dir(dir.path());
    let fired = Instant::now();
    let handle = hooks.fire(HookKind::Failure, json!({ "id": "t" }));
    assert!(fired.elapsed() < Duration::from_millis(200), "fire returns at once");
    let leader = read_pid(dir.path(), "leader.pid");
    let grandchild = read_pid(dir.path(), "grandchild.pid");
    let outcome = only(handle.wait());
    let took = fired.elapsed();
    assert_eq!(outcome.result, HookResult::TimedOut { after: Duration::from_millis(500) }, "{outcome}");
    assert!(outcome.to_string().contains("timed out after 500ms"), "{outcome}");
    assert!(took >= Duration::from_millis(500) && took < Duration::from_secs(3), "{took:?}");
    for (pid, what) in [(leader, "the hook's shell"), (grandchild, "its grandchild")] {
        wait_until(Duration::from_secs(5), &format!("{what} ({pid}) is gone"), || !pid_alive(pid));
    }
    // Its other members (the shell's own `sleep`) were killed too; under load they may take a
    // moment to finish exiting.
    wait_until(Duration::from_secs(5), "nothing is left in the hook's process group", || {
        !swarm_runner::util::group_alive(leader)
    });
    assert_eq!(seen.lock().unwrap().len(), 1);
}

#[test]
fn a_failing_hook_is_reported_with_its_exit_code_and_stderr() {
    let (hooks, seen) = hooks(HooksConfig {
        on_run_end: Some("echo starting; echo 'cannot reach chat server' >&2; exit 7".into()),
        ..HooksConfig::default()
    });
    let outcome = only(hooks.fire(HookKind::RunEnd, json!({ "run_id": "r1" })).wait());
    assert_eq!(
        outcome.result,
        HookResult::Exited { code: Some(7), signal: None, stderr_tail: "cannot reach chat server".into() }
    );
    assert_eq!(
        outcome.target,
        HookTarget::Command("echo starting; echo 'cannot reach chat server' >&2; exit 7".into())
    );
    assert!(outcome.to_string().ends_with("exited with code 7: cannot reach chat server"), "{outcome}");
    assert_eq!(*seen.lock().unwrap(), vec![outcome]);
    assert!(hooks.wait_idle(Duration::from_secs(1)));
}

/// One HTTP request as the test server saw it.
#[derive(Debug)]
struct Request {
    line: String,
    content_type: String,
    body: Value,
}

/// A local HTTP server answering the given statuses, one connection each, in order; every
/// request it reads is sent on the returned channel.
fn server(statuses: Vec<u16>) -> (String, mpsc::Receiver<Request>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hooks/secret-token", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for status in statuses {
            let Ok((stream, _)) = listener.accept() else { return };
            stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let Some(request) = read_request(&stream) else { return };
            let _ = tx.send(request);
            let mut stream = stream;
            let _ = write!(
                stream,
                "HTTP/1.1 {status} Whatever\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
            );
        }
    });
    (url, rx)
}

fn read_request(stream: &TcpStream) -> Option<Request> {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let (mut length, mut content_type) = (0, String::new());
    loop {
        let mut header = String::new();
        reader.read_line(&mut header).ok()?;
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        let (name, value) = header.split_once(':')?;
        match name.to_ascii_lowercase().as_str() {
            "content-length" => length = value.trim().parse().ok()?,
            "content-type" => content_type = value.trim().to_string(),
            _ => {}
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some(Request { line: line.trim_end().into(), content_type, body: serde_json::from_slice(&body).ok()? })
}

#[test]
fn a_webhook_is_retried_on_5xx_and_receives_the_json() {
    let (url, requests) = server(vec![500, 500, 200]);
    let (hooks, _) = hooks(HooksConfig {
        webhook: Some(url.clone()),
        webhook_timeout: Some(Duration::from_secs(5)),
        webhook_retries: Some(3),
        ..HooksConfig::default()
    });
    let payload = json!({ "run_id": "r1", "state": "failed", "tasks": [] });
    let outcome = only(hooks.fire(HookKind::RunEnd, payload.clone()).wait());
    assert!(outcome.is_ok(), "{outcome}");
    assert_eq!(outcome.tries, 3, "{outcome}");
    let origin = url.trim_end_matches("/hooks/secret-token");
    assert_eq!(outcome.target, HookTarget::Webhook(origin.into()), "the URL's path is never shown");
    for n in 1..=3 {
        let r =
            requests.recv_timeout(Duration::from_secs(5)).unwrap_or_else(|_| panic!("request {n} arrived"));
        assert_eq!(r.line, "POST /hooks/secret-token HTTP/1.1");
        assert_eq!(r.content_type, "application/json");
        assert_eq!(r.body, json!({ "hook": "run_end", "payload": payload }));
    }
}

#[test]
fn a_webhook_answering_4xx_is_not_retried() {
    let (url, requests) = server(vec![404, 200]);
    let (hooks, _) = hooks(HooksConfig { webhook: Some(url), ..HooksConfig::default() });
    let outcome = only(hooks.fire(HookKind::TaskEnd, json!({})).wait());
    assert_eq!(outcome.result, HookResult::WebhookFailed { error: "HTTP 404".into() });
    assert_eq!(outcome.tries, 1);
    assert!(requests.recv_timeout(Duration::from_secs(1)).is_ok());
}

#[test]
fn a_webhook_to_a_closed_port_fails_after_its_retries_within_the_bound() {
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let (hooks, seen) = hooks(HooksConfig {
        webhook: Some(format!("http://127.0.0.1:{port}/x")),
        webhook_timeout: Some(Duration::from_secs(1)),
        webhook_retries: Some(2),
        on_task_end: Some("true".into()),
        ..HooksConfig::default()
    });
    let started = Instant::now();
    let outcomes = hooks.fire(HookKind::TaskEnd, json!({ "id": "t" })).wait();
    let took = started.elapsed();
    let webhook = outcomes.iter().find(|o| matches!(o.target, HookTarget::Webhook(_))).unwrap();
    assert!(matches!(webhook.result, HookResult::WebhookFailed { .. }), "{webhook}");
    assert_eq!(webhook.tries, 3, "the first try and 2 retries: {webhook}");
    assert!(webhook.to_string().contains("failed after 3 tries"), "{webhook}");
    // Refused at once, so only the delays count: 0.5s and 1s, each at most +25%.
    assert!(took >= Duration::from_millis(1100), "backed off between tries: {took:?}");
    assert!(took < Duration::from_millis(1875 + 1000), "{took:?}");
    assert!(took <= hooks.max_duration());
    assert!(
        outcomes.iter().any(|o| o.is_ok() && matches!(o.target, HookTarget::Command(_))),
        "the command ran too"
    );
    assert_eq!(seen.lock().unwrap().len(), 2);
}

#[test]
fn a_webhook_that_never_answers_times_out_on_every_try() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    // Accepts and holds the connections, never answering; gone when the test ends.
    std::thread::spawn(move || {
        let held: Vec<_> = listener.incoming().take(2).collect();
        std::thread::sleep(Duration::from_secs(10));
        drop(held);
    });
    let (hooks, _) = hooks(HooksConfig {
        webhook: Some(url),
        webhook_timeout: Some(Duration::from_millis(300)),
        webhook_retries: Some(1),
        ..HooksConfig::default()
    });
    let started = Instant::now();
    let outcome = only(hooks.fire(HookKind::Failure, json!({})).wait());
    let took = started.elapsed();
    assert_eq!(
        outcome.result,
        HookResult::WebhookFailed { error: "no answer within 300ms".into() },
        "{outcome}"
    );
    assert_eq!(outcome.tries, 2);
    // Two tries of 300ms and one delay of at most 625ms.
    assert!(took >= Duration::from_millis(600) && took < Duration::from_millis(1225 + 1000), "{took:?}");
}
