//! The real pinned agent CLIs (opencode, kilo, cline from `scripts/install-agents.sh`) run by
//! `swarm run` against swarm's fake model server, started in-process.

mod support;

use serde_json::Value;
use std::path::PathBuf;
use std::time::Duration;
use support::*;

fn project(fake: &Fake, models: &str) -> Project {
    let p = Project::new();
    p.write(
        "swarm.toml",
        &format!(
            "{FAST_CONFIG}\n[providers.local]\nkind = \"openai-compatible\"\nbase_url = \"{}\"\napi_key_env = \"SWARM_TEST_LOCAL_KEY\"\nmodels = [{models}]\n",
            fake.base_url()
        ),
    );
    p
}

fn run(p: &Project, bin: &std::path::Path) -> Out {
    let mut cmd = p.command(&["run", "plan.md"]);
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut dirs = vec![bin.to_path_buf()];
    dirs.extend(std::env::split_paths(&path));
    cmd.env("PATH", std::env::join_paths(dirs).unwrap());
    p.spawn_cmd(cmd).wait(Duration::from_secs(80))
}

fn attempt<'a>(report: &'a Value, id: &str) -> &'a Value {
    attempts(report, id).last().unwrap_or_else(|| panic!("{id} has an attempt: {report:#}"))
}

#[test]
fn opencode_kilo_and_cline_run_against_the_fake_model_server() {
    let bin = tools_bin();
    let fake = Fake::start(
        r#"
[models.oc]
steps = [ { write = { path = "opencode.txt", content = "from opencode\n" } }, { report = { status = "done", summary = "wrote opencode.txt" } }, { say = "DONE" } ]
[models.kl]
steps = [ { write = { path = "kilo.txt", content = "from kilo\n" } }, { report = { status = "done", summary = "wrote kilo.txt" } }, { say = "DONE" } ]
[models.cl]
steps = [ { write = { path = "cline.txt", content = "from cline\n" } }, { report = { status = "done", summary = "wrote cline.txt" } }, { say = "DONE" } ]
"#,
    );
    let p = project(&fake, "\"oc\", \"kl\", \"cl\"");
    p.plan(
        "---\nconcurrency: 3\ndefaults:\n  timeout: 60s\n  workdir: shared\n---\n\n\
         ## oc: opencode\n- agent: opencode\n- model: local/oc\n\nWrite opencode.txt.\n\n\
         ## kl: kilo\n- agent: kilo\n- model: local/kl\n\nWrite kilo.txt.\n\n\
         ## cl: cline\n- agent: cline\n- model: local/cl\n\nWrite cline.txt.\n",
    );
    let out = run(&p, &bin);
    let run_id = out.run_id();
    let report = p.report(&run_id);
    let logs = |id: &str| {
        attempts(&report, id)
            .iter()
            .filter_map(|a| a["log"].as_str())
            .map(|l| std::fs::read_to_string(l).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n")
    };
    for (id, file, content) in [
        ("oc", "opencode.txt", "from opencode\n"),
        ("kl", "kilo.txt", "from kilo\n"),
        ("cl", "cline.txt", "from cline\n"),
    ] {
        assert_eq!(
            state(&report, id),
            "succeeded",
            "{id}: {}\n{}\nlog:\n{}",
            detail(&report, id),
            out.dump(),
            logs(id)
        );
        assert_eq!(p.read(file), content, "{id} wrote {file}");
        let a = attempt(&report, id);
        assert!(a["tokens_in"].as_u64().unwrap_or(0) > 0, "{id} counted tokens: {a:#}");
        assert!(a["session_id"].as_str().is_some_and(|s| !s.is_empty()), "{id} has a session id: {a:#}");
        assert_eq!(a["completion"]["status"], "done", "{id}: {a:#}");
    }
    out.expect_code(0);
    // No agent left anything running (cline's hub daemon, say).
    assert_no_process_of(&run_id);
    // The key never lands in what swarm writes.
    let placeholder = "swarm-local-placeholder-key";
    for entry in walk(&p.file(".swarm")) {
        if entry.components().any(|c| c.as_os_str() == "agent-home") {
            continue; // the agents' own files (cline's config holds no key: it reads it from env)
        }
        if let Ok(text) = std::fs::read(&entry) {
            assert!(
                !String::from_utf8_lossy(&text).contains(placeholder),
                "{} holds the provider key",
                entry.display()
            );
        }
    }
}

fn walk(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let path = e.path();
            if path.is_dir() {
                out.extend(walk(&path));
            } else {
                out.push(path);
            }
        }
    }
    out
}

#[test]
fn opencode_429_is_classified_rate_limited_with_retry_after() {
    let bin = tools_bin();
    let fake = Fake::start(
        "[models.r429]\nrate_limit = { first = 1000, retry_after = 1 }\nsteps = [ { say = \"DONE\" } ]\n",
    );
    let p = project(&fake, "\"r429\"");
    p.plan("---\ndefaults:\n  timeout: 60s\n---\n\n## limited: rate limited\n- agent: opencode\n- model: local/r429\n\nSay hi.\n");
    let out = run(&p, &bin);
    out.expect_code(1);
    let report = p.report(&out.run_id());
    let a = attempt(&report, "limited");
    assert_eq!(a["failure_class"], "rate_limited", "{a:#}\n{}", out.dump());
    assert_eq!(a["retry_after_ms"], 1000, "{a:#}");
    assert!(a["detail"].as_str().unwrap_or("").contains("rate_limited"), "{a:#}");
}

