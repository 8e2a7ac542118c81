//! Real cosign key files (shared corpus, passwords checked independently with Python's scrypt + PyNaCl) must
//! load, sign, and be refused where cosign refuses them.
#![allow(clippy::unwrap_used)]
use std::path::PathBuf;

use aws_lc_rs::signature;
use kibaship_sign::keys::KeyKind;
use kibaship_sign::{KeyError, SigningKey};

fn testdata(rel: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/cosign")
        .join(rel);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Verifies `sig` over `msg` with the key's own public key, through the SPKI DER it exports.
fn assert_signs(key: &SigningKey) {
    let msg = b"kibaship signing check";
    if key.kind() == KeyKind::Ed25519 {
        // cosign signs with Ed25519 keys as Ed25519ph, which we refuse rather than sign differently.
        assert!(key.sign(msg).unwrap_err().to_string().contains("Ed25519ph"));
        return;
    }
    let sig = key.sign(msg).unwrap();
    let spki = key.public_key_der().unwrap();
    let alg: &dyn signature::VerificationAlgorithm = match key.kind() {
        KeyKind::EcdsaP256 => &signature::ECDSA_P256_SHA256_ASN1,
        KeyKind::EcdsaP384 => &signature::ECDSA_P384_SHA384_ASN1,
        KeyKind::EcdsaP521 => &signature::ECDSA_P521_SHA512_ASN1,
        KeyKind::Rsa => &signature::RSA_PKCS1_2048_8192_SHA256,
        KeyKind::Ed25519 => return,
    };
    let public = aws_lc_rs::signature::ParsedPublicKey::new(alg, &spki).unwrap();
    public.verify_sig(msg, &sig).unwrap();
    let mut tampered = msg.to_vec();
    tampered[0] ^= 1;
    assert!(public.verify_sig(&tampered, &sig).is_err());
}

/// A signature over the digest (`sign_digest`, as sign-blob streams a file) verifies over the message itself.
fn assert_signs_digest(key: &SigningKey) {
    let msg = b"kibaship blob";
    let sig = key.sign_digest(&key.hash_algorithm().digest(msg)).unwrap();
    let alg: &dyn signature::VerificationAlgorithm = match key.kind() {
        KeyKind::EcdsaP256 => &signature::ECDSA_P256_SHA256_ASN1,
        KeyKind::EcdsaP384 => &signature::ECDSA_P384_SHA384_ASN1,
        KeyKind::EcdsaP521 => &signature::ECDSA_P521_SHA512_ASN1,
        KeyKind::Rsa => &signature::RSA_PKCS1_2048_8192_SHA256,
        KeyKind::Ed25519 => return,
    };
    let public = signature::ParsedPublicKey::new(alg, key.public_key_der().unwrap()).unwrap();
    public.verify_sig(msg, &sig).unwrap();
    assert!(public.verify_sig(b"another blob", &sig).is_err());
}

#[test]
fn encrypted_keys_load_with_their_passwords() {
    let cases: &[(&str, &[u8], KeyKind)] = &[
        (
            "keys/encrypted-cosign-pkcs8.key",
            b"hello",
            KeyKind::EcdsaP256,
        ),
        ("keys/encrypted-sigstore.key", b"hello", KeyKind::EcdsaP256),
        (
            "keys/policy-controller-example-cosign.key",
            b"",
            KeyKind::EcdsaP256,
        ),
        (
            "keys/sigstore-rs_ecdsa_encrypted_private.key",
            b"123",
            KeyKind::EcdsaP256,
        ),
        (
            "keys/sigstore-rs_cosign_generated_encrypted_empty_private.key",
            b"",
            KeyKind::EcdsaP256,
        ),
        (
            "keys/sigstore-rs_example_ECDSA_P256_ENCRYPTED_PRIVATE_PEM.key",
            b"password",
            KeyKind::EcdsaP256,
        ),
        (
            "keys/sigstore-rs_ed25519_encrypted_private.key",
            b"123",
            KeyKind::Ed25519,
        ),
    ];
    for (file, password, kind) in cases {
        let key = SigningKey::from_encrypted_pem(&testdata(file), password)
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(key.kind(), *kind, "{file}");
        assert_signs(&key);
    }
}

#[test]
fn policy_controller_key_matches_its_public_key() {
    let key =
        SigningKey::from_encrypted_pem(&testdata("keys/policy-controller-example-cosign.key"), b"")
            .unwrap();
    let expected =
        String::from_utf8(testdata("keys/policy-controller-example-cosign.pub")).unwrap();
    assert_eq!(key.public_key_pem().unwrap().trim(), expected.trim());
}

#[test]
fn wrong_password_is_a_clear_error_without_the_password() {
    let err =
        SigningKey::from_encrypted_pem(&testdata("keys/encrypted-sigstore.key"), b"hunter2-secret")
            .unwrap_err();
    assert!(matches!(err, KeyError::Decrypt), "{err}");
    let text = format!("{err} {err:?}");
    assert!(text.contains("wrong password"), "{text}");
    assert!(!text.contains("hunter2-secret"), "{text}");
}

#[test]
fn sec1_plaintext_is_refused_like_cosign() {
    let err =
        SigningKey::from_encrypted_pem(&testdata("keys/encrypted-cosign-ec-sec1.key"), b"hello")
            .unwrap_err();
    assert!(
        err.to_string().contains("not a PKCS#8 private key"),
        "{err}"
    );
}

#[test]
fn import_key_pair_inputs_as_cosign_takes_them() {
    for (file, kind) in [
        ("import-keys/validrsa.key", KeyKind::Rsa),
        ("import-keys/validrsapkcs1.key", KeyKind::Rsa),
        ("import-keys/validrsapkcs8.key", KeyKind::Rsa),
        ("import-keys/validecp256.key", KeyKind::EcdsaP256),
        ("import-keys/validecp521.key", KeyKind::EcdsaP521),
        ("import-keys/validecpkcs8.key", KeyKind::EcdsaP256),
        ("keys/sigstore-rs_ecdsa_private.key", KeyKind::EcdsaP256),
        ("keys/sigstore-rs_rsa_private.key", KeyKind::Rsa),
        ("keys/sigstore-rs_ed25519_private.key", KeyKind::Ed25519),
    ] {
        let key = SigningKey::from_pem(&testdata(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(key.kind(), kind, "{file}");
        assert_signs(&key);
    }
    for (file, expected) in [
        (
            "import-keys/invalidrsawithpubkey.key",
            "unsupported private key",
        ),
        (
            "import-keys/invalidrsalargekey.key",
            "key size not supported: 5120",
        ),
        (
            "import-keys/invalidecunsupported.key",
            "error parsing ecdsa private key",
        ),
        ("import-keys/invalidkey.key", "unsupported private key"),
    ] {
        let err = SigningKey::from_pem(&testdata(file)).unwrap_err();
        assert!(err.to_string().contains(expected), "{file}: {err}");
    }
}

#[test]
fn import_pem_takes_and_refuses_what_cosign_import_key_pair_does() {
    for (file, kind) in [
        ("import-keys/validrsa.key", KeyKind::Rsa),
        ("import-keys/validrsapkcs1.key", KeyKind::Rsa),
        ("import-keys/validrsapkcs8.key", KeyKind::Rsa),
        ("import-keys/validecp256.key", KeyKind::EcdsaP256),
        ("import-keys/validecp521.key", KeyKind::EcdsaP521),
        ("import-keys/validecpkcs8.key", KeyKind::EcdsaP256),
    ] {
        let key = SigningKey::import_pem(&testdata(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(key.kind(), kind, "{file}");
        assert_signs(&key);
        assert_signs_digest(&key);
    }
    // cosign's own expectations for these files (TestImportPrivateKey), in its words.
    for (file, expected) in [
        (
            "import-keys/invalidrsawithpubkey.key",
            "unsupported private key",
        ),
        (
            "import-keys/invalidrsalargekey.key",
            "error validating rsa key: key size not supported: 5120",
        ),
        (
            "import-keys/invalidecunsupported.key",
            "error parsing ecdsa private key",
        ),
        ("import-keys/invalidkey.key", "unsupported private key"),
        (
            "keys/sigstore-rs_ed25519_private.key",
            "Ed25519 keys are not imported",
        ),
    ] {
        let err = SigningKey::import_pem(&testdata(file)).unwrap_err();
        assert!(err.to_string().contains(expected), "{file}: {err}");
    }
}

#[test]
fn generated_keys_round_trip_through_cosigns_format() {
    let key = SigningKey::generate().unwrap();
    let pem = key.to_encrypted_pem(b"s3cret").unwrap();
    assert!(pem.starts_with("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n"));
    // The envelope carries the documented scrypt parameters.
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let json: serde_json::Value = serde_json::from_slice(
        &base64::Engine::decode(&base64::engine::general_purpose::STANDARD, body).unwrap(),
    )
    .unwrap();
    assert_eq!(json["kdf"]["name"], "scrypt");
    assert_eq!(
        json["kdf"]["params"],
        serde_json::json!({"N": 65536, "r": 8, "p": 1})
    );
    assert_eq!(json["cipher"]["name"], "nacl/secretbox");
    let again = SigningKey::from_encrypted_pem(pem.as_bytes(), b"s3cret").unwrap();
    assert_eq!(
        again.public_key_pem().unwrap(),
        key.public_key_pem().unwrap()
    );
    assert!(matches!(
        SigningKey::from_encrypted_pem(pem.as_bytes(), b"other"),
        Err(KeyError::Decrypt)
    ));
}

#[test]
fn debug_output_never_shows_key_material() {
    let key = SigningKey::generate().unwrap();
    let shown = format!("{key:?}");
    assert_eq!(shown, "SigningKey { kind: EcdsaP256, .. }");
}
