//! After a run, on the user's word: what a task changed (`swarm diff`), the run's integration
//! branch brought into a branch of theirs (`swarm merge`), and the run's worktrees and branches
//! removed (`swarm clean`). Nothing here runs by itself: a run never touches the user's branches.

use crate::engine::{Engine, EngineError};
use crate::os::{git, git_remote};
use serde::Serialize;
use std::path::{Path, PathBuf};
use swarm_core::report::{RunGit, RunRecord, TaskReport};
use swarm_core::state::RunState;
use swarm_store::StoreError;

/// What a task changed: `start..commit` on its branch, or, while it works, its worktree
/// against where it started.
#[derive(Debug, Clone, Serialize)]
pub struct TaskDiff {
    pub run_id: String,
    pub task: String,
    pub branch: Option<String>,
    pub start_commit: Option<String>,
    pub commit: Option<String>,
    pub files_changed: Vec<String>,
    /// `git diff` output (a stat with `stat`).
    pub diff: String,
    /// Files the agent created and git does not track yet (a task still working).
    pub untracked: Vec<String>,
}

/// What `swarm merge` did.
#[derive(Debug, Clone, Serialize)]
pub struct MergeResult {
    pub run_id: String,
    pub integration_branch: String,
    pub into: String,
    /// `merged`, `up_to_date` (nothing to bring), or `conflict`.
    pub outcome: &'static str,
    /// The target's head afterwards.
    pub commit: String,
    pub files_changed: Vec<String>,
    pub conflict_paths: Vec<String>,
    /// Where the merge happened: the worktree the branch is checked out in, or none.
    pub worktree: Option<PathBuf>,
}

/// What `swarm clean` removed.
#[derive(Debug, Clone, Serialize)]
pub struct CleanResult {
    pub run_id: String,
    pub worktrees_removed: Vec<PathBuf>,
    pub branches_deleted: Vec<String>,
    /// With `--branches`, on the run's repository (`--repo`): its integration branch and any
    /// ref a worker pushed there.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub remote_refs_deleted: Vec<String>,
}

impl Engine {
    fn git_run(&self, run: &str, what: &str) -> Result<(RunRecord, RunGit), EngineError> {
        let run_id = self.store.resolve(Some(run))?;
        let record = self.store.run(&run_id)?.ok_or_else(|| StoreError::NoSuchRun(run_id.clone()))?;
        let Some(g) = record.git.clone() else {
            return Err(EngineError::Invalid(format!(
                "run {run_id} used no worktrees (its plan is not in a git repository, or no task works in one): nothing to {what}"
            )));
        };
        Ok((record, g))
    }

    /// What `task` of `run` changed (`stat`: a diffstat instead of the patch).
    pub fn diff(&self, run: &str, task: &str, stat: bool) -> Result<TaskDiff, EngineError> {
        let (record, g) = self.git_run(run, "diff")?;
        let run_id = record.run_id.clone();
        let tasks = self.store.tasks(&run_id)?;
        let doc: &TaskReport = tasks.iter().find(|t| t.id == task).ok_or_else(|| {
            let ids: Vec<&str> = tasks.iter().map(|t| t.id.as_str()).collect();
            EngineError::Invalid(format!("run {run_id} has no task `{task}` (tasks: {})", ids.join(", ")))
        })?;
        let repo = Path::new(&g.repo);
        let fmt = if stat { "--stat" } else { "--patch" };
        let invalid = |e: String| EngineError::Invalid(e);
        let git_failed = |source| EngineError::Git { what: format!("run {run_id}, task {task}"), source };
        let mut out = TaskDiff {
            run_id: run_id.clone(),
            task: task.to_string(),
            branch: doc.branch.clone(),
            start_commit: doc.start_commit.clone(),
            commit: doc.commit.clone(),
            files_changed: doc.files_changed.clone(),
            diff: String::new(),
            untracked: vec![],
        };
        if let (Some(start), Some(commit)) = (&doc.start_commit, &doc.commit) {
            out.diff = git::git_ok_raw(repo, &["diff", fmt, start, commit]).map_err(git_failed)?;
            return Ok(out);
        }
        // Not brought back (yet): its worktree, as it stands, against where it started.
        let tree = self.run_dir(&run_id).worktrees().join(task);
        if !tree.is_dir() {
            let why =
                if doc.attempts.is_empty() { "has not started" } else { "left no worktree and no commit" };
            return Err(invalid(format!("task `{task}` of run {run_id} {why}: there is nothing to diff")));
        }
        let start = git::git_ok(&tree, &["merge-base", "HEAD", &g.integration_branch], git::DEFAULT_AUTHOR)
            .unwrap_or_else(|_| g.base_commit.clone());
        out.start_commit = Some(start.clone());
        out.branch = Some(git::task_branch(&g.integration_branch, task));
        out.diff = git::git_ok_raw(&tree, &["diff", fmt, &start]).map_err(git_failed)?;
        out.files_changed = git::git_ok(&tree, &["diff", "--name-only", &start], git::DEFAULT_AUTHOR)
            .map(|s| s.lines().map(String::from).collect())
            .unwrap_or_default();
        out.untracked =
            git::git_ok(&tree, &["ls-files", "--others", "--exclude-standard"], git::DEFAULT_AUTHOR)
                .map(|s| s.lines().map(String::from).collect())
                .unwrap_or_default();
        Ok(out)
    }

