//! Files read as untrusted input: whoever names them (an MCP client or HTTP caller naming a plan,
//! an agent writing its completion report) may point at a link, a FIFO nobody writes,
//! `/dev/zero` or a huge file. Only a regular file of bounded size is read, opened without
//! following a link in its last component and without blocking.

use std::io::Read;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;

/// Why a file was not read. The messages name no path: callers say which file.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("it is a symbolic link")]
    Symlink,
    #[error("it is not a regular file but a {0}")]
    NotRegular(&'static str),
    #[error("it has {0} hard links")]
    HardLinked(u64),
    #[error("it is over the {limit}-byte limit ({size} bytes)")]
    TooLarge { size: u64, limit: u64 },
    #[error("{0}")]
    Io(#[source] std::io::Error),
}

/// Which files [`read`] takes besides regular, bounded, unlinked ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Links {
    /// Any number of hard links (a file the user wrote).
    Any,
    /// One hard link only: a file an agent wrote itself, not a second name of another file.
    Single,
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

/// The bytes of `path` when it is a regular file of at most `limit` bytes (and, with
/// [`Links::Single`], one link).
pub fn read(path: &Path, limit: u64, links: Links) -> Result<Vec<u8>, ReadError> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP) => ReadError::Symlink,
            _ => ReadError::Io(e),
        })?;
    let meta = file.metadata().map_err(ReadError::Io)?;
    if !meta.file_type().is_file() {
        return Err(ReadError::NotRegular(kind_of(meta.file_type())));
    }
    if links == Links::Single && meta.nlink() > 1 {
        return Err(ReadError::HardLinked(meta.nlink()));
    }
    if meta.len() > limit {
        return Err(ReadError::TooLarge { size: meta.len(), limit });
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    // A file that grows while it is read (or says it is empty, like /proc files) is still
    // read only up to the limit.
    file.take(limit + 1).read_to_end(&mut bytes).map_err(ReadError::Io)?;
    if bytes.len() as u64 > limit {
        return Err(ReadError::TooLarge { size: bytes.len() as u64, limit });
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
        assert_eq!(read(&plan, 100, Links::Any).unwrap(), b"## a: A\n");
        let link = d.path().join("link.md");
        std::os::unix::fs::symlink("/dev/zero", &link).unwrap();
        assert!(matches!(read(&link, 100, Links::Any), Err(ReadError::Symlink)));
        let fifo = d.path().join("fifo.md");
        assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
        // Nobody writes the FIFO: a blocking open would never return.
        assert!(matches!(read(&fifo, 100, Links::Any), Err(ReadError::NotRegular("FIFO"))));
        assert!(matches!(
            read(Path::new("/dev/zero"), 100, Links::Any),
            Err(ReadError::NotRegular("device"))
        ));
        assert!(matches!(read(d.path(), 100, Links::Any), Err(ReadError::NotRegular("directory"))));
        assert!(matches!(read(&plan, 3, Links::Any), Err(ReadError::TooLarge { size: 8, limit: 3 })));
        let second = d.path().join("second.md");
        std::fs::hard_link(&plan, &second).unwrap();
        assert!(read(&second, 100, Links::Any).is_ok());
        assert!(matches!(read(&second, 100, Links::Single), Err(ReadError::HardLinked(2))));
    }
}
