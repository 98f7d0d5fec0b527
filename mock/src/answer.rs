//! What the mock "model" says: a deterministic function of the request, its conversation
//! history and the controls, so tests can assert on exact text, calls and usage.

use serde_json::{Map, Value, json};

use crate::controls::Controls;
use crate::request::ResponseRequest;

/// Words a token-count answer cycles through; the Japanese ones make sure multi-byte text
/// crosses every delta, chunk and buffer boundary.
const TOKEN_WORDS: &[&str] = &[
    "token ",
    "トークン ",
    "qwen ",
    "テスト ",
    "stream ",
    "こんにちは ",
    "model ",
    "データ ",
];

/// Characters per delta for canned text.
const DELTA_CHARS: usize = 4;

/// The URL the fake web search "finds" and the answer cites.
pub const SEARCH_URL: &str = "https://example.com/qwen";

/// One function call the model makes.
#[derive(Clone, Debug, PartialEq)]
pub struct Call {
    pub name: String,
    /// JSON text, as the API carries it.
    pub arguments: String,
}

/// Token accounting for `usage`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Usage {
    pub input_tokens: u64,
    pub cached_tokens: u64,
    pub output_tokens: u64,
    pub reasoning_tokens: u64,
    /// Built-in web search calls made (reported as `usage.x_tools.web_search.count`).
    pub web_searches: u64,
}

/// Everything the answer consists of, before it is rendered as JSON or SSE.
#[derive(Clone, Debug, Default)]
pub struct Plan {
    /// Reasoning summary, as deltas (`enable_thinking`).
    pub reasoning: Option<Vec<String>>,
    /// Query of a built-in web search (a `web_search` tool was offered).
    pub web_search: Option<String>,
    /// Function calls; when present there is no message.
    pub calls: Vec<Call>,
    /// Message text, as deltas.
    pub text: Option<Vec<String>>,
    /// Reason the answer stopped early (`status:"incomplete"`).
    pub incomplete: Option<String>,
    pub usage: Usage,
}

impl Plan {
    /// Full message text.
    pub fn text(&self) -> Option<String> {
        self.text.as_ref().map(|d| d.concat())
    }
}

/// Decides the answer. `history` is the conversation before this request (the items of all
/// earlier requests and responses) when `previous_response_id` was used.
pub fn plan(req: &ResponseRequest, history: Option<&[Value]>, controls: &Controls) -> Plan {
    let past = history.unwrap_or(&[]);
    let user_text = last_user_text(&req.input)
        .or_else(|| last_user_text(past))
        .unwrap_or_default();

    let reasoning = req
        .enable_thinking
        .then(|| split_chars(&format!("Thinking about: {user_text}")));
    let web_search = req
        .tools
        .iter()
        .any(|t| matches!(t["type"].as_str(), Some("web_search")))
        .then(|| user_text.clone());

    let ends_with_output = req
        .input
        .last()
        .is_some_and(|i| i["type"] == "function_call_output");
    let calls = if ends_with_output {
        Vec::new()
    } else {
        function_calls(req, controls)
    };

    let mut text = None;
    let mut incomplete = controls.incomplete.clone();
    if calls.is_empty() {
        let mut deltas = match controls.tokens {
            Some(n) => (0..n)
                .map(|i| TOKEN_WORDS[i % TOKEN_WORDS.len()].to_string())
                .collect(),
            None => {
                let sentence = if ends_with_output {
                    tool_results(&req.input, past)
                } else {
                    greeting(
                        &user_text,
                        history.map(|_| first_user_text(past, &req.input)),
                    )
                };
                let sentence = structured_answer(req, &sentence).unwrap_or(sentence);
                split_chars(&sentence)
            }
        };
        let reasoning_len = reasoning.as_ref().map_or(0, Vec::len) as u64;
        if let Some(max) = req.max_output_tokens {
            let budget = max.saturating_sub(reasoning_len) as usize;
            if deltas.len() > budget {
                deltas.truncate(budget);
                incomplete.get_or_insert_with(|| "max_output_tokens".to_string());
            }
        }
        if controls.incomplete.is_some() && deltas.len() > 1 {
            deltas.truncate(deltas.len().div_ceil(2));
        }
        text = Some(deltas);
    }

    let reasoning_tokens = reasoning.as_ref().map_or(0, Vec::len) as u64;
    let output_tokens =
        reasoning_tokens + text.as_ref().map_or(0, Vec::len) as u64 + 2 * calls.len() as u64;
    let history_chars: usize = past.iter().map(item_chars).sum();
    let input_chars: usize = history_chars + req.input.iter().map(item_chars).sum::<usize>();
    let usage = Usage {
        input_tokens: (input_chars as u64 / 2).max(1),
        cached_tokens: if history.is_some() {
            (history_chars as u64 / 4).max(1)
        } else {
            0
        },
        output_tokens,
        reasoning_tokens,
        web_searches: u64::from(web_search.is_some()),
    };
    Plan {
        reasoning,
        web_search,
        calls,
        text,
        incomplete,
        usage,
    }
}

