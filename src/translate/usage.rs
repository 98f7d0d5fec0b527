//! Responses `usage` → chat `usage` (docs/chat-completions.md, "The answer"), and the streamed usage chunk.

use serde_json::{Map, Value, json};

/// Renames the counters; details are copied only when upstream reported them, so no
/// number is made up. `x_tools` (built-in tool counts) is kept as an extension field.
pub fn chat_usage(responses_usage: &Value) -> Value {
    let count = |key: &str| responses_usage.get(key).and_then(Value::as_u64);
    let prompt = count("input_tokens").unwrap_or(0);
    let completion = count("output_tokens").unwrap_or(0);
    let total = count("total_tokens").unwrap_or(prompt + completion);
    let mut usage = Map::new();
    usage.insert("prompt_tokens".into(), prompt.into());
    usage.insert("completion_tokens".into(), completion.into());
    usage.insert("total_tokens".into(), total.into());
    let detail = |outer: &str, inner: &str| {
        responses_usage
            .get(outer)
            .and_then(|d| d.get(inner))
            .and_then(Value::as_u64)
    };
    if let Some(cached) = detail("input_tokens_details", "cached_tokens") {
        usage.insert(
            "prompt_tokens_details".into(),
            json!({"cached_tokens": cached}),
        );
    }
    if let Some(reasoning) = detail("output_tokens_details", "reasoning_tokens") {
        usage.insert(
            "completion_tokens_details".into(),
            json!({"reasoning_tokens": reasoning}),
        );
    }
    if let Some(tools) = responses_usage.get("x_tools").filter(|v| !v.is_null()) {
        usage.insert("x_tools".into(), tools.clone());
    }
    Value::Object(usage)
}

/// The final usage chunk: `choices` is always empty, as OpenAI sends it.
pub fn usage_chunk(id: &str, created: i64, model: &str, usage: Value) -> Value {
    json!({
        "id": id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": [],
        "usage": usage,
    })
}
