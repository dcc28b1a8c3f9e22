//! Content negotiation of manifest reads.
//!
//! A manifest is served as the exact bytes pushed, with the media type it
//! was stored under: never converted (its digest would change). So
//! negotiation is a yes/no question: does the request's `Accept` admit
//! that media type?
//!
//! - No `Accept`, or an empty one: yes (curl, and clients that take
//!   anything).
//! - Otherwise yes if any listed range matches: the exact type (ASCII case
//!   ignored), `type/*` or `*/*`. Parameters are ignored except `q=0`,
//!   which excludes the range. Several `Accept` headers count as one list;
//!   Docker sends one header per type, containerd one comma-separated list
//!   ending in `*/*`.
//! - If nothing matches, the manifest is unknown *in a form the client
//!   takes*: 404 `MANIFEST_UNKNOWN`, as CNCF distribution answers an OCI
//!   manifest requested without the OCI type in `Accept`. Distribution's
//!   rewriting of a manifest list into one platform's manifest for old
//!   clients, and the schema 1 rows of the spec's content negotiation
//!   table, do not apply: schema 1 is refused on push.

use http::HeaderMap;
use http::header::ACCEPT;

/// Whether `media_type` is acceptable to a request with `headers`.
pub(crate) fn accepts(headers: &HeaderMap, media_type: &str) -> bool {
    let mut any = false;
    for value in headers.get_all(ACCEPT) {
        let Ok(value) = value.to_str() else {
            continue;
        };
        for range in value.split(',') {
            let mut parts = range.split(';');
            let range = parts.next().unwrap_or("").trim();
            if range.is_empty() {
                continue;
            }
            any = true;
            let refused = parts.any(|p| {
                p.trim()
                    .strip_prefix("q=")
                    .is_some_and(|q| q.trim().parse::<f32>() == Ok(0.0))
            });
            if !refused && matches(range, media_type) {
                return true;
            }
        }
    }
    !any
}

fn matches(range: &str, media_type: &str) -> bool {
    if range == "*/*" || range.eq_ignore_ascii_case(media_type) {
        return true;
    }
    match (range.strip_suffix("/*"), media_type.split_once('/')) {
        (Some(ty), Some((mt, _))) => ty.eq_ignore_ascii_case(mt),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    const OCI: &str = "application/vnd.oci.image.manifest.v1+json";
    const DOCKER: &str = "application/vnd.docker.distribution.manifest.v2+json";

    fn accept(values: &[&'static str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(ACCEPT, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn table() {
        let cases: &[(&[&'static str], &str, bool)] = &[
            (&[], OCI, true),
            (&[""], OCI, true),
            (&["*/*"], OCI, true),
            (&["application/*"], OCI, true),
            (&["text/*"], OCI, false),
            (&[OCI], OCI, true),
            (&["Application/VND.OCI.image.manifest.v1+json"], OCI, true),
            (&[DOCKER], OCI, false),
            // Docker: one header per type.
            (
                &[
                    DOCKER,
                    "application/vnd.docker.distribution.manifest.list.v2+json",
                    OCI,
                ],
                OCI,
                true,
            ),
            // containerd: one list, ending in */*.
            (
                &[
                    "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.index.v1+json, */*",
                ],
                OCI,
                true,
            ),
            (
                &["application/vnd.oci.image.manifest.v1+json; q=0.5"],
                OCI,
                true,
            ),
            (
                &["application/vnd.oci.image.manifest.v1+json;q=0", "*/*;q=0"],
                OCI,
                false,
            ),
            (&["application/json"], DOCKER, false),
        ];
        for (values, mt, want) in cases {
            assert_eq!(accepts(&accept(values), mt), *want, "{values:?} {mt}");
        }
    }
}
