//! Files an agent controls are read as untrusted input: never through a symbolic link, never
//! blocking (a FIFO is not a file), regular files with one link only, bounded in size. What a
//! valid report says is bounded again before it reaches the store, the mirror or report.json;
//! the whole file stays where the agent wrote it.

use std::path::{Path, PathBuf};
use swarm_core::completion::Completion;
use swarm_core::untrusted::{self, Links, ReadError};

/// Largest completion.json swarm reads.
pub const COMPLETION_LIMIT: u64 = 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum UntrustedError {
    #[error("{} does not exist", .0.display())]
    Missing(PathBuf),
    #[error("{} is a symbolic link; swarm does not follow links an agent controls", .0.display())]
    Symlink(PathBuf),
    #[error("{} is not a regular file but a {kind}", path.display())]
    NotRegular { path: PathBuf, kind: &'static str },
    #[error("{} has {links} hard links; swarm reads only a file the agent wrote itself", path.display())]
    HardLinked { path: PathBuf, links: u64 },
    #[error("{} is over the {limit}-byte limit ({size} bytes)", path.display())]
    TooLarge { path: PathBuf, size: u64, limit: u64 },
    #[error("cannot read {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Reads `path` if it is a regular, singly linked file of at most `limit` bytes, opened without
/// following a link in its last component and without blocking.
pub fn read(path: &Path, limit: u64) -> Result<Vec<u8>, UntrustedError> {
    let p = || path.to_path_buf();
    untrusted::read(path, limit, Links::Single).map_err(|e| match e {
        ReadError::Symlink => UntrustedError::Symlink(p()),
        ReadError::NotRegular(kind) => UntrustedError::NotRegular { path: p(), kind },
        ReadError::HardLinked(links) => UntrustedError::HardLinked { path: p(), links },
        ReadError::TooLarge { size, limit } => UntrustedError::TooLarge { path: p(), size, limit },
        ReadError::Io(e) if e.kind() == std::io::ErrorKind::NotFound => UntrustedError::Missing(p()),
        ReadError::Io(source) => UntrustedError::Io { path: p(), source },
    })
}

/// How much of a completion report the store, report.json and retry prompts keep.
pub const SUMMARY_LIMIT: usize = 4096;
const ITEM_LIMIT: usize = 1024;
const FILES_LIMIT: usize = 500;
const TESTS_LIMIT: usize = 100;
const NOTES_LIMIT: usize = 50;

fn cut(s: &mut String, limit: usize) -> bool {
    if s.len() <= limit {
        return false;
    }
    let mut at = limit - "…".len();
    while !s.is_char_boundary(at) {
        at -= 1;
    }
    s.truncate(at);
    s.push('…');
    true
}

/// `c` bounded field by field for the store; the second value says what was cut, if anything.
pub fn bounded(mut c: Completion) -> (Completion, Option<String>) {
    let mut cuts = Vec::new();
    let before = c.summary.len();
    if cut(&mut c.summary, SUMMARY_LIMIT) {
        cuts.push(format!("summary {before} → {} bytes", c.summary.len()));
    }
    fn list(name: &str, v: &mut Vec<String>, max: usize, cuts: &mut Vec<String>) {
        if v.len() > max {
            cuts.push(format!("{name} {} → {max} entries", v.len()));
            v.truncate(max);
        }
        let long = v.iter_mut().map(|s| cut(s, ITEM_LIMIT)).filter(|c| *c).count();
        if long > 0 {
            cuts.push(format!("{long} {name} entries cut to {ITEM_LIMIT} bytes"));
        }
    }
    list("files_changed", &mut c.files_changed, FILES_LIMIT, &mut cuts);
    list("follow_ups", &mut c.follow_ups, NOTES_LIMIT, &mut cuts);
    list("blockers", &mut c.blockers, NOTES_LIMIT, &mut cuts);
    if c.tests.len() > TESTS_LIMIT {
        cuts.push(format!("tests {} → {TESTS_LIMIT} entries", c.tests.len()));
        c.tests.truncate(TESTS_LIMIT);
    }
    let long = c.tests.iter_mut().map(|t| cut(&mut t.command, ITEM_LIMIT)).filter(|c| *c).count();
    if long > 0 {
        cuts.push(format!("{long} test commands cut to {ITEM_LIMIT} bytes"));
    }
    cut(&mut c.run_id, ITEM_LIMIT);
    cut(&mut c.task_id, ITEM_LIMIT);
    (c, (!cuts.is_empty()).then(|| cuts.join(", ")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use swarm_core::completion::{CompletionStatus, TestRun};

    fn dir() -> tempfile::TempDir {
        tempfile::tempdir().unwrap()
    }

    #[test]
    fn a_regular_file_is_read() {
        let d = dir();
        let p = d.path().join("c.json");
        std::fs::write(&p, b"{}").unwrap();
        assert_eq!(read(&p, 10).unwrap(), b"{}");
        assert!(matches!(read(&d.path().join("none"), 10), Err(UntrustedError::Missing(_))));
    }

    #[test]
    fn links_fifos_devices_directories_and_big_files_are_refused_without_blocking() {
        let d = dir();
        let link = d.path().join("link.json");
        std::os::unix::fs::symlink("/etc/passwd", &link).unwrap();
        assert!(matches!(read(&link, COMPLETION_LIMIT), Err(UntrustedError::Symlink(_))));
        let zero = d.path().join("zero.json");
        std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
        assert!(matches!(read(&zero, COMPLETION_LIMIT), Err(UntrustedError::Symlink(_))));
        let fifo = d.path().join("fifo.json");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        // Nobody writes the FIFO: a blocking open would never return.
        let e = read(&fifo, COMPLETION_LIMIT).unwrap_err();
        assert!(matches!(e, UntrustedError::NotRegular { kind: "FIFO", .. }), "{e}");
        assert!(e.to_string().contains("not a regular file but a FIFO"), "{e}");
        let e = read(Path::new("/dev/null"), COMPLETION_LIMIT).unwrap_err();
        assert!(matches!(e, UntrustedError::NotRegular { kind: "device", .. }), "{e}");
        assert!(matches!(read(d.path(), 10), Err(UntrustedError::NotRegular { kind: "directory", .. })));
        let big = d.path().join("big.json");
        std::fs::write(&big, vec![b' '; 11]).unwrap();
        let e = read(&big, 10).unwrap_err();
        assert_eq!(e.to_string(), format!("{} is over the 10-byte limit (11 bytes)", big.display()));
        let hard = d.path().join("hard.json");
        std::fs::hard_link(&big, &hard).unwrap();
        assert!(matches!(read(&hard, 100), Err(UntrustedError::HardLinked { links: 2, .. })));
    }

    #[test]
    fn huge_fields_are_bounded_and_say_so() {
        let c = Completion {
            schema_version: 1,
            run_id: "r".into(),
            task_id: "t".into(),
            status: CompletionStatus::Done,
            summary: "é".repeat(10_000),
            files_changed: (0..2000).map(|i| format!("f{i}")).collect(),
            tests: vec![TestRun { command: "x".repeat(5000), passed: true }],
            follow_ups: vec![],
            blockers: vec!["b".repeat(2000)],
        };
        let (b, note) = bounded(c);
        assert!(b.summary.len() <= SUMMARY_LIMIT && b.summary.ends_with('…'));
        assert_eq!(b.files_changed.len(), FILES_LIMIT);
        assert!(b.tests[0].command.len() <= ITEM_LIMIT && b.blockers[0].len() <= ITEM_LIMIT);
        let note = note.unwrap();
        assert!(
            note.contains("summary 20000 → ") && note.contains("files_changed 2000 → 500 entries"),
            "{note}"
        );
        let small =
            Completion { summary: "ok".into(), files_changed: vec![], tests: vec![], blockers: vec![], ..b };
        assert_eq!(bounded(small.clone()), (small, None));
    }
}
