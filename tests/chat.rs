//! `/v1/chat/completions` end to end: gateway + mock Model Studio, asserting on what an
//! OpenAI Chat Completions client receives.

mod common;

use common::*;
use serde_json::{Value, json};
use std::time::Duration;

const MODEL: &str = "qwen3-max-2026-01-23";

async fn chat(gw: &Gateway, body: Value, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut req = client().post(gw.url("/v1/chat/completions")).json(&body);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.send().await.unwrap()
}

/// Every `data:` payload of a chat stream, asserting the framing rules on the way.
async fn chunks(res: reqwest::Response) -> Vec<Value> {
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let body = res.bytes().await.unwrap();
    let text = String::from_utf8(body.to_vec()).unwrap();
    for line in text.split("\n\n").filter(|l| !l.is_empty()) {
        assert!(
            line.starts_with("data: "),
            "only data lines downstream: {line:?}"
        );
    }
    let data = sse_data(&body);
    assert_eq!(
        data.last().map(String::as_str),
        Some("[DONE]"),
        "stream must end with [DONE]"
    );
    assert_eq!(data.iter().filter(|d| *d == "[DONE]").count(), 1);
    data[..data.len() - 1]
        .iter()
        .map(|d| serde_json::from_str(d).unwrap())
        .collect()
}

fn content_of(chunks: &[Value]) -> String {
    chunks
        .iter()
        .filter_map(|c| {
            c.pointer("/choices/0/delta/content")
                .and_then(Value::as_str)
        })
        .collect()
}

fn finish_reasons(chunks: &[Value]) -> Vec<(u64, String)> {
    chunks
        .iter()
        .flat_map(|c| c["choices"].as_array().cloned().unwrap_or_default())
        .filter_map(|ch| {
            ch["finish_reason"]
                .as_str()
                .map(|r| (ch["index"].as_u64().unwrap(), r.to_owned()))
        })
        .collect()
}

#[tokio::test]
async fn plain_completion_translates_both_ways() {
    let (gw, mock) = gateway_with_mock("").await;
    let res = chat(
        &gw,
        json!({"model": "gpt-4o", "messages": [
            {"role": "system", "content": [{"type": "text", "text": "Be brief."}, {"type": "text", "text": "Be kind."}]},
            {"role": "user", "content": "こんにちは"}
        ], "max_tokens": 5, "temperature": 0.5}),
        &[],
    )
    .await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["object"], "chat.completion");
    assert!(body["id"].as_str().unwrap().starts_with("chatcmpl-"));
    assert!(body["created"].is_u64());
    assert_eq!(body["model"], MODEL);
    let choice = &body["choices"][0];
    assert_eq!(choice["index"], 0);
    assert_eq!(choice["message"]["role"], "assistant");
    assert!(
        choice["message"]["content"]
            .as_str()
            .unwrap()
            .starts_with("こんにちは!私は Qwen です。")
    );
    let usage = &body["usage"];
    assert!(usage["prompt_tokens"].as_u64().unwrap() > 0);
    assert_eq!(
        usage["total_tokens"].as_u64().unwrap(),
        usage["prompt_tokens"].as_u64().unwrap() + usage["completion_tokens"].as_u64().unwrap()
    );
    // What Model Studio received: a streamed, stateless Responses request.
    let sent = mock.requests()[0].body.clone().unwrap();
    assert_eq!(sent["model"], MODEL);
    assert_eq!(sent["stream"], true);
    assert_eq!(sent["store"], false);
    assert_eq!(
        sent["max_output_tokens"], 16,
        "raised to Model Studio's minimum"
    );
    assert_eq!(sent["temperature"], 0.5);
    assert_eq!(sent["input"][0]["role"], "system");
    assert_eq!(sent["input"][0]["content"], "Be brief.\nBe kind.");
    assert_eq!(sent["input"][1]["role"], "user");
}

