//! The data the benchmark pushes: digests of bytes and files, random
//! blobs, and sizes as written on the command line.

use std::fs::File;
use std::io::Read;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use sha2::{Digest as _, Sha256};

use crate::{READ_SIZE, Result};

pub(crate) fn sha256_hex(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

pub(crate) fn sha256_file(file: &Path, repeat: u64) -> Result<String> {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; READ_SIZE];
    for _ in 0..repeat {
        let mut f = File::open(file)?;
        loop {
            let n = f.read(&mut buf)?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
        }
    }
    Ok(format!("sha256:{}", hex::encode(h.finalize())))
}

/// `count` distinct blobs of `size` pseudo-random bytes, with their digests.
pub(crate) fn random_blobs(count: usize, size: usize) -> Vec<(Bytes, String)> {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let mut x = nanos ^ (u64::from(std::process::id()) << 32) | 1;
    (0..count)
        .map(|i| {
            let mut data = Vec::with_capacity(size);
            data.extend_from_slice(&(i as u64).to_le_bytes()[..size.min(8)]);
            while data.len() < size {
                // xorshift64
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let take = (size - data.len()).min(8);
                data.extend_from_slice(&x.to_le_bytes()[..take]);
            }
            let digest = sha256_hex(&data);
            (Bytes::from(data), digest)
        })
        .collect()
}

/// `4096`, `16MiB`, `16M`, `1GiB`, `512k`: a size in bytes (binary units).
pub(crate) fn parse_size(s: &str) -> std::result::Result<u64, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().map_err(|_| format!("invalid size {s:?}"))?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        _ => return Err(format!("invalid size unit in {s:?}")),
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("size {s:?} too large"))
}
