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
    let review = denied.expect("the new policy never took effect");
    let message = response_of(&review)["status"]["message"].as_str().unwrap();
    assert!(
        message.contains(": wrong-identity: ")
            && message.contains("someone-else@kibaship.test")
            && message.contains(EMAIL),
        "{message}"
    );
}
