//! The endpoint suite: every endpoint of the OCI distribution spec v1.1.1
//! (end-1 to end-13), written once against a [`Transport`] and run on
//! every one [`endpoint_suite!`](crate::endpoint_suite) is given: our
//! stand-in for the OCI conformance suite.
//!
//! Each test takes a client of a fresh, empty registry with the default
//! configuration. Tests of other configurations (limits, policies,
//! prefixes) stay with the crate that can configure the registry.

mod blobs;
mod errors;
mod listings;
mod manifests;
mod uploads;

pub use blobs::*;
pub use errors::*;
pub use listings::*;
pub use manifests::*;
pub use uploads::*;

#[allow(unused_imports)] // for the docs
use crate::Transport;

/// The `Content-Type` of blob bytes.
const OCTET: (&str, &str) = ("content-type", "application/octet-stream");
