//! `swarm … | head -1`: a reader that goes away. Commands that only print end quietly (killed by
//! SIGPIPE, like `git log | head -1`: no panic, nothing on stderr); `swarm run` goes on to the end
//! of its plan and records it.

mod support;

use std::io::{BufRead, BufReader};
use std::os::unix::process::ExitStatusExt;
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};
use support::*;

/// A pipe whose reading end is already closed: every write to it fails with EPIPE, however
/// little is written (a pipe read too late would only fail once its 64 KiB buffer is full).
fn closed_pipe() -> Stdio {
    let (read, write) = nix::unistd::pipe().expect("pipe");
    drop(read);
    Stdio::from(write)
}

fn wait(child: &mut std::process::Child) -> ExitStatus {
    let deadline = Instant::now() + CMD_TIMEOUT;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        assert!(Instant::now() < deadline, "swarm did not exit");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Exit 0, or death by SIGPIPE (what a shell shows as 141): both are a quiet end.
fn assert_quiet_end(what: &str, status: ExitStatus, stderr: &str) {
    let sigpipe = status.signal() == Some(nix::sys::signal::Signal::SIGPIPE as i32);
    assert!(status.code() == Some(0) || sigpipe, "`{what}` ended with {status:?}\nstderr:\n{stderr}");
    assert!(stderr.is_empty(), "`{what}` wrote to stderr:\n{stderr}");
}

/// `swarm ARGS` with its stdout on a pipe nobody reads.
fn into_closed_pipe(p: &Project, args: &[&str]) {
    let mut cmd = p.command(args);
    let mut child = cmd.stdout(closed_pipe()).stderr(Stdio::piped()).spawn().expect("spawn swarm");
    let mut stderr = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).expect("read stderr");
    let status = wait(&mut child);
    assert_quiet_end(&args.join(" "), status, &stderr);
}

/// A valid plan whose printed forms are far larger than a pipe's buffer.
fn big_plan(tasks: usize) -> String {
    let mut plan = String::from("---\nname: big\ndefaults:\n  agent: exec\n---\n\nA brief.\n\n");
    for i in 0..tasks {
        plan.push_str(&format!(
            "## t{i}: Task number {i}\n- command: echo {i}\n- timeout: 1m\n\nThe prompt of task {i}, long enough to matter.\n\n"
        ));
    }
    plan
}

#[test]
fn plan_show_piped_into_head_ends_quietly() {
    let p = Project::new();
    p.write("big.md", &big_plan(2000));
    for args in [&["plan", "show", "big.md"][..], &["plan", "show", "big.md", "--json"]] {
        // The real thing: read one line, then go away while swarm is still writing.
        let mut child = p.command(args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn");
        let mut first = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut first).expect("first line");
        assert!(!first.is_empty(), "no first line");
        let mut stderr = String::new();
        std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).expect("read stderr");
        let status = wait(&mut child);
        assert_quiet_end(&args.join(" "), status, &stderr);
    }
}

#[test]
fn read_only_commands_end_quietly_when_stdout_is_closed() {
    let p = Project::new();
    p.plan("## a: A\n- command: echo hello\n");
    let run_id = p.swarm(&["run", "plan.md"]).expect_code(0).run_id();
    p.write("big.md", &big_plan(50));
    for args in [
        &["plan", "show", "big.md"][..],
        &["plan", "show", "big.md", "--json"],
        &["plan", "check", "big.md"],
        &["runs"],
        &["runs", "--json"],
        &["status", "--json"],
        &["status"],
        &["events"],
        &["events", "--json"],
        &["logs", &run_id, "a"],
        &["schema"],
        &["schema", "--list"],
        &["state", "list"],
        &["agents"],
    ] {
        into_closed_pipe(&p, args);
    }
}

#[test]
fn a_closed_stdout_does_not_stop_a_run() {
    let p = Project::new();
    p.plan("## first: First\n- command: echo one > one.txt\n\n## second: Second\n- depends: first\n- command: echo two > two.txt\n");
    for json in [false, true] {
        let args: &[&str] = if json { &["run", "plan.md", "--json"] } else { &["run", "plan.md"] };
        let mut cmd = p.command(args);
        let mut child = cmd.stdout(closed_pipe()).stderr(Stdio::piped()).spawn().expect("spawn swarm");
        let mut stderr = String::new();
        std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).expect("read stderr");
        let status = wait(&mut child);
        // Not killed, not panicked: the run's own exit code.
        assert_eq!(status.code(), Some(0), "--json {json}: {status:?}\n{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert_eq!(p.read("two.txt"), "two\n");
        std::fs::remove_file(p.file("two.txt")).unwrap();
    }
    let runs = p.runs();
    assert_eq!(runs.len(), 2);
    for r in &runs {
        assert_eq!(r["state"], "succeeded", "{r}");
    }
}
