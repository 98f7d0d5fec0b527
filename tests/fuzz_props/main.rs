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
//!
//! The case counts and the JSON generators the others build on are here; 1 is in
//! `requests.rs`, 2 in `events.rs`, 3 in `sse.rs`. A failing case is saved next to its
//! module, e.g. `tests/fuzz_props/sse.proptest-regressions` (commit it).

mod events;
mod requests;
mod sse;

use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use serde_json::{Map, Value};

fn cases(default: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default);
    ProptestConfig {
        cases,
        max_shrink_iters: 2000,
        // Next to the property's own file (`sse.rs` → `sse.proptest-regressions`): by default
        // proptest would find this crate's main.rs and save under `tests/proptest-regressions/`.
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource(
            "proptest-regressions",
        ))),
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
