//! Keeps the gateway's own secrets (region keys, the admin token) out of everything an
//! upstream sends back, whatever it sends: an error page echoing the `Authorization` header
//! it received must not hand a client the key.
//!
//! Applied where every upstream byte enters the gateway ([`super::UpstreamBody`] and the
//! response head in `send_once`), so relays, chat translation, error normalisation and logs
//! all see scrubbed bytes. Each occurrence is replaced by [`REDACTED`]; everything else stays
//! byte for byte.
//!
//! Streams are scrubbed exactly, across any chunking: [`StreamScrubber`] holds back the
//! shortest tail of a chunk that could still be the start of a secret, and scans it again
//! with the next chunk. A secret is a header value, so it never contains CR or LF: a chunk
//! that ends a line (as every complete SSE event does) holds nothing back, and events are
//! never delayed. Team keys are not scrubbed: the gateway only has their hashes (and never
//! sends a client's key upstream).

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, HeaderValue};
use memchr::memmem::Finder;

/// What a secret is replaced with.
pub const REDACTED: &[u8] = b"[REDACTED]";

/// Secrets shorter than this are not scrubbed: replacing every `any` or `k1` in every
/// answer would corrupt text, and no real key is that short (Model Studio's are 35 bytes).
pub const MIN_SECRET_LEN: usize = 8;

#[derive(Clone)]
struct Secret {
    finder: Finder<'static>,
    /// The secret lowercased, for header names (which `http` keeps lowercase).
    name_finder: Finder<'static>,
    /// What logs may call it: a variable name, or "admin token".
    label: String,
}

impl Secret {
    fn bytes(&self) -> &[u8] {
        self.finder.needle()
    }
}

/// The set of secrets to keep out of answers.
#[derive(Clone, Default)]
pub struct Scrubber {
    secrets: Vec<Secret>,
}

impl std::fmt::Debug for Scrubber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let labels: Vec<&str> = self.secrets.iter().map(|s| s.label.as_str()).collect();
        f.debug_struct("Scrubber")
            .field("secrets", &labels)
            .finish()
    }
}

impl Scrubber {
    /// Adds a secret under a label safe to log. Too short (see [`MIN_SECRET_LEN`]), or
    /// holding CR/LF (not a header value, so never sent): `false`, not added.
    pub fn add(&mut self, label: impl Into<String>, secret: &str) -> bool {
        let bytes = secret.as_bytes();
        if bytes.len() < MIN_SECRET_LEN || bytes.iter().any(|b| matches!(b, b'\r' | b'\n')) {
            return false;
        }
        if self.secrets.iter().all(|s| s.bytes() != bytes) {
            self.secrets.push(Secret {
                finder: Finder::new(bytes).into_owned(),
                name_finder: Finder::new(&bytes.to_ascii_lowercase()).into_owned(),
                label: label.into(),
            });
        }
        true
    }

    pub fn is_empty(&self) -> bool {
        self.secrets.is_empty()
    }

    /// The earliest occurrence of any secret at or after `from`: (start, secret).
    fn find(&self, haystack: &[u8], from: usize) -> Option<(usize, &Secret)> {
        let rest = haystack.get(from..)?;
        self.secrets
            .iter()
            .filter_map(|s| s.finder.find(rest).map(|at| (from + at, s)))
            .min_by_key(|(at, _)| *at)
    }

    /// `bytes` with every secret replaced, and the labels of those found; `None` (no copy)
    /// when there was none.
    pub fn scrub<'a>(&'a self, bytes: &[u8]) -> Option<(Vec<u8>, Vec<&'a str>)> {
        let mut out: Option<Vec<u8>> = None;
        let mut found = Vec::new();
        let mut from = 0;
        while let Some((at, secret)) = self.find(bytes, from) {
            let buf = out.get_or_insert_with(|| Vec::with_capacity(bytes.len()));
            buf.extend_from_slice(&bytes[from..at]);
            buf.extend_from_slice(REDACTED);
            from = at + secret.bytes().len();
            if !found.contains(&secret.label.as_str()) {
                found.push(secret.label.as_str());
            }
        }
        let mut out = out?;
        out.extend_from_slice(&bytes[from..]);
        Some((out, found))
    }

    /// The secret a header name holds, if any.
    fn name_secret(&self, name: &http::HeaderName) -> Option<&Secret> {
        let name = name.as_str().as_bytes();
        self.secrets
            .iter()
            .find(|s| s.name_finder.find(name).is_some())
    }

    /// Replaces secrets inside header values; drops a header whose *name* holds one.
    /// Returns the labels found.
    pub fn scrub_headers(&self, headers: &mut HeaderMap) -> Vec<String> {
        let mut found = Vec::new();
        // Nearly every answer holds no secret: look first, and rebuild the map only then.
        let dirty = headers.iter().any(|(name, value)| {
            self.name_secret(name).is_some() || self.find(value.as_bytes(), 0).is_some()
        });
        if !dirty {
            return found;
        }
        let mut clean = HeaderMap::with_capacity(headers.len());
        for (name, value) in headers.iter() {
            if let Some(s) = self.name_secret(name) {
                found.push(s.label.clone());
                continue;
            }
            match self.scrub(value.as_bytes()) {
                None => {
                    clean.append(name.clone(), value.clone());
                }
                Some((bytes, labels)) => {
                    found.extend(labels.iter().map(|l| (*l).to_owned()));
                    // The scrubbed value is the old one with secret bytes replaced by
                    // visible ASCII, so it is still a valid header value.
                    if let Ok(value) = HeaderValue::from_bytes(&bytes) {
                        clean.append(name.clone(), value);
                    }
                }
            }
        }
        if !found.is_empty() {
            *headers = clean;
        }
        found
    }

    /// Length of the longest tail of `bytes` that is a proper prefix of some secret: bytes
    /// that might be completed into a secret by what comes next.
    fn open_tail(&self, bytes: &[u8]) -> usize {
        if matches!(bytes.last(), None | Some(b'\n' | b'\r')) {
            return 0;
        }
        let mut longest = 0;
        for secret in &self.secrets {
            let needle = secret.bytes();
            let window = bytes.len().min(needle.len() - 1);
            let start = bytes.len() - window;
            for at in memchr::memchr_iter(needle[0], &bytes[start..]) {
                let tail = &bytes[start + at..];
                if tail.len() > longest && needle.starts_with(tail) {
                    longest = tail.len();
                    break; // the first match in the window is the longest for this secret
                }
            }
        }
        longest
    }
}

