//! end-8a, end-8b (tags) and the catalog, paginated with `n` and `last`
//! and a `Link: <...>; rel="next"` header while more follow.

use http::header::{CONTENT_TYPE, LINK};
use http::{Response, StatusCode};
use registry_core::{Listing, Page, RepositoryName, Tag};
use serde::Serialize;

use super::{Reply, json};
use crate::body::Body;
use crate::location;
use crate::router::Inner;

/// end-8: `{"name": ..., "tags": [...]}`, tags in lexical order.
pub(super) async fn tags(
    inner: &Inner,
    name: &RepositoryName,
    n: Option<usize>,
    last: Option<&Tag>,
) -> Reply {
    let page = Page {
        n,
        last: last.map(Tag::as_str),
    };
    let listing = inner.store.list_tags(name, page).await?;
    let body = serde_json::to_vec(&TagList {
        name,
        tags: &listing.items,
    })
    .expect("serializable");
    let path = format!("/v2/{name}/tags/list");
    paged(inner, body, &path, n, &listing)
}

/// `GET /v2/_catalog`: `{"repositories": [...]}`.
pub(super) async fn catalog(
    inner: &Inner,
    n: Option<usize>,
    last: Option<&RepositoryName>,
) -> Reply {
    let page = Page {
        n,
        last: last.map(RepositoryName::as_str),
    };
    let listing = inner.store.list_repositories(page).await?;
    let body = serde_json::to_vec(&Catalog {
        repositories: &listing.items,
    })
    .expect("serializable");
    paged(inner, body, "/v2/_catalog", n, &listing)
}

#[derive(Serialize)]
struct TagList<'a> {
    name: &'a RepositoryName,
    tags: &'a [Tag],
}

#[derive(Serialize)]
struct Catalog<'a> {
    repositories: &'a [RepositoryName],
}

/// 200 with the JSON body, and a `Link` to the next page when there is
/// one. `n=0` answers an empty list and no `Link`, as the spec requires.
fn paged<T: AsRef<str>>(
    inner: &Inner,
    body: Vec<u8>,
    path: &str,
    n: Option<usize>,
    listing: &Listing<T>,
) -> Reply {
    let mut res = Response::new(Body::from(body));
    *res.status_mut() = StatusCode::OK;
    res.headers_mut().insert(CONTENT_TYPE, json());
    if let (true, Some(n), Some(last)) = (listing.more, n.filter(|n| *n > 0), listing.items.last())
    {
        let link = location::next_page(inner.config.prefix(), path, n, last.as_ref())?;
        res.headers_mut().insert(LINK, link);
    }
    Ok(res)
}
