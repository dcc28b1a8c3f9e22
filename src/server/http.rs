//! The HTTP/1.1 accept loop: hyper connections around the router, over
//! plain TCP or TLS, each request checked against the per-client
//! [`limits`](super::limits) and wrapped for the access log, and a graceful
//! shutdown that stops accepting, lets requests in flight finish, and cuts
//! them off after a timeout.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use super::auth::Handler;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;

use super::access_log;
use super::config::Config;
use super::limits::{IdleTimeoutBody, Limits};
use super::tls::{Tls, TlsSetting};

/// How long to pause after a failed `accept` (e.g. out of file descriptors)
/// before trying again.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(500);

/// How connections are served: TLS or not, and the limits.
#[derive(Debug)]
pub struct Transport {
    limits: Arc<Limits>,
    tls: Option<Arc<Tls>>,
    reload: Option<tokio::task::JoinHandle<()>>,
}

impl Transport {
    /// The transport `config` asks for: loads the TLS files (if any) and
    /// installs the SIGHUP handler that reloads them. Needs a Tokio
    /// runtime. Errors are start-up errors, one line.
    pub fn new(config: &Config) -> Result<Transport, String> {
        config.limits.validate()?;
        let tls = match &config.tls {
            TlsSetting::Off => None,
            TlsSetting::On(files) => Some(Tls::load(files.clone())?),
            TlsSetting::Incomplete(why) => return Err(why.to_string()),
        };
        let reload = match &tls {
            Some(tls) => Some(tls.reload_on_sighup()?),
            None => None,
        };
        Ok(Transport {
            limits: Limits::new(config.limits.clone()),
            tls,
            reload,
        })
    }

    /// `https` or `http`.
    pub fn scheme(&self) -> &'static str {
        if self.tls.is_some() { "https" } else { "http" }
    }
}

impl Drop for Transport {
    fn drop(&mut self) {
        if let Some(reload) = self.reload.take() {
            reload.abort();
        }
    }
}

/// Serve `router` on `listener` until `stop` completes, then wait at most
/// `grace` for the connections still open to finish their requests. Those
/// still open after that are abandoned to the runtime, whose shutdown
/// cancels them (which the store guarantees leaves nothing half-written
/// visible).
///
/// This is `registry_http::server::serve` plus TLS, the limits, the access
/// log and a configurable grace period.
pub async fn serve(
    listener: TcpListener,
    router: Handler,
    stop: impl Future<Output = ()>,
    grace: Duration,
    transport: Transport,
) {
    if transport.tls.is_none()
        && let Ok(addr) = listener.local_addr()
        && !addr.ip().is_loopback()
    {
        tracing::warn!(
            %addr,
            "serving plain HTTP on a non-loopback address: credentials and content travel \
             unencrypted; set --tls-cert and --tls-key unless a TLS proxy is in front"
        );
    }
    let limits = &transport.limits;
    let connections = GracefulShutdown::new();
    let mut builder = http1::Builder::new();
    builder
        .keep_alive(true)
        .timer(TokioTimer::new())
        .header_read_timeout(limits.config().header_read_timeout)
        .max_header_size(limits.config().max_header_size);
    tokio::pin!(stop);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) if is_connection_error(&error) => continue,
                Err(error) => {
                    tracing::error!(%error, "accepting connections failed; retrying");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
            () = &mut stop => break,
        };
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(%error, "setting TCP_NODELAY");
        }
        let connection = Connection {
            builder: builder.clone(),
            router: router.clone(),
            limits: limits.clone(),
            peer,
            watcher: connections.watcher(),
        };
        // The acceptor is taken now, so that a reload after this point
        // concerns later connections only.
        let acceptor = transport.tls.as_ref().map(|tls| tls.acceptor());
        tokio::spawn(async move {
            match acceptor {
                None => connection.serve(stream).await,
                Some(acceptor) => {
                    let timeout = connection.limits.config().header_read_timeout;
                    match tokio::time::timeout(timeout, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => connection.serve(tls).await,
                        Ok(Err(error)) => {
                            tracing::debug!(%peer, %error, "TLS handshake failed");
                        }
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                }
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(grace, connections.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("requests still in flight after {grace:?}: closing their connections");
    }
}

/// One accepted connection, before its I/O is known (plain or TLS).
struct Connection {
    builder: http1::Builder,
    router: Handler,
    limits: Arc<Limits>,
    peer: std::net::SocketAddr,
    watcher: Watcher,
}

impl Connection {
    async fn serve<I>(self, io: I)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let Connection {
            builder,
            router,
            limits,
            peer,
            watcher,
        } = self;
        let service = service_fn(move |request: http::Request<Incoming>| {
            let router = router.clone();
            let limits = limits.clone();
            async move {
                let log = access_log::Request::start(&request);
                let admitted = match limits.admit(peer.ip(), &request) {
                    Ok(permit) => match limits.reserve_manifest(&request).await {
                        Ok(reserved) => Ok((permit, reserved)),
                        Err(refusal) => Err(refusal),
                    },
                    Err(refusal) => Err(refusal),
                };
                let permits = match admitted {
                    Ok(permits) => permits,
                    Err(refusal) => {
                        tracing::debug!(%peer, ?refusal, "request refused by a limit");
                        return Ok::<_, Infallible>(log.finish(refusal.response()));
                    }
                };
                let idle = limits.body_idle_timeout();
                let request = request.map(|body| IdleTimeoutBody::new(body, idle));
                let response = router.handle(request).await;
                drop(permits);
                Ok(log.finish(response))
            }
        });
        let connection = watcher.watch(builder.serve_connection(TokioIo::new(io), service));
        if let Err(error) = connection.await {
            tracing::debug!(%peer, %error, "connection ended with an error");
        }
    }
}

/// Accept errors that concern only the connection being accepted.
fn is_connection_error(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
    )
}
