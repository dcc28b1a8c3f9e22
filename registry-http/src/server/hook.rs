//! The per-request hook: what an embedding service adds around the router
//! (access logs, rate limits, an extra endpoint) without a loop of its own.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::OnceLock;

use bytes::Bytes;
use http::Response;
use http::request::Parts;

use crate::body::{Body, BoxError};
use crate::route::Route;

/// What a hook sees of a request before the router does.
#[derive(Debug)]
pub struct RequestInfo<'a> {
    /// The client's address, as the socket sees it.
    pub peer: SocketAddr,
    /// Method, URI, headers and extensions.
    pub parts: &'a Parts,
    route: OnceLock<Option<Route>>,
}

impl<'a> RequestInfo<'a> {
    /// What a hook sees of the request `parts` from `peer`.
    pub fn new(peer: SocketAddr, parts: &'a Parts) -> Self {
        RequestInfo {
            peer,
            parts,
            route: OnceLock::new(),
        }
    }

    /// The route the router will dispatch to, parsed when first asked
    /// for; `None` when the request is not one of the API's (the router
    /// answers it with an error, unless the hook does).
    pub fn route(&self) -> Option<&Route> {
        self.route
            .get_or_init(|| Route::parse(&self.parts.method, &self.parts.uri).ok())
            .as_ref()
    }
}

/// Called around every request of a [`Server`](super::Server).
///
/// [`before`](Self::before) runs first and returns a state and, if it
/// answers the request itself (a refusal, an endpoint of its own), the
/// response; otherwise the router answers. [`after`](Self::after) then
/// gets the state and the response, whichever answered, and returns what
/// is sent: it may wrap the body (to log when it ends, say). Between the
/// two, [`answered`](Self::answered) may await something that must be
/// done before the client hears the answer (record an event durably, say)
/// and may change the response. The state is
/// dropped when `after` returns unless `after` keeps it, so a permit held
/// in it covers the router's work.
pub trait OnRequest: Send + Sync + 'static {
    /// What `before` hands to `after`.
    type State: Send + 'static;
    /// The body of the responses sent.
    type Body: http_body::Body<Data = Bytes, Error: Into<BoxError>> + Send + 'static;

    /// Look at a request before the router does; answer it by returning a
    /// response.
    fn before(
        &self,
        request: &RequestInfo<'_>,
    ) -> impl Future<Output = (Self::State, Option<Response<Body>>)> + Send;

    /// Once the response is known and before it is sent: await what must
    /// happen before the client hears it, and change it if need be. By
    /// default, nothing.
    fn answered(
        &self,
        state: &mut Self::State,
        response: &mut Response<Body>,
    ) -> impl Future<Output = ()> + Send {
        let _ = (state, response);
        std::future::ready(())
    }

    /// Turn the response into what is sent.
    fn after(&self, state: Self::State, response: Response<Body>) -> Response<Self::Body>;

    /// The tracing span the router's work on this request runs in (to tag
    /// its log events with a request id, say); none by default.
    fn span(&self, state: &Self::State) -> tracing::Span {
        let _ = state;
        tracing::Span::none()
    }
}

/// No hook: the router answers every request as is.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoHook;

impl OnRequest for NoHook {
    type State = ();
    type Body = Body;

    fn before(
        &self,
        _request: &RequestInfo<'_>,
    ) -> impl Future<Output = ((), Option<Response<Body>>)> + Send {
        std::future::ready(((), None))
    }

    fn after(&self, (): (), response: Response<Body>) -> Response<Body> {
        response
    }
}
