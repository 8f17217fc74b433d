//! Deciding what a model answers to one request: a pure function of its script, the request and
//! how many requests the model has seen. The server keeps no conversation state; the turn is read
//! from the conversation itself. Nothing here knows a wire format.

use std::time::Duration;

use serde_json::{json, Value};

use crate::request::{ReportTarget, Request};
use crate::scenario::{LimitKind, ModelScript, Step};
use crate::tools::{self, ToolCall};

/// What to do with a request.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// Keep the connection open without answering.
    Hang,
    /// A 429 (or, with `stream`, a failure inside the event stream) saying to wait `retry_after`
    /// seconds; `message` overrides the provider's wording.
    RateLimited { retry_after: u64, message: Option<String>, kind: LimitKind, header: bool, stream: bool },
    /// An HTTP error in the provider's error shape.
    Error { status: u16, message: String, retry_after: Option<u64> },
    /// An answer, after `delay`.
    Answer { delay: Duration, chunk_delay: Duration, turn: usize, answer: Answer },
}

/// The assistant message of an answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    Text(String),
    ToolCall(ToolCall),
}

/// The reply of `script` to `request`, the model's `nth` request (1-based) since the server started.
pub fn decide(script: &ModelScript, request: &Request, nth: u64) -> Reply {
    if let Some(failure) = failure(script, nth) {
        return failure;
    }
    let answer = match &request.json_schema {
        // A utility call that must parse as JSON (Gemini CLI's model router): any valid instance.
        Some(schema) => Answer::Text(instance_of(schema).to_string()),
        None => step_answer(script, request),
    };
    Reply::Answer {
        delay: Duration::from_millis(script.delay_ms),
        chunk_delay: Duration::from_millis(script.chunk_delay_ms),
        turn: request.turn,
        answer,
    }
}

/// The scripted failure for the model's `nth` request, checked in order: hang, rate limit, error.
fn failure(script: &ModelScript, nth: u64) -> Option<Reply> {
    if script.hang {
        return Some(Reply::Hang);
    }
    if let Some(limit) = script.rate_limit.as_ref().filter(|limit| nth <= limit.first) {
        return Some(Reply::RateLimited {
            retry_after: limit.retry_after,
            message: limit.message.clone(),
            kind: limit.kind,
            header: limit.header,
            stream: limit.stream,
        });
    }
    let error = script.error.as_ref().filter(|error| error.first.is_none_or(|first| nth <= first))?;
    Some(Reply::Error {
        status: error.status,
        message: error.message.clone(),
        retry_after: error.retry_after,
    })
}

/// The answer the script's step for this turn gives; past the last step, the last `say`.
fn step_answer(script: &ModelScript, request: &Request) -> Answer {
    match script.steps.get(request.turn) {
        None => Answer::Text(script.final_text().to_string()),
        Some(Step::Say(text)) => Answer::Text(text.clone()),
        Some(step @ (Step::Write { .. } | Step::Report { .. })) => match file_of(step, request) {
            Some((path, content)) => match tools::write_call(&request.tools, &path, &content) {
                Some(call) => Answer::ToolCall(call),
                None => Answer::Text(listing(&script.steps[request.turn..], request)),
            },
            None => Answer::Text(
                "fake-llm: the script reports back, but the conversation has no swarm report footer \
                 (\"write `PATH` (also in $SWARM_COMPLETION_FILE) as JSON: …\")."
                    .to_string(),
            ),
        },
        Some(Step::Call { name, arguments }) => match tools::named_call(&request.tools, name, arguments) {
            Some(call) => Answer::ToolCall(call),
            None => Answer::Text(format!(
                "fake-llm: the script calls tool `{name}` with {}, but the agent does not offer it.",
                Value::to_string(arguments)
            )),
        },
    }
}

/// The file a `write` or `report` step writes: its path and content (`{task}` and `{run}` naming
/// the swarm task the conversation is for, from its footer). `None` for other steps, and for a
/// report without a footer to say where.
fn file_of(step: &Step, request: &Request) -> Option<(String, String)> {
    let fill = |s: &str| fill_target(s, request.report_target.as_ref());
    match step {
        Step::Write { path, content } => Some((fill(path), fill(content))),
        Step::Report { .. } => request.report_target.as_ref().map(|t| (t.path.clone(), report(t, step))),
        _ => None,
    }
}

