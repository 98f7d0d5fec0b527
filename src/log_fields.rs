//! The fields of a text log line, written without the formatter's per-field overhead.
//!
//! Every request writes an access-log line of 19 fields; with `tracing-subscriber`'s
//! `DefaultFields` that was ~25 k instructions a line, a tenth of a pass-through request
//! (bench/PROFILE.md), mostly `Debug` formatting and ANSI style wrappers even with colours
//! off. [`PlainFields`] writes the common fields (plain strings, integers, booleans, floats)
//! directly and hands everything else to `DefaultVisitor`, so a line reads byte for byte as
//! before; with colours on (a terminal) it is `DefaultFields` throughout.

use std::fmt;
use tracing::field::{Field, Visit};
use tracing_subscriber::field::{RecordFields, VisitOutput};
use tracing_subscriber::fmt::FormatFields;
use tracing_subscriber::fmt::format::{DefaultFields, DefaultVisitor, Writer};

/// `FormatFields` for the text format (see the module doc).
#[derive(Debug, Default, Clone, Copy)]
pub struct PlainFields;

impl<'w> FormatFields<'w> for PlainFields {
    fn format_fields<R: RecordFields>(&self, writer: Writer<'w>, fields: R) -> fmt::Result {
        if writer.has_ansi_escapes() {
            return DefaultFields::new().format_fields(writer, fields);
        }
        let mut visitor = PlainVisitor {
            writer,
            first: true,
            result: Ok(()),
        };
        fields.record(&mut visitor);
        visitor.result
    }
}

struct PlainVisitor<'w> {
    writer: Writer<'w>,
    first: bool,
    result: fmt::Result,
}

impl PlainVisitor<'_> {
    /// Writes ` name=` (no space before the first field), then `value`.
    fn field(&mut self, field: &Field, value: impl FnOnce(&mut Writer<'_>) -> fmt::Result) {
        if self.result.is_err() {
            return;
        }
        let pad = if std::mem::take(&mut self.first) {
            ""
        } else {
            " "
        };
        let name = field.name();
        self.result = write!(self.writer, "{pad}{name}=").and_then(|()| value(&mut self.writer));
    }

    /// One field written by `DefaultVisitor`, exactly as `DefaultFields` writes it.
    fn default(&mut self, record: impl FnOnce(&mut DefaultVisitor<'_>), field: &Field) {
        let skipped = field.name().starts_with("log.");
        let mut visitor = DefaultVisitor::new(self.writer.by_ref(), self.first);
        record(&mut visitor);
        self.result = visitor.finish();
        if !skipped {
            self.first = false;
        }
    }
}

/// Fields `DefaultVisitor` treats specially (the message, raw identifiers, `log` metadata):
/// always written by it.
fn special(field: &Field) -> bool {
    let name = field.name();
    name == "message" || name.starts_with("r#") || name.starts_with("log.")
}

/// Whether `Debug` writes `s` as `"s"`: printable ASCII without `"` or `\`.
fn quotes_plainly(s: &str) -> bool {
    s.bytes()
        .all(|b| (0x20..=0x7e).contains(&b) && b != b'"' && b != b'\\')
}

impl Visit for PlainVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if special(field) || !quotes_plainly(value) {
            return self.default(|v| v.record_str(field, value), field);
        }
        self.field(field, |w| {
            w.write_char('"')?;
            w.write_str(value)?;
            w.write_char('"')
        });
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        if special(field) {
            return self.default(|v| v.record_u64(field, value), field);
        }
        self.field(field, |w| write!(w, "{value}"));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        if special(field) {
            return self.default(|v| v.record_i64(field, value), field);
        }
        self.field(field, |w| write!(w, "{value}"));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        if special(field) {
            return self.default(|v| v.record_bool(field, value), field);
        }
        self.field(field, |w| w.write_str(if value { "true" } else { "false" }));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        if special(field) {
            return self.default(|v| v.record_f64(field, value), field);
        }
        self.field(field, |w| write!(w, "{value:?}"));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.default(|v| v.record_debug(field, value), field);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// Lines written by a text subscriber with `fields` for what `emit` logs.
    fn lines<N>(fields: N, emit: impl FnOnce()) -> String
    where
        N: for<'w> FormatFields<'w> + Send + Sync + 'static,
    {
        let out = Arc::new(Mutex::new(Vec::new()));
        let sink = out.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .without_time()
            .fmt_fields(fields)
            .with_writer(move || Sink(sink.clone()))
            .finish();
        tracing::subscriber::with_default(subscriber, emit);
        let bytes = out.lock().unwrap().clone();
        String::from_utf8(bytes).unwrap()
    }

    struct Sink(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn all_kinds() {
        let escaped = "a \"quoted\" \\ path\n\u{1b}[31m";
        tracing::info!(
            request_id = "4bc0fd8a-d3e8",
            path = escaped,
            status = 200u16,
            tokens = 16u64,
            delta = -3i64,
            latency_ms = 141.702613,
            ttfb_ms = -1.0,
            stream = false,
            empty = "",
            unicode = "ü",
            shown = ?Some("x"),
            display = %"plain",
            r#type = "raw",
            "request {} done", 7
        );
        tracing::warn!(region = "intl", "first \u{1b} message");
        tracing::info!("message only");
        tracing::info!(only = 1u64);
    }

    #[test]
    fn lines_read_exactly_as_with_default_fields() {
        let ours = lines(PlainFields, all_kinds);
        let theirs = lines(DefaultFields::new(), all_kinds);
        assert_eq!(ours, theirs);
        assert!(
            ours.contains(r#"request_id="4bc0fd8a-d3e8" path="#),
            "{ours}"
        );
        assert_eq!(ours.lines().count(), 4);
    }
}
