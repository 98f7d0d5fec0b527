//! Per-request fault injection: the `x-mock-*` request headers.
//!
//! Every control is read from the request first and then from the server's default controls
//! (set with [`crate::MockServer::set_default_header`] or `POST /_mock/defaults`), so a test can
//! turn a whole mock into, say, a 503 upstream without touching the client.
//!
//! | header | effect |
//! |---|---|
//! | `x-mock-tokens: N` | answer length in tokens (one delta each) |
//! | `x-mock-delay-ms: D` | pause before each SSE event after the first |
//! | `x-mock-header-delay-ms: D` | pause before the response head (a hang before headers) |
//! | `x-mock-status: S` | answer with status `S` and a Model Studio error body |
//! | `x-mock-error-style: flat\|nested\|html` | error body form: `{"request_id","code","message"}` (default), `{"error":{…},"request_id"}`, or an HTML page (`text/html`, as a load balancer in front of Model Studio sends) |
//! | `x-mock-retry-after: SECS` | `Retry-After` on error answers |
//! | `x-mock-drop-after: K` | streaming: abort the connection after `K` events (0: before any head); non-streaming, `K > 0`: send the head (with the full `Content-Length`) and half the body, then abort |
//! | `x-mock-malformed-at: K` | streaming: event `K` is broken as `x-mock-malformed-kind` says; a complete (non-SSE) answer — any error, or a non-streaming success — (any `K`): the JSON body is cut in half with a matching `Content-Length` (valid framing, invalid JSON) |
//! | `x-mock-malformed-kind: json\|no-data\|unknown\|giant` | how event `K` is broken: `json` (default) cuts its `data:` JSON in half; `no-data` leaves out its `data:` line; `unknown` inserts an extra event of unknown type `response.mock_unknown` before it; `giant` pads its JSON with a `mock_padding` string of `x-mock-pad-bytes` bytes |
//! | `x-mock-pad-bytes: N` | size of the `giant` padding (default 1 MiB) |
//! | `x-mock-gate: NAME` | streaming: pass gate `NAME` before each event after the first; non-streaming: between the two halves of the body |
//! | `x-mock-fail: rate_limit\|moderation\|server_error` | a failure reported inside a 200 |
//! | `x-mock-incomplete: REASON` | end `incomplete` with this reason |
//! | `x-mock-tool-calls: K` | number of parallel function calls |
//! | `x-mock-tail-delay-ms: D` | streaming: end the body `D` ms after the last event (real upstreams' end of body often comes in a later packet) |
//! | `x-mock-call-name: NAME` | call only the function tool `NAME` (when offered), e.g. an agent's shell tool among many |
//! | `x-mock-call-arguments: JSON` | the calls' `arguments` string, verbatim, instead of a sample built from the tool's schema |
//! | `x-mock-delta-bytes: N` | pad every text delta to at least `N` bytes (large answers, fast) |
//! | `x-mock-echo-auth: 1` | echo the `Authorization` header received: in an `x-mock-echo-authorization` response header, in error messages (JSON and HTML), and as one whole text delta of a success (the leaky upstream a gateway must scrub) |

use std::time::Duration;

use crate::config::MockConfig;

/// Header names, in one place so docs, parser and tests agree.
pub mod names {
    pub const TOKENS: &str = "x-mock-tokens";
    pub const DELAY_MS: &str = "x-mock-delay-ms";
    pub const STATUS: &str = "x-mock-status";
    pub const ERROR_STYLE: &str = "x-mock-error-style";
    pub const RETRY_AFTER: &str = "x-mock-retry-after";
    pub const HEADER_DELAY_MS: &str = "x-mock-header-delay-ms";
    pub const DROP_AFTER: &str = "x-mock-drop-after";
    pub const MALFORMED_AT: &str = "x-mock-malformed-at";
    pub const GATE: &str = "x-mock-gate";
    pub const FAIL: &str = "x-mock-fail";
    pub const INCOMPLETE: &str = "x-mock-incomplete";
    pub const TOOL_CALLS: &str = "x-mock-tool-calls";
    pub const MALFORMED_KIND: &str = "x-mock-malformed-kind";
    pub const PAD_BYTES: &str = "x-mock-pad-bytes";
    pub const ECHO_AUTH: &str = "x-mock-echo-auth";
    pub const DELTA_BYTES: &str = "x-mock-delta-bytes";
    pub const CHUNK_BYTES: &str = "x-mock-chunk-bytes";
    pub const CHUNK_DELAY_MS: &str = "x-mock-chunk-delay-ms";
    pub const TAIL_DELAY_MS: &str = "x-mock-tail-delay-ms";
    pub const CALL_NAME: &str = "x-mock-call-name";
    pub const CALL_ARGUMENTS: &str = "x-mock-call-arguments";

