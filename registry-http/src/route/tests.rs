//! Route parsing, as tables of request → route and request → error.

use http::{Method, Uri};
use registry_core::{Digest, ErrorKind, Reference, RepositoryName, Tag, UploadId};

use super::*;

const D: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
const ID: &str = "0123456789abcdef0123456789abcdef";

fn parse(method: &str, uri: &str) -> Result<Route, Unrouted> {
    let uri: Uri = uri.parse().unwrap_or_else(|e| panic!("{uri}: {e}"));
    resolve(&Method::from_bytes(method.as_bytes()).unwrap(), &uri)
}

fn name(s: &str) -> RepositoryName {
    RepositoryName::parse(s).unwrap()
}

fn digest() -> Digest {
    Digest::parse(D).unwrap()
}

fn id() -> UploadId {
    UploadId::parse(ID).unwrap()
}

fn tag(s: &str) -> Reference {
    Reference::Tag(Tag::parse(s).unwrap())
}

#[test]
fn valid_routes() {
    let by_digest = Reference::Digest(digest());
    let cases: Vec<(&str, String, Route)> = vec![
        ("GET", "/v2/".into(), Route::Base),
        ("GET", "/v2".into(), Route::Base),
        ("HEAD", "/v2/".into(), Route::Base),
        (
            "GET",
            "/v2/_catalog".into(),
            Route::Catalog {
                n: None,
                last: None,
            },
        ),
        (
            "GET",
            "/v2/_catalog?n=10&last=a/b".into(),
            Route::Catalog {
                n: Some(10),
                last: Some(name("a/b")),
            },
        ),
        (
            "GET",
            format!("/v2/a/blobs/{D}"),
            Route::GetBlob {
                name: name("a"),
                digest: digest(),
                head: false,
            },
        ),
        (
            "HEAD",
            format!("/v2/a/b/c/blobs/{D}"),
            Route::GetBlob {
                name: name("a/b/c"),
                digest: digest(),
                head: true,
            },
        ),
        // An encoded `:` in a digest.
        (
            "GET",
            format!("/v2/a/blobs/{}", D.replace(':', "%3A")),
            Route::GetBlob {
                name: name("a"),
                digest: digest(),
                head: false,
            },
        ),
        (
            "DELETE",
            format!("/v2/a/blobs/{D}"),
            Route::DeleteBlob {
                name: name("a"),
                digest: digest(),
            },
        ),
        (
            "POST",
            "/v2/a/blobs/uploads/".into(),
            Route::StartUpload {
                name: name("a"),
                mode: UploadMode::Session,
            },
        ),
        (
            "POST",
            "/v2/a/blobs/uploads".into(),
            Route::StartUpload {
                name: name("a"),
                mode: UploadMode::Session,
            },
        ),
        (
            "POST",
            format!("/v2/a/blobs/uploads/?digest={D}"),
            Route::StartUpload {
                name: name("a"),
                mode: UploadMode::Monolithic(digest()),
            },
        ),
        (
            "POST",
            format!("/v2/a/blobs/uploads/?mount={D}&from=b/c"),
            Route::StartUpload {
                name: name("a"),
                mode: UploadMode::Mount {
                    digest: digest(),
                    from: Some(name("b/c")),
                },
            },
        ),
        (
            "POST",
            format!("/v2/a/blobs/uploads/?mount={D}"),
            Route::StartUpload {
                name: name("a"),
                mode: UploadMode::Mount {
                    digest: digest(),
                    from: None,
                },
            },
        ),
        (
            "GET",
            format!("/v2/a/blobs/uploads/{ID}"),
            Route::UploadStatus {
                name: name("a"),
                id: id(),
            },
        ),
        (
            "PATCH",
            format!("/v2/a/blobs/uploads/{ID}"),
            Route::PatchUpload {
                name: name("a"),
                id: id(),
            },
        ),
        (
            "PUT",
            format!("/v2/a/blobs/uploads/{ID}?digest={D}"),
            Route::FinishUpload {
                name: name("a"),
                id: id(),
                digest: digest(),
            },
        ),
        (
            "PUT",
            format!(
                "/v2/a/blobs/uploads/{ID}?_state=opaque&digest={}",
                D.replace(':', "%3a")
            ),
            Route::FinishUpload {
                name: name("a"),
                id: id(),
                digest: digest(),
            },
        ),
        (
            "DELETE",
            format!("/v2/a/blobs/uploads/{ID}"),
            Route::CancelUpload {
                name: name("a"),
                id: id(),
            },
        ),
        (
            "GET",
            "/v2/a/manifests/latest".into(),
            Route::GetManifest {
                name: name("a"),
                reference: tag("latest"),
                head: false,
            },
        ),
        (
            "HEAD",
            format!("/v2/a/manifests/{D}"),
            Route::GetManifest {
                name: name("a"),
                reference: by_digest.clone(),
                head: true,
            },
        ),
        (
            "PUT",
            "/v2/a/manifests/v1.0".into(),
            Route::PutManifest {
                name: name("a"),
                reference: tag("v1.0"),
            },
        ),
        (
            "DELETE",
            format!("/v2/a/manifests/{D}"),
            Route::DeleteManifest {
                name: name("a"),
                reference: by_digest,
            },
        ),
        (
            "GET",
            "/v2/a/tags/list".into(),
            Route::ListTags {
                name: name("a"),
                n: None,
                last: None,
            },
        ),
        (
            "GET",
            "/v2/a/tags/list?n=0&last=v1".into(),
            Route::ListTags {
                name: name("a"),
                n: Some(0),
                last: Some(Tag::parse("v1").unwrap()),
            },
        ),
        (
            "GET",
            format!("/v2/a/referrers/{D}"),
            Route::ListReferrers {
                name: name("a"),
                digest: digest(),
                artifact_type: None,
                n: None,
                last: None,
            },
        ),
        (
            "GET",
            format!("/v2/a/referrers/{D}?artifactType=application%2Fvnd.example.sbom.v1%2Bjson"),
            Route::ListReferrers {
                name: name("a"),
                digest: digest(),
                artifact_type: Some("application/vnd.example.sbom.v1+json".into()),
                n: None,
                last: None,
            },
        ),
        (
            "GET",
            format!("/v2/a/referrers/{D}?artifactType=application/vnd.example+json"),
            Route::ListReferrers {
                name: name("a"),
                digest: digest(),
                artifact_type: Some("application/vnd.example+json".into()),
                n: None,
                last: None,
            },
        ),
        (
            "GET",
            format!("/v2/a/referrers/{D}?n=5&last={D}&artifactType=a%2Fb"),
            Route::ListReferrers {
                name: name("a"),
                digest: digest(),
                artifact_type: Some("a/b".into()),
                n: Some(5),
                last: Some(digest()),
            },
        ),
        // Names holding the words of endpoint suffixes: the suffix is
        // matched from the right.
        (
            "GET",
            "/v2/a/blobs/manifests/x".into(),
            Route::GetManifest {
                name: name("a/blobs"),
                reference: tag("x"),
                head: false,
            },
        ),
        (
            "GET",
            "/v2/manifests/manifests/x".into(),
            Route::GetManifest {
                name: name("manifests"),
                reference: tag("x"),
                head: false,
            },
        ),
        (
            "GET",
            format!("/v2/blobs/blobs/{D}"),
            Route::GetBlob {
                name: name("blobs"),
                digest: digest(),
                head: false,
            },
        ),
        (
            "GET",
            format!("/v2/a/manifests/b/blobs/{D}"),
            Route::GetBlob {
                name: name("a/manifests/b"),
                digest: digest(),
                head: false,
            },
        ),
        (
            "POST",
            "/v2/a/blobs/uploads/b/blobs/uploads/".into(),
            Route::StartUpload {
                name: name("a/blobs/uploads/b"),
                mode: UploadMode::Session,
            },
        ),
        (
            "PATCH",
            format!("/v2/x/blobs/uploads/blobs/uploads/{ID}"),
            Route::PatchUpload {
                name: name("x/blobs/uploads"),
                id: id(),
            },
        ),
        (
            "GET",
            "/v2/tags/tags/list".into(),
            Route::ListTags {
                name: name("tags"),
                n: None,
                last: None,
            },
        ),
        (
            "GET",
            "/v2/a/tags/list/tags/list".into(),
            Route::ListTags {
                name: name("a/tags/list"),
                n: None,
                last: None,
            },
        ),
        (
            "GET",
            "/v2/a/referrers/manifests/latest".into(),
            Route::GetManifest {
                name: name("a/referrers"),
                reference: tag("latest"),
                head: false,
            },
        ),
        // Absolute-form request targets.
        (
            "GET",
            "http://registry.example/v2/a/manifests/latest".into(),
            Route::GetManifest {
                name: name("a"),
                reference: tag("latest"),
                head: false,
            },
        ),
    ];
    for (method, uri, want) in cases {
        match parse(method, &uri) {
            Ok(got) => assert_eq!(got, want, "{method} {uri}"),
            Err(e) => panic!("{method} {uri}: {:?}", e.error),
        }
    }
}

