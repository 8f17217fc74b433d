//! The real pinned Claude Code, Codex, Gemini CLI and aider (from `scripts/install-agents.sh`)
//! run by `swarm run` against swarm's fake model server, which speaks each one's wire format
//! (Anthropic Messages, OpenAI Responses, Gemini, OpenAI Chat) on one base URL: the file the
//! CLI's own tool wrote, the completion report, tokens and session id in report.json, the prompt
//! received byte for byte, the project's instructions and a role's persona reaching the model,
//! a give-up signal classified, and a hanging model ended by `stall` with nothing left running.

mod support;

use serde_json::Value;
use std::path::PathBuf;
use std::time::Duration;
use support::*;

/// The directories holding the four CLIs: npm's bin directory and aider's venv.
fn path_with_tools() -> std::ffi::OsString {
    let tools = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.tools");
    let mut dirs = Vec::new();
    for (dir, bin) in [
        ("node_modules/.bin", "claude"),
        ("node_modules/.bin", "codex"),
        ("node_modules/.bin", "gemini"),
        ("aider-venv/bin", "aider"),
    ] {
        let d = tools.join(dir);
        assert!(
            d.join(bin).exists(),
            "{} is missing: run ./scripts/install-agents.sh to install the pinned agent CLIs",
            d.join(bin).display()
        );
        dirs.push(d.canonicalize().unwrap());
    }
    dirs.dedup();
    dirs.extend(std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()));
    std::env::join_paths(dirs).unwrap()
}

