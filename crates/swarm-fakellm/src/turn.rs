//! Deciding what a model answers to one request: a pure function of its script, the request and
//! how many requests the model has seen. The server keeps no conversation state; the turn is read
//! from the conversation itself.

use std::time::Duration;

use serde_json::Value;

use crate::openai::ChatRequest;
use crate::scenario::{ModelScript, Step};
use crate::tools::{self, ToolCall};

/// What to do with a request.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// Keep the connection open without answering.
    Hang,
    /// HTTP 429 with `retry-after: retry_after` (seconds).
    RateLimited { retry_after: u64, message: String },
    /// An HTTP error with an OpenAI-style error body.
    Error { status: u16, message: String, retry_after: Option<u64> },
    /// A completion, after `delay`.
    Answer { delay: Duration, chunk_delay: Duration, turn: usize, answer: Answer },
}

/// The assistant message of a completion.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    Text(String),
    ToolCall(ToolCall),
}

/// The reply of `script` to `request`, the model's `nth` request (1-based) since the server started.
pub fn decide(model: &str, script: &ModelScript, request: &ChatRequest, nth: u64) -> Reply {
    if script.hang {
        return Reply::Hang;
    }
    if let Some(limit) = &script.rate_limit {
        if nth <= limit.first {
            let message = limit.message.clone().unwrap_or_else(|| {
                format!(
                    "Rate limit reached for model `{model}` (fake-llm): 429 Too Many Requests. \
                     Please try again in {}s.",
                    limit.retry_after
                )
            });
            return Reply::RateLimited { retry_after: limit.retry_after, message };
        }
    }
    if let Some(error) = &script.error {
        if error.first.is_none_or(|first| nth <= first) {
            return Reply::Error {
                status: error.status,
                message: error.message.clone(),
                retry_after: error.retry_after,
            };
        }
    }
    let turn = request.assistant_turns;
    let answer = match script.steps.get(turn) {
        None => Answer::Text(script.final_text().to_string()),
        Some(Step::Say(text)) => Answer::Text(text.clone()),
        Some(Step::Write { path, content }) => {
            // `{task}` and `{run}` name the swarm task the conversation is for (from its footer).
            let fill = |s: &str| match &request.report_target {
                Some(t) => s.replace("{task}", &t.task_id).replace("{run}", &t.run_id),
                None => s.to_string(),
            };
            let (path, content) = (fill(path), fill(content));
            match tools::write_call(&request.tools, &path, &content) {
                Some(call) => Answer::ToolCall(call),
                None => Answer::Text(format!("Here is `{path}`:\n\n```\n{content}\n```\n")),
            }
        }
        Some(Step::Report { status, summary }) => match &request.report_target {
            Some(target) => {
                let report = serde_json::json!({
                    "schema_version": 1,
                    "run_id": target.run_id,
                    "task_id": target.task_id,
                    "status": status,
                    "summary": summary.replace("{task}", &target.task_id).replace("{run}", &target.run_id),
                    "files_changed": [],
                    "tests": [],
                    "follow_ups": [],
                    "blockers": [],
                });
                let content = format!("{report:#}\n");
                match tools::write_call(&request.tools, &target.path, &content) {
                    Some(call) => Answer::ToolCall(call),
                    None => Answer::Text(format!("Here is `{}`:\n\n```\n{content}```\n", target.path)),
                }
            }
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
    };
    Reply::Answer {
        delay: Duration::from_millis(script.delay_ms),
        chunk_delay: Duration::from_millis(script.chunk_delay_ms),
        turn,
        answer,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::scenario::{ErrorReply, RateLimit};

    fn request(body: Value) -> ChatRequest {
        ChatRequest::parse(body.to_string().as_bytes()).unwrap()
    }

    fn opencode_tools() -> Value {
        json!([{ "type": "function", "function": { "name": "write", "parameters": {
            "type": "object", "properties": { "content": {}, "filePath": {} } } } }])
    }

    #[test]
    fn steps_follow_the_assistant_messages() {
        let script = ModelScript::steps([Step::write("hello.txt", "hi\n"), Step::say("DONE")]);
        let first = request(
            json!({ "model": "ok", "messages": [{ "role": "user", "content": "go" }], "tools": opencode_tools() }),
        );
        let Reply::Answer { answer: Answer::ToolCall(call), turn: 0, .. } = decide("ok", &script, &first, 1)
        else {
            panic!("expected a tool call")
        };
        assert_eq!(call.arguments, json!({ "filePath": "hello.txt", "content": "hi\n" }));

        let second = request(json!({ "model": "ok", "tools": opencode_tools(), "messages": [
            { "role": "user", "content": "go" },
            { "role": "assistant", "content": null, "tool_calls": [{ "id": "c", "type": "function", "function": { "name": "write", "arguments": "{}" } }] },
            { "role": "tool", "tool_call_id": "c", "content": "Wrote file successfully." },
        ] }));
        assert!(matches!(
            decide("ok", &script, &second, 2),
            Reply::Answer { answer: Answer::Text(ref text), turn: 1, .. } if text == "DONE"
        ));
    }

    #[test]
    fn report_writes_completion_json_where_the_footer_says() {
        let footer = "Do it.\n\n---\n\nWhen you are done (or cannot go on), report back before you exit: write \
            `/tmp/r/completions/t.1.json` (also in $SWARM_COMPLETION_FILE) as JSON:\n\
            {\"schema_version\": 1, \"run_id\": \"R1\", \"task_id\": \"t\", \"status\": \"done|partial|blocked|failed\"}";
        let script = ModelScript::steps([Step::Report { status: "done".into(), summary: "all good".into() }]);
        let req = request(json!({ "model": "ok", "tools": opencode_tools(), "messages": [
            { "role": "system", "content": "you are an agent" },
            { "role": "user", "content": [{ "type": "text", "text": footer }] } ] }));
        let Reply::Answer { answer: Answer::ToolCall(call), .. } = decide("ok", &script, &req, 1) else {
            panic!("expected a tool call")
        };
        assert_eq!(call.arguments["filePath"], "/tmp/r/completions/t.1.json");
        let report: Value = serde_json::from_str(call.arguments["content"].as_str().unwrap()).unwrap();
        assert_eq!(report["run_id"], "R1");
        assert_eq!(report["task_id"], "t");
        assert_eq!(report["status"], "done");
        assert_eq!(report["summary"], "all good");
        // Without a footer the model says so instead of guessing a path.
        let plain = request(
            json!({ "model": "ok", "tools": opencode_tools(), "messages": [{ "role": "user", "content": "go" }] }),
        );
        assert!(
            matches!(decide("ok", &script, &plain, 1), Reply::Answer { answer: Answer::Text(ref t), .. } if t.contains("footer"))
        );
    }

    #[test]
    fn exhausted_steps_repeat_the_last_say() {
        let script = ModelScript::steps([Step::say("first"), Step::write("a", "b")]);
        let late = request(json!({ "model": "m", "messages": [
            { "role": "assistant", "content": "x" }, { "role": "assistant", "content": "y" }, { "role": "assistant", "content": "z" } ] }));
        assert!(
            matches!(decide("m", &script, &late, 1), Reply::Answer { answer: Answer::Text(ref t), .. } if t == "first")
        );
    }

    #[test]
    fn write_without_a_file_tool_quotes_the_content() {
        let script = ModelScript::steps([Step::write("notes.md", "# hi")]);
        let plain = request(json!({ "model": "m", "messages": [] }));
        let Reply::Answer { answer: Answer::Text(text), .. } = decide("m", &script, &plain, 1) else {
            panic!()
        };
        assert!(text.contains("notes.md") && text.contains("# hi"), "{text}");
    }

    #[test]
    fn failures_come_first_and_can_stop() {
        let plain = request(json!({ "model": "m", "messages": [] }));
        let script = ModelScript {
            rate_limit: Some(RateLimit { first: 2, retry_after: 3, message: None }),
            error: Some(ErrorReply {
                status: 503,
                message: "busy".into(),
                first: Some(3),
                retry_after: None,
            }),
            ..ModelScript::default()
        };
        assert!(matches!(decide("m", &script, &plain, 1), Reply::RateLimited { retry_after: 3, .. }));
        assert!(matches!(decide("m", &script, &plain, 2), Reply::RateLimited { .. }));
        assert!(matches!(decide("m", &script, &plain, 3), Reply::Error { status: 503, .. }));
        assert!(matches!(decide("m", &script, &plain, 4), Reply::Answer { .. }));
        let hang = ModelScript { hang: true, ..script };
        assert_eq!(decide("m", &hang, &plain, 1), Reply::Hang);
    }
}
