//! A ready-made hyper 1 server for the [`Router`] (feature `hyper`):
//! HTTP/1.1 with keep-alive, one tokio task per connection, the transport
//! limits a registry on an open port needs, and graceful shutdown.
//!
//! [`Server`] is the builder; its defaults are those of the reference
//! server `registry serve`:
//!
//! | setting | default |
//! | --- | --- |
//! | [`Server::grace`] | [`SHUTDOWN_GRACE`], 30 s |
//! | [`Server::max_header_size`] | [`DEFAULT_MAX_HEADER_SIZE`], 64 KiB (431 beyond) |
//! | [`Server::header_read_timeout`] | [`DEFAULT_HEADER_READ_TIMEOUT`], 30 s (also bounds a TLS handshake) |
//! | [`Server::body_idle_timeout`] | [`DEFAULT_BODY_IDLE_TIMEOUT`], 60 s: a request body that sends nothing that long fails, so a stalled upload cannot hold its task |
//! | [`Server::tls`] | none: plain TCP; any [`Acceptor`] (rustls, native-tls) |
//! | [`Server::on_request`] | none; an [`OnRequest`] hook sees each request and its parsed [`Route`](crate::Route) before the router, and may answer it or wrap the response |
//!
//! [`serve`] is `Server::new(router).serve(listener, shutdown)`; use
//! [`service`] to plug the bare router into a hyper connection loop of
//! your own (without these limits).

mod accept;
mod connection;
mod hook;
mod idle;

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use http::{Request, Response};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::TokioTimer;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;

use crate::body::Body;
use crate::router::Router;

pub use accept::{Acceptor, PlainTcp};
pub use hook::{NoHook, OnRequest, RequestInfo};
pub use idle::{BodyIdle, IdleTimeoutBody};

/// How long in-flight requests may run on after shutdown is asked for, by
/// default.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);
/// Largest request head (request line and headers) accepted by default.
pub const DEFAULT_MAX_HEADER_SIZE: usize = 64 * 1024;
/// The smallest request head limit hyper can enforce.
pub const MIN_MAX_HEADER_SIZE: usize = 8192;
/// How long a client may take to send a request head, by default.
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a request body may send nothing, by default.
pub const DEFAULT_BODY_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// How long to pause after a failed `accept` (e.g. out of file descriptors)
/// before trying again.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(500);

/// Serve `router` on `listener` until `shutdown` completes, with the
/// [`Server`] defaults: `Server::new(router).serve(listener, shutdown)`.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    Server::new(router).serve(listener, shutdown).await
}

/// A hyper server around a [`Router`], configured by its builder methods
/// (defaults in the [module documentation](self)).
///
/// ```no_run
/// # async fn run(router: registry_http::Router) -> std::io::Result<()> {
/// use std::time::Duration;
/// use registry_http::server::Server;
///
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:5000").await?;
/// Server::new(router)
///     .grace(Duration::from_secs(10))
///     .body_idle_timeout(Duration::from_secs(30))
///     .serve(listener, std::future::pending())
///     .await
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Server<A = PlainTcp, H = NoHook> {
    router: Router,
    grace: Duration,
    max_header_size: usize,
    header_read_timeout: Duration,
    body_idle_timeout: Duration,
    acceptor: Arc<A>,
    hook: Arc<H>,
}

impl Server {
    /// A server for `router`, with the defaults.
    pub fn new(router: Router) -> Self {
        Server {
            router,
            grace: SHUTDOWN_GRACE,
            max_header_size: DEFAULT_MAX_HEADER_SIZE,
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            body_idle_timeout: DEFAULT_BODY_IDLE_TIMEOUT,
            acceptor: Arc::new(PlainTcp),
            hook: Arc::new(NoHook),
        }
    }
}

impl<A: Acceptor, H: OnRequest> Server<A, H> {
    /// How long requests in flight may run on once shutdown is asked for;
    /// then [`serve`](Self::serve) returns and what still runs is
    /// abandoned to the runtime.
    pub fn grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    /// Largest request head (request line and headers) in bytes; a larger
    /// one is answered 431 and its connection closed. At least
    /// [`MIN_MAX_HEADER_SIZE`], or `serve` fails with `InvalidInput`.
    pub fn max_header_size(mut self, bytes: usize) -> Self {
        self.max_header_size = bytes;
        self
    }

