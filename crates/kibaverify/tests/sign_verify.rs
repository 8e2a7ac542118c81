//! `kibaverify sign` / `verify` / `verify-attestation` against the real registry and the real cosign (v3.1.3
//! peer), both ways: our signatures verified by cosign, cosign's by us, each tool using the other's keys; and
//! tampering rejected by both, with the exit codes documented (0 verified, 1 not verified, 2 bad input).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use kibaship_testsupport::registry::{RegistryMode, TestRegistry};

mod support;
use support::{
    GITHUB_ACTIONS_ISSUER, Tools, assert_code, assert_exit_with_message, assert_not_leaked,
    production_trusted_root, referrers_route, registry_with_fixtures, run_logged as run,
    slsa_generator_policy,
};

/// Planted in COSIGN_PASSWORD; must never appear in any output.
const PASSWORD: &str = "planted-Secret-pw-7f3a9c";

/// The digest (`sha256:...`) of `image`.
fn digest_of(tools: &Tools<'_>, image: &str, t: &mut String) -> String {
    let by_digest = tools.image_by_digest(image, t);
    by_digest.rsplit('@').next().unwrap().to_string()
}

#[test]
fn cosign_and_kibaverify_verify_each_others_signatures_and_keys() {
    let reg = registry_with_fixtures(RegistryMode::Plain);
    let tmp = tempfile::tempdir().unwrap();
    let tools = Tools::new(tmp.path(), &reg, Some(PASSWORD));
    let host = reg.host();
    let image = |name: &str| tools.fixture(name);
    let mut t = String::new();

    // Key pairs: ours (kibaverify generate-key-pair) and cosign's, with the same planted password.
    tools.generate_both_key_pairs(&mut t);

    // 0. Nobody has signed anything yet: not verified, with the code `unsigned`.
    let r = run(
        &mut tools.verify_with_key("verify", &image("docker-multiarch"), "ours.pub", &[]),
        &mut t,
    );
    assert_exit_with_message(&r, 1, "unsigned: no signatures found");

    // 1. We sign (our key) -> cosign verifies (legacy layout; cosign v3 falls back to it when no bundle
    //    referrer exists).
    let app = image("app");
    let app_digest = digest_of(&tools, &app, &mut t);
    let r = run(
        &mut tools.kibaverify(&["sign", &app, "--key", "ours.key", "-a", "team=platform"]),
        &mut t,
    );
    assert_code(&r, 0, "kibaverify sign");
    assert_eq!(r.stdout.trim(), format!("{host}/fixtures/app@{app_digest}"));
    assert!(r.stderr.contains("--insecure-ignore-tlog"), "{}", r.stderr);
    let r = run(&mut tools.cosign_verify_with_key("ours.pub", &app), &mut t);
    assert_code(&r, 0, "cosign verify of our signature");
    let payloads: serde_json::Value = serde_json::from_str(r.stdout.trim()).unwrap();
    assert_eq!(
        payloads[0]["critical"]["image"]["docker-manifest-digest"],
        app_digest.as_str()
    );
    assert_eq!(
        payloads[0]["critical"]["identity"]["docker-reference"],
        format!("{host}/fixtures/app")
    );
    assert_eq!(payloads[0]["optional"]["team"], "platform");

    // 2. cosign signs (its key, no tlog, legacy layout) -> we verify.
    let config_only = image("config-only");
    let config_digest = digest_of(&tools, &config_only, &mut t);
    let by_digest = format!("{host}/fixtures/config-only@{config_digest}");
    let r = run(
        &mut tools.cosign_sign_with_key("cosign.key", true, &by_digest),
        &mut t,
    );
    assert_code(&r, 0, "cosign sign");
    let r = run(
        &mut tools.verify_with_key("verify", &config_only, "cosign.pub", &[]),
        &mut t,
    );
    assert_code(&r, 0, "kibaverify verify of cosign's signature");
    assert!(
        r.stdout
            .starts_with(&format!("VERIFIED {by_digest}: 1 of 1 signatures passed")),
        "{}",
        r.stdout
    );

    // 3. Keys cross over: cosign signs with our key file, we sign with cosign's.
    let multi = image("multiarch");
    let multi_digest = digest_of(&tools, &multi, &mut t);
    let r = run(
        &mut tools.cosign_sign_with_key(
            "ours.key",
            true,
            &format!("{host}/fixtures/multiarch@{multi_digest}"),
        ),
        &mut t,
    );
    assert_code(&r, 0, "cosign sign --key <kibaverify's key>");
    let r = run(
        &mut tools.verify_with_key("verify", &multi, "ours.pub", &[]),
        &mut t,
    );
    assert_code(
        &r,
        0,
        "kibaverify verify of cosign's signature made with our key",
    );
    let docker_app = image("docker-app");
    assert_code(
        &run(
            &mut tools.kibaverify(&["sign", &docker_app, "--key", "cosign.key"]),
            &mut t,
        ),
        0,
        "kibaverify sign --key <cosign's key>",
    );
    assert_code(
        &run(
            &mut tools.cosign_verify_with_key("cosign.pub", &docker_app),
            &mut t,
        ),
        0,
        "cosign verify of our signature made with cosign's key",
    );

    // 4. Re-signing appends: cosign's signature on config-only is kept next to ours, and both tools see both.
    assert_code(
        &run(
            &mut tools.kibaverify(&["sign", &config_only, "--key", "ours.key"]),
            &mut t,
        ),
        0,
        "kibaverify sign on a cosign-signed image",
    );
    for key in ["cosign.pub", "ours.pub"] {
        let r = run(
            &mut tools.verify_with_key("verify", &config_only, key, &["--output", "json"]),
            &mut t,
        );
        assert_code(&r, 0, "kibaverify verify after appending");
        let report: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
        let sigs = report["signatures"].as_array().unwrap();
        assert_eq!(sigs.len(), 2, "{report}");
        assert_eq!(
            sigs.iter().filter(|s| s["verified"] == true).count(),
            1,
            "{report}"
        );
        assert_code(
            &run(&mut tools.cosign_verify_with_key(key, &config_only), &mut t),
            0,
            "cosign verify after appending",
        );
    }

    // 5. Not verified (exit 1), with the reason: wrong key; no tlog without --insecure-ignore-tlog.
    let r = run(
        &mut tools.verify_with_key("verify", &app, "cosign.pub", &[]),
        &mut t,
    );
    assert_exit_with_message(&r, 1, "the signature does not verify with the given key");
    assert!(r.stderr.contains("FAIL"), "{}", r.stderr);
    assert!(r.stderr.contains(": wrong-key: "), "{}", r.stderr);
    let r = run(
        &mut tools.cosign_verify_with_key("cosign.pub", &app),
        &mut t,
    );
    assert_ne!(r.code, 0, "cosign accepts a wrong key?\n{}", r.stdout);
    let r = run(
        &mut tools.kibaverify(&["verify", &app, "--key", "ours.pub"]),
        &mut t,
    );
    assert_exit_with_message(&r, 1, "pass --insecure-ignore-tlog");
    // The JSON carries the hint as a stable code, without any front end's flag names.
    let r = run(
        &mut tools.kibaverify(&["verify", &app, "--key", "ours.pub", "--output", "json"]),
        &mut t,
    );
    assert_code(
        &r,
        1,
        "kibaverify verify --output json without a transparency log",
    );
    let report: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let failed = report["signatures"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["hint"] == "accept-without-transparency-log")
        .unwrap_or_else(|| panic!("no hint in {report}"));
    assert_eq!(failed["code"], "no-transparency-proof", "{failed}");
    assert_eq!(report["code"], "no-transparency-proof", "{report}");
    assert!(
        !failed["reason"].as_str().unwrap().contains("--"),
        "{failed}"
    );

    // 6. Tampered tag: app's `.sig` copied byte for byte (crane) to docker-multiarch's signature tag.
    let victim = image("docker-multiarch");
    let victim_digest = digest_of(&tools, &victim, &mut t);
    let r = run(
        &mut tools.crane(&[
            "copy",
            "--insecure",
            &format!("{host}/fixtures/app:{}.sig", app_digest.replace(':', "-")),
            &format!(
                "{host}/fixtures/docker-multiarch:{}.sig",
                victim_digest.replace(':', "-")
            ),
        ]),
        &mut t,
    );
    assert_code(&r, 0, "crane copy of the .sig tag");
    let r = run(
        &mut tools.verify_with_key("verify", &victim, "ours.pub", &[]),
        &mut t,
    );
    assert_exit_with_message(
        &r,
        1,
        &format!("signature for another image: the payload signs {host}/fixtures/app@{app_digest}"),
    );
    assert!(r.stderr.contains(": digest-mismatch: "), "{}", r.stderr);
    let r = run(
        &mut tools.cosign_verify_with_key("ours.pub", &victim),
        &mut t,
    );
    assert_ne!(
        r.code, 0,
        "cosign accepts a copied signature?\n{}",
        r.stdout
    );

    // 7. Bad input and unreachable registries exit 2; an image without signatures exits 1.
    let mut c = tools.kibaverify(&["sign", &app, "--key", "ours.key"]);
    c.env("COSIGN_PASSWORD", "not-the-password");
    let r = run(&mut c, &mut t);
    assert_exit_with_message(&r, 2, "wrong password");
    let r = run(
        &mut tools.kibaverify(&[
            "verify",
            "127.0.0.1:9/none/x:v1",
            "--key",
            "ours.pub",
            "--insecure-registry",
            "127.0.0.1:9",
        ]),
        &mut t,
    );
    assert_exit_with_message(&r, 2, "(registry-unreachable)");
    let r = run(
        &mut tools.kibaverify(&["verify", &app, "--key", "missing.pub"]),
        &mut t,
    );
    assert_code(&r, 2, "verify with a missing key file");
    let r = run(
        &mut tools.kibaverify(&["sign", &app, "--key", "ours.key", "--tlog-upload=true"]),
        &mut t,
    );
    assert_exit_with_message(&r, 2, "--tlog-upload=true is not supported");
    let r = run(
        &mut tools.kibaverify(&[
            "verify",
            &image("docker-multiarch").replace("docker-multiarch", "docker-app"),
            "--certificate-identity",
            "x",
            "--certificate-oidc-issuer",
            "y",
        ]),
        &mut t,
    );
    assert_exit_with_message(&r, 1, "signed with a key, not a Fulcio certificate");
    assert!(r.stderr.contains(": wrong-identity: "), "{}", r.stderr);

    // 8. The password never appears in anything either tool printed.
    assert_not_leaked(&t, PASSWORD, "the planted password");
}

