//! Every storage path of the registry, in one place.
//!
//! The layout is CNCF distribution's, so a directory or bucket written by
//! distribution is served as is and both can run on one store:
//!
//! ```text
//! <root>/docker/registry/v2/
//! ├── blobs/<alg>/<hex[0..2]>/<hex>/data                    blob (and manifest) bytes
//! └── repositories/<name>/
//!     ├── _layers/<alg>/<hex>/link                          blob linked into the repo
//!     ├── _manifests/
//!     │   ├── revisions/<alg>/<hex>/link                    manifest in the repo
//!     │   └── tags/<tag>/
//!     │       ├── current/link                              what the tag points to
//!     │       └── index/<alg>/<hex>/link                    every digest it ever pointed to
//!     ├── _referrers/<alg>/<subject hex>/<alg>/<hex>/link   (ours) manifests whose subject is it: the referrer's descriptor JSON (older: its digest)
//!     └── _uploads/<id>/
//!         ├── startedat                                     RFC 3339 start time
//!         ├── parts/<offset, 20 digits>                     (ours) one accepted chunk's record (empty: the seal of a completion)
//!         ├── chunks/<offset>-<nonce>                       (ours) that chunk's bytes
//!         ├── chunks/<offset>-<nonce>.append-<offset>       (ours) lease to append to it
//!         └── last-<nonce>                                  (ours) the final PUT's bytes
//! ```
//!
//! Outside that tree, `_registry/` holds what is ours alone: temporary
//! files (`tmp/`), start-up probes, `deleting/<name>/_revisions/<alg>/<hex>`,
//! the marker of a manifest delete under way, and the garbage collector's
//! handshake with writers (docs/GC.md):
//!
//! ```text
//! _registry/gc/
//! ├── runs/<run>                      a collection under way (its lease expiry)
//! ├── doomed/<alg>/<hex>/<run>        that run is about to delete that digest
//! ├── pushes/<nonce>                  a manifest push under way and what it references
//! └── clock-<nonce>                   a probe that reads the store's time
//! _registry/pulls/<name>/<alg>/<hex>  when that manifest was last pulled by digest
//! _registry/mirror/fetch/<alg>/<hex>/<generation>  a mirror's lease to fetch that blob upstream (its expiry)
//! ```
//!
//! and the outbox of webhook notifications (docs/OPERATIONS.md,
//! "Notifications"), one folder per endpoint:
//!
//! ```text
//! _registry/events/<endpoint>/
//! ├── pending/<event id>              an event not yet delivered there (its JSON)
//! ├── claims/<event id>/<attempt>     delivery attempt n, 6 digits (its store time starts its lease)
//! └── dead/<event id>                 an event that exhausted its attempts
//! ```
//!
//! A link file holds the digest string with no newline. Directories of
//! repositories, tags and uploads are listed with a trailing `/`.
//!
//! Names, tags, digests and upload ids are validated types, so no path built
//! here can contain `..`, an empty component or a leading `/`.

use registry_core::{Digest, RepositoryName, Tag, UploadId};

/// The prefix every key lives under, below the store's root.
pub const PREFIX: &str = "docker/registry/v2/";

