//! End-to-end tests of the mock over real HTTP.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
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
async fn non_streaming_response_has_the_documented_shape() {
    let mock = start().await;
    let resp = post(
        &mock,
        json!({"model": "qwen3-max-2026-01-23", "input": "こんにちは"}),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/json");
    let raw = resp.text().await.unwrap();
    let body: Value = serde_json::from_str(&raw).unwrap();
    let keys: Vec<&String> = body.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "id",
            "created_at",
            "model",
            "object",
            "status",
            "output",
            "usage"
        ]
    );
    assert_eq!(body["id"].as_str().unwrap().len(), 36);
    assert!(raw.contains(r#""created_at":"#) && body["created_at"].is_f64());
    assert_eq!(body["model"], "qwen3-max-2026-01-23");
    assert_eq!(body["status"], "completed");
    let msg = &body["output"][0];
    assert!(msg["id"].as_str().unwrap().starts_with("msg_"));
    assert_eq!(msg["type"], "message");
    assert_eq!(msg["role"], "assistant");
    assert_eq!(
        msg["content"][0],
        json!({"type": "output_text", "text": "こんにちは!私は Qwen です。You said: こんにちは.", "annotations": []})
    );
    let usage = &body["usage"];
    let total = usage["input_tokens"].as_u64().unwrap() + usage["output_tokens"].as_u64().unwrap();
    assert_eq!(usage["total_tokens"], total);
    assert_eq!(usage["input_tokens_details"]["cached_tokens"], 0);
    assert_eq!(usage["output_tokens_details"]["reasoning_tokens"], 0);

    let recorded = mock.requests();
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0].method, "POST");
    assert_eq!(recorded[0].path, "/compatible-mode/v1/responses");
    assert_eq!(recorded[0].status, 200);
    assert_eq!(recorded[0].response_body, raw.as_bytes());
    assert!(recorded[0].finished && !recorded[0].cancelled);
    assert_eq!(recorded[0].body.as_ref().unwrap()["input"], "こんにちは");
    assert_eq!(recorded[0].header("authorization"), Some("Bearer sk-test"));
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

#[tokio::test]
async fn previous_response_id_remembers_the_conversation() {
    let mock = start().await;
    let first: Value = post(
        &mock,
        json!({"model": "qwen", "input": "私の名前は田中です。"}),
    )
    .send()
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let id = first["id"].as_str().unwrap();
    let second: Value = post(
        &mock,
        json!({"model": "qwen", "input": "私の名前を覚えていますか?", "previous_response_id": id}),
    )
    .send()
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(
        second["output"][0]["content"][0]["text"],
        "こんにちは!私は Qwen です。You said: 私の名前を覚えていますか?. Earlier you said: 私の名前は田中です。."
    );
    assert!(
        second["usage"]["input_tokens_details"]["cached_tokens"]
            .as_u64()
            .unwrap()
            > 0
    );
    assert!(second["usage"]["input_tokens"].as_u64() > first["usage"]["input_tokens"].as_u64());

    let base = format!(
        "{}/api/v2/apps/protocols/compatible-mode/v1/responses",
        mock.base_url()
    );
    let got: Value = client()
        .get(format!("{base}/{id}"))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(got, first);
    let items: Value = client()
        .get(format!("{base}/{id}/input_items"))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(items["object"], "list");
    assert_eq!(
        items["data"][0]["content"][0]["text"],
        "私の名前は田中です。"
    );
    assert_eq!(items["first_id"], items["data"][0]["id"]);
    assert_eq!(items["has_more"], false);
    let deleted: Value = client()
        .delete(format!("{base}/{id}"))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        deleted,
        json!({"id": id, "object": "response.deleted", "deleted": true})
    );
    let gone = client()
        .get(format!("{base}/{id}"))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), 404);

    let resp = post(
        &mock,
        json!({"model": "qwen", "input": "x", "previous_response_id": "nope"}),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(resp.status(), 400);
    let err: Value = resp.json().await.unwrap();
    assert_eq!(err["error"]["code"], "invalid_parameter_error");
    assert_eq!(err["error"]["param"], "previous_response_id");
    assert_eq!(
        err["error"]["message"],
        "Previous response with id 'nope' not found."
    );
    assert_eq!(err["error"]["type"], "invalid_request_error");
    assert!(err["request_id"].is_string());
}

fn weather_tools() -> Value {
    json!([{"type": "function", "name": "get_weather", "description": "", "parameters": {
        "type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer"}}}}])
}

