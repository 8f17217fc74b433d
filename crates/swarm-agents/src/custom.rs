//! Custom agents from `swarm.toml`: a command template whose `{prompt}`, `{prompt_file}` (a file
//! holding the prompt), `{model}` and `{workdir}` placeholders are substituted inside each
//! argument; a template with neither prompt placeholder gets the prompt on stdin. No shell is
//! involved, so a prompt can never inject commands.

use crate::adapter::{Adapter, AdapterError, AttemptSpec, Launch};
use std::collections::BTreeMap;

pub struct CustomAdapter {
    name: String,
    /// Whether it reads `SWARM_GATEWAY_URL`/`SWARM_GATEWAY_TOKEN` (`[agents.NAME] gateway`).
    gateway: bool,
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
        Ok(CustomAdapter { name: name.into(), gateway: true, argv, env })
    }

    /// `[agents.NAME] gateway = false`: the agent cannot use swarm's model gateway (it has its
    /// own account); it falls back to the next model per attempt instead.
    pub fn with_gateway(mut self, gateway: bool) -> CustomAdapter {
        self.gateway = gateway;
        self
    }
}

impl Adapter for CustomAdapter {
    fn name(&self) -> &str {
        &self.name
    }

    fn speaks_gateway(&self) -> bool {
        self.gateway
    }

    fn launch(&self, spec: &AttemptSpec<'_>) -> Result<Launch, AdapterError> {
        let workdir = spec.workdir.display().to_string();
        let model = spec.model.unwrap_or("");
        let uses = |p: &str| self.argv.iter().any(|a| a.contains(p));
        let prompt_file = if uses("{prompt_file}") {
            let path = spec.attempt_dir.join("prompt.md");
            std::fs::create_dir_all(&spec.attempt_dir)
                .and_then(|()| std::fs::write(&path, spec.prompt))
                .map_err(|e| AdapterError::Invalid {
                    agent: self.name.clone(),
                    message: format!("cannot write {}: {e}", path.display()),
                })?;
            path.display().to_string()
        } else {
            String::new()
        };
        let fill = |arg: &str| {
            arg.replace("{prompt_file}", &prompt_file)
                .replace("{prompt}", spec.prompt)
                .replace("{model}", model)
                .replace("{workdir}", &workdir)
        };
        let mut words = self.argv.iter().map(|a| fill(a));
        let program = words.next().expect("template checked non-empty");
        // Without a prompt placeholder the prompt goes on stdin.
        let stdin = (!uses("{prompt}") && !uses("{prompt_file}")).then(|| spec.prompt.to_string());
        Ok(Launch {
            program,
            args: words.collect(),
            env: self
                .env
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .chain([("SWARM_PROMPT".into(), crate::adapter::env_prompt(spec.prompt))])
                .collect(),
            cwd: spec.workdir.clone(),
            stdin,
            ..Default::default()
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
            workdir: Some(Workdir::Shared),
            role: None,
            handoff: None,
            on_conflict: None,
            labels: Default::default(),
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
            completion_file: None,
        };
        let l = a.launch(&spec).unwrap();
        assert_eq!(l.program, "my-cli");
        assert_eq!(l.args, vec!["--model", "local/ok", "-C", "/w d", "do it; rm -rf /"]);
        assert_eq!(l.stdin, None, "the prompt is an argument already");
    }

    #[test]
    fn the_prompt_goes_to_a_file_or_stdin_when_the_template_says_so() {
        let task = task("t", "mine");
        let dir = std::env::temp_dir().join(format!("swarm-custom-{}", std::process::id()));
        let spec = AttemptSpec {
            run_id: "r",
            task: &task,
            attempt: 1,
            prompt: "say \"hi\" $X",
            model: None,
            workdir: "/w".into(),
            provider: None,
            attempt_dir: dir.clone(),
            project_root: "/tmp".into(),
            completion_file: None,
        };
        let a = CustomAdapter::new("mine", "my-cli --message-file {prompt_file}", BTreeMap::new()).unwrap();
        let l = a.launch(&spec).unwrap();
        let file = dir.join("prompt.md");
        assert_eq!(l.args, vec!["--message-file".to_string(), file.display().to_string()]);
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "say \"hi\" $X");
        assert_eq!(l.stdin, None);
        let l = CustomAdapter::new("mine", "my-cli --yes", BTreeMap::new()).unwrap().launch(&spec).unwrap();
        assert_eq!(l.stdin.as_deref(), Some("say \"hi\" $X"));
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn swarm_prompt_is_bounded_and_says_where_the_rest_is() {
        let long = "é".repeat(40 * 1024);
        let env = crate::adapter::env_prompt(&long);
        assert!(env.len() <= crate::adapter::ENV_PROMPT_LIMIT, "{}", env.len());
        assert!(env.ends_with("bytes in all; the whole prompt is on stdin]"), "{}", &env[env.len() - 80..]);
        assert_eq!(crate::adapter::env_prompt("short"), "short");
    }
}
