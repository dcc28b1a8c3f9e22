//! end-12a, end-12b: the manifests whose `subject` is a digest, as an OCI
//! image index, optionally filtered by `artifactType`.

use http::header::CONTENT_TYPE;
use http::{HeaderValue, StatusCode};
use registry_core::manifest::Descriptor;
use registry_core::media_type::OCI_IMAGE_INDEX;
use registry_core::{Digest, ErrorKind, RepositoryName};
use serde::Serialize;

use super::Reply;
use crate::body::Body;
use crate::headers::{OCI_FILTERS_APPLIED, response};
use crate::router::Inner;

/// end-12. Always 200 for a valid request: an unknown repository or subject
/// has no referrers, and a 404 would tell clients the API is missing (they
/// would fall back to the referrers tag schema).
pub(super) async fn list(
    inner: &Inner,
    name: &RepositoryName,
    subject: &Digest,
    artifact_type: Option<&str>,
) -> Reply {
    let manifests = match inner
        .store
        .list_referrers(name, subject, artifact_type)
        .await
    {
        Ok(found) => found,
        Err(e)
            if matches!(
                e.kind(),
                ErrorKind::NameUnknown | ErrorKind::ManifestUnknown
            ) =>
        {
            Vec::new()
        }
        Err(e) => return Err(e),
    };
    let index = Index {
        schema_version: 2,
        media_type: OCI_IMAGE_INDEX,
        manifests: &manifests,
    };
    let body = serde_json::to_vec(&index).expect("serializable");
    let mut res = response(StatusCode::OK, Body::from(body));
    let h = res.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static(OCI_IMAGE_INDEX));
    if artifact_type.is_some() {
        h.insert(
            OCI_FILTERS_APPLIED,
            HeaderValue::from_static("artifactType"),
        );
    }
    Ok(res)
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Index<'a> {
    schema_version: u32,
    media_type: &'static str,
    manifests: &'a [Descriptor],
}
