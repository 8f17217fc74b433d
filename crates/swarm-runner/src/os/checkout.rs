//! The checkouts swarm commits in (a task's worktree, the run's integration worktree) as the
//! repository's own records have them, and the user's checkout as it was when a task started.
//! An agent controls its worktree, `.git` file included: pointed at the user's git directory it
//! would make a plain `git -C worktree commit` land on the user's branch. So git is driven with
//! `--git-dir`/`--work-tree` from the records in the repository's `worktrees/` directory, and
//! HEAD is checked to be the expected branch first.

use super::git::{command, git_ok, GitError, DEFAULT_AUTHOR};
use std::collections::BTreeSet;
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::Output;

/// A worktree of a repository: git's administrative directory for it and its files.
#[derive(Debug, Clone, PartialEq)]
pub struct Checkout {
    pub git_dir: PathBuf,
    pub work_tree: PathBuf,
}

fn canonical(p: &Path) -> Option<PathBuf> {
    p.canonicalize().ok()
}

impl Checkout {
    /// The worktree at `tree`, found in `repo`'s records (`<common dir>/worktrees/*/gitdir`
    /// names each worktree's `.git`), not through the `.git` file in `tree`.
    pub fn of(repo: &Path, tree: &Path) -> Result<Checkout, GitError> {
        let tampered = |why: String| GitError::Tampered { tree: tree.to_path_buf(), why };
        let common =
            git_ok(repo, &["rev-parse", "--path-format=absolute", "--git-common-dir"], DEFAULT_AUTHOR)?;
        let work_tree = canonical(tree).ok_or_else(|| tampered("it no longer exists".into()))?;
        let records = std::fs::read_dir(Path::new(&common).join("worktrees")).into_iter().flatten().flatten();
        for record in records {
            let Ok(named) = std::fs::read_to_string(record.path().join("gitdir")) else { continue };
            if Path::new(named.trim()).parent().and_then(canonical).as_ref() == Some(&work_tree) {
                return Ok(Checkout { git_dir: record.path(), work_tree });
            }
        }
        Err(tampered(format!("{} has no record of it as one of its worktrees", repo.display())))
    }

    /// `git --git-dir --work-tree ARGS` in this checkout.
    pub fn git(&self, args: &[&str], author: &str) -> Result<Output, GitError> {
        command(author)
            .arg("-C")
            .arg(&self.work_tree)
            .arg(format!("--git-dir={}", self.git_dir.display()))
            .arg(format!("--work-tree={}", self.work_tree.display()))
            .args(args)
            .output()
            .map_err(GitError::Spawn)
    }

    /// Like [`Checkout::git`], failing with git's own words when it fails.
    pub fn git_ok(&self, args: &[&str], author: &str) -> Result<String, GitError> {
        let out = self.git(args, author)?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
        } else {
            Err(GitError::command(args, &out))
        }
    }

    /// The paths left in conflict here.
    pub fn conflicted(&self, author: &str) -> Vec<String> {
        self.git_ok(&["diff", "--name-only", "--diff-filter=U"], author)
            .map(|s| s.lines().map(String::from).collect())
            .unwrap_or_default()
    }

    /// That the checkout is as swarm made it: its `.git` file still names its record, and its
    /// HEAD is `branch`.
    pub fn verify(&self, branch: &str) -> Result<(), GitError> {
        let tampered = |why: String| GitError::Tampered { tree: self.work_tree.clone(), why };
        let dotgit = self.work_tree.join(".git");
        let named = read_small(&dotgit)
            .and_then(|text| text.trim().strip_prefix("gitdir:").map(|p| PathBuf::from(p.trim())))
            .filter(|p| canonical(p) == canonical(&self.git_dir));
        if named.is_none() {
            return Err(tampered(format!(
                "its `.git` no longer names its worktree record {} (an agent rewrote or replaced it)",
                self.git_dir.display()
            )));
        }
        let head = self.git_ok(&["symbolic-ref", "-q", "HEAD"], DEFAULT_AUTHOR).unwrap_or_default();
        if head != format!("refs/heads/{branch}") {
            let head = if head.is_empty() { "detached".to_string() } else { format!("`{head}`") };
            return Err(tampered(format!("its HEAD is {head}, not the branch `{branch}`")));
        }
        Ok(())
    }
}

