//! `regions.NAME.http2`: which HTTP version the gateway speaks to a region.

use serde::{Deserialize, Serialize};

/// Over HTTP/2 all of a region's streams share one connection (about half the memory per
/// open stream: no upstream connection, read buffer and task each), but the server's
/// `SETTINGS_MAX_CONCURRENT_STREAMS` then caps how many run at once, and hyper's client
/// queues the ones past it on that connection instead of opening another (hyper#2197), where
/// they wait into `first_byte_timeout`. HTTP/1.1 has no such cap, which is why it is the
/// default: turn HTTP/2 on for an upstream whose stream cap is known to be above the
/// concurrency one gateway replica sends it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Http2 {
    /// HTTP/1.1 only, one connection per concurrent request.
    #[default]
    Off,
    /// Offer HTTP/2 in the TLS handshake (ALPN) and use it when the server picks it:
    /// `https://` base URLs only (plain HTTP has no handshake to negotiate in). The protocol
    /// is known only after a handshake, so requests arriving before the first connection is
    /// up open one connection each; later ones share the negotiated HTTP/2 connection.
    Alpn,
    /// Speak HTTP/2 from the first byte (h2c): `http://` base URLs only, for servers known to
    /// speak it (a sidecar, an internal proxy, the mock).
    PriorKnowledge,
}

impl Http2 {
    /// Why this mode cannot be used with a base URL of `scheme`, if it cannot.
    pub fn refusal(self, scheme: &str) -> Option<&'static str> {
        match (self, scheme) {
            (Self::Alpn, "http") => Some(
                "\"alpn\" needs an https:// base_url (over http://, \"prior_knowledge\" speaks h2c)",
            ),
            (Self::PriorKnowledge, "https") => Some(
                "\"prior_knowledge\" is for http:// base_urls (over https://, \"alpn\" negotiates HTTP/2)",
            ),
            _ => None,
        }
    }
}
