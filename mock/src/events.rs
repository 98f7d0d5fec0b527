//! Renders a [`Plan`] as Model Studio JSON: the non-streaming response object and the
//! streaming event sequence, copying the shapes (and key orders) of the official doc page.

use serde_json::{Map, Value, json};

use crate::answer::{Call, Plan, SEARCH_URL};
use crate::errors::MODERATION_MESSAGE;

/// Identity and echoed request fields of one response.
#[derive(Clone, Debug)]
pub struct Meta {
    pub id: String,
    /// Seconds, as a float: Model Studio sends e.g. `1769084048.0`.
    pub created_at: f64,
    pub model: String,
    /// The request body, for echoing `tools`, `max_output_tokens`, ... in streamed objects.
    pub request: Map<String, Value>,
}

impl Meta {
    pub fn new(model: &str, request: Map<String, Value>) -> Meta {
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        Meta {
            id: uuid::Uuid::new_v4().to_string(),
            created_at: secs as f64,
            model: model.to_string(),
            request,
        }
    }
}

/// How the response ends, beyond what the plan says.
#[derive(Clone, Debug, PartialEq)]
pub enum Ending {
    /// `completed`, or `incomplete` when the plan says so.
    Normal,
    /// `status:"failed"` with this error (rate limiting or server error over HTTP 200).
    Failed { code: String, message: String },
    /// A `data_inspection_failed` error event after a couple of deltas (streaming only).
    Moderated,
}

/// One output item with its ids fixed, so events and final object agree.
#[derive(Clone, Debug)]
enum Item {
    Reasoning {
        id: String,
        deltas: Vec<String>,
    },
    WebSearch {
        id: String,
        query: String,
    },
    Message {
        id: String,
        deltas: Vec<String>,
        cited: bool,
    },
    Call {
        id: String,
        call_id: String,
        call: Call,
    },
}

/// A plan with ids, ready to be rendered either way.
#[derive(Clone, Debug)]
pub struct Rendered {
    items: Vec<Item>,
    plan: Plan,
}

fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::new_v4())
}

impl Rendered {
    pub fn new(plan: Plan) -> Rendered {
        let mut items = Vec::new();
        if let Some(deltas) = &plan.reasoning {
            items.push(Item::Reasoning {
                id: new_id("rs"),
                deltas: deltas.clone(),
            });
        }
        if let Some(query) = &plan.web_search {
            items.push(Item::WebSearch {
                id: new_id("ws"),
                query: query.clone(),
            });
        }
        for call in &plan.calls {
            items.push(Item::Call {
                id: new_id("fc"),
                call_id: format!("call_{}", uuid::Uuid::new_v4().simple()),
                call: call.clone(),
            });
        }
        if let Some(deltas) = &plan.text {
            items.push(Item::Message {
                id: new_id("msg"),
                deltas: deltas.clone(),
                cited: plan.web_search.is_some(),
            });
        }
        Rendered { items, plan }
    }

