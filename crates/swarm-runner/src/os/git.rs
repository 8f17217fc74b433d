//! Git for runs: the repository a plan lies in, the run's base commit and integration branch,
//! task worktrees, and bringing a task's work back (commit, then merge, squash or rebase) with a
//! conflict reported by its paths and the integration branch left as it was. Every command runs
//! with `-C` on a swarm-owned directory: the user's checkout, index and branch are never used.

pub use super::checkout::{Checkout, UserSide};
pub use super::git_error::GitError;
pub use super::repo_lock::RepoLock;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};

impl GitError {
    pub(crate) fn command(args: &[&str], out: &Output) -> GitError {
        GitError::Command {
            args: args.iter().map(|a| a.to_string()).collect(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        }
    }

    pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> GitError {
        let what = what.into();
        move |source| GitError::Io { what, source }
    }
}

/// How a task's work goes into the integration branch (`[worktree] merge`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    #[default]
    Merge,
    Squash,
    Rebase,
}

impl Strategy {
    pub fn parse(s: &str) -> Option<Strategy> {
        match s {
            "merge" => Some(Strategy::Merge),
            "squash" => Some(Strategy::Squash),
            "rebase" => Some(Strategy::Rebase),
            _ => None,
        }
    }
}

/// The run's integration side, as an executor needs it to bring a task's work back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Integration {
    /// `swarm/<RUN_ID>`.
    pub branch: String,
    /// The worktree where that branch is checked out and merges happen.
    pub worktree: PathBuf,
    pub strategy: Strategy,
    /// Commit author and committer, `Name <email>`.
    pub author: String,
    /// Largest file committed from a task's worktree (`[worktree] max_file_size`).
    #[serde(default = "default_max_file_size")]
    pub max_file_size: u64,
}

fn default_max_file_size() -> u64 {
    50 * 1024 * 1024
}

/// A task's branch: `swarm/<RUN_ID>--<TASK_ID>`. (Not `swarm/<RUN_ID>/<TASK_ID>`: git cannot
/// hold a branch `a/b` beside a branch `a/b/c`, and `swarm/<RUN_ID>` is the integration branch.)
pub fn task_branch(integration_branch: &str, task: &str) -> String {
    format!("{integration_branch}--{task}")
}

/// The author swarm's own commits carry unless `[worktree] author` says otherwise.
pub const DEFAULT_AUTHOR: &str = "swarm <swarm@localhost>";

fn identity(author: &str) -> (String, String) {
    match author.rsplit_once('<') {
        Some((name, email)) => (name.trim().to_string(), email.trim_end_matches('>').trim().to_string()),
        None => (author.trim().to_string(), "swarm@localhost".to_string()),
    }
}

/// `git` with swarm's identity for any commit it makes and its settings, not yet told where.
pub(crate) fn command(author: &str) -> std::process::Command {
    let (name, email) = identity(author);
    let mut cmd = std::process::Command::new("git");
    cmd.args(["-c", &format!("user.name={name}"), "-c", &format!("user.email={email}")])
        .args(["-c", "commit.gpgsign=false", "-c", "core.hooksPath=/dev/null"])
        .env("GIT_TERMINAL_PROMPT", "0")
        // Reading the user's checkout (`git status`) must not even refresh its index.
        .env("GIT_OPTIONAL_LOCKS", "0")
        .stdin(Stdio::null());
    cmd
}

/// `git -C dir ARGS` (blocking), with swarm's identity for any commit it makes.
pub fn git(dir: &Path, args: &[&str], author: &str) -> Result<Output, GitError> {
    command(author).arg("-C").arg(dir).args(args).output().map_err(GitError::Spawn)
}

/// Like [`git`], failing with git's own words when it fails.
pub fn git_ok(dir: &Path, args: &[&str], author: &str) -> Result<String, GitError> {
    trimmed(args, &git(dir, args, author)?)
}

/// What `git ARGS` printed, trimmed, or git's own words when it failed.
pub(crate) fn trimmed(args: &[&str], out: &Output) -> Result<String, GitError> {
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        Err(GitError::command(args, out))
    }
}

/// Like [`git_ok`], its output untrimmed (a patch).
pub fn git_ok_raw(dir: &Path, args: &[&str]) -> Result<String, GitError> {
    let out = git(dir, args, DEFAULT_AUTHOR)?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(GitError::command(args, &out))
    }
}