/// A git project (with a first commit: aider wants one) whose provider `local` is the fake.
fn project(fake: &Fake, models: &str) -> Project {
    let p = Project::git();
    p.write(
        "swarm.toml",
        &format!(
            "{FAST_CONFIG}\n[providers.local]\nkind = \"openai-compatible\"\nbase_url = \"{}\"\napi_key_env = \"SWARM_TEST_LOCAL_KEY\"\nmodels = [{models}]\n",
            fake.base_url()
        ),
    );
    let git = |args: &[&str]| {
        let out = std::process::Command::new("git").arg("-C").arg(p.path()).args(args).output().unwrap();
        assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    git(&["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "--allow-empty", "-m", "init"]);
    p
}

/// `swarm run FILE` with the CLIs on PATH.
fn run(p: &Project, file: &str, timeout: Duration) -> Out {
    run_with(p, file, timeout, None)
}

/// The provider key a task pinned to `local/…` is run with, when it is set: then swarm keeps it
/// and the agent talks to the model through the gateway, in its own wire format.
const LOCAL_KEY: &str = "sk-live-local-provider-0123456789";

fn run_with(p: &Project, file: &str, timeout: Duration, key: Option<&str>) -> Out {
    let mut cmd = p.command(&["run", file, "--no-progress"]);
    cmd.env("PATH", path_with_tools());
    if let Some(key) = key {
        cmd.env("SWARM_TEST_LOCAL_KEY", key);
    }
    p.spawn_cmd(cmd).wait(timeout)
}

fn attempt<'a>(report: &'a Value, id: &str) -> &'a Value {
    attempts(report, id).last().unwrap_or_else(|| panic!("{id} has an attempt: {report:#}"))
}

fn log_of(report: &Value, id: &str) -> String {
    attempts(report, id)
        .iter()
        .filter_map(|a| a["log"].as_str())
        .map(|l| std::fs::read_to_string(l).unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n")
}

/// A task prompt with everything a shell, a JSON encoder or a CLI's own parsing might touch
/// (no `@path` of an existing file: Gemini CLI expands those, see its adapter).
const TRICKY: &str =
    "say \"hi\" and 'bye'; a \\backslash\\ and \\\"escaped\\\" quote; $HOME ${PATH} `whoami` $(id) %s\n\
\ttabbed line; unicode: žluťoučký kůň 🐝 — done\n- a list item\n/not-a-command mid-text\r\na CRLF line\r\n";

/// The project's instruction files and a role, each with a marker the model must receive.
fn instructions(p: &Project) {
    p.write("CLAUDE.md", "MARKER-CLAUDE-MD: project instructions for Claude Code.\n");
    p.write("AGENTS.md", "MARKER-AGENTS-MD: project instructions for every agent.\n");
    p.write("GEMINI.md", "MARKER-GEMINI-MD: project instructions for Gemini CLI.\n");
    p.write(
        ".claude/agents/critic.md",
        "---\nname: critic\ndescription: Reviews the work.\n---\nMARKER-PERSONA: You are the critic.\n",
    );
}

/// The instruction markers `agent` must pass on (Claude Code reads AGENTS.md only without a
/// CLAUDE.md; Codex reads AGENTS.md; Gemini CLI GEMINI.md and, by swarm's settings, AGENTS.md;
/// aider is given all with `--read`).
fn markers(agent: &str) -> &'static [&'static str] {
    match agent {
        "claude" => &["MARKER-CLAUDE-MD"],
        "codex" => &["MARKER-AGENTS-MD"],
        "gemini" => &["MARKER-GEMINI-MD", "MARKER-AGENTS-MD"],
        _ => &["MARKER-AGENTS-MD", "MARKER-CLAUDE-MD", "MARKER-GEMINI-MD"],
    }
}

/// One task of `agent` (role `critic`) against the fake: it writes a file with its own tool,
/// reports, and the model received the brief and prompt verbatim, the project's instructions
/// and the persona; tokens and the session id are in report.json.
fn works_live(agent: &str) {
    works_live_via(agent, None);
}

/// [`works_live`], directly against the provider (`key` None: the agent is given the provider),
/// or through the gateway (a key swarm keeps: the agent talks to the gateway in its own format,
/// translated to the provider's OpenAI Chat, and never sees the key).
fn works_live_via(agent: &str, key: Option<&str>) {
    let fake = Fake::start(&format!(
        "[models.m]\nsteps = [ {{ write = {{ path = \"{agent}.txt\", content = \"from {agent}\\n\" }} }}, \
         {{ report = {{ status = \"done\", summary = \"wrote {agent}.txt\" }} }}, {{ say = \"DONE\" }} ]\n"
    ));
    let p = project(&fake, "\"m\"");
    instructions(&p);
    // Over 128 KiB (more than one argument may hold), starting with a dash.
    let mut brief = String::from("- the brief starts with a dash and has \"quotes\" too\n");
    let mut n = 0;
    while brief.len() < 140 * 1024 {
        n += 1;
        brief.push_str(&format!("brief line {n}: `x` $y \"z\" \\w\t\u{1F41D}\n"));
    }
    let plan = serde_json::json!({
        "name": "live",
        "brief": brief,
        "tasks": [ { "id": "t", "title": "live", "agent": agent, "model": "local/m", "role": "critic",
                     "workdir": "shared", "timeout": "150s", "prompt": TRICKY } ],
    });
    p.write("plan.json", &plan.to_string());
    let out = run_with(&p, "plan.json", Duration::from_secs(180), key);
    let report = p.report(&out.run_id());
    assert_eq!(
        state(&report, "t"),
        "succeeded",
        "{agent}: {}\n{}\nlog:\n{}",
        detail(&report, "t"),
        out.dump(),
        log_of(&report, "t")
    );
    out.expect_code(0);
    assert_eq!(p.read(&format!("{agent}.txt")), format!("from {agent}\n"), "{agent} wrote its file");
    let a = attempt(&report, "t");
    assert_eq!(a["completion"]["status"], "done", "{agent}: {a:#}");
    assert!(a["tokens_in"].as_u64().unwrap_or(0) > 0, "{agent} counted tokens: {a:#}");
    if agent != "aider" {
        // aider has no session id.
        assert!(a["session_id"].as_str().is_some_and(|s| !s.is_empty()), "{agent} has a session id: {a:#}");
    }
    let records = fake.server.as_ref().unwrap().log().records();
    let received: Vec<&String> = records.iter().flat_map(|r| &r.user).collect();
    // aider's --message-file turns CRLF into LF (measured; the rest stays as it is).
    let prompt = if agent == "aider" { TRICKY.replace("\r\n", "\n") } else { TRICKY.to_string() };
    assert!(
        received.iter().any(|m| m.contains(brief.trim_end()) && m.contains(&prompt)),
        "{agent}: no user message holds the brief and the prompt verbatim; got {} messages:\n{}",
        received.len(),
        received
            .iter()
            .map(|m| format!("{:?}…", m.chars().take(300).collect::<String>()))
            .collect::<Vec<_>>()
            .join("\n")
    );
    let bodies: Vec<String> = records.iter().map(|r| r.body.to_string()).collect();
    for marker in markers(agent).iter().chain(&["MARKER-PERSONA"]) {
        assert!(bodies.iter().any(|b| b.contains(marker)), "{agent}: the model never received {marker}");
    }
    // The key never lands in what swarm writes (the agents' own homes aside).
    assert!(!p.exists("swarm-completion.json"), "aider's report was moved where swarm reads it");
    assert_no_process_of(&out.run_id());
    if let Some(key) = key {
        // Through the gateway: the provider got the key, in its own (OpenAI Chat) requests only;
        // the agent's files hold nothing of it.
        assert!(records.iter().all(|r| r.path.ends_with("/chat/completions")), "{agent}: translated to Chat");
        for f in walk(p.path()) {
            let text = std::fs::read(&f).unwrap_or_default();
            assert!(!String::from_utf8_lossy(&text).contains(key), "{agent}: {} holds the key", f.display());
        }
    }
}

/// Every file under `dir`.
fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = e.path();
        match e.file_type() {
            Ok(t) if t.is_dir() => out.extend(walk(&path)),
            Ok(t) if t.is_file() => out.push(path),
            _ => {}
        }
    }
    out
}

