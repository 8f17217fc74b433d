//! What adapters share to build a launch: finding the agent's CLI, the attempt's private HOME
//! and directories, and a provider's key passed on through the environment (never in argv or a
//! file).

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

/// Runs `program args…` with `target` set to the value of `source` in the environment, through
/// `/bin/sh` so the key itself never appears in the launch (nor in any file). Without a rename
/// (`target == source`) the program is run directly: it inherits the variable.
pub(crate) fn with_key_from_env(
    agent: &str,
    program: String,
    args: Vec<String>,
    target: &str,
    source: &str,
) -> Result<(String, Vec<String>), AdapterError> {
    if target == source {
        return Ok((program, args));
    }
    for name in [target, source] {
        if !valid_env_name(name) {
            return Err(AdapterError::Invalid {
                agent: agent.into(),
                message: format!("`{name}` is not a valid environment variable name"),
            });
        }
    }
    let script = format!("{target}=\"${{{source}}}\"; export {target}; exec \"$0\" \"$@\"");
    let mut all = vec!["-c".to_string(), script, program];
    all.extend(args);
    Ok(("/bin/sh".into(), all))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_wrapper_never_holds_the_key() {
        let (p, a) =
            with_key_from_env("x", "/bin/claude".into(), vec!["-p".into()], "ANTHROPIC_API_KEY", "MY_KEY")
                .unwrap();
        assert_eq!(p, "/bin/sh");
        assert_eq!(a[1], "ANTHROPIC_API_KEY=\"${MY_KEY}\"; export ANTHROPIC_API_KEY; exec \"$0\" \"$@\"");
        assert_eq!(&a[2..], ["/bin/claude", "-p"]);
        let (p, _) = with_key_from_env("x", "/bin/claude".into(), vec![], "A", "A").unwrap();
        assert_eq!(p, "/bin/claude");
        assert!(with_key_from_env("x", "c".into(), vec![], "A", "B; rm").is_err());
        // The wrapper really exports the variable.
        let (p, a) = with_key_from_env(
            "x",
            "/bin/sh".into(),
            vec!["-c".into(), "echo $DST".into()],
            "DST",
            "SRC_KEY_T",
        )
        .unwrap();
        let o = std::process::Command::new(p).args(a).env("SRC_KEY_T", "v4lue").output().unwrap();
        assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "v4lue");
    }
}
