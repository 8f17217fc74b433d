//! Keys and passwords in swarm's own environment, kept from the agents it runs. Agents run as
//! the same user, so without care they could read `/proc/<swarm pid>/environ` (the environment
//! swarm started with: every provider key) or swarm's memory. [`seal`] blanks the values of
//! secret-named variables in that block, keeps them only in swarm's own memory (its environment
//! copy, which agents get only as their route needs), and makes the process non-dumpable, so
//! other processes of the user can neither read its `/proc` files nor attach to it.
//!
//! What remains: a process running as root (or with `CAP_SYS_PTRACE`) reads any memory; an agent
//! that must call a provider itself holds that provider's key. Run agents as another user, or in
//! a sandbox, to keep them from those.

use std::io::{Read, Seek, SeekFrom, Write};

/// Variables swarm seals besides the secret-named ones: a store address may hold a password.
const ALSO: [&str; 2] = ["SWARM_STORE", "SWARM_STORE_PASSWORD"];

/// Why sealing did not (fully) happen.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("cannot blank the environment in /proc/self: {0}")]
    Proc(#[source] std::io::Error),
    #[error("/proc/self/stat has no environment bounds")]
    Bounds,
    #[error("cannot make the process non-dumpable: {0}")]
    Dumpable(#[source] nix::Error),
}

/// Whether a variable's value is a secret, by its name.
pub fn is_secret_var(name: &str) -> bool {
    ALSO.contains(&name) || swarm_core::secrets::is_secret_name(name)
}

/// The start and end of the environment block in this process's memory (`/proc/self/stat`
/// fields 50 and 51; the command name before them may hold spaces and parentheses).
fn env_bounds() -> Result<(u64, u64), SealError> {
    let stat = std::fs::read_to_string("/proc/self/stat").map_err(SealError::Proc)?;
    let after = &stat[stat.rfind(')').ok_or(SealError::Bounds)? + 1..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    let field = |n: usize| fields.get(n - 3).and_then(|f| f.parse::<u64>().ok());
    match (field(50), field(51)) {
        (Some(start), Some(end)) if start < end => Ok((start, end)),
        _ => Err(SealError::Bounds),
    }
}

/// Blanks the values of secret-named variables in the environment block the kernel shows as
/// `/proc/<pid>/environ`, keeps them in swarm's environment (a copy in its own memory), and
/// makes the process non-dumpable. Returns the names sealed. Call it first thing in `main`,
/// before any thread starts: it changes the environment.
pub fn seal() -> Result<Vec<String>, SealError> {
    let (start, end) = env_bounds()?;
    let mut mem =
        std::fs::OpenOptions::new().read(true).write(true).open("/proc/self/mem").map_err(SealError::Proc)?;
    let mut block = vec![0u8; (end - start) as usize];
    mem.seek(SeekFrom::Start(start)).and_then(|_| mem.read_exact(&mut block)).map_err(SealError::Proc)?;
    let mut sealed = Vec::new();
    let mut at = 0;
    for entry in block.split(|&b| b == 0) {
        let here = at;
        at += entry.len() + 1;
        let Some(eq) = entry.iter().position(|&b| b == b'=') else { continue };
        let Ok(name) = std::str::from_utf8(&entry[..eq]) else { continue };
        let Some(value) = std::env::var_os(name).filter(|_| is_secret_var(name) && eq + 1 < entry.len())
        else {
            continue;
        };
        let blank = vec![b'*'; entry.len() - eq - 1];
        mem.seek(SeekFrom::Start(start + (here + eq + 1) as u64))
            .and_then(|_| mem.write_all(&blank))
            .map_err(SealError::Proc)?;
        // The environment pointed into the block just blanked: a fresh copy keeps the value for
        // swarm itself (the gateway, the agents whose route needs it).
        std::env::set_var(name, value);
        sealed.push(name.to_string());
    }
    nix::sys::prctl::set_dumpable(false).map_err(SealError::Dumpable)?;
    Ok(sealed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_names_are_recognised() {
        for name in
            ["OPENAI_API_KEY", "GEMINI_API_KEY", "GITHUB_TOKEN", "SWARM_STORE_PASSWORD", "SWARM_STORE"]
        {
            assert!(is_secret_var(name), "{name}");
        }
        for name in ["PATH", "HOME", "SWARM_RUN_ID", "MAX_TOKENS"] {
            assert!(!is_secret_var(name), "{name}");
        }
    }

    /// Sealing changes the whole process: it runs in a child test process of its own.
    #[test]
    fn sealing_blanks_proc_environ_keeps_the_value_and_makes_the_process_non_dumpable() {
        const KEY: &str = "sk-sealed-test-0123456789";
        if std::env::var_os("SEAL_CHILD").is_some() {
            let sealed = seal().unwrap();
            assert!(sealed.contains(&"SEAL_TEST_API_KEY".to_string()), "{sealed:?}");
            let environ = std::fs::read("/proc/self/environ").unwrap();
            let text = String::from_utf8_lossy(&environ);
            assert!(!text.contains(KEY) && text.contains("SEAL_TEST_API_KEY=*****"), "{text}");
            assert!(text.contains("SEAL_CHILD=1"), "other variables stay");
            assert_eq!(std::env::var("SEAL_TEST_API_KEY").unwrap(), KEY);
            assert!(!nix::sys::prctl::get_dumpable().unwrap());
            return;
        }
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "os::secrets::tests::sealing_blanks_proc_environ_keeps_the_value_and_makes_the_process_non_dumpable", "--nocapture", "--test-threads=1"])
            .env("SEAL_CHILD", "1")
            .env("SEAL_TEST_API_KEY", KEY)
            .output()
            .unwrap();
        let all = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success() && all.contains("1 passed"), "{all}");
    }
}
