//! Property tests (proptest) of the pure parts that see untrusted bytes:
//! 1. `translate::chat_to_responses` on arbitrary JSON: never panics; Ok, or a 4xx.
//! 2. The Responses-event → chat-chunk state machine (`ChunkTranslator`, and the
//!    non-streaming `CompletionBuilder`) on arbitrary event sequences: never panics; every
//!    output is a well-formed chunk, at most one finish, at most one error and nothing after.
//! 3. `sse::SseParser` and `sse::EventFramer` on arbitrary chunkings of the same
//!    bytes: the same events whatever the chunking, and the splitter's output is the input,
//!    byte for byte, cut only at event boundaries; `upstream::events::EventReader` on the
//!    same: never more held than its bound, and what it hands on is the input.
//!
//! Case counts are bounded so CI stays fast (`PROPTEST_CASES` overrides them); see
//! docs/reliability.md for long runs.

use bytes::Bytes;
use proptest::prelude::*;
use qwen_gateway::sse::EventFramer;
use qwen_gateway::sse::SseParser;
use qwen_gateway::translate::{
    ChatContext, ChatLimits, ChunkOut, ChunkTranslator, CompletionBuilder, StreamContext,
    chat_to_responses,
};
use qwen_gateway::upstream::UpstreamBody;
use qwen_gateway::upstream::events::{EventReader, ReadLimits, StreamFault};
use serde_json::{Map, Value, json};

fn cases(default: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default);
    ProptestConfig {
        cases,
        max_shrink_iters: 2000,
        ..ProptestConfig::default()
    }
}

// ---------------------------------------------------------------- JSON generators

fn arb_string() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-z_]{0,12}",
        2 => any::<String>(),
        1 => Just(String::new()),
        1 => Just("日本語 テキスト 🦀".to_owned()),
        1 => Just("\u{0}\u{1f}\\\"\n".to_owned()),
    ]
}

fn arb_number() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (-1e300f64..1e300).prop_map(Value::from),
        (-3i64..20).prop_map(Value::from),
        (0.0f64..3.0).prop_map(Value::from),
    ]
}

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        arb_number(),
        arb_string().prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((arb_key(), inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// Keys the translation reads, and some it does not.
fn arb_key() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(vec![
            "model", "messages", "role", "content", "type", "text", "image_url", "url",
            "tool_calls", "tool_call_id", "function", "name", "arguments", "id", "tools",
            "tool_choice", "functions", "function_call", "stream", "stream_options",
            "include_usage", "n", "stop", "temperature", "top_p", "max_tokens",
            "max_completion_tokens", "response_format", "json_schema", "schema", "strict",
            "parallel_tool_calls", "user", "metadata", "reasoning_effort", "logprobs",
            "seed", "modalities", "audio", "input_audio", "file", "refusal", "detail",
            "web_search_options", "enable_thinking", "parameters", "description",
        ]).prop_map(str::to_owned),
        1 => arb_string(),
    ]
}

fn arb_content() -> impl Strategy<Value = Value> {
    prop_oneof![
        3 => arb_string().prop_map(Value::from),
        2 => prop::collection::vec(
            prop_oneof![
                arb_string().prop_map(|t| json!({"type": "text", "text": t})),
                arb_string().prop_map(|u| json!({"type": "image_url", "image_url": {"url": u}})),
                arb_json(),
            ],
            0..4,
        ).prop_map(Value::Array),
        1 => arb_json(),
    ]
}

fn arb_message() -> impl Strategy<Value = Value> {
    let role = prop_oneof![
        prop::sample::select(vec![
            "system",
            "developer",
            "user",
            "assistant",
            "tool",
            "function"
        ])
        .prop_map(Value::from),
        arb_json(),
    ];
    (
        role,
        arb_content(),
        prop::option::of(arb_json()),
        prop::option::of(arb_string()),
    )
        .prop_map(|(role, content, extra, call_id)| {
            let mut m = json!({"role": role, "content": content});
            if let Some(call_id) = call_id {
                m["tool_call_id"] = Value::from(call_id.clone());
                m["tool_calls"] = json!([{"id": call_id, "type": "function",
                    "function": {"name": "f", "arguments": "{}"}}]);
            }
            if let Some(Value::Object(extra)) = extra {
                for (k, v) in extra {
                    m[k] = v;
                }
            }
            m
        })
}

