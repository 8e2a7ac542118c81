//! Keyless signing in cosign's legacy layout against a real private Sigstore with Rekor v1 (rekor-server v1.5.5 on
//! Trillian v1.8.0 + MariaDB, Fulcio v1.8.8 + TesseraCT, our OIDC issuer; `kibaship_testsupport::sigstore` with
//! `rekor_v1`), stored in a real registry and checked by our legacy verifier (`.sig` layer → bundle v0.1 →
//! `kibaship-sigstore`) against the stack's trusted root: the SET is what dates the certificate.
#![allow(clippy::unwrap_used, clippy::expect_used)]
mod support;

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use kibaship_cosign::check::{self, IN_TOTO_PAYLOAD_TYPE, Subject};
use kibaship_cosign::keyless::{KeylessError, KeylessSigner, now_unix};
use kibaship_cosign::legacy::{self, SignatureLayer};
use kibaship_cosign::signing_config::{RekorLogs, SigningServices};
use kibaship_cosign::{Layout, VerifyOptions, sign_legacy_keyless};
use kibaship_oci::manifest::{Descriptor, ImageManifest, OCI_MANIFEST};
use kibaship_oci::{Digest, Reference};
use kibaship_sigstore::{CertificateIdentity, IdentityPolicy};
use kibaship_testsupport::fixtures::push_fixture_images;
use kibaship_testsupport::registry::{RegistryMode, TestRegistry};
use kibaship_testsupport::sigstore::{SigstoreOptions, TestSigstore};
use support::{
    assert_not_uploaded, fixture_image, keyless_signer, public_good_verifier, registry_client,
    stack_verifier, verify_options_for, verify_signatures,
};

const EMAIL: &str = "legacy-builder@kibaship.test";

fn start() -> TestSigstore {
    TestSigstore::start_with(SigstoreOptions {
        rekor_v1: true,
        ..Default::default()
    })
    .unwrap()
}

fn signer(stack: &TestSigstore) -> KeylessSigner {
    let services = SigningServices::from_signing_config_for(
        &std::fs::read(stack.signing_config_path()).unwrap(),
        now_unix(),
        RekorLogs::V1,
    )
    .unwrap();
    assert_eq!(services.rekor_v1_url.as_deref(), stack.rekor_v1_url());
    keyless_signer(stack, services, EMAIL)
}

fn options(stack: &TestSigstore, email: &str) -> VerifyOptions {
    verify_options_for(
        IdentityPolicy::Certificate(CertificateIdentity::exact(email, stack.issuer())),
        stack_verifier(stack),
    )
}

