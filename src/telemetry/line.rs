//! One log line per event, as JSON (production) or as readable text (`dev`), with the fields
//! of the spans the event is in — deferred fields ([`super::deferred`]) included, formatted
//! here and only here.
//!
//! The JSON shape is `tracing-subscriber`'s flattened one, which docs/operations.md shows:
//! `timestamp`, `level`, the event's fields, `target`, then `span` (the innermost span's
//! fields and `name`) and `spans` (all of them, outermost first).

use std::fmt::{self, Write as _};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_log::NormalizeEvent;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::registry::{LookupSpan, SpanRef};

use super::deferred::Deferred;

/// The event formatter of both log formats.
pub struct LineFormat {
    json: bool,
}

impl LineFormat {
    pub fn json() -> Self {
        Self { json: true }
    }

    pub fn text() -> Self {
        Self { json: false }
    }
}

impl<S, N> FormatEvent<S, N> for LineFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'w> FormatFields<'w> + 'static,
{
    fn format_event(
        &self,
        context: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let normalized = event.normalized_metadata();
        let metadata = normalized.as_ref().unwrap_or_else(|| event.metadata());
        let spans: Vec<SpanRef<'_, S>> = context
            .event_scope()
            .map(|scope| scope.from_root().collect())
            .unwrap_or_default();
        if self.json {
            write_json::<S, N>(&mut writer, metadata, event, &spans)?;
        } else {
            write_text::<S, N>(&mut writer, metadata, event, &spans)?;
        }
        writeln!(writer)
    }
}

fn write_json<S, N>(
    writer: &mut Writer<'_>,
    metadata: &tracing::Metadata<'_>,
    event: &Event<'_>,
    spans: &[SpanRef<'_, S>],
) -> fmt::Result
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: 'static,
{
    writer.write_str("{\"timestamp\":\"")?;
    SystemTime.format_time(writer)?;
    write!(writer, "\",\"level\":\"{}\"", metadata.level())?;
    let mut fields = JsonFieldsVisitor {
        writer: &mut *writer,
        result: Ok(()),
    };
    event.record(&mut fields);
    fields.result?;
    writer.write_str(",\"target\":")?;
    write_json_string(writer, metadata.target())?;
    if let Some(innermost) = spans.last() {
        writer.write_str(",\"span\":")?;
        write_json_span::<S, N>(writer, innermost)?;
        writer.write_str(",\"spans\":[")?;
        for (index, span) in spans.iter().enumerate() {
            if index > 0 {
                writer.write_char(',')?;
            }
            write_json_span::<S, N>(writer, span)?;
        }
        writer.write_char(']')?;
    }
    writer.write_char('}')
}

/// `{"field":"value",…,"name":"span name"}`.
fn write_json_span<S, N>(writer: &mut Writer<'_>, span: &SpanRef<'_, S>) -> fmt::Result
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: 'static,
{
    writer.write_char('{')?;
    let extensions = span.extensions();
    if let Some(Deferred(fields)) = extensions.get::<Deferred>() {
        let mut result = Ok(());
        fields.for_each(&mut |name, value| {
            result = result
                .and_then(|()| write_json_string(writer, name))
                .and_then(|()| writer.write_char(':'))
                .and_then(|()| write_json_displayed(writer, value))
                .and_then(|()| writer.write_char(','));
        });
        result?;
    }
    // Fields given the usual way (spans of other crates) were formatted by `JsonFields` as
    // one JSON object when the span opened.
    if let Some(formatted) = extensions.get::<FormattedFields<N>>() {
        let inner = formatted
            .fields
            .strip_prefix('{')
            .and_then(|fields| fields.strip_suffix('}'));
        match inner {
            Some("") => {}
            Some(inner) => write!(writer, "{inner},")?,
            None if formatted.fields.is_empty() => {}
            None => {
                writer.write_str("\"fields\":")?;
                write_json_string(writer, &formatted.fields)?;
                writer.write_char(',')?;
            }
        }
    }
    writer.write_str("\"name\":")?;
    write_json_string(writer, span.name())?;
    writer.write_char('}')
}

/// The event's fields as `,"name":value` pairs.
struct JsonFieldsVisitor<'a, 'w> {
    writer: &'a mut Writer<'w>,
    result: fmt::Result,
}

impl JsonFieldsVisitor<'_, '_> {
    fn entry(&mut self, field: &Field, write_value: impl FnOnce(&mut Writer<'_>) -> fmt::Result) {
        let name = field.name();
        // Metadata of `log` records, already turned into the line's target and level.
        if self.result.is_err() || name.starts_with("log.") {
            return;
        }
        let name = name.strip_prefix("r#").unwrap_or(name);
        self.result = self
            .writer
            .write_char(',')
            .and_then(|()| write_json_string(self.writer, name))
            .and_then(|()| self.writer.write_char(':'))
            .and_then(|()| write_value(self.writer));
    }
}

impl Visit for JsonFieldsVisitor<'_, '_> {
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.entry(field, |writer| {
            if value.is_finite() {
                write!(writer, "{value}")
            } else {
                writer.write_str("null")
            }
        });
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.entry(field, |writer| write!(writer, "{value}"));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.entry(field, |writer| write!(writer, "{value}"));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.entry(field, |writer| write!(writer, "{value}"));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.entry(field, |writer| write_json_string(writer, value));
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.entry(field, |writer| write_json_displayed(writer, &value));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.entry(field, |writer| {
            writer.write_char('"')?;
            write!(JsonEscaped(writer), "{value:?}")?;
            writer.write_char('"')
        });
    }
}

fn write_json_displayed(writer: &mut Writer<'_>, value: &dyn fmt::Display) -> fmt::Result {
    writer.write_char('"')?;
    write!(JsonEscaped(writer), "{value}")?;
    writer.write_char('"')
}

fn write_json_string(writer: &mut Writer<'_>, value: &str) -> fmt::Result {
    writer.write_char('"')?;
    JsonEscaped(writer).write_str(value)?;
    writer.write_char('"')
}

/// Writes what it is given as the inside of a JSON string.
struct JsonEscaped<'a, W: fmt::Write>(&'a mut W);

