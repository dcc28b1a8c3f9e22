//! The authorization hook: what a request needs ([`Access`]) and who decides
//! ([`Authorizer`]).
//!
//! The router asks the authorizer once per request, after routing and
//! before touching the request body or the store. A cross-repository mount
//! asks a second time, for pull access to the source repository; if that is
//! refused the mount silently becomes a normal upload, as the spec allows.
//!
//! Actions follow the Docker token scopes: reads need `pull`, uploads and
//! manifest pushes need `pull` and `push` (as distribution asks), deletes
//! need `delete`. `GET /v2/` needs no action on any resource, only whatever
//! authentication the authorizer demands, which is how clients discover
//! that they must log in. [`Access::scope`] renders the scope string a
//! bearer-token challenge names.

#[cfg(feature = "auth")]
mod basic;
#[cfg(feature = "auth")]
mod credential_cache;
#[cfg(feature = "auth")]
mod htpasswd;
#[cfg(feature = "auth")]
mod issuer;
#[cfg(feature = "auth")]
mod rules;
#[cfg(feature = "auth")]
mod token;

#[cfg(feature = "auth")]
pub use basic::HtpasswdAuthorizer;
#[cfg(feature = "auth")]
pub use htpasswd::{Busy, Htpasswd, MAX_PASSWORD_BYTES, REFUSED_TTL, VERIFIED_TTL, VerifyLimits};
#[cfg(feature = "auth")]
pub use issuer::{DEFAULT_TOKEN_TTL, TokenIssuer};
#[cfg(feature = "auth")]
pub use rules::{AccessRule, AccessRules, RepositoryPattern, Subjects, parse_actions};
#[cfg(feature = "auth")]
pub use token::{DEFAULT_LEEWAY_SECS, TokenAuthorizer, TokenKey, TokenKeys};

use std::fmt;
use std::ops::BitOr;

use async_trait::async_trait;
use http::HeaderValue;
use http::header::{HeaderMap, HeaderName, WWW_AUTHENTICATE};
use http::request::Parts;
use registry_core::{Error, ErrorKind, RepositoryName};

/// One thing a request may do to a repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Read manifests, blobs, tags and referrers.
    Pull,
    /// Upload blobs and push manifests.
    Push,
    /// Delete manifests, tags and blobs.
    Delete,
}

impl Action {
    /// The action's name in a token scope.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Pull => "pull",
            Action::Push => "push",
            Action::Delete => "delete",
        }
    }

    fn bit(self) -> u8 {
        match self {
            Action::Pull => 1,
            Action::Push => 2,
            Action::Delete => 4,
        }
    }
}

/// A set of [`Action`]s.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Actions(u8);

impl Actions {
    /// No action.
    pub const NONE: Actions = Actions(0);
    /// Pull only.
    pub const PULL: Actions = Actions(1);
    /// Push only.
    pub const PUSH: Actions = Actions(2);
    /// Delete only.
    pub const DELETE: Actions = Actions(4);

    /// Whether `action` is in the set.
    pub fn contains(self, action: Action) -> bool {
        self.0 & action.bit() != 0
    }

    /// Whether the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The actions in the set, in the order pull, push, delete.
    pub fn iter(self) -> impl Iterator<Item = Action> {
        [Action::Pull, Action::Push, Action::Delete]
            .into_iter()
            .filter(move |a| self.contains(*a))
    }
}

impl BitOr for Actions {
    type Output = Actions;
    fn bitor(self, rhs: Actions) -> Actions {
        Actions(self.0 | rhs.0)
    }
}

impl From<Action> for Actions {
    fn from(a: Action) -> Self {
        Actions(a.bit())
    }
}

impl fmt::Debug for Actions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

/// What a request needs to be allowed to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Access<'a> {
    /// The repository acted on; `None` for `GET /v2/` and the catalog.
    pub repository: Option<&'a RepositoryName>,
    /// What is done to it. Empty for `GET /v2/`.
    pub actions: Actions,
    /// Whether this is the catalog (`GET /v2/_catalog`).
    pub catalog: bool,
}

impl<'a> Access<'a> {
    /// `GET /v2/`: no resource; the authorizer only decides whether the
    /// caller must authenticate.
    pub fn base() -> Self {
        Access {
            repository: None,
            actions: Actions::NONE,
            catalog: false,
        }
    }

