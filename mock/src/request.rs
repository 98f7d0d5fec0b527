//! Reading and validating a `POST /responses` body.
//!
//! Model Studio silently ignores parameters it does not know, but it does reject the ones it
//! knows when they are out of range; the mock enforces the documented limits so that a gateway
//! forwarding a bad value finds out in tests rather than in production.

use serde_json::{Map, Value, json};

use crate::errors::ApiError;

/// The parts of a Responses API request the mock acts on.
#[derive(Clone, Debug)]
pub struct ResponseRequest {
    pub model: String,
    /// Input items, normalised: every item has an `id` and a `type`, message content is an
    /// array of parts, and a string `input` became one user message.
    pub input: Vec<Value>,
    pub stream: bool,
    pub previous_response_id: Option<String>,
    pub tools: Vec<Value>,
    pub tool_choice: Value,
    pub enable_thinking: bool,
    pub max_output_tokens: Option<u64>,
    pub store: bool,
    /// The request as sent, for echoing fields back in the streamed `response` object.
    pub raw: Map<String, Value>,
}

/// The tool types Model Studio's Responses API lists: function tools and its built-in tools.
/// Anything else (OpenAI-only types such as `namespace`, `custom`, `local_shell`, or a typo)
/// is refused with 400, as the real API does, so a gateway or client sending one finds out
/// in tests.
pub const TOOL_TYPES: &[&str] = &[
    "function",
    "web_search",
    "web_extractor",
    "code_interpreter",
    "file_search",
    "mcp",
];

fn check_tool_types(tools: &[Value]) -> Result<(), ApiError> {
    for tool in tools {
        match tool.get("type").and_then(Value::as_str) {
            Some(t) if TOOL_TYPES.contains(&t) => {}
            Some(t) => {
                return Err(ApiError::invalid_parameter(format!(
                    "Tool type {t:?} is not supported. Supported types: {}.",
                    TOOL_TYPES.join(", ")
                )));
            }
            None => {
                return Err(ApiError::invalid_parameter("Every tool must have a type."));
            }
        }
    }
    Ok(())
}

/// Model Studio's lower bound for `max_output_tokens`.
pub const MIN_MAX_OUTPUT_TOKENS: u64 = 16;