#[test]
fn invalid_routes() {
    use ErrorKind::*;
    let long_name = format!("/v2/{}/manifests/x", "a".repeat(256));
    let long_tag = format!("/v2/a/manifests/{}", "t".repeat(129));
    let cases: Vec<(&str, String, ErrorKind, Target)> = vec![
        // Not an endpoint.
        ("GET", "/".into(), Unsupported, Target::UnknownPath),
        ("GET", "/v1/".into(), Unsupported, Target::UnknownPath),
        ("GET", "/v2x/".into(), Unsupported, Target::UnknownPath),
        ("GET", "/v2/a".into(), Unsupported, Target::UnknownPath),
        ("GET", "/v2/a/b".into(), Unsupported, Target::UnknownPath),
        ("GET", "/v2/a/tags".into(), Unsupported, Target::UnknownPath),
        (
            "GET",
            "/v2/a/manifests/".into(),
            Unsupported,
            Target::UnknownPath,
        ),
        (
            "GET",
            "/v2/a/blobs/".into(),
            Unsupported,
            Target::UnknownPath,
        ),
        (
            "GET",
            "/v2/tags/list".into(),
            Unsupported,
            Target::UnknownPath,
        ),
        (
            "GET",
            "/v2/a/tags/list/".into(),
            Unsupported,
            Target::UnknownPath,
        ),
        (
            "GET",
            "/v2/_catalog/".into(),
            Unsupported,
            Target::UnknownPath,
        ),
        // Wrong method.
        ("POST", "/v2/".into(), Unsupported, Target::WrongMethod),
        (
            "PUT",
            format!("/v2/a/blobs/{D}"),
            Unsupported,
            Target::WrongMethod,
        ),
        (
            "PATCH",
            "/v2/a/manifests/x".into(),
            Unsupported,
            Target::WrongMethod,
        ),
        (
            "GET",
            "/v2/a/blobs/uploads/".into(),
            Unsupported,
            Target::WrongMethod,
        ),
        (
            "POST",
            format!("/v2/a/blobs/uploads/{ID}"),
            Unsupported,
            Target::WrongMethod,
        ),
        (
            "HEAD",
            format!("/v2/a/blobs/uploads/{ID}"),
            Unsupported,
            Target::WrongMethod,
        ),
        (
            "DELETE",
            "/v2/a/tags/list".into(),
            Unsupported,
            Target::WrongMethod,
        ),
        (
            "DELETE",
            "/v2/_catalog".into(),
            Unsupported,
            Target::WrongMethod,
        ),
        (
            "POST",
            format!("/v2/a/referrers/{D}"),
            Unsupported,
            Target::WrongMethod,
        ),
        // Invalid names, including traversal attempts.
        (
            "GET",
            "/v2/A/manifests/x".into(),
            NameInvalid,
            Target::Endpoint(Endpoint::ManifestRead),
        ),
        (
            "GET",
            "/v2/../manifests/x".into(),
            NameInvalid,
            Target::Endpoint(Endpoint::ManifestRead),
        ),
        (
            "GET",
            "/v2/a/../b/manifests/x".into(),
            NameInvalid,
            Target::Endpoint(Endpoint::ManifestRead),
        ),
        (
            "GET",
            "/v2/%2e%2e/manifests/x".into(),
            NameInvalid,
            Target::Endpoint(Endpoint::ManifestRead),
        ),
        (
            "GET",
            "/v2/a%2fb/manifests/x".into(),
            NameInvalid,
            Target::Endpoint(Endpoint::ManifestRead),
        ),
        (
            "GET",
            "/v2/a%2F..%2Fb/manifests/x".into(),
            NameInvalid,
            Target::Endpoint(Endpoint::ManifestRead),
        ),
        (
            "GET",
            "/v2/a%00/manifests/x".into(),
            NameInvalid,
            Target::Endpoint(Endpoint::ManifestRead),
        ),
        (
            "GET",
            "/v2//a/manifests/x".into(),
            NameInvalid,
            Target::Endpoint(Endpoint::ManifestRead),
        ),
        (
            "GET",
            "/v2/a//b/manifests/x".into(),
            NameInvalid,
            Target::Endpoint(Endpoint::ManifestRead),
        ),
        (
            "GET",
            "/v2//etc/passwd/manifests/x".into(),
            NameInvalid,
            Target::Endpoint(Endpoint::ManifestRead),
        ),
        (
            "GET",
            long_name,
            NameInvalid,
            Target::Endpoint(Endpoint::ManifestRead),
        ),
        (
            "POST",
            "/v2//blobs/uploads/".into(),
            NameInvalid,
            Target::Endpoint(Endpoint::UploadStart),
        ),
        (
            "GET",
            "/v2/_x/tags/list".into(),
            NameInvalid,
            Target::Endpoint(Endpoint::Tags),
        ),
        // Invalid references.
        (
            "GET",
            "/v2/a/manifests/..".into(),
            TagInvalid,
            Target::Endpoint(Endpoint::ManifestRead),
        ),
        (
            "GET",
            "/v2/a/manifests/%2e%2e".into(),
            TagInvalid,
            Target::Endpoint(Endpoint::ManifestRead),
        ),
        (
            "GET",
            "/v2/a/manifests/x%2f..%2fy".into(),
            TagInvalid,
            Target::Endpoint(Endpoint::ManifestRead),
        ),
        (
            "GET",
            "/v2/a/manifests/x%00".into(),
            TagInvalid,
            Target::Endpoint(Endpoint::ManifestRead),
        ),
        (
            "PUT",
            "/v2/a/manifests/-bad".into(),
            TagInvalid,
            Target::Endpoint(Endpoint::ManifestPut),
        ),
        (
            "DELETE",
            long_tag,
            TagInvalid,
            Target::Endpoint(Endpoint::ManifestDelete),
        ),
        (
            "GET",
            "/v2/a/manifests/sha256:abc".into(),
            DigestInvalid,
            Target::Endpoint(Endpoint::ManifestRead),
        ),
        // Invalid digests.
        (
            "GET",
            "/v2/a/blobs/sha256:abc".into(),
            DigestInvalid,
            Target::Endpoint(Endpoint::BlobRead),
        ),
        (
            "GET",
            "/v2/a/blobs/latest".into(),
            DigestInvalid,
            Target::Endpoint(Endpoint::BlobRead),
        ),
        (
            "GET",
            "/v2/a/blobs/sha256:..%2f..%2fetc".into(),
            DigestInvalid,
            Target::Endpoint(Endpoint::BlobRead),
        ),
        (
            "DELETE",
            format!("/v2/a/blobs/{}", D.to_uppercase()),
            DigestInvalid,
            Target::Endpoint(Endpoint::BlobDelete),
        ),
        (
            "GET",
            "/v2/a/referrers/nope".into(),
            DigestInvalid,
            Target::Endpoint(Endpoint::Referrers),
        ),
        (
            "POST",
            "/v2/a/blobs/uploads/?digest=sha256:0".into(),
            DigestInvalid,
            Target::Endpoint(Endpoint::UploadStart),
        ),
        (
            "POST",
            "/v2/a/blobs/uploads/?mount=x&from=b".into(),
            DigestInvalid,
            Target::Endpoint(Endpoint::UploadStart),
        ),
        (
            "POST",
            format!("/v2/a/blobs/uploads/?mount={D}&from=B"),
            NameInvalid,
            Target::Endpoint(Endpoint::UploadStart),
        ),
        (
            "POST",
            format!("/v2/a/blobs/uploads/?mount={D}&from=..%2Fb"),
            NameInvalid,
            Target::Endpoint(Endpoint::UploadStart),
        ),
        // Upload ids and the closing digest.
        (
            "GET",
            "/v2/a/blobs/uploads/short".into(),
            BlobUploadUnknown,
            Target::Endpoint(Endpoint::UploadStatus),
        ),
        (
            "PATCH",
            "/v2/a/blobs/uploads/%2e%2e%2f%2e%2e%2f%2e%2e%2f%2e%2e".into(),
            BlobUploadUnknown,
            Target::Endpoint(Endpoint::UploadChunk),
        ),
        (
            "PUT",
            format!("/v2/a/blobs/uploads/{ID}"),
            DigestInvalid,
            Target::Endpoint(Endpoint::UploadFinish),
        ),
        (
            "PUT",
            format!("/v2/a/blobs/uploads/{ID}?digest=md5:x"),
            DigestInvalid,
            Target::Endpoint(Endpoint::UploadFinish),
        ),
        // Query parameters.
        (
            "GET",
            "/v2/a/tags/list?n=-1".into(),
            InvalidArgument,
            Target::Endpoint(Endpoint::Tags),
        ),
        (
            "GET",
            "/v2/a/tags/list?n=ten".into(),
            InvalidArgument,
            Target::Endpoint(Endpoint::Tags),
        ),
        (
            "GET",
            "/v2/a/tags/list?last=..".into(),
            InvalidArgument,
            Target::Endpoint(Endpoint::Tags),
        ),
        (
            "GET",
            format!("/v2/a/referrers/{D}?last=sha256:nope"),
            InvalidArgument,
            Target::Endpoint(Endpoint::Referrers),
        ),
        (
            "GET",
            format!("/v2/a/referrers/{D}?n=x"),
            InvalidArgument,
            Target::Endpoint(Endpoint::Referrers),
        ),
        (
            "GET",
            "/v2/_catalog?n=1e3".into(),
            InvalidArgument,
            Target::Endpoint(Endpoint::Catalog),
        ),
        (
            "GET",
            "/v2/_catalog?last=..%2F..".into(),
            InvalidArgument,
            Target::Endpoint(Endpoint::Catalog),
        ),
        (
            "GET",
            format!("/v2/a/referrers/{D}?artifactType=not%20a%20type"),
            InvalidArgument,
            Target::Endpoint(Endpoint::Referrers),
        ),
    ];
    for (method, uri, kind, target) in cases {
        match parse(method, &uri) {
            Ok(route) => panic!("{method} {uri}: accepted as {route:?}"),
            Err(u) => {
                assert_eq!(
                    (u.error.kind(), u.target),
                    (kind, target),
                    "{method} {uri}: {:?}",
                    u.error
                );
                assert_eq!(
                    u.allow.is_some(),
                    target == Target::WrongMethod,
                    "{method} {uri}"
                );
            }
        }
    }
}

