//! Trusted roots, certificates, PEM text and public keys from untrusted sources never panic; a rejection
//! names what was wrong (the trusted-root field, the certificate structure, the PEM block).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a test failure

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use kibaship_sigstore::{
    Certificate, CertificateError, PemError, PublicKey, TrustedRoot, TrustedRootError, pem,
};
use proptest::prelude::*;
use std::sync::OnceLock;

const ROOT: &str =
    include_str!("../../../testdata/sigstore/trusted-roots/production-trusted_root.json");
const KEY: &str =
    include_str!("../../../testdata/cosign/keys/policy-controller-example-cosign.pub");
const CERT_PEM: &str =
    include_str!("../../../testdata/cosign/simple-signing/keyless-rekor-set/certificate.pem");

/// The first Fulcio CA certificate of the production root, as DER.
fn ca_der() -> &'static [u8] {
    static D: OnceLock<Vec<u8>> = OnceLock::new();
    D.get_or_init(|| {
        let v: serde_json::Value = serde_json::from_str(ROOT).unwrap();
        let b64 = v["certificateAuthorities"][0]["certChain"]["certificates"][0]["rawBytes"]
            .as_str()
            .unwrap();
        STANDARD.decode(b64).unwrap()
    })
}

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

fn certificate_error_is_named(e: &CertificateError) -> Result<(), TestCaseError> {
    let text = e.to_string();
    prop_assert!(
        text.starts_with("malformed certificate: ") || text.starts_with("certificate public key: "),
        "{text}"
    );
    Ok(())
}

#[test]
fn the_unmutated_inputs_are_accepted() {
    TrustedRoot::from_json(ROOT.as_bytes()).unwrap();
    Certificate::from_der(ca_der()).unwrap();
    Certificate::from_der(&pem::decode(CERT_PEM, "CERTIFICATE").unwrap()).unwrap();
    PublicKey::from_pem(KEY).unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(192))]

    #[test]
    fn mutated_trusted_roots_name_the_field(at in any::<usize>(), byte in any::<u8>(), how in any::<u8>()) {
        let bytes = mutate(ROOT.as_bytes(), at, byte, how);
        match TrustedRoot::from_json(&bytes) {
            Ok(_) => {}
            Err(e @ TrustedRootError::Json(_)) => prop_assert!(e.to_string().starts_with("trusted root is not valid JSON"), "{e}"),
            Err(TrustedRootError::Field { field, reason }) => {
                prop_assert!(!field.is_empty() && !reason.is_empty(), "{field:?}: {reason:?}");
            }
        }
    }

    #[test]
    fn mutated_certificates_are_parsed_or_refused_by_structure(at in any::<usize>(), byte in any::<u8>(), how in any::<u8>()) {
        let der = mutate(ca_der(), at, byte, how);
        match Certificate::from_der(&der) {
            Ok(cert) => {
                // Accessors on a certificate that parsed never panic either.
                let _ = cert.is_signed_by(&cert);
                for n in 1..=22 {
                    if let Some(Err(e)) = cert.fulcio_extension(n) {
                        certificate_error_is_named(&e)?;
                    }
                }
            }
            Err(e) => certificate_error_is_named(&e)?,
        }
    }

    #[test]
    fn arbitrary_bytes_are_not_a_certificate(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        certificate_error_is_named(&Certificate::from_der(&bytes).unwrap_err())?;
    }

    #[test]
    fn pem_text_is_decoded_or_refused_by_block(text in "(-----(BEGIN|END) [A-Z ]{0,12}-----\n)?[A-Za-z0-9+/=\n -]{0,80}(-----(BEGIN|END) [A-Z ]{0,12}-----\n?)?") {
        match pem::decode_blocks(text.as_bytes()) {
            Ok(blocks) => for b in blocks { prop_assert!(text.contains(&b.label)); },
            Err(e) => {
                let msg = e.to_string();
                match e {
                    PemError::Unterminated(label) | PemError::BadBase64 { label, .. } => prop_assert!(msg.contains(&format!("`{label}`")), "{msg}"),
                    _ => prop_assert!(msg.contains("PEM"), "{msg}"),
                }
            }
        }
    }

    #[test]
    fn mutated_public_keys_are_refused_by_reason(at in any::<usize>(), byte in any::<u8>(), how in any::<u8>()) {
        let bytes = mutate(KEY.as_bytes(), at, byte, how);
        let text = String::from_utf8_lossy(&bytes);
        if let Err(e) = PublicKey::from_pem(&text) {
            prop_assert!(e.to_string().contains("public key"), "{e}");
        }
    }
}
