//! TLS for the mock, so tests can reach it the way the gateway reaches Model Studio
//! (`https://`, certificate checks, ALPN). Each server makes its own CA and a certificate for
//! `localhost` and `127.0.0.1` signed by it; a test trusts that CA and nothing else.

use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::TlsAcceptor;

/// Which protocols the mock's TLS handshake offers (ALPN).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alpn {
    /// `h2` and `http/1.1`: a client that offers h2 gets it, as from Model Studio.
    H2AndHttp11,
    /// `http/1.1` only: a client that offers h2 must fall back.
    Http11Only,
}

/// A fresh CA and the acceptor serving a certificate it signed.
pub(super) struct Tls {
    pub ca_pem: String,
    pub acceptor: TlsAcceptor,
}

fn invalid(err: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::other(err.to_string())
}

impl Tls {
    pub(super) fn generate(alpn: Alpn) -> std::io::Result<Self> {
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(invalid)?;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "mock-model-studio test CA");
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().map_err(invalid)?)
            .map_err(invalid)?;
        let leaf_key = KeyPair::generate().map_err(invalid)?;
        let leaf = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .map_err(invalid)?
            .signed_by(&leaf_key, &ca)
            .map_err(invalid)?;
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
        let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(invalid)?
        .with_no_client_auth()
        .with_single_cert(vec![leaf.der().clone(), ca.der().clone()], key)
        .map_err(invalid)?;
        config.alpn_protocols = match alpn {
            Alpn::H2AndHttp11 => vec![b"h2".to_vec(), b"http/1.1".to_vec()],
            Alpn::Http11Only => vec![b"http/1.1".to_vec()],
        };
        Ok(Tls {
            ca_pem: ca.pem(),
            acceptor: TlsAcceptor::from(Arc::new(config)),
        })
    }
}
