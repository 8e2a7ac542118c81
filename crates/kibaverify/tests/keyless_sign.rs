//! `kibaverify sign --keyless` against a real private Sigstore on loopback (`kibaship_testsupport::sigstore`:
//! Fulcio v1.8.8 + TesseraCT, timestamp-authority v2.1.5, rekor-tiles v2.3.0, our OIDC issuer) and a real
//! registry, checked by `kibaverify verify` and `cosign verify` (v3.1.3); and cosign's keyless signature verified
//! by us. (sigstore-python checks our keyless bundles in kibaship-cosign's `keyless_sigstore_python` test.) The OIDC token is planted and searched for in every
//! output.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use kibaship_oci::Reference;
use kibaship_testsupport::registry::{RegistryMode, TestRegistry};
use kibaship_testsupport::sigstore::SigstoreOptions;

mod support;
use support::{
    KeylessStack, assert_code, assert_exit_with_message, assert_not_leaked, block_on,
    registry_client, run_logged as run,
};

const EMAIL: &str = "tekton-builder@kibaship.test";
const SOMEONE_ELSE: &str = "someone-else@kibaship.test";

/// The bundle referrer of `image` (one expected) and the image manifest's bytes.
fn fetch_bundle_and_manifest(reg: &TestRegistry, image: &str) -> (Vec<u8>, Vec<u8>) {
    block_on(async {
        let client = registry_client(&reg.host());
        let reference = Reference::parse(image).unwrap();
        let manifest = client.fetch_manifest(&reference).await.unwrap();
        let referrers = client.list_referrers(&reference, None).await.unwrap();
        assert_eq!(
            referrers.descriptors.len(),
            1,
            "{:?}",
            referrers.descriptors
        );
        let referrer = reference.with_digest(referrers.descriptors[0].digest.clone());
        let parsed: kibaship_oci::manifest::ImageManifest =
            serde_json::from_slice(&client.fetch_manifest(&referrer).await.unwrap().bytes).unwrap();
        let layer = &parsed.layers[0];
        let bundle = client
            .fetch_blob(&reference, &layer.digest, layer.size)
            .await
            .unwrap();
        (bundle, manifest.bytes.to_vec())
    })
}

#[test]
fn keyless_signatures_interoperate_with_cosign_and_sigstore_python() {
    let stack = KeylessStack::start(SigstoreOptions::default(), RegistryMode::Referrers, EMAIL);
    let tools = stack.tools();
    let host = stack.reg.host();
    let mut t = String::new();

    // 1. We sign keyless (token from a file, as a Tekton projected token) -> we verify.
    let app = tools.fixture("app");
    let r = run(&mut stack.sign_keyless(&["sign", &app]), &mut t);
    assert_code(&r, 0, "kibaverify sign --keyless");
    let app_by_digest = r.stdout.trim().to_string();
    assert!(app_by_digest.starts_with(&format!("{host}/fixtures/app@sha256:")));
    assert!(
        r.stderr.contains(EMAIL) && r.stderr.contains("Rekor v2 log index"),
        "{}",
        r.stderr
    );
    let verify = |image: &str, identity: &str, t: &mut String| {
        run(&mut stack.verify(&["verify", image], identity), t)
    };
    let r = verify(&app, EMAIL, &mut t);
    assert_code(&r, 0, "kibaverify verify of our keyless signature");
    assert!(
        r.stdout.starts_with(&format!("VERIFIED {app_by_digest}")),
        "{}",
        r.stdout
    );
    let r = verify(&app, SOMEONE_ELSE, &mut t);
    assert_exit_with_message(&r, 1, "expected \"someone-else@kibaship.test\"");

    // 2. cosign verifies our keyless signature (SCT, TSA, Rekor v2 checked: no --insecure flag).
    let cosign_verify = |image: &str, identity: &str, t: &mut String| {
        run(&mut stack.cosign_verify(&["verify"], identity, image), t)
    };
    let r = cosign_verify(&app_by_digest, EMAIL, &mut t);
    assert_code(&r, 0, "cosign verify of our keyless signature");
    assert!(
        r.stdout.contains(app_by_digest.rsplit('@').next().unwrap()),
        "{}",
        r.stdout
    );
    let r = cosign_verify(&app_by_digest, SOMEONE_ELSE, &mut t);
    assert_ne!(r.code, 0, "cosign accepted a wrong identity: {}", r.stderr);

    // 3. cosign signs keyless against the same stack -> we verify.
    let other = tools.fixture("config-only");
    let other_by_digest = tools.image_by_digest(&other, &mut t);
    let r = run(
        &mut stack.cosign_sign_keyless(
            &["--signing-config", &stack.signing_config],
            &other_by_digest,
        ),
        &mut t,
    );
    assert_code(&r, 0, "cosign sign keyless");
    let r = verify(&other, EMAIL, &mut t);
    assert_code(&r, 0, "kibaverify verify of cosign's keyless signature");
    let r = verify(&other, SOMEONE_ELSE, &mut t);
    assert_code(
        &r,
        1,
        "kibaverify verify of cosign's signature, wrong identity",
    );

    // Both bundles sign the same statement shape (cosign's `cosign/sign/v1`, subject without a `name`) and log
    // the same Rekor v2 entry kind.
    let statement_of = |image: &str| {
        let (bundle, _) = fetch_bundle_and_manifest(&stack.reg, image);
        let bundle: serde_json::Value = serde_json::from_slice(&bundle).unwrap();
        use base64::Engine as _;
        let payload = base64::engine::general_purpose::STANDARD
            .decode(bundle["dsseEnvelope"]["payload"].as_str().unwrap())
            .unwrap();
        let statement: serde_json::Value = serde_json::from_slice(&payload).unwrap();
        let kind = bundle["verificationMaterial"]["tlogEntries"][0]["kindVersion"].clone();
        (statement, kind)
    };
    let (ours, our_kind) = statement_of(&app_by_digest);
    let (theirs, their_kind) = statement_of(&other_by_digest);
    assert_eq!(ours["predicateType"], theirs["predicateType"]);
    assert_eq!(ours["predicateType"], "https://sigstore.dev/cosign/sign/v1");
    assert!(ours["subject"][0].get("name").is_none() && theirs["subject"][0].get("name").is_none());
    assert_eq!(our_kind, their_kind);
    assert_eq!(our_kind["kind"], "hashedrekord");

    // The token never appears in any output of any tool.
    stack.assert_token_not_in(&t);
}

