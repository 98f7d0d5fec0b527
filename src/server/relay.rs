//! Relaying an upstream Responses API stream to the client, byte for byte.
//!
//! Bytes are forwarded unchanged, one complete SSE event at a time, as soon as the event's
//! blank line arrives: a client never receives half an event, so if the upstream breaks
//! off, the gateway can still close the stream with a well-formed `error` event. Events
//! that carry a response id or usage are parsed on the way through (without altering them).

use crate::conversation::TurnRecorder;
use crate::model_studio::conformance;
use crate::model_studio::events::EventKind;
use crate::request_context::RequestMeta;
use crate::sse::{SseParser, event_json};
use crate::upstream::UpstreamBody;
use crate::usage::Usage;
use bytes::{Bytes, BytesMut};
use futures_util::Stream;
use memchr::memmem::{Finder, FinderRev};
use serde_json::{Value, json};
use std::convert::Infallible;
use std::sync::LazyLock;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Finds SSE event boundaries (a blank line: two line terminators in a row, where a
/// terminator is `\r\n`, `\n` or `\r`) across arbitrary chunking.
#[derive(Debug, Default)]
pub struct EventSplitter {
    pending: BytesMut,
    at_line_start: bool,
    prev_cr: bool,
    started: bool,
}

impl EventSplitter {
    /// Takes a chunk and returns the bytes that complete whole events (possibly several),
    /// keeping an unfinished event for later. Zero-copy when nothing was pending.
    pub fn push(&mut self, chunk: Bytes) -> Option<Bytes> {
        let boundary = self.scan(&chunk);
        match boundary {
            None => {
                self.pending.extend_from_slice(&chunk);
                None
            }
            Some(end) if self.pending.is_empty() => {
                let mut chunk = chunk;
                let complete = chunk.split_to(end);
                self.pending.extend_from_slice(&chunk);
                Some(complete)
            }
            Some(end) => {
                self.pending.extend_from_slice(&chunk[..end]);
                let complete = self.pending.split().freeze();
                self.pending.extend_from_slice(&chunk[end..]);
                Some(complete)
            }
        }
    }

    /// How many bytes of an unfinished event are held.
    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    /// Bytes of an event that never got its blank line.
    pub fn take_pending(&mut self) -> Bytes {
        self.pending.split().freeze()
    }

    /// Returns the end offset (exclusive) of the last event boundary in `chunk`, updating the
    /// line state as if all of `chunk` had been consumed.
    fn scan(&mut self, chunk: &[u8]) -> Option<usize> {
        let mut last = None;
        for (i, &b) in chunk.iter().enumerate() {
            match b {
                b'\n' if self.prev_cr => {
                    self.prev_cr = false;
                    // The `\n` of a `\r\n` terminator that was counted at its `\r`.
                    if last == Some(i) {
                        last = Some(i + 1);
                    }
                }
                b'\n' | b'\r' => {
                    if self.at_line_start && self.started {
                        last = Some(i + 1);
                        self.started = false;
                    }
                    self.at_line_start = true;
                    self.prev_cr = b == b'\r';
                }
                _ => {
                    self.at_line_start = false;
                    self.prev_cr = false;
                    self.started = true;
                }
            }
        }
        last
    }
}

/// What the relay learnt from the events it passed on.
#[derive(Debug, Default)]
struct Observed {
    response_id: Option<String>,
    terminal: bool,
    last_sequence: Option<u64>,
    /// Delta events seen (about a token each), for a usage estimate when the stream ends
    /// without the upstream's count.
    deltas: u64,
}

const SEQUENCE_KEY: &[u8] = b"\"sequence_number\":";

/// `"….delta"` event types, counted in the raw bytes.
const DELTA_TYPE: &[u8] = b".delta\"";

/// The JSON `type`s worth parsing an event for: they carry the id, the usage or the end.
const LIFECYCLE: [&str; 5] = [
    "\"response.created\"",
    "\"response.completed\"",
    "\"response.incomplete\"",
    "\"response.failed\"",
    "\"error\"",
];

/// Searchers built once: building a `memmem` searcher per chunk cost more than searching
/// a small event with it.
static LIFECYCLE_FINDERS: LazyLock<Vec<Finder<'static>>> = LazyLock::new(|| {
    LIFECYCLE
        .iter()
        .map(|n| Finder::new(n.as_bytes()))
        .collect()
});
static DELTA_FINDER: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(DELTA_TYPE));
static SEQUENCE_FINDER: LazyLock<FinderRev<'static>> =
    LazyLock::new(|| FinderRev::new(SEQUENCE_KEY));

