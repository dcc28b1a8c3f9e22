//! Per-connection and per-client limits of the reference server, applied
//! around the router:
//!
//! - at most [`LimitsConfig::max_uploads_per_client`] upload requests (`POST`
//!   of an upload, `PATCH` and `PUT` of a session, `PUT` of a manifest) in
//!   flight per client IP address, beyond which `429 TOOMANYREQUESTS` with
//!   `Retry-After`;
//! - at most [`LimitsConfig::manifest_budget`] bytes of manifest bodies
//!   being read and validated at once, over all clients: a manifest `PUT`
//!   reserves its `Content-Length` (the manifest size limit when it has
//!   none) before the router reads it, and waits up to
//!   [`LimitsConfig::manifest_budget_wait`] for room, beyond which `429
//!   TOOMANYREQUESTS` with `Retry-After`;
//! - an optional per-client rate limit, a token bucket per IP address,
//!   answered `429 TOOMANYREQUESTS` with `Retry-After` when empty.
//!
//! Request header size, header read and body idle timeouts are
//! `registry_http::server`'s (see [`http`](super::http)); this resolves
//! them from the configuration. The manifest size limit is the router's.
//!
//! A client is its IP address as the server sees it: behind a reverse proxy
//! every client is the proxy, so set these limits on the proxy instead.

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::{NonZeroU32, NonZeroU64};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http::header::{CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use http::{HeaderMap, Response, StatusCode};
use registry_http::server::{
    DEFAULT_BODY_IDLE_TIMEOUT, DEFAULT_HEADER_READ_TIMEOUT, DEFAULT_MAX_HEADER_SIZE,
    MIN_MAX_HEADER_SIZE,
};
use registry_http::{Body, Route, RouterConfig, UploadMode};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Upload requests in flight per client IP address, by default.
pub const DEFAULT_MAX_UPLOADS_PER_CLIENT: usize = 32;
/// The manifest budget is this many largest manifests.
pub const MANIFEST_BUDGET_MANIFESTS: usize = 16;
/// How long a manifest `PUT` waits for room in the manifest budget.
pub const DEFAULT_MANIFEST_BUDGET_WAIT: Duration = Duration::from_secs(1);
/// The manifest budget is counted in units of this many bytes.
const BUDGET_UNIT: usize = 1024;

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
    /// The largest manifest accepted (the router's limit): what a manifest
    /// `PUT` without a `Content-Length` reserves of the budget.
    pub manifest_max_size: usize,
    /// Bytes of manifest bodies being read and validated at once, over
    /// all clients: [`MANIFEST_BUDGET_MANIFESTS`] largest manifests.
    pub manifest_budget: usize,
    /// How long a manifest `PUT` waits for room in the budget.
    pub manifest_budget_wait: Duration,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_header_size: DEFAULT_MAX_HEADER_SIZE,
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            body_idle_timeout: DEFAULT_BODY_IDLE_TIMEOUT,
            max_uploads_per_client: DEFAULT_MAX_UPLOADS_PER_CLIENT,
            rate_limit: None,
            manifest_max_size: RouterConfig::DEFAULT_MANIFEST_MAX_SIZE,
            manifest_budget: RouterConfig::DEFAULT_MANIFEST_MAX_SIZE * MANIFEST_BUDGET_MANIFESTS,
            manifest_budget_wait: DEFAULT_MANIFEST_BUDGET_WAIT,
        }
    }
}