#[test]
fn verify_attestation_checks_real_cosign_keyless_layouts() {
    // The registry side of this (pushing cosign's saved layouts) is covered in kibaship-cosign's tests; here the
    // CLI is driven against one pushed with crane from the same OCI layout.
    let reg = TestRegistry::start(RegistryMode::Plain).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let tools = Tools::new(tmp.path(), &reg, Some(PASSWORD));
    let mut t = String::new();
    let image = tools.push_slsa_layout(&mut t);
    let root = production_trusted_root();
    let verify_attestation = |issuer: &str, extra: &[&str], t: &mut String| {
        let mut c = tools.kibaverify(&["verify-attestation", &image]);
        c.args(slsa_generator_policy(issuer, &root)).args(extra);
        run(&mut c, t)
    };
    let r = verify_attestation(GITHUB_ACTIONS_ISSUER, &["--type", "slsaprovenance"], &mut t);
    assert_code(&r, 0, "kibaverify verify-attestation");
    assert!(
        r.stdout
            .contains("predicate https://slsa.dev/provenance/v0.2"),
        "{}",
        r.stdout
    );
    let r = verify_attestation("https://accounts.google.com", &[], &mut t);
    assert_exit_with_message(&r, 1, "certificate OIDC issuer");
}

/// cosign v3's layout (a Sigstore bundle v0.3 referrer), both ways, on a registry with the referrers API and on
/// one without (the fallback tag).
fn bundle_layout_round_trip(mode: RegistryMode) {
    let reg = registry_with_fixtures(mode);
    let tmp = tempfile::tempdir().unwrap();
    let tools = Tools::new(tmp.path(), &reg, Some(PASSWORD));
    let dir = tmp.path();
    let host = reg.host();
    let image = |name: &str| tools.fixture(name);
    let mut t = String::new();
    tools.generate_both_key_pairs(&mut t);

    // We sign (bundle referrer) -> cosign verifies; signing twice keeps both bundles.
    let app = image("app");
    for round in 0..2 {
        let r = run(
            &mut tools.kibaverify(&[
                "sign", "--layout", "bundle", &app, "--key", "ours.key", "-a", "round=x",
            ]),
            &mut t,
        );
        assert_code(&r, 0, "kibaverify sign --layout bundle");
        assert!(
            r.stderr.contains(referrers_route(mode)),
            "round {round}: {}",
            r.stderr
        );
    }
    let r = run(&mut tools.cosign_verify_with_key("ours.pub", &app), &mut t);
    assert_code(&r, 0, "cosign verify of our bundle");
    assert!(
        r.stdout.contains("https://sigstore.dev/cosign/sign/v1"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("\"round\":\"x\""), "{}", r.stdout);
    let r = run(
        &mut tools.verify_with_key("verify", &app, "ours.pub", &["--output", "json"]),
        &mut t,
    );
    assert_code(&r, 0, "kibaverify verify of our bundles");
    let report: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let sigs = report["signatures"].as_array().unwrap();
    assert_eq!(sigs.len(), 2, "{report}");
    assert!(
        sigs.iter()
            .all(|s| s["verified"] == true && s["layout"] == "bundle-referrer"),
        "{report}"
    );

    // cosign signs (v3 default layout, key, no log) -> we verify.
    let config_only = image("config-only");
    let config_by_digest = format!(
        "{host}/fixtures/config-only@{}",
        digest_of(&tools, &config_only, &mut t)
    );
    assert_code(
        &run(
            &mut tools.cosign_sign_with_key("cosign.key", false, &config_by_digest),
            &mut t,
        ),
        0,
        "cosign sign (bundle layout)",
    );
    let r = run(
        &mut tools.verify_with_key("verify", &config_only, "cosign.pub", &[]),
        &mut t,
    );
    assert_code(&r, 0, "kibaverify verify of cosign's bundle");
    assert!(
        r.stdout
            .contains(&format!("{host}/fixtures/config-only@sha256:")),
        "{}",
        r.stdout
    );
    assert!(
        !r.stdout.contains(".sig layer"),
        "read from the referrer, not a legacy tag: {}",
        r.stdout
    );

    // cosign attests (key, no log) in both layouts -> verify-attestation reads both, filtered by --type.
    std::fs::write(dir.join("predicate.json"), b"{\"hello\":\"world\"}").unwrap();
    for (predicate_type, legacy) in [("custom", false), ("https://example.com/legacy/v1", true)] {
        assert_code(
            &run(
                &mut tools.cosign_attest_with_key(
                    "predicate.json",
                    predicate_type,
                    legacy,
                    &config_by_digest,
                ),
                &mut t,
            ),
            0,
            "cosign attest",
        );
    }
    let r = run(
        &mut tools.verify_with_key(
            "verify-attestation",
            &config_only,
            "cosign.pub",
            &["--output", "json"],
        ),
        &mut t,
    );
    assert_code(
        &r,
        0,
        "kibaverify verify-attestation of cosign's attestations",
    );
    let report: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let found: Vec<(String, String)> = report["signatures"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["verified"] == true)
        .map(|s| {
            (
                s["layout"].as_str().unwrap().to_string(),
                s["predicateType"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        found,
        vec![
            (
                "bundle-referrer".to_string(),
                "https://cosign.sigstore.dev/attestation/v1".to_string()
            ),
            (
                "legacy-tag".to_string(),
                "https://example.com/legacy/v1".to_string()
            ),
        ],
        "{report}"
    );
    let r = run(
        &mut tools.verify_with_key(
            "verify-attestation",
            &config_only,
            "cosign.pub",
            &["--type", "slsaprovenance1"],
        ),
        &mut t,
    );
    assert_exit_with_message(
        &r,
        1,
        "is not the requested \"https://slsa.dev/provenance/v1\"",
    );

    // Not verified: without --insecure-ignore-tlog; with another key.
    let r = run(
        &mut tools.kibaverify(&["verify", &config_only, "--key", "cosign.pub"]),
        &mut t,
    );
    assert_exit_with_message(&r, 1, "the bundle has no transparency-log entry");
    let r = run(
        &mut tools.verify_with_key("verify", &config_only, "ours.pub", &[]),
        &mut t,
    );
    assert_exit_with_message(&r, 1, "the signature does not verify with the given key");

    // Tamper: app's bundle attached (kibaverify attach) as a referrer of another image.
    let report: serde_json::Value = serde_json::from_str(
        &run(
            &mut tools.verify_with_key("verify", &app, "ours.pub", &["--output", "json"]),
            &mut t,
        )
        .stdout,
    )
    .unwrap();
    let blob = report["signatures"][0]["blob"].as_str().unwrap();
    let r = run(
        &mut tools.crane(&["blob", "--insecure", &format!("{host}/fixtures/app@{blob}")]),
        &mut t,
    );
    assert_code(&r, 0, "crane blob");
    std::fs::write(dir.join("bundle.json"), &r.stdout).unwrap();
    let victim = image("docker-app");
    let bundle_type = "application/vnd.dev.sigstore.bundle.v0.3+json";
    assert_code(
        &run(
            &mut tools.kibaverify(&[
                "attach",
                &victim,
                "--artifact-type",
                bundle_type,
                "--media-type",
                bundle_type,
                "--file",
                "bundle.json",
            ]),
            &mut t,
        ),
        0,
        "kibaverify attach of a copied bundle",
    );
    let r = run(
        &mut tools.verify_with_key("verify", &victim, "ours.pub", &[]),
        &mut t,
    );
    assert_exit_with_message(
        &r,
        1,
        "signed for another image: the in-toto statement's subjects are",
    );
    let r = run(
        &mut tools.cosign_verify_with_key("ours.pub", &victim),
        &mut t,
    );
    assert_ne!(r.code, 0, "cosign accepts a copied bundle?\n{}", r.stdout);

    assert_not_leaked(&t, PASSWORD, "the planted password");
}

#[test]
fn bundle_layout_round_trips_with_cosign_via_the_referrers_api() {
    bundle_layout_round_trip(RegistryMode::Referrers);
}

#[test]
fn bundle_layout_round_trips_with_cosign_via_the_fallback_tag() {
    bundle_layout_round_trip(RegistryMode::Plain);
}