/// Whether any event in `bytes` may be a lifecycle event (a cheap byte search): only events
/// that can carry an id, usage or an end are parsed as JSON; deltas are not.
fn worth_parsing(bytes: &[u8]) -> bool {
    LIFECYCLE_FINDERS
        .iter()
        .any(|finder| finder.find(bytes).is_some())
}

/// The relay's state between chunks.
struct Relay {
    upstream: UpstreamBody,
    splitter: EventSplitter,
    parser: SseParser,
    observed: Observed,
    idle_timeout: Duration,
    /// Largest single event held while waiting for its blank line.
    max_event_bytes: usize,
    meta: RequestMeta,
    recorder: Option<TurnRecorder>,
    /// The shutdown grace period's end (see `AppState::grace_over`).
    grace_over: CancellationToken,
    done: bool,
    /// Cancelled when this stream needs no more reading (see `RequestMeta::register_drain`).
    drained: CancellationToken,
    /// How long to read on after the client left (`upstream.abandoned_stream_drain`).
    drain_for: Duration,
    /// This is the background reader of an abandoned stream.
    is_drainer: bool,
    /// `responses.conformance`: integer timestamps in relayed events.
    conformance: bool,
}

/// A client that leaves mid-stream must not dodge its key's token limits, so for a key with
/// token limits the rest is read without being relayed, bounded by `drain_for` and the event
/// size limit, to book the real usage from its terminal event; a stream that cannot be read
/// to its end is booked with an estimate.
impl Drop for Relay {
    fn drop(&mut self) {
        if self.observed.terminal {
            self.drained.cancel();
            return;
        }
        // `drained` tokens of drainers are never handed on: a drainer dropped unfinished (its
        // time is up, or the runtime is shutting down) books an estimate, never respawns.
        if self.done || self.drain_for.is_zero() || self.is_drainer || !self.meta.drain_wanted() {
            self.meta.estimate_usage(self.observed.deltas);
            self.drained.cancel();
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            self.meta.estimate_usage(self.observed.deltas);
            self.drained.cancel();
            return;
        };
        let rest = Relay {
            upstream: std::mem::replace(&mut self.upstream, UpstreamBody::buffered(Bytes::new())),
            splitter: std::mem::take(&mut self.splitter),
            parser: std::mem::replace(&mut self.parser, SseParser::new(0)),
            observed: std::mem::take(&mut self.observed),
            idle_timeout: self.idle_timeout,
            max_event_bytes: self.max_event_bytes,
            meta: self.meta.clone(),
            recorder: self.recorder.take(),
            grace_over: self.grace_over.clone(),
            done: false,
            drained: self.drained.clone(),
            drain_for: self.drain_for,
            is_drainer: true,
            conformance: self.conformance,
        };
        runtime.spawn(rest.drain());
    }
}

impl Relay {
    /// Reads on to the terminal event without relaying (see `impl Drop for Relay`).
    async fn drain(mut self) {
        let limit = self.drain_for;
        let grace_over = self.grace_over.clone();
        let work = async {
            let mut read = 0usize;
            while !self.observed.terminal {
                let chunk =
                    match tokio::time::timeout(self.idle_timeout, self.upstream.chunk()).await {
                        Ok(Ok(Some(chunk))) => chunk,
                        _ => break,
                    };
                read += chunk.len();
                if let Some(complete) = self.splitter.push(chunk) {
                    self.observe(&complete);
                }
                if read > self.max_event_bytes.saturating_mul(4)
                    || self.splitter.pending_len() > self.max_event_bytes
                {
                    break;
                }
            }
        };
        tokio::select! {
            _ = tokio::time::timeout(limit, work) => {}
            () = grace_over.cancelled() => {}
        }
        if self.observed.terminal {
            tracing::debug!("abandoned stream read to its end; its usage is booked");
        } else {
            tracing::info!("abandoned stream not read to its end; booking an estimate");
        }
        // The Drop that follows books an estimate if the end was not reached, and cancels
        // `drained`.
        self.done = true;
    }

