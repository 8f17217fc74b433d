//! MCP driven by the official Python SDK over stdio and streamable HTTP, in every revision;
//! the README's client configs as written; stdio's framing, size and session bounds.

use super::*;

#[test]
fn mcp_over_stdio_with_the_python_sdk() {
    let p = project();
    let d = client(&p, &["--swarm", SWARM, "--project", &p.path().display().to_string(), "--stdio"]);
    assert_eq!(d["protocol_version"], "2026-07-28", "{d:#}");
    assert_eq!(d["server_name"], "swarm");
    assert_scenario(&p, &d);
    // The server runs as task `intruder`: a key only `owner` may write is refused, not written.
    assert_eq!(d["owned"]["is_error"], true, "{}", d["owned"]);
    assert!(d["owned"]["text"].as_str().unwrap().contains("only owner may"), "{}", d["owned"]);
    p.swarm(&["state", "get", "mcp/owned"]).expect_code(1);
}

#[test]
fn mcp_over_streamable_http_in_every_revision() {
    let p = project();
    let (server, addr) = serve(&p, &[]);
    let url = format!("http://{addr}/mcp");
    let modern = client(&p, &["--url", &url]);
    assert_eq!(modern["protocol_version"], "2026-07-28");
    assert_scenario(&p, &modern);
    assert_eq!(
        modern["owned"]["data"]["version"], 1,
        "the HTTP server runs as the user: {}",
        modern["owned"]
    );
    // The legacy initialize handshake, as today's clients mostly still do it.
    let legacy = client(&p, &["--url", &url, "--mode", "legacy", "--raw-initialize", "2025-11-25"]);
    assert_eq!(legacy["protocol_version"], "2025-11-25", "{legacy:#}");
    assert_eq!(legacy["tools"].as_array().unwrap().len(), 11);
    assert_eq!(legacy["call"]["ok"], true);
    let older = client(&p, &["--url", &url, "--raw-initialize", "2025-06-18"]);
    assert_eq!(older["protocol_version"], "2025-06-18", "{older:#}");
    assert_eq!(older["call"]["name"], "good");
    let sdk_legacy = client(&p, &["--url", &url, "--mode", "legacy"]);
    assert_eq!(sdk_legacy["protocol_version"], "2025-11-25");
    assert!(sdk_legacy.get("exception").is_none_or(Value::is_null), "{sdk_legacy:#}");
    assert_eq!(sdk_legacy["final"]["data"]["state"], "succeeded");
    server.signal(nix::sys::signal::Signal::SIGTERM);
    server.wait(Duration::from_secs(30)).expect_code(0);
}

