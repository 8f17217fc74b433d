//! What can go wrong in the engine, with a kind every face maps the same way: to the contract's
//! exit codes (CLI) and to HTTP statuses (the API, MCP tool errors). No face reads message text.

use swarm_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// Bad input: a request that cannot be carried out as given.
    #[error("{0}")]
    Invalid(String),
    /// No such run, task or attempt.
    #[error("{0}")]
    NotFound(String),
    #[error("run {run_id} is still driven by swarm (pid {pid} on {host}); cancel it or wait for it to end")]
    StillDriven { run_id: String, pid: u32, host: String },
    #[error(
        "run {run_id} was taken over by another swarm process (lease {holder}) while this one was \
         getting ready to resume it; nothing was changed"
    )]
    TakenOver { run_id: String, holder: String },
    /// Git refused what the run needs (its integration branch, its worktree).
    #[error("{what}: {source}")]
    Git {
        what: String,
        #[source]
        source: crate::os::git::GitError,
    },
    /// The model gateway could not start.
    #[error("cannot start the model gateway: {0}")]
    Gateway(#[source] std::io::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A shared-state write its declaration refused (docs/contract.md §12); recorded in the feed.
    #[error(transparent)]
    Refused(swarm_core::team::Refusal),
}

/// How a face treats an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The request or configuration is wrong: exit 2, HTTP 400.
    Invalid,
    /// Nothing by that name: exit 2, HTTP 404.
    NotFound,
    /// Someone else got there first (a run still driven, a lost compare-and-set): exit 2 for a
    /// run, 1 for a version conflict (docs/contract.md §12); HTTP 409.
    Conflict { exit: u8 },
    /// The store or the host failed: exit 1, HTTP 500 (503 when the store is unreachable).
    Failed { unavailable: bool },
    /// Not the caller's to do (a key another task owns): exit 1, HTTP 403.
    Forbidden,
}

impl ErrorKind {
    pub fn exit_code(self) -> i32 {
        match self {
            ErrorKind::Invalid | ErrorKind::NotFound => 2,
            ErrorKind::Conflict { exit } => i32::from(exit),
            ErrorKind::Failed { unavailable: true } => 2,
            ErrorKind::Failed { unavailable: false } | ErrorKind::Forbidden => 1,
        }
    }

    pub fn http_status(self) -> u16 {
        match self {
            ErrorKind::Invalid => 400,
            ErrorKind::NotFound => 404,
            ErrorKind::Conflict { .. } => 409,
            ErrorKind::Failed { unavailable: true } => 503,
            ErrorKind::Failed { unavailable: false } => 500,
            ErrorKind::Forbidden => 403,
        }
    }

    /// The kind of a store error. A store a user must fix (unreachable, missing, unusable, a bad
    /// address or credentials) is their input: exit 2, as the contract has it.
    pub fn of_store(e: &StoreError) -> ErrorKind {
        match e {
            StoreError::NoSuchRun(_) => ErrorKind::NotFound,
            StoreError::VersionConflict { .. } => ErrorKind::Conflict { exit: 1 },
            StoreError::Backend { .. } | StoreError::Corrupt { .. } => {
                ErrorKind::Failed { unavailable: false }
            }
            StoreError::Unreachable { .. } => ErrorKind::Failed { unavailable: true },
            _ => ErrorKind::Invalid,
        }
    }
}

impl EngineError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            EngineError::Invalid(_) => ErrorKind::Invalid,
            EngineError::NotFound(_) => ErrorKind::NotFound,
            EngineError::StillDriven { .. } | EngineError::TakenOver { .. } => {
                ErrorKind::Conflict { exit: 2 }
            }
            // Exit 2 as before: what stands in the way is the user's repository or host setup.
            EngineError::Git { .. } | EngineError::Gateway(_) => ErrorKind::Invalid,
            EngineError::Store(e) => ErrorKind::of_store(e),
            EngineError::Refused(r) if r.exit_code() == 2 => ErrorKind::Invalid,
            EngineError::Refused(_) => ErrorKind::Forbidden,
        }
    }
}
