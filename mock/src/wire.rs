//! SSE framing as Model Studio puts it on the wire, and the chunking that makes clients prove
//! they reassemble events (and characters) across reads.

use bytes::Bytes;

/// How to frame events.
#[derive(Clone, Copy, Debug)]
pub struct Framing {
    /// Model Studio quirks: `:HTTP_STATUS/200` comment, `id:` lines, `data:` with and
    /// without the space after the colon.
    pub quirks: bool,
    /// Emit every event as several chunks.
    pub split: bool,
}

impl Framing {
    /// The bytes of event `index` (its sequence number). `malformed` cuts the JSON short, as a
    /// broken upstream would.
    pub fn frame(&self, index: usize, kind: &str, json: &str, malformed: bool) -> Vec<u8> {
        let data = if malformed { truncated(json) } else { json };
        let mut out = String::with_capacity(json.len() + 64);
        if self.quirks {
            if index == 0 {
                out.push_str(":HTTP_STATUS/200\n");
            }
            out.push_str(&format!("id:{index}\nevent:{kind}\n"));
            // Alternate so clients must accept both spellings within one stream.
            out.push_str(if index.is_multiple_of(2) {
                "data:"
            } else {
                "data: "
            });
        } else {
            out.push_str(&format!("event: {kind}\ndata: "));
        }
        out.push_str(data);
        out.push_str("\n\n");
        out.into_bytes()
    }

    /// Event `index` with its `id:`/`event:` lines but no `data:` line (a broken upstream).
    pub fn frame_without_data(&self, index: usize, kind: &str) -> Vec<u8> {
        let mut out = String::new();
        if self.quirks {
            if index == 0 {
                out.push_str(":HTTP_STATUS/200\n");
            }
            out.push_str(&format!("id:{index}\nevent:{kind}\n\n"));
        } else {
            out.push_str(&format!("event: {kind}\n\n"));
        }
        out.into_bytes()
    }

    /// Splits one framed event into the chunks to write. With splitting on there are at least
    /// two: one cut inside the `data:` line's prefix, and one inside the first multi-byte
    /// character, if any.
    pub fn chunks(&self, event: Vec<u8>) -> Vec<Bytes> {
        if !self.split {
            return vec![Bytes::from(event)];
        }
        let mut cuts = Vec::new();
        if let Some(data_at) = find(&event, b"\ndata:") {
            cuts.push(data_at + 4); // "\ndat" | "a:..."
        }
        if let Some(lead) = event.iter().position(|b| *b >= 0xC0) {
            cuts.push(lead + 1); // first byte of a multi-byte char | the rest of it
        }
        if cuts.is_empty() {
            cuts.push(event.len() / 2);
        }
        cuts.sort_unstable();
        cuts.dedup();
        let event = Bytes::from(event);
        let mut chunks = Vec::with_capacity(cuts.len() + 1);
        let mut start = 0;
        for cut in cuts {
            if cut > start && cut < event.len() {
                chunks.push(event.slice(start..cut));
                start = cut;
            }
        }
        chunks.push(event.slice(start..));
        chunks
    }
}

/// Roughly the first half of `json`, cut at a character boundary: never valid JSON, since
/// the closing brace is gone.
fn truncated(json: &str) -> &str {
    let mut end = json.len() / 2;
    while !json.is_char_boundary(end) {
        end -= 1;
    }
    &json[..end]
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quirky_framing() {
        let f = Framing {
            quirks: true,
            split: false,
        };
        assert_eq!(
            String::from_utf8(f.frame(0, "response.created", "{}", false)).unwrap(),
            ":HTTP_STATUS/200\nid:0\nevent:response.created\ndata:{}\n\n"
        );
        assert_eq!(
            String::from_utf8(f.frame(1, "x", "{}", false)).unwrap(),
            "id:1\nevent:x\ndata: {}\n\n"
        );
    }

    #[test]
    fn plain_framing() {
        let f = Framing {
            quirks: false,
            split: false,
        };
        assert_eq!(
            String::from_utf8(f.frame(0, "x", "{}", false)).unwrap(),
            "event: x\ndata: {}\n\n"
        );
    }

    #[test]
    fn malformed_data_is_not_json() {
        let f = Framing {
            quirks: false,
            split: false,
        };
        let json = r#"{"type":"response.output_text.delta","delta":"トークン"}"#;
        let framed = String::from_utf8(f.frame(3, "x", json, true)).unwrap();
        let data = framed.trim_end().strip_prefix("event: x\ndata: ").unwrap();
        assert!(serde_json::from_str::<serde_json::Value>(data).is_err());
    }

    #[test]
    fn splits_inside_lines_and_characters() {
        let f = Framing {
            quirks: true,
            split: true,
        };
        let event = f.frame(4, "d", r#"{"delta":"こんにちは"}"#, false);
        let chunks = f.chunks(event.clone());
        assert_eq!(chunks.len(), 3);
        assert_eq!(chunks.concat(), event);
        assert!(chunks.iter().any(|c| std::str::from_utf8(c).is_err()));
        let ascii = f.chunks(f.frame(5, "d", "{}", false));
        assert_eq!(ascii.len(), 2);
    }
}
