//! An embeddable OCI container registry.
//!
//! This facade re-exports the three crates of the workspace:
//! - [`core`] (`registry-core`): domain types, manifest validation, store
//!   traits and the verifying upload state machine;
//! - [`storage`] (`registry-storage`): the store traits on OpenDAL
//!   (filesystem, memory, S3, ...) in CNCF distribution's layout;
//! - [`http`] (`registry-http`): the OCI Distribution v1.1 router.
//!
//! The `registry` binary of this package is the reference server.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub use registry_core as core;
pub use registry_http as http;
pub use registry_storage as storage;

/// The README's examples, compiled as doc tests so they cannot rot.
#[doc = include_str!("../README.md")]
#[allow(dead_code)]
mod readme {}
