//! Where a worker runs an attempt's job: as the orchestrator wrote it, when this host has the
//! run's checkout at the same path; or in this host's own clone of the run's repository
//! (`swarm run --workers --repo URL`), every path of the job moved from the orchestrator's
//! repository into the clone, its work pushed back to a ref of this attempt and owner.

use crate::job::{AttemptJob, WorkspaceSpec};
use crate::os::git_remote;
use std::path::{Path, PathBuf};
use swarm_core::scheduler::Failure;
use swarm_core::state::Reason;

/// Where a worker keeps its own clones, and the repository it always clones when given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Clones {
    /// One clone per repository URL under it.
    pub home: PathBuf,
    /// `swarm worker --repo URL`: worktree tasks of runs that name a repository work in a clone
    /// of this URL even where the run's checkout is (another URL of the same repository).
    pub repo: Option<String>,
}

fn cannot(detail: String) -> Failure {
    Failure { reason: Reason::SpawnError, detail: Some(detail) }
}

/// The job as it runs on this host (`fence`: the owner's fencing token, in the ref it pushes
/// to), or why it cannot run here.
pub(super) async fn place(job: AttemptJob, clones: &Clones, fence: u64) -> Result<AttemptJob, Failure> {
    let url = match &job.workspace {
        WorkspaceSpec::Shared { dir } if dir.is_dir() => return Ok(job),
        WorkspaceSpec::Shared { dir } => {
            return Err(cannot(format!(
                "task {} works in the plan's directory {}, which is not on this host: only a worktree task (`workdir: worktree`, with `swarm run --workers --repo URL`) runs on a worker without the checkout",
                job.task.id,
                dir.display()
            )))
        }
        WorkspaceSpec::Worktree { repo, remote, .. } => match remote {
            Some(r) if clones.repo.is_some() || !repo.is_dir() => clones.repo.clone().unwrap_or(r.url.clone()),
            _ if repo.is_dir() => return Ok(job),
            _ => {
                return Err(cannot(format!(
                    "the run's repository {} is not on this host, and the run names none for workers elsewhere (swarm run --workers --repo URL)",
                    repo.display()
                )))
            }
        },
    };
    let (home, integration) = match &job.workspace {
        WorkspaceSpec::Worktree { integration, .. } => (clones.home.clone(), integration.branch.clone()),
        WorkspaceSpec::Shared { .. } => unreachable!("a shared workspace returned above"),
    };
    let fetch_url = url.clone();
    let clone = tokio::task::spawn_blocking(move || git_remote::clone_with(&home, &fetch_url, &integration))
        .await
        .map_err(|e| cannot(e.to_string()))?
        .map_err(|e| cannot(format!("cannot clone or fetch the run's repository {url}: {e}")))?;
    let job = moved(job, &clone, &url, fence);
    // The orchestrator made these directories on its host; here they are the worker's to make.
    for dir in
        [job.log.parent(), Some(job.attempt_dir.as_path()), job.report.path.parent()].into_iter().flatten()
    {
        std::fs::create_dir_all(dir).map_err(|e| cannot(format!("cannot create {}: {e}", dir.display())))?;
    }
    Ok(job)
}

