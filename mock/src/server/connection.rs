//! The hand-run hyper accept loop: connections a shutdown can abort, bare closes, in-flight gauges.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Router;
use axum::body::Body;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use crate::state::{Gauge, Shared};

/// Marker on a response meaning "close the connection instead of answering".
#[derive(Clone, Copy, Debug)]
pub(super) struct DropConnection;

impl std::fmt::Display for DropConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by x-mock-drop-after: 0")
    }
}

impl std::error::Error for DropConnection {}

/// Longest a TLS handshake may take before the connection is dropped.
const HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Accepts connections until aborted (over TLS when `tls` is given). Connections live in a
/// `JoinSet` owned by this task, so aborting it aborts them all.
pub(super) async fn accept_loop(
    listener: TcpListener,
    app: Router,
    shared: Arc<Shared>,
    tls: Option<TlsAcceptor>,
) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    shared.counters.accepted_connections.fetch_add(1, Ordering::SeqCst);
                    let open = Gauge::new(shared.clone(), |c| &c.open_connections);
                    let shared = shared.clone();
                    let app = app.clone();
                    let tls = tls.clone();
                    connections.spawn(async move {
                        let _ = stream.set_nodelay(true);
                        match tls {
                            None => serve_connection(stream, app, shared).await,
                            Some(tls) => {
                                let accepted =
                                    tokio::time::timeout(HANDSHAKE_TIMEOUT, tls.accept(stream)).await;
                                if let Ok(Ok(stream)) = accepted {
                                    serve_connection(stream, app, shared).await;
                                }
                            }
                        }
                        drop(open);
                    });
                }
                // Out of file descriptors and the like: back off instead of spinning.
                Err(_) => tokio::time::sleep(std::time::Duration::from_millis(10)).await,
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

async fn serve_connection<S>(stream: S, app: Router, shared: Arc<Shared>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service =
        hyper::service::service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
            let app = app.clone();
            // Counted from here until the answer's body is over or dropped (the future or the
            // body is dropped when the client goes away).
            let in_flight = (!request.uri().path().starts_with("/_mock"))
                .then(|| Gauge::new(shared.clone(), |c| &c.in_flight_requests));
            async move {
                let response = match app.oneshot(request.map(Body::new)).await {
                    Ok(response) => response,
                    Err(never) => match never {},
                };
                // A service error makes hyper close the connection without writing anything.
                if let Some(drop) = response.extensions().get::<DropConnection>() {
                    return Err(*drop);
                }
                Ok::<_, DropConnection>(match in_flight {
                    Some(gauge) => response.map(|inner| Body::new(Counted { inner, gauge })),
                    None => response,
                })
            }
        });
    // HTTP/1.1, or HTTP/2 when the connection opens with h2's preface (h2c with prior
    // knowledge, or after TLS negotiated h2): the benchmarks can then measure a gateway multiplexing its streams, as it
    // does over TLS with Model Studio. No cap on concurrent streams (hyper's default is 200):
    // the open-streams benchmark holds thousands on one connection.
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new());
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(None);
    let _ = builder
        .serve_connection(TokioIo::new(stream), service)
        .await;
}

/// A response body that holds an in-flight count until it is finished or dropped.
struct Counted {
    inner: Body,
    #[allow(dead_code)]
    gauge: Gauge,
}

impl http_body::Body for Counted {
    type Data = bytes::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        std::pin::Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}