/// Mostly chat-shaped requests with random values, sometimes anything at all.
fn arb_chat_request() -> impl Strategy<Value = Value> {
    let shaped = (
        prop_oneof![Just(json!("qwen3-max")), arb_json()],
        prop::collection::vec(arb_message(), 0..5),
        prop::collection::vec((arb_key(), arb_json()), 0..6),
    )
        .prop_map(|(model, messages, extra)| {
            let mut req = json!({"model": model, "messages": messages});
            for (k, v) in extra {
                req[k] = v;
            }
            req
        });
    prop_oneof![4 => shaped, 1 => arb_json()]
}

// ---------------------------------------------------------------- event generators

fn arb_item() -> impl Strategy<Value = Value> {
    prop_oneof![
        (arb_item_id(), arb_string(), arb_string(), arb_string()).prop_map(
            |(id, call_id, name, args)| json!({"type": "function_call", "id": id,
                "call_id": call_id, "name": name, "arguments": args})
        ),
        (arb_item_id(), prop::collection::vec(arb_part(), 0..3)).prop_map(
            |(id, content)| json!({"type": "message", "id": id, "role": "assistant",
                "content": content})
        ),
        arb_json(),
    ]
}

fn arb_part() -> impl Strategy<Value = Value> {
    prop_oneof![
        arb_string().prop_map(|t| json!({"type": "output_text", "text": t})),
        arb_string().prop_map(|t| json!({"type": "refusal", "refusal": t})),
        arb_json(),
    ]
}

fn arb_item_id() -> impl Strategy<Value = Value> {
    prop_oneof![
        4 => prop::sample::select(vec!["msg_1", "msg_2", "fc_1", "fc_2", "rs_1"]).prop_map(Value::from),
        1 => arb_json(),
    ]
}

fn arb_response() -> impl Strategy<Value = Value> {
    (
        prop::sample::select(vec![
            "completed",
            "incomplete",
            "failed",
            "in_progress",
            "queued",
        ]),
        prop::collection::vec(arb_item(), 0..3),
        prop_oneof![
            Just(json!({"input_tokens": 3, "output_tokens": 5, "total_tokens": 8})),
            arb_json()
        ],
        prop::option::of(arb_json()),
    )
        .prop_map(|(status, output, usage, error)| {
            let mut r = json!({"id": "resp_1", "created_at": 1_700_000_000, "model": "",
                "status": status, "output": output, "usage": usage});
            if let Some(error) = error {
                r["error"] = error;
            }
            if status == "incomplete" {
                r["incomplete_details"] = json!({"reason": "max_output_tokens"});
            }
            r
        })
}

fn arb_event() -> impl Strategy<Value = Value> {
    let kind = prop::sample::select(vec![
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.output_item.done",
        "response.content_part.added",
        "response.content_part.done",
        "response.output_text.delta",
        "response.output_text.done",
        "response.refusal.delta",
        "response.refusal.done",
        "response.reasoning_summary_text.delta",
        "response.reasoning_text.delta",
        "response.reasoning_text.done",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.completed",
        "response.incomplete",
        "response.failed",
        "error",
        "response.mystery",
    ]);
    let shaped = (
        kind,
        arb_item_id(),
        0u64..3,
        arb_string(),
        arb_item(),
        arb_response(),
    )
        .prop_map(|(kind, item_id, index, text, item, response)| {
            json!({"type": kind, "item_id": item_id, "output_index": index,
                "content_index": index, "summary_index": index, "delta": text,
                "text": text, "arguments": text, "refusal": text, "item": item,
                "response": response, "code": "x", "message": text, "sequence_number": 1})
        });
    prop_oneof![6 => shaped, 1 => arb_json()]
}

fn arb_stream_context() -> impl Strategy<Value = StreamContext> {
    (
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        0u32..3,
        prop::collection::vec("[a-zト ]{1,3}", 0..3),
    )
        .prop_map(
            |(include_usage, emit_usage_chunk, legacy_functions, choice_index, stop)| {
                StreamContext {
                    model: "m".into(),
                    include_usage,
                    emit_usage_chunk,
                    legacy_functions,
                    choice_index,
                    id: None,
                    created: None,
                    stop,
                }
            },
        )
}

