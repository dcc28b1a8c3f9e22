//! The access log's own layer: writes the lines of [`TARGET`] events
//! itself, in the shape `tracing-subscriber`'s formatter gives every other
//! line (text or JSON), without that formatter's general machinery.
//!
//! An access line is written for every request, and on a manifest GET the
//! general formatter cost about a sixth of the server's user time: each
//! field goes through `fmt::Debug` and a dynamic writer, the level and the
//! target through terminal styling, the timestamp through its own
//! formatter. Here the event's fields are recorded by type (strings as
//! they are, integers with `itoa`), into one buffer per thread, handed to
//! the log's writer in one piece.
//!
//! Text lines look like the formatter's, without colours:
//!
//! ```text
//! 2026-12-02T16:30:20.484302Z  INFO registry::access: request method=GET path=/v2/app/manifests/latest status=404 bytes=90 latency_ms=0.497 request_id=8c1f…
//! ```
//!
//! JSON lines have the formatter's keys in its order: `timestamp`,
//! `level`, the event's fields (`message` first), `target`. An access
//! event carries no span (it is logged when the response body ends,
//! outside the request's span), so neither form shows one.

use std::cell::RefCell;
use std::fmt::Write as _;
use std::io::Write as _;

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::{Context, Layer};

use super::TARGET;

/// Lines as text or as JSON objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// `tracing-subscriber`'s text line, without colours.
    Text,
    /// `tracing-subscriber`'s JSON object, its event's fields flattened.
    Json,
}

/// The layer: formats [`TARGET`] events (and only those: filter the
/// others out, and these out of the general formatter) and writes each to
/// `writer`.
#[derive(Debug)]
pub struct AccessLayer<W> {
    shape: Shape,
    writer: W,
}

impl<W> AccessLayer<W> {
    /// Lines of `shape` written to `writer`.
    pub fn new(shape: Shape, writer: W) -> Self {
        AccessLayer { shape, writer }
    }
}

thread_local! {
    /// The line being written, reused.
    static LINE: RefCell<String> = const { RefCell::new(String::new()) };
}

impl<S, W> Layer<S> for AccessLayer<W>
where
    S: Subscriber,
    W: for<'w> MakeWriter<'w> + 'static,
{
    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        let meta = event.metadata();
        debug_assert_eq!(meta.target(), TARGET);
        LINE.with(|line| {
            // Re-entered only if writing the line logs something itself.
            let Ok(mut line) = line.try_borrow_mut() else {
                return;
            };
            line.clear();
            let now = std::time::SystemTime::now();
            match self.shape {
                Shape::Text => {
                    let _ = write!(line, "{}", humantime::format_rfc3339_micros(now));
                    line.push_str(level_text(meta.level()));
                    line.push_str(meta.target());
                    line.push(':');
                    event.record(&mut TextFields(&mut line));
                }
                Shape::Json => {
                    let _ = write!(
                        line,
                        "{{\"timestamp\":\"{}\",\"level\":\"{}\"",
                        humantime::format_rfc3339_micros(now),
                        meta.level()
                    );
                    event.record(&mut JsonFields(&mut line));
                    line.push_str(",\"target\":");
                    push_json_str(&mut line, meta.target());
                    line.push('}');
                }
            }
            line.push('\n');
            let _ = self.writer.make_writer_for(meta).write_all(line.as_bytes());
        });
    }
}

/// The level as the text formatter pads it, between the spaces around it.
fn level_text(level: &Level) -> &'static str {
    match *level {
        Level::ERROR => " ERROR ",
        Level::WARN => "  WARN ",
        Level::INFO => "  INFO ",
        Level::DEBUG => " DEBUG ",
        Level::TRACE => " TRACE ",
    }
}

/// Fields as ` name=value`, the message as ` value`.
struct TextFields<'a>(&'a mut String);

impl TextFields<'_> {
    fn name(&mut self, field: &Field) {
        self.0.push(' ');
        if field.name() != "message" {
            self.0.push_str(field.name());
            self.0.push('=');
        }
    }
}

