//! Attempt launch: the dispatcher's side of starting an attempt — the job an executor runs (the
//! prompt, the provider, the environment, the workspace, the limits), built from the plan, the
//! config and how the task's previous attempt ended. Cheap and without effects: all slow work
//! (git, setup commands, spawning) happens in the executor.

use crate::executor::prompt::{compose_prompt, report_footer, retry_feedback, REPORT_FOOTER};
use crate::executor::provider::resolve_provider;
use crate::job::{AttemptJob, Limits, ModelRoute, Remote, ReportSpec, WorkspaceSpec, GATEWAY_TOKEN_ENV};
use crate::os::git::{Integration, Strategy};
use crate::os::paths::RunDir;
use std::path::{Path, PathBuf};
use swarm_core::config::Config;
use swarm_core::plan::{Plan, Workdir};
use swarm_core::report::{AttemptReport, RunRecord, TaskReport};

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
    /// The run's tasks as recorded so far: a dependency's report is handed to its dependents.
    pub tasks: &'a [TaskReport],
}

/// Where the dispatcher wants an attempt's model to come from.
#[derive(Debug, Clone)]
pub enum RouteChoice<'a> {
    /// The task's own `model:` (or none: the agent's default).
    Task,
    /// The model gateway, per request; the attempt's token.
    Gateway { token: &'a str },
    /// One model of the hierarchy for the whole attempt (an agent that cannot use the gateway),
    /// except the models in `exclude`.
    Hierarchy { exclude: Vec<String>, allow_paid: bool },
}

impl Launcher<'_> {
    /// The job for attempt `attempt` of task `task`; `previous` is the task's last attempt, whose
    /// failure the prompt explains; `choice` says where its model comes from. An error is a
    /// spawn error said in one line.
    pub fn job(
        &self,
        task: u32,
        attempt: u32,
        previous: Option<&AttemptReport>,
        choice: RouteChoice<'_>,
    ) -> Result<AttemptJob, String> {
        let t = &self.plan.tasks[task as usize];
        let run_id = &self.record.run_id;
        let required = self.config.require_report(&t.agent);
        let completion = self.run_dir.completion(&t.id, attempt);
        let team =
            super::team::TeamPrompt::new(self.plan, self.config, self.tasks, Path::new(&self.record.workdir));
        let (task_prompt, handoff_from) = team.task_prompt(t);
        let mut prompt = compose_prompt(&self.plan.brief, &task_prompt);
        if let Some(previous) = previous {
            prompt.push_str(&retry_feedback(previous));
        }
        if required {
            let template = self.config.feedback.footer.as_deref().unwrap_or(REPORT_FOOTER);
            prompt.push_str(&report_footer(template, run_id, &t.id, attempt, &completion));
        }
        let mut env = vec![
            ("SWARM_RUN_ID".to_string(), run_id.clone()),
            ("SWARM_TASK_ID".into(), t.id.clone()),
            ("SWARM_ATTEMPT".into(), attempt.to_string()),
            ("SWARM_STORE".into(), self.store_env.to_string()),
            ("SWARM_NAMESPACE".into(), self.record.namespace.clone()),
            ("SWARM_COMPLETION_FILE".into(), completion.display().to_string()),
        ];
        let (route, env_remove) = self.route(t, choice, &mut env)?;
        Ok(AttemptJob {
            run_id: run_id.clone(),
            task_index: task,
            task: t.clone(),
            attempt,
            prompt,
            route,
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
            files: team.files(),
            handoff_state: team.state_of(t, &handoff_from),
            handoff_from,
            resolver: self.resolver(t),
        })
    }

    /// The resolver's agent when a conflicting merge of `t` gets one (`on_conflict: agent`,
    /// the task's or `[worktree]`'s): `[worktree] resolver_agent`, else the task's own.
    fn resolver(&self, t: &swarm_core::Task) -> Option<String> {
        let worktree = &self.config.worktree;
        let on = t.on_conflict.or(worktree.on_conflict).unwrap_or_default();
        (on == swarm_core::plan::OnConflict::Agent && t.runs_agent())
            .then(|| worktree.resolver_agent.clone().unwrap_or_else(|| t.agent.clone()))
    }

    /// The job's model route, adding what its agent needs to `env` (a placeholder key for a
    /// local endpoint, the gateway's token and URL); the variables to take out of the agent's
    /// environment (a gateway's agents never see the providers' keys).
    fn route(
        &self,
        t: &swarm_core::Task,
        choice: RouteChoice<'_>,
        env: &mut Vec<(String, String)>,
    ) -> Result<(ModelRoute, Vec<String>), String> {
        match (choice, self.gateway_url) {
            (RouteChoice::Gateway { token }, Some(url)) => {
                env.push((GATEWAY_TOKEN_ENV.into(), token.to_string()));
                env.push(("SWARM_GATEWAY_URL".into(), url.to_string()));
                let keys = self.config.providers.values().filter_map(|p| p.api_key_env.clone()).collect();
                Ok((ModelRoute::Gateway { url: url.to_string() }, keys))
            }
            (RouteChoice::Hierarchy { exclude, allow_paid }, _) => {
                let route = ModelRoute::Hierarchy {
                    namespace: self.record.namespace.clone(),
                    start_layer: t.tier.unwrap_or(1),
                    exclude,
                    allow_paid,
                };
                Ok((route, vec![]))
            }
            (RouteChoice::Task | RouteChoice::Gateway { .. }, _) => {
                let (provider, key_env) = match t.model.as_deref() {
                    Some(model) => resolve_provider(self.config, model)?,
                    None => (None, None),
                };
                env.extend(key_env);
                Ok((ModelRoute::Task { model: t.model.clone(), provider }, vec![]))
            }
        }
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
            integration: Box::new(Integration {
                branch: git.integration_branch.clone(),
                worktree: self.run_dir.integration_worktree(),
                strategy: worktree.merge.as_deref().and_then(Strategy::parse).unwrap_or_default(),
                author: worktree.author.clone().unwrap_or_else(|| crate::os::git::DEFAULT_AUTHOR.into()),
                max_file_size: self.config.max_file_size(),
            }),
            remote: git.remote.clone().map(|url| Remote { url, push_to: None }),
            repo,
        })
    }
}
