//! `/v1/chat/completions` end to end: gateway + mock Model Studio, asserting on what an
//! OpenAI Chat Completions client receives.
//!
//! The request and stream-reading helpers are here; the tests are in modules by subject.

#[path = "../common/mod.rs"]
mod common;

mod errors;
mod finishing;
mod tools;
mod translation;

use common::*;
use serde_json::{Value, json};

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