/// The README's MCP config entries, taken from the README and used as written (the `swarm` they
/// name is this build's, found on PATH).
#[test]
fn the_readme_mcp_config_entries_work_as_written() {
    let readme = include_str!("../../../../README.md");
    let mut blocks: Vec<(String, Value)> = Vec::new();
    let mut open: Option<(String, String)> = None;
    for line in readme.lines() {
        match &mut open {
            None => {
                if let Some(kind) = line.strip_prefix("```json mcp=") {
                    open = Some((kind.to_string(), String::new()));
                }
            }
            Some((kind, body)) => {
                if line == "```" {
                    blocks
                        .push((kind.clone(), serde_json::from_str(body).expect("README MCP block is JSON")));
                    open = None;
                } else {
                    body.push_str(line);
                    body.push('\n');
                }
            }
        }
    }
    assert_eq!(
        blocks.iter().filter(|(k, _)| k == "stdio").count(),
        2,
        "Antigravity and Claude Code stdio entries"
    );
    assert_eq!(blocks.iter().filter(|(k, _)| k == "http").count(), 1);
    let p = project();
    let bin_dir = std::path::Path::new(SWARM).parent().unwrap().to_path_buf();
    let path = std::env::join_paths(
        std::iter::once(bin_dir).chain(std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())),
    )
    .unwrap();
    for (kind, block) in &blocks {
        let entry = &block["mcpServers"]["swarm"];
        let seen = if kind == "stdio" {
            assert_eq!(entry["command"], "swarm");
            let mut spec = entry.clone();
            let args: Vec<Value> = spec["args"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| match a.as_str() {
                    Some("/path/to/your/repo") => Value::String(p.path().display().to_string()),
                    _ => a.clone(),
                })
                .collect();
            spec["args"] = Value::Array(args);
            let mut cmd = python_in(&p);
            cmd.arg(CLIENT)
                .args([
                    "--light",
                    "--project",
                    &p.path().display().to_string(),
                    "--stdio-json",
                    &spec.to_string(),
                ])
                .env("PATH", &path);
            let out = cmd.output().unwrap();
            serde_json::from_slice::<Value>(&out.stdout)
                .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)))
        } else {
            // "with `swarm serve` running in the repository": as written, on its default address.
            let server = p.spawn(&["serve"]);
            let url = entry["serverUrl"].as_str().unwrap().to_string();
            wait_until(Duration::from_secs(20), "swarm serve listens on 7878", || {
                std::net::TcpStream::connect("127.0.0.1:7878").is_ok()
            });
            // Its token, pasted where the README says.
            let file = p.file(".swarm/serve-token");
            wait_until(Duration::from_secs(20), "the token is made", || file.exists());
            let header = entry["headers"]["Authorization"].as_str().unwrap();
            assert_eq!(header, "Bearer <contents of .swarm/serve-token>");
            let pasted = std::fs::read_to_string(&file).unwrap().trim().to_string();
            TOKEN.with(|t| *t.borrow_mut() = pasted);
            let seen = client(&p, &["--light", "--url", &url]);
            server.signal(nix::sys::signal::Signal::SIGTERM);
            server.wait(Duration::from_secs(30)).expect_code(0);
            seen
        };
        assert!(seen.get("exception").is_none(), "{kind} entry {entry}: {seen:#}");
        assert_eq!(seen["tools"].as_array().map(Vec::len), Some(11), "{kind} entry: {seen:#}");
        assert_eq!(seen["good_plan"]["data"]["ok"], true, "{kind} entry {entry}: {seen:#}");
    }
}

/// In stdio mode stdout carries protocol messages only, even while a run's agents print (an
/// older client's handshake, by hand: 2025-06-18).
#[test]
fn mcp_stdio_prints_nothing_but_protocol_messages() {
    use std::io::Write;
    let p = project();
    let (mut child, mut stdin, lines) = mcp_stdio(&p);
    let send = |stdin: &mut std::process::ChildStdin, v: Value| {
        writeln!(stdin, "{v}").unwrap();
        stdin.flush().unwrap();
    };
    send(
        &mut stdin,
        serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "raw", "version": "0"}}}),
    );
    send(&mut stdin, serde_json::json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
    send(
        &mut stdin,
        serde_json::json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
        "params": {"name": "run_start", "arguments": {"plan_path": "good.md"}}}),
    );
    let mut seen: Vec<Value> = Vec::new();
    let mut run_id = String::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        let line = lines.recv_timeout(deadline.saturating_duration_since(Instant::now())).expect("a line");
        let msg: Value =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("not a protocol message ({e}): {line}"));
        assert_eq!(msg["jsonrpc"], "2.0", "{line}");
        seen.push(msg.clone());
        match msg["id"].as_u64() {
            Some(1) => assert_eq!(msg["result"]["protocolVersion"], "2025-06-18"),
            Some(2) => {
                run_id = msg["result"]["structuredContent"]["run_id"].as_str().unwrap().to_string();
                send(
                    &mut stdin,
                    serde_json::json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call",
                    "params": {"name": "run_status", "arguments": {"run_id": run_id, "wait_s": 30}}}),
                );
            }
            Some(3) => {
                let state = msg["result"]["structuredContent"]["state"].as_str().unwrap().to_string();
                if state == "running" {
                    send(
                        &mut stdin,
                        serde_json::json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call",
                        "params": {"name": "run_status", "arguments": {"run_id": run_id, "wait_s": 30}}}),
                    );
                } else {
                    assert_eq!(state, "succeeded");
                    break;
                }
            }
            _ => {}
        }
    }
    assert_eq!(p.status(&run_id)["state"], "succeeded");
    drop(stdin);
    let status = child.wait().unwrap();
    assert!(status.success(), "swarm mcp ends when its client closes stdin");
}

