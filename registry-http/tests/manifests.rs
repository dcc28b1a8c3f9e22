//! Manifests (end-3, end-7, end-9), tags (end-8), the catalog and
//! referrers (end-12), through `Router::handle` on the memory store.

mod common;

use bytes::Bytes;
use common::{OCI_INDEX, OCI_MANIFEST, Registry};
use registry_core::{Digest, ManifestLimits};
use registry_http::RouterConfig;
use registry_storage::OpendalStore;
use serde_json::json;

#[tokio::test]
async fn push_and_pull_by_tag_and_digest() {
    let reg = Registry::new();
    let manifest = reg.image_manifest("a/b", b"layer", None, None).await;
    let digest = Digest::sha256_of(&manifest);
    let r = reg
        .put_manifest("a/b", "latest", OCI_MANIFEST, manifest.clone())
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.header("location"), format!("/v2/a/b/manifests/{digest}"));
    assert_eq!(r.header("docker-content-digest"), digest.to_string());
    assert!(!r.has("oci-subject"));

    for reference in ["latest".to_owned(), digest.to_string()] {
        let url = format!("/v2/a/b/manifests/{reference}");
        let r = reg.send("GET", &url, &[("accept", OCI_MANIFEST)], "").await;
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.body, manifest, "exact bytes");
        assert_eq!(r.header("content-type"), OCI_MANIFEST);
        assert_eq!(r.header("docker-content-digest"), digest.to_string());
        assert_eq!(r.header("content-length"), manifest.len().to_string());

        let h = reg
            .send("HEAD", &url, &[("accept", OCI_MANIFEST)], "")
            .await;
        assert_eq!(h.status, 200);
        assert!(h.body.is_empty());
        assert_eq!(h.header("content-length"), manifest.len().to_string());
        assert_eq!(h.header("content-type"), OCI_MANIFEST);
    }

    // By digest.
    let r = reg
        .put_manifest("a/b", &digest.to_string(), OCI_MANIFEST, manifest.clone())
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
}

#[tokio::test]
async fn content_negotiation() {
    let reg = Registry::new();
    let (manifest, _) = reg.push_image("a", "v1", b"layer").await;
    let docker = "application/vnd.docker.distribution.manifest.v2+json";
    let accepted: &[&[(&str, &str)]] = &[
        &[],
        &[("accept", "*/*")],
        &[("accept", "application/*")],
        &[("accept", docker), ("accept", OCI_MANIFEST)],
        &[(
            "accept",
            "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json;q=0.9",
        )],
    ];
    for headers in accepted {
        let r = reg.send("GET", "/v2/a/manifests/v1", headers, "").await;
        assert_eq!(r.status, 200, "{headers:?}");
        assert_eq!(r.body, manifest);
    }
    let r = reg
        .send("GET", "/v2/a/manifests/v1", &[("accept", docker)], "")
        .await;
    r.assert_error(404, "MANIFEST_UNKNOWN");
}

#[tokio::test]
async fn unknown_manifests_and_repositories() {
    let reg = Registry::new();
    reg.get("/v2/a/manifests/latest")
        .await
        .assert_error(404, "MANIFEST_UNKNOWN");
    let d = Digest::sha256_of(b"x");
    reg.get(&format!("/v2/a/manifests/{d}"))
        .await
        .assert_error(404, "MANIFEST_UNKNOWN");
    let r = reg.send("HEAD", "/v2/a/manifests/latest", &[], "").await;
    assert_eq!(r.status, 404);
    reg.get("/v2/a/tags/list")
        .await
        .assert_error(404, "NAME_UNKNOWN");
}

#[tokio::test]
async fn invalid_pushes() {
    let reg = Registry::new();
    // Not JSON.
    reg.put_manifest("a", "x", OCI_MANIFEST, Bytes::from_static(b"not json"))
        .await
        .assert_error(400, "MANIFEST_INVALID");
    // References a blob the repository does not have.
    let missing = Digest::sha256_of(b"missing");
    let m = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": missing.to_string(), "size": 7},
        "layers": [],
    });
    reg.put_manifest("a", "x", OCI_MANIFEST, Bytes::from(m.to_string()))
        .await
        .assert_error(400, "MANIFEST_BLOB_UNKNOWN");
    // An invalid tag.
    reg.put_manifest("a", "-x", OCI_MANIFEST, Bytes::from_static(b"{}"))
        .await
        .assert_error(400, "MANIFEST_INVALID");
    // A digest that does not match the body.
    let manifest = reg.image_manifest("a", b"l", None, None).await;
    let r = reg
        .put_manifest("a", &missing.to_string(), OCI_MANIFEST, manifest)
        .await;
    r.assert_error(400, "DIGEST_INVALID");
}

