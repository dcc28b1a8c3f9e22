//! Deletes racing writes, on two store instances over one backend (as two
//! processes on one store): every round must end in a state that some
//! serial order of the two operations produces. The same races over three
//! real server processes are in `tests/fleet_races.rs` of the workspace.

use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;
use registry_core::media_type::OCI_IMAGE_MANIFEST;
use registry_core::{
    BlobStore, Digest, ErrorKind, ManifestStore, Page, Reference, RepositoryName, Result, Tag,
    UploadStore,
};
use registry_storage::OpendalStore;
use tokio::sync::Barrier;

use crate::support::*;

const ROUNDS: usize = 12;

/// Run `a` and `b` released together; both results.
async fn race<A, B, RA, RB>(a: A, b: B) -> (RA, RB)
where
    A: Future<Output = RA> + Send + 'static,
    B: Future<Output = RB> + Send + 'static,
    RA: Send + 'static,
    RB: Send + 'static,
{
    let gate = Arc::new(Barrier::new(2));
    let (ga, gb) = (gate.clone(), gate);
    let ta = tokio::spawn(async move {
        ga.wait().await;
        a.await
    });
    let tb = tokio::spawn(async move {
        gb.wait().await;
        b.await
    });
    (ta.await.unwrap(), tb.await.unwrap())
}

/// A small image in `r` (config and layer pushed), unique per `seed`.
async fn image(s: &OpendalStore, r: &RepositoryName, seed: &str) -> Bytes {
    let config = format!("{{\"seed\":\"{seed}\"}}").into_bytes();
    let cd = Digest::sha256_of(&config);
    s.put_blob(r, &cd, body(&config, 64), None).await.unwrap();
    let m = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_IMAGE_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": config.len()},
        "layers": [],
    });
    Bytes::from(serde_json::to_vec(&m).unwrap())
}

/// Two images in `r`: the first pushed as tag `t` (its digest), the second
/// not pushed yet (its bytes and digest).
async fn tagged_then_another(
    s: &OpendalStore,
    r: &RepositoryName,
    round: usize,
) -> (Digest, Bytes, Digest) {
    let m1 = image(s, r, &format!("a{round}")).await;
    let m2 = image(s, r, &format!("b{round}")).await;
    let d1 = s
        .put_manifest(r, &tag_ref("t"), None, m1)
        .await
        .unwrap()
        .digest;
    let d2 = Digest::sha256_of(&m2);
    (d1, m2, d2)
}

fn tag_ref(t: &str) -> Reference {
    Reference::Tag(Tag::parse(t).unwrap())
}

/// What the store says of tag `t`: the digest it resolves to, after
/// checking that a tag is listed exactly when it resolves.
async fn tag_state(s: &OpendalStore, r: &RepositoryName, t: &str) -> Option<Digest> {
    let got = s.get_manifest(r, &tag_ref(t)).await;
    let listed = match s.list_tags(r, Page::default()).await {
        Ok(l) => l.items.iter().any(|x| x.as_str() == t),
        Err(e) => {
            assert_eq!(e.kind(), ErrorKind::NameUnknown, "{e}");
            false
        }
    };
    match got {
        Ok(m) => {
            assert!(listed, "tag {t} resolves but is not listed");
            let by_digest = s
                .get_manifest(r, &Reference::Digest(m.digest.clone()))
                .await
                .expect("a tag's manifest is readable by digest");
            assert_eq!(by_digest.bytes, m.bytes);
            Some(m.digest)
        }
        Err(e) => {
            assert_eq!(e.kind(), ErrorKind::ManifestUnknown, "{e}");
            assert!(!listed, "tag {t} is listed but does not resolve (dangling)");
            None
        }
    }
}

async fn exists(s: &OpendalStore, r: &RepositoryName, d: &Digest) -> bool {
    s.get_manifest(r, &Reference::Digest(d.clone()))
        .await
        .is_ok()
}