/// The canned answer: echoes the user so tests can see what reached the model, and the first
/// thing said in the conversation so two-turn tests can check memory.
fn greeting(user_text: &str, earlier: Option<String>) -> String {
    let mut s = format!("こんにちは!私は Qwen です。You said: {user_text}.");
    if let Some(first) = earlier {
        s.push_str(&format!(" Earlier you said: {first}."));
    }
    s
}

/// `Tool <name> returned: <output>` for each trailing `function_call_output`.
fn tool_results(input: &[Value], history: &[Value]) -> String {
    let start = input
        .iter()
        .rposition(|i| i["type"] != "function_call_output")
        .map_or(0, |p| p + 1);
    input[start..]
        .iter()
        .map(|out| {
            let name = call_name(&out["call_id"], input, history).unwrap_or("unknown");
            let output = match &out["output"] {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            format!("Tool {name} returned: {output}")
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Name of the function call `call_id` refers to, looked up in this input and the history.
pub fn call_name<'a>(call_id: &Value, input: &'a [Value], history: &'a [Value]) -> Option<&'a str> {
    history
        .iter()
        .chain(input)
        .find(|c| c["type"] == "function_call" && &c["call_id"] == call_id)
        .and_then(|c| c["name"].as_str())
}

/// The `call_id` of a `function_call_output` that answers no known call, if any.
pub fn orphan_call_output(input: &[Value], history: &[Value]) -> Option<String> {
    input
        .iter()
        .filter(|i| i["type"] == "function_call_output")
        .find(|o| call_name(&o["call_id"], input, history).is_none())
        .map(|o| o["call_id"].as_str().unwrap_or_default().to_string())
}

/// The calls to make: each function tool the `tool_choice` (and `x-mock-call-name`) allows,
/// cycling, `x-mock-tool-calls` times.
fn function_calls(req: &ResponseRequest, controls: &Controls) -> Vec<Call> {
    let count = controls.tool_calls.max(1);
    let tools: Vec<(&str, &Value)> = req
        .tools
        .iter()
        .filter(|t| t["type"] == "function")
        .filter_map(|t| {
            // Accept the Chat Completions nesting too; the real API ignores it, a mock
            // that crashes on it helps nobody.
            let f = if t.get("function").is_some() {
                &t["function"]
            } else {
                t
            };
            Some((f["name"].as_str()?, &f["parameters"]))
        })
        .collect();
    if tools.is_empty() {
        return Vec::new();
    }
    let chosen: Vec<&str> = match &req.tool_choice {
        Value::String(s) if s == "none" => return Vec::new(),
        Value::Object(o) if o.get("type").and_then(Value::as_str) == Some("function") => o
            .get("name")
            .or_else(|| o.get("function").and_then(|f| f.get("name")))
            .and_then(Value::as_str)
            .into_iter()
            .collect(),
        Value::Object(o) if o.get("type").and_then(Value::as_str) == Some("allowed_tools") => o
            .get("tools")
            .and_then(Value::as_array)
            .map(|ts| {
                ts.iter()
                    .filter(|t| t["type"] == "function")
                    .filter_map(|t| t["name"].as_str())
                    .collect()
            })
            .unwrap_or_default(),
        _ => tools.iter().map(|(name, _)| *name).collect(),
    };
    let chosen: Vec<&str> = match &controls.call_name {
        Some(only) => chosen.into_iter().filter(|n| n == only).collect(),
        None => chosen,
    };
    if chosen.is_empty() {
        return Vec::new();
    }
    (0..count)
        .map(|i| {
            let name = chosen[i % chosen.len()];
            let params = tools
                .iter()
                .find(|(n, _)| *n == name)
                .map_or(&Value::Null, |(_, p)| *p);
            Call {
                name: name.to_string(),
                arguments: controls
                    .call_arguments
                    .clone()
                    .unwrap_or_else(|| sample_arguments(params)),
            }
        })
        .collect()
}

/// Arguments filling every declared property with a value of its type.
pub fn sample_arguments(parameters: &Value) -> String {
    match sample_value(parameters, 0) {
        Value::Object(args) => Value::Object(args).to_string(),
        _ => "{}".to_string(),
    }
}

/// A deterministic JSON instance of a JSON Schema: objects get every declared property,
/// arrays one item, enums their first value. Depth-bounded against recursive schemas.
pub fn sample_value(schema: &Value, depth: usize) -> Value {
    if depth > 8 {
        return Value::Null;
    }
    if let Some(first) = schema["enum"].as_array().and_then(|e| e.first()) {
        return first.clone();
    }
    if let Some(options) = schema["anyOf"].as_array().or(schema["oneOf"].as_array()) {
        return options
            .iter()
            .find(|o| o["type"] != "null")
            .map_or(Value::Null, |o| sample_value(o, depth + 1));
    }
    let ty = match &schema["type"] {
        Value::String(t) => t.as_str(),
        Value::Array(ts) => ts
            .iter()
            .filter_map(Value::as_str)
            .find(|t| *t != "null")
            .unwrap_or("null"),
        _ if schema["properties"].is_object() => "object",
        _ => "null",
    };
    match ty {
        "string" => json!("Tokyo"),
        "number" | "integer" => json!(1),
        "boolean" => json!(true),
        "array" => Value::Array(vec![sample_value(&schema["items"], depth + 1)]),
        "object" => {
            let mut out = Map::new();
            if let Some(props) = schema["properties"].as_object() {
                for (name, prop) in props {
                    out.insert(name.clone(), sample_value(prop, depth + 1));
                }
            }
            Value::Object(out)
        }
        _ => Value::Null,
    }
}

/// Structured output (`text.format`): a JSON answer instead of prose, so clients that parse
/// it (e.g. the SDKs' `parse` helpers) get a document matching their schema.
fn structured_answer(req: &ResponseRequest, prose: &str) -> Option<String> {
    let format = req.raw.get("text")?.get("format")?;
    match format["type"].as_str()? {
        "json_schema" => Some(sample_value(&format["schema"], 0).to_string()),
        "json_object" => Some(json!({ "answer": prose }).to_string()),
        _ => None,
    }
}

/// Text of the last user message in `items`.
fn last_user_text(items: &[Value]) -> Option<String> {
    items.iter().rev().find_map(user_text)
}

/// Text of the first user message of the conversation.
fn first_user_text(history: &[Value], input: &[Value]) -> String {
    history
        .iter()
        .chain(input)
        .find_map(user_text)
        .unwrap_or_default()
}

fn user_text(item: &Value) -> Option<String> {
    (item["type"] == "message" && item["role"] == "user").then(|| content_text(&item["content"]))
}

/// Text of message content: a string, or the text of its parts joined by spaces.
fn content_text(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter(|p| {
                matches!(
                    p["type"].as_str(),
                    Some("input_text" | "output_text" | "text")
                )
            })
            .filter_map(|p| p["text"].as_str())
            .collect::<Vec<_>>()
            .join(" "),
        _ => String::new(),
    }
}

/// Characters of text an item carries, for the deterministic token counts.
fn item_chars(item: &Value) -> usize {
    let text = match item["type"].as_str() {
        Some("message") => content_text(&item["content"]),
        Some("function_call") => item["arguments"].as_str().unwrap_or_default().to_string(),
        Some("function_call_output") => match &item["output"] {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        },
        Some("reasoning") => item["summary"]
            .as_array()
            .map(|s| s.iter().filter_map(|p| p["text"].as_str()).collect())
            .unwrap_or_default(),
        _ => String::new(),
    };
    text.chars().count()
}

/// Splits text into deltas of a few characters, never inside a character.
pub fn split_chars(text: &str) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    chars
        .chunks(DELTA_CHARS)
        .map(|c| c.iter().collect())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(body: Value) -> ResponseRequest {
        ResponseRequest::parse(&body).unwrap()
    }

    #[test]
    fn greets_and_echoes() {
        let p = plan(
            &req(json!({"model": "qwen3-max", "input": "hello"})),
            None,
            &Controls::default(),
        );
        assert_eq!(
            p.text().unwrap(),
            "こんにちは!私は Qwen です。You said: hello."
        );
        assert!(
            p.text
                .as_ref()
                .unwrap()
                .iter()
                .all(|d| d.chars().count() <= 4)
        );
        assert_eq!(p.usage.output_tokens, p.text.unwrap().len() as u64);
        assert!(p.usage.input_tokens >= 1);
    }

    #[test]
    fn token_count_and_max_output_tokens() {
        let controls = Controls {
            tokens: Some(40),
            ..Controls::default()
        };
        let p = plan(
            &req(json!({"model": "qwen", "input": "x", "max_output_tokens": 16})),
            None,
            &controls,
        );
        assert_eq!(p.text.as_ref().unwrap().len(), 16);
        assert_eq!(p.incomplete.as_deref(), Some("max_output_tokens"));
    }

    #[test]
    fn function_tools_give_calls_with_sample_arguments() {
        let body = json!({"model": "qwen", "input": "weather?", "tools": [
            {"type": "function", "name": "get_weather", "parameters": {"type": "object", "properties": {
                "city": {"type": "string"}, "days": {"type": "integer"}, "metric": {"type": "boolean"}, "x": {}
            }}},
            {"type": "function", "name": "other", "parameters": {}}
        ]});
        let controls = Controls {
            tool_calls: 3,
            ..Controls::default()
        };
        let p = plan(&req(body.clone()), None, &controls);
        assert!(p.text.is_none());
        let names: Vec<_> = p.calls.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["get_weather", "other", "get_weather"]);
        assert_eq!(
            p.calls[0].arguments,
            r#"{"city":"Tokyo","days":1,"metric":true,"x":null}"#
        );

        let mut named = body.clone();
        named["tool_choice"] = json!({"type": "function", "name": "other"});
        let p = plan(&req(named), None, &Controls::default());
        assert_eq!(p.calls[0].name, "other");

        let mut none = body;
        none["tool_choice"] = json!("none");
        assert!(
            plan(&req(none), None, &Controls::default())
                .calls
                .is_empty()
        );
    }

    #[test]
    fn tool_output_is_reported() {
        let body = json!({"model": "qwen", "tools": [{"type": "function", "name": "f"}], "input": [
            {"role": "user", "content": "q"},
            {"type": "function_call", "call_id": "c1", "name": "get_weather", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "c1", "output": "sunny"}
        ]});
        let p = plan(&req(body), None, &Controls::default());
        assert_eq!(p.text().unwrap(), "Tool get_weather returned: sunny");
    }

    #[test]
    fn split_never_cuts_a_char() {
        assert_eq!(split_chars("こんにちは!"), ["こんにち", "は!"]);
    }
}
