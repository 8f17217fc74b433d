//! What a task's prompt carries as part of a team (docs/contract.md §12): its role's text, the
//! hand-offs from its direct dependencies' reports, and the declared state it may read and
//! write; and the state doc written into its working directory.

use crate::job::AgentFile;
use std::path::Path;
use swarm_core::config::Config;
use swarm_core::plan::{Plan, Task};
use swarm_core::report::TaskReport;
use swarm_core::team::{render_doc, render_for_task, render_handoff, HandoffSource, StateDecl};

pub(super) struct TeamPrompt<'a> {
    plan: &'a Plan,
    config: &'a Config,
    tasks: &'a [TaskReport],
    /// The plan's directory: where the project's roles and `[roles]` files are found.
    workdir: &'a Path,
}

impl<'a> TeamPrompt<'a> {
    pub(super) fn new(
        plan: &'a Plan,
        config: &'a Config,
        tasks: &'a [TaskReport],
        workdir: &'a Path,
    ) -> Self {
        TeamPrompt { plan, config, tasks, workdir }
    }

    /// The plan's declaration, else swarm.toml's `[state]`.
    fn state(&self) -> Option<&'a StateDecl> {
        self.plan.state.as_ref().or(self.config.state.as_ref())
    }

    /// The task's prompt with its role's text before it, and its hand-offs and declared state
    /// after it; the dependencies handed off.
    /// The dependencies whose written state keys a `full` hand-off names (read when the attempt
    /// starts).
    pub(super) fn state_of(&self, t: &Task, handed: &[String]) -> Vec<String> {
        if t.handoff == Some(swarm_core::team::Handoff::Full) {
            handed.to_vec()
        } else {
            vec![]
        }
    }

    pub(super) fn task_prompt(&self, t: &Task) -> (String, Vec<String>) {
        if !t.runs_agent() {
            return (t.prompt.clone(), vec![]);
        }
        let mut parts = Vec::new();
        if let Some(text) = self.role_text(t) {
            parts.push(text);
        }
        parts.push(t.prompt.clone());
        let mut handed = Vec::new();
        let mode = t.handoff.unwrap_or_default();
        for dep in &t.depends {
            let Some(report) = self.tasks.iter().find(|r| r.id == *dep) else { continue };
            let text = render_handoff(&source(report), mode);
            if !text.is_empty() {
                parts.push(text.trim_end().to_string());
                handed.push(dep.clone());
            }
        }
        if let Some(decl) = self.state() {
            parts.push(render_for_task(decl, &t.id).trim_end().to_string());
        }
        (parts.join("\n\n---\n\n"), handed)
    }

    /// `[roles.NAME] prompt_file`'s text; else, for an agent without its own named agent of
    /// that name, nothing (the role is the agent's own: `--agent NAME` or `.claude/agents`).
    fn role_text(&self, t: &Task) -> Option<String> {
        let role = t.role.as_deref()?;
        let Some(file) = self.config.roles.get(role).and_then(|r| r.prompt_file.as_deref()) else {
            return swarm_agents::roles::role_file_text(&t.agent, role, self.workdir);
        };
        let base = self.config.path.as_deref().and_then(Path::parent).unwrap_or(self.workdir);
        // A small file the user wrote; read when the attempt starts so an edit between
        // attempts counts. A missing file is said in the prompt rather than failing the task.
        Some(
            std::fs::read_to_string(base.join(file))
                .unwrap_or_else(|e| format!("(role `{role}`: cannot read {file}: {e})")),
        )
    }

    /// The state doc (`[state] doc = PATH`), written where the agents read their rules.
    pub(super) fn files(&self) -> Vec<AgentFile> {
        let Some(decl) = self.state() else { return vec![] };
        let Some(path) = decl.doc.as_deref().filter(|p| !p.trim().is_empty()) else { return vec![] };
        vec![AgentFile { path: path.to_string(), text: render_doc(decl, &self.plan.namespace) }]
    }
}

/// What a dependency reported: its last completion report, else what git saw it change.
fn source(report: &TaskReport) -> HandoffSource {
    let last = report.attempts.iter().rev().find(|a| a.completion.is_some());
    let check_output = report.attempts.last().and_then(|a| a.check_output.clone());
    match last.and_then(|a| a.completion.as_ref()) {
        Some(c) => HandoffSource {
            task_id: report.id.clone(),
            summary: c.summary.clone(),
            files_changed: c.files_changed.clone(),
            follow_ups: c.follow_ups.clone(),
            blockers: c.blockers.clone(),
            state_keys: None,
            check_output,
        },
        None => HandoffSource {
            task_id: report.id.clone(),
            summary: "(no completion report)".into(),
            files_changed: report.files_changed.clone(),
            check_output,
            ..HandoffSource::default()
        },
    }
}
