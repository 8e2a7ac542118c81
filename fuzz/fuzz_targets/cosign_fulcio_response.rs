//! Fulcio's signingCert answer (`fulcio::parse_signing_cert_response`).
#![no_main]
use kibaship_cosign::fulcio::parse_signing_cert_response;
use kibaship_sign::SigningKey;
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

fn key() -> &'static SigningKey {
    static K: OnceLock<SigningKey> = OnceLock::new();
    K.get_or_init(|| SigningKey::generate().expect("P-256 key generation"))
}

fuzz_target!(|data: &[u8]| {
    let _ = parse_signing_cert_response(data, key());
});
