//! Unknown paths and methods refused before the store, authorization, and
//! the error body of every status the router sends, through
//! `Router::handle` (the endpoint suite in `endpoints.rs` covers end-1 and
//! the error codes of bad requests).

mod common;

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bytes::Bytes;
use common::InProcess;
use http::HeaderValue;
use http::request::Parts;
use registry_core::{
    BlobInfo, BlobRead, BlobStore, ByteRange, ByteStream, Digest, Error, ErrorKind, Listing,
    ManifestLimits, ManifestPut, ManifestStore, Page, Reference, Referrers, RepositoryName,
    StoredManifest, Tag, UploadId, UploadStatus, UploadStore,
};
use registry_http::{Access, Action, Authorizer, Rejection, Router, RouterConfig};
use registry_testkit::Body;
use registry_testkit::suite::refused_before_the_store;

/// A client of a router on a store that fails every call with `kind`.
fn failing(kind: ErrorKind) -> common::Client {
    InProcess::new(Router::new(Arc::new(FailingStore(kind)))).client()
}

#[test]
fn invalid_input_never_reaches_the_store() {
    // A store that fails every call: whatever is refused here was refused
    // before the store. The suite's table, and paths with `..` as is,
    // which an HTTP client would resolve before sending.
    let reg = failing(ErrorKind::Storage);
    let mut rows: Vec<(String, String, u16, &str)> = refused_before_the_store()
        .into_iter()
        .map(|r| (r.method.to_owned(), r.path, r.status, r.code))
        .collect();
    rows.push((
        "GET".into(),
        "/v2/a/../b/manifests/x".into(),
        400,
        "NAME_INVALID",
    ));
    rows.push((
        "GET".into(),
        "/v2/a/blobs/uploads/..".into(),
        404,
        "BLOB_UPLOAD_UNKNOWN",
    ));
    for (method, uri, status, code) in rows {
        let r = reg.send(&method, &uri, &[], Body::None);
        assert!(
            r.status == status && r.error_codes() == [code],
            "{method} {uri}: want {status} {code}, got {r:?} {}",
            r.text()
        );
        r.assert_error(status, code);
    }
}

#[test]
fn server_errors_hide_internals() {
    let reg = failing(ErrorKind::Storage);
    let r = reg.get("/v2/a/manifests/latest", &[]);
    r.assert_error(500, "UNKNOWN");
    assert!(!r.text().contains("secret"), "{}", r.text());
    assert_eq!(r.json()["errors"][0]["message"], "storage backend error");
}

#[test]
fn store_error_kinds_pass_through_the_table() {
    let cases = [
        (ErrorKind::TooManyRequests, 429, "TOOMANYREQUESTS"),
        (ErrorKind::Unsupported, 405, "UNSUPPORTED"),
        (ErrorKind::Denied, 403, "DENIED"),
        (ErrorKind::NameUnknown, 404, "NAME_UNKNOWN"),
        (ErrorKind::Internal, 500, "UNKNOWN"),
    ];
    for (kind, status, code) in cases {
        failing(kind)
            .get("/v2/a/tags/list", &[])
            .assert_error(status, code);
    }
    // Conflict: on a chunk it is a 416 with the Range received so far.
    let reg = failing(ErrorKind::Conflict);
    reg.send("PUT", "/v2/a/manifests/x", &[], "{}")
        .assert_error(409, "MANIFEST_INVALID");
    let r = reg.send("PATCH", "/v2/a/blobs/uploads/0123456789abcdef", &[], "x");
    r.assert_error(416, "BLOB_UPLOAD_INVALID");
}

/// Lets `alice` pull and push `team/*`, nothing else; asks anyone else to
/// log in. Records every access asked for.
#[derive(Default)]
struct TeamOnly {
    asked: Mutex<Vec<String>>,
}

#[async_trait]
impl Authorizer for TeamOnly {
    async fn authorize(&self, req: &Parts, access: &Access<'_>) -> Result<(), Rejection> {
        self.asked
            .lock()
            .unwrap()
            .push(access.scope().unwrap_or_else(|| "base".into()));
        let user = req
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok());
        if user != Some("alice") {
            let scope = access.scope().unwrap_or_default();
            let challenge = format!(
                "Bearer realm=\"https://auth.example/token\",service=\"registry\",scope=\"{scope}\""
            );
            return Err(Rejection::unauthorized(
                HeaderValue::try_from(challenge).unwrap(),
            ));
        }
        let allowed = match access.repository {
            None => !access.catalog,
            Some(name) => {
                name.as_str().starts_with("team/") && !access.actions.contains(Action::Delete)
            }
        };
        if allowed {
            Ok(())
        } else {
            Err(Rejection::denied("not yours"))
        }
    }
}

