//! `kibaverify sign --keyless --layout legacy|both` against a real private Sigstore with Rekor v1
//! (`kibaship_testsupport::sigstore` with `rekor_v1`: rekor-server v1.5.5 on Trillian v1.8.0 and MariaDB, Fulcio
//! v1.8.8 with TesseraCT, our OIDC issuer) and a real registry: our `.sig` layer (certificate, chain, Rekor bundle
//! = SET and entry) is verified by `kibaverify verify` and by `cosign verify --new-bundle-format=false` (v3.1.3);
//! cosign's keyless legacy signature against the same stack is verified by us; a tampered SET fails both. The
//! OIDC token is planted and searched for in every output.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use kibaship_oci::Reference;
use kibaship_oci::manifest::{ImageManifest, OCI_MANIFEST};
use kibaship_testsupport::registry::{RegistryMode, TestRegistry};

mod support;
use support::{
    KeylessStack, WITH_REKOR_V1, assert_code, block_on, registry_client, run_logged as run,
    signature_tag_manifest,
};

const EMAIL: &str = "tekton-legacy@kibaship.test";
const BUNDLE_ANNOTATION: &str = "dev.sigstore.cosign/bundle";

/// The `.sig` manifest of `image_by_digest` (`registry/repo@sha256:...`).
fn sig_manifest(reg: &TestRegistry, image_by_digest: &str) -> (Reference, ImageManifest) {
    signature_tag_manifest(&reg.host(), image_by_digest, "sig")
}

