//! Chat Completions ⇄ Responses API translation: pure functions, no I/O.
//!
//! Everything here works on `serde_json::Value` (and, per streamed event, on the typed
//! [`chunk::Chunk`] and `model_studio::events::TextDelta`, which skip building a `Value`)
//! and returns values or errors; the HTTP handler does the sending, cancelling and framing. The rules, field by field, are in
//! `docs/chat-completions.md`; Model Studio's error payloads are classified in
//! `crate::model_studio::errors`, shared with the pass-through.

pub mod chunk;
mod collect;
mod fields;
pub mod merge;
mod messages;
mod output;
pub mod request;
pub mod response;
mod size;
pub mod stop;
pub mod stream;
mod tools;
mod usage;

#[cfg(test)]
mod tests;

pub use crate::model_studio::errors::{error_from_payload, normalize_upstream_error};
pub use chunk::{Chunk, usage_chunk};
pub use request::{ChatLimits, ChatPlan, chat_to_responses};
#[cfg(test)]
pub use response::response_to_chat;
pub use response::{ChatContext, CompletionBuilder};
pub use size::{SizeLimits, check_chat_size};
pub use stop::{StopMatcher, StopStep};
pub use stream::{ChunkOut, ChunkTranslator, StreamContext};
pub use usage::{ChatUsage, chat_usage};

use crate::error::ApiError;

/// Why a chat request cannot be translated. Always the client's fault (400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TranslateError {
    /// Malformed or out-of-range input; `code` follows OpenAI's codes where one fits
    /// (`invalid_type`, `missing_required_parameter`, ...).
    #[error("{message}")]
    InvalidRequest {
        message: String,
        param: Option<String>,
        code: Option<&'static str>,
    },
    /// A well-formed field the gateway cannot honour; refusing beats silently ignoring it,
    /// because Model Studio would drop it without a word.
    #[error("Unsupported parameter: '{param}' {reason}")]
    Unsupported { param: String, reason: String },
}

impl TranslateError {
    pub(crate) fn invalid(param: impl Into<String>, message: impl Into<String>) -> Self {
        Self::InvalidRequest {
            message: message.into(),
            param: Some(param.into()),
            code: None,
        }
    }

    pub(crate) fn invalid_code(
        param: impl Into<String>,
        code: &'static str,
        message: impl Into<String>,
    ) -> Self {
        Self::InvalidRequest {
            message: message.into(),
            param: Some(param.into()),
            code: Some(code),
        }
    }

    pub(crate) fn unsupported(param: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Unsupported {
            param: param.into(),
            reason: reason.into(),
        }
    }

    /// The `param` the client sees, for tests and logs.
    pub fn param(&self) -> Option<&str> {
        match self {
            Self::InvalidRequest { param, .. } => param.as_deref(),
            Self::Unsupported { param, .. } => Some(param),
        }
    }
}

impl From<TranslateError> for ApiError {
    fn from(err: TranslateError) -> Self {
        match err {
            TranslateError::InvalidRequest {
                message,
                param,
                code,
            } => {
                let mut api = ApiError::invalid_request(message);
                api.param = param;
                api.code = code.map(str::to_owned);
                api
            }
            TranslateError::Unsupported { param, reason } => {
                ApiError::unsupported_parameter(&param, &reason)
            }
        }
    }
}
