//! Per-connection and per-client limits of the reference server, applied
//! around the router:
//!
//! - a body idle timeout: a request body that sends nothing for
//!   [`Limits::body_idle_timeout`] fails, so that a stalled upload ends
//!   (nothing of it is committed) instead of holding its task and session
//!   open forever;
//! - at most [`LimitsConfig::max_uploads_per_client`] upload requests (`POST`
//!   of an upload, `PATCH` and `PUT` of a session) in flight per client IP
//!   address, beyond which `429 TOOMANYREQUESTS` with `Retry-After`;
//! - an optional per-client rate limit, a token bucket per IP address,
//!   answered `429 TOOMANYREQUESTS` with `Retry-After` when empty.
//!
//! Request header size and header read timeouts are hyper's (see
//! [`http`](super::http)); the manifest size limit is the router's.
//!
//! A client is its IP address as the server sees it: behind a reverse proxy
//! every client is the proxy, so set these limits on the proxy instead.

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::{NonZeroU32, NonZeroU64};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use http::{Method, Request, Response, StatusCode};
use http_body::{Body as HttpBody, Frame, SizeHint};
use registry_http::{Body, BoxError, Route, UploadMode};

/// Largest request head (request line and headers) accepted by default.
pub const DEFAULT_MAX_HEADER_SIZE: usize = 64 * 1024;
/// How long a client may take to send a request head, by default.
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a request body may send nothing, by default.
pub const DEFAULT_BODY_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Upload requests in flight per client IP address, by default.
pub const DEFAULT_MAX_UPLOADS_PER_CLIENT: usize = 32;
/// The smallest request head limit hyper can enforce.
pub const MIN_MAX_HEADER_SIZE: usize = 8192;

/// `Retry-After` sent when the upload limit is reached: uploads in flight
/// end at their own pace, so this is only a hint.
const UPLOAD_RETRY_AFTER_SECS: u64 = 1;
/// Buckets kept before full (idle) ones are forgotten.
const MAX_TRACKED_CLIENTS: usize = 10_000;

/// The transport limits, resolved from the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitsConfig {
    /// Largest request head in bytes; larger ones are answered 431 and the
    /// connection is closed (by hyper).
    pub max_header_size: usize,
    /// How long a client may take to send a request head; then the
    /// connection is closed without an answer (by hyper). Also bounds the
    /// TLS handshake.
    pub header_read_timeout: Duration,
    /// How long a request body may send nothing before the request fails.
    pub body_idle_timeout: Duration,
    /// Upload requests in flight per client IP address; 0: no limit.
    pub max_uploads_per_client: usize,
    /// Requests per second per client IP address, if limited.
    pub rate_limit: Option<RateLimit>,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_header_size: DEFAULT_MAX_HEADER_SIZE,
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            body_idle_timeout: DEFAULT_BODY_IDLE_TIMEOUT,
            max_uploads_per_client: DEFAULT_MAX_UPLOADS_PER_CLIENT,
            rate_limit: None,
        }
    }
}

impl LimitsConfig {
    /// The limits from the configured values, defaults for those not
    /// given. A rate limit's burst defaults to its rate (one second's
    /// worth); a burst without a rate limits nothing.
    pub fn resolve(
        max_header_size: Option<u64>,
        header_read_timeout: Option<NonZeroU64>,
        body_idle_timeout: Option<NonZeroU64>,
        max_uploads_per_client: Option<usize>,
        rate_limit: Option<NonZeroU32>,
        rate_limit_burst: Option<NonZeroU32>,
    ) -> LimitsConfig {
        let secs =
            |s: Option<NonZeroU64>, default| s.map_or(default, |s| Duration::from_secs(s.get()));
        LimitsConfig {
            max_header_size: max_header_size.map_or(DEFAULT_MAX_HEADER_SIZE, |n| {
                usize::try_from(n).unwrap_or(usize::MAX)
            }),
            header_read_timeout: secs(header_read_timeout, DEFAULT_HEADER_READ_TIMEOUT),
            body_idle_timeout: secs(body_idle_timeout, DEFAULT_BODY_IDLE_TIMEOUT),
            max_uploads_per_client: max_uploads_per_client
                .unwrap_or(DEFAULT_MAX_UPLOADS_PER_CLIENT),
            rate_limit: rate_limit.map(|per_second| RateLimit {
                per_second,
                burst: rate_limit_burst.unwrap_or(per_second),
            }),
        }
    }