#[test]
fn claude_code_works_live_through_the_gateway() {
    works_live_via("claude", Some(LOCAL_KEY));
}

#[test]
fn codex_works_live_through_the_gateway() {
    works_live_via("codex", Some(LOCAL_KEY));
}

#[test]
fn gemini_cli_works_live_through_the_gateway() {
    works_live_via("gemini", Some(LOCAL_KEY));
}

#[test]
fn claude_code_works_live() {
    works_live("claude");
}

#[test]
fn codex_works_live() {
    works_live("codex");
}

#[test]
fn gemini_cli_works_live() {
    works_live("gemini");
}

#[test]
fn aider_works_live() {
    works_live("aider");
}

/// A model that never answers: Claude Code retries for an hour, Codex waits forever, Gemini CLI
/// ~15 min, aider 10 min a request; swarm's `stall` ends each and nothing of its process group
/// survives.
#[test]
fn a_hanging_model_ends_each_new_cli_by_stall() {
    let fake = Fake::start("[models.hang]\nhang = true\n");
    let p = project(&fake, "\"hang\"");
    let mut plan = String::from(
        "---\nconcurrency: 4\ndefaults:\n  timeout: 120s\n  stall: 5s\n  workdir: shared\n---\n\n",
    );
    for agent in ["claude", "codex", "gemini", "aider"] {
        plan.push_str(&format!(
            "## {agent}: waits on the model\n- agent: {agent}\n- model: local/hang\n\nSay hi.\n\n"
        ));
    }
    p.plan(&plan);
    let out = run(&p, "plan.md", Duration::from_secs(150));
    out.expect_code(1);
    let report = p.report(&out.run_id());
    for agent in ["claude", "codex", "gemini", "aider"] {
        let a = attempt(&report, agent);
        assert_eq!(a["reason"], "stalled", "{agent}: {a:#}\n{}", out.dump());
        let pgid = a["pid"].as_u64().expect("the attempt's process group is recorded") as i32;
        let group_gone = || {
            matches!(
                nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pgid), None),
                Err(nix::errno::Errno::ESRCH)
            )
        };
        // A SIGKILLed process may take a moment to be reaped.
        wait_until(Duration::from_secs(5), &format!("{agent}'s process group {pgid} is gone"), group_gone);
    }
    assert_no_process_of(&out.run_id());
}

