//! `fsck`: find (and, asked to, repair) what earlier versions of this
//! registry, a process killed mid-push, or another tool could leave behind
//! in a store: tags that name a manifest the repository no longer has
//! (dangling), tag folders with no `current/link` (phantoms, listed but
//! never resolving), referrer links to manifests the repository no longer
//! has, and revision links whose manifest bytes are gone.
//!
//! Repairs follow the delete protocol of `deletes`: a dangling tag is
//! removed under the same marker a manifest delete takes, so a push that
//! re-creates that manifest meanwhile waits and then writes its tag again;
//! a phantom folder is removed only while no `current/link` appears in it.
//! Running it against a live fleet is safe; running it twice is harmless.

use registry_core::{Digest, RepositoryName, Result, Tag};

use crate::OpendalStore;
use crate::layout::Key;
use crate::maintenance::repository_of_dir;
use crate::removal::Tree;

/// One problem found.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Finding {
    /// The tag names a manifest that is not a revision of the repository:
    /// it does not resolve, yet it is listed.
    DanglingTag {
        /// The repository.
        repository: RepositoryName,
        /// The tag.
        tag: Tag,
        /// The digest its `current/link` holds.
        digest: Digest,
    },
    /// A tag folder without `current/link` (only its history of digests):
    /// listed, never resolving.
    PhantomTag {
        /// The repository.
        repository: RepositoryName,
        /// The tag.
        tag: Tag,
    },
    /// A referrer link (`_referrers/<subject>/<referrer>`) whose referrer
    /// is not a revision of the repository: `/referrers` would list a
    /// manifest that cannot be pulled.
    DanglingReferrer {
        /// The repository.
        repository: RepositoryName,
        /// The subject it is listed under.
        subject: Digest,
        /// The referrer the repository does not have.
        referrer: Digest,
    },
    /// A revision link whose manifest bytes are gone from the store.
    RevisionWithoutBytes {
        /// The repository.
        repository: RepositoryName,
        /// The manifest's digest.
        digest: Digest,
    },
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Finding::DanglingTag {
                repository,
                tag,
                digest,
            } => write!(
                f,
                "{repository}:{tag}: dangling tag (names {digest}, which the repository does not have)"
            ),
            Finding::PhantomTag { repository, tag } => {
                write!(f, "{repository}:{tag}: tag folder without current/link")
            }
            Finding::DanglingReferrer {
                repository,
                subject,
                referrer,
            } => write!(
                f,
                "{repository}@{subject}: dangling referrer (lists {referrer}, which the repository does not have)"
            ),
            Finding::RevisionWithoutBytes { repository, digest } => write!(
                f,
                "{repository}@{digest}: revision link whose manifest bytes are missing"
            ),
        }
    }
}

/// What [`OpendalStore::fsck`] found and did.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct FsckReport {
    /// Every problem found, with whether it was repaired.
    pub findings: Vec<(Finding, bool)>,
    /// Repositories checked.
    pub repositories: usize,
}

impl FsckReport {
    /// Problems found and not repaired.
    pub fn remaining(&self) -> usize {
        self.findings.iter().filter(|(_, fixed)| !fixed).count()
    }
}

impl OpendalStore {
    /// Check every repository; with `repair`, fix what is found (see the
    /// module documentation for what is checked and how it is repaired).
    pub async fn fsck(&self, repair: bool) -> Result<FsckReport> {
        let mut report = FsckReport::default();
        for (dir, children) in self.walk_repositories().await? {
            if !children.iter().any(|c| c == "_manifests/") {
                continue;
            }
            let Some(repo) = repository_of_dir(&dir) else {
                continue;
            };
            report.repositories += 1;
            self.check_revisions(&repo, repair, &mut report).await?;
            self.check_tags(&repo, repair, &mut report).await?;
            self.check_referrers(&repo, repair, &mut report).await?;
        }
        Ok(report)
    }

    async fn check_revisions(
        &self,
        repo: &RepositoryName,
        repair: bool,
        report: &mut FsckReport,
    ) -> Result<()> {
        let base = format!("{}_manifests/revisions/", Key::RepositoryDir(repo).path());
        for digest in self.list_digests_at(&base).await? {
            if self.exists(Key::BlobData(&digest)).await?
                || !self.exists(Key::RevisionLink(repo, &digest)).await?
            {
                continue;
            }
            // Deleting the revision takes the tags naming it along.
            let fixed = repair && self.delete_revision(repo, &digest).await.is_ok();
            report.findings.push((
                Finding::RevisionWithoutBytes {
                    repository: repo.clone(),
                    digest,
                },
                fixed,
            ));
        }
        Ok(())
    }

    async fn check_referrers(
        &self,
        repo: &RepositoryName,
        repair: bool,
        report: &mut FsckReport,
    ) -> Result<()> {
        let base = format!("{}_referrers/", Key::RepositoryDir(repo).path());
        for subject in self.list_digests_at(&base).await? {
            let dir = Key::ReferrersDir(repo, &subject).path();
            for referrer in self.list_digests_at(&dir).await? {
                if self.exists(Key::RevisionLink(repo, &referrer)).await? {
                    continue;
                }
                let fixed = repair
                    && self
                        .remove_dangling_referrer(repo, &subject, &referrer)
                        .await?;
                report.findings.push((
                    Finding::DanglingReferrer {
                        repository: repo.clone(),
                        subject: subject.clone(),
                        referrer,
                    },
                    fixed,
                ));
            }
        }
        Ok(())
    }

    async fn check_tags(
        &self,
        repo: &RepositoryName,
        repair: bool,
        report: &mut FsckReport,
    ) -> Result<()> {
        for tag in self.tag_names(repo).await? {
            let finding = match self.read_link(Key::TagCurrentLink(repo, &tag)).await? {
                None => Finding::PhantomTag {
                    repository: repo.clone(),
                    tag: tag.clone(),
                },
                Some(digest) if !self.exists(Key::RevisionLink(repo, &digest)).await? => {
                    Finding::DanglingTag {
                        repository: repo.clone(),
                        tag: tag.clone(),
                        digest,
                    }
                }
                Some(_) => continue,
            };
            let fixed = match (&finding, repair) {
                (_, false) => false,
                (Finding::PhantomTag { .. }, true) => {
                    let dir = Key::TagDir(repo, &tag).path();
                    self.remove_tree(&dir, Some("current/link")).await? == Tree::Gone
                }
                (Finding::DanglingTag { digest, .. }, true) => {
                    self.remove_dangling_tags(repo, digest).await?
                }
                _ => false,
            };
            report.findings.push((finding, fixed));
        }
        Ok(())
    }
}
