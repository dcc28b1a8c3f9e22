//! The reference server's transport: `registry_http::server::Server` with
//! the configured limits and TLS, and the server's policy as its request
//! hook: the per-client [`limits`](super::limits), the built-in token
//! issuer's `/token`, the access log and the [`metrics`](super::metrics).

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use http::{Method, Response};
use registry_http::server::{Acceptor, OnRequest, RequestInfo, Server};
use registry_http::{Body, Router, TokenIssuer};
use tokio::net::{TcpListener, TcpStream};

use super::access_log::{self, LoggedBody};
use super::auth::TOKEN_PATH;
use super::config::Config;
use super::limits::{Limits, UploadPermit};
use super::metrics::{self, Meter, MeteredBody};
use super::tls::{Tls, TlsSetting};

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

/// Serve `router` (and the token issuer, if any) on `listener` until
/// `stop` completes, then wait at most `grace` for the connections still
/// open to finish their requests. Those still open after that are
/// abandoned to the runtime, whose shutdown cancels them (which the store
/// guarantees leaves nothing half-written visible).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    issuer: Option<Arc<TokenIssuer>>,
    stop: impl Future<Output = ()>,
    grace: Duration,
    transport: Transport,
    metrics: Option<Arc<metrics::Endpoint>>,
) -> io::Result<()> {
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
    let limits = transport.limits.config();
    let server = Server::new(router)
        .grace(grace)
        .max_header_size(limits.max_header_size)
        .header_read_timeout(limits.header_read_timeout)
        .body_idle_timeout(limits.body_idle_timeout)
        .on_request(Policy {
            limits: transport.limits.clone(),
            issuer,
            metrics,
        });
    match &transport.tls {
        None => server.serve(listener, stop).await,
        Some(tls) => {
            server
                .tls(Reloading(tls.clone()))
                .serve(listener, stop)
                .await
        }
    }
}

/// TLS with the certificate in force when a connection is accepted.
struct Reloading(Arc<Tls>);

impl Acceptor for Reloading {
    type Io = tokio_rustls::server::TlsStream<TcpStream>;

    fn accept(
        &self,
        stream: TcpStream,
    ) -> impl Future<Output = io::Result<Self::Io>> + Send + 'static {
        // Taken now, so that a reload after this point concerns later
        // connections only.
        self.0.acceptor().accept(stream)
    }
}

/// The reference server's policy around the router.
struct Policy {
    limits: Arc<Limits>,
    issuer: Option<Arc<TokenIssuer>>,
    metrics: Option<Arc<metrics::Endpoint>>,
}

/// What a request holds until it is answered: its log line, its meter and
/// its permits.
type Held = (
    access_log::Request,
    Option<Meter>,
    Option<(
        Option<UploadPermit>,
        Option<tokio::sync::OwnedSemaphorePermit>,
    )>,
);

impl OnRequest for Policy {
    type State = Held;
    type Body = MeteredBody<LoggedBody<Body>>;

    async fn before(&self, request: &RequestInfo<'_>) -> (Held, Option<Response<Body>>) {
        let log = access_log::Request::start(request.parts);
        let meter = self.metrics.as_ref().map(|m| m.start(request.parts));
        if let Some(metrics) = &self.metrics
            && let Some(answer) = metrics.answer(request.parts).await
        {
            return ((log, meter, None), Some(answer));
        }
        let peer = request.peer;
        // Only writes are limited by kind: the others need not be parsed.
        let route = match request.parts.method {
            Method::POST | Method::PATCH | Method::PUT => request.route(),
            _ => None,
        };
        let admitted = match self.limits.admit(peer.ip(), route) {
            Ok(permit) => match self
                .limits
                .reserve_manifest(route, &request.parts.headers)
                .await
            {
                Ok(reserved) => Ok((permit, reserved)),
                Err(refusal) => Err(refusal),
            },
            Err(refusal) => Err(refusal),
        };
        let permits = match admitted {
            Ok(permits) => permits,
            Err(refusal) => {
                tracing::debug!(%peer, ?refusal, "request refused by a limit");
                return ((log, meter, None), Some(refusal.response()));
            }
        };
        let answer = match &self.issuer {
            Some(issuer) if request.parts.uri.path() == TOKEN_PATH => {
                Some(issuer.handle(request.parts).await)
            }
            _ => None,
        };
        ((log, meter, Some(permits)), answer)
    }

    fn after(&self, (log, meter, permits): Held, response: Response<Body>) -> Response<Self::Body> {
        drop(permits);
        let response = log.finish(response);
        match meter {
            Some(meter) => meter.finish(response),
            None => MeteredBody::unmetered(response),
        }
    }
}
