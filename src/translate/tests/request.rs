//! Section A: request parameters.

use crate::error::ApiError;
use crate::translate::{ChatLimits, ChatPlan, TranslateError, chat_to_responses};
use serde_json::{Value, json};

/// A minimal valid request with `extra` merged in (a `null` removes a field).
fn req(extra: Value) -> Value {
    let mut body = json!({"model": "qwen3-max", "messages": [{"role": "user", "content": "Hi"}]});
    for (k, v) in extra.as_object().unwrap() {
        if v.is_null() {
            body.as_object_mut().unwrap().remove(k);
        } else {
            body[k] = v.clone();
        }
    }
    body
}

fn plan(extra: Value) -> ChatPlan {
    chat_to_responses(&req(extra), &ChatLimits::default()).unwrap()
}

fn err(extra: Value) -> TranslateError {
    chat_to_responses(&req(extra), &ChatLimits::default()).unwrap_err()
}

fn weather_tool(name: &str) -> Value {
    json!({"type": "function", "function": {"name": name, "parameters": {"type": "object"}}})
}

#[test]
fn minimal_request_always_streams_upstream_and_never_stores() {
    let p = plan(json!({}));
    assert_eq!(
        p.body,
        json!({
            "model": "qwen3-max",
            "input": [{"type": "message", "role": "user", "content": "Hi"}],
            "stream": true,
            "store": false,
        })
    );
    assert!(!p.stream && !p.include_usage && !p.legacy_functions);
    assert_eq!((p.n, p.model.as_str()), (1, "qwen3-max"));
    assert!(p.stop.is_empty() && p.dropped.is_empty());
}

#[test]
fn stream_and_include_usage() {
    let p = plan(json!({"stream": true, "stream_options": {"include_usage": true}}));
    assert!(p.stream && p.include_usage);
    assert_eq!(p.body["stream"], true);
    let e = err(json!({"stream_options": {"include_usage": true}}));
    assert_eq!(e.param(), Some("stream_options"));
    let e = err(json!({"stream": false, "stream_options": {}}));
    assert_eq!(e.param(), Some("stream_options"));
}

#[test]
fn sampling_and_passthrough_fields() {
    let p = plan(json!({
        "temperature": 0.7, "top_p": 1, "user": "u-1", "metadata": {"team": "a"},
        "reasoning_effort": "low", "enable_thinking": true, "thinking_budget": 512,
        "verbosity": "low",
    }));
    let b = &p.body;
    assert_eq!(b["temperature"], 0.7);
    assert_eq!(b["top_p"], 1);
    assert_eq!(b["user"], "u-1");
    assert_eq!(b["metadata"], json!({"team": "a"}));
    assert_eq!(b["reasoning"], json!({"effort": "low"}));
    assert_eq!(b["enable_thinking"], true);
    assert_eq!(b["thinking_budget"], 512);
    assert_eq!(b["text"], json!({"verbosity": "low"}));
}

#[test]
fn temperature_two_is_refused_with_the_range_named() {
    for t in [json!(2), json!(2.5), json!(-0.1)] {
        let e = err(json!({"temperature": t}));
        assert_eq!(e.param(), Some("temperature"));
        assert!(e.to_string().contains("[0, 2)"), "{e}");
        assert!(e.to_string().contains("Model Studio"), "{e}");
    }
    assert_eq!(plan(json!({"temperature": 0})).body["temperature"], 0);
    assert_eq!(plan(json!({"temperature": 1.99})).body["temperature"], 1.99);
}

#[test]
fn top_p_must_be_in_zero_one() {
    for p in [json!(0), json!(1.5), json!(-1)] {
        let e = err(json!({"top_p": p}));
        assert_eq!(e.param(), Some("top_p"));
        assert!(e.to_string().contains("(0, 1]"), "{e}");
    }
}

