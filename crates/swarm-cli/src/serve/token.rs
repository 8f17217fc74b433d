//! The bearer token `swarm serve` requires on every bind: the one `--token-env VAR` names, or
//! else swarm's own in `.swarm/serve-token` (made once, mode 0600, then reused so MCP configs that
//! carry it keep working). Any local user, and any agent of any run, can reach a loopback port:
//! without the token it cannot start an `exec` task as the user serving.

use anyhow::{anyhow, Context};
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Where swarm keeps the token it made, under the project's `.swarm/`.
pub fn token_file(state_dir: &Path) -> PathBuf {
    state_dir.join("serve-token")
}

/// 32 random bytes from the kernel, as hex.
fn fresh() -> anyhow::Result<String> {
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .context("cannot read /dev/urandom for a token")?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// The token in `file`, made first when there is none. A file anyone else may read, or that is
/// not a regular file of ours, is refused rather than trusted.
pub fn own_token(file: &Path) -> anyhow::Result<String> {
    let nofollow = nix::fcntl::OFlag::O_NOFOLLOW.bits();
    match std::fs::OpenOptions::new().read(true).custom_flags(nofollow).open(file) {
        Ok(f) => {
            let meta = f.metadata()?;
            let mode = meta.permissions().mode();
            if !meta.is_file() || meta.uid() != nix::unistd::geteuid().as_raw() || mode & 0o077 != 0 {
                return Err(anyhow!(
                    "{} must be a regular file of yours that only you can read (chmod 600), or absent",
                    file.display()
                ));
            }
            let mut text = String::new();
            f.take(1024).read_to_string(&mut text)?;
            let token = text.trim().to_string();
            if token.len() < 32 {
                return Err(anyhow!("{} holds no token; delete it to get a new one", file.display()));
            }
            Ok(token)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let token = fresh()?;
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .custom_flags(nofollow)
                .open(file)
                .with_context(|| format!("cannot create {}", file.display()))?;
            f.write_all(format!("{token}\n").as_bytes())?;
            Ok(token)
        }
        Err(e) => Err(anyhow!("cannot read {}: {e}", file.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_made_once_private_and_reused() {
        let d = tempfile::tempdir().unwrap();
        let file = token_file(d.path());
        let first = own_token(&file).unwrap();
        assert_eq!(first.len(), 64);
        assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(own_token(&file).unwrap(), first);
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(own_token(&file).unwrap_err().to_string().contains("chmod 600"));
    }
}
