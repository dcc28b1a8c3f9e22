//! Manifests, tags, referrers and the catalog, in distribution's layout.
//!
//! A manifest's bytes are stored as a blob (`blobs/.../data`) and linked
//! from `_manifests/revisions`; a tag is a `current/link` file replaced
//! atomically, plus an `index/` entry per digest it ever pointed to.

use async_trait::async_trait;
use bytes::Bytes;
use registry_core::manifest::{Descriptor, Manifest, ManifestLimits, detect_media_type};
use registry_core::media_type::is_foreign_layer;
use registry_core::{
    Digest, Error, ErrorKind, Listing, ManifestPut, ManifestStore, Page, Reference, Referrers,
    RepositoryName, Result, StoredManifest, Tag,
};

use crate::OpendalStore;
use crate::error::{is_not_found, storage};
use crate::layout::Key;
use crate::maintenance::repository_of_dir;

pub(crate) fn manifest_unknown(what: impl std::fmt::Display) -> Error {
    Error::new(
        ErrorKind::ManifestUnknown,
        format!("manifest {what} unknown to repository"),
    )
}

impl OpendalStore {
    /// The digest a reference resolves to in `repo`: a tag's link, or the
    /// digest itself, if `repo` has that revision.
    async fn resolve(&self, repo: &RepositoryName, reference: &Reference) -> Result<Digest> {
        self.backend()
            .resolve(repo, reference)
            .await?
            .ok_or_else(|| manifest_unknown(reference))
    }

    pub(crate) async fn read_manifest_bytes(&self, digest: &Digest) -> Result<Bytes> {
        match self.operator().read(&Key::BlobData(digest).path()).await {
            Ok(buf) => Ok(buf.to_bytes()),
            Err(e) if is_not_found(&e) => Err(manifest_unknown(digest)),
            Err(e) => Err(storage("reading manifest")(e)),
        }
    }

    /// Every referenced blob must be linked in `repo`, every referenced
    /// manifest must be a revision of `repo`.
    async fn check_references(
        &self,
        repo: &RepositoryName,
        blobs: &[&Digest],
        manifests: &[&Digest],
    ) -> Result<()> {
        for d in blobs {
            if !self.exists(Key::LayerLink(repo, d)).await?
                || !self.exists(Key::BlobData(d)).await?
            {
                return Err(Error::new(
                    ErrorKind::ManifestBlobUnknown,
                    format!("blob {d} is not in repository {repo}"),
                )
                .with_detail(serde_json::json!({ "digest": d })));
            }
        }
        for d in manifests {
            if !self.exists(Key::RevisionLink(repo, d)).await? {
                return Err(Error::new(
                    ErrorKind::ManifestBlobUnknown,
                    format!("manifest {d} is not in repository {repo}"),
                )
                .with_detail(serde_json::json!({ "digest": d })));
            }
        }
        Ok(())
    }

    /// Store a parsed manifest and its links, once the push's record is
    /// written (see `gc::guard`): a reference a collection is deleting is
    /// refused as absent, the manifest's own bytes are stored again after a
    /// collection that was deleting them.
    async fn store_manifest(
        &self,
        repo: &RepositoryName,
        reference: &Reference,
        manifest: &Manifest,
        digest: &Digest,
        bytes: Bytes,
        doomed: crate::gc::Doomed,
    ) -> Result<()> {
        if let Some(d) = doomed.references.first() {
            return Err(crate::gc::doomed_reference(d, repo));
        }
        if doomed.itself {
            self.await_collection(digest).await?;
        }
        if !self.is_mirrored(repo) {
            let (blobs, manifests) = references_to_check(manifest);
            self.check_references(repo, &blobs, &manifests).await?;
        }

        // Bytes first, then the links: a reader never finds a link to bytes
        // that are not there.
        if !self.exists(Key::BlobData(digest)).await? {
            self.write_object_atomic(&Key::BlobData(digest).path(), bytes)
                .await?;
        }
        let subject = manifest.subject().map(|s| s.digest().clone());
        let record = subject
            .as_ref()
            .map(|_| crate::referrers::referrer_record(manifest));
        self.link_manifest(&crate::deletes::Links {
            repo,
            digest,
            referrer: subject.as_ref().zip(record.as_ref()),
            tag: reference.as_tag(),
        })
        .await
    }

    /// Names of the repository's tags, unsorted.
    pub(crate) async fn tag_names(&self, repo: &RepositoryName) -> Result<Vec<Tag>> {
        Ok(self
            .child_folders(&Key::TagsDir(repo).path())
            .await?
            .iter()
            .filter_map(|n| Tag::parse(n).ok())
            .collect())
    }
}

#[async_trait]
impl ManifestStore for OpendalStore {
    async fn put_manifest(
        &self,
        repo: &RepositoryName,
        reference: &Reference,
        content_type: Option<&str>,
        bytes: Bytes,
    ) -> Result<ManifestPut> {
        let manifest = Manifest::parse(&bytes, content_type, &self.inner.limits)?;
        let digest = match reference {
            Reference::Digest(want) => {
                let actual = Digest::compute(want.algorithm(), &bytes);
                if &actual != want {
                    return Err(Error::new(
                        ErrorKind::DigestInvalid,
                        format!("manifest digest is {actual}, not {want}"),
                    ));
                }
                actual
            }
            Reference::Tag(_) => manifest.digest().clone(),
        };
        let (blobs, manifests) = references_to_check(&manifest);
        let referenced: Vec<&Digest> = blobs.into_iter().chain(manifests).collect();
        let (guard, doomed) = self.enter_push(repo, &digest, &referenced).await?;
        let stored = self
            .store_manifest(repo, reference, &manifest, &digest, bytes, doomed)
            .await;
        self.leave_push(guard).await;
        stored?;
        let subject = manifest.subject().map(|s| s.digest().clone());
        Ok(ManifestPut { digest, subject })
    }

