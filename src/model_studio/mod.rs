//! Model Studio's wire format: what the gateway knows about how the upstream writes its
//! answers, apart from any HTTP or translation concern.

pub mod conformance;
pub mod errors;
#[cfg(test)]
mod errors_tests;
pub mod events;
