//! Section A2: messages → input items.

use crate::translate::{ChatLimits, TranslateError, chat_to_responses};
use serde_json::{Value, json};

fn input(messages: Value) -> Vec<Value> {
    let body = json!({"model": "m", "messages": messages});
    let plan = chat_to_responses(&body, &ChatLimits::default()).unwrap();
    plan.body["input"].as_array().unwrap().clone()
}

fn error(messages: Value) -> TranslateError {
    chat_to_responses(
        &json!({"model": "m", "messages": messages}),
        &ChatLimits::default(),
    )
    .unwrap_err()
}

fn call(id: &str, name: &str) -> Value {
    json!({"id": id, "type": "function", "function": {"name": name, "arguments": "{}"}})
}

#[test]
fn system_and_developer_stay_in_place_with_array_content_joined() {
    let items = input(json!([
        {"role": "user", "content": "first"},
        {"role": "system", "content": [{"type": "text", "text": "Be brief."}, {"type": "text", "text": "Be kind."}]},
        {"role": "developer", "content": "Use JSON."},
    ]));
    assert_eq!(
        items,
        vec![
            json!({"type": "message", "role": "user", "content": "first"}),
            json!({"type": "message", "role": "system", "content": "Be brief.\nBe kind."}),
            json!({"type": "message", "role": "developer", "content": "Use JSON."}),
        ]
    );
}

#[test]
fn user_parts_become_input_parts() {
    let items = input(json!([{"role": "user", "content": [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": "https://x/cat.png"}},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA", "detail": "high"}},
        {"type": "file", "file": {"file_data": "data:application/pdf;base64,AAAA", "filename": "a.pdf"}},
    ]}]));
    assert_eq!(
        items[0]["content"],
        json!([
            {"type": "input_text", "text": "What is this?"},
            {"type": "input_image", "image_url": "https://x/cat.png", "detail": "auto"},
            {"type": "input_image", "image_url": "data:image/png;base64,AAAA", "detail": "high"},
            {"type": "input_file", "file_data": "data:application/pdf;base64,AAAA", "filename": "a.pdf"},
        ])
    );
}

#[test]
fn input_audio_is_refused() {
    let e = error(json!([{"role": "user", "content": [
        {"type": "text", "text": "listen"},
        {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}},
    ]}]));
    assert_eq!(e.param(), Some("messages[0].content[1]"));
}

#[test]
fn assistant_text_is_kept_before_its_tool_calls() {
    let items = input(json!([
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "content": "Let me check.", "tool_calls": [call("call_1", "weather")]},
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
    ]));
    assert_eq!(
        items[1..],
        [
            json!({"type": "message", "role": "assistant", "content": "Let me check."}),
            json!({"type": "function_call", "call_id": "call_1", "name": "weather", "arguments": "{}"}),
            json!({"type": "function_call_output", "call_id": "call_1", "output": "sunny"}),
        ]
    );
}

