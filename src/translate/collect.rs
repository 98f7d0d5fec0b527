//! Rebuilds the `output` array from stream events, for when the terminal event's
//! response carries an empty `output` or never arrives (a stop string ended the stream).
//!
//! Finished items (`response.output_item.done`) are taken as sent; items that never got
//! a `.done` are rebuilt from their deltas.

use crate::model_studio::events::{EventKind, TextDelta, item_key};
use serde_json::{Value, json};
use std::collections::BTreeMap;

#[derive(Debug, Default)]
struct Slot {
    key: String,
    output_index: Option<u64>,
    kind: Option<String>,
    added: Option<Value>,
    done: Option<Value>,
    texts: BTreeMap<u64, String>,
    refusal: String,
    arguments: String,
    summary: BTreeMap<u64, String>,
    reasoning: BTreeMap<u64, String>,
}

#[derive(Debug, Default)]
pub(crate) struct Collector {
    slots: Vec<Slot>,
}

/// The key an event's item is tracked by: its id, else its output position.
pub(crate) fn event_item_key(event: &Value) -> String {
    item_key(
        event["item_id"]
            .as_str()
            .or_else(|| event["item"]["id"].as_str()),
        event["output_index"].as_u64(),
    )
}

fn index(event: &Value, key: &str) -> u64 {
    event[key].as_u64().unwrap_or(0)
}

/// Appends a delta; a `.done` text only fills a part that got no deltas.
fn append(map: &mut BTreeMap<u64, String>, at: u64, delta: &str) {
    map.entry(at).or_default().push_str(delta);
}

fn fill(map: &mut BTreeMap<u64, String>, at: u64, full: &str) {
    let part = map.entry(at).or_default();
    if part.is_empty() {
        full.clone_into(part);
    }
}

impl Collector {
    fn slot(&mut self, event: &Value, kind: &str) -> &mut Slot {
        self.slot_for(event_item_key(event), event["output_index"].as_u64(), kind)
    }

    fn slot_for(&mut self, key: String, output_index: Option<u64>, kind: &str) -> &mut Slot {
        let pos = match self.slots.iter().position(|s| s.key == key) {
            Some(pos) => pos,
            None => {
                self.slots.push(Slot {
                    key,
                    ..Slot::default()
                });
                self.slots.len() - 1
            }
        };
        let slot = &mut self.slots[pos];
        if slot.output_index.is_none() {
            slot.output_index = output_index;
        }
        if slot.kind.is_none() && !kind.is_empty() {
            slot.kind = Some(kind.to_owned());
        }
        slot
    }

    /// A plain text delta read typed: what [`Self::on_event`] does with the same event.
    pub fn on_text_delta(&mut self, delta: &TextDelta) {
        let at = delta.content_index.unwrap_or(0);
        self.text_delta(delta.item_key(), delta.output_index, at, &delta.delta);
    }

    fn text_delta(&mut self, key: String, output_index: Option<u64>, at: u64, text: &str) {
        append(
            &mut self.slot_for(key, output_index, "message").texts,
            at,
            text,
        );
    }

    pub fn on_event(&mut self, event: &Value) {
        let text = |key: &str| event[key].as_str().unwrap_or_default();
        match EventKind::of_event(event) {
            EventKind::OutputItemAdded => {
                let kind = event["item"]["type"].as_str().unwrap_or_default();
                self.slot(event, kind).added = Some(event["item"].clone());
            }
            EventKind::OutputItemDone => {
                let kind = event["item"]["type"].as_str().unwrap_or_default();
                self.slot(event, kind).done = Some(event["item"].clone());
            }
            EventKind::OutputTextDelta => {
                let (key, at) = (event_item_key(event), index(event, "content_index"));
                self.text_delta(key, event["output_index"].as_u64(), at, text("delta"));
            }
            EventKind::OutputTextDone => {
                let at = index(event, "content_index");
                fill(&mut self.slot(event, "message").texts, at, text("text"));
            }
            EventKind::RefusalDelta => {
                self.slot(event, "message").refusal.push_str(text("delta"));
            }
            EventKind::RefusalDone => {
                let slot = self.slot(event, "message");
                if slot.refusal.is_empty() {
                    slot.refusal = text("refusal").to_owned();
                }
            }
            EventKind::FunctionCallArgumentsDelta => {
                self.slot(event, "function_call")
                    .arguments
                    .push_str(text("delta"));
            }
            EventKind::FunctionCallArgumentsDone => {
                let full = text("arguments");
                if !full.is_empty() {
                    self.slot(event, "function_call").arguments = full.to_owned();
                }
            }
            EventKind::ReasoningSummaryTextDelta => {
                let at = index(event, "summary_index");
                append(
                    &mut self.slot(event, "reasoning").summary,
                    at,
                    text("delta"),
                );
            }
            EventKind::ReasoningSummaryTextDone => {
                let at = index(event, "summary_index");
                fill(&mut self.slot(event, "reasoning").summary, at, text("text"));
            }
            EventKind::ReasoningTextDelta => {
                let at = index(event, "content_index");
                append(
                    &mut self.slot(event, "reasoning").reasoning,
                    at,
                    text("delta"),
                );
            }
            EventKind::ReasoningTextDone => {
                let at = index(event, "content_index");
                fill(
                    &mut self.slot(event, "reasoning").reasoning,
                    at,
                    text("text"),
                );
            }
            _ => {}
        }
    }

    /// The output items in output order.
    pub fn output(&self) -> Vec<Value> {
        let mut slots: Vec<&Slot> = self.slots.iter().collect();
        slots.sort_by_key(|s| s.output_index.unwrap_or(u64::MAX));
        slots.into_iter().filter_map(Slot::item).collect()
    }
}

impl Slot {
    fn item(&self) -> Option<Value> {
        if let Some(done) = &self.done {
            return Some(done.clone());
        }
        let added = self.added.as_ref();
        let from_added = |key: &str| added.map_or(Value::Null, |a| a[key].clone());
        match self.kind.as_deref()? {
            "message" => {
                let mut content: Vec<Value> = self
                    .texts
                    .values()
                    .map(|t| json!({"type": "output_text", "text": t, "annotations": []}))
                    .collect();
                if !self.refusal.is_empty() {
                    content.push(json!({"type": "refusal", "refusal": self.refusal}));
                }
                Some(json!({"type": "message", "role": "assistant", "content": content}))
            }
            "function_call" => Some(json!({
                "type": "function_call",
                "id": self.key,
                "call_id": from_added("call_id"),
                "name": from_added("name"),
                "arguments": self.arguments,
            })),
            "reasoning" => {
                let parts = |map: &BTreeMap<u64, String>, kind: &str| -> Vec<Value> {
                    map.values()
                        .map(|t| json!({"type": kind, "text": t}))
                        .collect()
                };
                Some(json!({
                    "type": "reasoning",
                    "summary": parts(&self.summary, "summary_text"),
                    "content": parts(&self.reasoning, "reasoning_text"),
                }))
            }
            _ => added.cloned(),
        }
    }
}
