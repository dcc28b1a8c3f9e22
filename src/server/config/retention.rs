//! `[[gc_retention]]` tables of the config file: the collector's retention
//! rules (docs/GC.md, "Retention"), validated as the file is read.

use registry_storage::gc::{Retention, RetentionRule};
use serde::Deserialize;

use super::HumanDuration;

/// One `[[gc_retention]]` table: a [`RetentionRule`].
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "RuleTable")]
pub struct RetentionSetting(pub RetentionRule);

/// The keys of a `[[gc_retention]]` table.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleTable {
    repositories: String,
    keep_last: Option<usize>,
    keep_tags: Option<String>,
    tags_older_than: Option<HumanDuration>,
    untagged_older_than: Option<HumanDuration>,
    keep_pulled_within: Option<HumanDuration>,
}

impl TryFrom<RuleTable> for RetentionSetting {
    type Error = String;

    fn try_from(t: RuleTable) -> Result<Self, String> {
        let mut rule = RetentionRule::new(&t.repositories).map_err(|e| e.message().to_owned())?;
        if let Some(n) = t.keep_last {
            rule = rule.keep_last(n);
        }
        if let Some(re) = &t.keep_tags {
            rule = rule.keep_tags(re).map_err(|e| e.message().to_owned())?;
        }
        if let Some(age) = t.tags_older_than {
            rule = rule.tags_older_than(age.0);
        }
        if let Some(age) = t.untagged_older_than {
            rule = rule.untagged_older_than(age.0);
        }
        if let Some(age) = t.keep_pulled_within {
            rule = rule.keep_pulled_within(age.0);
        }
        Ok(RetentionSetting(rule))
    }
}

/// The rules, in the file's order.
pub fn retention(settings: &[RetentionSetting]) -> Retention {
    Retention::new(settings.iter().map(|s| s.0.clone()).collect())
}

#[cfg(test)]
mod tests {
    use super::super::Settings;

    #[test]
    fn rules_are_read_and_checked() {
        let s = Settings::from_toml(
            r#"
[[gc_retention]]
repositories = "team/*"
keep_last = 10
keep_tags = "^v[0-9]"
tags_older_than = "30d"
untagged_older_than = "7d"
keep_pulled_within = "14d"

[[gc_retention]]
repositories = "**"
keep_last = 100
"#,
        )
        .unwrap();
        let rules = super::retention(&s.gc_retention);
        let team = registry_core::RepositoryName::parse("team/app").unwrap();
        let rule = rules.rule_for(&team).unwrap();
        assert_eq!(rule.keep_last, Some(10));
        assert_eq!(rule.tags_older_than.unwrap().as_secs(), 30 * 86_400);
        assert!(rules.needs_pull_times());

        for (bad, says) in [
            ("repositories = \"a/***\"", "repository glob"),
            ("repositories = \"a\"\nkeep_tags = \"(\"", "tag expression"),
            ("repositories = \"a\"\nkeep = 1", "unknown field"),
            ("keep_last = 1", "missing field `repositories`"),
        ] {
            let e = Settings::from_toml(&format!("[[gc_retention]]\n{bad}")).unwrap_err();
            assert!(e.0.contains(says), "{bad}: {}", e.0);
        }
    }
}
