//! The mock's own surface: `/_mock` routes and shutdown, the binary, connection counters.

use super::*;
use std::time::{Duration, Instant};

#[tokio::test]
async fn introspection_routes() {
    let mock = start().await;
    post(&mock, json!({"model": "qwen", "input": "x"}))
        .send()
        .await
        .unwrap();
    let base = mock.base_url();
    let list: Value = client()
        .get(format!("{base}/_mock/requests"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["status"], 200);
    assert!(
        list[0]["response_body"]
            .as_str()
            .unwrap()
            .contains("You said: x.")
    );
    let stats: Value = client()
        .get(format!("{base}/_mock/stats"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stats["requests"], 1);
    client()
        .delete(format!("{base}/_mock/requests"))
        .send()
        .await
        .unwrap();
    assert!(mock.requests().is_empty());
    mock.shutdown().await;
    assert!(
        client()
            .get(format!("{base}/_mock/stats"))
            .send()
            .await
            .is_err()
    );
}

#[tokio::test]
async fn binary_prints_its_address_and_serves() {
    use tokio::io::AsyncBufReadExt;
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_mock-model-studio"))
        .args(["--keys", "a,b", "--no-split"])
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut line = String::new();
    tokio::io::BufReader::new(stdout)
        .read_line(&mut line)
        .await
        .unwrap();
    let url = line
        .trim()
        .strip_prefix("mock-model-studio listening on ")
        .unwrap()
        .to_string();
    assert!(url.starts_with("http://127.0.0.1:"));
    let resp = client()
        .post(format!("{url}/responses"))
        .bearer_auth("b")
        .json(&json!({"model": "qwen", "input": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    child.start_kill().unwrap();
    child.wait().await.unwrap();
}

async fn wait_for(
    mock: &MockServer,
    what: &str,
    cond: impl Fn(&mock_model_studio::MockStats) -> bool,
) {
    let start = Instant::now();
    while !cond(&mock.stats()) {
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "{what}: {:?}",
            mock.stats()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn open_connections_and_in_flight_requests_are_counted() {
    let mock = start().await;
    let stats = mock.stats();
    assert_eq!((stats.open_connections, stats.in_flight_requests), (0, 0));
    // A keep-alive connection stays open after its request; the request is over.
    let c = client();
    c.post(format!("{}/responses", mock.base_url()))
        .bearer_auth(KEY)
        .json(&json!({"model": "qwen", "input": "x"}))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    wait_for(&mock, "request over", |s| s.in_flight_requests == 0).await;
    assert_eq!(mock.stats().open_connections, 1);
    drop(c);
    wait_for(&mock, "connection closed", |s| s.open_connections == 0).await;

    // A request hanging before its head is in flight until the client goes away.
    let url = format!("{}/responses", mock.base_url());
    let hanging = tokio::spawn(async move {
        client()
            .post(url)
            .bearer_auth(KEY)
            .header("x-mock-header-delay-ms", "60000")
            .json(&json!({"model": "qwen", "input": "x"}))
            .send()
            .await
    });
    wait_for(&mock, "hanging request counted", |s| {
        s.in_flight_requests == 1 && s.open_connections == 1
    })
    .await;
    hanging.abort();
    wait_for(&mock, "hang-up noticed", |s| {
        s.in_flight_requests == 0 && s.open_connections == 0
    })
    .await;

    // A stream is in flight while its body is being written.
    let res = post(
        &mock,
        json!({"model": "qwen", "input": "x", "stream": true}),
    )
    .header("x-mock-gate", "g")
    .send()
    .await
    .unwrap();
    assert_eq!(mock.stats().in_flight_requests, 1);
    drop(res);
    wait_for(&mock, "stream dropped", |s| {
        s.in_flight_requests == 0 && s.open_streams == 0
    })
    .await;
    // Introspection is not counted.
    let _ = client()
        .get(format!("{}/_mock/stats", mock.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(mock.stats().in_flight_requests, 0);
}
