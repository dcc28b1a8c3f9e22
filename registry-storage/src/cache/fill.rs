//! [`tee_into_cache`]: a blob streamed from the shared store fills the cache
//! on its way to the client.

use std::path::PathBuf;
use std::sync::Arc;

use futures::StreamExt;
use registry_core::{ByteStream, Digest, Hasher};
use tokio::io::AsyncWriteExt;

use super::files::Files;
use super::follow::Progress;

/// Wrap a blob stream from the shared store so that it also fills the
/// cache: each chunk is written to a temporary file and hashed; at the end
/// the file is admitted if it hashes to `digest`. A failed or abandoned
/// stream leaves nothing in the cache. The caller has claimed the fill
/// ([`Files::start_fill`]); the claim ends with the stream.
pub(super) fn tee_into_cache(
    files: Arc<Files>,
    digest: Digest,
    size: u64,
    body: ByteStream,
) -> ByteStream {
    let progress = files.progress(&digest).unwrap_or_else(|| {
        // Not claimed (a caller's bug): a progress no one follows.
        Arc::new(Progress::new(
            std::env::temp_dir().join("registry-unclaimed-fill"),
            PathBuf::new(),
        ))
    });
    progress.set_size(size);
    let fill = Fill {
        tmp: progress.tmp.clone(),
        progress,
        files,
        hasher: Some(Hasher::new(digest.algorithm())),
        digest,
        file: None,
        written: 0,
        size,
    };
    futures::stream::unfold((body, Some(fill)), |(mut body, mut fill)| async move {
        let item = body.next().await;
        match (item, fill.as_mut()) {
            (Some(Ok(bytes)), Some(f)) => {
                if f.write(&bytes).await.is_err() {
                    fill = None; // give up filling, keep serving
                } else if f.written == f.size {
                    // The last byte: admit now. A reader that knows the
                    // length (hyper, after Content-Length bytes) never
                    // polls for the end of the stream.
                    f.finish().await;
                    fill = None;
                }
                Some((Ok(bytes), (body, fill)))
            }
            (Some(Ok(bytes)), None) => Some((Ok(bytes), (body, None))),
            (Some(Err(e)), _) => Some((Err(e), (body, None))),
            (None, Some(f)) => {
                f.finish().await;
                None
            }
            (None, None) => None,
        }
    })
    .boxed()
}

/// One fill in progress.
struct Fill {
    files: Arc<Files>,
    /// What followers of this fill see.
    progress: Arc<Progress>,
    digest: Digest,
    tmp: PathBuf,
    file: Option<tokio::fs::File>,
    hasher: Option<Hasher>,
    written: u64,
    size: u64,
}

impl Fill {
    async fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        if self.file.is_none() {
            self.file = Some(tokio::fs::File::create(&self.tmp).await?);
        }
        if let Some(file) = self.file.as_mut() {
            file.write_all(bytes).await?;
            // In the file (not in tokio's buffer) before followers read it.
            file.flush().await?;
        }
        self.progress.wrote(bytes.len() as u64);
        if let Some(h) = self.hasher.as_mut() {
            h.update(bytes);
        }
        self.written += bytes.len() as u64;
        Ok(())
    }

    /// The whole blob went by: admit it if it verifies.
    async fn finish(&mut self) {
        if let Some(mut file) = self.file.take() {
            let _ = file.flush().await;
        }
        let verified = self.written == self.size
            && self.hasher.take().map(Hasher::finish).as_ref() == Some(&self.digest);
        if verified && self.written > 0 {
            let admitted = self.files.admit(&self.digest, &self.tmp, self.size);
            self.progress.end(admitted);
        } else if !verified {
            self.progress.end(false);
            super::stats::add(&self.files.counters.fill_failures, 1);
            tracing::warn!(digest = %self.digest, "blob from the shared store failed verification; not cached");
        }
    }
}

impl Drop for Fill {
    fn drop(&mut self) {
        // Unless admitted, the temporary file goes.
        let _ = std::fs::remove_file(&self.tmp);
        self.files.end_fill(&self.digest);
    }
}