#[test]
fn raw_nul_and_spaces_never_reach_the_router() {
    // `http` refuses them while parsing the request target.
    for raw in [
        "/v2/a\0/manifests/x",
        "/v2/a b/manifests/x",
        "/v2/a/manifests/x\0",
    ] {
        assert!(raw.parse::<Uri>().is_err(), "{raw:?}");
    }
}

#[test]
fn allow_lists_the_methods_of_the_path() {
    let allow = |m, u: &str| parse(m, u).unwrap_err().allow.unwrap();
    assert_eq!(allow("POST", "/v2/a/manifests/x"), "GET, HEAD, PUT, DELETE");
    assert_eq!(allow("GET", "/v2/a/blobs/uploads/"), "POST");
    assert_eq!(
        allow("HEAD", &format!("/v2/a/blobs/uploads/{ID}")),
        "GET, PATCH, PUT, DELETE"
    );
}

#[test]
fn public_parse_matches() {
    let uri: Uri = "/v2/a/tags/list".parse().unwrap();
    assert!(matches!(
        Route::parse(&Method::GET, &uri),
        Ok(Route::ListTags { .. })
    ));
    let uri: Uri = "/nope".parse().unwrap();
    assert_eq!(
        Route::parse(&Method::GET, &uri).unwrap_err().kind(),
        ErrorKind::Unsupported
    );
}

#[test]
fn access_per_route() {
    use crate::auth::Action;
    let access = |m, u: &str| {
        let r = parse(m, u).unwrap();
        let a = r.access();
        (
            a.repository.map(|n| n.to_string()),
            a.actions.iter().collect::<Vec<_>>(),
            a.catalog,
        )
    };
    assert_eq!(access("GET", "/v2/"), (None, vec![], false));
    assert_eq!(
        access("GET", "/v2/_catalog"),
        (None, vec![Action::Pull], true)
    );
    assert_eq!(
        access("GET", "/v2/a/tags/list"),
        (Some("a".into()), vec![Action::Pull], false)
    );
    assert_eq!(
        access("POST", "/v2/a/blobs/uploads/"),
        (Some("a".into()), vec![Action::Pull, Action::Push], false)
    );
    assert_eq!(
        access("PUT", "/v2/a/manifests/x"),
        (Some("a".into()), vec![Action::Pull, Action::Push], false)
    );
    assert_eq!(
        access("DELETE", "/v2/a/manifests/x"),
        (Some("a".into()), vec![Action::Delete], false)
    );
}
