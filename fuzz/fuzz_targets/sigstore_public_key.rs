//! `PublicKey::from_pem` and `from_spki` (user-given verification keys).
#![no_main]
use kibaship_sigstore::PublicKey;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(key) = PublicKey::from_pem(text)
    {
        let _ = key.verify(b"message", data);
    }
    let _ = PublicKey::from_spki(data, false);
    let _ = PublicKey::from_pkcs1_rsa(data, true);
});
