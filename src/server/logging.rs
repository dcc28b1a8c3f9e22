//! The log subscriber: `tracing-subscriber`'s fmt layer on stderr, one line
//! per event, filtered by the configured `EnvFilter` directive, as text or
//! as one JSON object per line (`--log-format json`: the event's fields at
//! the top level beside `timestamp`, `level`, `target` and `message`, and
//! the request's span, with its `request_id`, under `span`).

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use super::config::{LogFormat, LogLevel};

/// Install the global subscriber. Colours only for text on a terminal.
pub fn init(level: &LogLevel, format: LogFormat) -> Result<(), String> {
    let filter = EnvFilter::try_new(level.as_str())
        .map_err(|e| format!("invalid log level {:?}: {e}", level.as_str()))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
    }
    .map_err(|e| format!("cannot set up logging: {e}"))
}
