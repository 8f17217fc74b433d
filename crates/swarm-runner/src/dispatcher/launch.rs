//! Attempt launch: the dispatcher's side of starting an attempt — the job an executor runs (the
//! prompt, the provider, the environment, the workspace, the limits), built from the plan, the
//! config and how the task's previous attempt ended. Cheap and without effects: all slow work
//! (git, setup commands, spawning) happens in the executor.

use crate::executor::prompt::{compose_prompt, report_footer, retry_feedback, REPORT_FOOTER};
use crate::executor::provider::resolve_provider;
use crate::job::{AttemptJob, Limits, ReportSpec, WorkspaceSpec};
use crate::os::git::{Integration, Strategy};
use crate::os::paths::RunDir;
use std::path::{Path, PathBuf};
use swarm_agents::ProviderSpec;
use swarm_core::config::Config;
use swarm_core::plan::{Plan, Workdir};
use swarm_core::report::{AttemptReport, RunRecord};

/// What every job of a run is built from.
pub struct Launcher<'a> {
    pub record: &'a RunRecord,
    pub plan: &'a Plan,
    pub config: &'a Config,
    pub run_dir: &'a RunDir,
    /// The store address agents get as `SWARM_STORE` (never with a password).
    pub store_env: &'a str,
    pub project_root: &'a Path,
    /// The model gateway's base URL, when the run has one.
    pub gateway_url: Option<&'a str>,
}

/// Where an attempt's model comes from.
#[derive(Debug, Clone, Copy)]
pub enum ModelRoute<'a> {
    /// The task's own `model:` (or none: the agent's default).
    Task,
    /// The model gateway, per request; the attempt's token.
    Gateway { token: &'a str },
    /// One model of the hierarchy for the whole attempt (an agent that cannot use the gateway).
    Picked { model: &'a str },
}

/// The name agents know the gateway by, as a provider (`swarm/auto`).
pub const GATEWAY_PROVIDER: &str = "swarm";
/// The variable an agent of a hierarchy task finds its per-attempt gateway token in.
pub const GATEWAY_TOKEN_ENV: &str = "SWARM_GATEWAY_TOKEN";

impl Launcher<'_> {
    /// The job for attempt `attempt` of task `task`; `previous` is the task's last attempt, whose
    /// failure the prompt explains; `route` says where its model comes from. An error is a
    /// spawn error said in one line.
    pub fn job(
        &self,
        task: u32,
        attempt: u32,
        previous: Option<&AttemptReport>,
        route: ModelRoute<'_>,
    ) -> Result<AttemptJob, String> {
        let gateway_token = match route {
            ModelRoute::Gateway { token } => Some(token),
            _ => None,
        };
        let model = match route {
            ModelRoute::Gateway { .. } => Some(format!("{GATEWAY_PROVIDER}/auto")),
            ModelRoute::Picked { model } => Some(model.to_string()),
            ModelRoute::Task => self.plan.tasks[task as usize].model.clone(),
        };
        let t = &self.plan.tasks[task as usize];
        let run_id = &self.record.run_id;
        let required = self.config.require_report(&t.agent);
        let completion = self.run_dir.completion(&t.id, attempt);
        let mut prompt = compose_prompt(&self.plan.brief, &t.prompt);
        if let Some(previous) = previous {
            prompt.push_str(&retry_feedback(previous));
        }
        if required {
            let template = self.config.feedback.footer.as_deref().unwrap_or(REPORT_FOOTER);
            prompt.push_str(&report_footer(template, run_id, &t.id, attempt, &completion));
        }
        let (provider, key_env) = match (model.as_deref(), gateway_token, self.gateway_url) {
            (_, Some(_), Some(url)) => {
                let gateway = ProviderSpec {
                    name: GATEWAY_PROVIDER.into(),
                    kind: "openai-compatible".into(),
                    base_url: Some(url.to_string()),
                    model: "auto".into(),
                    api_key_env: GATEWAY_TOKEN_ENV.into(),
                };
                (Some(gateway), None)
            }
            (Some(model), None, _) => resolve_provider(self.config, model)?,
            _ => (None, None),
        };
        let mut env = vec![
            ("SWARM_RUN_ID".to_string(), run_id.clone()),
            ("SWARM_TASK_ID".into(), t.id.clone()),
            ("SWARM_ATTEMPT".into(), attempt.to_string()),
            ("SWARM_STORE".into(), self.store_env.to_string()),
            ("SWARM_NAMESPACE".into(), self.record.namespace.clone()),
            ("SWARM_COMPLETION_FILE".into(), completion.display().to_string()),
        ];
        env.extend(key_env);
        let mut env_remove = Vec::new();
        if let (Some(token), Some(url)) = (gateway_token, self.gateway_url) {
            env.push((GATEWAY_TOKEN_ENV.into(), token.to_string()));
            env.push(("SWARM_GATEWAY_URL".into(), url.to_string()));
            // The gateway holds the providers' keys: its agents never see them.
            env_remove = self.config.providers.values().filter_map(|p| p.api_key_env.clone()).collect();
        }
        Ok(AttemptJob {
            run_id: run_id.clone(),
            task_index: task,
            task: t.clone(),
            attempt,
            prompt,
            model,
            provider,
            env_remove,
            workspace: self.workspace(t)?,
            env,
            limits: Limits {
                timeout: t.timeout,
                stall: t.stall,
                grace: self.config.grace(),
                check_timeout: self.config.check_timeout(),
                setup_timeout: self.config.setup_timeout(),
                log_limit: self.config.log_limit(),
            },
            check: t.check.clone(),
            report: ReportSpec { path: completion, required, run_id: run_id.clone(), task_id: t.id.clone() },
            pre_step: self.config.agents.get(&t.agent).and_then(|a| a.setup.clone()),
            log: self.run_dir.log(&t.id, attempt),
            attempt_dir: self.run_dir.attempt_dir(&t.id, attempt),
            project_root: self.project_root.to_path_buf(),
        })
    }

    /// The plan's directory (`shared`), or the task's own git worktree
    /// `.swarm/worktrees/<RUN_ID>/<TASK_ID>` on branch `swarm/<RUN_ID>/<TASK_ID>`, made from the
    /// run's integration branch (the task works where the plan lies inside it).
    fn workspace(&self, t: &swarm_core::Task) -> Result<WorkspaceSpec, String> {
        let shared = PathBuf::from(&self.record.workdir);
        let git = self.record.git.as_ref();
        if t.workdir(git.is_some()) == Workdir::Shared {
            return Ok(WorkspaceSpec::Shared { dir: shared });
        }
        let Some(git) = git else {
            return Err(format!(
                "`workdir: worktree` needs the plan inside a git repository with a commit ({} is not)",
                shared.display()
            ));
        };
        let repo = PathBuf::from(&git.repo);
        let subdir = shared.strip_prefix(&repo).map(Path::to_path_buf).unwrap_or_default();
        let worktree = &self.config.worktree;
        Ok(WorkspaceSpec::Worktree {
            path: self.run_dir.worktrees().join(&t.id),
            branch: crate::os::git::task_branch(&git.integration_branch, &t.id),
            start: git.integration_branch.clone(),
            subdir,
            setup: worktree.setup.clone(),
            integration: Integration {
                branch: git.integration_branch.clone(),
                worktree: self.run_dir.integration_worktree(),
                strategy: worktree.merge.as_deref().and_then(Strategy::parse).unwrap_or_default(),
                author: worktree.author.clone().unwrap_or_else(|| crate::os::git::DEFAULT_AUTHOR.into()),
            },
            repo,
        })
    }
}
