//! Manifest parsing never panics, and what it accepts is self-consistent.
#![no_main]

use libfuzzer_sys::fuzz_target;
use registry_core::manifest::{Manifest, ManifestLimits, detect_media_type};
use registry_core::{Digest, media_type};

fuzz_target!(|data: &[u8]| {
    let limits = ManifestLimits::default();
    let _ = detect_media_type(data);
    for ct in [
        None,
        Some(media_type::OCI_IMAGE_MANIFEST),
        Some(media_type::OCI_IMAGE_INDEX),
        Some(media_type::DOCKER_MANIFEST_V2),
    ] {
        if let Ok(m) = Manifest::parse(data, ct, &limits) {
            // The digest is always that of the exact bytes.
            assert_eq!(m.digest(), &Digest::sha256_of(data));
            assert_eq!(m.size(), data.len() as u64);
            // Accepted manifests always have a detectable media type.
            assert!(detect_media_type(data).is_some());
            for d in m.references() {
                let _ = d.digest().to_string();
            }
        }
    }
});