#[test]
fn authorization() {
    let auth = Arc::new(TeamOnly::default());
    let reg =
        InProcess::with_config(RouterConfig::default().with_authorizer(auth.clone())).client();
    let alice = [("authorization", "alice")];

    let r = reg.get("/v2/", &[]);
    r.assert_error(401, "UNAUTHORIZED");
    assert_eq!(
        r.must("www-authenticate"),
        "Bearer realm=\"https://auth.example/token\",service=\"registry\",scope=\"\""
    );
    assert_eq!(reg.send("GET", "/v2/", &alice, "").status, 200);

    let r = reg.get("/v2/team/app/tags/list", &[]);
    r.assert_error(401, "UNAUTHORIZED");
    assert!(
        r.must("www-authenticate")
            .contains("scope=\"repository:team/app:pull\"")
    );

    reg.send("GET", "/v2/other/tags/list", &alice, "")
        .assert_error(403, "DENIED");
    reg.send("GET", "/v2/_catalog", &alice, "")
        .assert_error(403, "DENIED");
    let r = reg.send("POST", "/v2/team/app/blobs/uploads/", &alice, "");
    assert_eq!(r.status, 202);
    let d = Digest::sha256_of(b"x");
    reg.send("DELETE", &format!("/v2/team/app/blobs/{d}"), &alice, "")
        .assert_error(403, "DENIED");
    // Unknown paths are refused before authorization.
    reg.get("/v2/nope", &[]).assert_error(404, "UNSUPPORTED");

    let asked = auth.asked.lock().unwrap().clone();
    assert_eq!(
        asked,
        [
            "base",
            "base",
            "repository:team/app:pull",
            "repository:other:pull",
            "registry:catalog:*",
            "repository:team/app:pull,push",
            "repository:team/app:delete",
        ]
    );
}

#[test]
fn refused_mount_source_becomes_an_upload() {
    let auth = Arc::new(TeamOnly::default());
    let store = Arc::new(registry_storage::OpendalStore::memory());
    let open = InProcess::new(Router::new(store.clone())).client();
    let digest = open.push_blob("other", b"secret layer");

    let reg = InProcess::new(Router::with_config(
        store,
        RouterConfig::default().with_authorizer(auth.clone()),
    ))
    .client();
    let r = reg.send(
        "POST",
        &format!("/v2/team/app/blobs/uploads/?mount={digest}&from=other"),
        &[("authorization", "alice")],
        "",
    );
    assert_eq!(r.status, 202, "{}", r.text());
    assert!(r.has("docker-upload-uuid"));
    reg.send(
        "GET",
        &format!("/v2/team/app/blobs/{digest}"),
        &[("authorization", "alice")],
        "",
    )
    .assert_error(404, "BLOB_UNKNOWN");
    let asked = auth.asked.lock().unwrap().clone();
    assert_eq!(
        asked[..2],
        ["repository:team/app:pull,push", "repository:other:pull"]
    );
}

/// A store whose every call fails with one kind (and a message that must
/// not leak when the kind is server-side).
struct FailingStore(ErrorKind);

impl FailingStore {
    fn err<T>(&self) -> registry_core::Result<T> {
        Err(Error::new(self.0, "secret internal path /var/lib/x"))
    }
}

#[async_trait]
impl BlobStore for FailingStore {
    async fn stat_blob(&self, _: &RepositoryName, _: &Digest) -> registry_core::Result<BlobInfo> {
        self.err()
    }
    async fn read_blob(
        &self,
        _: &RepositoryName,
        _: &Digest,
        _: Option<ByteRange>,
    ) -> registry_core::Result<BlobRead> {
        self.err()
    }
    async fn put_blob(
        &self,
        _: &RepositoryName,
        _: &Digest,
        _: ByteStream,
        _: Option<u64>,
    ) -> registry_core::Result<BlobInfo> {
        self.err()
    }
    async fn delete_blob(&self, _: &RepositoryName, _: &Digest) -> registry_core::Result<()> {
        self.err()
    }
    async fn mount_blob(
        &self,
        _: &RepositoryName,
        _: &RepositoryName,
        _: &Digest,
    ) -> registry_core::Result<BlobInfo> {
        self.err()
    }
}

#[async_trait]
impl ManifestStore for FailingStore {
    async fn put_manifest(
        &self,
        _: &RepositoryName,
        _: &Reference,
        _: Option<&str>,
        _: Bytes,
    ) -> registry_core::Result<ManifestPut> {
        self.err()
    }
    async fn get_manifest(
        &self,
        _: &RepositoryName,
        _: &Reference,
    ) -> registry_core::Result<StoredManifest> {
        self.err()
    }
    async fn delete_manifest(
        &self,
        _: &RepositoryName,
        _: &Reference,
    ) -> registry_core::Result<()> {
        self.err()
    }
    async fn list_tags(
        &self,
        _: &RepositoryName,
        _: Page<'_>,
    ) -> registry_core::Result<Listing<Tag>> {
        self.err()
    }
    fn manifest_limits(&self) -> ManifestLimits {
        ManifestLimits::default()
    }
    async fn list_referrers(
        &self,
        _: &RepositoryName,
        _: &Digest,
        _: Option<&str>,
        _: Page<'_>,
    ) -> registry_core::Result<Referrers> {
        self.err()
    }
    async fn list_repositories(
        &self,
        _: Page<'_>,
    ) -> registry_core::Result<Listing<RepositoryName>> {
        self.err()
    }
}

#[async_trait]
impl UploadStore for FailingStore {
    async fn start_upload(&self, _: &RepositoryName) -> registry_core::Result<UploadStatus> {
        self.err()
    }
    async fn upload_status(
        &self,
        _: &RepositoryName,
        _: &UploadId,
    ) -> registry_core::Result<UploadStatus> {
        self.err()
    }
    async fn write_chunk(
        &self,
        _: &RepositoryName,
        _: &UploadId,
        _: Option<u64>,
        _: ByteStream,
        _: Option<u64>,
    ) -> registry_core::Result<UploadStatus> {
        self.err()
    }
    async fn complete_upload(
        &self,
        _: &RepositoryName,
        _: &UploadId,
        _: &Digest,
        _: Option<(ByteStream, Option<u64>)>,
    ) -> registry_core::Result<BlobInfo> {
        self.err()
    }
    async fn cancel_upload(&self, _: &RepositoryName, _: &UploadId) -> registry_core::Result<()> {
        self.err()
    }
}
