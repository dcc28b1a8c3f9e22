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

    /// 128 bits in hex: a process-wide counter sent through a permutation
    /// of 128-bit values keyed once per process from the OS's randomness
    /// (see [`next_bits`]). Distinct in this process (the permutation is a
    /// bijection and the counter never repeats) and not guessable from
    /// outside without the key, which is enough to correlate log lines.
    /// Not a secret: these ids are not cryptographically strong and must
    /// never be used as tokens.
    pub fn generate() -> RequestId {
        let hex = hex_of(next_bits());
        RequestId(HeaderValue::from_bytes(&hex).expect("hex is a valid header value"))
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

/// `bits` as 32 lowercase hex digits, most significant first (what
/// `format!("{bits:032x}")` gives, without the formatter or an allocation).
fn hex_of(bits: u128) -> [u8; 32] {
    let mut hex = [0; 32];
    hex::encode_to_slice(bits.to_be_bytes(), &mut hex).expect("16 bytes are 32 hex digits");
    hex
}

/// The next id's bits: no system call after the first (which reads the key).
fn next_bits() -> u128 {
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicU64, Ordering};
    static KEY: OnceLock<[u128; 2]> = OnceLock::new();
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let key = KEY.get_or_init(|| {
        let mut bytes = [0u8; 32];
        // Should the OS's randomness fail, the ids are still unique in this
        // process (the permutation keeps them apart), only guessable.
        let _ = getrandom::fill(&mut bytes);
        let half = |b: &[u8]| u128::from_le_bytes(b.try_into().expect("16 bytes"));
        [half(&bytes[..16]), half(&bytes[16..])]
    });
    permute(u128::from(NEXT.fetch_add(1, Ordering::Relaxed)), key)
}

/// A keyed bijection on 128-bit values: each step (adding a key, xor with a
/// right shift of itself, multiplying by an odd constant) is invertible
/// modulo 2^128, so distinct inputs give distinct outputs.
fn permute(mut x: u128, key: &[u128; 2]) -> u128 {
    const M: u128 = 0x2d35_8dcc_aa6c_78a5_8bb8_4b93_962e_acc9; // odd
    for k in [key[0], key[1], key[0] ^ key[1]] {
        x = x.wrapping_add(k);
        x ^= x >> 67;
        x = x.wrapping_mul(M);
        x ^= x >> 59;
    }
    x
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

    #[test]
    fn hex_of_is_the_formatters_hex() {
        for bits in [0, 1, 0xabc, u128::MAX, u128::MAX / 3, 1 << 127] {
            assert_eq!(hex_of(bits), format!("{bits:032x}").as_bytes(), "{bits}");
        }
    }

    #[test]
    fn generated_ids_are_distinct_and_not_a_visible_counter() {
        let ids: std::collections::HashSet<String> = (0..10_000)
            .map(|_| RequestId::generate().as_str().to_owned())
            .collect();
        assert_eq!(ids.len(), 10_000);
        // Neighbouring counters differ in about half their output bits.
        let key = [1, 2];
        let flipped = (permute(0, &key) ^ permute(1, &key)).count_ones();
        assert!((32..=96).contains(&flipped), "{flipped} bits differ");
        assert!(
            ids.iter()
                .all(|id| id.len() == 32 && is_sane(id.as_bytes()))
        );
    }
}
