//! Referrer listings answered from the descriptors recorded at push time,
//! in pages; tag listings in pages, in lexical order.

use std::collections::BTreeSet;

use bytes::Bytes;
use registry_core::manifest::ManifestLimits;
use registry_core::media_type::OCI_IMAGE_MANIFEST;
use registry_core::{Descriptor, Digest, ManifestStore, Page, Reference, RepositoryName, Tag};
use registry_storage::OpendalStore;
use registry_storage::layout::Key;

use crate::manifests::{image, tag};
use crate::support::*;

const A: &str = "application/vnd.example.a";
const B: &str = "application/vnd.example.b";
const BIG: &str = "application/vnd.example.big";

/// Push a subject (tagged `app`) and `count` referrers of it (artifact
/// types alternating `a` and `b`); returns the subject and the referrers'
/// digests.
async fn subject_with_referrers(
    s: &OpendalStore,
    r: &RepositoryName,
    count: u8,
) -> (Digest, Vec<Digest>) {
    let subject = image(s, r, 0, None, None).await;
    let sd = s
        .put_manifest(r, &tag("app"), None, subject)
        .await
        .unwrap()
        .digest;
    let mut referrers = Vec::new();
    for seed in 1..=count {
        let artifact = if seed % 2 == 0 { A } else { B };
        let m = image(s, r, seed, Some(&sd), Some(artifact)).await;
        referrers.push(push_by_digest(s, r, m).await);
    }
    (sd, referrers)
}

async fn push_by_digest(s: &OpendalStore, r: &RepositoryName, m: Bytes) -> Digest {
    let d = Digest::sha256_of(&m);
    s.put_manifest(r, &Reference::Digest(d.clone()), None, m)
        .await
        .unwrap();
    d
}

async fn all_referrers(s: &OpendalStore, r: &RepositoryName, sd: &Digest) -> Vec<Descriptor> {
    s.list_referrers(r, sd, None, Page::default())
        .await
        .unwrap()
        .manifests
}

fn digests(ds: &[Descriptor]) -> Vec<Digest> {
    ds.iter().map(|d| d.digest().clone()).collect()
}

fn sorted(mut v: Vec<Digest>) -> Vec<Digest> {
    v.sort_by_key(|d| d.to_string());
    v
}

/// A listing parses no manifest: with every referrer's manifest bytes
/// removed or made unparseable behind the store's back, all 50 are still
/// listed, whole (a listing that read them would drop or fail on them).
pub async fn referrers_listed_without_reading_manifests(b: &dyn Backend) {
    let s = b.store();
    let r = repo("l/recorded");
    let (sd, pushed) = subject_with_referrers(&s, &r, 50).await;
    let before = all_referrers(&s, &r, &sd).await;
    assert_eq!(digests(&before), sorted(pushed.clone()));
    // A fresh store instance: nothing cached in memory either.
    let fresh = b.another_store();
    for (i, d) in pushed.iter().enumerate() {
        let path = Key::BlobData(d).path();
        if i % 2 == 0 {
            fresh.operator().delete(&path).await.unwrap();
        } else {
            fresh.operator().write(&path, "not json").await.unwrap();
        }
    }
    assert_eq!(all_referrers(&fresh, &r, &sd).await, before);
    let b_only = fresh
        .list_referrers(&r, &sd, Some(B), Page::default())
        .await
        .unwrap();
    assert_eq!(b_only.manifests.len(), 25);
    assert!(
        b_only
            .manifests
            .iter()
            .all(|d| d.artifact_type() == Some(B))
    );
}

/// Links written before descriptors were recorded (they hold the digest
/// only) are answered from the manifest, parsed with the store's limits:
/// here a 5 MiB referrer under an 8 MiB limit, which the default 4 MiB
/// would refuse.
pub async fn referrers_from_links_without_descriptors(b: &dyn Backend) {
    const MIB: usize = 1024 * 1024;
    let limits = ManifestLimits { max_size: 8 * MIB };
    let s = b.store().with_manifest_limits(limits);
    let r = repo("l/old");
    let (sd, mut pushed) = subject_with_referrers(&s, &r, 3).await;
    let big = image(&s, &r, 9, Some(&sd), Some(BIG)).await;
    let mut big: serde_json::Value = serde_json::from_slice(&big).unwrap();
    big["annotations"]["padding"] = serde_json::json!("x".repeat(5 * MIB));
    let big = Bytes::from(serde_json::to_vec(&big).unwrap());
    pushed.push(push_by_digest(&s, &r, big.clone()).await);
    let recorded = all_referrers(&s, &r, &sd).await;
    assert_eq!(digests(&recorded), sorted(pushed.clone()));

    let fresh = b.another_store().with_manifest_limits(limits);
    for d in &pushed {
        let link = Key::ReferrerLink(&r, &sd, d).path();
        fresh.operator().write(&link, d.to_string()).await.unwrap();
    }
    assert_eq!(all_referrers(&fresh, &r, &sd).await, recorded);
    let listed_big = recorded.iter().find(|d| d.artifact_type() == Some(BIG));
    assert_eq!(listed_big.map(Descriptor::size), Some(big.len() as u64));
}