#[test]
fn keyless_legacy_signatures_interoperate_with_cosign() {
    let stack = KeylessStack::start(WITH_REKOR_V1, RegistryMode::Plain, EMAIL);
    let tools = stack.tools();
    let reg = &stack.reg;
    let host = reg.host();
    let rekor_v1 = stack.sigstore.rekor_v1_url().unwrap().to_string();
    let mut t = String::new();

    // 1. We sign keyless in the legacy layout (Rekor v1 from the signing config), self-checked.
    let app = tools.fixture("app");
    let r = run(
        &mut stack.sign_keyless(&["sign", &app, "--layout", "legacy"]),
        &mut t,
    );
    assert_code(&r, 0, "kibaverify sign --keyless --layout legacy");
    let app_by_digest = r.stdout.trim().to_string();
    assert!(app_by_digest.starts_with(&format!("{host}/fixtures/app@sha256:")));
    assert!(
        r.stderr.contains("Rekor v1 entry")
            && r.stderr.contains("signed entry timestamp")
            && r.stderr.contains("verified against the trusted root"),
        "{}",
        r.stderr
    );

    let verify = |image: &str, identity: &str, t: &mut String| {
        run(&mut stack.verify(&["verify", image], identity), t)
    };
    let cosign_verify = |image: &str, identity: &str, t: &mut String| {
        run(
            &mut stack.cosign_verify(&["verify", "--new-bundle-format=false"], identity, image),
            t,
        )
    };
    let r = verify(&app, EMAIL, &mut t);
    assert_code(&r, 0, "kibaverify verify of our keyless legacy signature");
    assert!(
        r.stdout.contains(".sig layer 0") && r.stdout.contains("signed entry timestamp"),
        "{}",
        r.stdout
    );
    let r = verify(&app, "someone-else@kibaship.test", &mut t);
    assert_code(&r, 1, "kibaverify verify, wrong identity");

    // 2. cosign verifies our legacy layer (SCT and Rekor v1 SET checked: no --insecure flag).
    let r = cosign_verify(&app_by_digest, EMAIL, &mut t);
    assert_code(
        &r,
        0,
        "cosign verify --new-bundle-format=false of our signature",
    );
    assert!(
        r.stdout.contains(app_by_digest.rsplit('@').next().unwrap()),
        "{}",
        r.stdout
    );
    let r = cosign_verify(&app_by_digest, "someone-else@kibaship.test", &mut t);
    assert_ne!(r.code, 0, "cosign accepted a wrong identity: {}", r.stderr);

    // 3. cosign signs keyless in the legacy layout against the same Fulcio and Rekor v1 -> we verify.
    let other = format!("{host}/fixtures/config-only:v1");
    let other_by_digest = tools.image_by_digest(&other, &mut t);
    let r = run(
        &mut stack.cosign_sign_keyless(
            &[
                "--new-bundle-format=false",
                "--use-signing-config=false",
                "--fulcio-url",
                stack.sigstore.fulcio_url(),
                "--rekor-url",
                &rekor_v1,
            ],
            &other_by_digest,
        ),
        &mut t,
    );
    assert_code(&r, 0, "cosign sign keyless legacy");
    let r = verify(&other, EMAIL, &mut t);
    assert_code(
        &r,
        0,
        "kibaverify verify of cosign's keyless legacy signature",
    );
    let r = verify(&other, "someone-else@kibaship.test", &mut t);
    assert_code(
        &r,
        1,
        "kibaverify verify of cosign's signature, wrong identity",
    );

    // Both layers carry the same annotations and the same Rekor entry kind.
    let (_, ours) = sig_manifest(reg, &app_by_digest);
    let (_, theirs) = sig_manifest(reg, &other_by_digest);
    let keys = |m: &ImageManifest| m.layers[0].annotations.keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(&ours), keys(&theirs));
    let kind = |m: &ImageManifest| {
        let bundle: serde_json::Value =
            serde_json::from_str(&m.layers[0].annotations[BUNDLE_ANNOTATION]).unwrap();
        use base64::Engine as _;
        let body: serde_json::Value = serde_json::from_slice(
            &base64::engine::general_purpose::STANDARD
                .decode(bundle["Payload"]["body"].as_str().unwrap())
                .unwrap(),
        )
        .unwrap();
        (
            body["kind"].clone(),
            body["apiVersion"].clone(),
            bundle["Payload"]["logID"].clone(),
        )
    };
    assert_eq!(kind(&ours), kind(&theirs));

    // 4. A tampered SET: both verifiers reject the layer.
    let (tag, mut tampered) = sig_manifest(reg, &app_by_digest);
    let mut bundle: serde_json::Value =
        serde_json::from_str(&tampered.layers[0].annotations[BUNDLE_ANNOTATION]).unwrap();
    let set = bundle["SignedEntryTimestamp"].as_str().unwrap().to_string();
    let flipped = if &set[20..21] == "A" { "B" } else { "A" };
    bundle["SignedEntryTimestamp"] = format!("{}{flipped}{}", &set[..20], &set[21..]).into();
    tampered.layers[0]
        .annotations
        .insert(BUNDLE_ANNOTATION.into(), bundle.to_string());
    let client = registry_client(&host);
    block_on(client.push_manifest(&tag, &serde_json::to_vec(&tampered).unwrap(), OCI_MANIFEST))
        .unwrap();
    let r = verify(&app, EMAIL, &mut t);
    assert_code(&r, 1, "kibaverify verify with a tampered SET");
    let r = cosign_verify(&app_by_digest, EMAIL, &mut t);
    assert_ne!(r.code, 0, "cosign accepted a tampered SET: {}", r.stdout);
    assert!(r.stderr.contains("SET"), "{}", r.stderr);

    // 5. --layout both: a legacy layer (Rekor v1) and a bundle referrer (Rekor v2 + TSA) in one run.
    let both = tools.fixture("app");
    let r = run(
        &mut tools.kibaverify(&[
            "sign",
            &both,
            "--keyless",
            "--layout",
            "both",
            "--signing-config",
            &stack.signing_config,
            "--identity-token",
            &stack.token,
            "--output",
            "json",
        ]),
        &mut t,
    );
    assert_code(&r, 0, "kibaverify sign --keyless --layout both");
    let report: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(report["legacy"]["signatures"], 2, "{report}");
    assert!(report["legacy"]["rekorUuid"].is_string(), "{report}");
    assert!(report["bundle"]["referrer"].is_string(), "{report}");
    let r = verify(&app, EMAIL, &mut t);
    assert_code(&r, 0, "kibaverify verify after --layout both");
    assert!(
        r.stdout.contains("2 of 3 signatures passed"),
        "stdout:\n{}\nstderr:\n{}",
        r.stdout,
        r.stderr
    );

    // 6. cosign's OCI 1.1 mode, keyless (the same Rekor v1 layer): a referrer of the image, no `.sig` tag;
    // `cosign verify --experimental-oci11` and `kibaverify verify` accept it, and refuse another identity.
    let oci11 = tools.fixture("docker-app");
    let r = run(
        &mut stack.sign_keyless(&["sign", &oci11, "--layout", "oci-1-1"]),
        &mut t,
    );
    assert_code(&r, 0, "kibaverify sign --keyless --layout oci-1-1");
    let oci11_by_digest = r.stdout.trim().to_string();
    assert!(
        r.stderr
            .contains("an OCI 1.1 referrer found through the referrers fallback tag"),
        "{}",
        r.stderr
    );
    let tags = run(
        &mut tools.crane(&["ls", "--insecure", &format!("{host}/fixtures/docker-app")]),
        &mut t,
    );
    assert_code(&tags, 0, "crane ls");
    assert!(!tags.stdout.contains(".sig"), "{}", tags.stdout);
    let r = verify(&oci11_by_digest, EMAIL, &mut t);
    assert_code(&r, 0, "kibaverify verify of a keyless OCI 1.1 signature");
    assert!(
        r.stdout.contains("1 of 1 signatures passed"),
        "{}",
        r.stdout
    );
    let r = verify(&oci11_by_digest, "someone-else@kibaship.test", &mut t);
    assert_code(
        &r,
        1,
        "kibaverify verify of a keyless OCI 1.1 signature, another identity",
    );
    let cosign_oci11 = |identity: &str, t: &mut String| {
        run(
            &mut stack.cosign_verify(
                &[
                    "verify",
                    "--new-bundle-format=false",
                    "--experimental-oci11",
                ],
                identity,
                &oci11_by_digest,
            ),
            t,
        )
    };
    assert_code(
        &cosign_oci11(EMAIL, &mut t),
        0,
        "cosign verify --experimental-oci11 of our keyless OCI 1.1 signature",
    );
    let r = cosign_oci11("someone-else@kibaship.test", &mut t);
    assert_ne!(r.code, 0, "cosign accepted another identity: {}", r.stdout);

    // The token never appears in any output of any tool.
    stack.assert_token_not_in(&t);
}
