//! The scenario: what each fake model does, read from a TOML file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::Error;

/// A whole scenario: the scripts of every model the server knows, and where to log requests.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Append one JSON line per request to this file. [`Scenario::from_file`] resolves a relative
    /// path against the scenario file's directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log: Option<PathBuf>,
    /// Model name (what clients send as `model`) → its script.
    #[serde(default)]
    pub models: BTreeMap<String, ModelScript>,
    /// Limits shared by several models, like OpenRouter's account-wide bucket for every `:free`
    /// model: `[groups.free] models = ["a", "b"], limits = { rpm = 20, rpd = 50 }`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub groups: BTreeMap<String, GroupScript>,
}

/// A bucket of limits several models draw on together.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupScript {
    pub models: Vec<String>,
    pub limits: Limits,
}

/// How one model behaves. Per request, in this order: `limits`, `hang`, `rate_limit`, `error`,
/// `delay_ms`, then the step chosen from the conversation (see `docs/fake-llm.md`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelScript {
    /// One step per conversation turn; the step for a request is the number of model turns
    /// since its last user message. Past the end, the last `say` is repeated (or `DONE`).
    #[serde(default)]
    pub steps: Vec<Step>,
    /// Answer 429 with a `retry-after` header to this model's first `first` requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<RateLimit>,
    /// Enforce a provider's limits: requests per minute and per day, tokens per minute (sliding
    /// windows); a request past one gets 429 with the seconds until the window frees.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<Limits>,
    /// Answer with an HTTP error (to every request, or to the first `first` ones).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorReply>,
    /// Accept the request and never answer (until the server shuts down).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub hang: bool,
    /// Wait this long before answering.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub delay_ms: u64,
    /// When streaming, wait this long between chunks.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub chunk_delay_ms: u64,
    /// Token counts to report; estimated from the text (4 bytes a token) when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
    /// Like Gemini 3 on its OpenAI-compatible endpoint (Chat format): each tool call carries
    /// `extra_content.google.thought_signature`, and a request whose current-turn tool call came
    /// back without it gets Google's 400.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub thought_signatures: bool,
}

/// One scripted turn.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Step {
    /// Call the file-writing tool the agent offers (or, when it offers none, answer with text
    /// quoting the content).
    Write { path: String, content: String },
    /// Answer with this text and `finish_reason: stop`.
    Say(String),
    /// Write swarm's completion report: call the agent's file tool with a completion.json (this
    /// `status` and `summary`) at the path, run id and task id read from swarm's report footer in
    /// the conversation; `files_changed`, `follow_ups` and `blockers` go into the report as
    /// given (default: empty).
    Report {
        status: String,
        summary: String,
        #[serde(default)]
        files_changed: Vec<String>,
        #[serde(default)]
        follow_ups: Vec<String>,
        #[serde(default)]
        blockers: Vec<String>,
    },
    /// Call an arbitrary tool with these arguments (answers with text if the tool is not offered).
    Call {
        name: String,
        #[serde(default = "empty_object")]
        arguments: serde_json::Value,
    },
}

/// `limits = { rpm = 6, rpd = 100, tpm = 20000 }`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rpm: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rpd: Option<u64>,
    /// Tokens per minute, counting a request's prompt at 4 bytes a token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tpm: Option<u64>,
}

/// `rate_limit = { first = 3, retry_after = 1 }`: answered the way the request's provider says it
/// (see `docs/fake-llm.md`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    /// How many requests (counted per model, from server start) get a 429.
    pub first: u64,
    /// Seconds to wait: the `retry-after` header, "try again in Ns" in OpenAI messages, Gemini's
    /// `RetryInfo.retryDelay`.
    #[serde(default = "one")]
    pub retry_after: u64,
    /// The error message (default: the provider's own wording, naming the model).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// A passing rate limit (`rate`, the default) or a spent quota (`quota`: OpenAI
    /// `insufficient_quota`, a Gemini per-day quota without `RetryInfo`).
    #[serde(default, skip_serializing_if = "LimitKind::is_rate")]
    pub kind: LimitKind,
    /// Send the `retry-after` header (default true; false for a bare 429).
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub header: bool,
    /// Fail inside a 200 event stream instead of with HTTP 429, where the provider does (OpenAI
    /// Responses `response.failed`, Anthropic's `error` event) and the request streams.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub stream: bool,
}

