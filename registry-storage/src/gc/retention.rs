//! Retention policies: which tags a collection removes, which untagged
//! manifests it lets go, and what a recent pull keeps (docs/GC.md,
//! "Retention").
//!
//! A rule applies to the repositories its glob matches; the first matching
//! rule of the list decides for a repository, and a repository no rule
//! matches keeps every tag. Within a rule:
//!
//! - a tag is **selected** for removal by `tags_older_than` (pushed longer
//!   ago than that), or, when only `keep_last` is set, by `keep_last`
//!   (every tag but the newest N);
//! - a selected tag is **kept** if it is among the `keep_last` most
//!   recently pushed, matches `keep_tags`, or names a manifest pulled by
//!   digest within `keep_pulled_within`;
//! - `untagged_older_than` lets the collection remove the repository's
//!   untagged manifests (those no live tag, index or subject reaches) once
//!   their revision is that old, unless pulled within `keep_pulled_within`.
//!
//! Ages are in the store's own time, as everywhere in the collector: a
//! tag's push time is the modification time of its `current/link`.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use regex::Regex;
use registry_core::{Digest, Error, ErrorKind, RepositoryName, RepositoryPattern, Result, Tag};

/// An ordered list of rules; the first whose glob matches a repository
/// applies to it.
#[derive(Debug, Clone, Default)]
pub struct Retention {
    rules: Vec<RetentionRule>,
}

impl Retention {
    /// The rules, in the order they are tried.
    pub fn new(rules: Vec<RetentionRule>) -> Retention {
        Retention { rules }
    }

    /// Whether there are no rules.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Whether any rule keeps recently pulled manifests, so the store must
    /// record pulls ([`crate::OpendalStore::with_pull_times`]).
    pub fn needs_pull_times(&self) -> bool {
        self.rules.iter().any(|r| r.keep_pulled_within.is_some())
    }

    /// The rule deciding for `repo`, if any.
    pub fn rule_for(&self, repo: &RepositoryName) -> Option<&RetentionRule> {
        self.rules.iter().find(|r| r.glob.matches(repo.as_str()))
    }
}

impl PartialEq for Retention {
    fn eq(&self, other: &Self) -> bool {
        self.rules == other.rules
    }
}

impl Eq for Retention {}

/// One retention rule (see the module documentation for how its parts
/// combine).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RetentionRule {
    pattern: String,
    glob: RepositoryPattern,
    /// Keep the N most recently pushed tags.
    pub keep_last: Option<usize>,
    /// Keep tags matching this expression.
    pub keep_tags: Option<Regex>,
    /// Remove tags pushed longer ago than this.
    pub tags_older_than: Option<Duration>,
    /// Remove untagged manifests whose revision is older than this.
    pub untagged_older_than: Option<Duration>,
    /// Keep manifests pulled by digest within this (and their tags).
    pub keep_pulled_within: Option<Duration>,
}

impl PartialEq for RetentionRule {
    fn eq(&self, other: &Self) -> bool {
        self.pattern == other.pattern
            && self.keep_last == other.keep_last
            && self.keep_tags.as_ref().map(Regex::as_str)
                == other.keep_tags.as_ref().map(Regex::as_str)
            && self.tags_older_than == other.tags_older_than
            && self.untagged_older_than == other.untagged_older_than
            && self.keep_pulled_within == other.keep_pulled_within
    }
}

impl Eq for RetentionRule {}

impl RetentionRule {
    /// A rule for the repositories matching `glob`, a
    /// [`RepositoryPattern`] (`*` does not cross a `/`; `**` does), which removes nothing until given a selector.
    pub fn new(glob: &str) -> Result<RetentionRule> {
        let matcher = RepositoryPattern::new(glob)
            .map_err(|e| invalid(format!("repository glob {glob:?}: {e}")))?;
        Ok(RetentionRule {
            pattern: glob.to_owned(),
            glob: matcher,
            keep_last: None,
            keep_tags: None,
            tags_older_than: None,
            untagged_older_than: None,
            keep_pulled_within: None,
        })
    }

    /// The repository glob.
    pub fn pattern(&self) -> &str {
        &self.pattern
    }

    /// Set [`RetentionRule::keep_last`].
    pub fn keep_last(mut self, n: usize) -> Self {
        self.keep_last = Some(n);
        self
    }

