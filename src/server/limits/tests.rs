//! The limits: what counts as an upload, the per-client bounds, the
//! manifest budget, the token bucket, the refusals.

use super::*;
use http::Request;

fn route<B>(r: &Request<B>) -> Option<Route> {
    Route::parse(r.method(), r.uri()).ok()
}

/// The limits asked about a whole request, as the server's hook asks.
trait ForRequest {
    fn admit_request<B>(
        self: &Arc<Self>,
        client: IpAddr,
        r: &Request<B>,
    ) -> Result<Option<UploadPermit>, Refusal>;
    async fn reserve_request<B>(
        &self,
        r: &Request<B>,
    ) -> Result<Option<OwnedSemaphorePermit>, Refusal>;
}

impl ForRequest for Limits {
    fn admit_request<B>(
        self: &Arc<Self>,
        client: IpAddr,
        r: &Request<B>,
    ) -> Result<Option<UploadPermit>, Refusal> {
        self.admit(client, route(r).as_ref())
    }
    async fn reserve_request<B>(
        &self,
        r: &Request<B>,
    ) -> Result<Option<OwnedSemaphorePermit>, Refusal> {
        self.reserve_manifest(route(r).as_ref(), r.headers()).await
    }
}

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
        ("GET", "/v2/".to_owned(), false),
        ("POST", "/v2/../blobs/uploads/".to_owned(), false),
        ("GET", "/v2/a/manifests/t".to_owned(), false),
        ("DELETE", "/v2/a/manifests/t".to_owned(), false),
    ] {
        let r = req(method, &path);
        let kind = classify(route(&r).as_ref());
        assert_eq!(kind == Kind::Upload, upload, "{method} {path}");
    }
    for path in [
        "/v2/a/manifests/t".to_owned(),
        format!("/v2/a/manifests/{DIGEST}"),
        "/v2/blobs/uploads/manifests/t".to_owned(),
    ] {
        let r = req("PUT", &path);
        assert_eq!(classify(route(&r).as_ref()), Kind::ManifestPut, "{path}");
    }
}

#[test]
fn manifest_puts_count_against_the_upload_limit() {
    let l = limits(1, None);
    let a: IpAddr = "127.0.0.1".parse().unwrap();
    let put = req("PUT", "/v2/a/manifests/latest");
    let held = l.admit_request(a, &put).unwrap();
    assert!(held.is_some(), "a manifest push is counted");
    assert_eq!(
        l.admit_request(a, &req("POST", "/v2/a/blobs/uploads/"))
            .unwrap_err(),
        Refusal::TooManyUploads { limit: 1 }
    );
    assert_eq!(
        l.admit_request(a, &put).unwrap_err(),
        Refusal::TooManyUploads { limit: 1 }
    );
    drop(held);
    assert!(l.admit_request(a, &put).unwrap().is_some());
}

fn manifest_put(length: Option<u64>) -> Request<()> {
    let mut b = Request::put("/v2/a/manifests/latest");
    if let Some(n) = length {
        b = b.header(http::header::CONTENT_LENGTH, n);
    }
    b.body(()).unwrap()
}

#[tokio::test]
async fn manifest_bytes_in_flight_are_bounded() {
    let l = Limits::new(LimitsConfig {
        manifest_max_size: 4096,
        manifest_budget: 8192,
        manifest_budget_wait: Duration::from_millis(100),
        ..LimitsConfig::default()
    });
    let first = l.reserve_request(&manifest_put(Some(4096))).await.unwrap();
    let second = l.reserve_request(&manifest_put(Some(3000))).await.unwrap();
    assert!(first.is_some() && second.is_some());
    assert_eq!(
        l.reserve_request(&manifest_put(Some(2000)))
            .await
            .unwrap_err(),
        Refusal::ManifestBudget,
        "8 KiB are in flight"
    );
    // Not manifest pushes, or refused unread by the router: nothing
    // to reserve.
    assert!(
        l.reserve_request(&manifest_put(Some(5000)))
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        l.reserve_request(&req("GET", "/v2/a/manifests/t"))
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        l.reserve_request(&req("PATCH", "/v2/a/blobs/uploads/0123456789abcdef0123"))
            .await
            .unwrap()
            .is_none()
    );
    drop(second);
    // Without a Content-Length a push reserves the size limit.
    let whole = l.reserve_request(&manifest_put(None)).await.unwrap();
    assert!(whole.is_some());
    assert_eq!(
        l.reserve_request(&manifest_put(Some(1))).await.unwrap_err(),
        Refusal::ManifestBudget
    );
    // A push that waits gets in when room is made.
    let waiting = {
        let l = l.clone();
        tokio::spawn(async move {
            l.reserve_request(&manifest_put(Some(10)))
                .await
                .map(|p| p.is_some())
        })
    };
    tokio::time::sleep(Duration::from_millis(20)).await;
    drop(first);
    assert_eq!(waiting.await.unwrap(), Ok(true));
    let res = Refusal::ManifestBudget.response();
    assert_eq!(res.status(), 429);
    assert_eq!(res.headers()[RETRY_AFTER], "1");
}

#[test]
fn uploads_per_client_are_bounded_and_released() {
    let l = limits(2, None);
    let a: IpAddr = "127.0.0.1".parse().unwrap();
    let b: IpAddr = "127.0.0.2".parse().unwrap();
    let post = req("POST", "/v2/a/blobs/uploads/");
    let p1 = l.admit_request(a, &post).unwrap();
    let p2 = l.admit_request(a, &post).unwrap();
    assert!(p1.is_some() && p2.is_some());
    assert_eq!(
        l.admit_request(a, &post).unwrap_err(),
        Refusal::TooManyUploads { limit: 2 }
    );
    assert!(
        l.admit_request(b, &post).unwrap().is_some(),
        "other clients are not affected"
    );
    assert!(
        l.admit_request(a, &req("GET", "/v2/")).unwrap().is_none(),
        "reads pass"
    );
    drop(p1);
    assert_eq!(l.uploads_of(a), 1);
    let p3 = l.admit_request(a, &post).unwrap();
    drop((p2, p3));
    assert_eq!(l.uploads_of(a), 0);
    assert!(
        limits(0, None).admit_request(a, &post).unwrap().is_none(),
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
