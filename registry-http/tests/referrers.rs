//! Referrers (end-12) in pages linked with `Link: <...>; rel="next"`, and
//! the store's manifest limit as the router's, through `Router::handle` on
//! the memory store.

mod common;

use std::collections::BTreeSet;

use bytes::Bytes;
use common::{OCI_INDEX, OCI_MANIFEST, Registry, Reply};
use registry_core::{Digest, ManifestLimits};
use registry_http::RouterConfig;
use registry_storage::OpendalStore;
use serde_json::json;

/// The page size when a request names none, and the most a page holds.
const PAGE_MAX: usize = 256;

/// Push `count` referrers of a fresh image in `repo`, artifact types
/// alternating `a` and `b`; returns the subject and the referrers' digests
/// by type.
async fn referrers(reg: &Registry, repo: &str, count: usize) -> (Digest, Vec<Digest>, Vec<Digest>) {
    let (image, subject) = reg.push_image(repo, "v1", b"layer").await;
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for i in 0..count {
        let kind = if i % 2 == 0 { "a" } else { "b" };
        let artifact = format!("application/vnd.example.{kind}");
        let m = reg
            .image_manifest(
                repo,
                format!("referrer {i}").as_bytes(),
                Some((&subject, image.len() as u64)),
                Some(&artifact),
            )
            .await;
        let d = Digest::sha256_of(&m);
        let r = reg
            .put_manifest(repo, &d.to_string(), OCI_MANIFEST, m)
            .await;
        assert_eq!(r.status, 201, "{}", r.text());
        if kind == "a" { &mut a } else { &mut b }.push(d);
    }
    (subject, a, b)
}

/// The URL of a `Link: <url>; rel="next"` header.
fn next(r: &Reply) -> Option<String> {
    r.headers.get("link").map(|v| {
        let v = v.to_str().unwrap();
        assert!(v.ends_with(">; rel=\"next\""), "{v}");
        v[1..v.find('>').unwrap()].to_owned()
    })
}

/// Every page from `url` on: the digests of each, in order.
async fn pages(reg: &Registry, url: &str, filtered: bool) -> Vec<Vec<Digest>> {
    let mut out = Vec::new();
    let mut url = Some(url.to_owned());
    while let Some(u) = url {
        let r = reg.get(&u).await;
        assert_eq!(r.status, 200, "{u}: {}", r.text());
        assert_eq!(r.header("content-type"), OCI_INDEX);
        assert_eq!(r.has("oci-filters-applied"), filtered, "{u}");
        let digests = r.json()["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| Digest::parse(d["digest"].as_str().unwrap()).unwrap())
            .collect();
        out.push(digests);
        url = next(&r);
        assert!(out.len() < 1000, "pages never end");
    }
    out
}

fn sorted(mut v: Vec<Digest>) -> Vec<Digest> {
    v.sort_by_key(|d| d.to_string());
    v
}

#[tokio::test]
async fn every_referrer_once_across_linked_pages() {
    let reg = Registry::new();
    let (subject, a, b) = referrers(&reg, "p", 7).await;
    let url = format!("/v2/p/referrers/{subject}?n=3");
    let got = pages(&reg, &url, false).await;
    assert_eq!(got.len(), 3, "7 referrers in pages of 3: {got:?}");
    assert!(got.iter().all(|p| p.len() <= 3));
    let all = sorted(a.iter().chain(&b).cloned().collect());
    assert_eq!(got.concat(), all, "each once, in digest order");

    // Filtered: the filter goes with every link; each page looks at 3.
    let url = format!("/v2/p/referrers/{subject}?n=3&artifactType=application%2Fvnd.example.b");
    let got = pages(&reg, &url, true).await;
    assert_eq!(got.concat(), sorted(b));

    // A page after the last referrer is empty and has no link.
    let last = all.last().unwrap();
    let r = reg
        .get(&format!("/v2/p/referrers/{subject}?last={last}"))
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["manifests"], json!([]));
    assert!(!r.has("link"));
}

#[tokio::test]
async fn pages_are_capped() {
    let reg = Registry::new();
    let (subject, a, b) = referrers(&reg, "cap", PAGE_MAX + 1).await;
    for url in [
        format!("/v2/cap/referrers/{subject}"),
        format!("/v2/cap/referrers/{subject}?n={}", PAGE_MAX * 4),
    ] {
        let got = pages(&reg, &url, false).await;
        assert_eq!(
            got.iter().map(Vec::len).collect::<Vec<_>>(),
            [PAGE_MAX, 1],
            "{url}"
        );
        assert_eq!(got.concat(), sorted(a.iter().chain(&b).cloned().collect()));
    }
}

/// A manifest of about `size` bytes (one large annotation) whose subject
/// is `subject`.
async fn large_referrer(
    reg: &Registry,
    repo: &str,
    subject: &Digest,
    size: usize,
    seed: u8,
) -> Bytes {
    let base = reg
        .image_manifest(
            repo,
            &[seed],
            Some((subject, 100)),
            Some("application/vnd.example.big"),
        )
        .await;
    let mut m: serde_json::Value = serde_json::from_slice(&base).unwrap();
    m["annotations"] = json!({ "padding": "x".repeat(size) });
    Bytes::from(serde_json::to_vec(&m).unwrap())
}

#[tokio::test]
async fn the_stores_manifest_limit_is_the_routers() {
    const MIB: usize = 1024 * 1024;
    let store = OpendalStore::memory().with_manifest_limits(ManifestLimits { max_size: 8 * MIB });
    let reg = Registry::with_store(store, RouterConfig::default());
    let (_, subject) = reg.push_image("big", "v1", b"layer").await;
    let mut pushed = Vec::new();
    for seed in 0..2 {
        let m = large_referrer(&reg, "big", &subject, 5 * MIB, seed).await;
        assert!(m.len() > 5 * MIB);
        let d = Digest::sha256_of(&m);
        let r = reg
            .put_manifest("big", &d.to_string(), OCI_MANIFEST, m)
            .await;
        assert_eq!(
            r.status,
            201,
            "a 5 MiB manifest under an 8 MiB limit: {}",
            r.text()
        );
        pushed.push(d);
    }
    // Listed, one per page: a page ends after 4 MiB of descriptors.
    let got = pages(&reg, &format!("/v2/big/referrers/{subject}"), false).await;
    assert_eq!(got.iter().map(Vec::len).collect::<Vec<_>>(), [1, 1]);
    assert_eq!(
        got.concat().into_iter().collect::<BTreeSet<_>>(),
        pushed.into_iter().collect()
    );
    // Past the store's limit: refused before the store sees it.
    let m = large_referrer(&reg, "big", &subject, 8 * MIB, 9).await;
    reg.put_manifest("big", "too-big", OCI_MANIFEST, m)
        .await
        .assert_error(413, "MANIFEST_INVALID");
}
