//! Error answers: injected statuses and defaults, failures inside a 200, auth, HTML error pages.

use super::*;
use std::time::{Duration, Instant};

#[tokio::test]
async fn status_faults_and_defaults() {
    let mock = start().await;
    let resp = post(&mock, json!({"model": "qwen", "input": "x"}))
        .header("x-mock-status", "429")
        .header("x-mock-retry-after", "7")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 429);
    assert_eq!(resp.headers()["retry-after"], "7");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["code"], "Throttling");
    assert_eq!(
        body["message"],
        "Requests rate limit exceeded, please try again later."
    );
    assert!(body["request_id"].is_string());

    let nested: Value = post(&mock, json!({"model": "qwen", "input": "x"}))
        .header("x-mock-status", "400")
        .header("x-mock-error-style", "nested")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(nested["error"]["code"], "invalid_parameter_error");

    mock.set_default_header("x-mock-status", "503");
    for _ in 0..2 {
        let s = post(&mock, json!({"model": "qwen", "input": "x"}))
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(s, 503);
    }
    let s = post(&mock, json!({"model": "qwen", "input": "x"}))
        .header("x-mock-status", "200")
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(s, 200, "a request's own header wins");
    mock.clear_default_headers();

    // The same through HTTP.
    let url = format!("{}/_mock/defaults", mock.base_url());
    client()
        .post(&url)
        .json(&json!({"x-mock-status": 500}))
        .send()
        .await
        .unwrap();
    let body: Value = post(&mock, json!({"model": "qwen", "input": "x"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["code"], "InternalError");
    client().post(&url).json(&json!({})).send().await.unwrap();
    let s = post(&mock, json!({"model": "qwen", "input": "x"}))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(s, 200);

    let start = Instant::now();
    post(&mock, json!({"model": "qwen", "input": "x"}))
        .header("x-mock-header-delay-ms", "100")
        .send()
        .await
        .unwrap();
    assert!(start.elapsed() >= Duration::from_millis(100));

    let bad = post(&mock, json!({"model": "qwen", "input": "x"}))
        .header("x-mock-tokens", "lots")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
}

#[tokio::test]
async fn failures_inside_200() {
    let mock = start().await;
    let resp = post(&mock, json!({"model": "qwen", "input": "x"}))
        .header("x-mock-fail", "rate_limit")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["status"], "failed");
    assert_eq!(
        body["error"],
        json!({"code": "Throttling", "message": "Requests rate limit exceeded, please try again later."})
    );

    let events = stream_events(
        &mock,
        json!({"model": "qwen", "input": "x", "stream": true}),
        &[("x-mock-fail", "rate_limit")],
    )
    .await;
    assert_eq!(
        kinds(&events),
        [
            "response.created",
            "response.in_progress",
            "response.failed"
        ]
    );
    assert_eq!(events[2]["response"]["status"], "failed");
    assert_eq!(events[2]["response"]["error"]["code"], "Throttling");

    let events = stream_events(
        &mock,
        json!({"model": "qwen", "input": "x", "stream": true}),
        &[("x-mock-fail", "server_error")],
    )
    .await;
    assert_eq!(events[2]["response"]["error"]["code"], "InternalError");

    let events = stream_events(
        &mock,
        json!({"model": "qwen", "input": "x", "stream": true}),
        &[("x-mock-fail", "moderation")],
    )
    .await;
    let last = events.last().unwrap();
    assert_eq!(
        events
            .iter()
            .filter(|e| e["type"] == "response.output_text.delta")
            .count(),
        2
    );
    assert_eq!(
        *last,
        json!({"type": "error", "code": "data_inspection_failed",
               "message": "Input or output data may contain inappropriate content.",
               "param": null, "sequence_number": events.len() - 1})
    );
    let resp = post(&mock, json!({"model": "qwen", "input": "x"}))
        .header("x-mock-fail", "moderation")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["code"], "DataInspectionFailed");
}

#[tokio::test]
async fn auth_and_request_errors() {
    let mock = MockServer::start(MockConfig {
        keys: vec!["k1".into(), "k2".into()],
        ..MockConfig::default()
    })
    .await
    .unwrap();
    let url = format!("{}/responses", mock.base_url());
    let body = json!({"model": "qwen", "input": "x"});
    let missing = client().post(&url).json(&body).send().await.unwrap();
    assert_eq!(missing.status(), 401);
    let err: Value = missing.json().await.unwrap();
    assert_eq!(err["code"], "InvalidApiKey");
    assert_eq!(err["message"], "Invalid API-key provided.");
    let wrong = client()
        .post(&url)
        .bearer_auth("k3")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    let right = client()
        .post(&url)
        .bearer_auth("k2")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(right.status(), 200);

    let invalid = client()
        .post(&url)
        .bearer_auth("k1")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(invalid.status(), 400);
    assert_eq!(
        invalid.json::<Value>().await.unwrap()["code"],
        "InvalidParameter"
    );
    let no_model = client()
        .post(&url)
        .bearer_auth("k1")
        .json(&json!({"input": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(no_model.status(), 400);
    let other = client()
        .post(&url)
        .bearer_auth("k1")
        .json(&json!({"model": "gpt-4o", "input": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 404);
    assert_eq!(
        other.json::<Value>().await.unwrap()["code"],
        "ModelNotFound"
    );
    assert_eq!(mock.stats().requests, 6);
}

#[tokio::test]
async fn html_error_pages() {
    let mock = start().await;
    let resp = post(&mock, json!({"model": "qwen", "input": "x"}))
        .header("x-mock-status", "502")
        .header("x-mock-error-style", "html")
        .header("x-mock-retry-after", "2")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 502);
    assert_eq!(resp.headers()["content-type"], "text/html");
    assert_eq!(resp.headers()["retry-after"], "2");
    let page = resp.text().await.unwrap();
    assert!(
        page.starts_with("<html>") && page.contains("502 Bad Gateway"),
        "{page}"
    );
    let bad = post(&mock, json!({"model": "qwen", "input": "x"}))
        .header("x-mock-error-style", "xml")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
}