/// One object (or directory, for the `*Dir` variants) of the layout.
#[derive(Debug, Clone, Copy)]
pub enum Key<'a> {
    /// `blobs/<alg>/<xx>/<hex>/data`
    BlobData(&'a Digest),
    /// `repositories/`: the root of all repositories.
    RepositoriesDir,
    /// `repositories/<name>/`
    RepositoryDir(&'a RepositoryName),
    /// `repositories/<name>/_layers/<alg>/<hex>/link`
    LayerLink(&'a RepositoryName, &'a Digest),
    /// `repositories/<name>/_manifests/revisions/<alg>/<hex>/link`
    RevisionLink(&'a RepositoryName, &'a Digest),
    /// `repositories/<name>/_manifests/tags/`
    TagsDir(&'a RepositoryName),
    /// `repositories/<name>/_manifests/tags/<tag>/`
    TagDir(&'a RepositoryName, &'a Tag),
    /// `repositories/<name>/_manifests/tags/<tag>/current/link`
    TagCurrentLink(&'a RepositoryName, &'a Tag),
    /// `repositories/<name>/_manifests/tags/<tag>/index/<alg>/<hex>/link`
    TagIndexLink(&'a RepositoryName, &'a Tag, &'a Digest),
    /// `repositories/<name>/_referrers/<alg>/<subject hex>/`
    ReferrersDir(&'a RepositoryName, &'a Digest),
    /// `repositories/<name>/_referrers/<alg>/<subject hex>/<alg>/<hex>/link`:
    /// the referrer's descriptor as JSON, recorded at push (links written
    /// before hold its digest; see `referrers`).
    ReferrerLink(&'a RepositoryName, &'a Digest, &'a Digest),
    /// `repositories/<name>/_uploads/<id>/`
    UploadDir(&'a RepositoryName, &'a UploadId),
    /// `repositories/<name>/_uploads/<id>/startedat`
    UploadStartedAt(&'a RepositoryName, &'a UploadId),
    /// `repositories/<name>/_uploads/<id>/parts/`
    UploadPartsDir(&'a RepositoryName, &'a UploadId),
    /// `repositories/<name>/_uploads/<id>/parts/<offset>`
    UploadPart(&'a RepositoryName, &'a UploadId, u64),
    /// `repositories/<name>/_uploads/<id>/chunks/<offset>-<nonce>`
    UploadChunk(&'a RepositoryName, &'a UploadId, u64, &'a str),
    /// `repositories/<name>/_uploads/<id>/last-<nonce>`: the body of the
    /// `PUT` that completes the upload.
    UploadLast(&'a RepositoryName, &'a UploadId, &'a str),
    /// `_registry/probe-<nonce>`: start-up checks of the backend (ours,
    /// outside the distribution tree).
    Probe(&'a str),
    /// `_registry/deleting/<name>/_revisions/<alg>/<hex>`: a delete of that
    /// manifest is under way (ours; see `deletes`). Repository name
    /// components never start with `_`, so no name collides with it.
    DeletingMarker(&'a RepositoryName, &'a Digest),
    /// `_registry/gc/runs/`: collections under way.
    GcRunsDir,
    /// `_registry/gc/runs/<run>`: one collection under way, holding its
    /// lease expiry.
    GcRun(&'a str),
    /// `_registry/gc/doomed/`: every doom marker.
    GcDoomedRoot,
    /// `_registry/gc/doomed/<alg>/<hex>/`: the doom markers on a digest.
    GcDoomedDir(&'a Digest),
    /// `_registry/gc/doomed/<alg>/<hex>/<run>`: that run is about to delete
    /// the digest.
    GcDoomed(&'a Digest, &'a str),
    /// `_registry/gc/pushes/`: manifest pushes under way.
    GcPushesDir,
    /// `_registry/gc/pushes/<nonce>`: one manifest push and the digests it
    /// references.
    GcPush(&'a str),
    /// `_registry/pulls/<name>/`: when the repository's manifests were last
    /// pulled by digest (retention, `pulls.rs`).
    PullsDir(&'a RepositoryName),
    /// `_registry/pulls/<name>/<alg>/<hex>`: its modification time is when
    /// that manifest was last pulled by digest (at most an interval ago).
    Pull(&'a RepositoryName, &'a Digest),
    /// `_registry/gc/clock-<nonce>`: a probe written to read the store's
    /// own time.
    GcClock(&'a str),
    /// `_registry/mirror/fetch/<alg>/<hex>/`: the generations of a blob's
    /// fetch lease (`fetch_lease.rs`).
    MirrorFetchDir(&'a Digest),
    /// `_registry/mirror/fetch/<alg>/<hex>/<generation>`, 10 digits: one
    /// generation of the lease of the process fetching that blob from a
    /// mirror's upstream.
    MirrorFetch(&'a Digest, u64),
    /// `_registry/events/<endpoint>/pending/`: events not yet delivered to
    /// that endpoint.
    EventsPendingDir(&'a str),
    /// `_registry/events/<endpoint>/pending/<id>`: one event (its JSON).
    EventPending(&'a str, &'a str),
    /// `_registry/events/<endpoint>/claims/<id>/`: the delivery attempts of
    /// one event.
    EventClaimsDir(&'a str, &'a str),
    /// `_registry/events/<endpoint>/claims/<id>/<attempt, 6 digits>`: one
    /// attempt, won by create-if-absent.
    EventClaim(&'a str, &'a str, u32),
    /// `_registry/events/<endpoint>/dead/`: dead letters.
    EventsDeadDir(&'a str),
    /// `_registry/events/<endpoint>/dead/<id>`: an event that exhausted its
    /// attempts.
    EventDead(&'a str, &'a str),
}

impl Key<'_> {
    /// The key's path relative to the store's root, built in one buffer
    /// (it is on every request's path).
    pub fn path(&self) -> String {
        let p = PathText(String::with_capacity(192));
        match *self {
            Key::BlobData(d) => p
                .s(PREFIX)
                .s("blobs/")
                .s(d.algorithm().as_str())
                .s("/")
                .s(&d.hex()[..2])
                .s("/")
                .s(d.hex())
                .s("/data"),
            Key::RepositoriesDir => p.s(PREFIX).s("repositories/"),
            Key::RepositoryDir(n) => p.repo(n),
            Key::LayerLink(n, d) => p.repo(n).s("_layers/").dig(d).s("/link"),
            Key::RevisionLink(n, d) => p.repo(n).s("_manifests/revisions/").dig(d).s("/link"),
            Key::TagsDir(n) => p.repo(n).s("_manifests/tags/"),
            Key::TagDir(n, t) => p.repo(n).s("_manifests/tags/").s(t.as_str()).s("/"),
            Key::TagCurrentLink(n, t) => p
                .repo(n)
                .s("_manifests/tags/")
                .s(t.as_str())
                .s("/current/link"),
            Key::TagIndexLink(n, t, d) => p
                .repo(n)
                .s("_manifests/tags/")
                .s(t.as_str())
                .s("/index/")
                .dig(d)
                .s("/link"),
            Key::ReferrersDir(n, s) => p.repo(n).s("_referrers/").dig(s).s("/"),
            Key::ReferrerLink(n, s, d) => {
                p.repo(n).s("_referrers/").dig(s).s("/").dig(d).s("/link")
            }
            Key::UploadDir(n, id) => p.upload(n, id).s("/"),
            Key::UploadStartedAt(n, id) => p.upload(n, id).s("/startedat"),
            Key::UploadPartsDir(n, id) => p.upload(n, id).s("/parts/"),
            Key::UploadPart(n, id, off) => p.upload(n, id).f(format_args!("/parts/{off:020}")),
            Key::UploadChunk(n, id, off, nonce) => {
                p.upload(n, id).f(format_args!("/chunks/{off:020}-{nonce}"))
            }
            Key::UploadLast(n, id, nonce) => p.upload(n, id).s("/last-").s(nonce),
            Key::Probe(nonce) => p.s("_registry/probe-").s(nonce),
            Key::DeletingMarker(n, d) => p
                .s("_registry/deleting/")
                .s(n.as_str())
                .s("/_revisions/")
                .dig(d),
            Key::GcRunsDir => p.s("_registry/gc/runs/"),
            Key::GcRun(run) => p.s("_registry/gc/runs/").s(run),
            Key::GcDoomedRoot => p.s("_registry/gc/doomed/"),
            Key::GcDoomedDir(d) => p.s("_registry/gc/doomed/").dig(d).s("/"),
            Key::GcDoomed(d, run) => p.s("_registry/gc/doomed/").dig(d).s("/").s(run),
            Key::GcPushesDir => p.s("_registry/gc/pushes/"),
            Key::GcPush(nonce) => p.s("_registry/gc/pushes/").s(nonce),
            Key::GcClock(nonce) => p.s("_registry/gc/clock-").s(nonce),
            Key::MirrorFetchDir(d) => p.s("_registry/mirror/fetch/").dig(d).s("/"),
            Key::MirrorFetch(d, n) => p
                .s("_registry/mirror/fetch/")
                .dig(d)
                .f(format_args!("/{n:010}")),
            Key::PullsDir(n) => p.s("_registry/pulls/").s(n.as_str()).s("/"),
            Key::Pull(n, d) => p.s("_registry/pulls/").s(n.as_str()).s("/").dig(d),
            Key::EventsPendingDir(e) => p.s("_registry/events/").s(e).s("/pending/"),
            Key::EventPending(e, id) => p.s("_registry/events/").s(e).s("/pending/").s(id),
            Key::EventClaimsDir(e, id) => p.s("_registry/events/").s(e).s("/claims/").s(id).s("/"),
            Key::EventClaim(e, id, n) => p
                .s("_registry/events/")
                .s(e)
                .s("/claims/")
                .s(id)
                .f(format_args!("/{n:06}")),
            Key::EventsDeadDir(e) => p.s("_registry/events/").s(e).s("/dead/"),
            Key::EventDead(e, id) => p.s("_registry/events/").s(e).s("/dead/").s(id),
        }
        .0
    }
}

/// A path being built.
struct PathText(String);

impl PathText {
    /// Append `part`.
    fn s(mut self, part: &str) -> Self {
        self.0.push_str(part);
        self
    }

    /// Append formatted text (numbers with their padding).
    fn f(mut self, args: std::fmt::Arguments<'_>) -> Self {
        use std::fmt::Write;
        // Writing into a String cannot fail.
        let _ = self.0.write_fmt(args);
        self
    }

    /// `<PREFIX>repositories/<name>/`
    fn repo(self, n: &RepositoryName) -> Self {
        self.s(PREFIX).s("repositories/").s(n.as_str()).s("/")
    }

    /// `<alg>/<hex>`
    fn dig(self, d: &Digest) -> Self {
        self.s(d.algorithm().as_str()).s("/").s(d.hex())
    }

    /// `<PREFIX>repositories/<name>/_uploads/<id>`
    fn upload(self, n: &RepositoryName, id: &UploadId) -> Self {
        self.repo(n).s("_uploads/").s(id.as_str())
    }
}

/// Parse the offset back out of an upload part's file name.
pub fn part_offset(name: &str) -> Option<u64> {
    let name = name.trim_end_matches('/');
    if name.len() == 20 && name.bytes().all(|b| b.is_ascii_digit()) {
        name.parse().ok()
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn every_path_kind() {
        let d = Digest::parse(&format!("sha256:{HEX}")).unwrap();
        let s = Digest::sha256_of(b"subject");
        let n = RepositoryName::parse("library/alpine").unwrap();
        let t = Tag::parse("latest").unwrap();
        let id = UploadId::parse("0123456789abcdef0123456789abcdef").unwrap();
        let r = "docker/registry/v2/repositories/library/alpine/";
        let cases: Vec<(Key, String)> = vec![
            (
                Key::BlobData(&d),
                format!("docker/registry/v2/blobs/sha256/e3/{HEX}/data"),
            ),
            (
                Key::RepositoriesDir,
                "docker/registry/v2/repositories/".into(),
            ),
            (Key::RepositoryDir(&n), r.into()),
            (
                Key::LayerLink(&n, &d),
                format!("{r}_layers/sha256/{HEX}/link"),
            ),
            (
                Key::RevisionLink(&n, &d),
                format!("{r}_manifests/revisions/sha256/{HEX}/link"),
            ),
            (Key::TagsDir(&n), format!("{r}_manifests/tags/")),
            (Key::TagDir(&n, &t), format!("{r}_manifests/tags/latest/")),
            (
                Key::TagCurrentLink(&n, &t),
                format!("{r}_manifests/tags/latest/current/link"),
            ),
            (
                Key::TagIndexLink(&n, &t, &d),
                format!("{r}_manifests/tags/latest/index/sha256/{HEX}/link"),
            ),
            (
                Key::ReferrersDir(&n, &s),
                format!("{r}_referrers/sha256/{}/", s.hex()),
            ),
            (
                Key::ReferrerLink(&n, &s, &d),
                format!("{r}_referrers/sha256/{}/sha256/{HEX}/link", s.hex()),
            ),
            (Key::UploadDir(&n, &id), format!("{r}_uploads/{id}/")),
            (
                Key::UploadStartedAt(&n, &id),
                format!("{r}_uploads/{id}/startedat"),
            ),
            (
                Key::UploadPartsDir(&n, &id),
                format!("{r}_uploads/{id}/parts/"),
            ),
            (
                Key::UploadPart(&n, &id, 42),
                format!("{r}_uploads/{id}/parts/00000000000000000042"),
            ),
            (
                Key::UploadChunk(&n, &id, 7, "ab"),
                format!("{r}_uploads/{id}/chunks/00000000000000000007-ab"),
            ),
            (
                Key::UploadLast(&n, &id, "cd"),
                format!("{r}_uploads/{id}/last-cd"),
            ),
            (Key::Probe("x1"), "_registry/probe-x1".into()),
            (
                Key::DeletingMarker(&n, &d),
                format!("_registry/deleting/library/alpine/_revisions/sha256/{HEX}"),
            ),
            (Key::GcRunsDir, "_registry/gc/runs/".into()),
            (Key::GcRun("r1"), "_registry/gc/runs/r1".into()),
            (Key::GcDoomedRoot, "_registry/gc/doomed/".into()),
            (
                Key::GcDoomedDir(&d),
                format!("_registry/gc/doomed/sha256/{HEX}/"),
            ),
            (
                Key::GcDoomed(&d, "r1"),
                format!("_registry/gc/doomed/sha256/{HEX}/r1"),
            ),
            (Key::GcPushesDir, "_registry/gc/pushes/".into()),
            (Key::PullsDir(&n), "_registry/pulls/library/alpine/".into()),
            (
                Key::Pull(&n, &d),
                format!("_registry/pulls/library/alpine/sha256/{HEX}"),
            ),
            (Key::GcPush("p1"), "_registry/gc/pushes/p1".into()),
            (Key::GcClock("c1"), "_registry/gc/clock-c1".into()),
            (
                Key::MirrorFetchDir(&d),
                format!("_registry/mirror/fetch/sha256/{HEX}/"),
            ),
            (
                Key::MirrorFetch(&d, 7),
                format!("_registry/mirror/fetch/sha256/{HEX}/0000000007"),
            ),
            (
                Key::EventsPendingDir("ci"),
                "_registry/events/ci/pending/".into(),
            ),
            (
                Key::EventPending("ci", "e1"),
                "_registry/events/ci/pending/e1".into(),
            ),
            (
                Key::EventClaimsDir("ci", "e1"),
                "_registry/events/ci/claims/e1/".into(),
            ),
            (
                Key::EventClaim("ci", "e1", 3),
                "_registry/events/ci/claims/e1/000003".into(),
            ),
            (Key::EventsDeadDir("ci"), "_registry/events/ci/dead/".into()),
            (
                Key::EventDead("ci", "e1"),
                "_registry/events/ci/dead/e1".into(),
            ),
        ];
        for (key, want) in cases {
            assert_eq!(key.path(), want, "{key:?}");
            assert!(!key.path().contains(".."));
            assert!(!key.path().starts_with('/'));
        }
    }

    #[test]
    fn sha512_blob_path() {
        let d = Digest::parse(&format!("sha512:{}", "ab".repeat(64))).unwrap();
        assert_eq!(
            Key::BlobData(&d).path(),
            format!(
                "docker/registry/v2/blobs/sha512/ab/{}/data",
                "ab".repeat(64)
            )
        );
    }

    #[test]
    fn paths_parse_back() {
        assert_eq!(part_offset("00000000000000000042"), Some(42));
        assert_eq!(part_offset("00000000000000000042/"), Some(42));
        assert_eq!(part_offset("42"), None);
        assert_eq!(part_offset("0000000000000000004x"), None);
    }
}
