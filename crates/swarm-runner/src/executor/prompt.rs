//! What an agent is told: the plan's shared brief, its task prompt, why its previous attempt
//! failed, and the footer asking for its completion report.

use swarm_core::report::AttemptReport;

/// Longest retry feedback added to a prompt.
const FEEDBACK_LIMIT: usize = 2000;

/// Why the previous attempt failed, for the next attempt's prompt: reason, detail, the check's
/// output tail and the agent's own blockers, bounded.
pub fn retry_feedback(previous: &AttemptReport) -> String {
    let Some(reason) = previous.reason else { return String::new() };
    let mut s = format!("\n\n---\n\n## Your previous attempt (#{}) failed\n\nreason: {reason}", previous.n);
    if let Some(d) = &previous.detail {
        s.push_str(&format!(" — {d}"));
    }
    if let Some(out) = &previous.check_output {
        s.push_str(&format!("\n\ncheck output (last lines):\n```\n{out}\n```"));
    }
    if let Some(c) = previous.completion.as_ref().filter(|c| !c.blockers.is_empty()) {
        s.push_str(&format!("\n\nblockers you reported: {}", c.blockers.join("; ")));
    }
    s.push_str("\n\nFix this in this attempt.");
    if s.len() > FEEDBACK_LIMIT {
        let mut cut = FEEDBACK_LIMIT - 20;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push_str("\n[… truncated]");
    }
    s
}

/// The default report footer; `{completion_file}`, `{run_id}`, `{task_id}` and `{attempt}` are
/// filled in. Overridable with `[feedback] footer` in swarm.toml.
pub const REPORT_FOOTER: &str = "\n\n---\n\nWhen you are done (or cannot go on), report back before you exit: write \
`{completion_file}` (also in $SWARM_COMPLETION_FILE) as JSON:\n\
{\"schema_version\": 1, \"run_id\": \"{run_id}\", \"task_id\": \"{task_id}\", \"status\": \"done|partial|blocked|failed\", \
\"summary\": \"one paragraph\", \"files_changed\": [\"path\"], \"tests\": [{\"command\": \"cmd\", \"passed\": true}], \
\"follow_ups\": [], \"blockers\": []}\n\
or run `swarm report --status done --summary \"…\" --file PATH`. Without a report this attempt fails.";

pub fn report_footer(
    template: &str,
    run_id: &str,
    task_id: &str,
    attempt: u32,
    completion_file: &std::path::Path,
) -> String {
    template
        .replace("{completion_file}", &completion_file.display().to_string())
        .replace("{run_id}", run_id)
        .replace("{task_id}", task_id)
        .replace("{attempt}", &attempt.to_string())
}

/// The text an agent receives: the plan's shared brief, then its task prompt.
pub fn compose_prompt(brief: &str, prompt: &str) -> String {
    match (brief.trim().is_empty(), prompt.trim().is_empty()) {
        (true, _) => prompt.to_string(),
        (false, true) => brief.to_string(),
        (false, false) => format!("{brief}\n\n---\n\n{prompt}"),
    }
}
