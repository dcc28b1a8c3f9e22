//! Per-repository access rules: who may do what to which repositories,
//! evaluated in one place for basic-auth users, anonymous callers, and the
//! built-in token issuer.
//!
//! Rules are a **union**: a caller's actions on a repository are every
//! action granted by every rule that matches both the caller and the
//! repository. There are no deny rules, so the order of rules does not
//! matter. Anything granted to anonymous callers is granted to
//! authenticated users too (logging in never loses access).

use super::{Access, Action, Actions};
pub use registry_core::RepositoryPattern;
use std::collections::{BTreeSet, HashMap};

/// Who a rule applies to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Subjects {
    /// Unauthenticated callers (and so everyone).
    pub anonymous: bool,
    /// User names; `*` is every authenticated user.
    pub users: Vec<String>,
    /// Group names (see [`AccessRules::with_group`]); `*` is every
    /// authenticated user.
    pub groups: Vec<String>,
}

/// One rule: these subjects may do these actions on repositories matching
/// this pattern (and may list the catalog, if `catalog`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessRule {
    /// The repositories the rule covers; `None` for a catalog-only rule.
    pub repository: Option<RepositoryPattern>,
    /// Who it applies to.
    pub subjects: Subjects,
    /// What they may do.
    pub actions: Actions,
    /// Whether they may list the catalog (`GET /v2/_catalog`).
    pub catalog: bool,
}

impl AccessRule {
    /// A rule granting `actions` on repositories matching `repository` to
    /// nobody yet: add subjects with [`anonymous`](Self::anonymous),
    /// [`users`](Self::users), [`groups`](Self::groups).
    pub fn new(repository: RepositoryPattern, actions: Actions) -> Self {
        AccessRule {
            repository: Some(repository),
            subjects: Subjects::default(),
            actions,
            catalog: false,
        }
    }

    /// A rule granting only the catalog.
    pub fn catalog_only() -> Self {
        AccessRule {
            repository: None,
            subjects: Subjects::default(),
            actions: Actions::NONE,
            catalog: true,
        }
    }

    /// Apply to anonymous callers too.
    pub fn anonymous(mut self) -> Self {
        self.subjects.anonymous = true;
        self
    }

    /// Apply to these users (`*`: every authenticated user).
    pub fn users<S: Into<String>>(mut self, users: impl IntoIterator<Item = S>) -> Self {
        self.subjects
            .users
            .extend(users.into_iter().map(Into::into));
        self
    }

    /// Apply to members of these groups.
    pub fn groups<S: Into<String>>(mut self, groups: impl IntoIterator<Item = S>) -> Self {
        self.subjects
            .groups
            .extend(groups.into_iter().map(Into::into));
        self
    }

    /// Also grant the catalog.
    pub fn with_catalog(mut self) -> Self {
        self.catalog = true;
        self
    }
}

/// The rule set, plus group memberships. See the module docs for how rules
/// combine.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccessRules {
    rules: Vec<AccessRule>,
    /// user -> groups
    memberships: HashMap<String, BTreeSet<String>>,
}

impl AccessRules {
    /// No rules: nobody may do anything.
    pub fn new() -> Self {
        AccessRules::default()
    }

    /// Every authenticated user may do everything, including listing the
    /// catalog; anonymous callers nothing. The default for basic auth when
    /// no rules are configured.
    pub fn authenticated_users_only() -> Self {
        let all = RepositoryPattern::new("**").expect("valid pattern");
        AccessRules::new().with_rule(
            AccessRule::new(all, Actions::PULL | Actions::PUSH | Actions::DELETE)
                .users(["*"])
                .with_catalog(),
        )
    }

    /// Add a rule.
    pub fn with_rule(mut self, rule: AccessRule) -> Self {
        self.rules.push(rule);
        self
    }

    /// Declare `group` with these members (added to any earlier members).
    pub fn with_group<S: Into<String>>(
        mut self,
        group: &str,
        members: impl IntoIterator<Item = S>,
    ) -> Self {
        for member in members {
            self.memberships
                .entry(member.into())
                .or_default()
                .insert(group.to_owned());
        }
        self
    }

    /// The rules.
    pub fn rules(&self) -> &[AccessRule] {
        &self.rules
    }

    fn applies(&self, subjects: &Subjects, user: Option<&str>) -> bool {
        if subjects.anonymous {
            return true;
        }
        let Some(user) = user else { return false };
        if subjects.users.iter().any(|u| u == "*" || u == user) {
            return true;
        }
        let groups = self.memberships.get(user);
        subjects
            .groups
            .iter()
            .any(|g| g == "*" || groups.is_some_and(|gs| gs.contains(g)))
    }

