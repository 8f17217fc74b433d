//! The server's guards: its door (origin, host, token), secrets kept out of its environment,
//! bad input, plan paths, slow and too many clients.

use super::*;

#[test]
fn the_server_guards_its_door() {
    let p = project();
    // Reachable from other hosts: not without a token.
    let refused = p.swarm(&["serve", "--bind", "0.0.0.0:0"]);
    refused.expect_code(2);
    assert!(refused.stderr.contains("--token-env"), "{}", refused.dump());
    let mut cmd = p.command(&["serve", "--bind", "0.0.0.0:0", "--token-env", "SERVE_TOKEN", "--json"]);
    cmd.env("SERVE_TOKEN", "s3cret-token");
    let bg = p.spawn_cmd(cmd);
    let addr = wait_for(Duration::from_secs(20), "serve listens", || {
        bg.stdout()
            .lines()
            .find_map(|l| serde_json::from_str::<Value>(l).ok()?["listening"].as_str().map(String::from))
    });
    let port = addr.rsplit(':').next().unwrap();
    let url = format!("http://127.0.0.1:{port}/api/runs");
    assert_eq!(agent().get(&url).call().unwrap().status().as_u16(), 401);
    assert_eq!(
        agent().get(&url).header("Authorization", "Bearer wrong").call().unwrap().status().as_u16(),
        401
    );
    assert_eq!(agent().get(&format!("http://127.0.0.1:{port}/mcp")).call().unwrap().status().as_u16(), 401);
    let ok = agent().get(&url).header("Authorization", "Bearer s3cret-token").call().unwrap();
    assert_eq!(ok.status().as_u16(), 200);
    assert!(!bg.stdout().contains("s3cret") && !bg.stderr().contains("s3cret"), "the token is never printed");
    bg.signal(nix::sys::signal::Signal::SIGTERM);
    bg.wait(Duration::from_secs(30));

    // On loopback: a page of another origin, or a DNS-rebound host name, is refused, token or not.
    let (bg, addr) = serve(&p, &[]);
    let url = format!("http://{addr}/api/runs");
    let bearer = format!("Bearer {}", token());
    let r = agent()
        .get(&url)
        .header("Authorization", &bearer)
        .header("Origin", "http://evil.example")
        .call()
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    let r = agent().get(&url).header("Authorization", &bearer).header("Host", "evil.example").call().unwrap();
    assert_eq!(r.status().as_u16(), 403);
    let r = agent()
        .post(&format!("http://{addr}/mcp"))
        .header("Authorization", &bearer)
        .header("Origin", "http://evil.example")
        .send("{}")
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    let r = agent()
        .get(&url)
        .header("Authorization", &bearer)
        .header("Origin", &format!("http://{addr}"))
        .call()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200, "the dashboard's own origin passes");
    let started = Instant::now();
    let page = agent().get(&format!("http://{addr}/")).call().unwrap().body_mut().read_to_string().unwrap();
    assert!(page.contains("<title>swarm</title>") && started.elapsed() < Duration::from_secs(5));
    bg.signal(nix::sys::signal::Signal::SIGTERM);
    bg.wait(Duration::from_secs(30));
}

