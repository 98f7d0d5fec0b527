//! The streaming response body: a script of SSE chunks, pauses, gates and faults, wrapped so
//! that the request log sees every byte and notices when the client goes away.

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_util::stream::{BoxStream, Stream, StreamExt};
use serde_json::Value;
use tokio::sync::Semaphore;

use crate::controls::{Controls, Malformed};
use crate::state::{Record, Shared, lock};
use crate::wire::Framing;

/// One thing the body does next.
#[derive(Debug)]
enum Step {
    /// The pause before an event: `x-mock-delay-ms`, then one permit of `x-mock-gate`.
    Wait,
    /// Bytes to hand to hyper; `true` on the very last chunk of the body.
    Chunk(Bytes, bool),
    /// Return `Pending` once so hyper flushes what it has as a separate write.
    Yield,
    /// Sleep between the pieces of one event (`x-mock-chunk-delay-ms`).
    Pause(Duration),
    /// Fail the body so hyper aborts the connection (`x-mock-drop-after`).
    Abort,
}

/// The type of the extra event `x-mock-malformed-kind: unknown` inserts.
pub const UNKNOWN_EVENT: &str = "response.mock_unknown";

/// Marks where `x-mock-malformed-kind: utf8` puts its invalid bytes; replaced after the
/// event is serialized (a JSON string cannot hold them).
const INVALID_UTF8_MARK: &str = "@@mock-invalid-utf8@@";

/// The bytes that replace [`INVALID_UTF8_MARK`]: never valid UTF-8.
pub const INVALID_UTF8: &[u8] = b"\xff\xfe";

/// One framed event as the chunks to write, with a flush between them: the framing's
/// cuts, or pieces of `x-mock-chunk-bytes` (paused by `x-mock-chunk-delay-ms`).
fn push_chunks(steps: &mut VecDeque<Step>, framing: Framing, controls: &Controls, framed: Vec<u8>) {
    let chunks = match controls.chunk_bytes {
        Some(size) => {
            let framed = Bytes::from(framed);
            (0..framed.len())
                .step_by(size)
                .map(|at| framed.slice(at..framed.len().min(at + size)))
                .collect()
        }
        None => framing.chunks(framed),
    };
    for (n, chunk) in chunks.into_iter().enumerate() {
        if n > 0 {
            steps.push_back(Step::Yield);
            if !controls.chunk_delay.is_zero() {
                steps.push_back(Step::Pause(controls.chunk_delay));
            }
        }
        steps.push_back(Step::Chunk(chunk, false));
    }
}

/// `framed` with [`INVALID_UTF8_MARK`] replaced by [`INVALID_UTF8`].
fn with_invalid_utf8(framed: Vec<u8>) -> Vec<u8> {
    let mark = INVALID_UTF8_MARK.as_bytes();
    match framed.windows(mark.len()).position(|w| w == mark) {
        Some(at) => [&framed[..at], INVALID_UTF8, &framed[at + mark.len()..]].concat(),
        None => framed,
    }
}

/// What the body will do, decided up front so the stream itself is a dumb player.
pub(crate) struct Script {
    steps: VecDeque<Step>,
    delay: Duration,
    gate: Option<Arc<Semaphore>>,
}

impl Script {
    pub fn new(
        events: &[Value],
        framing: Framing,
        controls: &Controls,
        gate: Option<Arc<Semaphore>>,
    ) -> Script {
        let mut steps = VecDeque::new();
        for (index, event) in events.iter().enumerate() {
            if controls.drop_after == Some(index) {
                // Let hyper flush the events already handed over before the abort.
                steps.push_back(Step::Yield);
                steps.push_back(Step::Abort);
                break;
            }
            if index > 0 {
                steps.push_back(Step::Wait);
            }
            let broken = (controls.malformed_at == Some(index)).then_some(controls.malformed);
            let kind = event["type"].as_str().unwrap_or("message");
            let framed = match broken {
                None => framing.frame(index, kind, &event.to_string(), false),
                Some(Malformed::Json) => framing.frame(index, kind, &event.to_string(), true),
                Some(Malformed::NoData) => framing.frame_without_data(index, kind),
                Some(Malformed::Unknown) => {
                    let unknown = serde_json::json!({
                        "type": UNKNOWN_EVENT,
                        "sequence_number": index,
                        "note": "an event type no client knows",
                    });
                    let extra = framing.frame(index, UNKNOWN_EVENT, &unknown.to_string(), false);
                    push_chunks(&mut steps, framing, controls, extra);
                    framing.frame(index, kind, &event.to_string(), false)
                }
                Some(Malformed::Giant) => {
                    let mut padded = event.clone();
                    padded["mock_padding"] = Value::String("x".repeat(controls.pad_bytes));
                    framing.frame(index, kind, &padded.to_string(), false)
                }
                Some(Malformed::Utf8) => {
                    let mut marked = event.clone();
                    match event["delta"].as_str() {
                        Some(delta) => {
                            marked["delta"] = Value::String(format!("{INVALID_UTF8_MARK}{delta}"))
                        }
                        None => marked["mock_invalid"] = Value::String(INVALID_UTF8_MARK.into()),
                    }
                    with_invalid_utf8(framing.frame(index, kind, &marked.to_string(), false))
                }
            };
            push_chunks(&mut steps, framing, controls, framed);
        }
        if !matches!(steps.back(), Some(Step::Abort))
            && let Some(Step::Chunk(_, last)) = steps
                .iter_mut()
                .rev()
                .find(|s| matches!(s, Step::Chunk(..)))
        {
            *last = true;
        }
        if !controls.tail_delay.is_zero() && !matches!(steps.back(), Some(Step::Abort)) {
            // The body's end comes on its own, later: a client must read on past the last
            // event to see it (and to get its connection back into the pool).
            steps.push_back(Step::Pause(controls.tail_delay));
        }
        Script {
            steps,
            delay: controls.delay,
            gate,
        }
    }

