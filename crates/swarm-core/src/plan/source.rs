//! A plan file read as untrusted input: whoever names it (an MCP client, an HTTP caller, an agent
//! running `swarm plan check`) may point at a link, a FIFO nobody writes, `/dev/zero` or a huge
//! file. Only a regular file of bounded size is read, opened without following a link in its
//! last component and without blocking.

use crate::untrusted::{self, Links, ReadError};
use std::path::Path;

/// Largest plan swarm reads (a plan of a thousand long tasks is well under it).
pub const PLAN_LIMIT: u64 = 4 * 1024 * 1024;

/// The bytes of plan file `path` when it is a regular file of at most [`PLAN_LIMIT`] bytes; `Err`
/// says why not, in a sentence for the plan's diagnostics.
pub fn read(path: &Path) -> Result<Vec<u8>, String> {
    untrusted::read(path, PLAN_LIMIT, Links::Any).map_err(|e| match e {
        ReadError::Symlink => "it is a symbolic link; swarm reads plans only from regular files".into(),
        ReadError::TooLarge { size, limit } => {
            format!("it is over the {limit}-byte limit for a plan ({size} bytes)")
        }
        e => e.to_string(),
    })
}
