//! One log line per request: method, path, status, bytes sent, latency and
//! the request id.
//!
//! The line is written when the response body has been sent, so that it can
//! count the bytes and time the whole exchange. [`LoggedBody`] wraps the
//! body, counts its data frames, and logs when it ends, fails or is dropped
//! (client gone, shutdown), whichever comes first. The lines are written
//! by the access log's own formatter ([`line`]).

mod line;

use std::time::Instant;

pub use line::AccessFirst;

use http::{Method, StatusCode};
use http_body::Body;

use super::body_end::{EndOfBody, Outcome, WatchedBody};

/// The target of access-log events, for filters such as
/// `info,registry::access=off`.
pub const TARGET: &str = "registry::access";

/// What is known of a request when its response starts.
#[derive(Debug)]
pub struct Request {
    method: Method,
    path: String,
    id: String,
    start: Instant,
}

impl Request {
    /// Start timing a request with id `id`. Only the path is kept, not the
    /// query.
    pub fn start(req: &http::request::Parts, id: &str) -> Request {
        Request {
            method: req.method.clone(),
            path: req.uri.path().to_owned(),
            id: id.to_owned(),
            start: Instant::now(),
        }
    }

    /// Wrap the response body so that the request is logged when it ends.
    pub fn finish<B: Body>(self, response: http::Response<B>) -> http::Response<LoggedBody<B>> {
        let status = response.status();
        let empty = self.method == Method::HEAD || response.body().is_end_stream();
        let line = Pending {
            request: self,
            status,
        };
        response.map(|inner| WatchedBody::new(inner, Some(line), empty))
    }
}

/// A log line waiting for its body to end.
#[derive(Debug)]
pub struct Pending {
    request: Request,
    status: StatusCode,
}

impl EndOfBody for Pending {
    fn ended(self, bytes: u64, outcome: Outcome) {
        let Pending { request, status } = self;
        // Milliseconds to the microsecond: a number in JSON too.
        let latency_ms = (request.start.elapsed().as_secs_f64() * 1e6).round() / 1e3;
        let (method, path, status) = (
            request.method.as_str(),
            request.path.as_str(),
            status.as_u16(),
        );
        let request_id = request.id.as_str();
        match outcome {
            Outcome::Complete => tracing::info!(
                target: TARGET, method, path, status, bytes, latency_ms, request_id,
                "request"
            ),
            Outcome::Failed => tracing::warn!(
                target: TARGET, method, path, status, bytes, latency_ms, request_id,
                "request: response body failed while sending"
            ),
            Outcome::Aborted => tracing::warn!(
                target: TARGET, method, path, status, bytes, latency_ms, request_id,
                "request: response not sent in full (client gone or shutdown)"
            ),
        }
    }
}

/// A response body that logs its request when it ends or is dropped.
pub type LoggedBody<B> = WatchedBody<B, Pending>;

#[cfg(test)]
mod tests {
    use std::pin::Pin;
    use std::task::{Context, Poll, Waker};

    use registry_http::Body as RegistryBody;

    use super::*;

    /// Run `f` with the access log's formatter, and return the lines it
    /// wrote.
    fn logs_of(f: impl FnOnce()) -> Vec<String> {
        line::lines_of(crate::server::config::LogFormat::Text, f)
    }

    fn respond(method: Method, status: StatusCode, body: RegistryBody) -> LoggedBody<RegistryBody> {
        let req = http::Request::builder()
            .method(method)
            .uri("/v2/a/blobs/x?secret=1")
            .body(())
            .unwrap();
        let res = http::Response::builder().status(status).body(body).unwrap();
        Request::start(&req.into_parts().0, "r-1")
            .finish(res)
            .into_body()
    }

    /// Poll a body to its end; return the bytes it yielded.
    fn drain(body: &mut LoggedBody<RegistryBody>) -> usize {
        let mut cx = Context::from_waker(Waker::noop());
        let mut n = 0;
        while let Poll::Ready(Some(frame)) = Pin::new(&mut *body).poll_frame(&mut cx) {
            n += frame.unwrap().into_data().map_or(0, |d| d.len());
        }
        n
    }

    #[test]
    fn logs_once_when_the_body_ends() {
        let logs = logs_of(|| {
            let mut body = respond(Method::GET, StatusCode::OK, RegistryBody::full("hello"));
            assert_eq!(body.size_hint().exact(), Some(5));
            assert_eq!(drain(&mut body), 5);
            drop(body);
        });
        assert_eq!(logs.len(), 1, "{logs:?}");
        let line = &logs[0];
        assert!(line.contains(" INFO registry::access: request"), "{line}");
        for field in [
            "method=GET",
            "path=/v2/a/blobs/x ",
            "status=200",
            "bytes=5",
            "latency_ms=",
            "request_id=r-1",
        ] {
            assert!(line.contains(field), "{field} in {line}");
        }
        assert!(!line.contains("secret"), "the query is not logged: {line}");
    }

    #[test]
    fn empty_responses_are_complete_without_being_polled() {
        let logs = logs_of(|| {
            drop(respond(Method::HEAD, StatusCode::OK, RegistryBody::empty()));
            drop(respond(
                Method::POST,
                StatusCode::ACCEPTED,
                RegistryBody::empty(),
            ));
        });
        assert_eq!(logs.len(), 2, "{logs:?}");
        assert!(
            logs.iter()
                .all(|l| l.contains(" INFO ") && l.contains("bytes=0")),
            "{logs:?}"
        );
    }

    #[test]
    fn a_body_dropped_before_its_end_is_a_warning() {
        let logs = logs_of(|| {
            drop(respond(
                Method::GET,
                StatusCode::OK,
                RegistryBody::full("never sent"),
            ));
        });
        assert_eq!(logs.len(), 1, "{logs:?}");
        assert!(
            logs[0].contains(" WARN ") && logs[0].contains("not sent in full"),
            "{logs:?}"
        );
        assert!(logs[0].contains("bytes=0"), "{logs:?}");
    }
}
