//! The log subscriber: `tracing-subscriber`'s fmt layer on stderr (batched
//! on the runtime's workers, see [`log_writer`](super::log_writer)), one
//! line per event, filtered by the configured `EnvFilter` directive, as text or
//! as one JSON object per line (`--log-format json`: the event's fields at
//! the top level beside `timestamp`, `level`, `target` and `message`, and
//! the request's span, with its `request_id`, under `span`). With trace
//! export on, the exporter's layer beside it, with a filter of its own
//! (the log level does not thin the traces); the storage spans are the
//! exporter's only, so a line logged in one still shows its request's
//! span.

use std::io::IsTerminal;

use tracing_subscriber::filter::{EnvFilter, FilterExt, filter_fn};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{Layer, Registry};

use super::access_log::AccessFirst;
use super::config::{LogFormat, LogLevel};

/// A layer of the subscriber.
pub type BoxedLayer = Box<dyn Layer<Registry> + Send + Sync>;

/// Install the global subscriber, with `traces` (the exporter's layer) if
/// given. Colours only for text on a terminal.
pub fn init(level: &LogLevel, format: LogFormat, traces: Option<BoxedLayer>) -> Result<(), String> {
    let ansi = format == LogFormat::Text && std::io::stderr().is_terminal();
    tracing_subscriber::registry()
        .with(layers(
            level,
            format,
            ansi,
            super::log_writer::Stderr,
            traces,
        )?)
        .try_init()
        .map_err(|e| format!("cannot set up logging: {e}"))
}

/// The log lines' layer, writing to `writer`, and `traces` if given.
fn layers<W>(
    level: &LogLevel,
    format: LogFormat,
    ansi: bool,
    writer: W,
    traces: Option<BoxedLayer>,
) -> Result<Vec<BoxedLayer>, String>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let filter = EnvFilter::try_new(level.as_str())
        .map_err(|e| format!("invalid log level {:?}: {e}", level.as_str()))?;
    let lines = tracing_subscriber::fmt::layer().with_writer(writer);
    let lines: BoxedLayer = match format {
        LogFormat::Text => lines
            .with_ansi(ansi)
            .map_event_format(|f| AccessFirst::new(LogFormat::Text, f))
            .boxed(),
        LogFormat::Json => lines
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .map_event_format(|f| AccessFirst::new(LogFormat::Json, f))
            .boxed(),
    };
    let not_storage = filter_fn(|meta| meta.target() != super::otlp::STORAGE_TARGET);
    let mut layers = vec![lines.with_filter(filter.and(not_storage)).boxed()];
    layers.extend(traces);
    Ok(layers)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::captured_log::Captured;

    /// The lines `f` logs through the server's layers at `level`, as
    /// `format`.
    fn logged(level: &str, format: LogFormat, f: impl FnOnce()) -> Vec<String> {
        let captured = Captured::default();
        let level: LogLevel = level.parse().unwrap();
        let layers = layers(&level, format, false, captured.writer(), None).unwrap();
        let subscriber = tracing_subscriber::registry().with(layers);
        tracing::subscriber::with_default(subscriber, f);
        captured.lines()
    }

    fn access_and_other() {
        tracing::info!(target: super::super::access_log::TARGET, status = 200u16, "request");
        tracing::info!(target: "registry::other", "other");
    }

    #[test]
    fn access_lines_are_written_once_and_follow_the_filter() {
        let lines = logged("info", LogFormat::Text, access_and_other);
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(lines[0].ends_with("  INFO registry::access: request status=200"));
        assert!(lines[1].ends_with("  INFO registry::other: other"));
        let lines = logged(
            "info,registry::access=off",
            LogFormat::Json,
            access_and_other,
        );
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(
            lines[0].contains("\"target\":\"registry::other\""),
            "{lines:?}"
        );
        let lines = logged("warn", LogFormat::Text, access_and_other);
        assert!(lines.is_empty(), "{lines:?}");
    }

    #[test]
    fn a_line_logged_in_a_storage_span_shows_its_requests_span() {
        let captured = Captured::default();
        let level: LogLevel = "debug".parse().unwrap();
        let layers = layers(&level, LogFormat::Json, false, captured.writer(), None).unwrap();
        let subscriber = tracing_subscriber::registry().with(layers);
        tracing::subscriber::with_default(subscriber, || {
            let request = tracing::info_span!("request", request_id = "r-1");
            let _in_request = request.enter();
            let storage =
                tracing::info_span!(target: super::super::otlp::STORAGE_TARGET, "storage.x");
            let _in_storage = storage.enter();
            tracing::warn!("inside");
        });
        let text = captured.lines().join("\n");
        let line: serde_json::Value = serde_json::from_str(text.trim()).expect(&text);
        assert_eq!(line["message"], "inside");
        assert_eq!(line["span"]["name"], "request", "{line}");
        assert_eq!(line["span"]["request_id"], "r-1");
    }
}
