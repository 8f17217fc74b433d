//! `report.json` and `report.md` in the run directory, written atomically.

use crate::os::paths::RunDir;
use std::fmt::Write as _;
use std::path::Path;
use swarm_core::report::{MergeState, RunReport};
use swarm_core::timeline::Timeline;

pub fn write(dir: &RunDir, report: &RunReport) -> std::io::Result<()> {
    std::fs::create_dir_all(&dir.root)?;
    let json = serde_json::to_string_pretty(report).expect("report serializes");
    write_atomic(&dir.report_json(), json.as_bytes())?;
    write_atomic(&dir.report_md(), markdown(report).as_bytes())
}

fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(tmp, path)
}

fn short(commit: &str) -> &str {
    &commit[..commit.len().min(12)]
}

pub fn markdown(r: &RunReport) -> String {
    let mut s = String::new();
    summary(&mut s, r);
    tasks_table(&mut s, r);
    timeline(&mut s, r);
    layers_table(&mut s, r);
    merge_back(&mut s, r);
    handoffs(&mut s, r);
    shared_state(&mut s, r);
    problems(&mut s, r);
    s
}

/// What each task was handed from its dependencies' reports.
fn handoffs(s: &mut String, r: &RunReport) {
    let handed: Vec<_> = r.tasks.iter().filter(|t| !t.handoff_from.is_empty()).collect();
    if handed.is_empty() {
        return;
    }
    let _ = writeln!(s, "\n## Hand-offs\n");
    for t in handed {
        for dep in &t.handoff_from {
            let summary = r
                .tasks
                .iter()
                .find(|d| d.id == *dep)
                .and_then(|d| d.attempts.iter().rev().find_map(|a| a.completion.as_ref()))
                .map(|c| c.summary.replace('\n', " "))
                .unwrap_or_else(|| "(no report)".into());
            let _ = writeln!(s, "- {dep} → {}: {summary}", t.id);
        }
    }
}

/// The shared-state changes the run's agents made, and the writes refused.
fn shared_state(s: &mut String, r: &RunReport) {
    if r.state_changes.is_empty() {
        return;
    }
    let _ = writeln!(s, "\n## Shared state\n");
    let _ = writeln!(s, "| key | change | version | by | value or reason |");
    let _ = writeln!(s, "|---|---|---|---|---|");
    for c in &r.state_changes {
        let by = c.by.as_ref().and_then(|b| b.task_id.clone()).unwrap_or_default();
        let what = match (&c.reason, &c.value) {
            (Some(reason), _) => reason.clone(),
            (None, Some(v)) => v.to_string(),
            (None, None) => String::new(),
        };
        let what: String = what.replace('|', "\\|").chars().take(120).collect();
        let _ = writeln!(s, "| `{}` | {} | {} | {by} | {what} |", c.key, c.op, c.version);
    }
}

/// The title and the run's state, times, counts and usage.
fn summary(s: &mut String, r: &RunReport) {
    let duration = r.ended_at.map(|e| (e - r.started_at).num_milliseconds() as f64 / 1000.0);
    let _ = writeln!(s, "# Run `{}` — {}\n", r.run_id, r.plan);
    let _ = writeln!(s, "- state: **{}**", r.state);
    if let Some(e) = &r.store_error {
        let _ = writeln!(s, "- store: **{}**", e.message);
    }
    let _ = writeln!(s, "- namespace: `{}`", r.namespace);
    let _ = writeln!(s, "- started: {}", r.started_at.to_rfc3339());
    if let (Some(e), Some(d)) = (r.ended_at, duration) {
        let _ = writeln!(s, "- ended: {} ({d:.1}s)", e.to_rfc3339());
    }
    let c = &r.counts;
    let _ = writeln!(
        s,
        "- tasks: {} succeeded, {} failed, {} blocked, {} cancelled, {} not finished",
        c.succeeded,
        c.failed,
        c.blocked,
        c.cancelled,
        c.pending + c.ready + c.running
    );
    let _ = writeln!(
        s,
        "- tokens: {} in, {} out; cost ${:.4}",
        r.totals.tokens_in, r.totals.tokens_out, r.totals.cost_usd
    );
    for m in r.by_model.iter().filter(|m| !m.model.is_empty()) {
        let _ = writeln!(s, "  - `{}`: {}", m.model, m.summary());
    }
}

/// The model hierarchy's layers at work: what each served, with which models, and how long
/// requests waited for a model there.
fn layers_table(s: &mut String, r: &RunReport) {
    if r.by_layer.is_empty() {
        return;
    }
    let requests: Vec<_> = r.tasks.iter().flat_map(|t| &t.attempts).flat_map(|a| &a.requests).collect();
    let _ = writeln!(s, "\n## Model layers\n");
    let _ = writeln!(s, "| layer | models | requests | tokens in | tokens out | cost | waited |");
    let _ = writeln!(s, "|---|---|---|---|---|---|---|");
    for l in &r.by_layer {
        let mut models: Vec<&str> =
            requests.iter().filter(|q| q.layer == l.layer).map(|q| q.model.as_str()).collect();
        models.sort_unstable();
        models.dedup();
        let waited: u64 = requests.iter().filter(|q| q.layer == l.layer).map(|q| q.wait_ms).sum();
        let models: Vec<String> = models.iter().map(|m| format!("`{m}`")).collect();
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | ${:.4} | {:.1}s |",
            l.layer,
            models.join(", "),
            l.requests,
            l.tokens_in,
            l.tokens_out,
            l.cost_usd,
            waited as f64 / 1000.0
        );
    }
}

