//! One request to the upstream with the authentication dance: sent with
//! what is known to work, and on a 401 answered once, with Basic or with a
//! token fetched from the Bearer challenge's realm.

use reqwest::header::{ACCEPT, AUTHORIZATION, HeaderValue, WWW_AUTHENTICATE};
use reqwest::{Method, Response, StatusCode};
use tokio::time::Instant;

use super::Inner;
use super::auth::{Sent, TokenRequest, pick};
use super::challenge;
use super::error::{UpstreamError, from_reqwest, from_status};

/// A successful (2xx) answer and when its request was sent, for deadlines
/// that cover the body.
pub(crate) struct Answer {
    pub response: Response,
    pub sent_at: Instant,
}

impl Inner {
    /// `method url` for repository `name`, authenticated as needed; any
    /// non-2xx answer is an error.
    pub(crate) async fn exchange(
        &self,
        method: Method,
        url: &str,
        name: &str,
        accept: Option<&str>,
        what: &str,
    ) -> Result<Answer, UpstreamError> {
        let default_scope = format!("repository:{name}:pull");
        let sent = self.auth.initial(name, &default_scope).await;
        let (response, sent_at) = self.send(&method, url, accept, &sent, what).await?;
        if response.status() != StatusCode::UNAUTHORIZED {
            return checked(response, sent_at, what);
        }
        if !self.same_origin(response.url()) {
            // A redirect target's challenge: nothing of ours goes there.
            return Err(UpstreamError::Denied { status: 401 });
        }
        let challenges: Vec<_> = response
            .headers()
            .get_all(WWW_AUTHENTICATE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(|v| match challenge::parse(v) {
                Ok(c) => Some(c),
                Err(e) => {
                    tracing::debug!(upstream = %self.base, error = %e, "unparsable WWW-Authenticate");
                    None
                }
            })
            .flatten()
            .collect();
        let retry = match pick(&challenges) {
            Some(c) if c.scheme == "bearer" => {
                let realm = c.param("realm").ok_or_else(|| {
                    UpstreamError::Invalid(format!("{what}: Bearer challenge without a realm"))
                })?;
                let scope = c.param("scope").unwrap_or(&default_scope);
                self.auth.note_scope(name, scope, &default_scope);
                let request = TokenRequest {
                    realm,
                    service: c.param("service"),
                    scope,
                };
                let rejected = match &sent {
                    Sent::Bearer(token) => Some(token.as_str()),
                    _ => None,
                };
                let downgrade_ok = self.base.starts_with("http://");
                let token = self
                    .auth
                    .token(&self.client, request, rejected, self.timeout, downgrade_ok)
                    .await?;
                Sent::Bearer(token)
            }
            Some(_) => self
                .auth
                .basic(&sent)
                .ok_or(UpstreamError::Denied { status: 401 })?,
            None => return Err(UpstreamError::Denied { status: 401 }),
        };
        let (response, sent_at) = self.send(&method, url, accept, &retry, what).await?;
        checked(response, sent_at, what)
    }

    /// Send once, bounded by the timeout until the response headers.
    async fn send(
        &self,
        method: &Method,
        url: &str,
        accept: Option<&str>,
        sent: &Sent,
        what: &str,
    ) -> Result<(Response, Instant), UpstreamError> {
        let mut builder = self.client.request(method.clone(), url);
        if let Some(accept) = accept {
            builder = builder.header(ACCEPT, accept);
        }
        builder = match sent {
            Sent::Anonymous => builder,
            Sent::Basic => match self.auth.credentials() {
                Some(c) => builder.basic_auth(&c.username, Some(&c.password)),
                None => builder,
            },
            Sent::Bearer(token) => {
                let value = HeaderValue::from_str(&format!("Bearer {token}"))
                    .map_err(|_| UpstreamError::Invalid(format!("{what}: unusable token")))?;
                builder.header(AUTHORIZATION, value)
            }
        };
        let sent_at = Instant::now();
        match tokio::time::timeout(self.timeout, builder.send()).await {
            Err(_) => Err(UpstreamError::Unavailable(format!(
                "{what}: no answer within {:?}",
                self.timeout
            ))),
            Ok(Err(e)) => Err(from_reqwest(&e, what)),
            Ok(Ok(response)) => Ok((response, sent_at)),
        }
    }

    /// Whether `url` is on the upstream's own scheme, host and port.
    fn same_origin(&self, url: &reqwest::Url) -> bool {
        url.scheme() == self.origin.scheme()
            && url.host_str() == self.origin.host_str()
            && url.port_or_known_default() == self.origin.port_or_known_default()
    }
}

fn checked(response: Response, sent_at: Instant, what: &str) -> Result<Answer, UpstreamError> {
    if response.status().is_success() {
        Ok(Answer { response, sent_at })
    } else {
        Err(from_status(response.status(), response.headers(), what))
    }
}
