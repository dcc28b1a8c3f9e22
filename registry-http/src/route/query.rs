//! The query string of a request: first value of a parameter, decoded.

use std::borrow::Cow;

use percent_encoding::percent_decode_str;
use registry_core::{Error, ErrorKind, Result};

/// A borrowed query string.
#[derive(Debug, Clone, Copy)]
pub(super) struct Query<'a>(Option<&'a str>);

impl<'a> Query<'a> {
    pub(super) fn new(query: Option<&'a str>) -> Self {
        Query(query)
    }

    /// The first value of `key`, percent-decoded (`+` is kept: no parameter
    /// can hold a space, and media types hold `+`). A value that does not
    /// decode to UTF-8 is returned raw, and fails validation.
    pub(super) fn get(&self, key: &str) -> Option<Cow<'a, str>> {
        let raw = self
            .0?
            .split('&')
            .map(|pair| pair.split_once('=').unwrap_or((pair, "")))
            .find(|(k, _)| *k == key)?
            .1;
        Some(
            percent_decode_str(raw)
                .decode_utf8()
                .unwrap_or(Cow::Borrowed(raw)),
        )
    }

    /// The `n` pagination parameter: a non-negative decimal integer.
    pub(super) fn page_size(&self) -> Result<Option<usize>> {
        let Some(n) = self.get("n") else {
            return Ok(None);
        };
        if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid_n(&n));
        }
        n.parse().map(Some).map_err(|_| invalid_n(&n))
    }
}

fn invalid_n(n: &str) -> Error {
    Error::new(
        ErrorKind::InvalidArgument,
        format!("invalid n {n:?}: expected a non-negative integer"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values() {
        let q = Query::new(Some(
            "a=1&b=x%2By+z&a=2&flag&artifactType=application%2Fvnd.x%2Bjson",
        ));
        assert_eq!(q.get("a").as_deref(), Some("1"));
        assert_eq!(q.get("b").as_deref(), Some("x+y+z"));
        assert_eq!(q.get("flag").as_deref(), Some(""));
        assert_eq!(
            q.get("artifactType").as_deref(),
            Some("application/vnd.x+json")
        );
        assert_eq!(q.get("c"), None);
        assert_eq!(Query::new(None).get("a"), None);
        assert_eq!(
            Query::new(Some("bad=%ff")).get("bad").as_deref(),
            Some("%ff")
        );
    }

    #[test]
    fn page_sizes() {
        let n = |q: &str| Query::new(Some(q)).page_size();
        assert_eq!(n("x=1").unwrap(), None);
        assert_eq!(n("n=0").unwrap(), Some(0));
        assert_eq!(n("n=25").unwrap(), Some(25));
        for bad in [
            "n=",
            "n=-1",
            "n=+1",
            "n=1.5",
            "n=abc",
            "n=99999999999999999999999999",
        ] {
            assert_eq!(
                n(bad).unwrap_err().kind(),
                ErrorKind::InvalidArgument,
                "{bad}"
            );
        }
    }
}
