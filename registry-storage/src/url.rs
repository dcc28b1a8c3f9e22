//! Storage URLs: `fs:///abs/path`, `fs://relative/path`, `memory://`,
//! `s3://bucket/prefix?endpoint=...&region=...`.

use registry_core::{Error, ErrorKind, Result};

/// A parsed storage location.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StorageUrl {
    /// A directory on the local filesystem (relative paths are relative to
    /// the working directory).
    Fs {
        /// The directory.
        path: std::path::PathBuf,
    },
    /// Process memory; gone when the process ends.
    Memory,
    /// An S3 bucket (or S3-compatible server).
    S3(S3Options),
}

/// Where an S3 store lives. Credentials come from the usual AWS environment
/// variables (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, ...), never from
/// the URL.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct S3Options {
    /// The bucket.
    pub bucket: String,
    /// Key prefix inside the bucket ("" for the bucket root).
    pub prefix: String,
    /// Endpoint URL for S3-compatible servers (`None` for AWS).
    pub endpoint: Option<String>,
    /// Region (`us-east-1` when not given).
    pub region: Option<String>,
}

impl StorageUrl {
    /// Parse a storage URL.
    pub fn parse(url: &str) -> Result<Self> {
        let bad = |why: &str| {
            Error::new(
                ErrorKind::InvalidArgument,
                format!(
                    "invalid storage URL {url:?}: {why} (expected fs:///abs/path, fs://rel/path, memory:// or s3://bucket/prefix?endpoint=..&region=..)"
                ),
            )
        };
        let (scheme, rest) = url.split_once("://").ok_or_else(|| bad("missing scheme"))?;
        match scheme {
            "fs" | "file" => {
                if rest.is_empty() {
                    return Err(bad("empty path"));
                }
                if rest.contains('?') || rest.contains('#') {
                    return Err(bad("fs URLs take no query"));
                }
                Ok(StorageUrl::Fs { path: rest.into() })
            }
            "memory" => {
                if !rest.is_empty() {
                    return Err(bad("memory:// takes no path"));
                }
                Ok(StorageUrl::Memory)
            }
            "s3" => {
                let (loc, query) = rest.split_once('?').unwrap_or((rest, ""));
                let (bucket, prefix) = loc.split_once('/').unwrap_or((loc, ""));
                if bucket.is_empty() {
                    return Err(bad("missing bucket"));
                }
                let mut opts = S3Options {
                    bucket: bucket.to_owned(),
                    prefix: prefix.trim_matches('/').to_owned(),
                    ..Default::default()
                };
                for pair in query.split('&').filter(|p| !p.is_empty()) {
                    let (k, v) = pair
                        .split_once('=')
                        .ok_or_else(|| bad("query needs key=value"))?;
                    let v = percent_decode(v).ok_or_else(|| bad("bad percent-encoding"))?;
                    match k {
                        "endpoint" => opts.endpoint = Some(v),
                        "region" => opts.region = Some(v),
                        other => return Err(bad(&format!("unknown parameter {other:?}"))),
                    }
                }
                Ok(StorageUrl::S3(opts))
            }
            other => Err(bad(&format!("unknown scheme {other:?}"))),
        }
    }
}

fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_form() {
        assert_eq!(
            StorageUrl::parse("fs:///var/lib/registry").unwrap(),
            StorageUrl::Fs {
                path: "/var/lib/registry".into()
            }
        );
        assert_eq!(
            StorageUrl::parse("fs://data").unwrap(),
            StorageUrl::Fs {
                path: "data".into()
            }
        );
        assert_eq!(StorageUrl::parse("memory://").unwrap(), StorageUrl::Memory);
        assert_eq!(
            StorageUrl::parse(
                "s3://bucket/some/prefix/?endpoint=http%3A%2F%2F127.0.0.1%3A9000&region=eu-west-1"
            )
            .unwrap(),
            StorageUrl::S3(S3Options {
                bucket: "bucket".into(),
                prefix: "some/prefix".into(),
                endpoint: Some("http://127.0.0.1:9000".into()),
                region: Some("eu-west-1".into()),
            })
        );
        assert_eq!(
            StorageUrl::parse("s3://b?endpoint=http://localhost:1").unwrap(),
            StorageUrl::S3(S3Options {
                bucket: "b".into(),
                endpoint: Some("http://localhost:1".into()),
                ..Default::default()
            })
        );
    }

    #[test]
    fn refuses_bad_urls() {
        for bad in [
            "",
            "data",
            "fs://",
            "memory://x",
            "s3://",
            "s3:///p",
            "s3://b?x=1",
            "s3://b?endpoint",
            "ftp://x",
            "fs://a?b",
            "s3://b?region=%zz",
        ] {
            assert_eq!(
                StorageUrl::parse(bad).unwrap_err().kind(),
                ErrorKind::InvalidArgument,
                "{bad:?}"
            );
        }
    }
}
