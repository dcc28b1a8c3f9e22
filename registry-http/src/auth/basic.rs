//! HTTP basic authentication against an htpasswd file of bcrypt entries
//! (as written by `htpasswd -B`), with access decided by [`AccessRules`].

use std::sync::Arc;

use async_trait::async_trait;
use base64::Engine as _;
use http::HeaderValue;
use http::header::RETRY_AFTER;
use http::request::Parts;
use registry_core::{Error, ErrorKind};

use super::htpasswd::{Busy, Htpasswd};
use super::rules::AccessRules;
use super::{Access, Authorizer, Rejection};

/// What an `Authorization: Basic` header says: `Some((user, password))`,
/// or `None` if there is no such header. `Err` for a malformed one, or for
/// more than one `Authorization` header.
pub(crate) fn basic_credentials(parts: &Parts) -> Result<Option<(String, String)>, ()> {
    let Some(value) = super::authorization(parts)? else {
        return Ok(None);
    };
    let value = value.to_str().map_err(|_| ())?;
    let (scheme, rest) = value.split_once(' ').ok_or(())?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(());
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(rest.trim())
        .map_err(|_| ())?;
    let decoded = String::from_utf8(decoded).map_err(|_| ())?;
    let (user, password) = decoded.split_once(':').ok_or(())?;
    Ok(Some((user.to_owned(), password.to_owned())))
}

/// HTTP basic authentication against an [`Htpasswd`] file, then
/// [`AccessRules`].
///
/// - Wrong, malformed or non-basic credentials, or more than one
///   `Authorization` header: 401 `UNAUTHORIZED` with
///   `WWW-Authenticate: Basic realm="<realm>"`, whatever anonymous callers
///   may do.
/// - No credentials: `GET /v2/` is 401 with the challenge (so clients know
///   to log in); other requests proceed as anonymous, and are 401 with the
///   challenge if the rules do not allow anonymous callers.
/// - A known user the rules do not allow: 403 `DENIED`.
#[derive(Debug, Clone)]
pub struct HtpasswdAuthorizer {
    users: Arc<Htpasswd>,
    rules: Arc<AccessRules>,
    challenge: HeaderValue,
}

impl HtpasswdAuthorizer {
    /// Users from `users`, access from `rules`, challenge realm
    /// `registry`.
    pub fn new(users: Arc<Htpasswd>, rules: Arc<AccessRules>) -> Self {
        HtpasswdAuthorizer {
            users,
            rules,
            challenge: HeaderValue::from_static("Basic realm=\"registry\""),
        }
    }

    /// Set the realm named in the challenge. Refused if it holds a `"`,
    /// `\` or a control character.
    pub fn with_realm(mut self, realm: &str) -> Result<Self, String> {
        self.challenge = HeaderValue::from_str(&format!("Basic realm=\"{}\"", quotable(realm)?))
            .map_err(|e| format!("invalid realm {realm:?}: {e}"))?;
        Ok(self)
    }

    /// Who sent the request: `Ok(Some(user))` for good credentials,
    /// `Ok(None)` for none (anonymous), or the rejection to answer: 401
    /// with the challenge for wrong or malformed credentials, 429 with
    /// `Retry-After` when the password could not be checked in time (see
    /// [`Htpasswd::verify`]).
    pub async fn authenticate(&self, parts: &Parts) -> Result<Option<String>, Rejection> {
        let Ok(credentials) = basic_credentials(parts) else {
            return Err(self.unauthorized());
        };
        let Some((user, password)) = credentials else {
            return Ok(None);
        };
        match self.users.verify(&user, &password).await {
            Ok(true) => Ok(Some(user)),
            Ok(false) => {
                tracing::info!(%user, "basic authentication failed");
                Err(self.unauthorized())
            }
            Err(Busy) => {
                tracing::warn!(%user, "basic authentication refused: password checks saturated");
                Err(busy())
            }
        }
    }

    fn unauthorized(&self) -> Rejection {
        Rejection::unauthorized(self.challenge.clone())
    }
}

/// Seconds a client is told to wait when password checks are saturated.
pub(crate) const BUSY_RETRY_AFTER_SECS: u64 = 1;

/// The rejection of a request whose password could not be checked in
/// time: 429 `TOOMANYREQUESTS` with `Retry-After`.
pub(crate) fn busy() -> Rejection {
    Rejection::from(Error::new(
        ErrorKind::TooManyRequests,
        "too many password checks in progress; retry shortly",
    ))
    .with_header(RETRY_AFTER, HeaderValue::from(BUSY_RETRY_AFTER_SECS))
}

/// `s` if it can go between double quotes in a header as is.
pub(crate) fn quotable(s: &str) -> Result<&str, String> {
    if s.chars().any(|c| c == '"' || c == '\\' || c.is_control()) {
        Err(format!(
            "{s:?} may not contain quotes, backslashes or control characters"
        ))
    } else {
        Ok(s)
    }
}

#[async_trait]
impl Authorizer for HtpasswdAuthorizer {
    async fn authorize(&self, parts: &Parts, access: &Access<'_>) -> Result<(), Rejection> {
        let user = self.authenticate(parts).await?;
        let is_base = access.repository.is_none() && !access.catalog;
        match user {
            None if is_base => Err(self.unauthorized()),
            None if self.rules.allows(None, access) => Ok(()),
            None => Err(self.unauthorized()),
            Some(user) if self.rules.allows(Some(&user), access) => Ok(()),
            Some(user) => Err(Rejection::denied(format!(
                "user {user:?} may not {}",
                access.scope().unwrap_or_default()
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use http::header::AUTHORIZATION;

    #[test]
    fn basic_headers() {
        let parts = |v: Option<&str>| {
            let mut b = http::Request::get("/v2/");
            if let Some(v) = v {
                b = b.header(AUTHORIZATION, v);
            }
            b.body(()).unwrap().into_parts().0
        };
        assert_eq!(basic_credentials(&parts(None)), Ok(None));
        assert_eq!(
            basic_credentials(&parts(Some("Basic YWxpY2U6czpl"))),
            Ok(Some(("alice".into(), "s:e".into())))
        );
        assert_eq!(
            basic_credentials(&parts(Some("basic YWxpY2U6"))),
            Ok(Some(("alice".into(), String::new())))
        );
        for bad in ["Bearer x", "Basic !!!", "Basic", "Basic YWxpY2U="] {
            assert_eq!(basic_credentials(&parts(Some(bad))), Err(()), "{bad}");
        }
        // Two headers, even two good ones, whichever comes first.
        let mut two = parts(Some("Basic YWxpY2U6czpl"));
        two.headers
            .append(AUTHORIZATION, HeaderValue::from_static("Basic Ym9iOng="));
        assert_eq!(basic_credentials(&two), Err(()));
        two.headers.remove(AUTHORIZATION);
        for _ in 0..2 {
            two.headers.append(
                AUTHORIZATION,
                HeaderValue::from_static("Basic YWxpY2U6czpl"),
            );
        }
        assert_eq!(basic_credentials(&two), Err(()));
    }
}