/// The top of the git repository `dir` lies in, if any.
pub fn repo_of(dir: &Path) -> Option<PathBuf> {
    let out = git(dir, &["rev-parse", "--show-toplevel"], DEFAULT_AUTHOR).ok()?;
    out.status.success().then(|| PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
}

/// The commit `rev` names, in full.
pub fn commit_of(repo: &Path, rev: &str) -> Result<String, GitError> {
    git_ok(repo, &["rev-parse", "--verify", "--quiet", &format!("{rev}^{{commit}}")], DEFAULT_AUTHOR)
        .map_err(|_| GitError::NoCommit { rev: rev.into(), repo: repo.into() })
}

/// Whether the checkout at `dir` has uncommitted changes (untracked files included).
pub fn is_dirty(dir: &Path) -> bool {
    git_ok(dir, &["status", "--porcelain"], DEFAULT_AUTHOR).is_ok_and(|s| !s.is_empty())
}

/// Makes a worktree of `branch` at `path`, the branch (re)set to `start` when given; an old
/// worktree or directory at `path` goes first, so a task's re-run starts clean.
pub fn fresh_worktree(repo: &Path, path: &Path, branch: &str, start: Option<&str>) -> Result<(), GitError> {
    if path.exists() {
        let _ = git(repo, &["worktree", "remove", "--force", &path.display().to_string()], DEFAULT_AUTHOR);
        if path.exists() {
            std::fs::remove_dir_all(path)
                .map_err(GitError::io(format!("cannot remove {}", path.display())))?;
        }
    }
    let _ = git(repo, &["worktree", "prune"], DEFAULT_AUTHOR);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .map_err(GitError::io(format!("cannot create {}", parent.display())))?;
    }
    let tree = path.display().to_string();
    let args: Vec<&str> = match start {
        Some(start) => vec!["worktree", "add", "--quiet", "-B", branch, &tree, start],
        None => vec!["worktree", "add", "--quiet", &tree, branch],
    };
    git_ok(repo, &args, DEFAULT_AUTHOR).map(drop)
}

/// What bringing a task's work back did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Merged {
    pub branch: String,
    /// The task's commit (its branch's head after committing what it left).
    pub commit: String,
    /// Where its work started: the integration branch's commit its worktree was made from.
    pub start: String,
    pub outcome: MergeOutcome,
    /// What its work changed, relative to the repository.
    pub files_changed: Vec<String>,
    /// Files left out of its commit for their size, with it (over `max_file_size`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub left_out: Vec<(String, u64)>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum MergeOutcome {
    Merged,
    /// Nothing to bring back.
    Skipped,
    /// The integration branch is as it was; these paths conflicted.
    Conflict {
        paths: Vec<String>,
    },
}

/// Commits what the agent left in its worktree (but `keep_out`: files swarm copied in), then
/// brings the task's branch into the integration branch. Git runs on both worktrees as the
/// repository's records have them, after checking each is still on its branch: an agent that
/// rewrote its `.git` cannot make swarm commit elsewhere. Blocking; call it with the
/// repository's lock held.
pub fn integrate(
    repo: &Path,
    tree: &Path,
    branch: &str,
    message: &str,
    keep_out: &[String],
    into: &Integration,
) -> Result<Merged, GitError> {
    let author = into.author.as_str();
    let task = Checkout::of(repo, tree)?;
    task.verify(branch)?;
    let target = Checkout::of(repo, &into.worktree)?;
    target.verify(&into.branch)?;
    let (commit, left_out) = commit_work(&task, message, keep_out, into.max_file_size, author)?;
    let base = target.git_ok(&["merge-base", "HEAD", &commit], author).map_err(|e| match e {
        // No common ancestor: the branch was replaced by history of another repository or an
        // orphan (git says nothing, it only exits 1).
        GitError::Command { stderr, .. } if stderr.trim().is_empty() => {
            GitError::Unrelated { branch: branch.into() }
        }
        e => e,
    })?;
    let files: Vec<String> =
        target.git_ok(&["diff", "--name-only", &base, &commit], author)?.lines().map(String::from).collect();
    let merged = |commit: String, start: String, outcome| Merged {
        branch: branch.into(),
        commit,
        start,
        outcome,
        files_changed: files.clone(),
        left_out: left_out.clone(),
    };
    if files.is_empty() && target.git_ok(&["merge-base", "--is-ancestor", &commit, "HEAD"], author).is_ok() {
        return Ok(merged(commit, base, MergeOutcome::Skipped));
    }
    match into.strategy {
        Strategy::Merge | Strategy::Squash => {
            let outcome = merge_into(&target, &commit, message, into.strategy == Strategy::Squash, author)?;
            Ok(merged(commit, base, outcome))
        }
        Strategy::Rebase => {
            let onto = target.git_ok(&["rev-parse", "HEAD"], author)?;
            match rebase_onto(&task, &onto, author)? {
                MergeOutcome::Merged => {
                    let rebased = task.git_ok(&["rev-parse", "HEAD"], author)?;
                    target.git_ok(&["merge", "--quiet", "--ff-only", &rebased], author)?;
                    Ok(merged(rebased, onto, MergeOutcome::Merged))
                }
                conflict => Ok(merged(commit, base, conflict)),
            }
        }
    }
}

