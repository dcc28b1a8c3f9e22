//! Retention rules: which tags a collection removes, what they keep and
//! why, and untagged manifests let go after an age (docs/GC.md,
//! "Retention"). Backends without modification times (memory) keep
//! every tag, and say why.

use std::time::Duration;

use bytes::Bytes;
use registry_core::media_type::OCI_IMAGE_MANIFEST;
use registry_core::{BlobStore, Digest, ManifestStore, Reference, RepositoryName, Tag};
use registry_storage::OpendalStore;
use registry_storage::gc::{GcOptions, GcReport, Retention, RetentionRule};
use registry_storage::layout::Key;

use crate::support::*;

/// Push a one-layer image under `t`, with content of its own; its digest.
async fn image(s: &OpendalStore, r: &RepositoryName, t: &str) -> Digest {
    let config = format!("config of {r}:{t}");
    let layer = format!("layer of {r}:{t}");
    for data in [&config, &layer] {
        let d = Digest::sha256_of(data.as_bytes());
        s.put_blob(r, &d, body(data.as_bytes(), 64), None)
            .await
            .unwrap();
    }
    let m = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_IMAGE_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": Digest::sha256_of(config.as_bytes()), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": Digest::sha256_of(layer.as_bytes()), "size": layer.len()}],
    });
    let tag = Reference::Tag(Tag::parse(t).unwrap());
    let bytes = Bytes::from(serde_json::to_vec(&m).unwrap());
    s.put_manifest(r, &tag, None, bytes).await.unwrap().digest
}

/// Whether the backend keeps modification times (memory does not).
async fn keeps_times(s: &OpendalStore, r: &RepositoryName, t: &str) -> bool {
    let tag = Tag::parse(t).unwrap();
    s.operator()
        .stat(&Key::TagCurrentLink(r, &tag).path())
        .await
        .unwrap()
        .last_modified()
        .is_some()
}

fn options(rule: RetentionRule, commit: bool) -> GcOptions {
    GcOptions::default()
        .with_grace(Duration::ZERO)
        .with_retention(Retention::new(vec![rule]))
        .with_commit(commit)
}

fn removed(report: &GcReport) -> Vec<&str> {
    let mut out: Vec<&str> = report
        .tags
        .iter()
        .filter(|d| d.removed)
        .map(|d| d.tag.as_str())
        .collect();
    out.sort();
    out
}

fn why<'a>(report: &'a GcReport, t: &str) -> &'a str {
    &report
        .tags
        .iter()
        .find(|d| d.tag.as_str() == t)
        .unwrap()
        .why
}

async fn tagged(s: &OpendalStore, r: &RepositoryName, t: &str) -> bool {
    let tag = Reference::Tag(Tag::parse(t).unwrap());
    s.get_manifest(r, &tag).await.is_ok()
}

/// `keep_last` with a tag pattern and an untagged age: the plan names each
/// decision and its reason and removes nothing; the collection removes the
/// one tag neither rule keeps, then its manifest and blobs; other
/// repositories (no matching rule) keep everything.
pub async fn retention_keeps_the_newest_and_matching_tags(b: &dyn Backend) {
    let s = b.store();
    let (r, other) = (repo("ret/app"), repo("elsewhere/app"));
    let mut digests = Vec::new();
    for t in ["v1", "a", "b", "c"] {
        digests.push(image(&s, &r, t).await);
        image(&s, &other, t).await;
        tokio::time::sleep(Duration::from_millis(1100)).await;
    }
    let rule = RetentionRule::new("ret/*")
        .unwrap()
        .keep_last(2)
        .keep_tags("^v[0-9]+$")
        .unwrap()
        .untagged_older_than(Duration::ZERO);

    let plan = s
        .collect_garbage(&options(rule.clone(), false))
        .await
        .unwrap();
    assert_eq!(
        plan.tags.len(),
        4,
        "a decision for every selected tag: {plan:?}"
    );
    assert!(plan.tags.iter().all(|d| d.repository == r));
    if !keeps_times(&s, &r, "a").await {
        assert!(removed(&plan).is_empty(), "{plan:?}");
        assert!(why(&plan, "a").contains("keeps no push times"));
        return;
    }
    assert_eq!(removed(&plan), ["a"]);
    assert_eq!(why(&plan, "a"), "not among the 2 most recently pushed tags");
    assert!(why(&plan, "c").ends_with("kept: among the 2 most recently pushed tags"));
    assert!(why(&plan, "v1").ends_with("kept: matches ^v[0-9]+$"));
    assert_eq!(plan.manifests.len(), 1, "{plan:?}");
    assert_eq!(plan.manifests[0].digest, digests[1]);
    assert!(tagged(&s, &r, "a").await, "a plan removes nothing");

    let done = s.collect_garbage(&options(rule, true)).await.unwrap();
    assert_eq!(removed(&done), ["a"]);
    assert_eq!(done.manifests.len(), 1);
    assert_eq!(
        done.blobs.len(),
        3,
        "the manifest, its config and layer: {done:?}"
    );
    assert!(!tagged(&s, &r, "a").await);
    for t in ["v1", "b", "c"] {
        assert!(tagged(&s, &r, t).await, "{t} stays");
    }
    for t in ["v1", "a", "b", "c"] {
        assert!(
            tagged(&s, &other, t).await,
            "no rule for {other}: {t} stays"
        );
    }
    let again = s.collect_garbage(&collect_all()).await.unwrap();
    assert!(
        again.manifests.is_empty() && again.blobs.is_empty(),
        "{again:?}"
    );
}

fn collect_all() -> GcOptions {
    GcOptions::default()
        .with_grace(Duration::ZERO)
        .with_commit(true)
}

/// `tags_older_than` with `keep_pulled_within`: the tag whose manifest was
/// pulled by digest stays, the other goes.
pub async fn retention_keeps_what_was_pulled(b: &dyn Backend) {
    let s = b.store().with_pull_times(Duration::ZERO);
    let r = repo("ret/pulled");
    let used = image(&s, &r, "used").await;
    image(&s, &r, "unused").await;
    if !keeps_times(&s, &r, "used").await {
        return; // Ages need times; the rank test covers this backend.
    }
    tokio::time::sleep(Duration::from_millis(2100)).await;
    s.get_manifest(&r, &Reference::Digest(used.clone()))
        .await
        .unwrap();
    let record = Key::Pull(&r, &used).path();
    for _ in 0..100 {
        if s.operator().exists(&record).await.unwrap() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let rule = RetentionRule::new("ret/**")
        .unwrap()
        .tags_older_than(Duration::from_secs(1))
        .keep_pulled_within(Duration::from_secs(3600))
        .untagged_older_than(Duration::ZERO);
    let done = s.collect_garbage(&options(rule, true)).await.unwrap();
    assert_eq!(removed(&done), ["unused"], "{done:?}");
    assert!(
        why(&done, "used").contains("kept: pulled "),
        "{}",
        why(&done, "used")
    );
    assert!(why(&done, "unused").starts_with("pushed "));
    assert!(tagged(&s, &r, "used").await);
    assert!(!tagged(&s, &r, "unused").await);
    assert_eq!(done.manifests.len(), 1);
}