impl ResponseRequest {
    /// Validates `body`; every problem becomes a Model Studio error, never a panic.
    pub fn parse(body: &Value) -> Result<ResponseRequest, ApiError> {
        let Some(raw) = body.as_object() else {
            return Err(ApiError::invalid_parameter(
                "The request body must be a JSON object.",
            ));
        };
        let model = match raw.get("model") {
            Some(Value::String(m)) if !m.trim().is_empty() => m.clone(),
            Some(Value::String(_)) | None | Some(Value::Null) => {
                return Err(ApiError::invalid_parameter("Model is required."));
            }
            Some(_) => return Err(ApiError::invalid_parameter("Model must be a string.")),
        };
        if !model.starts_with("qwen") {
            return Err(ApiError::model_not_found());
        }
        let input = match raw.get("input") {
            Some(Value::String(text)) => vec![user_message(text)],
            Some(Value::Array(items)) if !items.is_empty() => items
                .iter()
                .map(normalize_item)
                .collect::<Result<Vec<_>, _>>()?,
            Some(Value::Array(_)) => {
                return Err(ApiError::invalid_parameter("Input must not be empty."));
            }
            None | Some(Value::Null) => {
                return Err(ApiError::invalid_parameter("Input is required."));
            }
            Some(_) => {
                return Err(ApiError::invalid_parameter(
                    "Input must be a string or an array of items.",
                ));
            }
        };
        check_call_outputs_follow_calls(&input)?;

        let stream = optional_bool(raw, "stream")?.unwrap_or(false);
        let enable_thinking = optional_bool(raw, "enable_thinking")?.unwrap_or(false);
        let store = optional_bool(raw, "store")?.unwrap_or(true);
        let previous_response_id = match raw.get("previous_response_id") {
            None | Some(Value::Null) => None,
            Some(Value::String(id)) if !id.is_empty() => Some(id.clone()),
            Some(_) => {
                return Err(ApiError::invalid_parameter(
                    "previous_response_id must be a non-empty string.",
                ));
            }
        };
        let tools = match raw.get("tools") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(tools)) if tools.iter().all(Value::is_object) => tools.clone(),
            Some(_) => {
                return Err(ApiError::invalid_parameter(
                    "Tools must be an array of objects.",
                ));
            }
        };
        check_tool_types(&tools)?;
        let tool_choice = match raw.get("tool_choice") {
            None | Some(Value::Null) => json!("auto"),
            Some(choice) => choice.clone(),
        };
        let max_output_tokens = match raw.get("max_output_tokens") {
            None | Some(Value::Null) => None,
            Some(v) => match v.as_u64() {
                Some(n) if n >= MIN_MAX_OUTPUT_TOKENS => Some(n),
                _ => {
                    return Err(ApiError::invalid_parameter(format!(
                        "Range of max_output_tokens should be [{MIN_MAX_OUTPUT_TOKENS}, 65536]"
                    )));
                }
            },
        };
        if let Some(t) = optional_number(raw, "temperature")?
            && !(0.0..2.0).contains(&t)
        {
            return Err(ApiError::invalid_parameter(
                "Range of temperature should be [0.0, 2.0)",
            ));
        }
        if let Some(p) = optional_number(raw, "top_p")?
            && !(p > 0.0 && p <= 1.0)
        {
            return Err(ApiError::invalid_parameter(
                "Range of top_p should be (0.0, 1.0]",
            ));
        }
        Ok(ResponseRequest {
            model,
            input,
            stream,
            previous_response_id,
            tools,
            tool_choice,
            enable_thinking,
            max_output_tokens,
            store,
            raw: raw.clone(),
        })
    }
}

fn optional_bool(raw: &Map<String, Value>, key: &str) -> Result<Option<bool>, ApiError> {
    match raw.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(ApiError::invalid_parameter(format!(
            "{key} must be a boolean."
        ))),
    }
}

fn optional_number(raw: &Map<String, Value>, key: &str) -> Result<Option<f64>, ApiError> {
    match raw.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_f64()
            .map(Some)
            .ok_or_else(|| ApiError::invalid_parameter(format!("{key} must be a number."))),
    }
}

/// A user message item holding `text`.
pub fn user_message(text: &str) -> Value {
    json!({
        "id": format!("msg_{}", uuid::Uuid::new_v4()),
        "type": "message",
        "role": "user",
        "content": [{"type": "input_text", "text": text}],
    })
}

