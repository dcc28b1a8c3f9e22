//! What can go wrong talking to an upstream, and how HTTP statuses and
//! client errors map onto it.

use std::time::{Duration, SystemTime};

use reqwest::StatusCode;
use reqwest::header::{HeaderMap, RETRY_AFTER};

/// A failed exchange with an upstream registry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UpstreamError {
    /// The upstream answered 404: it does not have the manifest or blob.
    #[error("not found upstream")]
    NotFound,
    /// The upstream answered 429.
    #[error("rate limited by the upstream{}", retry_after_suffix(.retry_after))]
    RateLimited {
        /// From the `Retry-After` header (seconds or an HTTP date), if any.
        retry_after: Option<Duration>,
    },
    /// The upstream refused access (401 or 403) after authentication was
    /// attempted, or asked for credentials that are not configured.
    #[error("access denied by the upstream (HTTP {status})")]
    Denied {
        /// The status of the last answer.
        status: u16,
    },
    /// The upstream (or its token endpoint) could not be reached, timed out
    /// or failed on its side (5xx).
    #[error("upstream unavailable: {0}")]
    Unavailable(String),
    /// The upstream broke the protocol (unexpected status, missing header,
    /// body too large, bad token response), or the request itself was
    /// malformed (bad URL, name or reference).
    #[error("invalid upstream exchange: {0}")]
    Invalid(String),
}

impl UpstreamError {
    /// Whether the upstream is failing (rate limited, unreachable, timing
    /// out, 5xx) rather than answering: a cached copy may be served instead.
    pub fn is_outage(&self) -> bool {
        matches!(
            self,
            UpstreamError::RateLimited { .. } | UpstreamError::Unavailable(_)
        )
    }
}

fn retry_after_suffix(retry_after: &Option<Duration>) -> String {
    match retry_after {
        Some(d) => format!(" (retry after {} s)", d.as_secs()),
        None => String::new(),
    }
}

/// The error for a non-success status that is not an authentication
/// challenge; `what` names the request in messages.
pub(crate) fn from_status(status: StatusCode, headers: &HeaderMap, what: &str) -> UpstreamError {
    match status.as_u16() {
        404 => UpstreamError::NotFound,
        429 => UpstreamError::RateLimited {
            retry_after: retry_after(headers),
        },
        401 | 403 => UpstreamError::Denied {
            status: status.as_u16(),
        },
        408 | 500..=599 => UpstreamError::Unavailable(format!("{what}: HTTP {status}")),
        _ => UpstreamError::Invalid(format!("{what}: unexpected HTTP {status}")),
    }
}

/// The error for a request that got no answer (connect error, reset,
/// malformed response).
pub(crate) fn from_reqwest(error: &reqwest::Error, what: &str) -> UpstreamError {
    if error.is_builder() {
        UpstreamError::Invalid(format!("{what}: {}", describe(error)))
    } else {
        UpstreamError::Unavailable(format!("{what}: {}", describe(error)))
    }
}

/// An error and its chain of sources on one line (reqwest's own message
/// leaves out the cause, e.g. "connection refused").
pub(crate) fn describe(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// `Retry-After` as a delay: delta-seconds or an HTTP date (a date in the
/// past is no delay). Unparsable values are ignored.
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let date = httpdate::parse_http_date(value).ok()?;
    Some(
        date.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn headers(retry: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, HeaderValue::from_str(retry).unwrap());
        h
    }

    #[test]
    fn retry_after_seconds_and_dates() {
        assert_eq!(retry_after(&headers("120")), Some(Duration::from_secs(120)));
        assert_eq!(
            retry_after(&headers("Wed, 21 Oct 2015 07:28:00 GMT")),
            Some(Duration::ZERO)
        );
        let later = SystemTime::now() + Duration::from_secs(3600);
        let d = retry_after(&headers(&httpdate::fmt_http_date(later))).unwrap();
        assert!(d > Duration::from_secs(3500) && d <= Duration::from_secs(3600));
        assert_eq!(retry_after(&headers("soon")), None);
        assert_eq!(retry_after(&HeaderMap::new()), None);
    }

    #[test]
    fn statuses() {
        let h = HeaderMap::new();
        assert!(matches!(
            from_status(StatusCode::NOT_FOUND, &h, "x"),
            UpstreamError::NotFound
        ));
        assert!(from_status(StatusCode::BAD_GATEWAY, &h, "x").is_outage());
        assert!(from_status(StatusCode::TOO_MANY_REQUESTS, &h, "x").is_outage());
        assert!(!from_status(StatusCode::FORBIDDEN, &h, "x").is_outage());
        assert!(matches!(
            from_status(StatusCode::BAD_REQUEST, &h, "x"),
            UpstreamError::Invalid(_)
        ));
    }
}
