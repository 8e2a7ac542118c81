//! Signing and verification through a real registry (docker-registry via kibaship-testsupport): our own
//! signatures with tampering, hostile signature manifests, and real cosign keyless attestations (the layouts
//! slsa-verifier saved) verified against the production Sigstore trusted root.
#![allow(clippy::unwrap_used, clippy::expect_used)]
mod support;

use std::collections::BTreeMap;
use std::path::Path;

use kibaship_cosign::keyless::now_unix;
use kibaship_cosign::legacy::{self, LayerKind};
use kibaship_cosign::{
    Hint, ImagePolicy, ImagePolicyError, ImageVerifier, ReasonCode, Verdict, VerifyOptions,
    sign_legacy,
};
use kibaship_oci::manifest::{ImageIndex, ImageManifest, OCI_MANIFEST, is_index_media_type};
use kibaship_oci::{Descriptor, Digest, Reference, RegistryClient};
use kibaship_sign::SigningKey;
use kibaship_sigstore::{
    CertificateIdentity, GithubClaims, IdentityPolicy, Matcher, PublicKey, Verifier,
};
use kibaship_testsupport::fixtures::push_fixture_images;
use kibaship_testsupport::registry::{RegistryMode, TestRegistry};
use support::{
    assert_refused_with, fixture_image, image_report, layout_blob, production_root, reasons,
    registry_client, simple_signing_layer, slsa_layout_dir, verify_options_for, verify_signatures,
};

fn key_options(key: &SigningKey, ignore_tlog: bool) -> VerifyOptions {
    VerifyOptions {
        ignore_tlog,
        ..verify_options_for(
            IdentityPolicy::Key(PublicKey::from_pem(&key.public_key_pem().unwrap()).unwrap()),
            Verifier::new(production_root()),
        )
    }
}

/// Builds a `.sig` manifest of `layers` and pushes it, with its config, under `tag` of `image`'s repository.
async fn push_signature_manifest(
    client: &RegistryClient,
    image: &Reference,
    tag: &Reference,
    layers: &[Descriptor],
) {
    let built = legacy::build_manifest(layers);
    client.push_blob(image, &built.config).await.unwrap();
    client
        .push_manifest(tag, &built.manifest, OCI_MANIFEST)
        .await
        .unwrap();
}

/// Copies the image manifest `bytes` (its config and layer blobs, then the manifest itself) from `from`'s
/// repository to `to`.
async fn copy_manifest(client: &RegistryClient, from: &Reference, bytes: &[u8], to: &Reference) {
    let parsed: ImageManifest = serde_json::from_slice(bytes).unwrap();
    for blob in std::iter::once(&parsed.config).chain(&parsed.layers) {
        let blob = client
            .fetch_blob(from, &blob.digest, 1 << 20)
            .await
            .unwrap();
        client.push_blob(to, &blob).await.unwrap();
    }
    client.push_manifest(to, bytes, OCI_MANIFEST).await.unwrap();
}

