//! The kinds of event in a Model Studio Responses stream, named once: the relay, the router's
//! first-event check and the chat translation all decide by them.

use serde::de::IgnoredAny;
use std::borrow::Cow;

/// An event's `type`, as far as the gateway acts on it; anything else is [`EventKind::Other`]
/// (relayed, never acted on).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    Queued,
    Created,
    InProgress,
    Completed,
    Incomplete,
    Failed,
    /// A stream-level `error` event.
    Error,
    OutputItemAdded,
    OutputItemDone,
    OutputTextDelta,
    OutputTextDone,
    RefusalDelta,
    RefusalDone,
    ReasoningSummaryTextDelta,
    ReasoningSummaryTextDone,
    ReasoningTextDelta,
    ReasoningTextDone,
    FunctionCallArgumentsDelta,
    FunctionCallArgumentsDone,
    Other,
}

impl EventKind {
    /// The kind of an event whose `type` is `name`.
    pub fn of(name: &str) -> EventKind {
        Self::of_bytes(name.as_bytes())
    }

    /// [`EventKind::of`] for a name still in the wire's bytes (an `event:` line): no UTF-8
    /// check first, which was measurable once per relayed event.
    pub fn of_bytes(name: &[u8]) -> EventKind {
        match name {
            b"response.queued" => EventKind::Queued,
            b"response.created" => EventKind::Created,
            b"response.in_progress" => EventKind::InProgress,
            b"response.completed" => EventKind::Completed,
            b"response.incomplete" => EventKind::Incomplete,
            b"response.failed" => EventKind::Failed,
            b"error" => EventKind::Error,
            b"response.output_item.added" => EventKind::OutputItemAdded,
            b"response.output_item.done" => EventKind::OutputItemDone,
            b"response.output_text.delta" => EventKind::OutputTextDelta,
            b"response.output_text.done" => EventKind::OutputTextDone,
            b"response.refusal.delta" => EventKind::RefusalDelta,
            b"response.refusal.done" => EventKind::RefusalDone,
            b"response.reasoning_summary_text.delta" => EventKind::ReasoningSummaryTextDelta,
            b"response.reasoning_summary_text.done" => EventKind::ReasoningSummaryTextDone,
            b"response.reasoning_text.delta" => EventKind::ReasoningTextDelta,
            b"response.reasoning_text.done" => EventKind::ReasoningTextDone,
            b"response.function_call_arguments.delta" => EventKind::FunctionCallArgumentsDelta,
            b"response.function_call_arguments.done" => EventKind::FunctionCallArgumentsDone,
            _ => EventKind::Other,
        }
    }

    /// The kind of a parsed event (its `type` field).
    pub fn of_event(event: &serde_json::Value) -> EventKind {
        EventKind::of(event["type"].as_str().unwrap_or_default())
    }

    /// The response is over: finished (completed, incomplete) or failed.
    pub fn ends_response(self) -> bool {
        matches!(
            self,
            EventKind::Completed | EventKind::Incomplete | EventKind::Failed
        )
    }

    /// The stream is over: the response ended, or a stream-level error came.
    pub fn ends_stream(self) -> bool {
        self.ends_response() || self == EventKind::Error
    }

    /// The response finished with an answer (possibly cut short), not a failure.
    pub fn finishes(self) -> bool {
        matches!(self, EventKind::Completed | EventKind::Incomplete)
    }
}

/// A `response.output_text.delta` event, read into the few fields the chat translation uses.
/// Nearly every event of an answer is one, and reading it this way skips building a `Value`
/// (with `preserve_order`, an `IndexMap` hashing every key) per event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextDelta {
    pub item_id: Option<String>,
    pub output_index: Option<u64>,
    pub content_index: Option<u64>,
    pub delta: String,
}

