//! Errors at the binary edge, each mapped to the contract's exit code.

use swarm_runner::ErrorKind;
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

    /// An engine error, with the exit code its kind has (the one mapping every face shares).
    pub fn from_engine(e: swarm_runner::EngineError) -> CliError {
        CliError { code: e.kind().exit_code(), error: e.into(), printed: false }
    }

    /// A store error, with the exit code its kind has: a store a user must fix (unreachable,
    /// unknown run, bad address) is exit 2, a lost compare-and-set exit 1.
    pub fn from_store(e: StoreError) -> CliError {
        CliError { code: ErrorKind::of_store(&e).exit_code(), error: e.into(), printed: false }
    }
}

pub type CliResult<T = i32> = Result<T, CliError>;
