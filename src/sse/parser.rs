//! The field parser: push bytes in, get decoded [`Event`]s out, with the three properties in
//! the module docs above (linear, lossy, bounded).

use bytes::Bytes;
use std::borrow::Cow;
use std::time::Duration;

/// One dispatched event, as the spec's `MessageEvent` would carry it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Event {
    /// The `event:` field; `message` when the event had none (the spec's default).
    pub event: String,
    /// The `data:` lines joined by `\n`.
    pub data: String,
    /// The last event id seen in the stream (it carries over to later events, per spec).
    pub id: String,
    /// A `retry:` field of this event, if any.
    pub retry: Option<Duration>,
}

/// The UTF-8 byte order mark, ignored once at the very start of a stream.
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// A line buffer with more capacity than this is freed after use rather than kept: one
/// giant line must not pin its memory for the rest of the stream.
const KEEP_LINE_CAPACITY: usize = 64 * 1024;

/// Push bytes in, get complete events out (see the module docs).
#[derive(Debug)]
pub struct SseParser {
    /// Bytes of the current line that arrived in earlier chunks (no terminator in them).
    line: Vec<u8>,
    /// The last chunk ended with `\r`: a `\n` starting the next one belongs to it.
    after_cr: bool,
    /// How many bytes of a BOM the stream started with so far; `None` once decided.
    bom_matched: Option<usize>,
    /// The event being assembled: `event:` value, `data:` lines each followed by `\n`.
    event: String,
    data: String,
    retry: Option<Duration>,
    /// The last event id buffer; it outlives events, as the spec says.
    last_id: String,
    /// The current event went over `max_event_bytes`: its lines are skipped up to the next
    /// blank line.
    skipping: bool,
    /// While skipping: the current line had bytes (so its terminator does not end a blank
    /// line).
    skipped_line_has_bytes: bool,
    max_event_bytes: usize,
    oversized: u64,
    invalid_utf8: u64,
}

impl SseParser {
    /// A parser that holds at most `max_event_bytes` of one unfinished event (its current
    /// line, data and type together).
    pub fn new(max_event_bytes: usize) -> Self {
        Self {
            line: Vec::new(),
            after_cr: false,
            bom_matched: Some(0),
            event: String::new(),
            data: String::new(),
            retry: None,
            last_id: String::new(),
            skipping: false,
            skipped_line_has_bytes: false,
            max_event_bytes,
            oversized: 0,
            invalid_utf8: 0,
        }
    }

    /// Adds a chunk and returns the events it completed.
    pub fn push(&mut self, chunk: Bytes) -> Vec<Event> {
        let mut out = Vec::new();
        let rest = self.strip_bom(&chunk);
        self.feed(rest, &mut out);
        out
    }

    /// Ends the input. The spec discards an event whose blank line never came; this parser
    /// dispatches it when only the blank line is missing (every line it holds arrived
    /// whole, e.g. an upstream that closes right after its last `data:` line), because
    /// dropping a complete terminal event would turn a finished answer into a truncated
    /// one. An event whose last line was cut off by the end of the stream is still
    /// discarded: that line may be half a JSON document, and callers tell a truncated
    /// stream by its missing terminal event (the relay judges by the whole events its
    /// splitter released, and never calls this).
    pub fn finish(&mut self) -> Vec<Event> {
        let mut out = Vec::new();
        // A stream shorter than a BOM ended inside its first line.
        let partial_bom = self.bom_matched.take().is_some_and(|matched| matched > 0);
        let cut = partial_bom || !self.line.is_empty() || self.skipping;
        if !cut {
            self.dispatch(&mut out);
        }
        self.line = Vec::new();
        self.after_cr = false;
        self.skipping = false;
        self.reset_event();
        out
    }

    /// Lines decoded lossily so far because they were not valid UTF-8.
    pub fn invalid_utf8_lines(&self) -> u64 {
        self.invalid_utf8
    }

    /// Events dropped so far for holding more than `max_event_bytes`.
    pub fn oversized_events(&self) -> u64 {
        self.oversized
    }

