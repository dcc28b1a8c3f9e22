//! The `server` module over a real socket on 127.0.0.1:0: a push and pull
//! with reqwest, and graceful shutdown with a request in flight.
#![cfg(feature = "hyper")]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use registry_core::Digest;
use registry_http::{Router, server};
use registry_storage::OpendalStore;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

struct Server {
    addr: SocketAddr,
    stop: oneshot::Sender<()>,
    task: JoinHandle<std::io::Result<()>>,
}

/// What stops a test server.
type Stop = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

/// Serve a memory store on 127.0.0.1:0 with `serve`, until `stop`.
async fn start_serving<F, Fut>(serve: F) -> Server
where
    F: FnOnce(TcpListener, Router, Stop) -> Fut,
    Fut: std::future::Future<Output = std::io::Result<()>> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = Router::new(Arc::new(OpendalStore::memory()));
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(serve(
        listener,
        router,
        Box::pin(async {
            let _ = stopped.await;
        }),
    ));
    Server { addr, stop, task }
}

/// `server::serve`, the defaults.
async fn start() -> Server {
    start_serving(server::serve).await
}

/// A server as `build` configures it.
async fn start_with<A, H>(build: impl FnOnce(server::Server) -> server::Server<A, H>) -> Server
where
    A: server::Acceptor,
    H: server::OnRequest,
{
    start_serving(|listener, router, stop| build(server::Server::new(router)).serve(listener, stop))
        .await
}

