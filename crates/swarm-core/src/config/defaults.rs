//! What each `swarm.toml` key means when it is left out: every default of the config in one
//! place, used by the getters of `Config` and its sections (the field docs quote them).

use std::time::Duration;

/// `[run] grace`: SIGTERM to SIGKILL.
pub(super) const GRACE: Duration = Duration::from_secs(5);
// `[run] retry_backoff` and `retry_backoff_max` default to `Backoff::default()`'s.
/// `[run] check_timeout`.
pub(super) const CHECK_TIMEOUT: Duration = Duration::from_secs(600);
/// `[run] log_limit`, bytes: 32 MiB.
pub(super) const LOG_LIMIT: u64 = 32 * 1024 * 1024;
/// `[store] give_up_after`.
pub(super) const STORE_GIVE_UP_AFTER: Duration = Duration::from_secs(30);
/// `[worktree] max_file_size`, bytes: 50 MiB (where GitHub starts warning).
pub(super) const MAX_FILE_SIZE: u64 = 50 * 1024 * 1024;
/// `[worktree] setup_timeout`.
pub(super) const SETUP_TIMEOUT: Duration = Duration::from_secs(600);
/// `[hooks] timeout`.
pub(super) const HOOK_TIMEOUT: Duration = Duration::from_secs(30);
/// `[hooks] webhook_timeout`.
pub(super) const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(10);
/// `[hooks] webhook_retries`.
pub(super) const WEBHOOK_RETRIES: u32 = 3;
/// `[feedback] mirror`.
pub(super) const MIRROR: bool = true;
/// `[feedback] mirror_dir`, relative to the project root.
pub(super) const MIRROR_DIR: &str = "plans/agent-shared";
/// `[models] allow_paid`: the spend gate is closed.
pub(super) const ALLOW_PAID: bool = false;
/// `[models] max_wait`.
pub(super) const MAX_WAIT: Duration = Duration::from_secs(60);
/// `paid` of a model whose limits and provider leave it out: a model costs money.
pub(super) const PAID: bool = true;
