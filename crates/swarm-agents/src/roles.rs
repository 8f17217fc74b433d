//! Roles (`role: NAME`, docs/contract.md §12): the agent CLIs' own named agents a project defines, and
//! how a role reaches an attempt — `--agent NAME` for opencode, kilo and Claude Code (its
//! `.claude/agents/NAME.md`) — or, for the others and `[roles.NAME] prompt_file`, text put before
//! the task prompt.

use std::path::Path;
use swarm_core::config::Config;

/// Folders holding an agent CLI's own named agents (`NAME.md`), by the agent that reads them.
pub const NATIVE_ROLE_DIRS: [(&str, &str); 5] = [
    ("opencode", ".opencode/agent"),
    ("opencode", ".opencode/agents"),
    ("kilo", ".kilocode/agent"),
    ("kilo", ".kilo/agent"),
    ("claude", ".claude/agents"),
];

/// Agents that take a named agent on their command line (`--agent NAME`).
pub fn takes_agent_flag(agent: &str) -> bool {
    matches!(agent, "opencode" | "kilo" | "claude")
}

/// Every role a plan of this project may name: `[roles.*]`, then the named agents under `root`.
pub fn role_names(config: &Config, root: &Path) -> Vec<String> {
    let mut names: Vec<String> = config.roles.keys().cloned().collect();
    for (_, dir) in NATIVE_ROLE_DIRS {
        let Ok(entries) = std::fs::read_dir(root.join(dir)) else { continue };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "md") {
                if let Some(stem) = path.file_stem().and_then(|s| s.to_str()) {
                    names.push(stem.to_string());
                }
            }
        }
    }
    names.sort();
    names.dedup();
    names
}

/// The text put before the prompt of a task with `role` done by `agent`, when its CLI does not
/// apply the role itself: the first `NAME.md` of the agents' folders under `root`. `None`
/// when the CLI takes the role as its own named agent (`--agent`) or no folder defines it.
pub fn role_file_text(agent: &str, role: &str, root: &Path) -> Option<String> {
    if takes_agent_flag(agent) && native_role(agent, role, root) {
        return None;
    }
    NATIVE_ROLE_DIRS
        .iter()
        .find_map(|(_, dir)| std::fs::read_to_string(root.join(dir).join(format!("{role}.md"))).ok())
}

/// Whether `agent` has its own named agent `role` under `root` (so the CLI applies it).
pub fn native_role(agent: &str, role: &str, root: &Path) -> bool {
    NATIVE_ROLE_DIRS
        .iter()
        .filter(|(a, _)| *a == agent)
        .any(|(_, dir)| root.join(dir).join(format!("{role}.md")).is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_come_from_config_and_the_agents_folders() {
        let dir = std::env::temp_dir().join(format!("swarm-roles-{}", std::process::id()));
        std::fs::create_dir_all(dir.join(".opencode/agent")).unwrap();
        std::fs::create_dir_all(dir.join(".claude/agents")).unwrap();
        std::fs::write(dir.join(".opencode/agent/reviewer.md"), "x").unwrap();
        std::fs::write(dir.join(".claude/agents/writer.md"), "x").unwrap();
        let mut config = Config::default();
        config.roles.insert("researcher".into(), Default::default());
        assert_eq!(role_names(&config, &dir), ["researcher", "reviewer", "writer"]);
        assert!(native_role("opencode", "reviewer", &dir));
        assert!(!native_role("kilo", "reviewer", &dir));
        assert!(native_role("claude", "writer", &dir));
        assert_eq!(role_file_text("opencode", "reviewer", &dir), None, "opencode takes --agent");
        assert_eq!(role_file_text("cline", "reviewer", &dir).as_deref(), Some("x"));
        assert_eq!(role_file_text("claude", "writer", &dir), None, "Claude Code takes --agent");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
