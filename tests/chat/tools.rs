//! Function calls (a round trip, parallel calls streamed), structured output and web search.

use super::*;

#[tokio::test]
async fn tool_call_round_trip() {
    let (gw, mock) = gateway_with_mock("").await;
    let tools = json!([{"type": "function", "function": {"name": "get_weather", "description": "Weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]);
    let first: Value = chat(
        &gw,
        json!({"model": MODEL, "tools": tools, "messages": [{"role": "user", "content": "Weather in Tokyo?"}]}),
        &[],
    )
    .await
    .json()
    .await
    .unwrap();
    let choice = &first["choices"][0];
    assert_eq!(choice["finish_reason"], "tool_calls");
    assert!(choice["message"]["content"].is_null());
    let call = &choice["message"]["tool_calls"][0];
    assert_eq!(call["type"], "function");
    assert_eq!(call["function"]["name"], "get_weather");
    let args: Value =
        serde_json::from_str(call["function"]["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(args["city"], "Tokyo");
    let call_id = call["id"].as_str().unwrap();
    assert!(call_id.starts_with("call_"));
    let sent_tools = &mock.requests()[0].body.clone().unwrap()["tools"];
    assert_eq!(sent_tools[0]["type"], "function");
    assert_eq!(sent_tools[0]["name"], "get_weather");

    let second: Value = chat(
        &gw,
        json!({"model": MODEL, "tools": tools, "messages": [
            {"role": "user", "content": "Weather in Tokyo?"},
            {"role": "assistant", "content": "Let me check.", "tool_calls": [call]},
            {"role": "tool", "tool_call_id": call_id, "content": "sunny, 21°C"}
        ]}),
        &[],
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(second["choices"][0]["finish_reason"], "stop");
    assert_eq!(
        second["choices"][0]["message"]["content"],
        "Tool get_weather returned: sunny, 21°C"
    );
    let input = mock.requests()[1].body.clone().unwrap()["input"].clone();
    let kinds: Vec<&str> = input
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["type"].as_str().unwrap_or("message"))
        .collect();
    assert_eq!(
        kinds,
        [
            "message",
            "message",
            "function_call",
            "function_call_output"
        ]
    );
    assert_eq!(
        input[1]["content"], "Let me check.",
        "assistant text kept before its call"
    );
}

#[tokio::test]
async fn parallel_tool_calls_stream_on_distinct_indexes() {
    let (gw, _mock) = gateway_with_mock("").await;
    let tools = json!([
        {"type": "function", "function": {"name": "a", "parameters": {"type": "object", "properties": {"x": {"type": "string"}}}}},
        {"type": "function", "function": {"name": "b", "parameters": {"type": "object", "properties": {"y": {"type": "integer"}}}}}
    ]);
    let res = chat(
        &gw,
        json!({"model": MODEL, "stream": true, "tools": tools, "messages": [{"role": "user", "content": "go"}]}),
        &[("x-mock-tool-calls", "2")],
    )
    .await;
    let chunks = chunks(res).await;
    let mut calls: Vec<(String, String, String)> = vec![Default::default(); 2];
    for c in &chunks {
        for tc in c
            .pointer("/choices/0/delta/tool_calls")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let i = tc["index"].as_u64().unwrap() as usize;
            assert!(i < 2, "index {i}");
            if let Some(id) = tc["id"].as_str() {
                calls[i].0 = id.to_owned();
            }
            if let Some(name) = tc.pointer("/function/name").and_then(Value::as_str) {
                calls[i].1 = name.to_owned();
            }
            if let Some(args) = tc.pointer("/function/arguments").and_then(Value::as_str) {
                calls[i].2.push_str(args);
            }
        }
    }
    assert_eq!(calls[0].1, "a");
    assert_eq!(calls[1].1, "b");
    assert_ne!(calls[0].0, calls[1].0);
    assert_eq!(
        serde_json::from_str::<Value>(&calls[0].2).unwrap(),
        json!({"x": "Tokyo"})
    );
    assert_eq!(
        serde_json::from_str::<Value>(&calls[1].2).unwrap(),
        json!({"y": 1})
    );
    assert_eq!(finish_reasons(&chunks), [(0, "tool_calls".to_string())]);
}

#[tokio::test]
async fn structured_output_and_web_search() {
    let (gw, mock) = gateway_with_mock("").await;
    let schema = json!({"type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
        "required": ["city", "days"], "additionalProperties": false});
    let res: Value = chat(
        &gw,
        json!({"model": MODEL, "messages": [{"role": "user", "content": "plan"}],
               "response_format": {"type": "json_schema", "json_schema": {"name": "trip", "schema": schema, "strict": true}}}),
        &[],
    )
    .await
    .json()
    .await
    .unwrap();
    let content: Value =
        serde_json::from_str(res["choices"][0]["message"]["content"].as_str().unwrap()).unwrap();
    assert_eq!(content, json!({"city": "Tokyo", "days": 1}));
    let sent = mock.requests()[0].body.clone().unwrap();
    assert_eq!(sent["text"]["format"]["type"], "json_schema");
    assert_eq!(sent["text"]["format"]["name"], "trip");
    assert_eq!(sent["text"]["format"]["strict"], true);

    let searched: Value = chat(
        &gw,
        json!({"model": MODEL, "web_search_options": {}, "messages": [{"role": "user", "content": "news"}]}),
        &[],
    )
    .await
    .json()
    .await
    .unwrap();
    let sent = mock.requests()[1].body.clone().unwrap();
    assert!(
        sent["tools"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["type"] == "web_search")
    );
    let message = &searched["choices"][0]["message"];
    assert!(
        message.get("tool_calls").is_none_or(Value::is_null),
        "built-in tools are not tool_calls"
    );
    assert_eq!(message["annotations"][0]["type"], "url_citation");
    assert_eq!(
        message["annotations"][0]["url_citation"]["url"],
        "https://example.com/qwen"
    );
}
