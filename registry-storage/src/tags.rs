//! Tag listings, bounded by the page where the backend lists from a start
//! key.
//!
//! A tag is a folder `_manifests/tags/<tag>/`. On a backend that lists in
//! key order from a start key (S3's `start-after`), a page of `n` tags
//! after `last` is read from `tags/<last>` on, and the listing stops as
//! soon as the page is known: cost proportional to `n`, not to the number
//! of tags. Elsewhere (a directory, whose order is not sorted; memory) the
//! folder is listed whole, names only, and only the page is sorted; nothing
//! else is read per tag. SECURITY.md ("Cost bounds") has the figures.
//!
//! Key order is not quite the lexical order of tags: the key of `a` is
//! `a/`, which sorts after `a-b/` and `a.b/` (`-` and `.` sort before `/`).
//! [`KeyOrderPage`] accounts for it.

use std::collections::BTreeSet;

use futures::TryStreamExt;
use registry_core::{Error, ErrorKind, Listing, Page, RepositoryName, Result, Tag};

use crate::OpendalStore;
use crate::error::storage;
use crate::layout::Key;

impl OpendalStore {
    /// One page of the tags of `repo`, in lexical order;
    /// [`ErrorKind::NameUnknown`] for a repository that does not exist.
    pub(crate) async fn tags_page(
        &self,
        repo: &RepositoryName,
        page: Page<'_>,
    ) -> Result<Listing<Tag>> {
        let from_key = self.operator().info().capability().list_with_start_after;
        let dir = Key::TagsDir(repo).path();
        let listing = match page.n {
            Some(n) if from_key => self.tags_from_key(repo, page.last, n).await?,
            // The page and one more (whether more follow), smallest first.
            Some(n) => {
                let names = self
                    .smallest_child_folders(&dir, page.last, n.saturating_add(1), Tag::is_valid)
                    .await?;
                let tags = names.iter().filter_map(|t| Tag::parse(t).ok()).collect();
                Listing::paginate(
                    tags,
                    Page {
                        n: page.n,
                        last: None,
                    },
                )
            }
            None => page_of_names(self.child_folders(&dir).await?, page),
        };
        if listing.items.is_empty()
            && !listing.more
            && self.list_names(Key::RepositoryDir(repo)).await?.is_empty()
        {
            return Err(Error::new(
                ErrorKind::NameUnknown,
                format!("repository {repo} not known to registry"),
            ));
        }
        Ok(listing)
    }

    /// A page listed in key order from `tags/<last>`, stopped once known.
    async fn tags_from_key(
        &self,
        repo: &RepositoryName,
        last: Option<&str>,
        n: usize,
    ) -> Result<Listing<Tag>> {
        let dir = Key::TagsDir(repo).path();
        let mut list = self
            .operator()
            .lister_with(&dir)
            .limit(crate::folders::list_limit(n));
        if let Some(last) = last {
            // Every tag after `last` has a key after `tags/<last>` (see
            // `KeyOrderPage`).
            list = list.start_after(&format!("{dir}{last}"));
        }
        let mut lister = list.await.map_err(storage("listing tags"))?;
        let mut page = KeyOrderPage::new(last, n);
        while let Some(entry) = lister.try_next().await.map_err(storage("listing tags"))? {
            if entry.path() != dir && page.push(entry.name()) {
                break;
            }
        }
        Ok(page.finish())
    }
}

/// Every tag after `page.last` among folder names in any order (a
/// directory's), sorted.
fn page_of_names(names: Vec<String>, page: Page<'_>) -> Listing<Tag> {
    let mut tags: Vec<Tag> = names
        .iter()
        .filter(|n| page.last.is_none_or(|l| n.as_str() > l))
        .filter_map(|n| Tag::parse(n).ok())
        .collect();
    tags.sort_unstable_by(|a, b| a.as_str().cmp(b.as_str()));
    tags.dedup();
    Listing::paginate(
        tags,
        Page {
            n: page.n,
            last: None,
        },
    )
}

/// A page of `n` tags after `last` in lexical order, assembled from the
/// folder names of a listing in key order (`<tag>/`).
///
/// Every tag `t > last` has a key `t/` after `last` (as strings), so a
/// listing that starts after `last` sees all of them. The listing may stop
/// once `n + 1` candidates are held (so whether more follow is known) and no
/// tag still to come can be smaller than one of the `n` kept. A tag `u`
/// listed after `x` yet smaller than it is a proper prefix of `x` followed
/// by `-` or `.` in `x` (`u = "1.2"`, `x = "1.2-alpine"`); its key `u/` is
/// the point the listing must pass, and the shortest such prefix has the
/// largest key.
#[derive(Debug)]
pub(crate) struct KeyOrderPage<'a> {
    last: Option<&'a str>,
    n: usize,
    /// The smallest `n + 1` candidates seen.
    held: BTreeSet<String>,
    /// The largest key (`<prefix>/`) the listing must reach before it stops.
    reach: Option<String>,
}

impl<'a> KeyOrderPage<'a> {
    /// An empty page of `n` tags after `last`.
    pub(crate) fn new(last: Option<&'a str>, n: usize) -> Self {
        KeyOrderPage {
            last,
            n,
            held: BTreeSet::new(),
            reach: None,
        }
    }

