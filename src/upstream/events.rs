//! One reader for upstream event streams: whole SSE events as they arrive, or the typed
//! fault that ended the stream. The pass-through relay forwards the events' bytes and the
//! chat translation parses them; both read through this, so the idle timeout, the size
//! bounds, the shutdown grace and their error codes are decided here once.

use super::UpstreamBody;
use crate::error::ApiError;
use crate::sse::EventFramer;
use bytes::{Bytes, BytesMut};
use http::StatusCode;
use std::future::Future as _;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::{Instant, Sleep};
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

/// Why an upstream stream ended before its end. Each maps to one client-visible error code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StreamFault {
    /// Nothing arrived for `upstream.stream_idle_timeout`.
    #[error("The upstream sent nothing for {0:?} (upstream.stream_idle_timeout).")]
    Idle(Duration),
    /// The connection failed (reset, bad chunked encoding, ...).
    #[error("The upstream connection failed mid-stream: {0}")]
    Broken(String),
    /// One event grew past `upstream.max_response_bytes` without its blank line.
    #[error("The upstream sent an event larger than {0} bytes (upstream.max_response_bytes).")]
    EventTooLarge(usize),
    /// A bounded stream (a non-streaming answer, assembled in memory) grew past the limit.
    #[error("The upstream sent a response larger than {0} bytes (upstream.max_response_bytes).")]
    ResponseTooLarge(usize),
    /// The shutdown grace period ended (see `AppState::grace_over`).
    #[error("the gateway's shutdown grace period ended")]
    ShuttingDown,
}

impl StreamFault {
    /// The OpenAI error `code` a client sees for this fault.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Idle(_) => "upstream_idle_timeout",
            Self::Broken(_) => "upstream_stream_error",
            Self::EventTooLarge(_) => "upstream_event_too_large",
            Self::ResponseTooLarge(_) => "upstream_response_too_large",
            Self::ShuttingDown => crate::error::SHUTTING_DOWN,
        }
    }
}

impl From<StreamFault> for ApiError {
    fn from(fault: StreamFault) -> Self {
        let status = match fault {
            StreamFault::Idle(_) => StatusCode::GATEWAY_TIMEOUT,
            StreamFault::ShuttingDown => return ApiError::shutting_down(),
            _ => StatusCode::BAD_GATEWAY,
        };
        ApiError::server(status, fault.to_string()).with_code(fault.code())
    }
}

/// How an [`EventReader`] reads.
#[derive(Debug, Clone, Copy)]
pub struct ReadLimits {
    /// `upstream.stream_idle_timeout`: the longest wait for the next bytes.
    pub idle_timeout: Duration,
    /// `upstream.max_response_bytes`: the most bytes held for one unfinished event.
    pub max_event_bytes: usize,
    /// The most bytes read in all (`None`: unbounded; a stream is bounded by time instead).
    pub max_total_bytes: Option<usize>,
}

/// A read stops joining chunks that were already there once it holds this many bytes (see
/// [`EventReader::join_ready`]): one more chunk at most, so a read stays bounded.
const JOIN_MAX: usize = 64 * 1024;

/// Whole events from an upstream body (see the module docs).
#[derive(Debug)]
pub struct EventReader {
    body: UpstreamBody,
    framer: EventFramer,
    limits: ReadLimits,
    grace_over: CancellationToken,
    /// The idle timer and the grace-over wait live as long as the reader: a fresh
    /// `timeout` and `cancelled()` per read registered a timer and a waiter, then removed
    /// both, for every event (pushing a live timer's deadline later is one atomic update).
    idle: Pin<Box<Sleep>>,
    grace: Pin<Box<WaitForCancellationFutureOwned>>,
    total: usize,
    /// A fault found while events completed in the same chunk: those go first.
    fault: Option<StreamFault>,
    /// A failure met while joining ready chunks: the next read returns it, after them.
    deferred: Option<StreamFault>,
    /// The body ended or failed: nothing more is read.
    finished: bool,
}

impl EventReader {
    pub fn new(body: UpstreamBody, limits: ReadLimits, grace_over: CancellationToken) -> Self {
        Self {
            body,
            framer: EventFramer::default(),
            limits,
            idle: Box::pin(tokio::time::sleep(limits.idle_timeout)),
            grace: Box::pin(grace_over.clone().cancelled_owned()),
            grace_over,
            total: 0,
            fault: None,
            deferred: None,
            finished: false,
        }
    }