/// The run as a Mermaid gantt: each attempt's phases per task.
fn timeline(s: &mut String, r: &RunReport) {
    const MAX_TASKS: usize = 60;
    if r.tasks.iter().all(|t| t.attempts.is_empty()) {
        return;
    }
    let t = Timeline::of(r, r.ended_at.unwrap_or_else(chrono::Utc::now));
    let _ = writeln!(s, "\n## Timeline\n");
    s.push_str(&swarm_core::timeline::mermaid(&t, MAX_TASKS));
    let ran = t.rows.iter().filter(|row| !row.bars.is_empty()).count();
    if ran > MAX_TASKS {
        let _ =
            writeln!(s, "\n(the first {MAX_TASKS} of {ran} tasks that ran; the dashboard shows them all)");
    }
    if t.critical.len() > 1 {
        let _ = writeln!(s, "\nCritical path: {}.", t.critical.join(" → "));
    }
}

/// One row per task: its state and its last attempt.
fn tasks_table(s: &mut String, r: &RunReport) {
    let _ = writeln!(s);
    let _ =
        writeln!(s, "| task | state | reason | attempts | agent | model | duration | tokens in/out | cost |");
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|");
    for t in &r.tasks {
        let last = t.attempts.last();
        let dur = last
            .and_then(|a| {
                a.ended_at.map(|e| format!("{:.1}s", (e - a.started_at).num_milliseconds() as f64 / 1000.0))
            })
            .unwrap_or_default();
        let (tin, tout, cost) = t
            .attempts
            .iter()
            .fold((0, 0, 0.0), |(i, o, c), a| (i + a.tokens_in, o + a.tokens_out, c + a.cost_usd));
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} | {}/{} | ${:.4} |",
            t.id,
            t.state,
            t.reason.map(|r| r.to_string()).unwrap_or_default(),
            t.attempts.len(),
            t.agent,
            last.and_then(|a| a.model.clone()).unwrap_or_default(),
            dur,
            tin,
            tout,
            cost
        );
    }
}

/// Where each task's work went, for a run with worktrees.
fn merge_back(s: &mut String, r: &RunReport) {
    let (Some(base), Some(branch)) = (&r.base_commit, &r.integration_branch) else { return };
    let _ = writeln!(s, "\n## Merge-back\n");
    let _ = writeln!(s, "Base `{}`; the tasks' work is merged into `{branch}`.\n", short(base));
    let _ = writeln!(s, "| task | merge | branch | commit | files changed | conflicts |");
    let _ = writeln!(s, "|---|---|---|---|---|---|");
    for t in r.tasks.iter().filter(|t| t.merge.is_some()) {
        let merge = match t.merge {
            Some(MergeState::Merged) => "merged",
            Some(MergeState::Resolved) => "resolved",
            Some(MergeState::Conflict) => "conflict",
            _ => "skipped",
        };
        let _ = writeln!(
            s,
            "| {} | {merge} | {} | {} | {} | {} |",
            t.id,
            t.branch.as_deref().map(|b| format!("`{b}`")).unwrap_or_default(),
            t.commit.as_deref().map(short).unwrap_or_default(),
            t.files_changed.len(),
            t.conflict_paths.join(", ")
        );
    }
    let _ = writeln!(
        s,
        "\nSee a task's work: `swarm diff {} TASK`; bring it home: `swarm merge {} --into BRANCH`.",
        r.run_id, r.run_id
    );
}

/// Each task that did not succeed, why, and where its last log is.
fn problems(s: &mut String, r: &RunReport) {
    let problems: Vec<_> = r.tasks.iter().filter(|t| t.reason.is_some()).collect();
    if problems.is_empty() {
        return;
    }
    let _ = writeln!(s, "\n## Problems\n");
    for t in problems {
        let log = t
            .attempts
            .last()
            .and_then(|a| a.log.clone())
            .map(|l| format!(" (log: `{l}`)"))
            .unwrap_or_default();
        let _ = writeln!(
            s,
            "- **{}** {}: {}{}",
            t.id,
            t.reason.map(|r| r.to_string()).unwrap_or_default(),
            t.detail.clone().unwrap_or_default(),
            log
        );
    }
}

#[cfg(test)]
mod tests {
    /// report.md of the fixed finished run: summary, usage per model and layer, tasks, merge-back
    /// and problems.
    #[test]
    fn report_md_of_a_finished_run() {
        let (_, report) = swarm_testkit::fixtures::finished_run();
        insta::assert_snapshot!(super::markdown(&report));
    }
}
