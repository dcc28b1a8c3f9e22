//! The reference server's transport: `registry_http::server::Server` with
//! the configured limits and TLS, and the server's policy as its request
//! hook: the health endpoints (before anything else, so never limited nor
//! authenticated), the request id, the [`metrics`](super::metrics), the
//! request's exported span ([`super::otlp`], when traces are exported), the
//! per-client [`limits`](super::limits), the built-in token issuer's
//! `/token`, the peer endpoint ([`super::peers`]), the access log, and the
//! notifications' events (recorded before
//! the response is sent, [`super::notify`]).

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use http::{Method, Response};
use registry_http::server::{Acceptor, OnRequest, RequestInfo, Server};
use registry_http::{Body, Health, Router, TokenIssuer};
use tokio::net::{TcpListener, TcpStream};

use super::access_log::{self, LoggedBody};
use super::auth::TOKEN_PATH;
use super::config::Config;
use super::limits::{Limits, UploadPermit};
use super::metrics::{self, Meter, MeteredBody};
use super::notify::{Notifier, Seen};
use super::otlp::{RequestEnd, RequestSpan, TracedBody};
use super::request_id::{self, RequestId};
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

/// What the server's hook serves beside the router.
pub struct Extras {
    /// The health endpoints, answered first.
    pub health: Health,
    /// The built-in token issuer's `/token`, if configured.
    pub issuer: Option<Arc<TokenIssuer>>,
    /// The webhook notifications, if configured.
    pub notifier: Option<Arc<Notifier>>,
    /// `/metrics` and the request metrics, if on.
    pub metrics: Option<Arc<metrics::Endpoint>>,
    /// The peer endpoint, with peers configured.
    pub peers: Option<super::peers::PeerEndpoint>,
    /// Whether traces are exported: each request then gets an exported
    /// span, made when it arrives and ended when its response body ends.
    pub traces: bool,
}

/// Serve `router` and `extras` on `listener` until
/// `stop` completes, then wait at
/// most `grace` for the connections still
/// open to finish their requests. Those still open after that are
/// abandoned to the runtime, whose shutdown cancels them (which the store
/// guarantees leaves nothing half-written visible).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    extras: Extras,
    stop: impl Future<Output = ()>,
    grace: Duration,
    transport: Transport,
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
            health: extras.health,
            limits: transport.limits.clone(),
            issuer: extras.issuer,
            notifier: extras.notifier,
            metrics: extras.metrics,
            peers: extras.peers,
            traces: extras.traces,
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
    health: Health,
    limits: Arc<Limits>,
    issuer: Option<Arc<TokenIssuer>>,
    notifier: Option<Arc<Notifier>>,
    metrics: Option<Arc<metrics::Endpoint>>,
    peers: Option<super::peers::PeerEndpoint>,
    traces: bool,
}

/// What a request holds until it is answered.
struct Held {
    log: access_log::Request,
    id: RequestId,
    meter: Option<Meter>,
    permits: Option<(
        Option<UploadPermit>,
        Option<tokio::sync::OwnedSemaphorePermit>,
    )>,
    /// What its notification needs, if it can cause one.
    seen: Option<Seen>,
    /// Its exported span, when traces are.
    span: Option<RequestSpan>,
}

impl OnRequest for Policy {
    type State = Held;
    type Body = MeteredBody<LoggedBody<TracedBody<Body>>>;

    async fn before(&self, request: &RequestInfo<'_>) -> (Held, Option<Response<Body>>) {
        let id = RequestId::of(&request.parts.headers);
        let log = access_log::Request::start(request.parts, id.as_str());
        let meter = self.metrics.as_ref().map(|m| m.start(request.parts));
        let span = self
            .traces
            .then(|| super::otlp::request_span(request.parts, id.as_str()))
            .flatten();
        let mut held = Held {
            log,
            id,
            meter,
            permits: None,
            seen: None,
            span,
        };
        if let Some(answer) = self.health.answer(request.parts) {
            return (held, Some(answer));
        }
        if let Some(metrics) = &self.metrics
            && let Some(answer) = metrics.answer(request.parts).await
        {
            return (held, Some(answer));
        }
        // Peers' requests: the secret, not a client's credentials, and no
        // per-client limits (a refused peer request only costs a store read).
        if let Some(peers) = &self.peers
            && let Some(answer) = peers.answer(request.parts).await
        {
            return (held, Some(answer));
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
        match admitted {
            Ok(permits) => held.permits = Some(permits),
            Err(refusal) => {
                tracing::debug!(%peer, ?refusal, "request refused by a limit");
                return (held, Some(refusal.response()));
            }
        }
        let answer = match &self.issuer {
            Some(issuer) if request.parts.uri.path() == TOKEN_PATH => {
                Some(issuer.handle(request.parts).await)
            }
            _ => None,
        };
        if let (Some(notifier), None) = (&self.notifier, &answer) {
            held.seen = notifier
                .seen(request)
                .map(|seen| seen.with_request_id(held.id.as_str()));
        }
        (held, answer)
    }

    async fn answered(&self, held: &mut Held, response: &mut Response<Body>) {
        if let (Some(notifier), Some(seen)) = (&self.notifier, held.seen.take()) {
            notifier.record(seen, response).await;
        }
    }

    fn after(&self, held: Held, mut response: Response<Body>) -> Response<Self::Body> {
        drop(held.permits);
        response
            .headers_mut()
            .insert(request_id::HEADER.clone(), held.id.header_value());
        let response = RequestEnd::wrap(held.span, response);
        let response = held.log.finish(response);
        match held.meter {
            Some(meter) => meter.finish(response),
            None => metrics::unmetered(response),
        }
    }

    fn span(&self, held: &Held) -> tracing::Span {
        match &held.span {
            Some(request) => request.span().clone(),
            None => tracing::info_span!("request", request_id = %held.id.as_str()),
        }
    }
}
