//! Where a run's files live: `.swarm/runs/<RUN_ID>/` (logs, report.json, report.md).

use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct RunDir {
    pub root: PathBuf,
}

impl RunDir {
    /// `state_dir` is the project's `.swarm` directory.
    pub fn new(state_dir: &Path, run_id: &str) -> RunDir {
        RunDir { root: state_dir.join("runs").join(run_id) }
    }

    /// `.swarm/worktrees/<RUN_ID>`: the run's worktrees (one per worktree task, and the
    /// integration branch's own).
    pub fn worktrees(&self) -> PathBuf {
        let run = self.root.file_name().map(PathBuf::from).unwrap_or_default();
        let state_dir = self.root.parent().and_then(Path::parent).unwrap_or(Path::new("."));
        state_dir.join("worktrees").join(run)
    }

    /// The worktree where the run's integration branch is checked out and merges happen.
    pub fn integration_worktree(&self) -> PathBuf {
        self.worktrees().join("_integration")
    }

    pub fn logs(&self) -> PathBuf {
        self.root.join("logs")
    }

    pub fn log(&self, task: &str, attempt: u32) -> PathBuf {
        self.logs().join(format!("{task}.{attempt}.log"))
    }

    /// Where the attempt's agent writes completion.json (`SWARM_COMPLETION_FILE`). One directory
    /// per run, made at its start, so an attempt costs no directory of its own.
    pub fn completions(&self) -> PathBuf {
        self.root.join("completions")
    }

    pub fn completion(&self, task: &str, attempt: u32) -> PathBuf {
        self.completions().join(format!("{task}.{attempt}.json"))
    }

    pub fn attempt_dir(&self, task: &str, attempt: u32) -> PathBuf {
        self.root.join("tasks").join(task).join(attempt.to_string())
    }

    /// The gateway's request log: one JSON line per request a model answered.
    pub fn requests_log(&self) -> PathBuf {
        self.root.join("requests.jsonl")
    }

    pub fn report_json(&self) -> PathBuf {
        self.root.join("report.json")
    }

    pub fn report_md(&self) -> PathBuf {
        self.root.join("report.md")
    }
}
