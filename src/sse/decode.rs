//! The decoder: the fields of whole events (what [`EventFramer`] released), and
//! [`SseParser`], a push parser for whole streams built on the framer.

use super::framer::{EventFramer, events, lines};
use bytes::Bytes;
use std::borrow::Cow;
use std::time::Duration;

/// One whole event's fields, decoded (borrowed from its bytes when they are valid UTF-8).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Fields<'a> {
    /// The `event:` field (the last one); `None` when the event has none.
    pub event: Option<Cow<'a, str>>,
    /// The `data:` lines joined by `\n`; `None` when the event has no data line (then it is
    /// not dispatched, per spec).
    pub data: Option<Cow<'a, str>>,
    /// The `id:` field, if any (ignored when it holds NUL, per spec).
    pub id: Option<Cow<'a, str>>,
    /// A valid `retry:` field (ASCII digits: milliseconds).
    pub retry: Option<Duration>,
    /// Lines that were not valid UTF-8, decoded with U+FFFD in place of the bad bytes: one
    /// bad byte must not hide the rest of a stream (its usage, its end) from the gateway.
    pub invalid_utf8_lines: u32,
}

/// The fields of one whole event, per the SSE spec: `name:value` with one leading space
/// of the value dropped, a line without a colon is a field with an empty value, `:` starts
/// a comment (Model Studio's `:HTTP_STATUS/200`), unknown fields are ignored.
pub fn decode(event: &[u8]) -> Fields<'_> {
    let mut fields = Fields::default();
    let mut decode = |bytes| match std::str::from_utf8(bytes) {
        // Validating first is the fast path; the lossy decoder walks byte by byte.
        Ok(text) => Cow::Borrowed(text),
        Err(_) => {
            fields.invalid_utf8_lines += 1;
            String::from_utf8_lossy(bytes)
        }
    };
    let (mut event_name, mut data, mut id, mut retry) = (None, None::<Cow<'_, str>>, None, None);
    for line in lines(event) {
        if line.is_empty() || line[0] == b':' {
            continue;
        }
        let (name, value) = match memchr::memchr(b':', line) {
            Some(colon) => {
                let value = &line[colon + 1..];
                (&line[..colon], value.strip_prefix(b" ").unwrap_or(value))
            }
            None => (line, &b""[..]),
        };
        match name {
            b"data" => {
                let value = decode(value);
                match &mut data {
                    None => data = Some(value),
                    Some(joined) => {
                        let joined = joined.to_mut();
                        joined.push('\n');
                        joined.push_str(&value);
                    }
                }
            }
            b"event" => event_name = Some(decode(value)),
            b"id" if !value.contains(&0) => id = Some(decode(value)),
            b"retry" => {
                let ms = value.iter().try_fold(0u64, |ms, &b| {
                    let digit = b.is_ascii_digit().then(|| u64::from(b - b'0'))?;
                    ms.checked_mul(10)?.checked_add(digit)
                });
                if let Some(ms) = ms.filter(|_| !value.is_empty()) {
                    retry = Some(Duration::from_millis(ms));
                }
            }
            _ => {}
        }
    }
    fields.event = event_name;
    fields.data = data;
    fields.id = id;
    fields.retry = retry;
    fields
}

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
pub const BOM: &[u8] = b"\xEF\xBB\xBF";

/// A whole stream's events, pushed in chunks: the [`EventFramer`]'s events decoded, with
/// the last id carried over and a leading BOM dropped. For reading the gateway's own
/// streams as a client does (tests, tools); it holds an unfinished event whole, so the
/// gateway reads upstreams through `upstream::events::EventReader`, which bounds it.
#[derive(Debug, Default)]
pub struct SseParser {
    framer: EventFramer,
    /// The stream's first bytes while fewer than a BOM's length arrived.
    start: Option<Vec<u8>>,
    started: bool,
    last_id: String,
    invalid_utf8: u64,
}

