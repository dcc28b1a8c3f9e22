//! Content digests (`sha256:<64 hex>`, `sha512:<128 hex>`) and the running
//! hasher whose state can be saved at chunk boundaries.
//!
//! The grammar follows the OCI image spec's descriptor section: an algorithm
//! component, a colon, and an encoded part. This registry accepts the two
//! registered algorithms, with lowercase hex of exactly the right length;
//! anything else is refused with [`ErrorKind::DigestInvalid`].

use std::fmt;
use std::str::FromStr;

use sha2::Digest as _;
use sha2::digest::common::hazmat::SerializableState;

use crate::error::{Error, ErrorKind, Result};

/// A registered digest algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Algorithm {
    /// SHA-256, the canonical algorithm.
    Sha256,
    /// SHA-512.
    Sha512,
}

impl Algorithm {
    /// The name as it appears in a digest string.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha512 => "sha512",
        }
    }

    /// Length of the hex-encoded value.
    pub fn hex_len(self) -> usize {
        match self {
            Algorithm::Sha256 => 64,
            Algorithm::Sha512 => 128,
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "sha256" => Some(Algorithm::Sha256),
            "sha512" => Some(Algorithm::Sha512),
            _ => None,
        }
    }
}

impl FromStr for Algorithm {
    type Err = Error;
    /// `sha256` or `sha512`; anything else is [`ErrorKind::DigestInvalid`].
    fn from_str(s: &str) -> Result<Self> {
        Algorithm::parse(s).ok_or_else(|| {
            Error::new(
                ErrorKind::DigestInvalid,
                format!("unsupported digest algorithm {s:?}"),
            )
        })
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A validated content digest. The only way to build one is to parse it or
/// to hash bytes, so its string form is always safe to use in a path.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    algorithm: Algorithm,
    hex: String,
}

impl Digest {
    /// Parse `alg:hex`. Upper-case hex, wrong lengths, unknown algorithms and
    /// stray characters are errors.
    pub fn parse(s: &str) -> Result<Self> {
        let invalid = |why: &str| {
            Error::new(
                ErrorKind::DigestInvalid,
                format!("invalid digest {s:?}: {why}"),
            )
        };
        let (alg, hex) = s.split_once(':').ok_or_else(|| invalid("missing ':'"))?;
        let algorithm = Algorithm::parse(alg).ok_or_else(|| invalid("unsupported algorithm"))?;
        if hex.len() != algorithm.hex_len() {
            return Err(invalid("wrong length"));
        }
        if !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(invalid("encoded part must be lowercase hex"));
        }
        Ok(Digest {
            algorithm,
            hex: hex.to_owned(),
        })
    }

    /// The SHA-256 digest of `bytes`.
    pub fn sha256_of(bytes: &[u8]) -> Self {
        Digest {
            algorithm: Algorithm::Sha256,
            hex: hex::encode(sha2::Sha256::digest(bytes)),
        }
    }

    /// The digest of `bytes` under `algorithm`.
    pub fn compute(algorithm: Algorithm, bytes: &[u8]) -> Self {
        let mut h = Hasher::new(algorithm);
        h.update(bytes);
        h.finish()
    }

    /// The algorithm.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The lowercase hex value.
    pub fn hex(&self) -> &str {
        &self.hex
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.algorithm, self.hex)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({self})")
    }
}

impl FromStr for Digest {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Digest::parse(s)
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Digest::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// A running hash over content as it arrives, for either algorithm.
///
/// Its state can be saved with [`Hasher::save`] at any point (in practice at
/// chunk boundaries) and restored with [`Hasher::restore`], so an upload can be
/// continued by another process without re-reading the bytes already
/// received.
#[derive(Clone)]
pub enum Hasher {
    /// SHA-256 state.
    Sha256(sha2::Sha256),
    /// SHA-512 state.
    Sha512(sha2::Sha512),
}

impl Hasher {
    /// A fresh hasher.
    pub fn new(algorithm: Algorithm) -> Self {
        match algorithm {
            Algorithm::Sha256 => Hasher::Sha256(sha2::Sha256::new()),
            Algorithm::Sha512 => Hasher::Sha512(sha2::Sha512::new()),
        }
    }

    /// The algorithm this hasher computes.
    pub fn algorithm(&self) -> Algorithm {
        match self {
            Hasher::Sha256(_) => Algorithm::Sha256,
            Hasher::Sha512(_) => Algorithm::Sha512,
        }
    }