    /// `chunk` without the bytes of a BOM at the stream's start (which may arrive split).
    fn strip_bom<'a>(&mut self, chunk: &'a [u8]) -> &'a [u8] {
        let Some(mut matched) = self.bom_matched else {
            return chunk;
        };
        let mut at = 0;
        while matched < BOM.len() {
            let Some(&byte) = chunk.get(at) else {
                self.bom_matched = Some(matched);
                return &[];
            };
            if byte != BOM[matched] {
                // Not a BOM after all: the bytes matched so far start the first line.
                self.bom_matched = None;
                self.extend_line(&BOM[..matched]);
                return &chunk[at..];
            }
            matched += 1;
            at += 1;
        }
        self.bom_matched = None;
        &chunk[at..]
    }

    /// Splits new bytes into lines; each byte is scanned once.
    fn feed(&mut self, mut rest: &[u8], out: &mut Vec<Event>) {
        if self.after_cr && !rest.is_empty() {
            self.after_cr = false;
            if rest[0] == b'\n' {
                rest = &rest[1..];
            }
        }
        while let Some(at) = memchr::memchr2(b'\n', b'\r', rest) {
            let terminator = rest[at];
            self.end_line(&rest[..at], out);
            let mut next = at + 1;
            if terminator == b'\r' {
                match rest.get(next) {
                    Some(b'\n') => next += 1,
                    Some(_) => {}
                    None => self.after_cr = true,
                }
            }
            rest = &rest[next..];
        }
        self.extend_line(rest);
    }

    /// Bytes held for the event being assembled.
    fn held(&self) -> usize {
        self.line.len() + self.data.len() + self.event.len()
    }

    /// Keeps the start of a line whose end has not arrived.
    fn extend_line(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        if !self.skipping && self.held().saturating_add(bytes.len()) > self.max_event_bytes {
            self.overflow();
        }
        if self.skipping {
            self.skipped_line_has_bytes = true;
        } else {
            self.line.extend_from_slice(bytes);
        }
    }

    /// A line ended; `tail` is its part from the current chunk.
    fn end_line(&mut self, tail: &[u8], out: &mut Vec<Event>) {
        if self.skipping {
            let blank = tail.is_empty() && !self.skipped_line_has_bytes;
            self.skipped_line_has_bytes = false;
            if blank {
                // The oversized event is over; the next one starts clean.
                self.skipping = false;
            }
            return;
        }
        // Checked whether or not the line was split (the verdict must not depend on the
        // chunking), though an unsplit one is read in place.
        if self.held().saturating_add(tail.len()) > self.max_event_bytes {
            self.overflow();
            return;
        }
        if self.line.is_empty() {
            self.line_done(tail, out);
            return;
        }
        let mut line = std::mem::take(&mut self.line);
        line.extend_from_slice(tail);
        self.line_done(&line, out);
        if line.capacity() <= KEEP_LINE_CAPACITY {
            line.clear();
            self.line = line;
        }
    }

    /// Interprets one complete line (without its terminator).
    fn line_done(&mut self, line: &[u8], out: &mut Vec<Event>) {
        if line.is_empty() {
            self.dispatch(out);
            self.reset_event();
            return;
        }
        if line[0] == b':' {
            return; // a comment, e.g. Model Studio's `:HTTP_STATUS/200`
        }
        let (field, value) = match memchr::memchr(b':', line) {
            Some(colon) => {
                let value = &line[colon + 1..];
                (&line[..colon], value.strip_prefix(b" ").unwrap_or(value))
            }
            None => (line, &b""[..]),
        };
        match field {
            b"data" => {
                // Fits: the whole line (longer than value and `\n`) was checked.
                let value = self.decode(value);
                self.data.push_str(&value);
                self.data.push('\n');
            }
            b"event" => self.event = self.decode(value).into_owned(),
            // Per spec, an id holding NUL is ignored.
            b"id" if !value.contains(&0) => self.last_id = self.decode(value).into_owned(),
            b"retry" => {
                // ASCII digits only, per spec; anything else (or an overflow) is ignored.
                let ms = value.iter().try_fold(0u64, |ms, &b| {
                    let digit = b.is_ascii_digit().then(|| u64::from(b - b'0'))?;
                    ms.checked_mul(10)?.checked_add(digit)
                });
                if let Some(ms) = ms.filter(|_| !value.is_empty()) {
                    self.retry = Some(Duration::from_millis(ms));
                }
            }
            _ => {} // unknown fields are ignored
        }
    }

    /// `bytes` as text, U+FFFD in place of invalid UTF-8 (counted).
    fn decode<'a>(&mut self, bytes: &'a [u8]) -> Cow<'a, str> {
        // Validating first is the fast path (ASCII is checked a word at a time); the lossy
        // decoder walks byte by byte, so it only runs on a line that needs it.
        match std::str::from_utf8(bytes) {
            Ok(text) => Cow::Borrowed(text),
            Err(_) => {
                self.invalid_utf8 += 1;
                String::from_utf8_lossy(bytes)
            }
        }
    }

    /// Emits the assembled event if it has data (an event without data is none, per spec).
    fn dispatch(&mut self, out: &mut Vec<Event>) {
        if self.data.is_empty() {
            return;
        }
        let mut data = std::mem::take(&mut self.data);
        data.pop(); // the `\n` after the last data line
        let event = match std::mem::take(&mut self.event) {
            kind if kind.is_empty() => "message".to_owned(),
            kind => kind,
        };
        out.push(Event {
            event,
            data,
            id: self.last_id.clone(),
            retry: self.retry.take(),
        });
    }

    /// Forgets the event being assembled (not the last id); frees what it held.
    fn reset_event(&mut self) {
        self.data = String::new();
        self.event = String::new();
        self.retry = None;
    }

    /// Drops the event being assembled: it is over the bound. The line that was being
    /// read is skipped too, then every line up to the next blank one.
    fn overflow(&mut self) {
        self.oversized += 1;
        self.skipping = true;
        self.skipped_line_has_bytes = false;
        self.line = Vec::new();
        self.reset_event();
    }
}