#[tokio::test]
async fn keyless_legacy_signature_carries_a_rekor_v1_set_and_verifies() {
    let stack = start();
    let reg = TestRegistry::start(RegistryMode::Referrers).unwrap();
    push_fixture_images(&reg).unwrap();
    let client = registry_client(&reg);
    let app = fixture_image(&reg, "app");
    let signer = signer(&stack);
    let check_root = stack_verifier(&stack);
    let signed = sign_legacy_keyless(
        &client,
        &app,
        None,
        &signer,
        BTreeMap::new(),
        Some(&check_root),
    )
    .await
    .unwrap();
    assert_eq!(signed.certificate_identity, EMAIL);
    assert_eq!(signed.certificate_oidc_issuer, stack.issuer());
    assert!(signed.checked_against_trusted_root);
    assert_eq!(signed.signed.signatures, 1);
    assert!(signed.signed.signature_tag.ends_with(".sig"));

    // The layer's annotations, as cosign writes them.
    let tag = Reference::parse(&signed.signed.signature_tag).unwrap();
    let manifest = client.fetch_manifest(&tag).await.unwrap();
    let parsed: ImageManifest = serde_json::from_slice(&manifest.bytes).unwrap();
    let ann = &parsed.layers[0].annotations;
    assert!(ann[legacy::CERTIFICATE_ANNOTATION].starts_with("-----BEGIN CERTIFICATE-----\n"));
    assert!(ann[legacy::CHAIN_ANNOTATION].contains("-----BEGIN CERTIFICATE-----"));
    let bundle_json = &ann[legacy::BUNDLE_ANNOTATION];
    assert!(
        bundle_json.starts_with(r#"{"SignedEntryTimestamp":""#)
            && bundle_json.contains(r#"","Payload":{"body":""#)
            && bundle_json.contains(r#"","integratedTime":"#)
            && bundle_json.contains(r#","logIndex":"#)
            && bundle_json.contains(r#","logID":""#),
        "{bundle_json}"
    );
    let bundle: legacy::RekorBundle = serde_json::from_str(bundle_json).unwrap();
    assert_eq!(bundle.payload.log_index, signed.log_index);
    let body: serde_json::Value =
        serde_json::from_slice(&STANDARD.decode(&bundle.payload.body).unwrap()).unwrap();
    assert_eq!(body["kind"], "hashedrekord");
    assert_eq!(body["apiVersion"], "0.0.1");
    // The trusted root's log at Rekor v1's URL (found by URL: the root's order of logs is not ours to fix)
    // has the entry's logID as its key ID.
    let root: serde_json::Value =
        serde_json::from_slice(&std::fs::read(stack.trusted_root_path()).unwrap()).unwrap();
    let v1_url = stack.rekor_v1_url().unwrap();
    let v1_log = root["tlogs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["baseUrl"].as_str() == Some(v1_url))
        .unwrap_or_else(|| panic!("no log at {v1_url} in {}", root["tlogs"]));
    assert_eq!(
        v1_log["logId"]["keyId"],
        STANDARD.encode(hex::decode(&bundle.payload.log_id).unwrap()),
        "{}",
        root["tlogs"]
    );

    // Our verifier accepts it (the SET checked), for the right identity only.
    let report = verify_signatures(&client, &app, &options(&stack, EMAIL)).await;
    assert!(report.verified(), "{report:#?}");
    assert_eq!(report.signatures.len(), 1);
    assert_eq!(report.signatures[0].layout, Layout::LegacyTag);
    let accepted = report.signatures[0].accepted().unwrap();
    assert!(
        accepted.transparency_log.contains("signed entry timestamp"),
        "{accepted:?}"
    );
    let wrong = verify_signatures(
        &client,
        &app,
        &options(&stack, "someone-else@kibaship.test"),
    )
    .await;
    assert!(!wrong.verified());

    // Re-signing appends.
    let again = sign_legacy_keyless(&client, &app, None, &signer, BTreeMap::new(), None)
        .await
        .unwrap();
    assert_eq!(again.signed.signatures, 2);
    assert!(!again.checked_against_trusted_root);

    // A tampered SET (one byte of the signature changed): that layer fails, naming the SET.
    let mut tampered = parsed.clone();
    let mut bad = bundle.clone();
    let mut set = STANDARD.decode(&bad.signed_entry_timestamp).unwrap();
    let last = set.len() - 3;
    set[last] ^= 0x01;
    bad.signed_entry_timestamp = STANDARD.encode(set);
    tampered.layers[0].annotations.insert(
        legacy::BUNDLE_ANNOTATION.into(),
        serde_json::to_string(&bad).unwrap(),
    );
    tampered.layers.truncate(1);
    client
        .push_manifest(&tag, &serde_json::to_vec(&tampered).unwrap(), OCI_MANIFEST)
        .await
        .unwrap();
    let report = verify_signatures(&client, &app, &options(&stack, EMAIL)).await;
    assert!(!report.verified(), "{report:#?}");
    let reason = report.signatures[0].rejected().unwrap().message.clone();
    assert!(
        reason.to_lowercase().contains("signed entry timestamp") || reason.contains("SET"),
        "{reason}"
    );

    // Against a foreign trusted root the self-check fails and nothing is pushed.
    let foreign = public_good_verifier();
    let other = fixture_image(&reg, "config-only");
    let signed = sign_legacy_keyless(
        &client,
        &other,
        None,
        &signer,
        BTreeMap::new(),
        Some(&foreign),
    )
    .await;
    assert_not_uploaded(signed);
    let digest = client.resolve_digest(&other, None).await.unwrap().digest;
    let other_tag = other
        .with_tag(&legacy::tag_for(&digest, legacy::SIGNATURE_TAG_SUFFIX))
        .unwrap();
    assert!(
        client
            .fetch_manifest_if_exists(&other_tag)
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn keyless_attestation_is_logged_as_a_dsse_entry_with_a_set() {
    let stack = start();
    let signer = signer(&stack);
    let digest =
        Digest::parse("sha256:7e7952b0eb3eb0e7b6e1b0a8b3d4d3c2e2d1c0b9a8f7e6d5c4b3a29180706050")
            .unwrap();
    let statement = format!(
        r#"{{"_type":"https://in-toto.io/Statement/v1","subject":[{{"name":"x","digest":{{"sha256":"{}"}}}}],"predicateType":"https://slsa.dev/provenance/v1","predicate":{{}}}}"#,
        digest.hex()
    );
    let (envelope, signed) = signer
        .sign_dsse_rekor_v1(IN_TOTO_PAYLOAD_TYPE, statement.as_bytes())
        .await
        .unwrap();
    let body: serde_json::Value =
        serde_json::from_slice(&STANDARD.decode(&signed.entry.body).unwrap()).unwrap();
    assert_eq!(body["kind"], "dsse");
    assert_eq!(body["apiVersion"], "0.0.1");
    // The entry as a bundle TransparencyLogEntry carries the SET and Rekor's inclusion proof.
    let tle = signed.entry.transparency_log_entry().unwrap();
    assert!(tle["inclusionPromise"]["signedEntryTimestamp"].is_string());
    assert!(
        tle["inclusionProof"]["checkpoint"]["envelope"].is_string(),
        "{tle}"
    );

    // As a `.att` layer, it passes our attestation check.
    let layer = SignatureLayer {
        index: 0,
        descriptor: Descriptor::of(legacy::DSSE_MEDIA_TYPE, &envelope),
        signature: Vec::new(),
        certificate_pem: Some(signed.certificate_pem.clone()),
        chain_pem: Some(signed.chain_pem.clone()),
        rekor_bundle: Some(signed.entry.rekor_bundle()),
        rfc3161_timestamp: None,
        predicate_type: Some("https://slsa.dev/provenance/v1".into()),
    };
    let subject = Subject {
        digest: &digest,
        repository: "127.0.0.1/x",
    };
    let accepted =
        check::check_attestation_layer(&layer, &envelope, subject, &options(&stack, EMAIL))
            .unwrap();
    assert!(accepted.transparency_log.contains("dsse"), "{accepted:?}");
    // Another envelope (same signature, other payload) does not match the logged entry.
    let mut other: serde_json::Value = serde_json::from_slice(&envelope).unwrap();
    other["payload"] = STANDARD
        .encode(statement.replace("provenance/v1", "provenance/v2"))
        .into();
    let other = serde_json::to_vec(&other).unwrap();
    assert!(
        check::check_attestation_layer(&layer, &other, subject, &options(&stack, EMAIL)).is_err()
    );
}

#[tokio::test]
async fn legacy_keyless_needs_a_rekor_v1_log() {
    // The default stack has only Rekor v2: a legacy-layout signer says which log is missing.
    let stack = TestSigstore::start().unwrap();
    let config = std::fs::read(stack.signing_config_path()).unwrap();
    let e =
        SigningServices::from_signing_config_for(&config, now_unix(), RekorLogs::V1).unwrap_err();
    assert!(e.to_string().contains("no Rekor v1 log"), "{e}");
    let services = SigningServices::from_signing_config(&config, now_unix()).unwrap();
    let signer = keyless_signer(&stack, services, EMAIL);
    let e = signer.sign_message_rekor_v1(b"{}").await.unwrap_err();
    assert!(
        matches!(e, KeylessError::NoRekorLog { version: 1, .. }),
        "{e}"
    );
    // The library names no flag of a front end (kibaverify and the Tekton step each have their own).
    assert!(e.to_string().contains("name one"), "{e}");
    assert!(!e.to_string().contains("--"), "{e}");
}
