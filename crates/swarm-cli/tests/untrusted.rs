//! What agents write is untrusted input: a completion.json that is a link, a FIFO, a device,
//! too big, not UTF-8 or with duplicate keys fails the attempt with `invalid_report` and never
//! hangs, exhausts or leaks through the orchestrator; a valid but huge one is bounded before it
//! reaches the store; a flooding agent's log is capped.

mod support;

use support::*;

/// One exec task per case, each doing something to its own completion file.
const PLAN: &str = r#"---
concurrency: 8
defaults:
  agent: exec
  timeout: 30s
---

## zero: Its report is a link to /dev/zero
- command: ln -s /dev/zero "$SWARM_COMPLETION_FILE"

## fifo: Its report is a FIFO nobody writes
- command: mkfifo "$SWARM_COMPLETION_FILE"

## passwd: Its report is a link to /etc/passwd
- command: ln -s /etc/passwd "$SWARM_COMPLETION_FILE"

## big: Its report is over 1 MiB
- command: head -c 2000000 /dev/zero | tr '\0' ' ' > "$SWARM_COMPLETION_FILE"

## latin1: Its report is not UTF-8
- command: printf '{"schema_version": 1, "run_id": "%s", "task_id": "latin1", "status": "done", "summary": "caf\351"}' "$SWARM_RUN_ID" > "$SWARM_COMPLETION_FILE"

## twice: Its report says status twice
- command: printf '{"schema_version": 1, "run_id": "%s", "task_id": "twice", "status": "failed", "status": "done", "summary": "s"}' "$SWARM_RUN_ID" > "$SWARM_COMPLETION_FILE"

## huge: A valid report with a huge summary and many files
- command: sh ./huge.sh
"#;

const HUGE: &str = r#"summary=$(head -c 800000 /dev/zero | tr '\0' 'a')
files=$(seq 1 15000 | sed 's/.*/"f&"/' | paste -sd, -)
printf '{"schema_version": 1, "run_id": "%s", "task_id": "huge", "status": "done", "summary": "%s", "files_changed": [%s]}' \
  "$SWARM_RUN_ID" "$summary" "$files" > "$SWARM_COMPLETION_FILE"
"#;

#[test]
fn hostile_completion_files_fail_the_attempt_without_hurting_the_orchestrator() {
    let p = Project::new();
    p.plan(PLAN);
    p.write("huge.sh", HUGE);
    let out = p.swarm(&["run", "plan.md"]);
    out.expect_code(1);
    let run_id = out.run_id();
    let report = p.report(&run_id);
    for (id, says) in [
        ("zero", "is a symbolic link"),
        ("fifo", "not a regular file but a FIFO"),
        ("passwd", "is a symbolic link"),
        ("big", "over the 1048576-byte limit (2000000 bytes)"),
        ("latin1", "not valid UTF-8"),
        ("twice", "duplicate key"),
    ] {
        assert_task(&report, id, "failed", Some("invalid_report"));
        assert!(detail(&report, id).contains(says), "{id}: {}", detail(&report, id));
    }
    // Nothing of /etc/passwd was copied anywhere swarm writes.
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap();
    let first = passwd.lines().next().unwrap();
    for dir in [".swarm", "plans"] {
        let hit = walk(&p.file(dir)).into_iter().find(|f| {
            // (The test itself must not open the FIFO either.)
            std::fs::symlink_metadata(f).is_ok_and(|m| m.is_file())
                && std::fs::read(f).is_ok_and(|b| String::from_utf8_lossy(&b).contains(first))
        });
        assert!(hit.is_none(), "{} holds /etc/passwd", hit.unwrap().display());
    }
    assert!(!p.exists(&format!("plans/agent-shared/{run_id}/passwd/completion.json")));

    // The valid but huge report: the task succeeds, the store keeps a bounded copy and says so.
    assert_task(&report, "huge", "succeeded", None);
    let a = &attempts(&report, "huge")[0];
    let summary = a["completion"]["summary"].as_str().unwrap();
    assert!(summary.len() <= 4096, "summary of {} bytes in the report", summary.len());
    assert_eq!(a["completion"]["files_changed"].as_array().unwrap().len(), 500);
    assert!(a["warnings"].to_string().contains("completion report trimmed"), "{a:#}");
    let status = p.status(&run_id);
    assert!(status.to_string().len() < 200_000, "status stays small: {} bytes", status.to_string().len());
    let report_size = std::fs::metadata(p.file(&format!(".swarm/runs/{run_id}/report.json"))).unwrap().len();
    assert!(report_size < 200_000, "report.json is {report_size} bytes");
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let path = e.path();
            if path.is_dir() && !path.is_symlink() {
                out.extend(walk(&path));
            } else {
                out.push(path);
            }
        }
    }
    out
}

#[test]
fn a_flooding_agent_keeps_a_bounded_log_with_head_and_tail() {
    let p = Project::new();
    p.write("swarm.toml", &format!("{FAST_CONFIG}log_limit = \"64 KiB\"\n"));
    p.plan(
        "## flood: Prints as fast as it can for two seconds
- agent: exec
- command: echo FIRST-LINE; {fake} --spam 2s; echo LAST-LINE
",
    );
    let out = p.swarm(&["run", "plan.md"]);
    out.expect_code(0);
    let run_id = out.run_id();
    let log = p.file(&format!(".swarm/runs/{run_id}/logs/flood.1.log"));
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.len() <= 64 * 1024 + 512, "the log is {} bytes", text.len());
    assert!(text.starts_with("FIRST-LINE\n"), "the head is kept");
    assert!(text.trim_end().ends_with("LAST-LINE"), "the tail is kept");
    assert!(text.contains("of output left out here"), "the gap is marked");
    let logs: Vec<_> =
        std::fs::read_dir(log.parent().unwrap()).unwrap().flatten().map(|e| e.file_name()).collect();
    assert_eq!(logs.len(), 1, "no side files left: {logs:?}");
    let shown = p.swarm(&["logs", &run_id, "flood"]);
    assert!(shown.stdout.trim_end().ends_with("LAST-LINE"), "swarm logs shows the tail");
}
