//! Keyless signing against a real private Sigstore on loopback (Fulcio v1.8.8 + TesseraCT, timestamp-authority
//! v2.1.5, rekor-tiles v2.3.0, our OIDC issuer; `kibaship_testsupport::sigstore`), stored in a real registry and
//! checked by `kibaship-sigstore`'s verifier against the stack's trusted root.
#![allow(clippy::unwrap_used, clippy::expect_used)]
use std::collections::BTreeMap;

use kibaship_cosign::check::IN_TOTO_PAYLOAD_TYPE;
use kibaship_cosign::identity_token::IdentityToken;
use kibaship_cosign::keyless::{KeylessError, KeylessSigner, now_unix};
use kibaship_cosign::legacy::LayerKind;
use kibaship_cosign::signing_config::SigningServices;
use kibaship_cosign::{VerifyOptions, sign_bundle_keyless, verify_image};
use kibaship_oci::{ClientConfig, Reference, RegistryClient};
use kibaship_sigstore::{
    ArtifactPolicy, Bundle, CertificateIdentity, HashAlgorithm, IdentityPolicy, TrustedRoot,
    Verifier,
};
use kibaship_testsupport::fixtures::push_fixture_images;
use kibaship_testsupport::registry::{RegistryMode, TestRegistry};
use kibaship_testsupport::sigstore::TestSigstore;

const EMAIL: &str = "builder@kibaship.test";

fn verifier(stack: &TestSigstore) -> Verifier {
    let root = TrustedRoot::from_json(&std::fs::read(stack.trusted_root_path()).unwrap())
        .expect("our verifier reads the trusted root cosign wrote");
    Verifier::new(root)
}

fn signer(stack: &TestSigstore, email: &str) -> KeylessSigner {
    let services = SigningServices::from_signing_config(
        &std::fs::read(stack.signing_config_path()).unwrap(),
        now_unix(),
    )
    .unwrap();
    assert_eq!(services.fulcio_url, stack.fulcio_url());
    assert_eq!(services.rekor_url.as_deref(), Some(stack.rekor_url()));
    assert_eq!(services.tsa_url.as_deref(), Some(stack.tsa_url()));
    let token = IdentityToken::parse(&stack.mint_token(email).unwrap(), now_unix()).unwrap();
    KeylessSigner::new(reqwest::Client::new(), services, token).unwrap()
}

fn identity(stack: &TestSigstore, email: &str) -> IdentityPolicy {
    IdentityPolicy::Certificate(CertificateIdentity::exact(email, stack.issuer()))
}

#[tokio::test]
async fn keyless_image_signature_round_trips_through_the_registry() {
    let stack = TestSigstore::start().unwrap();
    let reg = TestRegistry::start(RegistryMode::Referrers).unwrap();
    push_fixture_images(&reg).unwrap();
    let client = RegistryClient::new(ClientConfig {
        insecure_registries: vec![reg.host()],
        use_docker_config: false,
        ..ClientConfig::default()
    })
    .unwrap();
    let app = Reference::parse(&format!("{}/fixtures/app:v1", reg.host())).unwrap();
    let signer = signer(&stack, EMAIL);
    let verifier_for_check = verifier(&stack);
    let signed = sign_bundle_keyless(
        &client,
        &app,
        None,
        &signer,
        BTreeMap::new(),
        Some(&verifier_for_check),
    )
    .await
    .unwrap();
    assert!(signed.bundle.referrer.contains("@sha256:"));
    assert_eq!(signed.certificate_identity, EMAIL);
    assert_eq!(signed.certificate_oidc_issuer, stack.issuer());
    assert!(signed.checked_against_trusted_root);

    // Against another trusted root (Sigstore's public-good one) the self-check fails and nothing is attached.
    let foreign = Verifier::new(TrustedRoot::public_good().unwrap());
    let other = Reference::parse(&format!("{}/fixtures/config-only:v1", reg.host())).unwrap();
    let e = sign_bundle_keyless(
        &client,
        &other,
        None,
        &signer,
        BTreeMap::new(),
        Some(&foreign),
    )
    .await
    .unwrap_err();
    assert!(e.to_string().contains("not uploaded"), "{e}");
    let listed = client.list_referrers(&other, None).await.unwrap();
    assert!(listed.descriptors.is_empty(), "{:?}", listed.descriptors);

    let options = |identity| VerifyOptions {
        identity,
        verifier: verifier(&stack),
        ignore_tlog: false,
        predicate_type: None,
        annotations: Default::default(),
    };
    let report = verify_image(
        &client,
        &app,
        None,
        LayerKind::Signature,
        &options(identity(&stack, EMAIL)),
    )
    .await
    .unwrap();
    assert!(report.verified, "{report:#?}");
    assert_eq!(report.signatures.len(), 1);
    let accepted = report.signatures[0].accepted.as_ref().unwrap();
    assert!(accepted.signer.contains(EMAIL), "{accepted:?}");

    let wrong = verify_image(
        &client,
        &app,
        None,
        LayerKind::Signature,
        &options(identity(&stack, "someone-else@kibaship.test")),
    )
    .await
    .unwrap();
    assert!(!wrong.verified);
    let reason = wrong.signatures[0].reason.clone().unwrap();
    assert!(reason.contains("someone-else@kibaship.test"), "{reason}");

    let foreign_issuer = verify_image(
        &client,
        &app,
        None,
        LayerKind::Signature,
        &options(IdentityPolicy::Certificate(CertificateIdentity::exact(
            EMAIL,
            "https://accounts.google.com",
        ))),
    )
    .await
    .unwrap();
    assert!(!foreign_issuer.verified);
}