/// Commits everything in `tree` but `keep_out` and files over `max_size` (when anything
/// changed); returns its head and the files left out for their size.
pub(crate) fn commit_work(
    tree: &Checkout,
    message: &str,
    keep_out: &[String],
    max_size: u64,
    author: &str,
) -> Result<(String, Vec<(String, u64)>), GitError> {
    tree.git_ok(&["add", "-A", "--", "."], author)?;
    let staged = tree.git_ok(&["diff", "--cached", "--name-only", "--diff-filter=AM", "-z"], author)?;
    let big: Vec<(String, u64)> = staged
        .split('\0')
        .filter(|p| !p.is_empty())
        .filter_map(|p| {
            let len = std::fs::symlink_metadata(tree.work_tree.join(p)).ok().filter(|m| m.is_file())?.len();
            (len > max_size).then(|| (p.to_string(), len))
        })
        .collect();
    let out: Vec<&str> =
        keep_out.iter().map(String::as_str).chain(big.iter().map(|(p, _)| p.as_str())).collect();
    if !out.is_empty() {
        // Files swarm copied in stay out (`add` already skips the ignored ones), and so do
        // files too big to commit.
        let mut reset = vec!["reset", "--quiet", "--"];
        reset.extend(out);
        tree.git_ok(&reset, author)?;
    }
    Ok((commit_staged(tree, message, author)?, big))
}

/// Commits what is staged, if anything; returns the head.
fn commit_staged(tree: &Checkout, message: &str, author: &str) -> Result<String, GitError> {
    let staged = !tree.git(&["diff", "--cached", "--quiet"], author)?.status.success();
    if staged {
        tree.git_ok(&["commit", "--quiet", "--no-verify", "-m", message], author)?;
    }
    tree.git_ok(&["rev-parse", "HEAD"], author)
}

/// Merges (or squashes) `commit` into what `target` has checked out. A conflict is aborted and
/// the integration branch left exactly as it was.
fn merge_into(
    target: &Checkout,
    commit: &str,
    message: &str,
    squash: bool,
    author: &str,
) -> Result<MergeOutcome, GitError> {
    let mut args = vec!["merge", "--quiet", "--no-edit"];
    if squash {
        args.push("--squash");
    } else {
        args.extend(["--no-ff", "-m", message]);
    }
    args.push(commit);
    let out = target.git(&args, author)?;
    if !out.status.success() {
        let paths = target.conflicted(author);
        let _ = target.git(&["merge", "--abort"], author);
        let _ = target.git(&["reset", "--hard", "--quiet", "HEAD"], author);
        if paths.is_empty() {
            return Err(GitError::command(&["merge"], &out));
        }
        return Ok(MergeOutcome::Conflict { paths });
    }
    if squash {
        target.git_ok(&["commit", "--quiet", "--no-verify", "-m", message], author)?;
    }
    Ok(MergeOutcome::Merged)
}

/// Rebases the task's branch checked out in `tree` onto `onto`; a conflict is aborted.
fn rebase_onto(tree: &Checkout, onto: &str, author: &str) -> Result<MergeOutcome, GitError> {
    let out = tree.git(&["rebase", "--quiet", onto], author)?;
    if out.status.success() {
        return Ok(MergeOutcome::Merged);
    }
    let paths = tree.conflicted(author);
    let _ = tree.git(&["rebase", "--abort"], author);
    if paths.is_empty() {
        return Err(GitError::command(&["rebase"], &out));
    }
    Ok(MergeOutcome::Conflict { paths })
}

/// The paths left in conflict in the checkout at `dir`.
fn conflicted(dir: &Path, author: &str) -> Vec<String> {
    git_ok(dir, &["diff", "--name-only", "--diff-filter=U"], author)
        .map(|s| s.lines().map(String::from).collect())
        .unwrap_or_default()
}

/// Every worktree of `repo` (its main one first).
pub fn worktrees(repo: &Path) -> Vec<PathBuf> {
    git_ok(repo, &["worktree", "list", "--porcelain"], DEFAULT_AUTHOR)
        .map(|s| s.lines().filter_map(|l| l.strip_prefix("worktree ")).map(PathBuf::from).collect())
        .unwrap_or_default()
}

/// The worktree of `repo` where `branch` is checked out, if any.
pub fn worktree_of_branch(repo: &Path, branch: &str) -> Option<PathBuf> {
    let list = git_ok(repo, &["worktree", "list", "--porcelain"], DEFAULT_AUTHOR).ok()?;
    let want = format!("branch refs/heads/{branch}");
    let mut current: Option<PathBuf> = None;
    for line in list.lines() {
        if let Some(p) = line.strip_prefix("worktree ") {
            current = Some(PathBuf::from(p));
        } else if line == want {
            return current;
        }
    }
    None
}

