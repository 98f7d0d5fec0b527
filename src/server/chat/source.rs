//! One upstream answer as parsed events, for the chat translation: framing, size bounds,
//! idle timeout and the shutdown grace, with the transport's failures as `Err`; reading on
//! after a terminal event (connection reuse) or after the client left (token limits).

use crate::error::ApiError;
use crate::model_studio::events::EventKind;
use crate::request_context::RequestMeta;
use crate::sse::{SseParser, event_json};
use crate::upstream::{self, Limits, UpstreamResponse};
use crate::usage::Usage;
use bytes::Bytes;
use futures_util::FutureExt;
use http::HeaderMap;
use serde_json::Value;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Upstream events of one choice, parsed, with the transport's failures as `Err`.
pub(super) struct EventSource {
    upstream: UpstreamResponse,
    parser: SseParser,
    idle: Duration,
    meta: RequestMeta,
    /// The shutdown grace period's end (see `AppState::grace_over`).
    grace_over: CancellationToken,
    /// `upstream.max_response_bytes`: the most bytes held for one unfinished event, and for
    /// a non-streaming answer (which is assembled in memory) the most read in all.
    max_bytes: usize,
    /// Whether `max_bytes` bounds the whole answer too.
    bounded_total: bool,
    /// Bytes read since the last complete event.
    unfinished: usize,
    total: usize,
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
    /// The upstream body ended (its connection can go back to the pool).
    at_end: bool,
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
            if !self.at_end {
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
        let placeholder = UpstreamResponse {
            region: self.upstream.region.clone(),
            status: self.upstream.status,
            headers: HeaderMap::new(),
            body: upstream::UpstreamBody::buffered(Bytes::new()),
            failed_before_output: None,
        };
        let rest = EventSource {
            upstream: std::mem::replace(&mut self.upstream, placeholder),
            parser: std::mem::replace(&mut self.parser, SseParser::new(0)),
            idle: self.idle,
            meta: self.meta.clone(),
            grace_over: self.grace_over.clone(),
            max_bytes: self.max_bytes,
            bounded_total: self.bounded_total,
            unfinished: self.unfinished,
            total: self.total,
            terminal_seen: false,
            settled: false,
            deltas: self.deltas,
            drained: self.drained.clone(),
            drain_for: self.drain_for,
            is_drainer: true,
            warned_utf8: self.warned_utf8,
            at_end: false,
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
        Self {
            upstream,
            parser: SseParser::new(limits.max_response_bytes),
            idle: limits.stream_idle_timeout,
            meta,
            grace_over,
            max_bytes: limits.max_response_bytes,
            bounded_total: false,
            unfinished: 0,
            total: 0,
            terminal_seen: false,
            settled: false,
            deltas: 0,
            drained,
            drain_for: limits.abandoned_stream_drain,
            is_drainer: false,
            warned_utf8: false,
            at_end: false,
        }
    }

    /// Reads the rest of the body in the background, bounded (see [`TAIL_READ_TIME`]).
    fn read_tail(&mut self) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let mut body = std::mem::replace(
            &mut self.upstream.body,
            upstream::UpstreamBody::buffered(Bytes::new()),
        );
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
    async fn drain(mut self) {
        let limit = self.drain_for;
        let grace_over = self.grace_over.clone();
        let work = async {
            while !self.terminal_seen {
                match self.next_batch().await {
                    Ok(batch) if !batch.is_empty() => {}
                    _ => break,
                }
            }
        };
        tokio::select! {
            _ = tokio::time::timeout(limit, work) => {}
            () = grace_over.cancelled() => {}
        }
        // The Drop that follows books an estimate if the end was not reached.
        self.settled = true;
    }

    /// For a non-streaming answer: the whole upstream stream is bounded too.
    pub(super) fn bounded(mut self) -> Self {
        self.bounded_total = true;
        self
    }

    fn too_large(&self, what: &str) -> ApiError {
        ApiError::server(
            http::StatusCode::BAD_GATEWAY,
            format!(
                "The upstream sent {what} larger than {} bytes (upstream.max_response_bytes).",
                self.max_bytes
            ),
        )
        .with_code(if self.bounded_total && what == "a response" {
            "upstream_response_too_large"
        } else {
            "upstream_event_too_large"
        })
    }

    /// The next batch of events; an empty batch means the upstream ended. After an error
    /// the stream is settled: nothing more will be read from it.
    pub(super) async fn next_batch(&mut self) -> Result<Vec<Value>, ApiError> {
        let batch = self.read_batch().await;
        if batch.is_err() {
            self.settled = true;
        }
        batch
    }

    async fn read_batch(&mut self) -> Result<Vec<Value>, ApiError> {
        loop {
            // Biased: once the grace period is over the stream ends, even mid-answer.
            let read = tokio::select! {
                biased;
                () = self.grace_over.cancelled() => return Err(ApiError::shutting_down()),
                read = tokio::time::timeout(self.idle, self.upstream.body.chunk()) => read,
            };
            let chunk = read
                .map_err(|_| {
                    ApiError::server(
                        http::StatusCode::GATEWAY_TIMEOUT,
                        format!(
                            "The upstream sent nothing for {:?} (upstream.stream_idle_timeout).",
                            self.idle
                        ),
                    )
                    .with_code("upstream_idle_timeout")
                })?
                .map_err(|e| {
                    ApiError::server(
                        http::StatusCode::BAD_GATEWAY,
                        format!("The upstream connection failed mid-stream: {e}"),
                    )
                    .with_code("upstream_stream_error")
                })?;
            let events = match chunk {
                Some(chunk) => {
                    self.total += chunk.len();
                    self.unfinished += chunk.len();
                    if self.bounded_total && self.total > self.max_bytes {
                        return Err(self.too_large("a response"));
                    }
                    // Parsed here, inside the client's poll: when the client leaves, this
                    // future is dropped with the upstream body, and no work goes on.
                    let events = self.parser.push(chunk);
                    self.note_invalid_utf8();
                    if self.parser.oversized_events() > 0 {
                        // The parser dropped an event over the bound (it never holds more).
                        return Err(self.too_large("an event"));
                    }
                    if !events.is_empty() {
                        self.unfinished = 0;
                    } else if self.unfinished > self.max_bytes {
                        return Err(self.too_large("an event"));
                    }
                    events
                }
                None => {
                    self.settled = true;
                    self.at_end = true;
                    let events = self.parser.finish();
                    self.note_invalid_utf8();
                    let parsed = parse_events(&events)?;
                    for event in &parsed {
                        self.note_usage(event);
                    }
                    return Ok(parsed);
                }
            };
            let parsed = parse_events(&events)?;
            for event in &parsed {
                self.note_usage(event);
            }
            if !parsed.is_empty() {
                return Ok(parsed);
            }
        }
    }

    /// Logs once per stream that the upstream sent invalid UTF-8 (decoded lossily: the
    /// answer goes on, with U+FFFD where the bad bytes were).
    fn note_invalid_utf8(&mut self) {
        if !self.warned_utf8 && self.parser.invalid_utf8_lines() > 0 {
            self.warned_utf8 = true;
            tracing::warn!(
                region = %self.upstream.region,
                "the upstream sent invalid UTF-8 in an event; decoded with replacement characters"
            );
        }
    }

    /// Adds a terminal event's usage (each of the `n` upstream streams reports its own, once)
    /// so the ledger gets the request's sum, built-in tool calls included.
    fn note_usage(&mut self, event: &Value) {
        let kind = event.get("type").and_then(Value::as_str).unwrap_or("");
        if kind.ends_with(".delta") {
            self.deltas += 1;
        }
        if EventKind::of(kind).ends_response() {
            self.terminal_seen = true;
        }
        if let Some(usage) = event
            .pointer("/response/usage")
            .and_then(Usage::from_responses)
        {
            self.meta
                .update(|i| i.usage.get_or_insert_with(Usage::default).add(&usage));
        }
    }
}

/// The JSON of each event. An event whose data is not JSON ends the answer with an error:
/// what it carried is unknown, and a silently incomplete answer is worse than a clear error.
/// (Events without data are not events at all, per the SSE spec.)
fn parse_events(events: &[crate::sse::Event]) -> Result<Vec<Value>, ApiError> {
    events
        .iter()
        .filter(|e| !e.data.is_empty() && e.data != "[DONE]")
        .map(|e| {
            event_json(e).ok_or_else(|| {
                ApiError::server(
                    http::StatusCode::BAD_GATEWAY,
                    format!(
                        "The upstream sent a '{}' event whose data is not valid JSON.",
                        e.event.chars().take(64).collect::<String>()
                    ),
                )
                .with_code("upstream_malformed_event")
            })
        })
        .collect()
}