/// What a 429 says about the future.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LimitKind {
    /// A per-minute limit: retrying after `retry_after` helps.
    #[default]
    Rate,
    /// A spent quota (per day, or billing): retrying soon does not help.
    Quota,
}

impl LimitKind {
    fn is_rate(&self) -> bool {
        *self == LimitKind::Rate
    }
}

/// `error = { status = 500, message = "upstream exploded" }`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErrorReply {
    /// HTTP status, 400–599.
    pub status: u16,
    #[serde(default = "default_error_message")]
    pub message: String,
    /// Only the first N requests fail; absent: every request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first: Option<u64>,
    /// Seconds, sent as the `retry-after` header; absent: no header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
}

/// Reported token usage; `total_tokens` is their sum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Usage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
}

impl Scenario {
    /// Reads a TOML scenario; a relative `log` path is taken relative to the file's directory.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Scenario, Error> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path)
            .map_err(|source| Error::ReadScenario { path: path.to_path_buf(), source })?;
        let mut scenario = Scenario::from_toml(&text).map_err(|err| match err {
            Error::ParseScenario { message, .. } => {
                Error::ParseScenario { origin: path.display().to_string(), message }
            }
            other => other,
        })?;
        if let Some(log) = scenario.log.as_mut() {
            if log.is_relative() {
                *log = path.parent().unwrap_or(Path::new(".")).join(&*log);
            }
        }
        Ok(scenario)
    }

    /// Parses and validates a TOML scenario.
    pub fn from_toml(text: &str) -> Result<Scenario, Error> {
        let scenario: Scenario = toml::from_str(text).map_err(|err| Error::ParseScenario {
            origin: "scenario".to_string(),
            message: err.to_string(),
        })?;
        scenario.validate()?;
        Ok(scenario)
    }

    /// Checks what serde cannot: status ranges, empty names.
    pub fn validate(&self) -> Result<(), Error> {
        for (name, script) in &self.models {
            if name.is_empty() {
                return Err(Error::InvalidScenario("a model name is empty".to_string()));
            }
            if let Some(error) = &script.error {
                if !(400..=599).contains(&error.status) {
                    return Err(Error::InvalidScenario(format!(
                        "model `{name}`: error.status must be 400-599, not {}",
                        error.status
                    )));
                }
            }
            for (index, step) in script.steps.iter().enumerate() {
                let bad = match step {
                    Step::Write { path, .. } if path.is_empty() => Some("write.path is empty"),
                    Step::Call { name, .. } if name.is_empty() => Some("call.name is empty"),
                    Step::Call { arguments, .. } if !arguments.is_object() => {
                        Some("call.arguments must be a table")
                    }
                    Step::Report { status, .. }
                        if !["done", "partial", "blocked", "failed"].contains(&status.as_str()) =>
                    {
                        Some("report.status must be done, partial, blocked or failed")
                    }
                    _ => None,
                };
                if let Some(bad) = bad {
                    return Err(Error::InvalidScenario(format!("model `{name}`, step {index}: {bad}")));
                }
            }
        }
        for (group, script) in &self.groups {
            if let Some(unknown) = script.models.iter().find(|m| !self.models.contains_key(*m)) {
                return Err(Error::InvalidScenario(format!("group `{group}`: no model `{unknown}`")));
            }
        }
        Ok(())
    }

    /// Adds (or replaces) a model, for scenarios built in code.
    pub fn with_model(mut self, name: impl Into<String>, script: ModelScript) -> Scenario {
        self.models.insert(name.into(), script);
        self
    }
}

impl ModelScript {
    /// A model answering with these steps.
    pub fn steps(steps: impl IntoIterator<Item = Step>) -> ModelScript {
        ModelScript { steps: steps.into_iter().collect(), ..ModelScript::default() }
    }

