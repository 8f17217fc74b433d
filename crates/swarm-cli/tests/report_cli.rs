//! `swarm report` through the real binary: refused outside a task, writes a schema-valid
//! completion.json inside one (environment as swarm sets it for an attempt), and `--check` lists
//! every schema error of a broken file.

mod support;

use serde_json::{json, Value};
use support::*;

/// `swarm report ARGS` as an attempt of task `build` in run `r-123` would run it.
fn in_task(p: &Project, completion_file: &str, args: &[&str]) -> Out {
    let mut cmd = p.command(&[&["report"], args].concat());
    cmd.env("SWARM_RUN_ID", "r-123")
        .env("SWARM_TASK_ID", "build")
        .env("SWARM_ATTEMPT", "1")
        .env("SWARM_COMPLETION_FILE", p.file(completion_file));
    p.spawn_cmd(cmd).wait(CMD_TIMEOUT)
}

#[test]
fn outside_a_task_it_exits_2_naming_what_is_missing() {
    let p = Project::new();
    let out = p.swarm(&["report", "--status", "done", "--summary", "did it"]);
    out.expect_code(2);
    assert!(
        out.stderr.contains("swarm report must run inside a swarm task (SWARM_COMPLETION_FILE is not set)"),
        "{}",
        out.dump()
    );
    let mut cmd = p.command(&["report", "--status", "done", "--summary", "did it"]);
    cmd.env("SWARM_COMPLETION_FILE", p.file("c.json")).env("SWARM_TASK_ID", "build");
    let out = p.spawn_cmd(cmd).wait(CMD_TIMEOUT);
    out.expect_code(2);
    assert!(out.stderr.contains("(SWARM_RUN_ID is not set)"), "{}", out.dump());
    assert!(!p.exists("c.json"));
}

#[test]
fn inside_a_task_it_writes_a_schema_valid_report_atomically() {
    let p = Project::new();
    let rel = "attempt/dir/not/yet/there/completion.json";
    let out = in_task(
        &p,
        rel,
        &[
            "--status",
            "partial",
            "--summary",
            "Wrote the parser; the CLI is next.",
            "--file",
            "src/parse.rs",
            "--file",
            "docs/format.md",
            "--test",
            "cargo test -p parse=pass",
            "--test",
            "RUST_LOG=debug cargo test=fail",
            "--follow-up",
            "wire the CLI",
            "--blocker",
            "needs the schema task",
        ],
    );
    out.expect_code(0);
    assert_eq!(out.stdout.trim(), p.file(rel).display().to_string(), "prints the path");
    let text = p.read(rel);
    let written: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        written,
        json!({
            "schema_version": 1, "run_id": "r-123", "task_id": "build", "status": "partial",
            "summary": "Wrote the parser; the CLI is next.",
            "files_changed": ["src/parse.rs", "docs/format.md"],
            "tests": [
                { "command": "cargo test -p parse", "passed": true },
                { "command": "RUST_LOG=debug cargo test", "passed": false }
            ],
            "follow_ups": ["wire the CLI"], "blockers": ["needs the schema task"]
        })
    );
    swarm_core::completion::parse(&text, Some("r-123"), Some("build")).expect("valid against the schema");
    let dir = p.file("attempt/dir/not/yet/there");
    let names: Vec<_> = std::fs::read_dir(dir).unwrap().flatten().map(|e| e.file_name()).collect();
    assert_eq!(names, ["completion.json"], "no temporary file left behind");

    // Again, replacing it; --json prints exactly what was written.
    let out = in_task(&p, rel, &["--status", "done", "--summary", "All done.", "--json"]);
    out.expect_code(0);
    assert_eq!(out.stdout, p.read(rel));
    assert_eq!(out.json()["status"], "done");
    assert_eq!(out.json()["files_changed"], json!([]));
    in_task(&p, "x.json", &["--check", &p.file(rel).display().to_string()]).expect_code(0);
}

#[test]
fn bad_arguments_exit_2_and_write_nothing() {
    let p = Project::new();
    for args in [
        &["--status", "finished", "--summary", "x"][..],
        &["--status", "done"],
        &["--status", "done", "--summary", "  "],
        &["--status", "done", "--summary", "x", "--test", "cargo test"],
        &["--status", "done", "--summary", "x", "--test", "cargo test=ok"],
    ] {
        let out = in_task(&p, "c.json", args);
        assert_eq!(out.code(), Some(2), "{args:?}\n{}", out.dump());
        assert!(!p.exists("c.json"), "{args:?}");
    }
}