    /// Feed bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        match self {
            Hasher::Sha256(h) => h.update(bytes),
            Hasher::Sha512(h) => h.update(bytes),
        }
    }

    /// The digest of everything fed so far.
    pub fn finish(self) -> Digest {
        let algorithm = self.algorithm();
        let hex = match self {
            Hasher::Sha256(h) => hex::encode(h.finalize()),
            Hasher::Sha512(h) => hex::encode(h.finalize()),
        };
        Digest { algorithm, hex }
    }

    /// The serialized state: opaque bytes for [`Hasher::restore`] with the
    /// same algorithm. The format is the `sha2` crate's, stable within its
    /// major version.
    pub fn save(&self) -> Vec<u8> {
        match self {
            Hasher::Sha256(h) => h.serialize().to_vec(),
            Hasher::Sha512(h) => h.serialize().to_vec(),
        }
    }

    /// Rebuild a hasher from [`Hasher::save`]'s output.
    pub fn restore(algorithm: Algorithm, state: &[u8]) -> Result<Self> {
        let bad = || Error::new(ErrorKind::BlobUploadInvalid, "saved hash state is corrupt");
        Ok(match algorithm {
            Algorithm::Sha256 => {
                let arr = state.try_into().map_err(|_| bad())?;
                Hasher::Sha256(sha2::Sha256::deserialize(arr).map_err(|_| bad())?)
            }
            Algorithm::Sha512 => {
                let arr = state.try_into().map_err(|_| bad())?;
                Hasher::Sha512(sha2::Sha512::deserialize(arr).map_err(|_| bad())?)
            }
        })
    }
}

impl fmt::Debug for Hasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hasher({})", self.algorithm())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY_SHA256: &str =
        "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn algorithm_names_parse_back() {
        for alg in [Algorithm::Sha256, Algorithm::Sha512] {
            assert_eq!(alg.as_str().parse::<Algorithm>().unwrap(), alg);
        }
        for bad in ["", "SHA256", "sha384", "md5"] {
            assert_eq!(
                bad.parse::<Algorithm>().unwrap_err().kind(),
                ErrorKind::DigestInvalid
            );
        }
    }

    #[test]
    fn parses_valid_digests() {
        let d = Digest::parse(EMPTY_SHA256).unwrap();
        assert_eq!(d.algorithm(), Algorithm::Sha256);
        assert_eq!(d.to_string(), EMPTY_SHA256);
        let s512 = format!("sha512:{}", "a".repeat(128));
        assert_eq!(Digest::parse(&s512).unwrap().algorithm(), Algorithm::Sha512);
    }

    #[test]
    fn refuses_invalid_digests() {
        let upper = EMPTY_SHA256.to_uppercase().replacen("SHA256", "sha256", 1);
        let cases = [
            "",
            ":",
            "sha256",
            "sha256:",
            "sha256:abc",
            &upper,
            "md5:d41d8cd98f00b204e9800998ecf8427e",
            "SHA256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85g",
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855a",
            "sha256:../../../../../../../../../../../../../../../../../../../etc/passwd",
            "sha256+b64:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            "sha512:abcd",
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85\u{e9}",
        ];
        for c in cases {
            let e = Digest::parse(c).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::DigestInvalid, "{c:?}");
        }
    }

    #[test]
    fn hashes_known_vectors() {
        assert_eq!(Digest::sha256_of(b"").to_string(), EMPTY_SHA256);
        assert_eq!(
            Digest::compute(Algorithm::Sha512, b"abc").hex(),
            "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a\
             2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f"
        );
    }

    #[test]
    fn hasher_state_survives_save_and_restore_at_any_split() {
        let data: Vec<u8> = (0..1000u32).map(|i| (i * 7 % 251) as u8).collect();
        for alg in [Algorithm::Sha256, Algorithm::Sha512] {
            let whole = Digest::compute(alg, &data);
            for split in [0, 1, 63, 64, 65, 127, 128, 129, 500, 1000] {
                let mut h = Hasher::new(alg);
                h.update(&data[..split]);
                let saved = h.save();
                let mut h2 = Hasher::restore(alg, &saved).unwrap();
                h2.update(&data[split..]);
                assert_eq!(h2.finish(), whole, "{alg} split {split}");
            }
        }
    }

    #[test]
    fn corrupt_state_is_an_error_not_a_panic() {
        for alg in [Algorithm::Sha256, Algorithm::Sha512] {
            assert!(Hasher::restore(alg, b"").is_err());
            assert!(Hasher::restore(alg, &[0xff; 7]).is_err());
        }
    }

    #[test]
    fn serde_round_trip() {
        let d = Digest::parse(EMPTY_SHA256).unwrap();
        let j = serde_json::to_string(&d).unwrap();
        assert_eq!(j, format!("\"{EMPTY_SHA256}\""));
        let back: Digest = serde_json::from_str(&j).unwrap();
        assert_eq!(back, d);
        assert!(serde_json::from_str::<Digest>("\"sha256:xyz\"").is_err());
    }
}
