//! Bad requests: one table of requests and the status and spec error code
//! each must get.

use serde_json::json;

use crate::content::{
    OCI_CONFIG, OCI_INDEX, OCI_LAYER, OCI_MANIFEST, descriptor, digest, image_manifest,
};
use crate::{Body, Client, Transport};

/// A request and the error it must get.
#[derive(Debug, Clone)]
pub struct BadRequest {
    /// The method.
    pub method: &'static str,
    /// The path and query; `{upload}` stands for the path of an open upload
    /// session in `errors/known`.
    pub path: String,
    /// Extra headers.
    pub headers: Vec<(&'static str, String)>,
    /// The body.
    pub body: Vec<u8>,
    /// The status it must get.
    pub status: u16,
    /// The spec error code in its body.
    pub code: &'static str,
}

fn row(
    method: &'static str,
    path: impl Into<String>,
    status: u16,
    code: &'static str,
) -> BadRequest {
    BadRequest {
        method,
        path: path.into(),
        headers: Vec::new(),
        body: Vec::new(),
        status,
        code,
    }
}

fn manifest_row(
    reference: &str,
    media_type: &str,
    body: Vec<u8>,
    status: u16,
    code: &'static str,
) -> BadRequest {
    BadRequest {
        headers: vec![("content-type", media_type.to_owned())],
        body,
        ..row(
            "PUT",
            format!("/v2/errors/known/manifests/{reference}"),
            status,
            code,
        )
    }
}

/// Requests refused for what they are, before any store is asked: bad
/// names, digests, references, session ids and query parameters.
pub fn refused_before_the_store() -> Vec<BadRequest> {
    let d = digest(b"");
    let mut rows = Vec::new();
    for name in [
        "Upper/Case",
        "trailing-/x",
        "a//b",
        "double..dot",
        "%2e%2e",
        "A",
    ] {
        rows.push(row(
            "POST",
            format!("/v2/{name}/blobs/uploads/"),
            400,
            "NAME_INVALID",
        ));
        rows.push(row(
            "GET",
            format!("/v2/{name}/tags/list"),
            400,
            "NAME_INVALID",
        ));
        rows.push(row(
            "GET",
            format!("/v2/{name}/manifests/x"),
            400,
            "NAME_INVALID",
        ));
    }
    #[rustfmt::skip]
    let paths = [
        row("GET", "/v2/a%2fb/blobs/uploads/0123456789abcdef", 400, "NAME_INVALID"),
        row("POST", format!("/v2/a/blobs/uploads/?mount={d}&from=..%2Fb"), 400, "NAME_INVALID"),
        row("GET", "/v2/a/manifests/..", 404, "MANIFEST_UNKNOWN"),
        row("DELETE", "/v2/a/manifests/%2e%2e", 404, "MANIFEST_UNKNOWN"),
        row("PUT", "/v2/a/manifests/.x", 400, "MANIFEST_INVALID"),
        row("PUT", "/v2/a/manifests/-x", 400, "MANIFEST_INVALID"),
        row("GET", "/v2/a/blobs/uploads/..%2f..%2f..%2f..%2fetc", 404, "BLOB_UPLOAD_UNKNOWN"),
        row("PUT", "/v2/a/blobs/uploads/0123456789abcdef?digest=sha256:x", 400, "DIGEST_INVALID"),
        row("GET", "/v2/a/tags/list?n=ten", 400, "UNSUPPORTED"),
        row("GET", "/v2/a/tags/list?n=-2", 400, "UNSUPPORTED"),
        row("GET", "/v2/_catalog?n=abc", 400, "UNSUPPORTED"),
        row("GET", "/v2/a/referrers/latest", 400, "DIGEST_INVALID"),
        row("GET", "/v2/a/referrers/sha256:nothex", 400, "DIGEST_INVALID"),
    ];
    rows.extend(paths);
    for bad in [
        "sha256:abc",
        "sha256:1234",
        "sha256:ZZZZ",
        "md5:d41d8cd98f00b204e9800998ecf8427e",
        "notadigest",
    ] {
        rows.push(row(
            "GET",
            format!("/v2/a/blobs/{bad}"),
            400,
            "DIGEST_INVALID",
        ));
    }
    rows
}

/// Every bad request gets its status and the spec's JSON error body with
/// its code, whether it is refused by its form or by what the store holds.
pub fn bad_requests_get_their_error_code<T: Transport>(c: &Client<T>) {
    c.push_image("errors/known", "v1", "errors");
    let config = b"{}".to_vec();
    c.push_blob("errors/known", &config);
    let nothing = digest(b"nothing");
    let manifest = image_manifest(&config, &[], None, None);

    let mut rows = refused_before_the_store();
    rows.extend([
        row(
            "GET",
            format!("/v2/errors/known/blobs/{nothing}"),
            404,
            "BLOB_UNKNOWN",
        ),
        row(
            "GET",
            "/v2/errors/known/manifests/v9",
            404,
            "MANIFEST_UNKNOWN",
        ),
        row(
            "GET",
            format!("/v2/errors/known/manifests/{nothing}"),
            404,
            "MANIFEST_UNKNOWN",
        ),
        row("GET", "/v2/errors/unknown/tags/list", 404, "NAME_UNKNOWN"),
        row(
            "GET",
            "/v2/errors/unknown/manifests/latest",
            404,
            "MANIFEST_UNKNOWN",
        ),
        // Closing a session with a bad digest, or none.
        BadRequest {
            body: b"content".to_vec(),
            ..row("PUT", "{upload}?digest=sha256:abc", 400, "DIGEST_INVALID")
        },
        BadRequest {
            body: b"content".to_vec(),
            ..row("PUT", "{upload}", 400, "DIGEST_INVALID")
        },
        // Manifests: not JSON, not what the Content-Type says, layers that
        // are not descriptors, pushed under a digest that is not theirs.
        manifest_row(
            "v1",
            OCI_MANIFEST,
            b"not json".to_vec(),
            400,
            "MANIFEST_INVALID",
        ),
        manifest_row("v1", OCI_INDEX, manifest.clone(), 400, "MANIFEST_INVALID"),
        manifest_row(
            "v1",
            OCI_MANIFEST,
            serde_json::to_vec(&json!({
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": descriptor(OCI_CONFIG, &config),
                "layers": [{ "mediaType": OCI_LAYER }],
            }))
            .unwrap(),
            400,
            "MANIFEST_INVALID",
        ),
        manifest_row(
            &nothing,
            OCI_MANIFEST,
            manifest.clone(),
            400,
            "DIGEST_INVALID",
        ),
        // References the repository does not have: a layer, a config, an
        // index's manifest.
        manifest_row(
            "v2",
            OCI_MANIFEST,
            image_manifest(&config, &[b"layer never pushed"], None, None),
            400,
            "MANIFEST_BLOB_UNKNOWN",
        ),
        manifest_row(
            "v2",
            OCI_MANIFEST,
            image_manifest(b"config never pushed", &[], None, None),
            400,
            "MANIFEST_BLOB_UNKNOWN",
        ),
        manifest_row(
            "v2",
            OCI_INDEX,
            serde_json::to_vec(&json!({
                "schemaVersion": 2,
                "mediaType": OCI_INDEX,
                "manifests": [descriptor(OCI_MANIFEST, b"{\"no\":\"such manifest\"}")],
            }))
            .unwrap(),
            400,
            "MANIFEST_BLOB_UNKNOWN",
        ),
    ]);

    for r in &rows {
        let path = if r.path.contains("{upload}") {
            let upload = c
                .post("/v2/errors/known/blobs/uploads/", &[], b"")
                .location();
            r.path.replace("{upload}", &upload)
        } else {
            r.path.clone()
        };
        let headers: Vec<(&str, &str)> = r.headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let body = if r.body.is_empty() && matches!(r.method, "GET" | "DELETE") {
            Body::None
        } else {
            Body::Full(r.body.clone())
        };
        let reply = c.send(r.method, &path, &headers, body);
        assert!(
            reply.status == r.status && reply.error_codes() == [r.code],
            "{} {path}: want {} {}, got {reply:?} {}",
            r.method,
            r.status,
            r.code,
            reply.text()
        );
        reply.assert_error(r.status, r.code);
        let pull = path.contains("/manifests/")
            || (path.contains("/blobs/") && !path.contains("/uploads/"));
        if r.method == "GET" && pull {
            // HEAD: the same status (no body over HTTP, whatever the
            // router's response holds).
            let head = c.head(&path, &headers);
            assert_eq!(head.status, r.status, "HEAD {path}");
        }
    }
    // Nothing refused was stored.
    for reference in ["v2", nothing.as_str()] {
        c.get(&format!("/v2/errors/known/manifests/{reference}"), &[])
            .assert_error(404, "MANIFEST_UNKNOWN");
    }
}
