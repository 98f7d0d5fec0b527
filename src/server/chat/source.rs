//! One upstream answer as parsed events, for the chat translation: the [`EventReader`]'s
//! whole events decoded into JSON, with its faults as `Err`; reading on after a terminal
//! event (connection reuse) or after the client left (token limits).

use crate::error::ApiError;
use crate::model_studio::events::{EventKind, TextDelta};
use crate::request_context::RequestMeta;
use crate::sse;
use crate::upstream::events::{EventReader, ReadLimits};
use crate::upstream::{Limits, UpstreamResponse};
use crate::usage::Usage;
use futures_util::FutureExt;
use serde_json::Value;
use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// One upstream event as the chat translation takes it: a plain text delta (most of an
/// answer) read typed, anything else as a whole `Value`.
pub(super) enum SourceEvent {
    Text(TextDelta),
    Json(Value),
}

/// Upstream events of one choice, parsed, with the transport's failures as `Err`.
pub(super) struct EventSource {
    reader: EventReader,
    region: Arc<str>,
    meta: RequestMeta,
    /// The first event is yet to come: a UTF-8 byte order mark before it is dropped.
    at_start: bool,
    /// The upstream reported this stream's usage (a terminal event arrived).
    terminal_seen: bool,
    /// The gateway is done with this stream on purpose (it ended, broke, or a stop
    /// sequence cut it): nothing more is read when it is dropped.
    pub(super) settled: bool,
    /// Delta events seen, for a usage estimate.
    deltas: u64,
    /// Cancelled when this stream needs no more reading (`RequestMeta::register_drain`).
    drained: CancellationToken,
    /// `upstream.abandoned_stream_drain`.
    drain_for: Duration,
    /// This is the background reader of an abandoned stream: dropped unfinished, it books
    /// an estimate and never respawns.
    is_drainer: bool,
    /// Whether invalid UTF-8 from this upstream was logged already (once per stream).
    warned_utf8: bool,
}

/// After a terminal event the rest of an upstream body (usually just the chunked encoding's
/// end) is read so that its connection returns to the pool instead of being closed: with
/// real Model Studio that saves a TLS handshake to the region on the next request. Bounded,
/// so an upstream that keeps the body open after its answer costs no more than this.
const TAIL_READ_TIME: Duration = Duration::from_secs(2);
const TAIL_READ_BYTES: usize = 64 * 1024;

/// As the pass-through's relay: a stream dropped because its client left is read on (not
/// relayed) to its usage when the key's token limits count it, bounded by `upstream.abandoned_stream_drain`; one that ends
/// without the upstream's count is booked with an estimate.
impl Drop for EventSource {
    fn drop(&mut self) {
        if self.terminal_seen {
            self.drained.cancel();
            if !self.reader.is_finished() {
                self.read_tail();
            }
            return;
        }
        let runtime = tokio::runtime::Handle::try_current();
        let (false, false, Ok(runtime)) = (
            self.settled || self.is_drainer || !self.meta.drain_wanted(),
            self.drain_for.is_zero(),
            runtime,
        ) else {
            self.meta.estimate_usage(self.deltas);
            self.drained.cancel();
            return;
        };
        let rest = EventSource {
            reader: self.reader.take(),
            region: self.region.clone(),
            meta: self.meta.clone(),
            at_start: self.at_start,
            terminal_seen: false,
            settled: false,
            deltas: self.deltas,
            drained: self.drained.clone(),
            drain_for: self.drain_for,
            is_drainer: true,
            warned_utf8: self.warned_utf8,
        };
        runtime.spawn(rest.drain());
    }
}

impl EventSource {
    pub(super) fn new(
        upstream: UpstreamResponse,
        limits: Limits,
        meta: RequestMeta,
        grace_over: CancellationToken,
    ) -> Self {
        let drained = meta.register_drain();
        let read = ReadLimits {
            idle_timeout: limits.stream_idle_timeout,
            max_event_bytes: limits.max_response_bytes,
            max_total_bytes: None,
        };
        Self {
            reader: EventReader::new(upstream.body, read, grace_over),
            region: upstream.region,
            meta,
            at_start: true,
            terminal_seen: false,
            settled: false,
            deltas: 0,
            drained,
            drain_for: limits.abandoned_stream_drain,
            is_drainer: false,
            warned_utf8: false,
        }
    }

