//! Upstream connections are reused: after a chat answer's terminal event the gateway reads
//! the rest of the upstream body, so the HTTP/1.1 connection goes back to the pool (with real
//! Model Studio, no new TLS handshake per request); a client that leaves early still closes it.

mod common;

use common::*;
use serde_json::json;
use std::time::Duration;

const MODEL: &str = "qwen3-max-2026-01-23";

/// The mock ends each body 30 ms after its last event, as a real upstream's end of body often
/// comes in a later packet: a gateway that stops reading at `response.completed` drops the
/// connection with the body unfinished.
const TAIL: (&str, &str) = ("x-mock-tail-delay-ms", "30");

/// Waits until the mock has written the whole answer, then a little for the gateway to read
/// its end (the connection goes back to the pool in the background; no state shows that).
async fn answer_written(mock: &mock_model_studio::MockServer) {
    let written = eventually(Duration::from_secs(5), || {
        mock.stats().in_flight_requests == 0
    })
    .await;
    assert!(written, "{:?}", mock.stats());
    tokio::time::sleep(Duration::from_millis(50)).await;
}

#[tokio::test]
async fn sequential_chat_requests_share_one_upstream_connection() {
    let (gw, mock) = gateway_with_mock("").await;
    let http = client();
    for i in 0..6 {
        let stream = i % 2 == 1;
        let res = http
            .post(gw.url("/v1/chat/completions"))
            .header(TAIL.0, TAIL.1)
            .json(&json!({"model": MODEL, "stream": stream,
                "messages": [{"role": "user", "content": format!("turn {i}")}]}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let text = res.text().await.unwrap();
        assert!(
            text.contains(&format!("You said: turn {i}.")) || stream,
            "{text}"
        );
        if stream {
            assert!(text.trim_end().ends_with("data: [DONE]"), "{text}");
        }
        answer_written(&mock).await;
    }
    // Pass-through requests go over the same pooled connection too.
    for _ in 0..2 {
        let res = http
            .post(gw.url("/v1/responses"))
            .header(TAIL.0, TAIL.1)
            .json(&json!({"model": MODEL, "input": "hi", "stream": true}))
            .send()
            .await
            .unwrap();
        res.bytes().await.unwrap();
        answer_written(&mock).await;
    }
    let stats = mock.stats();
    assert_eq!(stats.requests, 8, "{stats:?}");
    assert_eq!(stats.accepted_connections, 1, "{stats:?}");
}

#[tokio::test]
async fn a_client_that_leaves_mid_answer_still_closes_its_upstream_connection() {
    let (gw, mock) = gateway_with_mock("").await;
    let res = client()
        .post(gw.url("/v1/chat/completions"))
        .header("x-mock-tokens", "200")
        .header("x-mock-delay-ms", "20")
        .json(&json!({"model": MODEL, "stream": true,
            "messages": [{"role": "user", "content": "long"}]}))
        .send()
        .await
        .unwrap();
    read_events_then_leave(res, 3).await;
    let cancelled = eventually(Duration::from_secs(5), || {
        mock.stats().cancelled_streams == 1
    })
    .await;
    assert!(
        cancelled,
        "the upstream stream was not cancelled: {:?}",
        mock.stats()
    );
    // The next request needs a connection of its own: the first one was closed.
    let res = client()
        .post(gw.url("/v1/chat/completions"))
        .json(&json!({"model": MODEL, "messages": [{"role": "user", "content": "next"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(mock.stats().accepted_connections, 2, "{:?}", mock.stats());
}