    fn observe(&mut self, complete: &Bytes) {
        self.observed.deltas += DELTA_FINDER.find_iter(complete).count() as u64;
        // Most events are deltas the relay only passes on: find the last sequence number in
        // the raw bytes and parse events only when a lifecycle event is among them (parsing
        // every delta was over half the relay's cost, bench/PROFILE.md). Skipping is safe:
        // `complete` always holds whole events, so the parser never holds a partial one.
        if !worth_parsing(complete) {
            if let Some(seq) = sequence_number(complete) {
                self.observed.last_sequence = Some(seq);
            }
            return;
        }
        for event in self.parser.push(complete.clone()) {
            if let Some(seq) = sequence_number(event.data.as_bytes()) {
                self.observed.last_sequence = Some(seq);
            }
            if !worth_parsing(event.data.as_bytes()) {
                continue;
            }
            let Some(json) = event_json(&event) else {
                continue;
            };
            let kind = EventKind::of_event(&json);
            if kind == EventKind::Created {
                self.observed.response_id = json
                    .pointer("/response/id")
                    .and_then(Value::as_str)
                    .map(str::to_owned);
                if let (Some(recorder), Some(id)) =
                    (self.recorder.as_mut(), self.observed.response_id.as_deref())
                {
                    recorder.on_id(id);
                }
            }
            if kind.ends_stream() {
                self.observed.terminal = true;
                if let (Some(recorder), Some(response)) =
                    (self.recorder.as_mut(), json.get("response"))
                {
                    recorder.on_response(response);
                }
                if let Some(usage) = json
                    .pointer("/response/usage")
                    .and_then(Usage::from_responses)
                {
                    self.meta.update(|i| i.usage = Some(usage));
                }
                if !kind.finishes() {
                    let code = json
                        .pointer("/response/error/code")
                        .or_else(|| json.get("code"))
                        .and_then(Value::as_str)
                        .map(str::to_owned);
                    self.meta.update(|i| i.error_code = code);
                }
            }
        }
    }

    /// A Responses-style `error` event that ends a stream the upstream broke off. It has
    /// OpenAI's documented flat fields and the nested `error` object the official SDKs
    /// look for (openai-python raises on `data.get("error")`, openai-node on `data.error`):
    /// without it, frameworks on top of them end a broken stream as if it had completed.
    fn error_frame(&mut self, code: &str, message: String) -> Bytes {
        self.done = true;
        self.meta.update(|i| i.error_code = Some(code.to_owned()));
        let sequence = self.observed.last_sequence.map_or(0, |s| s + 1);
        let data = json!({
            "type": "error",
            "code": code,
            "message": message,
            "param": null,
            "sequence_number": sequence,
            "error": {
                "type": crate::error::kind::SERVER,
                "code": code,
                "message": message,
                "param": null,
            },
        });
        Bytes::from(format!("event: error\ndata: {data}\n\n"))
    }

    async fn next_chunk(&mut self) -> Option<Bytes> {
        loop {
            if self.done {
                return None;
            }
            // Biased: once the grace period is over the stream ends, even mid-answer.
            let read = tokio::select! {
                biased;
                () = self.grace_over.cancelled() => {
                    let message = crate::error::ApiError::shutting_down().message;
                    return Some(self.error_frame(crate::error::SHUTTING_DOWN, message));
                }
                read = tokio::time::timeout(self.idle_timeout, self.upstream.chunk()) => read,
            };
            match read {
                Ok(Ok(Some(chunk))) => {
                    let complete = self.splitter.push(chunk);
                    if self.splitter.pending_len() > self.max_event_bytes {
                        // Never send half an event: whole events first, then the error.
                        if let Some(complete) = &complete {
                            self.observe(complete);
                        }
                        let error = self.error_frame(
                            "upstream_event_too_large",
                            format!(
                                "The upstream sent an event larger than {} bytes (upstream.max_response_bytes).",
                                self.max_event_bytes
                            ),
                        );
                        return Some(match complete {
                            Some(complete) => {
                                let mut both = complete.to_vec();
                                both.extend_from_slice(&error);
                                Bytes::from(both)
                            }
                            None => error,
                        });
                    }
                    if let Some(complete) = complete {
                        self.observe(&complete);
                        return Some(complete);
                    }
                }
                Ok(Ok(None)) => {
                    self.done = true;
                    let rest = self.splitter.take_pending();
                    if self.observed.terminal {
                        return (!rest.is_empty()).then_some(rest);
                    }
                    return Some(self.error_frame(
                        "upstream_stream_truncated",
                        "The upstream ended the stream before the response was complete.".into(),
                    ));
                }
                Ok(Err(err)) => {
                    return Some(self.error_frame(
                        "upstream_stream_error",
                        format!("The upstream connection failed mid-stream: {err}"),
                    ));
                }
                Err(_) => {
                    return Some(self.error_frame(
                        "upstream_idle_timeout",
                        format!(
                            "The upstream sent nothing for {:?} (upstream.stream_idle_timeout).",
                            self.idle_timeout
                        ),
                    ));
                }
            }
        }
    }
}

