//! Garbage collection: what is live, what goes, and the handshake with
//! pushes under way (docs/GC.md).

use std::time::Duration;

use bytes::Bytes;
use registry_core::media_type::{OCI_IMAGE_INDEX, OCI_IMAGE_MANIFEST};
use registry_core::{BlobStore, Digest, ErrorKind, ManifestStore, Reference, RepositoryName, Tag};
use registry_storage::OpendalStore;
use registry_storage::gc::{GcOptions, Reason};
use registry_storage::layout::Key;

use crate::support::*;

fn tag(t: &str) -> Reference {
    Reference::Tag(Tag::parse(t).unwrap())
}

fn by_digest(d: &Digest) -> Reference {
    Reference::Digest(d.clone())
}

/// Push `data` into `r` as a blob; its digest.
async fn blob(s: &OpendalStore, r: &RepositoryName, data: &[u8]) -> Digest {
    let d = Digest::sha256_of(data);
    s.put_blob(r, &d, body(data, 64), None).await.unwrap();
    d
}

/// An image manifest over blobs already in the repository.
fn manifest(config: &Digest, layers: &[&Digest], subject: Option<&Digest>) -> Bytes {
    let mut m = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_IMAGE_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config, "size": 1},
        "layers": layers.iter().map(|d| serde_json::json!(
            {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": d, "size": 1}
        )).collect::<Vec<_>>(),
    });
    if let Some(s) = subject {
        m["subject"] = serde_json::json!({"mediaType": OCI_IMAGE_MANIFEST, "digest": s, "size": 1});
    }
    Bytes::from(serde_json::to_vec(&m).unwrap())
}

fn collect_now(delete_untagged: bool, commit: bool) -> GcOptions {
    GcOptions::default()
        .with_grace(Duration::ZERO)
        .with_delete_untagged(delete_untagged)
        .with_commit(commit)
}

/// Two images sharing a layer, both tagged, then one tag deleted: without
/// `delete_untagged` nothing goes; with it the untagged image and the
/// blobs only it used go, in a plan first and then for real; the other
/// image still pulls whole; a second run finds nothing.
pub async fn gc_removes_what_no_tag_reaches(b: &dyn Backend) {
    let s = b.store();
    let r = repo("gc/app");
    let shared = blob(&s, &r, b"shared layer").await;
    let (c1, l1) = (
        blob(&s, &r, b"config 1").await,
        blob(&s, &r, b"layer 1").await,
    );
    let (c2, l2) = (
        blob(&s, &r, b"config 2").await,
        blob(&s, &r, b"layer 2").await,
    );
    let m1 = manifest(&c1, &[&shared, &l1], None);
    let m2 = manifest(&c2, &[&shared, &l2], None);
    let d1 = s
        .put_manifest(&r, &tag("keep"), None, m1)
        .await
        .unwrap()
        .digest;
    let d2 = s
        .put_manifest(&r, &tag("old"), None, m2.clone())
        .await
        .unwrap()
        .digest;
    s.delete_manifest(&r, &tag("old")).await.unwrap();

    let kept = s.collect_garbage(&collect_now(false, false)).await.unwrap();
    assert!(
        kept.manifests.is_empty() && kept.blobs.is_empty() && kept.links.is_empty(),
        "untagged manifests are kept without delete_untagged: {kept:?}"
    );

    let plan = s.collect_garbage(&collect_now(true, false)).await.unwrap();
    assert!(!plan.committed);
    let planned: Vec<_> = plan
        .manifests
        .iter()
        .map(|m| (&m.repository, &m.digest, m.reason))
        .collect();
    assert_eq!(planned, vec![(&r, &d2, Reason::Unreachable)]);
    let mut gone = vec![c2.clone(), l2.clone(), d2.clone()];
    gone.sort();
    let blobs: Vec<_> = plan.blobs.iter().map(|b| b.digest.clone()).collect();
    assert_eq!(blobs, gone);
    assert!(plan.blobs.iter().all(|b| b.reason == Reason::Unreferenced));
    assert_eq!(
        plan.bytes(),
        (b"config 2".len() + b"layer 2".len() + m2.len()) as u64
    );
    let mut unlinked: Vec<_> = plan.links.iter().map(|l| l.digest.clone()).collect();
    unlinked.sort();
    let mut want = vec![c2.clone(), l2.clone()];
    want.sort();
    assert_eq!(unlinked, want);
    assert!(
        plan.summary()
            .starts_with("gc: would remove 1 manifests, 3 blobs, ")
    );
    s.get_manifest(&r, &by_digest(&d2))
        .await
        .expect("a plan deletes nothing");

    let done = s.collect_garbage(&collect_now(true, true)).await.unwrap();
    assert!(done.committed);
    assert_eq!(done.manifests, plan.manifests);
    assert_eq!(done.blobs, plan.blobs);
    assert_eq!(done.links, plan.links);
    assert!(done.summary().starts_with("gc: 1 manifests, 3 blobs, "));
    assert!(done.summary().ends_with(" bytes removed"));
    let err = s.get_manifest(&r, &by_digest(&d2)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ManifestUnknown);
    for d in [&c2, &l2, &d2] {
        assert!(!blob_data_exists(&s, d).await, "{d} should be gone");
    }
    let live = s.get_manifest(&r, &tag("keep")).await.unwrap();
    assert_eq!(live.digest, d1);
    for d in [&c1, &l1, &shared] {
        s.stat_blob(&r, d)
            .await
            .expect("a live image keeps its blobs");
    }

    let again = s.collect_garbage(&collect_now(true, true)).await.unwrap();
    assert!(
        again.manifests.is_empty() && again.blobs.is_empty() && again.links.is_empty(),
        "a second run finds nothing: {again:?}"
    );
}

