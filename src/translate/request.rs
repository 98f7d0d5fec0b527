//! A chat completion request → the Responses API request sent upstream (docs/chat-completions.md, "Request fields").
//!
//! Model Studio ignores parameters it does not know without a word, so anything the
//! gateway cannot honour and that would change the answer is refused here with a 400
//! naming the parameter, instead of being dropped.

use super::TranslateError;
use super::fields::{
    Obj, invalid_type, missing, nested_str, opt_bool, opt_int, opt_number, opt_object, opt_str,
    present,
};
use super::{messages, tools};
use serde_json::{Map, Value, json};

/// Limits from configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChatLimits {
    /// Most parallel choices (`n`) one request may ask for; each is an upstream call.
    pub max_n: u32,
    /// Most stop strings; 4 is OpenAI's own limit.
    pub max_stop: usize,
}

impl Default for ChatLimits {
    fn default() -> Self {
        Self {
            max_n: 8,
            max_stop: 4,
        }
    }
}

/// What the handler needs to serve one chat request.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatPlan {
    /// The Responses request body. Always `"stream": true` (non-streaming clients are served
    /// from the stream too, which some thinking models require) and `"store": false`
    /// (chat is stateless; Model Studio would otherwise keep the response for 7 days).
    pub body: Value,
    /// The client asked for SSE.
    pub stream: bool,
    /// `stream_options.include_usage`.
    pub include_usage: bool,
    /// Choices wanted; the handler fans out this many upstream calls.
    pub n: u32,
    /// Stop strings the gateway matches itself (Model Studio's Responses API has none).
    pub stop: Vec<String>,
    /// Answer with `message.function_call` and finish `"function_call"`.
    pub legacy_functions: bool,
    /// The model as sent upstream.
    pub model: String,
    /// Top-level fields that were accepted but not forwarded (best-effort hints and unknown
    /// fields), so the handler can log them at debug level; translation itself does no I/O.
    pub dropped: Vec<String>,
}

/// Fields read by the translation; anything else is dropped.
const KNOWN: &[&str] = &[
    "model",
    "messages",
    "stream",
    "stream_options",
    "n",
    "stop",
    "temperature",
    "top_p",
    "max_tokens",
    "max_completion_tokens",
    "tools",
    "tool_choice",
    "functions",
    "function_call",
    "parallel_tool_calls",
    "response_format",
    "user",
    "metadata",
    "reasoning_effort",
    "verbosity",
    "web_search_options",
    "enable_search",
    "logprobs",
    "top_logprobs",
    "logit_bias",
    "modalities",
    "audio",
    "enable_thinking",
    "thinking_budget",
];

/// Builds the upstream request.
///
/// Unknown top-level fields are dropped rather than forwarded or refused: forwarding would
/// let clients smuggle arbitrary Responses parameters past the translation, refusing
/// would break clients that send harmless vendor extras. Only the Qwen extras
/// `enable_thinking` and `thinking_budget` are passed through. `seed`,
/// `presence_penalty`, `frequency_penalty`, `prediction`, `service_tier` and `store` are
/// dropped too (best-effort hints); all dropped names are listed in [`ChatPlan::dropped`].
pub fn chat_to_responses(chat: &Value, limits: &ChatLimits) -> Result<ChatPlan, TranslateError> {
    let Some(obj) = chat.as_object() else {
        return Err(TranslateError::InvalidRequest {
            message: "The request body must be a JSON object.".into(),
            param: None,
            code: None,
        });
    };
    refuse_unsupported(obj)?;
    let model = match present(obj, "model") {
        Some(Value::String(m)) if !m.is_empty() => m.clone(),
        Some(Value::String(_)) | None => return Err(missing("model")),
        Some(other) => return Err(invalid_type("model", "a string", other)),
    };
    let messages = match present(obj, "messages") {
        Some(Value::Array(m)) if m.is_empty() => {
            return Err(TranslateError::invalid_code(
                "messages",
                "empty_array",
                "Invalid 'messages': empty array. Expected an array with minimum length 1.",
            ));
        }
        Some(Value::Array(m)) => m,
        Some(other) => return Err(invalid_type("messages", "an array", other)),
        None => return Err(missing("messages")),
    };
    let stream = opt_bool(obj, "stream")?.unwrap_or(false);
    let include_usage = include_usage(obj, stream)?;
    let n = choices(obj, limits)?;
    let stop = stop_strings(obj, limits)?;
    let tool_plan = tools::translate(obj)?;
    let input = messages::to_input(messages)?;

    let mut body = Map::new();
    body.insert("model".into(), Value::String(model.clone()));
    body.insert("input".into(), Value::Array(input));
    body.insert("stream".into(), Value::Bool(true));
    body.insert("store".into(), Value::Bool(false));
    sampling(obj, &mut body)?;
    if let Some(max) = max_output_tokens(obj)? {
        body.insert("max_output_tokens".into(), max.into());
    }
    let legacy = tool_plan.legacy;
    if !tool_plan.tools.is_empty() {
        body.insert("tools".into(), Value::Array(tool_plan.tools));
        if let Some(choice) = tool_plan.tool_choice {
            body.insert("tool_choice".into(), choice);
        }
        // A legacy answer holds one `function_call`, so ask for at most one.
        if legacy {
            body.insert("parallel_tool_calls".into(), Value::Bool(false));
        } else if let Some(parallel) = opt_bool(obj, "parallel_tool_calls")? {
            body.insert("parallel_tool_calls".into(), Value::Bool(parallel));
        }
    } else {
        opt_bool(obj, "parallel_tool_calls")?;
    }
    if let Some(text) = text_options(obj)? {
        body.insert("text".into(), text);
    }
    if let Some(effort) = opt_str(obj, "reasoning_effort")? {
        body.insert("reasoning".into(), json!({"effort": effort}));
    }
    if let Some(user) = opt_str(obj, "user")? {
        body.insert("user".into(), user.into());
    }
    if let Some(metadata) = opt_object(obj, "metadata")? {
        body.insert("metadata".into(), Value::Object(metadata.clone()));
    }
    if let Some(thinking) = opt_bool(obj, "enable_thinking")? {
        body.insert("enable_thinking".into(), thinking.into());
    }
    if let Some(budget) = opt_int(obj, "thinking_budget")? {
        body.insert("thinking_budget".into(), budget.into());
    }

    let dropped = obj
        .iter()
        .filter(|(key, value)| !value.is_null() && !KNOWN.contains(&key.as_str()))
        .map(|(key, _)| key.clone())
        .collect();
    Ok(ChatPlan {
        body: Value::Object(body),
        stream,
        include_usage,
        n,
        stop,
        legacy_functions: legacy,
        model,
        dropped,
    })
}

