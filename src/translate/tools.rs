//! `tools`, `tool_choice`, legacy `functions`/`function_call`, `web_search_options` and
//! Qwen's `enable_search`
//! → Responses `tools` / `tool_choice` (docs/chat-completions.md, "Request fields").

use super::TranslateError;
use super::fields::{Obj, invalid_type, missing, nested_str, opt_array, present, required_str};
use serde_json::{Value, json};

/// The tool part of the upstream body.
#[derive(Debug, Default)]
pub(crate) struct ToolPlan {
    pub tools: Vec<Value>,
    pub tool_choice: Option<Value>,
    /// The client used `functions`/`function_call`.
    pub legacy: bool,
}

impl ToolPlan {
    fn function_names(&self) -> impl Iterator<Item = &str> {
        self.tools
            .iter()
            .filter(|t| t["type"] == "function")
            .filter_map(|t| t["name"].as_str())
    }
}

pub(crate) fn translate(chat: &Obj) -> Result<ToolPlan, TranslateError> {
    let tools = opt_array(chat, "tools")?;
    let functions = opt_array(chat, "functions")?;
    if tools.is_some() && functions.is_some() {
        return Err(TranslateError::invalid(
            "functions",
            "Use either 'tools' or the deprecated 'functions', not both.",
        ));
    }
    let mut plan = ToolPlan {
        legacy: functions.is_some() || present(chat, "function_call").is_some(),
        ..ToolPlan::default()
    };
    for (i, tool) in tools.into_iter().flatten().enumerate() {
        plan.tools.push(chat_tool(tool, &format!("tools[{i}]"))?);
    }
    for (i, function) in functions.into_iter().flatten().enumerate() {
        let path = format!("functions[{i}]");
        let Some(function) = function.as_object() else {
            return Err(invalid_type(&path, "an object", function));
        };
        plan.tools.push(function_tool(function, &path)?);
    }
    // OpenAI's `web_search_options`, or Qwen's own chat field `enable_search: true` (what
    // DashScope-era clients send through `extra_body`): both mean the built-in web search.
    let web_search = match present(chat, "web_search_options") {
        None => false,
        Some(Value::Object(_)) => true,
        Some(other) => return Err(invalid_type("web_search_options", "an object", other)),
    };
    let enable_search = match present(chat, "enable_search") {
        None => false,
        Some(Value::Bool(on)) => *on,
        Some(other) => return Err(invalid_type("enable_search", "a boolean", other)),
    };
    if web_search || enable_search {
        plan.tools.push(json!({"type": "web_search"}));
    }
    plan.tool_choice = if plan.legacy {
        legacy_choice(chat, &plan)?
    } else {
        tool_choice(chat, &plan)?
    };
    Ok(plan)
}

/// `{type:"function", function:{...}}` → the flat Responses function tool.
fn chat_tool(tool: &Value, path: &str) -> Result<Value, TranslateError> {
    let Some(tool) = tool.as_object() else {
        return Err(invalid_type(path, "an object", tool));
    };
    match nested_str(tool, "type", &format!("{path}.type"))? {
        Some("function") => {}
        Some(other) => {
            return Err(TranslateError::invalid_code(
                format!("{path}.type"),
                "invalid_value",
                format!("Invalid value: '{other}'. Only 'function' tools are supported."),
            ));
        }
        None => return Err(missing(&format!("{path}.type"))),
    }
    let function_path = format!("{path}.function");
    match present(tool, "function") {
        Some(Value::Object(function)) => function_tool(function, &function_path),
        Some(other) => Err(invalid_type(&function_path, "an object", other)),
        None => Err(missing(&function_path)),
    }
}

/// `description` defaults to "" and `strict` to false; a function without `parameters`
/// takes no arguments, which is what an empty object schema says.
fn function_tool(function: &Obj, path: &str) -> Result<Value, TranslateError> {
    let name = required_str(function, "name", &format!("{path}.name"))?;
    let description = nested_str(function, "description", &format!("{path}.description"))?;
    let parameters = match present(function, "parameters") {
        None => json!({"type": "object", "properties": {}}),
        Some(p @ Value::Object(_)) => p.clone(),
        Some(other) => {
            return Err(invalid_type(
                &format!("{path}.parameters"),
                "an object",
                other,
            ));
        }
    };
    let strict = match present(function, "strict") {
        None => false,
        Some(Value::Bool(b)) => *b,
        Some(other) => {
            return Err(invalid_type(&format!("{path}.strict"), "a boolean", other));
        }
    };
    Ok(json!({
        "type": "function",
        "name": name,
        "description": description.unwrap_or(""),
        "parameters": parameters,
        "strict": strict,
    }))
}

fn no_tools(param: &str) -> TranslateError {
    TranslateError::invalid(
        param,
        format!(
            "Invalid value for '{param}': '{param}' is only allowed when 'tools' are specified."
        ),
    )
}

