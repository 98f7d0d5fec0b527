//! Incremental Server-Sent Events parsing on top of the `eventsource-stream` crate.
//!
//! The gateway must look inside upstream streams (response ids, usage, terminal events) while
//! relaying the bytes untouched, so it needs a parser it can *push* chunks into as they pass
//! by. `eventsource-stream` only parses a `Stream`; [`SseParser`] feeds it from a queue and
//! polls it synchronously until it has consumed what was pushed. Parsing follows the SSE spec
//! (Model Studio's `id:` lines, `:HTTP_STATUS/200` comments, `data:` with or without a space,
//! lines and UTF-8 characters split across chunks).

use bytes::Bytes;
use eventsource_stream::{EventStream, Eventsource};
use futures_util::Stream;
use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

pub use eventsource_stream::Event;

/// A stream that yields whatever was pushed into its queue, and `Pending` when it is empty.
struct Feed {
    queue: Arc<Mutex<VecDeque<Bytes>>>,
    closed: Arc<std::sync::atomic::AtomicBool>,
}

impl Stream for Feed {
    type Item = Result<Bytes, Infallible>;

    fn poll_next(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let next = match self.queue.lock() {
            Ok(mut queue) => queue.pop_front(),
            Err(poisoned) => poisoned.into_inner().pop_front(),
        };
        match next {
            Some(chunk) => Poll::Ready(Some(Ok(chunk))),
            None if self.closed.load(std::sync::atomic::Ordering::Relaxed) => Poll::Ready(None),
            None => Poll::Pending,
        }
    }
}

/// Push bytes in, get complete events out.
pub struct SseParser {
    queue: Arc<Mutex<VecDeque<Bytes>>>,
    closed: Arc<std::sync::atomic::AtomicBool>,
    events: Pin<Box<EventStream<Feed>>>,
    /// Set when the bytes are not valid UTF-8 SSE; parsing stops, relaying does not.
    broken: bool,
}

impl std::fmt::Debug for SseParser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SseParser")
            .field("broken", &self.broken)
            .finish()
    }
}

impl Default for SseParser {
    fn default() -> Self {
        Self::new()
    }
}

impl SseParser {
    pub fn new() -> Self {
        let queue = Arc::new(Mutex::new(VecDeque::new()));
        let closed = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let feed = Feed {
            queue: queue.clone(),
            closed: closed.clone(),
        };
        Self {
            queue,
            closed,
            events: Box::pin(feed.eventsource()),
            broken: false,
        }
    }

    /// Adds a chunk and returns the events it completed.
    pub fn push(&mut self, chunk: Bytes) -> Vec<Event> {
        if self.broken {
            return Vec::new();
        }
        match self.queue.lock() {
            Ok(mut queue) => queue.push_back(chunk),
            Err(poisoned) => poisoned.into_inner().push_back(chunk),
        }
        self.drain()
    }

    /// Ends the input: a last event without its blank line is dispatched, as the spec allows
    /// at end of stream only if complete — `eventsource-stream` drops an unterminated one.
    pub fn finish(&mut self) -> Vec<Event> {
        self.closed
            .store(true, std::sync::atomic::Ordering::Relaxed);
        self.drain()
    }

    /// Whether the input stopped being parseable (e.g. invalid UTF-8).
    pub fn is_broken(&self) -> bool {
        self.broken
    }

    fn drain(&mut self) -> Vec<Event> {
        let mut out = Vec::new();
        let mut cx = Context::from_waker(futures_util::task::noop_waker_ref());
        loop {
            match self.events.as_mut().poll_next(&mut cx) {
                Poll::Ready(Some(Ok(event))) => out.push(event),
                Poll::Ready(Some(Err(_))) => {
                    self.broken = true;
                    break;
                }
                Poll::Ready(None) | Poll::Pending => break,
            }
        }
        out
    }
}

/// An event's kind: the JSON `type` field wins over the `event:` line (Model Studio's
/// advice), and `data` is parsed once here.
pub fn event_json(event: &Event) -> Option<serde_json::Value> {
    serde_json::from_str(&event.data).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn push_all(parser: &mut SseParser, chunks: &[&[u8]]) -> Vec<Event> {
        chunks
            .iter()
            .flat_map(|c| parser.push(Bytes::copy_from_slice(c)))
            .collect()
    }

    #[test]
    fn parses_model_studio_quirks_across_chunks() {
        let text = ":HTTP_STATUS/200\nid:1\nevent:response.created\ndata:{\"type\":\"a\"}\n\nid:2\nevent:x\ndata: {\"t\":\"日本\"}\n\n";
        let bytes = text.as_bytes();
        // Split inside a multi-byte character and inside lines.
        let cut = text.find('日').unwrap() + 1;
        let mut parser = SseParser::new();
        let events = push_all(&mut parser, &[&bytes[..10], &bytes[10..cut], &bytes[cut..]]);
        assert_eq!(events.len(), 2);
        assert_eq!(events[0].event, "response.created");
        assert_eq!(events[0].data, "{\"type\":\"a\"}");
        assert_eq!(events[1].data, "{\"t\":\"日本\"}");
        assert!(!parser.is_broken());
    }

    #[test]
    fn crlf_and_multiline_data() {
        let mut parser = SseParser::new();
        let events = push_all(&mut parser, &[b"data: a\r\ndata: b\r\n\r\n"]);
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].data, "a\nb");
    }
}
