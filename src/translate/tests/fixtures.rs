//! Builds Model Studio-like event sequences (shapes from the reference page) so tests
//! state only what differs.

use serde_json::{Value, json};

pub const RESP_ID: &str = "47a71e7d-868c-4204-9693-ef8ff9058xxx";
pub const MODEL: &str = "qwen3-max-2026-01-23";
pub const CREATED_AT: f64 = 1769417481.0;

/// The response envelope Model Studio sends in `response.*` events.
pub fn response(status: &str, model: &str, output: Vec<Value>, usage: Value) -> Value {
    json!({
        "id": RESP_ID,
        "created_at": CREATED_AT,
        "error": null,
        "incomplete_details": null,
        "instructions": null,
        "metadata": null,
        "model": model,
        "object": "response",
        "output": output,
        "parallel_tool_calls": false,
        "temperature": null,
        "tool_choice": "auto",
        "tools": [],
        "top_p": null,
        "status": status,
        "usage": usage,
    })
}

pub fn usage() -> Value {
    json!({
        "input_tokens": 37,
        "input_tokens_details": {"cached_tokens": 5},
        "output_tokens": 166,
        "output_tokens_details": {"reasoning_tokens": 12},
        "total_tokens": 203,
    })
}

pub fn message_item(id: &str, text: &str) -> Value {
    json!({
        "id": id,
        "content": [{"annotations": [], "text": text, "type": "output_text", "logprobs": null}],
        "role": "assistant",
        "status": "completed",
        "type": "message",
    })
}

pub fn call_item(id: &str, call_id: &str, name: &str, arguments: &str) -> Value {
    json!({
        "id": id,
        "type": "function_call",
        "status": "completed",
        "call_id": call_id,
        "name": name,
        "arguments": arguments,
    })
}

pub fn reasoning_item(id: &str, text: &str) -> Value {
    json!({"id": id, "type": "reasoning", "summary": [{"type": "summary_text", "text": text}]})
}

/// An event sequence under construction. Items get consecutive `output_index`es and are
/// remembered for the terminal response's `output`.
pub struct Events {
    seq: u64,
    next_index: u64,
    events: Vec<Value>,
    output: Vec<Value>,
}

impl Events {
    /// `response.created` + `response.in_progress`, with Model Studio's empty model.
    pub fn new() -> Self {
        let mut events = Self {
            seq: 0,
            next_index: 0,
            events: Vec::new(),
            output: Vec::new(),
        };
        let mut start = response("queued", "", vec![], Value::Null);
        events.push(json!({"type": "response.created", "response": start.clone()}));
        start["status"] = "in_progress".into();
        events.push(json!({"type": "response.in_progress", "response": start}));
        events
    }

    /// Any event; `sequence_number` is added.
    pub fn push(&mut self, mut event: Value) -> &mut Self {
        event["sequence_number"] = self.seq.into();
        self.seq += 1;
        self.events.push(event);
        self
    }

    fn index_of(&self, item_id: &str) -> u64 {
        self.output
            .iter()
            .position(|i| i["id"] == item_id)
            .map_or(self.next_index, |p| p as u64)
    }

    /// `output_item.added` for a new item (its final form goes in `output`).
    pub fn added(&mut self, final_item: Value) -> &mut Self {
        let mut added = final_item.clone();
        added["status"] = "in_progress".into();
        match added["type"].as_str() {
            Some("message") => added["content"] = json!([]),
            Some("function_call") => added["arguments"] = "".into(),
            _ => {}
        }
        let index = self.next_index;
        self.next_index += 1;
        self.output.push(final_item);
        self.push(
            json!({"type": "response.output_item.added", "output_index": index, "item": added}),
        )
    }

    pub fn item_done(&mut self, item_id: &str) -> &mut Self {
        let index = self.index_of(item_id);
        let item = self.output[index as usize].clone();
        self.push(json!({"type": "response.output_item.done", "output_index": index, "item": item}))
    }

    pub fn text_delta(&mut self, item_id: &str, delta: &str) -> &mut Self {
        let index = self.index_of(item_id);
        self.push(json!({
            "type": "response.output_text.delta", "item_id": item_id, "output_index": index,
            "content_index": 0, "delta": delta, "logprobs": [],
        }))
    }

    pub fn text_done(&mut self, item_id: &str, text: &str) -> &mut Self {
        let index = self.index_of(item_id);
        self.push(json!({
            "type": "response.output_text.done", "item_id": item_id, "output_index": index,
            "content_index": 0, "text": text, "logprobs": [],
        }))
    }