/// Without a file tool, files in aider's "whole" edit format (each path alone on the line before
/// its fence), which aider applies and other agents just show. An agent editing by text makes
/// all its edits in one answer (aider's `--message` is one turn), so the `write` and `report`
/// steps in a row from this one are all listed.
fn listing(steps: &[Step], request: &Request) -> String {
    let mut text = String::new();
    for (path, content) in steps.iter().map_while(|step| file_of(step, request)) {
        let newline = if content.ends_with('\n') { "" } else { "\n" };
        if !text.is_empty() {
            text.push('\n');
        }
        text.push_str(&format!("{path}\n```\n{content}{newline}```\n"));
    }
    text
}

fn fill_target(text: &str, target: Option<&ReportTarget>) -> String {
    match target {
        Some(t) => text.replace("{task}", &t.task_id).replace("{run}", &t.run_id),
        None => text.to_string(),
    }
}

/// swarm's completion.json of a `report` step, pretty-printed.
fn report(target: &ReportTarget, step: &Step) -> String {
    let Step::Report { status, summary, files_changed, follow_ups, blockers } = step else {
        unreachable!("only report steps write reports")
    };
    let report = json!({
        "schema_version": 1,
        "run_id": target.run_id,
        "task_id": target.task_id,
        "status": status,
        "summary": fill_target(summary, Some(target)),
        "files_changed": files_changed,
        "tests": [],
        "follow_ups": follow_ups,
        "blockers": blockers,
    });
    format!("{report:#}\n")
}

