//! Plain PEM private keys (`SigningKey::from_pem`, what `cosign import-key-pair` reads).
#![no_main]
use kibaship_sign::SigningKey;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = SigningKey::from_pem(data);
    let _ = SigningKey::from_pkcs8(data);
});
