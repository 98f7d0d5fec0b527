//! Section B: a response object → chat.completion.

use super::fixtures::{MODEL, RESP_ID, call_item, message_item, reasoning_item, response, usage};
use crate::translate::{ChatContext, response_to_chat};
use serde_json::{Value, json};

fn ctx() -> ChatContext {
    ChatContext {
        model: "requested-model".into(),
        legacy_functions: false,
    }
}

fn chat(output: Vec<Value>) -> Value {
    response_to_chat(&response("completed", MODEL, output, usage()), &ctx()).unwrap()
}

#[test]
fn reference_page_example() {
    let resp = json!({
        "id": "b8104cd2-ee57-903d-aae0-93d99254axxx",
        "created_at": 1769084048.0,
        "model": "qwen3-max-2026-01-23",
        "object": "response",
        "status": "completed",
        "output": [message_item("msg_1", "こんにちは!私は Qwen です。")],
        "usage": {
            "input_tokens": 39, "output_tokens": 46, "total_tokens": 85,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens_details": {"reasoning_tokens": 0},
        },
    });
    let out = response_to_chat(&resp, &ctx()).unwrap();
    assert_eq!(
        out,
        json!({
            "id": "chatcmpl-b8104cd2-ee57-903d-aae0-93d99254axxx",
            "object": "chat.completion",
            "created": 1769084048,
            "model": "qwen3-max-2026-01-23",
            "choices": [{
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": "こんにちは!私は Qwen です。",
                    "refusal": null,
                    "annotations": [],
                },
                "logprobs": null,
                "finish_reason": "stop",
            }],
            "usage": {
                "prompt_tokens": 39, "completion_tokens": 46, "total_tokens": 85,
                "prompt_tokens_details": {"cached_tokens": 0},
                "completion_tokens_details": {"reasoning_tokens": 0},
            },
        })
    );
}

#[test]
fn empty_model_falls_back_to_the_request_model() {
    let out = response_to_chat(&response("completed", "", vec![], usage()), &ctx()).unwrap();
    assert_eq!(out["model"], "requested-model");
    assert_eq!(out["id"], format!("chatcmpl-{RESP_ID}"));
    assert_eq!(out["choices"][0]["message"]["content"], "");
}

#[test]
fn message_items_are_joined_with_blank_lines() {
    let out = chat(vec![message_item("m1", "One."), message_item("m2", "Two.")]);
    assert_eq!(out["choices"][0]["message"]["content"], "One.\n\nTwo.");
}

