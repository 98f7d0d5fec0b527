//! 3. `SseParser`, `EventFramer` and `EventReader` on arbitrary bytes and chunkings.

use super::*;
use bytes::Bytes;
use qwen_gateway::sse::EventFramer;
use qwen_gateway::sse::SseParser;
use qwen_gateway::upstream::UpstreamBody;
use qwen_gateway::upstream::events::{EventReader, ReadLimits, StreamFault};

// ---------------------------------------------------------------- SSE generators

/// SSE-looking text: fields, comments, blank lines and every line terminator, with
/// multi-byte characters.
fn arb_sse_text() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop::sample::select(vec![
            "data:",
            "data: ",
            "event:",
            "event: x",
            "id:",
            "id: 7",
            "retry: 10",
            ":",
            ": c",
            "\n",
            "\n",
            "\n\n",
            "\r\n",
            "\r\n\r\n",
            "\r",
            "x",
            "{\"a\":1}",
            "日本",
            "é",
            " ",
            "data: {\"type\":\"response.output_text.delta\",\"delta\":\"トークン\"}\n\n",
        ]),
        0..60,
    )
    .prop_map(|parts| parts.concat())
}

/// Cut points for `len` bytes.
fn arb_cuts() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(any::<prop::sample::Index>(), 0..12).prop_map(|idx| {
        let _ = &idx;
        idx.iter().map(|i| i.index(usize::MAX)).collect()
    })
}

fn chunked(bytes: &[u8], cuts: &[usize]) -> Vec<Bytes> {
    if bytes.is_empty() {
        return Vec::new();
    }
    let mut points: Vec<usize> = cuts.iter().map(|c| c % bytes.len()).collect();
    points.push(0);
    points.push(bytes.len());
    points.sort_unstable();
    points.dedup();
    points
        .windows(2)
        .map(|w| Bytes::copy_from_slice(&bytes[w[0]..w[1]]))
        .collect()
}

type Ev = (String, String, String);

/// The events and the count of lines decoded lossily.
fn parse(chunks: &[Bytes]) -> (Vec<Ev>, u64) {
    let mut parser = SseParser::new();
    let mut events = Vec::new();
    for chunk in chunks {
        events.extend(parser.push(chunk.clone()));
    }
    events.extend(parser.finish());
    let events = events
        .into_iter()
        .map(|e| (e.event, e.data, e.id))
        .collect();
    (events, parser.invalid_utf8_lines())
}

/// Everything an `EventReader` bounded to `max_event_bytes` hands on (whole events, then
/// the rest at the end), and the fault it stopped on.
fn read_events(chunks: Vec<Bytes>, max_event_bytes: usize) -> (Vec<u8>, Option<StreamFault>) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let body = UpstreamBody::buffered(Bytes::new()).with_held(chunks);
        let limits = ReadLimits {
            idle_timeout: std::time::Duration::from_secs(5),
            max_event_bytes,
            max_total_bytes: None,
        };
        let mut reader = EventReader::new(body, limits, Default::default());
        let mut out = Vec::new();
        loop {
            match reader.next().await {
                Ok(Some(events)) => out.extend_from_slice(&events),
                Ok(None) => {
                    out.extend_from_slice(&reader.take_rest());
                    return (out, None);
                }
                Err(fault) => {
                    let after = reader.next().await;
                    assert!(
                        matches!(after, Ok(None)),
                        "read on after {fault:?}: {after:?}"
                    );
                    return (out, Some(fault));
                }
            }
        }
    })
}

/// Event boundaries of `bytes`, by the SSE rules written out plainly: an event ends at a
/// blank line (`\r\n`, `\n` or `\r` right after another terminator) once something other
/// than line terminators came since the last boundary.
fn boundaries(bytes: &[u8]) -> Vec<usize> {
    let mut out = Vec::new();
    let (mut at_line_start, mut started) = (false, false);
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\r' | b'\n' => {
                let end = if bytes[i] == b'\r' && bytes.get(i + 1) == Some(&b'\n') {
                    i + 2
                } else {
                    i + 1
                };
                if at_line_start && started {
                    out.push(end);
                    started = false;
                }
                at_line_start = true;
                i = end;
            }
            _ => {
                at_line_start = false;
                started = true;
                i += 1;
            }
        }
    }
    out
}

// ---------------------------------------------------------------- properties