    /// Listing the catalog.
    pub fn catalog() -> Self {
        Access {
            repository: None,
            actions: Actions::PULL,
            catalog: true,
        }
    }

    /// Acting on one repository.
    pub fn repository(name: &'a RepositoryName, actions: Actions) -> Self {
        Access {
            repository: Some(name),
            actions,
            catalog: false,
        }
    }

    /// The Docker token scope (`repository:<name>:pull,push`,
    /// `registry:catalog:*`), or `None` for `GET /v2/`.
    pub fn scope(&self) -> Option<String> {
        if self.catalog {
            return Some("registry:catalog:*".to_owned());
        }
        let name = self.repository?;
        let mut scope = format!("repository:{name}:");
        for (i, action) in self.actions.iter().enumerate() {
            if i > 0 {
                scope.push(',');
            }
            scope.push_str(action.as_str());
        }
        Some(scope)
    }
}

/// Why an [`Authorizer`] refused a request: an error (usually of kind
/// [`ErrorKind::Unauthorized`] or [`ErrorKind::Denied`]) whose kind picks
/// the status, and headers to add to the response: the `WWW-Authenticate`
/// challenge of a 401, a `Retry-After` for a rate limit.
#[derive(Debug)]
pub struct Rejection {
    error: Error,
    headers: HeaderMap,
}

impl Rejection {
    /// Authentication is required: a 401 with this `WWW-Authenticate`
    /// challenge (e.g. `Basic realm="registry"`, or `Bearer realm=...,
    /// service=...,scope=...`). Add more challenges with
    /// [`with_header`](Self::with_header).
    pub fn unauthorized(challenge: HeaderValue) -> Self {
        let error = Error::new(ErrorKind::Unauthorized, ErrorKind::Unauthorized.as_str());
        Rejection::from(error).with_header(WWW_AUTHENTICATE, challenge)
    }

    /// The caller is known but may not do this: a 403.
    pub fn denied(message: impl Into<String>) -> Self {
        Rejection::from(Error::new(ErrorKind::Denied, message))
    }

    /// Add a header to the response (appended: several
    /// `WWW-Authenticate` challenges may be sent).
    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.append(name, value);
        self
    }

    /// The error the response reports.
    pub fn error(&self) -> &Error {
        &self.error
    }

    /// The first `WWW-Authenticate` challenge, if any.
    pub fn challenge(&self) -> Option<&HeaderValue> {
        self.headers.get(WWW_AUTHENTICATE)
    }

    /// The headers added to the response.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    pub(crate) fn into_parts(self) -> (Error, HeaderMap) {
        (self.error, self.headers)
    }
}

impl From<Error> for Rejection {
    /// Any registry error: its kind picks the status, as for every other
    /// error (e.g. [`ErrorKind::TooManyRequests`] for a rate limit).
    fn from(error: Error) -> Self {
        Rejection {
            error,
            headers: HeaderMap::new(),
        }
    }
}

