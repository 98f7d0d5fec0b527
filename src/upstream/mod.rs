//! The one place that decides where a request goes and sends it there.
//!
//! Inputs: the configured region order, each region's breaker, each key's health, the
//! request's affinity (the region that holds a conversation) and the client's allowed
//! regions. Handlers hand over an [`UpstreamRequest`] and get back a response head whose
//! body is still streaming; which region and key were used is decided here only.
//!
//! Failover happens only before anything reached the client: on connection failures,
//! timeouts before the head, 5xx, and 429 once a region's keys are exhausted — never on other
//! 4xx, never on content moderation. A 200 stream's first events are held until the first
//! output event (bounded by `upstream.hold_first_event`) so a failure that arrives just after
//! the stream opens (Model Studio reports rate limits inside a 200) can still fail over; the
//! held bytes are then relayed unchanged.

mod body;
mod breaker;
mod client;
pub mod endpoint;
mod error;
pub mod events;
mod inspect;
mod reason;
mod region;
pub mod scrub;
mod walk;

pub use body::UpstreamBody;
pub use breaker::{BreakerSnapshot, BreakerState};
pub use client::{ClientError, HttpClient, build_http_client, read_ca_file};
pub use endpoint::{Endpoint, ResponseId, Target};
pub use error::UpstreamError;
pub use reason::FailoverReason;
pub use region::{Region, RegionKeyState};
pub use scrub::Scrubber;

use crate::config::{Http2, ResolvedRegion, Settings};
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use inspect::Verdict;
use region::KeyHold;
use std::sync::Arc;
use std::time::{Duration, Instant};
use walk::Walk;

/// What a handler wants sent upstream.
#[derive(Debug, Clone)]
pub struct UpstreamRequest {
    /// Which endpoint (and so which method and path below the region's base URL).
    pub target: Target,
    /// Client headers that may travel upstream (see `server::headers`); the key is added here.
    pub headers: HeaderMap,
    pub body: Bytes,
    /// The region that must answer (it holds the conversation), if any.
    pub affinity: Option<String>,
    /// Regions the client may use (data residency); `None` = all.
    pub allowed_regions: Option<Vec<String>>,
    /// Regions not to try (a conversation's home that just failed, when replaying).
    pub avoid: Vec<String>,
    /// The upstream answers with a stream (`"stream": true`): its head is expected at once,
    /// so it is bounded by `first_byte_timeout` and a region that does not send it is left
    /// for the next. A non-streaming answer's head comes only when the whole answer is
    /// generated: it is bounded by `request_timeout`, and a timeout is the answer (504),
    /// never a reason to have another region generate (and bill) it again.
    pub streaming: bool,
    /// When the whole walk must be over; `None`: `upstream.failover_deadline` from when
    /// [`Router::send`] starts. A caller that may send a request twice (a conversation
    /// replay after its home region failed) sets it once, so both walks share one bound.
    pub deadline: Option<Instant>,
}

impl UpstreamRequest {
    pub fn new(target: Target, headers: HeaderMap, body: Bytes) -> Self {
        Self {
            target,
            headers,
            body,
            streaming: false,
            affinity: None,
            allowed_regions: None,
            avoid: Vec::new(),
            deadline: None,
        }
    }
}

/// A response head from a region; the body is read by the caller.
#[derive(Debug)]
pub struct UpstreamResponse {
    pub region: Arc<str>,
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: UpstreamBody,
    /// A failure Model Studio reported inside this 200 before any output: a `failed` body,
    /// or a `response.failed`/`error` event among the held opening events. The pass-through
    /// relays the bytes as they are; chat answers it as the HTTP error it means (a 429 the
    /// SDKs retry, not a 200 stream whose first frame is an error).
    pub failed_before_output: Option<crate::error::ApiError>,
}

/// Timeouts and limits applied to every upstream exchange.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub first_byte_timeout: Duration,
    pub stream_idle_timeout: Duration,
    pub request_timeout: Duration,
    pub max_response_bytes: usize,
    pub failover_deadline: Duration,
    pub hold_first_event: Duration,
    pub key_quarantine: Duration,
    pub rate_limit_cooldown: Duration,
    pub abandoned_stream_drain: Duration,
}

