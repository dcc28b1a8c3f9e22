//! The storage side of a pull-through mirror: fetch leases (one holder per
//! blob across store instances, taken over once expired, released by its
//! holder only), adopting bytes another instance stored, and manifests
//! stored before their references in mirrored repositories only.

use std::time::Duration;

use bytes::Bytes;
use registry_core::media_type::OCI_IMAGE_MANIFEST;
use registry_core::{
    BlobStore, Digest, ErrorKind, ManifestStore, Reference, RepositoryPattern, Tag,
};

use crate::support::*;

pub async fn mirror_fetch_leases_have_one_holder(b: &dyn Backend) {
    let (one, two) = (b.store(), b.another_store());
    let d = Digest::sha256_of(b"leased blob");
    let ttl = Duration::from_secs(60);
    let lease = one
        .try_fetch_lease(&d, ttl)
        .await
        .unwrap()
        .expect("first wins");
    assert!(
        two.try_fetch_lease(&d, ttl).await.unwrap().is_none(),
        "held"
    );
    assert!(two.fetch_lease_held(&d).await.unwrap());
    one.renew_fetch_lease(&lease, ttl).await.unwrap();
    assert!(
        two.try_fetch_lease(&d, ttl).await.unwrap().is_none(),
        "renewed, still held"
    );
    one.release_fetch_lease(lease).await.unwrap();
    assert!(!two.fetch_lease_held(&d).await.unwrap());
    let taken = two
        .try_fetch_lease(&d, ttl)
        .await
        .unwrap()
        .expect("free again");

    // An expired lease is taken over; the old holder's release then leaves
    // the new holder's lease alone.
    let e = Digest::sha256_of(b"expiring");
    let stale = one
        .try_fetch_lease(&e, Duration::ZERO)
        .await
        .unwrap()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(!two.fetch_lease_held(&e).await.unwrap(), "expired");
    let fresh = two
        .try_fetch_lease(&e, ttl)
        .await
        .unwrap()
        .expect("taken over");
    one.release_fetch_lease(stale).await.unwrap();
    assert!(
        one.fetch_lease_held(&e).await.unwrap(),
        "not the old holder's to release"
    );
    two.release_fetch_lease(fresh).await.unwrap();
    two.release_fetch_lease(taken).await.unwrap();
}

/// Processes that find one expired lease at once: exactly one takes it
/// over, round after round.
pub async fn mirror_expired_leases_go_to_one_taker(b: &dyn Backend) {
    for round in 0..10u8 {
        let d = Digest::sha256_of(&[b'c', round]);
        // A holder that died: its lease expired at once.
        let dead = b.store().try_fetch_lease(&d, Duration::ZERO).await.unwrap();
        assert!(dead.is_some());
        tokio::time::sleep(Duration::from_millis(5)).await;
        let tasks: Vec<_> = (0..6)
            .map(|_| {
                let (s, d) = (b.another_store(), d.clone());
                tokio::spawn(async move {
                    s.try_fetch_lease(&d, Duration::from_secs(60))
                        .await
                        .unwrap()
                })
            })
            .collect();
        let mut won = 0;
        for t in tasks {
            won += usize::from(t.await.unwrap().is_some());
        }
        assert_eq!(won, 1, "round {round}: {won} takers of one expired lease");
    }
}

pub async fn mirror_adopts_bytes_stored_elsewhere(b: &dyn Backend) {
    let (one, two) = (b.store(), b.another_store());
    let data = content(70_000, 9);
    let d = Digest::sha256_of(&data);
    let (a, m) = (repo("up/a"), repo("up/b"));
    assert!(
        two.adopt_blob(&m, &d).await.unwrap().is_none(),
        "nothing stored yet"
    );
    one.put_blob(&a, &d, body(&data, 8192), None).await.unwrap();
    let info = two
        .adopt_blob(&m, &d)
        .await
        .unwrap()
        .expect("stored by the other");
    assert_eq!(info.size, data.len() as u64);
    assert_eq!(
        collect(two.read_blob(&m, &d, None).await.unwrap().body).await,
        data
    );
}

pub async fn mirror_manifests_are_stored_before_their_references(b: &dyn Backend) {
    let mirrored = b
        .store()
        .with_mirrored_repositories([RepositoryPattern::new("up/**").unwrap()]);
    let manifest = Bytes::from(
        serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2, "mediaType": OCI_IMAGE_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                       "digest": Digest::sha256_of(b"{}"), "size": 2},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                        "digest": Digest::sha256_of(b"not fetched yet"), "size": 15}],
        }))
        .unwrap(),
    );
    let tag = Reference::Tag(Tag::parse("v1").unwrap());
    let put = mirrored
        .put_manifest(&repo("up/app"), &tag, None, manifest.clone())
        .await
        .expect("a mirrored repository takes it before its blobs");
    assert_eq!(put.digest, Digest::sha256_of(&manifest));
    let got = mirrored.get_manifest(&repo("up/app"), &tag).await.unwrap();
    assert_eq!(got.bytes, manifest);
    // Anywhere else the references must be there first.
    let e = mirrored
        .put_manifest(&repo("local/app"), &tag, None, manifest)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ManifestBlobUnknown);
}