#[tokio::test]
async fn keyless_bundles_carry_certificate_log_entry_and_timestamp() {
    let stack = TestSigstore::start().unwrap();
    let signer = signer(&stack, EMAIL);
    let verifier = verifier(&stack);

    // An attestation (DSSE), logged as a Rekor v2 `hashedrekord` over its PAE.
    let statement = br#"{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"x","digest":{"sha256":"7e7952b0eb3eb0e7b6e1b0a8b3d4d3c2e2d1c0b9a8f7e6d5c4b3a29180706050"}}],"predicateType":"https://slsa.dev/provenance/v1","predicate":{}}"#;
    let dsse = signer
        .sign_dsse(IN_TOTO_PAYLOAD_TYPE, statement)
        .await
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&dsse.json).unwrap();
    let entry = &json["verificationMaterial"]["tlogEntries"][0];
    assert_eq!(entry["kindVersion"]["kind"], "hashedrekord");
    assert_eq!(entry["kindVersion"]["version"], "0.0.2");
    assert!(entry["inclusionProof"]["checkpoint"]["envelope"].is_string());
    assert_eq!(
        json["verificationMaterial"]["timestampVerificationData"]["rfc3161Timestamps"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let bundle = Bundle::from_json(&dsse.json).unwrap();
    let digest =
        hex::decode("7e7952b0eb3eb0e7b6e1b0a8b3d4d3c2e2d1c0b9a8f7e6d5c4b3a29180706050").unwrap();
    let result = verifier
        .verify(
            &bundle,
            ArtifactPolicy::Digest {
                algorithm: HashAlgorithm::Sha256,
                digest: &digest,
            },
            &identity(&stack, EMAIL),
        )
        .unwrap();
    assert!(!result.log_entries.is_empty());

    // A blob: message signature, `hashedrekord`.
    let blob = b"kibaship keyless blob\n";
    let signed = signer.sign_blob(blob).await.unwrap();
    let bundle = Bundle::from_json(&signed.json).unwrap();
    verifier
        .verify(
            &bundle,
            ArtifactPolicy::Bytes(blob),
            &identity(&stack, EMAIL),
        )
        .unwrap();
    let tampered = verifier.verify(
        &bundle,
        ArtifactPolicy::Bytes(b"tampered\n"),
        &identity(&stack, EMAIL),
    );
    assert!(tampered.is_err());
}

#[tokio::test]
async fn service_failures_are_clear_and_never_show_the_token() {
    let stack = TestSigstore::start().unwrap();
    let raw = stack.mint_token(EMAIL).unwrap();
    let token = IdentityToken::parse(&raw, now_unix()).unwrap();
    let mut services = SigningServices::from_signing_config(
        &std::fs::read(stack.signing_config_path()).unwrap(),
        now_unix(),
    )
    .unwrap();

    // A token with a forged signature: Fulcio refuses it.
    let mut parts: Vec<String> = raw.split('.').map(str::to_string).collect();
    parts[2] = "AAAA".into();
    let forged = parts.join(".");
    let signer = KeylessSigner::new(
        reqwest::Client::new(),
        services.clone(),
        IdentityToken::parse(&forged, now_unix()).unwrap(),
    )
    .unwrap();
    let e = signer.sign_blob(b"x").await.unwrap_err();
    assert!(
        matches!(
            e,
            KeylessError::Refused {
                service: "Fulcio",
                ..
            }
        ),
        "{e}"
    );
    assert!(!e.to_string().contains(&forged) && !format!("{e:?}").contains(&forged));

    // Rekor unreachable.
    let mut broken = services.clone();
    broken.rekor_url = Some("http://127.0.0.1:9".into());
    let signer = KeylessSigner::new(reqwest::Client::new(), broken, token.clone()).unwrap();
    let e = signer.sign_blob(b"x").await.unwrap_err();
    assert!(
        matches!(
            e,
            KeylessError::Unreachable {
                service: "Rekor",
                ..
            }
        ),
        "{e}"
    );
    assert!(!e.to_string().contains(&raw));

    // No TSA: refused up front, since Rekor v2 gives no signed time.
    services.tsa_url = None;
    let e = KeylessSigner::new(reqwest::Client::new(), services, token).unwrap_err();
    assert!(matches!(e, KeylessError::NoTimestampAuthority));
}