/// A request over `swarm mcp`'s 16 MiB line limit is answered with an error naming the limit
/// (rmcp alone drops it without a word, and the client waits forever), and the server goes on
/// serving the next request.
#[test]
fn an_mcp_stdio_request_over_16_mib_is_answered_and_the_server_goes_on() {
    use std::io::Write;
    let p = project();
    let (mut child, mut stdin, rx) = mcp_stdio(&p);
    let init = serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "raw", "version": "0"}}});
    writeln!(
        stdin,
        "{init}\n{}",
        serde_json::json!({"jsonrpc": "2.0", "method": "notifications/initialized"})
    )
    .unwrap();
    stdin.flush().unwrap();
    assert_eq!(answer(&rx, 1, Duration::from_secs(30))["result"]["protocolVersion"], "2025-06-18");
    let huge = format!("## a: big\n- agent: exec\n- command: echo {}\n", "x".repeat(17 << 20));
    let big = serde_json::json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
        "params": {"name": "plan_check", "arguments": {"plan": huge}}});
    let next = serde_json::json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call",
        "params": {"name": "plan_check", "arguments": {"plan_path": "good.md"}}});
    // Written from a thread: the pipe fills while the server reads it.
    let writer = std::thread::spawn(move || {
        writeln!(stdin, "{big}\n{next}").unwrap();
        stdin.flush().unwrap();
        stdin
    });
    let refused = answer(&rx, 2, Duration::from_secs(60));
    assert_eq!(refused["error"]["code"], -32600, "{refused}");
    let message = refused["error"]["message"].as_str().unwrap();
    assert!(message.contains("16 MiB") && message.contains("16777216 bytes"), "{message}");
    assert_eq!(refused["error"]["data"]["max_bytes"], 16777216);
    let served = answer(&rx, 3, Duration::from_secs(30));
    assert_eq!(served["result"]["structuredContent"]["ok"], true, "still serving: {served}");
    drop(writer.join().unwrap());
    assert!(child.wait().unwrap().success(), "swarm mcp ends when its client closes stdin");
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(stderr.contains("refused a message of more than 16 MiB (16777216 bytes) (id 2)"), "{stderr}");
}

/// MCP sessions are bounded (3,000 `initialize` once kept 3,000 sessions, +166 MB): past the
/// limit a new one takes the place of the least recently used idle one, or is refused with 503
/// while all are fresh; a session idle past the expiry is closed.
#[test]
fn mcp_sessions_are_bounded_and_expire() {
    let p = project();
    let limits = [("SWARM_SERVE_MCP_MAX_SESSIONS", "2"), ("SWARM_SERVE_MCP_IDLE_S", "8")];
    let (server, addr) = serve_with(&p, &[], &limits);
    let (status, a, _) = mcp_initialize(&addr);
    assert_eq!(status, 200);
    let (status, b, _) = mcp_initialize(&addr);
    assert_eq!(status, 200);
    let (a, b) = (a.expect("a session id"), b.expect("a session id"));
    let (status, _, body) = mcp_initialize(&addr);
    assert_eq!(status, 503, "a third session while both are fresh: {body}");
    assert!(body.contains("too many MCP sessions: 2"), "{body}");
    // `a` is used, so `b` is the least recently used: once idle a while, a new session takes its place.
    assert_eq!(mcp_use(&addr, &a), 200);
    let c = wait_for(Duration::from_secs(20), "a new session takes an idle one's place", || {
        assert_eq!(mcp_use(&addr, &a), 200, "the session in use stays");
        let (status, c, _) = mcp_initialize(&addr);
        (status == 200).then_some(c)
    });
    assert!(c.is_some());
    assert_eq!(mcp_use(&addr, &b), 404, "the replaced session is gone");
    // Idle past the expiry (8 s here), the sessions are closed.
    std::thread::sleep(Duration::from_secs(11));
    assert_eq!(mcp_use(&addr, &a), 404, "an expired session is gone");
    assert_eq!(mcp_initialize(&addr).0, 200);
    server.signal(nix::sys::signal::Signal::SIGTERM);
    server.wait(Duration::from_secs(30)).expect_code(0);
}