    /// Plays the script.
    fn into_stream(self) -> BoxStream<'static, io::Result<(Bytes, bool)>> {
        futures_util::stream::unfold(self, |mut script| async move {
            loop {
                match script.steps.pop_front()? {
                    Step::Wait => {
                        if !script.delay.is_zero() {
                            tokio::time::sleep(script.delay).await;
                        }
                        if let Some(gate) = &script.gate
                            && let Ok(permit) = gate.acquire().await
                        {
                            permit.forget();
                        }
                    }
                    Step::Yield => tokio::task::yield_now().await,
                    Step::Pause(pause) => tokio::time::sleep(pause).await,
                    Step::Chunk(bytes, last) => return Some((Ok((bytes, last)), script)),
                    Step::Abort => {
                        let err =
                            io::Error::new(io::ErrorKind::ConnectionAborted, "x-mock-drop-after");
                        return Some((Err(err), script));
                    }
                }
            }
        })
        .boxed()
    }
}

/// Tracks one open stream; dropping it before the end means the client went away.
struct Guard {
    shared: Arc<Shared>,
    record: Record,
    open: bool,
}

impl Guard {
    fn new(shared: Arc<Shared>, record: Record) -> Guard {
        shared.counters.open_streams.fetch_add(1, Ordering::SeqCst);
        Guard {
            shared,
            record,
            open: true,
        }
    }

    /// Closes the stream's accounting; `true` if it was still open.
    fn close(&mut self) -> bool {
        let was_open = std::mem::replace(&mut self.open, false);
        if was_open {
            self.shared
                .counters
                .open_streams
                .fetch_sub(1, Ordering::SeqCst);
        }
        was_open
    }

    fn finish(&mut self) {
        if self.close() {
            self.shared
                .counters
                .completed_streams
                .fetch_add(1, Ordering::SeqCst);
            lock(&self.record).finished = true;
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if self.close() {
            self.shared
                .counters
                .cancelled_streams
                .fetch_add(1, Ordering::SeqCst);
            lock(&self.record).cancelled = true;
        }
    }
}

/// The body hyper polls. Hyper drops it as soon as it sees the client's connection close
/// (it watches for EOF even while the body is pending), so cancellation is noticed while the
/// script sleeps or waits on a gate.
pub(crate) struct RecordingBody {
    inner: BoxStream<'static, io::Result<(Bytes, bool)>>,
    guard: Guard,
}

impl RecordingBody {
    pub fn new(script: Script, shared: Arc<Shared>, record: Record) -> RecordingBody {
        RecordingBody {
            inner: script.into_stream(),
            guard: Guard::new(shared, record),
        }
    }
}

impl Stream for RecordingBody {
    type Item = io::Result<Bytes>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        match this.inner.poll_next_unpin(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(Ok((bytes, last)))) => {
                lock(&this.guard.record)
                    .response_body
                    .extend_from_slice(&bytes);
                if last {
                    this.guard.finish();
                }
                Poll::Ready(Some(Ok(bytes)))
            }
            Poll::Ready(Some(Err(err))) => {
                // Deliberate abort: neither finished nor cancelled by the client.
                this.guard.close();
                Poll::Ready(Some(Err(err)))
            }
            Poll::Ready(None) => {
                this.guard.finish();
                Poll::Ready(None)
            }
        }
    }
}