/// A regular file's first 4 KiB as text, opened without following a link or blocking.
fn read_small(path: &Path) -> Option<String> {
    let flags = nix::fcntl::OFlag::O_NOFOLLOW | nix::fcntl::OFlag::O_NONBLOCK;
    let file = std::fs::OpenOptions::new().read(true).custom_flags(flags.bits()).open(path).ok()?;
    if !file.metadata().ok()?.is_file() {
        return None;
    }
    let mut text = String::new();
    file.take(4096).read_to_string(&mut text).ok()?;
    Some(text)
}

/// The user's checkout as a task found it: its branch, that branch's commit and what
/// `git status` listed. Agents run as the user and can write anywhere; swarm cannot stop one
/// that commits onto the user's branch or writes into the user's files itself, but says so.
#[derive(Debug, Clone)]
pub struct UserSide {
    repo: PathBuf,
    branch: Option<String>,
    head: Option<String>,
    status: BTreeSet<String>,
}

fn status_of(repo: &Path) -> BTreeSet<String> {
    git_ok(repo, &["status", "--porcelain", "--untracked-files=all"], DEFAULT_AUTHOR)
        .map(|s| s.lines().map(String::from).collect())
        .unwrap_or_default()
}

/// At most this many paths are named in a warning.
const NAMED_PATHS: usize = 5;

impl UserSide {
    pub fn of(repo: &Path) -> UserSide {
        let branch = git_ok(repo, &["symbolic-ref", "-q", "--short", "HEAD"], DEFAULT_AUTHOR).ok();
        let head = git_ok(repo, &["rev-parse", "-q", "--verify", "HEAD"], DEFAULT_AUTHOR).ok();
        UserSide { repo: repo.to_path_buf(), branch, head, status: status_of(repo) }
    }

    /// What changed in the user's checkout since, as warnings (none when nothing did).
    pub fn changes(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        let now = UserSide::of(&self.repo);
        if now.branch == self.branch && now.head != self.head {
            let short =
                |h: &Option<String>| h.as_deref().map_or("none".into(), |h| h[..h.len().min(12)].to_string());
            warnings.push(format!(
                "the branch `{}` of your checkout {} moved from {} to {} while this task ran: an agent may have committed there",
                self.branch.as_deref().unwrap_or("HEAD"),
                self.repo.display(),
                short(&self.head),
                short(&now.head)
            ));
        }
        let new: Vec<&str> =
            now.status.difference(&self.status).map(|l| l.get(3..).unwrap_or(l.as_str())).collect();
        if !new.is_empty() {
            let mut named = new.iter().take(NAMED_PATHS).copied().collect::<Vec<_>>().join(", ");
            if new.len() > NAMED_PATHS {
                named.push_str(&format!(" and {} more", new.len() - NAMED_PATHS));
            }
            warnings.push(format!(
                "your checkout {} changed while this task ran ({named}): unless a task of the run works there, an agent wrote outside its worktree",
                self.repo.display()
            ));
        }
        warnings
    }
}

#[cfg(test)]
mod tests {
    use super::super::git::fresh_worktree;
    use super::*;

    fn sh(dir: &Path, script: &str) {
        let ok = std::process::Command::new("sh").arg("-c").arg(script).current_dir(dir).status().unwrap();
        assert!(ok.success(), "{script}");
    }

    #[test]
    fn a_worktree_is_found_by_its_record_and_a_rewritten_git_file_is_caught() {
        let repo = tempfile::tempdir().unwrap();
        sh(
            repo.path(),
            "git init -q -b main && git -c user.name=a -c user.email=a@b commit -q --allow-empty -m init",
        );
        let tree = repo.path().join("wt");
        fresh_worktree(repo.path(), &tree, "task", Some("main")).unwrap();
        let checkout = Checkout::of(repo.path(), &tree).unwrap();
        checkout.verify("task").unwrap();
        assert!(checkout.verify("main").unwrap_err().to_string().contains("not the branch `main`"));
        std::fs::write(tree.join(".git"), format!("gitdir: {}\n", repo.path().join(".git").display()))
            .unwrap();
        // The record is the repository's, not the file: still found, but the file is caught.
        assert_eq!(Checkout::of(repo.path(), &tree).unwrap(), checkout);
        let e = checkout.verify("task").unwrap_err().to_string();
        assert!(e.contains("did not commit") && e.contains("`.git` no longer names"), "{e}");
    }
}