#[test]
fn wrong_types_are_400_naming_the_param() {
    for (field, value) in [
        ("temperature", json!("hot")),
        ("max_tokens", json!(10.5)),
        ("max_completion_tokens", json!("10")),
        ("n", json!(1.5)),
        ("stream", json!("yes")),
        ("user", json!(1)),
        ("metadata", json!([])),
        ("tools", json!({})),
        ("enable_thinking", json!("true")),
    ] {
        let e = err(json!({ field: value }));
        assert_eq!(e.param(), Some(field), "{field}");
        let api = ApiError::from(e);
        assert_eq!(api.status.as_u16(), 400);
        assert_eq!(api.kind, "invalid_request_error");
        assert_eq!(api.code.as_deref(), Some("invalid_type"), "{field}");
    }
}

#[test]
fn max_tokens_raised_to_sixteen_and_max_completion_tokens_wins() {
    assert_eq!(plan(json!({"max_tokens": 5})).body["max_output_tokens"], 16);
    assert_eq!(
        plan(json!({"max_tokens": 100})).body["max_output_tokens"],
        100
    );
    let p = plan(json!({"max_tokens": 100, "max_completion_tokens": 200}));
    assert_eq!(p.body["max_output_tokens"], 200);
    assert_eq!(err(json!({"max_tokens": 0})).param(), Some("max_tokens"));
    assert!(plan(json!({})).body.get("max_output_tokens").is_none());
}

#[test]
fn n_is_bounded_by_config() {
    assert_eq!(plan(json!({"n": 3})).n, 3);
    assert_eq!(err(json!({"n": 0})).param(), Some("n"));
    assert_eq!(err(json!({"n": 9})).param(), Some("n"));
    let limits = ChatLimits {
        max_n: 1,
        max_stop: 4,
    };
    assert!(chat_to_responses(&req(json!({"n": 2})), &limits).is_err());
    assert!(plan(json!({"n": 2})).body.get("n").is_none());
}

#[test]
fn stop_string_or_array_empty_dropped_and_bounded() {
    assert_eq!(plan(json!({"stop": "END"})).stop, ["END"]);
    assert_eq!(plan(json!({"stop": ["a", "", "b"]})).stop, ["a", "b"]);
    assert!(plan(json!({"stop": ""})).stop.is_empty());
    assert_eq!(
        err(json!({"stop": ["1", "2", "3", "4", "5"]})).param(),
        Some("stop")
    );
    assert_eq!(err(json!({"stop": [1]})).param(), Some("stop"));
    assert_eq!(err(json!({"stop": 5})).param(), Some("stop"));
    assert!(plan(json!({"stop": "END"})).body.get("stop").is_none());
}

#[test]
fn unsupported_parameters_are_refused_with_their_name() {
    for (field, value) in [
        ("logprobs", json!(true)),
        ("top_logprobs", json!(2)),
        ("logit_bias", json!({"50256": -100})),
        ("modalities", json!(["text", "audio"])),
        ("audio", json!({"voice": "alloy", "format": "wav"})),
    ] {
        let api = ApiError::from(err(json!({ field: value })));
        assert_eq!(api.status.as_u16(), 400, "{field}");
        assert_eq!(api.kind, "invalid_request_error");
        assert_eq!(
            api.code.as_deref(),
            Some("unsupported_parameter"),
            "{field}"
        );
        assert_eq!(api.param.as_deref(), Some(field));
    }
    // Harmless forms are fine.
    plan(json!({"logprobs": false, "logit_bias": {}, "modalities": ["text"]}));
}

#[test]
fn best_effort_hints_and_unknown_fields_are_dropped_and_listed() {
    let p = plan(json!({
        "seed": 1, "presence_penalty": 0.5, "frequency_penalty": 0.5,
        "prediction": {"type": "content", "content": "x"}, "service_tier": "auto",
        "store": true, "foo": "bar",
    }));
    let body = p.body.as_object().unwrap();
    for key in [
        "seed",
        "presence_penalty",
        "frequency_penalty",
        "prediction",
        "service_tier",
        "foo",
    ] {
        assert!(!body.contains_key(key), "{key}");
        assert!(p.dropped.iter().any(|d| d == key), "{key}");
    }
    assert_eq!(p.body["store"], false);
}

