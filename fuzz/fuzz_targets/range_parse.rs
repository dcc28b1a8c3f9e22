//! `Range` header parsing and resolution never panic, and a resolved range
//! always lies inside the blob.
#![no_main]

use libfuzzer_sys::fuzz_target;
use registry_core::ByteRange;

fuzz_target!(|input: (&str, u64)| {
    let (header, size) = input;
    if let Ok(r) = ByteRange::parse_header(header)
        && let Ok(range) = r.resolve(size)
    {
        assert!(range.start < range.end);
        assert!(range.end <= size);
    }
});