#[tokio::test]
async fn signs_appends_and_rejects_tampering() {
    let reg = TestRegistry::start(RegistryMode::Plain).unwrap();
    let fixtures = push_fixture_images(&reg).unwrap();
    let client = registry_client(&reg);
    let app = fixture_image(&reg, "app");
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

    // A policy of several authorities accepts a signature that any one of them accepts (here the second); with
    // none that fits, the verdict is not verified and says why with the first authority's reason.
    let stranger = SigningKey::generate().unwrap();
    let pem = |k: &SigningKey| k.public_key_pem().unwrap();
    let verifier = ImageVerifier::new(client.clone(), production_root());
    let policy = |keys: &[&SigningKey]| {
        keys.iter()
            .fold(ImagePolicy::builder(), |b, k| {
                b.key_pem(pem(k).as_bytes()).unwrap()
            })
            .accept_without_transparency_log(true)
            .build()
            .unwrap()
    };
    let verdict = verifier
        .verify(&app, &policy(&[&stranger, &key]), now_unix())
        .await
        .unwrap();
    let Verdict::Verified(verified) = &verdict else {
        panic!("{verdict:?}");
    };
    assert_eq!(verified.digest(), &digest);
    assert_eq!(verified.image(), &app.with_digest(digest.clone()));
    let verdict = verifier
        .verify(&app, &policy(&[&stranger]), now_unix())
        .await
        .unwrap();
    assert_eq!(verdict.code(), Some(ReasonCode::WrongKey), "{verdict:?}");
    // A policy that could never pass is refused when built.
    assert!(matches!(
        ImagePolicy::builder().build(),
        Err(ImagePolicyError::NoAuthority)
    ));
    assert!(matches!(
        ImagePolicy::builder()
            .key_pem(pem(&key).as_bytes())
            .unwrap()
            .signature_not_required()
            .build(),
        Err(ImagePolicyError::NothingRequired)
    ));
    assert!(matches!(
        ImagePolicy::builder().key_pem(b"not a key"),
        Err(ImagePolicyError::Key { index: 0, .. })
    ));

    // Verified with the key when the missing log entry is explicitly accepted; refused otherwise.
    let ok = verify_signatures(&client, &app, &key_options(&key, true)).await;
    assert!(ok.verified());
    assert_eq!(ok.signatures.iter().filter(|s| s.verified()).count(), 2);
    let no_tlog = verify_signatures(&client, &app, &key_options(&key, false)).await;
    assert!(!no_tlog.verified());
    // Each refusal says why as a code, and what would make it pass as a hint (no front end's flag names).
    assert!(
        no_tlog.signatures.iter().all(|s| {
            s.code() == Some(ReasonCode::NoTransparencyProof)
                && s.rejected().and_then(|r| r.hint) == Some(Hint::AcceptWithoutTransparencyLog)
        }),
        "{:?}",
        no_tlog.signatures
    );
    assert_eq!(no_tlog.code(), Some(ReasonCode::NoTransparencyProof));

    // Another key.
    let stranger = SigningKey::generate().unwrap();
    let wrong = verify_signatures(&client, &app, &key_options(&stranger, true)).await;
    assert!(!wrong.verified());
    assert!(
        reasons(&wrong)
            .iter()
            .all(|r| r == "the signature does not verify with the given key"),
        "{:?}",
        reasons(&wrong)
    );

    // The `.sig` manifest of app copied to the other image's signature tag: signatures for another image.
    let other_digest = client.resolve_digest(&other, None).await.unwrap().digest;
    let other_tag = other
        .with_tag(&legacy::tag_for(&other_digest, "sig"))
        .unwrap();
    copy_manifest(&client, &app, &manifest.bytes, &other_tag).await;
    let copied = verify_signatures(&client, &other, &key_options(&key, true)).await;
    assert!(!copied.verified());
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
    push_signature_manifest(&client, &app, &tag, &[descriptor]).await;
    let tampered = verify_signatures(&client, &app, &key_options(&key, true)).await;
    assert!(!tampered.verified());
    assert_eq!(
        reasons(&tampered),
        vec!["the signature does not verify with the given key".to_string()]
    );
}

#[tokio::test]
async fn hostile_signature_manifests_fail_with_bounded_errors() {
    let reg = TestRegistry::start(RegistryMode::Plain).unwrap();
    push_fixture_images(&reg).unwrap();
    let client = registry_client(&reg);
    let app = fixture_image(&reg, "app");
    let digest = client.resolve_digest(&app, None).await.unwrap().digest;
    let tag = app.with_tag(&legacy::tag_for(&digest, "sig")).unwrap();
    let key = SigningKey::generate().unwrap();

    // 10,000 layers: refused before any blob is fetched, and signing refuses to append to it.
    let layer = simple_signing_layer(b"{}", "MEUCIQ==");
    client.push_blob(&app, b"{}").await.unwrap();
    push_signature_manifest(&client, &app, &tag, &vec![layer; 10_000]).await;
    let report = verify_signatures(&client, &app, &key_options(&key, true)).await;
    assert!(!report.verified());
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
        layers.push(simple_signing_layer(payload, "MEUCIQ=="));
    }
    push_signature_manifest(&client, &app, &tag, &layers).await;
    let report = verify_signatures(&client, &app, &key_options(&key, true)).await;
    assert!(!report.verified());
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
    let entry = |kind: &str| {
        index
            .manifests
            .iter()
            .find(|d| d.annotations.get("kind").map(String::as_str) == Some(kind))
            .unwrap()
    };
    let image = entry("dev.cosignproject.cosign/imageIndex");
    let att = entry("dev.cosignproject.cosign/atts");
    for (descriptor, tag) in [
        (image, tag.to_string()),
        (att, legacy::tag_for(&image.digest, "att")),
    ] {
        push_tree(
            client,
            repo,
            layout,
            &descriptor.digest,
            &descriptor.media_type,
        )
        .await;
        client
            .push_manifest(
                &repo.with_tag(&tag).unwrap(),
                &layout_blob(layout, &descriptor.digest),
                &descriptor.media_type,
            )
            .await
            .unwrap();
    }
    image.digest.clone()
}

