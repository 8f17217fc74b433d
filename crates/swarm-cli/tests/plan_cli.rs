//! Plan validation through the CLI (docs/contract.md §1): every error kind with its location, nothing
//! started or stored, all errors at once, and the JSON form of a plan.

mod support;

use serde_json::Value;
use support::*;

/// Asserts that `swarm plan check` and `swarm run` both reject `plan` with exit 2, that stderr
/// points at `location` (`plan.md:LINE:COL`, or `plan.md:LINE:` when the column is the YAML
/// parser's business) with a caret, that the message contains `message`, and that `swarm run`
/// stored nothing. Returns the stderr of `swarm plan check`.
fn assert_plan_error(plan: &str, location: &str, message: &str) -> String {
    assert_plan_file_error("plan.md", plan.as_bytes(), location, message)
}

/// [`assert_plan_error`] for any file name and any bytes.
fn assert_plan_file_error(file: &str, plan: &[u8], location: &str, message: &str) -> String {
    let p = Project::new();
    std::fs::write(p.file(file), plan).expect("write plan");
    let check = p.swarm(&["plan", "check", file]);
    check.expect_code(2);
    let run = p.swarm(&["run", file]);
    run.expect_code(2);
    for out in [&check, &run] {
        assert!(
            out.stderr.contains(&format!("--> {location}")),
            "expected location {location}\n{}",
            out.dump()
        );
        assert!(out.stderr.contains(message), "expected message `{message}`\n{}", out.dump());
        assert!(
            out.stderr.lines().any(|l| l.trim_start().starts_with('|') && l.contains('^')),
            "caret\n{}",
            out.dump()
        );
        assert!(out.stderr.contains("nothing was started"), "{}", out.dump());
    }
    assert!(!run.stdout.starts_with("run "), "no run id for a rejected plan\n{}", run.dump());
    assert!(!p.has_runs(), "`swarm run` stored a run for an invalid plan");
    assert!(p.runs().is_empty(), "`swarm run` stored a run for an invalid plan");
    check.stderr
}

#[test]
fn unknown_key() {
    assert_plan_error(
        "## a: A
- agent: exec
- colour: red
- command: true
",
        "plan.md:3:3",
        "unknown key `colour`",
    );
}

#[test]
fn unknown_key_in_front_matter_defaults() {
    assert_plan_error(
        "---
name: x
defaults:
  agent: exec
  colour: red
---

## a: A
- command: true
",
        "plan.md:5:3",
        "unknown key `colour`",
    );
}

#[test]
fn duplicate_id() {
    let err = assert_plan_error(
        "## a: A
- agent: exec
- command: true

## a: Again
- agent: exec
- command: true
",
        "plan.md:5:4",
        "duplicate task id `a`",
    );
    assert!(err.contains("line 1"), "names the first definition\n{err}");
}

#[test]
fn unknown_dependency() {
    assert_plan_error(
        "## x: X
- agent: exec
- command: true

## a: A
- agent: exec
- command: true
- depends: x, nope
",
        "plan.md:8:15",
        "unknown dependency `nope`",
    );
}

#[test]
fn dependency_cycle_names_the_cycle() {
    let plan = "---
defaults:
  agent: exec
---

## a: A
- command: true
- depends: c

## b: B
- command: true
- depends: a

## c: C
- command: true
- depends: b

## d: Outside the cycle
- command: true
- depends: a
";
    let p = Project::new();
    p.plan(plan);
    for args in [&["plan", "check", "plan.md"][..], &["run", "plan.md"]] {
        let out = p.swarm(args);
        out.expect_code(2);
        let msg = out
            .stderr
            .lines()
            .find_map(|l| l.strip_prefix("error: dependency cycle: "))
            .unwrap_or_else(|| panic!("no `dependency cycle` error\n{}", out.dump()));
        let ids: Vec<&str> = msg.split(" -> ").map(str::trim).collect();
        assert!(ids.len() == 4 && ids[0] == ids[3], "the cycle is closed: {msg}");
        let mut members = ids[..3].to_vec();
        members.sort();
        assert_eq!(members, ["a", "b", "c"], "the cycle is named: {msg}");
        // The location is one of the cycle's `depends` lines (8, 12 or 16), column of the id.
        assert!(
            ["--> plan.md:8:12", "--> plan.md:12:12", "--> plan.md:16:12"]
                .iter()
                .any(|l| out.stderr.contains(l)),
            "{}",
            out.dump()
        );
        assert!(!out.stderr.contains("plan.md:20:"), "d is not part of the cycle\n{}", out.dump());
    }
    assert!(!p.has_runs());
}

