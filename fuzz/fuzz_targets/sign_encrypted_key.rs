//! Encrypted cosign keys (`SigningKey::from_encrypted_pem`) with a fixed password. Only scrypt N of 2^15..2^17
//! with r=8, p=1 is accepted, so a valid envelope costs one scrypt run (slow but bounded).
#![no_main]
use kibaship_sign::SigningKey;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = SigningKey::from_encrypted_pem(data, b"fuzz");
});
