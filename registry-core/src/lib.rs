//! Core of an embeddable OCI registry: validated domain types, manifest
//! parsing and validation, the store traits and the digest-verifying upload
//! state machine.
//!
//! This crate does no I/O and knows nothing of HTTP or of any storage
//! backend: `registry-storage` implements the [`store`] traits and
//! `registry-http` serves them.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod digest;
pub mod error;
pub mod manifest;
pub mod media_type;
pub mod name;
pub mod pattern;
pub mod range;
pub mod store;
pub mod upload;

pub use digest::{Algorithm, Digest, Hasher};
pub use error::{Error, ErrorKind, Result};
pub use manifest::{Descriptor, ForeignUrlPolicy, Manifest, ManifestLimits};
pub use media_type::ManifestKind;
pub use name::{Reference, RepositoryName, Tag};
pub use pattern::RepositoryPattern;
pub use range::ByteRange;
pub use store::{
    BlobInfo, BlobRead, BlobStore, BodyVerified, ByteStream, Listing, ManifestPut, ManifestStore,
    Page, Referrers, RegistryStore, StoredManifest, UploadStatus, UploadStore, Verdict,
};
pub use upload::{Upload, UploadId, UploadState};
