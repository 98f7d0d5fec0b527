//! Broken bytes: malformed events of each kind, tiny chunked writes, non-streaming body faults.

use super::*;
use futures_util::StreamExt;
use std::time::{Duration, Instant};

#[tokio::test]
async fn malformed_event() {
    let mock = start().await;
    let body = post(
        &mock,
        json!({"model": "qwen", "input": "x", "stream": true}),
    )
    .header("x-mock-malformed-at", "4")
    .send()
    .await
    .unwrap()
    .bytes()
    .await
    .unwrap();
    let events = sse(&body);
    assert!(serde_json::from_str::<Value>(&events[4].1).is_err());
    assert!(serde_json::from_str::<Value>(&events[5].1).is_ok());
}

#[tokio::test]
async fn malformed_kinds() {
    let mock = start().await;
    let body = json!({"model": "qwen", "input": "x", "stream": true});
    let raw = |headers: Vec<(&'static str, &'static str)>| {
        let mut req = post(&mock, body.clone());
        for (k, v) in headers {
            req = req.header(k, v);
        }
        async move { req.send().await.unwrap().bytes().await.unwrap() }
    };
    let normal = sse(&raw(vec![]).await);

    let no_data = sse(&raw(vec![
        ("x-mock-malformed-at", "4"),
        ("x-mock-malformed-kind", "no-data"),
    ])
    .await);
    assert_eq!(no_data.len(), normal.len());
    assert_eq!(no_data[4].0, normal[4].0, "the event line is still there");
    assert_eq!(no_data[4].1, "", "but no data");
    assert!(serde_json::from_str::<Value>(&no_data[5].1).is_ok());

    let unknown = sse(&raw(vec![
        ("x-mock-malformed-at", "4"),
        ("x-mock-malformed-kind", "unknown"),
    ])
    .await);
    assert_eq!(unknown.len(), normal.len() + 1);
    assert_eq!(unknown[4].0, "response.mock_unknown");
    let extra: Value = serde_json::from_str(&unknown[4].1).unwrap();
    assert_eq!(extra["type"], "response.mock_unknown");
    assert_eq!(unknown[5].0, normal[4].0);

    let giant = raw(vec![
        ("x-mock-malformed-at", "4"),
        ("x-mock-malformed-kind", "giant"),
        ("x-mock-pad-bytes", "300000"),
    ])
    .await;
    let events = json_events(&giant);
    assert_eq!(events.len(), normal.len());
    assert_eq!(events[4]["mock_padding"].as_str().unwrap().len(), 300_000);
    assert!(events[5].get("mock_padding").is_none());

    // Invalid UTF-8 inside the first text delta's string; decoded lossily it is JSON.
    let invalid = raw(vec![
        ("x-mock-malformed-at", "4"),
        ("x-mock-malformed-kind", "utf8"),
    ])
    .await;
    assert!(std::str::from_utf8(&invalid).is_err());
    let at = invalid
        .windows(2)
        .position(|w| w == b"\xff\xfe")
        .expect("the invalid bytes");
    assert_eq!(&invalid[at - 9..at], b"\"delta\":\"");
    let lossy = String::from_utf8_lossy(&invalid).into_owned();
    let events = json_events(lossy.as_bytes());
    assert_eq!(kinds(&events), kinds(&json_events(&raw(vec![]).await)));
    assert!(
        events[4]["delta"]
            .as_str()
            .unwrap()
            .starts_with("\u{fffd}\u{fffd}")
    );
}

#[tokio::test]
async fn chunk_bytes_cut_events_into_small_writes() {
    let mock = start().await;
    let started = Instant::now();
    let resp = post(
        &mock,
        json!({"model": "qwen", "input": "x", "stream": true}),
    )
    .header("x-mock-malformed-at", "4")
    .header("x-mock-malformed-kind", "giant")
    .header("x-mock-pad-bytes", "200000")
    .header("x-mock-chunk-bytes", "1000")
    .header("x-mock-chunk-delay-ms", "1")
    .send()
    .await
    .unwrap();
    let chunks: Vec<bytes::Bytes> = resp
        .bytes_stream()
        .map(|c| c.unwrap())
        .collect::<Vec<_>>()
        .await;
    assert!(
        chunks.iter().all(|c| c.len() <= 1000),
        "no write over 1000 bytes"
    );
    assert!(chunks.len() >= 200, "{} chunks", chunks.len());
    // 200 pauses of 1 ms inside the giant event.
    assert!(started.elapsed() >= Duration::from_millis(200));
    let events = json_events(&chunks.concat());
    assert_eq!(events[4]["mock_padding"].as_str().unwrap().len(), 200_000);
}

#[tokio::test]
async fn non_streaming_body_faults() {
    let mock = start().await;
    let body = json!({"model": "qwen", "input": "x"});
    // Cut short, with a Content-Length that matches: the framing is fine, the JSON is not.
    let cut = post(&mock, body.clone())
        .header("x-mock-malformed-at", "0")
        .send()
        .await
        .unwrap();
    assert_eq!(cut.status(), 200);
    let length: usize = cut.headers()["content-length"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let bytes = cut.bytes().await.unwrap();
    assert_eq!(bytes.len(), length);
    assert!(serde_json::from_slice::<Value>(&bytes).is_err());
    let cut_error = post(&mock, body.clone())
        .header("x-mock-malformed-at", "0")
        .header("x-mock-status", "500")
        .send()
        .await
        .unwrap();
    assert_eq!(cut_error.status(), 500);
    assert!(serde_json::from_slice::<Value>(&cut_error.bytes().await.unwrap()).is_err());
    // An error to a streaming request is a complete JSON answer too.
    let cut_stream_error = post(
        &mock,
        json!({"model": "qwen", "input": "x", "stream": true}),
    )
    .header("x-mock-malformed-at", "0")
    .header("x-mock-status", "503")
    .send()
    .await
    .unwrap();
    assert_eq!(cut_stream_error.status(), 503);
    assert!(serde_json::from_slice::<Value>(&cut_stream_error.bytes().await.unwrap()).is_err());

    // The head promises the whole body, half of it comes, then the connection is aborted.
    let dropped = post(&mock, body.clone())
        .header("x-mock-drop-after", "1")
        .send()
        .await
        .unwrap();
    assert_eq!(dropped.status(), 200);
    assert!(dropped.bytes().await.is_err(), "the body ends in an error");
    assert!(!mock.requests().last().unwrap().finished);

    // Half the body, then nothing until the gate opens.
    let gated = post(&mock, body.clone())
        .header("x-mock-gate", "half")
        .send()
        .await
        .unwrap();
    assert_eq!(gated.status(), 200);
    let mut stream = gated.bytes_stream();
    let mut buf = Vec::new();
    buf.extend_from_slice(&stream.next().await.unwrap().unwrap());
    assert!(
        tokio::time::timeout(Duration::from_millis(200), stream.next())
            .await
            .is_err(),
        "the second half waits for the gate"
    );
    mock.release("half");
    while let Some(chunk) = stream.next().await {
        buf.extend_from_slice(&chunk.unwrap());
    }
    let v: Value = serde_json::from_slice(&buf).unwrap();
    assert_eq!(v["status"], "completed");
    assert!(mock.requests().last().unwrap().finished);
}
