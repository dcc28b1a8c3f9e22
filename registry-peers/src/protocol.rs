//! The peer endpoint's wire format, shared by the asking side (this
//! crate's client) and the answering side (the embedding server).
//!
//! `GET|HEAD {base}/_registry/peer/v1/<repository>/blobs/<digest>` with
//! the secret in [`SECRET_HEADER`] answers the blob's bytes, and
//! `GET {base}/_registry/peer/v1/ping` the answering process's instance
//! id as plain text. Nothing else is served under the prefix: no tags, no
//! manifests.

use registry_core::{Digest, RepositoryName};

/// The prefix of every peer path, outside the registry API's `/v2/`.
pub const PREFIX: &str = "/_registry/peer/v1/";

/// The ping path: answers the instance id.
pub const PING_PATH: &str = "/_registry/peer/v1/ping";

/// The request header carrying the shared secret.
pub const SECRET_HEADER: &str = "registry-peer-secret";

/// The path of a blob under the peer prefix.
pub fn blob_path(repo: &RepositoryName, digest: &Digest) -> String {
    format!("{PREFIX}{repo}/blobs/{digest}")
}

/// What a path under the peer prefix asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerPath {
    /// The ping.
    Ping,
    /// A blob by digest in a repository.
    Blob(RepositoryName, Digest),
    /// Anything else under the prefix (refused).
    Other,
}

/// Parse `path` if it is under [`PREFIX`] (`None` otherwise).
pub fn parse(path: &str) -> Option<PeerPath> {
    if path == PING_PATH {
        return Some(PeerPath::Ping);
    }
    let rest = path.strip_prefix(PREFIX)?;
    let Some((repo, digest)) = rest.rsplit_once("/blobs/") else {
        return Some(PeerPath::Other);
    };
    match (RepositoryName::parse(repo), Digest::parse(digest)) {
        (Ok(repo), Ok(digest)) => Some(PeerPath::Blob(repo, digest)),
        _ => Some(PeerPath::Other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_round_trip_and_nothing_else_is_a_blob() {
        let repo = RepositoryName::parse("team/app").unwrap();
        let digest = Digest::sha256_of(b"x");
        let path = blob_path(&repo, &digest);
        assert_eq!(parse(&path), Some(PeerPath::Blob(repo, digest.clone())));
        assert_eq!(parse(PING_PATH), Some(PeerPath::Ping));
        assert_eq!(parse("/v2/team/app/blobs/x"), None);
        for other in [
            "/_registry/peer/v1/team/app/manifests/latest".to_owned(),
            format!("/_registry/peer/v1/team/app/manifests/{digest}"),
            "/_registry/peer/v1/team/app/tags/list".to_owned(),
            "/_registry/peer/v1/team/app/blobs/latest".to_owned(),
            format!("/_registry/peer/v1/../x/blobs/{digest}"),
            "/_registry/peer/v1/".to_owned(),
        ] {
            assert_eq!(parse(&other), Some(PeerPath::Other), "{other}");
        }
    }
}
