//! Run with: cargo run -p axum-mount
//!
//! An axum application with its own routes and the registry mounted under
//! `/registry`, on the memory store. It serves on 127.0.0.1:8080 (or the
//! address in `ADDR`) until Ctrl-C. Try:
//!
//! ```text
//! curl http://127.0.0.1:8080/
//! curl -i http://127.0.0.1:8080/registry/v2/
//! curl -i -X POST http://127.0.0.1:8080/registry/v2/demo/blobs/uploads/
//! ```
//!
//! `nest_service` strips `/registry` before the registry sees the request,
//! so the router is told the prefix to put back in the URLs it returns
//! (`Location`, `Link`). Container tools such as docker expect a registry at
//! the root of a host (`/v2/`); mounting under a prefix suits clients that
//! take a base URL, or a reverse proxy that maps a host to the prefix.

use std::sync::Arc;

use axum::Router as App;
use axum::routing::get;
use registry_http::{Router, RouterConfig};
use registry_storage::OpendalStore;

/// The application: its own routes, and the registry under `/registry`.
fn app() -> App {
    let store = Arc::new(OpendalStore::memory());
    let registry = Router::with_config(
        store,
        RouterConfig::default().with_public_prefix("/registry"),
    );
    App::new()
        .route("/", get(|| async { "the application's own page\n" }))
        .route("/health", get(|| async { "ok\n" }))
        // `Router` is a tower `Service` with the `tower` feature.
        .nest_service("/registry", registry)
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::var("ADDR").unwrap_or_else(|_| "127.0.0.1:8080".to_owned());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!(
        "listening on http://{}; the registry is at /registry/v2/",
        listener.local_addr()?
    );
    axum::serve(listener, app())
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    use super::app;

    async fn call(app: &axum::Router, method: &str, uri: &str) -> axum::http::Response<Body> {
        let req = Request::builder()
            .method(method)
            .uri(uri)
            .body(Body::empty())
            .unwrap();
        app.clone().oneshot(req).await.unwrap()
    }

    #[tokio::test]
    async fn own_routes_and_registry_side_by_side() {
        let app = app();
        let res = call(&app, "GET", "/").await;
        assert_eq!(res.status(), StatusCode::OK);
        let body = res.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(body, "the application's own page\n");

        let res = call(&app, "GET", "/registry/v2/").await;
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(
            res.headers()["docker-distribution-api-version"],
            "registry/2.0"
        );

        // URLs the registry returns carry the prefix.
        let res = call(&app, "POST", "/registry/v2/demo/blobs/uploads/").await;
        assert_eq!(res.status(), StatusCode::ACCEPTED);
        let location = res.headers()["location"].to_str().unwrap();
        assert!(
            location.starts_with("/registry/v2/demo/blobs/uploads/"),
            "{location}"
        );
        let res = call(&app, "GET", location).await;
        assert_eq!(res.status(), StatusCode::NO_CONTENT);
    }
}
