//! The reference server: command line, configuration, logging, and the
//! start-up and shutdown sequence around `registry-http`'s router on
//! `registry-storage`'s store.
//!
//! Failures are reported as one line on stderr and a non-zero exit code:
//! 2 for a command-line error (by clap), 1 for anything else at start-up.

mod access_log;
mod auth;
mod body_end;
#[cfg(test)]
mod captured_log;
mod cli;
mod config;
mod fsck;
mod gc;
mod http;
mod limits;
mod log_writer;
mod logging;
mod metrics;
mod mirror;
mod notify;
mod offline;
mod otlp;
mod peers;
mod probe;
mod redirect;
mod request_id;
mod run;
mod shutdown;
mod tls;

use std::process::ExitCode;

use cli::{Command, ServeArgs};
use config::{Config, Layer, Settings};

/// The version of this build.
const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Parse the command line and run it.
pub fn main() -> ExitCode {
    let cli = cli::parse();
    let result = match cli.command {
        Command::Version => {
            println!("registry {VERSION}");
            Ok(())
        }
        Command::Serve(args) => serve(&args),
        Command::Fsck(args) => fsck::run(&args),
        Command::Gc(args) => gc::run(&args),
        Command::Probe(args) => probe::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("registry: error: {message}");
            ExitCode::FAILURE
        }
    }
}

/// `registry serve`: resolve the configuration, set up logging (and trace
/// export), run the server until a signal stops it, flush the traces.
fn serve(args: &ServeArgs) -> Result<(), String> {
    let file = match &args.config {
        Some(path) => Settings::from_file(path).map_err(|e| e.to_string())?,
        None => Settings::default(),
    };
    let config = Config::resolve(args.settings.clone().or(file));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .on_thread_park(log_writer::on_park)
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    let traces = otlp::start(&config.otlp, runtime.handle())?;
    logging::init(
        &config.log_level,
        config.log_format,
        traces.as_ref().map(otlp::Exporter::layer),
    )?;
    let result = runtime.block_on(run::run(&config));
    // The last spans are sent on the runtime, so before it stops.
    if let Some(traces) = traces {
        traces.shutdown();
    }
    // Requests still running after the shutdown timeout are cancelled here;
    // blocking storage calls get a last moment to return.
    runtime.shutdown_timeout(run::RUNTIME_SHUTDOWN_TIMEOUT);
    log_writer::flush_all();
    result
}