#[tokio::test]
async fn stream_with_usage_follows_the_chunk_rules() {
    let (gw, _mock) = gateway_with_mock("").await;
    let res = chat(
        &gw,
        json!({"model": MODEL, "stream": true, "stream_options": {"include_usage": true},
               "messages": [{"role": "user", "content": "hi"}]}),
        &[("x-mock-tokens", "30")],
    )
    .await;
    let chunks = chunks(res).await;
    let id = chunks[0]["id"].as_str().unwrap();
    assert!(id.starts_with("chatcmpl-"));
    for c in &chunks {
        assert_eq!(c["object"], "chat.completion.chunk");
        assert_eq!(c["id"], id);
        assert_eq!(c["created"], chunks[0]["created"]);
        assert_eq!(c["model"], MODEL);
    }
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    assert_eq!(finish_reasons(&chunks), [(0, "stop".to_string())]);
    let usage_chunk = chunks.last().unwrap();
    assert_eq!(usage_chunk["choices"], json!([]));
    assert!(usage_chunk["usage"]["completion_tokens"].as_u64().unwrap() >= 30);
    for c in &chunks[..chunks.len() - 1] {
        assert!(
            c.get("usage").is_some_and(Value::is_null),
            "usage: null before the usage chunk: {c}"
        );
        if let Some(delta) = c.pointer("/choices/0/delta") {
            assert!(
                delta.as_object().is_some_and(|d| !d.is_empty())
                    || c["choices"][0]["finish_reason"].is_string(),
                "filler chunk {c}"
            );
        }
    }
    assert_eq!(
        content_of(&chunks).matches("トークン").count(),
        4,
        "30 tokens cycle 8 words"
    );
}

