//! What the pass-through reads of a `/v1/responses` body, and the one change it may make:
//! the top-level `model` (an alias's target), spliced in without building a tree of the body.

use crate::error::ApiError;
use bytes::Bytes;
use serde::Deserialize;
use std::ops::Range;

/// The few request fields the gateway looks at; everything else is passed on untouched.
/// Deserializing into this still checks that the whole body is valid JSON.
#[derive(Deserialize)]
pub(super) struct RequestProbe {
    pub model: Option<String>,
    #[serde(default)]
    pub stream: Option<bool>,
    pub previous_response_id: Option<String>,
}

/// Parses just enough of a client body, with OpenAI-shaped 400s. One pass: the probe's
/// deserializer still validates every byte of the JSON.
pub(super) fn probe(bytes: &[u8]) -> Result<RequestProbe, ApiError> {
    // JSON is UTF-8, but serde_json skips the strings it ignores without checking them.
    if let Err(e) = std::str::from_utf8(bytes) {
        return Err(ApiError::invalid_request(format!(
            "The request body is not valid UTF-8 (invalid byte at offset {}).",
            e.valid_up_to()
        )));
    }
    serde_json::from_slice::<RequestProbe>(bytes).map_err(|e| {
        let is_object = bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
        match e.classify() {
            serde_json::error::Category::Data if !is_object => {
                ApiError::invalid_request("The request body must be a JSON object.")
            }
            serde_json::error::Category::Data => {
                ApiError::invalid_request(format!("Invalid request body: {e}"))
            }
            _ => ApiError::invalid_request(format!("The request body is not valid JSON: {e}")),
        }
    })
}

/// `model` rewritten through the alias table: the new name is spliced over the top-level
/// `model` member's value, every other byte of the body is kept. No DOM is built: parsing
/// an aliased 10 MB body of small messages into a `Value` raised the gateway's peak RSS by
/// 114 MiB (docs/reliability.md). `probe` has validated the body already.
pub(super) fn rewrite_model(bytes: Bytes, upstream_model: &str) -> Result<Bytes, ApiError> {
    let span = match top_level_model(&bytes) {
        Ok(Some(span)) if bytes.get(span.start) == Some(&b'"') => span,
        Ok(_) => {
            // `probe` saw a string `model`; the scanner must agree, or nothing is sent.
            return Err(ApiError::invalid_request(
                "Invalid request body: 'model' must be a string.",
            ));
        }
        Err(err) => return Err(err),
    };
    let name = serde_json::to_string(upstream_model)
        .map_err(|e| ApiError::invalid_request(format!("Invalid request: {e}")))?;
    let mut out = Vec::with_capacity(bytes.len() - span.len() + name.len());
    out.extend_from_slice(&bytes[..span.start]);
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(&bytes[span.end..]);
    Ok(Bytes::from(out))
}

/// Where the value of the top-level `model` member lies, if there is one. A second
/// top-level `model` (however its name is escaped) is refused: the gateway checks one, and
/// the upstream might use the other.
fn top_level_model(bytes: &[u8]) -> Result<Option<Range<usize>>, ApiError> {
    let invalid = || ApiError::invalid_request("The request body is not valid JSON.");
    let mut scan = Scanner { bytes, at: 0 };
    let mut found = None;
    scan.whitespace();
    scan.eat(b'{').ok_or_else(invalid)?;
    scan.whitespace();
    if scan.eat(b'}').is_none() {
        loop {
            scan.whitespace();
            let key = scan.string().ok_or_else(invalid)?;
            scan.whitespace();
            scan.eat(b':').ok_or_else(invalid)?;
            scan.whitespace();
            let value = scan.value().ok_or_else(invalid)?;
            if is_key(&bytes[key], "model") {
                if found.is_some() {
                    return Err(ApiError::invalid_request(
                        "Invalid request body: duplicate field `model`.",
                    )
                    .with_param("model"));
                }
                found = Some(value);
            }
            scan.whitespace();
            if scan.eat(b',').is_none() {
                scan.eat(b'}').ok_or_else(invalid)?;
                break;
            }
        }
    }
    scan.whitespace();
    if scan.at != bytes.len() {
        return Err(invalid());
    }
    Ok(found)
}

/// Whether a raw JSON string (quotes included) is `name` once unescaped.
fn is_key(raw: &[u8], name: &str) -> bool {
    let inner = raw.get(1..raw.len().saturating_sub(1)).unwrap_or_default();
    if !inner.contains(&b'\\') {
        return inner == name.as_bytes();
    }
    // Escaped: at most 6 bytes (`\u0065`) per character of `name`.
    raw.len() <= 6 * name.len() + 2
        && serde_json::from_slice::<String>(raw).is_ok_and(|k| k == name)
}