    async fn get_manifest(
        &self,
        repo: &RepositoryName,
        reference: &Reference,
    ) -> Result<StoredManifest> {
        let digest = self.resolve(repo, reference).await?;
        if matches!(reference, Reference::Digest(_)) {
            self.note_pull(repo, &digest);
        }
        if let Some((media_type, bytes)) = self.inner.manifests.get_in(&digest, repo) {
            return Ok(StoredManifest {
                digest,
                media_type: media_type.to_string(),
                bytes,
            });
        }
        let bytes = self.read_manifest_bytes(&digest).await?;
        let media_type = detect_media_type(&bytes)
            .unwrap_or_else(|| registry_core::media_type::OCI_IMAGE_MANIFEST.to_owned());
        self.inner
            .manifests
            .insert(digest.clone(), repo, &media_type, bytes.clone());
        Ok(StoredManifest {
            digest,
            media_type,
            bytes,
        })
    }

    async fn delete_manifest(&self, repo: &RepositoryName, reference: &Reference) -> Result<()> {
        match reference {
            Reference::Tag(tag) => {
                if !self.remove_tag(repo, tag, None).await? {
                    return Err(manifest_unknown(tag));
                }
                Ok(())
            }
            // Tags pointing at it go with it, as in distribution.
            Reference::Digest(digest) => {
                self.inner.manifests.forget_repo(digest, repo);
                self.delete_revision(repo, digest).await
            }
        }
    }

    async fn list_tags(&self, repo: &RepositoryName, page: Page<'_>) -> Result<Listing<Tag>> {
        self.tags_page(repo, page).await
    }

    fn manifest_limits(&self) -> ManifestLimits {
        self.inner.limits
    }

    async fn list_referrers(
        &self,
        repo: &RepositoryName,
        subject: &Digest,
        artifact_type: Option<&str>,
        page: Page<'_>,
    ) -> Result<Referrers> {
        self.referrers_page(repo, subject, artifact_type, page)
            .await
    }

    async fn list_repositories(&self, page: Page<'_>) -> Result<Listing<RepositoryName>> {
        // A directory holding `_manifests/` is a repository.
        let mut found: Vec<RepositoryName> = self
            .walk_repositories()
            .await?
            .into_iter()
            .filter(|(_, children)| children.iter().any(|c| c == "_manifests/"))
            .filter_map(|(dir, _)| repository_of_dir(&dir))
            .collect();
        found.sort_unstable_by(|a, b| a.as_str().cmp(b.as_str()));
        found.dedup();
        Ok(Listing::paginate(found, page))
    }
}

/// The blobs and manifests a push of `m` must find in the repository, each
/// distinct digest once however often the manifest lists it (a 4 MiB
/// manifest can list one layer tens of thousands of times). A foreign layer
/// with `urls` is fetched from them, never pushed, so it is not checked;
/// every other descriptor is, `urls` or not (a foreign layer without any
/// must be here like any blob).
fn references_to_check(m: &Manifest) -> (Vec<&Digest>, Vec<&Digest>) {
    let mut seen = std::collections::HashSet::new();
    let blobs = m
        .blob_references()
        .filter(|d| !is_foreign_layer(d.media_type()) || d.urls().is_empty())
        .map(Descriptor::digest)
        .filter(|d| seen.insert(*d))
        .collect();
    let manifests = m
        .manifest_references()
        .map(Descriptor::digest)
        .filter(|d| seen.insert(*d))
        .collect();
    (blobs, manifests)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(media_type: &str, digest: &Digest, urls: bool) -> serde_json::Value {
        let mut d = serde_json::json!({"mediaType": media_type, "digest": digest, "size": 1});
        if urls {
            d["urls"] = serde_json::json!(["https://example.com/layer"]);
        }
        d
    }

    #[test]
    fn references_are_checked_once_each_and_foreign_urls_not_at_all() {
        let (config, shared, foreign, unreachable) = (
            Digest::sha256_of(b"config"),
            Digest::sha256_of(b"shared"),
            Digest::sha256_of(b"foreign"),
            Digest::sha256_of(b"foreign without urls"),
        );
        let mut layers = vec![
            layer(
                "application/vnd.oci.image.layer.v1.tar+gzip",
                &shared,
                false
            );
            5000
        ];
        layers.push(layer(
            registry_core::media_type::OCI_LAYER_NONDISTRIBUTABLE_TAR_GZIP,
            &foreign,
            true,
        ));
        layers.push(layer(
            registry_core::media_type::OCI_LAYER_NONDISTRIBUTABLE_TAR_GZIP,
            &unreachable,
            false,
        ));
        let m = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": registry_core::media_type::OCI_IMAGE_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config, "size": 1},
            "layers": layers,
        });
        let bytes = serde_json::to_vec(&m).unwrap();
        let m = Manifest::parse(&bytes, None, &Default::default()).unwrap();
        let (blobs, manifests) = references_to_check(&m);
        assert_eq!(blobs, vec![&config, &shared, &unreachable]);
        assert!(manifests.is_empty());
    }
}
