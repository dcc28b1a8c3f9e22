//! [`PeerConfig`]: who the members are, the shared secret, how many owners
//! a digest has and how long an owner gets to answer.

use std::fmt;
use std::time::Duration;

use sha2::{Digest as _, Sha256};

/// Owners per digest when none is configured.
pub const DEFAULT_OWNERS: usize = 2;
/// How long an owner gets to send its response headers, when none is
/// configured, before the next owner (or the store) is asked.
pub const DEFAULT_FIRST_BYTE_TIMEOUT: Duration = Duration::from_millis(200);

/// Where the members come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Membership {
    /// A fixed list of base URLs (`http://10.0.0.2:5000`), this host's
    /// own among them (recognised by its instance id).
    Static(Vec<String>),
    /// A DNS name, re-resolved now and then: each A/AAAA address becomes
    /// `http://IP:PORT`.
    Dns {
        /// The name.
        name: String,
        /// The port of every member.
        port: u16,
    },
}

impl Membership {
    /// Parse `NAME:PORT` (`--peers-dns`).
    pub fn dns(spec: &str) -> Result<Self, String> {
        let (name, port) = spec
            .rsplit_once(':')
            .ok_or_else(|| format!("peer DNS name {spec:?} is not NAME:PORT"))?;
        let port = port
            .parse()
            .map_err(|_| format!("peer DNS name {spec:?}: {port:?} is not a port"))?;
        if name.is_empty() {
            return Err(format!("peer DNS name {spec:?} has no name"));
        }
        Ok(Membership::Dns {
            name: name.to_owned(),
            port,
        })
    }

    /// A static list, each URL checked (`http` or `https`, a host, no
    /// path) and kept without a trailing slash.
    pub fn urls<S: AsRef<str>>(urls: &[S]) -> Result<Self, String> {
        let mut out = Vec::new();
        for url in urls {
            let url = url.as_ref().trim().trim_end_matches('/');
            let rest = url
                .strip_prefix("http://")
                .or_else(|| url.strip_prefix("https://"))
                .ok_or_else(|| format!("peer URL {url:?} is not http:// or https://"))?;
            if rest.is_empty() || rest.contains(['/', '?', '#', '@', ' ']) {
                return Err(format!(
                    "peer URL {url:?} must be a base URL (scheme, host, port)"
                ));
            }
            if !out.iter().any(|u: &String| u == url) {
                out.push(url.to_owned());
            }
        }
        if out.is_empty() {
            return Err("the peer list is empty".to_owned());
        }
        Ok(Membership::Static(out))
    }
}

/// The secret the members share: sent in
/// [`SECRET_HEADER`](crate::protocol::SECRET_HEADER), compared in constant
/// time. Never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret {
    value: String,
    hash: [u8; 32],
}

impl Secret {
    /// A secret from the text of its file (surrounding whitespace removed).
    /// Empty or not a valid header value: an error.
    pub fn new(text: &str) -> Result<Self, String> {
        let value = text.trim();
        if value.is_empty() {
            return Err("the peer secret is empty".to_owned());
        }
        if !value.bytes().all(|b| b.is_ascii_graphic()) {
            return Err("the peer secret must be printable ASCII without spaces".to_owned());
        }
        Ok(Secret {
            value: value.to_owned(),
            hash: Sha256::digest(value.as_bytes()).into(),
        })
    }

    /// The value to send.
    pub fn expose(&self) -> &str {
        &self.value
    }

    /// Whether `given` is the secret. Both sides are hashed first, and the
    /// hashes compared without an early exit, so the time taken says
    /// nothing of the secret, not even its length.
    pub fn matches(&self, given: &[u8]) -> bool {
        let theirs: [u8; 32] = Sha256::digest(given).into();
        let diff = self
            .hash
            .iter()
            .zip(theirs.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        std::hint::black_box(diff) == 0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(****)")
    }
}

/// Settings of [`Peers`](crate::Peers).
#[derive(Debug, Clone)]
pub struct PeerConfig {
    /// The members.
    pub membership: Membership,
    /// The shared secret.
    pub secret: Secret,
    /// Owners per digest (at least 1).
    pub owners: usize,
    /// How long an owner gets to send its response headers.
    pub first_byte_timeout: Duration,
}

impl PeerConfig {
    /// Members and secret with the default owners and timeout.
    pub fn new(membership: Membership, secret: Secret) -> Self {
        PeerConfig {
            membership,
            secret,
            owners: DEFAULT_OWNERS,
            first_byte_timeout: DEFAULT_FIRST_BYTE_TIMEOUT,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_compare_whole() {
        let s = Secret::new("  s3cret\n").unwrap();
        assert!(s.matches(b"s3cret"));
        assert!(!s.matches(b"s3cre"));
        assert!(!s.matches(b"s3cret2"));
        assert!(!s.matches(b""));
        assert!(Secret::new(" \n").is_err());
        assert!(Secret::new("a b").is_err());
        assert_eq!(format!("{s:?}"), "Secret(****)");
    }

    #[test]
    fn membership_is_checked() {
        assert_eq!(
            Membership::urls(&["http://a:5000/", "http://b:5000", "http://a:5000"]).unwrap(),
            Membership::Static(vec!["http://a:5000".into(), "http://b:5000".into()])
        );
        assert!(Membership::urls(&["ftp://a"]).is_err());
        assert!(Membership::urls(&["http://a/v2"]).is_err());
        assert!(Membership::urls::<&str>(&[]).is_err());
        assert_eq!(
            Membership::dns("registry.svc:5000").unwrap(),
            Membership::Dns {
                name: "registry.svc".into(),
                port: 5000
            }
        );
        assert!(Membership::dns("registry").is_err());
        assert!(Membership::dns(":5000").is_err());
    }
}
