//! What swarm knows about each agent CLI: its binary, npm package and pinned version, and how
//! to find it (PATH, then the project-local `.tools/node_modules/.bin` the test setup fills,
//! then the user's own, which `scripts/install-agents.sh --user` fills for an installed swarm).

use crate::adapter::Adapter;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use swarm_core::config::Config;
use swarm_core::plan::AgentKind;

#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct AgentInfo {
    pub name: &'static str,
    pub binary: &'static str,
    /// Package (npm; aider's is on PyPI) and the version verified to work headless
    /// (docs/contract.md §6), if pinned.
    pub package: Option<&'static str>,
    pub pinned: Option<&'static str>,
    #[serde(skip)]
    adapter: fn() -> Arc<dyn Adapter>,
}

/// The built-in agent CLIs: the one table of their names (with `exec`, see [`builtin_names`]),
/// from which the registry, `swarm agents`, `swarm doctor` and plan validation all read.
pub const CATALOG: [AgentInfo; 7] = [
    AgentInfo {
        name: "opencode",
        binary: "opencode",
        package: Some("opencode-ai"),
        pinned: Some("1.18.33"),
        adapter: || Arc::new(crate::OpencodeAdapter::opencode()),
    },
    AgentInfo {
        name: "kilo",
        binary: "kilo",
        package: Some("@kilocode/cli"),
        pinned: Some("7.7.7"),
        adapter: || Arc::new(crate::OpencodeAdapter::kilo()),
    },
    AgentInfo {
        name: "cline",
        binary: "cline",
        package: Some("cline"),
        pinned: Some("3.0.65"),
        adapter: || Arc::new(crate::ClineAdapter),
    },
    AgentInfo {
        name: "claude",
        binary: "claude",
        package: Some("@anthropic-ai/claude-code"),
        pinned: Some("2.1.332"),
        adapter: || Arc::new(crate::ClaudeAdapter),
    },
    AgentInfo {
        name: "codex",
        binary: "codex",
        package: Some("@openai/codex"),
        pinned: Some("0.171.0"),
        adapter: || Arc::new(crate::CodexAdapter),
    },
    AgentInfo {
        name: "gemini",
        binary: "gemini",
        package: Some("@google/gemini-cli"),
        pinned: Some("0.61.0"),
        adapter: || Arc::new(crate::GeminiAdapter),
    },
    AgentInfo {
        name: "aider",
        binary: "aider",
        package: Some("aider-chat"),
        pinned: Some("0.86.2"),
        adapter: || Arc::new(crate::AiderAdapter),
    },
];

impl AgentInfo {
    pub fn adapter(&self) -> Arc<dyn Adapter> {
        (self.adapter)()
    }
}

/// Every built-in agent name, in the order messages list them: the CLIs, then `exec`.
pub fn builtin_names() -> Vec<&'static str> {
    CATALOG.iter().map(|a| a.name).chain([AgentKind::EXEC]).collect()
}

/// Every agent name a plan may use with `config`: the built-in ones, then its custom agents.
pub fn agent_names(config: &Config) -> Vec<String> {
    builtin_names().into_iter().map(String::from).chain(config.custom_agents()).collect()
}

/// Directories searched after PATH: the project's own tool folder (npm's bin directory and
/// aider's venv), then the user's (`$XDG_DATA_HOME/swarm/tools`, by default
/// `~/.local/share/swarm/tools`).
pub fn local_bin_dirs(project_root: &Path) -> Vec<PathBuf> {
    let tools = |d: PathBuf| [d.join("node_modules/.bin"), d.join("aider-venv/bin")];
    let mut dirs = tools(project_root.join(".tools")).to_vec();
    dirs.push(project_root.join("node_modules/.bin"));
    dirs.extend(user_tools_dir().into_iter().flat_map(tools));
    dirs
}

/// Where `scripts/install-agents.sh --user` installs the agent CLIs.
pub fn user_tools_dir() -> Option<PathBuf> {
    let data =
        std::env::var_os("XDG_DATA_HOME").filter(|d| !d.is_empty()).map(PathBuf::from).or_else(|| {
            std::env::var_os("HOME").filter(|h| !h.is_empty()).map(|h| PathBuf::from(h).join(".local/share"))
        })?;
    Some(data.join("swarm/tools"))
}

/// The first executable named `binary` in PATH or `extra`.
pub fn locate(binary: &str, extra: &[PathBuf]) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(extra.iter().cloned())
        .map(|d| d.join(binary))
        .find(|p| p.metadata().is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0))
}

/// `binary --version`, first line, or why it could not be read (bounded by `timeout`).
pub fn version(binary: &Path, timeout: Duration) -> Result<String, String> {
    let mut child = Command::new(binary)
        .arg("--version")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())?;
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("`{} --version` did not answer within {timeout:?}", binary.display()));
            }
            Err(e) => return Err(e.to_string()),
        }
    }
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    let text =
        String::from_utf8_lossy(if out.stdout.is_empty() { &out.stderr } else { &out.stdout }).into_owned();
    let line = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("").trim().to_string();
    if out.status.success() {
        Ok(line)
    } else {
        Err(format!("`--version` failed: {line}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_built_in_name_has_its_adapter_and_exec_comes_last() {
        let registry = crate::Registry::from_config(&Config::default()).unwrap();
        let names = builtin_names();
        for name in &names {
            assert_eq!(registry.get(name).unwrap().name(), *name);
        }
        assert_eq!(names.last(), Some(&AgentKind::EXEC));
        assert_eq!(names.len(), CATALOG.len() + 1);
    }
}
