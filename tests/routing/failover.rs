//! When a region fails over and when it must not: 5xx, refusals, resets, hangs, 4xx, bytes sent.

use super::*;
use std::time::{Duration, Instant};

/// A port nothing listens on: connections are refused.
async fn closed_port_url() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}")
}

#[tokio::test]
async fn a_5xx_region_fails_over_for_plain_and_streaming_requests() {
    let (gw, r0, r1) = two_regions("").await;
    r0.set_default_header("x-mock-status", "503");
    let res = ask(&gw, false).await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["status"], "completed");
    let res = ask(&gw, true).await;
    assert_eq!(res.status(), 200);
    let bytes = res.bytes().await.unwrap();
    // The client got r1's stream byte for byte, nothing of r0's 503.
    let streamed = r1
        .requests()
        .into_iter()
        .find(|r| r.body.as_ref().is_some_and(|b| b["stream"] == true))
        .unwrap();
    assert_eq!(&bytes[..], &streamed.response_body[..]);
    assert_eq!(served(&r0), 2);
    assert_eq!(served(&r1), 2);
}

#[tokio::test]
async fn refused_connections_and_resets_before_the_head_fail_over() {
    let r1 = start_mock().await;
    let gw = start_gateway(&fast(&[closed_port_url().await, r1.base_url()], "")).await;
    assert_eq!(ask(&gw, false).await.status(), 200);
    assert_eq!(ask(&gw, true).await.status(), 200);

    let (gw, r0, r1) = two_regions("").await;
    r0.set_default_header("x-mock-drop-after", "0");
    let res = ask(&gw, true).await;
    assert_eq!(res.status(), 200);
    assert!(String::from_utf8_lossy(&res.bytes().await.unwrap()).contains("response.completed"));
    assert_eq!(served(&r1), 1);
}

#[tokio::test]
async fn a_region_hanging_before_its_head_is_left_after_first_byte_timeout() {
    let (gw, r0, r1) = two_regions("").await;
    r0.set_default_header("x-mock-header-delay-ms", "10000");
    let started = Instant::now();
    // A stream's head is due at once (a non-streaming one only with the whole answer).
    let res = ask(&gw, true).await;
    assert_eq!(res.status(), 200);
    let took = started.elapsed();
    assert!(took < Duration::from_secs(3), "{took:?}");
    assert!(took >= Duration::from_millis(400), "{took:?}");
    assert_eq!(served(&r1), 1);
}

/// A non-streaming answer's head comes when the answer is done: waiting for it is bounded
/// by request_timeout, and neither a slow answer nor a timeout sends it to another region
/// (which would generate and bill it again) or counts against the breaker.
#[tokio::test]
async fn a_slow_non_streaming_answer_is_waited_for_sent_once_and_trips_no_breaker() {
    let r0 = start_mock().await;
    let r1 = start_mock().await;
    let toml = fast(&[r0.base_url(), r1.base_url()], "")
        .replace("request_timeout = \"10s\"", "request_timeout = \"2s\"");
    let gw = start_gateway(&toml).await;
    r0.set_default_header("x-mock-header-delay-ms", "900");
    // Three slow answers at once (the breaker threshold is 2), each past first_byte_timeout.
    let slow = futures_util::future::join_all((0..3).map(|_| ask(&gw, false))).await;
    for res in slow {
        assert_eq!(res.status(), 200);
    }
    assert_eq!(served(&r0), 3);
    assert_eq!(served(&r1), 0, "a slow answer was generated twice");
    assert_eq!(
        readyz(&gw).await["regions"][0]["breaker"]["state"],
        "closed"
    );
    // A fourth client is served by the preferred region as usual.
    r0.set_default_header("x-mock-header-delay-ms", "0");
    assert_eq!(ask(&gw, false).await.status(), 200);
    assert_eq!(served(&r0), 4);
    // Past request_timeout: a 504, still sent once, still no breaker failure.
    r0.set_default_header("x-mock-header-delay-ms", "5000");
    for _ in 0..3 {
        let res = ask(&gw, false).await;
        assert_eq!(res.status(), 504);
    }
    assert_eq!(served(&r1), 0);
    assert_eq!(
        readyz(&gw).await["regions"][0]["breaker"]["state"],
        "closed"
    );
}

