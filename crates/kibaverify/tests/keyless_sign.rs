//! `kibaverify sign --keyless` against a real private Sigstore on loopback (`kibaship_testsupport::sigstore`:
//! Fulcio v1.8.8 + TesseraCT, timestamp-authority v2.1.5, rekor-tiles v2.3.0, our OIDC issuer) and a real
//! registry, checked by `kibaverify verify` and `cosign verify` (v3.1.3); and cosign's keyless signature verified
//! by us. (sigstore-python checks our keyless bundles in kibaship-cosign's `keyless_sigstore_python` test.) The OIDC token is planted and searched for in every
//! output.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;

use kibaship_oci::{ClientConfig, Reference, RegistryClient};
use kibaship_testsupport::fixtures::push_fixture_images;
use kibaship_testsupport::registry::{RegistryMode, TestRegistry};
use kibaship_testsupport::sigstore::TestSigstore;

mod support;
use support::{BIN, assert_code, cosign, run_logged as run};

const EMAIL: &str = "tekton-builder@kibaship.test";

fn kibaverify(dir: &Path, reg: &TestRegistry, args: &[&str]) -> Command {
    let mut c = Command::new(BIN);
    c.current_dir(dir)
        .env_remove("SIGSTORE_ID_TOKEN")
        .env("DOCKER_CONFIG", dir.join("no-docker-config"))
        .args(args)
        .args(["--insecure-registry", &reg.host()]);
    c
}

