//! Chat Completions ⇄ Responses API translation: pure functions, no I/O.