#[tokio::test]
async fn a_rate_limit_inside_a_200_stream_fails_over_before_any_byte_reaches_the_client() {
    let (gw, r0, r1) = two_regions("").await;
    r0.set_default_header("x-mock-fail", "rate_limit");
    let res = ask(&gw, true).await;
    assert_eq!(res.status(), 200);
    let bytes = res.bytes().await.unwrap();
    assert_eq!(&bytes[..], &r1.requests()[0].response_body[..]);
    assert_eq!(served(&r0), 1);
    // Plain requests too (the failure is in the 200 body).
    r0.clear();
    assert_eq!(ask(&gw, false).await.status(), 200);
    assert_eq!(served(&r1), 2);
}

#[tokio::test]
async fn client_errors_and_moderation_never_fail_over() {
    let (gw, r0, r1) = two_regions("").await;
    r0.set_default_header("x-mock-status", "400");
    assert_eq!(ask(&gw, false).await.status(), 400);
    r0.clear_default_headers();
    r0.set_default_header("x-mock-fail", "moderation");
    let res = ask(&gw, false).await;
    assert_eq!(res.status(), 400);
    assert!(res.text().await.unwrap().contains("DataInspectionFailed"));
    let res = ask(&gw, true).await;
    assert!(
        String::from_utf8_lossy(&res.bytes().await.unwrap()).contains("data_inspection_failed")
    );
    assert_eq!(
        served(&r1),
        0,
        "another region gives the same verdict: never asked"
    );
}

#[tokio::test]
async fn no_failover_once_bytes_reached_the_client() {
    let (gw, r0, r1) = two_regions("").await;
    r0.set_default_header("x-mock-tokens", "20");
    r0.set_default_header("x-mock-drop-after", "8");
    let res = ask(&gw, true).await;
    assert_eq!(res.status(), 200);
    let events = sse_json(&res.bytes().await.unwrap());
    let last = events.last().unwrap();
    assert_eq!(last["type"], "error");
    assert_eq!(last["code"], "upstream_stream_error");
    assert!(
        events
            .iter()
            .any(|e| e["type"] == "response.output_text.delta")
    );
    assert_eq!(served(&r1), 0);
}

#[tokio::test]
async fn every_region_down_gives_a_clear_error_within_the_bounds() {
    let (gw, r0, r1) = two_regions("").await;
    r0.set_default_header("x-mock-header-delay-ms", "10000");
    r1.set_default_header("x-mock-header-delay-ms", "10000");
    let started = Instant::now();
    let res = ask(&gw, true).await;
    assert_eq!(res.status(), 504);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "upstream_timeout");
    assert!(started.elapsed() < Duration::from_secs(3));

    let (gw, r0, r1) = two_regions("").await;
    r0.set_default_header("x-mock-status", "503");
    r1.set_default_header("x-mock-status", "502");
    // /v1/responses relays the last region's own answer...
    assert_eq!(ask(&gw, false).await.status(), 502);
    // ...and chat turns it into an OpenAI error.
    let res = client()
        .post(gw.url("/v1/chat/completions"))
        .json(&json!({"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 502);
    let body: Value = res.json().await.unwrap();
    assert!(body["error"]["message"].is_string());
    // Both breakers open now: the gateway says so without asking anyone.
    for _ in 0..2 {
        ask(&gw, false).await;
    }
    let res = ask(&gw, false).await;
    assert_eq!(res.status(), 503);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "no_upstream_available");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("circuit open")
    );
}

#[tokio::test]
async fn chat_completions_fail_over_too() {
    let (gw, r0, r1) = two_regions("").await;
    r0.set_default_header("x-mock-status", "500");
    let res = client()
        .post(gw.url("/v1/chat/completions"))
        .json(&json!({"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "stream": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let text = res.text().await.unwrap();
    assert!(text.trim_end().ends_with("data: [DONE]"), "{text}");
    assert_eq!(served(&r1), 1);
}

/// A 503 whose body never finishes must not hold the request until `request_timeout`: the
/// error body gets `first_byte_timeout` (400 ms here), then the next region answers.
#[tokio::test]
async fn an_error_body_that_stalls_fails_over_within_first_byte_timeout() {
    let (gw, r0, r1) = two_regions("").await;
    r0.set_default_header("x-mock-status", "503");
    r0.set_default_header("x-mock-gate", "never-released");
    for stream in [false, true] {
        let started = Instant::now();
        let res = ask(&gw, stream).await;
        assert_eq!(res.status(), 200, "stream {stream}");
        assert!(!res.bytes().await.unwrap().is_empty());
        let took = started.elapsed();
        if !stream {
            assert!(took >= Duration::from_millis(350), "{took:?}");
        }
        assert!(took < Duration::from_secs(3), "stream {stream}: {took:?}");
    }
    assert_eq!(served(&r1), 2);
}