/// The signal each CLI gives up on at once is classified from what it printed: Claude Code a
/// 429 with `retry-after` over 60 s, Codex a 429 without `retry-after`, Gemini CLI a per-day
/// quota (exit 173 = 429 & 255). (aider retries any 429 for ~3 minutes, then exits 0: its
/// classification is tested with a stand-in in aider_exit_zero.rs.)
#[test]
fn each_clis_give_up_signal_is_classified() {
    let fake = Fake::start(
        "[models.wait]\nrate_limit = { first = 1000, retry_after = 120 }\n\
         [models.plain]\nrate_limit = { first = 1000, header = false }\n\
         [models.day]\nrate_limit = { first = 1000, kind = \"quota\", header = false }\n",
    );
    let p = project(&fake, "\"wait\", \"plain\", \"day\"");
    p.plan(
        "---\nconcurrency: 3\ndefaults:\n  timeout: 120s\n  workdir: shared\n---\n\n\
         ## claude: C\n- agent: claude\n- model: local/wait\n\nSay hi.\n\n\
         ## codex: X\n- agent: codex\n- model: local/plain\n\nSay hi.\n\n\
         ## gemini: G\n- agent: gemini\n- model: local/day\n\nSay hi.\n",
    );
    let out = run(&p, "plan.md", Duration::from_secs(150));
    out.expect_code(1);
    let report = p.report(&out.run_id());
    for (agent, class) in
        [("claude", "rate_limited"), ("codex", "rate_limited"), ("gemini", "quota_exhausted")]
    {
        let a = attempt(&report, agent);
        assert_eq!(a["failure_class"], class, "{agent}: {a:#}\n{}", log_of(&report, agent));
    }
    assert_eq!(attempt(&report, "gemini")["exit_code"], 173);
}

