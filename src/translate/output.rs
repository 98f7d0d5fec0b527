//! Responses `output` items → the parts of a chat message (docs/chat-completions.md, "The answer"), shared by
//! the one-shot translation and the completion builder.

use super::stop::earliest_match;
use super::usage::ChatUsage;
use serde_json::{Map, Value, json};

/// A `function_call` output item.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Call {
    pub call_id: String,
    pub name: String,
    pub arguments: String,
    /// Length of the content assembled before this call, to tell whether a stop string
    /// (which ends generation) came before or after it.
    pub text_offset: usize,
}

/// Everything a chat message is made of, gathered from the output items in order.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Assembled {
    pub text: String,
    /// Any `output_text` part was seen (even an empty one).
    pub has_text: bool,
    pub refusal: Option<String>,
    /// Chat-shaped annotations, offsets already in `text` (in characters).
    pub annotations: Vec<Value>,
    pub reasoning: String,
    pub calls: Vec<Call>,
}

/// Separator between message items' texts and between reasoning items.
const ITEM_SEPARATOR: &str = "\n\n";

pub(crate) fn assemble(output: &[Value]) -> Assembled {
    let mut asm = Assembled::default();
    for item in output {
        match item["type"].as_str() {
            Some("message") => asm.message(item),
            Some("function_call") => asm.calls.push(Call {
                call_id: item["call_id"]
                    .as_str()
                    .or_else(|| item["id"].as_str())
                    .unwrap_or_default()
                    .to_owned(),
                name: item["name"].as_str().unwrap_or_default().to_owned(),
                arguments: match item["arguments"].as_str() {
                    Some(args) if !args.is_empty() => args.to_owned(),
                    _ => "{}".to_owned(),
                },
                text_offset: asm.text.len(),
            }),
            Some("reasoning") => asm.reasoning(item),
            // Built-in tool calls (web_search_call, ...) already ran on the server: they are
            // never the client's tool calls.
            _ => {}
        }
    }
    asm
}

impl Assembled {
    fn message(&mut self, item: &Value) {
        let mut text = String::new();
        let mut annotations = Vec::new();
        for part in item["content"].as_array().into_iter().flatten() {
            match part["type"].as_str() {
                Some("output_text") => {
                    self.has_text = true;
                    let base = text.chars().count();
                    for a in part["annotations"].as_array().into_iter().flatten() {
                        if a["type"] == "url_citation" {
                            annotations.push((base, a));
                        }
                    }
                    text.push_str(part["text"].as_str().unwrap_or_default());
                }
                Some("refusal") => {
                    let refusal = part["refusal"].as_str().unwrap_or_default();
                    self.refusal
                        .get_or_insert_with(String::new)
                        .push_str(refusal);
                }
                _ => {}
            }
        }
        if text.is_empty() {
            return;
        }
        if !self.text.is_empty() {
            self.text.push_str(ITEM_SEPARATOR);
        }
        let base = self.text.chars().count();
        self.text.push_str(&text);
        for (part_base, a) in annotations {
            let shift = |key: &str| {
                a[key]
                    .as_u64()
                    .map(|i| i.saturating_add((base + part_base) as u64))
            };
            self.annotations.push(json!({
                "type": "url_citation",
                "url_citation": {
                    "start_index": shift("start_index"),
                    "end_index": shift("end_index"),
                    "url": a["url"],
                    "title": a["title"],
                },
            }));
        }
    }

    /// Prefers the raw reasoning text; falls back to the summary (what Model Studio sends).
    fn reasoning(&mut self, item: &Value) {
        let texts = |key: &str| -> Vec<&str> {
            item[key]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|p| p["text"].as_str())
                .filter(|t| !t.is_empty())
                .collect()
        };
        let content = texts("content");
        let text = if content.is_empty() {
            texts("summary").join(ITEM_SEPARATOR)
        } else {
            content.concat()
        };
        if text.is_empty() {
            return;
        }
        if !self.reasoning.is_empty() {
            self.reasoning.push_str(ITEM_SEPARATOR);
        }
        self.reasoning.push_str(&text);
    }

    /// Applies the first stop string: content ends before it, and calls generated after it
    /// are dropped (generation would have ended there). Returns whether it cut.
    pub fn cut_at_stop(&mut self, stops: &[String]) -> bool {
        let Some(at) = earliest_match(&self.text, stops) else {
            return false;
        };
        self.cut_at(at);
        true
    }

    pub fn cut_at(&mut self, at: usize) {
        if !self.text.is_char_boundary(at) {
            return;
        }
        self.text.truncate(at);
        let chars = self.text.chars().count() as u64;
        self.annotations.retain(|a| {
            a["url_citation"]["end_index"]
                .as_u64()
                .is_some_and(|end| end <= chars)
        });
        self.calls.retain(|c| c.text_offset <= at);
    }
}