/// Fields with no Model Studio equivalent whose absence would change the answer.
fn refuse_unsupported(obj: &Obj) -> Result<(), TranslateError> {
    const WHY: &str =
        "is not supported by this gateway (Model Studio's Responses API has no equivalent).";
    if opt_bool(obj, "logprobs")? == Some(true) {
        return Err(TranslateError::unsupported("logprobs", WHY));
    }
    if present(obj, "top_logprobs").is_some() {
        return Err(TranslateError::unsupported("top_logprobs", WHY));
    }
    if opt_object(obj, "logit_bias")?.is_some_and(|bias| !bias.is_empty()) {
        return Err(TranslateError::unsupported("logit_bias", WHY));
    }
    if let Some(modalities) = present(obj, "modalities") {
        let Some(list) = modalities.as_array() else {
            return Err(invalid_type("modalities", "an array", modalities));
        };
        if list.iter().any(|m| m == "audio") {
            return Err(TranslateError::unsupported(
                "modalities",
                "with 'audio' is not supported by this gateway (text output only).",
            ));
        }
    }
    if present(obj, "audio").is_some() {
        return Err(TranslateError::unsupported(
            "audio",
            "is not supported by this gateway (text output only).",
        ));
    }
    Ok(())
}

/// OpenAI refuses `stream_options` on a non-streaming request; so does the gateway.
fn include_usage(obj: &Obj, stream: bool) -> Result<bool, TranslateError> {
    let Some(options) = opt_object(obj, "stream_options")? else {
        return Ok(false);
    };
    if !stream {
        return Err(TranslateError::invalid_code(
            "stream_options",
            "invalid_value",
            "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
        ));
    }
    match present(options, "include_usage") {
        None => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(other) => Err(invalid_type(
            "stream_options.include_usage",
            "a boolean",
            other,
        )),
    }
}

fn choices(obj: &Obj, limits: &ChatLimits) -> Result<u32, TranslateError> {
    let Some(n) = opt_int(obj, "n")? else {
        return Ok(1);
    };
    if n < 1 {
        return Err(TranslateError::invalid_code(
            "n",
            "integer_below_min_value",
            format!(
                "Invalid 'n': integer below minimum value. Expected a value >= 1, but got {n} instead."
            ),
        ));
    }
    match u32::try_from(n) {
        Ok(n) if n <= limits.max_n => Ok(n),
        _ => Err(TranslateError::invalid_code(
            "n",
            "integer_above_max_value",
            format!(
                "Invalid 'n': integer above maximum value. This gateway allows at most {}, but got {n} instead.",
                limits.max_n
            ),
        )),
    }
}

/// `stop` as a string or an array of strings; empty strings can never match and are dropped.
fn stop_strings(obj: &Obj, limits: &ChatLimits) -> Result<Vec<String>, TranslateError> {
    let list = match present(obj, "stop") {
        None => return Ok(Vec::new()),
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(items)) => {
            if items.len() > limits.max_stop {
                return Err(TranslateError::invalid_code(
                    "stop",
                    "array_above_max_length",
                    format!(
                        "Invalid 'stop': array too long. Expected an array with maximum length {}, but got an array with length {} instead.",
                        limits.max_stop,
                        items.len()
                    ),
                ));
            }
            items
                .iter()
                .map(|item| {
                    item.as_str().map(str::to_owned).ok_or_else(|| {
                        invalid_type("stop", "a string or an array of strings", item)
                    })
                })
                .collect::<Result<_, _>>()?
        }
        Some(other) => {
            return Err(invalid_type(
                "stop",
                "a string or an array of strings",
                other,
            ));
        }
    };
    Ok(list.into_iter().filter(|s| !s.is_empty()).collect())
}