/// A cursor over JSON text that finds where values end, without building them. It relies
/// on the text being valid JSON (checked before) for what it does not look at.
struct Scanner<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Scanner<'_> {
    fn whitespace(&mut self) {
        while matches!(self.bytes.get(self.at), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    fn eat(&mut self, byte: u8) -> Option<()> {
        (self.bytes.get(self.at) == Some(&byte)).then(|| self.at += 1)
    }

    /// A string at the cursor: its span, quotes included.
    fn string(&mut self) -> Option<Range<usize>> {
        let start = self.at;
        self.eat(b'"')?;
        loop {
            let rest = self.bytes.get(self.at..)?;
            self.at += memchr::memchr2(b'"', b'\\', rest)?;
            if self.bytes[self.at] == b'\\' {
                self.at += 2; // the escaped byte cannot end the string
            } else {
                self.at += 1;
                return Some(start..self.at);
            }
        }
    }

    /// Any value at the cursor: its span.
    fn value(&mut self) -> Option<Range<usize>> {
        let start = self.at;
        match self.bytes.get(self.at)? {
            b'"' => {
                self.string()?;
            }
            b'{' | b'[' => self.nested()?,
            _ => {
                // A number, `true`, `false` or `null`: up to the next delimiter.
                let rest = self.bytes.get(self.at..)?;
                let len = rest
                    .iter()
                    .position(|b| matches!(b, b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r'))
                    .unwrap_or(rest.len());
                if len == 0 {
                    return None;
                }
                self.at += len;
            }
        }
        Some(start..self.at)
    }

    /// An object or array at the cursor, skipped to its matching bracket.
    fn nested(&mut self) -> Option<()> {
        let mut depth = 0usize;
        loop {
            match *self.bytes.get(self.at)? {
                b'"' => {
                    self.string()?;
                    continue;
                }
                b'{' | b'[' => depth += 1,
                b'}' | b']' => {
                    depth = depth.checked_sub(1)?;
                    if depth == 0 {
                        self.at += 1;
                        return Some(());
                    }
                }
                _ => {}
            }
            self.at += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[test]
    fn probe_rejects_non_objects_and_bad_types() {
        assert!(probe(b"[1]").is_err());
        assert!(probe(b"{\"model\":").is_err());
        let err = probe(br#"{"model": 5}"#).err().unwrap();
        assert_eq!(err.status.as_u16(), 400);
        assert!(probe(br#"{"model":"m","stream":true,"x":{"y":[1]}}"#).is_ok());
    }

    /// Regression (tests/bad_input.rs): invalid UTF-8 inside a field the probe skips was
    /// forwarded upstream instead of being refused.
    #[test]
    fn probe_rejects_invalid_utf8_in_skipped_fields() {
        let err = probe(b"{\"model\":\"m\",\"input\":\"\xff\xfe\"}")
            .err()
            .unwrap();
        assert_eq!(err.status.as_u16(), 400);
        assert!(err.message.contains("UTF-8"), "{}", err.message);
    }

    fn rewrite(body: &[u8]) -> Result<String, ApiError> {
        rewrite_model(Bytes::copy_from_slice(body), "qwen3-max")
            .map(|out| String::from_utf8(out.to_vec()).unwrap())
    }

    /// Only the top-level `model` value changes: not a nested `model`, not `"model"` inside
    /// another field's string (escaped quotes and a trailing backslash included).
    #[test]
    fn rewrite_touches_only_the_top_level_model() {
        let body = br#"{"input":"say \"model\":\"gpt-4o\" \\","metadata":{"model":"gpt-4o","x":[{"model":1}]},"a":[1,{"b":[]},"]}"],"c":-1.5e3,"d":true,"e":null,"model":"gpt-4o","z":"\"model\""}"#;
        let expected = br#"{"input":"say \"model\":\"gpt-4o\" \\","metadata":{"model":"gpt-4o","x":[{"model":1}]},"a":[1,{"b":[]},"]}"],"c":-1.5e3,"d":true,"e":null,"model":"qwen3-max","z":"\"model\""}"#;
        assert_eq!(rewrite(body).unwrap().as_bytes(), expected);
        // First member, last member, the only member.
        assert_eq!(
            rewrite(br#"{"model":"gpt-4o","x":{}}"#).unwrap(),
            r#"{"model":"qwen3-max","x":{}}"#
        );
        assert_eq!(
            rewrite(br#"{"model":"gpt-4o"}"#).unwrap(),
            r#"{"model":"qwen3-max"}"#
        );
    }

    #[test]
    fn rewrite_keeps_whitespace_and_escapes_around_the_value() {
        assert_eq!(
            rewrite(b" {\n\t\"model\" \r\n :\t \"gpt-4o\" \n, \"x\" : [ 1 , 2 ] } \n").unwrap(),
            " {\n\t\"model\" \r\n :\t \"qwen3-max\" \n, \"x\" : [ 1 , 2 ] } \n"
        );
        // An escaped name and an escaped value are what the upstream would read as
        // `model` and `gpt-4o`: the whole raw value is replaced, the name kept as sent.
        assert_eq!(
            rewrite(br#"{"mod\u0065l":"gpt\u002d4o","x":1}"#).unwrap(),
            r#"{"mod\u0065l":"qwen3-max","x":1}"#
        );
    }

    #[test]
    fn rewrite_keeps_unicode_and_escapes_the_new_name() {
        let body = "{\"input\":\"日本語 🦀 \\u00e9\",\"model\":\"gpt-4o\",\"名前\":\"🙂\"}";
        assert_eq!(
            rewrite(body.as_bytes()).unwrap(),
            "{\"input\":\"日本語 🦀 \\u00e9\",\"model\":\"qwen3-max\",\"名前\":\"🙂\"}"
        );
        let out = rewrite_model(Bytes::from_static(br#"{"model":"m"}"#), "q\"名\\").unwrap();
        assert_eq!(&out[..], "{\"model\":\"q\\\"名\\\\\"}".as_bytes());
    }

    /// Two top-level `model`s (however spelled) are refused by `probe` and by the rewrite:
    /// the gateway would check one, and the upstream might use the other.
    #[test]
    fn a_duplicate_top_level_model_is_refused() {
        for body in [
            &br#"{"model":"gpt-4o","input":"x","model":"other"}"#[..],
            br#"{"model":"gpt-4o","mod\u0065l":"other"}"#,
        ] {
            let err = probe(body).err().expect("probe refuses");
            assert_eq!(err.status.as_u16(), 400);
            assert!(err.message.contains("duplicate field"), "{}", err.message);
            let err = rewrite(body).expect_err("rewrite refuses");
            assert_eq!(err.status.as_u16(), 400);
        }
        // A nested `model` next to the top-level one is no duplicate.
        assert!(probe(br#"{"model":"gpt-4o","metadata":{"model":"x"}}"#).is_ok());
    }

    #[test]
    fn rewrite_refuses_what_it_cannot_read() {
        for body in [
            &b"[]"[..],
            b"{\"model\":\"gpt-4o\"",
            b"{\"model\":\"gpt-4o\"} x",
            b"{\"model\":5}",
            b"{\"input\":\"x\"}",
            b"{\"model\":\"unterminated}",
            b"{\"a\":[1,2}",
            b"",
        ] {
            assert!(
                rewrite(body).is_err(),
                "{:?}",
                String::from_utf8_lossy(body)
            );
        }
    }

    fn arb_key() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        prop_oneof![
            3 => prop::sample::select(vec!["model", "input", "tools", "x"]).prop_map(str::to_owned),
            1 => any::<String>(),
        ]
    }

    fn arb_json() -> impl proptest::strategy::Strategy<Value = Value> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            (-1e300f64..1e300).prop_map(Value::from),
            any::<String>().prop_map(Value::from),
            Just(Value::from("\"model\": \\ \u{0}")),
        ];
        leaf.prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::vec((arb_key(), inner), 0..6)
                    .prop_map(|kv| Value::Object(kv.into_iter().collect())),
            ]
        })
    }

    proptest::proptest! {
        /// Any object with a top-level `model`, compact or pretty: the rewrite reads back
        /// as the same object with only `model` changed, and only the value's bytes differ.
        #[test]
        fn rewrite_changes_nothing_but_the_model(
            members in proptest::collection::vec((arb_key(), arb_json()), 0..8),
            at in 0usize..8,
            pretty in proptest::bool::ANY,
        ) {
            let mut object: serde_json::Map<String, Value> =
                members.into_iter().filter(|(k, _)| k != "model").collect();
            let mut entries: Vec<(String, Value)> = std::mem::take(&mut object).into_iter().collect();
            entries.insert(at.min(entries.len()), ("model".into(), Value::from("gpt-4o")));
            let object = Value::Object(entries.into_iter().collect());
            let body = if pretty {
                serde_json::to_vec_pretty(&object).unwrap()
            } else {
                serde_json::to_vec(&object).unwrap()
            };
            let out = rewrite_model(Bytes::from(body.clone()), "qwen3-max").unwrap();
            // Compared with the body as parsed (floats may not round-trip exactly).
            let mut expected: Value = serde_json::from_slice(&body).unwrap();
            expected["model"] = Value::from("qwen3-max");
            proptest::prop_assert_eq!(serde_json::from_slice::<Value>(&out).unwrap(), expected);
            proptest::prop_assert_eq!(out.len(), body.len() + "qwen3-max".len() - "gpt-4o".len());
        }
    }

    #[test]
    fn rewrite_keeps_other_fields_in_order() {
        let out = rewrite_model(
            Bytes::from_static(br#"{"input":"hi","model":"gpt-4o","enable_thinking":true}"#),
            "qwen3-max",
        )
        .unwrap();
        assert_eq!(
            &out[..],
            br#"{"input":"hi","model":"qwen3-max","enable_thinking":true}"#
        );
    }
}
