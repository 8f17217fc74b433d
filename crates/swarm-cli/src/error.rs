//! Errors at the binary edge, each mapped to the contract's exit code.

use swarm_store::StoreError;

#[derive(Debug)]
pub struct CliError {
    pub code: i32,
    pub error: anyhow::Error,
    /// Already printed (e.g. rendered plan diagnostics); only the exit code remains.
    pub printed: bool,
}

impl CliError {
    /// Invalid input or configuration: exit 2.
    pub fn invalid(error: impl Into<anyhow::Error>) -> CliError {
        CliError { code: 2, error: error.into(), printed: false }
    }

    pub fn other(error: impl Into<anyhow::Error>) -> CliError {
        CliError { code: 1, error: error.into(), printed: false }
    }

    pub fn printed(code: i32) -> CliError {
        CliError { code, error: anyhow::anyhow!("already reported"), printed: true }
    }

    /// Engine refusals (bad input, a run still driven or taken over) are exit 2; store errors
    /// as [`CliError::from_store`].
    pub fn from_engine(e: swarm_runner::EngineError) -> CliError {
        match e {
            swarm_runner::EngineError::Store(e) => CliError::from_store(e),
            e => CliError::invalid(e),
        }
    }

    /// Store problems a user must fix (unreachable, unknown run, bad address) are exit 2; a lost
    /// compare-and-set is exit 1.
    pub fn from_store(e: StoreError) -> CliError {
        match e {
            StoreError::Backend { .. } | StoreError::Corrupt { .. } | StoreError::VersionConflict { .. } => {
                CliError::other(e)
            }
            _ => CliError::invalid(e),
        }
    }
}

pub type CliResult<T = i32> = Result<T, CliError>;