/// `PUT T` with M's bytes racing `DELETE M`: both gone, or both there.
pub async fn race_tag_push_vs_manifest_delete(b: &dyn Backend) {
    let (s1, s2) = (b.store(), b.another_store());
    for round in 0..ROUNDS {
        let r = repo(&format!("race/push-vs-delete/r{round}"));
        let m = image(&s1, &r, &format!("m{round}")).await;
        let d = s1
            .put_manifest(
                &r,
                &Reference::Digest(Digest::sha256_of(&m)),
                None,
                m.clone(),
            )
            .await
            .unwrap()
            .digest;
        let (put, del) = {
            let (s1, s2, r1, r2, d2) = (s1.clone(), s2.clone(), r.clone(), r.clone(), d.clone());
            race(
                async move { s1.put_manifest(&r1, &tag_ref("t"), None, m).await },
                async move { s2.delete_manifest(&r2, &Reference::Digest(d2)).await },
            )
            .await
        };
        put.unwrap();
        del.unwrap();
        let tagged = tag_state(&s1, &r, "t").await;
        assert_eq!(tag_state(&s2, &r, "t").await, tagged);
        match tagged {
            Some(t) => {
                assert_eq!(t, d);
                assert!(exists(&s1, &r, &d).await);
            }
            None => assert!(
                !exists(&s1, &r, &d).await,
                "round {round}: the tag went with the delete but the manifest stayed"
            ),
        }
    }
}

/// T → M1; `PUT T` with M2 racing `DELETE M1`: every serial order leaves
/// T → M2.
pub async fn race_tag_move_vs_old_manifest_delete(b: &dyn Backend) {
    let (s1, s2) = (b.store(), b.another_store());
    for round in 0..ROUNDS {
        let r = repo(&format!("race/move-vs-delete/r{round}"));
        let (d1, m2, d2) = tagged_then_another(&s1, &r, round).await;
        let (put, del) = {
            let (s1, s2, r1, r2) = (s1.clone(), s2.clone(), r.clone(), r.clone());
            race(
                async move { s1.put_manifest(&r1, &tag_ref("t"), None, m2).await },
                async move { s2.delete_manifest(&r2, &Reference::Digest(d1)).await },
            )
            .await
        };
        put.unwrap();
        del.unwrap();
        for s in [&s1, &s2] {
            assert_eq!(
                tag_state(s, &r, "t").await,
                Some(d2.clone()),
                "round {round}: the moved tag survives"
            );
        }
    }
}

/// T → M1; `DELETE T` racing `PUT T` with M2: T absent or T → M2.
pub async fn race_tag_delete_vs_tag_push(b: &dyn Backend) {
    let (s1, s2) = (b.store(), b.another_store());
    for round in 0..ROUNDS {
        let r = repo(&format!("race/tag-delete/r{round}"));
        let (_, m2, d2) = tagged_then_another(&s1, &r, round).await;
        let (put, del) = {
            let (s1, s2, r1, r2) = (s1.clone(), s2.clone(), r.clone(), r.clone());
            race(
                async move { s1.put_manifest(&r1, &tag_ref("t"), None, m2).await },
                async move { s2.delete_manifest(&r2, &tag_ref("t")).await },
            )
            .await
        };
        put.unwrap();
        if let Err(e) = del {
            assert_eq!(e.kind(), ErrorKind::ManifestUnknown, "{e}");
        }
        let state = tag_state(&s1, &r, "t").await;
        assert!(state.is_none() || state == Some(d2.clone()), "{state:?}");
        assert_eq!(tag_state(&s2, &r, "t").await, state);
    }
}

/// Either the completion's 201 with its digest, or the spec's unknown
/// upload.
fn completion_ok(result: &Result<registry_core::BlobInfo>, d: &Digest) {
    match result {
        Ok(info) => assert_eq!(&info.digest, d),
        Err(e) => assert_eq!(e.kind(), ErrorKind::BlobUploadUnknown, "{e}"),
    }
}