    /// Reads the rest of the body in the background, bounded (see [`TAIL_READ_TIME`]).
    fn read_tail(&mut self) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let mut body = self.reader.take().into_body();
        // Usually the body's end arrived with the terminal event: take it now, without a
        // task (`chunk` is cancel-safe, so a pending poll here loses nothing).
        let mut read = 0usize;
        loop {
            match body.chunk().now_or_never() {
                Some(Ok(Some(chunk))) => {
                    read += chunk.len();
                    if read > TAIL_READ_BYTES {
                        return;
                    }
                }
                Some(_) => return,
                None => break,
            }
        }
        runtime.spawn(async move {
            let rest = async {
                while let Ok(Some(chunk)) = body.chunk().await {
                    read += chunk.len();
                    if read > TAIL_READ_BYTES {
                        break;
                    }
                }
            };
            let _ = tokio::time::timeout(TAIL_READ_TIME, rest).await;
        });
    }

    /// Reads on to the terminal event without relaying (see `impl Drop for EventSource`).
    /// Bounded by `drain_for`, the reader's limits and the grace period.
    async fn drain(mut self) {
        let limit = self.drain_for;
        let work = async {
            while !self.terminal_seen {
                match self.next_batch().await {
                    Ok(batch) if !batch.is_empty() => {}
                    _ => break,
                }
            }
        };
        let _ = tokio::time::timeout(limit, work).await;
        // The Drop that follows books an estimate if the end was not reached.
        self.settled = true;
    }

    /// For a non-streaming answer (assembled in memory): the whole upstream stream is
    /// bounded by `upstream.max_response_bytes` too.
    pub(super) fn bounded(mut self, limits: Limits) -> Self {
        self.reader.bound_total(limits.max_response_bytes);
        self
    }

    /// The next batch of events; an empty batch means the upstream ended. After an error
    /// the stream is settled: nothing more will be read from it.
    pub(super) async fn next_batch(&mut self) -> Result<Vec<SourceEvent>, ApiError> {
        let batch = self.read_batch().await;
        if batch.is_err() {
            self.settled = true;
        }
        batch
    }

    async fn read_batch(&mut self) -> Result<Vec<SourceEvent>, ApiError> {
        loop {
            // Parsed here, inside the client's poll: when the client leaves, this future is
            // dropped with the upstream body, and no work goes on.
            let Some(complete) = self.reader.next().await? else {
                self.settled = true;
                // An event whose blank line never came is kept when only the blank line is
                // missing (its every line arrived whole, e.g. an upstream that closes right
                // after its last `data:` line): dropping a complete terminal event would turn
                // a finished answer into a truncated one. One whose last line was cut off may
                // hold half a JSON document, and is dropped.
                let rest = self.reader.take_rest();
                let whole_lines = rest.last().is_some_and(|b| matches!(b, b'\n' | b'\r'));
                return if whole_lines {
                    self.parse(&rest)
                } else {
                    Ok(Vec::new())
                };
            };
            let parsed = self.parse(&complete)?;
            if !parsed.is_empty() {
                return Ok(parsed);
            }
        }
    }

    /// The JSON of each event in `bytes` (whole events), its usage noted. An event whose data
    /// is not JSON ends the answer with an error: what it carried is unknown, and a silently
    /// incomplete answer is worse than a clear error. (Events without data are not events
    /// at all, per the SSE spec.)
    fn parse(&mut self, bytes: &[u8]) -> Result<Vec<SourceEvent>, ApiError> {
        let mut bytes = bytes;
        if std::mem::take(&mut self.at_start) {
            bytes = bytes.strip_prefix(sse::BOM).unwrap_or(bytes);
        }
        let mut parsed = Vec::new();
        for event in sse::events(bytes) {
            let fields = sse::decode(event);
            if fields.invalid_utf8_lines > 0 {
                self.note_invalid_utf8();
            }
            let Some(data) = fields.data.filter(|d| !d.is_empty() && d != "[DONE]") else {
                continue;
            };
            if fields.event.as_deref() == Some(TextDelta::KIND)
                && let Some(delta) = TextDelta::parse(&data)
            {
                // A delta reports no usage: only its kind is noted.
                self.note_kind(TextDelta::KIND);
                parsed.push(SourceEvent::Text(delta));
                continue;
            }
            let Ok(json) = serde_json::from_str::<Value>(&data) else {
                let name = fields
                    .event
                    .filter(|e| !e.is_empty())
                    .unwrap_or(Cow::Borrowed("message"));
                return Err(ApiError::server(
                    http::StatusCode::BAD_GATEWAY,
                    format!(
                        "The upstream sent a '{}' event whose data is not valid JSON.",
                        name.chars().take(64).collect::<String>()
                    ),
                )
                .with_code("upstream_malformed_event"));
            };
            self.note_usage(&json);
            parsed.push(SourceEvent::Json(json));
        }
        Ok(parsed)
    }

    /// Logs once per stream that the upstream sent invalid UTF-8 (decoded lossily: the
    /// answer goes on, with U+FFFD where the bad bytes were).
    fn note_invalid_utf8(&mut self) {
        if !self.warned_utf8 {
            self.warned_utf8 = true;
            tracing::warn!(
                region = %self.region,
                "the upstream sent invalid UTF-8 in an event; decoded with replacement characters"
            );
        }
    }

    /// Adds a terminal event's usage (each of the `n` upstream streams reports its own, once)
    /// so the ledger gets the request's sum, built-in tool calls included.
    fn note_usage(&mut self, event: &Value) {
        self.note_kind(event.get("type").and_then(Value::as_str).unwrap_or(""));
        // `get` twice, not `pointer`: that allocates a String per path token, per event.
        if let Some(usage) = event
            .get("response")
            .and_then(|r| r.get("usage"))
            .and_then(Usage::from_responses)
        {
            self.meta
                .update(|i| i.usage.get_or_insert_with(Usage::default).add(&usage));
        }
    }

    /// Counts a delta (for a usage estimate) and notes a terminal event.
    fn note_kind(&mut self, kind: &str) {
        if kind.ends_with(".delta") {
            self.deltas += 1;
        }
        if EventKind::of(kind).ends_response() {
            self.terminal_seen = true;
        }
    }
}
