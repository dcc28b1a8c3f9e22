//! `--metrics-listen`: `/metrics` on a listener of its own, served by the
//! same hyper server as the registry, with a hook that answers every
//! request itself.

use std::sync::Arc;

use registry_http::Router;
use registry_http::server::Server;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use super::{Endpoint, Standalone};
use crate::server::config::ListenAddr;

/// Bind `addr` and serve the metrics there until the task is aborted
/// (scrapes are idempotent: one cut off by the shutdown is retried by the
/// next). `router` is never reached: the hook answers every request.
pub async fn serve_own(
    addr: &ListenAddr,
    endpoint: Arc<Endpoint>,
    router: Router,
) -> Result<JoinHandle<()>, String> {
    let listener = TcpListener::bind(addr.as_str()).await.map_err(|e| {
        format!(
            "cannot listen on {addr} for metrics: {e}",
            addr = addr.as_str()
        )
    })?;
    let bound = listener
        .local_addr()
        .map_err(|e| format!("cannot read the bound address of {}: {e}", addr.as_str()))?;
    tracing::info!(listen = %addr.as_str(), "metrics on http://{bound}{}", super::METRICS_PATH);
    let server = Server::new(router).on_request(Standalone(endpoint));
    Ok(tokio::spawn(async move {
        if let Err(e) = server.serve(listener, std::future::pending()).await {
            tracing::warn!(error = %e, "the metrics listener stopped");
        }
    }))
}
