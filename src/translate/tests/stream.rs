//! Section C: events → chunks.

use super::fixtures::{Events, MODEL, RESP_ID};
use crate::error::ApiError;
use crate::translate::{ChunkOut, ChunkTranslator, StreamContext};
use http::StatusCode;
use serde_json::{Value, json};

fn ctx() -> StreamContext {
    StreamContext {
        model: "fallback-model".into(),
        include_usage: false,
        emit_usage_chunk: true,
        legacy_functions: false,
        choice_index: 0,
        id: None,
        created: None,
        stop: vec![],
    }
}

/// Feeds events like the handler does (stop reading once done), then ends the stream.
fn run(ctx: StreamContext, events: &[Value]) -> Vec<ChunkOut> {
    let mut t = ChunkTranslator::new(ctx);
    let mut out = Vec::new();
    for event in events {
        if t.is_done() {
            break;
        }
        out.extend(t.on_event(event));
    }
    out.extend(t.on_upstream_end());
    assert!(t.is_done());
    out
}

/// The chunks as JSON, as a client reads them.
fn chunks(out: &[ChunkOut]) -> Vec<Value> {
    out.iter()
        .filter_map(|o| match o {
            ChunkOut::Chunk(c) => Some(c.to_value()),
            ChunkOut::Error(_) => None,
        })
        .collect()
}

fn errors(out: &[ChunkOut]) -> Vec<&Value> {
    out.iter()
        .filter_map(|o| match o {
            ChunkOut::Error(e) => Some(e),
            ChunkOut::Chunk(_) => None,
        })
        .collect()
}

fn deltas(out: &[ChunkOut]) -> Vec<Value> {
    chunks(out)
        .into_iter()
        .filter_map(|c| c["choices"].get(0).map(|choice| choice["delta"].clone()))
        .collect()
}

fn content(out: &[ChunkOut]) -> String {
    deltas(out)
        .iter()
        .filter_map(|d| d["content"].as_str())
        .collect()
}

fn finishes(out: &[ChunkOut]) -> Vec<String> {
    chunks(out)
        .iter()
        .filter_map(|c| c["choices"].get(0))
        .filter_map(|choice| choice["finish_reason"].as_str().map(str::to_owned))
        .collect()
}

/// Every chunk with a choice says something: a non-empty delta or a finish reason.
fn assert_no_filler(out: &[ChunkOut]) {
    for chunk in chunks(out) {
        let Some(choice) = chunk["choices"].get(0) else {
            continue;
        };
        let delta = choice["delta"].as_object().unwrap();
        let said = delta.iter().any(|(k, v)| match k.as_str() {
            "role" => true,
            _ => v.as_str().is_none_or(|s| !s.is_empty()),
        });
        assert!(
            said || !choice["finish_reason"].is_null(),
            "filler chunk: {chunk}"
        );
    }
}

#[test]
fn text_stream_role_first_then_content_then_one_finish() {
    let events = Events::new()
        .message("msg_1", &["人工知能", " (Art", "ificial"])
        .completed();
    let out = run(ctx(), &events);
    let d = deltas(&out);
    assert_eq!(d[0], json!({"role": "assistant", "content": ""}));
    assert_eq!(content(&out), "人工知能 (Artificial");
    assert_eq!(finishes(&out), ["stop"]);
    let last = chunks(&out).last().unwrap().clone();
    assert_eq!(last["choices"][0]["delta"], json!({}));
    assert!(errors(&out).is_empty());
    assert_no_filler(&out);
    for chunk in chunks(&out) {
        assert_eq!(chunk["id"], format!("chatcmpl-{RESP_ID}"));
        assert_eq!(chunk["object"], "chat.completion.chunk");
        assert_eq!(chunk["created"], 1769417481);
        // Model Studio's `response.created` says model "": the fallback is used throughout.
        assert_eq!(chunk["model"], "fallback-model");
        assert_eq!(chunk["choices"][0]["index"], 0);
        assert!(chunk.get("usage").is_none());
    }
}

#[test]
fn empty_deltas_and_bookkeeping_events_make_no_chunks() {
    let events = Events::new().message("msg_1", &["", "Hi", ""]).completed();
    let out = run(ctx(), &events);
    // role chunk, one content chunk, finish chunk.
    assert_eq!(chunks(&out).len(), 3);
    assert_no_filler(&out);
}