/// Completing an upload racing its cancel, and racing a second
/// completion: each answers as if it came first or second, never with
/// another error.
pub async fn race_upload_completion(b: &dyn Backend) {
    let (s1, s2) = (b.store(), b.another_store());
    for round in 0..ROUNDS {
        let r = repo(&format!("race/complete/r{round}"));
        let data = content(10_000 + round, round as u8);
        let d = Digest::sha256_of(&data);
        let (first, rest) = data.split_at(4_000);
        // Against a cancel.
        let st = s1.start_upload(&r).await.unwrap();
        s1.write_chunk(&r, &st.id, None, body(first, 1000), None)
            .await
            .unwrap();
        let (done, cancel) = {
            let (s1, s2, r1, r2, id1, id2) = (
                s1.clone(),
                s2.clone(),
                r.clone(),
                r.clone(),
                st.id.clone(),
                st.id.clone(),
            );
            let (rest, d1) = (rest.to_vec(), d.clone());
            race(
                async move {
                    s1.complete_upload(&r1, &id1, &d1, Some((body(&rest, 1000), None)))
                        .await
                },
                async move { s2.cancel_upload(&r2, &id2).await },
            )
            .await
        };
        completion_ok(&done, &d);
        if let Err(e) = &cancel {
            assert_eq!(e.kind(), ErrorKind::BlobUploadUnknown, "{e}");
        }
        if done.is_ok() {
            assert_eq!(collect_blob(&s2, &r, &d).await, data);
        }
        // Against a second completion.
        let st = s1.start_upload(&r).await.unwrap();
        s1.write_chunk(&r, &st.id, None, body(&data, 1000), None)
            .await
            .unwrap();
        let complete = |s: OpendalStore| {
            let (r, id, d) = (r.clone(), st.id.clone(), d.clone());
            async move { s.complete_upload(&r, &id, &d, None).await }
        };
        let (one, two) = race(complete(s1.clone()), complete(s2.clone())).await;
        completion_ok(&one, &d);
        completion_ok(&two, &d);
        assert!(one.is_ok() || two.is_ok(), "one completion wins");
        assert_eq!(collect_blob(&s1, &r, &d).await, data);
    }
}

async fn collect_blob(s: &OpendalStore, r: &RepositoryName, d: &Digest) -> Vec<u8> {
    let read = s.read_blob(r, d, None).await.unwrap();
    collect(read.body).await
}

/// A `PATCH` racing the upload's completion: either the chunk is accepted
/// before the completion (which then covers it, so a digest of the earlier
/// bytes is wrong) or the completion comes first and the chunk finds the
/// upload unknown. Never both accepted, with the chunk left out.
pub async fn race_chunk_vs_completion(b: &dyn Backend) {
    let (s1, s2) = (b.store(), b.another_store());
    let mut both = 0;
    for round in 0..ROUNDS * 2 {
        let r = repo(&format!("race/chunk-vs-complete/r{round}"));
        let data = content(8_000, round as u8);
        let (first, rest) = data.split_at(4_000);
        let d = Digest::sha256_of(first);
        let st = s1.start_upload(&r).await.unwrap();
        s1.write_chunk(&r, &st.id, None, body(first, 1000), None)
            .await
            .unwrap();
        let (patch, put) = {
            let (s1, s2, r1, r2, id1, id2) = (
                s1.clone(),
                s2.clone(),
                r.clone(),
                r.clone(),
                st.id.clone(),
                st.id.clone(),
            );
            let rest = rest.to_vec();
            race(
                async move {
                    s1.write_chunk(&r1, &id1, Some(4_000), body(&rest, 1000), None)
                        .await
                },
                async move { s2.complete_upload(&r2, &id2, &d, None).await },
            )
            .await
        };
        match (&patch, &put) {
            (Ok(_), Ok(_)) => both += 1,
            (Err(e), Ok(_)) => assert_eq!(e.kind(), ErrorKind::BlobUploadUnknown, "{e}"),
            (Ok(_), Err(e)) => assert!(
                matches!(
                    e.kind(),
                    ErrorKind::DigestInvalid | ErrorKind::BlobUploadUnknown
                ),
                "{e}"
            ),
            (Err(a), Err(b)) => panic!("round {round}: both failed: {a}; {b}"),
        }
    }
    assert_eq!(
        both, 0,
        "a chunk was accepted and then left out of the blob"
    );
}
