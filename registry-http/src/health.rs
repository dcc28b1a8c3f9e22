//! [`Health`]: the liveness, readiness and startup endpoints a load
//! balancer or Kubernetes probes, answered before the router (and so
//! before authentication).
//!
//! | path | answers |
//! | --- | --- |
//! | `/livez` | 200 while the process serves; never asks the store |
//! | `/readyz` | 200 when every readiness check passes and the server is not draining, else 503 with the failing checks, one per line |
//! | `/startupz` | 503 until every startup check has passed once, then 200 for good |
//! | `/debug/health` | distribution's form: 200 `{}`, or 503 with a JSON object of the failing checks (name: reason) |
//!
//! Only `GET` and `HEAD` are answered; other methods go on to the router.
//! Use it as the server's hook ([`Server::on_request`](crate::server::Server::on_request)),
//! or call [`Health::answer`] first thing in a hook of your own.
//!
//! ```
//! use registry_http::Health;
//!
//! let health = Health::new().readiness("storage", || Ok(()));
//! assert!(health.ready().is_ok());
//! health.set_draining();
//! assert_eq!(health.ready().unwrap_err()[0].0, "draining");
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use http::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderValue};
use http::request::Parts;
use http::{Method, Response, StatusCode};

use crate::body::Body;

/// Liveness: the process serves.
pub const LIVEZ_PATH: &str = "/livez";
/// Readiness: the process should get traffic.
pub const READYZ_PATH: &str = "/readyz";
/// Startup: the process has finished starting.
pub const STARTUPZ_PATH: &str = "/startupz";
/// Distribution's health endpoint.
pub const DEBUG_HEALTH_PATH: &str = "/debug/health";

/// A check: `Ok(())` when it passes, else why not (one line).
type Check = Box<dyn Fn() -> Result<(), String> + Send + Sync>;

/// The health endpoints and their checks. Cheap to clone; clones share
/// the draining flag.
#[derive(Clone, Default)]
pub struct Health {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    readiness: Vec<(String, Check)>,
    startup: Vec<(String, Check)>,
    draining: AtomicBool,
    started: AtomicBool,
}

impl fmt::Debug for Health {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names = |v: &[(String, Check)]| v.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
        f.debug_struct("Health")
            .field("readiness", &names(&self.inner.readiness))
            .field("startup", &names(&self.inner.startup))
            .field("draining", &self.is_draining())
            .finish()
    }
}

impl Health {
    /// No checks: live, ready and started.
    pub fn new() -> Self {
        Self::default()
    }

    /// Add a readiness check (also reported by `/debug/health`). Checks run
    /// on every probe request, so they must be cheap: read a state that a
    /// task of your own keeps up to date. Add checks before cloning.
    ///
    /// # Panics
    /// If the `Health` was cloned already.
    pub fn readiness(
        mut self,
        name: impl Into<String>,
        check: impl Fn() -> Result<(), String> + Send + Sync + 'static,
    ) -> Self {
        self.inner_mut()
            .readiness
            .push((name.into(), Box::new(check)));
        self
    }

    /// Add a startup check: `/startupz` answers 200 once all of them have
    /// passed at the same time, and from then on without asking again.
    ///
    /// # Panics
    /// If the `Health` was cloned already.
    pub fn startup(
        mut self,
        name: impl Into<String>,
        check: impl Fn() -> Result<(), String> + Send + Sync + 'static,
    ) -> Self {
        self.inner_mut()
            .startup
            .push((name.into(), Box::new(check)));
        self
    }

    fn inner_mut(&mut self) -> &mut Inner {
        Arc::get_mut(&mut self.inner).expect("checks are added before the Health is cloned")
    }

    /// Stop being ready for good: the server is shutting down. Call it
    /// first on SIGTERM, then keep serving for a while, so that load
    /// balancers stop sending before connections close.
    pub fn set_draining(&self) {
        self.inner.draining.store(true, Ordering::Release);
    }

    /// Whether [`set_draining`](Self::set_draining) was called.
    pub fn is_draining(&self) -> bool {
        self.inner.draining.load(Ordering::Acquire)
    }

    /// `Ok` when ready; else the failing checks (`draining` among them
    /// while the server drains), by name, with their reasons.
    pub fn ready(&self) -> Result<(), Vec<(String, String)>> {
        let mut failing = failures(&self.inner.readiness);
        if self.is_draining() {
            failing.push((
                "draining".to_owned(),
                "the server is shutting down".to_owned(),
            ));
        }
        if failing.is_empty() {
            Ok(())
        } else {
            Err(failing)
        }
    }

    /// `Ok` once started; else the startup checks that fail.
    pub fn started(&self) -> Result<(), Vec<(String, String)>> {
        if self.inner.started.load(Ordering::Acquire) {
            return Ok(());
        }
        let failing = failures(&self.inner.startup);
        if failing.is_empty() {
            self.inner.started.store(true, Ordering::Release);
            Ok(())
        } else {
            Err(failing)
        }
    }

