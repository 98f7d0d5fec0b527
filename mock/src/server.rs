//! HTTP: the Responses API surface, the `/_mock` introspection routes, request recording,
//! and a hand-run hyper accept loop (so a request can be answered by closing the connection
//! without any response head, and so shutdown can abort open connections).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use futures_util::StreamExt;
use hyper_util::rt::{TokioIo, TokioTimer};
use serde_json::{Map, Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};
use tower::ServiceExt;

use crate::answer;
use crate::config::MockConfig;
use crate::controls::{Controls, Fail};
use crate::errors::{ApiError, INTERNAL_ERROR_MESSAGE, RATE_LIMIT_MESSAGE};
use crate::events::{Ending, Meta, Rendered};
use crate::request::ResponseRequest;
use crate::state::{Gauge, MockStats, Record, RecordedRequest, Shared, Stored, lock};
use crate::stream::{RecordingBody, Script};
use crate::wire::Framing;

/// Largest request body read.
const MAX_BODY: usize = 64 * 1024 * 1024;

/// A running mock. Dropping it stops it too; [`MockServer::shutdown`] also waits.
pub struct MockServer {
    shared: Arc<Shared>,
    addr: SocketAddr,
    task: Option<JoinHandle<()>>,
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
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared::new(config));
        let app = routes(shared.clone());
        let task = tokio::spawn(accept_loop(listener, app, shared.clone()));
        Ok(MockServer {
            shared,
            addr,
            task: Some(task),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://HOST:PORT`, without a path: clients append `/responses`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
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

/// Marker on a response meaning "close the connection instead of answering".
#[derive(Clone, Copy, Debug)]
struct DropConnection;

impl std::fmt::Display for DropConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by x-mock-drop-after: 0")
    }
}

impl std::error::Error for DropConnection {}