    /// Check what cannot be checked value by value.
    pub fn validate(&self) -> Result<(), String> {
        if self.max_header_size < MIN_MAX_HEADER_SIZE {
            return Err(format!(
                "max_header_size {} is too small: at least {MIN_MAX_HEADER_SIZE} bytes (8K)",
                self.max_header_size
            ));
        }
        Ok(())
    }
}

/// A token bucket: `per_second` tokens are added each second, up to
/// `burst`; each request takes one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Sustained requests per second.
    pub per_second: NonZeroU32,
    /// Requests that may come at once after an idle period.
    pub burst: NonZeroU32,
}

/// The limits' shared state: one per server.
#[derive(Debug)]
pub struct Limits {
    config: LimitsConfig,
    uploads: Mutex<HashMap<IpAddr, usize>>,
    buckets: Mutex<HashMap<IpAddr, Bucket>>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Why a request is refused before it reaches the router.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The client's rate limit is used up.
    RateLimited {
        /// Seconds until a request would be accepted.
        retry_after: u64,
    },
    /// The client has the most upload requests in flight it may have.
    TooManyUploads {
        /// The limit.
        limit: usize,
    },
}

impl Limits {
    /// The state for `config`.
    pub fn new(config: LimitsConfig) -> Arc<Limits> {
        Arc::new(Limits {
            config,
            uploads: Mutex::new(HashMap::new()),
            buckets: Mutex::new(HashMap::new()),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &LimitsConfig {
        &self.config
    }

    /// How long a request body may send nothing.
    pub fn body_idle_timeout(&self) -> Duration {
        self.config.body_idle_timeout
    }

    /// Admit a request from `client`, or say why not. The returned permit
    /// (for uploads) must be held until the request is answered.
    pub fn admit<B>(
        self: &Arc<Self>,
        client: IpAddr,
        request: &Request<B>,
    ) -> Result<Option<UploadPermit>, Refusal> {
        self.take_token(client, Instant::now())?;
        if self.config.max_uploads_per_client == 0 || !is_upload(request.method(), request.uri()) {
            return Ok(None);
        }
        self.upload_permit(client).map(Some)
    }

    /// Take one token from `client`'s bucket, if rate limiting is on.
    fn take_token(&self, client: IpAddr, now: Instant) -> Result<(), Refusal> {
        let Some(limit) = self.config.rate_limit else {
            return Ok(());
        };
        let rate = f64::from(limit.per_second.get());
        let burst = f64::from(limit.burst.get());
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if buckets.len() >= MAX_TRACKED_CLIENTS && !buckets.contains_key(&client) {
            // Forget clients whose bucket has refilled: they are as if new.
            buckets.retain(|_, b| {
                b.tokens + now.saturating_duration_since(b.at).as_secs_f64() * rate < burst
            });
        }
        let bucket = buckets.entry(client).or_insert(Bucket {
            tokens: burst,
            at: now,
        });
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * rate).min(burst);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            let wait = (1.0 - bucket.tokens) / rate;
            Err(Refusal::RateLimited {
                retry_after: (wait.ceil() as u64).max(1),
            })
        }
    }

    fn upload_permit(self: &Arc<Self>, client: IpAddr) -> Result<UploadPermit, Refusal> {
        let limit = self.config.max_uploads_per_client;
        let mut uploads = self.uploads.lock().unwrap_or_else(|p| p.into_inner());
        let n = uploads.entry(client).or_insert(0);
        if *n >= limit {
            return Err(Refusal::TooManyUploads { limit });
        }
        *n += 1;
        Ok(UploadPermit {
            limits: self.clone(),
            client,
        })
    }

    /// Upload requests of `client` in flight (for tests).
    #[cfg(test)]
    fn uploads_of(&self, client: IpAddr) -> usize {
        self.uploads
            .lock()
            .unwrap()
            .get(&client)
            .copied()
            .unwrap_or(0)
    }
}

/// One upload request in flight; released when dropped.
#[derive(Debug)]
pub struct UploadPermit {
    limits: Arc<Limits>,
    client: IpAddr,
}

impl Drop for UploadPermit {
    fn drop(&mut self) {
        let mut uploads = self
            .limits
            .uploads
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(n) = uploads.get_mut(&self.client) {
            *n -= 1;
            if *n == 0 {
                uploads.remove(&self.client);
            }
        }
    }
}

/// Whether a request writes blob data: starts an upload (session,
/// single-request or mount), sends a chunk, or finishes a session.
fn is_upload(method: &Method, uri: &http::Uri) -> bool {
    if !matches!(*method, Method::POST | Method::PATCH | Method::PUT) {
        return false;
    }
    matches!(
        Route::parse(method, uri),
        Ok(Route::StartUpload {
            mode: UploadMode::Session | UploadMode::Monolithic(_) | UploadMode::Mount { .. },
            ..
        } | Route::PatchUpload { .. }
            | Route::FinishUpload { .. })
    )
}

impl Refusal {
    /// The answer: `429 TOOMANYREQUESTS` with `Retry-After`, and the spec's
    /// JSON error body, shaped as the router shapes its own.
    pub fn response(self) -> Response<Body> {
        let (message, retry_after) = match self {
            Refusal::RateLimited { retry_after } => (
                format!("request rate limit reached; retry in {retry_after} s"),
                retry_after,
            ),
            Refusal::TooManyUploads { limit } => (
                format!("at most {limit} uploads in flight per client"),
                UPLOAD_RETRY_AFTER_SECS,
            ),
        };
        let mut res = error_response(StatusCode::TOO_MANY_REQUESTS, "TOOMANYREQUESTS", &message);
        res.headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from(retry_after));
        res
    }
}

