//! The upstream client against small HTTP servers on 127.0.0.1: anonymous,
//! Basic and Bearer registries (the token endpoint on a port of its own),
//! error statuses, a redirect to another server, stalled and oversized
//! bodies, timeouts.

use std::collections::HashSet;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use registry_core::{Digest, ErrorKind};
use registry_mirror::upstream::{Credentials, Upstream, UpstreamError, UpstreamOptions};
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};

// ---------------------------------------------------------------------------
// The test server

type Body = UnsyncBoxBody<Bytes, Infallible>;
type Handler = Arc<dyn Fn(Seen) -> BoxFuture<'static, Response<Body>> + Send + Sync>;

/// What the server saw of one request.
#[derive(Clone, Debug)]
struct Seen {
    method: String,
    path: String,
    query: Option<String>,
    authorization: Option<String>,
    accept: Option<String>,
}

/// A server on an ephemeral port of 127.0.0.1; dropping it aborts the
/// accept loop and with it every connection task (a `JoinSet` inside).
struct Server {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    task: JoinHandle<()>,
}

impl Server {
    async fn start<F, Fut>(handler: F) -> Server
    where
        F: Fn(Seen) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Response<Body>> + Send + 'static,
    {
        let handler: Handler = Arc::new(move |seen| handler(seen).boxed());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let task = tokio::spawn(async move {
            let mut connections = JoinSet::new();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let handler = handler.clone();
                let log = log.clone();
                let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                    let seen = Seen {
                        method: req.method().to_string(),
                        path: req.uri().path().to_owned(),
                        query: req.uri().query().map(str::to_owned),
                        authorization: header(&req, "authorization"),
                        accept: header(&req, "accept"),
                    };
                    log.lock().unwrap().push(seen.clone());
                    let reply = handler(seen);
                    async move { Ok::<_, Infallible>(reply.await) }
                });
                connections.spawn(async move {
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Server { addr, seen, task }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn header(req: &Request<Incoming>, name: &str) -> Option<String> {
    req.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).boxed_unsync()
}

fn reply(status: u16, headers: &[(&str, &str)], body: Body) -> Response<Body> {
    let mut builder = Response::builder().status(status);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder.body(body).unwrap()
}

fn empty(status: u16, headers: &[(&str, &str)]) -> Response<Body> {
    reply(status, headers, full(Bytes::new()))
}

/// A body of `chunks`, each after `gap`; then, if `stall`, nothing ever again.
fn paced(chunks: Vec<Bytes>, gap: Duration, stall: bool) -> Body {
    let stream = futures::stream::iter(chunks)
        .then(move |chunk| async move {
            tokio::time::sleep(gap).await;
            Ok::<_, Infallible>(Frame::data(chunk))
        })
        .chain(futures::stream::pending().take(if stall { 1 } else { 0 }));
    StreamBody::new(stream).boxed_unsync()
}

// ---------------------------------------------------------------------------
// Content and the registry behaviours

const MANIFEST: &[u8] = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[]}"#;
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const BASIC_OK: &str = "Basic dXNlcjpzZWNyZXQ="; // user:secret

fn blob() -> Vec<u8> {
    (0..300_000u32).map(|i| (i % 251) as u8).collect()
}

fn creds(password: &str) -> Option<Credentials> {
    Some(Credentials {
        username: "user".into(),
        password: password.into(),
    })
}

fn upstream(url: &str, credentials: Option<Credentials>) -> Upstream {
    Upstream::new(UpstreamOptions {
        url: url.to_owned(),
        credentials,
        timeout: Duration::from_secs(5),
        idle_timeout: Duration::from_secs(5),
    })
    .unwrap()
}

/// The registry's answers once authorized: the manifest under
/// `library/alpine`, tag `latest` or its digest; the blob; 404 otherwise.
fn content(seen: &Seen) -> Response<Body> {
    let manifest_digest = Digest::sha256_of(MANIFEST).to_string();
    let blob = blob();
    let blob_digest = Digest::sha256_of(&blob).to_string();
    let head = seen.method == "HEAD";
    let manifest_paths = [
        "/v2/library/alpine/manifests/latest".to_owned(),
        format!("/v2/library/alpine/manifests/{manifest_digest}"),
    ];
    if manifest_paths.contains(&seen.path) {
        let len = MANIFEST.len().to_string();
        let headers = [
            (
                "content-type",
                "application/vnd.oci.image.manifest.v1+json; charset=utf-8",
            ),
            ("docker-content-digest", manifest_digest.as_str()),
            ("content-length", len.as_str()),
        ];
        let body = if head {
            Bytes::new()
        } else {
            Bytes::from_static(MANIFEST)
        };
        return reply(200, &headers, full(body));
    }
    if seen.path == format!("/v2/library/alpine/blobs/{blob_digest}") {
        let len = blob.len().to_string();
        let headers = [("content-length", len.as_str())];
        let body = if head {
            Bytes::new()
        } else {
            Bytes::from(blob)
        };
        return reply(200, &headers, full(body));
    }
    empty(404, &[])
}

async fn collect(blob: registry_mirror::upstream::UpstreamBlob) -> Vec<u8> {
    let mut body = blob.body;
    let mut out = Vec::new();
    while let Some(chunk) = body.next().await {
        out.extend_from_slice(&chunk.unwrap());
    }
    out
}

// ---------------------------------------------------------------------------
// Anonymous

#[tokio::test]
async fn anonymous_manifest_and_blob() {
    let server = Server::start(|seen| async move { content(&seen) }).await;
    let up = upstream(&server.url(), None);
    let digest = Digest::sha256_of(MANIFEST);

    let head = up.head_manifest("library/alpine", "latest").await.unwrap();
    assert_eq!(head.digest, Some(digest.clone()));
    assert_eq!(head.media_type.as_deref(), Some(OCI_MANIFEST));
    assert_eq!(head.size, Some(MANIFEST.len() as u64));

    let got = up
        .get_manifest("library/alpine", &digest.to_string(), 4096)
        .await
        .unwrap();
    assert_eq!(&got.bytes[..], MANIFEST);
    assert_eq!(got.digest, Some(digest));
    assert_eq!(got.media_type.as_deref(), Some(OCI_MANIFEST));

    let blob = blob();
    let blob_digest = Digest::sha256_of(&blob);
    assert_eq!(
        up.head_blob("library/alpine", &blob_digest).await.unwrap(),
        blob.len() as u64
    );
    let fetched = up.get_blob("library/alpine", &blob_digest).await.unwrap();
    assert_eq!(fetched.size, Some(blob.len() as u64));
    assert_eq!(collect(fetched).await, blob);

    let seen = server.seen();
    assert_eq!(seen.len(), 4);
    assert!(seen.iter().all(|s| s.authorization.is_none()));
    let accept = seen[0].accept.as_deref().unwrap();
    for media_type in [
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
    ] {
        assert!(accept.contains(media_type), "{accept}");
    }
    assert_eq!(seen[0].method, "HEAD");
    assert_eq!(seen[1].method, "GET");
}

#[tokio::test]
async fn manifest_digest_header_checked_or_ignored() {
    let server = Server::start(|seen| async move {
        let digest = if seen.path.ends_with("/wrong") {
            Digest::sha256_of(b"other bytes").to_string()
        } else {
            "sha256:not-a-digest".to_owned()
        };
        reply(200, &[("docker-content-digest", &digest)], full(MANIFEST))
    })
    .await;
    let up = upstream(&server.url(), None);
    let err = up.get_manifest("a/b", "wrong", 4096).await.unwrap_err();
    assert!(
        matches!(err, UpstreamError::Invalid(ref m) if m.contains("do not match")),
        "{err}"
    );
    // An unparsable digest header is no digest, not an error.
    let got = up.get_manifest("a/b", "garbled", 4096).await.unwrap();
    assert_eq!(got.digest, None);
    assert_eq!(got.media_type, None);
    assert_eq!(&got.bytes[..], MANIFEST);
}

#[tokio::test]
async fn bad_names_never_reach_the_upstream() {
    let server = Server::start(|seen| async move { content(&seen) }).await;
    let up = upstream(&server.url(), None);
    assert!(matches!(
        up.head_manifest("../../etc", "latest").await,
        Err(UpstreamError::Invalid(_))
    ));
    assert!(matches!(
        up.get_manifest("library/alpine", "latest?x=1", 10).await,
        Err(UpstreamError::Invalid(_))
    ));
    assert!(server.seen().is_empty());
    assert!(matches!(
        Upstream::new(UpstreamOptions {
            url: "https://registry.example?ns=x".into(),
            credentials: None,
            timeout: Duration::from_secs(1),
            idle_timeout: Duration::from_secs(1),
        }),
        Err(UpstreamError::Invalid(_))
    ));
}

// ---------------------------------------------------------------------------
// Basic

fn basic_registry(seen: Seen) -> Response<Body> {
    if seen.authorization.as_deref() == Some(BASIC_OK) {
        content(&seen)
    } else {
        empty(
            401,
            &[("www-authenticate", r#"Basic realm="test registry""#)],
        )
    }
}

#[tokio::test]
async fn basic_retried_once_then_sent_up_front() {
    let server = Server::start(|seen| async move { basic_registry(seen) }).await;
    let up = upstream(&server.url(), creds("secret"));
    let got = up
        .get_manifest("library/alpine", "latest", 4096)
        .await
        .unwrap();
    assert_eq!(&got.bytes[..], MANIFEST);
    up.head_manifest("library/alpine", "latest").await.unwrap();
    // A clone shares the state.
    up.clone()
        .head_manifest("library/alpine", "latest")
        .await
        .unwrap();
    let auth: Vec<_> = server.seen().into_iter().map(|s| s.authorization).collect();
    assert_eq!(
        auth,
        vec![
            None,
            Some(BASIC_OK.to_owned()),
            Some(BASIC_OK.to_owned()),
            Some(BASIC_OK.to_owned())
        ]
    );
}

#[tokio::test]
async fn basic_without_or_with_wrong_credentials_is_denied() {
    let server = Server::start(|seen| async move { basic_registry(seen) }).await;
    let anonymous = upstream(&server.url(), None);
    let err = anonymous
        .head_manifest("library/alpine", "latest")
        .await
        .unwrap_err();
    assert!(
        matches!(err, UpstreamError::Denied { status: 401 }),
        "{err}"
    );
    assert!(!err.is_outage());
    assert_eq!(server.seen().len(), 1);

    let wrong = upstream(&server.url(), creds("wrong"));
    let err = wrong
        .head_manifest("library/alpine", "latest")
        .await
        .unwrap_err();
    assert!(
        matches!(err, UpstreamError::Denied { status: 401 }),
        "{err}"
    );
    // One anonymous try, one retry with the credentials, no more.
    assert_eq!(server.seen().len(), 3);
    // Now Basic goes up front, and is refused without a second retry.
    let err = wrong
        .head_manifest("library/alpine", "latest")
        .await
        .unwrap_err();
    assert!(
        matches!(err, UpstreamError::Denied { status: 401 }),
        "{err}"
    );
    let seen = server.seen();
    assert_eq!(seen.len(), 4);
    assert_eq!(
        seen[3].authorization.as_deref(),
        Some("Basic dXNlcjp3cm9uZw==")
    );
}

// ---------------------------------------------------------------------------
// Bearer (the Docker Hub flow)

/// A token endpoint: issues `tok-N`, valid at the registry, for the
/// registry's service and a pull scope, to `user:secret` if `require_basic`.
#[derive(Clone)]
struct Tokens {
    issued: Arc<AtomicUsize>,
    valid: Arc<Mutex<HashSet<String>>>,
    expires_in: Option<u64>,
    field: &'static str,
    delay: Duration,
    require_basic: bool,
}

impl Tokens {
    fn new() -> Tokens {
        Tokens {
            issued: Arc::new(AtomicUsize::new(0)),
            valid: Arc::new(Mutex::new(HashSet::new())),
            expires_in: Some(300),
            field: "token",
            delay: Duration::ZERO,
            require_basic: false,
        }
    }

    async fn serve(&self) -> Server {
        let tokens = self.clone();
        Server::start(move |seen| {
            let tokens = tokens.clone();
            async move { tokens.answer(seen).await }
        })
        .await
    }

    async fn answer(&self, seen: Seen) -> Response<Body> {
        tokio::time::sleep(self.delay).await;
        let query = seen.query.unwrap_or_default();
        if !query.contains("service=test-registry")
            || !query.contains("scope=repository%3Alibrary%2Falpine%3Apull")
        {
            return empty(400, &[]);
        }
        if self.require_basic && seen.authorization.as_deref() != Some(BASIC_OK) {
            return empty(401, &[]);
        }
        let n = self.issued.fetch_add(1, Ordering::SeqCst) + 1;
        let token = format!("tok-{n}");
        self.valid.lock().unwrap().insert(token.clone());
        let mut json = serde_json::json!({ self.field: token });
        if let Some(expires_in) = self.expires_in {
            json["expires_in"] = expires_in.into();
        }
        reply(
            200,
            &[("content-type", "application/json")],
            full(json.to_string()),
        )
    }

    fn issued(&self) -> usize {
        self.issued.load(Ordering::SeqCst)
    }
}

/// A registry that wants a token from `realm`.
async fn bearer_registry(realm: String, tokens: Tokens) -> Server {
    scoped_bearer_registry(realm, tokens, "repository:library/alpine:pull").await
}

/// A registry that wants a token from `realm`, naming `scope` in its challenge.
async fn scoped_bearer_registry(realm: String, tokens: Tokens, scope: &'static str) -> Server {
    Server::start(move |seen| {
        let realm = realm.clone();
        let valid = tokens.valid.clone();
        async move {
            let token = seen
                .authorization
                .as_deref()
                .and_then(|a| a.strip_prefix("Bearer "));
            if token.is_some_and(|t| valid.lock().unwrap().contains(t)) {
                return content(&seen);
            }
            let challenge = format!(
                r#"Bearer realm="{realm}",service="test-registry",scope="{scope}",error="invalid_token""#
            );
            empty(401, &[("www-authenticate", &challenge)])
        }
    })
    .await
}

#[tokio::test]
async fn bearer_token_fetched_once_and_reused() {
    let mut tokens = Tokens::new();
    tokens.require_basic = true;
    let token_server = tokens.serve().await;
    let registry = bearer_registry(format!("{}/token", token_server.url()), tokens.clone()).await;
    let up = upstream(&registry.url(), creds("secret"));
    for _ in 0..5 {
        let got = up
            .get_manifest("library/alpine", "latest", 4096)
            .await
            .unwrap();
        assert_eq!(&got.bytes[..], MANIFEST);
    }
    assert_eq!(tokens.issued(), 1);
    let seen = registry.seen();
    // One anonymous try, its retry with the token, then the token up front.
    assert_eq!(seen.len(), 6);
    assert_eq!(seen[0].authorization, None);
    assert!(
        seen[1..]
            .iter()
            .all(|s| s.authorization.as_deref() == Some("Bearer tok-1"))
    );
    // Basic went to the realm (another origin), never to the registry.
    let token_requests = token_server.seen();
    assert_eq!(token_requests.len(), 1);
    assert_eq!(token_requests[0].path, "/token");
    assert_eq!(token_requests[0].authorization.as_deref(), Some(BASIC_OK));
    assert!(
        seen.iter()
            .all(|s| s.authorization.as_deref() != Some(BASIC_OK))
    );
}

#[tokio::test]
async fn bearer_anonymous_access_token_field() {
    let mut tokens = Tokens::new();
    tokens.field = "access_token";
    tokens.expires_in = None;
    let token_server = tokens.serve().await;
    let registry = bearer_registry(format!("{}/token", token_server.url()), tokens.clone()).await;
    let up = upstream(&registry.url(), None);
    let blob = blob();
    let fetched = up
        .get_blob("library/alpine", &Digest::sha256_of(&blob))
        .await
        .unwrap();
    assert_eq!(collect(fetched).await, blob);
    up.head_manifest("library/alpine", "latest").await.unwrap();
    assert_eq!(tokens.issued(), 1);
    assert_eq!(token_server.seen()[0].authorization, None);
}

#[tokio::test]
async fn bearer_token_of_another_scope_still_goes_up_front() {
    let tokens = Tokens::new();
    let token_server = tokens.serve().await;
    let realm = format!("{}/token", token_server.url());
    let scope = "repository:library/alpine:pull,push";
    let registry = scoped_bearer_registry(realm, tokens.clone(), scope).await;
    let up = upstream(&registry.url(), None);
    for _ in 0..3 {
        up.head_manifest("library/alpine", "latest").await.unwrap();
    }
    assert_eq!(tokens.issued(), 1);
    let query = token_server.seen()[0].query.clone().unwrap();
    assert!(
        query.contains("scope=repository%3Alibrary%2Falpine%3Apull%2Cpush"),
        "{query}"
    );
    // Only the first request went without the token.
    let auth: Vec<_> = registry
        .seen()
        .into_iter()
        .map(|s| s.authorization)
        .collect();
    assert_eq!(auth.len(), 4);
    assert_eq!(auth[0], None);
    assert!(
        auth[1..]
            .iter()
            .all(|a| a.as_deref() == Some("Bearer tok-1"))
    );
}

#[tokio::test]
async fn bearer_token_refetched_after_expiry() {
    let mut tokens = Tokens::new();
    tokens.expires_in = Some(1);
    let token_server = tokens.serve().await;
    let registry = bearer_registry(format!("{}/token", token_server.url()), tokens.clone()).await;
    let up = upstream(&registry.url(), None);
    up.head_manifest("library/alpine", "latest").await.unwrap();
    up.head_manifest("library/alpine", "latest").await.unwrap();
    assert_eq!(tokens.issued(), 1);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    up.head_manifest("library/alpine", "latest").await.unwrap();
    assert_eq!(tokens.issued(), 2);
    // The expired token was not sent: the third request went anonymous.
    let seen = registry.seen();
    assert_eq!(seen[3].authorization, None);
    assert_eq!(seen[4].authorization.as_deref(), Some("Bearer tok-2"));
}

#[tokio::test]
async fn bearer_revoked_token_is_replaced() {
    let tokens = Tokens::new();
    let token_server = tokens.serve().await;
    let registry = bearer_registry(format!("{}/token", token_server.url()), tokens.clone()).await;
    let up = upstream(&registry.url(), None);
    up.head_manifest("library/alpine", "latest").await.unwrap();
    tokens.valid.lock().unwrap().clear();
    up.head_manifest("library/alpine", "latest").await.unwrap();
    assert_eq!(tokens.issued(), 2);
    let seen = registry.seen();
    assert_eq!(seen.len(), 4);
    assert_eq!(seen[2].authorization.as_deref(), Some("Bearer tok-1"));
    assert_eq!(seen[3].authorization.as_deref(), Some("Bearer tok-2"));
}

#[tokio::test]
async fn concurrent_requests_share_one_token_fetch() {
    let mut tokens = Tokens::new();
    tokens.delay = Duration::from_millis(300);
    let token_server = tokens.serve().await;
    let registry = bearer_registry(format!("{}/token", token_server.url()), tokens.clone()).await;
    let up = upstream(&registry.url(), None);
    let mut tasks = JoinSet::new();
    for _ in 0..8 {
        let up = up.clone();
        tasks.spawn(async move { up.head_manifest("library/alpine", "latest").await });
    }
    while let Some(result) = tasks.join_next().await {
        result.unwrap().unwrap();
    }
    assert_eq!(tokens.issued(), 1);
    assert_eq!(token_server.seen().len(), 1);
}

#[tokio::test]
async fn concurrent_requests_share_one_failed_token_fetch() {
    let broken = Server::start(|_| async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        empty(503, &[])
    })
    .await;
    let registry = bearer_registry(format!("{}/token", broken.url()), Tokens::new()).await;
    let up = upstream(&registry.url(), None);
    let started = Instant::now();
    let mut tasks = JoinSet::new();
    for _ in 0..6 {
        let up = up.clone();
        tasks.spawn(async move { up.head_manifest("library/alpine", "latest").await });
    }
    while let Some(result) = tasks.join_next().await {
        let err = result.unwrap().unwrap_err();
        assert!(matches!(err, UpstreamError::Unavailable(_)), "{err}");
    }
    // Those waiting for the failed fetch got its error, not a turn each.
    assert_eq!(broken.seen().len(), 1);
    assert!(started.elapsed() < Duration::from_millis(1200));
    // A later request tries again.
    up.head_manifest("library/alpine", "latest")
        .await
        .unwrap_err();
    assert_eq!(broken.seen().len(), 2);
}

#[tokio::test]
async fn token_endpoint_failures() {
    // Refuses the credentials: Denied.
    let mut tokens = Tokens::new();
    tokens.require_basic = true;
    let token_server = tokens.serve().await;
    let registry = bearer_registry(format!("{}/token", token_server.url()), tokens.clone()).await;
    let err = upstream(&registry.url(), creds("wrong"))
        .head_manifest("library/alpine", "latest")
        .await
        .unwrap_err();
    assert!(
        matches!(err, UpstreamError::Denied { status: 401 }),
        "{err}"
    );

    // Answers 500, or garbage: Unavailable (an outage), Invalid.
    let broken = Server::start(|seen| async move {
        if seen.path == "/garbage" {
            reply(200, &[], full("<html>not json</html>"))
        } else if seen.path == "/empty" {
            reply(200, &[], full(r#"{"token":""}"#))
        } else {
            empty(500, &[])
        }
    })
    .await;
    for (path, outage) in [("/down", true), ("/garbage", false), ("/empty", false)] {
        let registry = bearer_registry(format!("{}{path}", broken.url()), Tokens::new()).await;
        let err = upstream(&registry.url(), None)
            .head_manifest("library/alpine", "latest")
            .await
            .unwrap_err();
        assert_eq!(err.is_outage(), outage, "{path}: {err}");
        if !outage {
            assert!(matches!(err, UpstreamError::Invalid(_)), "{path}: {err}");
        }
    }

    // Not listening at all: Unavailable.
    let closed = closed_port().await;
    let registry = bearer_registry(format!("http://{closed}/token"), Tokens::new()).await;
    let err = upstream(&registry.url(), None)
        .head_manifest("library/alpine", "latest")
        .await
        .unwrap_err();
    assert!(matches!(err, UpstreamError::Unavailable(_)), "{err}");
}

#[tokio::test]
async fn odd_expires_in_values_still_give_a_token() {
    let tokens = Tokens::new();
    tokens.valid.lock().unwrap().insert("odd".to_owned());
    let token_server = Server::start(|seen| async move {
        let expires_in = match seen.path.as_str() {
            "/huge" => "18446744073709551615",
            "/negative" => "-5",
            "/float" => "2.5",
            _ => "\"soon\"",
        };
        let json = format!(r#"{{"token":"odd","expires_in":{expires_in}}}"#);
        reply(200, &[], full(json))
    })
    .await;
    for path in ["/huge", "/negative", "/float", "/string"] {
        let realm = format!("{}{path}", token_server.url());
        let registry = bearer_registry(realm, tokens.clone()).await;
        let up = upstream(&registry.url(), None);
        up.head_manifest("library/alpine", "latest")
            .await
            .unwrap_or_else(|e| panic!("{path}: {e}"));
        let seen = registry.seen();
        assert_eq!(seen.len(), 2, "{path}");
        assert_eq!(seen[1].authorization.as_deref(), Some("Bearer odd"));
    }
}

// ---------------------------------------------------------------------------
// Statuses

#[tokio::test]
async fn statuses_map_to_errors() {
    let server = Server::start(|seen| async move {
        match seen.path.rsplit('/').next().unwrap() {
            "limited" => empty(429, &[("retry-after", "7")]),
            "limited-no-hint" => empty(429, &[]),
            "broken" => empty(500, &[]),
            "teapot" => empty(418, &[]),
            "forbidden" => empty(403, &[]),
            _ => content(&seen),
        }
    })
    .await;
    let up = upstream(&server.url(), None);
    let err = up
        .head_manifest("library/alpine", "missing")
        .await
        .unwrap_err();
    assert!(matches!(err, UpstreamError::NotFound), "{err}");
    assert!(!err.is_outage());
    let missing_blob = Digest::sha256_of(b"missing");
    assert!(matches!(
        up.get_blob("library/alpine", &missing_blob).await,
        Err(UpstreamError::NotFound)
    ));
    assert!(matches!(
        up.head_blob("library/alpine", &missing_blob).await,
        Err(UpstreamError::NotFound)
    ));

    let err = up.get_manifest("a", "limited", 4096).await.unwrap_err();
    assert!(
        matches!(err, UpstreamError::RateLimited { retry_after: Some(d) } if d == Duration::from_secs(7)),
        "{err}"
    );
    assert!(err.is_outage());
    let err = up
        .get_manifest("a", "limited-no-hint", 4096)
        .await
        .unwrap_err();
    assert!(
        matches!(err, UpstreamError::RateLimited { retry_after: None }),
        "{err}"
    );

    let err = up.head_manifest("a", "broken").await.unwrap_err();
    assert!(matches!(err, UpstreamError::Unavailable(_)), "{err}");
    assert!(err.is_outage());
    let err = up.head_manifest("a", "teapot").await.unwrap_err();
    assert!(matches!(err, UpstreamError::Invalid(_)), "{err}");
    let err = up.head_manifest("a", "forbidden").await.unwrap_err();
    assert!(
        matches!(err, UpstreamError::Denied { status: 403 }),
        "{err}"
    );
}

async fn closed_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    addr
}

#[tokio::test]
async fn unreachable_and_silent_upstreams_are_unavailable() {
    let closed = closed_port().await;
    let err = upstream(&format!("http://{closed}"), None)
        .head_manifest("a", "latest")
        .await
        .unwrap_err();
    assert!(matches!(err, UpstreamError::Unavailable(_)), "{err}");

    let silent = Server::start(|_| async {
        tokio::time::sleep(Duration::from_secs(30)).await;
        empty(200, &[])
    })
    .await;
    let up = Upstream::new(UpstreamOptions {
        url: silent.url(),
        credentials: None,
        timeout: Duration::from_millis(300),
        idle_timeout: Duration::from_secs(5),
    })
    .unwrap();
    let started = Instant::now();
    let err = up
        .get_blob("a", &Digest::sha256_of(b"x"))
        .await
        .unwrap_err();
    assert!(matches!(err, UpstreamError::Unavailable(_)), "{err}");
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_secs(5),
        "{took:?}"
    );
}

// ---------------------------------------------------------------------------
// Redirects

#[tokio::test]
async fn blob_redirect_to_another_host_carries_no_credentials() {
    let blob = blob();
    let storage_blob = blob.clone();
    // The storage server's own URL, known once it is bound.
    let storage_addr = Arc::new(Mutex::new(String::new()));
    let storage_addr_in = storage_addr.clone();
    let storage = Server::start(move |seen| {
        let blob = storage_blob.clone();
        let storage_self = storage_addr_in.lock().unwrap().clone();
        async move {
            if seen.path == "/denied" {
                // A challenge naming a realm on the storage host itself.
                let challenge = format!(r#"Bearer realm="{storage_self}/token",scope="x""#);
                return empty(401, &[("www-authenticate", &challenge)]);
            }
            if seen.path == "/token" {
                return reply(200, &[], full(r#"{"token":"t"}"#));
            }
            reply(200, &[], full(blob))
        }
    })
    .await;
    let storage_url = storage.url();
    *storage_addr.lock().unwrap() = storage_url.clone();
    let registry = Server::start(move |seen| {
        let location = if seen.path.contains("/blobs/") {
            if seen.path.contains("denied") {
                Some(format!("{storage_url}/denied"))
            } else {
                Some(format!("{storage_url}/data/blob?signature=abc"))
            }
        } else {
            None
        };
        async move {
            match (seen.authorization.as_deref() == Some(BASIC_OK), location) {
                (false, _) => basic_registry(seen),
                (true, Some(location)) => empty(307, &[("location", &location)]),
                (true, None) => content(&seen),
            }
        }
    })
    .await;
    let up = upstream(&registry.url(), creds("secret"));
    let digest = Digest::sha256_of(&blob);
    let fetched = up.get_blob("library/alpine", &digest).await.unwrap();
    assert_eq!(fetched.size, Some(blob.len() as u64));
    assert_eq!(collect(fetched).await, blob);

    // The registry got the credentials (retry after the challenge)...
    let at_registry = registry.seen();
    assert_eq!(at_registry.len(), 2);
    assert_eq!(at_registry[1].authorization.as_deref(), Some(BASIC_OK));
    // ...the storage it redirected to got none.
    let at_storage = storage.seen();
    assert_eq!(at_storage.len(), 1);
    assert_eq!(at_storage[0].path, "/data/blob");
    assert_eq!(at_storage[0].query.as_deref(), Some("signature=abc"));
    assert_eq!(at_storage[0].authorization, None);

    // A challenge from the redirect target is not answered: no token
    // fetched from the realm it names (the credentials would go there).
    let denied = Digest::sha256_of(b"denied");
    let name = "library/denied";
    let err = up.get_blob(name, &denied).await.unwrap_err();
    assert!(
        matches!(err, UpstreamError::Denied { status: 401 }),
        "{err}"
    );
    let at_storage = storage.seen();
    let paths: Vec<_> = at_storage.iter().map(|s| s.path.as_str()).collect();
    assert_eq!(paths, vec!["/data/blob", "/denied"]);
    assert!(at_storage.iter().all(|s| s.authorization.is_none()));
}

// ---------------------------------------------------------------------------
// Bodies

#[tokio::test]
async fn stalled_blob_body_fails_after_the_idle_timeout() {
    let server = Server::start(|seen| async move {
        let stall = seen.path.contains("stall");
        let chunks = vec![Bytes::from_static(b"abc"); if stall { 1 } else { 5 }];
        reply(200, &[], paced(chunks, Duration::from_millis(100), stall))
    })
    .await;
    let up = Upstream::new(UpstreamOptions {
        url: server.url(),
        credentials: None,
        timeout: Duration::from_secs(5),
        idle_timeout: Duration::from_millis(300),
    })
    .unwrap();
    let digest = Digest::sha256_of(b"x");

    // Slow but steady: five chunks 100 ms apart (500 ms in all, longer than
    // the idle timeout) arrive whole.
    let steady = up.get_blob("steady", &digest).await.unwrap();
    assert_eq!(collect(steady).await, b"abcabcabcabcabc");

    let started = Instant::now();
    let mut body = up.get_blob("stall", &digest).await.unwrap().body;
    assert_eq!(&body.next().await.unwrap().unwrap()[..], b"abc");
    // Bounded here too, so a missing idle timeout fails instead of hanging.
    let next = tokio::time::timeout(Duration::from_secs(5), body.next()).await;
    let err = next.expect("the idle timeout fired").unwrap().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert!(err.message().contains(&server.url()), "{err}");
    assert!(body.next().await.is_none());
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_secs(5),
        "{took:?}"
    );
}

#[tokio::test]
async fn manifest_over_max_size_is_refused() {
    let big = vec![b'x'; 2000];
    let server = Server::start(move |seen| {
        let big = Bytes::from(big.clone());
        async move {
            if seen.path.ends_with("/chunked") {
                // No Content-Length: the bound is found while reading.
                let chunks = big.chunks(500).map(Bytes::copy_from_slice).collect();
                reply(200, &[], paced(chunks, Duration::ZERO, false))
            } else {
                reply(200, &[], full(big))
            }
        }
    })
    .await;
    let up = upstream(&server.url(), None);
    for reference in ["declared", "chunked"] {
        let err = up.get_manifest("a", reference, 1000).await.unwrap_err();
        assert!(
            matches!(err, UpstreamError::Invalid(ref m) if m.contains("limit")),
            "{reference}: {err}"
        );
        assert_eq!(
            up.get_manifest("a", reference, 2000)
                .await
                .unwrap()
                .bytes
                .len(),
            2000
        );
    }
}

#[tokio::test]
async fn slow_manifest_body_is_bounded_by_the_timeout() {
    let server = Server::start(|_| async {
        let chunks = vec![Bytes::from_static(b"{}"); 1];
        reply(200, &[], paced(chunks, Duration::ZERO, true))
    })
    .await;
    let up = Upstream::new(UpstreamOptions {
        url: server.url(),
        credentials: None,
        timeout: Duration::from_millis(300),
        idle_timeout: Duration::from_secs(30),
    })
    .unwrap();
    let started = Instant::now();
    let err = up.get_manifest("a", "latest", 4096).await.unwrap_err();
    assert!(matches!(err, UpstreamError::Unavailable(_)), "{err}");
    assert!(started.elapsed() < Duration::from_secs(5));
}
