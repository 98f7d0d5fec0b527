//! A faithful mock of Alibaba Cloud Model Studio's OpenAI-compatible Responses API.
//!
//! It answers deterministically (so tests can assert on exact text, tool calls and usage),
//! reproduces Model Studio's wire quirks (SSE comment and `id:` lines, `data:` with and
//! without a space, an empty `model` in early events, non-OpenAI error bodies, failures inside
//! HTTP 200), and lets each request inject faults through `x-mock-*` headers — see
//! [`controls::names`]. Tests use it in-process through [`MockServer`]; SDK tests and
//! benchmarks run the `mock-model-studio` binary and inspect it over `/_mock/*`.
//!
//! Routes (any prefix before `/responses` works, so every Model Studio base URL does):
//! `POST …/responses`, `GET|DELETE …/responses/{id}`, `GET …/responses/{id}/input_items`;
//! introspection: `GET|DELETE /_mock/requests`, `GET /_mock/stats`,
//! `POST /_mock/gates/{name}/release`, `GET|POST /_mock/defaults` (`{}` clears).
//!
//! Controls (request header, else a default set on the server):
//! `x-mock-tokens: N`, `x-mock-delay-ms: D`, `x-mock-header-delay-ms: D`,
//! `x-mock-status: S` (+ `x-mock-error-style: nested|html`, `x-mock-retry-after: SECS`),
//! `x-mock-drop-after: K` (0: close before any head), `x-mock-malformed-at: K`
//! (+ `x-mock-malformed-kind: json|no-data|unknown|giant|utf8`, `x-mock-pad-bytes: N`),
//! `x-mock-chunk-bytes: N` (+ `x-mock-chunk-delay-ms: D`),
//! `x-mock-gate: NAME`, `x-mock-fail: rate_limit|moderation|server_error`,
//! `x-mock-incomplete: REASON`, `x-mock-tool-calls: K`.

pub mod answer;
pub mod config;
pub mod controls;
pub mod errors;
pub mod events;
pub mod request;
mod server;
mod state;
mod stream;
pub mod wire;

pub use config::MockConfig;
pub use server::{Alpn, MockServer};
pub use state::{MockStats, RecordedRequest};