#[test]
fn tool_outputs_are_moved_right_after_their_own_call() {
    let items = input(json!([
        {"role": "user", "content": "two things"},
        {"role": "assistant", "content": null, "tool_calls": [call("call_a", "a"), call("call_b", "b")]},
        {"role": "tool", "tool_call_id": "call_b", "content": "B"},
        {"role": "tool", "tool_call_id": "call_a", "content": [{"type": "text", "text": "A"}]},
        {"role": "user", "content": "thanks"},
    ]));
    let kinds: Vec<(&str, &str)> = items
        .iter()
        .map(|i| {
            (
                i["type"].as_str().unwrap(),
                i["call_id"].as_str().or(i["role"].as_str()).unwrap(),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            ("message", "user"),
            ("function_call", "call_a"),
            ("function_call_output", "call_a"),
            ("function_call", "call_b"),
            ("function_call_output", "call_b"),
            ("message", "user"),
        ]
    );
    assert_eq!(items[2]["output"], "A");
}

#[test]
fn orphan_tool_message_is_refused_naming_it() {
    let e = error(json!([
        {"role": "user", "content": "hi"},
        {"role": "tool", "tool_call_id": "call_x", "content": "?"},
    ]));
    assert_eq!(e.param(), Some("messages[1]"));
    // A call made later does not count.
    let e = error(json!([
        {"role": "user", "content": "hi"},
        {"role": "tool", "tool_call_id": "call_1", "content": "?"},
        {"role": "assistant", "tool_calls": [call("call_1", "f")]},
        {"role": "tool", "tool_call_id": "call_1", "content": "ok"},
    ]));
    assert_eq!(e.param(), Some("messages[1]"));
}

#[test]
fn call_without_output_and_duplicate_output_are_refused() {
    let e = error(json!([
        {"role": "user", "content": "hi"},
        {"role": "assistant", "tool_calls": [call("call_1", "f"), call("call_2", "g")]},
        {"role": "tool", "tool_call_id": "call_1", "content": "ok"},
    ]));
    assert_eq!(e.param(), Some("messages[1]"));
    assert!(e.to_string().contains("call_2"));
    let e = error(json!([
        {"role": "assistant", "tool_calls": [call("call_1", "f")]},
        {"role": "tool", "tool_call_id": "call_1", "content": "ok"},
        {"role": "tool", "tool_call_id": "call_1", "content": "again"},
    ]));
    assert_eq!(e.param(), Some("messages[2]"));
}

#[test]
fn reasoning_refusal_and_name_are_dropped() {
    let items = input(json!([
        {"role": "user", "content": "hi", "name": "alice"},
        {"role": "assistant", "content": [{"type": "text", "text": "Hello"}, {"type": "refusal", "refusal": "no"}],
         "reasoning_content": "thinking...", "refusal": "no", "name": "bot"},
    ]));
    assert_eq!(
        items,
        vec![
            json!({"type": "message", "role": "user", "content": "hi"}),
            json!({"type": "message", "role": "assistant", "content": "Hello"}),
        ]
    );
}

#[test]
fn object_arguments_are_serialised() {
    let items = input(json!([
        {"role": "assistant", "tool_calls": [{"id": "c", "type": "function",
            "function": {"name": "f", "arguments": {"x": 1}}}]},
        {"role": "tool", "tool_call_id": "c", "content": "ok"},
    ]));
    assert_eq!(items[0]["arguments"], "{\"x\":1}");
}

#[test]
fn legacy_function_history_is_paired_by_name() {
    let items = input(json!([
        {"role": "user", "content": "time?"},
        {"role": "assistant", "content": null, "function_call": {"name": "get_time", "arguments": "{}"}},
        {"role": "function", "name": "get_time", "content": "12:00"},
    ]));
    assert_eq!(items[1]["type"], "function_call");
    assert_eq!(items[1]["name"], "get_time");
    assert_eq!(items[2]["type"], "function_call_output");
    assert_eq!(items[2]["call_id"], items[1]["call_id"]);
    assert_eq!(items[2]["output"], "12:00");
    let e = error(json!([{"role": "function", "name": "get_time", "content": "12:00"}]));
    assert_eq!(e.param(), Some("messages[0]"));
}

#[test]
fn invalid_roles_and_shapes_name_the_message() {
    assert_eq!(
        error(json!([{"content": "x"}])).param(),
        Some("messages[0].role")
    );
    assert_eq!(
        error(json!([{"role": "robot", "content": "x"}])).param(),
        Some("messages[0].role")
    );
    assert_eq!(
        error(json!([{"role": 1, "content": "x"}])).param(),
        Some("messages[0].role")
    );
    assert_eq!(error(json!(["hi"])).param(), Some("messages[0]"));
    assert_eq!(
        error(json!([{"role": "user"}])).param(),
        Some("messages[0].content")
    );
    assert_eq!(
        error(json!([{"role": "assistant"}])).param(),
        Some("messages[0].content")
    );
    assert_eq!(
        error(json!([{"role": "system", "content": [{"type": "image_url"}]}])).param(),
        Some("messages[0].content[0].type")
    );
}
