//! Byte ranges of blob reads, as a client asks for them (`Range: bytes=...`).

use crate::error::{Error, ErrorKind, Result};

/// A single byte range, not yet resolved against a blob's size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteRange {
    /// `start-end`, both inclusive.
    Bounded {
        /// First byte.
        start: u64,
        /// Last byte, inclusive.
        end: u64,
    },
    /// `start-`: from `start` to the end.
    From(u64),
    /// `-n`: the last `n` bytes.
    Suffix(u64),
}

impl ByteRange {
    /// Parse the value of a `Range` header. Only one range of unit `bytes`
    /// is supported; anything else is [`ErrorKind::RangeInvalid`].
    pub fn parse_header(value: &str) -> Result<Self> {
        let bad = || {
            Error::new(
                ErrorKind::RangeInvalid,
                format!("unsupported range {value:?}"),
            )
        };
        let spec = value.trim().strip_prefix("bytes=").ok_or_else(bad)?;
        if spec.contains(',') {
            return Err(bad());
        }
        let (a, b) = spec.split_once('-').ok_or_else(bad)?;
        let num = |s: &str| -> Result<u64> {
            if s.is_empty() || !s.bytes().all(|c| c.is_ascii_digit()) {
                return Err(bad());
            }
            s.parse().map_err(|_| bad())
        };
        match (a.trim(), b.trim()) {
            ("", n) => Ok(ByteRange::Suffix(num(n)?)),
            (s, "") => Ok(ByteRange::From(num(s)?)),
            (s, e) => {
                let (start, end) = (num(s)?, num(e)?);
                if end < start {
                    return Err(bad());
                }
                Ok(ByteRange::Bounded { start, end })
            }
        }
    }

    /// Resolve against a blob of `size` bytes into `start..end` (end
    /// exclusive). A range that selects nothing is [`ErrorKind::RangeInvalid`]
    /// (the HTTP layer answers 416).
    pub fn resolve(self, size: u64) -> Result<std::ops::Range<u64>> {
        let unsatisfiable = || {
            Error::new(
                ErrorKind::RangeInvalid,
                format!("range not satisfiable for size {size}"),
            )
            .with_detail(serde_json::json!({ "size": size }))
        };
        match self {
            ByteRange::Bounded { start, end } if start < size => Ok(start..end.min(size - 1) + 1),
            ByteRange::From(start) if start < size => Ok(start..size),
            ByteRange::Suffix(n) if n > 0 && size > 0 => Ok(size.saturating_sub(n)..size),
            _ => Err(unsatisfiable()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses() {
        assert_eq!(
            ByteRange::parse_header("bytes=0-9").unwrap(),
            ByteRange::Bounded { start: 0, end: 9 }
        );
        assert_eq!(
            ByteRange::parse_header("bytes=5-").unwrap(),
            ByteRange::From(5)
        );
        assert_eq!(
            ByteRange::parse_header("bytes=-3").unwrap(),
            ByteRange::Suffix(3)
        );
        for bad in [
            "",
            "bytes=",
            "bytes=-",
            "items=0-1",
            "bytes=1-0",
            "bytes=a-b",
            "bytes=0-1,3-4",
            "bytes=+1-2",
            "bytes=99999999999999999999999-",
        ] {
            assert_eq!(
                ByteRange::parse_header(bad).unwrap_err().kind(),
                ErrorKind::RangeInvalid,
                "{bad:?}"
            );
        }
    }

    #[test]
    fn resolves() {
        assert_eq!(
            ByteRange::Bounded { start: 0, end: 9 }
                .resolve(100)
                .unwrap(),
            0..10
        );
        assert_eq!(
            ByteRange::Bounded {
                start: 90,
                end: 200
            }
            .resolve(100)
            .unwrap(),
            90..100
        );
        assert_eq!(ByteRange::From(99).resolve(100).unwrap(), 99..100);
        assert_eq!(ByteRange::Suffix(10).resolve(100).unwrap(), 90..100);
        assert_eq!(ByteRange::Suffix(1000).resolve(100).unwrap(), 0..100);
        assert!(ByteRange::From(100).resolve(100).is_err());
        assert!(
            ByteRange::Bounded {
                start: 100,
                end: 200
            }
            .resolve(100)
            .is_err()
        );
        assert!(ByteRange::Suffix(0).resolve(100).is_err());
        assert!(ByteRange::Suffix(5).resolve(0).is_err());
        assert!(
            ByteRange::Bounded {
                start: 0,
                end: u64::MAX
            }
            .resolve(u64::MAX)
            .is_ok()
        );
    }
}
