//! `kibaship_sigstore::pem::decode_blocks` (certificate chains, keys).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = kibaship_sigstore::pem::decode_blocks(data);
});