/// A tagged index keeps its untagged children; a referrer lives while its
/// subject does, and goes with it.
pub async fn gc_keeps_index_children_and_referrers(b: &dyn Backend) {
    let s = b.store();
    let r = repo("gc/multi");
    let (ca, la) = (
        blob(&s, &r, b"amd64 config").await,
        blob(&s, &r, b"amd64 layer").await,
    );
    let (cb, lb) = (
        blob(&s, &r, b"arm64 config").await,
        blob(&s, &r, b"arm64 layer").await,
    );
    let ma = s
        .put_manifest(
            &r,
            &by_digest(&Digest::sha256_of(&manifest(&ca, &[&la], None))),
            None,
            manifest(&ca, &[&la], None),
        )
        .await
        .unwrap()
        .digest;
    let mb = s
        .put_manifest(
            &r,
            &by_digest(&Digest::sha256_of(&manifest(&cb, &[&lb], None))),
            None,
            manifest(&cb, &[&lb], None),
        )
        .await
        .unwrap()
        .digest;
    let index = Bytes::from(
        serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": OCI_IMAGE_INDEX,
            "manifests": [
                {"mediaType": OCI_IMAGE_MANIFEST, "digest": ma, "size": 1, "platform": {"architecture": "amd64", "os": "linux"}},
                {"mediaType": OCI_IMAGE_MANIFEST, "digest": mb, "size": 1, "platform": {"architecture": "arm64", "os": "linux"}},
            ],
        }))
        .unwrap(),
    );
    let di = s
        .put_manifest(&r, &tag("v1"), None, index)
        .await
        .unwrap()
        .digest;

    // A signature of the index (kept) and of an untagged image (removed).
    let sig = blob(&s, &r, b"signature").await;
    let signature = manifest(&sig, &[], Some(&di));
    let ds = s
        .put_manifest(
            &r,
            &by_digest(&Digest::sha256_of(&signature)),
            None,
            signature,
        )
        .await
        .unwrap()
        .digest;
    let (co, lo) = (
        blob(&s, &r, b"orphan config").await,
        blob(&s, &r, b"orphan layer").await,
    );
    let orphan = manifest(&co, &[&lo], None);
    let dorph = s
        .put_manifest(&r, &by_digest(&Digest::sha256_of(&orphan)), None, orphan)
        .await
        .unwrap()
        .digest;
    let sig2 = blob(&s, &r, b"signature of the orphan").await;
    let orphan_signature = manifest(&sig2, &[], Some(&dorph));
    let dos = s
        .put_manifest(
            &r,
            &by_digest(&Digest::sha256_of(&orphan_signature)),
            None,
            orphan_signature,
        )
        .await
        .unwrap()
        .digest;

    let done = s.collect_garbage(&collect_now(true, true)).await.unwrap();
    let mut removed: Vec<_> = done.manifests.iter().map(|m| m.digest.clone()).collect();
    removed.sort();
    let mut want = vec![dorph.clone(), dos.clone()];
    want.sort();
    assert_eq!(
        removed, want,
        "only the untagged image and its signature go"
    );
    for d in [&ma, &mb, &di, &ds] {
        s.get_manifest(&r, &by_digest(d))
            .await
            .expect("reachable from the tag");
    }
    for d in [&ca, &la, &cb, &lb, &sig] {
        s.stat_blob(&r, d)
            .await
            .expect("referenced by a live manifest");
    }
    for d in [&co, &lo, &sig2] {
        assert!(!blob_data_exists(&s, d).await, "{d} should be gone");
    }
    let listed = s
        .list_referrers(&r, &di, None, registry_core::Page::default())
        .await
        .unwrap();
    assert_eq!(
        listed.manifests.len(),
        1,
        "the index's signature is still listed"
    );
}

