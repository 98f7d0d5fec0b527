//! Non-streaming clients served from the upstream stream (`CompletionBuilder`).

use super::fixtures::{Events, MODEL, RESP_ID, call_item, message_item};
use crate::error::ApiError;
use crate::translate::{ChatContext, CompletionBuilder};
use serde_json::{Value, json};

fn ctx() -> ChatContext {
    ChatContext {
        model: "requested-model".into(),
        legacy_functions: false,
    }
}

/// Feeds events like the handler does; returns how many were read before `push` said stop.
fn build(stop: &[&str], events: &[Value]) -> (usize, Result<Value, ApiError>) {
    let mut b = CompletionBuilder::new(ctx(), stop.iter().map(|s| s.to_string()).collect());
    let mut read = 0;
    for event in events {
        read += 1;
        if b.push(event) {
            break;
        }
    }
    (read, b.finish())
}

#[test]
fn assembles_from_the_completed_event() {
    let events = Events::new()
        .message("msg_1", &["Hello", " world"])
        .completed();
    let (read, out) = build(&[], &events);
    let out = out.unwrap();
    assert_eq!(read, events.len());
    assert_eq!(out["id"], format!("chatcmpl-{RESP_ID}"));
    assert_eq!(out["created"], 1769417481);
    // `response.created` said model "", `response.completed` names it.
    assert_eq!(out["model"], MODEL);
    assert_eq!(out["choices"][0]["message"]["content"], "Hello world");
    assert_eq!(out["choices"][0]["finish_reason"], "stop");
    assert_eq!(out["usage"]["prompt_tokens"], 37);
}

#[test]
fn usage_is_the_upstream_object_once_known() {
    let mut b = CompletionBuilder::new(ctx(), vec![]);
    let events = Events::new().message("msg_1", &["x"]).completed();
    for event in &events[..events.len() - 1] {
        assert!(!b.push(event));
        assert_eq!(b.usage(), None);
    }
    assert!(b.push(events.last().unwrap()));
    assert_eq!(b.usage().unwrap()["input_tokens"], 37);
}

