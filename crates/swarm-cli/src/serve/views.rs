//! What the dashboard draws besides the report: a run's timeline (its attempts' phases and its
//! critical path) and the models panel (the hierarchy's standings, what the gateway absorbed
//! for the run, its requests per minute per layer, its spend against the budget).

use super::app::{App, OpResult};
use chrono::{DateTime, TimeZone, Utc};
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::Read;
use std::time::Duration;
use swarm_core::event::EventKind;
use swarm_core::timeline::Timeline;
use swarm_runner::Followed;

/// The most of a run's request log read for its chart.
const REQUEST_LOG_MAX: u64 = 16 * 1024 * 1024;

/// The models panel.
#[derive(Debug, Serialize)]
pub struct ModelsPanel {
    pub namespace: String,
    pub now: DateTime<Utc>,
    /// Every model as `swarm models --json` shows it.
    pub models: Vec<Value>,
    /// The selected run's side, when one was named.
    pub run: Option<RunModels>,
    pub budget_usd: Option<f64>,
    pub budget_tokens: Option<u64>,
}

#[derive(Debug, Serialize)]
pub struct RunModels {
    pub run_id: String,
    /// Refusals (429s, quotas, overloads, …) the gateway absorbed, per model.
    pub absorbed: BTreeMap<String, u64>,
    /// Why, per model: the last refusal's class and what became of the model.
    pub absorbed_last: BTreeMap<String, String>,
    /// Requests answered per minute and layer, oldest first (from the run's request log, on the
    /// host that drove it).
    pub per_minute: Vec<MinuteRequests>,
    pub spent_usd: f64,
    pub spent_tokens: u64,
}

#[derive(Debug, Serialize, PartialEq)]
pub struct MinuteRequests {
    pub minute: DateTime<Utc>,
    pub layer: u8,
    pub requests: u64,
}

impl App {
    /// The run's timeline as it stands now.
    pub fn run_timeline(&self, run: &str) -> OpResult<Timeline> {
        let (_, report) = self.engine.record(Some(run))?;
        Ok(Timeline::of(&report, Utc::now()))
    }

    /// The models panel, with `run`'s side when one is named (the hierarchy as its namespace
    /// sees it).
    pub fn models_panel(&self, run: Option<&str>) -> OpResult<ModelsPanel> {
        let record = run.map(|r| self.engine.record(Some(r))).transpose()?;
        let namespace = record.as_ref().map_or_else(|| self.namespace(), |(r, _)| r.namespace.clone());
        let models = self.engine.models(&namespace)?;
        let run = match record {
            Some((record, report)) => Some(RunModels {
                absorbed: Default::default(),
                absorbed_last: Default::default(),
                per_minute: per_minute(&self.engine.run_dir(&record.run_id).requests_log()),
                spent_usd: report.totals.cost_usd,
                spent_tokens: report.totals.tokens_in + report.totals.tokens_out,
                run_id: record.run_id,
            }),
            None => None,
        };
        let run = run.map(|r| self.with_absorbed(r)).transpose()?;
        let config = self.engine.config();
        Ok(ModelsPanel {
            namespace,
            now: Utc::now(),
            models: models.iter().map(crate::commands::models::row_json).collect(),
            run,
            budget_usd: config.budget_usd(),
            budget_tokens: config.budget_tokens(),
        })
    }

    /// What the gateway absorbed for the run, per its `model_fallback` events.
    fn with_absorbed(&self, mut run: RunModels) -> OpResult<RunModels> {
        let mut follow = self.engine.follow(Some(&run.run_id), 0)?;
        while let Followed::Events(events) = follow.next(Duration::ZERO)? {
            for (_, ev) in events {
                if let EventKind::ModelFallback { model, class, action, .. } = ev.kind {
                    *run.absorbed.entry(model.clone()).or_default() += 1;
                    run.absorbed_last.insert(model, format!("{class}: {action}"));
                }
            }
        }
        Ok(run)
    }
}

/// Requests per minute and layer from a run's request log (`requests.jsonl`); none when the
/// run was driven on another host or made no request.
fn per_minute(path: &std::path::Path) -> Vec<MinuteRequests> {
    let Ok(file) = std::fs::File::open(path) else { return vec![] };
    let mut text = String::new();
    if file.take(REQUEST_LOG_MAX).read_to_string(&mut text).is_err() {
        return vec![];
    }
    let mut counts: BTreeMap<(i64, u8), u64> = BTreeMap::new();
    for line in text.lines() {
        let Ok(v) = serde_json::from_str::<Value>(line) else { continue };
        let (Some(at), Some(layer)) = (v["arrived_ms"].as_i64(), v["layer"].as_u64()) else { continue };
        *counts.entry((at.div_euclid(60_000), layer.min(u8::MAX as u64) as u8)).or_default() += 1;
    }
    counts
        .into_iter()
        .filter_map(|((minute, layer), requests)| {
            let minute = Utc.timestamp_millis_opt(minute * 60_000).single()?;
            Some(MinuteRequests { minute, layer, requests })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_counted_per_minute_and_layer() {
        let d = tempfile::tempdir().unwrap();
        let log = d.path().join("requests.jsonl");
        let lines = [
            r#"{"arrived_ms": 120000, "layer": 1}"#,
            r#"{"arrived_ms": 150000, "layer": 1}"#,
            r#"{"arrived_ms": 150001, "layer": 2}"#,
            "not json",
            r#"{"arrived_ms": 180000, "layer": 1}"#,
        ];
        std::fs::write(&log, lines.join("\n")).unwrap();
        let at = |ms| Utc.timestamp_millis_opt(ms).unwrap();
        assert_eq!(
            per_minute(&log),
            [
                MinuteRequests { minute: at(120_000), layer: 1, requests: 2 },
                MinuteRequests { minute: at(120_000), layer: 2, requests: 1 },
                MinuteRequests { minute: at(180_000), layer: 1, requests: 1 },
            ]
        );
        assert!(per_minute(&d.path().join("none.jsonl")).is_empty());
    }
}
