//! `TrustedRoot::from_json` (a trusted root is fetched or given by the user).
#![no_main]
use kibaship_sigstore::TrustedRoot;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = TrustedRoot::from_json(data);
});