/// One stream's scrubbing state (see the module docs).
#[derive(Debug, Default)]
pub struct StreamScrubber {
    held: BytesMut,
    /// Labels of the secrets found so far, for one log line per response.
    pub found: Vec<String>,
}

impl StreamScrubber {
    /// The bytes of `chunk` (after what was held) that can be relayed now, scrubbed. Empty
    /// when everything is held back. Zero-copy for a chunk without any secret or open tail.
    pub fn push(&mut self, scrubber: &Scrubber, chunk: Bytes) -> Bytes {
        if scrubber.is_empty() {
            return chunk;
        }
        let joined = if self.held.is_empty() {
            chunk
        } else {
            self.held.extend_from_slice(&chunk);
            self.held.split().freeze()
        };
        let mut out = match scrubber.scrub(&joined) {
            None => joined,
            Some((bytes, labels)) => {
                for label in labels {
                    if !self.found.iter().any(|l| l == label) {
                        self.found.push(label.to_owned());
                    }
                }
                Bytes::from(bytes)
            }
        };
        let hold = scrubber.open_tail(&out);
        if hold > 0 {
            self.held
                .extend_from_slice(&out.split_off(out.len() - hold));
        }
        out
    }

    /// What is still held at the end of the stream (never a whole secret).
    pub fn finish(&mut self) -> Bytes {
        self.held.split().freeze()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "sk-0123456789abcdef";

    fn scrubber() -> Scrubber {
        let mut s = Scrubber::default();
        assert!(s.add("DASHSCOPE_API_KEY", KEY));
        assert!(s.add("admin token", "admin-token-xyz"));
        assert!(!s.add("SHORT", "any"));
        s
    }

    #[test]
    fn every_occurrence_is_replaced() {
        let s = scrubber();
        let body = format!("{{\"msg\":\"Bearer {KEY} and {KEY}admin-token-xyz\"}}");
        let (out, found) = s.scrub(body.as_bytes()).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\"msg\":\"Bearer [REDACTED] and [REDACTED][REDACTED]\"}"
        );
        assert_eq!(found, ["DASHSCOPE_API_KEY", "admin token"]);
        assert!(s.scrub(b"many any").is_none());
    }

    #[test]
    fn headers_lose_secrets_in_values_and_names() {
        let s = scrubber();
        let mut h = HeaderMap::new();
        h.insert(
            "x-echo",
            HeaderValue::from_str(&format!("Bearer {KEY}")).unwrap(),
        );
        h.insert(
            http::HeaderName::from_bytes(KEY.as_bytes()).unwrap(),
            HeaderValue::from_static("1"),
        );
        h.insert("content-type", HeaderValue::from_static("application/json"));
        let found = s.scrub_headers(&mut h);
        assert_eq!(found.len(), 2);
        assert_eq!(h.len(), 2);
        assert_eq!(h["x-echo"], "Bearer [REDACTED]");
    }

    /// Every way of cutting a stream into chunks gives the same scrubbed bytes.
    #[test]
    fn streams_are_scrubbed_across_any_split() {
        let s = scrubber();
        let stream = format!("data: {{\"a\":\"{KEY}\"}}\n\ndata: sk-0123 {KEY}\n\nsk-01");
        let expected = "data: {\"a\":\"[REDACTED]\"}\n\ndata: sk-0123 [REDACTED]\n\nsk-01";
        let bytes = stream.as_bytes();
        for a in 0..bytes.len() {
            for b in a..bytes.len() {
                let mut st = StreamScrubber::default();
                let mut out = Vec::new();
                for part in [&bytes[..a], &bytes[a..b], &bytes[b..]] {
                    out.extend_from_slice(&st.push(&s, Bytes::copy_from_slice(part)));
                }
                out.extend_from_slice(&st.finish());
                assert_eq!(String::from_utf8_lossy(&out), expected, "split at {a},{b}");
            }
        }
    }

    #[test]
    fn complete_lines_are_never_held() {
        let s = scrubber();
        let mut st = StreamScrubber::default();
        let chunk = Bytes::from_static(b"data: {\"x\":\"s\"}\n\n");
        assert_eq!(st.push(&s, chunk.clone()), chunk);
        let open = Bytes::from_static(b"data: sk-012");
        assert_eq!(&st.push(&s, open)[..], b"data: ");
    }
}
