//! One test per row of the error table, and the body format.

use http_body_util::BodyExt;
use serde_json::{Value, json};

use super::*;

const ANY: Target = Target::Endpoint(Endpoint::BlobRead);

fn row(kind: ErrorKind, target: Target) -> (u16, &'static str) {
    let (status, code) = status_and_code(kind, target);
    (status.as_u16(), code)
}

#[test]
fn blob_unknown() {
    assert_eq!(row(ErrorKind::BlobUnknown, ANY), (404, "BLOB_UNKNOWN"));
}

#[test]
fn blob_upload_invalid() {
    assert_eq!(
        row(ErrorKind::BlobUploadInvalid, ANY),
        (400, "BLOB_UPLOAD_INVALID")
    );
}

#[test]
fn blob_upload_unknown() {
    assert_eq!(
        row(ErrorKind::BlobUploadUnknown, ANY),
        (404, "BLOB_UPLOAD_UNKNOWN")
    );
}

#[test]
fn range_invalid() {
    assert_eq!(
        row(ErrorKind::RangeInvalid, ANY),
        (416, "BLOB_UPLOAD_INVALID")
    );
    let chunk = Target::Endpoint(Endpoint::UploadChunk);
    assert_eq!(
        row(ErrorKind::RangeInvalid, chunk),
        (416, "BLOB_UPLOAD_INVALID")
    );
}

#[test]
fn digest_invalid() {
    assert_eq!(row(ErrorKind::DigestInvalid, ANY), (400, "DIGEST_INVALID"));
}

#[test]
fn manifest_blob_unknown() {
    assert_eq!(
        row(ErrorKind::ManifestBlobUnknown, ANY),
        (400, "MANIFEST_BLOB_UNKNOWN")
    );
}

#[test]
fn manifest_invalid() {
    assert_eq!(
        row(ErrorKind::ManifestInvalid, ANY),
        (400, "MANIFEST_INVALID")
    );
}

#[test]
fn manifest_unknown() {
    assert_eq!(
        row(ErrorKind::ManifestUnknown, ANY),
        (404, "MANIFEST_UNKNOWN")
    );
}

#[test]
fn name_invalid() {
    assert_eq!(row(ErrorKind::NameInvalid, ANY), (400, "NAME_INVALID"));
}

#[test]
fn name_unknown() {
    assert_eq!(row(ErrorKind::NameUnknown, ANY), (404, "NAME_UNKNOWN"));
}

#[test]
fn size_invalid() {
    assert_eq!(row(ErrorKind::SizeInvalid, ANY), (400, "SIZE_INVALID"));
}

#[test]
fn unauthorized() {
    assert_eq!(row(ErrorKind::Unauthorized, ANY), (401, "UNAUTHORIZED"));
}

#[test]
fn denied() {
    assert_eq!(row(ErrorKind::Denied, ANY), (403, "DENIED"));
}

#[test]
fn unsupported() {
    assert_eq!(
        row(ErrorKind::Unsupported, Target::UnknownPath),
        (404, "UNSUPPORTED")
    );
    assert_eq!(
        row(ErrorKind::Unsupported, Target::WrongMethod),
        (405, "UNSUPPORTED")
    );
    let del = Target::Endpoint(Endpoint::ManifestDelete);
    assert_eq!(row(ErrorKind::Unsupported, del), (405, "UNSUPPORTED"));
}

#[test]
fn too_many_requests() {
    assert_eq!(
        row(ErrorKind::TooManyRequests, ANY),
        (429, "TOOMANYREQUESTS")
    );
}

#[test]
fn tag_invalid() {
    let put = Target::Endpoint(Endpoint::ManifestPut);
    assert_eq!(row(ErrorKind::TagInvalid, put), (400, "MANIFEST_INVALID"));
    for e in [Endpoint::ManifestRead, Endpoint::ManifestDelete] {
        assert_eq!(
            row(ErrorKind::TagInvalid, Target::Endpoint(e)),
            (404, "MANIFEST_UNKNOWN")
        );
    }
}

#[test]
fn invalid_argument() {
    let tags = Target::Endpoint(Endpoint::Tags);
    assert_eq!(row(ErrorKind::InvalidArgument, tags), (400, "UNSUPPORTED"));
}

#[test]
fn incomplete() {
    assert_eq!(row(ErrorKind::Incomplete, ANY), (400, "SIZE_INVALID"));
}

#[test]
fn too_large() {
    let put = Target::Endpoint(Endpoint::ManifestPut);
    assert_eq!(row(ErrorKind::TooLarge, put), (413, "MANIFEST_INVALID"));
    let chunk = Target::Endpoint(Endpoint::UploadChunk);
    assert_eq!(row(ErrorKind::TooLarge, chunk), (413, "SIZE_INVALID"));
}

#[test]
fn conflict() {
    for e in [Endpoint::UploadChunk, Endpoint::UploadFinish] {
        assert_eq!(
            row(ErrorKind::Conflict, Target::Endpoint(e)),
            (416, "BLOB_UPLOAD_INVALID")
        );
    }
    for e in [Endpoint::ManifestPut, Endpoint::ManifestDelete] {
        assert_eq!(
            row(ErrorKind::Conflict, Target::Endpoint(e)),
            (409, "MANIFEST_INVALID")
        );
    }
    let del = Target::Endpoint(Endpoint::BlobDelete);
    assert_eq!(row(ErrorKind::Conflict, del), (409, "UNSUPPORTED"));
}

#[test]
fn storage_and_internal() {
    assert_eq!(row(ErrorKind::Storage, ANY), (500, "UNKNOWN"));
    assert_eq!(row(ErrorKind::Internal, ANY), (500, "UNKNOWN"));
}

#[test]
fn unavailable_is_503_as_distribution_answers() {
    assert_eq!(row(ErrorKind::Unavailable, ANY), (503, "UNAVAILABLE"));
}

async fn body_json(res: Response<Body>) -> Value {
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    serde_json::from_slice(&bytes).unwrap()
}

#[tokio::test]
async fn client_error_body_carries_message_and_detail() {
    let e = Error::new(ErrorKind::BlobUnknown, "no such blob").with_detail(json!({"digest": "x"}));
    let res = error_response(&e, ANY);
    assert_eq!(res.status(), 404);
    assert_eq!(res.headers()[CONTENT_TYPE], "application/json");
    assert_eq!(
        body_json(res).await,
        json!({"errors": [{"code": "BLOB_UNKNOWN", "message": "no such blob", "detail": {"digest": "x"}}]})
    );
    let plain = error_response(&Error::new(ErrorKind::DigestInvalid, "bad"), ANY);
    assert_eq!(
        body_json(plain).await,
        json!({"errors": [{"code": "DIGEST_INVALID", "message": "bad"}]})
    );
}

#[tokio::test]
async fn server_error_body_hides_internals() {
    let io = std::io::Error::other("/var/lib/registry/secret: permission denied");
    let e = Error::new(ErrorKind::Storage, "reading /var/lib/registry/x")
        .with_detail(json!({"path": "/var/lib/registry"}))
        .with_source(io);
    let res = error_response(&e, ANY);
    assert_eq!(res.status(), 500);
    let body = body_json(res).await;
    assert_eq!(
        body,
        json!({"errors": [{"code": "UNKNOWN", "message": "storage backend error"}]})
    );
    assert!(!body.to_string().contains("/var/lib"));
}
