//! Keyless signing against a real private Sigstore on loopback (Fulcio v1.8.8 + TesseraCT, timestamp-authority
//! v2.1.5, rekor-tiles v2.3.0, our OIDC issuer; `kibaship_testsupport::sigstore`), stored in a real registry and
//! checked by `kibaship-sigstore`'s verifier against the stack's trusted root.
#![allow(clippy::unwrap_used, clippy::expect_used)]
mod support;

use std::collections::BTreeMap;

use kibaship_cosign::check::IN_TOTO_PAYLOAD_TYPE;
use kibaship_cosign::identity_token::IdentityToken;
use kibaship_cosign::keyless::{KeylessError, KeylessSigner, now_unix};
use kibaship_cosign::sign_bundle_keyless;
use kibaship_cosign::signing_config::SigningServices;
use kibaship_sigstore::{
    ArtifactPolicy, Bundle, CertificateIdentity, HashAlgorithm, IdentityPolicy,
};
use kibaship_testsupport::fixtures::push_fixture_images;
use kibaship_testsupport::registry::{RegistryMode, TestRegistry};
use kibaship_testsupport::sigstore::TestSigstore;
use support::{
    assert_not_uploaded, fixture_image, keyless_signer, public_good_verifier, registry_client,
    stack_verifier, verify_options_for, verify_signatures,
};

const EMAIL: &str = "builder@kibaship.test";

/// The stack's signing services, as its signing config lists them.
fn services(stack: &TestSigstore) -> SigningServices {
    SigningServices::from_signing_config(
        &std::fs::read(stack.signing_config_path()).unwrap(),
        now_unix(),
    )
    .unwrap()
}

fn signer(stack: &TestSigstore, email: &str) -> KeylessSigner {
    let services = services(stack);
    assert_eq!(services.fulcio_url, stack.fulcio_url());
    assert_eq!(services.rekor_url.as_deref(), Some(stack.rekor_url()));
    assert_eq!(services.tsa_url.as_deref(), Some(stack.tsa_url()));
    keyless_signer(stack, services, email)
}

/// Signs a blob with `services` and `token`, which must fail.
async fn blob_signing_error(services: SigningServices, token: IdentityToken) -> KeylessError {
    let signer = KeylessSigner::new(reqwest::Client::new(), services, token).unwrap();
    signer.sign_blob(b"x").await.unwrap_err()
}

fn identity(stack: &TestSigstore, email: &str) -> IdentityPolicy {
    IdentityPolicy::Certificate(CertificateIdentity::exact(email, stack.issuer()))
}

#[tokio::test]
async fn keyless_image_signature_round_trips_through_the_registry() {
    let stack = TestSigstore::start().unwrap();
    let reg = TestRegistry::start(RegistryMode::Referrers).unwrap();
    push_fixture_images(&reg).unwrap();
    let client = registry_client(&reg);
    let app = fixture_image(&reg, "app");
    let signer = signer(&stack, EMAIL);
    let verifier_for_check = stack_verifier(&stack);
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
    let foreign = public_good_verifier();
    let other = fixture_image(&reg, "config-only");
    let signed = sign_bundle_keyless(
        &client,
        &other,
        None,
        &signer,
        BTreeMap::new(),
        Some(&foreign),
    )
    .await;
    assert_not_uploaded(signed);
    let listed = client.list_referrers(&other, None).await.unwrap();
    assert!(listed.descriptors.is_empty(), "{:?}", listed.descriptors);

    let options = |identity| verify_options_for(identity, stack_verifier(&stack));
    let report = verify_signatures(&client, &app, &options(identity(&stack, EMAIL))).await;
    assert!(report.verified(), "{report:#?}");
    assert_eq!(report.signatures.len(), 1);
    let accepted = report.signatures[0].accepted().unwrap();
    assert!(accepted.signer.contains(EMAIL), "{accepted:?}");

    let wrong = verify_signatures(
        &client,
        &app,
        &options(identity(&stack, "someone-else@kibaship.test")),
    )
    .await;
    assert!(!wrong.verified());
    let reason = wrong.signatures[0].rejected().unwrap().message.clone();
    assert!(reason.contains("someone-else@kibaship.test"), "{reason}");

    let foreign_issuer = verify_signatures(
        &client,
        &app,
        &options(IdentityPolicy::Certificate(CertificateIdentity::exact(
            EMAIL,
            "https://accounts.google.com",
        ))),
    )
    .await;
    assert!(!foreign_issuer.verified());
}

#[tokio::test]
async fn keyless_bundles_carry_certificate_log_entry_and_timestamp() {
    let stack = TestSigstore::start().unwrap();
    let signer = signer(&stack, EMAIL);
    let verifier = stack_verifier(&stack);

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
    let mut services = services(&stack);

    // A token with a forged signature: Fulcio refuses it.
    let mut parts: Vec<String> = raw.split('.').map(str::to_string).collect();
    parts[2] = "AAAA".into();
    let forged = parts.join(".");
    let e = blob_signing_error(
        services.clone(),
        IdentityToken::parse(&forged, now_unix()).unwrap(),
    )
    .await;
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
    let e = blob_signing_error(broken, token.clone()).await;
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