#[test]
fn body_model_and_messages_are_validated() {
    let limits = ChatLimits::default();
    let e = chat_to_responses(&json!([1]), &limits).unwrap_err();
    assert_eq!(e.param(), None);
    assert_eq!(err(json!({"model": null})).param(), Some("model"));
    assert_eq!(err(json!({"model": 4})).param(), Some("model"));
    assert_eq!(err(json!({"messages": null})).param(), Some("messages"));
    assert_eq!(err(json!({"messages": "hi"})).param(), Some("messages"));
    assert_eq!(err(json!({"messages": []})).param(), Some("messages"));
    let api = ApiError::from(err(json!({"model": null})));
    assert_eq!(api.code.as_deref(), Some("missing_required_parameter"));
}

#[test]
fn tools_are_flattened_with_defaults() {
    let p = plan(json!({"tools": [
        {"type": "function", "function": {"name": "a", "description": "does a",
            "parameters": {"type": "object", "properties": {"x": {"type": "string"}}}, "strict": true}},
        {"type": "function", "function": {"name": "b"}},
    ], "parallel_tool_calls": false}));
    assert_eq!(
        p.body["tools"],
        json!([
            {"type": "function", "name": "a", "description": "does a",
             "parameters": {"type": "object", "properties": {"x": {"type": "string"}}}, "strict": true},
            {"type": "function", "name": "b", "description": "",
             "parameters": {"type": "object", "properties": {}}, "strict": false},
        ])
    );
    assert_eq!(p.body["parallel_tool_calls"], false);
    assert_eq!(
        err(json!({"tools": [{"type": "custom", "custom": {}}]})).param(),
        Some("tools[0].type")
    );
    assert_eq!(
        err(json!({"tools": [{"type": "function", "function": {}}]})).param(),
        Some("tools[0].function.name")
    );
}

#[test]
fn tool_choice_forms() {
    let one = json!([weather_tool("a")]);
    let two = json!([weather_tool("a"), weather_tool("b")]);
    assert_eq!(
        plan(json!({"tools": one, "tool_choice": "none"})).body["tool_choice"],
        "none"
    );
    assert_eq!(
        plan(json!({"tools": one, "tool_choice": "auto"})).body["tool_choice"],
        "auto"
    );
    assert_eq!(
        plan(json!({"tools": one, "tool_choice": "required"})).body["tool_choice"],
        "required"
    );
    assert_eq!(
        plan(json!({"tools": two, "tool_choice": "required"})).body["tool_choice"],
        json!({"type": "allowed_tools", "mode": "required", "tools": [
            {"type": "function", "name": "a"}, {"type": "function", "name": "b"}]})
    );
    assert_eq!(
        plan(json!({"tools": two, "tool_choice": {"type": "function", "function": {"name": "b"}}}))
            .body["tool_choice"],
        json!({"type": "allowed_tools", "mode": "required", "tools": [{"type": "function", "name": "b"}]})
    );
    assert_eq!(
        err(
            json!({"tools": two, "tool_choice": {"type": "function", "function": {"name": "zzz"}}})
        )
        .param(),
        Some("tool_choice")
    );
    assert_eq!(
        err(json!({"tool_choice": "auto"})).param(),
        Some("tool_choice")
    );
    assert_eq!(
        err(json!({"tools": one, "tool_choice": "sometimes"})).param(),
        Some("tool_choice")
    );
}

