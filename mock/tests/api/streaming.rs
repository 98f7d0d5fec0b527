//! The SSE stream: sequence and numbering, framing quirks, split writes, gates, drops, hang-ups.

use super::*;
use futures_util::StreamExt;
use std::time::{Duration, Instant};

/// Reads a body until it holds `n` complete SSE events.
async fn read_events<S>(stream: &mut S, buf: &mut Vec<u8>, n: usize)
where
    S: futures_util::Stream<Item = reqwest::Result<bytes::Bytes>> + Unpin,
{
    while buf.windows(2).filter(|w| w == b"\n\n").count() < n {
        let chunk = tokio::time::timeout(Duration::from_secs(5), stream.next())
            .await
            .expect("event in time")
            .expect("stream still open")
            .unwrap();
        buf.extend_from_slice(&chunk);
    }
}

#[tokio::test]
async fn streaming_sequence_and_numbers() {
    let mock = start().await;
    let events = stream_events(
        &mock,
        json!({"model": "qwen3-max", "input": "hi", "stream": true}),
        &[("x-mock-tokens", "5")],
    )
    .await;
    let mut expected = vec![
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ];
    expected.extend(["response.output_text.delta"; 5]);
    expected.extend([
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]);
    assert_eq!(kinds(&events), expected);
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e["sequence_number"], i);
    }
    assert_eq!(events[0]["response"]["status"], "queued");
    assert_eq!(events[0]["response"]["model"], "");
    assert_eq!(events[1]["response"]["status"], "in_progress");
    let text: String = events[4..9]
        .iter()
        .map(|e| e["delta"].as_str().unwrap())
        .collect();
    assert_eq!(text, "token トークン qwen テスト stream ");
    assert_eq!(events[4]["logprobs"], json!([]));
    assert_eq!(events[9]["text"], text);
    let done = &events[12]["response"];
    assert_eq!(done["status"], "completed");
    assert_eq!(done["model"], "qwen3-max");
    assert_eq!(done["output"][0]["content"][0]["text"], text);
    assert_eq!(done["usage"]["output_tokens"], 5);

    let rec = &mock.requests()[0];
    assert!(rec.finished && !rec.cancelled);
    assert_eq!(mock.stats().completed_streams, 1);
    assert_eq!(mock.stats().open_streams, 0);
}

#[tokio::test]
async fn quirks_framing_and_plain_framing() {
    let mock = start().await;
    let body = post(
        &mock,
        json!({"model": "qwen", "input": "hi", "stream": true}),
    )
    .send()
    .await
    .unwrap()
    .bytes()
    .await
    .unwrap();
    let text = String::from_utf8(body.to_vec()).unwrap();
    assert!(
        text.starts_with(":HTTP_STATUS/200\nid:0\nevent:response.created\ndata:{"),
        "{text}"
    );
    assert!(text.contains("\nid:1\nevent:response.in_progress\ndata: {"));
    assert_eq!(mock.requests()[0].response_body, body.to_vec());

    let plain = MockServer::start(MockConfig {
        quirks: false,
        ..MockConfig::default()
    })
    .await
    .unwrap();
    let body = post(
        &plain,
        json!({"model": "qwen", "input": "hi", "stream": true}),
    )
    .send()
    .await
    .unwrap()
    .text()
    .await
    .unwrap();
    assert!(body.starts_with("event: response.created\ndata: {"));
    assert!(
        body.lines()
            .all(|l| !l.starts_with("id:") && !l.starts_with(':'))
    );
}

#[tokio::test]
async fn split_writes_reach_the_client_as_separate_chunks() {
    let mock = start().await;
    let resp = post(
        &mock,
        json!({"model": "qwen", "input": "こんにちは", "stream": true}),
    )
    .send()
    .await
    .unwrap();
    let chunks: Vec<bytes::Bytes> = resp
        .bytes_stream()
        .map(|c| c.unwrap())
        .collect::<Vec<_>>()
        .await;
    let whole = chunks.concat();
    let events = json_events(&whole).len();
    assert!(
        chunks.len() >= 2 * events,
        "{} chunks for {events} events",
        chunks.len()
    );
    assert!(
        chunks.iter().any(|c| std::str::from_utf8(c).is_err()),
        "some chunk ends inside a character"
    );

    let unsplit = MockServer::start(MockConfig {
        split_writes: false,
        ..MockConfig::default()
    })
    .await
    .unwrap();
    let body = post(
        &unsplit,
        json!({"model": "qwen", "input": "hi", "stream": true}),
    )
    .send()
    .await
    .unwrap()
    .bytes()
    .await
    .unwrap();
    assert!(!json_events(&body).is_empty());
}