#[tokio::test]
async fn tool_call_round_trip() {
    let (gw, mock) = gateway_with_mock("").await;
    let tools = json!([{"type": "function", "function": {"name": "get_weather", "description": "Weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]);
    let first: Value = chat(
        &gw,
        json!({"model": MODEL, "tools": tools, "messages": [{"role": "user", "content": "Weather in Tokyo?"}]}),
        &[],
    )
    .await
    .json()
    .await
    .unwrap();
    let choice = &first["choices"][0];
    assert_eq!(choice["finish_reason"], "tool_calls");
    assert!(choice["message"]["content"].is_null());
    let call = &choice["message"]["tool_calls"][0];
    assert_eq!(call["type"], "function");
    assert_eq!(call["function"]["name"], "get_weather");
    let args: Value =
        serde_json::from_str(call["function"]["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(args["city"], "Tokyo");
    let call_id = call["id"].as_str().unwrap();
    assert!(call_id.starts_with("call_"));
    let sent_tools = &mock.requests()[0].body.clone().unwrap()["tools"];
    assert_eq!(sent_tools[0]["type"], "function");
    assert_eq!(sent_tools[0]["name"], "get_weather");

    let second: Value = chat(
        &gw,
        json!({"model": MODEL, "tools": tools, "messages": [
            {"role": "user", "content": "Weather in Tokyo?"},
            {"role": "assistant", "content": "Let me check.", "tool_calls": [call]},
            {"role": "tool", "tool_call_id": call_id, "content": "sunny, 21°C"}
        ]}),
        &[],
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(second["choices"][0]["finish_reason"], "stop");
    assert_eq!(
        second["choices"][0]["message"]["content"],
        "Tool get_weather returned: sunny, 21°C"
    );
    let input = mock.requests()[1].body.clone().unwrap()["input"].clone();
    let kinds: Vec<&str> = input
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["type"].as_str().unwrap_or("message"))
        .collect();
    assert_eq!(
        kinds,
        [
            "message",
            "message",
            "function_call",
            "function_call_output"
        ]
    );
    assert_eq!(
        input[1]["content"], "Let me check.",
        "assistant text kept before its call"
    );
}

#[tokio::test]
async fn parallel_tool_calls_stream_on_distinct_indexes() {
    let (gw, _mock) = gateway_with_mock("").await;
    let tools = json!([
        {"type": "function", "function": {"name": "a", "parameters": {"type": "object", "properties": {"x": {"type": "string"}}}}},
        {"type": "function", "function": {"name": "b", "parameters": {"type": "object", "properties": {"y": {"type": "integer"}}}}}
    ]);
    let res = chat(
        &gw,
        json!({"model": MODEL, "stream": true, "tools": tools, "messages": [{"role": "user", "content": "go"}]}),
        &[("x-mock-tool-calls", "2")],
    )
    .await;
    let chunks = chunks(res).await;
    let mut calls: Vec<(String, String, String)> = vec![Default::default(); 2];
    for c in &chunks {
        for tc in c
            .pointer("/choices/0/delta/tool_calls")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let i = tc["index"].as_u64().unwrap() as usize;
            assert!(i < 2, "index {i}");
            if let Some(id) = tc["id"].as_str() {
                calls[i].0 = id.to_owned();
            }
            if let Some(name) = tc.pointer("/function/name").and_then(Value::as_str) {
                calls[i].1 = name.to_owned();
            }
            if let Some(args) = tc.pointer("/function/arguments").and_then(Value::as_str) {
                calls[i].2.push_str(args);
            }
        }
    }
    assert_eq!(calls[0].1, "a");
    assert_eq!(calls[1].1, "b");
    assert_ne!(calls[0].0, calls[1].0);
    assert_eq!(
        serde_json::from_str::<Value>(&calls[0].2).unwrap(),
        json!({"x": "Tokyo"})
    );
    assert_eq!(
        serde_json::from_str::<Value>(&calls[1].2).unwrap(),
        json!({"y": 1})
    );
    assert_eq!(finish_reasons(&chunks), [(0, "tool_calls".to_string())]);
}

#[tokio::test]
async fn reasoning_arrives_as_reasoning_content() {
    let (gw, _mock) = gateway_with_mock("").await;
    let body = json!({"model": MODEL, "enable_thinking": true, "messages": [{"role": "user", "content": "think"}]});
    let plain: Value = chat(&gw, body.clone(), &[]).await.json().await.unwrap();
    let message = &plain["choices"][0]["message"];
    assert_eq!(message["reasoning_content"], "Thinking about: think");
    assert!(
        message["content"]
            .as_str()
            .unwrap()
            .contains("You said: think")
    );
    assert!(
        plain["usage"]["completion_tokens_details"]["reasoning_tokens"]
            .as_u64()
            .unwrap()
            > 0
    );
    let mut streamed = body;
    streamed["stream"] = json!(true);
    let chunks = chunks(chat(&gw, streamed, &[]).await).await;
    let reasoning: String = chunks
        .iter()
        .filter_map(|c| {
            c.pointer("/choices/0/delta/reasoning_content")
                .and_then(Value::as_str)
        })
        .collect();
    assert_eq!(reasoning, "Thinking about: think");
}

#[tokio::test]
async fn stop_sequences_cut_the_text_and_cancel_the_upstream() {
    let (gw, mock) = gateway_with_mock("").await;
    let headers = [("x-mock-tokens", "400"), ("x-mock-delay-ms", "5")];
    let body = json!({"model": MODEL, "stop": ["テスト"], "messages": [{"role": "user", "content": "go"}]});
    let plain: Value = chat(&gw, body.clone(), &headers)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        plain["choices"][0]["message"]["content"],
        "token トークン qwen "
    );
    assert_eq!(plain["choices"][0]["finish_reason"], "stop");
    let mut streamed = body;
    streamed["stream"] = json!(true);
    let chunks = chunks(chat(&gw, streamed, &headers).await).await;
    assert_eq!(content_of(&chunks), "token トークン qwen ");
    assert_eq!(finish_reasons(&chunks), [(0, "stop".to_string())]);
    let both_cancelled = eventually(Duration::from_secs(3), || {
        mock.stats().cancelled_streams == 2
    })
    .await;
    assert!(both_cancelled, "upstream not cancelled: {:?}", mock.stats());
}

#[tokio::test]
async fn n_choices_are_merged_with_indexes_and_summed_usage() {
    let (gw, mock) = gateway_with_mock("").await;
    let body = json!({"model": MODEL, "n": 2, "messages": [{"role": "user", "content": "hi"}]});
    let plain: Value = chat(&gw, body.clone(), &[]).await.json().await.unwrap();
    let choices = plain["choices"].as_array().unwrap();
    assert_eq!(choices.len(), 2);
    assert_eq!(choices[0]["index"], 0);
    assert_eq!(choices[1]["index"], 1);
    let one: Value = chat(
        &gw,
        json!({"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}),
        &[],
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(
        plain["usage"]["completion_tokens"].as_u64().unwrap(),
        2 * one["usage"]["completion_tokens"].as_u64().unwrap()
    );
    assert_eq!(mock.requests().len(), 3);
    let mut streamed = body;
    streamed["stream"] = json!(true);
    streamed["stream_options"] = json!({"include_usage": true});
    let chunks = chunks(chat(&gw, streamed, &[]).await).await;
    let mut finishes = finish_reasons(&chunks);
    finishes.sort();
    assert_eq!(finishes, [(0, "stop".to_string()), (1, "stop".to_string())]);
    let ids: std::collections::HashSet<&str> =
        chunks.iter().map(|c| c["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 1, "one id across choices");
    let usage_chunks: Vec<&Value> = chunks.iter().filter(|c| c["usage"].is_object()).collect();
    assert_eq!(usage_chunks.len(), 1);
    assert_eq!(
        usage_chunks[0]["usage"]["completion_tokens"],
        plain["usage"]["completion_tokens"]
    );
}

#[tokio::test]
async fn incomplete_answers_finish_with_length() {
    let (gw, _mock) = gateway_with_mock("").await;
    let body = json!({"model": MODEL, "max_completion_tokens": 20, "messages": [{"role": "user", "content": "long"}]});
    let plain: Value = chat(&gw, body.clone(), &[("x-mock-tokens", "100")])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(plain["choices"][0]["finish_reason"], "length");
    assert_eq!(plain["usage"]["completion_tokens"], 20);
    let mut streamed = body;
    streamed["stream"] = json!(true);
    let chunks = chunks(chat(&gw, streamed, &[("x-mock-tokens", "100")]).await).await;
    assert_eq!(finish_reasons(&chunks), [(0, "length".to_string())]);
}

#[tokio::test]
async fn structured_output_and_web_search() {
    let (gw, mock) = gateway_with_mock("").await;
    let schema = json!({"type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
        "required": ["city", "days"], "additionalProperties": false});
    let res: Value = chat(
        &gw,
        json!({"model": MODEL, "messages": [{"role": "user", "content": "plan"}],
               "response_format": {"type": "json_schema", "json_schema": {"name": "trip", "schema": schema, "strict": true}}}),
        &[],
    )
    .await
    .json()
    .await
    .unwrap();
    let content: Value =
        serde_json::from_str(res["choices"][0]["message"]["content"].as_str().unwrap()).unwrap();
    assert_eq!(content, json!({"city": "Tokyo", "days": 1}));
    let sent = mock.requests()[0].body.clone().unwrap();
    assert_eq!(sent["text"]["format"]["type"], "json_schema");
    assert_eq!(sent["text"]["format"]["name"], "trip");
    assert_eq!(sent["text"]["format"]["strict"], true);

    let searched: Value = chat(
        &gw,
        json!({"model": MODEL, "web_search_options": {}, "messages": [{"role": "user", "content": "news"}]}),
        &[],
    )
    .await
    .json()
    .await
    .unwrap();
    let sent = mock.requests()[1].body.clone().unwrap();
    assert!(
        sent["tools"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["type"] == "web_search")
    );
    let message = &searched["choices"][0]["message"];
    assert!(
        message.get("tool_calls").is_none_or(Value::is_null),
        "built-in tools are not tool_calls"
    );
    assert_eq!(message["annotations"][0]["type"], "url_citation");
    assert_eq!(
        message["annotations"][0]["url_citation"]["url"],
        "https://example.com/qwen"
    );
}

async fn error_of(res: reqwest::Response, status: u16) -> Value {
    assert_eq!(res.status(), status);
    let body: Value = res.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    body["error"].clone()
}

#[tokio::test]
async fn bad_requests_are_refused_before_the_upstream() {
    let (gw, mock) = gateway_with_mock("").await;
    let msgs = json!([{"role": "user", "content": "hi"}]);
    let err = error_of(
        chat(
            &gw,
            json!({"model": MODEL, "messages": msgs, "logprobs": true}),
            &[],
        )
        .await,
        400,
    )
    .await;
    assert_eq!(err["param"], "logprobs");
    assert_eq!(err["code"], "unsupported_parameter");
    let err = error_of(chat(&gw, json!({"model": MODEL}), &[]).await, 400).await;
    assert_eq!(err["param"], "messages");
    let err = error_of(
        chat(&gw, json!({"model": MODEL, "messages": msgs, "n": 99}), &[]).await,
        400,
    )
    .await;
    assert_eq!(err["param"], "n");
    let orphan = json!([{"role": "user", "content": "hi"}, {"role": "tool", "tool_call_id": "call_x", "content": "1"}]);
    error_of(
        chat(&gw, json!({"model": MODEL, "messages": orphan}), &[]).await,
        400,
    )
    .await;
    let res = client()
        .post(gw.url("/v1/chat/completions"))
        .body("{nope")
        .send()
        .await
        .unwrap();
    error_of(res, 400).await;
    assert!(mock.requests().is_empty());
}

#[tokio::test]
async fn upstream_errors_become_openai_errors() {
    let (gw, _mock) = gateway_with_mock("").await;
    let body = json!({"model": MODEL, "messages": [{"role": "user", "content": "hi"}]});
    let res = chat(
        &gw,
        body.clone(),
        &[("x-mock-status", "429"), ("x-mock-retry-after", "3")],
    )
    .await;
    assert_eq!(res.headers()["retry-after"], "3");
    let err = error_of(res, 429).await;
    assert_eq!(err["type"], "rate_limit_error");
    // The 429'd key now rests for its Retry-After, so the gateway answers 429 itself.
    let res = chat(&gw, body.clone(), &[]).await;
    let wait: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=3).contains(&wait), "{wait}");
    error_of(res, 429).await;
    // Each case below gets a fresh gateway: key holds must not leak between cases.
    let (gw, _mock) = gateway_with_mock("").await;
    let err = error_of(
        chat(&gw, body.clone(), &[("x-mock-fail", "rate_limit")]).await,
        429,
    )
    .await;
    assert_eq!(err["type"], "rate_limit_error");
    let (gw, _mock) = gateway_with_mock("").await;
    let err = error_of(
        chat(&gw, body.clone(), &[("x-mock-status", "401")]).await,
        502,
    )
    .await;
    assert_eq!(err["code"], "upstream_auth_failed");
    assert!(!err.to_string().contains(UPSTREAM_KEY));
    let err = error_of(
        chat(
            &gw,
            body.clone(),
            &[("x-mock-status", "400"), ("x-mock-error-style", "nested")],
        )
        .await,
        400,
    )
    .await;
    assert_eq!(err["type"], "invalid_request_error");
    let err = error_of(
        chat(
            &gw,
            json!({"model": "gpt-unknown", "messages": [{"role": "user", "content": "hi"}]}),
            &[],
        )
        .await,
        404,
    )
    .await;
    assert_eq!(err["code"], "model_not_found");
}

#[tokio::test]
async fn failures_mid_stream_end_with_an_error_frame_and_done() {
    let (gw, _mock) = gateway_with_mock("").await;
    let body =
        json!({"model": MODEL, "stream": true, "messages": [{"role": "user", "content": "hi"}]});
    // After output began (moderation stops the mock's stream after two deltas).
    for headers in [
        vec![("x-mock-fail", "moderation")],
        vec![("x-mock-tokens", "20"), ("x-mock-drop-after", "8")],
    ] {
        let chunks = chunks(chat(&gw, body.clone(), &headers).await).await;
        let last = chunks.last().unwrap();
        assert!(last["error"]["message"].is_string(), "{headers:?}: {last}");
        assert!(
            finish_reasons(&chunks).is_empty(),
            "no finish chunk after a failure: {headers:?}"
        );
    }
}

/// A failure Model Studio reports inside a 200 before any output (`response.failed` right
/// after `response.created`) is known before the client's answer starts: it gets the HTTP
/// error it means — 429 that SDKs retry, 502 — not a 200 stream whose first frame is an error.
#[tokio::test]
async fn failures_before_any_output_are_http_errors_even_when_streaming() {
    for stream in [true, false] {
        let body = json!({"model": MODEL, "stream": stream,
                          "messages": [{"role": "user", "content": "hi"}]});
        for (fail, status, kind) in [
            ("rate_limit", 429, "rate_limit_error"),
            ("server_error", 502, "server_error"),
        ] {
            // A fresh gateway each time: a rate limit rests the only key for a while.
            let (gw, _mock) = gateway_with_mock("").await;
            let res = chat(&gw, body.clone(), &[("x-mock-fail", fail)]).await;
            assert_eq!(res.status(), status, "{fail}, stream {stream}");
            assert!(
                res.headers()["content-type"]
                    .to_str()
                    .unwrap()
                    .starts_with("application/json")
            );
            let err: Value = res.json().await.unwrap();
            assert_eq!(err["error"]["type"], kind, "{fail}, stream {stream}: {err}");
            assert!(err["error"]["message"].is_string());
        }
    }
}

/// Like the pass-through test: the mock sends each event only when the test releases it,
/// and the test releases the next one only after the client went quiet. Recording how much
/// text the client had at each release shows every delta arrived before the next event
/// existed; a buffering translator would show nothing until the end.
#[tokio::test]
async fn each_chunk_is_flushed_before_the_next_event_exists() {
    use futures_util::StreamExt;
    let (gw, mock) = gateway_with_mock("").await;
    let res = chat(
        &gw,
        json!({"model": MODEL, "stream": true, "messages": [{"role": "user", "content": "hi"}]}),
        &[("x-mock-gate", "chat"), ("x-mock-tokens", "5")],
    )
    .await;
    assert_eq!(res.status(), 200);
    let content = |buf: &[u8]| -> String {
        sse_data(buf)
            .iter()
            .filter(|d| *d != "[DONE]")
            .map(|d| serde_json::from_str::<Value>(d).unwrap())
            .filter_map(|c| {
                c.pointer("/choices/0/delta/content")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            })
            .collect()
    };
    let mut stream = res.bytes_stream();
    let mut buf = Vec::new();
    let mut text_at_release = Vec::new();
    loop {
        match tokio::time::timeout(Duration::from_millis(200), stream.next()).await {
            Ok(Some(chunk)) => buf.extend_from_slice(&chunk.unwrap()),
            Ok(None) => break,
            Err(_) => {
                // 13 events: the first needs no release, so 12 releases end the stream.
                assert!(
                    text_at_release.len() < 12,
                    "stream stalled after all events were released"
                );
                text_at_release.push(content(&buf));
                mock.release("chat");
            }
        }
    }
    assert_eq!(content(&buf), "token トークン qwen テスト stream ");
    let mut grew: Vec<&String> = text_at_release.iter().filter(|t| !t.is_empty()).collect();
    grew.dedup();
    assert_eq!(
        grew.len(),
        5,
        "each delta reached the client before the next event: {text_at_release:?}"
    );
}
