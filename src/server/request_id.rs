//! Request ids: the one a client sends in `X-Request-Id` when it is sane,
//! else a fresh random one; carried by the response, the access-log line
//! and the request's tracing span.

use http::HeaderMap;
use http::header::{HeaderName, HeaderValue};

/// The header, both ways.
pub static HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// Longest client-sent id kept; a longer one is replaced.
pub const MAX_LEN: usize = 128;

/// A request's id: printable ASCII of a safe set, at most [`MAX_LEN`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(HeaderValue);

impl RequestId {
    /// The client's id if it sent one sane id, else a new one.
    pub fn of(headers: &HeaderMap) -> RequestId {
        let mut sent = headers.get_all(&HEADER).iter();
        match (sent.next(), sent.next()) {
            (Some(v), None) if is_sane(v.as_bytes()) => RequestId(v.clone()),
            _ => RequestId::generate(),
        }
    }

    /// 128 random bits, in hex.
    pub fn generate() -> RequestId {
        let mut bytes = [0u8; 16];
        // The OS's randomness; should it fail, an id that is still unique
        // in this process is better than none.
        if getrandom::fill(&mut bytes).is_err() {
            use std::sync::atomic::{AtomicU64, Ordering};
            static NEXT: AtomicU64 = AtomicU64::new(0);
            bytes[..8].copy_from_slice(&NEXT.fetch_add(1, Ordering::Relaxed).to_be_bytes());
        }
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        RequestId(HeaderValue::from_str(&hex).expect("hex is a valid header value"))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        // Only sane (ASCII) values are ever held.
        self.0.to_str().unwrap_or_default()
    }

    /// The id as a header value.
    pub fn header_value(&self) -> HeaderValue {
        self.0.clone()
    }
}

/// Non-empty, at most [`MAX_LEN`], letters, digits and `-_.:+/=@` only: no
/// spaces, quotes or control characters to forge log lines with.
fn is_sane(v: &[u8]) -> bool {
    !v.is_empty()
        && v.len() <= MAX_LEN
        && v.iter()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:+/=@".contains(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(values: &[&[u8]]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(&HEADER, HeaderValue::from_bytes(v).unwrap());
        }
        h
    }

    #[test]
    fn a_sane_client_id_is_kept_anything_else_replaced() {
        assert_eq!(
            RequestId::of(&with(&[b"abc-123_x.y"])).as_str(),
            "abc-123_x.y"
        );
        let long = vec![b'a'; MAX_LEN + 1];
        for bad in [&b"a b"[..], b"a\"b", b"", &long, b"caf\xc3\xa9"] {
            let id = RequestId::of(&with(&[bad]));
            assert_ne!(id.as_str().as_bytes(), bad);
            assert_eq!(id.as_str().len(), 32, "generated: {}", id.as_str());
        }
        let two = RequestId::of(&with(&[b"a", b"b"]));
        assert_eq!(two.as_str().len(), 32, "two ids: neither is trusted");
        assert_eq!(RequestId::of(&HeaderMap::new()).as_str().len(), 32);
        assert_ne!(RequestId::generate(), RequestId::generate());
    }
}