    /// The bytes of the next whole events (one or more: all that had arrived), `Ok(None)` at the
    /// body's end (then [`EventReader::take_rest`] has an event that never got its blank
    /// line), or the fault that ends the stream. Events that completed before a size fault
    /// are returned first: a client never loses a whole event to a later one's fault.
    /// After `Ok(None)` or a fault, nothing more is read. Cancel-safe.
    pub async fn next(&mut self) -> Result<Option<Bytes>, StreamFault> {
        if let Some(fault) = self.fault.take() {
            return Err(fault);
        }
        while !self.finished {
            // Once the grace period is over the stream ends, even mid-answer: checked before
            // every read (a flag), so the wait below polls the body first and registers for
            // the cancellation only when it has to wait.
            if self.grace_over.is_cancelled() {
                self.finished = true;
                return Err(StreamFault::ShuttingDown);
            }
            let chunk = match self.read().await {
                Ok(Some(chunk)) => chunk,
                Ok(None) => {
                    self.finished = true;
                    return Ok(None);
                }
                Err(fault) => {
                    self.finished = true;
                    return Err(fault);
                }
            };
            self.total += chunk.len();
            let complete = self.framer.push(chunk);
            let fault = match self.limits.max_total_bytes {
                Some(max) if self.total > max => Some(StreamFault::ResponseTooLarge(max)),
                _ if self.framer.pending_len() > self.limits.max_event_bytes => {
                    Some(StreamFault::EventTooLarge(self.limits.max_event_bytes))
                }
                _ => None,
            };
            if let Some(fault) = fault {
                self.finished = true;
                // Never half an event: the whole ones first, then the fault.
                return match complete {
                    Some(complete) => {
                        self.fault = Some(fault);
                        Ok(Some(complete))
                    }
                    None => Err(fault),
                };
            }
            if complete.is_some() {
                return Ok(complete);
            }
        }
        Ok(None)
    }

