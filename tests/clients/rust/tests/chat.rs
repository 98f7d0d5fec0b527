//! async-openai's Chat Completions API through qwen-gateway's translation to Responses.

mod common;

use async_openai::error::OpenAIError;
use async_openai::traits::RequestOptionsBuilder;
use async_openai::types::chat::{
    ChatCompletionMessageToolCalls, ChatCompletionRequestAssistantMessageArgs,
    ChatCompletionRequestMessage, ChatCompletionRequestSystemMessageArgs,
    ChatCompletionRequestToolMessageArgs, ChatCompletionRequestUserMessageArgs,
    ChatCompletionStreamOptions, ChatCompletionTool, ChatCompletionTools,
    CreateChatCompletionRequestArgs, FinishReason, FunctionObjectArgs, ResponseFormat,
    ResponseFormatJsonSchema, Role,
};
use common::{Stack, MODEL};
use futures::StreamExt;
use serde::Deserialize;
use serde_json::json;

fn user(text: &str) -> ChatCompletionRequestMessage {
    ChatCompletionRequestUserMessageArgs::default()
        .content(text)
        .build()
        .unwrap()
        .into()
}

fn weather_tool() -> ChatCompletionTools {
    ChatCompletionTools::Function(ChatCompletionTool {
        function: FunctionObjectArgs::default()
            .name("get_weather")
            .description("Current weather for a city")
            .parameters(json!({
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            }))
            .build()
            .unwrap(),
    })
}

#[tokio::test]
async fn create_plain() {
    let stack = Stack::start();
    let client = stack.client();
    let request = CreateChatCompletionRequestArgs::default()
        .model(MODEL)
        .messages([
            ChatCompletionRequestSystemMessageArgs::default()
                .content("あなたは役立つアシスタントです。")
                .build()
                .unwrap()
                .into(),
            user("こんにちは!"),
        ])
        .build()
        .unwrap();
    let completion = client
        .chat()
        .create(request)
        .await
        .expect("chat completion");
    assert_eq!(completion.object, "chat.completion");
    assert!(completion.id.starts_with("chatcmpl-"), "{}", completion.id);
    assert_eq!(completion.model, MODEL);
    let choice = &completion.choices[0];
    assert_eq!(choice.finish_reason, Some(FinishReason::Stop));
    assert_eq!(choice.message.role, Role::Assistant);
    assert_eq!(
        choice.message.content.as_deref(),
        Some("こんにちは!私は Qwen です。You said: こんにちは!.")
    );
    let usage = completion.usage.expect("usage");
    assert!(usage.completion_tokens > 0);
    assert_eq!(
        usage.total_tokens,
        usage.prompt_tokens + usage.completion_tokens
    );
}

#[tokio::test]
async fn stream_with_usage() {
    let stack = Stack::start();
    let client = stack.client();
    let request = CreateChatCompletionRequestArgs::default()
        .model("gpt-4o") // an alias the gateway maps to the default model
        .messages([user("人工知能について")])
        .stream_options(ChatCompletionStreamOptions {
            include_usage: Some(true),
            include_obfuscation: None,
        })
        .build()
        .unwrap();
    let mut stream = client.chat().create_stream(request).await.expect("stream");
    let mut chunks = Vec::new();
    while let Some(chunk) = stream.next().await {
        chunks.push(chunk.expect("chunk"));
    }
    let text: String = chunks
        .iter()
        .flat_map(|c| c.choices.iter())
        .filter_map(|choice| choice.delta.content.as_deref())
        .collect();
    assert_eq!(
        text,
        "こんにちは!私は Qwen です。You said: 人工知能について."
    );
    assert_eq!(chunks[0].choices[0].delta.role, Some(Role::Assistant));
    let finishes: Vec<_> = chunks
        .iter()
        .flat_map(|c| c.choices.iter())
        .filter_map(|c| c.finish_reason)
        .collect();
    assert_eq!(finishes, [FinishReason::Stop]);
    let last = chunks.last().unwrap();
    assert!(last.choices.is_empty(), "the usage chunk has no choices");
    let usage = last.usage.as_ref().expect("usage on the last chunk");
    assert!(usage.completion_tokens > 0 && usage.prompt_tokens > 0);
    assert!(chunks[..chunks.len() - 1].iter().all(|c| c.usage.is_none()));
    assert!(chunks
        .iter()
        .all(|c| c.id == chunks[0].id && c.model == MODEL));
}

#[tokio::test]
async fn tool_call_round_trip() {
    let stack = Stack::start();
    let client = stack.client();
    let mut messages = vec![user("What's the weather in Tokyo?")];
    let first = client
        .chat()
        .create(
            CreateChatCompletionRequestArgs::default()
                .model(MODEL)
                .messages(messages.clone())
                .tools(vec![weather_tool()])
                .build()
                .unwrap(),
        )
        .await
        .expect("first turn");
    let choice = &first.choices[0];
    assert_eq!(choice.finish_reason, Some(FinishReason::ToolCalls));
    let calls = choice.message.tool_calls.clone().expect("tool calls");
    let ChatCompletionMessageToolCalls::Function(call) = &calls[0] else {
        panic!("{calls:?}")
    };
    assert_eq!(call.function.name, "get_weather");
    let args: serde_json::Value = serde_json::from_str(&call.function.arguments).unwrap();
    assert_eq!(args, json!({"city": "Tokyo"}));

    messages.push(
        ChatCompletionRequestAssistantMessageArgs::default()
            .tool_calls(calls.clone())
            .build()
            .unwrap()
            .into(),
    );
    messages.push(
        ChatCompletionRequestToolMessageArgs::default()
            .tool_call_id(call.id.clone())
            .content("sunny, 21°C")
            .build()
            .unwrap()
            .into(),
    );
    let second = client
        .chat()
        .create(
            CreateChatCompletionRequestArgs::default()
                .model(MODEL)
                .messages(messages)
                .tools(vec![weather_tool()])
                .build()
                .unwrap(),
        )
        .await
        .expect("second turn");
    assert_eq!(second.choices[0].finish_reason, Some(FinishReason::Stop));
    assert_eq!(
        second.choices[0].message.content.as_deref(),
        Some("Tool get_weather returned: sunny, 21°C")
    );
}

