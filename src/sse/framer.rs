//! The framer: where whole events end, across arbitrary chunking, without decoding them.

use bytes::{Bytes, BytesMut};
use std::borrow::Cow;
use std::ops::Range;

/// Finds SSE event boundaries (a blank line: two line terminators in a row, where a
/// terminator is `\r\n`, `\n` or `\r`) across arbitrary chunking, and releases whole events'
/// bytes as they came. Blank lines before an event's first byte do not end it (they travel
/// with it).
#[derive(Debug, Default)]
pub struct EventFramer {
    pending: BytesMut,
    /// The last byte scanned ended a line.
    at_line_start: bool,
    /// The last byte scanned was a `\r`: a `\n` right after it is the same terminator.
    prev_cr: bool,
    /// The event being scanned has a byte that is not a terminator.
    started: bool,
    /// How many events the last [`EventFramer::push`] released.
    released: usize,
    /// The first event's `event:` value, read while the push scans for boundaries.
    name: Name,
}

/// What the scan learnt of the first event of a push (see [`EventFramer::released_name`]).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
enum Name {
    /// The push did not start at an event's first byte: its lines were not all seen.
    #[default]
    Unknown,
    /// Every line seen; the last `event:` field's value so far, if any.
    Seen(Option<Range<usize>>),
}

impl EventFramer {
    /// Takes a chunk and returns the bytes that complete whole events (possibly several),
    /// keeping an unfinished event for later. Zero-copy when nothing was pending.
    pub fn push(&mut self, chunk: Bytes) -> Option<Bytes> {
        self.released = 0;
        // The chunk starts an event (nothing of one is held): its lines are read whole.
        self.name = if self.pending.is_empty() && !self.started && !self.prev_cr {
            Name::Seen(None)
        } else {
            Name::Unknown
        };
        let Some(end) = self.last_boundary(&chunk) else {
            self.pending.extend_from_slice(&chunk);
            return None;
        };
        if self.pending.is_empty() {
            let mut chunk = chunk;
            let complete = chunk.split_to(end);
            self.pending.extend_from_slice(&chunk);
            return Some(complete);
        }
        self.pending.extend_from_slice(&chunk[..end]);
        let complete = self.pending.split().freeze();
        self.pending.extend_from_slice(&chunk[end..]);
        Some(complete)
    }

    /// How many whole events the last [`EventFramer::push`] released (each boundary ends
    /// one): a reader of a batch of one needs no [`events`] scan to split it.
    pub fn released(&self) -> usize {
        self.released
    }

    /// When the last push released one event and saw all of it: its `event:` field's value
    /// (the last, per spec) as a range of the released bytes, `Some(None)` when it has none.
    /// The same as [`event_name_of`] on them, found in the boundary scan instead of a second
    /// one. `None`: not known (ask [`event_name_of`]).
    pub fn released_name(&self) -> Option<Option<Range<usize>>> {
        match &self.name {
            Name::Seen(name) if self.released == 1 => Some(name.clone()),
            _ => None,
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

    /// The end (exclusive) of the last event boundary in `chunk`, the line state updated as
    /// if all of `chunk` had been consumed.
    fn last_boundary(&mut self, chunk: &[u8]) -> Option<usize> {
        let mut last = None;
        let mut at = 0;
        // (An empty rest changes no state: it is not scanned.)
        while at < chunk.len() {
            let Some(end) = self.next_boundary(&chunk[at..]) else {
                break;
            };
            at += end;
            last = Some(at);
            self.released += 1;
        }
        last
    }

    /// The end (exclusive) of the first event boundary in `chunk`, the line state updated up
    /// to it; `None` (all of `chunk` consumed) when there is none. Jumps from terminator to
    /// terminator with `memchr2`: the bytes between them only say "a line has content".
    fn next_boundary(&mut self, chunk: &[u8]) -> Option<usize> {
        let mut from = 0;
        while let Some(found) = memchr::memchr2(b'\n', b'\r', &chunk[from..]) {
            let at = from + found;
            if at > from {
                self.content();
                // A whole line `chunk[from..at]` of the first event (see `push`).
                if self.released == 0
                    && let Name::Seen(name) = &mut self.name
                    && let Some(value) = field(&chunk[from..at], b"event")
                {
                    *name = Some(at - value.len()..at);
                }
            }
            from = at + 1;
            let byte = chunk[at];
            if byte == b'\n' && self.prev_cr {
                // The `\n` of a `\r\n` counted at its `\r`.
                self.prev_cr = false;
                continue;
            }
            self.prev_cr = byte == b'\r';
            if self.at_line_start && self.started {
                self.started = false;
                // A boundary's `\r\n` is released whole when both bytes are here.
                if self.prev_cr && chunk.get(from) == Some(&b'\n') {
                    self.prev_cr = false;
                    from += 1;
                }
                return Some(from);
            }
            self.at_line_start = true;
        }
        if from < chunk.len() {
            self.content();
        }
        None
    }

    fn content(&mut self) {
        self.at_line_start = false;
        self.prev_cr = false;
        self.started = true;
    }
}

/// The whole events in `bytes` (what [`EventFramer::push`] released), one slice each.
pub fn events(bytes: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut framer = EventFramer::default();
    let mut rest = bytes;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let end = framer.next_boundary(rest).unwrap_or(rest.len());
        let (event, tail) = rest.split_at(end);
        rest = tail;
        Some(event)
    })
}