#[test]
fn function_calls_become_tool_calls_with_null_content() {
    let out = chat(vec![
        call_item("fc_1", "call_1", "weather", r#"{"city":"Tokyo"}"#),
        call_item("fc_2", "call_2", "time", ""),
    ]);
    let choice = &out["choices"][0];
    assert_eq!(choice["finish_reason"], "tool_calls");
    assert!(choice["message"]["content"].is_null());
    assert_eq!(
        choice["message"]["tool_calls"],
        json!([
            {"id": "call_1", "type": "function", "function": {"name": "weather", "arguments": "{\"city\":\"Tokyo\"}"}},
            {"id": "call_2", "type": "function", "function": {"name": "time", "arguments": "{}"}},
        ])
    );
}

#[test]
fn text_is_kept_alongside_tool_calls() {
    let out = chat(vec![
        message_item("m1", "Let me check."),
        call_item("fc_1", "call_1", "weather", "{}"),
    ]);
    let message = &out["choices"][0]["message"];
    assert_eq!(message["content"], "Let me check.");
    assert_eq!(message["tool_calls"][0]["id"], "call_1");
    assert_eq!(out["choices"][0]["finish_reason"], "tool_calls");
}

#[test]
fn reasoning_items_become_reasoning_content() {
    let out = chat(vec![
        reasoning_item("r1", "First thought."),
        json!({"type": "web_search_call", "status": "completed", "action": {"query": "q"}}),
        reasoning_item("r2", "Second thought."),
        message_item("m1", "Answer."),
    ]);
    let message = &out["choices"][0]["message"];
    assert_eq!(
        message["reasoning_content"],
        "First thought.\n\nSecond thought."
    );
    assert_eq!(message["content"], "Answer.");
    let plain = chat(vec![message_item("m1", "Answer.")]);
    assert!(
        plain["choices"][0]["message"]
            .get("reasoning_content")
            .is_none()
    );
}

#[test]
fn built_in_tool_items_are_not_tool_calls_and_x_tools_is_kept() {
    let mut resp = response(
        "completed",
        MODEL,
        vec![
            json!({"type": "web_search_call", "status": "completed", "action": {"query": "q"}}),
            json!({"type": "web_extractor_call", "status": "completed", "goal": "g", "output": "o"}),
            json!({"type": "code_interpreter_call", "status": "completed"}),
            message_item("m1", "Done."),
        ],
        usage(),
    );
    resp["usage"]["x_tools"] = json!({"web_search": {"count": 1}});
    let out = response_to_chat(&resp, &ctx()).unwrap();
    assert!(out["choices"][0]["message"].get("tool_calls").is_none());
    assert_eq!(out["choices"][0]["finish_reason"], "stop");
    assert_eq!(out["usage"]["x_tools"], json!({"web_search": {"count": 1}}));
}

#[test]
fn url_citations_are_shifted_into_the_joined_content() {
    let mut cited = message_item("m2", "See ref.");
    cited["content"][0]["annotations"] = json!([{
        "type": "url_citation", "start_index": 4, "end_index": 7,
        "url": "https://example.com", "title": "Example",
    }]);
    let out = chat(vec![message_item("m1", "日本."), cited]);
    let message = &out["choices"][0]["message"];
    // "日本." is 3 characters, plus the blank-line separator.
    assert_eq!(
        message["annotations"],
        json!([{"type": "url_citation", "url_citation": {
            "start_index": 9, "end_index": 12, "url": "https://example.com", "title": "Example",
        }}])
    );
}

#[test]
fn incomplete_maps_to_length_or_content_filter_with_usage() {
    for (reason, finish) in [
        (json!({"reason": "max_output_tokens"}), "length"),
        (Value::Null, "length"),
        (json!({"reason": "content_filter"}), "content_filter"),
    ] {
        let mut resp = response(
            "incomplete",
            MODEL,
            vec![message_item("m1", "Part")],
            usage(),
        );
        resp["incomplete_details"] = reason;
        let out = response_to_chat(&resp, &ctx()).unwrap();
        assert_eq!(out["choices"][0]["finish_reason"], finish);
        assert_eq!(out["usage"]["total_tokens"], 203);
    }
}

#[test]
fn failed_response_is_an_error_not_a_completion() {
    let mut resp = response("failed", MODEL, vec![], Value::Null);
    resp["error"] =
        json!({"code": "Throttling.RateQuota", "message": "Requests rate limit exceeded"});
    let err = response_to_chat(&resp, &ctx()).unwrap_err();
    assert_eq!(err.status.as_u16(), 429);
    assert_eq!(err.kind, "rate_limit_error");

    resp["error"] = json!({"code": "data_inspection_failed", "message": "Input data may contain inappropriate content."});
    let err = response_to_chat(&resp, &ctx()).unwrap_err();
    assert_eq!(err.status.as_u16(), 400);
    assert_eq!(err.code.as_deref(), Some("content_filter"));
}

#[test]
fn unfinished_status_is_a_server_error() {
    let err =
        response_to_chat(&response("in_progress", MODEL, vec![], Value::Null), &ctx()).unwrap_err();
    assert_eq!(err.status.as_u16(), 502);
    assert_eq!(err.kind, "server_error");
}

#[test]
fn legacy_functions_answer_with_function_call() {
    let legacy = ChatContext {
        model: "m".into(),
        legacy_functions: true,
    };
    let resp = response(
        "completed",
        MODEL,
        vec![call_item("fc_1", "call_1", "get_time", r#"{"tz":"UTC"}"#)],
        usage(),
    );
    let out = response_to_chat(&resp, &legacy).unwrap();
    let message = &out["choices"][0]["message"];
    assert_eq!(
        message["function_call"],
        json!({"name": "get_time", "arguments": "{\"tz\":\"UTC\"}"})
    );
    assert!(message.get("tool_calls").is_none());
    assert!(message["content"].is_null());
    assert_eq!(out["choices"][0]["finish_reason"], "function_call");
}

#[test]
fn refusal_part_becomes_message_refusal() {
    let item = json!({
        "id": "m1", "type": "message", "role": "assistant",
        "content": [{"type": "refusal", "refusal": "I can't help with that."}],
    });
    let out = chat(vec![item]);
    let message = &out["choices"][0]["message"];
    assert_eq!(message["refusal"], "I can't help with that.");
    assert!(message["content"].is_null());
}

#[test]
fn usage_without_details_invents_nothing() {
    let resp = response(
        "completed",
        MODEL,
        vec![message_item("m1", "x")],
        json!({"input_tokens": 3, "output_tokens": 4}),
    );
    let out = response_to_chat(&resp, &ctx()).unwrap();
    assert_eq!(
        out["usage"],
        json!({"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7})
    );
    let no_usage =
        response_to_chat(&response("completed", MODEL, vec![], Value::Null), &ctx()).unwrap();
    assert!(no_usage.get("usage").is_none());
}
