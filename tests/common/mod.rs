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

/// Wait (at most `secs`) until `check` holds, polling every 20 ms; panic
/// naming `what` if it never does.
pub fn eventually(secs: u64, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while !check() {
        assert!(
            std::time::Instant::now() < deadline,
            "not within {secs} s: {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}
