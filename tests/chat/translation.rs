//! Plain and streamed answers translated both ways: the chunk rules, reasoning, flushing.

use super::*;
use std::time::Duration;

#[tokio::test]
async fn plain_completion_translates_both_ways() {
    let (gw, mock) = gateway_with_mock("").await;
    let res = chat(
        &gw,
        json!({"model": "gpt-4o", "messages": [
            {"role": "system", "content": [{"type": "text", "text": "Be brief."}, {"type": "text", "text": "Be kind."}]},
            {"role": "user", "content": "こんにちは"}
        ], "max_tokens": 5, "temperature": 0.5}),
        &[],
    )
    .await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["object"], "chat.completion");
    assert!(body["id"].as_str().unwrap().starts_with("chatcmpl-"));
    assert!(body["created"].is_u64());
    assert_eq!(body["model"], MODEL);
    let choice = &body["choices"][0];
    assert_eq!(choice["index"], 0);
    assert_eq!(choice["message"]["role"], "assistant");
    assert!(
        choice["message"]["content"]
            .as_str()
            .unwrap()
            .starts_with("こんにちは!私は Qwen です。")
    );
    let usage = &body["usage"];
    assert!(usage["prompt_tokens"].as_u64().unwrap() > 0);
    assert_eq!(
        usage["total_tokens"].as_u64().unwrap(),
        usage["prompt_tokens"].as_u64().unwrap() + usage["completion_tokens"].as_u64().unwrap()
    );
    // What Model Studio received: a streamed, stateless Responses request.
    let sent = mock.requests()[0].body.clone().unwrap();
    assert_eq!(sent["model"], MODEL);
    assert_eq!(sent["stream"], true);
    assert_eq!(sent["store"], false);
    assert_eq!(
        sent["max_output_tokens"], 16,
        "raised to Model Studio's minimum"
    );
    assert_eq!(sent["temperature"], 0.5);
    assert_eq!(sent["input"][0]["role"], "system");
    assert_eq!(sent["input"][0]["content"], "Be brief.\nBe kind.");
    assert_eq!(sent["input"][1]["role"], "user");
}

#[tokio::test]
async fn stream_with_usage_follows_the_chunk_rules() {
    let (gw, _mock) = gateway_with_mock("").await;
    let res = chat(
        &gw,
        json!({"model": MODEL, "stream": true, "stream_options": {"include_usage": true},
               "messages": [{"role": "user", "content": "hi"}]}),
        &[("x-mock-tokens", "30")],
    )
    .await;
    let chunks = chunks(res).await;
    let id = chunks[0]["id"].as_str().unwrap();
    assert!(id.starts_with("chatcmpl-"));
    for c in &chunks {
        assert_eq!(c["object"], "chat.completion.chunk");
        assert_eq!(c["id"], id);
        assert_eq!(c["created"], chunks[0]["created"]);
        assert_eq!(c["model"], MODEL);
    }
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    assert_eq!(finish_reasons(&chunks), [(0, "stop".to_string())]);
    let usage_chunk = chunks.last().unwrap();
    assert_eq!(usage_chunk["choices"], json!([]));
    assert!(usage_chunk["usage"]["completion_tokens"].as_u64().unwrap() >= 30);
    for c in &chunks[..chunks.len() - 1] {
        assert!(
            c.get("usage").is_some_and(Value::is_null),
            "usage: null before the usage chunk: {c}"
        );
        if let Some(delta) = c.pointer("/choices/0/delta") {
            assert!(
                delta.as_object().is_some_and(|d| !d.is_empty())
                    || c["choices"][0]["finish_reason"].is_string(),
                "filler chunk {c}"
            );
        }
    }
    assert_eq!(
        content_of(&chunks).matches("トークン").count(),
        4,
        "30 tokens cycle 8 words"
    );
}

#[tokio::test]
async fn reasoning_arrives_as_reasoning_content() {
    let (gw, _mock) = gateway_with_mock("").await;
    let body = json!({"model": MODEL, "enable_thinking": true, "messages": [{"role": "user", "content": "think"}]});
    let plain: Value = chat(&gw, body.clone(), &[]).await.json().await.unwrap();
    let message = &plain["choices"][0]["message"];
    assert_eq!(message["reasoning_content"], "Thinking about: think");
    assert!(
        message["content"]
            .as_str()
            .unwrap()
            .contains("You said: think")
    );
    assert!(
        plain["usage"]["completion_tokens_details"]["reasoning_tokens"]
            .as_u64()
            .unwrap()
            > 0
    );
    let mut streamed = body;
    streamed["stream"] = json!(true);
    let chunks = chunks(chat(&gw, streamed, &[]).await).await;
    let reasoning: String = chunks
        .iter()
        .filter_map(|c| {
            c.pointer("/choices/0/delta/reasoning_content")
                .and_then(Value::as_str)
        })
        .collect();
    assert_eq!(reasoning, "Thinking about: think");
}

/// Like the pass-through test: the mock sends each event only when the test releases it,
/// and the test releases the next one only after the client went quiet. Recording how much
/// text the client had at each release shows every delta arrived before the next event
/// existed; a buffering translator would show nothing until the end.
#[tokio::test]
async fn each_chunk_is_flushed_before_the_next_event_exists() {
    use futures_util::StreamExt;
    let (gw, mock) = gateway_with_mock("").await;
    let res = chat(
        &gw,
        json!({"model": MODEL, "stream": true, "messages": [{"role": "user", "content": "hi"}]}),
        &[("x-mock-gate", "chat"), ("x-mock-tokens", "5")],
    )
    .await;
    assert_eq!(res.status(), 200);
    let content = |buf: &[u8]| -> String {
        sse_data(buf)
            .iter()
            .filter(|d| *d != "[DONE]")
            .map(|d| serde_json::from_str::<Value>(d).unwrap())
            .filter_map(|c| {
                c.pointer("/choices/0/delta/content")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            })
            .collect()
    };
    let mut stream = res.bytes_stream();
    let mut buf = Vec::new();
    let mut text_at_release = Vec::new();
    loop {
        match tokio::time::timeout(Duration::from_millis(200), stream.next()).await {
            Ok(Some(chunk)) => buf.extend_from_slice(&chunk.unwrap()),
            Ok(None) => break,
            Err(_) => {
                // 13 events: the first needs no release, so 12 releases end the stream.
                assert!(
                    text_at_release.len() < 12,
                    "stream stalled after all events were released"
                );
                text_at_release.push(content(&buf));
                mock.release("chat");
            }
        }
    }
    assert_eq!(content(&buf), "token トークン qwen テスト stream ");
    let mut grew: Vec<&String> = text_at_release.iter().filter(|t| !t.is_empty()).collect();
    grew.dedup();
    assert_eq!(
        grew.len(),
        5,
        "each delta reached the client before the next event: {text_at_release:?}"
    );
}