#[test]
fn parallel_tool_calls_get_distinct_indexes_and_unmerged_arguments() {
    let mut ev = Events::new();
    ev.message("msg_1", &["Checking both."]);
    ev.added(super::fixtures::call_item(
        "fc_a",
        "call_a",
        "weather",
        r#"{"city":"Tokyo"}"#,
    ));
    ev.added(super::fixtures::call_item(
        "fc_b",
        "call_b",
        "weather",
        r#"{"city":"Paris"}"#,
    ));
    ev.args_delta("fc_a", r#"{"city":"#);
    ev.args_delta("fc_b", r#"{"city":"#);
    ev.args_delta("fc_b", r#""Paris"}"#);
    ev.args_delta("fc_a", "");
    ev.args_delta("fc_a", r#""Tokyo"}"#);
    ev.args_done("fc_a", r#"{"city":"Tokyo"}"#)
        .item_done("fc_a");
    ev.args_done("fc_b", r#"{"city":"Paris"}"#)
        .item_done("fc_b");
    let out = run(ctx(), &ev.completed());

    let mut headers = Vec::new();
    let mut args = std::collections::BTreeMap::<u64, String>::new();
    for d in deltas(&out) {
        for call in d["tool_calls"].as_array().into_iter().flatten() {
            let index = call["index"].as_u64().unwrap();
            if let Some(id) = call["id"].as_str() {
                assert_eq!(call["type"], "function");
                assert_eq!(call["function"]["name"], "weather");
                headers.push((index, id.to_owned()));
            }
            let fragment = call["function"]["arguments"].as_str().unwrap();
            assert!(!fragment.is_empty() || call.get("id").is_some());
            args.entry(index).or_default().push_str(fragment);
        }
    }
    assert_eq!(
        headers,
        [(0, "call_a".to_owned()), (1, "call_b".to_owned())]
    );
    assert_eq!(args[&0], r#"{"city":"Tokyo"}"#);
    assert_eq!(args[&1], r#"{"city":"Paris"}"#);
    assert_eq!(content(&out), "Checking both.");
    assert_eq!(finishes(&out), ["tool_calls"]);
    assert_no_filler(&out);
}

#[test]
fn arguments_sent_only_in_done_are_emitted_once() {
    let events = Events::new()
        .call_with("fc_1", "call_1", "lookup", &[], r#"{"q":1}"#)
        .completed();
    let out = run(ctx(), &events);
    let sent: String = deltas(&out)
        .iter()
        .flat_map(|d| d["tool_calls"].as_array().cloned().unwrap_or_default())
        .filter_map(|c| c["function"]["arguments"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(sent, r#"{"q":1}"#);
    assert_eq!(finishes(&out), ["tool_calls"]);
}

#[test]
fn arguments_streamed_are_not_repeated_by_done_events() {
    let events = Events::new()
        .call("fc_1", "call_1", "lookup", &[r#"{"q""#, ":1}"])
        .completed();
    let out = run(ctx(), &events);
    let sent: String = deltas(&out)
        .iter()
        .flat_map(|d| d["tool_calls"].as_array().cloned().unwrap_or_default())
        .filter_map(|c| c["function"]["arguments"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(sent, r#"{"q":1}"#);
}

#[test]
fn call_known_only_from_the_terminal_response_is_still_sent() {
    let mut ev = Events::new();
    // The call appears in `output` but upstream never streamed its events.
    ev.push(json!({"type": "response.in_progress"}));
    let mut events = ev.completed();
    let last = events.last_mut().unwrap();
    last["response"]["output"] = json!([super::fixtures::call_item(
        "fc_9",
        "call_9",
        "late",
        r#"{"a":2}"#
    )]);
    let out = run(ctx(), &events);
    let call = &deltas(&out)[1]["tool_calls"][0];
    assert_eq!(call["id"], "call_9");
    assert_eq!(call["function"]["arguments"], r#"{"a":2}"#);
    assert_eq!(finishes(&out), ["tool_calls"]);
}

#[test]
fn text_only_in_output_text_done_is_sent_once() {
    let mut ev = Events::new();
    ev.added(super::fixtures::message_item("msg_1", "whole"));
    ev.text_done("msg_1", "whole").item_done("msg_1");
    let out = run(ctx(), &ev.completed());
    assert_eq!(content(&out), "whole");
}

#[test]
fn incomplete_finishes_with_length_and_still_sends_usage() {
    let mut c = ctx();
    c.include_usage = true;
    let out = run(
        c,
        &Events::new()
            .message("msg_1", &["partial"])
            .incomplete("max_output_tokens"),
    );
    assert_eq!(finishes(&out), ["length"]);
    let usage_chunk = chunks(&out).last().unwrap().clone();
    assert_eq!(usage_chunk["choices"], json!([]));
    assert_eq!(usage_chunk["usage"]["completion_tokens"], 166);
    assert!(errors(&out).is_empty());
}

#[test]
fn incomplete_by_content_filter_finishes_with_content_filter() {
    let out = run(
        ctx(),
        &Events::new()
            .message("msg_1", &["x"])
            .incomplete("content_filter"),
    );
    assert_eq!(finishes(&out), ["content_filter"]);
}

#[test]
fn reasoning_then_text() {
    let events = Events::new()
        .reasoning("rs_1", &["Think", "ing"])
        .message("msg_1", &["Answer"])
        .completed();
    let out = run(ctx(), &events);
    let reasoning: String = deltas(&out)
        .iter()
        .filter_map(|d| d["reasoning_content"].as_str())
        .collect();
    assert_eq!(reasoning, "Thinking");
    assert_eq!(content(&out), "Answer");
    assert_eq!(finishes(&out), ["stop"]);
    assert_no_filler(&out);
}

#[test]
fn usage_chunk_has_empty_choices_and_earlier_chunks_say_usage_null() {
    let mut c = ctx();
    c.include_usage = true;
    let mut t = ChunkTranslator::new(c);
    let mut out = Vec::new();
    for event in Events::new().message("msg_1", &["Hi"]).completed() {
        out.extend(t.on_event(&event));
    }
    let all = chunks(&out);
    let (usage_chunk, rest) = all.split_last().unwrap();
    assert_eq!(usage_chunk["choices"], json!([]));
    assert_eq!(usage_chunk["id"], format!("chatcmpl-{RESP_ID}"));
    assert_eq!(
        usage_chunk["usage"],
        json!({
            "prompt_tokens": 37, "completion_tokens": 166, "total_tokens": 203,
            "prompt_tokens_details": {"cached_tokens": 5},
            "completion_tokens_details": {"reasoning_tokens": 12},
        })
    );
    for chunk in rest {
        assert!(chunk["usage"].is_null() && chunk.get("usage").is_some());
    }
    assert_eq!(
        t.usage().map(|u| json!(u)),
        Some(usage_chunk["usage"].clone())
    );
}

#[test]
fn handler_merging_choices_gets_usage_but_no_usage_chunk() {
    let mut c = ctx();
    c.include_usage = true;
    c.emit_usage_chunk = false;
    c.choice_index = 2;
    c.id = Some("chatcmpl-fixed".into());
    c.created = Some(42);
    let mut t = ChunkTranslator::new(c);
    let mut out = Vec::new();
    for event in Events::new().message("msg_1", &["Hi"]).completed() {
        out.extend(t.on_event(&event));
    }
    for chunk in chunks(&out) {
        assert_eq!(chunk["choices"][0]["index"], 2);
        assert_eq!(chunk["id"], "chatcmpl-fixed");
        assert_eq!(chunk["created"], 42);
    }
    assert!(chunks(&out).iter().all(|c| c["choices"] != json!([])));
    assert_eq!(t.usage().unwrap().prompt_tokens, 37);
}

#[test]
fn failed_mid_stream_gives_an_error_frame_and_no_finish_chunk() {
    let events = Events::new()
        .message("msg_1", &["Hel"])
        .failed("Throttling.RateQuota", "Requests rate limit exceeded");
    let mut t = ChunkTranslator::new(ctx());
    let mut out = Vec::new();
    for event in &events {
        out.extend(t.on_event(event));
    }
    assert!(t.is_done());
    assert!(finishes(&out).is_empty());
    let errs = errors(&out);
    assert_eq!(errs.len(), 1);
    assert_eq!(errs[0]["error"]["type"], "rate_limit_error");
    assert!(matches!(out.last(), Some(ChunkOut::Error(_))));
    // Nothing more after the error, not even at the end of the stream.
    assert!(t.on_event(&events[3]).is_empty());
    assert!(t.on_upstream_end().is_empty());
}

#[test]
fn error_event_gives_an_error_frame() {
    let mut ev = Events::new();
    ev.push(json!({
        "type": "error", "code": "data_inspection_failed",
        "message": "Output data may contain inappropriate content.", "param": null,
    }));
    let out = run(ctx(), &ev.truncated());
    let errs = errors(&out);
    assert_eq!(errs.len(), 1);
    assert_eq!(errs[0]["error"]["code"], "content_filter");
    assert!(finishes(&out).is_empty());
}

#[test]
fn truncated_stream_gives_an_error_frame_never_a_fake_stop() {
    let out = run(ctx(), &Events::new().message("msg_1", &["cut"]).truncated());
    assert!(finishes(&out).is_empty());
    let errs = errors(&out);
    assert_eq!(errs.len(), 1);
    assert_eq!(errs[0]["error"]["code"], "upstream_stream_truncated");
    assert_eq!(errs[0]["error"]["type"], "server_error");
}

#[test]
fn upstream_end_after_completion_adds_nothing() {
    let mut t = ChunkTranslator::new(ctx());
    for event in Events::new().message("msg_1", &["ok"]).completed() {
        t.on_event(&event);
    }
    assert!(t.is_done());
    assert!(t.on_upstream_end().is_empty());
}

#[test]
fn transport_error_gives_one_error_frame() {
    let mut t = ChunkTranslator::new(ctx());
    for event in Events::new().message("msg_1", &["ok"]).truncated() {
        t.on_event(&event);
    }
    let err =
        ApiError::server(StatusCode::GATEWAY_TIMEOUT, "idle timeout").with_code("upstream_timeout");
    let out = t.on_upstream_error(&err);
    assert_eq!(out, vec![ChunkOut::Error(err.to_json())]);
    assert!(t.is_done());
    assert!(t.on_upstream_error(&err).is_empty());
    assert!(t.on_upstream_end().is_empty());
}

#[test]
fn stop_string_split_across_three_deltas() {
    let mut c = ctx();
    c.stop = vec!["STOP".into()];
    c.include_usage = true;
    let events = Events::new()
        .message("msg_1", &["Hello S", "T", "OP and more"])
        .completed();
    let mut t = ChunkTranslator::new(c);
    let mut out = Vec::new();
    for event in &events {
        if t.is_done() {
            break;
        }
        out.extend(t.on_event(event));
    }
    assert!(t.is_done());
    assert_eq!(content(&out), "Hello ");
    assert_eq!(finishes(&out), ["stop"]);
    // Upstream was cut off before reporting usage: no usage chunk.
    assert!(chunks(&out).iter().all(|c| c["choices"] != json!([])));
    assert_eq!(t.usage(), None);
    assert_no_filler(&out);
}

#[test]
fn stop_string_inside_one_delta_after_text() {
    let mut c = ctx();
    c.stop = vec!["\n\n".into(), "END".into()];
    let out = run(
        c,
        &Events::new()
            .message("msg_1", &["abc", "def END ghi"])
            .completed(),
    );
    assert_eq!(content(&out), "abcdef ");
    assert_eq!(finishes(&out), ["stop"]);
}

#[test]
fn held_back_text_is_flushed_before_the_finish_chunk() {
    let mut c = ctx();
    c.stop = vec!["STOP".into()];
    let out = run(
        c,
        &Events::new().message("msg_1", &["almost ST"]).completed(),
    );
    assert_eq!(content(&out), "almost ST");
    assert_eq!(finishes(&out), ["stop"]);
    let d = deltas(&out);
    assert_eq!(d[d.len() - 2]["content"], "ST");
}

#[test]
fn legacy_functions_stream_function_call_deltas() {
    let mut c = ctx();
    c.legacy_functions = true;
    let out = run(
        c,
        &Events::new()
            .call("fc_1", "call_1", "get_time", &[r#"{"tz""#, r#":"UTC"}"#])
            .completed(),
    );
    let d = deltas(&out);
    assert_eq!(
        d[1]["function_call"],
        json!({"name": "get_time", "arguments": ""})
    );
    assert!(d.iter().all(|d| d.get("tool_calls").is_none()));
    let args: String = d
        .iter()
        .filter_map(|d| d["function_call"]["arguments"].as_str())
        .collect();
    assert_eq!(args, r#"{"tz":"UTC"}"#);
    assert_eq!(finishes(&out), ["function_call"]);
}

#[test]
fn built_in_tool_items_are_never_tool_calls() {
    let events = Events::new()
        .web_search("ws_1")
        .message("msg_1", &["Found it."])
        .completed();
    let out = run(ctx(), &events);
    assert!(deltas(&out).iter().all(|d| d.get("tool_calls").is_none()));
    assert_eq!(finishes(&out), ["stop"]);
}

#[test]
fn second_message_item_is_separated_like_the_non_streaming_answer() {
    let events = Events::new()
        .message("msg_1", &["First."])
        .web_search("ws_1")
        .message("msg_2", &["Second."])
        .completed();
    let out = run(ctx(), &events);
    assert_eq!(content(&out), "First.\n\nSecond.");
}

/// Reasoning text (not only its summary) and refusals stream as their own delta fields.
#[test]
fn reasoning_text_and_refusal_deltas_become_their_delta_fields() {
    for (kind, item, field, text) in [
        (
            "response.reasoning_text.delta",
            "rs_1",
            "reasoning_content",
            "raw thought",
        ),
        (
            "response.refusal.delta",
            "msg_1",
            "refusal",
            "I can't help with that.",
        ),
    ] {
        let mut ev = Events::new();
        ev.push(json!({
            "type": kind, "item_id": item, "output_index": 0, "content_index": 0, "delta": text,
        }));
        let out = run(ctx(), &ev.completed());
        assert_eq!(deltas(&out)[1][field], text, "{kind}");
    }
}

#[test]
fn model_from_created_is_used_when_present() {
    let mut ev = Events::new();
    let mut events = ev.message("msg_1", &["x"]).completed();
    events[0]["response"]["model"] = MODEL.into();
    let out = run(ctx(), &events);
    assert!(chunks(&out).iter().all(|c| c["model"] == MODEL));
}

#[test]
fn stop_after_tool_calls_finishes_with_tool_calls_once() {
    let mut c = ctx();
    c.stop = vec!["STOP".into()];
    let events = Events::new()
        .call("fc_1", "call_1", "f", &["{}"])
        .message("msg_1", &["text STOP more"])
        .completed();
    let out = run(c, &events);
    assert_eq!(content(&out), "text ");
    assert_eq!(finishes(&out), ["tool_calls"]);
}

#[test]
fn role_is_sent_on_the_first_chunk_even_without_response_created() {
    let mut ev = Events::new();
    let events = ev.message("msg_1", &["Hi"]).completed();
    let out = run(ctx(), &events[2..]);
    assert_eq!(
        deltas(&out)[0],
        json!({"role": "assistant", "content": "Hi"})
    );
    assert_eq!(
        chunks(&out)
            .iter()
            .filter(|c| c["choices"][0]["delta"].get("role").is_some())
            .count(),
        1
    );
    assert_eq!(finishes(&out), ["stop"]);
}

/// As [`run`], with every plain text delta going through `on_text_delta`, as the chat
/// handler feeds them.
fn run_typed(ctx: StreamContext, events: &[Value]) -> (Vec<ChunkOut>, usize) {
    let mut t = ChunkTranslator::new(ctx);
    let (mut out, mut typed) = (Vec::new(), 0);
    for event in events {
        if t.is_done() {
            break;
        }
        match crate::model_studio::events::TextDelta::parse(&event.to_string()) {
            Some(delta) => {
                typed += 1;
                out.extend(t.on_text_delta(&delta));
            }
            None => out.extend(t.on_event(event)),
        }
    }
    out.extend(t.on_upstream_end());
    (out, typed)
}

#[test]
fn typed_text_deltas_translate_exactly_as_whole_events() {
    let mut ev = Events::new();
    ev.message("msg_1", &["Hel", "lo", " STOP", " more"]);
    ev.message("msg_2", &["Sec", "ond"]);
    ev.push(json!({
        "type": "response.output_text.delta", "output_index": 5, "delta": "no item id",
    }));
    let events = ev.completed();
    for stop in [vec![], vec!["STOP".to_owned()]] {
        for include_usage in [false, true] {
            let mut c = ctx();
            c.stop = stop.clone();
            c.include_usage = include_usage;
            let (typed, count) = run_typed(c.clone(), &events);
            assert!(count >= 3, "the deltas took the typed path");
            assert_eq!(typed, run(c, &events));
        }
    }
}