proptest! {
    #![proptest_config(cases(256))]

    /// 3a. SSE parsing does not depend on how the bytes are cut.
    #[test]
    fn sse_parser_is_chunking_invariant(text in arb_sse_text(), cuts in arb_cuts()) {
        let bytes = text.as_bytes();
        let whole = parse(&chunked(bytes, &[]));
        let split = parse(&chunked(bytes, &cuts));
        prop_assert_eq!(whole, split);
    }

    /// 3b. Arbitrary bytes (invalid UTF-8 included) never make the parser panic or stop:
    /// it decodes lossily, and what it finds and counts does not depend on the chunking.
    #[test]
    fn sse_parser_survives_arbitrary_bytes(
        bytes in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..400),
            arb_sse_text().prop_map(String::into_bytes),
        ],
        cuts in arb_cuts(),
    ) {
        prop_assert_eq!(parse(&chunked(&bytes, &[])), parse(&chunked(&bytes, &cuts)));
    }

    /// 3d. The upstream reader, bounded: what it hands on is a prefix of the input cut at
    /// event boundaries, then the rest at the end, or a fault; an `EventTooLarge` fault
    /// comes only when more than the bound was held (so never below it, whatever the
    /// chunking), and nothing more is read after a fault.
    #[test]
    fn event_reader_hands_on_its_input_and_keeps_its_bound(
        bytes in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..400),
            arb_sse_text().prop_map(String::into_bytes),
        ],
        cuts in arb_cuts(),
        bound in 1usize..200,
    ) {
        let (out, fault) = read_events(chunked(&bytes, &cuts), bound);
        prop_assert!(bytes.starts_with(&out));
        match fault {
            None => prop_assert_eq!(&out[..], &bytes[..]),
            Some(StreamFault::EventTooLarge(limit)) => {
                prop_assert_eq!(limit, bound);
                // Held more than the bound: the unfinished event had more bytes than it.
                prop_assert!(bytes.len() - out.len() > bound);
            }
            Some(other) => prop_assert!(false, "unexpected fault {other:?}"),
        }
        // Below the bound no event is too large, whatever the chunking.
        if bytes.len() <= bound {
            prop_assert_eq!(&out[..], &bytes[..]);
        }
    }

    /// 3c. The relay's splitter: output is the input byte for byte, cut only at event
    /// boundaries, and the events a client parses are the same whatever the chunking.
    #[test]
    fn event_splitter_is_exact_and_chunking_invariant(
        text in prop_oneof![3 => arb_sse_text().prop_map(String::into_bytes), 1 => prop::collection::vec(any::<u8>(), 0..300)],
        cuts in arb_cuts(),
    ) {
        let bytes = &text[..];
        let reference = boundaries(bytes);
        let mut splitter = EventFramer::default();
        let mut out: Vec<Bytes> = Vec::new();
        let mut ends = Vec::new();
        let mut at = 0;
        for chunk in chunked(bytes, &cuts) {
            if let Some(done) = splitter.push(chunk) {
                prop_assert!(!done.is_empty());
                at += done.len();
                ends.push(at);
                out.push(done);
            }
        }
        let pending = splitter.take_pending();
        let mut all = out.concat();
        all.extend_from_slice(&pending);
        prop_assert_eq!(&all[..], bytes, "the relay's output is its input");
        for &end in &ends {
            // At a reference boundary, or just before the `\n` of a `\r\n` that ends one
            // (the `\r` arrived at the end of a chunk; the `\n` goes with the next event).
            let crlf_split = reference.contains(&(end + 1))
                && bytes[end - 1] == b'\r'
                && bytes.get(end) == Some(&b'\n');
            prop_assert!(reference.contains(&end) || crlf_split,
                "cut at {} is not an event boundary {:?}", end, reference);
        }
        if let Some(&last) = reference.last() {
            prop_assert!(at == last || at + 1 == last, "every complete event was released");
        }
        let released = out.concat();
        let whole_events = parse(&chunked(&released, &[]));
        let piecewise = parse(&out);
        prop_assert_eq!(whole_events, piecewise);
    }
}

/// An edge case written out by hand: `\r` alone is a line terminator too. (The properties
/// found no crash so far; any they find becomes a named test here, next to its fix.)
#[test]
fn splitter_handles_a_lone_cr_terminator_at_a_chunk_end() {
    let mut s = EventFramer::default();
    assert_eq!(s.push(Bytes::from_static(b"data: a\r")), None);
    assert_eq!(
        s.push(Bytes::from_static(b"\rdata: b\r\r")).as_deref(),
        Some(&b"data: a\r\rdata: b\r\r"[..])
    );
}