fn slsa_options(identity: &str, issuer: &str, predicate_type: Option<&str>) -> VerifyOptions {
    VerifyOptions {
        predicate_type: predicate_type.map(str::to_string),
        ..verify_options_for(
            IdentityPolicy::Certificate(CertificateIdentity {
                san: Matcher::regex(identity).unwrap(),
                issuer: Matcher::Exact(issuer.to_string()),
                github: GithubClaims::default(),
            }),
            Verifier::new(production_root()),
        )
    }
}

const GITHUB_ISSUER: &str = "https://token.actions.githubusercontent.com";
const GENERATOR: &str = "^https://github.com/slsa-framework/slsa-github-generator/";

#[tokio::test]
async fn real_cosign_keyless_attestations_verify_against_the_production_root() {
    let reg = TestRegistry::start(RegistryMode::Plain).unwrap();
    let client = registry_client(&reg);
    for version in ["v2.0.0", "v2.1.0"] {
        let layout = slsa_layout_dir(version);
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
        let attestations = async |options: &VerifyOptions| {
            image_report(&client, &image, LayerKind::Attestation, options).await
        };

        let report = attestations(&slsa_options(GENERATOR, GITHUB_ISSUER, None)).await;
        assert!(report.verified(), "{version}: {report:#?}");
        for s in &report.signatures {
            assert!(s.verified(), "{version}: {s:#?}");
            let accepted = s.accepted().unwrap();
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
        let refusals = [
            (
                slsa_options(GENERATOR, "https://accounts.google.com", None),
                "certificate OIDC issuer",
            ),
            (
                slsa_options("^https://github.com/someone-else/", GITHUB_ISSUER, None),
                "subject alternative name",
            ),
            (
                slsa_options(GENERATOR, GITHUB_ISSUER, Some("https://spdx.dev/Document")),
                "is not the requested",
            ),
        ];
        for (options, reason) in &refusals {
            assert_refused_with(&attestations(options).await, reason);
        }

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
        let right = attestations(&with_repository("slsa-framework/example-package")).await;
        assert!(right.verified(), "{version}: {right:#?}");
        let wrong = attestations(&with_repository("slsa-framework/slsa-github-generator")).await;
        assert_refused_with(
            &wrong,
            "GitHub workflow repository (1.3.6.1.4.1.57264.1.5) differs: expected \"slsa-framework/slsa-github-generator\", found \"slsa-framework/example-package\"",
        );

        // A key policy on keyless attestations fails, naming why.
        let key = SigningKey::generate().unwrap();
        let keyed = attestations(&key_options(&key, false)).await;
        assert_refused_with(&keyed, "this layer is keyless");
    }
}

#[tokio::test]
async fn attestations_copied_to_another_image_are_rejected() {
    let reg = TestRegistry::start(RegistryMode::Plain).unwrap();
    let client = registry_client(&reg);
    let a = Reference::parse(&format!("{}/slsa/a", reg.host())).unwrap();
    let b = Reference::parse(&format!("{}/slsa/b", reg.host())).unwrap();
    let digest_a = push_cosign_layout(&client, &a, &slsa_layout_dir("v2.0.0"), "v1").await;
    let digest_b = push_cosign_layout(&client, &b, &slsa_layout_dir("v2.1.0"), "v1").await;
    // b's image now carries a's attestations under its own `.att` tag.
    let att_a = client
        .fetch_manifest(&a.with_tag(&legacy::tag_for(&digest_a, "att")).unwrap())
        .await
        .unwrap();
    let att_b = b.with_tag(&legacy::tag_for(&digest_b, "att")).unwrap();
    copy_manifest(&client, &a, &att_a.bytes, &att_b).await;
    let report = image_report(
        &client,
        &b.with_tag("v1").unwrap(),
        LayerKind::Attestation,
        &slsa_options(GENERATOR, GITHUB_ISSUER, None),
    )
    .await;
    assert!(!report.verified());
    for r in reasons(&report) {
        assert!(
            r.starts_with("signed for another image: the in-toto statement's subjects are"),
            "{r}"
        );
        assert!(r.contains(&digest_a.to_string()), "{r}");
    }
}

/// An image named by digest is verified by its signatures, which name that digest; its manifest is read only
/// when they do not satisfy the policy, to tell a digest the registry does not have from an unsigned one. With
/// both manifests deleted from the real registry (`crane delete`), the signed digest still verifies (cosign does
/// not resolve a digest either) and the unsigned one is `image-not-found`, not `unsigned`; while the unsigned
/// image still exists, it is `unsigned`.
#[tokio::test]
async fn a_digest_is_verified_by_its_signatures_and_its_manifest_read_only_when_they_fall_short() {
    let reg = TestRegistry::start(RegistryMode::Plain).unwrap();
    push_fixture_images(&reg).unwrap();
    let client = registry_client(&reg);
    let key = SigningKey::generate().unwrap();
    let app = fixture_image(&reg, "app");
    let signed = sign_legacy(&client, &app, None, &key, BTreeMap::new())
        .await
        .unwrap();
    let signed = app.with_digest(Digest::parse(&signed.digest).unwrap());
    let other = fixture_image(&reg, "config-only");
    let unsigned = other.with_digest(client.resolve_digest(&other, None).await.unwrap().digest);
    let verifier = ImageVerifier::new(client.clone(), production_root());
    let policy = ImagePolicy::builder()
        .key_pem(key.public_key_pem().unwrap().as_bytes())
        .unwrap()
        .accept_without_transparency_log(true)
        .build()
        .unwrap();
    let verdict = verifier
        .verify(&unsigned, &policy, now_unix())
        .await
        .unwrap();
    assert_eq!(verdict.code(), Some(ReasonCode::Unsigned), "{verdict:?}");

    let crane = kibaship_testsupport::peers::peer_binary("crane").unwrap();
    for image in [&signed, &unsigned] {
        let out = std::process::Command::new(&crane)
            .args(["delete", "--insecure", &image.to_string()])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "crane delete {image}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            client
                .resolve_digest(image, None)
                .await
                .unwrap_err()
                .is_not_found(),
            "{image} is still there"
        );
    }
    let verdict = verifier.verify(&signed, &policy, now_unix()).await.unwrap();
    let Verdict::Verified(verified) = &verdict else {
        panic!("{verdict:?}");
    };
    assert_eq!(verified.image(), &signed);
    let error = verifier
        .verify(&unsigned, &policy, now_unix())
        .await
        .unwrap_err();
    assert_eq!(error.code(), Some(ReasonCode::ImageNotFound), "{error}");
}

