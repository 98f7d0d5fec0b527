//! End-to-end tests of the mock over real HTTP.
//!
//! The server, request and SSE-parsing helpers are here; the tests are in modules by subject.

mod answers;
mod errors;
mod introspection;
mod malformed;
mod streaming;

use mock_model_studio::{MockConfig, MockServer};
use serde_json::{Value, json};

const KEY: &str = "sk-test";

async fn start() -> MockServer {
    MockServer::start(MockConfig::default()).await.unwrap()
}

fn client() -> reqwest::Client {
    reqwest::Client::new()
}

fn post(mock: &MockServer, body: Value) -> reqwest::RequestBuilder {
    client()
        .post(format!("{}/compatible-mode/v1/responses", mock.base_url()))
        .bearer_auth(KEY)
        .json(&body)
}

/// Parses SSE per the spec: comments skipped, `data:` with or without a space.
fn sse(bytes: &[u8]) -> Vec<(String, String)> {
    let text = String::from_utf8(bytes.to_vec()).expect("stream is valid UTF-8 as a whole");
    text.split("\n\n")
        .filter(|b| !b.trim().is_empty())
        .map(|block| {
            let (mut event, mut data) = (String::new(), String::new());
            for line in block.lines().filter(|l| !l.starts_with(':')) {
                let (field, value) = line.split_once(':').unwrap_or((line, ""));
                let value = value.strip_prefix(' ').unwrap_or(value);
                match field {
                    "event" => event = value.to_string(),
                    "data" => data.push_str(value),
                    _ => {}
                }
            }
            (event, data)
        })
        .collect()
}

fn json_events(bytes: &[u8]) -> Vec<Value> {
    sse(bytes)
        .into_iter()
        .map(|(event, data)| {
            let v: Value = serde_json::from_str(&data).unwrap();
            assert_eq!(v["type"], event.as_str(), "event: line matches JSON type");
            v
        })
        .collect()
}

fn kinds(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_string())
        .collect()
}

async fn stream_events(mock: &MockServer, body: Value, headers: &[(&str, &str)]) -> Vec<Value> {
    let mut req = post(mock, body);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    json_events(&resp.bytes().await.unwrap())
}
