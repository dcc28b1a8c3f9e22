//! The access log's lines: written by the log's one formatting layer,
//! through [`AccessFirst`], which formats [`TARGET`] events itself, in the
//! shape `tracing-subscriber`'s formatter gives every other line (text or
//! JSON), without that formatter's general machinery, and hands every
//! other event to that formatter.
//!
//! An access line is written for every request, and on a manifest GET the
//! general formatter cost about a sixth of the server's user time: each
//! field goes through `fmt::Debug` and a dynamic writer, the level and the
//! target through terminal styling, the timestamp through its own
//! formatter. Here the event's fields are recorded by type (strings as
//! they are, integers with `itoa`) straight into the layer's line buffer.
//! Being a formatter, not a layer of its own, it adds no filter and no
//! per-span bookkeeping to the subscriber.
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

use std::fmt;

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

use super::TARGET;
use crate::server::config::LogFormat;

/// An event formatter: [`TARGET`] events as lines of `format` (text
/// without colours, or JSON with the event's fields flattened), every
/// other event by `inner` (the general formatter of the same format).
#[derive(Debug)]
pub struct AccessFirst<F> {
    format: LogFormat,
    inner: F,
}

impl<F> AccessFirst<F> {
    /// Access lines as `format`, the others by `inner`.
    pub fn new(format: LogFormat, inner: F) -> Self {
        AccessFirst { format, inner }
    }
}

impl<S, N, F> FormatEvent<S, N> for AccessFirst<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        if event.metadata().target() == TARGET {
            access_line(self.format, writer, event)
        } else {
            self.inner.format_event(ctx, writer, event)
        }
    }
}

/// The access line of `event`, as `format`, with its newline.
fn access_line(format: LogFormat, mut line: Writer<'_>, event: &Event<'_>) -> fmt::Result {
    let meta = event.metadata();
    let now = humantime::format_rfc3339_micros(std::time::SystemTime::now());
    match format {
        LogFormat::Text => {
            write!(line, "{now}")?;
            line.write_str(level_text(meta.level()))?;
            line.write_str(meta.target())?;
            line.write_char(':')?;
            let mut fields = TextFields(&mut line, Ok(()));
            event.record(&mut fields);
            fields.1?;
        }
        LogFormat::Json => {
            write!(
                line,
                "{{\"timestamp\":\"{now}\",\"level\":\"{}\"",
                meta.level()
            )?;
            let mut fields = JsonFields(&mut line, Ok(()));
            event.record(&mut fields);
            fields.1?;
            line.write_str(",\"target\":")?;
            write_json_str(&mut line, meta.target())?;
            line.write_char('}')?;
        }
    }
    line.write_char('\n')
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

/// Fields as ` name=value`, the message as ` value`, into a line; the
/// first write error is kept.
struct TextFields<'a, W>(&'a mut W, fmt::Result);

impl<W: fmt::Write> TextFields<'_, W> {
    /// Write ` name=` (` ` for the message), then `value`.
    fn field(&mut self, field: &Field, value: impl FnOnce(&mut W) -> fmt::Result) {
        let w = &mut *self.0;
        let name = match field.name() {
            "message" => w.write_char(' '),
            name => write!(w, " {name}="),
        };
        if self.1.is_ok() {
            self.1 = name.and_then(|()| value(w));
        }
    }
}

impl<W: fmt::Write> Visit for TextFields<'_, W> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.field(field, |w| w.write_str(value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.field(field, |w| w.write_str(itoa::Buffer::new().format(value)));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.field(field, |w| w.write_str(itoa::Buffer::new().format(value)));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.field(field, |w| write!(w, "{value:?}"));
    }
}

/// Fields as `,"name":value`, into a line; the first write error is kept.
struct JsonFields<'a, W>(&'a mut W, fmt::Result);

impl<W: fmt::Write> JsonFields<'_, W> {
    /// Write `,"name":`, then `value`.
    fn field(&mut self, field: &Field, value: impl FnOnce(&mut W) -> fmt::Result) {
        let w = &mut *self.0;
        let name = w
            .write_char(',')
            .and_then(|()| write_json_str(w, field.name()))
            .and_then(|()| w.write_char(':'));
        if self.1.is_ok() {
            self.1 = name.and_then(|()| value(w));
        }
    }
}

impl<W: fmt::Write> Visit for JsonFields<'_, W> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.field(field, |w| write_json_str(w, value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.field(field, |w| w.write_str(itoa::Buffer::new().format(value)));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.field(field, |w| w.write_str(itoa::Buffer::new().format(value)));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.field(field, |w| match value.is_finite() {
            true => write!(w, "{value}"),
            false => w.write_str("null"),
        });
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.field(field, |w| w.write_str(if value { "true" } else { "false" }));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.field(field, |w| write_json_str(w, &format!("{value:?}")));
    }
}

/// `value` as a JSON string.
fn write_json_str(w: &mut impl fmt::Write, value: &str) -> fmt::Result {
    // Serializing a string into a String cannot fail.
    let quoted = serde_json::to_string(value).map_err(|_| fmt::Error)?;
    w.write_str(&quoted)
}

/// The lines `f` logs through a formatting layer with [`AccessFirst`], for
/// tests.
#[cfg(test)]
pub(super) fn lines_of(format: LogFormat, f: impl FnOnce()) -> Vec<String> {
    use tracing_subscriber::Layer;
    use tracing_subscriber::fmt::format::Format;
    use tracing_subscriber::layer::SubscriberExt;
    let captured = crate::server::captured_log::Captured::default();
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(captured.writer())
        .with_ansi(false);
    let layer = match format {
        LogFormat::Text => layer
            .event_format(AccessFirst::new(format, Format::default()))
            .boxed(),
        LogFormat::Json => layer
            .json()
            .event_format(AccessFirst::new(format, Format::default().json()))
            .boxed(),
    };
    let subscriber = tracing_subscriber::registry().with(layer);
    tracing::subscriber::with_default(subscriber, f);
    captured.lines()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log_one() {
        tracing::info!(
            target: TARGET, method = "GET", path = "/v2/a\"b/manifests/x", status = 404u64,
            bytes = 90u64, latency_ms = 0.497, request_id = "r-1", "request"
        );
        tracing::warn!(target: TARGET, status = 200u64, "request: cut short");
        tracing::info!(target: "registry::other", n = 1u64, "not an access line");
    }

    #[test]
    fn text_lines_have_the_formatters_shape() {
        let lines = lines_of(LogFormat::Text, log_one);
        assert_eq!(lines.len(), 3, "{lines:?}");
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
        assert!(
            lines[2].ends_with("  INFO registry::other: not an access line n=1"),
            "the general formatter's: {}",
            lines[2]
        );
    }

    #[test]
    fn json_lines_have_the_formatters_keys_in_its_order() {
        let lines = lines_of(LogFormat::Json, log_one);
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
        let other: serde_json::Value = serde_json::from_str(&lines[2]).unwrap();
        assert_eq!(other["fields"]["message"], "not an access line", "{other}");
    }
}
