//! Writing one complete answer or error and recording it, with the body faults and HTML pages.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::StreamExt;
use serde_json::Value;

use crate::errors::ApiError;
use crate::state::{Record, Shared, lock};

/// Faults applied to complete (non-streaming) answers.
#[derive(Default)]
pub(super) struct BodyFaults {
    /// Cut the JSON in half, with a matching `Content-Length`.
    pub(super) cut: bool,
    /// Send the full `Content-Length` and half the body, then abort.
    pub(super) drop_midway: bool,
    /// Pass this gate between the two halves of the body.
    pub(super) gate: Option<Arc<tokio::sync::Semaphore>>,
    /// Errors as an HTML page.
    pub(super) html_errors: bool,
}

/// One API request being answered, and where its answer is recorded.
pub(super) struct Exchange {
    pub(super) shared: Arc<Shared>,
    pub(super) record: Record,
    pub(super) faults: BodyFaults,
    /// The `Authorization` header received, when `x-mock-echo-auth` asks to leak it.
    pub(super) echo: Option<String>,
}

impl Exchange {
    /// A complete (non-streaming) answer, recorded byte for byte.
    pub(super) fn reply(&self, status: u16, body: &Value, retry_after: Option<&str>) -> Response {
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

    pub(super) fn error(&self, mut err: ApiError) -> Response {
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