    /// Set [`RetentionRule::keep_tags`].
    pub fn keep_tags(mut self, pattern: &str) -> Result<Self> {
        let re = Regex::new(pattern).map_err(|e| invalid(format!("tag expression: {e}")))?;
        self.keep_tags = Some(re);
        Ok(self)
    }

    /// Set [`RetentionRule::tags_older_than`].
    pub fn tags_older_than(mut self, age: Duration) -> Self {
        self.tags_older_than = Some(age);
        self
    }

    /// Set [`RetentionRule::untagged_older_than`].
    pub fn untagged_older_than(mut self, age: Duration) -> Self {
        self.untagged_older_than = Some(age);
        self
    }

    /// Set [`RetentionRule::keep_pulled_within`].
    pub fn keep_pulled_within(mut self, age: Duration) -> Self {
        self.keep_pulled_within = Some(age);
        self
    }

    /// Whether the rule can remove tags at all.
    pub(crate) fn selects_tags(&self) -> bool {
        self.tags_older_than.is_some() || self.keep_last.is_some()
    }

    /// Decide for every tag of a repository. `tags`: each tag, the
    /// manifest it names and its push time; `pulls`: when each manifest
    /// was last pulled by digest; `now`: the store's time.
    pub(crate) fn decide(
        &self,
        repo: &RepositoryName,
        mut tags: Vec<(Tag, Digest, Option<SystemTime>)>,
        pulls: &HashMap<Digest, SystemTime>,
        now: Option<SystemTime>,
    ) -> Vec<TagDecision> {
        if !self.selects_tags() {
            return Vec::new();
        }
        let age = |at: Option<SystemTime>| Some(now?.duration_since(at?).unwrap_or_default());
        // Newest first; ties (and tags without times) by name.
        tags.sort_by(|a, b| b.2.cmp(&a.2).then_with(|| a.0.as_str().cmp(b.0.as_str())));
        let timeless = tags.iter().any(|t| t.2.is_none());
        let mut out = Vec::new();
        for (rank, (tag, digest, at)) in tags.into_iter().enumerate() {
            let pushed = age(at);
            let selected = match (self.tags_older_than, pushed) {
                (Some(limit), Some(pushed)) => (pushed > limit)
                    .then(|| format!("pushed {} ago, more than {}", human(pushed), human(limit))),
                (Some(_), None) => None,
                (None, _) => self
                    .keep_last
                    .map(|n| format!("not among the {n} most recently pushed tags")),
            };
            let Some(selected) = selected else { continue };
            let kept = if timeless && self.keep_last.is_some() {
                Some("the store keeps no push times, so the newest tags are unknown".to_owned())
            } else if let Some(n) = self.keep_last.filter(|n| rank < *n) {
                Some(format!("among the {n} most recently pushed tags"))
            } else if let Some(re) = self
                .keep_tags
                .as_ref()
                .filter(|re| re.is_match(tag.as_str()))
            {
                Some(format!("matches {}", re.as_str()))
            } else {
                self.pulled_recently(&digest, pulls, now)
            };
            out.push(TagDecision {
                repository: repo.clone(),
                tag,
                digest,
                removed: kept.is_none(),
                why: match kept {
                    Some(kept) => format!("{selected}, but kept: {kept}"),
                    None => selected,
                },
            });
        }
        out
    }

    /// Why `digest` is kept for a recent pull, if it is.
    pub(crate) fn pulled_recently(
        &self,
        digest: &Digest,
        pulls: &HashMap<Digest, SystemTime>,
        now: Option<SystemTime>,
    ) -> Option<String> {
        let within = self.keep_pulled_within?;
        let ago = now?.duration_since(*pulls.get(digest)?).unwrap_or_default();
        (ago <= within).then(|| format!("pulled {} ago", human(ago)))
    }
}

/// What a rule decided for one tag it selected.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct TagDecision {
    /// The repository.
    pub repository: RepositoryName,
    /// The tag.
    pub tag: Tag,
    /// The manifest it named when the rule decided.
    pub digest: Digest,
    /// Removed (`true`), or selected but kept.
    pub removed: bool,
    /// Why, in words.
    pub why: String,
}