/// A small value matching a JSON schema (OpenAPI-style upper-case types too): the first enum
/// value, 1 for numbers, `false`, `[]`, "fake-llm" for strings, objects with every property.
fn instance_of(schema: &Value) -> Value {
    if let Some(first) = schema.get("enum").and_then(Value::as_array).and_then(|values| values.first()) {
        return first.clone();
    }
    let kind = schema.get("type").and_then(Value::as_str).unwrap_or("object").to_ascii_lowercase();
    match kind.as_str() {
        "object" => {
            let props = schema.get("properties").and_then(Value::as_object);
            Value::Object(props.into_iter().flatten().map(|(k, v)| (k.clone(), instance_of(v))).collect())
        }
        "array" => json!([]),
        "integer" | "number" => json!(1),
        "boolean" => json!(false),
        _ => json!("fake-llm"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::Entry;
    use crate::scenario::{ErrorReply, RateLimit};
    use crate::tools::OfferedTool;

    fn opencode_tools() -> Vec<OfferedTool> {
        vec![OfferedTool::function(
            "write",
            json!({ "type": "object", "properties": { "content": {}, "filePath": {} } }),
        )]
    }

    fn request(tools: Vec<OfferedTool>, entries: &[Entry]) -> Request {
        Request { model: "m".into(), tools, ..Request::default() }.with_conversation(entries)
    }

    #[test]
    fn steps_follow_the_model_turns() {
        let script = ModelScript::steps([Step::write("hello.txt", "hi\n"), Step::say("DONE")]);
        let first = request(opencode_tools(), &[Entry::User("go".into())]);
        let Reply::Answer { answer: Answer::ToolCall(call), turn: 0, .. } = decide(&script, &first, 1) else {
            panic!("expected a tool call")
        };
        assert_eq!(call.arguments, json!({ "filePath": "hello.txt", "content": "hi\n" }));
        let second = request(opencode_tools(), &[Entry::User("go".into()), Entry::Model, Entry::Other]);
        assert!(matches!(
            decide(&script, &second, 2),
            Reply::Answer { answer: Answer::Text(ref text), turn: 1, .. } if text == "DONE"
        ));
    }

    #[test]
    fn report_writes_completion_json_where_the_footer_says() {
        let footer = "Do it.\n\n---\n\nWhen you are done (or cannot go on), report back before you exit: write \
            `/tmp/r/completions/t.1.json` (also in $SWARM_COMPLETION_FILE) as JSON:\n\
            {\"schema_version\": 1, \"run_id\": \"R1\", \"task_id\": \"t\", \"status\": \"done|partial|blocked|failed\"}";
        let script = ModelScript::steps([Step::Report {
            status: "done".into(),
            summary: "all good {task}".into(),
            files_changed: vec![],
            follow_ups: vec![],
            blockers: vec![],
        }]);
        let req = request(opencode_tools(), &[Entry::Other, Entry::User(footer.into())]);
        let Reply::Answer { answer: Answer::ToolCall(call), .. } = decide(&script, &req, 1) else {
            panic!("expected a tool call")
        };
        assert_eq!(call.arguments["filePath"], "/tmp/r/completions/t.1.json");
        let report: Value = serde_json::from_str(call.arguments["content"].as_str().unwrap()).unwrap();
        assert_eq!((report["run_id"].as_str(), report["task_id"].as_str()), (Some("R1"), Some("t")));
        assert_eq!(
            (report["status"].as_str(), report["summary"].as_str()),
            (Some("done"), Some("all good t"))
        );
        // Without a footer the model says so instead of guessing a path.
        let plain = request(opencode_tools(), &[Entry::User("go".into())]);
        assert!(
            matches!(decide(&script, &plain, 1), Reply::Answer { answer: Answer::Text(ref t), .. } if t.contains("footer"))
        );
    }

    #[test]
    fn exhausted_steps_repeat_the_last_say() {
        let script = ModelScript::steps([Step::say("first"), Step::write("a", "b")]);
        let late = request(Vec::new(), &[Entry::Model, Entry::Model, Entry::Model]);
        assert!(
            matches!(decide(&script, &late, 1), Reply::Answer { answer: Answer::Text(ref t), .. } if t == "first")
        );
    }

    #[test]
    fn write_without_a_file_tool_is_a_whole_file_listing() {
        let script = ModelScript::steps([Step::write("notes.md", "# hi")]);
        let Reply::Answer { answer: Answer::Text(text), .. } = decide(&script, &request(vec![], &[]), 1)
        else {
            panic!()
        };
        assert_eq!(text, "notes.md\n```\n# hi\n```\n");
        // An agent editing by text gets every file of the steps in a row in one answer.
        let script =
            ModelScript::steps([Step::write("a.md", "A\n"), Step::write("b.md", "B"), Step::say("DONE")]);
        let Reply::Answer { answer: Answer::Text(text), .. } = decide(&script, &request(vec![], &[]), 1)
        else {
            panic!()
        };
        assert_eq!(text, "a.md\n```\nA\n```\n\nb.md\n```\nB\n```\n");
    }

    #[test]
    fn failures_come_first_and_can_stop() {
        let plain = request(Vec::new(), &[]);
        let script = ModelScript {
            rate_limit: Some(RateLimit {
                first: 2,
                retry_after: 3,
                message: None,
                kind: LimitKind::Rate,
                header: true,
                stream: false,
            }),
            error: Some(ErrorReply {
                status: 503,
                message: "busy".into(),
                first: Some(3),
                retry_after: None,
            }),
            ..ModelScript::default()
        };
        assert!(matches!(decide(&script, &plain, 1), Reply::RateLimited { retry_after: 3, .. }));
        assert!(matches!(decide(&script, &plain, 2), Reply::RateLimited { .. }));
        assert!(matches!(decide(&script, &plain, 3), Reply::Error { status: 503, .. }));
        assert!(matches!(decide(&script, &plain, 4), Reply::Answer { .. }));
        let hang = ModelScript { hang: true, ..script };
        assert_eq!(decide(&hang, &plain, 1), Reply::Hang);
    }

    #[test]
    fn json_mode_answers_an_instance_of_the_schema() {
        let schema = json!({ "type": "OBJECT", "properties": {
            "complexity_reasoning": { "type": "STRING" }, "complexity_score": { "type": "INTEGER" },
            "mode": { "type": "STRING", "enum": ["fast", "slow"] } } });
        let req = Request { json_schema: Some(schema), ..request(Vec::new(), &[]) };
        let Reply::Answer { answer: Answer::Text(text), .. } = decide(&ModelScript::default(), &req, 1)
        else {
            panic!()
        };
        let value: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            value,
            json!({ "complexity_reasoning": "fake-llm", "complexity_score": 1, "mode": "fast" })
        );
    }
}
