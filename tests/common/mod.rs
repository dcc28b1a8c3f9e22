//! Helpers shared by the `tests/server_*.rs` and `tests/fleet*.rs` tests:
//! start the real `registry` binary ([`process`]), three of them on one store
//! ([`fleet`]), talk to it over HTTP ([`http`], registry-testkit's client)
//! or raw ([`raw`]). OCI content to push is `registry_testkit::content`.
#![allow(dead_code)] // each test binary uses its own subset

pub mod fleet;
pub mod http;
pub mod process;
pub mod raw;
pub mod receiver;
