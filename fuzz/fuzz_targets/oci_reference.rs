//! `Reference::parse`, `Digest::parse` and `Platform::from_str` (user-typed image references and flags).
#![no_main]
use kibaship_oci::{Digest, Platform, Reference};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(reference) = Reference::parse(text) {
        let _ = reference.api_host();
        let _ = reference.ggcr_repository();
        let _ = reference.manifest_reference();
        let _ = reference.with_tag("latest");
        // What Display writes parses again to the same reference.
        let again = Reference::parse(&reference.to_string())
            .unwrap_or_else(|e| panic!("{reference} does not parse again: {e}"));
        assert_eq!(again.to_string(), reference.to_string());
    }
    if let Ok(digest) = Digest::parse(text) {
        let _ = digest.referrers_fallback_tag();
        let _ = digest.matches(data);
    }
    let _ = text.parse::<Platform>();
});
