//! The pooled HTTP client every upstream request goes through.

use std::time::Duration;

/// One client for the whole process: connections are pooled per host, TLS is rustls,
/// and HTTP/2 is used where the server offers it through ALPN.
pub fn build_http_client(connect_timeout: Duration) -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .connect_timeout(connect_timeout)
        .pool_idle_timeout(Duration::from_secs(90))
        .pool_max_idle_per_host(256)
        .tcp_nodelay(true)
        .tcp_keepalive(Duration::from_secs(30))
        // Redirects would resend the key to wherever a Location points: never follow them.
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("qwen-gateway/", env!("CARGO_PKG_VERSION")))
        .build()
}