    /// Brings `run`'s integration branch into `into` (default: the branch checked out in the
    /// repository's main worktree). Where `into` is checked out, the merge happens there and
    /// is refused while that checkout has uncommitted changes; elsewhere it happens in a
    /// worktree of swarm's own. A conflict leaves `into` as it was.
    pub fn merge(&self, run: &str, into: Option<&str>, squash: bool) -> Result<MergeResult, EngineError> {
        let (record, g) = self.git_run(run, "merge")?;
        if record.state == RunState::Running {
            return Err(EngineError::Invalid(format!(
                "run {} is still running: merge it when it has ended (or cancel it first)",
                record.run_id
            )));
        }
        let repo = PathBuf::from(&g.repo);
        let invalid = |e: String| EngineError::Invalid(e);
        git::commit_of(&repo, &g.integration_branch).map_err(|_| {
            invalid(format!(
                "the integration branch {} is gone (was the run cleaned with --branches?)",
                g.integration_branch
            ))
        })?;
        let into = match into {
            Some(b) => b.to_string(),
            None => git::git_ok(&repo, &["symbolic-ref", "--quiet", "--short", "HEAD"], git::DEFAULT_AUTHOR)
                .map_err(|_| {
                    invalid(format!("{} has no branch checked out: name one with --into", repo.display()))
                })?,
        };
        git::commit_of(&repo, &format!("refs/heads/{into}"))
            .map_err(|_| invalid(format!("--into: there is no branch `{into}` in {}", repo.display())))?;
        let checked_out = git::worktree_of_branch(&repo, &into);
        if let Some(tree) = &checked_out {
            if git::has_uncommitted(tree) {
                return Err(invalid(format!(
                    "`{into}` is checked out in {} with uncommitted changes: commit or stash them, then merge again",
                    tree.display()
                )));
            }
        }
        let (tree, temporary) = match &checked_out {
            Some(t) => (t.clone(), false),
            None => {
                let t = self.run_dir(&record.run_id).worktrees().join("_merge");
                git::fresh_worktree(&repo, &t, &into, None)
                    .map_err(|source| EngineError::Git { what: format!("a worktree for {into}"), source })?;
                (t, true)
            }
        };
        let message = format!("swarm: merge run {} ({}) into {into}", record.run_id, record.plan);
        let result = git::merge_branch(&tree, &g.integration_branch, &message, squash);
        if temporary {
            git::remove_worktree(&repo, &tree);
        }
        let m = result.map_err(|source| EngineError::Git { what: format!("merging into {into}"), source })?;
        Ok(MergeResult {
            run_id: record.run_id,
            integration_branch: g.integration_branch,
            into,
            outcome: m.outcome,
            commit: m.head,
            files_changed: m.files_changed,
            conflict_paths: m.conflict_paths,
            worktree: checked_out,
        })
    }

    /// Removes `run`'s worktrees (and, with `branches`, its integration and task branches).
    pub fn clean(&self, run: &str, branches: bool) -> Result<CleanResult, EngineError> {
        let run_id = self.store.resolve(Some(run))?;
        let record = self.store.run(&run_id)?.ok_or_else(|| StoreError::NoSuchRun(run_id.clone()))?;
        if record.state == RunState::Running {
            return Err(EngineError::Invalid(format!(
                "run {run_id} is still running: its agents work in those worktrees (cancel it first)"
            )));
        }
        let dir = self.run_dir(&run_id).worktrees();
        let mut out = CleanResult {
            run_id: run_id.clone(),
            worktrees_removed: vec![],
            branches_deleted: vec![],
            remote_refs_deleted: vec![],
        };
        let Some(g) = record.git else {
            if dir.is_dir() {
                std::fs::remove_dir_all(&dir)
                    .map_err(|e| EngineError::Invalid(format!("cannot remove {}: {e}", dir.display())))?;
                out.worktrees_removed.push(dir);
            }
            return Ok(out);
        };
        let repo = PathBuf::from(&g.repo);
        for tree in git::worktrees(&repo).into_iter().filter(|t| t.starts_with(&dir)) {
            git::remove_worktree(&repo, &tree);
            out.worktrees_removed.push(tree);
        }
        if dir.exists() {
            std::fs::remove_dir_all(&dir)
                .map_err(|e| EngineError::Invalid(format!("cannot remove {}: {e}", dir.display())))?;
        }
        let _ = git::git(&repo, &["worktree", "prune"], git::DEFAULT_AUTHOR);
        if branches {
            let prefix = format!("{}--", g.integration_branch);
            let list = git::git_ok(
                &repo,
                &["for-each-ref", "--format=%(refname:short)", "refs/heads/swarm/"],
                git::DEFAULT_AUTHOR,
            )
            .unwrap_or_default();
            for b in list.lines().filter(|b| *b == g.integration_branch || b.starts_with(&prefix)) {
                git::git_ok(&repo, &["branch", "-D", "--quiet", b], git::DEFAULT_AUTHOR)
                    .map_err(|e| EngineError::Invalid(format!("cannot delete branch {b}: {e}")))?;
                out.branches_deleted.push(b.to_string());
            }
            if let Some(url) = &g.remote {
                out.remote_refs_deleted =
                    git_remote::delete_run_refs(&repo, url, &run_id, Some(&g.integration_branch)).map_err(
                        |e| {
                            EngineError::Invalid(format!(
                                "cannot delete the run's branch and refs on {url}: {e}"
                            ))
                        },
                    )?;
            }
        }
        Ok(out)
    }
}