/// A response with the spec's error body,
/// `{"errors":[{"code":...,"message":...}]}`, and the headers the router
/// puts on every response.
///
/// registry-http has no public constructor for its error responses, so this
/// builds the same shape here.
pub fn error_response(status: StatusCode, code: &str, message: &str) -> Response<Body> {
    let body = serde_json::json!({ "errors": [{ "code": code, "message": message }] });
    let mut res = Response::new(Body::from(body.to_string()));
    *res.status_mut() = status;
    let headers = res.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(
        "docker-distribution-api-version",
        HeaderValue::from_static("registry/2.0"),
    );
    res
}

/// A request body that fails when it sends nothing for `idle`.
///
/// The clock runs only while the body is polled and has nothing ready:
/// time the router spends writing a chunk to the store does not count.
pub struct IdleTimeoutBody<B> {
    inner: B,
    idle: Duration,
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl<B> IdleTimeoutBody<B> {
    /// Wrap `inner`.
    pub fn new(inner: B, idle: Duration) -> Self {
        IdleTimeoutBody {
            inner,
            idle,
            timer: None,
        }
    }
}

/// The error of a body that stalled.
#[derive(Debug)]
pub struct BodyIdle(Duration);

impl std::fmt::Display for BodyIdle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "request body sent nothing for {:?}", self.0)
    }
}

impl std::error::Error for BodyIdle {}