/// Content younger than the grace period stays, whatever references it
/// (on a backend without times, everything counts as young).
pub async fn gc_grace_keeps_recent_content(b: &dyn Backend) {
    let s = b.store();
    let r = repo("gc/recent");
    let c = blob(&s, &r, b"recent config").await;
    let d = s
        .put_manifest(&r, &tag("t"), None, manifest(&c, &[], None))
        .await
        .unwrap()
        .digest;
    s.delete_manifest(&r, &tag("t")).await.unwrap();
    blob(&s, &r, b"an upload whose manifest is not pushed yet").await;
    let options = collect_now(true, true).with_grace(Duration::from_secs(3600));
    let report = s.collect_garbage(&options).await.unwrap();
    assert!(
        report.manifests.is_empty() && report.blobs.is_empty() && report.links.is_empty(),
        "{report:?}"
    );
    s.get_manifest(&r, &by_digest(&d)).await.unwrap();
}

/// The writer's side: while a collection is under way and has doomed a
/// blob, a push that references it is refused as if it were absent (so the
/// client uploads it again); other pushes go through, and so does one once
/// the marker expired.
pub async fn gc_push_of_a_doomed_blob_is_refused(b: &dyn Backend) {
    let s = b.store();
    let r = repo("gc/doomed");
    let (c, l) = (
        blob(&s, &r, b"config").await,
        blob(&s, &r, b"old layer").await,
    );
    let op = s.operator();
    let lease = |until: &'static str| Bytes::from_static(until.as_bytes());
    op.write(
        &Key::GcRun("other-run").path(),
        lease("2999-01-01T00:00:00Z"),
    )
    .await
    .unwrap();
    op.write(
        &Key::GcDoomed(&l, "other-run").path(),
        lease("2999-01-01T00:00:00Z"),
    )
    .await
    .unwrap();

    let err = s
        .put_manifest(&r, &tag("t"), None, manifest(&c, &[&l], None))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ManifestBlobUnknown, "{err}");
    let ok = s
        .put_manifest(&r, &tag("u"), None, manifest(&c, &[], None))
        .await;
    ok.expect("a push of nothing doomed goes through");

    op.write(
        &Key::GcDoomed(&l, "other-run").path(),
        lease("2000-01-01T00:00:00Z"),
    )
    .await
    .unwrap();
    s.put_manifest(&r, &tag("t"), None, manifest(&c, &[&l], None))
        .await
        .expect("an expired marker is a dead collector's leftover");
}

/// The collector's side: a candidate that a push under way references (its
/// record written before the collection read the records) is kept; once
/// the record is gone, the next collection removes it.
pub async fn gc_keeps_what_a_push_under_way_references(b: &dyn Backend) {
    let s = b.store();
    let r = repo("gc/pushing");
    let l = blob(&s, &r, b"an old blob a push is about to reference").await;
    let record = format!("{r}\n{}\n{l}\n", Digest::sha256_of(b"the manifest"));
    let path = Key::GcPush("a-push").path();
    s.operator()
        .write(&path, record.into_bytes())
        .await
        .unwrap();

    let report = s.collect_garbage(&collect_now(true, true)).await.unwrap();
    assert!(report.kept_for_pushes.contains(&l), "{report:?}");
    assert!(
        report.blobs.is_empty() && report.links.is_empty(),
        "{report:?}"
    );
    s.stat_blob(&r, &l).await.expect("kept for the push");

    s.operator().delete(&path).await.unwrap();
    let report = s.collect_garbage(&collect_now(true, true)).await.unwrap();
    assert_eq!(report.blobs.len(), 1, "{report:?}");
    assert!(!blob_data_exists(&s, &l).await);
}