fn check_chunk(chunk: &Value, ctx: &StreamContext) -> Result<(), TestCaseError> {
    let text = serde_json::to_string(chunk).expect("serializable");
    let back: Value = serde_json::from_str(&text).expect("valid JSON");
    prop_assert_eq!(&back, chunk);
    prop_assert_eq!(&chunk["object"], "chat.completion.chunk");
    prop_assert!(chunk["id"].is_string());
    prop_assert!(chunk["created"].is_i64() || chunk["created"].is_u64());
    prop_assert!(chunk["model"].is_string());
    let choices = chunk["choices"].as_array().expect("choices array");
    for choice in choices {
        prop_assert_eq!(choice["index"].as_u64(), Some(ctx.choice_index as u64));
        prop_assert!(choice["delta"].is_object());
        prop_assert!(choice["finish_reason"].is_null() || choice["finish_reason"].is_string());
    }
    if choices.is_empty() {
        prop_assert!(
            chunk["usage"].is_object(),
            "only the usage chunk has no choices"
        );
    }
    Ok(())
}

// ---------------------------------------------------------------- SSE generators

/// SSE-looking text: fields, comments, blank lines and every line terminator, with
/// multi-byte characters.
fn arb_sse_text() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop::sample::select(vec![
            "data:",
            "data: ",
            "event:",
            "event: x",
            "id:",
            "id: 7",
            "retry: 10",
            ":",
            ": c",
            "\n",
            "\n",
            "\n\n",
            "\r\n",
            "\r\n\r\n",
            "\r",
            "x",
            "{\"a\":1}",
            "日本",
            "é",
            " ",
            "data: {\"type\":\"response.output_text.delta\",\"delta\":\"トークン\"}\n\n",
        ]),
        0..60,
    )
    .prop_map(|parts| parts.concat())
}

/// Cut points for `len` bytes.
fn arb_cuts() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(any::<prop::sample::Index>(), 0..12).prop_map(|idx| {
        let _ = &idx;
        idx.iter().map(|i| i.index(usize::MAX)).collect()
    })
}

fn chunked(bytes: &[u8], cuts: &[usize]) -> Vec<Bytes> {
    if bytes.is_empty() {
        return Vec::new();
    }
    let mut points: Vec<usize> = cuts.iter().map(|c| c % bytes.len()).collect();
    points.push(0);
    points.push(bytes.len());
    points.sort_unstable();
    points.dedup();
    points
        .windows(2)
        .map(|w| Bytes::copy_from_slice(&bytes[w[0]..w[1]]))
        .collect()
}

type Ev = (String, String, String);

/// The events and the count of lines decoded lossily.
fn parse(chunks: &[Bytes]) -> (Vec<Ev>, u64) {
    let mut parser = SseParser::new();
    let mut events = Vec::new();
    for chunk in chunks {
        events.extend(parser.push(chunk.clone()));
    }
    events.extend(parser.finish());
    let events = events
        .into_iter()
        .map(|e| (e.event, e.data, e.id))
        .collect();
    (events, parser.invalid_utf8_lines())
}

/// Everything an `EventReader` bounded to `max_event_bytes` hands on (whole events, then
/// the rest at the end), and the fault it stopped on.
fn read_events(chunks: Vec<Bytes>, max_event_bytes: usize) -> (Vec<u8>, Option<StreamFault>) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let body = UpstreamBody::buffered(Bytes::new()).with_held(chunks);
        let limits = ReadLimits {
            idle_timeout: std::time::Duration::from_secs(5),
            max_event_bytes,
            max_total_bytes: None,
        };
        let mut reader = EventReader::new(body, limits, Default::default());
        let mut out = Vec::new();
        loop {
            match reader.next().await {
                Ok(Some(events)) => out.extend_from_slice(&events),
                Ok(None) => {
                    out.extend_from_slice(&reader.take_rest());
                    return (out, None);
                }
                Err(fault) => {
                    let after = reader.next().await;
                    assert!(
                        matches!(after, Ok(None)),
                        "read on after {fault:?}: {after:?}"
                    );
                    return (out, Some(fault));
                }
            }
        }
    })
}

/// Event boundaries of `bytes`, by the SSE rules written out plainly: an event ends at a
/// blank line (`\r\n`, `\n` or `\r` right after another terminator) once something other
/// than line terminators came since the last boundary.
fn boundaries(bytes: &[u8]) -> Vec<usize> {
    let mut out = Vec::new();
    let (mut at_line_start, mut started) = (false, false);
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\r' | b'\n' => {
                let end = if bytes[i] == b'\r' && bytes.get(i + 1) == Some(&b'\n') {
                    i + 2
                } else {
                    i + 1
                };
                if at_line_start && started {
                    out.push(end);
                    started = false;
                }
                at_line_start = true;
                i = end;
            }
            _ => {
                at_line_start = false;
                started = true;
                i += 1;
            }
        }
    }
    out
}

