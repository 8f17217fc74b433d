//! A run as time: one row per task, each attempt a bar split into its phases (queued, waiting
//! for a model, running, checks, merging), the task graph's depths and its critical path. Built
//! from the report alone, so the dashboard, report.md's Mermaid gantt and any host on the store
//! draw the same picture.

use crate::report::{AttemptKind, AttemptReport, RunReport, TaskReport};
use crate::state::{Reason, RunState, TaskState};
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::HashMap;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Timeline {
    pub run_id: String,
    pub state: RunState,
    pub start: DateTime<Utc>,
    /// The run's end, or now while it runs.
    pub end: DateTime<Utc>,
    /// Set while the run is live: where the now-line goes.
    pub now: Option<DateTime<Utc>>,
    pub rows: Vec<Row>,
    /// The chain of dependencies that decided when the run ended (or, before anything ran, the
    /// longest one), first task first.
    pub critical: Vec<String>,
}

/// One task.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    pub task: String,
    pub title: String,
    pub state: TaskState,
    pub reason: Option<Reason>,
    pub detail: Option<String>,
    pub depends: Vec<String>,
    /// 0 for a task without dependencies, else one more than its deepest dependency.
    pub depth: usize,
    pub bars: Vec<Bar>,
}

/// One attempt.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Bar {
    pub attempt: u32,
    /// `agent`, or `resolver` for one that resolved a merge conflict.
    pub kind: &'static str,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// Still going: `to` is now.
    pub open: bool,
    /// `running`, `succeeded`, `failed` or `cancelled`.
    pub outcome: &'static str,
    pub reason: Option<Reason>,
    pub detail: Option<String>,
    pub model: Option<String>,
    pub phases: Vec<Span>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Queued,
    /// Waiting for a model slot; drawn over `running`, which it is part of.
    ModelWait,
    Running,
    Checks,
    Merging,
}

