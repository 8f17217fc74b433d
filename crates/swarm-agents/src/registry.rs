//! Which adapter serves which agent name.

use crate::adapter::{Adapter, AdapterError};
use crate::catalog::CATALOG;
use crate::{CustomAdapter, ExecAdapter};
use std::collections::HashMap;
use std::sync::Arc;
use swarm_core::config::Config;
use swarm_core::plan::AgentKind;

pub struct Registry {
    adapters: HashMap<String, Arc<dyn Adapter>>,
}

impl Registry {
    pub fn from_config(config: &Config) -> Result<Registry, AdapterError> {
        let mut adapters: HashMap<String, Arc<dyn Adapter>> = HashMap::new();
        adapters.insert(AgentKind::EXEC.into(), Arc::new(ExecAdapter));
        for info in &CATALOG {
            adapters.insert(info.name.into(), info.adapter());
        }
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
