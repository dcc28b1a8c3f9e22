//! The log subscriber: `tracing-subscriber`'s fmt layer on stderr, one line
//! per event, filtered by the configured `EnvFilter` directive.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use super::config::LogLevel;

/// Install the global subscriber. Colours only when stderr is a terminal.
pub fn init(level: &LogLevel) -> Result<(), String> {
    let filter = EnvFilter::try_new(level.as_str())
        .map_err(|e| format!("invalid log level {:?}: {e}", level.as_str()))?;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init()
        .map_err(|e| format!("cannot set up logging: {e}"))
}
