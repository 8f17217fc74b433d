//! Choosing the tool that writes a file among those an agent offers, and filling its arguments.
//!
//! Agents name and shape this tool differently (opencode/kilo `write {filePath, content}`, cline
//! `editor {path, new_text}`, Claude Code `Write {file_path, content}`, Gemini CLI `write_file
//! {file_path, content}`, Codex `apply_patch` or only `exec_command {cmd}`, …), so the argument
//! names are read from the tool's JSON schema when it lists its properties, and the built-in
//! shapes below are only the fallback for schemas that don't.

use serde_json::{json, Map, Value};

/// A tool the request offers.
#[derive(Debug, Clone, PartialEq)]
pub struct OfferedTool {
    pub name: String,
    /// The tool's JSON schema for its arguments (`Null` when absent).
    pub parameters: Value,
    /// An OpenAI Responses `custom` tool: its input is free text, not JSON arguments.
    pub custom: bool,
}

/// A tool call to make: the tool's name and its arguments (a JSON object, or for a custom tool
/// the free-text input as a JSON string).
#[derive(Debug, Clone, PartialEq)]
pub struct ToolCall {
    pub name: String,
    pub arguments: Value,
    /// Calls a Responses `custom` tool: `arguments` is a string sent as the call's `input`.
    pub custom: bool,
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
/// Shell tools, used only when no file tool is offered (Codex with a model it has no metadata
/// for offers nothing else): `(name, argument holding the command)`.
const SHELL_TOOLS: &[(&str, &str)] =
    &[("exec_command", "cmd"), ("shell", "command"), ("run_shell_command", "command"), ("bash", "command")];

impl OfferedTool {
    /// A plain function tool.
    pub fn function(name: impl Into<String>, parameters: Value) -> OfferedTool {
        OfferedTool { name: name.into(), parameters, custom: false }
    }

    /// Reads the tools of an OpenAI chat request (`[{type: "function", function: {name,
    /// parameters}}]`); entries without a name are skipped.
    pub fn from_request(tools: &Value) -> Vec<OfferedTool> {
        let Some(tools) = tools.as_array() else { return Vec::new() };
        tools
            .iter()
            .filter_map(|tool| {
                let function = tool.get("function").unwrap_or(tool);
                let name = function.get("name")?.as_str()?;
                Some(OfferedTool::function(name, function.get("parameters").cloned().unwrap_or(Value::Null)))
            })
            .collect()
    }

    fn properties(&self) -> Option<&Map<String, Value>> {
        self.parameters.get("properties")?.as_object().filter(|props| !props.is_empty())
    }
}

/// The call that writes `content` to `path` with the best tool offered: a file tool, else
/// `apply_patch`, else a shell tool; `None` when nothing offered can write a file.
pub fn write_call(tools: &[OfferedTool], path: &str, content: &str) -> Option<ToolCall> {
    file_tool_call(tools, path, content)
        .or_else(|| apply_patch_call(tools, path, content))
        .or_else(|| shell_call(tools, path, content))
}

/// The call to a named tool, if the agent offers it (matched case-insensitively).
pub fn named_call(tools: &[OfferedTool], name: &str, arguments: &Value) -> Option<ToolCall> {
    let tool = tools.iter().find(|tool| tool.name.eq_ignore_ascii_case(name))?;
    Some(ToolCall { name: tool.name.clone(), arguments: arguments.clone(), custom: tool.custom })
}

fn file_tool_call(tools: &[OfferedTool], path: &str, content: &str) -> Option<ToolCall> {
    FILE_TOOLS.iter().find_map(|wanted| {
        let tool = tools.iter().find(|tool| tool.name.eq_ignore_ascii_case(wanted) && !tool.custom)?;
        let arguments = match tool.properties() {
            Some(props) => from_schema(props, path, content)?,
            None => builtin_shape(wanted, path, content),
        };
        Some(ToolCall { name: tool.name.clone(), arguments, custom: false })
    })
}

/// Codex's `apply_patch`: a freeform (custom) tool taking the patch as its input, or a function
/// tool taking it as `input`.
fn apply_patch_call(tools: &[OfferedTool], path: &str, content: &str) -> Option<ToolCall> {
    let tool = tools.iter().find(|tool| tool.name == "apply_patch")?;
    let added: String = content.lines().map(|line| format!("+{line}\n")).collect();
    let patch = format!("*** Begin Patch\n*** Add File: {path}\n{added}*** End Patch\n");
    let arguments = if tool.custom { json!(patch) } else { json!({ "input": patch }) };
    Some(ToolCall { name: tool.name.clone(), arguments, custom: tool.custom })
}

fn shell_call(tools: &[OfferedTool], path: &str, content: &str) -> Option<ToolCall> {
    SHELL_TOOLS.iter().find_map(|(wanted, key)| {
        let tool = tools.iter().find(|tool| tool.name.eq_ignore_ascii_case(wanted) && !tool.custom)?;
        let write = format!("printf '%s' {} > {}", sh_quote(content), sh_quote(path));
        // As a model would: the file's directory may not exist yet.
        let script = match std::path::Path::new(path).parent().filter(|d| !d.as_os_str().is_empty()) {
            Some(dir) => format!("mkdir -p {} && {write}", sh_quote(&dir.display().to_string())),
            None => write,
        };
        // The old Codex `shell` tool takes an argv, the others a command line.
        let command = if *wanted == "shell" { json!(["bash", "-lc", script]) } else { json!(script) };
        let mut arguments = Map::new();
        arguments.insert(key.to_string(), command);
        if tool.properties().is_some_and(|props| props.contains_key("description")) {
            arguments.insert("description".into(), json!(format!("write {path}")));
        }
        Some(ToolCall { name: tool.name.clone(), arguments: Value::Object(arguments), custom: false })
    })
}

/// A POSIX shell single-quoted word.
fn sh_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
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

    #[test]
    fn codex_without_a_file_tool_writes_through_its_shell() {
        let tools = [OfferedTool::function("exec_command", json!({ "properties": { "cmd": {} } }))];
        let call = write_call(&tools, "it's.txt", "a 'quoted'\nline\n").unwrap();
        assert_eq!(call.name, "exec_command");
        assert_eq!(
            call.arguments,
            json!({ "cmd": "printf '%s' 'a '\\''quoted'\\''\nline\n' > 'it'\\''s.txt'" })
        );
        let nested = write_call(&tools, "out/a.txt", "b").unwrap();
        assert_eq!(nested.arguments, json!({ "cmd": "mkdir -p 'out' && printf '%s' 'b' > 'out/a.txt'" }));
        // A file tool always wins over a shell.
        let both = [tools[0].clone(), OfferedTool::function("write_file", Value::Null)];
        assert_eq!(write_call(&both, "a", "b").unwrap().name, "write_file");
    }

    #[test]
    fn apply_patch_as_custom_or_function_tool() {
        let custom = [OfferedTool { name: "apply_patch".into(), parameters: Value::Null, custom: true }];
        let call = write_call(&custom, "a.txt", "one\ntwo\n").unwrap();
        assert!(call.custom);
        assert_eq!(
            call.arguments,
            json!("*** Begin Patch\n*** Add File: a.txt\n+one\n+two\n*** End Patch\n")
        );
        let function = [OfferedTool::function("apply_patch", Value::Null)];
        let call = write_call(&function, "a.txt", "x").unwrap();
        assert_eq!(call.arguments["input"], "*** Begin Patch\n*** Add File: a.txt\n+x\n*** End Patch\n");
    }
}
