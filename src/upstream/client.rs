//! The pooled HTTP clients upstream requests go through.

use std::time::Duration;

/// Connections are pooled per host, TLS is rustls, and HTTP/2 is used where the server
/// offers it through ALPN, or from the first byte with `prior_knowledge` (h2c, for an
/// `http://` region configured with `http2_prior_knowledge`). Over HTTP/2 all of a region's
/// streams share a few connections instead of holding one each.
pub fn build_http_client(
    connect_timeout: Duration,
    prior_knowledge: bool,
) -> Result<reqwest::Client, reqwest::Error> {
    let builder = reqwest::Client::builder()
        .connect_timeout(connect_timeout)
        .pool_idle_timeout(Duration::from_secs(90))
        .pool_max_idle_per_host(256)
        .tcp_nodelay(true)
        .tcp_keepalive(Duration::from_secs(30))
        // A shared HTTP/2 connection that died silently would stall every stream on it until
        // `stream_idle_timeout`: ping it while streams are open.
        .http2_keep_alive_interval(Duration::from_secs(30))
        .http2_keep_alive_timeout(Duration::from_secs(10))
        // Redirects would resend the key to wherever a Location points: never follow them.
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("qwen-gateway/", env!("CARGO_PKG_VERSION")));
    if prior_knowledge {
        builder.http2_prior_knowledge().build()
    } else {
        builder.build()
    }
}
