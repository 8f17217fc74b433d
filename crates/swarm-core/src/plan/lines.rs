//! Lines of a plan's source, by byte offset: what the markdown body and the front matter both
//! walk.

use std::ops::Range;

/// The whole line containing `pos`, without its line break.
pub(super) fn line_at(src: &str, pos: usize) -> Range<usize> {
    let start = src[..pos].rfind('\n').map_or(0, |i| i + 1);
    start..line_end(src, pos)
}

/// End of the line containing `pos`, before `\r\n` or `\n`.
pub(super) fn line_end(src: &str, pos: usize) -> usize {
    let end = src[pos..].find('\n').map_or(src.len(), |i| pos + i);
    if end > pos && src.as_bytes()[end - 1] == b'\r' {
        end - 1
    } else {
        end
    }
}

/// After the line containing `pos` (past its line break).
pub(super) fn next_line(src: &str, pos: usize) -> usize {
    src[pos..].find('\n').map_or(src.len(), |i| pos + i + 1)
}
