//! Tests for every mapping row of docs/chat-completions.md (request fields, messages, the
//! answer, streams, errors) and the pitfalls peers shipped.

mod builder;
mod fixtures;
mod messages;
mod request;
mod response;
mod stop;
mod stream;
