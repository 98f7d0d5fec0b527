//! Relaying an upstream Responses API stream to the client, byte for byte.
//!
//! Bytes are forwarded unchanged, whole SSE events only, each as soon as its blank line
//! arrives (those that arrived together in one write): a client never receives half an
//! event, so if the upstream breaks
//! off, the gateway can still close the stream with a well-formed `error` event. Events
//! that carry a response id or usage are parsed on the way through (without altering them).

use crate::conversation::TurnRecorder;
use crate::model_studio::conformance;
use crate::model_studio::events::EventKind;
use crate::request_context::RequestMeta;
use crate::sse;
use crate::upstream::UpstreamBody;
use crate::upstream::events::{EventReader, ReadLimits};
use crate::usage::Usage;
use bytes::Bytes;
use futures_util::Stream;
use memchr::memmem::{Finder, FinderRev};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Value, json};
use std::borrow::Cow;
use std::convert::Infallible;
use std::sync::LazyLock;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// What the relay learnt from the events it passed on.
#[derive(Debug, Default)]
struct Observed {
    terminal: bool,
    /// The last whole events relayed (a cheap `Bytes` handle): an error event the gateway
    /// writes after them continues their `sequence_number`s.
    last_events: Option<Bytes>,
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

/// The fields of a lifecycle event the relay acts on, borrowed from its data: anything else
/// in it is skipped by the parser, never built. A field of an unexpected JSON type reads as
/// absent rather than hide the event.
#[derive(Deserialize)]
struct Lifecycle<'a> {
    #[serde(rename = "type", borrow, default)]
    kind: Cow<'a, str>,
    #[serde(borrow, default)]
    response: Option<&'a RawValue>,
    #[serde(borrow, default)]
    code: Option<&'a RawValue>,
}

/// `response` of a lifecycle event (and `error` of a failed one: `code` only).
#[derive(Default, Deserialize)]
struct ResponseHead<'a> {
    #[serde(borrow, default)]
    id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    usage: Option<&'a RawValue>,
    #[serde(borrow, default)]
    error: Option<&'a RawValue>,
    #[serde(borrow, default)]
    code: Option<&'a RawValue>,
}

impl<'a> ResponseHead<'a> {
    fn of(raw: Option<&'a RawValue>) -> Self {
        raw.and_then(|raw| serde_json::from_str(raw.get()).ok())
            .unwrap_or_default()
    }
}

/// A JSON string's value; `None` for anything else.
fn string_of(raw: Option<&RawValue>) -> Option<String> {
    raw.and_then(|raw| serde_json::from_str::<String>(raw.get()).ok())
}

/// The relay's state between chunks.
struct Relay {
    reader: EventReader,
    /// `upstream.max_response_bytes`: bounds what a drain reads.
    max_event_bytes: usize,
    observed: Observed,
    meta: RequestMeta,
    recorder: Option<TurnRecorder>,
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
            reader: self.reader.take(),
            max_event_bytes: self.max_event_bytes,
            observed: std::mem::take(&mut self.observed),
            meta: self.meta.clone(),
            recorder: self.recorder.take(),
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
    /// Bounded by time (`drain_for`), by the reader's limits and the grace period, and in
    /// bytes (four events' worth): an upstream that never ends costs no more than that.
    async fn drain(mut self) {
        let limit = self.drain_for;
        let work = async {
            let budget = self.max_drain_bytes();
            while !self.observed.terminal {
                match self.reader.next().await {
                    Ok(Some(complete)) => self.observe(&complete),
                    Ok(None) | Err(_) => break,
                }
                if self.reader.bytes_read() > budget {
                    break;
                }
            }
        };
        let _ = tokio::time::timeout(limit, work).await;
        if self.observed.terminal {
            tracing::debug!("abandoned stream read to its end; its usage is booked");
        } else {
            tracing::info!("abandoned stream not read to its end; booking an estimate");
        }
        // The Drop that follows books an estimate if the end was not reached, and cancels
        // `drained`.
        self.done = true;
    }

    fn max_drain_bytes(&self) -> usize {
        self.reader
            .bytes_read()
            .saturating_add(self.max_event_bytes.saturating_mul(4))
    }

    /// Looks at whole events on their way through. Most are deltas the relay only passes
    /// on (parsing every one was over half the relay's cost, bench/PROFILE.md): an event is
    /// parsed only when its `event:` line names a lifecycle event (or, without one, when its
    /// bytes hold a lifecycle type), and then into a borrowed view of the few fields the
    /// gateway uses, not a JSON tree. What happened is read from the data's `type`.
    fn observe(&mut self, complete: &Bytes) {
        // Nearly every batch is one event: then it needs no second scan to be split, and
        // its name was read while it was framed.
        if self.reader.batch_events() == 1 {
            match self.reader.batch_event_name() {
                Some(name) => {
                    let name = name.and_then(|range| complete.get(range));
                    self.observe_named(complete, name);
                }
                None => self.observe_event(complete),
            }
        } else {
            for event in sse::events(complete) {
                self.observe_event(event);
            }
        }
        // Their sequence number is read only if the gateway must write an event after them
        // (a batch without JSON, e.g. a keep-alive comment, has none and is not kept).
        if memchr::memchr(b'{', complete).is_some() {
            self.observed.last_events = Some(complete.clone());
        }
    }

