//! `.worktreeinclude`: untracked files of the user's checkout (`.env`, local settings) copied
//! into every new worktree. A worktree holds what earlier tasks committed, so a path there may be
//! a symbolic link (or lie under one) pointing out of the repository: such a path is left alone,
//! and the copy is opened without following links, never writing through one.

use super::git::{git_ok, GitError, DEFAULT_AUTHOR};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Component, Path};

/// Files matching `.worktreeinclude` (gitignore syntax) at the top of `repo` that git does not
/// track: copied into `tree`. Returns what was copied, relative to the repository.
pub fn copy_included(repo: &Path, tree: &Path) -> Result<Vec<String>, GitError> {
    let list = repo.join(".worktreeinclude");
    if !list.is_file() {
        return Ok(vec![]);
    }
    let mut builder = ignore::gitignore::GitignoreBuilder::new(repo);
    if let Some(e) = builder.add(&list) {
        return Err(GitError::Include { file: list, message: e.to_string() });
    }
    let matcher =
        builder.build().map_err(|e| GitError::Include { file: list.clone(), message: e.to_string() })?;
    let mut untracked: Vec<String> = Vec::new();
    for args in [
        &["ls-files", "--others", "--exclude-standard", "-z"][..],
        &["ls-files", "--others", "--ignored", "--exclude-standard", "-z"][..],
    ] {
        let out = git_ok(repo, args, DEFAULT_AUTHOR)?;
        untracked
            .extend(out.split('\0').filter(|p| !p.is_empty() && !p.starts_with(".swarm/")).map(String::from));
    }
    untracked.sort();
    untracked.dedup();
    let mut copied = Vec::new();
    for rel in untracked {
        if matcher.matched_path_or_any_parents(&rel, false).is_ignore() && copy_one(repo, tree, &rel)? {
            copied.push(rel);
        }
    }
    Ok(copied)
}

/// Copies `rel` from `repo` to `tree` when it is a regular file there and its place in `tree`
/// is reached through no link; whether it was copied.
fn copy_one(repo: &Path, tree: &Path, rel: &str) -> Result<bool, GitError> {
    let from = repo.join(rel);
    let meta = std::fs::symlink_metadata(&from).map_err(GitError::io(from.display().to_string()))?;
    if !meta.is_file() {
        return Ok(false); // links are not followed out of the repository
    }
    let Some(mut dir) = safe_parent(tree, Path::new(rel)) else {
        return Ok(false);
    };
    let name = Path::new(rel).file_name().expect("a listed file has a name");
    dir.push(name);
    let to = dir;
    if std::fs::symlink_metadata(&to).is_ok_and(|m| !m.is_file()) {
        return Ok(false); // a link (or directory) an earlier task committed stays as it is
    }
    let what = || format!("cannot copy {rel}");
    let mut source = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::fcntl::OFlag::O_NOFOLLOW.bits())
        .open(&from)
        .map_err(GitError::io(what()))?;
    let mut sink = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(meta.permissions().mode_bits())
        .custom_flags(nix::fcntl::OFlag::O_NOFOLLOW.bits())
        .open(&to)
        .map_err(GitError::io(what()))?;
    std::io::copy(&mut source, &mut sink).and_then(|_| sink.flush()).map_err(GitError::io(what()))?;
    Ok(true)
}

/// `tree/<rel's parent>`, its missing directories made, when no component of it is a link (or
/// anything but a directory); `None` otherwise.
fn safe_parent(tree: &Path, rel: &Path) -> Option<std::path::PathBuf> {
    let mut dir = tree.to_path_buf();
    let parent = rel.parent().unwrap_or(Path::new(""));
    for part in parent.components() {
        let Component::Normal(part) = part else {
            return None;
        };
        dir.push(part);
        match std::fs::symlink_metadata(&dir) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => return None,
            Err(_) => std::fs::create_dir(&dir).ok()?,
        }
    }
    Some(dir)
}

trait ModeBits {
    fn mode_bits(&self) -> u32;
}

impl ModeBits for std::fs::Permissions {
    fn mode_bits(&self) -> u32 {
        std::os::unix::fs::PermissionsExt::mode(self) & 0o777
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(dir: &Path, script: &str) {
        let ok = std::process::Command::new("sh").arg("-c").arg(script).current_dir(dir).status().unwrap();
        assert!(ok.success(), "{script}");
    }

    /// An earlier task committed `.env` as a link to a file outside the repository, and `conf` as
    /// a link to a directory outside it: the copies must not write through them.
    #[test]
    fn copies_never_follow_links_out_of_the_worktree() {
        let repo = tempfile::tempdir().unwrap();
        let tree = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        sh(repo.path(), "git init -q && printf '.env\\nconf/\\nplain.txt\\n' > .worktreeinclude && echo SECRET=1 > .env && mkdir conf && echo local > conf/local.toml && echo plain > plain.txt && printf '.env\\nconf/\\nplain.txt\\n' > .gitignore");
        let victim = outside.path().join("victim");
        std::fs::write(&victim, "untouched").unwrap();
        std::os::unix::fs::symlink(&victim, tree.path().join(".env")).unwrap();
        std::os::unix::fs::symlink(outside.path(), tree.path().join("conf")).unwrap();
        let copied = copy_included(repo.path(), tree.path()).unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "untouched");
        assert!(!outside.path().join("local.toml").exists(), "written through a linked directory");
        assert_eq!(copied, vec!["plain.txt".to_string()], "only the file reached through no link");
        assert_eq!(std::fs::read_to_string(tree.path().join("plain.txt")).unwrap(), "plain\n");
    }
}
