//! Digest parsing never panics, and every accepted digest round-trips and is
//! safe as a path component.
#![no_main]

use libfuzzer_sys::fuzz_target;
use registry_core::Digest;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(d) = Digest::parse(s) {
        assert_eq!(d.to_string(), s);
        assert!(!d.hex().contains(['/', '.', '\0']));
        assert_eq!(d.hex().len(), d.algorithm().hex_len());
    }
});