#[tokio::test]
async fn manifest_size_limit() {
    // The store's limit is the router's: one owner.
    let store = OpendalStore::memory().with_manifest_limits(ManifestLimits { max_size: 64 });
    let reg = Registry::with_store(store, RouterConfig::default());
    let big = Bytes::from(vec![b' '; 65]);
    reg.put_manifest("a", "x", OCI_MANIFEST, big.clone())
        .await
        .assert_error(413, "MANIFEST_INVALID");
    // Streamed, with no Content-Length.
    let r = reg
        .send_frames(
            "PUT",
            "/v2/a/manifests/x",
            &[("content-type", OCI_MANIFEST)],
            &[&big[..40], &big[40..]],
        )
        .await;
    r.assert_error(413, "MANIFEST_INVALID");
}

#[tokio::test]
async fn subject_and_referrers() {
    let reg = Registry::new();
    let (image, image_digest) = reg.push_image("a", "v1", b"layer").await;
    let subject = Some((&image_digest, image.len() as u64));
    let sbom = reg
        .image_manifest("a", b"sbom", subject, Some("application/vnd.example.sbom"))
        .await;
    let sig = reg
        .image_manifest("a", b"sig", subject, Some("application/vnd.example.sig"))
        .await;
    for m in [&sbom, &sig] {
        let d = Digest::sha256_of(m);
        let r = reg
            .put_manifest("a", &d.to_string(), OCI_MANIFEST, m.clone())
            .await;
        assert_eq!(r.status, 201, "{}", r.text());
        assert_eq!(r.header("oci-subject"), image_digest.to_string());
    }

    let url = format!("/v2/a/referrers/{image_digest}");
    let r = reg.get(&url).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type"), OCI_INDEX);
    assert!(!r.has("oci-filters-applied"));
    let index = r.json();
    assert_eq!(index["schemaVersion"], 2);
    assert_eq!(index["mediaType"], OCI_INDEX);
    let mut types: Vec<_> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["artifactType"].as_str().unwrap().to_owned())
        .collect();
    types.sort();
    assert_eq!(
        types,
        [
            "application/vnd.example.sbom",
            "application/vnd.example.sig"
        ]
    );

    let r = reg
        .get(&format!(
            "{url}?artifactType=application%2Fvnd.example.sbom"
        ))
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("oci-filters-applied"), "artifactType");
    let manifests = r.json()["manifests"].as_array().unwrap().clone();
    assert_eq!(manifests.len(), 1);
    assert_eq!(manifests[0]["digest"], Digest::sha256_of(&sbom).to_string());
    assert_eq!(manifests[0]["mediaType"], OCI_MANIFEST);
    assert_eq!(manifests[0]["size"], sbom.len());

    // No referrers, unknown repository: an empty index, never a 404.
    for url in [
        format!("/v2/a/referrers/{}", Digest::sha256_of(b"none")),
        format!("/v2/nope/referrers/{image_digest}"),
    ] {
        let r = reg.get(&url).await;
        assert_eq!(r.status, 200, "{url}: {}", r.text());
        assert_eq!(
            r.json(),
            json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []})
        );
    }
    reg.get("/v2/a/referrers/sha256:nope")
        .await
        .assert_error(400, "DIGEST_INVALID");
}

