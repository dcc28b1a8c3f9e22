//! Repository names, tags and references, parsed by the grammars of the OCI
//! distribution spec.
//!
//! A value of these types can only be built by parsing, so its string form
//! never holds `..`, a leading `/`, a NUL or any other character that could
//! escape a storage path.

use std::fmt;
use std::str::FromStr;

use crate::digest::Digest;
use crate::error::{Error, ErrorKind, Result};

/// Longest accepted repository name, in bytes. Distribution allows 255
/// characters including a registry host; a name alone cannot be longer.
pub const MAX_NAME_LEN: usize = 255;

/// Longest tag: one leading character plus up to 127 more.
pub const MAX_TAG_LEN: usize = 128;

/// A validated repository name such as `library/alpine`.
///
/// Grammar: `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*`,
/// at most [`MAX_NAME_LEN`] bytes.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RepositoryName(String);

impl RepositoryName {
    /// Parse and validate a repository name.
    pub fn parse(s: &str) -> Result<Self> {
        if s.is_empty() || s.len() > MAX_NAME_LEN {
            return Err(Error::new(
                ErrorKind::NameInvalid,
                format!("repository name must be 1 to {MAX_NAME_LEN} characters"),
            ));
        }
        if !s.split('/').all(is_path_component) {
            return Err(Error::new(
                ErrorKind::NameInvalid,
                format!("invalid repository name {s:?}"),
            ));
        }
        Ok(RepositoryName(s.to_owned()))
    }

    /// The name as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The slash-separated components.
    pub fn components(&self) -> impl Iterator<Item = &str> {
        self.0.split('/')
    }
}

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`
fn is_path_component(c: &str) -> bool {
    let b = c.as_bytes();
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    let mut i = 0;
    loop {
        // One run of [a-z0-9]+.
        let start = i;
        while i < b.len() && alnum(b[i]) {
            i += 1;
        }
        if i == start {
            return false;
        }
        if i == b.len() {
            return true;
        }
        // One separator: `.`, `_`, `__` or `-+`.
        match b[i] {
            b'.' => i += 1,
            b'_' => {
                i += 1;
                if i < b.len() && b[i] == b'_' {
                    i += 1;
                }
            }
            b'-' => {
                while i < b.len() && b[i] == b'-' {
                    i += 1;
                }
            }
            _ => return false,
        }
    }
}

/// A validated tag: `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tag(String);

impl Tag {
    /// Parse and validate a tag.
    pub fn parse(s: &str) -> Result<Self> {
        if Tag::is_valid(s) {
            Ok(Tag(s.to_owned()))
        } else {
            Err(Error::new(
                ErrorKind::TagInvalid,
                format!("invalid tag {s:?}"),
            ))
        }
    }

    /// Whether `s` is a valid tag (what [`Tag::parse`] accepts), without
    /// making one.
    pub fn is_valid(s: &str) -> bool {
        let b = s.as_bytes();
        !b.is_empty()
            && b.len() <= MAX_TAG_LEN
            && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
            && b[1..]
                .iter()
                .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-'))
    }

    /// The tag as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What a manifest request names: a tag or a digest.
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum Reference {
    /// A mutable tag.
    Tag(Tag),
    /// An immutable content digest.
    Digest(Digest),
}

impl Reference {
    /// Parse a reference: anything with a `:` must be a digest, anything else a
    /// tag (a tag cannot contain `:`).
    pub fn parse(s: &str) -> Result<Self> {
        if s.contains(':') {
            Digest::parse(s).map(Reference::Digest)
        } else {
            Tag::parse(s).map(Reference::Tag)
        }
    }

    /// The tag, if this is one.
    pub fn as_tag(&self) -> Option<&Tag> {
        match self {
            Reference::Tag(t) => Some(t),
            Reference::Digest(_) => None,
        }
    }