#[tokio::test]
async fn push_and_pull_over_http() {
    let srv = start().await;
    let base = format!("http://{}", srv.addr);
    let client = reqwest::Client::new();

    let r = client.get(format!("{base}/v2/")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["docker-distribution-api-version"],
        "registry/2.0"
    );
    assert_eq!(r.text().await.unwrap(), "{}");

    // A chunked-encoded, streamed PATCH, then the closing PUT.
    let content: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let digest = Digest::sha256_of(&content);
    let r = client
        .post(format!("{base}/v2/a/b/blobs/uploads/"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    assert_eq!(r.headers()["content-length"], "0");
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    let chunks: Vec<Result<Bytes, std::io::Error>> = content
        .chunks(65_536)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    let body = reqwest::Body::wrap_stream(futures::stream::iter(chunks));
    let r = client
        .patch(format!("{base}{location}"))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202, "{:?}", r.text().await);
    assert_eq!(r.headers()["range"], format!("0-{}", content.len() - 1));
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    let r = client
        .put(format!("{base}{location}?digest={digest}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);

    let url = format!("{base}/v2/a/b/blobs/{digest}");
    let r = client.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-length"], content.len().to_string());
    assert_eq!(r.headers()["docker-content-digest"], digest.to_string());
    assert_eq!(r.bytes().await.unwrap(), content);

    let r = client.head(&url).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-length"], content.len().to_string());
    assert!(r.bytes().await.unwrap().is_empty());

    let r = client
        .get(&url)
        .header("range", "bytes=10-19")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(
        r.headers()["content-range"],
        format!("bytes 10-19/{}", content.len())
    );
    assert_eq!(r.bytes().await.unwrap(), content[10..20]);

    let r = client
        .get(format!("{base}/v2/a/b/manifests/latest"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(r.headers()["content-type"], "application/json");
    let body: serde_json::Value = r.json_value().await;
    assert_eq!(body["errors"][0]["code"], "MANIFEST_UNKNOWN");

    srv.stop.send(()).unwrap();
    srv.task.await.unwrap().unwrap();
}

#[tokio::test]
async fn graceful_shutdown_finishes_requests_in_flight() {
    let srv = start().await;
    let base = format!("http://{}", srv.addr);
    let client = reqwest::Client::new();
    let location = open_session(&client, &base).await;

    // A PATCH whose body arrives in two parts, with shutdown asked for in
    // between.
    let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(1);
    let body = reqwest::Body::wrap_stream(tokio_stream(rx));
    let patch = tokio::spawn(client.patch(format!("{base}{location}")).body(body).send());
    tx.send(Ok(Bytes::from_static(b"first "))).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;

    srv.stop.send(()).unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        !srv.task.is_finished(),
        "the server waits for the request in flight"
    );
    // No new connections.
    let fresh = reqwest::Client::new()
        .get(format!("{base}/v2/"))
        .send()
        .await;
    assert!(fresh.is_err(), "{fresh:?}");

    tx.send(Ok(Bytes::from_static(b"second"))).await.unwrap();
    drop(tx);
    let r = patch.await.unwrap().unwrap();
    assert_eq!(r.status(), 202);
    assert_eq!(r.headers()["range"], "0-11");
    tokio::time::timeout(Duration::from_secs(5), srv.task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

/// A server built as the README's embedding example builds one, with a
/// short body idle timeout: a PATCH whose body stalls is failed (400
/// `SIZE_INVALID`), and nothing of it is kept.
#[tokio::test]
async fn embedded_server_drops_a_patch_whose_body_stalls() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let srv = start_with(|s| s.body_idle_timeout(Duration::from_millis(500))).await;
    let addr = srv.addr;
    let base = format!("http://{addr}");
    let client = reqwest::Client::new();
    let location = open_session(&client, &base).await;

    // 100 of the 4096 bytes announced, then nothing, the socket held open.
    let mut socket = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!("PATCH {location} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 4096\r\n\r\n");
    socket.write_all(head.as_bytes()).await.unwrap();
    socket.write_all(&[7u8; 100]).await.unwrap();
    let mut answer = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(10), socket.read(&mut answer))
        .await
        .expect("the stalled request is answered, not held")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer[..n]);
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("SIZE_INVALID"), "{answer}");

    let r = client
        .get(format!("{base}{location}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(
        r.headers()["range"],
        "0-0",
        "nothing of the stalled chunk kept"
    );
    drop(socket);
    srv.stop.send(()).unwrap();
    srv.task.await.unwrap().unwrap();
}

/// The hook sees each request with its parsed route before the router, may
/// answer it, and wraps every response.
#[tokio::test]
async fn the_hook_sees_the_route_and_may_answer() {
    use http::{Response, StatusCode};
    use registry_http::server::{OnRequest, RequestInfo};
    use registry_http::{Body, Route};
    struct OnlyReads;
    impl OnRequest for OnlyReads {
        type State = &'static str;
        type Body = Body;
        async fn before(
            &self,
            request: &RequestInfo<'_>,
        ) -> (&'static str, Option<Response<Body>>) {
            match request.route() {
                Some(Route::StartUpload { .. }) => {
                    let mut res = Response::new(Body::from("no pushes here"));
                    *res.status_mut() = StatusCode::FORBIDDEN;
                    ("refused", Some(res))
                }
                Some(_) => ("routed", None),
                None => ("unknown", None),
            }
        }
        fn after(&self, state: &'static str, mut response: Response<Body>) -> Response<Body> {
            response
                .headers_mut()
                .insert("x-hook", http::HeaderValue::from_static(state));
            response
        }
    }
    let srv = start_with(|s| s.on_request(OnlyReads)).await;
    let base = format!("http://{}", srv.addr);
    let client = reqwest::Client::new();
    let r = client.get(format!("{base}/v2/")).send().await.unwrap();
    assert_eq!(
        (r.status().as_u16(), r.headers()["x-hook"].to_str().unwrap()),
        (200, "routed")
    );
    let r = client.get(format!("{base}/nowhere")).send().await.unwrap();
    assert_eq!(
        (r.status().as_u16(), r.headers()["x-hook"].to_str().unwrap()),
        (404, "unknown")
    );
    let r = client
        .post(format!("{base}/v2/a/blobs/uploads/"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        (r.status().as_u16(), r.headers()["x-hook"].to_str().unwrap()),
        (403, "refused")
    );
    assert_eq!(r.text().await.unwrap(), "no pushes here");
    srv.stop.send(()).unwrap();
    srv.task.await.unwrap().unwrap();
}

/// `answered` runs after the router and before the response is sent: it
/// may await, and what it changes is what the client gets.
#[tokio::test]
async fn the_hook_awaits_and_may_change_the_answer_before_it_is_sent() {
    use http::{Response, StatusCode};
    use registry_http::Body;
    use registry_http::server::{OnRequest, RequestInfo};
    struct Replaces;
    impl OnRequest for Replaces {
        type State = u16;
        type Body = Body;
        async fn before(&self, _request: &RequestInfo<'_>) -> (u16, Option<Response<Body>>) {
            (0, None)
        }
        async fn answered(&self, state: &mut u16, response: &mut Response<Body>) {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            *state = response.status().as_u16();
            *response = Response::new(Body::from("replaced"));
            *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
        }
        fn after(&self, state: u16, mut response: Response<Body>) -> Response<Body> {
            response
                .headers_mut()
                .insert("x-router-status", http::HeaderValue::from(state));
            response
        }
    }
    let srv = start_with(|s| s.on_request(Replaces)).await;
    let r = reqwest::get(format!("http://{}/v2/", srv.addr))
        .await
        .unwrap();
    assert_eq!(r.status(), 500);
    assert_eq!(r.headers()["x-router-status"], "200");
    assert_eq!(r.text().await.unwrap(), "replaced");
    srv.stop.send(()).unwrap();
    srv.task.await.unwrap().unwrap();
}

/// A request head limit hyper cannot enforce is refused before serving.
#[tokio::test]
async fn too_small_a_header_limit_is_an_error() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let router = Router::new(Arc::new(OpendalStore::memory()));
    let e = server::Server::new(router)
        .max_header_size(1024)
        .serve(listener, std::future::pending())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
}

/// Open an upload session in repository `a`; its location.
async fn open_session(client: &reqwest::Client, base: &str) -> String {
    let r = client
        .post(format!("{base}/v2/a/blobs/uploads/"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    r.headers()["location"].to_str().unwrap().to_owned()
}

/// An mpsc receiver as a stream.
fn tokio_stream<T: Send + 'static>(
    rx: mpsc::Receiver<T>,
) -> impl futures::Stream<Item = T> + Send + 'static {
    futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|x| (x, rx)) })
}

trait JsonValue {
    async fn json_value(self) -> serde_json::Value;
}

impl JsonValue for reqwest::Response {
    async fn json_value(self) -> serde_json::Value {
        serde_json::from_slice(&self.bytes().await.unwrap()).unwrap()
    }
}
