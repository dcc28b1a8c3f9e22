//! A pull-through mirror (docs/MIRROR.md): repositories under a configured
//! prefix are copies of an upstream registry's, fetched on first use,
//! verified against their digests before they become visible, and kept as
//! ordinary tags and blobs of the store, so the garbage collector's
//! reachability decides what expires.

#![forbid(unsafe_code)]

pub mod upstream;

mod blobs;
pub mod config;
mod stats;
mod store;

pub use config::{MirrorConfig, Mirrors};
pub use stats::MirrorStats;
pub use store::{FetchOptions, MirrorStore};