#[test]
fn self_dependency_is_a_cycle() {
    assert_plan_error(
        "## a: A
- agent: exec
- command: true
- depends: a
",
        "plan.md:4:12",
        "cycle",
    );
}

#[test]
fn bad_duration() {
    assert_plan_error(
        "## a: A
- agent: exec
- command: true
- timeout: 5x
",
        "plan.md:4:12",
        "invalid duration `5x`",
    );
}

#[test]
fn bad_id() {
    assert_plan_error(
        "## Bad_ID: Upper case is not allowed
- agent: exec
- command: true
",
        "plan.md:1:4",
        "bad task id `Bad_ID`",
    );
}

#[test]
fn non_utf8_plan_points_at_the_first_invalid_byte() {
    let mut plan = b"## a: A\n- agent: exec\n- command: echo caf\xc3\xa9\n\nPrompt in Latin-1: caf".to_vec();
    plan.extend_from_slice(b"\xe9 and \xe8\n");
    let err =
        assert_plan_file_error("plan.md", &plan, "plan.md:5:23", "the plan is not valid UTF-8 (byte 0xe9");
    assert!(err.contains("^ not UTF-8"), "{err}");
    assert!(err.contains("save the plan as UTF-8"), "{err}");
    let json = b"{\"tasks\": [{\"id\": \"a\", \"command\": \"echo \xff\"}]}";
    assert_plan_file_error("plan.json", json, "plan.json:1:41", "not valid UTF-8 (byte 0xff at offset 40)");
}

#[test]
fn nul_bytes_are_rejected_before_anything_starts() {
    // A NUL in a command would only fail when the attempt is spawned.
    let err = assert_plan_file_error(
        "plan.md",
        b"## a: A\n- agent: exec\n- command: touch ran\0.txt\n",
        "plan.md:3:21",
        "NUL byte in the plan",
    );
    assert!(err.contains("cannot hold NUL bytes"), "{err}");
    // The prompt and the brief reach every process too; a YAML escape is as bad as the byte.
    assert_plan_file_error(
        "plan.md",
        b"---\ndefaults:\n  agent: exec\n  command: \"touch ran\\0.txt\"\n---\n## a: A\n",
        "plan.md:4:12",
        "NUL byte in the plan",
    );
    assert_plan_file_error(
        "plan.md",
        b"Brief.\n\n## a: A\n- command: touch ran.txt\n\nPrompt \0\n",
        "plan.md:6:8",
        "NUL byte in the plan",
    );
    assert_plan_file_error(
        "plan.json",
        br#"{"brief": "", "tasks": [{"id": "a", "command": "touch ran.txt", "prompt": "p \u0000"}]}"#,
        "plan.json:1:78",
        "NUL byte in the plan",
    );
}

#[test]
fn bad_yaml_front_matter() {
    assert_plan_error(
        "---
name: x
defaults:
  agent: exec
 timeout: 3s
---

## a: A
- command: true
",
        "plan.md:5:",
        "invalid YAML",
    );
}