/// `swarm agents` and `swarm doctor` find all seven pinned CLIs in the project's `.tools` (npm's
/// bin directory and aider's venv), each at its pinned version.
#[test]
fn agents_and_doctor_show_all_seven_at_their_pins() {
    let p = Project::new();
    let tools = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.tools").canonicalize().unwrap();
    std::os::unix::fs::symlink(tools, p.file(".tools")).unwrap();
    // Only the project's .tools: nothing of the test machine's own PATH but the basics.
    let only_tools = |args: &[&str]| {
        let mut cmd = p.command(args);
        cmd.env("PATH", "/usr/local/bin:/usr/bin:/bin");
        p.spawn_cmd(cmd).wait(Duration::from_secs(120))
    };
    let out = only_tools(&["agents", "--json"]);
    out.expect_code(0);
    let rows = out.json();
    let pins = [
        ("opencode", "1.18.33"),
        ("kilo", "7.7.7"),
        ("cline", "3.0.65"),
        ("claude", "2.1.332"),
        ("codex", "0.171.0"),
        ("gemini", "0.61.0"),
        ("aider", "0.86.2"),
    ];
    for (name, pin) in pins {
        let row = rows.as_array().unwrap().iter().find(|r| r["name"] == name).unwrap();
        assert_eq!(row["pinned"], pin, "{row:#}");
        assert_eq!(row["pinned_ok"], true, "{name} --version says its pin: {row:#}");
    }
    let doctor = only_tools(&["doctor", "--json"]);
    let v = doctor.json();
    for (name, pin) in pins {
        let a = v["agents"].as_array().unwrap().iter().find(|a| a["name"] == name).unwrap();
        assert!(a["version"].as_str().is_some_and(|v| v.contains(pin)), "{a:#}\n{}", doctor.dump());
    }
    let warned: Vec<&Value> = v["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|w| w.as_str().unwrap_or("").contains("pinned"))
        .collect();
    assert!(warned.is_empty(), "{warned:?}");
}

/// A project whose `[models]` hierarchy is `[[fake/a], [fake/b]]` over the fake.
fn hierarchy(fake: &Fake) -> Project {
    let p = project(fake, "\"a\", \"b\"");
    let config = p.read("swarm.toml").replace("[providers.local]", "[providers.fake]");
    p.write(
        "swarm.toml",
        &format!("{config}paid = false\n\n[models]\nlayers = [[\"fake/a\"], [\"fake/b\"]]\n"),
    );
    p
}

const WORKER: &str = "steps = [ { write = { path = \"out.txt\", content = \"written\\n\" } }, { report = { status = \"done\", summary = \"wrote out.txt\" } }, { say = \"DONE\" } ]\n";

/// aider speaks OpenAI Chat, the gateway's format today: with no `model:` every request goes
/// through the gateway, a 429 is absorbed there (the next model answers) and aider never sees
/// it; it holds only its attempt's token.
#[test]
fn aider_through_the_gateway_never_sees_an_absorbed_429() {
    let fake = Fake::start(&format!(
        "[models.a]\nrate_limit = {{ first = 1000, retry_after = 300 }}\n{WORKER}[models.b]\n{WORKER}"
    ));
    let p = hierarchy(&fake);
    p.plan("---\ndefaults:\n  timeout: 120s\n  workdir: shared\n---\n\n## t: Any model\n- agent: aider\n\nWrite the file, report, say DONE.\n");
    let mut cmd = p.command(&["run", "plan.md", "--no-progress"]);
    cmd.env("PATH", path_with_tools()).env("SWARM_TEST_LOCAL_KEY", "sk-provider-secret-42");
    let out = p.spawn_cmd(cmd).wait(Duration::from_secs(150));
    let report = p.report(&out.run_id());
    assert_eq!(state(&report, "t"), "succeeded", "{}\n{}", detail(&report, "t"), log_of(&report, "t"));
    let tries = attempts(&report, "t");
    assert_eq!(tries.len(), 1, "no retry was spent: {report:#}");
    assert_eq!(tries[0]["model"], "fake/b", "{:#}", tries[0]);
    assert_eq!(tries[0]["fallback_reason"], "rate_limited", "{:#}", tries[0]);
    assert_eq!(tries[0]["completion"]["status"], "done");
    assert_eq!(p.read("out.txt"), "written\n");
    let log = fake.server.as_ref().unwrap().log().records();
    assert!(
        log.iter().all(|r| r.bearer.as_deref() == Some("sk-provider-secret-42")),
        "the gateway used the provider's key"
    );
    assert!(!log_of(&report, "t").contains("RateLimitError"), "aider never saw the 429");
}

/// With no `model:`, Claude Code (Anthropic Messages), Codex (OpenAI Responses) and Gemini CLI
/// (Gemini) talk to the gateway too: a 429 is absorbed there, the next model answers, no retry is
/// spent, and the provider gets its key while the agent holds only its attempt's token.
#[test]
fn claude_codex_and_gemini_through_the_gateway_never_see_an_absorbed_429() {
    for agent in ["claude", "codex", "gemini"] {
        let fake = Fake::start(&format!(
            "[models.a]\nrate_limit = {{ first = 1000, retry_after = 300 }}\n{WORKER}[models.b]\n{WORKER}"
        ));
        let p = hierarchy(&fake);
        p.plan(&format!("---\ndefaults:\n  timeout: 120s\n  workdir: shared\n---\n\n## t: Any model\n- agent: {agent}\n\nWrite the file, report, say DONE.\n"));
        let mut cmd = p.command(&["run", "plan.md", "--no-progress"]);
        cmd.env("PATH", path_with_tools()).env("SWARM_TEST_LOCAL_KEY", "sk-provider-secret-42");
        let out = p.spawn_cmd(cmd).wait(Duration::from_secs(150));
        let report = p.report(&out.run_id());
        assert_eq!(
            state(&report, "t"),
            "succeeded",
            "{agent}: {}\n{}",
            detail(&report, "t"),
            log_of(&report, "t")
        );
        let tries = attempts(&report, "t");
        assert_eq!(tries.len(), 1, "{agent}: no retry was spent: {report:#}");
        assert_eq!(tries[0]["model"], "fake/b", "{agent}: {:#}", tries[0]);
        assert_eq!(tries[0]["fallback_reason"], "rate_limited", "{agent}: {:#}", tries[0]);
        assert_eq!(tries[0]["completion"]["status"], "done", "{agent}");
        assert!(tries[0]["tokens_in"].as_u64().unwrap_or(0) > 0, "{agent}");
        assert_eq!(p.read("out.txt"), "written\n", "{agent}");
        let log = fake.server.as_ref().unwrap().log().records();
        assert!(
            log.iter().all(|r| r.bearer.as_deref() == Some("sk-provider-secret-42")),
            "{agent}: the gateway used the provider's key"
        );
    }
}