/// Picks a region and a key for each request and sends it.
#[derive(Debug)]
pub struct Router {
    regions: Vec<Region>,
    limits: Limits,
    /// Secrets kept out of every answer. Behind a lock only so the admin token, configured
    /// after the router is built, can join the region keys ([`Router::also_scrub`]).
    scrubber: std::sync::RwLock<Arc<Scrubber>>,
}

/// How one region's attempt ended.
enum RegionOutcome {
    Deliver(UpstreamResponse),
    /// The region may have started the work (a non-streaming request was sent and then
    /// timed out or broke): answer this error, try no other region, and do not count it
    /// against the breaker (a slow answer is not a sick region).
    Stop(UpstreamError),
    /// Try the next region; `response` is the upstream's own answer, if it gave one.
    Next {
        reason: FailoverReason,
        error: Option<UpstreamError>,
        response: Option<UpstreamResponse>,
    },
}

impl Router {
    pub fn new(settings: &Settings, regions: Vec<ResolvedRegion>) -> Result<Self, ClientError> {
        let u = &settings.upstream;
        let extra = match &u.extra_ca_file {
            Some(path) => read_ca_file(path)?,
            None => Vec::new(),
        };
        let roots = Arc::new(client::trusted_roots(&extra)?);
        // One client per HTTP/2 mode in use, shared by the regions using it.
        let mut clients: Vec<(Http2, HttpClient)> = Vec::new();
        for region in &regions {
            if !clients.iter().any(|(mode, _)| *mode == region.http2) {
                clients.push((
                    region.http2,
                    build_http_client(u.connect_timeout, region.http2, roots.clone())?,
                ));
            }
        }
        let limits = Limits {
            first_byte_timeout: u.first_byte_timeout,
            stream_idle_timeout: u.stream_idle_timeout,
            request_timeout: u.request_timeout,
            max_response_bytes: u.max_response_bytes,
            failover_deadline: u.failover_deadline,
            hold_first_event: u.hold_first_event,
            key_quarantine: u.key_quarantine,
            rate_limit_cooldown: u.rate_limit_cooldown,
            abandoned_stream_drain: u.abandoned_stream_drain,
        };
        let mut scrubber = Scrubber::default();
        for region in &regions {
            for key in &region.keys {
                if !scrubber.add(key.env_var.clone(), key.secret.expose()) {
                    tracing::warn!(key_env = %key.env_var, "this key is shorter than {} characters: not a real Model Studio key, and not scrubbed from answers", scrub::MIN_SECRET_LEN);
                }
            }
        }
        let regions = regions
            .into_iter()
            .filter_map(|r| {
                let client = clients.iter().find(|(mode, _)| *mode == r.http2)?.1.clone();
                Region::new(
                    r,
                    breaker::Breaker::new(u.breaker_threshold, u.breaker_cooldown),
                    client,
                )
            })
            .collect();
        Ok(Self {
            regions,
            limits,
            scrubber: std::sync::RwLock::new(Arc::new(scrubber)),
        })
    }

    /// Keeps another secret (the admin token) out of every answer from now on.
    pub fn also_scrub(&self, label: &str, secret: &str) {
        let mut guard = self.scrubber.write().unwrap_or_else(|p| p.into_inner());
        let mut next = Scrubber::clone(&guard);
        if !next.add(label, secret) {
            tracing::warn!(
                "the {label} is shorter than {} characters and is not scrubbed from answers",
                scrub::MIN_SECRET_LEN
            );
        }
        *guard = Arc::new(next);
    }

