//! The one place that decides where a request goes and sends it there.
//!
//! Handlers hand over an [`UpstreamRequest`] (method, path below the region's base URL,
//! already-filtered headers, body) and get back the upstream's response head with its body
//! still unread, so streams can be relayed as they arrive. Which region and which key were
//! used is reported back, never chosen by the handler.

mod client;
mod region;

pub use client::build_http_client;
pub use region::{Region, RegionKeyState};

use crate::config::{ResolvedRegion, Settings};
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use std::sync::Arc;
use std::time::Duration;

/// Why the gateway could not get an answer from any region.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("upstream region '{region}' is unreachable: {detail}")]
    Unreachable { region: String, detail: String },
    #[error("upstream region '{region}' did not answer within {after:?}")]
    Timeout { region: String, after: Duration },
    #[error("upstream region '{region}' broke off the response: {detail}")]
    Body { region: String, detail: String },
    #[error("upstream region '{region}' sent a response larger than {limit} bytes")]
    TooLarge { region: String, limit: usize },
    #[error("no upstream region is available")]
    NoRegion,
}

/// What a handler wants sent upstream.
#[derive(Debug)]
pub struct UpstreamRequest {
    pub method: Method,
    /// Path below the region's base URL, starting with `/` (e.g. `/responses`), plus query.
    pub path: String,
    /// Client headers that may travel upstream (see `server::headers`); the key is added here.
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// A response head from a region; the body is read by the caller.
#[derive(Debug)]
pub struct UpstreamResponse {
    pub region: Arc<str>,
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: reqwest::Response,
}

/// Timeouts and limits applied to every upstream exchange.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub first_byte_timeout: Duration,
    pub stream_idle_timeout: Duration,
    pub request_timeout: Duration,
    pub max_response_bytes: usize,
}

/// Picks a region and a key for each request and sends it.
#[derive(Debug)]
pub struct Router {
    http: reqwest::Client,
    regions: Vec<Region>,
    limits: Limits,
}

impl Router {
    pub fn new(settings: &Settings, regions: Vec<ResolvedRegion>) -> Result<Self, reqwest::Error> {
        let http = build_http_client(settings.upstream.connect_timeout)?;
        let limits = Limits {
            first_byte_timeout: settings.upstream.first_byte_timeout,
            stream_idle_timeout: settings.upstream.stream_idle_timeout,
            request_timeout: settings.upstream.request_timeout,
            max_response_bytes: settings.upstream.max_response_bytes,
        };
        Ok(Self {
            http,
            regions: regions.into_iter().filter_map(Region::new).collect(),
            limits,
        })
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    pub fn regions(&self) -> &[Region] {
        &self.regions
    }

    /// Sends `req` to the first region, moving on to the next one only when a region could
    /// not be reached or timed out before its response head (nothing has reached the client
    /// yet, so trying elsewhere is safe).
    pub async fn send(&self, req: UpstreamRequest) -> Result<UpstreamResponse, UpstreamError> {
        let mut last_error = UpstreamError::NoRegion;
        for region in &self.regions {
            match self.send_to(region, &req).await {
                Ok(response) => return Ok(response),
                Err(err) => {
                    tracing::warn!(region = %region.name(), error = %err, "upstream attempt failed");
                    last_error = err;
                }
            }
        }
        Err(last_error)
    }

    async fn send_to(
        &self,
        region: &Region,
        req: &UpstreamRequest,
    ) -> Result<UpstreamResponse, UpstreamError> {
        let key = region.next_key();
        let url = format!("{}{}", region.base_url(), req.path);
        let mut headers = req.headers.clone();
        let mut auth =
            HeaderValue::from_str(&format!("Bearer {}", key.secret.expose())).map_err(|_| {
                UpstreamError::Unreachable {
                    region: region.name().to_owned(),
                    detail: format!("the key in {} is not a valid header value", key.env_var),
                }
            })?;
        auth.set_sensitive(true);
        headers.insert(header::AUTHORIZATION, auth);
        let request = self
            .http
            .request(req.method.clone(), url)
            .headers(headers)
            .body(req.body.clone());
        let sent = tokio::time::timeout(self.limits.first_byte_timeout, request.send()).await;
        let response = match sent {
            Err(_) => {
                return Err(UpstreamError::Timeout {
                    region: region.name().to_owned(),
                    after: self.limits.first_byte_timeout,
                });
            }
            Ok(Err(err)) => return Err(classify(region.name(), &err, self.limits)),
            Ok(Ok(response)) => response,
        };
        Ok(UpstreamResponse {
            region: region.name_arc(),
            status: response.status(),
            headers: response.headers().clone(),
            body: response,
        })
    }
}

/// Turns a transport error into what the client should hear, without leaking headers.
fn classify(region: &str, err: &reqwest::Error, limits: Limits) -> UpstreamError {
    if err.is_timeout() {
        return UpstreamError::Timeout {
            region: region.to_owned(),
            after: limits.first_byte_timeout,
        };
    }
    let mut detail = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(inner) = source {
        detail = inner.to_string();
        source = inner.source();
    }
    UpstreamError::Unreachable {
        region: region.to_owned(),
        detail,
    }
}

impl UpstreamResponse {
    /// Reads the whole body, bounded by the request timeout and the size limit.
    pub async fn read_body(mut self, limits: Limits) -> Result<Bytes, UpstreamError> {
        let region = self.region.to_string();
        let read = async {
            let mut buf = Vec::new();
            while let Some(chunk) = self.body.chunk().await.map_err(|e| UpstreamError::Body {
                region: region.clone(),
                detail: e.to_string(),
            })? {
                if buf.len() + chunk.len() > limits.max_response_bytes {
                    return Err(UpstreamError::TooLarge {
                        region: region.clone(),
                        limit: limits.max_response_bytes,
                    });
                }
                buf.extend_from_slice(&chunk);
            }
            Ok(Bytes::from(buf))
        };
        tokio::time::timeout(limits.request_timeout, read)
            .await
            .unwrap_or_else(|_| {
                Err(UpstreamError::Timeout {
                    region: region.clone(),
                    after: limits.request_timeout,
                })
            })
    }

    /// Whether the upstream answered with an SSE stream.
    pub fn is_event_stream(&self) -> bool {
        self.headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"))
    }
}
