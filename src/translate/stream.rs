//! Responses stream events → `chat.completion.chunk`s (docs/chat-completions.md, "The answer").
//!
//! A state machine fed one upstream event at a time. It sends exactly one finish chunk
//! (at the terminal event or at a stop-string match), never empty filler chunks, and an
//! error frame instead of a finish chunk when upstream fails or ends early.

use super::chunk::{Choice, Chunk, Delta, UsageField, usage_chunk};
use super::collect::event_item_key;
use super::output::{calls_or_stop, created_secs, finish_reason};
use super::response::truncated;
use super::stop::StopMatcher;
use super::usage::{ChatUsage, chat_usage};
use crate::error::ApiError;
use crate::model_studio::errors::error_from_payload;
use crate::model_studio::events::{EventKind, TextDelta};
use serde_json::{Map, Value, json};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// What the chunks need from the request and the handler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamContext {
    /// Fallback model name (Model Studio's `response.created` says `""`).
    pub model: String,
    /// Emit the usage chunk (`choices: []`) before `[DONE]`; every earlier chunk then
    /// carries `"usage": null`.
    pub include_usage: bool,
    /// False when the handler merges n>1 choices and emits one usage chunk itself.
    pub emit_usage_chunk: bool,
    pub legacy_functions: bool,
    /// 0 normally; i for the i-th of n parallel choices.
    pub choice_index: u32,
    /// Fixed chunk id (n>1: the handler picks one); None = "chatcmpl-" + response.id.
    pub id: Option<String>,
    pub created: Option<i64>,
    pub stop: Vec<String>,
}

/// One downstream SSE payload; the handler writes `data: <json>\n\n` for each and
/// `data: [DONE]\n\n` itself once the translator is done.
#[derive(Debug, Clone, PartialEq)]
// Nearly every item is a chunk, made per upstream event: boxing it would add an allocation
// per event to spare the rare error a few hundred bytes in a short-lived Vec.
#[allow(clippy::large_enum_variant)]
pub enum ChunkOut {
    Chunk(Chunk),
    /// `{"error":{...}}`; no finish chunk follows.
    Error(Value),
}

/// A function call, tracked by its item id so parallel calls never share an index.
#[derive(Debug, Default)]
struct ToolState {
    index: u32,
    announced: bool,
    /// Some argument text has been sent: `.done` events must not repeat it.
    args_sent: bool,
    /// Fragments that arrived before the call could be announced.
    pending: String,
    /// Legacy mode answers with one call; later ones are not sent.
    ignored: bool,
}