    fn scrubber(&self) -> Arc<Scrubber> {
        self.scrubber
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    pub fn regions(&self) -> &[Region] {
        &self.regions
    }

    pub fn region(&self, name: &str) -> Option<&Region> {
        self.regions.iter().find(|r| r.name() == name)
    }

    /// Regions this request may try, in order.
    fn candidates(&self, req: &UpstreamRequest) -> Result<Vec<&Region>, UpstreamError> {
        let allowed = |name: &str| {
            req.allowed_regions
                .as_ref()
                .is_none_or(|list| list.iter().any(|r| r == name))
        };
        if let Some(home) = req.affinity.as_deref() {
            let Some(region) = self.region(home) else {
                return Err(UpstreamError::HomeRegionUnavailable {
                    region: home.to_owned(),
                    reason: "it is not configured or has no usable key on this gateway".into(),
                });
            };
            if !allowed(home) {
                return Err(UpstreamError::RegionNotAllowed {
                    allowed: req.allowed_regions.clone().unwrap_or_default().join(", "),
                });
            }
            return Ok(vec![region]);
        }
        let list: Vec<&Region> = self
            .regions
            .iter()
            .filter(|r| allowed(r.name()) && !req.avoid.iter().any(|a| a == r.name()))
            .collect();
        if list.is_empty() {
            return Err(UpstreamError::RegionNotAllowed {
                allowed: req.allowed_regions.clone().unwrap_or_default().join(", "),
            });
        }
        Ok(list)
    }

    /// Sends `req`, failing over between regions as described in the module docs.
    pub async fn send(&self, req: UpstreamRequest) -> Result<UpstreamResponse, UpstreamError> {
        let deadline = req
            .deadline
            .unwrap_or_else(|| Instant::now() + self.limits.failover_deadline);
        let candidates = self.candidates(&req)?;
        let mut walk = Walk::default();
        for (i, region) in candidates.iter().enumerate() {
            if Instant::now() >= deadline {
                break;
            }
            if let Some(wait) = region.rate_limited_for() {
                walk.skip_rate_limited(region.name(), wait);
                continue;
            }
            if !region.breaker().try_acquire() {
                walk.skip(format!(
                    "{}: circuit open after repeated failures",
                    region.name()
                ));
                continue;
            }
            // Boxed: inlined, this ~4.7 KB future made every handler's future (and each
            // layer's around it) that much bigger, and it is memcpy'd as it moves
            // (callgrind: the largest share of the pass-through's per-request growth).
            match Box::pin(self.try_region(region, &req, deadline)).await {
                RegionOutcome::Deliver(response) => {
                    region.breaker().record_success();
                    return Ok(response);
                }
                RegionOutcome::Stop(error) => {
                    region.breaker().release_trial();
                    tracing::warn!(region = %region.name(), error = %error, "request sent but not answered; not replayed elsewhere (it may be generating there)");
                    return Err(error);
                }
                RegionOutcome::Next {
                    reason,
                    error,
                    response,
                } => {
                    if reason.counts_against_region() {
                        region.breaker().record_failure(reason.as_str());
                    } else {
                        // Keys, not the region, were the problem: the breaker stays as it is.
                        region.breaker().record_success();
                    }
                    if i + 1 < candidates.len() {
                        metrics::counter!("qwen_gateway_failovers_total", "from" => region.name_arc().to_string(), "reason" => reason.as_str()).increment(1);
                        tracing::warn!(region = %region.name(), reason = reason.as_str(), "failing over to the next region");
                    }
                    walk.region_left(reason, error, response);
                }
            }
        }
        walk.finish(req.affinity, candidates.len())
    }

    /// Tries one region's keys in turn until one gives an answer worth delivering.
    async fn try_region(
        &self,
        region: &Region,
        req: &UpstreamRequest,
        deadline: Instant,
    ) -> RegionOutcome {
        let mut tried = Vec::new();
        let mut last_response = None;
        let mut forbidden = None;
        let mut reason = FailoverReason::RateLimited;
        while let Some((index, key)) = region.next_key(&tried) {
            tried.push(index);
            let started = Instant::now();
            let budget = if req.streaming {
                self.limits
                    .first_byte_timeout
                    .min(deadline.saturating_duration_since(started))
            } else {
                self.limits.request_timeout
            };
            let response = match self
                .send_once(region, key.secret.expose(), req, budget)
                .await
            {
                Ok(response) => response,
                Err(SendError { error, sent }) => {
                    if sent && !req.streaming {
                        return RegionOutcome::Stop(error);
                    }
                    let reason = match (&error, sent) {
                        (_, false) => FailoverReason::Connect,
                        (UpstreamError::Timeout { .. }, true) => FailoverReason::TimeoutAfterSend,
                        (_, true) => FailoverReason::BrokenAfterSend,
                    };
                    return RegionOutcome::Next {
                        reason,
                        error: Some(error),
                        response: None,
                    };
                }
            };
            metrics::histogram!("qwen_gateway_upstream_head_seconds", "region" => region.name_arc().to_string())
                .record(started.elapsed().as_secs_f64());
            // An error answer's body follows its head at once: it is read within
            // `first_byte_timeout` and what is left of the deadline, so a 503 whose body
            // stalls fails over instead of holding the walk for `request_timeout`. A 200 is
            // the answer, bounded by the body timeouts of its own kind.
            let judged = if response.status.is_success() {
                Box::pin(inspect::judge(response, self.limits)).await
            } else {
                let left = deadline
                    .saturating_duration_since(Instant::now())
                    .min(self.limits.first_byte_timeout);
                match tokio::time::timeout(left, Box::pin(inspect::judge(response, self.limits)))
                    .await
                {
                    Ok(verdict) => verdict,
                    Err(_) => {
                        return RegionOutcome::Next {
                            reason: FailoverReason::Timeout,
                            error: Some(UpstreamError::Timeout {
                                region: region.name().to_owned(),
                                after: left,
                            }),
                            response: None,
                        };
                    }
                }
            };
            match judged {
                Verdict::Deliver(response) => return RegionOutcome::Deliver(response),
                Verdict::KeyRejected(response) => {
                    region.hold_key(index, KeyHold::Quarantined, self.limits.key_quarantine);
                    reason = FailoverReason::Auth;
                    last_response = Some(response);
                }
                Verdict::Forbidden(response) => {
                    forbidden = Some(response);
                }
                Verdict::RateLimited(response, retry_after) => {
                    let hold = retry_after.unwrap_or(self.limits.rate_limit_cooldown);
                    region.hold_key(index, KeyHold::RateLimited, hold);
                    reason = FailoverReason::RateLimited;
                    last_response = Some(response);
                }
                Verdict::RegionFailed(response, why) => {
                    return RegionOutcome::Next {
                        reason: why,
                        error: None,
                        response,
                    };
                }
                Verdict::Broken(err) => {
                    return RegionOutcome::Next {
                        reason: FailoverReason::StreamError,
                        error: Some(err),
                        response: None,
                    };
                }
            }
        }
        // Every key was refused for this request (and none answered otherwise): the 403 is
        // the answer, from a healthy region; another region would not be asked (a 4xx).
        if let Some(response) = forbidden {
            return RegionOutcome::Deliver(response);
        }
        let error = (reason == FailoverReason::Auth).then(|| UpstreamError::AuthRejected {
            region: region.name().to_owned(),
        });
        RegionOutcome::Next {
            reason,
            response: if error.is_some() { None } else { last_response },
            error,
        }
    }

    async fn send_once(
        &self,
        region: &Region,
        secret: &str,
        req: &UpstreamRequest,
        budget: Duration,
    ) -> Result<UpstreamResponse, SendError> {
        let unsent = |detail: &str| SendError {
            error: UpstreamError::Unreachable {
                region: region.name().to_owned(),
                detail: detail.into(),
            },
            sent: false,
        };
        let url = region
            .url_for(&req.target)
            .ok_or_else(|| unsent("the configured base_url does not make a valid URL"))?;
        let mut headers = req.headers.clone();
        if let Some(workspace) = region.workspace() {
            headers.insert("x-dashscope-workspace", workspace.clone());
        }
        let mut auth = HeaderValue::from_str(&format!("Bearer {secret}"))
            .map_err(|_| unsent("a configured key is not a valid header value"))?;
        auth.set_sensitive(true);
        headers.insert(header::AUTHORIZATION, auth);
        // A User-Agent and an Accept when the client sent none, as HTTP clients send (and as
        // the gateway always sent them: its upstream requests look as they did with reqwest).
        headers
            .entry(header::USER_AGENT)
            .or_insert(HeaderValue::from_static(USER_AGENT));
        headers
            .entry(header::ACCEPT)
            .or_insert(HeaderValue::from_static("*/*"));
        let uri = http::Uri::try_from(String::from(url))
            .map_err(|_| unsent("the configured base_url does not make a valid URI"))?;
        let mut request = http::Request::new(http_body_util::Full::new(req.body.clone()));
        *request.method_mut() = req.target.method();
        *request.uri_mut() = uri;
        *request.headers_mut() = headers;
        let failed = |status: &'static str| {
            metrics::counter!(
                "qwen_gateway_upstream_requests_total",
                "region" => region.name().to_owned(),
                "status" => status,
            )
            .increment(1);
        };
        let response = match tokio::time::timeout(budget, region.http().request(request)).await {
            Err(_) => {
                failed("timeout");
                return Err(SendError {
                    error: UpstreamError::Timeout {
                        region: region.name().to_owned(),
                        after: budget,
                    },
                    // The connection may still have been opening, but waiting this long
                    // is past any connect_timeout: the request is taken as sent.
                    sent: true,
                });
            }
            Ok(Err(err)) => {
                let sent = !err.is_connect();
                let err = classify(region.name(), &err, budget);
                failed(match err {
                    UpstreamError::Timeout { .. } => "timeout",
                    _ => "connect_error",
                });
                return Err(SendError { error: err, sent });
            }
            Ok(Ok(response)) => response,
        };
        let (head, body) = response.into_parts();
        metrics::counter!(
            "qwen_gateway_upstream_requests_total",
            "region" => region.name().to_owned(),
            "status" => head.status.as_str().to_owned(),
        )
        .increment(1);
        let scrubber = self.scrubber();
        let mut headers = head.headers;
        let found = scrubber.scrub_headers(&mut headers);
        if !found.is_empty() {
            metrics::counter!("qwen_gateway_secrets_scrubbed_total", "region" => region.name().to_owned())
                .increment(1);
            tracing::warn!(region = %region.name(), secrets = ?found, "the upstream's response headers contained a gateway secret; replaced with [REDACTED]");
        }
        Ok(UpstreamResponse {
            region: region.name_arc(),
            status: head.status,
            headers,
            body: UpstreamBody::new(body, head.version, scrubber, region.name_arc()),
            failed_before_output: None,
        })
    }
}

