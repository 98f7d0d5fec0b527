//! Responses results → `chat.completion` for non-streaming clients (docs/chat-completions.md, "The answer").
//!
//! The gateway always streams upstream, so the usual path is [`CompletionBuilder`] fed
//! with events; `response_to_chat` translates a whole response object.

use super::collect::Collector;
use super::output::{
    Meta, assemble, calls_or_stop, chat_message, completion, created_secs, finish_reason,
};
use super::stop::StopMatcher;
use super::usage::chat_usage;
use crate::error::ApiError;
use crate::model_studio::errors::error_from_payload;
use crate::model_studio::events::{EventKind, TextDelta};
use http::StatusCode;
use serde_json::Value;
use std::collections::HashSet;

/// What the translation back needs from the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatContext {
    /// Used when the response carries no model (Model Studio's early events say `""`).
    pub model: String,
    pub legacy_functions: bool,
}

/// Responses object (completed/incomplete) → chat.completion; failed / error → Err. The
/// pieces [`CompletionBuilder::finish`] composes (assembly, finish reason, meta, usage),
/// without the stream-only cases (stop strings, missing terminal event): the mapping rules
/// are tested through it. Test-only: the gateway always builds from events.
#[cfg(test)]
pub fn response_to_chat(resp: &Value, ctx: &ChatContext) -> Result<Value, ApiError> {
    if let Some(err) = error_from_payload(resp) {
        return Err(err);
    }
    match resp["status"].as_str() {
        None | Some("completed" | "incomplete") => {}
        Some(other) => {
            return Err(ApiError::server(
                StatusCode::BAD_GATEWAY,
                format!("Model Studio returned a response with status '{other}' instead of a finished one."),
            )
            .with_code("upstream_incomplete_response"));
        }
    }
    let output = resp["output"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    let asm = assemble(output);
    let finish = finish_reason(resp, !asm.calls.is_empty(), ctx.legacy_functions);
    let meta = Meta::from_response(resp, &ctx.model);
    let usage = resp.get("usage").filter(|u| u.is_object()).map(chat_usage);
    Ok(completion(
        &meta,
        chat_message(&asm, ctx.legacy_functions),
        finish,
        usage,
    ))
}

/// Builds a chat.completion for a NON-streaming client from upstream SSE events.
///
/// When a stop string ends the answer, upstream is cancelled before it reports usage;
/// the completion then has no `usage` field at all rather than made-up numbers.
#[derive(Debug)]
pub struct CompletionBuilder {
    ctx: ChatContext,
    stops: Vec<String>,
    matcher: StopMatcher,
    /// Text the matcher let through; the content when a stop string matched.
    emitted: String,
    text_seen: HashSet<(String, u64)>,
    last_text_item: Option<String>,
    collector: Collector,
    /// From `response.created`, in case the stream ends early.
    started: Option<Value>,
    terminal: Option<Value>,
    error: Option<ApiError>,
}

impl CompletionBuilder {
    pub fn new(ctx: ChatContext, stop: Vec<String>) -> Self {
        Self {
            ctx,
            matcher: StopMatcher::new(stop.clone()),
            stops: stop,
            emitted: String::new(),
            text_seen: HashSet::new(),
            last_text_item: None,
            collector: Collector::default(),
            started: None,
            terminal: None,
            error: None,
        }
    }

    fn is_over(&self) -> bool {
        self.terminal.is_some() || self.error.is_some() || self.matcher.is_matched()
    }

    /// Feed one parsed upstream event. Returns true when the caller should stop reading
    /// (terminal event, error, or a stop string matched: then it cancels upstream).
    pub fn push(&mut self, event: &Value) -> bool {
        if self.is_over() {
            return true;
        }
        if let Some(err) = error_from_payload(event) {
            self.error = Some(err);
            return true;
        }
        self.collector.on_event(event);
        let item = super::collect::event_item_key(event);
        match EventKind::of_event(event) {
            EventKind::Created | EventKind::InProgress if self.started.is_none() => {
                self.started = Some(event["response"].clone());
            }
            EventKind::OutputTextDelta => {
                let text = event["delta"].as_str().unwrap_or_default();
                self.text_delta(item, content_index(event), text);
            }
            // Text that never came as deltas is only in the `.done`.
            EventKind::OutputTextDone
                if self.text_seen.insert((item.clone(), content_index(event))) =>
            {
                self.watch(&item, event["text"].as_str().unwrap_or_default());
            }
            EventKind::OutputItemDone if event["item"]["type"] == "message" => {
                let parts = event["item"]["content"]
                    .as_array()
                    .map(Vec::as_slice)
                    .unwrap_or(&[]);
                for (i, part) in parts.iter().enumerate() {
                    if part["type"] == "output_text"
                        && self.text_seen.insert((item.clone(), i as u64))
                    {
                        self.watch(&item, part["text"].as_str().unwrap_or_default());
                    }
                }
            }
            EventKind::Completed | EventKind::Incomplete => {
                self.terminal = Some(event["response"].clone());
            }
            _ => {}
        }
        self.is_over()
    }

    /// A plain text delta read typed ([`TextDelta::parse`]): what [`Self::push`] does with
    /// the same event, without its `Value`.
    pub fn push_text_delta(&mut self, delta: &TextDelta) -> bool {
        if self.is_over() {
            return true;
        }
        self.collector.on_text_delta(delta);
        let at = delta.content_index.unwrap_or(0);
        self.text_delta(delta.item_key(), at, &delta.delta);
        self.is_over()
    }

    fn text_delta(&mut self, item: String, content_index: u64, text: &str) {
        self.watch(&item, text);
        self.text_seen.insert((item, content_index));
    }

    /// Runs text through the stop matcher, in the order (and with the item separator) the
    /// content is assembled in.
    fn watch(&mut self, item: &str, text: &str) {
        if text.is_empty() || self.stops.is_empty() {
            return;
        }
        if self
            .last_text_item
            .as_deref()
            .is_some_and(|last| last != item)
        {
            let step = self.matcher.push("\n\n");
            self.emitted.push_str(&step.emit);
        }
        self.last_text_item = Some(item.to_owned());
        let step = self.matcher.push(text);
        self.emitted.push_str(&step.emit);
    }

    /// The upstream `usage` object (Responses shape) once the terminal event reported it.
    pub fn usage(&self) -> Option<Value> {
        self.terminal
            .as_ref()
            .and_then(|r| r.get("usage"))
            .filter(|u| u.is_object())
            .cloned()
    }

    /// The finished chat.completion, or the error the client must get.
    pub fn finish(self) -> Result<Value, ApiError> {
        if let Some(err) = self.error {
            return Err(err);
        }
        let legacy = self.ctx.legacy_functions;
        let stopped = self.matcher.is_matched();
        let response = match (&self.terminal, stopped) {
            (Some(terminal), _) => terminal,
            (None, true) => self.started.as_ref().unwrap_or(&NO_RESPONSE),
            (None, false) => return Err(truncated()),
        };
        let from_response = response["output"].as_array().filter(|o| !o.is_empty());
        let output = match (self.terminal.is_some(), from_response) {
            (true, Some(output)) => output.clone(),
            _ => self.collector.output(),
        };
        let mut asm = assemble(&output);
        let cut = asm.cut_at_stop(&self.stops);
        if stopped && !cut {
            // The collected items disagree with what was streamed; trust the stream.
            asm.text = self.emitted.clone();
            asm.annotations.clear();
        }
        let finish = if cut || stopped {
            calls_or_stop(!asm.calls.is_empty(), legacy)
        } else {
            finish_reason(response, !asm.calls.is_empty(), legacy)
        };
        let mut meta = Meta::from_response(response, &self.ctx.model);
        if let Some(started) = &self.started {
            if response["id"].as_str().is_none() {
                meta.id = super::output::completion_id(started);
            }
            if created_secs(&response["created_at"]).is_none() {
                meta.created = created_secs(&started["created_at"]).unwrap_or(0);
            }
        }
        let usage = self.usage().as_ref().map(chat_usage);
        Ok(completion(&meta, chat_message(&asm, legacy), finish, usage))
    }
}

/// Stands in for the response when a stop string ended the stream before any arrived.
static NO_RESPONSE: Value = Value::Null;

fn content_index(event: &Value) -> u64 {
    event["content_index"].as_u64().unwrap_or(0)
}

/// Upstream ended without a terminal event: an error, never a fake "stop".
pub(crate) fn truncated() -> ApiError {
    ApiError::server(
        StatusCode::BAD_GATEWAY,
        "The upstream stream ended before the response was complete.",
    )
    .with_code("upstream_stream_truncated")
}
