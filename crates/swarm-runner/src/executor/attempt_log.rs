//! An attempt's log file, bounded by `[run] log_limit`: the first half is kept as written; past
//! it, output goes to two side files that take turns (so only the latest output is kept), and
//! when the attempt ends that tail is appended to the log after a line saying how much was left
//! out. An agent that prints forever costs the disk at most the limit.

use std::fs::File;
use std::io::Write;
use std::path::PathBuf;

pub struct AttemptLog {
    path: PathBuf,
    /// Opened on the first write: an attempt that prints nothing costs no file.
    file: Option<File>,
    head_limit: u64,
    /// Bytes in the log file so far.
    written: u64,
    tail: Option<Tail>,
    tail_limit: u64,
    /// Why the log cannot be written, once known (reported once).
    pub error: Option<String>,
}

struct Tail {
    segments: [PathBuf; 2],
    current: usize,
    file: File,
    len: u64,
    /// Output dropped when a segment was reused.
    dropped: u64,
}

impl AttemptLog {
    /// A log at `path` keeping at most about `limit` bytes (half head, half tail).
    pub fn new(path: PathBuf, limit: u64) -> AttemptLog {
        let half = (limit / 2).max(1);
        AttemptLog {
            path,
            file: None,
            head_limit: half,
            written: 0,
            tail: None,
            tail_limit: half,
            error: None,
        }
    }

    /// Appends `bytes`; returns an error message the first time the log cannot be written.
    pub fn write(&mut self, bytes: &[u8]) -> Option<String> {
        if self.error.is_some() {
            return None;
        }
        let result = if self.tail.is_none() && self.written + bytes.len() as u64 <= self.head_limit {
            self.write_head(bytes)
        } else {
            self.write_tail(bytes)
        };
        result.err().map(|e| {
            let message = format!("cannot write log {}: {e}", self.path.display());
            self.error = Some(message.clone());
            message
        })
    }

    fn write_head(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        if self.file.is_none() {
            self.file = Some(std::fs::OpenOptions::new().create(true).append(true).open(&self.path)?);
        }
        let file = self.file.as_mut().expect("opened above");
        file.write_all(bytes)?;
        self.written += bytes.len() as u64;
        Ok(())
    }

    fn segment(&self, n: usize) -> PathBuf {
        let mut name = self.path.file_name().unwrap_or_default().to_os_string();
        name.push(format!(".tail{n}"));
        self.path.with_file_name(name)
    }

    fn write_tail(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        if self.tail.is_none() {
            let note = format!(
                "\n--- swarm: this log keeps its first {} and its last {}; the rest of the output is left out ---\n",
                human(self.head_limit),
                human(self.tail_limit)
            );
            self.write_head(note.as_bytes())?;
            let segments = [self.segment(0), self.segment(1)];
            let file = File::create(&segments[0])?;
            self.tail = Some(Tail { segments, current: 0, file, len: 0, dropped: 0 });
        }
        let segment_limit = (self.tail_limit / 2).max(1);
        let tail = self.tail.as_mut().expect("made above");
        if tail.len > 0 && tail.len + bytes.len() as u64 > segment_limit {
            // Take turns: the older segment is given up for the newest output.
            tail.current = 1 - tail.current;
            let old = std::fs::metadata(&tail.segments[tail.current]).map_or(0, |m| m.len());
            tail.dropped += old;
            tail.file = File::create(&tail.segments[tail.current])?;
            tail.len = 0;
        }
        tail.file.write_all(bytes)?;
        tail.len += bytes.len() as u64;
        Ok(())
    }

    /// Appends the kept tail (older segment first) to the log and removes the side files.
    pub fn finish(&mut self) {
        let Some(tail) = self.tail.take() else { return };
        let other = 1 - tail.current;
        let result = (|| -> std::io::Result<()> {
            let file = self.file.as_mut().ok_or_else(|| std::io::Error::other("log not open"))?;
            let note = format!("--- swarm: {} of output left out here ---\n", human(tail.dropped));
            file.write_all(note.as_bytes())?;
            for n in [other, tail.current] {
                if let Ok(mut segment) = File::open(&tail.segments[n]) {
                    std::io::copy(&mut segment, file)?;
                }
            }
            Ok(())
        })();
        for segment in &tail.segments {
            let _ = std::fs::remove_file(segment);
        }
        if let Err(e) = result {
            self.error.get_or_insert(format!("cannot finish log {}: {e}", self.path.display()));
        }
    }
}

fn human(bytes: u64) -> String {
    bytesize::ByteSize(bytes).display().iec().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_small_log_is_kept_whole() {
        let d = tempfile::tempdir().unwrap();
        let mut log = AttemptLog::new(d.path().join("a.log"), 1000);
        for i in 0..10 {
            log.write(format!("line {i}\n").as_bytes());
        }
        log.finish();
        let text = std::fs::read_to_string(d.path().join("a.log")).unwrap();
        assert_eq!(text.lines().count(), 10);
        assert!(!text.contains("swarm:"));
    }

    #[test]
    fn a_flood_keeps_head_and_tail_within_the_limit() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("a.log");
        let mut log = AttemptLog::new(path.clone(), 10_000);
        let lines = 100_000;
        for i in 0..lines {
            log.write(format!("line {i:06}\n").as_bytes());
        }
        log.finish();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.len() < 10_000 + 300, "{} bytes", text.len());
        assert!(text.starts_with("line 000000\n"), "the head is kept");
        assert!(text.ends_with(&format!("line {:06}\n", lines - 1)), "the tail is kept");
        assert!(text.contains("this log keeps its first") && text.contains("of output left out here"));
        let names: Vec<_> = std::fs::read_dir(d.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, ["a.log"], "the side files are gone");
        // What is kept is whole lines around one gap.
        let kept: Vec<u32> =
            text.lines().filter_map(|l| l.strip_prefix("line ").and_then(|n| n.parse().ok())).collect();
        let gaps = kept.windows(2).filter(|w| w[1] != w[0] + 1).count();
        assert_eq!(gaps, 1, "one gap between head and tail");
    }
}