fn allowed(names: &[&str]) -> Value {
    let tools: Vec<Value> = names
        .iter()
        .map(|name| json!({"type": "function", "name": name}))
        .collect();
    json!({"type": "allowed_tools", "mode": "required", "tools": tools})
}

fn named(plan: &ToolPlan, name: &str, param: &str) -> Result<Value, TranslateError> {
    if plan.function_names().any(|n| n == name) {
        Ok(allowed(&[name]))
    } else {
        Err(TranslateError::invalid_code(
            param,
            "invalid_value",
            format!("Invalid value for '{param}': no function named '{name}' in the tools."),
        ))
    }
}

fn tool_choice(chat: &Obj, plan: &ToolPlan) -> Result<Option<Value>, TranslateError> {
    let Some(choice) = present(chat, "tool_choice") else {
        return Ok(None);
    };
    let names: Vec<&str> = plan.function_names().collect();
    if names.is_empty() {
        return Err(no_tools("tool_choice"));
    }
    match choice {
        Value::String(mode) => match mode.as_str() {
            "none" | "auto" => Ok(Some(choice.clone())),
            // [MS] plain "required" is only honoured with a single tool; with several it
            // must name them. Only functions are listed: chat's "required" means "call a
            // function", and a web search must not satisfy it.
            "required" if plan.tools.len() > 1 => Ok(Some(allowed(&names))),
            "required" => Ok(Some(choice.clone())),
            other => Err(TranslateError::invalid_code(
                "tool_choice",
                "invalid_value",
                format!(
                    "Invalid value: '{other}'. Supported values are: 'none', 'auto' and 'required'."
                ),
            )),
        },
        Value::Object(obj) => object_choice(obj, plan),
        other => Err(invalid_type("tool_choice", "a string or an object", other)),
    }
}

fn object_choice(obj: &Obj, plan: &ToolPlan) -> Result<Option<Value>, TranslateError> {
    match nested_str(obj, "type", "tool_choice.type")? {
        Some("function") => {
            let function = match present(obj, "function") {
                Some(Value::Object(f)) => f,
                Some(other) => {
                    return Err(invalid_type("tool_choice.function", "an object", other));
                }
                None => return Err(missing("tool_choice.function")),
            };
            let name = required_str(function, "name", "tool_choice.function.name")?;
            named(plan, name, "tool_choice").map(Some)
        }
        Some("allowed_tools") => {
            let spec = match present(obj, "allowed_tools") {
                Some(Value::Object(spec)) => spec,
                Some(other) => {
                    return Err(invalid_type(
                        "tool_choice.allowed_tools",
                        "an object",
                        other,
                    ));
                }
                None => return Err(missing("tool_choice.allowed_tools")),
            };
            let mode =
                nested_str(spec, "mode", "tool_choice.allowed_tools.mode")?.unwrap_or("auto");
            let entries = match present(spec, "tools") {
                None => &[][..],
                Some(Value::Array(entries)) => entries.as_slice(),
                Some(other) => {
                    return Err(invalid_type(
                        "tool_choice.allowed_tools.tools",
                        "an array",
                        other,
                    ));
                }
            };
            let mut listed = Vec::with_capacity(entries.len());
            for (i, entry) in entries.iter().enumerate() {
                let path = format!("tool_choice.allowed_tools.tools[{i}]");
                let name = entry
                    .get("function")
                    .and_then(|f| f.get("name"))
                    .or_else(|| entry.get("name"))
                    .and_then(Value::as_str)
                    .ok_or_else(|| missing(&format!("{path}.function.name")))?;
                named(plan, name, &path)?;
                listed.push(json!({"type": "function", "name": name}));
            }
            Ok(Some(
                json!({"type": "allowed_tools", "mode": mode, "tools": listed}),
            ))
        }
        Some(other) => Err(TranslateError::invalid_code(
            "tool_choice.type",
            "invalid_value",
            format!(
                "Invalid value: '{other}'. Supported values are: 'function' and 'allowed_tools'."
            ),
        )),
        None => Err(missing("tool_choice.type")),
    }
}

/// Legacy `function_call`: "none" / "auto" / `{name}`.
fn legacy_choice(chat: &Obj, plan: &ToolPlan) -> Result<Option<Value>, TranslateError> {
    let Some(choice) = present(chat, "function_call") else {
        return Ok(None);
    };
    if plan.function_names().next().is_none() {
        return Err(TranslateError::invalid(
            "function_call",
            "Invalid value for 'function_call': 'function_call' is only allowed when \
             'functions' are specified.",
        ));
    }
    match choice {
        Value::String(mode) if mode == "none" || mode == "auto" => Ok(Some(choice.clone())),
        Value::String(other) => Err(TranslateError::invalid_code(
            "function_call",
            "invalid_value",
            format!("Invalid value: '{other}'. Supported values are: 'none' and 'auto'."),
        )),
        Value::Object(obj) => {
            let name = required_str(obj, "name", "function_call.name")?;
            named(plan, name, "function_call").map(Some)
        }
        other => Err(invalid_type(
            "function_call",
            "a string or an object",
            other,
        )),
    }
}
