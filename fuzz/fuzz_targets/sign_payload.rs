//! cosign simple-signing payloads: `SimpleSigningPayload::parse`.
#![no_main]
use kibaship_sign::SimpleSigningPayload;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = SimpleSigningPayload::parse(data);
});
