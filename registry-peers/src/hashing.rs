//! Rendezvous (highest-random-weight) hashing: every member scores each
//! digest, and the R highest scores own it. Every process computes the
//! same owners from the same members, and a member that leaves moves only
//! the digests it owned.

use registry_core::Digest;
use sha2::{Digest as _, Sha256};

/// The score of `member` (its base URL) for `digest`.
pub(crate) fn score(member: &str, digest: &Digest) -> u64 {
    let mut h = Sha256::new();
    h.update(member.as_bytes());
    h.update([0]);
    h.update(digest.to_string().as_bytes());
    let out = h.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&out[..8]);
    u64::from_be_bytes(first)
}

/// The indices of the `r` members of `members` that own `digest`, highest
/// score first.
pub(crate) fn owners<'a>(
    members: impl Iterator<Item = &'a str>,
    digest: &Digest,
    r: usize,
) -> Vec<usize> {
    let mut scored: Vec<(u64, usize)> = members
        .enumerate()
        .map(|(i, m)| (score(m, digest), i))
        .collect();
    scored.sort_unstable_by(|a, b| b.cmp(a));
    scored.into_iter().take(r).map(|(_, i)| i).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owners_are_stable_and_spread() {
        let members = ["http://a:5000", "http://b:5000", "http://c:5000"];
        let mut firsts = [0usize; 3];
        for i in 0..300u32 {
            let d = Digest::sha256_of(&i.to_be_bytes());
            let o = owners(members.iter().copied(), &d, 2);
            assert_eq!(o.len(), 2);
            assert_ne!(o[0], o[1]);
            // The same answer in another order of the list.
            let rev: Vec<&str> = members.iter().rev().copied().collect();
            let o2 = owners(rev.iter().copied(), &d, 2);
            assert_eq!(members[o[0]], rev[o2[0]]);
            firsts[o[0]] += 1;
            // Removing a non-owner changes nothing.
            let third = (0..3).find(|j| !o.contains(j)).unwrap();
            let rest: Vec<&str> = (0..3).filter(|j| *j != third).map(|j| members[j]).collect();
            let o3 = owners(rest.iter().copied(), &d, 2);
            assert_eq!(rest[o3[0]], members[o[0]]);
        }
        assert!(firsts.iter().all(|n| *n > 50), "{firsts:?}");
    }
}