    /// The digest, if this is one.
    pub fn as_digest(&self) -> Option<&Digest> {
        match self {
            Reference::Digest(d) => Some(d),
            Reference::Tag(_) => None,
        }
    }
}

macro_rules! string_newtype_impls {
    ($t:ident) => {
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl fmt::Debug for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($t), "({:?})"), self.0)
            }
        }
        impl FromStr for $t {
            type Err = Error;
            fn from_str(s: &str) -> Result<Self> {
                $t::parse(s)
            }
        }
        impl AsRef<str> for $t {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
        impl serde::Serialize for $t {
            fn serialize<S: serde::Serializer>(
                &self,
                s: S,
            ) -> std::result::Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }
        impl<'de> serde::Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(
                d: D,
            ) -> std::result::Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                $t::parse(&s).map_err(serde::de::Error::custom)
            }
        }
    };
}

string_newtype_impls!(RepositoryName);
string_newtype_impls!(Tag);

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reference::Tag(t) => t.fmt(f),
            Reference::Digest(d) => d.fmt(f),
        }
    }
}

impl fmt::Debug for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reference::Tag(t) => write!(f, "Reference::{t:?}"),
            Reference::Digest(d) => write!(f, "Reference::{d:?}"),
        }
    }
}

impl FromStr for Reference {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Reference::parse(s)
    }
}

impl From<Tag> for Reference {
    fn from(t: Tag) -> Self {
        Reference::Tag(t)
    }
}

impl From<Digest> for Reference {
    fn from(d: Digest) -> Self {
        Reference::Digest(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_names() {
        for n in [
            "a",
            "library/alpine",
            "a/b/c/d/e",
            "my-app",
            "my--app",
            "my_app",
            "my__app",
            "my.app",
            "a0/b1.c2_d3__e4-f5",
            "0",
            "x/y-----z",
        ] {
            assert_eq!(RepositoryName::parse(n).unwrap().as_str(), n);
        }
        let long = "a".repeat(MAX_NAME_LEN);
        assert!(RepositoryName::parse(&long).is_ok());
    }

    #[test]
    fn invalid_names() {
        let too_long = "a".repeat(MAX_NAME_LEN + 1);
        for n in [
            "",
            "/",
            "/a",
            "a/",
            "a//b",
            "A",
            "Library/alpine",
            "..",
            "a/../b",
            "a/./b",
            ".a",
            "a.",
            "a..b",
            "a___b",
            "_a",
            "a_",
            "-a",
            "a-",
            "a._b",
            "a b",
            "a\0b",
            "a%2fb",
            "a:b",
            "a\\b",
            "é",
            &too_long,
        ] {
            let e = RepositoryName::parse(n).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::NameInvalid, "{n:?}");
        }
    }

    #[test]
    fn valid_and_invalid_tags() {
        let max = format!("a{}", "b".repeat(127));
        for t in ["latest", "v1.0.0", "_x", "A-b_c.D", "0", &max] {
            assert_eq!(Tag::parse(t).unwrap().as_str(), t);
        }
        let over = format!("a{}", "b".repeat(128));
        for t in ["", ".x", "-x", "a:b", "a/b", "..", "a b", "a\0", "é", &over] {
            assert_eq!(
                Tag::parse(t).unwrap_err().kind(),
                ErrorKind::TagInvalid,
                "{t:?}"
            );
        }
    }

    #[test]
    fn references() {
        assert!(matches!(
            Reference::parse("latest").unwrap(),
            Reference::Tag(_)
        ));
        let d = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        let r = Reference::parse(d).unwrap();
        assert_eq!(r.as_digest().unwrap().to_string(), d);
        assert_eq!(r.to_string(), d);
        assert_eq!(
            Reference::parse("sha256:nothex").unwrap_err().kind(),
            ErrorKind::DigestInvalid
        );
        assert_eq!(
            Reference::parse("..").unwrap_err().kind(),
            ErrorKind::TagInvalid
        );
    }

    #[test]
    fn serde_validates() {
        let n: RepositoryName = serde_json::from_str("\"a/b\"").unwrap();
        assert_eq!(n.as_str(), "a/b");
        assert!(serde_json::from_str::<RepositoryName>("\"../etc\"").is_err());
        assert!(serde_json::from_str::<Tag>("\"a/b\"").is_err());
    }
}