/// `job` with the orchestrator's repository replaced by `clone` everywhere (its paths, the
/// prompt and environment that name them), pushing its work to its own ref on `url`.
fn moved(mut job: AttemptJob, clone: &Path, url: &str, fence: u64) -> AttemptJob {
    let WorkspaceSpec::Worktree { repo, .. } = &job.workspace else { return job };
    let old = repo.clone();
    let to = git_remote::attempt_ref(&job.run_id, &job.task.id, job.attempt, fence);
    let here = |p: &Path| match p.strip_prefix(&old) {
        Ok(rel) => clone.join(rel),
        // Outside the repository on the orchestrator's host: kept under the clone's own.
        Err(_) => clone.join(".swarm/elsewhere").join(p.strip_prefix("/").unwrap_or(p)),
    };
    if let WorkspaceSpec::Worktree { repo, path, integration, remote, .. } = &mut job.workspace {
        *path = here(path);
        integration.worktree = here(&integration.worktree);
        *remote = Some(crate::job::Remote { url: url.to_string(), push_to: Some(to) });
        *repo = clone.to_path_buf();
    }
    job.log = here(&job.log);
    job.attempt_dir = here(&job.attempt_dir);
    job.project_root = here(&job.project_root);
    job.report.path = here(&job.report.path);
    let (from, into) = (old.display().to_string(), clone.display().to_string());
    job.prompt = job.prompt.replace(&from, &into);
    for (_, value) in &mut job.env {
        *value = value.replace(&from, &into);
    }
    job
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::{Integration, Limits, ModelRoute, Remote, ReportSpec, Strategy};
    use std::time::Duration;

    fn job(workspace: WorkspaceSpec, root: &str) -> AttemptJob {
        let ctx = swarm_core::plan::PlanContext { agents: vec!["exec".into()], ..Default::default() };
        let plan =
            swarm_core::plan::parse_markdown("p.md", "## t: T\n- agent: exec\n- command: true\n", &ctx);
        let completion = format!("{root}/.swarm/runs/r/tasks/t/2/completion.json");
        AttemptJob {
            run_id: "r".into(),
            task_index: 0,
            task: plan.expect("a plan").tasks[0].clone(),
            attempt: 2,
            prompt: format!("Do it, then write {completion}."),
            route: ModelRoute::Task { model: None, provider: None },
            workspace,
            env: vec![("SWARM_COMPLETION_FILE".into(), completion.clone())],
            env_remove: vec![],
            limits: Limits {
                timeout: None,
                stall: None,
                grace: Duration::from_secs(1),
                check_timeout: Duration::from_secs(1),
                setup_timeout: Duration::from_secs(1),
                log_limit: 1 << 20,
            },
            check: None,
            report: ReportSpec {
                path: completion.into(),
                required: false,
                run_id: "r".into(),
                task_id: "t".into(),
            },
            pre_step: None,
            log: format!("{root}/.swarm/runs/r/logs/t.2.log").into(),
            attempt_dir: format!("{root}/.swarm/runs/r/tasks/t/2").into(),
            project_root: "/somewhere/else".into(),
            files: vec![],
            handoff_from: vec![],
            handoff_state: vec![],
            resolver: None,
        }
    }

    fn worktree(repo: &str, remote: Option<&str>) -> WorkspaceSpec {
        WorkspaceSpec::Worktree {
            repo: repo.into(),
            path: format!("{repo}/.swarm/worktrees/r/t").into(),
            branch: "swarm/r--t".into(),
            start: "swarm/r".into(),
            subdir: "".into(),
            setup: None,
            integration: Box::new(Integration {
                branch: "swarm/r".into(),
                worktree: format!("{repo}/.swarm/worktrees/r/_integration").into(),
                strategy: Strategy::Merge,
                author: crate::os::git::DEFAULT_AUTHOR.into(),
                max_file_size: 1024,
            }),
            remote: remote.map(|url| Remote { url: url.into(), push_to: None }),
        }
    }

    fn git(dir: &Path, args: &[&str]) {
        crate::os::git::git_ok(dir, args, crate::os::git::DEFAULT_AUTHOR).expect("git");
    }

    #[tokio::test]
    async fn a_job_whose_checkout_is_not_here_runs_in_a_clone_of_its_repository_with_every_path_moved() {
        let d = tempfile::tempdir().unwrap();
        let (src, bare) = (d.path().join("src"), d.path().join("app.git"));
        std::fs::create_dir_all(&src).unwrap();
        git(&src, &["init", "-q", "-b", "main"]);
        git(&src, &["commit", "-q", "--allow-empty", "-m", "base"]);
        git(&src, &["branch", "swarm/r"]);
        git(d.path(), &["init", "-q", "--bare", bare.to_str().unwrap()]);
        git(&src, &["push", "-q", bare.to_str().unwrap(), "swarm/r"]);
        let gone = "/no/such/checkout";
        let clones = Clones { home: d.path().join("clones"), repo: None };
        let url = bare.display().to_string();
        let job = place(job(worktree(gone, Some(&url)), gone), &clones, 7).await.expect("placed");
        let WorkspaceSpec::Worktree { repo, path, remote, .. } = &job.workspace else { panic!("a worktree") };
        assert!(repo.starts_with(&clones.home) && repo.join(".git").is_dir(), "{}", repo.display());
        assert_eq!(path, &repo.join(".swarm/worktrees/r/t"));
        assert_eq!(remote.as_ref().and_then(|r| r.push_to.as_deref()), Some("refs/swarm/r/t/2-7"));
        crate::os::git::commit_of(repo, "swarm/r").expect("the run's branch was fetched");
        let completion = repo.join(".swarm/runs/r/tasks/t/2/completion.json");
        assert_eq!(job.report.path, completion);
        assert_eq!(job.env[0].1, completion.display().to_string());
        assert!(job.prompt.contains(&completion.display().to_string()) && !job.prompt.contains(gone));
        assert!(job.log.starts_with(repo) && job.log.parent().unwrap().is_dir());
        assert!(job.attempt_dir.starts_with(repo) && job.attempt_dir.is_dir());
        assert_eq!(job.project_root, repo.join(".swarm/elsewhere/somewhere/else"));
    }

    #[tokio::test]
    async fn a_job_that_cannot_run_without_its_checkout_says_why() {
        let clones = Clones { home: "/tmp/unused".into(), repo: None };
        let shared = job(WorkspaceSpec::Shared { dir: "/no/such/plan/dir".into() }, "/no/such");
        let why = place(shared, &clones, 1).await.unwrap_err();
        assert_eq!(why.reason, Reason::SpawnError);
        assert!(why.detail.unwrap().contains("workdir: worktree"));
        let no_remote = job(worktree("/no/such/repo", None), "/no/such/repo");
        let why = place(no_remote, &clones, 1).await.unwrap_err().detail.unwrap();
        assert!(why.contains("--repo URL"), "{why}");
    }

    #[tokio::test]
    async fn a_job_whose_checkout_is_here_runs_as_written() {
        let d = tempfile::tempdir().unwrap();
        let here = d.path().display().to_string();
        let clones = Clones { home: d.path().join("clones"), repo: None };
        let written = job(worktree(&here, Some("/unused.git")), &here);
        assert_eq!(place(written.clone(), &clones, 1).await.unwrap(), written);
    }
}
