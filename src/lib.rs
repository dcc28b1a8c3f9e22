//! An embeddable OCI container registry.
pub use registry_core as core;
