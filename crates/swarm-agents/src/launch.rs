//! What adapters share to build a launch: finding the agent's CLI, the attempt's private HOME
//! and directories, a provider's base URL in the form a CLI wants. (A provider's key reaches an
//! agent only through its environment, `Launch::env_from`: never in argv or a file.)

use crate::adapter::{AdapterError, AttemptSpec};

pub(crate) fn locate_binary(
    agent: &str,
    binary: &str,
    spec: &AttemptSpec<'_>,
) -> Result<String, AdapterError> {
    crate::catalog::locate(binary, &crate::catalog::local_bin_dirs(&spec.project_root))
        .map(|p| p.display().to_string())
        .ok_or_else(|| AdapterError::Invalid {
            agent: agent.into(),
            message: format!(
                "`{binary}` not found in PATH or {}/.tools/node_modules/.bin (install it, e.g. with scripts/install-agents.sh)",
                spec.project_root.display()
            ),
        })
}

/// HOME and XDG dirs under the attempt's private directory (created here).
pub(crate) fn isolated_home(
    agent: &str,
    spec: &AttemptSpec<'_>,
) -> Result<Vec<(String, String)>, AdapterError> {
    let base = spec.attempt_dir.join("agent-home");
    let mut env = Vec::new();
    for (var, sub) in [
        ("HOME", "home"),
        ("XDG_CONFIG_HOME", "config"),
        ("XDG_DATA_HOME", "data"),
        ("XDG_STATE_HOME", "state"),
        ("XDG_CACHE_HOME", "cache"),
    ] {
        let dir = base.join(sub);
        std::fs::create_dir_all(&dir).map_err(|e| AdapterError::Invalid {
            agent: agent.into(),
            message: format!("cannot create {}: {e}", dir.display()),
        })?;
        env.push((var.to_string(), dir.display().to_string()));
    }
    Ok(env)
}

/// A provider's base URL without a trailing `/v1`: Claude Code and Gemini CLI append their own
/// versioned paths (`/v1/messages`, `/v1beta/models/…`) to the server's root.
pub(crate) fn api_root(url: &str) -> String {
    let url = url.trim_end_matches('/');
    url.strip_suffix("/v1").unwrap_or(url).to_string()
}

/// Whether swarm runs as root (CLIs that refuse to skip permissions as root need telling that
/// the attempt is sandboxed).
pub(crate) fn running_as_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// Fails unless `name` can name an environment variable.
pub(crate) fn check_env_name(agent: &str, name: &str) -> Result<(), AdapterError> {
    if valid_env_name(name) {
        return Ok(());
    }
    Err(AdapterError::Invalid {
        agent: agent.into(),
        message: format!("`{name}` is not a valid environment variable name"),
    })
}

/// Writes `text` to `path`, as the adapter's error when it cannot.
pub(crate) fn write_file(agent: &str, path: &std::path::Path, text: &str) -> Result<(), AdapterError> {
    std::fs::write(path, text).map_err(|e| AdapterError::Invalid {
        agent: agent.into(),
        message: format!("cannot write {}: {e}", path.display()),
    })
}

/// Whether `name` can name an environment variable (and so be put in a shell script as is).
pub(crate) fn valid_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

pub(crate) fn make_dir(agent: &str, dir: &std::path::Path) -> Result<String, AdapterError> {
    std::fs::create_dir_all(dir).map_err(|e| AdapterError::Invalid {
        agent: agent.into(),
        message: format!("cannot create {}: {e}", dir.display()),
    })?;
    Ok(dir.display().to_string())
}