    /// The answer to `request` if it is a `GET` or `HEAD` of one of the
    /// health paths; `None` for anything else.
    pub fn answer(&self, request: &Parts) -> Option<Response<Body>> {
        if request.method != Method::GET && request.method != Method::HEAD {
            return None;
        }
        let response = match request.uri.path() {
            LIVEZ_PATH => text(Ok(())),
            READYZ_PATH => text(self.ready()),
            STARTUPZ_PATH => text(self.started()),
            DEBUG_HEALTH_PATH => json(self.ready()),
            _ => return None,
        };
        Some(response)
    }
}

fn failures(checks: &[(String, Check)]) -> Vec<(String, String)> {
    checks
        .iter()
        .filter_map(|(name, check)| check().err().map(|why| (name.clone(), why)))
        .collect()
}

fn respond(ok: bool, content_type: &'static str, body: Vec<u8>) -> Response<Body> {
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let mut res = Response::new(Body::full(body));
    *res.status_mut() = status;
    let headers = res.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// `ok`, or the failing checks as `name: reason` lines.
fn text(outcome: Result<(), Vec<(String, String)>>) -> Response<Body> {
    match outcome {
        Ok(()) => respond(true, "text/plain; charset=utf-8", b"ok\n".to_vec()),
        Err(failing) => {
            let lines: String = failing
                .iter()
                .map(|(name, why)| format!("{name}: {why}\n"))
                .collect();
            respond(false, "text/plain; charset=utf-8", lines.into_bytes())
        }
    }
}

/// Distribution's `/debug/health`: `{}` or `{"name": "reason", ...}`.
fn json(outcome: Result<(), Vec<(String, String)>>) -> Response<Body> {
    let failing: BTreeMap<String, String> = outcome.err().unwrap_or_default().into_iter().collect();
    let body = serde_json::to_vec(&failing).expect("a map of strings serializes");
    respond(failing.is_empty(), "application/json", body)
}

#[cfg(feature = "hyper")]
impl crate::server::OnRequest for Health {
    type State = ();
    type Body = Body;

    async fn before(
        &self,
        request: &crate::server::RequestInfo<'_>,
    ) -> ((), Option<Response<Body>>) {
        ((), self.answer(request.parts))
    }

    fn after(&self, (): (), response: Response<Body>) -> Response<Body> {
        response
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicU32;

    use http_body_util::BodyExt;

    use super::*;

    fn get(path: &str) -> Parts {
        http::Request::get(path).body(()).unwrap().into_parts().0
    }

    async fn call(h: &Health, path: &str) -> (u16, String) {
        let res = h.answer(&get(path)).expect("answered");
        let status = res.status().as_u16();
        let body = res.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8(body.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn endpoints_follow_their_checks() {
        let down = Arc::new(AtomicBool::new(false));
        let flag = down.clone();
        let h = Health::new().readiness("storage", move || {
            if flag.load(Ordering::Relaxed) {
                Err("refused".into())
            } else {
                Ok(())
            }
        });
        assert_eq!(call(&h, "/livez").await, (200, "ok\n".into()));
        assert_eq!(call(&h, "/readyz").await, (200, "ok\n".into()));
        assert_eq!(call(&h, "/debug/health").await, (200, "{}".into()));
        down.store(true, Ordering::Relaxed);
        assert_eq!(call(&h, "/livez").await.0, 200, "liveness never asks");
        assert_eq!(
            call(&h, "/readyz").await,
            (503, "storage: refused\n".into())
        );
        assert_eq!(
            call(&h, "/debug/health").await,
            (503, r#"{"storage":"refused"}"#.into())
        );
        down.store(false, Ordering::Relaxed);
        h.set_draining();
        assert_eq!(call(&h, "/readyz").await.0, 503);
        assert!(call(&h, "/debug/health").await.1.contains("draining"));
        assert!(h.answer(&get("/v2/")).is_none());
        let post = http::Request::post("/readyz")
            .body(())
            .unwrap()
            .into_parts()
            .0;
        assert!(h.answer(&post).is_none(), "only GET and HEAD");
    }

    #[tokio::test]
    async fn startup_latches_once_passed() {
        let calls = Arc::new(AtomicU32::new(0));
        let seen = calls.clone();
        let h = Health::new().startup("storage", move || {
            if seen.fetch_add(1, Ordering::Relaxed) == 0 {
                Err("not yet".into())
            } else {
                Ok(())
            }
        });
        assert_eq!(
            call(&h, "/startupz").await,
            (503, "storage: not yet\n".into())
        );
        assert_eq!(call(&h, "/startupz").await.0, 200);
        assert_eq!(call(&h, "/startupz").await.0, 200);
        assert_eq!(calls.load(Ordering::Relaxed), 2, "not asked once started");
    }
}
