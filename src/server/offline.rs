//! What the commands that work on a store without serving it (`registry
//! fsck`, `registry gc`) share: an async runtime and the store.

use registry_storage::OpendalStore;

use super::config::StorageUrl;

/// A runtime to run the command on, and the store at `storage`.
pub fn open(storage: &StorageUrl) -> Result<(tokio::runtime::Runtime, OpendalStore), String> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    let store = OpendalStore::from_url(storage.expose())
        .map_err(|e| format!("cannot open storage {storage}: {}", e.message()))?;
    Ok((runtime, store))
}
