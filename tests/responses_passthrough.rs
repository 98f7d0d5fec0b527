//! `/v1/responses` pass-through: key injection, headers, aliases, byte-exact bodies and
//! streams, early flush, cancellation, and every gateway-made error status.

mod common;

use common::*;
use futures_util::StreamExt;
use serde_json::{Value, json};
use std::time::Duration;

const MODEL: &str = "qwen3-max-2026-01-23";

#[tokio::test]
async fn injects_the_upstream_key_and_never_forwards_client_credentials() {
    let (gw, mock) = gateway_with_mock("").await;
    let res = client()
        .post(gw.url("/v1/responses"))
        .header("authorization", "Bearer client-secret-key")
        .header("api-key", "client-secret-key-2")
        .header("x-api-key", "client-secret-key-3")
        .header("x-request-id", "req-from-client-1")
        .json(&json!({"model": MODEL, "input": "hello"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["x-request-id"], "req-from-client-1");
    let reqs = mock.requests();
    assert_eq!(reqs.len(), 1);
    let seen = &reqs[0].headers;
    assert_eq!(
        header(seen, "authorization"),
        Some(format!("Bearer {UPSTREAM_KEY}").as_str())
    );
    assert_eq!(header(seen, "x-request-id"), Some("req-from-client-1"));
    assert!(header(seen, "api-key").is_none());
    assert!(header(seen, "x-api-key").is_none());
    let all = format!("{seen:?}");
    assert!(
        !all.contains("client-secret-key"),
        "client key leaked upstream: {all}"
    );
}

#[tokio::test]
async fn generates_a_request_id_when_the_client_sends_none() {
    let (gw, mock) = gateway_with_mock("").await;
    let res = client()
        .post(gw.url("/v1/responses"))
        .json(&json!({"model": MODEL, "input": "hello"}))
        .send()
        .await
        .unwrap();
    let id = res.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert!(id.len() >= 32, "generated id {id}");
    assert_eq!(
        header(&mock.requests()[0].headers, "x-request-id"),
        Some(id.as_str())
    );
}

#[tokio::test]
async fn rewrites_aliases_and_passes_every_other_field_through() {
    let (gw, mock) = gateway_with_mock("").await;
    let body = json!({
        "model": "gpt-4o",
        "input": [{"role": "user", "content": "検索して"}],
        "tools": [{"type": "web_search"}],
        "enable_thinking": true,
        "some_future_field": {"nested": [1, 2, 3]}
    });
    let res = client()
        .post(gw.url("/v1/responses"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let sent = mock.requests()[0].body.clone().unwrap();
    let mut expected = body.clone();
    expected["model"] = json!(MODEL);
    assert_eq!(sent, expected);
    let answer: Value = res.json().await.unwrap();
    assert_eq!(answer["model"], MODEL);
}

/// Only the top-level `model` is rewritten (a nested one, and `"model"` inside a string,
/// are left alone); two top-level `model`s are refused before anything goes upstream.
#[tokio::test]
async fn alias_rewrite_touches_only_the_top_level_model_and_refuses_duplicates() {
    let (gw, mock) = gateway_with_mock("").await;
    let body = "{ \"input\" : \"say \\\"model\\\": \\\"gpt-4o\\\"\",\n  \"metadata\": {\"model\": \"gpt-4o\"},\n  \"model\"\t:  \"gpt-4o\" }";
    let res = client()
        .post(gw.url("/v1/responses"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let sent = mock.requests()[0].body.clone().unwrap();
    assert_eq!(sent["model"], MODEL);
    assert_eq!(sent["metadata"]["model"], "gpt-4o");
    assert_eq!(sent["input"], "say \"model\": \"gpt-4o\"");

    for body in [
        r#"{"model":"gpt-4o","input":"x","model":"something-else"}"#,
        r#"{"model":"gpt-4o","input":"x","mod\u0065l":"something-else"}"#,
    ] {
        let res = client()
            .post(gw.url("/v1/responses"))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let err = assert_openai_error(res, 400).await;
        assert!(
            err["error"]["message"]
                .as_str()
                .unwrap()
                .contains("duplicate field"),
            "{err}"
        );
    }
    assert_eq!(mock.requests().len(), 1, "nothing else went upstream");
}

#[tokio::test]
async fn non_streaming_answer_is_relayed_byte_for_byte() {
    let (gw, mock) = gateway_with_mock("").await;
    let res = client()
        .post(gw.url("/v1/responses"))
        .json(&json!({"model": MODEL, "input": "こんにちは"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "application/json");
    let bytes = res.bytes().await.unwrap();
    let recorded = &mock.requests()[0];
    assert_eq!(&bytes[..], &recorded.response_body[..]);
    let v: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(v["object"], "response");
    assert_eq!(v["status"], "completed");
}

#[tokio::test]
async fn stream_is_relayed_byte_for_byte_with_model_studio_quirks() {
    let (gw, mock) = gateway_with_mock("").await;
    let res = client()
        .post(gw.url("/v1/responses"))
        .header("x-mock-tokens", "40")
        .json(&json!({"model": MODEL, "input": "人工知能について", "stream": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let bytes = res.bytes().await.unwrap();
    let recorded = &mock.requests()[0];
    assert!(recorded.finished);
    assert_eq!(
        String::from_utf8_lossy(&bytes),
        String::from_utf8_lossy(&recorded.response_body)
    );
    assert_eq!(&bytes[..], &recorded.response_body[..]);
    // The mock's quirks are really in there, unchanged.
    let text = String::from_utf8_lossy(&bytes);
    assert!(text.contains(":HTTP_STATUS/200"));
    assert!(text.contains("\nid:"));
    assert!(text.contains("data:{"));
    let events = sse_json(&bytes);
    assert_eq!(events.first().unwrap()["type"], "response.created");
    assert_eq!(events.last().unwrap()["type"], "response.completed");
    let deltas = events
        .iter()
        .filter(|e| e["type"] == "response.output_text.delta")
        .count();
    assert_eq!(deltas, 40);
}

/// The mock sends event N+1 only after the test has seen event N come out of the gateway:
/// if the gateway buffered, the test would time out instead.
#[tokio::test]
async fn each_event_is_flushed_before_the_next_one_exists() {
    let (gw, mock) = gateway_with_mock("").await;
    let res = client()
        .post(gw.url("/v1/responses"))
        .header("x-mock-gate", "flush")
        .header("x-mock-tokens", "5")
        .json(&json!({"model": MODEL, "input": "hi", "stream": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let mut stream = res.bytes_stream();
    let mut buf = Vec::new();
    let mut seen = 0;
    loop {
        let complete = sse_data(&buf).len();
        if complete > seen {
            seen = complete;
            mock.release("flush");
            continue;
        }
        let next = tokio::time::timeout(Duration::from_secs(3), stream.next())
            .await
            .unwrap_or_else(|_| panic!("event {} never arrived: the gateway buffered", seen + 1));
        match next {
            Some(chunk) => buf.extend_from_slice(&chunk.unwrap()),
            None => break,
        }
    }
    let events = sse_json(&buf);
    // created, in_progress, item added, part added, 5 deltas, text done, part done, item done, completed
    assert_eq!(events.len(), 13);
    assert_eq!(events.last().unwrap()["type"], "response.completed");
}

#[tokio::test]
async fn client_hang_up_cancels_the_upstream_request() {
    let (gw, mock) = gateway_with_mock("").await;
    let res = client()
        .post(gw.url("/v1/responses"))
        .header("x-mock-tokens", "500")
        .header("x-mock-delay-ms", "20")
        .json(&json!({"model": MODEL, "input": "long", "stream": true}))
        .send()
        .await
        .unwrap();
    let mut stream = res.bytes_stream();
    let mut buf = Vec::new();
    while sse_data(&buf).len() < 3 {
        let chunk = tokio::time::timeout(Duration::from_secs(3), stream.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        buf.extend_from_slice(&chunk);
    }
    drop(stream);
    let cancelled = eventually(Duration::from_secs(3), || {
        mock.stats().cancelled_streams == 1
    })
    .await;
    assert!(
        cancelled,
        "the mock never saw the upstream request closed: {:?}",
        mock.stats()
    );
    let recorded = &mock.requests()[0];
    assert!(!recorded.finished);
    assert_eq!(mock.stats().open_streams, 0);
}

#[tokio::test]
async fn previous_response_id_two_turns_and_get_by_id() {
    let (gw, _mock) = gateway_with_mock("").await;
    let c = client();
    let first: Value = c
        .post(gw.url("/v1/responses"))
        .json(&json!({"model": MODEL, "input": "私の名前は田中です。"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = first["id"].as_str().unwrap();
    let second: Value = c
        .post(gw.url("/v1/responses"))
        .json(&json!({"model": MODEL, "input": "私の名前は?", "previous_response_id": id}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let text = second["output"][0]["content"][0]["text"].as_str().unwrap();
    assert!(text.contains("私の名前は田中です"), "no memory: {text}");
    let fetched = c
        .get(gw.url(&format!("/v1/responses/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(fetched.status(), 200);
    let fetched: Value = fetched.json().await.unwrap();
    assert_eq!(fetched["id"], id);
    let deleted = c
        .delete(gw.url(&format!("/v1/responses/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 200);
    let gone = c
        .get(gw.url(&format!("/v1/responses/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), 404);
}

#[tokio::test]
async fn upstream_errors_are_relayed_with_their_status_and_body() {
    let (gw, mock) = gateway_with_mock("").await;
    let res = client()
        .post(gw.url("/v1/responses"))
        .header("x-mock-status", "429")
        .header("x-mock-retry-after", "7")
        .json(&json!({"model": MODEL, "input": "hi"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 429);
    assert_eq!(res.headers()["retry-after"], "7");
    let bytes = res.bytes().await.unwrap();
    assert_eq!(&bytes[..], &mock.requests()[0].response_body[..]);
    // The only key now rests for its Retry-After: the gateway answers 429 without asking.
    let resting = client()
        .post(gw.url("/v1/responses"))
        .json(&json!({"model": MODEL, "input": "hi"}))
        .send()
        .await
        .unwrap();
    assert!(
        resting.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
            <= 7
    );
    let err = assert_openai_error(resting, 429).await;
    assert_eq!(err["error"]["code"], "rate_limit_exceeded");
    assert_eq!(mock.requests().len(), 1);

    let (gw, _mock) = gateway_with_mock("").await;
    let unknown_previous = client()
        .post(gw.url("/v1/responses"))
        .json(&json!({"model": MODEL, "input": "hi", "previous_response_id": "nope"}))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown_previous.status(), 400);
    let body: Value = unknown_previous.json().await.unwrap();
    assert_eq!(body["error"]["param"], "previous_response_id");
}

#[tokio::test]
async fn gateway_errors_are_openai_shaped_with_the_right_status() {
    let (gw, mock) = gateway_with_mock("[server]\nmax_body_bytes = 2048\n").await;
    let c = client();
    let malformed = c
        .post(gw.url("/v1/responses"))
        .header("content-type", "application/json")
        .body("{\"model\": ")
        .send()
        .await
        .unwrap();
    let body = assert_openai_error(malformed, 400).await;
    assert_eq!(body["error"]["type"], "invalid_request_error");
    let not_object = c
        .post(gw.url("/v1/responses"))
        .body("[1,2]")
        .send()
        .await
        .unwrap();
    assert_openai_error(not_object, 400).await;
    let big = json!({"model": MODEL, "input": "x".repeat(4096)});
    let too_large = c
        .post(gw.url("/v1/responses"))
        .json(&big)
        .send()
        .await
        .unwrap();
    assert_openai_error(too_large, 413).await;
    let unknown = c.get(gw.url("/v2/nothing")).send().await.unwrap();
    assert_openai_error(unknown, 404).await;
    let wrong_method = c.get(gw.url("/v1/responses")).send().await.unwrap();
    assert_openai_error(wrong_method, 405).await;
    assert!(
        mock.requests().is_empty(),
        "bad requests must not reach the upstream"
    );
}

#[tokio::test]
async fn unreachable_upstream_is_502_and_slow_upstream_is_504() {
    // A port that was just free: nothing listens there.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let gw = start_gateway(&config_toml(&[format!("http://{closed}")], "")).await;
    let res = client()
        .post(gw.url("/v1/responses"))
        .json(&json!({"model": MODEL, "input": "hi"}))
        .send()
        .await
        .unwrap();
    let body = assert_openai_error(res, 502).await;
    assert_eq!(body["error"]["type"], "server_error");
    assert!(!body.to_string().contains(UPSTREAM_KEY));

    // A stream's head is due within first_byte_timeout; a non-streaming answer's head comes
    // when the answer is done, so it is bounded by request_timeout instead.
    let mock = start_mock().await;
    let toml = config_toml(&[mock.base_url()], "")
        .replace(
            "first_byte_timeout = \"3s\"",
            "first_byte_timeout = \"300ms\"",
        )
        .replace("request_timeout = \"10s\"", "request_timeout = \"1500ms\"");
    let gw = start_gateway(&toml).await;
    let started = std::time::Instant::now();
    let res = client()
        .post(gw.url("/v1/responses"))
        .header("x-mock-header-delay-ms", "3000")
        .json(&json!({"model": MODEL, "input": "hi", "stream": true}))
        .send()
        .await
        .unwrap();
    assert_openai_error(res, 504).await;
    assert!(started.elapsed() < Duration::from_secs(2));
    let slow = client()
        .post(gw.url("/v1/responses"))
        .header("x-mock-header-delay-ms", "700")
        .json(&json!({"model": MODEL, "input": "hi"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        slow.status(),
        200,
        "slower than first_byte_timeout, within request_timeout"
    );
    let started = std::time::Instant::now();
    let res = client()
        .post(gw.url("/v1/responses"))
        .header("x-mock-header-delay-ms", "3000")
        .json(&json!({"model": MODEL, "input": "hi"}))
        .send()
        .await
        .unwrap();
    assert_openai_error(res, 504).await;
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(1400) && waited < Duration::from_millis(2900),
        "{waited:?}"
    );
}

#[tokio::test]
async fn mid_stream_upstream_failure_ends_with_an_error_event() {
    let (gw, _mock) = gateway_with_mock("").await;
    let res = client()
        .post(gw.url("/v1/responses"))
        .header("x-mock-tokens", "20")
        .header("x-mock-drop-after", "6")
        .json(&json!({"model": MODEL, "input": "hi", "stream": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let bytes = res.bytes().await.unwrap();
    let events = sse_json(&bytes);
    assert_eq!(events.len(), 7, "6 relayed events and one error event");
    let last = events.last().unwrap();
    assert_eq!(last["type"], "error");
    assert!(
        last["code"]
            .as_str()
            .unwrap()
            .starts_with("upstream_stream")
    );
    assert_eq!(last["sequence_number"], 6);
}

#[tokio::test]
async fn models_health_and_readiness() {
    let (gw, _mock) = gateway_with_mock("").await;
    let c = client();
    let models: Value = c
        .get(gw.url("/v1/models"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(models["object"], "list");
    let ids: Vec<&str> = models["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&MODEL) && ids.contains(&"gpt-4o"), "{ids:?}");
    assert!(
        models["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["object"] == "model")
    );
    let one: Value = c
        .get(gw.url("/v1/models/gpt-4o"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(one["id"], "gpt-4o");
    let missing = c.get(gw.url("/v1/models/gpt-99")).send().await.unwrap();
    let body = assert_openai_error(missing, 404).await;
    assert_eq!(body["error"]["code"], "model_not_found");
    let health = c.get(gw.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let ready: Value = c
        .get(gw.url("/readyz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["ready"], true);
    assert_eq!(ready["regions"][0]["name"], "r0");
    assert!(!ready.to_string().contains(UPSTREAM_KEY));
}
