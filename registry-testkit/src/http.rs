//! The [`Transport`] over HTTP: a server at a base URL, through `ureq`.

use std::time::Duration;

use crate::client::{Body, Client, Transport};
use crate::reply::Reply;

/// An HTTP client that returns every status as a response (no error for
/// 4xx/5xx), follows no redirect, uses no proxy and adds no `Accept` header.
pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .proxy(None)
        .accept(ureq::config::AutoHeaderValue::None)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .new_agent()
}

/// A registry over HTTP at a base URL (`http://ADDR`, no trailing slash).
pub struct Http {
    agent: ureq::Agent,
    base: String,
}

impl Http {
    /// A transport to the server at `base`.
    pub fn new(base: impl Into<String>) -> Http {
        Http {
            agent: agent(),
            base: base.into(),
        }
    }

    /// An absolute URL for a path, or the URL itself if absolute.
    pub fn url(&self, path: &str) -> String {
        if path.starts_with("http://") || path.starts_with("https://") {
            path.to_owned()
        } else {
            format!("{}{path}", self.base)
        }
    }
}

impl Transport for Http {
    fn send(&self, request: http::Request<Body>) -> Reply {
        let (mut parts, body) = request.into_parts();
        let (method, target) = (parts.method.clone(), parts.uri.to_string());
        parts.uri = self.url(&target).parse().unwrap();
        let result = match body {
            Body::None => self.agent.run(http::Request::from_parts(parts, ())),
            Body::Full(bytes) => self.agent.run(http::Request::from_parts(parts, bytes)),
            Body::Streamed(pieces) => {
                let reader = std::io::Cursor::new(pieces.concat());
                let body = ureq::SendBody::from_owned_reader(reader);
                self.agent.run(http::Request::from_parts(parts, body))
            }
        };
        let mut resp = result.unwrap_or_else(|e| panic!("{method} {target}: {e}"));
        let body = if method == http::Method::HEAD {
            Vec::new()
        } else {
            (resp.body_mut().with_config().limit(64 << 20))
                .read_to_vec()
                .unwrap_or_else(|e| panic!("{method} {target}: reading the body: {e}"))
        };
        Reply {
            status: resp.status().as_u16(),
            headers: resp.headers().clone(),
            body,
        }
    }
}

impl Client<Http> {
    /// A client of the server at `server` (anything that gives a transport:
    /// a base URL, a test's server handle).
    pub fn new(server: impl Into<Http>) -> Client<Http> {
        Client::with(server.into())
    }

    /// An absolute URL for a path, or the URL itself if absolute.
    pub fn url(&self, path: &str) -> String {
        self.transport().url(path)
    }
}

impl From<&str> for Http {
    fn from(base: &str) -> Http {
        Http::new(base)
    }
}
impl From<String> for Http {
    fn from(base: String) -> Http {
        Http::new(base)
    }
}