#[tokio::test]
async fn delete_tag_and_manifest() {
    let reg = Registry::new();
    let (_, digest) = reg.push_image("a", "v1", b"layer").await;
    let r = reg
        .put_manifest(
            "a",
            "v2",
            OCI_MANIFEST,
            reg.get("/v2/a/manifests/v1").await.body,
        )
        .await;
    assert_eq!(r.status, 201);

    // A tag: the manifest stays.
    let r = reg.send("DELETE", "/v2/a/manifests/v1", &[], "").await;
    assert_eq!(r.status, 202, "{}", r.text());
    reg.get("/v2/a/manifests/v1")
        .await
        .assert_error(404, "MANIFEST_UNKNOWN");
    assert_eq!(
        reg.get(&format!("/v2/a/manifests/{digest}")).await.status,
        200
    );

    // The manifest: its tags go.
    let r = reg
        .send("DELETE", &format!("/v2/a/manifests/{digest}"), &[], "")
        .await;
    assert_eq!(r.status, 202, "{}", r.text());
    reg.get(&format!("/v2/a/manifests/{digest}"))
        .await
        .assert_error(404, "MANIFEST_UNKNOWN");
    reg.get("/v2/a/manifests/v2")
        .await
        .assert_error(404, "MANIFEST_UNKNOWN");
    reg.send("DELETE", "/v2/a/manifests/v9", &[], "")
        .await
        .assert_error(404, "MANIFEST_UNKNOWN");
}

#[tokio::test]
async fn tags_pagination() {
    let reg = Registry::with_config(RouterConfig::default().with_public_prefix("/registry"));
    let (manifest, _) = reg.push_image("a/b", "b", b"layer").await;
    for tag in ["a", "c", "B", "d"] {
        let r = reg
            .put_manifest("a/b", tag, OCI_MANIFEST, manifest.clone())
            .await;
        assert_eq!(r.status, 201);
    }
    let r = reg.get("/v2/a/b/tags/list").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), "application/json");
    assert_eq!(
        r.json(),
        json!({"name": "a/b", "tags": ["B", "a", "b", "c", "d"]})
    );
    assert!(!r.has("link"));

    let r = reg.get("/v2/a/b/tags/list?n=2").await;
    assert_eq!(r.json()["tags"], json!(["B", "a"]));
    assert_eq!(
        r.header("link"),
        "</registry/v2/a/b/tags/list?n=2&last=a>; rel=\"next\""
    );
    let r = reg.get("/v2/a/b/tags/list?n=2&last=a").await;
    assert_eq!(r.json()["tags"], json!(["b", "c"]));
    assert_eq!(
        r.header("link"),
        "</registry/v2/a/b/tags/list?n=2&last=c>; rel=\"next\""
    );
    let r = reg.get("/v2/a/b/tags/list?n=2&last=c").await;
    assert_eq!(r.json()["tags"], json!(["d"]));
    assert!(!r.has("link"));
    let r = reg.get("/v2/a/b/tags/list?last=b").await;
    assert_eq!(r.json()["tags"], json!(["c", "d"]));

    let r = reg.get("/v2/a/b/tags/list?n=0").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["tags"], json!([]));
    assert!(!r.has("link"));

    reg.get("/v2/a/b/tags/list?n=x")
        .await
        .assert_error(400, "UNSUPPORTED");
    reg.get("/v2/a/b/tags/list?n=-2")
        .await
        .assert_error(400, "UNSUPPORTED");
}

#[tokio::test]
async fn catalog_pagination() {
    let reg = Registry::new();
    for repo in ["b", "a/x", "c/d/e"] {
        reg.push_image(repo, "v1", b"layer").await;
    }
    let r = reg.get("/v2/_catalog").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json(), json!({"repositories": ["a/x", "b", "c/d/e"]}));
    let r = reg.get("/v2/_catalog?n=1").await;
    assert_eq!(r.json(), json!({"repositories": ["a/x"]}));
    assert_eq!(
        r.header("link"),
        "</v2/_catalog?n=1&last=a/x>; rel=\"next\""
    );
    let r = reg.get("/v2/_catalog?n=1&last=a/x").await;
    assert_eq!(r.json(), json!({"repositories": ["b"]}));
    let r = reg.get("/v2/_catalog?n=5&last=b").await;
    assert_eq!(r.json(), json!({"repositories": ["c/d/e"]}));
    assert!(!r.has("link"));
    reg.get("/v2/_catalog?n=abc")
        .await
        .assert_error(400, "UNSUPPORTED");
}

