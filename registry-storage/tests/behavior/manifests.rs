//! Manifest, tag, referrer and catalog behaviour.

use bytes::Bytes;
use registry_core::media_type::{OCI_IMAGE_INDEX, OCI_IMAGE_MANIFEST};
use registry_core::{
    BlobStore, Digest, ErrorKind, ManifestStore, Page, Reference, RepositoryName, Tag,
};
use registry_storage::OpendalStore;

use crate::support::*;

/// Push a config and a layer into `r` and return an OCI image manifest
/// referencing them (unique per `seed`), with an optional subject and
/// artifact type.
pub(crate) async fn image(
    s: &OpendalStore,
    r: &RepositoryName,
    seed: u8,
    subject: Option<&Digest>,
    artifact: Option<&str>,
) -> Bytes {
    let config = content(100, seed);
    let layer = content(1000, seed.wrapping_add(100));
    let (cd, ld) = (Digest::sha256_of(&config), Digest::sha256_of(&layer));
    s.put_blob(r, &cd, body(&config, 100), None).await.unwrap();
    s.put_blob(r, &ld, body(&layer, 1000), None).await.unwrap();
    let mut m = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_IMAGE_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": 100},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": ld, "size": 1000}],
        "annotations": {"seed": seed.to_string()},
    });
    if let Some(sd) = subject {
        m["subject"] =
            serde_json::json!({"mediaType": OCI_IMAGE_MANIFEST, "digest": sd, "size": 123});
    }
    if let Some(a) = artifact {
        m["artifactType"] = serde_json::json!(a);
    }
    Bytes::from(serde_json::to_vec_pretty(&m).unwrap())
}

pub(crate) fn tag(t: &str) -> Reference {
    Reference::Tag(Tag::parse(t).unwrap())
}

pub async fn manifest_put_get_by_tag_and_digest(b: &dyn Backend) {
    let s = b.store();
    let r = repo("m/basic");
    let bytes = image(&s, &r, 1, None, None).await;
    let put = s
        .put_manifest(&r, &tag("v1"), Some(OCI_IMAGE_MANIFEST), bytes.clone())
        .await
        .unwrap();
    assert_eq!(put.digest, Digest::sha256_of(&bytes));
    assert_eq!(put.subject, None);
    for reference in [tag("v1"), Reference::Digest(put.digest.clone())] {
        let got = s.get_manifest(&r, &reference).await.unwrap();
        assert_eq!(got.bytes, bytes, "exact pushed bytes");
        assert_eq!(got.digest, put.digest);
        assert_eq!(got.media_type, OCI_IMAGE_MANIFEST);
    }
    // Seen from another process at once.
    let other = b.another_store();
    assert_eq!(
        other.get_manifest(&r, &tag("v1")).await.unwrap().bytes,
        bytes
    );
    for missing in [tag("v2"), Reference::Digest(Digest::sha256_of(b"nope"))] {
        assert_eq!(
            s.get_manifest(&r, &missing).await.unwrap_err().kind(),
            ErrorKind::ManifestUnknown
        );
    }
    assert_eq!(
        s.get_manifest(&repo("m/other"), &tag("v1"))
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::ManifestUnknown
    );
    // An index of it, pushed by digest.
    let index = Bytes::from(
        serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2, "mediaType": OCI_IMAGE_INDEX,
            "manifests": [{"mediaType": OCI_IMAGE_MANIFEST, "digest": put.digest, "size": bytes.len()}],
        }))
        .unwrap(),
    );
    let id = Digest::sha256_of(&index);
    s.put_manifest(&r, &Reference::Digest(id.clone()), None, index.clone())
        .await
        .unwrap();
    assert_eq!(
        s.get_manifest(&r, &Reference::Digest(id))
            .await
            .unwrap()
            .media_type,
        OCI_IMAGE_INDEX
    );
}

pub async fn manifest_missing_references(b: &dyn Backend) {
    let s = b.store();
    let r = repo("m/missing");
    let bytes = image(&s, &r, 2, None, None).await;
    // The same manifest in a repository that lacks its blobs.
    let e = s
        .put_manifest(&repo("m/empty"), &tag("x"), None, bytes)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ManifestBlobUnknown);
    let index = Bytes::from(
        serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2, "mediaType": OCI_IMAGE_INDEX,
            "manifests": [{"mediaType": OCI_IMAGE_MANIFEST, "digest": Digest::sha256_of(b"absent"), "size": 3}],
        }))
        .unwrap(),
    );
    let e = s
        .put_manifest(&r, &tag("idx"), None, index)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ManifestBlobUnknown);
    // `urls` on an ordinary layer does not excuse it from being here.
    let with_urls = Bytes::from(
        serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2, "mediaType": OCI_IMAGE_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": Digest::sha256_of(b"absent config"), "size": 14,
                       "urls": ["https://example.com/config"]},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": Digest::sha256_of(b"absent"), "size": 6,
                        "urls": ["https://example.com/layer"]}],
        }))
        .unwrap(),
    );
    let e = s
        .put_manifest(&r, &tag("urls"), None, with_urls)
        .await
        .unwrap_err();
    assert!(
        matches!(
            e.kind(),
            ErrorKind::ManifestBlobUnknown | ErrorKind::ManifestInvalid
        ),
        "{e}"
    );
    let e = s
        .put_manifest(&r, &tag("bad"), None, Bytes::from_static(b"{not json"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ManifestInvalid);
    assert_eq!(
        s.get_manifest(&r, &tag("idx")).await.unwrap_err().kind(),
        ErrorKind::ManifestUnknown
    );
}