/// Whether the checkout at `dir` has changes to tracked files, staged or not (untracked files
/// do not count: git itself refuses a merge that would overwrite one).
pub fn has_uncommitted(dir: &Path) -> bool {
    git_ok(dir, &["status", "--porcelain", "--untracked-files=no"], DEFAULT_AUTHOR)
        .is_ok_and(|s| !s.is_empty())
}

/// Removes the worktree at `tree` (forcefully: it is swarm's own).
pub fn remove_worktree(repo: &Path, tree: &Path) {
    let _ =
        git(repo, &["worktree", "remove", "--force", "--force", &tree.display().to_string()], DEFAULT_AUTHOR);
    if tree.exists() {
        let _ = std::fs::remove_dir_all(tree);
    }
    let _ = git(repo, &["worktree", "prune"], DEFAULT_AUTHOR);
}

/// What merging a branch into a checked-out one did.
#[derive(Debug, Clone, PartialEq)]
pub struct BranchMerge {
    /// `merged`, `up_to_date` or `conflict`.
    pub outcome: &'static str,
    /// The checkout's head afterwards (unchanged on a conflict).
    pub head: String,
    pub files_changed: Vec<String>,
    pub conflict_paths: Vec<String>,
}

/// Merges `branch` into what `tree` has checked out (`squash`: as one new commit), as the
/// repository's own user when it has one configured, else as swarm. A conflict is aborted:
/// the checkout is left as it was.
pub fn merge_branch(tree: &Path, branch: &str, message: &str, squash: bool) -> Result<BranchMerge, GitError> {
    let user = git_ok(tree, &["config", "user.email"], DEFAULT_AUTHOR).is_ok();
    let run = |args: &[&str]| -> Result<Output, GitError> {
        if user {
            std::process::Command::new("git")
                .arg("-C")
                .arg(tree)
                .args(["-c", "core.hooksPath=/dev/null"])
                .args(args)
                .env("GIT_TERMINAL_PROMPT", "0")
                .stdin(Stdio::null())
                .output()
                .map_err(GitError::Spawn)
        } else {
            git(tree, args, DEFAULT_AUTHOR)
        }
    };
    let before = git_ok(tree, &["rev-parse", "HEAD"], DEFAULT_AUTHOR)?;
    if git_ok(tree, &["merge-base", "--is-ancestor", branch, "HEAD"], DEFAULT_AUTHOR).is_ok() {
        return Ok(BranchMerge {
            outcome: "up_to_date",
            head: before,
            files_changed: vec![],
            conflict_paths: vec![],
        });
    }
    let mut args = vec!["merge", "--quiet", "--no-edit", "--no-verify"];
    if squash {
        args.push("--squash");
    } else {
        args.extend(["--no-ff", "-m", message]);
    }
    args.push(branch);
    let out = run(&args)?;
    if !out.status.success() {
        let paths = conflicted(tree, DEFAULT_AUTHOR);
        let _ = git(tree, &["merge", "--abort"], DEFAULT_AUTHOR);
        if paths.is_empty() {
            return Err(GitError::command(&["merge"], &out));
        }
        let _ = git(tree, &["reset", "--quiet", "--merge"], DEFAULT_AUTHOR);
        return Ok(BranchMerge {
            outcome: "conflict",
            head: before,
            files_changed: vec![],
            conflict_paths: paths,
        });
    }
    if squash {
        let out = run(&["commit", "--quiet", "--no-verify", "-m", message])?;
        if !out.status.success() {
            return Err(GitError::command(&["commit"], &out));
        }
    }
    let head = git_ok(tree, &["rev-parse", "HEAD"], DEFAULT_AUTHOR)?;
    let files = git_ok(tree, &["diff", "--name-only", &before, &head], DEFAULT_AUTHOR)?
        .lines()
        .map(String::from)
        .collect();
    Ok(BranchMerge { outcome: "merged", head, files_changed: files, conflict_paths: vec![] })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_keep_git_words_and_say_what_failed() {
        let dir = tempfile::tempdir().unwrap();
        git_ok(dir.path(), &["init", "--quiet"], DEFAULT_AUTHOR).unwrap();
        let e = commit_of(dir.path(), "HEAD").unwrap_err();
        assert!(matches!(e, GitError::NoCommit { .. }), "{e:?}");
        assert_eq!(e.to_string(), format!("`HEAD` names no commit in {}", dir.path().display()));
        let e = git_ok(dir.path(), &["rev-parse", "--verify", "nowhere"], DEFAULT_AUTHOR).unwrap_err();
        let GitError::Command { args, stderr } = &e else { panic!("{e:?}") };
        assert_eq!(args, &["rev-parse", "--verify", "nowhere"]);
        assert!(e.to_string().starts_with("git rev-parse --verify nowhere: fatal:"), "{e}");
        assert!(stderr.starts_with("fatal:"), "{stderr}");
    }
}