// ---------------------------------------------------------------- properties

proptest! {
    #![proptest_config(cases(256))]

    /// 1. Any JSON: Ok with a sane plan, or a 4xx; never a panic.
    #[test]
    fn chat_to_responses_never_panics(request in arb_chat_request(), max_n in 1u32..9, max_stop in 0usize..6) {
        let limits = ChatLimits { max_n, max_stop };
        match chat_to_responses(&request, &limits) {
            Ok(plan) => {
                prop_assert!(plan.body.is_object());
                prop_assert_eq!(&plan.body["stream"], true);
                prop_assert!(plan.body["model"].is_string());
                prop_assert!(plan.n >= 1 && plan.n <= max_n);
                prop_assert!(plan.stop.len() <= max_stop);
                serde_json::to_vec(&plan.body).expect("the upstream body serializes");
            }
            Err(err) => {
                let api: qwen_gateway::error::ApiError = err.into();
                prop_assert!(api.status.is_client_error(), "{}", api);
                prop_assert!(!api.message.is_empty());
            }
        }
    }

    /// 1b. Any JSON at all (not chat-shaped).
    #[test]
    fn chat_to_responses_on_any_value(request in arb_json()) {
        if let Err(err) = chat_to_responses(&request, &ChatLimits::default()) {
            let api: qwen_gateway::error::ApiError = err.into();
            prop_assert!(api.status.is_client_error());
        }
    }

    /// 2. The streaming state machine on arbitrary event sequences.
    #[test]
    fn chunk_translator_never_panics_and_emits_valid_chunks(
        ctx in arb_stream_context(),
        events in prop::collection::vec(arb_event(), 0..25),
        end_with_error in any::<bool>(),
    ) {
        let mut t = ChunkTranslator::new(ctx.clone());
        let mut out = Vec::new();
        for event in &events {
            if t.is_done() {
                prop_assert!(t.on_event(event).is_empty(), "nothing after done");
                continue;
            }
            out.extend(t.on_event(event));
        }
        if end_with_error {
            let err = qwen_gateway::error::ApiError::server(http::StatusCode::BAD_GATEWAY, "x");
            out.extend(t.on_upstream_error(&err));
        } else {
            out.extend(t.on_upstream_end());
        }
        prop_assert!(t.is_done());
        let mut finishes = 0;
        let mut errors = 0;
        let mut usage_chunks = 0;
        for (i, item) in out.iter().enumerate() {
            match item {
                ChunkOut::Chunk(chunk) => {
                    prop_assert_eq!(errors, 0, "no chunk after an error");
                    check_chunk(chunk, &ctx)?;
                    let choices = chunk["choices"].as_array().unwrap();
                    if choices.is_empty() {
                        usage_chunks += 1;
                        prop_assert_eq!(i, out.len() - 1, "the usage chunk comes last");
                    }
                    finishes += choices.iter().filter(|c| c["finish_reason"].is_string()).count();
                }
                ChunkOut::Error(error) => {
                    errors += 1;
                    prop_assert!(error["error"]["message"].is_string(), "{}", error);
                    prop_assert!(error["error"]["type"].is_string(), "{}", error);
                    serde_json::to_string(error).unwrap();
                }
            }
        }
        prop_assert!(finishes <= 1, "one finish chunk at most: {:?}", out);
        prop_assert!(errors <= 1);
        prop_assert!(finishes + errors >= 1, "every stream ends with a finish or an error");
        prop_assert!(usage_chunks <= 1);
    }

    /// 2b. The non-streaming assembly on the same sequences.
    #[test]
    fn completion_builder_never_panics(
        events in prop::collection::vec(arb_event(), 0..25),
        stop in prop::collection::vec("[a-z ]{1,3}", 0..3),
        legacy in any::<bool>(),
    ) {
        let mut b = CompletionBuilder::new(
            ChatContext { model: "m".into(), legacy_functions: legacy },
            stop,
        );
        for event in &events {
            if b.push(event) {
                break;
            }
        }
        match b.finish() {
            Ok(completion) => {
                prop_assert_eq!(&completion["object"], "chat.completion");
                prop_assert!(completion["choices"].is_array());
                serde_json::to_string(&completion).unwrap();
            }
            Err(err) => prop_assert!(!err.message.is_empty()),
        }
    }

    /// 3a. SSE parsing does not depend on how the bytes are cut.
    #[test]
    fn sse_parser_is_chunking_invariant(text in arb_sse_text(), cuts in arb_cuts()) {
        let bytes = text.as_bytes();
        let whole = parse(&chunked(bytes, &[]));
        let split = parse(&chunked(bytes, &cuts));
        prop_assert_eq!(whole, split);
    }

    /// 3b. Arbitrary bytes (invalid UTF-8 included) never make the parser panic or stop:
    /// it decodes lossily, and what it finds and counts does not depend on the chunking.
    #[test]
    fn sse_parser_survives_arbitrary_bytes(
        bytes in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..400),
            arb_sse_text().prop_map(String::into_bytes),
        ],
        cuts in arb_cuts(),
    ) {
        prop_assert_eq!(parse(&chunked(&bytes, &[])), parse(&chunked(&bytes, &cuts)));
    }

    /// 3d. The upstream reader, bounded: what it hands on is a prefix of the input cut at
    /// event boundaries, then the rest at the end, or a fault; an `EventTooLarge` fault
    /// comes only when more than the bound was held (so never below it, whatever the
    /// chunking), and nothing more is read after a fault.
    #[test]
    fn event_reader_hands_on_its_input_and_keeps_its_bound(
        bytes in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..400),
            arb_sse_text().prop_map(String::into_bytes),
        ],
        cuts in arb_cuts(),
        bound in 1usize..200,
    ) {
        let (out, fault) = read_events(chunked(&bytes, &cuts), bound);
        prop_assert!(bytes.starts_with(&out));
        match fault {
            None => prop_assert_eq!(&out[..], &bytes[..]),
            Some(StreamFault::EventTooLarge(limit)) => {
                prop_assert_eq!(limit, bound);
                // Held more than the bound: the unfinished event had more bytes than it.
                prop_assert!(bytes.len() - out.len() > bound);
            }
            Some(other) => prop_assert!(false, "unexpected fault {other:?}"),
        }
        // Below the bound no event is too large, whatever the chunking.
        if bytes.len() <= bound {
            prop_assert_eq!(&out[..], &bytes[..]);
        }
    }

    /// 3c. The relay's splitter: output is the input byte for byte, cut only at event
    /// boundaries, and the events a client parses are the same whatever the chunking.
    #[test]
    fn event_splitter_is_exact_and_chunking_invariant(
        text in prop_oneof![3 => arb_sse_text().prop_map(String::into_bytes), 1 => prop::collection::vec(any::<u8>(), 0..300)],
        cuts in arb_cuts(),
    ) {
        let bytes = &text[..];
        let reference = boundaries(bytes);
        let mut splitter = EventFramer::default();
        let mut out: Vec<Bytes> = Vec::new();
        let mut ends = Vec::new();
        let mut at = 0;
        for chunk in chunked(bytes, &cuts) {
            if let Some(done) = splitter.push(chunk) {
                prop_assert!(!done.is_empty());
                at += done.len();
                ends.push(at);
                out.push(done);
            }
        }
        let pending = splitter.take_pending();
        let mut all = out.concat();
        all.extend_from_slice(&pending);
        prop_assert_eq!(&all[..], bytes, "the relay's output is its input");
        for &end in &ends {
            // At a reference boundary, or just before the `\n` of a `\r\n` that ends one
            // (the `\r` arrived at the end of a chunk; the `\n` goes with the next event).
            let crlf_split = reference.contains(&(end + 1))
                && bytes[end - 1] == b'\r'
                && bytes.get(end) == Some(&b'\n');
            prop_assert!(reference.contains(&end) || crlf_split,
                "cut at {} is not an event boundary {:?}", end, reference);
        }
        if let Some(&last) = reference.last() {
            prop_assert!(at == last || at + 1 == last, "every complete event was released");
        }
        let released = out.concat();
        let whole_events = parse(&chunked(&released, &[]));
        let piecewise = parse(&out);
        prop_assert_eq!(whole_events, piecewise);
    }
}

/// An edge case written out by hand: `\r` alone is a line terminator too. (The properties
/// found no crash so far; any they find becomes a named test here, next to its fix.)
#[test]
fn splitter_handles_a_lone_cr_terminator_at_a_chunk_end() {
    let mut s = EventFramer::default();
    assert_eq!(s.push(Bytes::from_static(b"data: a\r")), None);
    assert_eq!(
        s.push(Bytes::from_static(b"\rdata: b\r\r")).as_deref(),
        Some(&b"data: a\r\rdata: b\r\r"[..])
    );
}
