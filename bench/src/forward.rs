//! `qwen-bench forward`: the least a Rust HTTP proxy can do — hyper's HTTP/1.1 server in
//! front of a pooled reqwest client, bodies streamed through untouched, no parsing, no
//! logging, no routing. It is a benchmark target, not a gateway: what it adds over direct is
//! the cost of one extra loopback hop with the same HTTP stack on this machine, the floor
//! under qwen-gateway's added latency and memory per stream.

use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::body::{Bytes, Frame, Incoming};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::time::Duration;

type Body = BoxBody<Bytes, reqwest::Error>;

/// Serves on `listen` until killed, forwarding every request to `upstream` + its path.
pub async fn run(listen: &str, upstream: &str, h2c: bool) -> Result<(), String> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| format!("bind {listen}: {e}"))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    // Same pool settings as qwen-gateway's upstream client (src/upstream/client.rs).
    let builder = reqwest::Client::builder()
        .pool_idle_timeout(Duration::from_secs(90))
        .pool_max_idle_per_host(256)
        .tcp_nodelay(true)
        .redirect(reqwest::redirect::Policy::none());
    let builder = if h2c {
        builder.http2_prior_knowledge()
    } else {
        builder.http1_only()
    };
    let client = builder.build().map_err(|e| e.to_string())?;
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

async fn forward(
    client: reqwest::Client,
    upstream: String,
    req: hyper::Request<Incoming>,
) -> Result<hyper::Response<Body>, Infallible> {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let path = path.strip_prefix("/v1").unwrap_or(path);
    let mut headers = parts.headers;
    headers.remove(http::header::HOST);
    let sent = client
        .request(parts.method, format!("{upstream}{path}"))
        .headers(headers)
        .body(reqwest::Body::wrap_stream(body.into_data_stream()))
        .send()
        .await;
    let answer = match sent {
        Ok(res) => {
            let mut out = hyper::Response::builder().status(res.status());
            for (k, v) in res.headers() {
                if k != http::header::CONTENT_LENGTH && k != http::header::TRANSFER_ENCODING {
                    out = out.header(k, v);
                }
            }
            let frames = futures_util::StreamExt::map(res.bytes_stream(), |c| c.map(Frame::data));
            out.body(BoxBody::new(StreamBody::new(frames)))
        }
        Err(e) => hyper::Response::builder().status(502).body(
            Full::new(Bytes::from(e.to_string()))
                .map_err(|never| match never {})
                .boxed(),
        ),
    };
    Ok(answer.unwrap_or_else(|_| {
        let mut r = hyper::Response::new(Full::new(Bytes::new()).map_err(|n| match n {}).boxed());
        *r.status_mut() = http::StatusCode::BAD_GATEWAY;
        r
    }))
}
