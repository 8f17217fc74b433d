//! Human renderings of plans, runs and statuses.

use chrono::{DateTime, Local, TimeZone, Utc};
use std::fmt::Write as _;
use swarm_core::duration;
use swarm_core::plan::Plan;
use swarm_core::report::{RunRecord, RunReport};
use swarm_core::state::RunState;
use swarm_runner::util::owner_status;

fn secs(from: DateTime<Utc>, to: Option<DateTime<Utc>>) -> String {
    let ms = (to.unwrap_or_else(Utc::now) - from).num_milliseconds().max(0);
    format!("{:.1}s", ms as f64 / 1000.0)
}

pub fn plan(p: &Plan) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "plan {} (namespace {}), {} tasks", p.name, p.namespace, p.tasks.len());
    if let Some(c) = p.concurrency {
        let _ = writeln!(s, "concurrency {c}");
    }
    for t in &p.tasks {
        let _ = writeln!(s, "\n{}: {}", t.id, t.title);
        let _ = writeln!(s, "  agent    {}", t.agent);
        let mut field = |k: &str, v: Option<String>| {
            if let Some(v) = v {
                let _ = writeln!(s, "  {k:<8} {v}");
            }
        };
        field("model", t.model.clone());
        field("tier", t.tier.map(|x| x.to_string()));
        field("depends", (!t.depends.is_empty()).then(|| t.depends.join(", ")));
        field("timeout", t.timeout.map(duration::format));
        field("stall", t.stall.map(duration::format));
        field("retries", (t.retries > 0).then(|| t.retries.to_string()));
        field("check", t.check.clone());
        field("command", t.command.clone());
        field("paths", (!t.paths.is_empty()).then(|| t.paths.join(", ")));
        let first = t.prompt.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
        if !first.is_empty() {
            let _ =
                writeln!(s, "  prompt   {}{}", first, if t.prompt.lines().count() > 1 { " …" } else { "" });
        }
    }
    s
}

/// Whether the orchestrator recorded in `record` still drives it, as far as we can tell.
fn orchestrator_note(record: &RunRecord) -> Option<String> {
    if record.state != RunState::Running {
        return None;
    }
    let owner = record.owner.as_ref()?;
    (!owner_status(owner).is_alive()).then(|| {
        format!(
            "orchestrator (pid {} on {}) is gone: `swarm resume {}` continues it",
            owner.pid, owner.host, record.run_id
        )
    })
}

pub fn status(r: &RunReport, record: &RunRecord) -> String {
    status_in(r, record, &Local)
}

/// [`status`] with the start time shown in `tz`.
fn status_in<Tz: TimeZone>(r: &RunReport, record: &RunRecord, tz: &Tz) -> String
where
    Tz::Offset: std::fmt::Display,
{
    let mut s = String::new();
    let started = r.started_at.with_timezone(tz).format("%Y-%m-%d %H:%M:%S");
    let _ = writeln!(
        s,
        "run {}  plan {}  {}  started {}  {}",
        r.run_id,
        r.plan,
        r.state,
        started,
        secs(r.started_at, r.ended_at)
    );
    if let Some(note) = orchestrator_note(record) {
        let _ = writeln!(s, "warning: {note}");
    }
    let c = &r.counts;
    let _ = writeln!(
        s,
        "{}/{} finished: {} succeeded, {} failed, {} blocked, {} cancelled; {} running, {} ready, {} pending",
        c.finished(),
        c.total(),
        c.succeeded,
        c.failed,
        c.blocked,
        c.cancelled,
        c.running,
        c.ready,
        c.pending
    );
    if r.totals.tokens_in + r.totals.tokens_out > 0 || r.totals.cost_usd > 0.0 {
        let _ = writeln!(
            s,
            "tokens {} in / {} out, cost ${:.4}",
            r.totals.tokens_in, r.totals.tokens_out, r.totals.cost_usd
        );
        for m in r.by_model.iter().filter(|m| !m.model.is_empty()) {
            let _ = writeln!(s, "  {}: {}", m.model, m.summary());
        }
    }
    let w = r.tasks.iter().map(|t| t.id.len()).max().unwrap_or(4).clamp(4, 32);
    // A run on workers says where each task's last attempt runs (or ran).
    let wheres: Vec<String> = r.tasks.iter().map(|t| worker_of(t.attempts.last())).collect();
    let ww = wheres.iter().map(String::len).max().unwrap_or(0).clamp(6, 32);
    let (head, gap) =
        if record.workers { (format!("  {:<ww$}", "WORKER"), ww + 2) } else { (String::new(), 0) };
    let _ = writeln!(
        s,
        "\n{:<w$}  {:<9}  {:<8}{head}  {:>3}  {:>8}  DETAIL",
        "TASK", "STATE", "AGENT", "TRY", "TIME"
    );
    for (t, at) in r.tasks.iter().zip(&wheres) {
        let last = t.attempts.last();
        let time = last.map(|a| secs(a.started_at, a.ended_at)).unwrap_or_default();
        let detail = match (t.reason, &t.detail) {
            (Some(reason), Some(d)) => format!("{reason}: {d}"),
            (Some(reason), None) => reason.to_string(),
            (None, Some(d)) => d.clone(),
            (None, None) => String::new(),
        };
        let at = if gap > 0 { format!("  {at:<ww$}") } else { String::new() };
        let _ = writeln!(
            s,
            "{:<w$}  {:<9}  {:<8}{at}  {:>3}  {:>8}  {}",
            t.id,
            t.state.as_str(),
            t.agent,
            t.attempts.len(),
            time,
            detail
        );
    }
    s
}