/// `temperature` in [0, 2) and `top_p` in (0, 1], Model Studio's ranges. They are refused
/// rather than clamped: a silently different sampling setting is a different answer.
fn sampling(obj: &Obj, body: &mut Map<String, Value>) -> Result<(), TranslateError> {
    if let Some(t) = opt_number(obj, "temperature")? {
        if !(0.0..2.0).contains(&t) {
            let code = if t < 0.0 {
                "decimal_below_min_value"
            } else {
                "decimal_above_max_value"
            };
            return Err(TranslateError::invalid_code(
                "temperature",
                code,
                format!(
                    "Invalid 'temperature': expected a value in [0, 2), but got {t} instead. \
                     OpenAI accepts 2, but Model Studio requires a value below 2."
                ),
            ));
        }
        body.insert("temperature".into(), obj["temperature"].clone());
    }
    if let Some(p) = opt_number(obj, "top_p")? {
        if !(p > 0.0 && p <= 1.0) {
            let code = if p <= 0.0 {
                "decimal_below_min_value"
            } else {
                "decimal_above_max_value"
            };
            return Err(TranslateError::invalid_code(
                "top_p",
                code,
                format!(
                    "Invalid 'top_p': expected a value in (0, 1], but got {p} instead. \
                     OpenAI accepts 0, but Model Studio requires a value above 0."
                ),
            ));
        }
        body.insert("top_p".into(), obj["top_p"].clone());
    }
    Ok(())
}

/// [MS] minimum for `max_output_tokens` is 16.
const MIN_OUTPUT_TOKENS: i64 = 16;

/// `max_completion_tokens` wins over the deprecated `max_tokens`; both are type-checked.
fn max_output_tokens(obj: &Obj) -> Result<Option<i64>, TranslateError> {
    let completion = opt_int(obj, "max_completion_tokens")?;
    let legacy = opt_int(obj, "max_tokens")?;
    let (param, value) = match (completion, legacy) {
        (Some(v), _) => ("max_completion_tokens", v),
        (None, Some(v)) => ("max_tokens", v),
        (None, None) => return Ok(None),
    };
    if value < 1 {
        return Err(TranslateError::invalid_code(
            param,
            "integer_below_min_value",
            format!(
                "Invalid '{param}': integer below minimum value. Expected a value >= 1, but got {value} instead."
            ),
        ));
    }
    Ok(Some(value.max(MIN_OUTPUT_TOKENS)))
}

/// `response_format` → `text.format`, flattened; `verbosity` → `text.verbosity`.
fn text_options(obj: &Obj) -> Result<Option<Value>, TranslateError> {
    let mut text = Map::new();
    if let Some(format) = opt_object(obj, "response_format")? {
        match nested_str(format, "type", "response_format.type")? {
            Some("text") => {}
            Some("json_object") => {
                text.insert("format".into(), json!({"type": "json_object"}));
            }
            Some("json_schema") => {
                text.insert("format".into(), json_schema(format)?);
            }
            Some(other) => {
                return Err(TranslateError::invalid_code(
                    "response_format.type",
                    "invalid_value",
                    format!(
                        "Invalid value: '{other}'. Supported values are: 'text', 'json_object' and 'json_schema'."
                    ),
                ));
            }
            None => return Err(missing("response_format.type")),
        }
    }
    if let Some(verbosity) = opt_str(obj, "verbosity")? {
        text.insert("verbosity".into(), verbosity.into());
    }
    Ok((!text.is_empty()).then_some(Value::Object(text)))
}

fn json_schema(format: &Obj) -> Result<Value, TranslateError> {
    let spec = match present(format, "json_schema") {
        Some(Value::Object(spec)) => spec,
        Some(other) => {
            return Err(invalid_type(
                "response_format.json_schema",
                "an object",
                other,
            ));
        }
        None => return Err(missing("response_format.json_schema")),
    };
    let name = match nested_str(spec, "name", "response_format.json_schema.name")? {
        Some(name) if !name.is_empty() => name,
        _ => return Err(missing("response_format.json_schema.name")),
    };
    let mut out = Map::new();
    out.insert("type".into(), "json_schema".into());
    out.insert("name".into(), name.into());
    if let Some(description) = nested_str(
        spec,
        "description",
        "response_format.json_schema.description",
    )? {
        out.insert("description".into(), description.into());
    }
    match present(spec, "schema") {
        None => {}
        Some(schema @ Value::Object(_)) => {
            out.insert("schema".into(), schema.clone());
        }
        Some(other) => {
            return Err(invalid_type(
                "response_format.json_schema.schema",
                "an object",
                other,
            ));
        }
    }
    let strict = match present(spec, "strict") {
        None => false,
        Some(Value::Bool(b)) => *b,
        Some(other) => {
            return Err(invalid_type(
                "response_format.json_schema.strict",
                "a boolean",
                other,
            ));
        }
    };
    out.insert("strict".into(), strict.into());
    Ok(Value::Object(out))
}