pub async fn manifest_digest_reference_must_match(b: &dyn Backend) {
    let s = b.store();
    let r = repo("m/digest");
    let bytes = image(&s, &r, 3, None, None).await;
    let wrong = Reference::Digest(Digest::sha256_of(b"other bytes"));
    let e = s.put_manifest(&r, &wrong, None, bytes).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::DigestInvalid);
}

pub async fn manifest_tag_race(b: &dyn Backend) {
    let r = repo("m/race");
    let s = b.store();
    let mut pushed = Vec::new();
    for i in 0..32u8 {
        pushed.push(image(&s, &r, i, None, None).await);
    }
    let mut tasks = Vec::new();
    for (i, bytes) in pushed.iter().cloned().enumerate() {
        let s = if i % 2 == 0 {
            b.store()
        } else {
            b.another_store()
        };
        let r = r.clone();
        tasks.push(tokio::spawn(async move {
            s.put_manifest(&r, &tag("latest"), None, bytes).await
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let current = s.get_manifest(&r, &tag("latest")).await.unwrap();
    assert!(
        pushed.contains(&current.bytes),
        "the tag points at one of the pushed manifests"
    );
    for bytes in &pushed {
        let d = Reference::Digest(Digest::sha256_of(bytes));
        assert_eq!(
            &s.get_manifest(&r, &d).await.unwrap().bytes,
            bytes,
            "every revision stays readable"
        );
    }
}

pub async fn manifest_delete(b: &dyn Backend) {
    let s = b.store();
    let r = repo("m/delete");
    let one = image(&s, &r, 4, None, None).await;
    let two = image(&s, &r, 5, None, None).await;
    let d1 = s
        .put_manifest(&r, &tag("a"), None, one.clone())
        .await
        .unwrap()
        .digest;
    s.put_manifest(&r, &tag("b"), None, one.clone())
        .await
        .unwrap();
    s.put_manifest(&r, &tag("c"), None, two.clone())
        .await
        .unwrap();
    // Deleting a tag keeps the manifest.
    s.delete_manifest(&r, &tag("c")).await.unwrap();
    assert_eq!(
        s.get_manifest(&r, &tag("c")).await.unwrap_err().kind(),
        ErrorKind::ManifestUnknown
    );
    assert!(
        s.get_manifest(&r, &Reference::Digest(Digest::sha256_of(&two)))
            .await
            .is_ok()
    );
    assert_eq!(
        s.delete_manifest(&r, &tag("c")).await.unwrap_err().kind(),
        ErrorKind::ManifestUnknown
    );
    // Deleting by digest takes its tags with it, and keeps the layers.
    s.delete_manifest(&r, &Reference::Digest(d1.clone()))
        .await
        .unwrap();
    for gone in [tag("a"), tag("b"), Reference::Digest(d1.clone())] {
        assert_eq!(
            s.get_manifest(&r, &gone).await.unwrap_err().kind(),
            ErrorKind::ManifestUnknown
        );
    }
    assert_eq!(
        s.list_tags(&r, Page::default()).await.unwrap().items,
        Vec::<Tag>::new()
    );
    assert_eq!(
        s.delete_manifest(&r, &Reference::Digest(d1))
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::ManifestUnknown
    );
}

pub async fn tags_listing_and_pagination(b: &dyn Backend) {
    let s = b.store();
    let r = repo("m/tags");
    let bytes = image(&s, &r, 6, None, None).await;
    for t in ["v10", "v2", "A", "latest", "_x", "v1"] {
        s.put_manifest(&r, &tag(t), None, bytes.clone())
            .await
            .unwrap();
    }
    let names =
        |l: registry_core::Listing<Tag>| l.items.iter().map(|t| t.to_string()).collect::<Vec<_>>();
    assert_eq!(
        names(s.list_tags(&r, Page::default()).await.unwrap()),
        ["A", "_x", "latest", "v1", "v10", "v2"]
    );
    let p1 = s
        .list_tags(
            &r,
            Page {
                n: Some(4),
                last: None,
            },
        )
        .await
        .unwrap();
    assert!(p1.more);
    assert_eq!(names(p1), ["A", "_x", "latest", "v1"]);
    let p2 = s
        .list_tags(
            &r,
            Page {
                n: Some(4),
                last: Some("v1"),
            },
        )
        .await
        .unwrap();
    assert!(!p2.more);
    assert_eq!(names(p2), ["v10", "v2"]);
    let e = s
        .list_tags(&repo("m/nobody"), Page::default())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NameUnknown);
}

pub async fn referrers(b: &dyn Backend) {
    let s = b.store();
    let r = repo("m/referrers");
    let subject = image(&s, &r, 7, None, None).await;
    let sd = s
        .put_manifest(&r, &tag("app"), None, subject)
        .await
        .unwrap()
        .digest;
    let sig = image(
        &s,
        &r,
        8,
        Some(&sd),
        Some("application/vnd.example.signature"),
    )
    .await;
    let sbom = image(&s, &r, 9, Some(&sd), Some("application/vnd.example.sbom")).await;
    // Referrers may arrive before their subject exists; pushed by digest.
    let put = s
        .put_manifest(
            &r,
            &Reference::Digest(Digest::sha256_of(&sig)),
            None,
            sig.clone(),
        )
        .await
        .unwrap();
    assert_eq!(put.subject.as_ref(), Some(&sd));
    s.put_manifest(
        &r,
        &Reference::Digest(Digest::sha256_of(&sbom)),
        None,
        sbom.clone(),
    )
    .await
    .unwrap();
    let all = s
        .list_referrers(&r, &sd, None, Page::default())
        .await
        .unwrap()
        .manifests;
    assert_eq!(all.len(), 2);
    let sigs = s
        .list_referrers(
            &r,
            &sd,
            Some("application/vnd.example.signature"),
            Page::default(),
        )
        .await
        .unwrap()
        .manifests;
    assert_eq!(sigs.len(), 1);
    assert_eq!(sigs[0].digest(), &Digest::sha256_of(&sig));
    assert_eq!(sigs[0].size(), sig.len() as u64);
    assert_eq!(
        sigs[0].annotations().get("seed").map(String::as_str),
        Some("8")
    );
    assert!(
        s.list_referrers(&r, &Digest::sha256_of(b"none"), None, Page::default())
            .await
            .unwrap()
            .manifests
            .is_empty()
    );
    // A deleted referrer is no longer listed.
    s.delete_manifest(&r, &Reference::Digest(Digest::sha256_of(&sig)))
        .await
        .unwrap();
    assert_eq!(
        s.list_referrers(&r, &sd, None, Page::default())
            .await
            .unwrap()
            .manifests
            .len(),
        1
    );
}

pub async fn catalog(b: &dyn Backend) {
    let s = b.store();
    let names = ["zeta", "alpha/one", "alpha/two/deep", "beta"];
    for n in names {
        let r = repo(n);
        let bytes = image(&s, &r, 10, None, None).await;
        s.put_manifest(&r, &tag("t"), None, bytes).await.unwrap();
    }
    // A repository with only blobs and uploads is not in the catalog.
    s.put_blob(
        &repo("blobsonly"),
        &Digest::sha256_of(b"x"),
        body(b"x", 1),
        None,
    )
    .await
    .unwrap();
    let all = s.list_repositories(Page::default()).await.unwrap();
    let got: Vec<&str> = all.items.iter().map(|r| r.as_str()).collect();
    assert_eq!(got, ["alpha/one", "alpha/two/deep", "beta", "zeta"]);
    let p = s
        .list_repositories(Page {
            n: Some(2),
            last: Some("alpha/one"),
        })
        .await
        .unwrap();
    assert!(p.more);
    assert_eq!(
        p.items.iter().map(|r| r.as_str()).collect::<Vec<_>>(),
        ["alpha/two/deep", "beta"]
    );
}

pub async fn layout_is_distributions(b: &dyn Backend) {
    let s = b.store();
    let r = repo("layout/app");
    let bytes = image(&s, &r, 11, None, None).await;
    let d = s
        .put_manifest(&r, &tag("v1"), None, bytes)
        .await
        .unwrap()
        .digest;
    let base = "docker/registry/v2";
    let op = s.operator();
    let hex = d.hex();
    for path in [
        format!("{base}/blobs/sha256/{}/{hex}/data", &hex[..2]),
        format!("{base}/repositories/layout/app/_manifests/revisions/sha256/{hex}/link"),
        format!("{base}/repositories/layout/app/_manifests/tags/v1/current/link"),
        format!("{base}/repositories/layout/app/_manifests/tags/v1/index/sha256/{hex}/link"),
    ] {
        assert!(op.exists(&path).await.unwrap(), "{path}");
    }
    let link = op
        .read(&format!(
            "{base}/repositories/layout/app/_manifests/tags/v1/current/link"
        ))
        .await
        .unwrap();
    assert_eq!(
        link.to_vec(),
        d.to_string().into_bytes(),
        "link files hold the digest, no newline"
    );
}