/// A duration in the largest whole unit, for reasons.
fn human(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        s if s >= 86_400 && s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s >= 3600 && s % 3600 == 0 => format!("{}h", s / 3600),
        s if s >= 60 && s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

fn invalid(message: String) -> Error {
    Error::new(ErrorKind::InvalidArgument, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(now: SystemTime, ages: &[(&str, u64)]) -> Vec<(Tag, Digest, Option<SystemTime>)> {
        ages.iter()
            .map(|(t, age)| {
                (
                    Tag::parse(t).unwrap(),
                    Digest::sha256_of(t.as_bytes()),
                    Some(now - Duration::from_secs(*age)),
                )
            })
            .collect()
    }

    fn removed(decisions: &[TagDecision]) -> Vec<&str> {
        let mut out: Vec<&str> = decisions
            .iter()
            .filter(|d| d.removed)
            .map(|d| d.tag.as_str())
            .collect();
        out.sort();
        out
    }

    #[test]
    fn keep_last_alone_removes_all_but_the_newest() {
        let now = SystemTime::now();
        let rule = RetentionRule::new("**").unwrap().keep_last(2);
        let d = rule.decide(
            &RepositoryName::parse("r").unwrap(),
            tags(now, &[("a", 40), ("b", 30), ("c", 20), ("d", 10)]),
            &HashMap::new(),
            Some(now),
        );
        assert_eq!(removed(&d), ["a", "b"]);
        assert_eq!(d.len(), 4, "every selected tag has a decision");
        assert!(
            d.iter()
                .any(|d| !d.removed && d.why.contains("among the 2"))
        );
    }

    #[test]
    fn an_age_selects_and_keeps_protect() {
        let now = SystemTime::now();
        let day = 86_400;
        let rule = RetentionRule::new("team/*")
            .unwrap()
            .keep_last(1)
            .keep_tags("^v[0-9]")
            .unwrap()
            .tags_older_than(Duration::from_secs(7 * day))
            .keep_pulled_within(Duration::from_secs(day));
        let all = tags(
            now,
            &[
                ("v1", 30 * day),
                ("old", 20 * day),
                ("pulled", 10 * day),
                ("new", 2 * day),
                ("older", 9 * day),
            ],
        );
        let pulls = HashMap::from([(
            Digest::sha256_of(b"pulled"),
            now - Duration::from_secs(3600),
        )]);
        let d = rule.decide(&RepositoryName::parse("r").unwrap(), all, &pulls, Some(now));
        assert_eq!(removed(&d), ["old", "older"]);
        let why = |t: &str| d.iter().find(|d| d.tag.as_str() == t).unwrap().why.clone();
        assert_eq!(why("old"), "pushed 20d ago, more than 7d");
        assert!(
            why("v1").ends_with("kept: matches ^v[0-9]"),
            "{}",
            why("v1")
        );
        assert!(
            why("pulled").ends_with("kept: pulled 1h ago"),
            "{}",
            why("pulled")
        );
        assert!(
            !d.iter().any(|d| d.tag.as_str() == "new"),
            "not selected, no decision"
        );
    }

    #[test]
    fn globs_and_order() {
        let first = RetentionRule::new("team/*").unwrap().keep_last(1);
        let second = RetentionRule::new("**").unwrap().keep_last(5);
        let r = Retention::new(vec![first, second]);
        let name = |n: &str| RepositoryName::parse(n).unwrap();
        assert_eq!(r.rule_for(&name("team/app")).unwrap().keep_last, Some(1));
        assert_eq!(
            r.rule_for(&name("team/app/sub")).unwrap().keep_last,
            Some(5)
        );
        assert!(
            Retention::new(vec![RetentionRule::new("x").unwrap()])
                .rule_for(&name("y"))
                .is_none()
        );
        assert!(RetentionRule::new("a/***").is_err());
        assert!(RetentionRule::new("a").unwrap().keep_tags("(").is_err());
    }

    #[test]
    fn without_times_nothing_is_removed_by_age_or_rank() {
        let rule = RetentionRule::new("**").unwrap().keep_last(1);
        let t = vec![
            (Tag::parse("a").unwrap(), Digest::sha256_of(b"a"), None),
            (Tag::parse("b").unwrap(), Digest::sha256_of(b"b"), None),
        ];
        let d = rule.decide(
            &RepositoryName::parse("r").unwrap(),
            t.clone(),
            &HashMap::new(),
            None,
        );
        assert!(removed(&d).is_empty());
        let aged = RetentionRule::new("**")
            .unwrap()
            .tags_older_than(Duration::ZERO);
        assert!(
            removed(&aged.decide(
                &RepositoryName::parse("r").unwrap(),
                t,
                &HashMap::new(),
                None
            ))
            .is_empty()
        );
    }
}