/// The last `"sequence_number":N` in `data`, read without parsing (or decoding) events:
/// bytes, so invalid UTF-8 elsewhere in them does not hide it.
fn sequence_number(data: &[u8]) -> Option<u64> {
    let at = SEQUENCE_FINDER.rfind(data)? + SEQUENCE_KEY.len();
    let digits = data[at..].trim_ascii_start();
    let end = digits
        .iter()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(digits.len());
    std::str::from_utf8(&digits[..end]).ok()?.parse().ok()
}

/// How a relay reads and what it may change.
#[derive(Clone, Copy, Debug)]
pub struct RelaySettings {
    /// `upstream.stream_idle_timeout`.
    pub idle_timeout: Duration,
    /// Largest single event (`upstream.max_response_bytes`).
    pub max_event_bytes: usize,
    /// `upstream.abandoned_stream_drain`.
    pub drain_for: Duration,
    /// `responses.conformance`.
    pub conformance: bool,
}

/// The client-facing byte stream for an upstream SSE response; ends with an error event
/// when `grace_over` is cancelled.
pub fn relay_stream(
    upstream: UpstreamBody,
    settings: RelaySettings,
    meta: RequestMeta,
    recorder: Option<TurnRecorder>,
    grace_over: CancellationToken,
) -> impl Stream<Item = Result<Bytes, Infallible>> + Send + 'static {
    let RelaySettings {
        idle_timeout,
        max_event_bytes,
        drain_for,
        conformance,
    } = settings;
    let drained = meta.register_drain();
    let relay = Relay {
        upstream,
        splitter: EventSplitter::default(),
        // The splitter bounds what is pending to `max_event_bytes` and the parser only gets
        // whole events it released; its own bound keeps that true of the parser too (an
        // event the splitter let through in the read that crossed the bound is relayed, not
        // parsed).
        parser: SseParser::new(max_event_bytes),
        observed: Observed::default(),
        idle_timeout,
        max_event_bytes,
        meta,
        recorder,
        grace_over,
        done: false,
        drained,
        drain_for,
        is_drainer: false,
        conformance,
    };
    futures_util::stream::unfold(relay, |mut relay| async move {
        let chunk = relay.next_chunk().await?;
        // On every way out (whole events, the events before an oversized one, an unfinished
        // last event at the end), so no relayed event escapes the rewrite.
        let chunk = if relay.conformance {
            conformance::integer_timestamps_bytes(chunk)
        } else {
            chunk
        };
        Some((Ok(chunk), relay))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split_all(chunks: &[&str]) -> Vec<String> {
        let mut s = EventSplitter::default();
        chunks
            .iter()
            .filter_map(|c| s.push(Bytes::from(c.to_string())))
            .map(|b| String::from_utf8(b.to_vec()).unwrap())
            .collect()
    }

    #[test]
    fn splits_on_blank_lines_across_chunks() {
        let out = split_all(&["data: a\n", "\ndata: b\n\nda", "ta: c\n", "\n"]);
        // One chunk may complete several events; they leave together.
        assert_eq!(out, ["data: a\n\ndata: b\n\n", "data: c\n\n"]);
    }

    #[test]
    fn handles_crlf_split_between_chunks() {
        let out = split_all(&["data: a\r\n\r", "\ndata: b\r\n\r\n"]);
        assert_eq!(out.concat(), "data: a\r\n\r\ndata: b\r\n\r\n");
        assert_eq!(out.len(), 2);
    }

    #[test]
    fn comment_and_id_lines_stay_in_their_event() {
        let out = split_all(&[":HTTP_STATUS/200\nid:1\nevent:x\ndata:{}\n\nid:2\n"]);
        assert_eq!(out, [":HTTP_STATUS/200\nid:1\nevent:x\ndata:{}\n\n"]);
    }

    #[test]
    fn reads_sequence_numbers() {
        assert_eq!(
            sequence_number(br#"{"a":1,"sequence_number": 42,"type":"x"}"#),
            Some(42)
        );
        assert_eq!(sequence_number(b"{}"), None);
        assert_eq!(
            sequence_number(b"data: {\"d\":\"\xff\xfe\",\"sequence_number\":7}\n\n"),
            Some(7),
            "invalid UTF-8 elsewhere does not hide it"
        );
    }
}