    fn status(&self) -> &'static str {
        if self.plan.incomplete.is_some() {
            "incomplete"
        } else {
            "completed"
        }
    }

    /// The output items, in the streaming (`stream == true`) or non-streaming key order.
    pub fn output(&self, stream: bool) -> Vec<Value> {
        self.items
            .iter()
            .map(|item| self.item_json(item, stream))
            .collect()
    }

    fn item_json(&self, item: &Item, stream: bool) -> Value {
        match item {
            Item::Reasoning { id, deltas } => json!({
                "id": id, "type": "reasoning",
                "summary": [{"type": "summary_text", "text": deltas.concat()}],
            }),
            Item::WebSearch { id, query } => json!({
                "id": id, "type": "web_search_call", "status": "completed",
                "action": {"query": query, "type": "search", "sources": [{"type": "url", "url": SEARCH_URL}]},
            }),
            Item::Message { id, deltas, cited } => {
                let status = self.status();
                let part = text_part(&deltas.concat(), *cited, stream);
                if stream {
                    json!({"id": id, "content": [part], "role": "assistant", "status": status, "type": "message"})
                } else {
                    json!({"id": id, "type": "message", "role": "assistant", "status": status, "content": [part]})
                }
            }
            Item::Call { id, call_id, call } => call_json(id, call_id, call, "completed"),
        }
    }

    fn usage(&self, stream: bool) -> Value {
        let u = &self.plan.usage;
        let total = u.input_tokens + u.output_tokens;
        let mut usage = if stream {
            json!({
                "input_tokens": u.input_tokens,
                "input_tokens_details": {"cached_tokens": u.cached_tokens},
                "output_tokens": u.output_tokens,
                "output_tokens_details": {"reasoning_tokens": u.reasoning_tokens},
                "total_tokens": total,
            })
        } else {
            json!({
                "input_tokens": u.input_tokens,
                "output_tokens": u.output_tokens,
                "total_tokens": total,
                "input_tokens_details": {"cached_tokens": u.cached_tokens},
                "output_tokens_details": {"reasoning_tokens": u.reasoning_tokens},
            })
        };
        if u.web_searches > 0 {
            usage["x_tools"] = json!({"web_search": {"count": u.web_searches}});
        }
        usage
    }

    /// The non-streaming body: the doc page's exact shape, plus `error` / `incomplete_details`
    /// when they say something.
    pub fn response(&self, meta: &Meta, ending: &Ending) -> Value {
        let mut r = json!({
            "id": meta.id,
            "created_at": meta.created_at,
            "model": meta.model,
            "object": "response",
        });
        match ending {
            Ending::Failed { code, message } => {
                r["status"] = json!("failed");
                r["error"] = json!({"code": code, "message": message});
                r["output"] = json!([]);
                r["usage"] = Value::Null;
            }
            _ => {
                r["status"] = json!(self.status());
                if let Some(reason) = &self.plan.incomplete {
                    r["incomplete_details"] = json!({"reason": reason});
                }
                r["output"] = json!(self.output(false));
                r["usage"] = self.usage(false);
            }
        }
        r
    }

    /// The `response` object inside stream events: every field the doc page shows, in its
    /// order. `model` is `""` until the terminal event — a real Model Studio quirk.
    fn stream_response(&self, meta: &Meta, status: &str, terminal: Option<&Ending>) -> Value {
        let req = |key: &str| meta.request.get(key).cloned().unwrap_or(Value::Null);
        let (model, output, usage, error, incomplete) = match terminal {
            None => ("", json!([]), Value::Null, Value::Null, Value::Null),
            Some(Ending::Failed { code, message }) => (
                meta.model.as_str(),
                json!([]),
                Value::Null,
                json!({"code": code, "message": message}),
                Value::Null,
            ),
            Some(_) => (
                meta.model.as_str(),
                json!(self.output(true)),
                self.usage(true),
                Value::Null,
                self.plan
                    .incomplete
                    .as_ref()
                    .map_or(Value::Null, |r| json!({"reason": r})),
            ),
        };
        json!({
            "id": meta.id,
            "created_at": meta.created_at,
            "error": error,
            "incomplete_details": incomplete,
            "instructions": req("instructions"),
            "metadata": req("metadata"),
            "model": model,
            "object": "response",
            "output": output,
            "parallel_tool_calls": meta.request.get("parallel_tool_calls").cloned().unwrap_or(json!(false)),
            "temperature": req("temperature"),
            "tool_choice": meta.request.get("tool_choice").cloned().unwrap_or(json!("auto")),
            "tools": meta.request.get("tools").cloned().unwrap_or(json!([])),
            "top_p": req("top_p"),
            "background": null,
            "completed_at": null,
            "conversation": null,
            "max_output_tokens": req("max_output_tokens"),
            "max_tool_calls": null,
            "previous_response_id": req("previous_response_id"),
            "prompt": null,
            "prompt_cache_key": null,
            "prompt_cache_retention": null,
            "reasoning": null,
            "safety_identifier": null,
            "service_tier": null,
            "status": status,
            "text": null,
            "top_logprobs": null,
            "truncation": null,
            "usage": usage,
            "user": req("user"),
        })
    }

    /// The whole SSE event sequence, `sequence_number` counting from 0.
    pub fn events(&self, meta: &Meta, ending: &Ending) -> Vec<Value> {
        let mut ev = Events::default();
        ev.push(json!({"response": self.stream_response(meta, "queued", None), "type": "response.created"}));
        ev.push(json!({"response": self.stream_response(meta, "in_progress", None), "type": "response.in_progress"}));
        match ending {
            Ending::Failed { .. } => {
                ev.push(json!({
                    "response": self.stream_response(meta, "failed", Some(ending)),
                    "type": "response.failed",
                }));
            }
            Ending::Moderated => {
                let id = self
                    .items
                    .iter()
                    .find_map(|i| match i {
                        Item::Message { id, .. } => Some(id.clone()),
                        _ => None,
                    })
                    .unwrap_or_else(|| new_id("msg"));
                let deltas: Vec<String> = self.plan.text.clone().unwrap_or_default();
                self.message_start(&mut ev, &id, 0);
                for d in deltas.iter().take(2) {
                    ev.push(text_delta(&id, 0, d));
                }
                ev.push_unsorted(json!({
                    "type": "error",
                    "code": "data_inspection_failed",
                    "message": MODERATION_MESSAGE,
                    "param": null,
                }));
            }
            Ending::Normal => {
                for (index, item) in self.items.iter().enumerate() {
                    self.item_events(&mut ev, item, index);
                }
                let (status, kind) = match self.status() {
                    "incomplete" => ("incomplete", "response.incomplete"),
                    _ => ("completed", "response.completed"),
                };
                ev.push(json!({
                    "response": self.stream_response(meta, status, Some(ending)),
                    "type": kind,
                }));
            }
        }
        ev.0
    }

    fn message_start(&self, ev: &mut Events, id: &str, index: usize) {
        ev.push(json!({
            "item": {"id": id, "content": [], "role": "assistant", "status": "in_progress", "type": "message"},
            "output_index": index,
            "type": "response.output_item.added",
        }));
        ev.push(json!({
            "content_index": 0,
            "item_id": id,
            "output_index": index,
            "part": {"annotations": [], "text": "", "type": "output_text", "logprobs": null},
            "type": "response.content_part.added",
        }));
    }

    fn item_events(&self, ev: &mut Events, item: &Item, index: usize) {
        let done = json!({
            "item": self.item_json(item, true),
            "output_index": index,
            "type": "response.output_item.done",
        });
        match item {
            Item::Reasoning { id, deltas } => {
                ev.push(json!({
                    "item": {"id": id, "type": "reasoning", "summary": []},
                    "output_index": index,
                    "type": "response.output_item.added",
                }));
                for d in deltas {
                    ev.push(json!({
                        "delta": d, "item_id": id, "output_index": index,
                        "summary_index": 0, "type": "response.reasoning_summary_text.delta",
                    }));
                }
                ev.push(json!({
                    "item_id": id, "output_index": index, "summary_index": 0,
                    "text": deltas.concat(), "type": "response.reasoning_summary_text.done",
                }));
            }
            Item::WebSearch { id, .. } => {
                ev.push(json!({
                    "item": {"id": id, "type": "web_search_call", "status": "in_progress"},
                    "output_index": index,
                    "type": "response.output_item.added",
                }));
                for phase in ["in_progress", "searching", "completed"] {
                    ev.push(json!({
                        "item_id": id, "output_index": index,
                        "type": format!("response.web_search_call.{phase}"),
                    }));
                }
            }
            Item::Message { id, deltas, cited } => {
                self.message_start(ev, id, index);
                for d in deltas {
                    ev.push(text_delta(id, index, d));
                }
                let text = deltas.concat();
                if *cited {
                    ev.push(json!({
                        "annotation": citation(),
                        "annotation_index": 0,
                        "content_index": 0,
                        "item_id": id,
                        "output_index": index,
                        "type": "response.output_text.annotation.added",
                    }));
                }
                ev.push(json!({
                    "content_index": 0, "item_id": id, "logprobs": [], "output_index": index,
                    "text": text, "type": "response.output_text.done",
                }));
                ev.push(json!({
                    "content_index": 0, "item_id": id, "output_index": index,
                    "part": text_part(&text, *cited, true),
                    "type": "response.content_part.done",
                }));
            }
            Item::Call { id, call_id, call } => {
                ev.push(json!({
                    "item": call_json(id, call_id, &Call { name: call.name.clone(), arguments: String::new() }, "in_progress"),
                    "output_index": index,
                    "type": "response.output_item.added",
                }));
                let (a, b) = halves(&call.arguments);
                for fragment in [a, b] {
                    ev.push(json!({
                        "delta": fragment, "item_id": id, "output_index": index,
                        "type": "response.function_call_arguments.delta",
                    }));
                }
                ev.push(json!({
                    "arguments": call.arguments, "item_id": id, "output_index": index,
                    "type": "response.function_call_arguments.done",
                }));
            }
        }
        ev.push(done);
    }
}

