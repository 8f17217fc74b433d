//! Output when the reader may be gone (`swarm … | head -1`), and SIGPIPE.
//!
//! Rust ignores SIGPIPE, so a write to a closed pipe is an error and `println!` panics on it
//! (exit 101 and a panic message). Commands that only print die of SIGPIPE instead, quietly,
//! like `git log | head -1`. Commands that supervise agents or serve keep it ignored: a closed
//! pipe to an agent's stdin is an error they handle, and a run whose stdout went away must go on
//! to the end and record it; they print through [`outln!`] / [`errln!`], which drop what cannot
//! be written.

/// Restores the default SIGPIPE action: the process ends when it writes to a closed pipe.
pub fn die_on_broken_pipe() {
    // SAFETY: done at the start of `main`, before any other thread exists; SIG_DFL installs no
    // handler code.
    unsafe {
        let _ =
            nix::sys::signal::signal(nix::sys::signal::Signal::SIGPIPE, nix::sys::signal::SigHandler::SigDfl);
    }
}

/// `println!` that ignores a stdout nobody reads any more.
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}

/// `eprintln!` that ignores a closed stderr.
macro_rules! errln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr().lock(), $($arg)*);
    }};
}

pub(crate) use {errln, outln};