#[tokio::test]
async fn function_calls_and_their_results() {
    let mock = start().await;
    let body: Value = post(
        &mock,
        json!({"model": "qwen", "input": "weather?", "tools": weather_tools()}),
    )
    .send()
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let call = &body["output"][0];
    assert_eq!(body["output"].as_array().unwrap().len(), 1);
    assert_eq!(call["type"], "function_call");
    assert_eq!(call["status"], "completed");
    assert_eq!(call["name"], "get_weather");
    assert_eq!(call["arguments"], r#"{"city":"Tokyo","days":1}"#);
    assert!(call["id"].as_str().unwrap().starts_with("fc_"));
    assert!(call["call_id"].as_str().unwrap().starts_with("call_"));

    // Answer via previous_response_id: the call is found in the history.
    let reply: Value = post(
        &mock,
        json!({"model": "qwen", "tools": weather_tools(), "previous_response_id": body["id"],
               "input": [{"type": "function_call_output", "call_id": call["call_id"], "output": "晴れ"}]}),
    )
    .send()
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(
        reply["output"][0]["content"][0]["text"],
        "Tool get_weather returned: 晴れ"
    );

    // Orphan outputs are refused.
    let resp = post(
        &mock,
        json!({"model": "qwen", "input": [{"type": "function_call_output", "call_id": "zz", "output": "x"}]}),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(resp.status(), 400);

    // Streaming, two parallel calls.
    let events = stream_events(
        &mock,
        json!({"model": "qwen", "input": "weather?", "tools": weather_tools(), "stream": true}),
        &[("x-mock-tool-calls", "2")],
    )
    .await;
    let k = kinds(&events);
    assert_eq!(
        k[2..8],
        [
            "response.output_item.added",
            "response.function_call_arguments.delta",
            "response.function_call_arguments.delta",
            "response.function_call_arguments.done",
            "response.output_item.done",
            "response.output_item.added",
        ]
    );
    assert_eq!(events[2]["item"]["arguments"], "");
    let joined = format!(
        "{}{}",
        events[3]["delta"].as_str().unwrap(),
        events[4]["delta"].as_str().unwrap()
    );
    assert_eq!(joined, events[5]["arguments"].as_str().unwrap());
    let done = &events.last().unwrap()["response"];
    assert_eq!(done["output"].as_array().unwrap().len(), 2);
    assert_ne!(done["output"][0]["call_id"], done["output"][1]["call_id"]);
    assert_eq!(events[7]["output_index"], 1);
}

#[tokio::test]
async fn thinking_and_web_search() {
    let mock = start().await;
    let body = json!({"model": "qwen", "input": "Qwen?", "enable_thinking": true,
                      "tools": [{"type": "web_search"}]});
    let resp: Value = post(&mock, body.clone())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let out = resp["output"].as_array().unwrap();
    assert_eq!(out[0]["type"], "reasoning");
    assert_eq!(
        out[0]["summary"][0],
        json!({"type": "summary_text", "text": "Thinking about: Qwen?"})
    );
    assert_eq!(out[1]["type"], "web_search_call");
    assert_eq!(out[1]["action"]["query"], "Qwen?");
    assert_eq!(
        out[1]["action"]["sources"][0]["url"],
        "https://example.com/qwen"
    );
    assert_eq!(
        out[2]["content"][0]["annotations"][0]["type"],
        "url_citation"
    );
    assert_eq!(
        resp["usage"]["x_tools"],
        json!({"web_search": {"count": 1}})
    );
    let reasoning_tokens = resp["usage"]["output_tokens_details"]["reasoning_tokens"]
        .as_u64()
        .unwrap();
    assert_eq!(reasoning_tokens, 6); // "Thinking about: Qwen?" in 4-char deltas

    let mut streamed = body;
    streamed["stream"] = json!(true);
    let events = stream_events(&mock, streamed, &[]).await;
    let k = kinds(&events);
    assert_eq!(k[2], "response.output_item.added");
    assert_eq!(events[2]["item"]["type"], "reasoning");
    let summary: String = events
        .iter()
        .filter(|e| e["type"] == "response.reasoning_summary_text.delta")
        .map(|e| e["delta"].as_str().unwrap())
        .collect();
    assert_eq!(summary, "Thinking about: Qwen?");
    assert!(k.contains(&"response.reasoning_summary_text.done".to_string()));
    assert!(k.contains(&"response.web_search_call.completed".to_string()));
    let done = &events.last().unwrap()["response"];
    assert_eq!(done["usage"]["x_tools"]["web_search"]["count"], 1);
    assert_eq!(done["output"][2]["type"], "message");
}

#[tokio::test]
async fn max_output_tokens_and_content_filter_end_incomplete() {
    let mock = start().await;
    let resp: Value = post(
        &mock,
        json!({"model": "qwen", "input": "x", "max_output_tokens": 16}),
    )
    .header("x-mock-tokens", "50")
    .send()
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(resp["status"], "incomplete");
    assert_eq!(resp["incomplete_details"]["reason"], "max_output_tokens");
    assert_eq!(resp["usage"]["output_tokens"], 16);

    let events = stream_events(
        &mock,
        json!({"model": "qwen", "input": "x", "stream": true}),
        &[("x-mock-incomplete", "content_filter")],
    )
    .await;
    let last = events.last().unwrap();
    assert_eq!(last["type"], "response.incomplete");
    assert_eq!(
        last["response"]["incomplete_details"]["reason"],
        "content_filter"
    );

    let small = post(
        &mock,
        json!({"model": "qwen", "input": "x", "max_output_tokens": 5}),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(small.status(), 400, "Model Studio's minimum is 16");
}

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