    pub const ALL: &[&str] = &[
        TOKENS,
        DELAY_MS,
        STATUS,
        ERROR_STYLE,
        RETRY_AFTER,
        HEADER_DELAY_MS,
        DROP_AFTER,
        MALFORMED_AT,
        GATE,
        FAIL,
        INCOMPLETE,
        TOOL_CALLS,
        MALFORMED_KIND,
        PAD_BYTES,
        ECHO_AUTH,
        DELTA_BYTES,
        CHUNK_BYTES,
        CHUNK_DELAY_MS,
        TAIL_DELAY_MS,
        CALL_NAME,
        CALL_ARGUMENTS,
    ];
}

/// A `200 OK` that is not a success: the failure modes Model Studio reports inside the body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fail {
    /// `status:"failed"` with a `Throttling` error (rate limiting over HTTP 200).
    RateLimit,
    /// `data_inspection_failed`: an `error` event mid-stream, or HTTP 400 when not streaming.
    Moderation,
    /// `status:"failed"` with an `InternalError`.
    ServerError,
}

/// How the event at `x-mock-malformed-at` is broken.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Malformed {
    /// The `data:` JSON is cut in half.
    #[default]
    Json,
    /// The event has no `data:` line at all.
    NoData,
    /// An extra event of an unknown type comes first; the event itself is intact.
    Unknown,
    /// The event's JSON carries a huge `mock_padding` string (`x-mock-pad-bytes`).
    Giant,
    /// The bytes `\xff\xfe` (never valid UTF-8) inside one JSON string of the event.
    Utf8,
}

/// The form of error bodies (`x-mock-error-style`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ErrorStyle {
    /// `{"request_id","code","message"}`.
    #[default]
    Flat,
    /// `{"error":{…},"request_id"}`.
    Nested,
    /// An HTML error page served as `text/html`.
    Html,
}

/// Default size of a `giant` event's padding.
pub const DEFAULT_PAD_BYTES: usize = 1024 * 1024;

/// The controls in effect for one request.
#[derive(Clone, Debug, Default)]
pub struct Controls {
    /// Answer length in tokens (one delta per token).
    pub tokens: Option<usize>,
    /// Pause before each SSE event after the first.
    pub delay: Duration,
    /// Answer with this HTTP status and a Model Studio error body.
    pub status: Option<u16>,
    /// Use the `{"error":{…},"request_id"}` error body form instead of the flat one.
    pub nested_errors: bool,
    /// Answer errors with an HTML page (`x-mock-error-style: html`).
    pub html_errors: bool,
    /// `Retry-After` value for error responses.
    pub retry_after: Option<String>,
    /// Pause before the response head.
    pub header_delay: Duration,
    /// Abort the connection after this many SSE events (0: before any response head).
    pub drop_after: Option<usize>,
    /// Sequence number of the SSE event that is broken (see `malformed`); on a non-streaming
    /// request, any value cuts the JSON body short.
    pub malformed_at: Option<usize>,
    /// How the event at `malformed_at` is broken.
    pub malformed: Malformed,
    /// Size of a `giant` event's padding.
    pub pad_bytes: usize,
    /// Gate to pass before each SSE event after the first.
    pub gate: Option<String>,
    /// Failure reported inside a 200 response.
    pub fail: Option<Fail>,
    /// End `incomplete` with this reason.
    pub incomplete: Option<String>,
    /// Number of parallel function calls to make.
    pub tool_calls: usize,
    /// Echo the received `Authorization` header back (`x-mock-echo-auth`).
    pub echo_auth: bool,
    /// Pad each text delta to at least this many bytes.
    pub delta_bytes: Option<usize>,
    /// Write every SSE event in pieces of at most this many bytes (`x-mock-chunk-bytes`).
    pub chunk_bytes: Option<usize>,
    /// Pause between the pieces of one event (`x-mock-chunk-delay-ms`).
    pub chunk_delay: Duration,
    /// Pause between the last event and the body's end (`x-mock-tail-delay-ms`).
    pub tail_delay: Duration,
    /// Call only this function tool (`x-mock-call-name`).
    pub call_name: Option<String>,
    /// The calls' arguments, verbatim (`x-mock-call-arguments`).
    pub call_arguments: Option<String>,
}