#[test]
fn all_errors_are_reported_at_once() {
    let err = assert_plan_error(
        "## a: A
- agent: exec
- colour: red
- timeout: forever
- command: true

## b: B
- agent: exec
- depends: nope
- command: true
",
        "plan.md:3:3",
        "unknown key `colour`",
    );
    assert!(err.contains("--> plan.md:4:12") && err.contains("invalid duration `forever`"), "{err}");
    assert!(err.contains("--> plan.md:9:12") && err.contains("unknown dependency `nope`"), "{err}");
    assert_eq!(
        err.lines().filter(|l| l.starts_with("error: ") && !l.contains("could not load")).count(),
        3,
        "{err}"
    );
    assert!(err.contains("3 errors"), "{err}");
}

#[test]
fn plan_check_json_lists_the_errors() {
    let p = Project::new();
    p.plan("## a: A\n- agent: exec\n- colour: red\n- timeout: 5x\n- command: true\n");
    let out = p.swarm(&["plan", "check", "plan.md", "--json"]);
    out.expect_code(2);
    let v = out.json();
    assert_eq!(v["ok"], false);
    let errors = v["errors"].as_array().expect("errors");
    let at: Vec<(u64, u64)> =
        errors.iter().map(|e| (e["line"].as_u64().unwrap(), e["column"].as_u64().unwrap())).collect();
    assert_eq!(at, [(3, 3), (4, 12)], "{v:#}");

    p.plan("## a: A\n- agent: exec\n- command: true\n");
    let ok = p.swarm(&["plan", "check", "plan.md", "--json"]);
    let v = ok.expect_code(0).json();
    assert_eq!((v["ok"].as_bool(), v["tasks"].as_u64()), (Some(true), Some(1)));
    let human = p.swarm(&["plan", "check", "plan.md"]);
    assert!(human.expect_code(0).stdout.contains("ok"), "{}", human.dump());
}

#[test]
fn plan_show_json_round_trips_through_swarm_run() {
    let p = Project::new();
    p.plan(
        "---
name: roundtrip
defaults:
  agent: exec
  retries: 1
---

# Brief

Shared text.

## first: First
- command: echo one > first.txt
- timeout: 30s

Prompt one.

## second: Second
- depends: first
- command: cat first.txt > second.txt
- check: test -s second.txt
- stall: 10s
",
    );
    let show = p.swarm(&["plan", "show", "plan.md", "--json"]);
    let json = show.expect_code(0).json();
    assert_eq!(json["name"], "roundtrip");
    assert_eq!(json["tasks"].as_array().map(Vec::len), Some(2));
    p.write("plan.json", &show.stdout);
    // Idempotent: the JSON form parses back to the same plan.
    let again = p.swarm(&["plan", "show", "plan.json", "--json"]);
    assert_eq!(again.expect_code(0).json(), json);
    let human = p.swarm(&["plan", "show", "plan.md"]);
    assert!(human.expect_code(0).stdout.contains("second: Second"), "{}", human.dump());

    let out = p.swarm(&["run", "plan.json"]);
    out.expect_code(0);
    let st = p.status(&out.run_id());
    assert_eq!(st["plan"], "roundtrip");
    assert_task(&st, "first", "succeeded", None);
    assert_task(&st, "second", "succeeded", None);
    assert_eq!(p.read("second.txt"), "one\n");
}

#[test]
fn invalid_json_plans_are_rejected_with_a_location() {
    let p = Project::new();
    p.write(
        "plan.json",
        "{\"name\": \"x\",\n \"tasks\": [ {\"id\": \"Bad\", \"agent\": \"exec\", \"command\": \"true\"} ]}\n",
    );
    let out = p.swarm(&["run", "plan.json"]);
    out.expect_code(2);
    assert!(out.stderr.contains("--> plan.json:2:"), "{}", out.dump());
    assert!(out.stderr.contains("bad task id `Bad`"), "{}", out.dump());
    p.write("plan.json", "{\"name\": \n");
    let out = p.swarm(&["run", "plan.json"]);
    out.expect_code(2);
    assert!(out.stderr.contains("plan.json:"), "{}", out.dump());
    assert!(!p.has_runs());
}

