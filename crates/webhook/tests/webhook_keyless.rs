//! Keyless: an image signed by the real cosign with a Fulcio certificate from a private Sigstore on loopback
//! (Fulcio, Rekor v2, CT log, TSA, OIDC issuer), the webhook trusting that Sigstore's trusted_root.json only (no
//! TUF, nothing fetched): the right identity is admitted; another identity is refused with `wrong-identity` and
//! the claim, wanted and got in the message. The trusted root is hot-reloaded: denied under the public-good
//! root, admitted once the private one is swapped in.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use kibaship_testsupport::sigstore::TestSigstore;
use support::*;

const EMAIL: &str = "release@kibaship.test";

fn keyless_policy(world: &World, issuer: &str, subject: &str) -> String {
    format!(
        "apiVersion: kibaship.io/v1alpha1\nkind: AdmissionPolicy\npolicies:\n  - name: released\n    mode: enforce\n    images: [\"{host}/fixtures/**\"]\n    authorities:\n      - name: release-workflow\n        keyless:\n          issuer: {issuer}\n          subject: {subject}\n",
        host = world.host
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn keyless_signatures_are_judged_by_identity() {
    let sigstore = tokio::task::spawn_blocking(TestSigstore::start)
        .await
        .unwrap()
        .unwrap();
    let world = World::new();
    let d = world.dir.path();
    let token = sigstore.mint_token(EMAIL).unwrap();
    let pinned = format!(
        "{}/fixtures/config-only@{}",
        world.host,
        digest_of(d, &world.unsigned)
    );
    run(
        &mut cosign(
            d,
            &[
                "sign",
                "--signing-config",
                &sigstore.signing_config_path().display().to_string(),
                "--trusted-root",
                &sigstore.trusted_root_path().display().to_string(),
                "--identity-token",
                &token,
                "--allow-http-registry",
                "--yes",
                &pinned,
            ],
        ),
        "cosign sign (keyless)",
    );

    world.write_policy(&keyless_policy(&world, sigstore.issuer(), EMAIL));
    // First trusting Sigstore's public-good root only (the World's default): this Fulcio is not trusted.
    let running = world.start(Duration::from_secs(20)).await;
    let http = client(&world.ca_pem);
    let review = post(
        &http,
        &running,
        "/validate",
        &pod_review("k0", "prod", &[&world.unsigned]),
    )
    .await;
    assert_eq!(response_of(&review)["allowed"], false, "{review}");
    // The private Sigstore's trusted root swapped in (as a ConfigMap update): the verdict cached under the old
    // root's hash is not reused, and the image is admitted.
    let tmp = world.path("trusted_root.json.new");
    std::fs::copy(sigstore.trusted_root_path(), &tmp).unwrap();
    std::fs::rename(&tmp, world.path("trusted_root.json")).unwrap();
    let admitted = validate_until(
        &http,
        &running,
        &pod_review("k", "prod", &[&world.unsigned]),
        |r| r["allowed"] == true,
    )
    .await;
    assert!(admitted.is_some(), "the new trusted root never took effect");

    // The same signature under a policy naming someone else.
    world.write_policy(&keyless_policy(
        &world,
        sigstore.issuer(),
        "someone-else@kibaship.test",
    ));
    let denied = validate_until(
        &http,
        &running,
        &pod_review("w", "prod", &[&world.unsigned]),
        |r| r["allowed"] == false,
    )
    .await;
    assert_wrong_identity(denied, EMAIL);
}

/// A denial (once the new policy took effect) with `wrong-identity`, the identity wanted and the signer's.
fn assert_wrong_identity(denied: Option<serde_json::Value>, signer: &str) {
    let review = denied.expect("the new policy never took effect");
    let message = response_of(&review)["status"]["message"].as_str().unwrap();
    assert!(
        message.contains(": wrong-identity: ")
            && message.contains("someone-else@kibaship.test")
            && message.contains(signer),
        "{message}"
    );
}

/// kibaship's own keyless signer, in both layouts, against a private Sigstore with Rekor v1 (the legacy layout's
/// SET) and Rekor v2 (the bundle): the webhook admits what it signed for the policy's identity, refuses a
/// key-signed image under that keyless policy, and names the identity when the policy wants another.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn images_signed_keyless_by_kibaship_in_both_layouts_are_admitted() {
    use kibaship_cosign::identity_token::IdentityToken;
    use kibaship_cosign::keyless::{KeylessSigner, now_unix};
    use kibaship_cosign::signing_config::{RekorLogs, SigningServices};
    use kibaship_cosign::{ImageSigner, Layouts, Signed, sign_image};
    use kibaship_testsupport::sigstore::SigstoreOptions;

    const KIBASHIP_EMAIL: &str = "kibaship-builder@kibaship.test";
    let sigstore = tokio::task::spawn_blocking(|| {
        TestSigstore::start_with(SigstoreOptions {
            rekor_v1: true,
            ..Default::default()
        })
    })
    .await
    .unwrap()
    .unwrap();
    let world = World::new();
    let signing_config = std::fs::read(sigstore.signing_config_path()).unwrap();
    let signer = |logs: Option<RekorLogs>| {
        let services = match logs {
            Some(logs) => {
                SigningServices::from_signing_config_for(&signing_config, now_unix(), logs)
            }
            None => SigningServices::from_signing_config(&signing_config, now_unix()),
        }
        .unwrap();
        let token = IdentityToken::parse(&sigstore.mint_token(KIBASHIP_EMAIL).unwrap(), now_unix())
            .unwrap();
        KeylessSigner::new(reqwest::Client::new(), services, token).unwrap()
    };
    let registry = world.registry_client();
    let check = kibaship_sigstore::Verifier::new(
        kibaship_sigstore::TrustedRoot::from_json(
            &std::fs::read(sigstore.trusted_root_path()).unwrap(),
        )
        .unwrap(),
    );
    // The legacy layout with a Rekor v1 entry (its SET dates the certificate); the bundle layout with Rekor v2.
    let legacy_signer = signer(Some(RekorLogs::V1));
    let bundle_signer = signer(None);
    for (image, signer, layouts) in [
        (&world.unsigned, &legacy_signer, Layouts::Legacy),
        (&world.wrong_key, &bundle_signer, Layouts::Bundle),
    ] {
        let written = sign_image(
            &registry,
            &kibaship_oci::Reference::parse(image).unwrap(),
            None,
            // Each signature checked against the private Sigstore's root before it is uploaded.
            ImageSigner::Keyless {
                signer,
                check: Some(&check),
            },
            layouts,
            &Default::default(),
        )
        .await
        .unwrap();
        assert!(
            matches!(
                written.as_slice(),
                [Signed::LegacyKeyless(_)] | [Signed::BundleKeyless(_)]
            ),
            "{image}: {written:?}"
        );
    }
    std::fs::copy(
        sigstore.trusted_root_path(),
        world.path("trusted_root.json"),
    )
    .unwrap();
    world.write_policy(&keyless_policy(&world, sigstore.issuer(), KIBASHIP_EMAIL));
    let running = world.start(Duration::from_secs(30)).await;
    let http = client(&world.ca_pem);
    for (image, allowed) in [
        (&world.unsigned, true),
        (&world.wrong_key, true),
        // Signed with a cosign key only: under a keyless policy it has no signature by that identity.
        (&world.signed_bundle, false),
    ] {
        let review = post(
            &http,
            &running,
            "/validate",
            &pod_review("kb", "prod", &[image]),
        )
        .await;
        assert_eq!(
            response_of(&review)["allowed"],
            allowed,
            "{image}: {review}"
        );
    }

    world.write_policy(&keyless_policy(
        &world,
        sigstore.issuer(),
        "someone-else@kibaship.test",
    ));
    // `multiarch` also carries a key-signed bundle (no certificate, no log entry): the denial still names the
    // identity, the rejection that got furthest, whichever order the registry lists the referrers in.
    for image in [&world.unsigned, &world.wrong_key] {
        let denied = validate_until(&http, &running, &pod_review("kw", "prod", &[image]), |r| {
            r["allowed"] == false
        })
        .await;
        assert_wrong_identity(denied, KIBASHIP_EMAIL);
    }
}
