//! Signing and verification through a real registry (docker-registry via kibaship-testsupport): our own
//! signatures with tampering, hostile signature manifests, and real cosign keyless attestations (the layouts
//! slsa-verifier saved) verified against the production Sigstore trusted root.
#![allow(clippy::unwrap_used, clippy::expect_used)]
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use kibaship_cosign::legacy::{self, LayerKind};
use kibaship_cosign::{ImageReport, VerifyOptions, sign_legacy, verify_image};
use kibaship_oci::manifest::{ImageIndex, ImageManifest, OCI_MANIFEST, is_index_media_type};
use kibaship_oci::{ClientConfig, Digest, Reference, RegistryClient};
use kibaship_sign::SigningKey;
use kibaship_sigstore::{
    CertificateIdentity, GithubClaims, IdentityPolicy, Matcher, PublicKey, TrustedRoot, Verifier,
};
use kibaship_testsupport::fixtures::push_fixture_images;
use kibaship_testsupport::registry::{RegistryMode, TestRegistry};

fn testdata() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata")
}

fn client(reg: &TestRegistry) -> RegistryClient {
    RegistryClient::new(ClientConfig {
        insecure_registries: vec![reg.host()],
        use_docker_config: false,
        ..ClientConfig::default()
    })
    .unwrap()
}

fn production_root() -> TrustedRoot {
    TrustedRoot::from_json(
        &std::fs::read(testdata().join("sigstore/trusted-roots/production-trusted_root.json"))
            .unwrap(),
    )
    .unwrap()
}

fn key_options(key: &SigningKey, ignore_tlog: bool) -> VerifyOptions {
    VerifyOptions {
        identity: IdentityPolicy::Key(PublicKey::from_pem(&key.public_key_pem().unwrap()).unwrap()),
        verifier: Verifier::new(production_root()),
        ignore_tlog,
        predicate_type: None,
        annotations: Default::default(),
    }
}

fn reasons(report: &ImageReport) -> Vec<String> {
    report
        .signatures
        .iter()
        .filter_map(|s| s.reason.clone())
        .collect()
}