type PartKey = (String, &'static str, u64);

#[derive(Debug)]
pub struct ChunkTranslator {
    ctx: StreamContext,
    id: Option<Arc<str>>,
    created: Option<i64>,
    model: Arc<str>,
    matcher: StopMatcher,
    role_sent: bool,
    tools: HashMap<String, ToolState>,
    next_tool_index: u32,
    calls_sent: bool,
    legacy_call: Option<String>,
    /// Text / refusal / reasoning parts that produced output, so `.done` events and the
    /// terminal response only fill in what was never streamed.
    parts_seen: HashSet<PartKey>,
    /// The part of the latest delta: deltas of one part come in a run, so a repeat is known
    /// without hashing its key again.
    last_seen: Option<PartKey>,
    last_text_item: Option<String>,
    last_reasoning: Option<PartKey>,
    usage: Option<ChatUsage>,
    done: bool,
    out: Vec<ChunkOut>,
}

impl ChunkTranslator {
    pub fn new(ctx: StreamContext) -> Self {
        Self {
            id: ctx.id.as_deref().map(Arc::from),
            created: ctx.created,
            model: Arc::from(ctx.model.as_str()),
            matcher: StopMatcher::new(ctx.stop.clone()),
            ctx,
            role_sent: false,
            tools: HashMap::new(),
            next_tool_index: 0,
            calls_sent: false,
            legacy_call: None,
            parts_seen: HashSet::new(),
            last_seen: None,
            last_text_item: None,
            last_reasoning: None,
            usage: None,
            done: false,
            out: Vec::new(),
        }
    }

    /// Notes that a delta of `part` produced output.
    fn saw(&mut self, part: PartKey) {
        if self.last_seen.as_ref() != Some(&part) {
            self.parts_seen.insert(part.clone());
            self.last_seen = Some(part);
        }
    }

    /// A terminal event, a stop match or an error happened: stop reading, cancel upstream.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Chat-shaped usage once the terminal event reported it.
    pub fn usage(&self) -> Option<ChatUsage> {
        self.usage.clone()
    }

    pub fn on_event(&mut self, event: &Value) -> Vec<ChunkOut> {
        if self.done {
            return Vec::new();
        }
        if let Some(err) = error_from_payload(event) {
            self.fail(&err);
            return self.take();
        }
        if event["response"].is_object() {
            self.note_response(&event["response"]);
        }
        let key = event_item_key(event);
        let str_of = |field: &str| event[field].as_str().unwrap_or_default();
        let index_of = |field: &str| event[field].as_u64().unwrap_or(0);
        match EventKind::of_event(event) {
            EventKind::Created if !self.role_sent => {
                self.emit(Delta::content(String::new()), None);
            }
            EventKind::OutputItemAdded if event["item"]["type"] == "function_call" => {
                self.announce(&key, &event["item"], None);
            }
            EventKind::OutputTextDelta => {
                self.text_delta(key, index_of("content_index"), str_of("delta"));
            }
            EventKind::OutputTextDone
                if self
                    .parts_seen
                    .insert((key.clone(), "text", index_of("content_index"))) =>
            {
                self.send_text(&key, str_of("text"));
            }
            EventKind::RefusalDelta => {
                self.send_refusal(str_of("delta"));
                self.saw((key, "refusal", 0));
            }
            EventKind::RefusalDone if self.parts_seen.insert((key.clone(), "refusal", 0)) => {
                self.send_refusal(str_of("refusal"));
            }
            kind @ (EventKind::ReasoningSummaryTextDelta
            | EventKind::ReasoningTextDelta
            | EventKind::ReasoningSummaryTextDone
            | EventKind::ReasoningTextDone) => {
                let summary = matches!(
                    kind,
                    EventKind::ReasoningSummaryTextDelta | EventKind::ReasoningSummaryTextDone
                );
                let (part, at) = if summary {
                    ("summary", index_of("summary_index"))
                } else {
                    ("reasoning", index_of("content_index"))
                };
                let part_key = (key, part, at);
                if matches!(
                    kind,
                    EventKind::ReasoningSummaryTextDelta | EventKind::ReasoningTextDelta
                ) {
                    self.saw(part_key.clone());
                    self.send_reasoning(part_key, str_of("delta"));
                } else if self.parts_seen.insert(part_key.clone()) {
                    self.send_reasoning(part_key, str_of("text"));
                }
            }
            EventKind::FunctionCallArgumentsDelta => self.arguments(&key, str_of("delta")),
            EventKind::FunctionCallArgumentsDone => {
                self.arguments_done(&key, str_of("arguments"));
            }
            EventKind::OutputItemDone => self.item_done(&key, &event["item"]),
            EventKind::Completed | EventKind::Incomplete => self.terminal(&event["response"]),
            _ => {}
        }
        self.take()
    }

    /// A plain text delta read typed ([`TextDelta::parse`]): what [`Self::on_event`] does
    /// with the same event, without its `Value`.
    pub fn on_text_delta(&mut self, delta: &TextDelta) -> Vec<ChunkOut> {
        if self.done {
            return Vec::new();
        }
        let at = delta.content_index.unwrap_or(0);
        self.text_delta(delta.item_key(), at, &delta.delta);
        self.take()
    }

    fn text_delta(&mut self, item: String, content_index: u64, text: &str) {
        self.send_text(&item, text);
        self.saw((item, "text", content_index));
    }

    /// No terminal event seen → an error frame, never a fake "stop".
    pub fn on_upstream_end(&mut self) -> Vec<ChunkOut> {
        if !self.done {
            self.fail(&truncated());
        }
        self.take()
    }

    /// Transport failure or idle timeout mid-stream → one error frame.
    pub fn on_upstream_error(&mut self, err: &ApiError) -> Vec<ChunkOut> {
        if !self.done {
            self.fail(err);
        }
        self.take()
    }

    fn take(&mut self) -> Vec<ChunkOut> {
        std::mem::take(&mut self.out)
    }

    /// Held-back text is dropped on errors: the answer is incomplete either way.
    fn fail(&mut self, err: &ApiError) {
        self.out.push(ChunkOut::Error(err.to_json()));
        self.done = true;
    }

    /// Picks up id, creation time and (if non-empty, and nothing was sent yet) model.
    fn note_response(&mut self, response: &Value) {
        if self.id.is_none()
            && let Some(id) = response["id"].as_str()
        {
            self.id = Some(Arc::from(format!("chatcmpl-{id}")));
        }
        if self.created.is_none() {
            self.created = created_secs(&response["created_at"]);
        }
        if !self.role_sent
            && let Some(model) = response["model"].as_str().filter(|m| !m.is_empty())
        {
            self.model = Arc::from(model);
        }
    }

    fn chunk(&mut self, delta: Delta, finish: Option<&'static str>) -> Chunk {
        let id = self
            .id
            .get_or_insert_with(|| Arc::from("chatcmpl-"))
            .clone();
        Chunk {
            id,
            object: "chat.completion.chunk",
            created: *self.created.get_or_insert(0),
            model: self.model.clone(),
            choice: Some(Choice {
                index: self.ctx.choice_index,
                delta,
                logprobs: (),
                finish_reason: finish,
            }),
            usage: if self.ctx.include_usage {
                UsageField::Null
            } else {
                UsageField::Absent
            },
        }
    }

    /// The first chunk of the stream carries the role.
    fn emit(&mut self, mut delta: Delta, finish: Option<&'static str>) {
        if !self.role_sent {
            self.role_sent = true;
            delta.role = Some("assistant");
        }
        let chunk = self.chunk(delta, finish);
        self.out.push(ChunkOut::Chunk(chunk));
    }

    fn finish_with(&mut self, reason: &'static str) {
        self.emit(Delta::default(), Some(reason));
        self.done = true;
    }

    /// Content goes through the stop matcher; message items are separated like in the
    /// non-streaming answer.
    fn send_text(&mut self, item: &str, text: &str) {
        if self.done || text.is_empty() {
            return;
        }
        let step = match self.last_text_item.as_deref() {
            Some(last) if last == item => self.matcher.push(text),
            last => {
                let separated = last.is_some();
                self.last_text_item = Some(item.to_owned());
                if separated {
                    self.matcher.push(&format!("\n\n{text}"))
                } else {
                    self.matcher.push(text)
                }
            }
        };
        if !step.emit.is_empty() {
            self.emit(Delta::content(step.emit), None);
        }
        if step.matched {
            // Usage is unknown when the gateway stops early, so no usage chunk follows.
            let reason = calls_or_stop(self.calls_sent, self.ctx.legacy_functions);
            self.finish_with(reason);
        }
    }

    fn send_refusal(&mut self, text: &str) {
        if !self.done && !text.is_empty() {
            self.emit(
                Delta {
                    refusal: Some(text.to_owned()),
                    ..Delta::default()
                },
                None,
            );
        }
    }

    fn send_reasoning(&mut self, key: PartKey, text: &str) {
        if self.done || text.is_empty() {
            return;
        }
        let separate = self
            .last_reasoning
            .as_ref()
            .is_some_and(|last| *last != key);
        let text = if separate {
            format!("\n\n{text}")
        } else {
            text.to_owned()
        };
        self.last_reasoning = Some(key);
        self.emit(
            Delta {
                reasoning_content: Some(text),
                ..Delta::default()
            },
            None,
        );
    }

    fn call_delta(&mut self, index: u32, header: Option<(&str, &str)>, arguments: &str) -> Delta {
        if self.ctx.legacy_functions {
            let mut call = Map::new();
            if let Some((_, name)) = header {
                call.insert("name".into(), name.into());
            }
            call.insert("arguments".into(), arguments.into());
            Delta {
                function_call: Some(Value::Object(call)),
                ..Delta::default()
            }
        } else {
            let call = match header {
                Some((call_id, name)) => json!({
                    "index": index,
                    "id": call_id,
                    "type": "function",
                    "function": {"name": name, "arguments": arguments},
                }),
                None => json!({"index": index, "function": {"arguments": arguments}}),
            };
            Delta {
                tool_calls: Some(json!([call])),
                ..Delta::default()
            }
        }
    }

    /// First sight of a call: its header, with the arguments known so far.
    fn announce(&mut self, key: &str, item: &Value, full_arguments: Option<&str>) {
        if self.done {
            return;
        }
        let legacy = self.ctx.legacy_functions;
        let taken = self.legacy_call.as_deref().is_some_and(|k| k != key);
        let next_index = self.next_tool_index;
        let state = self.tools.entry(key.to_owned()).or_default();
        if state.announced || state.ignored {
            return;
        }
        if legacy && taken {
            state.ignored = true;
            return;
        }
        state.announced = true;
        state.index = next_index;
        let arguments = match full_arguments {
            Some(full) if !full.is_empty() => full.to_owned(),
            _ => std::mem::take(&mut state.pending),
        };
        state.args_sent = !arguments.is_empty();
        if legacy {
            self.legacy_call = Some(key.to_owned());
        } else {
            self.next_tool_index += 1;
        }
        self.calls_sent = true;
        let call_id = item["call_id"].as_str().unwrap_or_default();
        let name = item["name"].as_str().unwrap_or_default();
        let delta = self.call_delta(next_index, Some((call_id, name)), &arguments);
        self.emit(delta, None);
    }

    fn arguments(&mut self, key: &str, fragment: &str) {
        if self.done || fragment.is_empty() {
            return;
        }
        let state = self.tools.entry(key.to_owned()).or_default();
        if state.ignored {
            return;
        }
        if !state.announced {
            state.pending.push_str(fragment);
            return;
        }
        state.args_sent = true;
        let index = state.index;
        let delta = self.call_delta(index, None, fragment);
        self.emit(delta, None);
    }

    /// Full arguments, sent only when no fragment was (some providers send them only here).
    fn arguments_done(&mut self, key: &str, full: &str) {
        if self.done || full.is_empty() {
            return;
        }
        let state = self.tools.entry(key.to_owned()).or_default();
        if state.ignored || state.args_sent {
            return;
        }
        if !state.announced {
            full.clone_into(&mut state.pending);
            return;
        }
        state.args_sent = true;
        let index = state.index;
        let delta = self.call_delta(index, None, full);
        self.emit(delta, None);
    }

    fn item_done(&mut self, key: &str, item: &Value) {
        match item["type"].as_str() {
            Some("function_call") => {
                let full = item["arguments"].as_str().unwrap_or_default();
                let announced = self.tools.get(key).is_some_and(|s| s.announced);
                if announced {
                    self.arguments_done(key, full);
                } else {
                    self.announce(key, item, Some(full));
                }
            }
            Some("message") => {
                let parts = item["content"].as_array().map(Vec::as_slice).unwrap_or(&[]);
                for (i, part) in parts.iter().enumerate() {
                    let (kind, at) = match part["type"].as_str() {
                        Some("output_text") => ("text", i as u64),
                        Some("refusal") => ("refusal", 0),
                        _ => continue,
                    };
                    if !self.parts_seen.insert((key.to_owned(), kind, at)) {
                        continue;
                    }
                    if kind == "text" {
                        self.send_text(key, part["text"].as_str().unwrap_or_default());
                    } else {
                        self.send_refusal(part["refusal"].as_str().unwrap_or_default());
                    }
                }
            }
            _ => {}
        }
    }

    /// `response.completed` / `response.incomplete`: send what was never streamed, the
    /// held-back text, the one finish chunk and the usage chunk.
    fn terminal(&mut self, response: &Value) {
        let output = response["output"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        for item in output {
            if let Some(id) = item["id"].as_str() {
                self.item_done(id, item);
            }
        }
        if self.done {
            return;
        }
        let rest = self.matcher.flush();
        if !rest.is_empty() {
            self.emit(Delta::content(rest), None);
        }
        self.usage = response
            .get("usage")
            .filter(|u| u.is_object())
            .map(chat_usage);
        let reason = finish_reason(response, self.calls_sent, self.ctx.legacy_functions);
        self.finish_with(reason);
        if self.ctx.include_usage
            && self.ctx.emit_usage_chunk
            && let Some(usage) = &self.usage
        {
            let id = self.id.as_deref().unwrap_or_default();
            let chunk = usage_chunk(id, self.created.unwrap_or(0), &self.model, usage);
            self.out.push(ChunkOut::Chunk(chunk));
        }
    }
}
