//! Custom agents from `swarm.toml`: a command template whose `{prompt}`, `{model}` and
//! `{workdir}` placeholders are substituted inside each argument. No shell is involved, so a
//! prompt can never inject commands.

use crate::adapter::{Adapter, AdapterError, AttemptSpec, Launch};
use std::collections::BTreeMap;

pub struct CustomAdapter {
    name: String,
    argv: Vec<String>,
    env: BTreeMap<String, String>,
}

impl CustomAdapter {
    pub fn new(
        name: &str,
        template: &str,
        env: BTreeMap<String, String>,
    ) -> Result<CustomAdapter, AdapterError> {
        let argv = shlex::split(template).filter(|a| !a.is_empty()).ok_or_else(|| AdapterError::Invalid {
            agent: name.into(),
            message: format!("cannot split command template `{template}` into words (unbalanced quotes?)"),
        })?;
        Ok(CustomAdapter { name: name.into(), argv, env })
    }
}

impl Adapter for CustomAdapter {
    fn name(&self) -> &str {
        &self.name
    }

    fn launch(&self, spec: &AttemptSpec<'_>) -> Result<Launch, AdapterError> {
        let workdir = spec.workdir.display().to_string();
        let model = spec.model.unwrap_or("");
        let fill = |arg: &str| {
            arg.replace("{prompt}", spec.prompt).replace("{model}", model).replace("{workdir}", &workdir)
        };
        let mut words = self.argv.iter().map(|a| fill(a));
        let program = words.next().expect("template checked non-empty");
        Ok(Launch {
            program,
            args: words.collect(),
            env: self
                .env
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .chain([("SWARM_PROMPT".into(), spec.prompt.into())])
                .collect(),
            cwd: spec.workdir.clone(),
            stdin: None,
            setup: vec![],
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use swarm_core::plan::{Task, Workdir};

    pub(crate) fn task(id: &str, agent: &str) -> Task {
        Task {
            id: id.into(),
            title: String::new(),
            agent: agent.into(),
            model: None,
            tier: None,
            depends: vec![],
            timeout: None,
            stall: None,
            retries: 0,
            check: None,
            command: None,
            paths: vec![],
            workdir: Workdir::Shared,
            prompt: String::new(),
        }
    }

    #[test]
    fn placeholders_fill_whole_arguments_without_a_shell() {
        let task = task("t", "mine");
        let a = CustomAdapter::new("mine", "my-cli --model {model} -C '{workdir}' {prompt}", BTreeMap::new())
            .unwrap();
        let spec = AttemptSpec {
            run_id: "r",
            task: &task,
            attempt: 1,
            prompt: "do it; rm -rf /",
            model: Some("local/ok"),
            workdir: "/w d".into(),
            provider: None,
            attempt_dir: "/tmp/a".into(),
            project_root: "/tmp".into(),
        };
        let l = a.launch(&spec).unwrap();
        assert_eq!(l.program, "my-cli");
        assert_eq!(l.args, vec!["--model", "local/ok", "-C", "/w d", "do it; rm -rf /"]);
    }
}