/// A failed attempt, and whether the request may have reached the region (then it may be
/// generating an answer there).
struct SendError {
    error: UpstreamError,
    sent: bool,
}

/// `User-Agent` of upstream requests whose client sent none.
const USER_AGENT: &str = concat!("qwen-gateway/", env!("CARGO_PKG_VERSION"));

/// Turns a transport error into what the client should hear, without leaking headers: the
/// innermost cause (`Connection refused`, `invalid peer certificate: UnknownIssuer`), or a
/// timeout when the connect timeout ran out.
fn classify(
    region: &str,
    err: &hyper_util::client::legacy::Error,
    budget: Duration,
) -> UpstreamError {
    let timed_out = crate::error::chain(err).any(|e| {
        e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut)
    });
    if timed_out {
        return UpstreamError::Timeout {
            region: region.to_owned(),
            after: budget,
        };
    }
    let detail = crate::error::chain(err)
        .last()
        .map_or_else(String::new, |e| e.to_string());
    UpstreamError::Unreachable {
        region: region.to_owned(),
        detail,
    }
}

impl UpstreamResponse {
    /// Reads the whole body, bounded by the request timeout and the size limit.
    pub async fn read_body(mut self, limits: Limits) -> Result<Bytes, UpstreamError> {
        let region = self.region.to_string();
        self.body.read_all(&region, limits).await
    }

    /// Whether the upstream answered with an SSE stream.
    pub fn is_event_stream(&self) -> bool {
        inspect::is_event_stream(&self.headers)
    }
}

/// `Retry-After` in seconds, if the upstream sent one.
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    headers
        .get(header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}
