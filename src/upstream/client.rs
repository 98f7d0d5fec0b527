//! The pooled HTTP clients upstream requests go through: hyper's client directly, TLS by
//! rustls.
//!
//! Not reqwest: its request path around hyper's client (URL re-parsing for the redirect
//! policy, its tower layers, its body wrappers) was ~29 k instructions per request and
//! ~0.2 k per relayed event (bench/PROFILE.md), for features the gateway turns off
//! (redirects, cookies, decompression). What reqwest set up and the gateway keeps is here:
//! the connector's timeouts and TCP options, the pool, HTTP/2 keep-alive, rustls with the
//! system's and the Mozilla roots, and ALPN. Like reqwest with redirects off, nothing here
//! follows a `Location`. Unlike reqwest, `HTTP(S)_PROXY` is not read: where Model Studio is
//! reached through a proxy must be the operator's decision in the configuration, never an
//! environment variable that silently routes the keys' traffic elsewhere (the gateway speaks
//! to Model Studio directly; README, "Regions and failover").

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::Uri;
use http_body_util::Full;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use rustls::RootCertStore;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

use crate::config::Http2;

/// The client of one HTTP/2 mode: connections pooled per host.
pub type HttpClient = Client<Bounded<HttpsConnector<HttpConnector>>, Full<Bytes>>;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Why a client could not be built (TLS set-up only: the rest cannot fail).
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("TLS set-up: {0}")]
    Tls(#[from] rustls::Error),
    #[error("{0}")]
    Roots(String),
}

/// The certificate authorities upstream TLS trusts: the system's (`SSL_CERT_FILE` /
/// `SSL_CERT_DIR` when set, else the OS bundle), the Mozilla roots compiled in (so a host
/// or image without a CA bundle still reaches Model Studio), and `extra` (a private CA or a
/// TLS-inspecting proxy's, from `upstream.extra_ca_file`).
pub fn trusted_roots(extra: &[CertificateDer<'static>]) -> Result<RootCertStore, ClientError> {
    let mut roots = RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let native = rustls_native_certs::load_native_certs();
    // Native stores often hold ancient or malformed certificates: skip those, as reqwest
    // and curl do, but a store where nothing parsed is a broken set-up worth refusing.
    let (valid, invalid) = roots.add_parsable_certificates(native.certs);
    if valid == 0 && invalid > 0 {
        return Err(ClientError::Roots(format!(
            "none of the {invalid} system CA certificates could be read"
        )));
    }
    for cert in extra {
        roots.add(cert.clone())?;
    }
    Ok(roots)
}

/// The certificates of a PEM file (`upstream.extra_ca_file`); one that holds none is refused,
/// since a CA the operator meant to trust and that is silently missing fails later, per
/// request, with a certificate error that does not point here.
pub fn read_ca_file(path: &Path) -> Result<Vec<CertificateDer<'static>>, ClientError> {
    let refused = |why: String| {
        ClientError::Roots(format!("upstream.extra_ca_file {}: {why}", path.display()))
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| refused(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| refused(e.to_string()))?;
    if certs.is_empty() {
        return Err(refused("no PEM certificate in it".into()));
    }
    Ok(certs)
}

/// A client for `http2`'s protocol (see [`Http2`] for why HTTP/1.1 is the default), trusting
/// `roots`.
pub fn build_http_client(
    connect_timeout: Duration,
    http2: Http2,
    roots: Arc<RootCertStore>,
) -> Result<HttpClient, ClientError> {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_keepalive(Some(Duration::from_secs(30)));
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots)
    .with_no_client_auth();
    let tls = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http();
    // ALPN: `alpn` offers h2 and http/1.1 and the server picks; the other modes offer
    // nothing over TLS (the configuration pairs `prior_knowledge` with http:// only).
    let connector = Bounded {
        inner: match http2 {
            Http2::Alpn => tls.enable_all_versions().wrap_connector(http),
            Http2::Off | Http2::PriorKnowledge => tls.enable_http1().wrap_connector(http),
        },
        timeout: connect_timeout,
    };
    let mut builder = Client::builder(TokioExecutor::new());
    builder
        .pool_idle_timeout(Duration::from_secs(90))
        .pool_max_idle_per_host(256)
        .pool_timer(TokioTimer::new())
        .timer(TokioTimer::new())
        // A shared HTTP/2 connection that died silently would stall every stream on it until
        // `stream_idle_timeout`: ping it while streams are open.
        .http2_keep_alive_interval(Duration::from_secs(30))
        .http2_keep_alive_timeout(Duration::from_secs(10))
        .http2_only(http2 == Http2::PriorKnowledge);
    Ok(builder.build(connector))
}

/// A connector whose connections must be up (TCP and the TLS handshake) within `timeout`:
/// `upstream.connect_timeout` bounds both, and hyper's `HttpConnector` bounds TCP only. A
/// timeout is an `io::ErrorKind::TimedOut`, which the router reports as one.
#[derive(Debug, Clone)]
pub struct Bounded<C> {
    inner: C,
    timeout: Duration,
}

impl<C> tower::Service<Uri> for Bounded<C>
where
    C: tower::Service<Uri>,
    C::Future: Send + 'static,
    C::Error: Into<BoxError>,
{
    type Response = C::Response;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<C::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let connecting = self.inner.call(uri);
        let timeout = self.timeout;
        Box::pin(async move {
            match tokio::time::timeout(timeout, connecting).await {
                Ok(connected) => connected.map_err(Into::into),
                Err(_) => Err(Box::new(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("connecting (TCP and TLS) took longer than {timeout:?}"),
                )) as BoxError),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_compiled_in_roots_are_always_there() {
        let roots = trusted_roots(&[]).unwrap();
        assert!(roots.len() >= webpki_roots::TLS_SERVER_ROOTS.len());
    }

    #[test]
    fn an_extra_ca_that_is_not_a_certificate_is_refused() {
        let bogus = CertificateDer::from(b"not a certificate".to_vec());
        assert!(trusted_roots(&[bogus]).is_err());
    }
}
