//! A run's repository as workers on hosts without the checkout see it (`swarm run --workers
//! --repo URL`, docs/contract.md §11): the orchestrator pushes the integration branch there
//! before it queues a worktree attempt; a worker keeps its own clone, fetches that branch,
//! works in a worktree of its clone and pushes the task's commit to a ref of its own attempt
//! and owner; the orchestrator fetches that commit (checking it is the one the attempt's
//! counted end names) and merges it as it merges a local task's work.

use super::git::{commit_of, Checkout, GitError, RepoLock, DEFAULT_AUTHOR};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// A task's work a worker committed in its own clone and pushed to the run's repository.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pushed {
    /// The ref it went to: `refs/swarm/<RUN_ID>/<TASK_ID>/<ATTEMPT>-<FENCE>`, one per owner, so
    /// a stale owner's late push overwrites nothing that counts.
    pub to: String,
    pub commit: String,
    /// The commit's message (the merge says the same).
    pub message: String,
    /// Files left out of the commit for their size (over `max_file_size`), with it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub left_out: Vec<(String, u64)>,
}

/// The ref attempt `attempt` of `task` pushes to under owner `fence`.
pub fn attempt_ref(run_id: &str, task: &str, attempt: u32, fence: u64) -> String {
    format!("refs/swarm/{run_id}/{task}/{attempt}-{fence}")
}

/// Refuses a URL that carries a password: it would be in the store, the queue and every job
/// (use a credential helper or an SSH key).
pub fn check_url(url: &str) -> Result<(), String> {
    let secret = reqwest::Url::parse(url).ok().is_some_and(|u| u.password().is_some());
    if secret {
        return Err(format!(
            "--repo {}: the URL carries a password, which would be stored with the run; use a git credential helper or an SSH key",
            mask(url)
        ));
    }
    Ok(())
}

fn mask(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.to_string(),
    }
}

/// Network git never waits for a password prompt or a silent host for ever.
fn remote_git(dir: &Path, args: &[&str]) -> Result<String, GitError> {
    let mut cmd = super::git::command(DEFAULT_AUTHOR);
    if std::env::var_os("GIT_SSH_COMMAND").is_none() {
        cmd.env("GIT_SSH_COMMAND", "ssh -o BatchMode=yes -o ConnectTimeout=20");
    }
    let out = cmd.arg("-C").arg(dir).args(args).output().map_err(GitError::Spawn)?;
    super::git::trimmed(args, &out)
}

/// Puts `branch` of `repo` on `url` as it is here (the orchestrator owns it). Call it with the
/// repository's lock held.
pub fn push_branch(repo: &Path, url: &str, branch: &str) -> Result<(), GitError> {
    let spec = format!("+refs/heads/{branch}:refs/heads/{branch}");
    remote_git(repo, &["push", "--quiet", "--no-verify", url, &spec]).map(drop)
}

/// This host's clone of `url` under `home` (made on first use), with `branch` fetched as it is
/// there; one process at a time per clone.
pub fn clone_with(home: &Path, url: &str, branch: &str) -> Result<PathBuf, GitError> {
    let dir = home.join(clone_name(url));
    std::fs::create_dir_all(home).map_err(GitError::io(format!("cannot create {}", home.display())))?;
    let _one_at_a_time = RepoLock::at(&dir.with_extension("lock"))?;
    if !dir.join(".git").exists() {
        let _ = std::fs::remove_dir_all(&dir);
        let target = dir.display().to_string();
        remote_git(home, &["clone", "--quiet", "--no-checkout", url, &target])?;
    }
    let spec = format!("+refs/heads/{branch}:refs/heads/{branch}");
    remote_git(&dir, &["fetch", "--quiet", "--no-tags", url, &spec])?;
    Ok(dir)
}

/// `<last path segment>-<8 hex digits of the URL's FNV-1a hash>`: one clone per repository.
fn clone_name(url: &str) -> String {
    let last = url.trim_end_matches('/').rsplit(['/', ':']).next().unwrap_or("repo");
    let last: String = last
        .trim_end_matches(".git")
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' })
        .take(40)
        .collect();
    let hash =
        url.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
    format!("{last}-{:08x}", hash as u32)
}

/// What a worker's attempt commits and where it pushes it.
pub struct PushSpec<'a> {
    pub repo: &'a Path,
    pub tree: &'a Path,
    pub branch: &'a str,
    pub message: &'a str,
    pub keep_out: &'a [String],
    pub max_file_size: u64,
    pub author: &'a str,
    pub url: &'a str,
    pub to: &'a str,
}

