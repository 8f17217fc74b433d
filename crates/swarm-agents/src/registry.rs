//! Which adapter serves which agent name.

use crate::adapter::{Adapter, AdapterError};
use crate::{CustomAdapter, ExecAdapter};
use std::collections::HashMap;
use std::sync::Arc;
use swarm_core::config::Config;

pub struct Registry {
    adapters: HashMap<String, Arc<dyn Adapter>>,
}

impl Registry {
    pub fn from_config(config: &Config) -> Result<Registry, AdapterError> {
        let mut adapters: HashMap<String, Arc<dyn Adapter>> = HashMap::new();
        adapters.insert("exec".into(), Arc::new(ExecAdapter));
        adapters.insert("opencode".into(), Arc::new(crate::OpencodeAdapter::opencode()));
        adapters.insert("kilo".into(), Arc::new(crate::OpencodeAdapter::kilo()));
        adapters.insert("cline".into(), Arc::new(crate::ClineAdapter));
        adapters.insert("claude".into(), Arc::new(crate::ClaudeAdapter));
        adapters.insert("codex".into(), Arc::new(crate::CodexAdapter));
        adapters.insert("gemini".into(), Arc::new(crate::GeminiAdapter));
        adapters.insert("aider".into(), Arc::new(crate::AiderAdapter));
        for (name, agent) in &config.agents {
            if let Some(template) = &agent.command {
                let adapter = CustomAdapter::new(name, template, agent.env.clone())?
                    .with_gateway(agent.gateway.unwrap_or(true));
                adapters.insert(name.clone(), Arc::new(adapter));
            }
        }
        Ok(Registry { adapters })
    }

    pub fn get(&self, agent: &str) -> Result<Arc<dyn Adapter>, AdapterError> {
        self.adapters.get(agent).cloned().ok_or_else(|| AdapterError::Unsupported(agent.into()))
    }
}
