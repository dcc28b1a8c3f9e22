//! end-12a, end-12b: the manifests whose `subject` is a digest, as an OCI
//! image index, optionally filtered by `artifactType`, in pages of
//! [`PAGE_MAX`] referrers at most with a `Link: <...>; rel="next"` header
//! while more follow (as distribution-spec v1.1, "Listing Referrers",
//! allows).

use http::header::{CONTENT_TYPE, LINK};
use http::{HeaderValue, StatusCode};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use registry_core::manifest::Descriptor;
use registry_core::media_type::OCI_IMAGE_INDEX;
use registry_core::{Digest, ErrorKind, Page, Referrers, RepositoryName, Result};
use serde::Serialize;

use super::Reply;
use crate::body::Body;
use crate::headers::{OCI_FILTERS_APPLIED, response, value};
use crate::router::Inner;

/// The most referrers one response examines, and the page size when the
/// request names none (`n` is honoured up to it).
pub(crate) const PAGE_MAX: usize = 256;

/// What a media type keeps unescaped in a query value.
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_');

/// A request for one page of referrers.
pub(crate) struct Query<'a> {
    pub artifact_type: Option<&'a str>,
    pub n: Option<usize>,
    pub last: Option<&'a Digest>,
}

/// end-12. Always 200 for a valid request: an unknown repository or subject
/// has no referrers, and a 404 would tell clients the API is missing (they
/// would fall back to the referrers tag schema).
pub(super) async fn list(
    inner: &Inner,
    name: &RepositoryName,
    subject: &Digest,
    q: Query<'_>,
) -> Reply {
    let n = q.n.unwrap_or(PAGE_MAX).min(PAGE_MAX);
    let last = q.last.map(Digest::to_string);
    let page = Page {
        n: Some(n),
        last: last.as_deref(),
    };
    let found = match inner
        .store
        .list_referrers(name, subject, q.artifact_type, page)
        .await
    {
        Ok(found) => found,
        Err(e)
            if matches!(
                e.kind(),
                ErrorKind::NameUnknown | ErrorKind::ManifestUnknown
            ) =>
        {
            Referrers::default()
        }
        Err(e) => return Err(e),
    };
    let index = Index {
        schema_version: 2,
        media_type: OCI_IMAGE_INDEX,
        manifests: &found.manifests,
    };
    let body = serde_json::to_vec(&index).expect("serializable");
    let mut res = response(StatusCode::OK, Body::from(body));
    let h = res.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static(OCI_IMAGE_INDEX));
    if q.artifact_type.is_some() {
        h.insert(
            OCI_FILTERS_APPLIED,
            HeaderValue::from_static("artifactType"),
        );
    }
    if let Some(next) = &found.next {
        let link = next_page(
            inner.config.prefix(),
            name,
            subject,
            n,
            next,
            q.artifact_type,
        )?;
        h.insert(LINK, link);
    }
    Ok(res)
}

/// `Link: <prefix/v2/<name>/referrers/<subject>?n=&last=[&artifactType=]>; rel="next"`.
fn next_page(
    prefix: &str,
    name: &RepositoryName,
    subject: &Digest,
    n: usize,
    last: &Digest,
    artifact_type: Option<&str>,
) -> Result<HeaderValue> {
    let mut url = format!("<{prefix}/v2/{name}/referrers/{subject}?n={n}&last={last}");
    if let Some(t) = artifact_type {
        url.push_str("&artifactType=");
        url.extend(utf8_percent_encode(t, QUERY_VALUE));
    }
    url.push_str(">; rel=\"next\"");
    value(url)
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Index<'a> {
    schema_version: u32,
    media_type: &'static str,
    manifests: &'a [Descriptor],
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_page_links_escape_the_filter() {
        let name = RepositoryName::parse("a/b").unwrap();
        let (s, l) = (Digest::sha256_of(b"s"), Digest::sha256_of(b"l"));
        let link = next_page("/r", &name, &s, 5, &l, Some("application/vnd.x+json")).unwrap();
        assert_eq!(
            link,
            format!(
                "</r/v2/a/b/referrers/{s}?n=5&last={l}&artifactType=application%2Fvnd.x%2Bjson>; rel=\"next\""
            )
        );
        let plain = next_page("", &name, &s, 1, &l, None).unwrap();
        assert_eq!(
            plain,
            format!("</v2/a/b/referrers/{s}?n=1&last={l}>; rel=\"next\"")
        );
    }
}