#[test]
fn invalid_input_and_configuration_exit_2() {
    let p = Project::new();
    p.plan("## a: A\n- agent: exec\n- command: true\n");
    let missing = p.swarm(&["run", "missing.md"]);
    missing.expect_code(2);
    assert!(missing.stderr.contains("missing.md"), "{}", missing.dump());

    p.swarm(&["run", "plan.md", "--concurrency", "0"]).expect_code(2);

    p.write("swarm.toml", "[run]\nconcurency = 3\n");
    let cfg = p.swarm(&["run", "plan.md"]);
    cfg.expect_code(2);
    assert!(cfg.stderr.contains("concurency"), "names the bad config key\n{}", cfg.dump());
    p.write("swarm.toml", FAST_CONFIG);

    let unknown_agent = {
        p.plan("## a: A\n- agent: nosuchagent\n");
        p.swarm(&["run", "plan.md"])
    };
    unknown_agent.expect_code(2);
    assert!(unknown_agent.stderr.contains("nosuchagent"), "{}", unknown_agent.dump());
    assert!(!p.has_runs(), "nothing stored so far");

    p.plan("## a: A\n- agent: exec\n- command: true\n");
    p.swarm(&["run", "plan.md"]).expect_code(0);
    let status = p.swarm(&["status", "no-such-run"]);
    status.expect_code(2);
    p.swarm(&["logs", "no-such-run", "a"]).expect_code(2);
    p.swarm(&["cancel", "no-such-run"]).expect_code(2);
    p.swarm(&["resume", "no-such-run"]).expect_code(2);
}

#[test]
fn status_and_runs_without_any_run() {
    let p = Project::new();
    if on_redis() {
        assert_eq!(p.runs(), Vec::<Value>::new());
        let runs = p.swarm(&["runs"]);
        assert!(runs.expect_code(0).stdout.contains("no runs"), "{}", runs.dump());
    } else {
        // No store yet, and reading does not create one (see store_faults.rs).
        let runs = p.swarm(&["runs"]);
        assert!(runs.expect_code(2).stderr.contains("no swarm state here"), "{}", runs.dump());
        p.swarm(&["state", "set", "k", "1"]).expect_code(0);
        assert_eq!(p.runs(), Vec::<Value>::new(), "a store without runs lists none");
        let runs = p.swarm(&["runs"]);
        assert!(runs.expect_code(0).stdout.contains("no runs"), "{}", runs.dump());
    }
    let status = p.swarm(&["status"]);
    assert_eq!(status.code(), Some(2), "no run to show is invalid input\n{}", status.dump());
}

#[test]
fn agent_names_come_from_the_one_table_and_the_config() {
    let p = Project::new();
    p.write("swarm.toml", "[agents.mine]\ncommand = \"my-cli {prompt}\"\n[agents.claude]\nconcurrency = 1\n");
    p.plan("## a: A\n- agent: mien\n");
    let out = p.swarm(&["plan", "check", "plan.md"]);
    out.expect_code(2);
    assert!(
        out.stderr
            .contains("expected one of: opencode, kilo, cline, claude, codex, gemini, aider, exec, mine"),
        "{}",
        out.dump()
    );
    p.plan("## a: A\n- agent: mine\n");
    p.swarm(&["plan", "check", "plan.md"]).expect_code(0);

    for (config, message) in [
        (
            "[agents.claude]\ncommand = \"x {prompt}\"\n",
            "agents.claude: `command` cannot override the built-in agent `claude`",
        ),
        ("[agents.mine]\nconcurrency = 2\n", "agents.mine: a custom agent needs `command`"),
    ] {
        p.write("swarm.toml", config);
        let out = p.swarm(&["plan", "check", "plan.md"]);
        out.expect_code(2);
        assert!(out.stderr.contains("invalid config") && out.stderr.contains(message), "{}", out.dump());
    }
}