    pub fn args_delta(&mut self, item_id: &str, delta: &str) -> &mut Self {
        let index = self.index_of(item_id);
        self.push(json!({
            "type": "response.function_call_arguments.delta", "item_id": item_id,
            "output_index": index, "delta": delta,
        }))
    }

    pub fn args_done(&mut self, item_id: &str, arguments: &str) -> &mut Self {
        let index = self.index_of(item_id);
        self.push(json!({
            "type": "response.function_call_arguments.done", "item_id": item_id,
            "output_index": index, "arguments": arguments,
        }))
    }

    pub fn reasoning_delta(&mut self, item_id: &str, delta: &str) -> &mut Self {
        let index = self.index_of(item_id);
        self.push(json!({
            "type": "response.reasoning_summary_text.delta", "item_id": item_id,
            "output_index": index, "summary_index": 0, "delta": delta,
        }))
    }

    /// A whole message streamed as `deltas` (Model Studio's event order).
    pub fn message(&mut self, item_id: &str, deltas: &[&str]) -> &mut Self {
        let text = deltas.concat();
        self.added(message_item(item_id, &text));
        let index = self.index_of(item_id);
        self.push(json!({
            "type": "response.content_part.added", "item_id": item_id, "output_index": index,
            "content_index": 0, "part": {"annotations": [], "text": "", "type": "output_text"},
        }));
        for delta in deltas {
            self.text_delta(item_id, delta);
        }
        self.text_done(item_id, &text);
        self.push(json!({
            "type": "response.content_part.done", "item_id": item_id, "output_index": index,
            "content_index": 0, "part": {"annotations": [], "text": text, "type": "output_text"},
        }));
        self.item_done(item_id)
    }

    /// A whole function call; `deltas` empty = arguments only in the `.done` events.
    pub fn call(&mut self, item_id: &str, call_id: &str, name: &str, deltas: &[&str]) -> &mut Self {
        self.call_with(item_id, call_id, name, deltas, &deltas.concat())
    }

    pub fn call_with(
        &mut self,
        item_id: &str,
        call_id: &str,
        name: &str,
        deltas: &[&str],
        full: &str,
    ) -> &mut Self {
        self.added(call_item(item_id, call_id, name, full));
        for delta in deltas {
            self.args_delta(item_id, delta);
        }
        self.args_done(item_id, full);
        self.item_done(item_id)
    }

    pub fn reasoning(&mut self, item_id: &str, deltas: &[&str]) -> &mut Self {
        self.added(reasoning_item(item_id, &deltas.concat()));
        for delta in deltas {
            self.reasoning_delta(item_id, delta);
        }
        self.item_done(item_id)
    }

    /// A built-in web search that the server ran itself.
    pub fn web_search(&mut self, item_id: &str) -> &mut Self {
        self.added(json!({
            "id": item_id, "type": "web_search_call", "status": "completed",
            "action": {"query": "Alibaba Cloud", "type": "search", "sources": []},
        }));
        self.item_done(item_id)
    }

    fn terminal(&mut self, kind: &str, response: Value) -> Vec<Value> {
        self.push(json!({"type": kind, "response": response}));
        std::mem::take(&mut self.events)
    }

    pub fn completed(&mut self) -> Vec<Value> {
        let response = response("completed", MODEL, self.output.clone(), usage());
        self.terminal("response.completed", response)
    }

    /// Terminal response with an empty `output`: the items must come from the events.
    pub fn completed_empty_output(&mut self) -> Vec<Value> {
        let response = response("completed", MODEL, vec![], usage());
        self.terminal("response.completed", response)
    }

    pub fn incomplete(&mut self, reason: &str) -> Vec<Value> {
        let mut response = response("incomplete", MODEL, self.output.clone(), usage());
        response["incomplete_details"] = json!({"reason": reason});
        self.terminal("response.incomplete", response)
    }

    pub fn failed(&mut self, code: &str, message: &str) -> Vec<Value> {
        let mut response = response("failed", MODEL, self.output.clone(), Value::Null);
        response["error"] = json!({"code": code, "message": message});
        self.terminal("response.failed", response)
    }

    /// The events so far, with no terminal event (the connection dropped).
    pub fn truncated(&mut self) -> Vec<Value> {
        std::mem::take(&mut self.events)
    }
}