    /// What the model answers once its steps are used up: the last `say`, or `DONE`.
    pub fn final_text(&self) -> &str {
        self.steps
            .iter()
            .rev()
            .find_map(|step| match step {
                Step::Say(text) => Some(text.as_str()),
                _ => None,
            })
            .unwrap_or("DONE")
    }
}

impl Step {
    pub fn write(path: impl Into<String>, content: impl Into<String>) -> Step {
        Step::Write { path: path.into(), content: content.into() }
    }

    pub fn say(text: impl Into<String>) -> Step {
        Step::Say(text.into())
    }
}

fn is_zero(value: &u64) -> bool {
    *value == 0
}

fn one() -> u64 {
    1
}

fn yes() -> bool {
    true
}

fn is_true(value: &bool) -> bool {
    *value
}

fn empty_object() -> serde_json::Value {
    serde_json::Value::Object(serde_json::Map::new())
}

fn default_error_message() -> String {
    "fake-llm: scripted error".to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_example() {
        let scenario = Scenario::from_toml(
            r#"
            log = "requests.jsonl"
            [models.ok]
            steps = [ { write = { path = "hello.txt", content = "hi\n" } }, { say = "DONE" } ]
            [models.r429]
            rate_limit = { first = 1000, retry_after = 1 }
            [models.quota]
            rate_limit = { first = 1, kind = "quota", header = false, stream = true }
            [models.broken]
            error = { status = 500, message = "upstream exploded" }
            [models.hang]
            hang = true
            [models.slow]
            delay_ms = 2000
            steps = [ { say = "DONE" } ]
            usage = { prompt_tokens = 1200, completion_tokens = 300 }
            [models.tool]
            steps = [ { call = { name = "bash", arguments = { command = "ls" } } } ]
            "#,
        )
        .unwrap();
        assert_eq!(scenario.models.len(), 7);
        let quota = scenario.models["quota"].rate_limit.as_ref().unwrap();
        assert_eq!(
            (quota.kind, quota.header, quota.stream, quota.retry_after),
            (LimitKind::Quota, false, true, 1)
        );
        let rate = scenario.models["r429"].rate_limit.as_ref().unwrap();
        assert_eq!((rate.kind, rate.header, rate.stream), (LimitKind::Rate, true, false));
        assert_eq!(scenario.models["ok"].steps[0], Step::write("hello.txt", "hi\n"));
        assert_eq!(scenario.models["r429"].rate_limit.as_ref().unwrap().first, 1000);
        assert_eq!(scenario.models["broken"].error.as_ref().unwrap().status, 500);
        assert!(scenario.models["hang"].hang);
        assert_eq!(scenario.models["slow"].usage.unwrap().prompt_tokens, 1200);
        assert_eq!(
            scenario.models["tool"].steps[0],
            Step::Call { name: "bash".into(), arguments: serde_json::json!({"command": "ls"}) }
        );
    }

    #[test]
    fn unknown_keys_and_bad_values_are_errors() {
        let err = Scenario::from_toml("[models.a]\nstepz = []\n").unwrap_err().to_string();
        assert!(err.contains("stepz"), "{err}");
        let err = Scenario::from_toml("[models.a]\nerror = { status = 200 }\n").unwrap_err().to_string();
        assert!(err.contains("400-599"), "{err}");
        let err = Scenario::from_toml("[models.a]\nsteps = [ { shout = \"x\" } ]\n").unwrap_err().to_string();
        assert!(err.contains("shout"), "{err}");
    }

    #[test]
    fn final_text_is_the_last_say_or_done() {
        assert_eq!(ModelScript::default().final_text(), "DONE");
        let script = ModelScript::steps([Step::say("one"), Step::write("a", "b"), Step::say("two")]);
        assert_eq!(script.final_text(), "two");
    }

    #[test]
    fn relative_log_path_follows_the_scenario_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("s.toml");
        std::fs::write(&file, "log = \"req.jsonl\"\n[models.ok]\n").unwrap();
        let scenario = Scenario::from_file(&file).unwrap();
        assert_eq!(scenario.log.unwrap(), dir.path().join("req.jsonl"));
    }
}