/// Gives an input item the shape `GET /responses/{id}/input_items` returns: an `id`, a
/// `type`, and message content as parts.
fn normalize_item(item: &Value) -> Result<Value, ApiError> {
    let Some(obj) = item.as_object() else {
        return Err(ApiError::invalid_parameter(
            "Each input item must be an object.",
        ));
    };
    let kind = match obj.get("type") {
        Some(Value::String(t)) => t.clone(),
        None if obj.contains_key("role") => "message".to_string(),
        _ => {
            return Err(ApiError::invalid_parameter(
                "Each input item needs a type or a role.",
            ));
        }
    };
    let mut out = Map::new();
    let prefix = match kind.as_str() {
        "message" => "msg",
        "function_call" => "fc",
        "function_call_output" => "fco",
        "reasoning" => "rs",
        "web_search_call" => "ws",
        _ => "item",
    };
    let id = obj
        .get("id")
        .cloned()
        .unwrap_or_else(|| json!(format!("{prefix}_{}", uuid::Uuid::new_v4())));
    out.insert("id".into(), id);
    out.insert("type".into(), json!(kind));
    for (k, v) in obj {
        if k != "id" && k != "type" {
            out.insert(k.clone(), v.clone());
        }
    }
    if kind == "message" {
        let role = out.get("role").and_then(Value::as_str).unwrap_or("");
        if !matches!(role, "user" | "assistant" | "system" | "developer") {
            return Err(ApiError::invalid_parameter(format!(
                "Invalid message role: {role:?}."
            )));
        }
        let part_type = if role == "assistant" {
            "output_text"
        } else {
            "input_text"
        };
        match out.get("content") {
            Some(Value::String(text)) => {
                let part = if part_type == "output_text" {
                    json!({"type": part_type, "text": text, "annotations": []})
                } else {
                    json!({"type": part_type, "text": text})
                };
                out.insert("content".into(), json!([part]));
            }
            Some(Value::Array(_)) => {}
            _ => {
                return Err(ApiError::invalid_parameter(
                    "Message content must be a string or an array of parts.",
                ));
            }
        }
    }
    if kind == "function_call_output" && !out.get("call_id").is_some_and(Value::is_string) {
        return Err(ApiError::invalid_parameter(
            "function_call_output needs a call_id.",
        ));
    }
    Ok(Value::Object(out))
}

/// Model Studio wants each `function_call_output` right after its own `function_call` when
/// both are in `input` (outputs for calls of a previous response may stand alone).
fn check_call_outputs_follow_calls(input: &[Value]) -> Result<(), ApiError> {
    for (i, item) in input.iter().enumerate() {
        if item["type"] != "function_call_output" {
            continue;
        }
        let call_id = &item["call_id"];
        let call_at = input
            .iter()
            .position(|c| c["type"] == "function_call" && &c["call_id"] == call_id);
        if let Some(at) = call_at
            && at + 1 != i
        {
            return Err(ApiError::invalid_parameter(format!(
                "The function_call_output with call_id {call_id} must immediately follow its function_call."
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_input_becomes_a_user_message() {
        let r = ResponseRequest::parse(&json!({"model": "qwen3-max", "input": "hi"})).unwrap();
        assert_eq!(r.input.len(), 1);
        assert_eq!(r.input[0]["role"], "user");
        assert_eq!(r.input[0]["content"][0]["text"], "hi");
        assert!(r.store && !r.stream);
    }

    #[test]
    fn bad_requests_are_refused() {
        let status = |v: Value| ResponseRequest::parse(&v).unwrap_err().status;
        assert_eq!(status(json!({"input": "hi"})), 400);
        assert_eq!(status(json!({"model": "gpt-4o", "input": "hi"})), 404);
        assert_eq!(status(json!({"model": "qwen", "input": 3})), 400);
        assert_eq!(
            status(json!({"model": "qwen", "input": "x", "max_output_tokens": 5})),
            400
        );
        assert_eq!(
            status(json!({"model": "qwen", "input": "x", "temperature": 2})),
            400
        );
        assert_eq!(
            status(json!({"model": "qwen", "input": "x", "top_p": 0})),
            400
        );
        assert_eq!(status(json!({"model": "qwen", "input": [1]})), 400);
    }

    #[test]
    fn call_outputs_must_follow_their_calls() {
        let call = |id: &str| json!({"type": "function_call", "call_id": id, "name": "f", "arguments": "{}"});
        let out = |id: &str| json!({"type": "function_call_output", "call_id": id, "output": "x"});
        let ok = json!({"model": "qwen", "input": [call("a"), out("a"), call("b"), out("b")]});
        assert!(ResponseRequest::parse(&ok).is_ok());
        let bad = json!({"model": "qwen", "input": [call("a"), call("b"), out("a"), out("b")]});
        assert_eq!(ResponseRequest::parse(&bad).unwrap_err().status, 400);
        let standalone = json!({"model": "qwen", "input": [out("z")]});
        assert!(ResponseRequest::parse(&standalone).is_ok());
    }
}