/// `finish_reason` for a response that ended normally (docs/chat-completions.md, "The answer").
pub(crate) fn finish_reason(response: &Value, has_calls: bool, legacy: bool) -> &'static str {
    if response["status"] == "incomplete" || response["incomplete_details"]["reason"].is_string() {
        return if response["incomplete_details"]["reason"] == "content_filter" {
            "content_filter"
        } else {
            "length"
        };
    }
    calls_or_stop(has_calls, legacy)
}

pub(crate) fn calls_or_stop(has_calls: bool, legacy: bool) -> &'static str {
    match (has_calls, legacy) {
        (true, true) => "function_call",
        (true, false) => "tool_calls",
        (false, _) => "stop",
    }
}

/// The assistant message. `content` is null when there are calls (or a refusal) and no
/// text, as OpenAI sends it.
pub(crate) fn chat_message(asm: &Assembled, legacy: bool) -> Value {
    let mut message = Map::new();
    message.insert("role".into(), "assistant".into());
    let content = if !asm.text.is_empty() {
        Value::String(asm.text.clone())
    } else if !asm.calls.is_empty() || asm.refusal.is_some() {
        Value::Null
    } else {
        Value::String(String::new())
    };
    message.insert("content".into(), content);
    if !asm.reasoning.is_empty() {
        message.insert("reasoning_content".into(), asm.reasoning.clone().into());
    }
    message.insert("refusal".into(), asm.refusal.clone().into());
    message.insert("annotations".into(), asm.annotations.clone().into());
    if legacy {
        // A legacy answer holds one call; the request asked upstream for no parallel calls.
        if let Some(call) = asm.calls.first() {
            message.insert(
                "function_call".into(),
                json!({"name": call.name, "arguments": call.arguments}),
            );
        }
    } else if !asm.calls.is_empty() {
        let calls: Vec<Value> = asm
            .calls
            .iter()
            .map(|c| {
                json!({
                    "id": c.call_id,
                    "type": "function",
                    "function": {"name": c.name, "arguments": c.arguments},
                })
            })
            .collect();
        message.insert("tool_calls".into(), calls.into());
    }
    Value::Object(message)
}

/// Identity of the completion: id, creation time, model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Meta {
    pub id: String,
    pub created: i64,
    pub model: String,
}

impl Meta {
    /// Model Studio sends `model: ""` on early events; the fallback covers that. `created`
    /// is 0 if upstream gave none: translation reads no clock.
    pub fn from_response(response: &Value, fallback_model: &str) -> Self {
        Self {
            id: completion_id(response),
            created: created_secs(&response["created_at"]).unwrap_or(0),
            model: match response["model"].as_str() {
                Some(model) if !model.is_empty() => model.to_owned(),
                _ => fallback_model.to_owned(),
            },
        }
    }
}

pub(crate) fn completion_id(response: &Value) -> String {
    format!("chatcmpl-{}", response["id"].as_str().unwrap_or_default())
}

/// `created_at` arrives as float seconds (`1769084048.0`).
pub(crate) fn created_secs(value: &Value) -> Option<i64> {
    value.as_i64().or_else(|| {
        value
            .as_f64()
            .filter(|f| f.is_finite())
            .map(|f| f.floor() as i64)
    })
}

pub(crate) fn completion(
    meta: &Meta,
    message: Value,
    finish: &str,
    usage: Option<ChatUsage>,
) -> Value {
    let mut out = Map::new();
    out.insert("id".into(), meta.id.clone().into());
    out.insert("object".into(), "chat.completion".into());
    out.insert("created".into(), meta.created.into());
    out.insert("model".into(), meta.model.clone().into());
    out.insert(
        "choices".into(),
        json!([{
            "index": 0,
            "message": message,
            "logprobs": null,
            "finish_reason": finish,
        }]),
    );
    if let Some(usage) = usage {
        out.insert("usage".into(), json!(usage));
    }
    Value::Object(out)
}
