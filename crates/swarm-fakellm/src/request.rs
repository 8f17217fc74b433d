//! A model request as the server understands it, whatever wire format it came in: the model,
//! the tools offered, and where the conversation stands.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::tools::OfferedTool;

/// The wire format a request came in (and is answered in).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// OpenAI Chat Completions (`/v1/chat/completions`).
    #[default]
    Chat,
    /// Anthropic Messages (`/v1/messages`).
    Anthropic,
    /// OpenAI Responses (`/v1/responses`).
    Responses,
    /// Gemini (`/v1beta/models/{model}:generateContent`, `:streamGenerateContent`).
    Gemini,
}

/// What the server reads from a request body; everything else is ignored.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Request {
    pub model: String,
    pub stream: bool,
    /// Chat's `stream_options.include_usage` (the other formats always report usage).
    pub include_usage: bool,
    pub tools: Vec<OfferedTool>,
    /// Model turns since the last message from the user: the index of the next step.
    pub turn: usize,
    /// Size of the conversation as JSON, for estimating prompt tokens.
    pub prompt_bytes: usize,
    /// Where swarm's report footer (the last one in the conversation) asks for completion.json.
    pub report_target: Option<ReportTarget>,
    /// The text of every user message (not tool results), exactly as received (nothing unquoted
    /// or trimmed; a message's text parts joined by `\n`), so tests can assert on what a model
    /// really reads.
    pub user_messages: Vec<String>,
    /// The JSON schema the answer must follow (Gemini's `responseJsonSchema`), if any.
    pub json_schema: Option<Value>,
    /// Chat: the Gemini 3 refusal for the first tool call of the current turn that came back
    /// without the `extra_content.google.thought_signature` the model sent with it, if any (a
    /// model with `thought_signatures = true` answers it with 400).
    pub unsigned_call: Option<String>,
}

/// One message of a conversation, reduced to what decides the next step.
#[derive(Debug, Clone, PartialEq)]
pub enum Entry {
    /// A message from the user, with its text.
    User(String),
    /// A model turn (an assistant message, with or without tool calls).
    Model,
    /// Tool results, system or developer messages: they neither start nor end a turn.
    Other,
}

impl Request {
    /// Fills `turn`, `user_messages` and `report_target` from the conversation. The turn counts
    /// model messages after the last user message, so few-shot examples before the task (aider
    /// sends three assistant answers ahead of the prompt) don't count, and tool results (which
    /// Anthropic and Gemini carry in user-role messages) must be classified `Other` by the parser.
    pub fn with_conversation(mut self, entries: &[Entry]) -> Request {
        let last_user = entries.iter().rposition(|entry| matches!(entry, Entry::User(_)));
        let after = last_user.map_or(0, |at| at + 1);
        self.turn = entries[after..].iter().filter(|entry| **entry == Entry::Model).count();
        self.user_messages = entries
            .iter()
            .filter_map(|entry| match entry {
                Entry::User(text) => Some(text.clone()),
                _ => None,
            })
            .collect();
        self.report_target = self.user_messages.iter().rev().find_map(|text| ReportTarget::find(text));
        self
    }
}

/// The completion file swarm asked the agent to write, read from the prompt's report footer:
/// "write `PATH` (also in $SWARM_COMPLETION_FILE) as JSON: {"schema_version": 1, "run_id": "R",
/// "task_id": "T", …".
#[derive(Debug, Clone, PartialEq)]
pub struct ReportTarget {
    pub path: String,
    pub run_id: String,
    pub task_id: String,
}

impl ReportTarget {
    /// The last footer in `text`, if any.
    pub fn find(text: &str) -> Option<ReportTarget> {
        let marker = "(also in $SWARM_COMPLETION_FILE)";
        let at = text.rfind(marker)?;
        let before = text[..at].trim_end().strip_suffix('`')?;
        let path = &before[before.rfind('`')? + 1..];
        let rest = &text[at..];
        // Only the footer as swarm wrote it: a prompt the agent CLI mangled (JSON-quoted, say)
        // must fail the rehearsal, not be forgiven.
        let field = |name: &str| {
            let key = format!("\"{name}\": \"");
            let start = rest.find(key.as_str())? + key.len();
            let len = rest[start..].find('"')?;
            Some(rest[start..start + len].to_string())
        };
        Some(ReportTarget { path: path.to_string(), run_id: field("run_id")?, task_id: field("task_id")? })
    }
}

/// The text of a message's `content`: a string, or the `text` of its parts joined by `\n`.
pub fn content_text(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(parts) => {
            parts.iter().filter_map(|p| p.get("text").and_then(Value::as_str)).collect::<Vec<_>>().join("\n")
        }
        _ => String::new(),
    }
}

/// The size of these JSON values serialized, for token estimates.
pub fn json_len<'a>(values: impl IntoIterator<Item = Option<&'a Value>>) -> usize {
    values.into_iter().flatten().map(|value| value.to_string().len()).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn turns_count_model_messages_after_the_last_user_message() {
        let few_shot = [
            Entry::User("example".into()),
            Entry::Model,
            Entry::User("I switched to a new code base".into()),
            Entry::Model,
            Entry::User("the task".into()),
        ];
        let request = Request::default().with_conversation(&few_shot);
        assert_eq!(request.turn, 0);
        assert_eq!(request.user_messages.len(), 3);
        let tool_loop =
            [Entry::Other, Entry::User("go".into()), Entry::Model, Entry::Other, Entry::Model, Entry::Other];
        assert_eq!(Request::default().with_conversation(&tool_loop).turn, 2);
        assert_eq!(Request::default().with_conversation(&[Entry::Model, Entry::Model]).turn, 2);
    }

    #[test]
    fn the_last_footer_wins() {
        let footer = |run: &str| {
            format!("write `/r/{run}.json` (also in $SWARM_COMPLETION_FILE) as JSON:\n{{\"schema_version\": 1, \"run_id\": \"{run}\", \"task_id\": \"t\"}}")
        };
        let entries = [Entry::User(footer("R1")), Entry::Model, Entry::User(footer("R2"))];
        let target = Request::default().with_conversation(&entries).report_target.unwrap();
        assert_eq!((target.path.as_str(), target.run_id.as_str()), ("/r/R2.json", "R2"));
        // JSON-quoted (a mangled prompt) is not a footer.
        assert_eq!(ReportTarget::find(&serde_json::to_string(&footer("R3")).unwrap()), None);
    }
}
