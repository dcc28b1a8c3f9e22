//! Backends under test and shared helpers.

use bytes::Bytes;
use futures::StreamExt;
use registry_core::{ByteStream, Digest, RepositoryName};
use registry_storage::OpendalStore;

/// Makes stores on one shared backend: every store it returns sees the same
/// data, as separate processes on one bucket or directory would.
pub trait Backend: Send + Sync {
    /// A store on the backend.
    fn store(&self) -> OpendalStore;
    /// A second, independent store instance on the same data.
    fn another_store(&self) -> OpendalStore;
}

pub struct Memory(opendal::Operator);
impl Memory {
    pub fn new() -> Self {
        Memory(opendal::Operator::new(opendal::services::Memory::default()).unwrap())
    }
}
impl Backend for Memory {
    fn store(&self) -> OpendalStore {
        OpendalStore::from_operator(self.0.clone())
    }
    fn another_store(&self) -> OpendalStore {
        OpendalStore::from_operator(self.0.clone())
    }
}

pub struct Fs(tempfile::TempDir);
impl Fs {
    pub fn new() -> Self {
        Fs(tempfile::tempdir().unwrap())
    }
}
impl Backend for Fs {
    fn store(&self) -> OpendalStore {
        OpendalStore::fs(self.0.path()).unwrap()
    }
    fn another_store(&self) -> OpendalStore {
        OpendalStore::fs(self.0.path()).unwrap()
    }
}

/// A directory through a plain OpenDAL `Fs` operator, as a user's own
/// operator reaches the store ([`OpendalStore::from_operator`]), not
/// through the filesystem store's own file I/O.
pub struct FsOpendal(tempfile::TempDir);
impl FsOpendal {
    pub fn new() -> Self {
        FsOpendal(tempfile::tempdir().unwrap())
    }
    fn operator(&self) -> opendal::Operator {
        let root = self.0.path().to_str().unwrap();
        opendal::Operator::new(opendal::services::Fs::default().root(root)).unwrap()
    }
}
impl Backend for FsOpendal {
    fn store(&self) -> OpendalStore {
        OpendalStore::from_operator(self.operator())
    }
    fn another_store(&self) -> OpendalStore {
        OpendalStore::from_operator(self.operator())
    }
}

pub struct S3(String);
impl S3 {
    pub fn from_env() -> Option<Self> {
        let url = std::env::var("REGISTRY_TEST_S3_URL").ok()?;
        // Each test gets its own prefix so tests do not see each other.
        let sep = if url.contains('?') { '?' } else { ' ' };
        let (base, query) = url.split_once(sep).unwrap_or((&url, ""));
        let prefix = hex::encode(rand_bytes());
        Some(S3(format!(
            "{}/{prefix}?{query}",
            base.trim_end_matches('/')
        )))
    }
}
impl Backend for S3 {
    fn store(&self) -> OpendalStore {
        OpendalStore::from_url(&self.0).unwrap()
    }
    fn another_store(&self) -> OpendalStore {
        OpendalStore::from_url(&self.0).unwrap()
    }
}

fn rand_bytes() -> [u8; 8] {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    (t ^ std::process::id() as u64).to_le_bytes()
}

pub fn repo(name: &str) -> RepositoryName {
    RepositoryName::parse(name).unwrap()
}

/// Deterministic pseudo-random content.
pub fn content(len: usize, seed: u8) -> Vec<u8> {
    let mut x = seed as u32 + 1;
    (0..len)
        .map(|_| {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            (x >> 16) as u8
        })
        .collect()
}

/// A body stream of `data` in pieces of `piece` bytes.
pub fn body(data: &[u8], piece: usize) -> ByteStream {
    let chunks: Vec<registry_core::Result<Bytes>> = data
        .chunks(piece.max(1))
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    futures::stream::iter(chunks).boxed()
}

pub async fn collect(mut s: ByteStream) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(b) = s.next().await {
        out.extend_from_slice(&b.unwrap());
    }
    out
}

/// Whether a blob's bytes exist under its digest, looked at through the
/// operator directly.
pub async fn blob_data_exists(store: &OpendalStore, d: &Digest) -> bool {
    store
        .operator()
        .exists(&registry_storage::layout::Key::BlobData(d).path())
        .await
        .unwrap()
}