impl LimitsConfig {
    /// The limits from the configured values, defaults for those not
    /// given. A rate limit's burst defaults to its rate (one second's
    /// worth); a burst without a rate limits nothing. The manifest budget
    /// follows the manifest size limit.
    #[allow(clippy::too_many_arguments)]
    pub fn resolve(
        max_header_size: Option<u64>,
        header_read_timeout: Option<NonZeroU64>,
        body_idle_timeout: Option<NonZeroU64>,
        max_uploads_per_client: Option<usize>,
        rate_limit: Option<NonZeroU32>,
        rate_limit_burst: Option<NonZeroU32>,
        manifest_max_size: Option<std::num::NonZeroUsize>,
    ) -> LimitsConfig {
        let manifest_max_size =
            manifest_max_size.map_or(RouterConfig::DEFAULT_MANIFEST_MAX_SIZE, |n| n.get());
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
            manifest_max_size,
            manifest_budget: manifest_max_size.saturating_mul(MANIFEST_BUDGET_MANIFESTS),
            manifest_budget_wait: DEFAULT_MANIFEST_BUDGET_WAIT,
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
    /// The manifest budget, in units of [`BUDGET_UNIT`] bytes.
    manifest_budget: Arc<Semaphore>,
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
    /// The manifest budget had no room for this manifest in time.
    ManifestBudget,
}

impl Limits {
    /// The state for `config`.
    pub fn new(config: LimitsConfig) -> Arc<Limits> {
        let units = units(config.manifest_budget).min(Semaphore::MAX_PERMITS);
        Arc::new(Limits {
            config,
            uploads: Mutex::new(HashMap::new()),
            buckets: Mutex::new(HashMap::new()),
            manifest_budget: Arc::new(Semaphore::new(units)),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &LimitsConfig {
        &self.config
    }

    /// Admit a request from `client` for `route` (`None`: not an API
    /// request), or say why not. The returned permit (for uploads) must be
    /// held until the request is answered.
    pub fn admit(
        self: &Arc<Self>,
        client: IpAddr,
        route: Option<&Route>,
    ) -> Result<Option<UploadPermit>, Refusal> {
        self.take_token(client, Instant::now())?;
        let counted = !matches!(classify(route), Kind::Other);
        if self.config.max_uploads_per_client == 0 || !counted {
            return Ok(None);
        }
        self.upload_permit(client).map(Some)
    }

    /// For a manifest `PUT`, reserve its bytes in the manifest budget,
    /// waiting up to [`LimitsConfig::manifest_budget_wait`] for room. The
    /// returned permit must be held until the request is answered. Other
    /// requests, and a manifest whose `Content-Length` is over the size
    /// limit (the router refuses it unread), reserve nothing.
    pub async fn reserve_manifest(
        &self,
        route: Option<&Route>,
        headers: &HeaderMap,
    ) -> Result<Option<OwnedSemaphorePermit>, Refusal> {
        if !matches!(classify(route), Kind::ManifestPut) {
            return Ok(None);
        }
        let max = self.config.manifest_max_size;
        let declared = headers
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        let bytes = match declared {
            Some(n) if n > max as u64 => return Ok(None),
            Some(n) => n as usize,
            None => max,
        };
        let wanted = u32::try_from(units(bytes).max(1)).unwrap_or(u32::MAX);
        let budget = self.manifest_budget.clone();
        match tokio::time::timeout(
            self.config.manifest_budget_wait,
            budget.acquire_many_owned(wanted),
        )
        .await
        {
            Ok(Ok(permit)) => Ok(Some(permit)),
            Ok(Err(_)) | Err(_) => Err(Refusal::ManifestBudget),
        }
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

/// What a request is, as far as the limits care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Writes blob data: starts an upload (session, single-request or
    /// mount), sends a chunk, or finishes a session.
    Upload,
    /// Pushes a manifest.
    ManifestPut,
    /// Anything else.
    Other,
}

fn classify(route: Option<&Route>) -> Kind {
    match route {
        Some(
            Route::StartUpload {
                mode: UploadMode::Session | UploadMode::Monolithic(_) | UploadMode::Mount { .. },
                ..
            }
            | Route::PatchUpload { .. }
            | Route::FinishUpload { .. },
        ) => Kind::Upload,
        Some(Route::PutManifest { .. }) => Kind::ManifestPut,
        _ => Kind::Other,
    }
}

/// `bytes` in budget units, rounded up.
fn units(bytes: usize) -> usize {
    bytes.div_ceil(BUDGET_UNIT)
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
            Refusal::ManifestBudget => (
                "too many manifest bytes being validated; retry shortly".to_owned(),
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

#[cfg(test)]
mod tests;
