//! Incremental Server-Sent Events parsing: push bytes in as they pass by, get events out.
//!
//! One scanner, [`EventFramer`], finds where whole events end (an event ends at a blank
//! line; a line ends at `\r\n`, `\n` or `\r`) and hands their bytes on untouched: the relay
//! forwards them as they are, and [`decode`] reads one whole event's fields for those that
//! need them (the chat translation; [`SseParser`], the client's view used by tests). It
//! scans with `memchr`, so the cost per byte is a vector compare, not a branch.
//!
//! Parsing follows the SSE spec (Model Studio's `id:` lines, `:HTTP_STATUS/200` comments,
//! `data:` with or without a space, lines and UTF-8 characters split across chunks), with
//! properties an upstream cannot talk it out of:
//!
//! - **Linear.** Only newly arrived bytes are scanned for line ends; earlier bytes of an
//!   unfinished event are never looked at again, so one 16 MiB event pushed in 16 KiB
//!   chunks costs what one 16 MiB chunk does. (The `eventsource-stream` adapter this
//!   replaced rescanned its whole buffer on every chunk: seconds of CPU for one such event.)
//! - **Lossy, never stuck.** A line that is not valid UTF-8 is decoded with U+FFFD in place
//!   of the bad bytes, counted ([`Fields::invalid_utf8_lines`]), and parsing goes on.
//! - **Bounded by its caller.** The framer holds an unfinished event and says how big it
//!   is ([`EventFramer::pending_len`]); `upstream::events::EventReader` fails a stream whose
//!   event outgrows `upstream.max_response_bytes`.

mod decode;
mod framer;

pub use decode::{BOM, Event, Fields, SseParser, decode, event_json};
pub use framer::{EventFramer, data_of, event_name_of, events};