#[tokio::test]
async fn signs_appends_and_rejects_tampering() {
    let reg = TestRegistry::start(RegistryMode::Plain).unwrap();
    let fixtures = push_fixture_images(&reg).unwrap();
    let client = client(&reg);
    let app = Reference::parse(&format!("{}/fixtures/app:v1", reg.host())).unwrap();
    let other = Reference::parse(&fixtures.iter().find(|f| f.is_index).unwrap().reference).unwrap();
    let key = SigningKey::generate().unwrap();

    let first = sign_legacy(&client, &app, None, &key, BTreeMap::new())
        .await
        .unwrap();
    assert_eq!(first.signatures, 1);
    let mut ann = BTreeMap::new();
    ann.insert("build".to_string(), "42".to_string());
    let second = sign_legacy(&client, &app, None, &key, ann).await.unwrap();
    assert_eq!(second.signatures, 2, "re-signing appends");
    assert_eq!(first.digest, second.digest);

    // The payload names the repository as cosign does and the digest the tag resolved to.
    let digest = Digest::parse(&first.digest).unwrap();
    let tag = app.with_tag(&legacy::tag_for(&digest, "sig")).unwrap();
    let manifest = client.fetch_manifest(&tag).await.unwrap();
    let layers = legacy::read_manifest(&manifest.bytes, LayerKind::Signature).unwrap();
    let payload = client
        .fetch_blob(&app, &layers[1].descriptor.digest, 4096)
        .await
        .unwrap();
    let text = String::from_utf8(payload).unwrap();
    assert_eq!(
        text,
        format!(
            "{{\"critical\":{{\"identity\":{{\"docker-reference\":\"{}/fixtures/app\"}},\"image\":{{\"docker-manifest-digest\":\"{digest}\"}},\"type\":\"cosign container image signature\"}},\"optional\":{{\"build\":\"42\"}}}}",
            reg.host()
        )
    );

    // Verified with the key when the missing log entry is explicitly accepted; refused otherwise.
    let ok = verify_image(
        &client,
        &app,
        None,
        LayerKind::Signature,
        &key_options(&key, true),
    )
    .await
    .unwrap();
    assert!(ok.verified);
    assert_eq!(ok.signatures.iter().filter(|s| s.verified).count(), 2);
    let no_tlog = verify_image(
        &client,
        &app,
        None,
        LayerKind::Signature,
        &key_options(&key, false),
    )
    .await
    .unwrap();
    assert!(!no_tlog.verified);
    assert!(
        reasons(&no_tlog)
            .iter()
            .all(|r| r.contains("--insecure-ignore-tlog")),
        "{:?}",
        reasons(&no_tlog)
    );

    // Another key.
    let stranger = SigningKey::generate().unwrap();
    let wrong = verify_image(
        &client,
        &app,
        None,
        LayerKind::Signature,
        &key_options(&stranger, true),
    )
    .await
    .unwrap();
    assert!(!wrong.verified);
    assert!(
        reasons(&wrong)
            .iter()
            .all(|r| r == "the signature does not verify with the given key"),
        "{:?}",
        reasons(&wrong)
    );

    // The `.sig` manifest of app copied to the other image's signature tag: signatures for another image.
    let other_digest = client.resolve_digest(&other, None).await.unwrap().digest;
    for layer in &layers {
        let blob = client
            .fetch_blob(&app, &layer.descriptor.digest, 4096)
            .await
            .unwrap();
        client.push_blob(&other, &blob).await.unwrap();
    }
    let config: ImageManifest = serde_json::from_slice(&manifest.bytes).unwrap();
    let config_blob = client
        .fetch_blob(&app, &config.config.digest, 4096)
        .await
        .unwrap();
    client.push_blob(&other, &config_blob).await.unwrap();
    let other_tag = other
        .with_tag(&legacy::tag_for(&other_digest, "sig"))
        .unwrap();
    client
        .push_manifest(&other_tag, &manifest.bytes, OCI_MANIFEST)
        .await
        .unwrap();
    let copied = verify_image(
        &client,
        &other,
        None,
        LayerKind::Signature,
        &key_options(&key, true),
    )
    .await
    .unwrap();
    assert!(!copied.verified);
    for r in reasons(&copied) {
        assert!(
            r.starts_with("signature for another image: the payload signs")
                && r.contains(&first.digest),
            "{r}"
        );
    }

    // An altered signature (one byte flipped) under the app's own tag.
    let mut altered = layers[0].clone();
    let last = altered.signature.len() - 2;
    altered.signature[last] ^= 1;
    let mut descriptor = altered.descriptor.clone();
    descriptor.annotations = altered.annotations();
    let built = legacy::build_manifest(&[descriptor]);
    client.push_blob(&app, &built.config).await.unwrap();
    client
        .push_manifest(&tag, &built.manifest, OCI_MANIFEST)
        .await
        .unwrap();
    let tampered = verify_image(
        &client,
        &app,
        None,
        LayerKind::Signature,
        &key_options(&key, true),
    )
    .await
    .unwrap();
    assert!(!tampered.verified);
    assert_eq!(
        reasons(&tampered),
        vec!["the signature does not verify with the given key".to_string()]
    );
}

