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
    // HTTP/1.1 unless a region asks for h2c.
    assert!(mock.requests().iter().all(|r| r.version == "HTTP/1.1"));
}

/// A gateway whose one region speaks h2c (`http2 = "prior_knowledge"`) to a default mock.
async fn gateway_with_h2c_mock() -> (Gateway, mock_model_studio::MockServer) {
    let mock = start_mock().await;
    let toml = config_toml(&[mock.base_url()], "").replace(
        "api_key_env = [\"TEST_KEY_R0\"]\n",
        "api_key_env = [\"TEST_KEY_R0\"]\nhttp2 = \"prior_knowledge\"\n",
    );
    assert!(toml.contains("http2 = "));
    (start_gateway(&toml).await, mock)
}

#[tokio::test]
async fn an_h2c_region_carries_concurrent_streams_over_one_connection() {
    let (gw, mock) = gateway_with_h2c_mock().await;
    // Paced, so that all eight are open upstream at once.
    four_kinds_at_once(&gw, 8).await;
    let recorded = mock.requests();
    assert_eq!(recorded.len(), 8);
    assert!(
        recorded.iter().all(|r| r.version == "HTTP/2.0"),
        "{:?}",
        recorded.iter().map(|r| &r.version).collect::<Vec<_>>()
    );
    // The key still goes only in `authorization`, and no hop-by-hop header made it through.
    assert!(
        recorded
            .iter()
            .all(|r| r.header("authorization") == Some(&*format!("Bearer {UPSTREAM_KEY}")))
    );
    let stats = mock.stats();
    assert_eq!(stats.accepted_connections, 1, "{stats:?}");
    // Chat asks for a stream upstream whether or not its client streams.
    assert_eq!(stats.completed_streams, 6, "{stats:?}");
}

#[tokio::test]
async fn over_http2_a_client_that_leaves_resets_only_its_stream() {
    let (gw, mock) = gateway_with_h2c_mock().await;
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
    // The connection itself stays: the next request rides on it.
    let res = client()
        .post(gw.url("/v1/chat/completions"))
        .json(&json!({"model": MODEL, "messages": [{"role": "user", "content": "next"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let stats = mock.stats();
    assert_eq!(stats.accepted_connections, 1, "{stats:?}");
    assert_eq!(stats.open_connections, 1, "{stats:?}");
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

/// Over HTTP/2 the frames that are already there when the relay reads are joined into one
/// client write (`EventReader::join_ready`); what the client gets is still the upstream's
/// bytes exactly, the mock's writes split inside lines and characters included.
#[tokio::test]
async fn over_h2c_joined_frames_are_still_relayed_byte_for_byte() {
    let (gw, mock) = gateway_with_h2c_mock().await;
    let res = client()
        .post(gw.url("/v1/responses"))
        .header("x-mock-tokens", "300")
        .json(&json!({"model": MODEL, "input": "人工知能について", "stream": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let bytes = res.bytes().await.unwrap();
    let recorded = &mock.requests()[0];
    assert_eq!(recorded.version, "HTTP/2.0");
    assert!(recorded.finished);
    assert_eq!(&bytes[..], &recorded.response_body[..]);
    assert!(String::from_utf8_lossy(&bytes).contains("event:response.completed"));
}