impl Controls {
    /// Reads the controls through `lookup` (request header, else default), falling back to
    /// `config`. A malformed value is an error so that a typo in a test fails loudly.
    pub fn parse(
        lookup: impl Fn(&str) -> Option<String>,
        config: &MockConfig,
    ) -> Result<Controls, String> {
        let number = |name: &str| -> Result<Option<u64>, String> {
            match lookup(name) {
                None => Ok(None),
                Some(v) => v
                    .trim()
                    .parse::<u64>()
                    .map(Some)
                    .map_err(|_| format!("{name} must be a non-negative integer, got {v:?}")),
            }
        };
        let millis = |name: &str| number(name).map(|v| v.map(Duration::from_millis));

        let status = match number(names::STATUS)? {
            None => None,
            Some(s) if (100..=599).contains(&s) => Some(s as u16),
            Some(s) => return Err(format!("{} must be an HTTP status, got {s}", names::STATUS)),
        };
        let fail = match lookup(names::FAIL).as_deref().map(str::trim) {
            None | Some("") => None,
            Some("rate_limit") => Some(Fail::RateLimit),
            Some("moderation") => Some(Fail::Moderation),
            Some("server_error") => Some(Fail::ServerError),
            Some(other) => {
                return Err(format!(
                    "{} must be rate_limit, moderation or server_error, got {other:?}",
                    names::FAIL
                ));
            }
        };
        let style = match lookup(names::ERROR_STYLE)
            .map(|v| v.trim().to_ascii_lowercase())
            .as_deref()
        {
            None | Some("") | Some("flat") => ErrorStyle::Flat,
            Some("nested") => ErrorStyle::Nested,
            Some("html") => ErrorStyle::Html,
            Some(other) => {
                return Err(format!(
                    "{} must be flat, nested or html, got {other:?}",
                    names::ERROR_STYLE
                ));
            }
        };
        let malformed = match lookup(names::MALFORMED_KIND)
            .map(|v| v.trim().to_ascii_lowercase())
            .as_deref()
        {
            None | Some("") | Some("json") => Malformed::Json,
            Some("no-data") => Malformed::NoData,
            Some("unknown") => Malformed::Unknown,
            Some("giant") => Malformed::Giant,
            Some("utf8") => Malformed::Utf8,
            Some(other) => {
                return Err(format!(
                    "{} must be json, no-data, unknown, giant or utf8, got {other:?}",
                    names::MALFORMED_KIND
                ));
            }
        };
        Ok(Controls {
            tokens: number(names::TOKENS)?.map(|n| n as usize).or(config.tokens),
            delay: millis(names::DELAY_MS)?.unwrap_or(config.delay),
            status,
            nested_errors: style == ErrorStyle::Nested,
            html_errors: style == ErrorStyle::Html,
            retry_after: lookup(names::RETRY_AFTER).map(|v| v.trim().to_string()),
            header_delay: millis(names::HEADER_DELAY_MS)?.unwrap_or_default(),
            drop_after: number(names::DROP_AFTER)?.map(|n| n as usize),
            malformed_at: number(names::MALFORMED_AT)?.map(|n| n as usize),
            malformed,
            pad_bytes: number(names::PAD_BYTES)?.map_or(DEFAULT_PAD_BYTES, |n| n as usize),
            gate: lookup(names::GATE)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty()),
            fail,
            incomplete: lookup(names::INCOMPLETE)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty()),
            tool_calls: number(names::TOOL_CALLS)?.map_or(1, |n| n.max(1) as usize),
            echo_auth: number(names::ECHO_AUTH)?.is_some_and(|n| n > 0),
            delta_bytes: number(names::DELTA_BYTES)?.map(|n| n as usize),
            chunk_bytes: match number(names::CHUNK_BYTES)? {
                Some(0) => return Err(format!("{} must be at least 1", names::CHUNK_BYTES)),
                n => n.map(|n| n as usize),
            },
            chunk_delay: millis(names::CHUNK_DELAY_MS)?.unwrap_or_default(),
            tail_delay: millis(names::TAIL_DELAY_MS)?.unwrap_or_default(),
            call_name: lookup(names::CALL_NAME)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty()),
            call_arguments: lookup(names::CALL_ARGUMENTS).map(|v| v.trim().to_string()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(pairs: &[(&str, &str)]) -> Result<Controls, String> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Controls::parse(
            |name| {
                pairs
                    .iter()
                    .find(|(k, _)| k == name)
                    .map(|(_, v)| v.clone())
            },
            &MockConfig::default(),
        )
    }