#[tokio::test]
async fn hostile_signature_manifests_fail_with_bounded_errors() {
    let reg = TestRegistry::start(RegistryMode::Plain).unwrap();
    push_fixture_images(&reg).unwrap();
    let client = client(&reg);
    let app = Reference::parse(&format!("{}/fixtures/app:v1", reg.host())).unwrap();
    let digest = client.resolve_digest(&app, None).await.unwrap().digest;
    let tag = app.with_tag(&legacy::tag_for(&digest, "sig")).unwrap();
    let key = SigningKey::generate().unwrap();

    // 10,000 layers: refused before any blob is fetched, and signing refuses to append to it.
    let mut layer = kibaship_oci::Descriptor::of(legacy::SIMPLE_SIGNING_MEDIA_TYPE, b"{}");
    layer
        .annotations
        .insert(legacy::SIGNATURE_ANNOTATION.into(), "MEUCIQ==".into());
    client.push_blob(&app, b"{}").await.unwrap();
    let built = legacy::build_manifest(&vec![layer.clone(); 10_000]);
    client.push_blob(&app, &built.config).await.unwrap();
    client
        .push_manifest(&tag, &built.manifest, OCI_MANIFEST)
        .await
        .unwrap();
    let report = verify_image(
        &client,
        &app,
        None,
        LayerKind::Signature,
        &key_options(&key, true),
    )
    .await
    .unwrap();
    assert!(!report.verified);
    assert_eq!(
        reasons(&report),
        vec!["signature manifest has 10000 layers, more than the 256 accepted".to_string()]
    );
    let err = sign_legacy(&client, &app, None, &key, BTreeMap::new())
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("refusing to overwrite it"),
        "{err}"
    );

    // A payload of another type, and one that is not a simple-signing payload at all.
    let wrong_type = format!(
        "{{\"critical\":{{\"identity\":{{\"docker-reference\":\"x\"}},\"image\":{{\"docker-manifest-digest\":\"{digest}\"}},\"type\":\"atomic container signature\"}},\"optional\":null}}"
    );
    let mut layers = Vec::new();
    for payload in [wrong_type.as_bytes(), b"{\"critical\":{}}".as_slice()] {
        client.push_blob(&app, payload).await.unwrap();
        let mut d = kibaship_oci::Descriptor::of(legacy::SIMPLE_SIGNING_MEDIA_TYPE, payload);
        d.annotations
            .insert(legacy::SIGNATURE_ANNOTATION.into(), "MEUCIQ==".into());
        layers.push(d);
    }
    let built = legacy::build_manifest(&layers);
    client.push_blob(&app, &built.config).await.unwrap();
    client
        .push_manifest(&tag, &built.manifest, OCI_MANIFEST)
        .await
        .unwrap();
    let report = verify_image(
        &client,
        &app,
        None,
        LayerKind::Signature,
        &key_options(&key, true),
    )
    .await
    .unwrap();
    assert!(!report.verified);
    let r = reasons(&report);
    assert_eq!(r.len(), 2);
    assert_eq!(
        r[0],
        "simple-signing payload has critical.type `atomic container signature`, expected `cosign container image signature`"
    );
    assert!(
        r[1].starts_with("simple-signing payload is malformed"),
        "{}",
        r[1]
    );
}

fn layout_dir(version: &str) -> PathBuf {
    testdata()
        .join("slsa/gha_generic_container")
        .join(version)
        .join("container_workflow_dispatch")
}

fn layout_blob(layout: &Path, digest: &Digest) -> Vec<u8> {
    std::fs::read(
        layout
            .join("blobs")
            .join(digest.algorithm().name())
            .join(digest.hex()),
    )
    .unwrap()
}

/// Pushes a manifest (and, recursively, what it references) from an OCI layout, by digest.
async fn push_tree(
    client: &RegistryClient,
    repo: &Reference,
    layout: &Path,
    digest: &Digest,
    media_type: &str,
) {
    let bytes = layout_blob(layout, digest);
    if is_index_media_type(media_type) {
        let index: ImageIndex = serde_json::from_slice(&bytes).unwrap();
        for child in &index.manifests {
            Box::pin(push_tree(
                client,
                repo,
                layout,
                &child.digest,
                &child.media_type,
            ))
            .await;
        }
    } else {
        let manifest: ImageManifest = serde_json::from_slice(&bytes).unwrap();
        for blob in std::iter::once(&manifest.config).chain(&manifest.layers) {
            client
                .push_blob(repo, &layout_blob(layout, &blob.digest))
                .await
                .unwrap();
        }
    }
    client
        .push_manifest(&repo.with_digest(digest.clone()), &bytes, media_type)
        .await
        .unwrap();
}