    /// Take the next entry of the listing (a name, folders ending in `/`);
    /// `true` once the page is known and the listing may stop.
    pub(crate) fn push(&mut self, name: &str) -> bool {
        if let Some(tag) = name.strip_suffix('/')
            && self.last.is_none_or(|l| tag > l)
            && Tag::parse(tag).is_ok()
        {
            self.held.insert(tag.to_owned());
            if self.held.len() > self.n + 1 {
                self.held.pop_last();
            }
            if self.held.contains(tag) {
                self.extend_reach(tag);
            }
        }
        self.held.len() > self.n && self.reach.as_deref().is_none_or(|r| name >= r)
    }

    fn extend_reach(&mut self, tag: &str) {
        let shortest = tag
            .char_indices()
            .filter(|&(_, c)| c == '-' || c == '.')
            .map(|(i, _)| &tag[..i])
            .find(|prefix| self.last.is_none_or(|l| *prefix > l));
        if let Some(prefix) = shortest {
            let key = format!("{prefix}/");
            if self.reach.as_ref().is_none_or(|r| key > *r) {
                self.reach = Some(key);
            }
        }
    }

    /// The page: the `n` smallest candidates, and whether more follow.
    pub(crate) fn finish(self) -> Listing<Tag> {
        let more = self.held.len() > self.n;
        let items = self
            .held
            .into_iter()
            .take(self.n)
            .filter_map(|t| Tag::parse(&t).ok())
            .collect();
        Listing { items, more }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every page, in the order an S3 listing from `tags/<last>` gives.
    fn pages(tags: &[&str], n: usize) -> (Vec<Vec<String>>, usize) {
        let mut keys: Vec<String> = tags.iter().map(|t| format!("{t}/")).collect();
        keys.sort();
        let (mut out, mut last, mut read) = (Vec::new(), None::<String>, 0);
        loop {
            let mut page = KeyOrderPage::new(last.as_deref(), n);
            let from = keys
                .iter()
                .filter(|k| last.as_ref().is_none_or(|l| k.as_str() > l.as_str()));
            for k in from {
                read += 1;
                if page.push(k) {
                    break;
                }
            }
            let listing = page.finish();
            let names: Vec<String> = listing.items.iter().map(|t| t.to_string()).collect();
            last = names.last().cloned();
            out.push(names);
            if !listing.more {
                return (out, read);
            }
        }
    }

    #[test]
    fn pages_follow_lexical_order_where_keys_do_not() {
        let tags = [
            "1",
            "1-alpine",
            "1.2",
            "1.2-alpine",
            "1.2.3",
            "10",
            "a",
            "a-b",
            "a.c",
            "a0",
            "b",
        ];
        let mut want: Vec<String> = tags.iter().map(|t| t.to_string()).collect();
        want.sort();
        for n in 1..=tags.len() + 1 {
            let (pages, _) = pages(&tags, n);
            let all: Vec<String> = pages.concat();
            assert_eq!(all, want, "n = {n}");
            assert!(pages.iter().all(|p| p.len() <= n));
        }
    }

    #[test]
    fn a_page_reads_about_n_entries() {
        let tags: Vec<String> = (0..10_000).map(|i| format!("v{i:05}")).collect();
        let refs: Vec<&str> = tags.iter().map(String::as_str).collect();
        let mut page = KeyOrderPage::new(Some("v04999"), 3);
        let mut read = 0;
        for t in &refs[5000..] {
            read += 1;
            if page.push(&format!("{t}/")) {
                break;
            }
        }
        assert_eq!(read, 4);
        let listing = page.finish();
        assert!(listing.more);
        assert_eq!(
            listing
                .items
                .iter()
                .map(|t| t.to_string())
                .collect::<Vec<_>>(),
            ["v05000", "v05001", "v05002"]
        );
    }

    #[test]
    fn pages_of_unordered_names() {
        let names: Vec<String> = ["c", "a", "bad tag", "e", "b", "d"]
            .iter()
            .map(|n| n.to_string())
            .collect();
        let page = |n, last| {
            let l = page_of_names(names.clone(), Page { n, last });
            let items: Vec<String> = l.items.iter().map(|t| t.to_string()).collect();
            (items, l.more)
        };
        assert_eq!(page(Some(2), None), (vec!["a".into(), "b".into()], true));
        assert_eq!(
            page(Some(2), Some("b")),
            (vec!["c".into(), "d".into()], true)
        );
        assert_eq!(
            page(Some(2), Some("c")),
            (vec!["d".into(), "e".into()], false)
        );
        assert_eq!(page(Some(0), None), (vec![], true));
        assert_eq!(page(None, Some("d")), (vec!["e".into()], false));
        assert_eq!(page(Some(9), Some("e")), (vec![], false));
    }

    #[test]
    fn other_entries_are_skipped() {
        let mut page = KeyOrderPage::new(None, 5);
        for name in ["file", "bad tag/", "v1/"] {
            page.push(name);
        }
        let listing = page.finish();
        assert!(!listing.more);
        assert_eq!(listing.items, vec![Tag::parse("v1").unwrap()]);
    }
}