#[test]
fn keyless_bad_input_is_refused_and_the_env_token_signs_on_a_fallback_registry() {
    let stack = KeylessStack::start(SigstoreOptions::default(), RegistryMode::Plain, EMAIL);
    let tools = stack.tools();
    let app = tools.fixture("app");
    let token = stack.token.as_str();
    let signing_config = stack.signing_config.as_str();
    let mut t = String::new();

    // A forged token: the real one with another signature.
    let mut parts: Vec<&str> = token.split('.').collect();
    let forged_sig = "Zm9yZ2VkLXNpZ25hdHVyZS1wbGFudGVk";
    parts[2] = forged_sig;
    let forged = parts.join(".");
    // A token for another audience (e.g. a service-account token projected for the API server).
    let path = stack.tmp.path().join("wrong-aud");
    let mut claims: serde_json::Value = {
        use base64::Engine as _;
        let part = token.split('.').nth(1).unwrap();
        serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(part)
                .unwrap(),
        )
        .unwrap()
    };
    claims["aud"] = serde_json::json!("https://kubernetes.default.svc");
    let wrong_aud = {
        use base64::Engine as _;
        format!(
            "{}.{}.{}",
            parts[0],
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(claims.to_string()),
            forged_sig
        )
    };
    std::fs::write(&path, &wrong_aud).unwrap();
    let wrong_aud_file = path.display().to_string();

    // Each is refused with exit 2, saying why; no token is echoed.
    let cases: [(Option<&str>, &[&str], &str); 5] = [
        // A forged token in SIGSTORE_ID_TOKEN: Fulcio refuses it.
        (
            Some(&forged),
            &["--signing-config", signing_config],
            "Fulcio refused",
        ),
        // The token as a flag, with the legacy layout and a signing config without a Rekor v1 log (this stack
        // has only Rekor v2): refused before anything is sent.
        (
            None,
            &[
                "--layout",
                "legacy",
                "--signing-config",
                signing_config,
                "--identity-token",
                token,
            ],
            "no Rekor v1 log",
        ),
        // No token at all.
        (
            None,
            &["--signing-config", signing_config],
            "SIGSTORE_ID_TOKEN",
        ),
        // A token for another audience.
        (
            None,
            &[
                "--signing-config",
                signing_config,
                "--identity-token-file",
                &wrong_aud_file,
            ],
            "audience",
        ),
        // No TSA: the URL flags alone name Fulcio and Rekor only.
        (
            None,
            &[
                "--fulcio-url",
                stack.sigstore.fulcio_url(),
                "--rekor-url",
                stack.sigstore.rekor_url(),
                "--identity-token",
                token,
            ],
            "timestamp authority",
        ),
    ];
    for (env_token, flags, message) in cases {
        let mut c = tools.kibaverify(&["sign", &app, "--keyless"]);
        c.args(flags);
        if let Some(env_token) = env_token {
            c.env("SIGSTORE_ID_TOKEN", env_token);
        }
        let r = run(&mut c, &mut t);
        assert_exit_with_message(&r, 2, message);
    }

    // The token from SIGSTORE_ID_TOKEN, on a registry without the referrers API (fallback tag): signed,
    // verified by us and by cosign.
    let r = run(
        tools
            .kibaverify(&[
                "sign",
                &app,
                "--keyless",
                "--signing-config",
                signing_config,
            ])
            .env("SIGSTORE_ID_TOKEN", token),
        &mut t,
    );
    assert_code(&r, 0, "keyless sign with SIGSTORE_ID_TOKEN");
    assert!(r.stderr.contains("referrers fallback tag"), "{}", r.stderr);
    let app_by_digest = r.stdout.trim().to_string();
    let r = run(&mut stack.verify(&["verify", &app], EMAIL), &mut t);
    assert_code(&r, 0, "kibaverify verify on the fallback tag");
    let r = run(
        &mut stack.cosign_verify(&["verify"], EMAIL, &app_by_digest),
        &mut t,
    );
    assert_code(&r, 0, "cosign verify on the fallback tag");

    for secret in [token, &forged, &wrong_aud] {
        assert_not_leaked(&t, secret, "a planted token");
    }
    assert_not_leaked(&t, forged_sig, "the forged signature");
    stack.assert_token_not_in(&t);
}