impl<B> HttpBody for IdleTimeoutBody<B>
where
    B: HttpBody<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                this.timer = None;
                Poll::Ready(frame.map(|f| f.map_err(Into::into)))
            }
            Poll::Pending => {
                let idle = this.idle;
                let timer = this
                    .timer
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(idle)));
                ready!(timer.as_mut().poll(cx));
                this.timer = None;
                tracing::info!("request body idle for {idle:?}: failing the request");
                Poll::Ready(Some(Err(Box::new(BodyIdle(idle)))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(uploads: usize, rate: Option<(u32, u32)>) -> Arc<Limits> {
        Limits::new(LimitsConfig {
            max_uploads_per_client: uploads,
            rate_limit: rate.map(|(r, b)| RateLimit {
                per_second: NonZeroU32::new(r).unwrap(),
                burst: NonZeroU32::new(b).unwrap(),
            }),
            ..LimitsConfig::default()
        })
    }

    fn req(method: &str, path: &str) -> Request<()> {
        Request::builder()
            .method(method)
            .uri(path)
            .body(())
            .unwrap()
    }

    const DIGEST: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn upload_requests_are_recognised() {
        for (method, path, upload) in [
            ("POST", "/v2/a/blobs/uploads/".to_owned(), true),
            (
                "POST",
                format!("/v2/a/blobs/uploads/?digest={DIGEST}"),
                true,
            ),
            (
                "PATCH",
                "/v2/a/blobs/uploads/0123456789abcdef0123".to_owned(),
                true,
            ),
            (
                "PUT",
                format!("/v2/a/blobs/uploads/0123456789abcdef0123?digest={DIGEST}"),
                true,
            ),
            (
                "GET",
                "/v2/a/blobs/uploads/0123456789abcdef0123".to_owned(),
                false,
            ),
            (
                "DELETE",
                "/v2/a/blobs/uploads/0123456789abcdef0123".to_owned(),
                false,
            ),
            ("PUT", "/v2/blobs/uploads/manifests/t".to_owned(), false),
            ("PUT", "/v2/a/manifests/t".to_owned(), false),
            ("GET", "/v2/".to_owned(), false),
            ("POST", "/v2/../blobs/uploads/".to_owned(), false),
        ] {
            let r = req(method, &path);
            assert_eq!(is_upload(r.method(), r.uri()), upload, "{method} {path}");
        }
    }

    #[test]
    fn uploads_per_client_are_bounded_and_released() {
        let l = limits(2, None);
        let a: IpAddr = "127.0.0.1".parse().unwrap();
        let b: IpAddr = "127.0.0.2".parse().unwrap();
        let post = req("POST", "/v2/a/blobs/uploads/");
        let p1 = l.admit(a, &post).unwrap();
        let p2 = l.admit(a, &post).unwrap();
        assert!(p1.is_some() && p2.is_some());
        assert_eq!(
            l.admit(a, &post).unwrap_err(),
            Refusal::TooManyUploads { limit: 2 }
        );
        assert!(
            l.admit(b, &post).unwrap().is_some(),
            "other clients are not affected"
        );
        assert!(
            l.admit(a, &req("GET", "/v2/")).unwrap().is_none(),
            "reads pass"
        );
        drop(p1);
        assert_eq!(l.uploads_of(a), 1);
        let p3 = l.admit(a, &post).unwrap();
        drop((p2, p3));
        assert_eq!(l.uploads_of(a), 0);
        assert!(
            limits(0, None).admit(a, &post).unwrap().is_none(),
            "0: no limit"
        );
    }

    #[test]
    fn token_bucket_refills_at_the_rate() {
        let l = limits(0, Some((2, 3)));
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let t0 = Instant::now();
        for _ in 0..3 {
            l.take_token(a, t0).unwrap();
        }
        assert_eq!(
            l.take_token(a, t0).unwrap_err(),
            Refusal::RateLimited { retry_after: 1 }
        );
        let t1 = t0 + Duration::from_millis(500);
        l.take_token(a, t1).unwrap();
        assert!(l.take_token(a, t1).is_err());
        l.take_token("10.0.0.2".parse().unwrap(), t1).unwrap();
        let slow = limits(0, Some((1, 1)));
        slow.take_token(a, t0).unwrap();
        assert_eq!(
            slow.take_token(a, t0).unwrap_err(),
            Refusal::RateLimited { retry_after: 1 }
        );
    }

    #[tokio::test]
    async fn refusals_are_spec_errors_with_retry_after() {
        use http_body_util::BodyExt;
        let res = Refusal::RateLimited { retry_after: 3 }.response();
        assert_eq!(res.status(), 429);
        assert_eq!(res.headers()[RETRY_AFTER], "3");
        assert_eq!(res.headers()[CONTENT_TYPE], "application/json");
        let body = res.into_body().collect().await.unwrap().to_bytes();
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(json["errors"][0]["code"], "TOOMANYREQUESTS");
    }

    #[tokio::test]
    async fn idle_bodies_fail_and_flowing_ones_do_not() {
        use http_body_util::BodyExt;
        let (mut tx, rx) = futures::channel::mpsc::channel::<Result<Frame<Bytes>, BoxError>>(1);
        let body = IdleTimeoutBody::new(
            http_body_util::StreamBody::new(rx),
            Duration::from_millis(300),
        );
        let reader = tokio::spawn(async move {
            let mut body = std::pin::pin!(body);
            let mut got = Vec::new();
            while let Some(frame) = body.frame().await {
                match frame {
                    Ok(f) => got.push(f.into_data().unwrap()),
                    Err(e) => return (got, Some(e.to_string())),
                }
            }
            (got, None)
        });
        for _ in 0..3 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            use futures::SinkExt;
            tx.send(Ok(Frame::data(Bytes::from_static(b"x"))))
                .await
                .unwrap();
        }
        let (got, error) = reader.await.unwrap();
        assert_eq!(got.len(), 3);
        assert!(error.unwrap().contains("sent nothing"));
        drop(tx);
    }
}