    /// The next chunk, or the fault that ended the wait for it. The idle timer is armed
    /// when the wait starts, i.e. when the body has nothing ready: bytes already there are
    /// taken without touching the timer (or the clock).
    async fn read(&mut self) -> Result<Option<Bytes>, StreamFault> {
        if let Some(fault) = self.deferred.take() {
            return Err(fault);
        }
        let mut armed = false;
        std::future::poll_fn(|cx| {
            if let Poll::Ready(read) = self.body.poll_chunk(cx) {
                return Poll::Ready(match read {
                    Ok(Some(chunk)) => Ok(Some(self.join_ready(chunk, cx))),
                    Ok(None) => Ok(None),
                    Err(err) => Err(StreamFault::Broken(err.to_string())),
                });
            }
            if self.grace.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Err(StreamFault::ShuttingDown));
            }
            if !armed {
                // The idle time counts from here, as this wait for bytes starts.
                let deadline = Instant::now() + self.limits.idle_timeout;
                self.idle.as_mut().reset(deadline);
                armed = true;
            }
            if self.idle.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Err(StreamFault::Idle(self.limits.idle_timeout)));
            }
            Poll::Pending
        })
        .await
    }

    /// `first` and the chunks already there behind it (joined until [`JOIN_MAX`] bytes), as one:
    /// events that arrived together leave in one client write, as nginx relays what one
    /// read brought, and none is held back to wait for more. Under load, when a stream's
    /// events pile up while its task waits for a core, this is what keeps the cost per
    /// event falling; at a steady token rate each chunk comes alone and is passed as it is.
    /// A failure met here is deferred to the next read, after these bytes.
    fn join_ready(&mut self, first: Bytes, cx: &mut Context<'_>) -> Bytes {
        if !self.body.may_have_more_ready() {
            return first;
        }
        let mut joined: Option<BytesMut> = None;
        let mut len = first.len();
        while len < JOIN_MAX {
            match self.body.poll_chunk(cx) {
                Poll::Ready(Ok(Some(more))) => {
                    len += more.len();
                    joined
                        .get_or_insert_with(|| {
                            let mut buf = BytesMut::with_capacity(len);
                            buf.extend_from_slice(&first);
                            buf
                        })
                        .extend_from_slice(&more);
                }
                Poll::Ready(Err(err)) => {
                    self.deferred = Some(StreamFault::Broken(err.to_string()));
                    break;
                }
                // The end is read again by the next read (the body keeps answering `None`).
                Poll::Ready(Ok(None)) | Poll::Pending => break,
            }
        }
        joined.map_or(first, BytesMut::freeze)
    }

    /// Bounds the whole stream to `max` bytes (a non-streaming answer, held in memory).
    pub fn bound_total(&mut self, max: usize) {
        self.limits.max_total_bytes = Some(max);
    }

    /// The bytes of an event that never got its blank line (after the body's end).
    pub fn take_rest(&mut self) -> Bytes {
        self.framer.take_pending()
    }

    /// How many whole events the last batch [`EventReader::next`] returned holds.
    pub fn batch_events(&self) -> usize {
        self.framer.released()
    }

    /// The `event:` value of a batch of one, when the framer read it on the way (see
    /// [`EventFramer::released_name`]).
    pub fn batch_event_name(&self) -> Option<Option<std::ops::Range<usize>>> {
        self.framer.released_name()
    }

    /// Bytes read so far.
    pub fn bytes_read(&self) -> usize {
        self.total
    }

    /// Whether the body has ended or failed (its connection is done with).
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// The reader's state, leaving an empty one in its place: a stream's rest handed to a
    /// background task when its client left.
    pub fn take(&mut self) -> Self {
        let empty = Self::new(
            UpstreamBody::buffered(Bytes::new()),
            self.limits,
            self.grace_over.clone(),
        );
        std::mem::replace(self, empty)
    }

    /// The body, for reading its last bytes without framing (see the chat's tail read).
    pub fn into_body(self) -> UpstreamBody {
        self.body
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 5 s idle timeout and these size bounds.
    fn limits(max_event: usize, max_total: Option<usize>) -> ReadLimits {
        ReadLimits {
            idle_timeout: Duration::from_secs(5),
            max_event_bytes: max_event,
            max_total_bytes: max_total,
        }
    }

    fn reader(chunks: &[&'static [u8]], max_event: usize, max_total: Option<usize>) -> EventReader {
        let body = UpstreamBody::buffered(Bytes::new())
            .with_held(chunks.iter().map(|c| Bytes::from_static(c)).collect());
        EventReader::new(body, limits(max_event, max_total), CancellationToken::new())
    }

    async fn all(mut r: EventReader) -> (Vec<Bytes>, Option<StreamFault>, Bytes) {
        let mut out = Vec::new();
        let fault = loop {
            match r.next().await {
                Ok(Some(events)) => out.push(events),
                Ok(None) => break None,
                Err(fault) => break Some(fault),
            }
        };
        (out, fault, r.take_rest())
    }

    #[tokio::test]
    async fn whole_events_across_chunks_then_the_rest() {
        let (out, fault, rest) = all(reader(
            &[b"data: a\n", b"\ndata: b\n\nda", b"ta: c"],
            64,
            None,
        ))
        .await;
        // One chunk may complete several events: they come together.
        assert_eq!(out, [Bytes::from_static(b"data: a\n\ndata: b\n\n")]);
        assert_eq!(fault, None);
        assert_eq!(rest, Bytes::from_static(b"data: c"));
    }

    #[tokio::test]
    async fn an_oversized_event_comes_after_the_whole_ones() {
        let (out, fault, _) = all(reader(&[b"data: a\n\ndata: 0123456789"], 8, None)).await;
        assert_eq!(out, [Bytes::from_static(b"data: a\n\n")]);
        assert_eq!(fault, Some(StreamFault::EventTooLarge(8)));
        // The same bytes in other chunks: the same judgement.
        let (out, fault, _) =
            all(reader(&[b"data: a\n", b"\ndata: 01", b"23456789"], 8, None)).await;
        assert_eq!(out, [Bytes::from_static(b"data: a\n\n")]);
        assert_eq!(fault, Some(StreamFault::EventTooLarge(8)));
    }

    #[tokio::test]
    async fn a_bounded_stream_fails_past_its_total() {
        let (out, fault, _) = all(reader(&[b"data: a\n\n", b"data: b\n\n"], 64, Some(12))).await;
        // Both chunks were there at once: read as one, whole events first, then the fault.
        assert_eq!(out, [Bytes::from_static(b"data: a\n\ndata: b\n\n")]);
        assert_eq!(fault, Some(StreamFault::ResponseTooLarge(12)));
    }

    /// A live body of `chunks`, all there at once, then a connection failure.
    fn failing_after(chunks: &[&'static [u8]], version: http::Version) -> UpstreamBody {
        let items: Vec<Result<Bytes, std::io::Error>> = chunks
            .iter()
            .map(|c| Ok(Bytes::from_static(c)))
            .chain([Err(std::io::Error::other("reset"))])
            .collect();
        UpstreamBody::from_stream(futures_util::stream::iter(items), version)
    }

    #[tokio::test]
    async fn chunks_already_there_leave_together_and_a_failure_after_them_comes_last() {
        let limits = limits(64, None);
        // Over HTTP/2, where received frames wait in the stream's buffer.
        let body = failing_after(
            &[b"data: a\n\n", b"data: b\n", b"\ndata: c\n\nda"],
            http::Version::HTTP_2,
        );
        let (out, fault, rest) =
            all(EventReader::new(body, limits, CancellationToken::new())).await;
        assert_eq!(
            out,
            [Bytes::from_static(b"data: a\n\ndata: b\n\ndata: c\n\n")]
        );
        assert!(
            matches!(fault, Some(StreamFault::Broken(_))),
            "the failure, after the events: {fault:?}"
        );
        assert_eq!(rest, Bytes::from_static(b"da"));
    }

    #[tokio::test]
    async fn over_http1_each_chunk_is_read_alone() {
        let limits = limits(64, None);
        let body = failing_after(&[b"data: a\n\n", b"data: b\n\n"], http::Version::HTTP_11);
        let (out, fault, _) = all(EventReader::new(body, limits, CancellationToken::new())).await;
        assert_eq!(
            out,
            [
                Bytes::from_static(b"data: a\n\n"),
                Bytes::from_static(b"data: b\n\n")
            ]
        );
        assert!(matches!(fault, Some(StreamFault::Broken(_))), "{fault:?}");
    }

    #[tokio::test]
    async fn a_read_joins_at_most_join_max_bytes() {
        static EVENT: [u8; 1024] = {
            let mut e = [b'x'; 1024];
            e[0] = b'd';
            e[1022] = b'\n';
            e[1023] = b'\n';
            e
        };
        let chunks = vec![&EVENT[..]; 3 * JOIN_MAX / 1024];
        let (out, fault, _) = all(reader(&chunks, 2048, None)).await;
        assert_eq!(fault, None);
        assert_eq!(out.iter().map(Bytes::len).sum::<usize>(), 3 * JOIN_MAX);
        assert!(out.len() >= 3, "{} reads", out.len());
        assert!(
            out.iter().all(|b| b.len() <= JOIN_MAX),
            "a read above the bound"
        );
    }

    #[tokio::test]
    async fn the_grace_period_ends_the_stream() {
        let r = reader(&[b"data: a\n\n"], 64, None);
        r.grace_over.cancel();
        let (out, fault, _) = all(r).await;
        assert!(out.is_empty());
        assert_eq!(fault, Some(StreamFault::ShuttingDown));
        let api = ApiError::from(StreamFault::ShuttingDown);
        assert_eq!(api.code.as_deref(), Some(crate::error::SHUTTING_DOWN));
    }

    /// A live body that sends `first` and then nothing, ever.
    fn stalling_after(first: &'static [u8]) -> UpstreamBody {
        use futures_util::StreamExt as _;
        let chunks =
            futures_util::stream::iter([Ok::<_, std::io::Error>(Bytes::from_static(first))])
                .chain(futures_util::stream::pending());
        UpstreamBody::from_stream(chunks, http::Version::HTTP_11)
    }

    #[tokio::test(start_paused = true)]
    async fn the_idle_time_counts_from_each_wait_not_from_the_last_bytes() {
        let limits = limits(64, None);
        let mut r = EventReader::new(
            stalling_after(b"data: a\n\n"),
            limits,
            CancellationToken::new(),
        );
        assert_eq!(r.next().await, Ok(Some(Bytes::from_static(b"data: a\n\n"))));
        // The consumer is busy for longer than most of the idle time (a slow client) ...
        tokio::time::sleep(Duration::from_secs(4)).await;
        // ... which does not count: the next read waits its full 5 s.
        let start = Instant::now();
        assert_eq!(
            r.next().await,
            Err(StreamFault::Idle(Duration::from_secs(5)))
        );
        assert_eq!(start.elapsed(), Duration::from_secs(5));
        // A fault ends the reader.
        assert!(r.is_finished());
    }

    #[test]
    fn faults_keep_their_codes_and_statuses() {
        let idle = ApiError::from(StreamFault::Idle(Duration::from_secs(3)));
        assert_eq!(idle.status, StatusCode::GATEWAY_TIMEOUT);
        assert_eq!(idle.code.as_deref(), Some("upstream_idle_timeout"));
        assert!(idle.message.contains("3s"), "{}", idle.message);
        let large = ApiError::from(StreamFault::ResponseTooLarge(10));
        assert_eq!(large.status, StatusCode::BAD_GATEWAY);
        assert_eq!(large.code.as_deref(), Some("upstream_response_too_large"));
    }
}
