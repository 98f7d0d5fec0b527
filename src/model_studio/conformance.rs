//! `responses.conformance`: rewriting Model Studio's known deviations from OpenAI's Responses
//! schema, for strict typed clients (e.g. Rust `async-openai`, which cannot parse any answer
//! otherwise).
//!
//! The one deviation rewritten today: timestamps. Model Studio writes `created_at` (and
//! `completed_at`) as floats, `1769084048.0`; OpenAI's schema says integer seconds. The
//! rewrite is a byte scan, not a parse-and-reserialise: every other byte of a body or event
//! (key order, whitespace, escapes, numbers) stays as the upstream wrote it. Off by default,
//! since the pass-through promises the upstream's bytes unchanged.
//!
//! Why a scan is exact: in valid JSON a `"` inside a string is always escaped, so the bytes
//! `"created_at"` followed by `:` can only be an object key, at whatever depth; a match whose
//! quote follows a backslash is inside a string and left alone. Every timestamp key of
//! OpenAI's schema is an integer, so rewriting them at any depth is right.

use bytes::Bytes;
use memchr::memmem::Finder;
use std::sync::LazyLock;

/// Keys whose float values become integers, with their searchers built once (building one
/// per event cost more than the search).
static KEYS: LazyLock<[Finder<'static>; 2]> = LazyLock::new(|| {
    [
        Finder::new(b"\"created_at\""),
        Finder::new(b"\"completed_at\""),
    ]
});

/// The body or event(s) with every float timestamp written as an integer (truncated toward
/// zero: Model Studio's fractions are `.0`), or `None` when there is nothing to rewrite.
pub fn integer_timestamps(bytes: &[u8]) -> Option<Vec<u8>> {
    let mut edits: Vec<(usize, usize, i64)> = Vec::new();
    for key in KEYS.iter() {
        for at in key.find_iter(bytes) {
            if at > 0 && bytes[at - 1] == b'\\' {
                continue;
            }
            if let Some(edit) = float_after_key(bytes, at + key.needle().len()) {
                edits.push(edit);
            }
        }
    }
    if edits.is_empty() {
        return None;
    }
    edits.sort_unstable_by_key(|e| e.0);
    let mut out = Vec::with_capacity(bytes.len());
    let mut from = 0;
    for (start, end, value) in edits {
        out.extend_from_slice(&bytes[from..start]);
        out.extend_from_slice(value.to_string().as_bytes());
        from = end;
    }
    out.extend_from_slice(&bytes[from..]);
    Some(out)
}

/// As [`integer_timestamps`], on a relayed chunk of whole events: the same `Bytes` back,
/// without a copy, when nothing needs rewriting.
pub fn integer_timestamps_bytes(bytes: Bytes) -> Bytes {
    match integer_timestamps(&bytes) {
        Some(rewritten) => Bytes::from(rewritten),
        None => bytes,
    }
}

/// `(start, end, integer)` of a non-integer JSON number that follows `:` at `from`.
fn float_after_key(bytes: &[u8], from: usize) -> Option<(usize, usize, i64)> {
    let mut i = skip_ws(bytes, from);
    if bytes.get(i) != Some(&b':') {
        return None;
    }
    i = skip_ws(bytes, i + 1);
    let start = i;
    if bytes.get(i) == Some(&b'-') {
        i += 1;
    }
    let mut is_float = false;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'0'..=b'9' => {}
            b'.' | b'e' | b'E' | b'+' | b'-' => is_float = true,
            _ => break,
        }
        i += 1;
    }
    if !is_float {
        return None;
    }
    let number: f64 = std::str::from_utf8(&bytes[start..i]).ok()?.parse().ok()?;
    // Beyond 2^53 a float holds no exact integer; leave such a value as it came.
    if !number.is_finite() || number.abs() >= 9_007_199_254_740_992.0 {
        return None;
    }
    Some((start, i, number.trunc() as i64))
}

fn skip_ws(bytes: &[u8], mut i: usize) -> usize {
    while matches!(bytes.get(i), Some(b' ' | b'\t' | b'\n' | b'\r')) {
        i += 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rewrite(s: &str) -> String {
        String::from_utf8(integer_timestamps(s.as_bytes()).unwrap_or_else(|| s.into())).unwrap()
    }

    #[test]
    fn floats_become_integers_and_nothing_else_moves() {
        let body = r#"{"id":"r1","created_at":1769417481.0,"model":"q","x":1.5,"completed_at": 1769417490.25 ,"usage":null}"#;
        assert_eq!(
            rewrite(body),
            r#"{"id":"r1","created_at":1769417481,"model":"q","x":1.5,"completed_at": 1769417490 ,"usage":null}"#
        );
    }

    #[test]
    fn rewrites_inside_sse_events_at_any_depth() {
        let events = "event: response.created\ndata: {\"response\":{\"created_at\":1769417481.0},\"type\":\"response.created\"}\n\n\
                      event: response.output_text.delta\ndata: {\"delta\":\"a\"}\n\n";
        let out = rewrite(events);
        assert!(
            out.contains(r#"{"response":{"created_at":1769417481},"type""#),
            "{out}"
        );
        assert!(out.ends_with("data: {\"delta\":\"a\"}\n\n"));
    }

    #[test]
    fn leaves_integers_nulls_strings_and_text_alone() {
        for body in [
            r#"{"created_at":1769417481,"completed_at":null}"#,
            r#"{"created_at":"1769417481.0"}"#,
            r#"{"text":"say \"created_at\":1.5 please"}"#,
            r#"{"created_at":1e400}"#,
            r#"{"created_at":12345678901234567890.0}"#,
        ] {
            assert_eq!(integer_timestamps(body.as_bytes()), None, "{body}");
        }
    }

    #[test]
    fn exponents_and_negatives_are_read_as_numbers() {
        assert_eq!(
            rewrite(r#"{"created_at":1.7e9}"#),
            r#"{"created_at":1700000000}"#
        );
        assert_eq!(rewrite(r#"{"created_at":-1.5}"#), r#"{"created_at":-1}"#);
    }

    #[test]
    fn unchanged_bytes_are_not_copied() {
        let b = Bytes::from_static(b"data: {\"delta\":\"x\"}\n\n");
        let ptr = b.as_ptr();
        assert_eq!(integer_timestamps_bytes(b).as_ptr(), ptr);
    }
}