/// The wire shape [`TextDelta::parse`] accepts. The fields through which any payload may
/// report a failure are only checked for presence: a delta carrying one takes the general
/// path, where the failure is judged.
#[derive(serde::Deserialize)]
struct TextDeltaWire<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(borrow, default)]
    item_id: Option<Cow<'a, str>>,
    #[serde(default)]
    output_index: Option<u64>,
    #[serde(default)]
    content_index: Option<u64>,
    #[serde(borrow)]
    delta: Cow<'a, str>,
    #[serde(default)]
    error: Option<IgnoredAny>,
    #[serde(default)]
    status: Option<IgnoredAny>,
    #[serde(default)]
    response: Option<IgnoredAny>,
    #[serde(default)]
    item: Option<IgnoredAny>,
}

/// An output item's key as the chat translation tracks items: its id, else `#` and its
/// output index (events of one item may carry either).
pub fn item_key(item_id: Option<&str>, output_index: Option<u64>) -> String {
    match item_id {
        Some(id) => id.to_owned(),
        None => format!("#{}", output_index.unwrap_or(0)),
    }
}

impl TextDelta {
    /// The event's `type`.
    pub const KIND: &'static str = "response.output_text.delta";

    /// The delta in `data` (an event's JSON), or `None` when `data` is anything else, or a
    /// delta of another shape (a field of another type, a duplicate key, a possible failure):
    /// those are parsed whole, as every other event is.
    pub fn parse(data: &str) -> Option<TextDelta> {
        let wire: TextDeltaWire = serde_json::from_str(data).ok()?;
        let plain = wire.error.is_none()
            && wire.status.is_none()
            && wire.response.is_none()
            && wire.item.is_none();
        (plain && EventKind::of(&wire.kind) == EventKind::OutputTextDelta).then(|| TextDelta {
            item_id: wire.item_id.map(Cow::into_owned),
            output_index: wire.output_index,
            content_index: wire.content_index,
            delta: wire.delta.into_owned(),
        })
    }

    /// The item it belongs to ([`item_key`]).
    pub fn item_key(&self) -> String {
        item_key(self.item_id.as_deref(), self.output_index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_types_are_other() {
        assert_eq!(
            EventKind::of("response.output_text.delta"),
            EventKind::OutputTextDelta
        );
        assert_eq!(EventKind::of("response.mock_unknown"), EventKind::Other);
        assert!(EventKind::of("error").ends_stream() && !EventKind::Error.ends_response());
        assert!(EventKind::Incomplete.finishes() && !EventKind::Failed.finishes());
    }

    #[test]
    fn plain_text_deltas_are_read_typed_and_everything_else_is_left_whole() {
        let d = TextDelta::parse(
            r#"{"type":"response.output_text.delta","sequence_number":4,"item_id":"msg_1","output_index":0,"content_index":0,"delta":"Hi \"there\"","logprobs":[]}"#,
        )
        .unwrap();
        assert_eq!(d.item_key(), "msg_1");
        assert_eq!(d.delta, "Hi \"there\"");
        assert_eq!(d.content_index, Some(0));
        let no_id = TextDelta::parse(
            r#"{"type":"response.output_text.delta","output_index":2,"delta":"x"}"#,
        )
        .unwrap();
        assert_eq!(no_id.item_key(), "#2");
        assert_eq!(no_id.output_index, Some(2));
        for other in [
            r#"{"type":"response.output_text.done","item_id":"m","delta":"x"}"#,
            r#"{"type":"response.output_text.delta","item_id":"m"}"#,
            r#"{"type":"response.output_text.delta","delta":7}"#,
            r#"{"type":"response.output_text.delta","delta":"x","content_index":1.5}"#,
            r#"{"type":"response.output_text.delta","delta":"x","delta":"y"}"#,
            r#"{"type":"response.output_text.delta","delta":"x","error":{"code":"boom"}}"#,
            r#"{"type":"response.output_text.delta","delta":"x","status":"failed"}"#,
            r#"{"type":"response.output_text.delta","delta":"x","response":{}}"#,
            r#"{"type":"response.output_text.delta","delta":"x","item":{"id":"i"}}"#,
            r#"{"type":"response.output_text.delta","delta":"x""#,
        ] {
            assert_eq!(TextDelta::parse(other), None, "{other}");
        }
    }
}