    fn observe_event(&mut self, event: &[u8]) {
        self.observe_named(event, sse::event_name_of(event));
    }

    /// One event and its `event:` value (`None`: it has no `event:` line).
    fn observe_named(&mut self, event: &[u8], name: Option<&[u8]>) {
        let parse = match name {
            // Nearly every event: counted, and no lifecycle event is a delta.
            Some(name) if name.ends_with(b".delta") => {
                self.observed.deltas += 1;
                false
            }
            Some(name) => {
                let kind = EventKind::of_bytes(name);
                kind == EventKind::Created || kind.ends_stream()
            }
            None => {
                self.observed.deltas += DELTA_FINDER.find_iter(event).count() as u64;
                worth_parsing(event)
            }
        };
        if parse {
            self.observe_lifecycle(&sse::data_of(event));
        }
    }

    /// A `response.created`, terminal or `error` event's data.
    fn observe_lifecycle(&mut self, data: &[u8]) {
        let owned;
        let event = match serde_json::from_slice::<Lifecycle<'_>>(data) {
            Ok(event) => event,
            // Invalid UTF-8 in a string: read it lossily rather than lose the stream's end.
            Err(_) => {
                owned = String::from_utf8_lossy(data).into_owned();
                match serde_json::from_str::<Lifecycle<'_>>(&owned) {
                    Ok(event) => event,
                    Err(_) => return,
                }
            }
        };
        let kind = EventKind::of(&event.kind);
        let response = ResponseHead::of(event.response);
        let id = string_of(response.id);
        if kind == EventKind::Created {
            if let (Some(recorder), Some(id)) = (self.recorder.as_mut(), id.as_deref()) {
                recorder.on_id(id);
            }
            return;
        }
        if !kind.ends_stream() {
            return;
        }
        self.observed.terminal = true;
        if let Some(recorder) = self.recorder.as_mut() {
            // Only a turn kept for replay needs the whole response (its output items).
            if recorder.keeps_turn() {
                let whole = event
                    .response
                    .and_then(|raw| serde_json::from_str::<Value>(raw.get()).ok());
                if let Some(whole) = whole {
                    recorder.on_response(&whole);
                }
            } else if let Some(id) = id.as_deref() {
                recorder.on_id(id);
            }
        }
        if let Some(usage) = response
            .usage
            .and_then(|raw| serde_json::from_str::<Value>(raw.get()).ok())
            .as_ref()
            .and_then(Usage::from_responses)
        {
            self.meta.update(|i| i.usage = Some(usage));
        }
        if !kind.finishes() {
            let code = string_of(ResponseHead::of(response.error).code).or(string_of(event.code));
            self.meta.update(|i| i.error_code = code);
        }
    }

    /// A Responses-style `error` event that ends a stream the upstream broke off. It has
    /// OpenAI's documented flat fields and the nested `error` object the official SDKs
    /// look for (openai-python raises on `data.get("error")`, openai-node on `data.error`):
    /// without it, frameworks on top of them end a broken stream as if it had completed.
    fn error_frame(&mut self, code: &str, message: String) -> Bytes {
        self.done = true;
        self.meta.update(|i| i.error_code = Some(code.to_owned()));
        let sequence = self
            .observed
            .last_events
            .as_deref()
            .and_then(sequence_number)
            .map_or(0, |s| s + 1);
        let data = json!({
            "type": "error",
            "code": code,
            "message": message,
            "param": null,
            "sequence_number": sequence,
            "error": {
                "type": crate::error::ErrorType::Server,
                "code": code,
                "message": message,
                "param": null,
            },
        });
        Bytes::from(format!("event: error\ndata: {data}\n\n"))
    }

    async fn next_chunk(&mut self) -> Option<Bytes> {
        if self.done {
            return None;
        }
        match self.reader.next().await {
            Ok(Some(complete)) => {
                self.observe(&complete);
                Some(complete)
            }
            Ok(None) => {
                self.done = true;
                let rest = self.reader.take_rest();
                if self.observed.terminal {
                    return (!rest.is_empty()).then_some(rest);
                }
                Some(self.error_frame(
                    "upstream_stream_truncated",
                    "The upstream ended the stream before the response was complete.".into(),
                ))
            }
            Err(fault) => {
                let code = fault.code();
                let message = crate::error::ApiError::from(fault).message;
                Some(self.error_frame(code, message))
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
    let limits = ReadLimits {
        idle_timeout,
        max_event_bytes,
        max_total_bytes: None,
    };
    let relay = Relay {
        reader: EventReader::new(upstream, limits, grace_over),
        max_event_bytes,
        observed: Observed::default(),
        meta,
        recorder,
        done: false,
        drained,
        drain_for,
        is_drainer: false,
        conformance,
    };
    // Boxed: `unfold` moves its state into each item's future and back out, and the relay
    // is a few hundred bytes; a box is one pointer (−0.3 k instructions per event).
    futures_util::stream::unfold(Box::new(relay), |mut relay| async move {
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