/// The bundle referrer of `image` (one expected) and the image manifest's bytes.
fn fetch_bundle_and_manifest(reg: &TestRegistry, image: &str) -> (Vec<u8>, Vec<u8>) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let client = RegistryClient::new(ClientConfig {
            insecure_registries: vec![reg.host()],
            use_docker_config: false,
            ..ClientConfig::default()
        })
        .unwrap();
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
    let stack = TestSigstore::start().unwrap();
    let reg = TestRegistry::start(RegistryMode::Referrers).unwrap();
    push_fixture_images(&reg).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let host = reg.host();
    let token = stack.mint_token(EMAIL).unwrap();
    let token_file = dir.join("token");
    std::fs::write(&token_file, format!("{token}\n")).unwrap();
    let trusted_root = stack.trusted_root_path().display().to_string();
    let signing_config = stack.signing_config_path().display().to_string();
    let issuer = stack.issuer().to_string();
    let mut t = String::new();

    // 1. We sign keyless (token from a file, as a Tekton projected token) -> we verify.
    let app = format!("{host}/fixtures/app:v1");
    let r = run(
        &mut kibaverify(
            dir,
            &reg,
            &[
                "sign",
                &app,
                "--keyless",
                "--signing-config",
                &signing_config,
                "--identity-token-file",
                &token_file.display().to_string(),
                "--trusted-root",
                &trusted_root,
            ],
        ),
        &mut t,
    );
    assert_code(&r, 0, "kibaverify sign --keyless");
    let app_by_digest = r.stdout.trim().to_string();
    assert!(app_by_digest.starts_with(&format!("{host}/fixtures/app@sha256:")));
    assert!(
        r.stderr.contains(EMAIL) && r.stderr.contains("Rekor v2 log index"),
        "{}",
        r.stderr
    );
    let verify = |image: &str, identity: &str, t: &mut String| {
        run(
            &mut kibaverify(
                dir,
                &reg,
                &[
                    "verify",
                    image,
                    "--certificate-identity",
                    identity,
                    "--certificate-oidc-issuer",
                    &issuer,
                    "--trusted-root",
                    &trusted_root,
                ],
            ),
            t,
        )
    };
    let r = verify(&app, EMAIL, &mut t);
    assert_code(&r, 0, "kibaverify verify of our keyless signature");
    assert!(
        r.stdout.starts_with(&format!("VERIFIED {app_by_digest}")),
        "{}",
        r.stdout
    );
    let r = verify(&app, "someone-else@kibaship.test", &mut t);
    assert_code(&r, 1, "kibaverify verify with a wrong identity");
    assert!(
        r.stderr.contains("expected \"someone-else@kibaship.test\""),
        "stdout:\n{}\nstderr:\n{}",
        r.stdout,
        r.stderr
    );

    // 2. cosign verifies our keyless signature (SCT, TSA, Rekor v2 checked: no --insecure flag).
    let cosign_verify = |image: &str, identity: &str, t: &mut String| {
        run(
            &mut cosign(
                dir,
                &[
                    "verify",
                    "--trusted-root",
                    &trusted_root,
                    "--certificate-identity",
                    identity,
                    "--certificate-oidc-issuer",
                    &issuer,
                    "--allow-http-registry",
                    image,
                ],
            ),
            t,
        )
    };
    let r = cosign_verify(&app_by_digest, EMAIL, &mut t);
    assert_code(&r, 0, "cosign verify of our keyless signature");
    assert!(
        r.stdout.contains(app_by_digest.rsplit('@').next().unwrap()),
        "{}",
        r.stdout
    );
    let r = cosign_verify(&app_by_digest, "someone-else@kibaship.test", &mut t);
    assert_ne!(r.code, 0, "cosign accepted a wrong identity: {}", r.stderr);

    // 3. cosign signs keyless against the same stack -> we verify.
    let other = format!("{host}/fixtures/config-only:v1");
    let r = run(&mut kibaverify(dir, &reg, &["digest", &other]), &mut t);
    assert_code(&r, 0, "kibaverify digest");
    let other_by_digest = r.stdout.trim().to_string();
    let r = run(
        &mut cosign(
            dir,
            &[
                "sign",
                "--signing-config",
                &signing_config,
                "--trusted-root",
                &trusted_root,
                "--identity-token",
                &token,
                "--allow-http-registry",
                "--yes",
                &other_by_digest,
            ],
        ),
        &mut t,
    );
    assert_code(&r, 0, "cosign sign keyless");
    let r = verify(&other, EMAIL, &mut t);
    assert_code(&r, 0, "kibaverify verify of cosign's keyless signature");
    let r = verify(&other, "someone-else@kibaship.test", &mut t);
    assert_code(
        &r,
        1,
        "kibaverify verify of cosign's signature, wrong identity",
    );

    // Both bundles sign the same statement shape (cosign's `cosign/sign/v1`, subject without a `name`) and log
    // the same Rekor v2 entry kind.
    let statement_of = |image: &str| {
        let (bundle, _) = fetch_bundle_and_manifest(&reg, image);
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
    assert!(!t.contains(&token), "the OIDC token leaked into an output");
    let signature_part = token.rsplit('.').next().unwrap();
    assert!(
        !t.contains(signature_part),
        "the token's signature leaked into an output"
    );
}