/// Collects events and numbers them.
#[derive(Default)]
struct Events(Vec<Value>);

impl Events {
    /// Adds `sequence_number` and sorts the top-level keys, as Model Studio's events are.
    fn push(&mut self, mut event: Value) {
        event["sequence_number"] = json!(self.0.len());
        if let Value::Object(map) = &mut event {
            map.sort_keys();
        }
        self.0.push(event);
    }

    /// Adds `sequence_number` last, keeping the given key order (the `error` event).
    fn push_unsorted(&mut self, mut event: Value) {
        event["sequence_number"] = json!(self.0.len());
        self.0.push(event);
    }
}

fn text_delta(id: &str, index: usize, delta: &str) -> Value {
    json!({
        "content_index": 0, "delta": delta, "item_id": id, "logprobs": [],
        "output_index": index, "type": "response.output_text.delta",
    })
}

fn citation() -> Value {
    json!({"type": "url_citation", "start_index": 0, "end_index": 5, "url": SEARCH_URL, "title": "Qwen"})
}

fn text_part(text: &str, cited: bool, stream: bool) -> Value {
    let annotations = if cited {
        json!([citation()])
    } else {
        json!([])
    };
    if stream {
        json!({"annotations": annotations, "text": text, "type": "output_text", "logprobs": null})
    } else {
        json!({"type": "output_text", "text": text, "annotations": annotations})
    }
}

