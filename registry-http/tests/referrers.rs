//! Referrers (end-12) in pages linked with `Link: <...>; rel="next"`, and
//! the store's manifest limit as the router's, through `Router::handle` on
//! the memory store.

mod common;

use std::collections::BTreeSet;

use common::{Client, InProcess};
use registry_core::ManifestLimits;
use registry_http::RouterConfig;
use registry_storage::OpendalStore;
use registry_testkit::content::{OCI_INDEX, OCI_MANIFEST, digest};
use serde_json::json;

/// The page size when a request names none, and the most a page holds.
const PAGE_MAX: usize = 256;

/// Push `count` referrers of a fresh image in `repo`, artifact types
/// alternating `a` and `b`; returns the subject and the referrers' digests
/// by type.
fn referrers(reg: &Client, repo: &str, count: usize) -> (String, Vec<String>, Vec<String>) {
    let (image, subject) = reg.push_image(repo, "v1", "layer");
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for i in 0..count {
        let kind = if i % 2 == 0 { "a" } else { "b" };
        let artifact = format!("application/vnd.example.{kind}");
        let m = reg.image_with_layer(
            repo,
            format!("referrer {i}").as_bytes(),
            Some((&subject, image.len())),
            Some(&artifact),
        );
        let d = digest(&m);
        let r = reg.put_manifest(repo, &d, OCI_MANIFEST, &m);
        assert_eq!(r.status, 201, "{}", r.text());
        if kind == "a" { &mut a } else { &mut b }.push(d);
    }
    (subject, a, b)
}

/// Every page from `url` on: the digests of each, in order.
fn pages(reg: &Client, url: &str, filtered: bool) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let mut url = Some(url.to_owned());
    while let Some(u) = url {
        let r = reg.get(&u, &[]);
        assert_eq!(r.status, 200, "{u}: {}", r.text());
        assert_eq!(r.content_type(), OCI_INDEX);
        assert_eq!(r.has("oci-filters-applied"), filtered, "{u}");
        let digests = r.json()["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["digest"].as_str().unwrap().to_owned())
            .collect();
        out.push(digests);
        url = r.next_link();
        assert!(out.len() < 1000, "pages never end");
    }
    out
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

#[test]
fn every_referrer_once_across_linked_pages() {
    let reg = common::registry();
    let (subject, a, b) = referrers(&reg, "p", 7);
    let url = format!("/v2/p/referrers/{subject}?n=3");
    let got = pages(&reg, &url, false);
    assert_eq!(got.len(), 3, "7 referrers in pages of 3: {got:?}");
    assert!(got.iter().all(|p| p.len() <= 3));
    let all = sorted(a.iter().chain(&b).cloned().collect());
    assert_eq!(got.concat(), all, "each once, in digest order");

    // Filtered: the filter goes with every link; each page looks at 3.
    let url = format!("/v2/p/referrers/{subject}?n=3&artifactType=application%2Fvnd.example.b");
    let got = pages(&reg, &url, true);
    assert_eq!(got.concat(), sorted(b));

    // A page after the last referrer is empty and has no link.
    let last = all.last().unwrap();
    let r = reg.get(&format!("/v2/p/referrers/{subject}?last={last}"), &[]);
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["manifests"], json!([]));
    assert!(!r.has("link"));
}

#[test]
fn pages_are_capped() {
    let reg = common::registry();
    let (subject, a, b) = referrers(&reg, "cap", PAGE_MAX + 1);
    for url in [
        format!("/v2/cap/referrers/{subject}"),
        format!("/v2/cap/referrers/{subject}?n={}", PAGE_MAX * 4),
    ] {
        let got = pages(&reg, &url, false);
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
fn large_referrer(reg: &Client, repo: &str, subject: &str, size: usize, seed: u8) -> Vec<u8> {
    let base = reg.image_with_layer(
        repo,
        &[seed],
        Some((subject, 100)),
        Some("application/vnd.example.big"),
    );
    let mut m: serde_json::Value = serde_json::from_slice(&base).unwrap();
    m["annotations"] = json!({ "padding": "x".repeat(size) });
    serde_json::to_vec(&m).unwrap()
}

#[test]
fn the_stores_manifest_limit_is_the_routers() {
    const MIB: usize = 1024 * 1024;
    let store = OpendalStore::memory().with_manifest_limits(ManifestLimits { max_size: 8 * MIB });
    let reg = InProcess::with_store(store, RouterConfig::default()).client();
    let (_, subject) = reg.push_image("big", "v1", "layer");
    let mut pushed = Vec::new();
    for seed in 0..2 {
        let m = large_referrer(&reg, "big", &subject, 5 * MIB, seed);
        assert!(m.len() > 5 * MIB);
        let d = digest(&m);
        let r = reg.put_manifest("big", &d, OCI_MANIFEST, &m);
        assert_eq!(
            r.status,
            201,
            "a 5 MiB manifest under an 8 MiB limit: {}",
            r.text()
        );
        pushed.push(d);
    }
    // Listed, one per page: a page ends after 4 MiB of descriptors.
    let got = pages(&reg, &format!("/v2/big/referrers/{subject}"), false);
    assert_eq!(got.iter().map(Vec::len).collect::<Vec<_>>(), [1, 1]);
    assert_eq!(
        got.concat().into_iter().collect::<BTreeSet<_>>(),
        pushed.into_iter().collect()
    );
    // Past the store's limit: refused before the store sees it.
    let m = large_referrer(&reg, "big", &subject, 8 * MIB, 9);
    reg.put_manifest("big", "too-big", OCI_MANIFEST, &m)
        .assert_error(413, "MANIFEST_INVALID");
}