/// `worker@host` of an attempt a worker took; `-` while none has (or for none at all).
fn worker_of(a: Option<&swarm_core::report::AttemptReport>) -> String {
    match a.and_then(|a| a.worker.as_deref().map(|w| (w, a.host.as_deref()))) {
        Some((w, Some(h))) => format!("{w}@{h}"),
        Some((w, None)) => w.to_string(),
        None => "-".into(),
    }
}

pub fn runs(runs: &[RunRecord]) -> String {
    if runs.is_empty() {
        return "no runs yet: start one with `swarm run PLAN`\n".into();
    }
    let mut s = String::new();
    let _ =
        writeln!(s, "{:<22}  {:<20}  {:<9}  {:<19}  {:>8}  TASKS", "RUN", "PLAN", "STATE", "STARTED", "TIME");
    for r in runs {
        let started = r.started_at.with_timezone(&Local).format("%Y-%m-%d %H:%M:%S");
        let _ = writeln!(
            s,
            "{:<22}  {:<20}  {:<9}  {:<19}  {:>8}  {}",
            r.run_id,
            r.plan,
            r.state.as_str(),
            started,
            secs(r.started_at, r.ended_at),
            r.spec.tasks.len()
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use swarm_testkit::fixtures;

    /// `swarm status` of the fixed finished run (times in UTC).
    #[test]
    fn status_of_a_finished_run() {
        let (record, report) = fixtures::finished_run();
        insta::assert_snapshot!(status_in(&report, &record, &Utc));
    }

    /// A run on workers says which worker, on which host, ran each task's last attempt.
    #[test]
    fn status_of_a_run_on_workers_names_the_workers() {
        let (mut record, mut report) = fixtures::finished_run();
        record.workers = true;
        let mut ran = report.tasks.iter_mut().filter_map(|t| t.attempts.last_mut());
        if let Some(a) = ran.next() {
            (a.worker, a.host) = (Some("w1".into()), Some("build-7".into()));
        }
        let text = status_in(&report, &record, &Utc);
        let lines: Vec<&str> = text.lines().collect();
        let head = lines.iter().position(|l| l.starts_with("TASK")).expect("the table");
        let (agent, worker, tries) =
            (lines[head].find("AGENT"), lines[head].find("WORKER"), lines[head].find("TRY"));
        assert!(agent < worker && worker < tries && agent.is_some(), "{text}");
        assert!(lines[head + 1..].iter().any(|l| l.contains("  w1@build-7  ")), "{text}");
        assert!(lines[head + 1..].iter().filter(|l| l.contains("  -  ")).count() >= 1, "{text}");
    }
}