impl Visit for TextFields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.name(field);
        self.0.push_str(value);
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.name(field);
        self.0.push_str(itoa::Buffer::new().format(value));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.name(field);
        self.0.push_str(itoa::Buffer::new().format(value));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.name(field);
        let _ = write!(self.0, "{value:?}");
    }
}

/// Fields as `,"name":value`.
struct JsonFields<'a>(&'a mut String);

impl JsonFields<'_> {
    fn name(&mut self, field: &Field) {
        self.0.push(',');
        push_json_str(self.0, field.name());
        self.0.push(':');
    }
}

impl Visit for JsonFields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.name(field);
        push_json_str(self.0, value);
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.name(field);
        self.0.push_str(itoa::Buffer::new().format(value));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.name(field);
        self.0.push_str(itoa::Buffer::new().format(value));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.name(field);
        if value.is_finite() {
            let _ = write!(self.0, "{value}");
        } else {
            self.0.push_str("null");
        }
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.name(field);
        self.0.push_str(if value { "true" } else { "false" });
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.name(field);
        push_json_str(self.0, &format!("{value:?}"));
    }
}

/// `value` as a JSON string.
fn push_json_str(out: &mut String, value: &str) {
    // Serializing a string into a String cannot fail.
    if let Ok(quoted) = serde_json::to_string(value) {
        out.push_str(&quoted);
    }
}

#[cfg(test)]
mod tests {
    use tracing_subscriber::layer::SubscriberExt;

    use super::*;
    use crate::server::captured_log::Captured;

    fn lines_of(shape: Shape, f: impl FnOnce()) -> Vec<String> {
        let captured = Captured::default();
        let layer = AccessLayer::new(shape, captured.writer());
        let subscriber = tracing_subscriber::registry().with(layer);
        tracing::subscriber::with_default(subscriber, f);
        captured.lines()
    }

    fn log_one() {
        tracing::info!(
            target: TARGET, method = "GET", path = "/v2/a\"b/manifests/x", status = 404u64,
            bytes = 90u64, latency_ms = 0.497, request_id = "r-1", "request"
        );
        tracing::warn!(target: TARGET, status = 200u64, "request: cut short");
    }

    #[test]
    fn text_lines_have_the_formatters_shape() {
        let lines = lines_of(Shape::Text, log_one);
        assert_eq!(lines.len(), 2, "{lines:?}");
        let (stamp, rest) = lines[0].split_once(' ').unwrap();
        assert!(
            humantime::parse_rfc3339(stamp).is_ok() && stamp.len() == 27,
            "{stamp}"
        );
        assert_eq!(
            rest,
            " INFO registry::access: request method=GET path=/v2/a\"b/manifests/x status=404 \
             bytes=90 latency_ms=0.497 request_id=r-1"
        );
        assert!(
            lines[1].ends_with("  WARN registry::access: request: cut short status=200"),
            "{}",
            lines[1]
        );
    }

    #[test]
    fn json_lines_have_the_formatters_keys_in_its_order() {
        let lines = lines_of(Shape::Json, log_one);
        let v: serde_json::Value = serde_json::from_str(&lines[0]).expect(&lines[0]);
        assert!(humantime::parse_rfc3339(v["timestamp"].as_str().unwrap()).is_ok());
        assert_eq!(v["level"], "INFO");
        assert_eq!(v["message"], "request");
        assert_eq!(v["method"], "GET");
        assert_eq!(v["path"], "/v2/a\"b/manifests/x");
        assert_eq!(v["status"], 404);
        assert_eq!(v["bytes"], 90);
        assert_eq!(v["latency_ms"], 0.497);
        assert_eq!(v["request_id"], "r-1");
        assert_eq!(v["target"], "registry::access");
        let keys: Vec<&str> = [
            "timestamp",
            "level",
            "message",
            "method",
            "path",
            "status",
            "bytes",
            "latency_ms",
            "request_id",
            "target",
        ]
        .into();
        let at = |k: &str| lines[0].find(&format!("\"{k}\":")).unwrap();
        assert!(keys.windows(2).all(|w| at(w[0]) < at(w[1])), "{}", lines[0]);
        let warn: serde_json::Value = serde_json::from_str(&lines[1]).unwrap();
        assert_eq!(warn["level"], "WARN");
    }
}