/// Pushes a layout `cosign save` wrote as cosign lays it out in a registry: the image index under `tag`, the
/// attestation manifest under `sha256-<hex>.att`. Returns the image's digest.
async fn push_cosign_layout(
    client: &RegistryClient,
    repo: &Reference,
    layout: &Path,
    tag: &str,
) -> Digest {
    let index: ImageIndex =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let kind =
        |d: &kibaship_oci::Descriptor| d.annotations.get("kind").cloned().unwrap_or_default();
    let image = index
        .manifests
        .iter()
        .find(|d| kind(d) == "dev.cosignproject.cosign/imageIndex")
        .unwrap();
    push_tree(client, repo, layout, &image.digest, &image.media_type).await;
    let bytes = layout_blob(layout, &image.digest);
    client
        .push_manifest(&repo.with_tag(tag).unwrap(), &bytes, &image.media_type)
        .await
        .unwrap();
    let att = index
        .manifests
        .iter()
        .find(|d| kind(d) == "dev.cosignproject.cosign/atts")
        .unwrap();
    push_tree(client, repo, layout, &att.digest, &att.media_type).await;
    let att_bytes = layout_blob(layout, &att.digest);
    client
        .push_manifest(
            &repo
                .with_tag(&legacy::tag_for(&image.digest, "att"))
                .unwrap(),
            &att_bytes,
            &att.media_type,
        )
        .await
        .unwrap();
    image.digest.clone()
}

fn slsa_options(identity: &str, issuer: &str, predicate_type: Option<&str>) -> VerifyOptions {
    VerifyOptions {
        identity: IdentityPolicy::Certificate(CertificateIdentity {
            san: Matcher::regex(identity).unwrap(),
            issuer: Matcher::Exact(issuer.to_string()),
            github: GithubClaims::default(),
        }),
        verifier: Verifier::new(production_root()),
        ignore_tlog: false,
        predicate_type: predicate_type.map(str::to_string),
        annotations: Default::default(),
    }
}

const GITHUB_ISSUER: &str = "https://token.actions.githubusercontent.com";
const GENERATOR: &str = "^https://github.com/slsa-framework/slsa-github-generator/";

#[tokio::test]
async fn real_cosign_keyless_attestations_verify_against_the_production_root() {
    let reg = TestRegistry::start(RegistryMode::Plain).unwrap();
    let client = client(&reg);
    for version in ["v2.0.0", "v2.1.0"] {
        let layout = layout_dir(version);
        let repo = Reference::parse(&format!(
            "{}/slsa/{}",
            reg.host(),
            version.replace('.', "-")
        ))
        .unwrap();
        let digest = push_cosign_layout(&client, &repo, &layout, "v1").await;
        let expected = std::fs::read_to_string(layout.with_extension("digest")).unwrap();
        assert_eq!(digest.to_string(), expected.trim());
        let image = repo.with_tag("v1").unwrap();

        let report = verify_image(
            &client,
            &image,
            None,
            LayerKind::Attestation,
            &slsa_options(GENERATOR, GITHUB_ISSUER, None),
        )
        .await
        .unwrap();
        assert!(report.verified, "{version}: {report:#?}");
        for s in &report.signatures {
            assert!(s.verified, "{version}: {s:#?}");
            let accepted = s.accepted.as_ref().unwrap();
            assert!(
                accepted.signer.contains("slsa-github-generator"),
                "{}",
                accepted.signer
            );
            assert!(
                accepted
                    .transparency_log
                    .contains("signed entry timestamp verified")
            );
            assert!(
                accepted
                    .predicate_type
                    .as_deref()
                    .unwrap()
                    .starts_with("https://slsa.dev/provenance/")
            );
        }

        // Wrong issuer, wrong identity, a predicate type it does not have: not verified, with the reason.
        let wrong_issuer = verify_image(
            &client,
            &image,
            None,
            LayerKind::Attestation,
            &slsa_options(GENERATOR, "https://accounts.google.com", None),
        )
        .await
        .unwrap();
        assert!(!wrong_issuer.verified);
        assert!(
            reasons(&wrong_issuer)[0].contains("certificate OIDC issuer"),
            "{:?}",
            reasons(&wrong_issuer)
        );
        let wrong_identity = verify_image(
            &client,
            &image,
            None,
            LayerKind::Attestation,
            &slsa_options("^https://github.com/someone-else/", GITHUB_ISSUER, None),
        )
        .await
        .unwrap();
        assert!(!wrong_identity.verified);
        assert!(
            reasons(&wrong_identity)[0].contains("subject alternative name"),
            "{:?}",
            reasons(&wrong_identity)
        );
        let wrong_type = verify_image(
            &client,
            &image,
            None,
            LayerKind::Attestation,
            &slsa_options(GENERATOR, GITHUB_ISSUER, Some("https://spdx.dev/Document")),
        )
        .await
        .unwrap();
        assert!(!wrong_type.verified);
        assert!(
            reasons(&wrong_type)[0].contains("is not the requested"),
            "{:?}",
            reasons(&wrong_type)
        );

        // cosign's --certificate-github-workflow-repository claim (1.3.6.1.4.1.57264.1.5): the right one passes,
        // another fails naming the claim and both values.
        let with_repository = |repository: &str| {
            let mut o = slsa_options(GENERATOR, GITHUB_ISSUER, None);
            let IdentityPolicy::Certificate(identity) = &mut o.identity else {
                unreachable!("slsa_options is keyless")
            };
            identity.github.workflow_repository = Some(Matcher::Exact(repository.to_string()));
            o
        };
        let right = verify_image(
            &client,
            &image,
            None,
            LayerKind::Attestation,
            &with_repository("slsa-framework/example-package"),
        )
        .await
        .unwrap();
        assert!(right.verified, "{version}: {right:#?}");
        let wrong = verify_image(
            &client,
            &image,
            None,
            LayerKind::Attestation,
            &with_repository("slsa-framework/slsa-github-generator"),
        )
        .await
        .unwrap();
        assert!(!wrong.verified);
        assert!(
            reasons(&wrong)[0].contains(
                "GitHub workflow repository (1.3.6.1.4.1.57264.1.5) differs: expected \"slsa-framework/slsa-github-generator\", found \"slsa-framework/example-package\""
            ),
            "{:?}",
            reasons(&wrong)
        );

        // A key policy on keyless attestations fails, naming why.
        let key = SigningKey::generate().unwrap();
        let keyed = verify_image(
            &client,
            &image,
            None,
            LayerKind::Attestation,
            &key_options(&key, false),
        )
        .await
        .unwrap();
        assert!(!keyed.verified);
        assert!(
            reasons(&keyed)[0].contains("this layer is keyless"),
            "{:?}",
            reasons(&keyed)
        );
    }
}

