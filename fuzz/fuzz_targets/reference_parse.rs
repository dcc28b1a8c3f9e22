//! Repository names, tags, references and upload ids: parsing never panics,
//! and nothing accepted can escape a storage path.
#![no_main]

use libfuzzer_sys::fuzz_target;
use registry_core::{Reference, RepositoryName, Tag, UploadId};

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let safe = |v: &str| {
        assert!(!v.split('/').any(|c| c.is_empty() || c == "." || c == ".."));
        assert!(!v.contains('\0') && !v.contains('\\') && !v.contains('%'));
    };
    if let Ok(n) = RepositoryName::parse(s) {
        assert_eq!(n.as_str(), s);
        safe(n.as_str());
    }
    if let Ok(t) = Tag::parse(s) {
        assert!(!t.as_str().contains('/'));
        safe(t.as_str());
    }
    if let Ok(r) = Reference::parse(s) {
        assert_eq!(r.to_string(), s);
    }
    if let Ok(id) = UploadId::parse(s) {
        assert!(!id.as_str().contains('/'));
        safe(id.as_str());
    }
});
