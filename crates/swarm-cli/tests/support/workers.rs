//! `swarm worker` processes for the tests of workers on many hosts, and git in a project.

use super::*;

pub const LEASE: &str = "2s";

/// A worker of the project named `name`, running `-j N` attempts, saying what it does as JSON.
pub fn worker(p: &Project, name: &str, j: usize, extra: &[&str]) -> Bg {
    let j = j.to_string();
    let mut args = vec!["worker", "--name", name, "-j", &j, "--lease", LEASE, "--json"];
    args.extend_from_slice(extra);
    let mut w = p.spawn(&args);
    wait_until(Duration::from_secs(20), &format!("worker {name} started"), || {
        assert!(w.is_running(), "worker {name} exited:\n{}{}", w.stdout(), w.stderr());
        w.stdout().contains("worker_started")
    });
    w
}

/// What the worker said it did (`--json` lines), of `event`.
pub fn said(w: &Bg, event: &str) -> Vec<Value> {
    w.stdout()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["event"] == event)
        .collect()
}

/// `git -C project ARGS`, its trimmed stdout; panics when git fails.
pub fn git(p: &Project, args: &[&str]) -> String {
    let out =
        std::process::Command::new("git").arg("-C").arg(p.path()).args(args).output().expect("git runs");
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}