/// The lines of one event, without terminators (`\r\n`, `\n` or `\r`).
pub(super) fn lines(event: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = event;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let Some(at) = memchr::memchr2(b'\n', b'\r', rest) else {
            let line = rest;
            rest = &[];
            return Some(line);
        };
        let line = &rest[..at];
        let skip = if rest[at] == b'\r' && rest.get(at + 1) == Some(&b'\n') {
            2
        } else {
            1
        };
        rest = &rest[at + skip..];
        Some(line)
    })
}

/// A field's value in `line` if the line is that field (`name:value`, one leading space
/// dropped, as the spec says; a line that is the name alone is the field with no value).
fn field<'a>(line: &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
    let rest = line.strip_prefix(name)?;
    if rest.is_empty() {
        return Some(rest);
    }
    let value = rest.strip_prefix(b":")?;
    Some(value.strip_prefix(b" ").unwrap_or(value))
}

/// One event's `event:` field (its last, per spec), undecoded; `None` when it has none.
pub fn event_name_of(event: &[u8]) -> Option<&[u8]> {
    lines(event).filter_map(|line| field(line, b"event")).last()
}

/// One event's `data:` lines joined by `\n`, undecoded: borrowed when it has one.
pub fn data_of(event: &[u8]) -> Cow<'_, [u8]> {
    let mut data: Option<Cow<'_, [u8]>> = None;
    for value in lines(event).filter_map(|line| field(line, b"data")) {
        match &mut data {
            None => data = Some(Cow::Borrowed(value)),
            Some(joined) => {
                let joined = joined.to_mut();
                joined.push(b'\n');
                joined.extend_from_slice(value);
            }
        }
    }
    data.unwrap_or(Cow::Borrowed(&[]))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The byte-at-a-time scan this framer replaced: the reference it must agree with.
    #[derive(Default)]
    struct Reference {
        at_line_start: bool,
        prev_cr: bool,
        started: bool,
    }

    impl Reference {
        fn scan(&mut self, chunk: &[u8]) -> Option<usize> {
            let mut last = None;
            for (i, &b) in chunk.iter().enumerate() {
                match b {
                    b'\n' if self.prev_cr => {
                        self.prev_cr = false;
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

    fn split_all(chunks: &[&str]) -> Vec<String> {
        let mut s = EventFramer::default();
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

    /// Every terminator style, leading blank lines, `\r` alone, split at every pair of
    /// points: the same boundaries as the byte-at-a-time reference, chunk for chunk.
    #[test]
    fn agrees_with_the_byte_scan_at_every_split() {
        let stream: &[u8] =
            b"\n\r\nid:1\nevent:a\ndata:x\n\ndata: y\r\n\r\ndata:z\r\rdata:w\r\n\n: c\n\ndata";
        for i in 0..=stream.len() {
            for j in i..=stream.len() {
                let chunks = [&stream[..i], &stream[i..j], &stream[j..]];
                let (mut framer, mut reference) = (EventFramer::default(), Reference::default());
                for chunk in chunks {
                    assert_eq!(
                        framer.last_boundary(chunk),
                        reference.scan(chunk),
                        "split at {i} and {j}"
                    );
                }
            }
        }
    }

    /// What `released` counts is what `events` finds in the batch, at every split.
    #[test]
    fn counts_the_events_it_releases_at_every_split() {
        let stream: &[u8] =
            b"\n\r\nid:1\nevent:a\ndata:x\n\ndata: y\r\n\r\ndata:z\r\rdata:w\r\n\n: c\n\ndata";
        for i in 0..=stream.len() {
            for j in i..=stream.len() {
                let mut framer = EventFramer::default();
                let mut total = 0;
                for chunk in [&stream[..i], &stream[i..j], &stream[j..]] {
                    let complete = framer.push(Bytes::copy_from_slice(chunk));
                    let found = complete.as_deref().map_or(0, |c| events(c).count());
                    assert_eq!(framer.released(), found, "split at {i} and {j}");
                    total += found;
                }
                assert_eq!(total, 5, "split at {i} and {j}");
            }
        }
    }

    /// The name read while framing is what `event_name_of` reads in the released bytes,
    /// at every split; where it is not known, it says so.
    #[test]
    fn reads_a_released_events_name_as_event_name_of_does() {
        let stream: &[u8] = b"id:1\nevent:a\ndata:x\n\nevent: b\r\nevent:c\r\ndata: y\r\n\r\n\
            data:z\n\n\n\nevent\ndata:w\n\n:c\neventx:q\ndata\n\nevent:d\rdata\r\r";
        let mut known = 0;
        for i in 0..=stream.len() {
            for j in i..=stream.len() {
                let mut framer = EventFramer::default();
                for chunk in [&stream[..i], &stream[i..j], &stream[j..]] {
                    let complete = framer.push(Bytes::copy_from_slice(chunk));
                    let Some(name) = framer.released_name() else {
                        continue;
                    };
                    known += 1;
                    let complete = complete.expect("a released event");
                    assert_eq!(framer.released(), 1, "split at {i} and {j}");
                    assert_eq!(
                        name.map(|range| &complete[range]),
                        event_name_of(&complete),
                        "split at {i} and {j}"
                    );
                }
            }
        }
        assert!(known > 100, "names read in the scan: {known}");

        let mut framer = EventFramer::default();
        let first = framer.push(Bytes::from_static(b"id:1\nevent:a\ndata:x\n\nda"));
        assert_eq!(first.as_deref(), Some(&b"id:1\nevent:a\ndata:x\n\n"[..]));
        assert_eq!(framer.released_name(), Some(Some(11..12)));
        // The next event's start was held: its lines are not all seen by the next push.
        framer.push(Bytes::from_static(b"ta:y\nevent:b\n\n"));
        assert_eq!(framer.released_name(), None);
        framer.push(Bytes::from_static(b"data:z\n\n"));
        assert_eq!(framer.released_name(), Some(None));
    }

    #[test]
    fn iterates_events_and_reads_their_fields() {
        let batch = b"id:1\nevent:response.created\n:HTTP_STATUS/200\ndata:{\"a\":1}\n\nevent: x\r\ndata: one\r\ndata:two\r\n\r\n";
        let all: Vec<&[u8]> = events(batch).collect();
        assert_eq!(all.len(), 2);
        assert_eq!(event_name_of(all[0]), Some(&b"response.created"[..]));
        assert_eq!(&*data_of(all[0]), b"{\"a\":1}");
        assert_eq!(event_name_of(all[1]), Some(&b"x"[..]));
        assert_eq!(&*data_of(all[1]), b"one\ntwo");
        assert_eq!(event_name_of(b"data:1\n\n"), None);
        assert_eq!(&*data_of(b"event:x\n\n"), b"");
    }
}
