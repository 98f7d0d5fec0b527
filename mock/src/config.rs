//! Server-wide settings. Per-request overrides live in [`crate::controls`].

use std::time::Duration;

/// How a [`crate::MockServer`] behaves when a request carries no `x-mock-*` control.
#[derive(Clone, Debug)]
pub struct MockConfig {
    /// Accepted API keys. Empty means any non-empty Bearer token is accepted, which is what
    /// most tests want; a non-empty list lets key-rotation / quarantine tests see a 401.
    pub keys: Vec<String>,
    /// Model Studio's SSE wire quirks: a `:HTTP_STATUS/200` comment line, `id:` lines and
    /// `data:` alternating with and without the space. Off gives textbook SSE.
    pub quirks: bool,
    /// Emit every SSE event as several body chunks, split inside a line and, where the event
    /// holds multi-byte UTF-8, inside a character, so clients that assume one event per read
    /// (or one char per read) are caught.
    pub split_writes: bool,
    /// Pause before every SSE event after the first.
    pub delay: Duration,
    /// Answer length in tokens; `None` answers with the canned, deterministic sentence.
    pub tokens: Option<usize>,
}

impl Default for MockConfig {
    fn default() -> Self {
        MockConfig {
            keys: Vec::new(),
            quirks: true,
            split_writes: true,
            delay: Duration::ZERO,
            tokens: None,
        }
    }
}
