//! `responses.conformance`: Model Studio's float timestamps become OpenAI's integers, and not
//! one other byte of a body or stream changes; off (the default), bytes are the upstream's.

mod common;

use common::*;
use serde_json::{Value, json};

const MODEL: &str = "qwen3-max-2026-01-23";
const ON: &str = "[responses]\nconformance = true\n";

/// What the gateway must send for `upstream` bytes: each `"created_at":<digits>.0` without
/// its `.0` (the mock, like Model Studio, writes whole seconds as floats).
fn expected(upstream: &[u8]) -> String {
    let text = String::from_utf8(upstream.to_vec()).unwrap();
    let key = "\"created_at\":";
    let mut out = String::new();
    let mut rest = text.as_str();
    let mut rewritten = 0;
    while let Some(at) = rest.find(key) {
        let (head, tail) = rest.split_at(at + key.len());
        out.push_str(head);
        let digits = tail.bytes().take_while(u8::is_ascii_digit).count();
        out.push_str(&tail[..digits]);
        rest = &tail[digits..];
        if let Some(after) = rest.strip_prefix(".0") {
            rest = after;
            rewritten += 1;
        }
    }
    out.push_str(rest);
    assert!(rewritten > 0, "the mock wrote no float created_at: {text}");
    out
}

#[tokio::test]
async fn a_plain_answer_gets_an_integer_created_at_and_nothing_else_changes() {
    let (gw, mock) = gateway_with_mock(ON).await;
    let res = client()
        .post(gw.url("/v1/responses"))
        .json(&json!({"model": MODEL, "input": "こんにちは"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let bytes = res.bytes().await.unwrap();
    let recorded = mock.requests()[0].response_body.clone();
    assert!(String::from_utf8_lossy(&recorded).contains(".0,"));
    assert_eq!(
        String::from_utf8(bytes.to_vec()).unwrap(),
        expected(&recorded)
    );
    let v: Value = serde_json::from_slice(&bytes).unwrap();
    assert!(v["created_at"].is_u64(), "{v}");

    // A stored response fetched by id is rewritten the same way.
    let id = v["id"].as_str().unwrap();
    let res = client()
        .get(gw.url(&format!("/v1/responses/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let bytes = res.bytes().await.unwrap();
    let recorded = mock.requests()[1].response_body.clone();
    assert_eq!(
        String::from_utf8(bytes.to_vec()).unwrap(),
        expected(&recorded)
    );
}

#[tokio::test]
async fn a_stream_gets_integer_timestamps_in_its_response_events_only() {
    let (gw, mock) = gateway_with_mock(ON).await;
    let res = client()
        .post(gw.url("/v1/responses"))
        .header("x-mock-tokens", "20")
        .json(&json!({"model": MODEL, "input": "stream", "stream": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let bytes = res.bytes().await.unwrap();
    let recorded = mock.requests()[0].response_body.clone();
    assert_eq!(
        String::from_utf8(bytes.to_vec()).unwrap(),
        expected(&recorded)
    );
    let events = sse_json(&bytes);
    let with_response: Vec<&Value> = events
        .iter()
        .filter(|e| e["response"].is_object())
        .collect();
    assert!(with_response.len() >= 3, "created, in_progress, completed");
    for e in with_response {
        assert!(e["response"]["created_at"].is_u64(), "{e}");
    }
    assert_eq!(events.last().unwrap()["type"], "response.completed");
}

#[tokio::test]
async fn off_by_default_the_floats_stay() {
    let (gw, mock) = gateway_with_mock("").await;
    let res = client()
        .post(gw.url("/v1/responses"))
        .json(&json!({"model": MODEL, "input": "hi"}))
        .send()
        .await
        .unwrap();
    let bytes = res.bytes().await.unwrap();
    assert_eq!(&bytes[..], &mock.requests()[0].response_body[..]);
    let v: Value = serde_json::from_slice(&bytes).unwrap();
    assert!(v["created_at"].is_f64(), "{v}");
}