/// Decides whether a request may proceed. Called once per routed request
/// (twice for a cross-repository mount), before the body is read.
///
/// An implementation typically authenticates from `request.headers`
/// (`Authorization`), then checks `access` against its rules. The ones
/// this crate ships refuse a request with more than one `Authorization`
/// header (401 with their challenge); one of your own should too, rather
/// than take the first.
///
/// # Plugging in an identity system
///
/// [`Authorizer`] is the extension point: a service embedding the router
/// implements it over its own users and permissions.
///
/// ```
/// use std::sync::Arc;
/// use http::HeaderValue;
/// use http::request::Parts;
/// use registry_http::{Access, Action, Authorizer, Rejection, RouterConfig, async_trait};
///
/// /// Anyone may pull; only requests with the right API key may do more.
/// struct ApiKeys;
///
/// #[async_trait]
/// impl Authorizer for ApiKeys {
///     async fn authorize(&self, req: &Parts, access: &Access<'_>) -> Result<(), Rejection> {
///         let key = req.headers.get("x-api-key").and_then(|v| v.to_str().ok());
///         let read_only = access.actions.iter().all(|a| a == Action::Pull);
///         match key {
///             Some("let-me-in") => Ok(()),
///             Some(_) => Err(Rejection::denied("unknown API key")),
///             None if read_only => Ok(()),
///             None => Err(Rejection::unauthorized(HeaderValue::from_static(
///                 "Basic realm=\"registry\"",
///             ))),
///         }
///     }
/// }
///
/// let config = RouterConfig::default().with_authorizer(Arc::new(ApiKeys));
/// # let _ = config;
/// ```
///
/// With the `auth` feature this crate ships three: `HtpasswdAuthorizer`
/// (HTTP basic against a bcrypt htpasswd file, access from
/// `AccessRules`), `TokenAuthorizer` (Docker token authentication: JWTs
/// signed RS256 or ES256 by a trusted issuer), and the built-in token
/// service `TokenIssuer` that the reference server runs at `/token`.
#[async_trait]
pub trait Authorizer: Send + Sync {
    /// `Ok` to let the request through, or the [`Rejection`] to answer.
    async fn authorize(&self, request: &Parts, access: &Access<'_>) -> Result<(), Rejection>;
}

/// The request's `Authorization` header: `Ok(None)` without one, `Err`
/// when it has several. Which of several a reader would take differs
/// between readers (`HeaderMap::get` takes the first, a proxy may keep the
/// last), so a request with more than one is refused rather than guessed
/// at.
#[cfg(feature = "auth")]
pub(crate) fn authorization(parts: &Parts) -> Result<Option<&HeaderValue>, ()> {
    let mut values = parts.headers.get_all(http::header::AUTHORIZATION).iter();
    match (values.next(), values.next()) {
        (None, _) => Ok(None),
        (Some(value), None) => Ok(Some(value)),
        (Some(_), Some(_)) => Err(()),
    }
}

/// An [`Authorizer`] that lets everything through: the default.
#[derive(Debug, Clone, Copy, Default)]
pub struct AllowAll;

#[async_trait]
impl Authorizer for AllowAll {
    async fn authorize(&self, _: &Parts, _: &Access<'_>) -> Result<(), Rejection> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes() {
        let name = RepositoryName::parse("library/alpine").unwrap();
        let push = Access::repository(&name, Actions::PULL | Actions::PUSH);
        assert_eq!(push.scope().unwrap(), "repository:library/alpine:pull,push");
        let del = Access::repository(&name, Actions::DELETE);
        assert_eq!(del.scope().unwrap(), "repository:library/alpine:delete");
        assert_eq!(Access::catalog().scope().unwrap(), "registry:catalog:*");
        assert_eq!(Access::base().scope(), None);
    }

    #[test]
    fn action_sets() {
        let s = Actions::PULL | Actions::DELETE;
        assert!(s.contains(Action::Pull) && s.contains(Action::Delete));
        assert!(!s.contains(Action::Push));
        assert_eq!(s.iter().collect::<Vec<_>>(), [Action::Pull, Action::Delete]);
        assert!(Actions::NONE.is_empty());
        assert_eq!(Actions::from(Action::Push), Actions::PUSH);
        assert_eq!(format!("{s:?}"), "{Pull, Delete}");
    }

    #[test]
    fn rejections() {
        let r = Rejection::unauthorized(HeaderValue::from_static("Basic realm=\"r\""));
        assert_eq!(r.error().kind(), ErrorKind::Unauthorized);
        assert_eq!(r.challenge().unwrap(), "Basic realm=\"r\"");
        let r = r.with_header(
            WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"x\""),
        );
        assert_eq!(r.headers().get_all(WWW_AUTHENTICATE).iter().count(), 2);
        let r = Rejection::denied("no");
        assert_eq!(r.error().kind(), ErrorKind::Denied);
        assert!(r.challenge().is_none());
        let r = Rejection::from(Error::new(ErrorKind::TooManyRequests, "slow down"))
            .with_header(http::header::RETRY_AFTER, HeaderValue::from_static("5"));
        assert_eq!(r.headers()[http::header::RETRY_AFTER], "5");
    }

    fn _assert_object_safe_send_sync(a: &dyn Authorizer) -> &(dyn Authorizer + Send + Sync) {
        a
    }
}