/// Accepts connections until aborted. Connections live in a `JoinSet` owned by this task, so
/// aborting it aborts them all.
async fn accept_loop(listener: TcpListener, app: Router, shared: Arc<Shared>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    shared.counters.accepted_connections.fetch_add(1, Ordering::SeqCst);
                    let open = Gauge::new(shared.clone(), |c| &c.open_connections);
                    let shared = shared.clone();
                    let app = app.clone();
                    connections.spawn(async move {
                        serve_connection(stream, app, shared).await;
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

async fn serve_connection(stream: TcpStream, app: Router, shared: Arc<Shared>) {
    let _ = stream.set_nodelay(true);
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
    let _ = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
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

fn routes(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/_mock/requests", get(list_requests).delete(clear_requests))
        .route("/_mock/stats", get(stats))
        .route("/_mock/gates/{name}/release", post(release_gate))
        .route("/_mock/defaults", post(set_defaults).get(get_defaults))
        .fallback(api)
        .with_state(shared)
}

async fn list_requests(State(shared): State<Arc<Shared>>) -> Response {
    let all: Vec<Value> = shared
        .requests()
        .iter()
        .map(RecordedRequest::to_json)
        .collect();
    axum::Json(all).into_response()
}

async fn clear_requests(State(shared): State<Arc<Shared>>) -> StatusCode {
    shared.clear();
    StatusCode::NO_CONTENT
}

async fn stats(State(shared): State<Arc<Shared>>) -> Response {
    axum::Json(shared.stats()).into_response()
}

async fn release_gate(State(shared): State<Arc<Shared>>, Path(name): Path<String>) -> StatusCode {
    shared.release(&name);
    StatusCode::NO_CONTENT
}

/// Replaces the default controls with the posted object (`{}` clears them).
async fn set_defaults(State(shared): State<Arc<Shared>>, body: axum::body::Bytes) -> Response {
    let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(&body) else {
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"message": "expected a JSON object of header -> value"})),
        )
            .into_response();
    };
    shared.clear_defaults();
    for (name, value) in &map {
        let value = match value {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        shared.set_default(name, &value);
    }
    get_defaults(State(shared)).await
}

async fn get_defaults(State(shared): State<Arc<Shared>>) -> Response {
    let map: Map<String, Value> = shared
        .defaults()
        .into_iter()
        .map(|(name, value)| (name, Value::String(value)))
        .collect();
    axum::Json(map).into_response()
}

/// Faults applied to complete (non-streaming) answers.
#[derive(Default)]
struct BodyFaults {
    /// Cut the JSON in half, with a matching `Content-Length`.
    cut: bool,
    /// Send the full `Content-Length` and half the body, then abort.
    drop_midway: bool,
    /// Pass this gate between the two halves of the body.
    gate: Option<Arc<tokio::sync::Semaphore>>,
    /// Errors as an HTML page.
    html_errors: bool,
}

/// One API request being answered, and where its answer is recorded.
struct Exchange {
    shared: Arc<Shared>,
    record: Record,
    faults: BodyFaults,
    /// The `Authorization` header received, when `x-mock-echo-auth` asks to leak it.
    echo: Option<String>,
}

impl Exchange {
    /// A complete (non-streaming) answer, recorded byte for byte.
    fn reply(&self, status: u16, body: &Value, retry_after: Option<&str>) -> Response {
        self.reply_bytes(
            status,
            "application/json",
            body.to_string().into_bytes(),
            retry_after,
        )
    }

    fn reply_bytes(
        &self,
        status: u16,
        content_type: &str,
        mut bytes: Vec<u8>,
        retry_after: Option<&str>,
    ) -> Response {
        if self.faults.cut {
            bytes.truncate(bytes.len() / 2);
        }
        let full_length = bytes.len();
        let half = Bytes::copy_from_slice(&bytes[..full_length / 2]);
        let rest = Bytes::copy_from_slice(&bytes[full_length / 2..]);
        let streamed = self.faults.drop_midway || self.faults.gate.is_some();
        {
            let mut rec = lock(&self.record);
            rec.status = status;
            if streamed {
                rec.response_body = half.to_vec();
            } else {
                rec.response_body = bytes.clone();
                rec.finished = true;
            }
        }
        let mut builder = Response::builder()
            .status(status)
            .header(header::CONTENT_TYPE, content_type);
        if let Some(echo) = &self.echo {
            builder = builder.header("x-mock-echo-authorization", echo.as_str());
        }
        if let Some(secs) = retry_after {
            builder = builder.header(header::RETRY_AFTER, secs);
        }
        let body = if streamed {
            builder = builder.header(header::CONTENT_LENGTH, full_length);
            let drop_midway = self.faults.drop_midway;
            let gate = self.faults.gate.clone();
            let record = self.record.clone();
            let second = async move {
                if drop_midway {
                    // Let hyper write the head and the first half before the abort.
                    tokio::task::yield_now().await;
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::ConnectionAborted,
                        "x-mock-drop-after",
                    ));
                }
                if let Some(gate) = gate
                    && let Ok(permit) = gate.acquire().await
                {
                    permit.forget();
                }
                let mut rec = lock(&record);
                rec.response_body.extend_from_slice(&rest);
                rec.finished = true;
                Ok(rest)
            };
            let first = futures_util::stream::once(async move { Ok(half) });
            Body::from_stream(first.chain(futures_util::stream::once(second)))
        } else {
            Body::from(bytes)
        };
        builder
            .body(body)
            .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
    }

    fn error(&self, mut err: ApiError) -> Response {
        if self.faults.html_errors {
            let mut page = html_error_page(err.status);
            if let Some(echo) = &self.echo {
                page.push_str(&format!("<p>received Authorization: {echo}</p>\r\n"));
            }
            return self.reply_bytes(
                err.status,
                "text/html",
                page.into_bytes(),
                err.retry_after.as_deref(),
            );
        }
        if let Some(echo) = &self.echo {
            let message = match err.body.get_mut("error") {
                Some(nested) => nested.get_mut("message"),
                None => err.body.get_mut("message"),
            };
            if let Some(Value::String(message)) = message {
                message.push_str(&format!(" (received Authorization: {echo})"));
            }
        }
        self.reply(err.status, &err.body, err.retry_after.as_deref())
    }
}

/// The kind of page a load balancer in front of Model Studio answers with.
fn html_error_page(status: u16) -> String {
    let reason = StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Error");
    format!(
        "<html>\r\n<head><title>{status} {reason}</title></head>\r\n<body>\r\n<center><h1>{status} {reason}</h1></center>\r\n<hr><center>Tengine</center>\r\n</body>\r\n</html>\r\n"
    )
}