impl SseParser {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a chunk and returns the events it completed.
    pub fn push(&mut self, chunk: Bytes) -> Vec<Event> {
        let chunk = if self.started {
            chunk
        } else {
            let mut start = self.start.take().unwrap_or_default();
            start.extend_from_slice(&chunk);
            if start.len() < BOM.len() && BOM.starts_with(&start) {
                self.start = Some(start);
                return Vec::new();
            }
            self.started = true;
            let body = start.strip_prefix(BOM).unwrap_or(&start);
            Bytes::copy_from_slice(body)
        };
        match self.framer.push(chunk) {
            Some(complete) => self.dispatch(&complete),
            None => Vec::new(),
        }
    }

    /// Ends the input. The spec discards an event whose blank line never came; this parser
    /// dispatches it when only the blank line is missing (every line it holds arrived
    /// whole), as the gateway's chat translation does: dropping a complete terminal event
    /// would turn a finished answer into a truncated one. An event whose last line was cut
    /// off is discarded: that line may be half a JSON document.
    pub fn finish(&mut self) -> Vec<Event> {
        let rest = self.framer.take_pending();
        self.start = None;
        if rest.last().is_some_and(|b| matches!(b, b'\n' | b'\r')) {
            self.dispatch(&rest)
        } else {
            Vec::new()
        }
    }

    /// Lines decoded lossily so far because they were not valid UTF-8.
    pub fn invalid_utf8_lines(&self) -> u64 {
        self.invalid_utf8
    }

    fn dispatch(&mut self, complete: &[u8]) -> Vec<Event> {
        let mut out = Vec::new();
        for event in events(complete) {
            let fields = decode(event);
            self.invalid_utf8 += u64::from(fields.invalid_utf8_lines);
            if let Some(id) = fields.id {
                self.last_id = id.into_owned();
            }
            if let Some(data) = fields.data {
                out.push(Event {
                    event: fields
                        .event
                        .filter(|e| !e.is_empty())
                        .map_or_else(|| "message".to_owned(), Cow::into_owned),
                    data: data.into_owned(),
                    id: self.last_id.clone(),
                    retry: fields.retry,
                });
            }
        }
        out
    }
}

/// An event's data parsed as JSON (`None` when it is not JSON).
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

    fn parse_whole(bytes: &[u8]) -> Vec<Event> {
        let mut parser = SseParser::new();
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
            for j in i..=QUIRKS.len() {
                let mut parser = SseParser::new();
                let mut events =
                    push_all(&mut parser, &[&QUIRKS[..i], &QUIRKS[i..j], &QUIRKS[j..]]);
                events.extend(parser.finish());
                assert_eq!(events, expected, "split at {i} and {j}");
            }
        }
        let mut parser = SseParser::new();
        let bytes: Vec<&[u8]> = QUIRKS.chunks(1).collect();
        assert_eq!(
            push_all(&mut parser, &bytes),
            expected,
            "one byte at a time"
        );
    }

    #[test]
    fn crlf_cr_and_lf_mixes() {
        // `\r` then `\n` in the next chunk is one terminator, not a blank line.
        let mut parser = SseParser::new();
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
        assert_eq!(events[0].id, "1", "the id outlives the data-less event");
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
        let mut parser = SseParser::new();
        let events = push_all(&mut parser, &[b"\xEF", b"\xBB", b"\xBFdata: c\n\n"]);
        assert_eq!(events[0].data, "c");
    }

    #[test]
    fn invalid_utf8_is_decoded_lossily_and_parsing_goes_on() {
        let mut parser = SseParser::new();
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
        let mut parser = SseParser::new();
        assert!(
            parser
                .push(Bytes::from_static(b"data: {\"a\":1}\n"))
                .is_empty()
        );
        let events = parser.finish();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].data, "{\"a\":1}");
        // A line cut by the end of the stream is not dispatched (nor kept).
        let mut parser = SseParser::new();
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
    fn decode_borrows_valid_fields() {
        let fields = decode(b"event: x\ndata: {\"a\":1}\n\n");
        assert!(matches!(fields.data, Some(Cow::Borrowed("{\"a\":1}"))));
        assert_eq!(fields.event.as_deref(), Some("x"));
        assert_eq!(fields.invalid_utf8_lines, 0);
    }
}
