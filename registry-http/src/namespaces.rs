//! [`Namespaces`]: the store's names for the names clients ask for, so a
//! mirror can serve `/v2/library/alpine/...?ns=docker.io` from its
//! repository `docker.io/library/alpine`.
//!
//! The router asks once per request, after routing and before
//! authorization, so access rules and the store see the mapped name. The
//! `ns` query parameter (the distribution spec's "Registry Proxying": the
//! host a client took the name from, which containerd sends to mirrors) is
//! handed over as a key to look up, never a host to dial; when the mapping
//! used it, the response echoes it in `OCI-Namespace`, as the spec says a
//! registry that scopes a request by `ns` should.

use std::fmt;

use http::Uri;
use registry_core::RepositoryName;

use crate::route::Route;

/// The response header that echoes the `ns` a request was scoped by.
pub const OCI_NAMESPACE: &str = "oci-namespace";

/// Maps a requested repository name to the store's. Implemented by a
/// mirror's configuration (`registry-mirror`); the router calls it for
/// every name a request carries (the repository, and a mount's source).
pub trait Namespaces: Send + Sync + fmt::Debug {
    /// The store's name for `name`, requested with the query parameter
    /// `ns` if the request had one. `None`: the name as requested, and the
    /// `ns` ignored.
    fn map(&self, name: &RepositoryName, ns: Option<&str>) -> Option<Mapped>;
}

/// A name a [`Namespaces`] mapped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapped {
    /// The store's name.
    pub name: RepositoryName,
    /// Whether the request's `ns` chose it (echoed in `OCI-Namespace`).
    pub by_ns: bool,
}

/// Map the names of `route`; the `ns` value to echo, if the mapping used it.
pub(crate) fn apply(namespaces: &dyn Namespaces, route: &mut Route, uri: &Uri) -> Option<String> {
    let ns = ns_of(uri);
    let mut echo = false;
    route.map_names(|name| {
        let mapped = namespaces.map(name, ns.as_deref())?;
        echo |= mapped.by_ns;
        Some(mapped.name)
    });
    if echo { ns } else { None }
}

/// The first `ns` query parameter, percent-decoded; `None` when absent,
/// empty or not UTF-8.
fn ns_of(uri: &Uri) -> Option<String> {
    let raw = uri
        .query()?
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, _)| *k == "ns")?
        .1;
    let value = percent_encoding::percent_decode_str(raw)
        .decode_utf8()
        .ok()?;
    (!value.is_empty()).then(|| value.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::Method;

    #[derive(Debug)]
    struct Prefix;

    impl Namespaces for Prefix {
        fn map(&self, name: &RepositoryName, ns: Option<&str>) -> Option<Mapped> {
            let ns = ns.filter(|ns| *ns == "docker.io")?;
            Some(Mapped {
                name: RepositoryName::parse(&format!("{ns}/{name}")).ok()?,
                by_ns: true,
            })
        }
    }

    fn route(uri: &str) -> (Route, Uri) {
        let uri: Uri = uri.parse().unwrap();
        (Route::parse(&Method::GET, &uri).unwrap(), uri)
    }

    #[test]
    fn ns_maps_the_name_and_is_echoed() {
        let (mut r, uri) = route("/v2/library/alpine/manifests/3?ns=docker%2Eio");
        assert_eq!(apply(&Prefix, &mut r, &uri).as_deref(), Some("docker.io"));
        match r {
            Route::GetManifest { name, .. } => {
                assert_eq!(name.as_str(), "docker.io/library/alpine")
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn unknown_or_missing_ns_keeps_the_name() {
        for uri in [
            "/v2/library/alpine/manifests/3?ns=evil.example",
            "/v2/library/alpine/manifests/3",
            "/v2/library/alpine/manifests/3?ns=",
        ] {
            let (mut r, u) = route(uri);
            let before = r.clone();
            assert_eq!(apply(&Prefix, &mut r, &u), None, "{uri}");
            assert_eq!(r, before, "{uri}");
        }
    }
}
