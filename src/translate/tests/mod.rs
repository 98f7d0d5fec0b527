//! Tests for every mapping row of translation.md A, A2, B, C, D and the pitfalls list.

mod builder;
mod fixtures;
mod messages;
mod request;
mod response;
mod stop;
mod stream;
mod upstream_error;