fn call_json(id: &str, call_id: &str, call: &Call, status: &str) -> Value {
    json!({
        "id": id, "type": "function_call", "status": status, "call_id": call_id,
        "name": call.name, "arguments": call.arguments,
    })
}

/// Splits `s` in two at a character boundary near the middle.
fn halves(s: &str) -> (&str, &str) {
    let mut mid = s.len() / 2;
    while !s.is_char_boundary(mid) {
        mid += 1;
    }
    s.split_at(mid)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::answer::Usage;

    fn meta() -> Meta {
        Meta::new("qwen3-max", Map::new())
    }

    fn plan_text(text: &[&str]) -> Plan {
        Plan {
            text: Some(text.iter().map(|s| s.to_string()).collect()),
            usage: Usage {
                input_tokens: 3,
                output_tokens: text.len() as u64,
                ..Usage::default()
            },
            ..Plan::default()
        }
    }

    #[test]
    fn stream_sequence_matches_the_doc_page() {
        let r = Rendered::new(plan_text(&["こんにち", "は"]));
        let events = r.events(&meta(), &Ending::Normal);
        let kinds: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
        assert_eq!(
            kinds,
            [
                "response.created",
                "response.in_progress",
                "response.output_item.added",
                "response.content_part.added",
                "response.output_text.delta",
                "response.output_text.delta",
                "response.output_text.done",
                "response.content_part.done",
                "response.output_item.done",
                "response.completed",
            ]
        );
        for (i, e) in events.iter().enumerate() {
            assert_eq!(e["sequence_number"], i);
        }
        assert_eq!(events[0]["response"]["model"], "");
        assert_eq!(events[0]["response"]["status"], "queued");
        assert_eq!(events[9]["response"]["model"], "qwen3-max");
        assert_eq!(events[6]["text"], "こんにちは");
        let keys: Vec<&String> = events[4].as_object().unwrap().keys().collect();
        assert_eq!(
            keys,
            [
                "content_index",
                "delta",
                "item_id",
                "logprobs",
                "output_index",
                "sequence_number",
                "type"
            ]
        );
    }

    #[test]
    fn non_streaming_shape() {
        let r = Rendered::new(plan_text(&["hi"]));
        let body = r.response(&meta(), &Ending::Normal);
        let keys: Vec<&String> = body.as_object().unwrap().keys().collect();
        assert_eq!(
            keys,
            [
                "id",
                "created_at",
                "model",
                "object",
                "status",
                "output",
                "usage"
            ]
        );
        assert_eq!(body["usage"]["total_tokens"], 4);
        assert!(body["created_at"].is_f64());
    }

    #[test]
    fn halves_respects_chars() {
        assert_eq!(halves(r#"{"a":"東京"}"#), (r#"{"a":"東"#, r#"京"}"#));
    }
}