impl<W: fmt::Write> fmt::Write for JsonEscaped<'_, W> {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        let mut plain_from = 0;
        for (index, byte) in text.bytes().enumerate() {
            let escape = match byte {
                b'"' => "\\\"",
                b'\\' => "\\\\",
                b'\n' => "\\n",
                b'\r' => "\\r",
                b'\t' => "\\t",
                0..=0x1f | 0x7f => "",
                _ => continue,
            };
            self.0
                .write_str(text.get(plain_from..index).unwrap_or_default())?;
            if escape.is_empty() {
                write!(self.0, "\\u{byte:04x}")?;
            } else {
                self.0.write_str(escape)?;
            }
            plain_from = index + 1;
        }
        self.0.write_str(text.get(plain_from..).unwrap_or_default())
    }
}

/// `2026-12-01T10:00:00.000000Z  INFO request{request_id=… method=POST}: target: message k=v`
fn write_text<S, N>(
    writer: &mut Writer<'_>,
    metadata: &tracing::Metadata<'_>,
    event: &Event<'_>,
    spans: &[SpanRef<'_, S>],
) -> fmt::Result
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: 'static,
{
    let ansi = writer.has_ansi_escapes();
    if ansi {
        writer.write_str("\x1b[2m")?;
    }
    SystemTime.format_time(writer)?;
    if ansi {
        writer.write_str("\x1b[0m")?;
    }
    let level = metadata.level();
    let colour = match *level {
        Level::ERROR => "\x1b[31m",
        Level::WARN => "\x1b[33m",
        Level::INFO => "\x1b[32m",
        Level::DEBUG => "\x1b[34m",
        Level::TRACE => "\x1b[35m",
    };
    if ansi {
        write!(writer, " {colour}{level:>5}\x1b[0m ")?;
    } else {
        write!(writer, " {level:>5} ")?;
    }
    for span in spans {
        writer.write_str(span.name())?;
        let extensions = span.extensions();
        let mut fields = String::new();
        if let Some(Deferred(deferred)) = extensions.get::<Deferred>() {
            deferred.for_each(&mut |name, value| {
                let separator = if fields.is_empty() { "" } else { " " };
                let _ = write!(fields, "{separator}{name}={value}");
            });
        }
        if let Some(formatted) = extensions
            .get::<FormattedFields<N>>()
            .filter(|formatted| !formatted.fields.is_empty())
        {
            let separator = if fields.is_empty() { "" } else { " " };
            let _ = write!(fields, "{separator}{}", formatted.fields);
        }
        if !fields.is_empty() {
            write!(writer, "{{{fields}}}")?;
        }
        writer.write_char(':')?;
    }
    if !spans.is_empty() {
        writer.write_char(' ')?;
    }
    write!(writer, "{}: ", metadata.target())?;
    let mut fields = TextFieldsVisitor {
        writer: &mut *writer,
        first: true,
        result: Ok(()),
    };
    event.record(&mut fields);
    fields.result
}

/// The event's fields as `message k=v k=v`.
struct TextFieldsVisitor<'a, 'w> {
    writer: &'a mut Writer<'w>,
    first: bool,
    result: fmt::Result,
}

impl Visit for TextFieldsVisitor<'_, '_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.record_debug(field, &format_args!("{value}"));
        } else {
            self.record_debug(field, &value);
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let name = field.name();
        if self.result.is_err() || name.starts_with("log.") {
            return;
        }
        let separator = if self.first { "" } else { " " };
        self.first = false;
        self.result = if name == "message" {
            write!(self.writer, "{separator}{value:?}")
        } else {
            let name = name.strip_prefix("r#").unwrap_or(name);
            write!(self.writer, "{separator}{name}={value:?}")
        };
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use tracing_subscriber::fmt::MakeWriter;
    use tracing_subscriber::fmt::format::JsonFields;

    use super::*;
    use crate::telemetry::deferred::{self, DeferredFields};

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Captured {
        type Writer = Captured;

        fn make_writer(&'a self) -> Self::Writer {
            self.clone()
        }
    }

    impl Captured {
        fn lines(&self) -> Vec<String> {
            let bytes = self.0.lock().unwrap();
            String::from_utf8(bytes.clone())
                .unwrap()
                .lines()
                .map(str::to_string)
                .collect()
        }
    }

    struct Request {
        id: &'static str,
    }

    impl DeferredFields for Request {
        fn for_each(&self, visit: &mut dyn FnMut(&'static str, &dyn fmt::Display)) {
            visit("request_id", &self.id);
            visit("path", &"/mcp \"quoted\"");
        }
    }

    fn json_lines(log: impl FnOnce()) -> Vec<serde_json::Value> {
        let captured = Captured::default();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(captured.clone())
            .fmt_fields(JsonFields::new())
            .event_format(LineFormat::json())
            .finish();
        tracing::subscriber::with_default(subscriber, log);
        captured
            .lines()
            .iter()
            .map(|line| serde_json::from_str(line).expect(line))
            .collect()
    }

    #[test]
    fn writes_deferred_span_fields_into_each_json_line_inside_the_span() {
        let lines = json_lines(|| {
            let span = tracing::info_span!("request");
            deferred::attach(&span, || Request { id: "abc-1" });
            let _entered = span.enter();
            let inner = tracing::info_span!("tool_call", tool = "books_list");
            let _inner = inner.enter();
            tracing::warn!(status = 502, reason = "upstream \"down\"", "call failed");
        });

        assert_eq!(lines.len(), 1);
        let line = &lines[0];
        assert_eq!(line["level"], "WARN");
        assert_eq!(line["message"], "call failed");
        assert_eq!(line["status"], 502);
        assert_eq!(line["reason"], "upstream \"down\"");
        assert_eq!(line["target"], module_path!());
        assert_eq!(
            line["span"],
            serde_json::json!({"tool": "books_list", "name": "tool_call"})
        );
        assert_eq!(line["spans"][0]["request_id"], "abc-1");
        assert_eq!(line["spans"][0]["path"], "/mcp \"quoted\"");
        assert_eq!(line["spans"][0]["name"], "request");
        assert!(line["timestamp"].as_str().unwrap().ends_with('Z'));
    }

    #[test]
    fn never_builds_deferred_fields_when_nothing_is_logged() {
        struct Unbuildable;
        impl DeferredFields for Unbuildable {
            fn for_each(&self, _: &mut dyn FnMut(&'static str, &dyn fmt::Display)) {
                panic!("deferred fields formatted though nothing was logged");
            }
        }

        let lines = json_lines(|| {
            let span = tracing::info_span!("request");
            deferred::attach(&span, || Unbuildable);
            let _entered = span.enter();
            tracing::debug!("filtered out by the default INFO level");
        });

        assert!(lines.is_empty());
    }

    #[test]
    fn does_not_build_fields_for_a_span_that_is_filtered_out() {
        let built = std::sync::atomic::AtomicBool::new(false);

        json_lines(|| {
            let span = tracing::debug_span!("request");
            deferred::attach(&span, || {
                built.store(true, std::sync::atomic::Ordering::SeqCst);
                Request { id: "x" }
            });
        });

        assert!(!built.load(std::sync::atomic::Ordering::SeqCst));
    }

    #[test]
    fn escapes_control_characters_in_json_strings() {
        let lines = json_lines(|| tracing::info!(text = "a\u{1}b\nc\\", "line"));

        assert_eq!(lines[0]["text"], "a\u{1}b\nc\\");
    }

    #[test]
    fn writes_a_readable_line_with_span_fields_in_text_format() {
        let captured = Captured::default();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(captured.clone())
            .with_ansi(false)
            .event_format(LineFormat::text())
            .finish();

        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("request");
            deferred::attach(&span, || Request { id: "abc-1" });
            let _entered = span.enter();
            tracing::info!(tools = 3, "tunnelgate listening");
        });

        let lines = captured.lines();
        assert_eq!(lines.len(), 1);
        assert!(
            lines[0].ends_with(&format!(
                " INFO request{{request_id=abc-1 path=/mcp \"quoted\"}}: {}: tunnelgate listening tools=3",
                module_path!()
            )),
            "{}",
            lines[0]
        );
    }
}
