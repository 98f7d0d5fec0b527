//! How answers end: stop sequences, `n` choices merged, and incomplete answers (`length`).

use super::*;
use std::time::Duration;

#[tokio::test]
async fn stop_sequences_cut_the_text_and_cancel_the_upstream() {
    let (gw, mock) = gateway_with_mock("").await;
    let headers = [("x-mock-tokens", "400"), ("x-mock-delay-ms", "5")];
    let body = json!({"model": MODEL, "stop": ["テスト"], "messages": [{"role": "user", "content": "go"}]});
    let plain: Value = chat(&gw, body.clone(), &headers)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        plain["choices"][0]["message"]["content"],
        "token トークン qwen "
    );
    assert_eq!(plain["choices"][0]["finish_reason"], "stop");
    let mut streamed = body;
    streamed["stream"] = json!(true);
    let chunks = chunks(chat(&gw, streamed, &headers).await).await;
    assert_eq!(content_of(&chunks), "token トークン qwen ");
    assert_eq!(finish_reasons(&chunks), [(0, "stop".to_string())]);
    let both_cancelled = eventually(Duration::from_secs(3), || {
        mock.stats().cancelled_streams == 2
    })
    .await;
    assert!(both_cancelled, "upstream not cancelled: {:?}", mock.stats());
}

#[tokio::test]
async fn n_choices_are_merged_with_indexes_and_summed_usage() {
    let (gw, mock) = gateway_with_mock("").await;
    let body = json!({"model": MODEL, "n": 2, "messages": [{"role": "user", "content": "hi"}]});
    let plain: Value = chat(&gw, body.clone(), &[]).await.json().await.unwrap();
    let choices = plain["choices"].as_array().unwrap();
    assert_eq!(choices.len(), 2);
    assert_eq!(choices[0]["index"], 0);
    assert_eq!(choices[1]["index"], 1);
    let one: Value = chat(
        &gw,
        json!({"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}),
        &[],
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(
        plain["usage"]["completion_tokens"].as_u64().unwrap(),
        2 * one["usage"]["completion_tokens"].as_u64().unwrap()
    );
    assert_eq!(mock.requests().len(), 3);
    let mut streamed = body;
    streamed["stream"] = json!(true);
    streamed["stream_options"] = json!({"include_usage": true});
    let chunks = chunks(chat(&gw, streamed, &[]).await).await;
    let mut finishes = finish_reasons(&chunks);
    finishes.sort();
    assert_eq!(finishes, [(0, "stop".to_string()), (1, "stop".to_string())]);
    let ids: std::collections::HashSet<&str> =
        chunks.iter().map(|c| c["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 1, "one id across choices");
    let usage_chunks: Vec<&Value> = chunks.iter().filter(|c| c["usage"].is_object()).collect();
    assert_eq!(usage_chunks.len(), 1);
    assert_eq!(
        usage_chunks[0]["usage"]["completion_tokens"],
        plain["usage"]["completion_tokens"]
    );
}

#[tokio::test]
async fn incomplete_answers_finish_with_length() {
    let (gw, _mock) = gateway_with_mock("").await;
    let body = json!({"model": MODEL, "max_completion_tokens": 20, "messages": [{"role": "user", "content": "long"}]});
    let plain: Value = chat(&gw, body.clone(), &[("x-mock-tokens", "100")])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(plain["choices"][0]["finish_reason"], "length");
    assert_eq!(plain["usage"]["completion_tokens"], 20);
    let mut streamed = body;
    streamed["stream"] = json!(true);
    let chunks = chunks(chat(&gw, streamed, &[("x-mock-tokens", "100")]).await).await;
    assert_eq!(finish_reasons(&chunks), [(0, "length".to_string())]);
}
