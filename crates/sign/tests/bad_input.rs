//! Untrusted key files and simple-signing payloads never panic; a rejection names what was wrong, and
//! never prints key material.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a test failure

use kibaship_sign::{KeyError, PayloadError, SigningKey, SimpleSigningPayload};
use kibaship_sigstore::pem;
use proptest::prelude::*;

const PAYLOAD: &str =
    include_str!("../../../testdata/cosign/simple-signing/key-signed/payload.json");
const PLAIN_KEY: &str = include_str!("../../../testdata/cosign/import-keys/validecp256.key");
const ENCRYPTED_KEY: &str = include_str!("../../../testdata/cosign/keys/encrypted-sigstore.key");

/// One byte replaced, one removed, or cut short.
fn mutate(base: &[u8], at: usize, byte: u8, how: u8) -> Vec<u8> {
    let mut bytes = base.to_vec();
    let at = at % bytes.len();
    match how % 3 {
        0 => bytes[at] = byte,
        1 => {
            bytes.remove(at);
        }
        _ => bytes.truncate(at),
    }
    bytes
}

/// The JSON envelope inside the encrypted key's PEM block.
fn envelope() -> Vec<u8> {
    pem::decode_first(ENCRYPTED_KEY.as_bytes()).unwrap().der
}

#[test]
fn the_unmutated_inputs_are_accepted() {
    SimpleSigningPayload::parse(PAYLOAD.as_bytes()).unwrap();
    SigningKey::from_pem(PLAIN_KEY.as_bytes()).unwrap();
    // The envelope is well-formed; only the password is unknown here.
    let e =
        SigningKey::from_encrypted_pem(ENCRYPTED_KEY.as_bytes(), b"not the password").unwrap_err();
    assert!(matches!(e, KeyError::Decrypt), "{e:?}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn mutated_payloads_are_refused_by_reason(at in any::<usize>(), byte in any::<u8>(), how in any::<u8>()) {
        let bytes = mutate(PAYLOAD.as_bytes(), at, byte, how);
        if let Err(e) = SimpleSigningPayload::parse(&bytes) {
            prop_assert!(matches!(e, PayloadError::Malformed(_) | PayloadError::WrongType(_) | PayloadError::BadDigest(_)), "{e:?}");
            prop_assert!(e.to_string().starts_with("simple-signing payload "), "{e}");
        }
    }

    #[test]
    fn arbitrary_bytes_are_not_a_payload(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let e = SimpleSigningPayload::parse(&bytes).unwrap_err();
        prop_assert!(e.to_string().starts_with("simple-signing payload "), "{e}");
    }

    #[test]
    fn mutated_plain_keys_are_refused_by_reason(at in any::<usize>(), byte in any::<u8>(), how in any::<u8>()) {
        let bytes = mutate(PLAIN_KEY.as_bytes(), at, byte, how);
        if let Err(e) = SigningKey::from_pem(&bytes) {
            let text = e.to_string();
            prop_assert!(!text.is_empty());
            prop_assert!(matches!(e, KeyError::Pem(_) | KeyError::UnsupportedLabel(_) | KeyError::Unsupported(_)), "{e:?}");
            // No base64 of the key body in the message.
            let body_line = PLAIN_KEY.lines().nth(1).unwrap();
            prop_assert!(!text.contains(body_line), "{text}");
        }
    }

    #[test]
    fn arbitrary_bytes_are_not_a_key(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        prop_assert!(SigningKey::from_pkcs8(&bytes).is_err());
        let e = SigningKey::from_pem(&bytes).unwrap_err();
        prop_assert!(e.to_string().starts_with("key file: "), "{e}");
    }
}

proptest! {
    // Each well-formed envelope costs one scrypt run (N=2^15): few cases.
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn mutated_encrypted_envelopes_are_refused_by_reason(at in any::<usize>(), byte in any::<u8>(), how in any::<u8>()) {
        let json = mutate(&envelope(), at, byte, how);
        let pem_text = pem::encode("ENCRYPTED SIGSTORE PRIVATE KEY", &json);
        let e = SigningKey::from_encrypted_pem(pem_text.as_bytes(), b"not the password").unwrap_err();
        prop_assert!(
            matches!(e, KeyError::Envelope(_) | KeyError::UnsupportedEncryption { .. } | KeyError::Decrypt),
            "{e:?}"
        );
        let text = e.to_string();
        prop_assert!(
            text.starts_with("encrypted key envelope: ") || text.starts_with("encrypted key uses ")
                || text.starts_with("could not decrypt the private key"),
            "{text}"
        );
    }
}
