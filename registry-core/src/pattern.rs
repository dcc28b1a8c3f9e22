//! Repository name patterns: one glob syntax for access rules, webhook
//! filters and retention rules.

use std::fmt;

/// A glob over repository names: `*` matches any run of characters other
/// than `/` (one path component or part of one), `**` matches any run of
/// characters including `/` (any depth). Everything else matches itself.
///
/// `public/*` matches `public/alpine` but not `public/a/b` or `public`;
/// `team/**` matches `team/a` and `team/a/b`; `**` matches every name.
#[derive(Clone, PartialEq, Eq)]
pub struct RepositoryPattern {
    text: String,
}

impl RepositoryPattern {
    /// A pattern. Refused: an empty pattern, and `***` or longer runs of
    /// `*`.
    pub fn new(pattern: impl Into<String>) -> Result<Self, String> {
        let text = pattern.into();
        if text.is_empty() {
            return Err("empty repository pattern".to_owned());
        }
        if text.contains("***") {
            return Err(format!(
                "invalid repository pattern {text:?}: use * (within one path component) or ** (any depth)"
            ));
        }
        Ok(RepositoryPattern { text })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether `name` matches.
    pub fn matches(&self, name: &str) -> bool {
        glob(self.text.as_bytes(), name.as_bytes())
    }
}

impl fmt::Debug for RepositoryPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RepositoryPattern({:?})", self.text)
    }
}

/// Match by recursion on each star: names are short and patterns, from the
/// operator's configuration, have few stars.
fn glob(pattern: &[u8], name: &[u8]) -> bool {
    fn go(p: &[u8], n: &[u8]) -> bool {
        match p {
            [] => n.is_empty(),
            [b'*', b'*', rest @ ..] => (0..=n.len()).any(|i| go(rest, &n[i..])),
            [b'*', rest @ ..] => {
                let limit = n.iter().position(|&c| c == b'/').unwrap_or(n.len());
                (0..=limit).any(|i| go(rest, &n[i..]))
            }
            [c, rest @ ..] => n.first() == Some(c) && go(rest, &n[1..]),
        }
    }
    go(pattern, name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> RepositoryPattern {
        RepositoryPattern::new(s).unwrap()
    }

    #[test]
    fn globs() {
        let cases = [
            ("public/*", "public/alpine", true),
            ("public/*", "public/a/b", false),
            ("public/*", "public", false),
            ("public/*", "public/", true),
            ("public/*", "publicx/a", false),
            ("team/**", "team/a", true),
            ("team/**", "team/a/b/c", true),
            ("team/**", "teams/a", false),
            ("**", "anything/at/all", true),
            ("*", "alpine", true),
            ("*", "library/alpine", false),
            ("exact", "exact", true),
            ("exact", "exactly", false),
            ("a/*/c", "a/b/c", true),
            ("a/*/c", "a/b/x/c", false),
            ("a/**/c", "a/b/x/c", true),
            ("*-dev", "app-dev", true),
            ("*-dev", "ns/app-dev", false),
            ("**/cache", "x/y/cache", true),
        ];
        for (pattern, name, want) in cases {
            assert_eq!(p(pattern).matches(name), want, "{pattern} vs {name}");
        }
        assert!(RepositoryPattern::new("").is_err());
        assert!(RepositoryPattern::new("a/***").is_err());
    }
}
