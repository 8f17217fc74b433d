//! Choosing the file-writing tool among those an agent offers, and filling its arguments.
//!
//! Agents name and shape this tool differently (opencode/kilo `write {filePath, content}`, cline
//! `editor {path, new_text}`, Claude-style `str_replace_editor {command, path, file_text}`, …),
//! so the argument names are read from the tool's JSON schema when it lists its properties, and
//! the built-in shapes below are only the fallback for schemas that don't.

use serde_json::{json, Map, Value};

/// A tool offered in the request's `tools` array.
#[derive(Debug, Clone, PartialEq)]
pub struct OfferedTool {
    pub name: String,
    /// `function.parameters`, the tool's JSON schema (`Null` when absent).
    pub parameters: Value,
}

/// A tool call to make: the tool's name and its JSON arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolCall {
    pub name: String,
    pub arguments: Value,
}

/// File-writing tool names, most specific first.
const FILE_TOOLS: &[&str] = &[
    "write",
    "write_to_file",
    "write_file",
    "create_file",
    "editor",
    "str_replace_editor",
    "str_replace_based_edit_tool",
];
const PATH_KEYS: &[&str] =
    &["filePath", "file_path", "path", "absolute_path", "target_file", "filename", "file"];
const CONTENT_KEYS: &[&str] =
    &["content", "file_text", "text", "new_text", "contents", "new_content", "code"];

impl OfferedTool {
    /// Reads the tools of an OpenAI chat request (`[{type: "function", function: {name, parameters}}]`);
    /// entries without a name are skipped.
    pub fn from_request(tools: &Value) -> Vec<OfferedTool> {
        let Some(tools) = tools.as_array() else { return Vec::new() };
        tools
            .iter()
            .filter_map(|tool| {
                let function = tool.get("function").unwrap_or(tool);
                let name = function.get("name")?.as_str()?.to_string();
                let parameters = function.get("parameters").cloned().unwrap_or(Value::Null);
                Some(OfferedTool { name, parameters })
            })
            .collect()
    }

    fn properties(&self) -> Option<&Map<String, Value>> {
        self.parameters.get("properties")?.as_object().filter(|props| !props.is_empty())
    }
}

/// The call that writes `content` to `path` with the best file tool offered, or `None` when no
/// offered tool can write a file.
pub fn write_call(tools: &[OfferedTool], path: &str, content: &str) -> Option<ToolCall> {
    FILE_TOOLS.iter().find_map(|wanted| {
        let tool = tools.iter().find(|tool| tool.name.eq_ignore_ascii_case(wanted))?;
        let arguments = match tool.properties() {
            Some(props) => from_schema(props, path, content)?,
            None => builtin_shape(wanted, path, content),
        };
        Some(ToolCall { name: tool.name.clone(), arguments })
    })
}

/// The call to a named tool, if the agent offers it (matched case-insensitively).
pub fn named_call(tools: &[OfferedTool], name: &str, arguments: &Value) -> Option<ToolCall> {
    let tool = tools.iter().find(|tool| tool.name.eq_ignore_ascii_case(name))?;
    Some(ToolCall { name: tool.name.clone(), arguments: arguments.clone() })
}

fn from_schema(props: &Map<String, Value>, path: &str, content: &str) -> Option<Value> {
    let path_key = PATH_KEYS.iter().find(|key| props.contains_key(**key))?;
    let content_key = CONTENT_KEYS.iter().find(|key| props.contains_key(**key))?;
    let mut arguments = Map::new();
    // Editor-style tools multiplex on a `command`; pick "create" when it is allowed.
    if let Some(command) = props.get("command") {
        let allowed = command.get("enum").and_then(Value::as_array);
        match allowed {
            Some(values) if !values.iter().any(|value| value == "create") => return None,
            _ => {
                arguments.insert("command".to_string(), json!("create"));
            }
        }
    }
    arguments.insert(path_key.to_string(), json!(path));
    arguments.insert(content_key.to_string(), json!(content));
    Some(Value::Object(arguments))
}

fn builtin_shape(name: &str, path: &str, content: &str) -> Value {
    match name {
        "write" => json!({ "filePath": path, "content": content }),
        "write_file" => json!({ "file_path": path, "content": content }),
        "editor" => json!({ "path": path, "new_text": content }),
        "str_replace_editor" | "str_replace_based_edit_tool" => {
            json!({ "command": "create", "path": path, "file_text": content })
        }
        _ => json!({ "path": path, "content": content }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tool(name: &str, properties: Value) -> Value {
        json!({ "type": "function", "function": { "name": name, "parameters": { "type": "object", "properties": properties } } })
    }

    #[test]
    fn opencode_write_uses_its_schema_names() {
        let tools = OfferedTool::from_request(&json!([
            tool("bash", json!({ "command": {}, "description": {} })),
            tool("read", json!({ "filePath": {} })),
            tool("write", json!({ "content": { "type": "string" }, "filePath": { "type": "string" } })),
        ]));
        let call = write_call(&tools, "hello.txt", "hi\n").unwrap();
        assert_eq!(call.name, "write");
        assert_eq!(call.arguments, json!({ "filePath": "hello.txt", "content": "hi\n" }));
    }

    #[test]
    fn cline_editor_fills_path_and_new_text() {
        let tools = OfferedTool::from_request(&json!([
            tool("read_files", json!({ "files": {} })),
            tool("run_commands", json!({ "commands": {} })),
            tool("editor", json!({ "path": {}, "old_text": {}, "new_text": {}, "insert_line": {} })),
        ]));
        let call = write_call(&tools, "hello.txt", "hi\n").unwrap();
        assert_eq!(call.name, "editor");
        assert_eq!(call.arguments, json!({ "path": "hello.txt", "new_text": "hi\n" }));
    }

    #[test]
    fn str_replace_editor_gets_the_create_command() {
        let tools = OfferedTool::from_request(&json!([tool(
            "str_replace_editor",
            json!({ "command": { "enum": ["view", "create", "str_replace"] }, "path": {}, "file_text": {}, "old_str": {} })
        )]));
        let call = write_call(&tools, "/abs/a.md", "x").unwrap();
        assert_eq!(call.arguments, json!({ "command": "create", "path": "/abs/a.md", "file_text": "x" }));
    }

    #[test]
    fn schema_less_tools_get_the_builtin_shape() {
        let tools = OfferedTool::from_request(
            &json!([{ "type": "function", "function": { "name": "write_to_file" } }]),
        );
        let call = write_call(&tools, "a", "b").unwrap();
        assert_eq!(call.arguments, json!({ "path": "a", "content": "b" }));
    }

    #[test]
    fn preference_order_and_unfit_schemas() {
        // `write` wins over `editor`; an `editor` whose schema has no content-like field is no fit.
        let tools = OfferedTool::from_request(&json!([
            tool("editor", json!({ "path": {}, "new_text": {} })),
            tool("write", json!({ "filePath": {}, "content": {} })),
        ]));
        assert_eq!(write_call(&tools, "a", "b").unwrap().name, "write");
        let tools = OfferedTool::from_request(&json!([tool("editor", json!({ "path": {}, "line": {} }))]));
        assert_eq!(write_call(&tools, "a", "b"), None);
        assert_eq!(write_call(&[], "a", "b"), None);
    }
}