/// On loopback too, every request needs a token (issue 15): any local user, and any agent of any
/// run, could otherwise start an `exec` task as the user serving. Without `--token-env`, swarm
/// makes one into `.swarm/serve-token` (0600), keeps it across restarts and prints the dashboard's
/// address with it; the dashboard keeps it in a cookie, honoured from its own origin only.
#[test]
fn a_loopback_server_requires_its_token() {
    let p = project();
    let (bg, addr) = serve(&p, &[]);
    let tok = token();
    let file = p.file(".swarm/serve-token");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
    let api = format!("http://{addr}/api/runs");
    let status = |r: Result<ureq::http::Response<ureq::Body>, ureq::Error>| r.unwrap().status().as_u16();
    assert_eq!(status(agent().get(&api).call()), 401);
    assert_eq!(
        status(
            agent()
                .post(&api)
                .header("Content-Type", "application/json")
                .send(r###"{"plan": "## x: y\n- agent: exec\n- command: id\n"}"###)
        ),
        401
    );
    assert_eq!(status(agent().post(&format!("http://{addr}/mcp")).send("{}")), 401);
    assert_eq!(status(agent().get(&api).header("Authorization", "Bearer nope").call()), 401);
    assert_eq!(status(agent().get(&api).header("Authorization", &format!("Bearer {tok}")).call()), 200);
    assert_eq!(status(agent().get(&format!("http://{addr}/")).call()), 200, "the page itself holds no data");
    let port = addr.rsplit(':').next().unwrap();
    let cookie = format!("swarm_token_{port}={tok}");
    assert_eq!(status(agent().get(&api).header("Cookie", &cookie).call()), 200);
    let evil = agent().get(&api).header("Cookie", &cookie).header("Origin", "http://localhost:9999").call();
    assert_eq!(status(evil), 401, "the cookie counts from the dashboard's origin only");
    let dashboard = format!("dashboard http://{addr}/#token={tok}");
    wait_until(Duration::from_secs(10), "the dashboard's address is printed", || {
        bg.stderr().contains(&dashboard)
    });
    bg.signal(nix::sys::signal::Signal::SIGTERM);
    bg.wait(Duration::from_secs(30)).expect_code(0);
    let (bg, _) = serve(&p, &[]);
    assert_eq!(token(), tok, "the token is kept across restarts");
    bg.signal(nix::sys::signal::Signal::SIGTERM);
    bg.wait(Duration::from_secs(30));
}

/// A provider key in swarm's environment is not readable from `/proc/<swarm pid>/environ`
/// (issue 15): an agent of the same user could read it there.
#[test]
fn provider_keys_are_not_in_procs_environ_of_swarm() {
    let p = project();
    p.write(
        "swarm.toml",
        &format!("{FAST_CONFIG}\n[providers.paid]\nkind = \"openai-compatible\"\nbase_url = \"http://127.0.0.1:9/v1\"\napi_key_env = \"SERVE_TEST_PROVIDER_KEY\"\n"),
    );
    let (bg, addr) = serve(&p, &[]);
    let environ = std::fs::read(format!("/proc/{}/environ", bg.pid())).unwrap();
    let environ = String::from_utf8_lossy(&environ);
    assert!(environ.contains("SERVE_TEST_PROVIDER_KEY=") && !environ.contains(SECRET), "{environ}");
    // (That swarm itself still has the value is os::secrets' unit test.)
    let (status, _) = get(&format!("http://{addr}/api/runs"));
    assert_eq!(status, 200, "the server works sealed");
    bg.signal(nix::sys::signal::Signal::SIGTERM);
    bg.wait(Duration::from_secs(30)).expect_code(0);
}

/// A wait that is not a number of seconds is bad input, not a panic (issue 15).
#[test]
fn a_nan_wait_is_bad_input_not_a_panic() {
    let p = project();
    let (bg, addr) = serve(&p, &[]);
    let (_, started) = post(&format!("http://{addr}/api/runs"), r#"{"plan_path": "good.md"}"#);
    let run = started["run_id"].as_str().unwrap().to_string();
    for wait in ["NaN", "inf", "-inf"] {
        let (status, err) = get(&format!("http://{addr}/api/runs/{run}?wait_s={wait}"));
        assert_eq!(status, 400, "{wait}: {err}");
        assert!(err["error"].as_str().unwrap_or_default().contains("wait_s"), "{err}");
    }
    let (status, _) = get(&format!("http://{addr}/api/runs/{run}?wait_s=0.5"));
    assert_eq!(status, 200, "the server still answers");
    bg.signal(nix::sys::signal::Signal::SIGTERM);
    bg.wait(Duration::from_secs(30)).expect_code(0);
}

/// `plan_path` names a plan inside the project (issue 15): no other file is read, nothing that is
/// not a plan is echoed (the server's environment holds a provider key), nothing hangs.
#[test]
fn plan_paths_stay_inside_the_project_and_errors_leak_nothing() {
    let p = project();
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("away.md"), format!("## x: {SECRET}\n")).unwrap();
    std::os::unix::fs::symlink("/proc/self/environ", p.file("environ.md")).unwrap();
    std::os::unix::fs::symlink(outside.path(), p.file("out")).unwrap();
    assert!(Command::new("mkfifo").arg(p.file("fifo.md")).status().unwrap().success());
    let (server, addr) = serve(&p, &[]);
    let away = outside.path().join("away.md").display().to_string();
    for (path, why) in [
        ("/proc/self/environ", "plan file"),
        ("../../../../../../proc/self/environ", "plan file"),
        ("environ.md", "symbolic link"),
        (away.as_str(), "inside the project"),
        ("out/away.md", "inside the project"),
        ("fifo.md", "FIFO"),
        ("/dev/zero", "plan file"),
    ] {
        let started = Instant::now();
        let body = serde_json::json!({ "plan_path": path }).to_string();
        let (status, err) = post(&format!("http://{addr}/api/runs"), &body);
        assert_eq!(status, 400, "{path}: {err}");
        let text = err.to_string();
        assert!(text.contains(why), "{path}: {text}");
        assert!(!text.contains(SECRET) && !text.contains("PATH="), "{path} leaked: {text}");
        assert!(started.elapsed() < Duration::from_secs(5), "{path} took {:?}", started.elapsed());
    }
    let (status, _) = post(&format!("http://{addr}/api/runs"), r#"{"plan_path": "good.md"}"#);
    assert_eq!(status, 201, "a plan inside the project still starts");
    server.signal(nix::sys::signal::Signal::SIGTERM);
    server.wait(Duration::from_secs(30));
}

/// A client that sends its request's headers slowly (slow-loris) is cut off once the header-read
/// timeout passes (1 s here, 30 s by default), and the server goes on serving.
#[test]
fn a_slow_client_is_cut_off_after_the_header_read_timeout() {
    use std::io::{Read, Write};
    let p = project();
    let (server, addr) = serve_with(&p, &[], &[("SWARM_SERVE_HEADER_TIMEOUT_S", "1")]);
    let mut conn = std::net::TcpStream::connect(&addr).unwrap();
    conn.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    let started = Instant::now();
    conn.write_all(format!("GET /api/runs HTTP/1.1\r\nHost: {addr}\r\nX-Slow: ").as_bytes()).unwrap();
    let mut buf = [0u8; 1024];
    let closed = loop {
        assert!(started.elapsed() < Duration::from_secs(15), "the connection is still open after 15 s");
        match conn.read(&mut buf) {
            Ok(0) => break started.elapsed(),
            Ok(_) => {} // a 408 answer, before the close
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock || e.kind() == std::io::ErrorKind::TimedOut =>
            {
                // One more byte of the header, as a slow client sends them.
                if conn.write_all(b"x").is_err() {
                    break started.elapsed();
                }
            }
            Err(_) => break started.elapsed(),
        }
    };
    assert!(
        closed >= Duration::from_millis(900) && closed < Duration::from_secs(5),
        "closed after {closed:?}"
    );
    assert_eq!(get(&format!("http://{addr}/api/runs")).0, 200, "the server goes on serving");
    server.signal(nix::sys::signal::Signal::SIGTERM);
    server.wait(Duration::from_secs(30)).expect_code(0);
}

/// Past the cap on connections at once, a new one waits to be accepted until one closes.
#[test]
fn connections_past_the_cap_wait_for_one_to_close() {
    let p = project();
    let (server, addr) = serve_with(&p, &[], &[("SWARM_SERVE_MAX_CONNECTIONS", "2")]);
    let held: Vec<_> = (0..2).map(|_| std::net::TcpStream::connect(&addr).unwrap()).collect();
    let url = format!("http://{addr}/api/runs");
    let tok = token();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let r = agent().get(&url).header("Authorization", &format!("Bearer {tok}")).call();
        let _ = tx.send(r.map(|r| r.status().as_u16()).unwrap_or(0));
    });
    assert!(
        rx.recv_timeout(Duration::from_secs(2)).is_err(),
        "a third connection is not served while two are open"
    );
    drop(held);
    assert_eq!(rx.recv_timeout(Duration::from_secs(20)).expect("served once one closes"), 200);
    server.signal(nix::sys::signal::Signal::SIGTERM);
    server.wait(Duration::from_secs(30)).expect_code(0);
}