    #[test]
    fn defaults_come_from_config() {
        let c = parse(&[]).unwrap();
        assert_eq!(c.tokens, None);
        assert_eq!(c.delay, Duration::ZERO);
        assert_eq!(c.tool_calls, 1);
        assert!(c.fail.is_none() && c.status.is_none());
    }

    #[test]
    fn values_are_parsed_and_typos_rejected() {
        let c = parse(&[
            ("x-mock-tokens", "7"),
            ("x-mock-delay-ms", "20"),
            ("x-mock-status", "503"),
            ("x-mock-fail", "rate_limit"),
            ("x-mock-gate", "g1"),
        ])
        .unwrap();
        assert_eq!(c.tokens, Some(7));
        assert_eq!(c.delay, Duration::from_millis(20));
        assert_eq!(c.status, Some(503));
        assert_eq!(c.fail, Some(Fail::RateLimit));
        assert_eq!(c.gate.as_deref(), Some("g1"));
        assert!(parse(&[("x-mock-tokens", "many")]).is_err());
        assert!(parse(&[("x-mock-status", "42")]).is_err());
        assert!(parse(&[("x-mock-fail", "nope")]).is_err());
    }

    #[test]
    fn error_styles_and_malformed_kinds() {
        let c = parse(&[("x-mock-error-style", "HTML")]).unwrap();
        assert!(c.html_errors && !c.nested_errors);
        let c = parse(&[("x-mock-error-style", "nested")]).unwrap();
        assert!(c.nested_errors && !c.html_errors);
        assert!(parse(&[("x-mock-error-style", "xml")]).is_err());
        assert_eq!(parse(&[]).unwrap().malformed, Malformed::Json);
        assert_eq!(parse(&[]).unwrap().pad_bytes, DEFAULT_PAD_BYTES);
        let c = parse(&[
            ("x-mock-malformed-kind", "giant"),
            ("x-mock-pad-bytes", "10"),
        ])
        .unwrap();
        assert_eq!((c.malformed, c.pad_bytes), (Malformed::Giant, 10));
        assert_eq!(
            parse(&[("x-mock-malformed-kind", "no-data")])
                .unwrap()
                .malformed,
            Malformed::NoData
        );
        assert_eq!(
            parse(&[("x-mock-malformed-kind", "unknown")])
                .unwrap()
                .malformed,
            Malformed::Unknown
        );
        assert_eq!(
            parse(&[("x-mock-malformed-kind", "utf8")])
                .unwrap()
                .malformed,
            Malformed::Utf8
        );
        assert!(parse(&[("x-mock-malformed-kind", "weird")]).is_err());
    }

    #[test]
    fn chunk_sizes() {
        let c = parse(&[
            ("x-mock-chunk-bytes", "16384"),
            ("x-mock-chunk-delay-ms", "3"),
        ])
        .unwrap();
        assert_eq!(c.chunk_bytes, Some(16384));
        assert_eq!(c.chunk_delay, Duration::from_millis(3));
        assert_eq!(parse(&[]).unwrap().chunk_bytes, None);
        assert!(parse(&[("x-mock-chunk-bytes", "0")]).is_err());
    }
}