#[tokio::test]
async fn attestations_copied_to_another_image_are_rejected() {
    let reg = TestRegistry::start(RegistryMode::Plain).unwrap();
    let client = client(&reg);
    let a = Reference::parse(&format!("{}/slsa/a", reg.host())).unwrap();
    let b = Reference::parse(&format!("{}/slsa/b", reg.host())).unwrap();
    let digest_a = push_cosign_layout(&client, &a, &layout_dir("v2.0.0"), "v1").await;
    let digest_b = push_cosign_layout(&client, &b, &layout_dir("v2.1.0"), "v1").await;
    // b's image now carries a's attestations under its own `.att` tag.
    let att_a = client
        .fetch_manifest(&a.with_tag(&legacy::tag_for(&digest_a, "att")).unwrap())
        .await
        .unwrap();
    let parsed: ImageManifest = serde_json::from_slice(&att_a.bytes).unwrap();
    for blob in std::iter::once(&parsed.config).chain(&parsed.layers) {
        let bytes = client.fetch_blob(&a, &blob.digest, 1 << 20).await.unwrap();
        client.push_blob(&b, &bytes).await.unwrap();
    }
    client
        .push_manifest(
            &b.with_tag(&legacy::tag_for(&digest_b, "att")).unwrap(),
            &att_a.bytes,
            OCI_MANIFEST,
        )
        .await
        .unwrap();
    let report = verify_image(
        &client,
        &b.with_tag("v1").unwrap(),
        None,
        LayerKind::Attestation,
        &slsa_options(GENERATOR, GITHUB_ISSUER, None),
    )
    .await
    .unwrap();
    assert!(!report.verified);
    for r in reasons(&report) {
        assert!(
            r.starts_with("signed for another image: the in-toto statement's subjects are"),
            "{r}"
        );
        assert!(r.contains(&digest_a.to_string()), "{r}");
    }
}