/// Pages of `n` in digest order see every referrer once, also while more
/// are pushed between pages (those land on a later page or an earlier
/// one, never twice).
pub async fn referrers_in_pages(b: &dyn Backend) {
    let s = b.store();
    let r = repo("l/pages");
    let (sd, pushed) = subject_with_referrers(&s, &r, 10).await;
    let mut seen: Vec<Digest> = Vec::new();
    let mut last: Option<String> = None;
    let mut extra = Vec::new();
    let mut seed = 100;
    loop {
        let page = Page {
            n: Some(3),
            last: last.as_deref(),
        };
        let got = s.list_referrers(&r, &sd, None, page).await.unwrap();
        assert!(got.manifests.len() <= 3);
        seen.extend(digests(&got.manifests));
        let Some(next) = got.next else { break };
        assert_eq!(Some(&next), seen.last(), "a page continues after its last");
        last = Some(next.to_string());
        // Another process pushes a referrer between two pages.
        let m = image(&b.another_store(), &r, seed, Some(&sd), Some(A)).await;
        extra.push(push_by_digest(&b.another_store(), &r, m).await);
        seed += 1;
    }
    let strings: Vec<String> = seen.iter().map(Digest::to_string).collect();
    assert!(
        strings.windows(2).all(|w| w[0] < w[1]),
        "in digest order, none twice"
    );
    let seen: BTreeSet<Digest> = seen.into_iter().collect();
    assert!(pushed.iter().all(|d| seen.contains(d)), "none lost");
    assert!(seen.iter().all(|d| pushed.contains(d) || extra.contains(d)));

    // A filter applies within each page of 3 examined.
    let mut a = Vec::new();
    let mut last: Option<String> = None;
    loop {
        let page = Page {
            n: Some(3),
            last: last.as_deref(),
        };
        let got = s.list_referrers(&r, &sd, Some(A), page).await.unwrap();
        a.extend(digests(&got.manifests));
        match got.next {
            Some(next) => last = Some(next.to_string()),
            None => break,
        }
    }
    let want: Vec<Digest> = all_referrers(&s, &r, &sd)
        .await
        .into_iter()
        .filter(|d| d.artifact_type() == Some(A))
        .map(|d| d.digest().clone())
        .collect();
    assert_eq!(a, want);
}

/// Tags in pages follow lexical order where key order differs (`v1` sorts
/// before `v1-rc`, whose key `v1-rc/` sorts before `v1/`), on every
/// backend, whichever way it lists.
pub async fn tags_in_pages_in_lexical_order(b: &dyn Backend) {
    let s = b.store();
    let r = repo("l/tags");
    let names = [
        "v1", "v1-rc", "v1.0", "v1.0-rc", "v1.0.1", "v10", "x", "x-y", "x.z", "x0", "y", "y-",
    ];
    let bytes = image(&s, &r, 1, None, None).await;
    for t in names {
        s.put_manifest(&r, &tag(t), Some(OCI_IMAGE_MANIFEST), bytes.clone())
            .await
            .unwrap();
    }
    let mut want: Vec<String> = names.iter().map(|t| t.to_string()).collect();
    want.sort();
    for n in [1, 2, 3, 5, 12, 13] {
        let mut got = Vec::new();
        let mut last: Option<String> = None;
        loop {
            let page = Page {
                n: Some(n),
                last: last.as_deref(),
            };
            let listing = s.list_tags(&r, page).await.unwrap();
            assert!(listing.items.len() <= n);
            got.extend(listing.items.iter().map(Tag::to_string));
            if !listing.more {
                break;
            }
            last = got.last().cloned();
        }
        assert_eq!(got, want, "n = {n}");
    }
    // After the last tag: an empty page of a known repository.
    let page = Page {
        n: Some(2),
        last: Some("y-"),
    };
    let listing = s.list_tags(&r, page).await.unwrap();
    assert!(listing.items.is_empty() && !listing.more, "{listing:?}");
}

/// Referrers of one subject pushed at once through two store instances
/// (two processes on one store) are all listed: each writes an object of
/// its own, so no push overwrites another's record.
pub async fn referrers_pushed_at_once_are_all_listed(b: &dyn Backend) {
    let s = b.store();
    let r = repo("l/racing");
    let (sd, _) = subject_with_referrers(&s, &r, 0).await;
    let stores = [b.store(), b.another_store()];
    let mut manifests = Vec::new();
    for seed in 1..=16u8 {
        manifests.push(image(&s, &r, seed, Some(&sd), Some(A)).await);
    }
    let pushes = manifests.iter().enumerate().map(|(i, m)| {
        let (store, r, m) = (stores[i % 2].clone(), r.clone(), m.clone());
        tokio::spawn(async move { push_by_digest(&store, &r, m).await })
    });
    let mut pushed = Vec::new();
    for p in pushes.collect::<Vec<_>>() {
        pushed.push(p.await.unwrap());
    }
    assert_eq!(digests(&all_referrers(&s, &r, &sd).await), sorted(pushed));
}
