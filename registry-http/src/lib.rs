//! The OCI Distribution Spec v1.1 HTTP API, on the `http` crate's types.
//!
//! A [`Router`] takes any `http::Request<B>` whose body yields
//! [`bytes::Bytes`] and returns an `http::Response<`[`Body`]`>`, over any
//! [`registry_core::RegistryStore`]. It parses each request into a typed
//! [`Route`] (every name, tag, digest and upload id validated), asks the
//! [`Authorizer`], streams blob bodies straight to the store and blob
//! contents straight back, and turns every failure into the spec's JSON
//! error.
//!
//! What this crate is not:
//! - not a server: it opens no socket and owns no runtime, except the
//!   optional [`server`] module (feature `hyper`), a hyper server with the
//!   limits of the reference server (header size and read timeout, body
//!   idle timeout, grace period), TLS through an acceptor, and a
//!   per-request hook;
//! - not storage: `registry-storage` implements the store traits;
//! - not an authentication scheme: it asks an [`Authorizer`] and answers
//!   what it says.
//!
//! # Example
//!
//! ```
//! use std::sync::Arc;
//! use registry_http::{Router, RouterConfig};
//!
//! # async fn run() {
//! let store = Arc::new(registry_storage::OpendalStore::memory());
//! let router = Router::with_config(store, RouterConfig::default().with_public_prefix("/registry"));
//! let req = http::Request::get("/v2/").body(http_body_util::Empty::<bytes::Bytes>::new()).unwrap();
//! let res = router.handle(req).await;
//! assert_eq!(res.status(), 200);
//! # }
//! ```
//!
//! # Features
//! - `hyper` (default): [`server::Server`], [`server::serve`] and
//!   [`server::service`].
//! - `tower`: `tower_service::Service` for [`Router`], to nest it in axum.
//! - `auth`: authorizers for HTTP basic (htpasswd, bcrypt) and Docker
//!   bearer tokens (JWT), per-repository access rules, and a small token
//!   issuer. See [`Authorizer`] for plugging in your own.
//!
//! # Endpoints
//!
//! All of spec v1.1.1 (end-1 to end-13), plus `GET /v2/_catalog` and
//! `DELETE` of an upload, as CNCF distribution serves them. Decisions the
//! spec leaves open:
//! - Upload `Range` is `0-<last byte>`, and `0-0` for an empty upload, as
//!   distribution sends.
//! - Single-request uploads (`POST ?digest=`) are supported (201).
//! - A mount (`?mount=&from=`) needs pull access to `from`; when refused,
//!   without `from`, or when `from` lacks the blob, a session is opened
//!   instead (202).
//! - A `Range` on a blob read that is not one byte range is ignored (200
//!   with the whole blob); one beyond the end is 416 with
//!   `Content-Range: bytes */<size>`.
//! - Manifest reads: see [Content negotiation](#content-negotiation).
//! - Referrers answer 200 with an empty index for unknown repositories and
//!   subjects.
//! - Every URL sent back is relative, under
//!   [`RouterConfig::public_prefix`].
//!
//! ## Content negotiation
//!
//! A manifest is served as stored, never converted. It is served if
//! `Accept` is absent or any of its ranges (all `Accept` headers, `q=0`
//! excluded) matches the stored media type exactly or by wildcard;
//! otherwise the answer is 404 `MANIFEST_UNKNOWN`, as distribution answers
//! for OCI types.
//!
//! # Cancel-safety
//!
//! Dropping a [`Router::handle`] future is safe at any point: the store
//! traits guarantee nothing half-written becomes visible.
//!
//! # Stability
//!
//! Error messages are not stable; status codes and error codes are.
#![doc = include_str!("../docs/errors.md")]
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod accept;
mod auth;
mod body;
mod config;
mod error;
mod handlers;
mod headers;
pub mod health;
mod location;
pub mod namespaces;
mod request;
mod route;
mod router;
#[cfg(feature = "hyper")]
pub mod server;
#[cfg(feature = "tower")]
mod tower;

pub use auth::{Access, Action, Actions, AllowAll, Authorizer, Rejection};
#[cfg(feature = "auth")]
pub use auth::{
    AccessRule, AccessRules, Busy, DEFAULT_LEEWAY_SECS, DEFAULT_TOKEN_TTL, Htpasswd,
    HtpasswdAuthorizer, MAX_PASSWORD_BYTES, REFUSED_TTL, RepositoryPattern, Subjects,
    TokenAuthorizer, TokenIssuer, TokenKey, TokenKeys, VERIFIED_TTL, VerifyLimits, parse_actions,
};
pub use body::{Body, BoxError};
pub use config::RouterConfig;
pub use health::Health;
pub use location::same_or_subdomain;
pub use namespaces::{Mapped, Namespaces};
pub use route::{Route, UploadMode};
pub use router::Router;

/// Re-exported so authorizers need not depend on `async-trait` directly.
pub use async_trait::async_trait;
