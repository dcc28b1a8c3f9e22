//! The log subscriber: `tracing-subscriber`'s fmt layer on stderr, one line
//! per event, filtered by the configured `EnvFilter` directive, as text or
//! as one JSON object per line (`--log-format json`: the event's fields at
//! the top level beside `timestamp`, `level`, `target` and `message`, and
//! the request's span, with its `request_id`, under `span`). With trace
//! export on, the exporter's layer beside it, with a filter of its own
//! (the log level does not thin the traces); the storage spans are the
//! exporter's only, so a line logged in one still shows its request's
//! span.

use std::io::IsTerminal;

use tracing_subscriber::filter::{EnvFilter, FilterExt, filter_fn};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{Layer, Registry};

use super::config::{LogFormat, LogLevel};

/// A layer of the subscriber.
pub type BoxedLayer = Box<dyn Layer<Registry> + Send + Sync>;

/// Install the global subscriber, with `traces` (the exporter's layer) if
/// given. Colours only for text on a terminal.
pub fn init(level: &LogLevel, format: LogFormat, traces: Option<BoxedLayer>) -> Result<(), String> {
    let filter = EnvFilter::try_new(level.as_str())
        .map_err(|e| format!("invalid log level {:?}: {e}", level.as_str()))?;
    let lines = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let lines: BoxedLayer = match format {
        LogFormat::Text => lines.with_ansi(std::io::stderr().is_terminal()).boxed(),
        LogFormat::Json => lines
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .boxed(),
    };
    let not_storage = filter_fn(|meta| meta.target() != super::otlp::STORAGE_TARGET);
    let mut layers = vec![lines.with_filter(filter.and(not_storage)).boxed()];
    layers.extend(traces);
    tracing_subscriber::registry()
        .with(layers)
        .try_init()
        .map_err(|e| format!("cannot set up logging: {e}"))
}