impl Phase {
    pub fn label(self) -> &'static str {
        match self {
            Phase::Queued => "queued",
            Phase::ModelWait => "waiting for a model",
            Phase::Running => "running",
            Phase::Checks => "checks",
            Phase::Merging => "merging",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Span {
    pub phase: Phase,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
}

impl Timeline {
    /// The timeline of `report` as it stands at `now`.
    pub fn of(report: &RunReport, now: DateTime<Utc>) -> Timeline {
        let live = report.state == RunState::Running;
        let end = report.ended_at.unwrap_or(now).max(report.started_at);
        let depths = depths(&report.tasks);
        let rows: Vec<Row> = report
            .tasks
            .iter()
            .map(|t| Row {
                task: t.id.clone(),
                title: t.title.clone(),
                state: t.state,
                reason: t.reason,
                detail: t.detail.clone(),
                depends: t.depends.clone(),
                depth: depths.get(t.id.as_str()).copied().unwrap_or(0),
                bars: t.attempts.iter().map(|a| bar(a, end)).collect(),
            })
            .collect();
        let critical = critical_path(&rows);
        Timeline {
            run_id: report.run_id.clone(),
            state: report.state,
            start: report.started_at,
            end,
            now: live.then_some(now),
            rows,
            critical,
        }
    }
}

fn bar(a: &AttemptReport, now: DateTime<Utc>) -> Bar {
    let end = a.ended_at.unwrap_or(now).max(a.started_at);
    let mut phases = Vec::new();
    let mut push = |phase, from: DateTime<Utc>, to: DateTime<Utc>| {
        if to > from {
            phases.push(Span { phase, from, to });
        }
    };
    if let Some(q) = a.queued_at {
        push(Phase::Queued, q, a.started_at);
    }
    let checks = a.checks_at.map(|c| c.clamp(a.started_at, end));
    let merging = a.merging_at.map(|m| m.clamp(a.started_at, end));
    push(Phase::Running, a.started_at, checks.or(merging).unwrap_or(end));
    if let Some(c) = checks {
        push(Phase::Checks, c, merging.filter(|m| *m >= c).unwrap_or(end));
    }
    if let Some(m) = merging {
        push(Phase::Merging, m, end);
    }
    for w in &a.model_waits {
        let from = w.from.clamp(a.started_at, end);
        push(Phase::ModelWait, from, w.to.unwrap_or(end).clamp(from, end));
    }
    let outcome = match (a.ended_at, a.reason) {
        (None, _) => "running",
        (Some(_), None) => "succeeded",
        (Some(_), Some(Reason::Cancelled)) => "cancelled",
        (Some(_), Some(_)) => "failed",
    };
    Bar {
        attempt: a.n,
        kind: if a.kind == Some(AttemptKind::Resolver) { "resolver" } else { "agent" },
        from: a.queued_at.unwrap_or(a.started_at).min(a.started_at),
        to: end,
        open: a.ended_at.is_none(),
        outcome,
        reason: a.reason,
        detail: a.detail.clone(),
        model: a.model.clone(),
        phases,
    }
}

/// Each task's depth in the dependency graph (a cycle, which a valid plan never has, counts
/// as depth 0 where it closes).
pub fn depths(tasks: &[TaskReport]) -> HashMap<&str, usize> {
    let by_id: HashMap<&str, &TaskReport> = tasks.iter().map(|t| (t.id.as_str(), t)).collect();
    let mut memo: HashMap<&str, usize> = HashMap::new();
    fn depth<'a>(
        id: &'a str,
        by_id: &HashMap<&'a str, &'a TaskReport>,
        memo: &mut HashMap<&'a str, usize>,
        seen: &mut Vec<&'a str>,
    ) -> usize {
        if let Some(d) = memo.get(id) {
            return *d;
        }
        if seen.contains(&id) {
            return 0;
        }
        seen.push(id);
        let deps = by_id.get(id).map(|t| t.depends.as_slice()).unwrap_or_default();
        let d = deps.iter().map(|x| depth(x, by_id, memo, seen) + 1).max().unwrap_or(0);
        seen.pop();
        memo.insert(id, d);
        d
    }
    for t in tasks {
        depth(&t.id, &by_id, &mut memo, &mut Vec::new());
    }
    memo
}

/// From the task that finished last (the deepest among equals), back through the dependency
/// that finished last each time: the chain the run waited on.
fn critical_path(rows: &[Row]) -> Vec<String> {
    let by_id: HashMap<&str, &Row> = rows.iter().map(|r| (r.task.as_str(), r)).collect();
    let key = |r: &Row| (r.bars.iter().map(|b| b.to).max(), r.depth);
    let Some(mut at) = rows.iter().max_by_key(|r| key(r)) else { return vec![] };
    let mut path = vec![at.task.clone()];
    while let Some(dep) = at.depends.iter().filter_map(|d| by_id.get(d.as_str())).max_by_key(|r| key(r)) {
        if path.contains(&dep.task) {
            break;
        }
        path.push(dep.task.clone());
        at = dep;
    }
    path.reverse();
    path
}

/// The timeline as a Mermaid gantt (GitHub and GitLab render it): a section per task, a bar
/// per phase of each attempt (failed ones marked critical), at most `max_tasks` tasks.
pub fn mermaid(t: &Timeline, max_tasks: usize) -> String {
    use std::fmt::Write as _;
    let mut s = String::from("```mermaid\ngantt\n    dateFormat x\n    axisFormat %H:%M:%S\n");
    let ms = |d: DateTime<Utc>| d.timestamp_millis();
    for row in t.rows.iter().filter(|r| !r.bars.is_empty()).take(max_tasks) {
        let _ = writeln!(s, "    section {}", plain(&row.task));
        for b in &row.bars {
            for p in &b.phases {
                let tag = match (b.outcome, p.phase) {
                    ("running", _) => "active, ",
                    ("failed", Phase::Running | Phase::Checks | Phase::Merging) => "crit, ",
                    _ => "done, ",
                };
                let who = if b.kind == "resolver" { "resolver" } else { "attempt" };
                let _ = writeln!(
                    s,
                    "    {who} {} {} :{tag}{}, {}",
                    b.attempt,
                    p.phase.label(),
                    ms(p.from),
                    ms(p.to)
                );
            }
        }
    }
    s.push_str("```\n");
    s
}

/// A name Mermaid's gantt grammar reads as plain text.
fn plain(name: &str) -> String {
    name.chars().map(|c| if matches!(c, ':' | ';' | '#' | '\n') { ' ' } else { c }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{ModelWaitSpan, RunRecord};
    use chrono::{Duration, TimeZone};

    fn at(s: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 5, 10, 0, 0).unwrap() + Duration::seconds(s)
    }

    fn report(tasks: Vec<TaskReport>, state: RunState) -> RunReport {
        let plan = crate::plan::Plan {
            name: "p".into(),
            namespace: "p".into(),
            concurrency: None,
            brief: String::new(),
            state: None,
            tasks: vec![],
        };
        let record = RunRecord {
            run_id: "r".into(),
            plan: "p".into(),
            namespace: "p".into(),
            plan_file: "p.md".into(),
            workdir: ".".into(),
            state,
            started_at: at(0),
            ended_at: (state != RunState::Running).then(|| at(100)),
            concurrency: 2,
            fail_fast: false,
            allow_paid: false,
            workers: false,
            owner: None,
            spec: plan,
            git: None,
        };
        RunReport::build(&record, tasks)
    }

    fn task(id: &str, deps: &[&str], attempts: Vec<AttemptReport>) -> TaskReport {
        let mut t = TaskReport::new(id, "exec");
        t.depends = deps.iter().map(|d| d.to_string()).collect();
        t.attempts = attempts;
        t
    }

    fn attempt(n: u32, from: i64, to: Option<i64>) -> AttemptReport {
        let mut a = AttemptReport::new(n, "exec", at(from));
        a.ended_at = to.map(at);
        a
    }

    #[test]
    fn an_attempt_is_split_into_its_phases_and_a_retry_is_its_own_bar() {
        let mut first = attempt(1, 2, Some(20));
        first.queued_at = Some(at(1));
        first.model_waits = vec![ModelWaitSpan { from: at(3), to: Some(at(8)), model: None }];
        first.reason = Some(Reason::ExitCode);
        let mut second = attempt(2, 21, Some(40));
        second.queued_at = Some(at(20));
        second.checks_at = Some(at(30));
        second.merging_at = Some(at(35));
        let t =
            Timeline::of(&report(vec![task("a", &[], vec![first, second])], RunState::Succeeded), at(999));
        let bars = &t.rows[0].bars;
        assert_eq!(bars.len(), 2);
        assert_eq!((bars[0].outcome, bars[1].outcome), ("failed", "succeeded"));
        let phases = |b: &Bar| b.phases.iter().map(|p| (p.phase, p.from, p.to)).collect::<Vec<_>>();
        assert_eq!(
            phases(&bars[0]),
            [
                (Phase::Queued, at(1), at(2)),
                (Phase::Running, at(2), at(20)),
                (Phase::ModelWait, at(3), at(8))
            ]
        );
        assert_eq!(
            phases(&bars[1]),
            [
                (Phase::Queued, at(20), at(21)),
                (Phase::Running, at(21), at(30)),
                (Phase::Checks, at(30), at(35)),
                (Phase::Merging, at(35), at(40))
            ]
        );
        assert_eq!(t.now, None, "no now-line once the run is over");
    }

    #[test]
    fn a_live_attempt_runs_to_now_with_its_open_wait() {
        let mut a = attempt(1, 5, None);
        a.model_waits = vec![ModelWaitSpan { from: at(6), to: None, model: Some("m".into()) }];
        let t = Timeline::of(&report(vec![task("a", &[], vec![a])], RunState::Running), at(50));
        let b = &t.rows[0].bars[0];
        assert!(b.open && b.outcome == "running" && b.to == at(50));
        assert_eq!(b.phases[1], Span { phase: Phase::ModelWait, from: at(6), to: at(50) });
        assert_eq!(t.now, Some(at(50)));
    }

    #[test]
    fn the_critical_path_follows_the_dependency_that_finished_last() {
        let tasks = vec![
            task("setup", &[], vec![attempt(1, 0, Some(5))]),
            task("quick", &["setup"], vec![attempt(1, 5, Some(10))]),
            task("slow", &["setup"], vec![attempt(1, 5, Some(60))]),
            task("final", &["quick", "slow"], vec![attempt(1, 60, Some(70))]),
            task("side", &[], vec![attempt(1, 0, Some(3))]),
        ];
        let t = Timeline::of(&report(tasks, RunState::Succeeded), at(999));
        assert_eq!(t.critical, ["setup", "slow", "final"]);
        assert_eq!(t.rows.iter().map(|r| r.depth).collect::<Vec<_>>(), [0, 1, 1, 2, 0]);
        // Before anything ran: the longest chain.
        let tasks = vec![task("a", &[], vec![]), task("b", &["a"], vec![]), task("c", &[], vec![])];
        let t = Timeline::of(&report(tasks, RunState::Running), at(1));
        assert_eq!(t.critical, ["a", "b"]);
    }

    #[test]
    fn the_mermaid_gantt_has_a_section_per_task_and_marks_failures() {
        let mut failed = attempt(1, 0, Some(10));
        failed.reason = Some(Reason::ExitCode);
        let tasks =
            vec![task("a:b", &[], vec![failed, attempt(2, 11, Some(20))]), task("never", &[], vec![])];
        let text = mermaid(&Timeline::of(&report(tasks, RunState::Succeeded), at(999)), 50);
        let start = at(0).timestamp_millis();
        assert!(text.starts_with("```mermaid\ngantt\n    dateFormat x\n"), "{text}");
        assert!(text.contains("    section a b\n"), "{text}");
        assert!(text.contains(&format!("attempt 1 running :crit, {start}, {}", start + 10_000)), "{text}");
        assert!(text.contains("attempt 2 running :done, "), "{text}");
        assert!(!text.contains("never"), "tasks that never ran are left out: {text}");
    }
}
