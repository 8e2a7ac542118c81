//! What the cosign integration tests share: paths into `testdata/`, a client for the test registry, verification
//! options and reports, and a keyless signer on the private Sigstore.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use kibaship_cosign::identity_token::IdentityToken;
use kibaship_cosign::keyless::{KeylessSigner, now_unix};
use kibaship_cosign::legacy::{self, LayerKind};
use kibaship_cosign::signing_config::SigningServices;
use kibaship_cosign::{ImagePolicy, ImageReport, ImageVerifier, VerifyOptions};
use kibaship_oci::{ClientConfig, Descriptor, Digest, Reference, RegistryClient};
use kibaship_sigstore::{IdentityPolicy, TrustedRoot, Verifier};
use kibaship_testsupport::registry::TestRegistry;
use kibaship_testsupport::sigstore::TestSigstore;

/// The workspace's `testdata/` folder.
pub fn testdata() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata")
}

/// Sigstore's production trusted root, as saved in `testdata/`.
pub fn production_root() -> TrustedRoot {
    TrustedRoot::from_json(
        &std::fs::read(testdata().join("sigstore/trusted-roots/production-trusted_root.json"))
            .unwrap(),
    )
    .unwrap()
}

/// A layout `cosign save` wrote for slsa-github-generator's container workflow (`v2.0.0`, `v2.1.0`).
pub fn slsa_layout_dir(version: &str) -> PathBuf {
    testdata()
        .join("slsa/gha_generic_container")
        .join(version)
        .join("container_workflow_dispatch")
}

/// A blob of an OCI layout, by digest.
pub fn layout_blob(layout: &Path, digest: &Digest) -> Vec<u8> {
    std::fs::read(
        layout
            .join("blobs")
            .join(digest.algorithm().name())
            .join(digest.hex()),
    )
    .unwrap()
}

/// A client that reaches the test registry over plain HTTP and ignores the user's docker config.
pub fn registry_client(reg: &TestRegistry) -> RegistryClient {
    RegistryClient::new(ClientConfig {
        insecure_registries: vec![reg.host()],
        use_docker_config: false,
        ..ClientConfig::default()
    })
    .unwrap()
}

/// One of the fixture images `push_fixture_images` pushed: `<registry>/fixtures/<name>:v1`.
pub fn fixture_image(reg: &TestRegistry, name: &str) -> Reference {
    Reference::parse(&format!("{}/fixtures/{name}:v1", reg.host())).unwrap()
}

/// A simple-signing layer descriptor for `payload` with `signature_b64` as its signature annotation.
pub fn simple_signing_layer(payload: &[u8], signature_b64: &str) -> Descriptor {
    let mut d = Descriptor::of(legacy::SIMPLE_SIGNING_MEDIA_TYPE, payload);
    d.annotations
        .insert(legacy::SIGNATURE_ANNOTATION.into(), signature_b64.into());
    d
}

/// Options that require the transparency log, with no predicate type and no annotations asked for.
pub fn verify_options_for(identity: IdentityPolicy, verifier: Verifier) -> VerifyOptions {
    VerifyOptions {
        identity,
        verifier: Arc::new(verifier),
        now: now_unix(),
        ignore_tlog: false,
        predicate_type: None,
        annotations: Default::default(),
    }
}

/// A verifier for the private Sigstore's trusted root.
pub fn stack_verifier(stack: &TestSigstore) -> Verifier {
    let root = TrustedRoot::from_json(&std::fs::read(stack.trusted_root_path()).unwrap())
        .expect("our verifier reads the trusted root cosign wrote");
    Verifier::new(root)
}

/// A keyless signer on `services` with a token the private Sigstore's OIDC issuer minted for `email`.
pub fn keyless_signer(
    stack: &TestSigstore,
    services: SigningServices,
    email: &str,
) -> KeylessSigner {
    let token = IdentityToken::parse(&stack.mint_token(email).unwrap(), now_unix()).unwrap();
    KeylessSigner::new(reqwest::Client::new(), services, token).unwrap()
}

/// The image's signatures (`LayerKind::Signature`) or attestations, either layout, verified with `options`.
pub async fn image_report(
    client: &RegistryClient,
    image: &Reference,
    kind: LayerKind,
    options: &VerifyOptions,
) -> ImageReport {
    // Through the one verification API, with the policy these options describe.
    let mut policy = ImagePolicy::builder()
        .authority(options.identity.clone())
        .accept_without_transparency_log(options.ignore_tlog)
        .annotations(options.annotations.clone());
    if kind == LayerKind::Attestation {
        policy = policy
            .signature_not_required()
            .require_attestation(options.predicate_type.clone());
    }
    let verifier = ImageVerifier::with_verifier(client.clone(), Arc::clone(&options.verifier));
    let verdict = verifier
        .verify(image, &policy.build().unwrap(), options.now)
        .await
        .unwrap();
    match kind {
        LayerKind::Signature => verdict.signatures(),
        LayerKind::Attestation => verdict.attestations(),
    }
    .cloned()
    .unwrap()
}

/// The image's signatures (`.sig` tag or bundle referrers), verified with `options`.
pub async fn verify_signatures(
    client: &RegistryClient,
    image: &Reference,
    options: &VerifyOptions,
) -> ImageReport {
    image_report(client, image, LayerKind::Signature, options).await
}

/// A verifier for Sigstore's public-good trusted root: foreign to the private Sigstore.
pub fn public_good_verifier() -> Verifier {
    Verifier::new(TrustedRoot::public_good().unwrap())
}

/// A keyless signing whose self-check against a foreign trusted root failed, so nothing was uploaded.
pub fn assert_not_uploaded<T, E: std::fmt::Display>(signed: Result<T, E>) {
    match signed {
        Ok(_) => panic!("signing succeeded against a foreign trusted root"),
        Err(e) => assert!(e.to_string().contains("not uploaded"), "{e}"),
    }
}

/// Why each refused signature of the report was refused.
pub fn reasons(report: &ImageReport) -> Vec<String> {
    report
        .signatures
        .iter()
        .filter_map(|s| s.rejected().map(|r| r.message.clone()))
        .collect()
}

/// The report is not verified and its first reason contains `needle`.
pub fn assert_refused_with(report: &ImageReport, needle: &str) {
    assert!(!report.verified());
    assert!(reasons(report)[0].contains(needle), "{:?}", reasons(report));
}