/// Reading until a proof (the admission webhook's way) gives the verdict reading everything gives, with fewer
/// reads: an image signed in both layouts is verified by its bundle without its `.sig` tag being read (the report
/// lists the bundle only); an image whose bundle is by another key is verified by its legacy signature, read
/// after the referrers; an unsigned image is `unsigned` either way. Read everything (the default), both layouts
/// are listed.
#[tokio::test]
async fn reading_until_a_proof_reads_the_legacy_tag_only_when_the_referrers_fall_short() {
    use kibaship_cosign::{Layout, sign_bundle};
    let reg = TestRegistry::start(RegistryMode::Plain).unwrap();
    push_fixture_images(&reg).unwrap();
    let client = registry_client(&reg);
    let key = SigningKey::generate().unwrap();
    let stranger = SigningKey::generate().unwrap();
    let both = fixture_image(&reg, "app");
    sign_legacy(&client, &both, None, &key, BTreeMap::new())
        .await
        .unwrap();
    sign_bundle(&client, &both, None, &key, BTreeMap::new())
        .await
        .unwrap();
    let legacy_only = fixture_image(&reg, "config-only");
    sign_bundle(&client, &legacy_only, None, &stranger, BTreeMap::new())
        .await
        .unwrap();
    sign_legacy(&client, &legacy_only, None, &key, BTreeMap::new())
        .await
        .unwrap();
    let unsigned = fixture_image(&reg, "docker-app");
    let policy = ImagePolicy::builder()
        .key_pem(key.public_key_pem().unwrap().as_bytes())
        .unwrap()
        .accept_without_transparency_log(true)
        .build()
        .unwrap();
    let everything = ImageVerifier::new(client.clone(), production_root());
    let until_proof = ImageVerifier::new(client.clone(), production_root()).reading_until_proof();
    // (layout, accepted) of each signature the verdict lists.
    let listed = |verdict: &Verdict| -> Vec<(Layout, bool)> {
        let Verdict::Verified(verified) = verdict else {
            panic!("{verdict:?}");
        };
        verified
            .signatures()
            .unwrap()
            .signatures
            .iter()
            .map(|s| (s.layout, s.verified()))
            .collect()
    };
    let now = now_unix();

    let verdict = until_proof.verify(&both, &policy, now).await.unwrap();
    assert_eq!(listed(&verdict), vec![(Layout::BundleReferrer, true)]);
    let verdict = everything.verify(&both, &policy, now).await.unwrap();
    assert_eq!(
        listed(&verdict),
        vec![(Layout::BundleReferrer, true), (Layout::LegacyTag, true)]
    );
    for verifier in [&until_proof, &everything] {
        let verdict = verifier.verify(&legacy_only, &policy, now).await.unwrap();
        assert_eq!(
            listed(&verdict),
            vec![(Layout::BundleReferrer, false), (Layout::LegacyTag, true)]
        );
        let verdict = verifier.verify(&unsigned, &policy, now).await.unwrap();
        assert_eq!(verdict.code(), Some(ReasonCode::Unsigned), "{verdict:?}");
    }

    // Attestations: type A as a bundle, type B in the legacy `.att` tag. A policy that requires A is satisfied
    // by the referrers alone; one that requires A and B needs the legacy tag too, and reads it.
    use kibaship_cosign::attest::{Attestation, attest_bundle, attest_legacy};
    let (a, b) = ("https://example.com/a/v1", "https://example.com/b/v1");
    let attestation = |t: &str| {
        Attestation::new(
            t,
            br#"{"n": 1}"#,
            "predicate.json",
            time::OffsetDateTime::now_utc(),
        )
        .unwrap()
    };
    attest_bundle(&client, &unsigned, None, &key, &attestation(a))
        .await
        .unwrap();
    attest_legacy(&client, &unsigned, None, &key, &attestation(b))
        .await
        .unwrap();
    let requiring = |types: &[&str]| {
        types
            .iter()
            .fold(ImagePolicy::builder(), |p, t| {
                p.require_attestation(Some(t.to_string()))
            })
            .key_pem(key.public_key_pem().unwrap().as_bytes())
            .unwrap()
            .accept_without_transparency_log(true)
            .signature_not_required()
            .build()
            .unwrap()
    };
    let attested = |verdict: &Verdict| -> Vec<(Layout, Option<String>)> {
        let Verdict::Verified(verified) = verdict else {
            panic!("{verdict:?}");
        };
        verified
            .attestations()
            .unwrap()
            .signatures
            .iter()
            .map(|s| {
                (
                    s.layout,
                    s.accepted().and_then(|a| a.predicate_type.clone()),
                )
            })
            .collect()
    };
    let verdict = until_proof
        .verify(&unsigned, &requiring(&[a]), now)
        .await
        .unwrap();
    assert_eq!(
        attested(&verdict),
        vec![(Layout::BundleReferrer, Some(a.to_string()))]
    );
    let verdict = until_proof
        .verify(&unsigned, &requiring(&[a, b]), now)
        .await
        .unwrap();
    assert_eq!(
        attested(&verdict),
        vec![
            (Layout::BundleReferrer, Some(a.to_string())),
            (Layout::LegacyTag, Some(b.to_string()))
        ]
    );
    let verdict = until_proof
        .verify(&unsigned, &requiring(&[b]), now)
        .await
        .unwrap();
    assert!(verdict.is_verified(), "{verdict:?}");
}