/// Everything that is not `/_mock`: recorded, subject to controls and auth, then routed.
async fn api(State(shared): State<Arc<Shared>>, request: axum::extract::Request) -> Response {
    let (parts, body) = request.into_parts();
    let bytes = axum::body::to_bytes(body, MAX_BODY).await.ok();
    let body_json = bytes
        .as_ref()
        .filter(|b| !b.is_empty())
        .and_then(|b| serde_json::from_slice::<Value>(b).ok());
    let streaming = body_json
        .as_ref()
        .is_some_and(|b| b["stream"] == Value::Bool(true));
    let record = shared.record(RecordedRequest {
        method: parts.method.to_string(),
        path: parts.uri.path().to_string(),
        query: parts.uri.query().map(str::to_string),
        headers: parts
            .headers
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body: body_json,
        status: 0,
        response_body: Vec::new(),
        finished: false,
        cancelled: false,
    });
    let mut ex = Exchange {
        shared: shared.clone(),
        record,
        faults: BodyFaults::default(),
        echo: None,
    };

    let headers = &parts.headers;
    let controls = match Controls::parse(
        |name| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
                .or_else(|| shared.default_header(name))
        },
        &shared.config,
    ) {
        Ok(c) => c,
        Err(message) => return ex.error(ApiError::invalid_parameter(message)),
    };
    ex.faults.html_errors = controls.html_errors;
    if controls.echo_auth {
        ex.echo = headers
            .get(header::AUTHORIZATION)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    }
    // Complete answers only: errors (even to a streaming request) and non-streaming 200s.
    ex.faults.cut = controls.malformed_at.is_some();
    if !streaming {
        ex.faults.drop_midway = controls.drop_after.is_some_and(|k| k > 0);
        ex.faults.gate = controls.gate.as_deref().map(|g| shared.gate(g));
    }
    if !controls.header_delay.is_zero() {
        tokio::time::sleep(controls.header_delay).await;
    }
    if controls.drop_after == Some(0) {
        let mut response = Response::new(Body::empty());
        response.extensions_mut().insert(DropConnection);
        return response;
    }
    if let Some(status) = controls.status.filter(|s| *s != 200) {
        let mut err = ApiError::for_status(status, controls.nested_errors);
        err.retry_after = controls.retry_after.clone();
        return ex.error(err);
    }
    if !authorized(headers, &shared.config.keys) {
        return ex.error(ApiError::invalid_api_key());
    }

    let segments: Vec<&str> = parts
        .uri
        .path()
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    let Some(at) = segments.iter().rposition(|s| *s == "responses") else {
        return ex.error(not_found(parts.uri.path()));
    };
    match (&parts.method, &segments[at + 1..]) {
        (&Method::POST, []) => create(&ex, &controls, bytes.as_deref()),
        (&Method::GET, [id]) => match shared.stored(id) {
            Some(stored) => ex.reply(200, &stored.response, None),
            None => ex.error(unknown_response(id)),
        },
        (&Method::DELETE, [id]) => {
            if shared.delete(id) {
                ex.reply(
                    200,
                    &json!({"id": id, "object": "response.deleted", "deleted": true}),
                    None,
                )
            } else {
                ex.error(unknown_response(id))
            }
        }
        (&Method::GET, [id, "input_items"]) => match shared.stored(id) {
            Some(stored) => {
                let mut data = stored.input;
                let ascending = parts
                    .uri
                    .query()
                    .is_some_and(|q| q.split('&').any(|kv| kv == "order=asc"));
                if !ascending {
                    data.reverse(); // OpenAI's default order is "desc"
                }
                let body = json!({
                    "object": "list",
                    "first_id": data.first().map(|i| i["id"].clone()),
                    "last_id": data.last().map(|i| i["id"].clone()),
                    "has_more": false,
                    "data": data,
                });
                ex.reply(200, &body, None)
            }
            None => ex.error(unknown_response(id)),
        },
        (_, [] | [_] | [_, "input_items"]) => ex.error(ApiError::flat(
            405,
            "MethodNotAllowed",
            format!("Method {} is not allowed here.", parts.method),
        )),
        _ => ex.error(not_found(parts.uri.path())),
    }
}

