//! `agent: exec`: the task's `command` run with `sh -c`, the prompt on stdin (whole) and in
//! `SWARM_PROMPT` (at most [`ENV_PROMPT_LIMIT`](crate::adapter::ENV_PROMPT_LIMIT) bytes).

use crate::adapter::{Adapter, AdapterError, AttemptSpec, Launch};
use swarm_core::plan::AgentKind;

pub struct ExecAdapter;

impl Adapter for ExecAdapter {
    fn name(&self) -> &str {
        AgentKind::EXEC
    }

    fn launch(&self, spec: &AttemptSpec<'_>) -> Result<Launch, AdapterError> {
        let command = spec.task.command.as_deref().ok_or_else(|| AdapterError::Invalid {
            agent: AgentKind::EXEC.into(),
            message: format!("task `{}` has no `command`", spec.task.id),
        })?;
        let env = vec![("SWARM_PROMPT".into(), crate::adapter::env_prompt(spec.prompt))];
        Ok(Launch::prompt_on_stdin(spec, "/bin/sh".into(), vec!["-c".into(), command.into()], env))
    }
}
