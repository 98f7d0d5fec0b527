//! qwen-gateway: an OpenAI-compatible gateway in front of Alibaba Cloud Model Studio (Qwen).
//!
//! Layout: [`config`] reads settings; [`server`] is the HTTP front (routes, middleware,
//! handlers); [`upstream`] decides where a request goes and sends it; [`translate`] turns
//! Chat Completions into Responses API calls and back (pure functions); [`sse`] parses event
//! streams; [`error`] is the one place errors become OpenAI-shaped answers.

pub mod auth;
pub mod calendar;
pub mod cli;
pub mod config;
pub mod conversation;
pub mod error;
pub mod header_policy;
pub mod ledger;
pub mod model_studio;
pub mod models;
pub mod server;
pub mod sse;
pub mod store;
pub mod telemetry;
pub mod translate;
pub mod upstream;
pub mod usage;
