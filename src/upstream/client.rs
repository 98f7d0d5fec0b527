//! The pooled HTTP clients upstream requests go through.

use std::time::Duration;

use crate::config::Http2;

/// Connections are pooled per host and TLS is rustls. `http2` picks the protocol (see
/// [`Http2`] for why HTTP/1.1 is the default); one client per mode in use.
pub fn build_http_client(
    connect_timeout: Duration,
    http2: Http2,
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
    match http2 {
        Http2::Off => builder.http1_only(),
        Http2::Alpn => builder,
        Http2::PriorKnowledge => builder.http2_prior_knowledge(),
    }
    .build()
}
