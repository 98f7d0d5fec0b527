//! Rebuilding a conversation's full input from stored turns (pure functions).
//!
//! Replayed: every turn's input items and its output `message` and `function_call` items, in
//! order, then the new request's input — so function calls stay next to their outputs.
//! Not replayed (limits, documented in the README): `reasoning` items (region-bound, often
//! encrypted), built-in tool calls such as `web_search_call` (their results are already in
//! the assistant's text), `item_reference` inputs, and earlier turns' `instructions` (the
//! Responses API does not carry those over `previous_response_id` either). Server-side ids
//! (`id`, `status`) are stripped: they mean nothing to another region.

use crate::store::History;
use serde_json::{Map, Value, json};

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("the gateway has no complete record of conversation '{0}' to replay")]
    Incomplete(String),
    #[error("the conversation store failed: {0}")]
    Store(String),
    /// Replaying only the newest turns would lose the conversation's beginning (and could
    /// leave a `function_call_output` without its call), so it is refused instead.
    #[error(
        "conversation '{previous}' has more than store.max_replay_turns ({max}) turns; replaying only part of it would lose its beginning"
    )]
    TooLong { previous: String, max: usize },
}

/// A request's `input` as a list of items (a string is one user message).
pub fn request_input(input: Option<&Value>) -> Vec<Value> {
    match input {
        Some(Value::String(text)) => {
            vec![json!({"type": "message", "role": "user", "content": text})]
        }
        Some(Value::Array(items)) => items.clone(),
        Some(other @ Value::Object(_)) => vec![other.clone()],
        _ => Vec::new(),
    }
}

/// The full input replacing `previous_response_id` + `input`.
pub fn replay_input(
    history: &History,
    previous: &str,
    input: &Value,
) -> Result<Vec<Value>, ReplayError> {
    let reaches_previous = history
        .turns
        .last()
        .is_some_and(|t| t.response_id == previous);
    if !history.complete || !reaches_previous {
        return Err(ReplayError::Incomplete(previous.to_owned()));
    }
    if history.truncated {
        return Err(ReplayError::TooLong {
            previous: previous.to_owned(),
            max: history.turns.len(),
        });
    }
    let mut items = Vec::new();
    for turn in &history.turns {
        items.extend(turn.input.iter().filter_map(replayable_input));
        items.extend(turn.output.iter().filter_map(replayable_output));
    }
    items.extend(
        request_input(Some(input))
            .iter()
            .filter_map(replayable_input),
    );
    Ok(items)
}

fn kind(item: &Value) -> &str {
    match item.get("type").and_then(Value::as_str) {
        Some(t) => t,
        // Role-only items (`{"role":"user","content":...}`) are messages.
        None if item.get("role").is_some() => "message",
        None => "",
    }
}

fn replayable_input(item: &Value) -> Option<Value> {
    match kind(item) {
        "item_reference" | "reasoning" => None,
        _ => Some(strip_server_fields(item)),
    }
}

fn replayable_output(item: &Value) -> Option<Value> {
    match kind(item) {
        "message" | "function_call" => Some(strip_server_fields(item)),
        _ => None,
    }
}

fn strip_server_fields(item: &Value) -> Value {
    match item {
        Value::Object(map) => {
            let kept: Map<String, Value> = map
                .iter()
                .filter(|(k, _)| !matches!(k.as_str(), "id" | "status"))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            Value::Object(kept)
        }
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Turn;

    fn turn(id: &str, prev: Option<&str>, input: Value, output: Value) -> Turn {
        Turn {
            response_id: id.into(),
            previous_response_id: prev.map(Into::into),
            region: "r0".into(),
            input: request_input(Some(&input)),
            output: output.as_array().cloned().unwrap_or_default(),
            created_at: 0,
            owner: None,
        }
    }

    #[test]
    fn rebuilds_messages_and_function_calls_in_order() {
        let history = History {
            complete: true,
            truncated: false,
            turns: vec![
                turn(
                    "resp_1",
                    None,
                    json!("weather in Paris?"),
                    json!([
                        {"type": "reasoning", "id": "rs_1", "summary": []},
                        {"type": "function_call", "id": "fc_1", "status": "completed", "call_id": "call_1", "name": "weather", "arguments": "{}"}
                    ]),
                ),
                turn(
                    "resp_2",
                    Some("resp_1"),
                    json!([{"type": "function_call_output", "call_id": "call_1", "output": "sunny"}]),
                    json!([{"type": "message", "id": "msg_2", "status": "completed", "role": "assistant", "content": [{"type": "output_text", "text": "Sunny."}]}]),
                ),
            ],
        };
        let items = replay_input(&history, "resp_2", &json!("and tomorrow?")).unwrap();
        let kinds: Vec<&str> = items.iter().map(kind).collect();
        assert_eq!(
            kinds,
            [
                "message",
                "function_call",
                "function_call_output",
                "message",
                "message"
            ]
        );
        assert_eq!(items[1]["call_id"], "call_1");
        assert!(items[1].get("id").is_none() && items[3].get("status").is_none());
        assert_eq!(items[4]["content"], "and tomorrow?");
    }

    #[test]
    fn an_incomplete_chain_is_refused() {
        let mut history = History {
            complete: false,
            truncated: false,
            turns: vec![turn("resp_2", Some("resp_1"), json!("hi"), json!([]))],
        };
        assert!(matches!(
            replay_input(&history, "resp_2", &json!("x")),
            Err(ReplayError::Incomplete(_))
        ));
        history.complete = true;
        history.truncated = true;
        assert!(matches!(
            replay_input(&history, "resp_2", &json!("x")),
            Err(ReplayError::TooLong { max: 1, .. })
        ));
        history.truncated = false;
        assert!(replay_input(&history, "resp_2", &json!("x")).is_ok());
        assert!(replay_input(&history, "resp_9", &json!("x")).is_err());
        assert!(replay_input(&History::default(), "resp_9", &json!("x")).is_err());
    }
}
