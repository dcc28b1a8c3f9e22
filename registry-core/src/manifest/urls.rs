//! Which `urls` a manifest may carry.
//!
//! A descriptor's `urls` say where else its content may be fetched from. A
//! registry does not check that content exists when it lives elsewhere, so
//! `urls` are accepted only where the image specs expect them: on
//! non-distributable ("foreign") layers (see
//! [`media_type::is_foreign_layer`]). Anywhere else (the config, an
//! ordinary layer, an index entry, the subject) [`Manifest::parse`] refuses
//! them.
//!
//! Where a foreign layer's URLs may point is the operator's choice, made
//! with a [`ForeignUrlPolicy`] as CNCF distribution's
//! `validation.manifests.urls.allow` and `.deny` make it: see there.
//!
//! [`Manifest::parse`]: super::Manifest::parse

use regex::Regex;

use super::Descriptor;
use super::json::invalid;
use crate::error::Result;
use crate::media_type;

/// Refuse `urls` on `d`, found at `at`, unless it is a foreign layer
/// (`foreign_ok`: it is in `layers`).
pub(super) fn check_placement(d: &Descriptor, at: &str, foreign_ok: bool) -> Result<()> {
    if d.urls.is_empty() || (foreign_ok && media_type::is_foreign_layer(&d.media_type)) {
        return Ok(());
    }
    Err(invalid(format!(
        "{at}.urls: only non-distributable layers may have urls, not {}",
        super::json::quote(&d.media_type)
    )))
}

/// Where the URLs of foreign layers may point, as CNCF distribution's
/// `validation.manifests.urls` settings decide:
///
/// - every URL must be `http://` or `https://`, with a host and without a
///   fragment (`#`);
/// - with no pattern at all ([`ForeignUrlPolicy::default`]), no URL is
///   accepted: a manifest with a foreign layer that has `urls` is refused;
/// - with `allow` patterns, a URL must match at least one of them;
/// - with `deny` patterns, a URL must match none of them (with `deny`
///   patterns only, every other `http(s)` URL is accepted).
///
/// Patterns are regular expressions (the `regex` crate's syntax, close to
/// Go's RE2 that distribution uses), matched anywhere in the URL: anchor
/// them with `^` and `$` as needed.
#[derive(Debug, Clone, Default)]
pub struct ForeignUrlPolicy {
    allow: Vec<Regex>,
    deny: Vec<Regex>,
}

impl ForeignUrlPolicy {
    /// A policy from `allow` and `deny` patterns. Fails with a message
    /// naming the first pattern that is not a valid regular expression.
    pub fn new<A, D>(allow: A, deny: D) -> std::result::Result<Self, String>
    where
        A: IntoIterator,
        A::Item: AsRef<str>,
        D: IntoIterator,
        D::Item: AsRef<str>,
    {
        Ok(ForeignUrlPolicy {
            allow: compile(allow, "allow")?,
            deny: compile(deny, "deny")?,
        })
    }

    /// Check that `pattern` is a valid regular expression, as
    /// [`new`](Self::new) would: the message says why not.
    pub fn check_pattern(pattern: &str) -> std::result::Result<(), String> {
        Regex::new(pattern).map(drop).map_err(|e| {
            let e = e.to_string().replace('\n', " ");
            format!("invalid regular expression {pattern:?}: {e}")
        })
    }

    /// Whether no URL is accepted (no pattern is set).
    pub fn refuses_all(&self) -> bool {
        self.allow.is_empty() && self.deny.is_empty()
    }

    /// The `allow` patterns, as given.
    pub fn allow(&self) -> impl Iterator<Item = &str> {
        self.allow.iter().map(Regex::as_str)
    }

    /// The `deny` patterns, as given.
    pub fn deny(&self) -> impl Iterator<Item = &str> {
        self.deny.iter().map(Regex::as_str)
    }

    /// Whether `url` is accepted.
    pub fn permits(&self, url: &str) -> bool {
        well_formed(url)
            && !self.refuses_all()
            && (self.allow.is_empty() || self.allow.iter().any(|r| r.is_match(url)))
            && !self.deny.iter().any(|r| r.is_match(url))
    }

