//! The kinds of event in a Model Studio Responses stream, named once: the relay, the router's
//! first-event check and the chat translation all decide by them.

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
        match name {
            "response.queued" => EventKind::Queued,
            "response.created" => EventKind::Created,
            "response.in_progress" => EventKind::InProgress,
            "response.completed" => EventKind::Completed,
            "response.incomplete" => EventKind::Incomplete,
            "response.failed" => EventKind::Failed,
            "error" => EventKind::Error,
            "response.output_item.added" => EventKind::OutputItemAdded,
            "response.output_item.done" => EventKind::OutputItemDone,
            "response.output_text.delta" => EventKind::OutputTextDelta,
            "response.output_text.done" => EventKind::OutputTextDone,
            "response.refusal.delta" => EventKind::RefusalDelta,
            "response.refusal.done" => EventKind::RefusalDone,
            "response.reasoning_summary_text.delta" => EventKind::ReasoningSummaryTextDelta,
            "response.reasoning_summary_text.done" => EventKind::ReasoningSummaryTextDone,
            "response.reasoning_text.delta" => EventKind::ReasoningTextDelta,
            "response.reasoning_text.done" => EventKind::ReasoningTextDone,
            "response.function_call_arguments.delta" => EventKind::FunctionCallArgumentsDelta,
            "response.function_call_arguments.done" => EventKind::FunctionCallArgumentsDone,
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
}