fn not_found(path: &str) -> ApiError {
    ApiError::flat(404, "NotFound", format!("No such endpoint: {path}"))
}

fn unknown_response(id: &str) -> ApiError {
    ApiError::flat(
        404,
        "NotFound",
        format!("Response with id '{id}' not found."),
    )
}

/// `Authorization: Bearer <key>`: any non-empty key when no keys are configured.
fn authorized(headers: &HeaderMap, keys: &[String]) -> bool {
    let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let Some((scheme, key)) = value.trim().split_once(' ') else {
        return false;
    };
    let key = key.trim();
    scheme.eq_ignore_ascii_case("bearer")
        && !key.is_empty()
        && (keys.is_empty() || keys.iter().any(|k| k == key))
}

/// `POST …/responses`.
fn create(ex: &Exchange, controls: &Controls, body: Option<&[u8]>) -> Response {
    let value = match serde_json::from_slice::<Value>(body.unwrap_or_default()) {
        Ok(v) => v,
        Err(e) => {
            return ex.error(ApiError::invalid_parameter(format!(
                "The request body is not valid JSON: {e}"
            )));
        }
    };
    let req = match ResponseRequest::parse(&value) {
        Ok(r) => r,
        Err(e) => return ex.error(e),
    };
    let history = match &req.previous_response_id {
        None => None,
        Some(id) => match ex.shared.stored(id) {
            Some(stored) => Some(stored.conversation),
            None => {
                return ex.error(ApiError::nested(
                    400,
                    "invalid_parameter_error",
                    Some("previous_response_id"),
                    format!("Previous response with id '{id}' not found."),
                    "invalid_request_error",
                ));
            }
        },
    };
    if let Some(call_id) = answer::orphan_call_output(&req.input, history.as_deref().unwrap_or(&[]))
    {
        return ex.error(ApiError::invalid_parameter(format!(
            "No tool call found for function call output with call_id {call_id}."
        )));
    }
    let ending = match controls.fail {
        None => Ending::Normal,
        Some(Fail::Moderation) if !req.stream => return ex.error(ApiError::moderation()),
        Some(Fail::Moderation) => Ending::Moderated,
        Some(Fail::RateLimit) => Ending::Failed {
            code: "Throttling".into(),
            message: RATE_LIMIT_MESSAGE.into(),
        },
        Some(Fail::ServerError) => Ending::Failed {
            code: "InternalError".into(),
            message: INTERNAL_ERROR_MESSAGE.into(),
        },
    };

    let mut plan = answer::plan(&req, history.as_deref(), controls);
    if let Some(echo) = &ex.echo {
        plan.text = Some(vec![format!("echo: {echo}")]);
    }
    if let (Some(n), Some(deltas)) = (controls.delta_bytes, plan.text.as_mut()) {
        for delta in deltas.iter_mut() {
            let pad = n.saturating_sub(delta.len());
            delta.push_str(&"x".repeat(pad));
        }
    }
    let meta = Meta::new(&req.model, req.raw.clone());
    let rendered = Rendered::new(plan);
    let response = rendered.response(&meta, &ending);
    if req.store && ending == Ending::Normal {
        let mut conversation = history.unwrap_or_default();
        conversation.extend(req.input.iter().cloned());
        conversation.extend(rendered.output(false));
        ex.shared.store(
            &meta.id,
            Stored {
                response: response.clone(),
                input: req.input.clone(),
                conversation,
            },
        );
    }
    if !req.stream {
        return ex.reply(200, &response, None);
    }

    let events = rendered.events(&meta, &ending);
    let echo = ex.echo.clone();
    let framing = Framing {
        quirks: ex.shared.config.quirks,
        split: ex.shared.config.split_writes,
    };
    let gate = controls.gate.as_deref().map(|g| ex.shared.gate(g));
    let script = Script::new(&events, framing, controls, gate);
    lock(&ex.record).status = 200;
    let body = RecordingBody::new(script, ex.shared.clone(), ex.record.clone());
    let mut builder = Response::builder()
        .status(200)
        .header(header::CONTENT_TYPE, "text/event-stream")
        .header(header::CACHE_CONTROL, "no-cache");
    if let Some(echo) = echo {
        builder = builder.header("x-mock-echo-authorization", echo);
    }
    builder
        .body(Body::from_stream(body))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}