    /// Check every URL of `descriptors` (found at `at`, such as `layers`):
    /// `MANIFEST_INVALID` naming the first URL refused.
    pub(super) fn check<'a>(
        &self,
        descriptors: impl IntoIterator<Item = &'a Descriptor>,
        at: &str,
    ) -> Result<()> {
        for (i, d) in descriptors.into_iter().enumerate() {
            if let Some(url) = d.urls.iter().find(|u| !self.permits(u)) {
                return Err(invalid(if self.refuses_all() {
                    format!("{at}[{i}].urls: this registry accepts no foreign layer URLs")
                } else {
                    format!(
                        "{at}[{i}].urls: {} is not allowed by this registry",
                        super::json::quote(url)
                    )
                }));
            }
        }
        Ok(())
    }
}

fn compile<I>(patterns: I, which: &str) -> std::result::Result<Vec<Regex>, String>
where
    I: IntoIterator,
    I::Item: AsRef<str>,
{
    patterns
        .into_iter()
        .map(|p| {
            let p = p.as_ref();
            ForeignUrlPolicy::check_pattern(p)
                .map_err(|e| format!("manifest URL {which} pattern: {e}"))?;
            Regex::new(p).map_err(|e| e.to_string())
        })
        .collect()
}

/// An `http://` or `https://` URL with a host, no fragment, and no space
/// or control character.
fn well_formed(url: &str) -> bool {
    let lower = |n: usize| url.get(..n).map(str::to_ascii_lowercase);
    let rest = if lower(7).as_deref() == Some("http://") {
        &url[7..]
    } else if lower(8).as_deref() == Some("https://") {
        &url[8..]
    } else {
        return false;
    };
    let host_end = rest.find(['/', '?']).unwrap_or(rest.len());
    host_end > 0 && !url.contains('#') && !url.chars().any(|c| c.is_whitespace() || c.is_control())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(allow: &[&str], deny: &[&str]) -> ForeignUrlPolicy {
        ForeignUrlPolicy::new(allow, deny).unwrap()
    }

    #[test]
    fn no_patterns_refuse_every_url() {
        let p = ForeignUrlPolicy::default();
        assert!(p.refuses_all());
        assert!(!p.permits("https://example.com/layer.tar"));
    }

    #[test]
    fn allow_and_deny_as_distribution_reads_them() {
        // distribution's documented example.
        let p = policy(
            &[r"^https?://([^/]+\.)*example\.com/"],
            &[r"^https?://www\.example\.com/"],
        );
        assert!(p.permits("https://example.com/layer.tar"));
        assert!(p.permits("http://cdn.example.com/layer.tar"));
        assert!(!p.permits("https://www.example.com/layer.tar"), "denied");
        assert!(!p.permits("https://example.org/layer.tar"), "not allowed");
        assert!(!p.permits("https://evil.com/?https://example.com/"));
        // Deny only: any other http(s) URL.
        let p = policy(&[], &["internal"]);
        assert!(p.permits("https://mirror.example.org/l"));
        assert!(!p.permits("https://internal.corp/l"));
        // Several allow patterns: any one will do.
        let p = policy(&["^https://a/", "^https://b/"], &[]);
        assert!(p.permits("https://a/x") && p.permits("https://b/x"));
        assert!(!p.permits("https://c/x"));
        assert_eq!(
            p.allow().collect::<Vec<_>>(),
            ["^https://a/", "^https://b/"]
        );
        assert_eq!(p.deny().count(), 0);
    }

    #[test]
    fn only_well_formed_http_urls() {
        let p = policy(&["."], &[]);
        for ok in [
            "https://h/x",
            "HTTP://h",
            "http://h?q=1",
            "https://h:8443/a/b",
        ] {
            assert!(p.permits(ok), "{ok}");
        }
        for bad in [
            "ftp://h/x",
            "file:///etc/passwd",
            "https:///x",
            "https://",
            "https://h/x#frag",
            "https://h/a b",
            "https://h/\u{7}",
            "h/x",
            "",
            "\u{e9}\u{e9}\u{e9}\u{e9}",
        ] {
            assert!(!p.permits(bad), "{bad:?}");
        }
    }

    #[test]
    fn bad_patterns_are_named() {
        let e = ForeignUrlPolicy::new(["ok", "(unclosed"], [] as [&str; 0]).unwrap_err();
        assert!(
            e.starts_with("manifest URL allow pattern: invalid regular expression \"(unclosed\""),
            "{e}"
        );
        assert!(!e.contains('\n'), "{e}");
        let e = ForeignUrlPolicy::new([] as [&str; 0], ["["]).unwrap_err();
        assert!(e.starts_with("manifest URL deny pattern"), "{e}");
        assert!(ForeignUrlPolicy::check_pattern("^https://a/").is_ok());
    }
}
