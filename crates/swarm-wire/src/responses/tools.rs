//! Codex's tools as Chat functions. Codex 0.171 offers plain `function` tools, freeform
//! (`custom`) tools such as `apply_patch`, and `namespace` tools grouping functions (its
//! sub-agent tools; with OpenAI's own models also an `additional_tools` input item). Chat has
//! only flat functions, so freeform tools take one string and namespaced ones get a flat name;
//! a [`ToolAlias`] remembers how to call each back.

use super::CUSTOM_INPUT;
use crate::json::{self, obj, opt_array, opt_str, Obj};
use crate::{Format, WireError};
use serde_json::{json, Value};

const F: Format = Format::Responses;

/// Codex's unnamed default namespace: its calls come back without one.
const DEFAULT_NAMESPACE: &str = "functions";

/// A Responses tool offered to a Chat model under another name or shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolAlias {
    /// The function name the Chat model sees and calls.
    pub chat_name: String,
    pub name: String,
    pub namespace: Option<String>,
    /// Called back as a `custom_tool_call` with the `input` string.
    pub freeform: bool,
}

/// The request's tools as Chat functions, and the aliases of those that are not plain.
pub(crate) fn offered(o: &Obj) -> Result<(Vec<Value>, Vec<ToolAlias>), WireError> {
    let mut tools = Vec::new();
    let mut aliases = Vec::new();
    let input = o.get("input").and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[]);
    let extra = input.iter().filter(|i| i["type"] == "additional_tools");
    let lists = std::iter::once(opt_array(F, o, "tools")?)
        .chain(extra.map(|i| i["tools"].as_array().map(Vec::as_slice).unwrap_or(&[])));
    for list in lists {
        for t in list {
            tool(obj(F, t, "tool")?, None, &mut tools, &mut aliases)?;
        }
    }
    Ok((tools, aliases))
}

fn tool(
    t: &Obj,
    namespace: Option<(&str, &str)>,
    tools: &mut Vec<Value>,
    aliases: &mut Vec<ToolAlias>,
) -> Result<(), WireError> {
    let freeform = match json::req_str(F, t, "type")? {
        "function" => false,
        "custom" => true,
        "namespace" if namespace.is_none() => {
            let ns = (json::req_str(F, t, "name")?, opt_str(F, t, "description")?.unwrap_or_default());
            for inner in opt_array(F, t, "tools")? {
                tool(obj(F, inner, "namespace tool")?, Some(ns), tools, aliases)?;
            }
            return Ok(());
        }
        _ => return Ok(()), // built-in tools (web_search, tool_search, local_shell, …) only OpenAI runs
    };
    let name = json::req_str(F, t, "name")?;
    let ns = namespace.map(|(n, _)| n).filter(|n| *n != DEFAULT_NAMESPACE);
    let chat_name = match ns {
        Some(ns) => format!("{ns}__{name}"),
        None => name.to_string(),
    };
    let parameters = if freeform {
        json!({
            "type": "object",
            "properties": { CUSTOM_INPUT: { "type": "string", "description": "The tool's whole input, as free text in the format the description gives." } },
            "required": [CUSTOM_INPUT],
        })
    } else {
        t.get("parameters").cloned().unwrap_or_else(|| json!({ "type": "object", "properties": {} }))
    };
    let mut function = json!({ "name": chat_name, "parameters": parameters });
    // The namespace's description is what tells the model what the group is for.
    let description =
        [namespace.map(|(_, d)| d).unwrap_or_default(), opt_str(F, t, "description")?.unwrap_or_default()]
            .into_iter()
            .filter(|d| !d.trim().is_empty())
            .collect::<Vec<_>>()
            .join("\n\n");
    if !description.is_empty() {
        function["description"] = json!(description);
    }
    if !freeform {
        json::copy(t, "strict", function.as_object_mut().expect("object"), "strict");
    }
    tools.push(json!({ "type": "function", "function": function }));
    if freeform || ns.is_some() {
        aliases.push(ToolAlias {
            chat_name,
            name: name.to_string(),
            namespace: ns.map(str::to_string),
            freeform,
        });
    }
    Ok(())
}

/// The Chat name of tool `name` in `namespace`.
pub(crate) fn chat_name(aliases: &[ToolAlias], namespace: Option<&str>, name: &str) -> String {
    let namespace = namespace.filter(|n| *n != DEFAULT_NAMESPACE);
    aliases
        .iter()
        .find(|a| a.name == name && a.namespace.as_deref() == namespace)
        .map(|a| a.chat_name.clone())
        .unwrap_or_else(|| name.to_string())
}

/// `tool_choice` as Chat's.
pub(crate) fn choice(o: &Obj, aliases: &[ToolAlias]) -> Result<Option<Value>, WireError> {
    Ok(Some(match o.get("tool_choice") {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(s)) => json!(s),
        Some(Value::Object(c)) => match opt_str(F, c, "name")? {
            Some(name) => {
                let name = chat_name(aliases, opt_str(F, c, "namespace")?, name);
                json!({ "type": "function", "function": { "name": name } })
            }
            None => return Err(WireError::unsupported(F, "tool_choice", "only a function can be forced")),
        },
        Some(_) => return Err(WireError::malformed(F, "tool_choice", "expected a string or object")),
    }))
}