#[test]
fn empty_terminal_output_uses_the_collected_items() {
    let mut ev = Events::new();
    ev.message("msg_1", &["Calling."]);
    ev.call("fc_1", "call_1", "weather", &[r#"{"city":"#, r#""Tokyo"}"#]);
    // A second call whose `.done` never came: rebuilt from its deltas.
    ev.added(call_item("fc_2", "call_2", "time", ""));
    ev.args_delta("fc_2", r#"{"tz":"UTC"}"#);
    let (_, out) = build(&[], &ev.completed_empty_output());
    let out = out.unwrap();
    let message = &out["choices"][0]["message"];
    assert_eq!(message["content"], "Calling.");
    assert_eq!(
        message["tool_calls"][0]["function"]["arguments"],
        r#"{"city":"Tokyo"}"#
    );
    assert_eq!(message["tool_calls"][1]["id"], "call_2");
    assert_eq!(
        message["tool_calls"][1]["function"]["arguments"],
        r#"{"tz":"UTC"}"#
    );
    assert_eq!(out["choices"][0]["finish_reason"], "tool_calls");
}

#[test]
fn empty_terminal_output_uses_text_from_deltas_without_done() {
    let mut ev = Events::new();
    ev.added(message_item("msg_1", "unused"));
    ev.text_delta("msg_1", "only ")
        .text_delta("msg_1", "deltas");
    let (_, out) = build(&[], &ev.completed_empty_output());
    assert_eq!(
        out.unwrap()["choices"][0]["message"]["content"],
        "only deltas"
    );
}

#[test]
fn stop_string_split_across_deltas_stops_reading_and_omits_usage() {
    let events = Events::new()
        .message("msg_1", &["Hello S", "T", "OP and more"])
        .completed();
    let (read, out) = build(&["STOP"], &events);
    let out = out.unwrap();
    assert!(read < events.len(), "upstream must be cancelled early");
    assert_eq!(out["choices"][0]["message"]["content"], "Hello ");
    assert_eq!(out["choices"][0]["finish_reason"], "stop");
    assert!(out.get("usage").is_none());
    assert_eq!(out["id"], format!("chatcmpl-{RESP_ID}"));
    assert_eq!(out["model"], "requested-model");
}

#[test]
fn stop_string_inside_one_delta_after_text() {
    let events = Events::new()
        .message("msg_1", &["abc", "def END ghi"])
        .completed();
    let (_, out) = build(&["END"], &events);
    assert_eq!(out.unwrap()["choices"][0]["message"]["content"], "abcdef ");
}

#[test]
fn stop_string_in_text_that_only_arrived_whole_is_cut_too() {
    let mut ev = Events::new();
    ev.added(message_item("msg_1", "keep STOP drop"));
    ev.item_done("msg_1");
    let (_, out) = build(&["STOP"], &ev.completed());
    let out = out.unwrap();
    assert_eq!(out["choices"][0]["message"]["content"], "keep ");
    assert_eq!(out["choices"][0]["finish_reason"], "stop");
}

#[test]
fn stop_string_that_never_appears_changes_nothing() {
    let events = Events::new().message("msg_1", &["almost ST"]).completed();
    let (_, out) = build(&["STOP"], &events);
    let out = out.unwrap();
    assert_eq!(out["choices"][0]["message"]["content"], "almost ST");
    assert_eq!(out["usage"]["total_tokens"], 203);
}

#[test]
fn incomplete_gives_length_with_usage() {
    let events = Events::new()
        .message("msg_1", &["Part"])
        .incomplete("max_output_tokens");
    let out = build(&[], &events).1.unwrap();
    assert_eq!(out["choices"][0]["finish_reason"], "length");
    assert_eq!(out["usage"]["completion_tokens"], 166);
}

#[test]
fn failed_event_is_an_error() {
    let events = Events::new().failed("Throttling.RateQuota", "Requests rate limit exceeded");
    let err = build(&[], &events).1.unwrap_err();
    assert_eq!(err.status.as_u16(), 429);
    assert_eq!(err.kind, "rate_limit_error");
}

#[test]
fn error_event_is_an_error() {
    let mut ev = Events::new();
    ev.push(json!({"type": "error", "code": "InternalError", "message": "boom"}));
    let err = build(&[], &ev.truncated()).1.unwrap_err();
    assert_eq!(err.status.as_u16(), 502);
    assert_eq!(err.kind, "server_error");
}

#[test]
fn truncated_stream_is_a_502() {
    let events = Events::new().message("msg_1", &["cut"]).truncated();
    let err = build(&[], &events).1.unwrap_err();
    assert_eq!(err.status.as_u16(), 502);
    assert_eq!(err.code.as_deref(), Some("upstream_stream_truncated"));
}

#[test]
fn legacy_functions() {
    let mut b = CompletionBuilder::new(
        ChatContext {
            model: "m".into(),
            legacy_functions: true,
        },
        vec![],
    );
    for event in Events::new()
        .call("fc_1", "call_1", "get_time", &["{}"])
        .completed()
    {
        b.push(&event);
    }
    let out = b.finish().unwrap();
    assert_eq!(
        out["choices"][0]["message"]["function_call"]["name"],
        "get_time"
    );
    assert_eq!(out["choices"][0]["finish_reason"], "function_call");
}

/// As [`build`], with plain text deltas going through `push_text_delta`, as the handler
/// feeds them; also returns how many took that path.
fn build_typed(stop: &[&str], events: &[Value]) -> (usize, Result<Value, ApiError>, usize) {
    let mut b = CompletionBuilder::new(ctx(), stop.iter().map(|s| s.to_string()).collect());
    let (mut read, mut typed) = (0, 0);
    for event in events {
        read += 1;
        let over = match crate::model_studio::events::TextDelta::parse(&event.to_string()) {
            Some(delta) => {
                typed += 1;
                b.push_text_delta(&delta)
            }
            None => b.push(event),
        };
        if over {
            break;
        }
    }
    (read, b.finish(), typed)
}

#[test]
fn typed_text_deltas_build_exactly_what_whole_events_build() {
    let streams = [
        Events::new()
            .message("msg_1", &["Hel", "lo"])
            .message("msg_2", &["STOP", "x"])
            .completed(),
        Events::new()
            .message("msg_1", &["Hel", "lo"])
            .message("msg_2", &["a", "b"])
            .completed_empty_output(),
        Events::new()
            .message("msg_1", &["cut ", "short"])
            .truncated(),
    ];
    for events in &streams {
        for stop in [&[][..], &["STOP"][..]] {
            let (read, out, typed) = build_typed(stop, events);
            assert!(typed >= 2, "the deltas took the typed path");
            let (whole_read, whole) = build(stop, events);
            assert_eq!(read, whole_read);
            assert_eq!(format!("{out:?}"), format!("{whole:?}"));
        }
    }
}