/// A manifest in `repo` whose one layer, of `media_type`, is not in the
/// registry and has `urls`.
async fn with_absent_layer(reg: &Registry, repo: &str, media_type: &str, urls: &[&str]) -> Bytes {
    let config = reg.push_blob(repo, b"{}").await;
    let absent = Digest::sha256_of(b"not in the registry");
    let m = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": config.to_string(),
            "size": 2,
        },
        "layers": [{
            "mediaType": media_type,
            "digest": absent.to_string(),
            "size": 19,
            "urls": urls,
        }],
    });
    Bytes::from(serde_json::to_vec(&m).unwrap())
}

const FOREIGN: &str = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip";

#[tokio::test]
async fn urls_do_not_excuse_an_ordinary_layer_from_being_here() {
    let reg = Registry::with_config(RouterConfig::default().with_manifest_urls(
        registry_core::ForeignUrlPolicy::new(["^https://"], [] as [&str; 0]).unwrap(),
    ));
    let layer = "application/vnd.oci.image.layer.v1.tar+gzip";
    let m = with_absent_layer(&reg, "a", layer, &["https://example.com/l"]).await;
    let r = reg.put_manifest("a", "v1", OCI_MANIFEST, m).await;
    r.assert_error(400, "MANIFEST_INVALID");
    assert!(r.text().contains("layers[0].urls"), "{}", r.text());
    reg.get("/v2/a/manifests/v1")
        .await
        .assert_error(404, "MANIFEST_UNKNOWN");
    // Nor an index entry.
    let absent = Digest::sha256_of(b"no such manifest");
    let index = json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [{
            "mediaType": OCI_MANIFEST,
            "digest": absent.to_string(),
            "size": 7,
            "urls": ["https://example.com/m"],
        }],
    });
    let r = reg
        .put_manifest("a", "i", OCI_INDEX, Bytes::from(index.to_string()))
        .await;
    r.assert_error(400, "MANIFEST_INVALID");
}

#[tokio::test]
async fn foreign_urls_are_refused_without_a_policy() {
    let reg = Registry::new();
    let m = with_absent_layer(&reg, "a", FOREIGN, &["https://example.com/l"]).await;
    let r = reg.put_manifest("a", "v1", OCI_MANIFEST, m).await;
    r.assert_error(400, "MANIFEST_INVALID");
    assert!(
        r.text().contains("accepts no foreign layer URLs"),
        "{}",
        r.text()
    );
    // A foreign layer without urls must be here like any other.
    let m = with_absent_layer(&reg, "a", FOREIGN, &[]).await;
    let r = reg.put_manifest("a", "v1", OCI_MANIFEST, m).await;
    r.assert_error(400, "MANIFEST_BLOB_UNKNOWN");
}

#[tokio::test]
async fn foreign_urls_where_the_policy_allows() {
    let policy = registry_core::ForeignUrlPolicy::new(
        [r"^https://([^/]+\.)?example\.com/"],
        [r"^https://[^/]+/private/"],
    )
    .unwrap();
    let reg = Registry::with_config(RouterConfig::default().with_manifest_urls(policy));
    let allowed = ["https://example.com/l", "https://cdn.example.com/l"];
    let m = with_absent_layer(&reg, "a", FOREIGN, &allowed).await;
    let r = reg.put_manifest("a", "v1", OCI_MANIFEST, m).await;
    assert_eq!(r.status, 201, "{}", r.text());
    for refused in [
        "https://example.com/private/l",
        "https://example.org/l",
        "http://example.com/l",
        "https://example.com/l#x",
    ] {
        let m = with_absent_layer(&reg, "a", FOREIGN, &["https://example.com/l", refused]).await;
        let r = reg.put_manifest("a", "v2", OCI_MANIFEST, m).await;
        r.assert_error(400, "MANIFEST_INVALID");
        assert!(
            r.text().contains("is not allowed"),
            "{refused}: {}",
            r.text()
        );
    }
    // The field name spelled with an escape is the same field.
    let m = with_absent_layer(&reg, "a", FOREIGN, &["https://example.org/l"]).await;
    let escaped = String::from_utf8(m.to_vec())
        .unwrap()
        .replace("\"urls\"", "\"\\u0075rls\"");
    assert!(!escaped.contains("urls"));
    let r = reg
        .put_manifest("a", "v3", OCI_MANIFEST, Bytes::from(escaped))
        .await;
    r.assert_error(400, "MANIFEST_INVALID");
}
