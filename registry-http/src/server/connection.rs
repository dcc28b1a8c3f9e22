//! One accepted connection: the handshake, then HTTP/1.1 with the hook
//! around the router.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::Request;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::Watcher;
use tokio::io::{AsyncRead, AsyncWrite};
use tracing::Instrument;

use super::hook::{OnRequest, RequestInfo};
use super::idle::IdleTimeoutBody;
use crate::router::Router;

/// An accepted connection, before its handshake.
pub(super) struct Connection<H> {
    pub http: http1::Builder,
    pub router: Router,
    pub hook: Arc<H>,
    pub body_idle_timeout: Duration,
    pub handshake_timeout: Duration,
    pub peer: SocketAddr,
    pub watcher: Watcher,
}

impl<H: OnRequest> Connection<H> {
    /// Run the connection in a task of its own: `handshake`, then HTTP.
    pub fn spawn<I>(self, handshake: impl Future<Output = io::Result<I>> + Send + 'static)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        tokio::spawn(async move {
            let peer = self.peer;
            match tokio::time::timeout(self.handshake_timeout, handshake).await {
                Ok(Ok(io)) => self.serve(io).await,
                Ok(Err(error)) => tracing::debug!(%peer, %error, "handshake failed"),
                Err(_) => tracing::debug!(%peer, "handshake timed out"),
            }
        });
    }

    async fn serve<I>(self, io: I)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let Connection {
            http,
            router,
            hook,
            body_idle_timeout,
            peer,
            watcher,
            ..
        } = self;
        let service = service_fn(move |request: Request<Incoming>| {
            let router = router.clone();
            let hook = hook.clone();
            async move {
                let (parts, body) = request.into_parts();
                let info = RequestInfo::new(peer, &parts);
                let (mut state, answer) = hook.before(&info).await;
                drop(info);
                let mut response = match answer {
                    Some(response) => response,
                    None => {
                        let body = IdleTimeoutBody::new(body, body_idle_timeout);
                        router
                            .handle(Request::from_parts(parts, body))
                            .instrument(hook.span(&state))
                            .await
                    }
                };
                hook.answered(&mut state, &mut response).await;
                Ok::<_, Infallible>(hook.after(state, response))
            }
        });
        let connection = watcher.watch(http.serve_connection(TokioIo::new(io), service));
        if let Err(error) = connection.await {
            tracing::debug!(%peer, %error, "connection ended with an error");
        }
    }
}
