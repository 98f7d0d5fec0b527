//! Why one region's attempt ended without an answer: the value that decides the breaker and
//! names the failover in metrics and logs.

/// Why a region was left for the next one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailoverReason {
    /// Connecting failed, or the connection broke before the request was sent.
    Connect,
    /// A streaming request was sent and its head did not come in time.
    TimeoutAfterSend,
    /// A streaming request was sent and the connection broke before its head.
    BrokenAfterSend,
    /// An error answer's body did not arrive in time.
    Timeout,
    /// The region answered 5xx.
    ServerError,
    /// A 200 whose body reports a server failure.
    FailedResponse,
    /// A 200 stream whose first events report a server failure.
    FailedEvent,
    /// A 200 stream broke before its first output.
    StreamError,
    /// Every key of the region is rate-limited.
    RateLimited,
    /// The region refused every key (quarantined).
    Auth,
}

impl FailoverReason {
    /// The metrics label (`qwen_gateway_failovers_total{reason}`) and log field.
    pub fn as_str(self) -> &'static str {
        match self {
            FailoverReason::Connect => "connect",
            FailoverReason::TimeoutAfterSend => "timeout_after_send",
            FailoverReason::BrokenAfterSend => "broken_after_send",
            FailoverReason::Timeout => "timeout",
            FailoverReason::ServerError => "5xx",
            FailoverReason::FailedResponse => "failed_response",
            FailoverReason::FailedEvent => "failed_event",
            FailoverReason::StreamError => "stream_error",
            FailoverReason::RateLimited => "rate_limited",
            FailoverReason::Auth => "auth",
        }
    }

    /// Whether the region itself is sick (its breaker counts it). Rate limits and refused
    /// keys are about keys: the region stays in service.
    pub fn counts_against_region(self) -> bool {
        !matches!(self, FailoverReason::RateLimited | FailoverReason::Auth)
    }
}

impl std::fmt::Display for FailoverReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