/// Pushes that re-reference an old unreferenced blob (asking first whether
/// it exists and uploading it only if not, as docker does) race
/// collections with no grace on another store instance: a push may be
/// refused and retried, but a manifest that was accepted never loses a
/// blob.
pub async fn race_gc_vs_pushes_of_old_blobs(b: &dyn Backend) {
    const ROUNDS: usize = 8;
    let (s1, s2) = (b.store(), b.another_store());
    let r = repo("gc/race");
    for round in 0..ROUNDS {
        let config = format!("config {round}").into_bytes();
        let layer = format!("old layer {round}").into_bytes();
        let c = blob(&s2, &r, &config).await;
        let l = blob(&s2, &r, &layer).await;
        let collector = {
            let s1 = s1.clone();
            tokio::spawn(async move {
                for _ in 0..3 {
                    s1.collect_garbage(&collect_now(true, true)).await.unwrap();
                }
            })
        };
        let pusher = {
            let (s2, r) = (s2.clone(), r.clone());
            tokio::spawn(async move {
                for _attempt in 0..20 {
                    for (d, data) in [(&c, &config), (&l, &layer)] {
                        if s2.stat_blob(&r, d).await.is_err() {
                            s2.put_blob(&r, d, body(data, 64), None).await.unwrap();
                        }
                    }
                    match s2
                        .put_manifest(
                            &r,
                            &tag(&format!("t{round}")),
                            None,
                            manifest(&c, &[&l], None),
                        )
                        .await
                    {
                        Ok(put) => return Some((put.digest, c, l)),
                        Err(e) if e.kind() == ErrorKind::ManifestBlobUnknown => continue,
                        Err(e) => panic!("push failed: {e}"),
                    }
                }
                None
            })
        };
        collector.await.unwrap();
        let Some((_digest, c, l)) = pusher.await.unwrap() else {
            panic!("round {round}: 20 pushes were all refused");
        };
        for d in [&c, &l] {
            s1.stat_blob(&r, d)
                .await
                .unwrap_or_else(|e| panic!("round {round}: accepted image lost {d}: {e}"));
        }
        s1.get_manifest(&r, &tag(&format!("t{round}")))
            .await
            .unwrap();
    }
}

/// An upload completing onto a digest a collection is deleting waits for
/// the collection, then stores its bytes again (the collection deleted
/// them meanwhile); a mount of such a blob is refused as if it were absent,
/// so the client uploads it.
pub async fn gc_upload_onto_a_doomed_blob_waits_and_stores_it_again(b: &dyn Backend) {
    let s = b.store();
    let (r, other) = (repo("gc/reupload"), repo("gc/mount-target"));
    let data = b"an old blob collected while it is uploaded again";
    let d = blob(&s, &r, data).await;
    let op = s.operator().clone();
    let lease = Bytes::from_static(b"2999-01-01T00:00:00Z");
    op.write(&Key::GcRun("deleting-run").path(), lease.clone())
        .await
        .unwrap();
    op.write(&Key::GcDoomed(&d, "deleting-run").path(), lease)
        .await
        .unwrap();

    let err = s.mount_blob(&r, &other, &d).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BlobUnknown, "{err}");

    // The collector, 300 ms later: deletes the bytes, then ends its run.
    let collector = tokio::spawn({
        let (op, d) = (op.clone(), d.clone());
        async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            op.delete(&Key::BlobData(&d).path()).await.unwrap();
            op.delete(&Key::GcDoomed(&d, "deleting-run").path())
                .await
                .unwrap();
            op.delete(&Key::GcRun("deleting-run").path()).await.unwrap();
        }
    });
    let started = std::time::Instant::now();
    s.put_blob(&r, &d, body(data, 7), None)
        .await
        .expect("the upload completes once the collection is done");
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "the upload waited for the collection"
    );
    collector.await.unwrap();
    assert!(
        blob_data_exists(&s, &d).await,
        "the bytes were stored again"
    );
    let read = s.read_blob(&r, &d, None).await.unwrap();
    assert_eq!(collect(read.body).await, data);
    s.mount_blob(&r, &other, &d)
        .await
        .expect("a mount once no collection is deleting it");
}