/// Commits what the agent left in its worktree of the clone (as a local task's is committed)
/// and pushes the commit to `to` on `url`.
pub fn commit_and_push(p: &PushSpec) -> Result<Pushed, GitError> {
    let task = Checkout::of(p.repo, p.tree)?;
    task.verify(p.branch)?;
    let (commit, left_out) =
        super::git::commit_work(&task, p.message, p.keep_out, p.max_file_size, p.author)?;
    remote_git(p.repo, &["push", "--quiet", "--no-verify", "--force", p.url, &format!("{commit}:{}", p.to)])?;
    Ok(Pushed { to: p.to.to_string(), commit, message: p.message.to_string(), left_out })
}

/// Fetches what a worker pushed into `repo` and checks it is the commit its end names; the
/// commit, ready to merge. Call it with the repository's lock held.
pub fn fetch_pushed(repo: &Path, url: &str, pushed: &Pushed) -> Result<String, GitError> {
    remote_git(repo, &["fetch", "--quiet", "--no-tags", url, &pushed.to])?;
    let fetched = commit_of(repo, "FETCH_HEAD")?;
    if fetched != pushed.commit {
        return Err(GitError::Command {
            args: vec!["fetch".into(), pushed.to.clone()],
            stderr: format!(
                "{} on {} is {fetched}, not the attempt's commit {}",
                pushed.to,
                mask(url),
                pushed.commit
            ),
        });
    }
    Ok(fetched)
}

/// Deletes from `url` the refs run `run_id`'s attempts pushed there
/// (`refs/swarm/<RUN_ID>/…`), and `branch` too when given (the run's integration branch, for
/// `swarm clean --branches`): the refs deleted.
pub fn delete_run_refs(
    repo: &Path,
    url: &str,
    run_id: &str,
    branch: Option<&str>,
) -> Result<Vec<String>, GitError> {
    let (prefix, branch) = (format!("refs/swarm/{run_id}/"), branch.map(|b| format!("refs/heads/{b}")));
    let pattern = format!("{prefix}*");
    let mut args = vec!["ls-remote", "--refs", url, &pattern];
    args.extend(branch.as_deref());
    let listed = remote_git(repo, &args)?;
    let refs: Vec<String> = listed
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1))
        .filter(|r| r.starts_with(&prefix) || branch.as_deref() == Some(*r))
        .map(String::from)
        .collect();
    if refs.is_empty() {
        return Ok(refs);
    }
    let deletes: Vec<String> = refs.iter().map(|r| format!(":{r}")).collect();
    let mut args = vec!["push", "--quiet", "--no-verify", url];
    args.extend(deletes.iter().map(String::as_str));
    remote_git(repo, &args)?;
    Ok(refs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_with_a_password_is_refused_and_never_repeated() {
        let err = check_url("https://me:s3cret@git.example.com/team/app.git").unwrap_err();
        assert!(!err.contains("s3cret") && err.contains("***"), "{err}");
        check_url("https://git.example.com/team/app.git").unwrap();
        check_url("git@github.com:team/app.git").unwrap();
        check_url("/srv/git/app.git").unwrap();
    }

    #[test]
    fn each_repository_gets_its_own_clone_name() {
        let a = clone_name("git@github.com:team/app.git");
        assert!(a.starts_with("app-") && a.len() == "app-".len() + 8, "{a}");
        assert_ne!(a, clone_name("https://github.com/team/app.git"));
    }

    #[test]
    fn a_runs_refs_are_deleted_from_its_repository_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let (repo, bare) = (dir.path().join("repo"), dir.path().join("remote.git"));
        let git = |dir: &Path, args: &[&str]| super::super::git::git_ok(dir, args, DEFAULT_AUTHOR).unwrap();
        std::fs::create_dir_all(&repo).unwrap();
        git(&repo, &["init", "--quiet", "-b", "main"]);
        git(&repo, &["commit", "--quiet", "--allow-empty", "-m", "start"]);
        git(dir.path(), &["init", "--quiet", "--bare", &bare.display().to_string()]);
        let url = bare.display().to_string();
        for r in [
            "refs/swarm/r1/a/1-1",
            "refs/swarm/r1/b/2-3",
            "refs/swarm/r2/a/1-1",
            "refs/heads/swarm/r1",
            "refs/heads/main",
        ] {
            git(&repo, &["push", "--quiet", &url, &format!("HEAD:{r}")]);
        }
        let gone = delete_run_refs(&repo, &url, "r1", None).unwrap();
        assert_eq!(gone, ["refs/swarm/r1/a/1-1", "refs/swarm/r1/b/2-3"]);
        let left = git(&repo, &["ls-remote", "--refs", &url]);
        let left: Vec<&str> = left.lines().filter_map(|l| l.split_whitespace().nth(1)).collect();
        assert_eq!(left, ["refs/heads/main", "refs/heads/swarm/r1", "refs/swarm/r2/a/1-1"]);
        assert_eq!(delete_run_refs(&repo, &url, "r1", Some("swarm/r1")).unwrap(), ["refs/heads/swarm/r1"]);
        assert!(delete_run_refs(&repo, &url, "r1", Some("swarm/r1")).unwrap().is_empty());
    }
}
