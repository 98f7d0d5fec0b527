//! `qwen-bench forward`: the least a Rust HTTP proxy can do — hyper's HTTP/1.1 server in
//! front of hyper's pooled client (as qwen-gateway's upstream client), bodies streamed
//! through untouched, no parsing, no logging, no routing. It is a benchmark target, not a
//! gateway: what it adds over direct is the cost of one extra loopback hop with the same HTTP
//! stack on this machine, the floor under qwen-gateway's added latency and memory per stream.

use http_body_util::{Either, Full};
use hyper::body::{Bytes, Incoming};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use std::convert::Infallible;
use std::time::Duration;

type Upstream = Client<hyper_util::client::legacy::connect::HttpConnector, Incoming>;
type Body = Either<Incoming, Full<Bytes>>;

/// Serves on `listen` until killed, forwarding every request to `upstream` + its path.
pub async fn run(listen: &str, upstream: &str, h2c: bool) -> Result<(), String> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| format!("bind {listen}: {e}"))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    // Same pool settings as qwen-gateway's upstream client (src/upstream/client.rs).
    let mut connector = hyper_util::client::legacy::connect::HttpConnector::new();
    connector.set_nodelay(true);
    let client: Upstream = Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(90))
        .pool_max_idle_per_host(256)
        .pool_timer(TokioTimer::new())
        .http2_only(h2c)
        .build(connector);
    println!("forwarding http://{addr} to {upstream}");
    let upstream = upstream.trim_end_matches('/').to_owned();
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let (client, upstream) = (client.clone(), upstream.clone());
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                forward(client.clone(), upstream.clone(), req)
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

fn bad_gateway(text: String) -> hyper::Response<Body> {
    let mut r = hyper::Response::new(Either::Right(Full::new(Bytes::from(text))));
    *r.status_mut() = http::StatusCode::BAD_GATEWAY;
    r
}

async fn forward(
    client: Upstream,
    upstream: String,
    req: hyper::Request<Incoming>,
) -> Result<hyper::Response<Body>, Infallible> {
    let (mut parts, body) = req.into_parts();
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let path = path.strip_prefix("/v1").unwrap_or(path);
    let Ok(uri) = http::Uri::try_from(format!("{upstream}{path}")) else {
        return Ok(bad_gateway("not a URI".into()));
    };
    parts.uri = uri;
    parts.headers.remove(http::header::HOST);
    Ok(
        match client
            .request(hyper::Request::from_parts(parts, body))
            .await
        {
            Ok(res) => {
                let (mut head, body) = res.into_parts();
                head.headers.remove(http::header::TRANSFER_ENCODING);
                head.version = http::Version::HTTP_11;
                hyper::Response::from_parts(head, Either::Left(body))
            }
            Err(e) => bad_gateway(e.to_string()),
        },
    )
}