/// A task of `agent` against a model that always answers 429 (`retry-after: 1`).
fn rate_limited(agent: &str) -> Value {
    let bin = tools_bin();
    let fake = Fake::start(
        "[models.r429]\nrate_limit = { first = 1000, retry_after = 1 }\nsteps = [ { say = \"DONE\" } ]\n",
    );
    let p = project(&fake, "\"r429\"");
    p.plan(&format!(
        "---\ndefaults:\n  timeout: 60s\n---\n\n## limited: rate limited\n- agent: {agent}\n- model: local/r429\n\nSay hi.\n"
    ));
    let out = run(&p, &bin);
    out.expect_code(1);
    let report = p.report(&out.run_id());
    let a = attempt(&report, "limited").clone();
    assert_eq!(a["failure_class"], "rate_limited", "{agent}: {a:#}\n{}", out.dump());
    assert!(a["detail"].as_str().unwrap_or("").contains("rate_limited"), "{agent}: {a:#}");
    a
}

#[test]
fn cline_429_is_classified_from_the_message_text() {
    // cline reports no status code: the class and the wait come from the provider's message.
    let a = rate_limited("cline");
    assert_eq!(a["retry_after_ms"], 1000, "{a:#}");
}

#[test]
fn kilo_429_is_classified_rate_limited_with_retry_after() {
    let a = rate_limited("kilo");
    assert_eq!(a["retry_after_ms"], 1000, "{a:#}");
}

/// A model that never answers: the real CLI waits forever, swarm's `stall` ends the attempt and
/// nothing of the agent's process tree survives.
#[test]
fn a_hanging_model_ends_by_stall_and_leaves_no_process() {
    let bin = tools_bin();
    let fake = Fake::start("[models.hang]\nhang = true\n");
    let p = project(&fake, "\"hang\"");
    p.plan("---\ndefaults:\n  timeout: 60s\n  stall: 4s\n---\n\n## stuck: waits on the model\n- agent: opencode\n- model: local/hang\n\nSay hi.\n");
    let out = run(&p, &bin);
    out.expect_code(1);
    let report = p.report(&out.run_id());
    let a = attempt(&report, "stuck");
    assert!(matches!(a["reason"].as_str(), Some("stalled") | Some("timeout")), "{a:#}\n{}", out.dump());
    let pgid = a["pid"].as_u64().expect("the attempt's process group is recorded") as i32;
    let group_gone = matches!(
        nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pgid), None),
        Err(nix::errno::Errno::ESRCH)
    );
    assert!(group_gone, "a process of the agent's group {pgid} is still alive");
}

/// A task prompt with everything a shell or a JSON encoder might touch.
const TRICKY: &str =
    "say \"hi\" and 'bye'; a \\backslash\\ and \\\"escaped\\\" quote; $HOME ${PATH} `whoami` $(id)\n\
\ttabbed line; unicode: žluťoučký kůň 🐝 — done\n- a list item\n";

/// The model receives the plan's brief and the task prompt byte for byte: the brief starts with
/// `-` (an option, to a careless CLI) and is over 200 KiB (more than one argument may hold).
fn prompt_reaches_the_model_verbatim(agent: &str) {
    let bin = tools_bin();
    let fake = Fake::start(
        "[models.echo]\nsteps = [ { report = { status = \"done\", summary = \"read it\" } }, { say = \"DONE\" } ]\n",
    );
    let p = project(&fake, "\"echo\"");
    let mut brief = String::from("- the brief starts with a dash and has \"quotes\" too\n");
    let mut n = 0;
    while brief.len() < 200 * 1024 {
        n += 1;
        brief.push_str(&format!("brief line {n}: `x` $y \"z\" \\w\t\u{1F41D}\n"));
    }
    let plan = serde_json::json!({
        "name": "fidelity",
        "brief": brief,
        "tasks": [ { "id": "t", "title": "fidelity", "agent": agent, "model": "local/echo",
                     "timeout": "80s", "prompt": TRICKY } ],
    });
    p.write("plan.json", &plan.to_string());
    let mut cmd = p.command(&["run", "plan.json"]);
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut dirs = vec![bin.to_path_buf()];
    dirs.extend(std::env::split_paths(&path));
    cmd.env("PATH", std::env::join_paths(dirs).unwrap());
    let out = p.spawn_cmd(cmd).wait(Duration::from_secs(100));
    let report = p.report(&out.run_id());
    let received: Vec<String> =
        fake.server.as_ref().unwrap().log().records().into_iter().flat_map(|r| r.user).collect();
    let hit = received.iter().find(|m| m.contains(brief.trim_end()) && m.contains(TRICKY.trim_end()));
    assert!(
        hit.is_some(),
        "{agent}: no user message holds the brief and the prompt verbatim; got {} messages, starting:\n{}\n{}",
        received.len(),
        received.iter().map(|m| format!("{:?}…", m.chars().take(300).collect::<String>())).collect::<Vec<_>>().join("\n"),
        out.dump()
    );
    assert_eq!(
        state(&report, "t"),
        "succeeded",
        "{agent}: the fake found the report footer as written: {}\n{}",
        detail(&report, "t"),
        out.dump()
    );
    out.expect_code(0);
}

#[test]
fn opencode_gets_the_prompt_byte_for_byte() {
    prompt_reaches_the_model_verbatim("opencode");
}

#[test]
fn kilo_gets_the_prompt_byte_for_byte() {
    prompt_reaches_the_model_verbatim("kilo");
}

#[test]
fn cline_gets_the_prompt_byte_for_byte() {
    prompt_reaches_the_model_verbatim("cline");
}