#[tokio::test]
async fn streamed_tool_call_accumulates() {
    let stack = Stack::start();
    let client = stack.client();
    let request = CreateChatCompletionRequestArgs::default()
        .model(MODEL)
        .messages([user("weather?")])
        .tools(vec![weather_tool()])
        .build()
        .unwrap();
    let mut stream = client.chat().create_stream(request).await.expect("stream");
    let (mut name, mut arguments, mut finish) = (String::new(), String::new(), None);
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.expect("chunk");
        for choice in chunk.choices {
            for call in choice.delta.tool_calls.unwrap_or_default() {
                assert_eq!(call.index, 0);
                let function = call.function.unwrap_or_default();
                name += function.name.as_deref().unwrap_or("");
                arguments += function.arguments.as_deref().unwrap_or("");
            }
            finish = choice.finish_reason.or(finish);
        }
    }
    assert_eq!(name, "get_weather");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&arguments).unwrap(),
        json!({"city": "Tokyo"})
    );
    assert_eq!(finish, Some(FinishReason::ToolCalls));
}

#[derive(Debug, Deserialize, PartialEq)]
struct Trip {
    city: String,
    days: u32,
}

#[tokio::test]
async fn structured_output_json_schema_parses() {
    let stack = Stack::start();
    let client = stack.client();
    let request = CreateChatCompletionRequestArgs::default()
        .model(MODEL)
        .messages([user("Plan a trip")])
        .response_format(ResponseFormat::JsonSchema {
            json_schema: ResponseFormatJsonSchema {
                name: "Trip".into(),
                description: None,
                schema: json!({
                    "type": "object",
                    "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
                    "required": ["city", "days"],
                    "additionalProperties": false,
                }),
                strict: Some(true),
            },
        })
        .build()
        .unwrap();
    let completion = client.chat().create(request).await.expect("completion");
    let content = completion.choices[0]
        .message
        .content
        .as_deref()
        .expect("content");
    let trip: Trip =
        serde_json::from_str(content).expect("the content is an instance of the schema");
    assert_eq!(
        trip,
        Trip {
            city: "Tokyo".into(),
            days: 1
        }
    );
}

#[tokio::test]
async fn mid_stream_failure_is_an_err() {
    let stack = Stack::start();
    let client = stack.client();
    let request = CreateChatCompletionRequestArgs::default()
        .model(MODEL)
        .messages([user("hi")])
        .build()
        .unwrap();
    // Per-request headers: RequestOptionsBuilder::header on the API group.
    let mut stream = client
        .chat()
        .header("x-mock-drop-after", "6")
        .unwrap()
        .header("x-mock-tokens", "30")
        .unwrap()
        .create_stream(request)
        .await
        .expect("the head is a 200");
    let mut text = String::new();
    let mut error = None;
    while let Some(item) = stream.next().await {
        match item {
            Ok(chunk) => {
                for choice in chunk.choices {
                    assert_eq!(
                        choice.finish_reason, None,
                        "no finish chunk after a broken upstream"
                    );
                    text += choice.delta.content.as_deref().unwrap_or("");
                }
            }
            Err(e) => {
                error = Some(e);
                break;
            }
        }
    }
    assert!(!text.is_empty(), "some text arrived before the drop");
    // The gateway's `data: {"error":{…}}` frame is no chunk: async-openai yields it as an Err
    // (JSONDeserialize carrying the frame) instead of ending the stream quietly.
    match error.expect("the broken stream must yield an Err") {
        OpenAIError::JSONDeserialize(_, frame) => {
            let frame: serde_json::Value = serde_json::from_str(&frame).unwrap();
            assert_eq!(frame["error"]["code"], "upstream_stream_error", "{frame}");
            assert_eq!(frame["error"]["type"], "server_error");
        }
        other => panic!("unexpected error {other:?}"),
    }
}

#[tokio::test]
async fn errors_before_the_stream_are_api_errors() {
    let stack = Stack::start();
    let client = stack.client();
    let request = CreateChatCompletionRequestArgs::default()
        .model(MODEL)
        .messages([user("hi")])
        .build()
        .unwrap();
    let err = client
        .chat()
        .header("x-mock-status", "429")
        .unwrap()
        .create(request)
        .await
        .unwrap_err();
    let OpenAIError::ApiError(api) = err else {
        panic!("{err:?}")
    };
    assert_eq!(api.status_code.as_u16(), 429);
    assert_eq!(api.api_error.r#type.as_deref(), Some("rate_limit_error"));
}
