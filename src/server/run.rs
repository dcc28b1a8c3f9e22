//! Start-up and shutdown: open the storage, bind the listener, log where
//! the server is, serve until SIGINT or SIGTERM, then drain.

use std::sync::Arc;
use std::time::Duration;

use registry_core::manifest::ManifestLimits;
use registry_http::{Router, RouterConfig};
use registry_storage::OpendalStore;
use tokio::net::TcpListener;

use super::VERSION;
use super::config::Config;
use super::http;
use super::shutdown::Signals;

/// How long blocking storage calls get to return once the server has
/// stopped, before the process exits anyway.
pub const RUNTIME_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);

/// Run the server until a signal stops it. Errors are start-up errors, as
/// one line for stderr; a shutdown, even one that had to cut requests off
/// after the timeout, is a success.
pub async fn run(config: &Config) -> Result<(), String> {
    let router = router(config)?;
    let signals = Signals::install().map_err(|e| format!("cannot install signal handlers: {e}"))?;
    let listener = TcpListener::bind(config.listen.as_str())
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;
    let bound = listener
        .local_addr()
        .map_err(|e| format!("cannot read the bound address of {}: {e}", config.listen))?;
    tracing::info!(
        version = %VERSION,
        listen = %config.listen,
        storage = %config.storage,
        "registry {VERSION} listening on http://{bound}"
    );

    let grace = config.shutdown_timeout;
    let stop = async move {
        let signal = signals.recv().await;
        tracing::info!(
            signal,
            "shutting down: no new connections; waiting up to {grace:?} for requests in flight"
        );
    };
    http::serve(listener, router, stop, grace).await;
    tracing::info!("stopped");
    Ok(())
}

/// The router over the configured storage.
fn router(config: &Config) -> Result<Router, String> {
    let mut store = OpendalStore::from_url(config.storage.expose()).map_err(|e| {
        // The storage crate may quote the URL: show it masked.
        let message = e
            .to_string()
            .replace(config.storage.expose(), &config.storage.to_string());
        format!("cannot open storage {}: {message}", config.storage)
    })?;
    let mut router_config = RouterConfig::default();
    if let Some(max) = config.manifest_max_size {
        // Both check it: the router before reading a body, the store
        // whichever way a manifest reaches it.
        store = store.with_manifest_limits(ManifestLimits {
            max_size: max.get(),
        });
        router_config = router_config.with_manifest_max_size(max.get());
    }
    Ok(Router::with_config(Arc::new(store), router_config))
}