    /// What `user` (`None`: anonymous) may do to `repository`: the union
    /// of every matching rule.
    pub fn granted(&self, user: Option<&str>, repository: &str) -> Actions {
        self.rules
            .iter()
            .filter(|r| r.repository.as_ref().is_some_and(|p| p.matches(repository)))
            .filter(|r| self.applies(&r.subjects, user))
            .fold(Actions::NONE, |acc, r| acc | r.actions)
    }

    /// Whether `user` may list the catalog.
    pub fn catalog_granted(&self, user: Option<&str>) -> bool {
        self.rules
            .iter()
            .any(|r| r.catalog && self.applies(&r.subjects, user))
    }

    /// Whether `user` may do everything `access` needs. `GET /v2/` (no
    /// resource) is allowed to everyone here; authenticators decide
    /// whether it needs credentials.
    pub fn allows(&self, user: Option<&str>, access: &Access<'_>) -> bool {
        if access.catalog {
            return self.catalog_granted(user);
        }
        match access.repository {
            None => true,
            Some(name) => {
                let granted = self.granted(user, name.as_str());
                access.actions.iter().all(|a| granted.contains(a))
            }
        }
    }
}

/// Parse an action name as written in rules and token scopes: `pull`,
/// `push`, `delete`, or `*` for all three.
pub fn parse_actions<S: AsRef<str>>(names: &[S]) -> Result<Actions, String> {
    names.iter().try_fold(Actions::NONE, |acc, n| {
        Ok(acc
            | match n.as_ref() {
                "pull" => Action::Pull.into(),
                "push" => Action::Push.into(),
                "delete" => Action::Delete.into(),
                "*" => Actions::PULL | Actions::PUSH | Actions::DELETE,
                other => {
                    return Err(format!(
                        "unknown action {other:?}: expected pull, push, delete or *"
                    ));
                }
            })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use registry_core::RepositoryName;

    fn p(s: &str) -> RepositoryPattern {
        RepositoryPattern::new(s).unwrap()
    }

    fn rules() -> AccessRules {
        AccessRules::new()
            .with_rule(AccessRule::new(p("public/*"), Actions::PULL).anonymous())
            .with_rule(AccessRule::new(p("team/**"), Actions::PULL | Actions::PUSH).groups(["ci"]))
            .with_rule(AccessRule::new(p("**"), Actions::PULL).users(["*"]))
            .with_rule(
                AccessRule::new(p("alice/**"), parse_actions(&["*"]).unwrap()).users(["alice"]),
            )
            .with_rule(AccessRule::catalog_only().users(["alice"]))
            .with_group("ci", ["bot", "alice"])
    }

    #[test]
    fn union_of_matching_rules() {
        let r = rules();
        assert_eq!(r.granted(None, "public/a"), Actions::PULL);
        assert_eq!(r.granted(None, "team/a"), Actions::NONE);
        assert_eq!(r.granted(None, "public/a/b"), Actions::NONE);
        assert_eq!(
            r.granted(Some("bot"), "team/x/y"),
            Actions::PULL | Actions::PUSH
        );
        assert_eq!(r.granted(Some("eve"), "team/x"), Actions::PULL);
        assert_eq!(
            r.granted(Some("eve"), "public/x"),
            Actions::PULL,
            "anonymous grants apply to users"
        );
        assert_eq!(
            r.granted(Some("alice"), "alice/app"),
            Actions::PULL | Actions::PUSH | Actions::DELETE
        );
        assert!(r.catalog_granted(Some("alice")));
        assert!(!r.catalog_granted(Some("bot")));
        assert!(!r.catalog_granted(None));
        let name = RepositoryName::parse("team/app").unwrap();
        assert!(r.allows(
            Some("bot"),
            &Access::repository(&name, Actions::PULL | Actions::PUSH)
        ));
        assert!(!r.allows(Some("bot"), &Access::repository(&name, Actions::DELETE)));
        assert!(!r.allows(None, &Access::repository(&name, Actions::PULL)));
        assert!(r.allows(None, &Access::base()));
        assert!(!AccessRules::new().allows(Some("x"), &Access::catalog()));
        let open = AccessRules::authenticated_users_only();
        assert!(open.allows(Some("x"), &Access::catalog()));
        assert!(open.allows(Some("x"), &Access::repository(&name, Actions::DELETE)));
        assert!(!open.allows(None, &Access::repository(&name, Actions::PULL)));
    }

    #[test]
    fn action_names() {
        assert_eq!(
            parse_actions(&["pull", "push"]).unwrap(),
            Actions::PULL | Actions::PUSH
        );
        assert_eq!(parse_actions::<&str>(&[]).unwrap(), Actions::NONE);
        assert!(parse_actions(&["write"]).unwrap_err().contains("write"));
    }
}
