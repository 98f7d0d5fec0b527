//! Per-request fault injection: the `x-mock-*` request headers.
//!
//! Every control is read from the request first and then from the server's default controls
//! (set with [`crate::MockServer::set_default_header`] or `POST /_mock/defaults`), so a test can
//! turn a whole mock into, say, a 503 upstream without touching the client.

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
    /// `Retry-After` value for error responses.
    pub retry_after: Option<String>,
    /// Pause before the response head.
    pub header_delay: Duration,
    /// Abort the connection after this many SSE events (0: before any response head).
    pub drop_after: Option<usize>,
    /// Sequence number of the SSE event whose `data:` line is broken JSON.
    pub malformed_at: Option<usize>,
    /// Gate to pass before each SSE event after the first.
    pub gate: Option<String>,
    /// Failure reported inside a 200 response.
    pub fail: Option<Fail>,
    /// End `incomplete` with this reason.
    pub incomplete: Option<String>,
    /// Number of parallel function calls to make.
    pub tool_calls: usize,
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
        Ok(Controls {
            tokens: number(names::TOKENS)?.map(|n| n as usize).or(config.tokens),
            delay: millis(names::DELAY_MS)?.unwrap_or(config.delay),
            status,
            nested_errors: lookup(names::ERROR_STYLE)
                .is_some_and(|v| v.trim().eq_ignore_ascii_case("nested")),
            retry_after: lookup(names::RETRY_AFTER).map(|v| v.trim().to_string()),
            header_delay: millis(names::HEADER_DELAY_MS)?.unwrap_or_default(),
            drop_after: number(names::DROP_AFTER)?.map(|n| n as usize),
            malformed_at: number(names::MALFORMED_AT)?.map(|n| n as usize),
            gate: lookup(names::GATE)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty()),
            fail,
            incomplete: lookup(names::INCOMPLETE)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty()),
            tool_calls: number(names::TOOL_CALLS)?.map_or(1, |n| n.max(1) as usize),
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
}
