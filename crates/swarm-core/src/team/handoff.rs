//! Hand-offs along the DAG: what a task's prompt carries from each direct dependency's report
//! (`handoff: none | summary | full`), bounded so a long report cannot crowd out the task.

use serde::{Deserialize, Serialize};
use std::fmt::Write;

/// How much of its dependencies' reports a task is handed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Handoff {
    None,
    /// summary, files_changed, follow_ups and blockers.
    #[default]
    Summary,
    /// The summary's fields plus the state keys the dependency wrote and its check output.
    Full,
}

impl Handoff {
    pub fn parse(s: &str) -> Option<Handoff> {
        match s {
            "none" => Some(Handoff::None),
            "summary" => Some(Handoff::Summary),
            "full" => Some(Handoff::Full),
            _ => None,
        }
    }
}

/// What one dependency reported.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HandoffSource {
    pub task_id: String,
    pub summary: String,
    pub files_changed: Vec<String>,
    pub follow_ups: Vec<String>,
    pub blockers: Vec<String>,
    /// Keys it wrote, with the version it left (for `full`); `None`: not known yet, a
    /// [`state_keys_token`] stands in for them until the attempt starts.
    pub state_keys: Option<Vec<(String, u64)>>,
    /// Its check's output (for `full`).
    pub check_output: Option<String>,
}

/// Longest hand-off from one dependency, in bytes.
pub const HANDOFF_LIMIT: usize = 8 * 1024;

/// The `Hand-off from <dep>` section for one dependency; empty for `Handoff::None`.
pub fn render_handoff(src: &HandoffSource, mode: Handoff) -> String {
    if mode == Handoff::None {
        return String::new();
    }
    let mut s = format!("## Hand-off from {}\n\nsummary: {}\n", src.task_id, src.summary.trim());
    let mut lists: Vec<(&str, Vec<String>)> = vec![
        ("files_changed", src.files_changed.clone()),
        ("follow_ups", src.follow_ups.clone()),
        ("blockers", src.blockers.clone()),
    ];
    if mode == Handoff::Full {
        let keys = match &src.state_keys {
            Some(keys) => keys.iter().map(|(k, v)| format!("{k} (v{v})")).collect(),
            None => vec![state_keys_token(&src.task_id)],
        };
        lists.push(("state keys written", keys));
    }
    let check = src.check_output.as_deref().filter(|_| mode == Handoff::Full);
    let mut cut = 0usize;
    // The least important detail goes first: the check output, then the last items of the last
    // lists, until the section fits.
    let mut check = check.map(str::to_string);
    loop {
        let text = body(&s, &lists, check.as_deref(), cut);
        if text.len() <= HANDOFF_LIMIT {
            s = text;
            break;
        }
        if check.take().is_some() {
            cut += 1;
            continue;
        }
        match lists.iter_mut().rev().find(|(_, items)| !items.is_empty()) {
            Some((_, items)) => {
                items.pop();
                cut += 1;
            }
            None => {
                s = truncate(&text, HANDOFF_LIMIT);
                break;
            }
        }
    }
    s
}

/// Stands for the keys `task` wrote in a `full` hand-off until the attempt starts and reads
/// them from the store ([`fill_state_keys`]).
pub fn state_keys_token(task: &str) -> String {
    format!("<<swarm: state keys written by {task}>>")
}

/// Puts the keys each dependency wrote (newest version each; `(none)`) in place of its token.
pub fn fill_state_keys(prompt: &str, written: &[(String, Vec<(String, u64)>)]) -> String {
    let mut out = prompt.to_string();
    for (task, keys) in written {
        let items: Vec<String> = keys.iter().map(|(k, v)| format!("{k} (v{v})")).collect();
        let text = if items.is_empty() { "(none)".to_string() } else { items.join("\n- ") };
        out = out.replace(&state_keys_token(task), &text);
    }
    out
}

fn body(head: &str, lists: &[(&str, Vec<String>)], check: Option<&str>, cut: usize) -> String {
    let mut s = head.to_string();
    for (name, items) in lists {
        if items.is_empty() {
            let _ = writeln!(s, "{name}: none");
        } else {
            let _ = writeln!(s, "{name}:");
            for item in items {
                let _ = writeln!(s, "- {item}");
            }
        }
    }
    if let Some(out) = check {
        let _ = writeln!(s, "check output:\n```\n{}\n```", out.trim_end());
    }
    if cut > 0 {
        let _ = writeln!(s, "[hand-off cut to {HANDOFF_LIMIT} bytes: {cut} detail(s) left out]");
    }
    s
}

fn truncate(s: &str, limit: usize) -> String {
    let mut end = limit.saturating_sub(40).min(s.len());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}\n[hand-off cut to {limit} bytes]\n", &s[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn src() -> HandoffSource {
        HandoffSource {
            task_id: "research".into(),
            summary: "Found three sources.".into(),
            files_changed: vec!["notes.md".into()],
            follow_ups: vec!["check the 2024 paper".into()],
            blockers: vec![],
            state_keys: Some(vec![("research/topic".into(), 2)]),
            check_output: Some("ok".into()),
        }
    }

    #[test]
    fn summary_lists_the_report_and_full_adds_state_and_check() {
        let s = render_handoff(&src(), Handoff::Summary);
        assert_eq!(
            s,
            "## Hand-off from research\n\nsummary: Found three sources.\nfiles_changed:\n- notes.md\n\
             follow_ups:\n- check the 2024 paper\nblockers: none\n"
        );
        let f = render_handoff(&src(), Handoff::Full);
        assert!(f.contains("state keys written:\n- research/topic (v2)\ncheck output:\n```\nok\n```"), "{f}");
        assert_eq!(render_handoff(&src(), Handoff::None), "");
        let later = render_handoff(&HandoffSource { state_keys: None, ..src() }, Handoff::Full);
        let filled = fill_state_keys(&later, &[("research".into(), vec![("a".into(), 1), ("b".into(), 3)])]);
        assert!(filled.contains("state keys written:\n- a (v1)\n- b (v3)\ncheck output"), "{filled}");
        assert_eq!(fill_state_keys(&later, &[("research".into(), vec![])]).matches("- (none)").count(), 1);
    }

    #[test]
    fn a_long_report_is_cut_and_says_so() {
        let mut big = src();
        big.follow_ups = (0..2000).map(|i| format!("follow-up number {i}")).collect();
        let s = render_handoff(&big, Handoff::Summary);
        assert!(s.len() <= HANDOFF_LIMIT, "{}", s.len());
        assert!(s.contains("follow-up number 0\n") && !s.contains("follow-up number 1999"));
        assert!(s.contains("detail(s) left out]"), "{s}");
    }
}
