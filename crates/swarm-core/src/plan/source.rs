//! A plan file read as untrusted input: whoever names it (an MCP client, an HTTP caller, an agent
//! running `swarm plan check`) may point at a link, a FIFO nobody writes, `/dev/zero` or a huge
//! file. Only a regular file of bounded size is read, opened without following a link in its
//! last component and without blocking.

use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Largest plan swarm reads (a plan of a thousand long tasks is well under it).
pub const PLAN_LIMIT: u64 = 4 * 1024 * 1024;

/// Why a plan file was not read.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("it is a symbolic link; swarm reads plans only from regular files")]
    Symlink,
    #[error("it is not a regular file but a {0}")]
    NotRegular(&'static str),
    #[error("it is over the {limit}-byte limit for a plan ({size} bytes)")]
    TooLarge { size: u64, limit: u64 },
    #[error("{0}")]
    Io(#[source] std::io::Error),
}

fn kind_of(t: std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if t.is_dir() {
        "directory"
    } else if t.is_fifo() {
        "FIFO"
    } else if t.is_socket() {
        "socket"
    } else if t.is_char_device() || t.is_block_device() {
        "device"
    } else {
        "special file"
    }
}

/// The bytes of `path` when it is a regular file of at most `limit` bytes.
pub fn read(path: &Path, limit: u64) -> Result<Vec<u8>, SourceError> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP) => SourceError::Symlink,
            _ => SourceError::Io(e),
        })?;
    let meta = file.metadata().map_err(SourceError::Io)?;
    if !meta.file_type().is_file() {
        return Err(SourceError::NotRegular(kind_of(meta.file_type())));
    }
    if meta.len() > limit {
        return Err(SourceError::TooLarge { size: meta.len(), limit });
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    // A file that grows while it is read (or says it is empty, like /proc files) is still
    // read only up to the limit.
    file.take(limit + 1).read_to_end(&mut bytes).map_err(SourceError::Io)?;
    if bytes.len() as u64 > limit {
        return Err(SourceError::TooLarge { size: bytes.len() as u64, limit });
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_regular_bounded_files_are_read_and_nothing_blocks() {
        let d = tempfile::tempdir().unwrap();
        let plan = d.path().join("plan.md");
        std::fs::write(&plan, "## a: A\n").unwrap();
        assert_eq!(read(&plan, PLAN_LIMIT).unwrap(), b"## a: A\n");
        let link = d.path().join("link.md");
        std::os::unix::fs::symlink("/dev/zero", &link).unwrap();
        assert!(matches!(read(&link, PLAN_LIMIT), Err(SourceError::Symlink)));
        let fifo = d.path().join("fifo.md");
        assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
        // Nobody writes the FIFO: a blocking open would never return.
        assert!(matches!(read(&fifo, PLAN_LIMIT), Err(SourceError::NotRegular("FIFO"))));
        assert!(matches!(read(Path::new("/dev/zero"), PLAN_LIMIT), Err(SourceError::NotRegular("device"))));
        assert!(matches!(read(d.path(), PLAN_LIMIT), Err(SourceError::NotRegular("directory"))));
        assert!(matches!(read(&plan, 3), Err(SourceError::TooLarge { size: 8, limit: 3 })));
    }
}