/// An event's data parsed as JSON (`None` when it is not JSON).
pub fn event_json(event: &Event) -> Option<serde_json::Value> {
    serde_json::from_str(&event.data).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    const NO_LIMIT: usize = usize::MAX;

    fn push_all(parser: &mut SseParser, chunks: &[&[u8]]) -> Vec<Event> {
        chunks
            .iter()
            .flat_map(|c| parser.push(Bytes::copy_from_slice(c)))
            .collect()
    }

    fn parse_whole(bytes: &[u8]) -> Vec<Event> {
        let mut parser = SseParser::new(NO_LIMIT);
        let mut events = parser.push(Bytes::copy_from_slice(bytes));
        events.extend(parser.finish());
        events
    }

    /// Model Studio's framing, every terminator style, multi-line data, a BOM, a comment,
    /// a retry field and a multi-byte character.
    const QUIRKS: &[u8] = b"\xEF\xBB\xBF:HTTP_STATUS/200\nid:1\nevent:response.created\ndata:{\"type\":\"a\"}\n\nid:2\r\nevent: x\r\ndata: {\"t\":\"\xE6\x97\xA5\xE6\x9C\xAC\"}\r\n\r\ndata: one\rdata:two\r\rretry: 1500\ndata\n: comment\ndata:  three\n\n";

    fn quirks_expected() -> Vec<Event> {
        let ev = |event: &str, data: &str, id: &str, retry: Option<u64>| Event {
            event: event.into(),
            data: data.into(),
            id: id.into(),
            retry: retry.map(Duration::from_millis),
        };
        vec![
            ev("response.created", "{\"type\":\"a\"}", "1", None),
            ev("x", "{\"t\":\"日本\"}", "2", None),
            ev("message", "one\ntwo", "2", None),
            ev("message", "\n three", "2", Some(1500)),
        ]
    }

    #[test]
    fn parses_quirks_in_one_chunk() {
        assert_eq!(parse_whole(QUIRKS), quirks_expected());
    }

    /// Every way to cut the stream in two, and in three, gives the same events: lines,
    /// `\r\n` pairs, the BOM and UTF-8 characters split across chunks included.
    #[test]
    fn parses_quirks_across_every_split_point() {
        let expected = quirks_expected();
        for i in 0..=QUIRKS.len() {
            let mut parser = SseParser::new(NO_LIMIT);
            let mut events = push_all(&mut parser, &[&QUIRKS[..i], &QUIRKS[i..]]);
            events.extend(parser.finish());
            assert_eq!(events, expected, "split at {i}");
            for j in i..=QUIRKS.len() {
                let mut parser = SseParser::new(NO_LIMIT);
                let mut events =
                    push_all(&mut parser, &[&QUIRKS[..i], &QUIRKS[i..j], &QUIRKS[j..]]);
                events.extend(parser.finish());
                assert_eq!(events, expected, "split at {i} and {j}");
            }
        }
        // One byte at a time.
        let mut parser = SseParser::new(NO_LIMIT);
        let bytes: Vec<&[u8]> = QUIRKS.chunks(1).collect();
        assert_eq!(push_all(&mut parser, &bytes), expected);
    }

    #[test]
    fn crlf_cr_and_lf_mixes() {
        // `\r` then `\n` in the next chunk is one terminator, not a blank line.
        let mut parser = SseParser::new(NO_LIMIT);
        let events = push_all(&mut parser, &[b"data: a\r", b"\ndata: b\r", b"\n\r", b"\n"]);
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].data, "a\nb");
        // `\n\r` is two terminators: a blank line.
        let events = parse_whole(b"data: a\n\rdata: b\r\n\n");
        let data: Vec<&str> = events.iter().map(|e| e.data.as_str()).collect();
        assert_eq!(data, ["a", "b"]);
        // `\r\r`: a blank line too.
        assert_eq!(parse_whole(b"data: x\r\rdata: y\r\r").len(), 2);
    }

    #[test]
    fn fields_per_spec() {
        // No colon: the whole line is the field name, the value empty.
        let events = parse_whole(b"data\n\n");
        assert_eq!(events[0].data, "");
        // Only one space after the colon is dropped; unknown fields are ignored.
        let events = parse_whole(b"data:  x\nfoo: bar\nevent:\n\n");
        assert_eq!(events[0].data, " x");
        assert_eq!(events[0].event, "message");
        // An id with NUL is ignored; the id carries over; a bad retry is ignored.
        let events = parse_whole(b"id: 7\ndata: a\n\nid: 8\0\nretry: 1x\ndata: b\n\n");
        assert_eq!((events[1].id.as_str(), events[1].retry), ("7", None));
    }

    #[test]
    fn events_without_data_and_comments_are_not_dispatched() {
        let events =
            parse_whole(b":HTTP_STATUS/200\n\nid:1\nevent:x\n\n: only a comment\n\ndata: y\n\n");
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].data, "y");
        assert_eq!(
            events[0].id, "1",
            "the id buffer outlives the data-less event"
        );
    }

    #[test]
    fn a_bom_is_stripped_only_at_the_start() {
        assert_eq!(parse_whole(b"\xEF\xBB\xBFdata: a\n\n")[0].data, "a");
        // A second BOM is part of the field name: not `data`, so ignored.
        assert!(parse_whole(b"\xEF\xBB\xBF\xEF\xBB\xBFdata: a\n\n").is_empty());
        // Bytes that start like a BOM but are not one are kept.
        let events = parse_whole(b"\xEFdata: a\n\ndata: b\n\n");
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].data, "b");
        let mut parser = SseParser::new(NO_LIMIT);
        let events = push_all(&mut parser, &[b"\xEF", b"\xBB", b"\xBFdata: c\n\n"]);
        assert_eq!(events[0].data, "c");
    }

    #[test]
    fn invalid_utf8_is_decoded_lossily_and_parsing_goes_on() {
        let mut parser = SseParser::new(NO_LIMIT);
        let events = push_all(
            &mut parser,
            &[
                b"event: response.output_text.delta\ndata: {\"delta\":\"\xff\xfe",
                b"ok\"}\n\nevent: bad\xc3\ndata: {\"type\":\"response.completed\"}\n\n",
            ],
        );
        assert_eq!(events.len(), 2);
        assert_eq!(events[0].data, "{\"delta\":\"\u{fffd}\u{fffd}ok\"}");
        assert_eq!(
            event_json(&events[0]).unwrap()["delta"],
            "\u{fffd}\u{fffd}ok"
        );
        assert_eq!(events[1].event, "bad\u{fffd}");
        assert_eq!(
            event_json(&events[1]).unwrap()["type"],
            "response.completed"
        );
        assert_eq!(parser.invalid_utf8_lines(), 2);
    }

    #[test]
    fn finish_dispatches_an_event_missing_only_its_blank_line() {
        let mut parser = SseParser::new(NO_LIMIT);
        assert!(
            parser
                .push(Bytes::from_static(b"data: {\"a\":1}\n"))
                .is_empty()
        );
        let events = parser.finish();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].data, "{\"a\":1}");
        // A line cut by the end of the stream is not dispatched (nor kept).
        let mut parser = SseParser::new(NO_LIMIT);
        assert_eq!(
            parser
                .push(Bytes::from_static(b"data: a\n\ndata: {\"b\":"))
                .len(),
            1
        );
        assert!(parser.finish().is_empty());
        // Nor is an event whose last line was cut, even if earlier lines were whole.
        assert!(parse_whole(b"data: a\ndata: {\"b\":").is_empty());
        assert_eq!(parse_whole(b"data: a\r")[0].data, "a");
        assert!(parse_whole(b"\xEF\xBB").is_empty());
    }

    #[test]
    fn an_event_over_the_bound_is_dropped_and_counted() {
        // 20 bytes: the event's current line, data and type together.
        let mut parser = SseParser::new(20);
        let events = push_all(
            &mut parser,
            &[
                b"data: 12345\n",
                b"data: 6789",
                b"0\ndata: abc", // 12 bytes of data + 9 of a line: over
                b"defgh\n\ndata: ok\n\n",
                b"data: 0123456789abcdefghij", // one line over
                b"klm\ndata: more\n\ndata: fine\n\n",
            ],
        );
        let data: Vec<&str> = events.iter().map(|e| e.data.as_str()).collect();
        assert_eq!(data, ["ok", "fine"]);
        assert_eq!(parser.oversized_events(), 2);
        assert!(parser.line.capacity() <= 20 && parser.data.capacity() <= 20);
        // Up to the bound, nothing is dropped.
        let mut parser = SseParser::new(20);
        let events = push_all(&mut parser, &[b"data: 12345\ndata: 6789", b"0\n\n"]);
        assert_eq!(events[0].data, "12345\n67890");
        assert_eq!(parser.oversized_events(), 0);
    }

    /// One 16 MiB event in 16 KiB chunks: linear, so well under a second even in a debug
    /// build (about 0.16 s; the adapter over `eventsource-stream` took 75 s in a debug
    /// build for a 4 MiB event, growing with the square of the size).
    #[test]
    fn a_giant_event_in_small_chunks_is_linear() {
        let size = 16 << 20;
        let mut text = b"id:4\nevent:response.output_text.delta\ndata:{\"p\":\"".to_vec();
        text.resize(text.len() + size, b'x');
        text.extend_from_slice(b"\"}\n\n");
        let bytes = Bytes::from(text);
        let mut parser = SseParser::new(64 << 20);
        let started = Instant::now();
        let mut events = Vec::new();
        for at in (0..bytes.len()).step_by(16 * 1024) {
            events.extend(parser.push(bytes.slice(at..bytes.len().min(at + 16 * 1024))));
        }
        let took = started.elapsed();
        println!("one 16 MiB event in 16 KiB chunks: parsed in {took:?}");
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].data.len(), size + 8);
        assert!(took < Duration::from_secs(2), "{took:?}");
    }
}