    /// How long a client may take to send a request head (and to finish a
    /// TLS handshake) before its connection is closed without an answer.
    pub fn header_read_timeout(mut self, timeout: Duration) -> Self {
        self.header_read_timeout = timeout;
        self
    }

    /// How long a request body may send nothing before the request fails
    /// (an upload is then not committed). The clock runs only while the
    /// router waits for the client, not while it writes to the store.
    pub fn body_idle_timeout(mut self, timeout: Duration) -> Self {
        self.body_idle_timeout = timeout;
        self
    }

    /// Serve connections through `acceptor`, e.g. a TLS handshake.
    pub fn tls<A2: Acceptor>(self, acceptor: A2) -> Server<A2, H> {
        let hook = self.hook.clone();
        self.with(Arc::new(acceptor), hook)
    }

    /// Call `hook` around every request (see [`OnRequest`]).
    pub fn on_request<H2: OnRequest>(self, hook: H2) -> Server<A, H2> {
        let acceptor = self.acceptor.clone();
        self.with(acceptor, Arc::new(hook))
    }

    /// These settings with another acceptor and hook.
    fn with<A2, H2>(self, acceptor: Arc<A2>, hook: Arc<H2>) -> Server<A2, H2> {
        Server {
            router: self.router,
            grace: self.grace,
            max_header_size: self.max_header_size,
            header_read_timeout: self.header_read_timeout,
            body_idle_timeout: self.body_idle_timeout,
            acceptor,
            hook,
        }
    }

    /// Serve on `listener` until `shutdown` completes.
    ///
    /// Each connection runs in its own tokio task. When `shutdown`
    /// completes, the listener is closed, idle connections are closed, and
    /// requests in flight get up to the [grace period](Self::grace) to
    /// finish; then this returns.
    ///
    /// Accept errors never end the loop, as in axum and hyper's examples:
    /// an error about one connection is skipped, any other (out of file
    /// descriptors, say) is logged and retried after a pause. The only
    /// error is a configuration hyper cannot enforce, reported before
    /// anything is served.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()>,
    ) -> io::Result<()> {
        if self.max_header_size < MIN_MAX_HEADER_SIZE {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "max_header_size {} is too small: at least {MIN_MAX_HEADER_SIZE} bytes",
                    self.max_header_size
                ),
            ));
        }
        let connections = GracefulShutdown::new();
        let mut http = http1::Builder::new();
        http.keep_alive(true)
            .timer(TokioTimer::new())
            .header_read_timeout(self.header_read_timeout)
            .max_header_size(self.max_header_size);
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            let (stream, peer) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(e) if is_connection_error(&e) => continue,
                    Err(e) => {
                        tracing::error!(error = %e, "accepting connections failed; retrying");
                        tokio::time::sleep(ACCEPT_BACKOFF).await;
                        continue;
                    }
                },
                () = &mut shutdown => break,
            };
            if let Err(e) = stream.set_nodelay(true) {
                tracing::debug!(error = %e, "setting TCP_NODELAY");
            }
            connection::Connection {
                http: http.clone(),
                router: self.router.clone(),
                hook: self.hook.clone(),
                body_idle_timeout: self.body_idle_timeout,
                handshake_timeout: self.header_read_timeout,
                peer,
                watcher: connections.watcher(),
            }
            .spawn(self.acceptor.accept(stream));
        }
        drop(listener);
        tracing::info!("listener closed");
        if tokio::time::timeout(self.grace, connections.shutdown())
            .await
            .is_err()
        {
            tracing::warn!(
                "requests still in flight after {:?}: closing their connections",
                self.grace
            );
        } else {
            tracing::debug!("all connections closed");
        }
        Ok(())
    }
}

/// The router as a hyper service, for a connection loop of your own.
pub fn service(
    router: Router,
) -> impl hyper::service::Service<
    Request<Incoming>,
    Response = Response<Body>,
    Error = Infallible,
    Future: Send + 'static,
> + Clone
+ Send
+ Sync
+ 'static {
    hyper::service::service_fn(move |req: Request<Incoming>| {
        let router = router.clone();
        async move { Ok::<_, Infallible>(router.handle(req).await) }
    })
}

/// Accept errors that concern only the connection being accepted.
fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
    )
}
