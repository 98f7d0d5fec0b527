//! An upstream body that may start with bytes the router already read (held while it
//! checked the first events for a failure), followed by the rest of the live response.

use super::{Limits, UpstreamError};
use bytes::Bytes;
use std::collections::VecDeque;

#[derive(Debug)]
pub struct UpstreamBody {
    held: VecDeque<Bytes>,
    rest: Option<reqwest::Response>,
}

impl UpstreamBody {
    pub fn new(response: reqwest::Response) -> Self {
        Self {
            held: VecDeque::new(),
            rest: Some(response),
        }
    }

    /// A body fully read already.
    pub fn buffered(bytes: Bytes) -> Self {
        Self {
            held: VecDeque::from([bytes]),
            rest: None,
        }
    }

    /// Puts bytes in front of what is still to come (used after peeking).
    pub fn with_held(mut self, held: Vec<Bytes>) -> Self {
        for chunk in held.into_iter().rev() {
            self.held.push_front(chunk);
        }
        self
    }

    /// The next chunk: held bytes first, then the live response. `Ok(None)` at the end.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, reqwest::Error> {
        if let Some(chunk) = self.held.pop_front() {
            return Ok(Some(chunk));
        }
        match self.rest.as_mut() {
            Some(response) => response.chunk().await,
            None => Ok(None),
        }
    }

    /// Reads everything, bounded by the request timeout and the size limit.
    pub async fn read_all(&mut self, region: &str, limits: Limits) -> Result<Bytes, UpstreamError> {
        let read = async {
            let mut buf = Vec::new();
            while let Some(chunk) = self.chunk().await.map_err(|e| UpstreamError::Body {
                region: region.to_owned(),
                detail: e.to_string(),
            })? {
                if buf.len() + chunk.len() > limits.max_response_bytes {
                    return Err(UpstreamError::TooLarge {
                        region: region.to_owned(),
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
                    region: region.to_owned(),
                    after: limits.request_timeout,
                })
            })
    }
}

impl UpstreamBody {
    /// The bytes of a body that was fully buffered in one piece.
    pub fn peek_buffered(&self) -> Option<&Bytes> {
        match (&self.rest, self.held.len()) {
            (None, 1) => self.held.front(),
            _ => None,
        }
    }
}
