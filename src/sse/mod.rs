//! Incremental Server-Sent Events parsing: push bytes in as they pass by, get events out.
//!
//! Two push parsers share one framing rule (an event ends at a blank line; a line ends at
//! `\r\n`, `\n` or `\r`): [`EventFramer`] finds where whole events end and hands their
//! bytes on untouched (the relay, which must forward upstream bytes as they are), and
//! [`SseParser`] decodes fields into [`Event`]s (the chat translation, which needs them all).
//! Both scan with `memchr`, so the cost per byte is a vector compare, not a branch.
//!
//! The gateway must look inside upstream streams (response ids, usage, terminal events)
//! while relaying the bytes untouched, so it needs a parser it can *push* chunks into.
//! Parsing follows the SSE spec (Model Studio's `id:` lines, `:HTTP_STATUS/200` comments,
//! `data:` with or without a space, lines and UTF-8 characters split across chunks), with
//! three properties an upstream cannot talk it out of:
//!
//! - **Linear.** Only newly arrived bytes are scanned for line ends; earlier bytes of an
//!   unfinished line are never looked at again, so one 16 MiB event pushed in 16 KiB chunks
//!   costs what one 16 MiB chunk does. (The `eventsource-stream` adapter this replaces
//!   rescanned its whole buffer on every chunk: seconds of CPU for one such event.)
//! - **Lossy, never stuck.** A line that is not valid UTF-8 is decoded with U+FFFD in place
//!   of the bad bytes, counted ([`SseParser::invalid_utf8_lines`]), and parsing goes on: one
//!   bad byte must not hide the rest of a stream (its usage, its end) from the gateway.
//! - **Bounded.** The event being assembled never holds more than the `max_event_bytes` the
//!   caller passes; a bigger one is dropped whole (up to its blank line) and counted
//!   ([`SseParser::oversized_events`]), so the caller can fail the stream clearly.

mod framer;
mod parser;

pub use framer::{EventFramer, data_of, event_name_of, events};
pub use parser::{Event, SseParser, event_json};
