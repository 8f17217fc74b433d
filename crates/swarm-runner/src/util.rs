//! The few helpers faces share with the engine: where a run's files are, who this host is,
//! whether a recorded owner still lives, a file written whole, a checkout's state.

pub use crate::dispatcher::mirror::write_atomic;
pub use crate::os::git::{is_dirty, repo_of};
pub use crate::os::net::is_loopback;
pub use crate::os::paths::RunDir;
pub use crate::os::process::{group_alive, hostname, owner_status};
