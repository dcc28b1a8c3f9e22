//! The endpoint suite (`registry_testkit::suite`) through `Router::handle`,
//! on the memory store and on the filesystem store. `tests/server_conformance.rs`
//! runs the same suite over HTTP against the `registry` binary.

mod common;

mod memory {
    registry_testkit::endpoint_suite!(super::common::InProcess::memory().client());
}

mod fs {
    registry_testkit::endpoint_suite!(super::common::InProcess::fs().client());
}
