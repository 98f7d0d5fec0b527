//! qwen-gateway: an OpenAI-compatible gateway in front of Alibaba Cloud Model Studio (Qwen).
//!
//! Layout, in layers: a module uses only modules of lower layers (checked by
//! `scripts/module-graph.py --check`, which also refuses import circles).
//!
//! 0. Foundations, depending on nothing in the crate: [`error`] (the one `ApiError` and how it
//!    renders), [`usage`] (token counts), [`calendar`] (days and timestamps), [`sse`] (the
//!    event-stream push parser), [`header_policy`] (headers that never cross the gateway),
//!    [`log_fields`] (the text log line's fields, written cheaply).
//! 1. [`config`] (layered settings, parsed once) and [`model_studio`] (the upstream's wire
//!    format: event kinds, typed text deltas, its error payloads, the conformance rewrites).
//! 2. [`store`] (SQLite, Redis or memory behind one enum), [`models`] (catalog and aliases),
//!    [`translate`] (Chat Completions ⇄ Responses, pure functions) and [`upstream`] (where a
//!    request goes and how it is sent: regions, keys, breakers, failover, scrubbing).
//! 3. [`auth`] (team keys, limits, the admin token; no HTTP), [`conversation`] (response-id
//!    affinity and replay) and [`telemetry`] (metrics, read off the upstream router).
//! 4. [`request_context`] (what one request learnt, shared with its log line) and [`ledger`]
//!    (usage booked per key, day, model and region).
//! 5. [`server`]: the HTTP front — routes, middleware (auth, access log, limits), handlers.
//! 6. [`cli`]: the command line that serves, checks and manages keys.

pub mod auth;
pub mod calendar;
pub mod cli;
pub mod config;
pub mod conversation;
pub mod error;
pub mod header_policy;
pub mod ledger;
pub mod log_fields;
pub mod model_studio;
pub mod models;
pub mod request_context;
pub mod server;
pub mod sse;
pub mod store;
pub mod telemetry;
pub mod translate;
pub mod upstream;
pub mod usage;