#[test]
fn required_with_one_function_and_web_search_lists_only_the_function() {
    let p = plan(
        json!({"tools": [weather_tool("a")], "tool_choice": "required", "web_search_options": {}}),
    );
    assert_eq!(p.body["tools"][1], json!({"type": "web_search"}));
    assert_eq!(
        p.body["tool_choice"],
        json!({"type": "allowed_tools", "mode": "required", "tools": [{"type": "function", "name": "a"}]})
    );
}

#[test]
fn web_search_options_add_the_web_search_tool() {
    let p = plan(json!({"web_search_options": {"search_context_size": "low"}}));
    assert_eq!(p.body["tools"], json!([{"type": "web_search"}]));
}

#[test]
fn qwen_enable_search_adds_the_web_search_tool_once() {
    let p = plan(json!({"enable_search": true}));
    assert_eq!(p.body["tools"], json!([{"type": "web_search"}]));
    assert!(p.dropped.is_empty(), "{:?}", p.dropped);
    let both = plan(json!({"enable_search": true, "web_search_options": {}}));
    assert_eq!(both.body["tools"], json!([{"type": "web_search"}]));
    assert!(
        plan(json!({"enable_search": false}))
            .body
            .get("tools")
            .is_none()
    );
    assert_eq!(
        err(json!({"enable_search": "yes"})).param(),
        Some("enable_search")
    );
}

#[test]
fn legacy_functions_become_tools() {
    let p = plan(json!({
        "functions": [{"name": "get_time", "parameters": {"type": "object"}}],
        "function_call": {"name": "get_time"},
    }));
    assert!(p.legacy_functions);
    assert_eq!(p.body["tools"][0]["name"], "get_time");
    assert_eq!(p.body["tools"][0]["type"], "function");
    assert_eq!(
        p.body["tool_choice"],
        json!({"type": "allowed_tools", "mode": "required", "tools": [{"type": "function", "name": "get_time"}]})
    );
    // One call per answer in the legacy shape.
    assert_eq!(p.body["parallel_tool_calls"], false);
    assert_eq!(
        plan(json!({"functions": [{"name": "f"}], "function_call": "auto"})).body["tool_choice"],
        "auto"
    );
    assert_eq!(
        err(json!({"functions": [{"name": "f"}], "tools": [weather_tool("a")]})).param(),
        Some("functions")
    );
}

#[test]
fn response_format_is_flattened_into_text_format() {
    assert_eq!(
        plan(json!({"response_format": {"type": "json_object"}})).body["text"],
        json!({"format": {"type": "json_object"}})
    );
    let p = plan(
        json!({"response_format": {"type": "json_schema", "json_schema": {
        "name": "person", "schema": {"type": "object"}, "strict": true}}}),
    );
    assert_eq!(
        p.body["text"],
        json!({"format": {"type": "json_schema", "name": "person", "schema": {"type": "object"}, "strict": true}})
    );
    assert!(
        plan(json!({"response_format": {"type": "text"}}))
            .body
            .get("text")
            .is_none()
    );
    assert_eq!(
        err(json!({"response_format": {"type": "xml"}})).param(),
        Some("response_format.type")
    );
    assert_eq!(
        err(json!({"response_format": {"type": "json_schema"}})).param(),
        Some("response_format.json_schema")
    );
}

#[test]
fn translate_error_converts_to_api_error() {
    let api = ApiError::from(TranslateError::unsupported("audio", "is not supported."));
    assert_eq!(api.code.as_deref(), Some("unsupported_parameter"));
    assert_eq!(api.param.as_deref(), Some("audio"));
    let api = ApiError::from(TranslateError::invalid("messages[2]", "orphan"));
    assert_eq!(
        (api.status.as_u16(), api.kind.as_str()),
        (400, "invalid_request_error")
    );
    assert_eq!(api.param.as_deref(), Some("messages[2]"));
}

#[test]
fn default_limits_follow_openai() {
    assert_eq!(
        ChatLimits::default(),
        ChatLimits {
            max_n: 8,
            max_stop: 4
        }
    );
}
