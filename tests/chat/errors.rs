//! Errors: bad requests refused, upstream errors as OpenAI errors, failures mid-stream and before.

use super::*;

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
