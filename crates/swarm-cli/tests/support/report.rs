//! Reading a run's report.json: a task, its state, reason and attempts.

use super::*;
/// The task `id` of a report (`swarm status --json` or report.json).
pub fn task<'a>(report: &'a Value, id: &str) -> &'a Value {
    report["tasks"]
        .as_array()
        .and_then(|ts| ts.iter().find(|t| t["id"] == id))
        .unwrap_or_else(|| panic!("no task `{id}` in report:\n{report:#}"))
}

pub fn state<'a>(report: &'a Value, id: &str) -> &'a str {
    task(report, id)["state"].as_str().unwrap_or_else(|| panic!("task `{id}` has no state"))
}

pub fn reason<'a>(report: &'a Value, id: &str) -> Option<&'a str> {
    task(report, id)["reason"].as_str()
}

pub fn detail<'a>(report: &'a Value, id: &str) -> &'a str {
    task(report, id)["detail"].as_str().unwrap_or("")
}

pub fn attempts<'a>(report: &'a Value, id: &str) -> &'a [Value] {
    task(report, id)["attempts"].as_array().map(Vec::as_slice).unwrap_or(&[])
}

/// Asserts the task's state and reason, showing the whole report when they differ.
pub fn assert_task(report: &Value, id: &str, want_state: &str, want_reason: Option<&str>) {
    let t = task(report, id);
    assert_eq!(
        (t["state"].as_str(), t["reason"].as_str()),
        (Some(want_state), want_reason),
        "task `{id}`: unexpected state/reason\n{report:#}"
    );
}

/// An RFC 3339 timestamp field.
pub fn time(v: &Value) -> DateTime<Utc> {
    let s = v.as_str().unwrap_or_else(|| panic!("not a timestamp: {v}"));
    DateTime::parse_from_rfc3339(s).unwrap_or_else(|e| panic!("bad RFC 3339 `{s}`: {e}")).with_timezone(&Utc)
}

/// Polls `swarm status RUN --json` until `pred` holds; returns that report.
pub fn wait_status(p: &Project, run: &str, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
    wait_for(Duration::from_secs(15), what, || {
        let out = p.swarm(&["status", run, "--json"]);
        if out.code() != Some(0) {
            return None; // the run may not be in the store yet
        }
        let v = out.json();
        pred(&v).then_some(v)
    })
}