#[test]
fn keyless_bad_input_is_refused_and_the_env_token_signs_on_a_fallback_registry() {
    let stack = TestSigstore::start().unwrap();
    let reg = TestRegistry::start(RegistryMode::Plain).unwrap();
    push_fixture_images(&reg).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let app = format!("{}/fixtures/app:v1", reg.host());
    let token = stack.mint_token(EMAIL).unwrap();
    let signing_config = stack.signing_config_path().display().to_string();
    let mut t = String::new();

    // A forged token in SIGSTORE_ID_TOKEN: Fulcio refuses it; exit 2; the token is not echoed.
    let mut parts: Vec<&str> = token.split('.').collect();
    let forged_sig = "Zm9yZ2VkLXNpZ25hdHVyZS1wbGFudGVk";
    parts[2] = forged_sig;
    let forged = parts.join(".");
    let r = run(
        kibaverify(
            dir,
            &reg,
            &[
                "sign",
                &app,
                "--keyless",
                "--signing-config",
                &signing_config,
            ],
        )
        .env("SIGSTORE_ID_TOKEN", &forged),
        &mut t,
    );
    assert_code(&r, 2, "forged token");
    assert!(r.stderr.contains("Fulcio refused"), "{}", r.stderr);

    // The token as a flag, with the legacy layout and a signing config without a Rekor v1 log (this stack has
    // only Rekor v2): refused before anything is sent, saying why.
    let r = run(
        &mut kibaverify(
            dir,
            &reg,
            &[
                "sign",
                &app,
                "--keyless",
                "--layout",
                "legacy",
                "--signing-config",
                &signing_config,
                "--identity-token",
                &token,
            ],
        ),
        &mut t,
    );
    assert_code(&r, 2, "keyless legacy layout without Rekor v1");
    assert!(r.stderr.contains("no Rekor v1 log"), "{}", r.stderr);

    // No token at all.
    let r = run(
        &mut kibaverify(
            dir,
            &reg,
            &[
                "sign",
                &app,
                "--keyless",
                "--signing-config",
                &signing_config,
            ],
        ),
        &mut t,
    );
    assert_code(&r, 2, "no token");
    assert!(r.stderr.contains("SIGSTORE_ID_TOKEN"), "{}", r.stderr);

    // A token for another audience (e.g. a service-account token projected for the API server).
    let path = dir.join("wrong-aud");
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
    let r = run(
        &mut kibaverify(
            dir,
            &reg,
            &[
                "sign",
                &app,
                "--keyless",
                "--signing-config",
                &signing_config,
                "--identity-token-file",
                &path.display().to_string(),
            ],
        ),
        &mut t,
    );
    assert_code(&r, 2, "wrong audience");
    assert!(r.stderr.contains("audience"), "{}", r.stderr);

    // No TSA: the URL flags alone name Fulcio and Rekor only.
    let r = run(
        &mut kibaverify(
            dir,
            &reg,
            &[
                "sign",
                &app,
                "--keyless",
                "--fulcio-url",
                stack.fulcio_url(),
                "--rekor-url",
                stack.rekor_url(),
                "--identity-token",
                &token,
            ],
        ),
        &mut t,
    );
    assert_code(&r, 2, "no TSA");
    assert!(r.stderr.contains("timestamp authority"), "{}", r.stderr);

    // The token from SIGSTORE_ID_TOKEN, on a registry without the referrers API (fallback tag): signed,
    // verified by us and by cosign.
    let r = run(
        kibaverify(
            dir,
            &reg,
            &[
                "sign",
                &app,
                "--keyless",
                "--signing-config",
                &signing_config,
            ],
        )
        .env("SIGSTORE_ID_TOKEN", &token),
        &mut t,
    );
    assert_code(&r, 0, "keyless sign with SIGSTORE_ID_TOKEN");
    assert!(r.stderr.contains("referrers fallback tag"), "{}", r.stderr);
    let app_by_digest = r.stdout.trim().to_string();
    let trusted_root = stack.trusted_root_path().display().to_string();
    let r = run(
        &mut kibaverify(
            dir,
            &reg,
            &[
                "verify",
                &app,
                "--certificate-identity",
                EMAIL,
                "--certificate-oidc-issuer",
                stack.issuer(),
                "--trusted-root",
                &trusted_root,
            ],
        ),
        &mut t,
    );
    assert_code(&r, 0, "kibaverify verify on the fallback tag");
    let r = run(
        &mut cosign(
            dir,
            &[
                "verify",
                "--trusted-root",
                &trusted_root,
                "--certificate-identity",
                EMAIL,
                "--certificate-oidc-issuer",
                stack.issuer(),
                "--allow-http-registry",
                &app_by_digest,
            ],
        ),
        &mut t,
    );
    assert_code(&r, 0, "cosign verify on the fallback tag");

    for secret in [&token, &forged, &wrong_aud] {
        assert!(
            !t.contains(secret.as_str()),
            "a planted token leaked into an output"
        );
    }
    assert!(!t.contains(forged_sig) && !t.contains(token.rsplit('.').next().unwrap()));
}