#[tokio::test]
async fn gate_holds_each_event_until_released() {
    let mock = start().await;
    let resp = post(
        &mock,
        json!({"model": "qwen", "input": "hi", "stream": true}),
    )
    .header("x-mock-gate", "g")
    .send()
    .await
    .unwrap();
    let mut stream = resp.bytes_stream();
    let mut buf = Vec::new();
    read_events(&mut stream, &mut buf, 1).await;
    assert!(
        tokio::time::timeout(Duration::from_millis(150), stream.next())
            .await
            .is_err(),
        "nothing passes a closed gate"
    );
    mock.release("g");
    read_events(&mut stream, &mut buf, 2).await;
    // The HTTP route releases too.
    let status = client()
        .post(format!("{}/_mock/gates/g/release", mock.base_url()))
        .send()
        .await
        .unwrap()
        .status();
    assert!(status.is_success());
    read_events(&mut stream, &mut buf, 3).await;
    assert_eq!(kinds(&json_events(&buf))[2], "response.output_item.added");
    for _ in 0..100 {
        mock.release("g");
    }
    while let Some(chunk) = stream.next().await {
        buf.extend_from_slice(&chunk.unwrap());
    }
    assert_eq!(
        kinds(&json_events(&buf)).last().unwrap(),
        "response.completed"
    );
}

#[tokio::test]
async fn drop_after_aborts_the_connection() {
    let mock = start().await;
    let resp = post(
        &mock,
        json!({"model": "qwen", "input": "hi", "stream": true}),
    )
    .header("x-mock-drop-after", "3")
    .send()
    .await
    .unwrap();
    assert_eq!(resp.status(), 200);
    let mut stream = resp.bytes_stream();
    let mut buf = Vec::new();
    let mut failed = false;
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(c) => buf.extend_from_slice(&c),
            Err(_) => {
                failed = true;
                break;
            }
        }
    }
    assert!(failed, "the body ends in an error, not cleanly");
    assert_eq!(json_events(&buf).len(), 3);
    let rec = &mock.requests()[0];
    assert!(!rec.finished && !rec.cancelled);
    assert_eq!(mock.stats().open_streams, 0);

    for stream in [true, false] {
        let err = post(
            &mock,
            json!({"model": "qwen", "input": "hi", "stream": stream}),
        )
        .header("x-mock-drop-after", "0")
        .send()
        .await;
        assert!(err.is_err(), "no response head at all");
    }
    assert_eq!(mock.requests()[1].status, 0);
}

/// Drops the client after `events` events and expects the mock to notice within 1 s, even
/// though the mock itself has nothing to write for much longer.
async fn cancel_after(mock: &MockServer, headers: &[(&str, &str)], events: usize) {
    let before = mock.stats().cancelled_streams;
    let mut req = post(
        mock,
        json!({"model": "qwen", "input": "hi", "stream": true}),
    );
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let mut stream = req.send().await.unwrap().bytes_stream();
    let mut buf = Vec::new();
    read_events(&mut stream, &mut buf, 1).await;
    for n in 2..=events {
        mock.release("hold");
        read_events(&mut stream, &mut buf, n).await;
    }
    assert_eq!(mock.stats().open_streams, 1);
    drop(stream);
    let start = Instant::now();
    while mock.stats().cancelled_streams == before {
        assert!(
            start.elapsed() < Duration::from_secs(1),
            "cancellation seen within 1 s"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(mock.stats().open_streams, 0);
    let rec = mock.requests().pop().unwrap();
    assert!(rec.cancelled && !rec.finished);
    assert!(rec.response_body.starts_with(&buf[..]));
}

#[tokio::test]
async fn client_going_away_is_noticed_while_the_mock_waits() {
    let mock = start().await;
    // Waiting on a gate that is never opened again.
    cancel_after(&mock, &[("x-mock-gate", "hold")], 2).await;
    // Sleeping far longer than the test allows.
    cancel_after(&mock, &[("x-mock-delay-ms", "60000")], 1).await;
    let stats = mock.stats();
    assert_eq!((stats.cancelled_streams, stats.completed_streams), (2, 0));
}
