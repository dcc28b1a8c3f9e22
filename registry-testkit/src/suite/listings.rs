//! Listings: tags (end-8a, end-8b) and the catalog, in pages linked with
//! `Link`.

use serde_json::json;

use crate::content::OCI_MANIFEST;
use crate::{Client, Transport};

/// Every page from `url` on, following `Link`: the `field` of each.
fn pages<T: Transport>(c: &Client<T>, url: &str, field: &str) -> Vec<Vec<String>> {
    let mut next = Some(url.to_owned());
    let mut out = Vec::new();
    while let Some(url) = next {
        let page = c.get(&url, &[]);
        assert_eq!(page.status, 200, "{url}: {page:?}");
        let items = page.json()[field].as_array().unwrap().clone();
        out.push(
            items
                .iter()
                .map(|t| t.as_str().unwrap().to_owned())
                .collect(),
        );
        next = page.next_link();
        assert!(out.len() < 100, "pages never end");
    }
    out
}

/// end-8a, end-8b: tags in lexical order (upper case first), whole and in
/// pages from `n` and `last`.
pub fn list_tags_with_pagination<T: Transport>(c: &Client<T>) {
    let repo = "discover/tags";
    c.push_image(repo, "v1", "tags");
    let (manifest, _) = c.push_image(repo, "v2", "tags");
    for tag in ["latest", "a", "v1.1", "b", "B"] {
        assert_eq!(
            c.put_manifest(repo, tag, OCI_MANIFEST, &manifest).status,
            201
        );
    }
    let all = ["B", "a", "b", "latest", "v1", "v1.1", "v2"];

    let list = c.get(&format!("/v2/{repo}/tags/list"), &[]);
    assert_eq!(list.status, 200);
    assert_eq!(list.content_type(), "application/json");
    assert_eq!(list.json(), json!({ "name": repo, "tags": all }));
    assert!(!list.has("link"));

    let got = pages(c, &format!("/v2/{repo}/tags/list?n=3"), "tags");
    assert_eq!(got.iter().map(Vec::len).collect::<Vec<_>>(), [3, 3, 1]);
    assert_eq!(got.concat(), all);

    let first = c.get(&format!("/v2/{repo}/tags/list?n=2"), &[]);
    assert_eq!(first.json()["tags"], json!(["B", "a"]));
    assert_eq!(
        first.must("link"),
        format!("</v2/{repo}/tags/list?n=2&last=a>; rel=\"next\"")
    );
    let after = c.get(&format!("/v2/{repo}/tags/list?n=2&last=latest"), &[]);
    assert_eq!(after.json()["tags"], json!(["v1", "v1.1"]));
    let rest = c.get(&format!("/v2/{repo}/tags/list?last=v1"), &[]);
    assert_eq!(rest.json()["tags"], json!(["v1.1", "v2"]));
    assert!(!rest.has("link"));

    let none = c.get(&format!("/v2/{repo}/tags/list?n=0"), &[]);
    assert_eq!(none.status, 200);
    assert_eq!(none.json()["tags"], json!([]));
    assert!(!none.has("link"), "n=0 has no Link");
}

/// The catalog, whole and in pages.
pub fn catalog_with_pagination<T: Transport>(c: &Client<T>) {
    for repo in ["zeta", "alpha/one", "alpha/two", "mid/x/y"] {
        c.push_image(repo, "latest", repo);
    }
    let all = c.get("/v2/_catalog", &[]);
    assert_eq!(all.status, 200);
    assert_eq!(
        all.json(),
        json!({ "repositories": ["alpha/one", "alpha/two", "mid/x/y", "zeta"] })
    );

    let page = c.get("/v2/_catalog?n=2", &[]);
    assert_eq!(
        page.json()["repositories"],
        json!(["alpha/one", "alpha/two"])
    );
    assert_eq!(
        page.must("link"),
        "</v2/_catalog?n=2&last=alpha/two>; rel=\"next\""
    );
    let last = c.get("/v2/_catalog?n=2&last=alpha/two", &[]);
    assert_eq!(last.json()["repositories"], json!(["mid/x/y", "zeta"]));
    assert!(!last.has("link"));
    let tail = c.get("/v2/_catalog?n=5&last=mid/x/y", &[]);
    assert_eq!(tail.json()["repositories"], json!(["zeta"]));
    assert!(!tail.has("link"));

    let got = pages(c, "/v2/_catalog?n=3", "repositories");
    assert_eq!(got.iter().map(Vec::len).collect::<Vec<_>>(), [3, 1]);
    assert_eq!(got.concat(), ["alpha/one", "alpha/two", "mid/x/y", "zeta"]);
}