/// A plan is untrusted input (issue 15): a FIFO nobody writes, a device, a link or a huge file is
/// refused at once, never read forever or waited on.
#[test]
fn a_plan_that_is_not_a_regular_file_is_refused_at_once() {
    let p = Project::new();
    let fifo = p.file("fifo.md");
    assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    std::os::unix::fs::symlink("/dev/zero", p.file("zero.md")).unwrap();
    std::fs::write(p.file("huge.md"), vec![b'#'; 5 * 1024 * 1024]).unwrap();
    for (file, why) in [
        ("fifo.md", "not a regular file but a FIFO"),
        ("/dev/zero", "not a regular file but a device"),
        ("zero.md", "symbolic link"),
        ("huge.md", "over the 4194304-byte limit"),
    ] {
        let out = p.spawn_cmd(p.command(&["plan", "check", file])).wait(std::time::Duration::from_secs(20));
        out.expect_code(2);
        assert!(out.stderr.contains(&format!("cannot read plan `{file}`: it is")), "{}", out.dump());
        assert!(out.stderr.contains(why), "{why}\n{}", out.dump());
    }
}

/// A plan error quotes the offending line at most, masks what looks like a key in it, and quotes
/// nothing of a file that is not a plan (an environment dump, binary data).
#[test]
fn a_plan_error_never_echoes_a_secret_or_a_file_that_is_not_a_plan() {
    let key = "sk-proj-Zx81bQ92mmPq0017aaaa";
    let stderr = assert_plan_error(
        &format!("## a: A\n- agent: exec\n- colour: {key}\n- command: true\n# OPENAI_API_KEY={key}\n"),
        "plan.md:3:3",
        "unknown key `colour`",
    );
    assert!(!stderr.contains("Zx81bQ92mmPq0017"), "{stderr}");
    assert!(stderr.contains("colour: sk-p"), "the line is still quoted, masked\n{stderr}");
    let p = Project::new();
    std::fs::write(p.file("env.md"), format!("HOME=/root\0OPENAI_API_KEY={key}\0## x: y\0")).unwrap();
    for args in [&["plan", "check", "env.md"][..], &["plan", "check", "env.md", "--json"]] {
        let out = p.swarm(args);
        out.expect_code(2);
        let all = format!("{}{}", out.stdout, out.stderr);
        assert!(
            all.contains("NUL bytes") && !all.contains("Zx81bQ92") && !all.contains("HOME"),
            "{}",
            out.dump()
        );
    }
}

/// Issue 15 item 12: a model naming a provider swarm.toml does not declare (a typo) is a plan
/// error at `plan check` and `swarm run`, not three different agent errors minutes later; a
/// provider agents know by themselves (`anthropic/…`) needs no declaration.
#[test]
fn a_model_of_an_undeclared_provider_is_a_plan_error() {
    let p = Project::new();
    p.write(
        "swarm.toml",
        "[providers.local]\nkind = \"openai-compatible\"\nbase_url = \"http://127.0.0.1:9/v1\"\n",
    );
    p.write(
        "plan.md",
        "## typo: A typo in the provider\n- agent: opencode\n- model: locl/qwen3-coder\n\nDo it.\n\n\
         ## theirs: A provider the agent knows\n- agent: opencode\n- model: anthropic/claude-sonnet-4-5\n\nDo it.\n",
    );
    for args in [&["plan", "check", "plan.md"][..], &["run", "plan.md"]] {
        let out = p.swarm(args);
        out.expect_code(2);
        assert!(
            out.stderr.contains("task `typo`: model `locl/qwen3-coder` names no provider `locl`"),
            "{}",
            out.dump()
        );
        assert!(out.stderr.contains("did you mean `local/…`?"), "{}", out.dump());
        assert!(!out.stderr.contains("`theirs`"), "a provider agents know is fine\n{}", out.dump());
    }
    assert!(!p.has_runs(), "nothing was started");
}
