//! Manifests under configurations other than the default (the endpoint
//! suite in `endpoints.rs` covers the rest): the size limit, a public
//! prefix in `Link`s, foreign layer URLs; through `Router::handle` on the
//! memory store.

mod common;

use common::InProcess;
use registry_core::ManifestLimits;
use registry_http::RouterConfig;
use registry_storage::OpendalStore;
use registry_testkit::Body;
use registry_testkit::content::{OCI_INDEX, OCI_MANIFEST, digest};
use serde_json::json;

#[test]
fn manifest_size_limit() {
    // The store's limit is the router's: one owner.
    let store = OpendalStore::memory().with_manifest_limits(ManifestLimits { max_size: 64 });
    let reg = InProcess::with_store(store, RouterConfig::default()).client();
    let big = vec![b' '; 65];
    reg.put_manifest("a", "x", OCI_MANIFEST, &big)
        .assert_error(413, "MANIFEST_INVALID");
    // Streamed, with no Content-Length.
    let r = reg.send(
        "PUT",
        "/v2/a/manifests/x",
        &[("content-type", OCI_MANIFEST)],
        Body::Streamed(vec![big[..40].to_vec(), big[40..].to_vec()]),
    );
    r.assert_error(413, "MANIFEST_INVALID");
}

#[test]
fn tags_pagination_under_a_public_prefix() {
    let config = RouterConfig::default().with_public_prefix("/registry");
    let reg = InProcess::with_config(config)
        .behind_proxy("/registry")
        .client();
    let (manifest, _) = reg.push_image("a/b", "b", "layer");
    for tag in ["a", "c", "B", "d"] {
        let r = reg.put_manifest("a/b", tag, OCI_MANIFEST, &manifest);
        assert_eq!(r.status, 201);
    }
    let r = reg.get("/v2/a/b/tags/list", &[]);
    assert_eq!(r.status, 200);
    assert_eq!(
        r.json(),
        json!({"name": "a/b", "tags": ["B", "a", "b", "c", "d"]})
    );
    assert!(!r.has("link"));

    let r = reg.get("/v2/a/b/tags/list?n=2", &[]);
    assert_eq!(r.json()["tags"], json!(["B", "a"]));
    assert_eq!(
        r.must("link"),
        "</registry/v2/a/b/tags/list?n=2&last=a>; rel=\"next\""
    );
    let r = reg.get("/v2/a/b/tags/list?n=2&last=a", &[]);
    assert_eq!(r.json()["tags"], json!(["b", "c"]));
    assert_eq!(
        r.must("link"),
        "</registry/v2/a/b/tags/list?n=2&last=c>; rel=\"next\""
    );
    let r = reg.get("/v2/a/b/tags/list?n=2&last=c", &[]);
    assert_eq!(r.json()["tags"], json!(["d"]));
    assert!(!r.has("link"));
    let r = reg.get("/v2/a/b/tags/list?last=b", &[]);
    assert_eq!(r.json()["tags"], json!(["c", "d"]));
}

/// A manifest in `repo` whose one layer, of `media_type`, is not in the
/// registry and has `urls`.
fn with_absent_layer(reg: &common::Client, repo: &str, media_type: &str, urls: &[&str]) -> Vec<u8> {
    let config = reg.push_blob(repo, b"{}");
    let absent = digest(b"not in the registry");
    let m = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": config,
            "size": 2,
        },
        "layers": [{
            "mediaType": media_type,
            "digest": absent,
            "size": 19,
            "urls": urls,
        }],
    });
    serde_json::to_vec(&m).unwrap()
}

const FOREIGN: &str = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip";

#[test]
fn urls_do_not_excuse_an_ordinary_layer_from_being_here() {
    let reg = InProcess::with_config(RouterConfig::default().with_manifest_urls(
        registry_core::ForeignUrlPolicy::new(["^https://"], [] as [&str; 0]).unwrap(),
    ))
    .client();
    let layer = "application/vnd.oci.image.layer.v1.tar+gzip";
    let m = with_absent_layer(&reg, "a", layer, &["https://example.com/l"]);
    let r = reg.put_manifest("a", "v1", OCI_MANIFEST, &m);
    r.assert_error(400, "MANIFEST_INVALID");
    assert!(r.text().contains("layers[0].urls"), "{}", r.text());
    reg.get("/v2/a/manifests/v1", &[])
        .assert_error(404, "MANIFEST_UNKNOWN");
    // Nor an index entry.
    let absent = digest(b"no such manifest");
    let index = json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [{
            "mediaType": OCI_MANIFEST,
            "digest": absent,
            "size": 7,
            "urls": ["https://example.com/m"],
        }],
    });
    let r = reg.put_manifest("a", "i", OCI_INDEX, index.to_string().as_bytes());
    r.assert_error(400, "MANIFEST_INVALID");
}

#[test]
fn foreign_urls_are_refused_without_a_policy() {
    let reg = common::registry();
    let m = with_absent_layer(&reg, "a", FOREIGN, &["https://example.com/l"]);
    let r = reg.put_manifest("a", "v1", OCI_MANIFEST, &m);
    r.assert_error(400, "MANIFEST_INVALID");
    assert!(
        r.text().contains("accepts no foreign layer URLs"),
        "{}",
        r.text()
    );
    // A foreign layer without urls must be here like any other.
    let m = with_absent_layer(&reg, "a", FOREIGN, &[]);
    let r = reg.put_manifest("a", "v1", OCI_MANIFEST, &m);
    r.assert_error(400, "MANIFEST_BLOB_UNKNOWN");
}

#[test]
fn foreign_urls_where_the_policy_allows() {
    let policy = registry_core::ForeignUrlPolicy::new(
        [r"^https://([^/]+\.)?example\.com/"],
        [r"^https://[^/]+/private/"],
    )
    .unwrap();
    let reg = InProcess::with_config(RouterConfig::default().with_manifest_urls(policy)).client();
    let allowed = ["https://example.com/l", "https://cdn.example.com/l"];
    let m = with_absent_layer(&reg, "a", FOREIGN, &allowed);
    let r = reg.put_manifest("a", "v1", OCI_MANIFEST, &m);
    assert_eq!(r.status, 201, "{}", r.text());
    for refused in [
        "https://example.com/private/l",
        "https://example.org/l",
        "http://example.com/l",
        "https://example.com/l#x",
    ] {
        let m = with_absent_layer(&reg, "a", FOREIGN, &["https://example.com/l", refused]);
        let r = reg.put_manifest("a", "v2", OCI_MANIFEST, &m);
        r.assert_error(400, "MANIFEST_INVALID");
        assert!(
            r.text().contains("is not allowed"),
            "{refused}: {}",
            r.text()
        );
    }
    // The field name spelled with an escape is the same field.
    let m = with_absent_layer(&reg, "a", FOREIGN, &["https://example.org/l"]);
    let escaped = String::from_utf8(m)
        .unwrap()
        .replace("\"urls\"", "\"\\u0075rls\"");
    assert!(!escaped.contains("urls"));
    let r = reg.put_manifest("a", "v3", OCI_MANIFEST, escaped.as_bytes());
    r.assert_error(400, "MANIFEST_INVALID");
}
