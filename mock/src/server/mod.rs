//! HTTP: the Responses API surface, the `/_mock` introspection routes, request recording,
//! and a hand-run hyper accept loop (so a request can be answered by closing the connection
//! without any response head, and so shutdown can abort open connections).
//!
//! This module holds [`MockServer`] and the router; the accept loop, the `/_mock` handlers,
//! the API handlers and the writing of complete answers are in submodules.

mod api;
mod connection;
mod exchange;
mod introspection;
mod tls;

pub use tls::Alpn;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::config::MockConfig;
use crate::state::{MockStats, RecordedRequest, Shared};

use connection::accept_loop;
use introspection::{
    clear_requests, get_defaults, list_requests, release_gate, set_defaults, stats,
};

/// A running mock. Dropping it stops it too; [`MockServer::shutdown`] also waits.
pub struct MockServer {
    shared: Arc<Shared>,
    addr: SocketAddr,
    task: Option<JoinHandle<()>>,
    /// The CA the server's certificate is signed by, when it speaks TLS.
    ca_pem: Option<String>,
}

impl MockServer {
    /// Starts on an ephemeral port of 127.0.0.1.
    pub async fn start(config: MockConfig) -> std::io::Result<MockServer> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        MockServer::start_on(listener, config).await
    }

    /// Starts on a listener the caller bound.
    pub async fn start_on(
        listener: TcpListener,
        config: MockConfig,
    ) -> std::io::Result<MockServer> {
        MockServer::start_with(listener, config, None)
    }

    /// Starts on an ephemeral port of 127.0.0.1, over TLS with a certificate for
    /// `localhost` and `127.0.0.1` signed by a CA made for this server ([`MockServer::ca_pem`]).
    pub async fn start_tls(config: MockConfig, alpn: Alpn) -> std::io::Result<MockServer> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        MockServer::start_with(listener, config, Some(tls::Tls::generate(alpn)?))
    }

    fn start_with(
        listener: TcpListener,
        config: MockConfig,
        tls: Option<tls::Tls>,
    ) -> std::io::Result<MockServer> {
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared::new(config));
        let app = routes(shared.clone());
        let (ca_pem, acceptor) = tls.map(|t| (t.ca_pem, t.acceptor)).unzip();
        let task = tokio::spawn(accept_loop(listener, app, shared.clone(), acceptor));
        Ok(MockServer {
            shared,
            addr,
            task: Some(task),
            ca_pem,
        })
    }

    /// The PEM of the CA a TLS server's certificate is signed by (`None`: plain HTTP).
    pub fn ca_pem(&self) -> Option<&str> {
        self.ca_pem.as_deref()
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://HOST:PORT` (`https://` over TLS: the certificate names the IP), without a
    /// path: clients append `/responses`.
    pub fn base_url(&self) -> String {
        let scheme = if self.ca_pem.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{}", self.addr)
    }

    /// Every API request so far (introspection routes are not recorded).
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.requests()
    }

    /// Keeps only the latest `limit` requests in the log (0, the default: all of them), so a
    /// long benchmark against the binary does not grow without bound.
    pub fn set_record_limit(&self, limit: usize) {
        self.shared.set_record_limit(limit)
    }

    /// Forgets the recorded requests and resets the counters.
    pub fn clear(&self) {
        self.shared.clear()
    }

    pub fn stats(&self) -> MockStats {
        self.shared.stats()
    }

    /// Lets one more event through gate `gate` (see `x-mock-gate`).
    pub fn release(&self, gate: &str) {
        self.shared.release(gate)
    }

    /// Applies control header `name` to every request that does not carry it.
    pub fn set_default_header(&self, name: &str, value: &str) {
        self.shared.set_default(name, value)
    }

    pub fn clear_default_headers(&self) {
        self.shared.clear_defaults()
    }

    /// Stops accepting and aborts open connections.
    pub async fn shutdown(mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
    }
}

impl Drop for MockServer {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

fn routes(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/_mock/requests", get(list_requests).delete(clear_requests))
        .route("/_mock/stats", get(stats))
        .route("/_mock/gates/{name}/release", post(release_gate))
        .route("/_mock/defaults", post(set_defaults).get(get_defaults))
        .fallback(api::api)
        .with_state(shared)
}
