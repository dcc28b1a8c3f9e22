//! Core of an embeddable OCI registry.
pub mod digest;
pub mod error;
pub use digest::{Algorithm, Digest, Hasher};
pub use error::{Error, ErrorKind, Result};