#[test]
fn check_lists_every_schema_error_of_a_broken_file() {
    let p = Project::new();
    p.write(
        "broken.json",
        r#"{ "schema_version": 1, "run_id": "r-123", "task_id": "build",
             "status": "finished", "files_changed": "src/main.rs" }"#,
    );
    let out = p.swarm(&["report", "--check", "broken.json"]);
    out.expect_code(1);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines[0], "broken.json: 3 errors", "{}", out.dump());
    let mut errors = lines[1..].iter().map(|l| l.trim()).collect::<Vec<_>>();
    errors.sort();
    assert_eq!(
        errors,
        [
            r#"/files_changed: "src/main.rs" is not of type "array""#,
            r#"/status: "finished" is not one of ["done","partial","blocked","failed"]"#,
            r#": "summary" is a required property"#,
        ],
        "{}",
        out.dump()
    );

    let out = p.swarm(&["report", "--check", "broken.json", "--json"]);
    out.expect_code(1);
    let v = out.json();
    assert_eq!((v["file"].as_str(), v["valid"].as_bool()), (Some("broken.json"), Some(false)));
    assert_eq!(v["errors"].as_array().unwrap().len(), 3, "{v}");

    // Not JSON at all: where it breaks.
    p.write("syntax.json", "{\n  \"status\": \"done\",\n  oops\n}\n");
    let out = p.swarm(&["report", "--check", "syntax.json"]);
    out.expect_code(1);
    assert!(
        out.stdout.contains("not valid JSON") && out.stdout.contains("line 3 column 3"),
        "{}",
        out.dump()
    );

    // Inside a task, the report must be this task's.
    p.write(
        "other.json",
        r#"{"schema_version":1,"run_id":"r-999","task_id":"build","status":"done","summary":"s"}"#,
    );
    p.swarm(&["report", "--check", "other.json"]).expect_code(0);
    let out = in_task(&p, "unused.json", &["--check", &p.file("other.json").display().to_string()]);
    out.expect_code(1);
    assert!(out.stdout.contains(r#"/run_id: expected "r-123", found "r-999""#), "{}", out.dump());

    p.swarm(&["report", "--check", "missing.json"]).expect_code(2);
}

#[test]
fn check_rejects_invalid_utf8_and_duplicate_keys() {
    let p = Project::new();
    // Latin-1 `é` in the summary: once silently turned into U+FFFD, now an error at its offset.
    let mut bytes =
        br#"{"schema_version":1,"run_id":"r-1","task_id":"build","status":"done","summary":"caf"#.to_vec();
    let at = bytes.len();
    bytes.extend_from_slice(b"\xe9\"}\n");
    std::fs::write(p.file("latin1.json"), &bytes).unwrap();
    let out = p.swarm(&["report", "--check", "latin1.json"]);
    out.expect_code(1);
    assert!(
        out.stdout
            .contains(&format!("not valid UTF-8: byte 0xe9 at offset {at} (line 1, column {})", at + 1)),
        "{}",
        out.dump()
    );

    // Which `status` wins depends on the JSON parser: neither does.
    p.write(
        "dups.json",
        "{\"schema_version\":1,\"run_id\":\"r-1\",\"task_id\":\"build\",\"status\":\"failed\",\n\
         \"summary\":\"s\",\"tests\":[{\"command\":\"a\",\"passed\":false,\"passed\":true}],\"status\":\"done\"}\n",
    );
    let out = p.swarm(&["report", "--check", "dups.json"]);
    out.expect_code(1);
    let lines: Vec<&str> = out.stdout.lines().map(str::trim).collect();
    assert_eq!(
        lines,
        [
            "dups.json: 2 errors",
            r#"/tests/0/passed: duplicate key "passed" at line 2, column 54 (first at line 2, column 39)"#,
            r#"/status: duplicate key "status" at line 2, column 70 (first at line 1, column 54)"#,
        ],
        "{}",
        out.dump()
    );
}
