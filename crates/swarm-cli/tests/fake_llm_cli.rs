//! `swarm fake-llm` and `swarm agents` through the real binary.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};
use std::time::Duration;
use support::*;

/// `swarm fake-llm` on `scenario.toml` of `p`, on a free port, and the first line it printed.
fn fake_llm(p: &Project) -> (std::process::Child, String) {
    let mut child = Command::new(SWARM)
        .args(["fake-llm", "--scenario", "scenario.toml", "--port", "0"])
        .current_dir(p.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    (child, line)
}

#[test]
fn fake_llm_serves_its_scenario_until_sigterm() {
    let p = Project::new();
    p.write("scenario.toml", "[models.ok]\nsteps = [ { say = \"DONE\" } ]\n[models.r429]\nrate_limit = { first = 5, retry_after = 2 }\n");
    let (mut child, line) = fake_llm(&p);
    let url = line.split_whitespace().nth(1).unwrap_or_else(|| panic!("no address in {line:?}")).to_string();
    assert!(line.contains("ok") && line.contains("r429"), "{line}");
    let hostport = url.trim_start_matches("http://").trim_end_matches("/v1");
    let get = |path: &str| {
        let mut s = std::net::TcpStream::connect(hostport).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        write!(s, "GET {path} HTTP/1.1\r\nHost: {hostport}\r\nConnection: close\r\n\r\n").unwrap();
        let mut body = String::new();
        s.read_to_string(&mut body).unwrap();
        body
    };
    let models = get("/v1/models");
    assert!(models.starts_with("HTTP/1.1 200"), "{models}");
    assert!(models.contains("\"ok\"") && models.contains("\"r429\""), "{models}");
    signal(child.id(), nix::sys::signal::Signal::SIGTERM);
    let status = child.wait().unwrap();
    assert!(status.success(), "exits cleanly on SIGTERM: {status}");
}

#[test]
fn fake_llm_stopped_as_soon_as_it_says_where_exits_cleanly() {
    let p = Project::new();
    p.write("scenario.toml", "[models.ok]\nsteps = [ { say = \"DONE\" } ]\n");
    for _ in 0..10 {
        let (mut child, line) = fake_llm(&p);
        assert!(line.starts_with("listening"), "{line}");
        signal(child.id(), nix::sys::signal::Signal::SIGTERM);
        let status = child.wait().unwrap();
        assert!(
            status.success(),
            "its SIGTERM handler was in place before it said where it serves: {status}"
        );
    }
}

#[test]
fn fake_llm_rejects_a_bad_scenario_with_exit_2() {
    let p = Project::new();
    p.write("scenario.toml", "[models.ok]\nstepz = []\n");
    let out = p.swarm(&["fake-llm", "--scenario", "scenario.toml", "--port", "0"]);
    out.expect_code(2);
    assert!(out.stderr.contains("stepz"), "names the unknown key: {}", out.dump());
}

#[test]
fn agents_lists_every_adapter_with_pins() {
    let p = Project::new();
    let v = p.swarm(&["agents", "--json"]).expect_code(0).json();
    let names: Vec<&str> = v.as_array().unwrap().iter().map(|a| a["name"].as_str().unwrap()).collect();
    for n in ["opencode", "kilo", "cline", "claude", "codex", "gemini", "aider", "exec"] {
        assert!(names.contains(&n), "{n} listed: {names:?}");
    }
    let opencode = v.as_array().unwrap().iter().find(|a| a["name"] == "opencode").unwrap();
    assert_eq!(opencode["pinned"], "1.18.33");
}

/// An installed swarm (`cargo install`) finds the agent CLIs `./scripts/install-agents.sh --user`
/// put in the user's data directory, from any project (issue 15).
#[test]
fn agents_installed_for_the_user_are_found_from_any_project() {
    let p = Project::new();
    let home = tempfile::tempdir().unwrap();
    let bin = home.path().join(".local/share/swarm/tools/node_modules/.bin");
    std::fs::create_dir_all(&bin).unwrap();
    let fake = bin.join("opencode");
    std::fs::write(&fake, "#!/bin/sh\necho 1.18.33\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut cmd = p.command(&["agents", "--json"]);
    cmd.env("HOME", home.path()).env_remove("XDG_DATA_HOME").env("PATH", "/usr/bin:/bin");
    let v = p.spawn_cmd(cmd).wait(CMD_TIMEOUT).expect_code(0).json();
    let opencode = v.as_array().unwrap().iter().find(|a| a["name"] == "opencode").unwrap();
    assert_eq!(opencode["found"], true, "{opencode:#}");
    assert_eq!(opencode["path"], fake.display().to_string());
}
