//! `kibaverify sign` / `verify` / `verify-attestation` against the real registry and the real cosign (v3.1.3
//! peer), both ways: our signatures verified by cosign, cosign's by us, each tool using the other's keys; and
//! tampering rejected by both, with the exit codes documented (0 verified, 1 not verified, 2 bad input).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use kibaship_testsupport::fixtures::push_fixture_images;
use kibaship_testsupport::peers::peer_binary;
use kibaship_testsupport::registry::{RegistryMode, TestRegistry};

mod support;
use support::{BIN, Run, run_logged as run};

/// Planted in COSIGN_PASSWORD; must never appear in any output.
const PASSWORD: &str = "planted-Secret-pw-7f3a9c";

fn kibaverify_bare(dir: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(BIN);
    c.current_dir(dir)
        .env("COSIGN_PASSWORD", PASSWORD)
        .env("DOCKER_CONFIG", dir.join("no-docker-config"))
        .args(args);
    c
}

fn kibaverify(dir: &Path, reg: &TestRegistry, args: &[&str]) -> Command {
    let mut c = kibaverify_bare(dir, args);
    c.args(["--insecure-registry", &reg.host()]);
    c
}

fn cosign(dir: &Path, args: &[&str]) -> Command {
    let bin = peer_binary("cosign").expect("the cosign peer is not built: run `make peers`");
    let mut c = Command::new(bin);
    c.current_dir(dir)
        .env("COSIGN_PASSWORD", PASSWORD)
        .env("HOME", dir)
        .env("DOCKER_CONFIG", dir.join("no-docker-config"))
        .args(args);
    c
}

fn crane(dir: &Path, args: &[&str]) -> Command {
    let bin = peer_binary("crane").expect("the crane peer is not built: run `make peers`");
    let mut c = Command::new(bin);
    c.current_dir(dir)
        .env("DOCKER_CONFIG", dir.join("no-docker-config"))
        .args(args);
    c
}

fn digest_of(dir: &Path, reg: &TestRegistry, image: &str, t: &mut String) -> String {
    let r = run(&mut kibaverify(dir, reg, &["digest", image]), t);
    assert_eq!(r.code, 0, "{}", r.stderr);
    r.stdout.trim().rsplit('@').next().unwrap().to_string()
}

fn assert_ok(r: &Run, what: &str) {
    assert_eq!(
        r.code, 0,
        "{what}\nstdout:\n{}\nstderr:\n{}",
        r.stdout, r.stderr
    );
}

#[test]
fn cosign_and_kibaverify_verify_each_others_signatures_and_keys() {
    let reg = TestRegistry::start(RegistryMode::Plain).unwrap();
    push_fixture_images(&reg).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let host = reg.host();
    let image = |name: &str| format!("{host}/fixtures/{name}:v1");
    let mut t = String::new();

    // Key pairs: ours (kibaverify generate-key-pair) and cosign's, with the same planted password.
    let r = run(
        &mut kibaverify_bare(dir, &["generate-key-pair", "--output-key-prefix", "ours"]),
        &mut t,
    );
    assert_ok(&r, "kibaverify generate-key-pair");
    assert_ok(
        &run(&mut cosign(dir, &["generate-key-pair"]), &mut t),
        "cosign generate-key-pair",
    );

    // 1. We sign (our key) -> cosign verifies (legacy layout; cosign v3 falls back to it when no bundle
    //    referrer exists).
    let app = image("app");
    let app_digest = digest_of(dir, &reg, &app, &mut t);
    let r = run(
        &mut kibaverify(
            dir,
            &reg,
            &["sign", &app, "--key", "ours.key", "-a", "team=platform"],
        ),
        &mut t,
    );
    assert_ok(&r, "kibaverify sign");
    assert_eq!(r.stdout.trim(), format!("{host}/fixtures/app@{app_digest}"));
    assert!(r.stderr.contains("--insecure-ignore-tlog"), "{}", r.stderr);
    let r = run(
        &mut cosign(
            dir,
            &[
                "verify",
                "--key",
                "ours.pub",
                "--insecure-ignore-tlog",
                "--allow-http-registry",
                &app,
            ],
        ),
        &mut t,
    );
    assert_ok(&r, "cosign verify of our signature");
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
    let config_digest = digest_of(dir, &reg, &config_only, &mut t);
    let by_digest = format!("{host}/fixtures/config-only@{config_digest}");
    let r = run(
        &mut cosign(
            dir,
            &[
                "sign",
                "--key",
                "cosign.key",
                "--tlog-upload=false",
                "--use-signing-config=false",
                "--new-bundle-format=false",
                "--allow-http-registry",
                "--yes",
                &by_digest,
            ],
        ),
        &mut t,
    );
    assert_ok(&r, "cosign sign");
    let r = run(
        &mut kibaverify(
            dir,
            &reg,
            &[
                "verify",
                &config_only,
                "--key",
                "cosign.pub",
                "--insecure-ignore-tlog",
            ],
        ),
        &mut t,
    );
    assert_ok(&r, "kibaverify verify of cosign's signature");
    assert!(
        r.stdout
            .starts_with(&format!("VERIFIED {by_digest}: 1 of 1 signatures passed")),
        "{}",
        r.stdout
    );

    // 3. Keys cross over: cosign signs with our key file, we sign with cosign's.
    let multi = image("multiarch");
    let multi_digest = digest_of(dir, &reg, &multi, &mut t);
    let r = run(
        &mut cosign(
            dir,
            &[
                "sign",
                "--key",
                "ours.key",
                "--tlog-upload=false",
                "--use-signing-config=false",
                "--new-bundle-format=false",
                "--allow-http-registry",
                "--yes",
                &format!("{host}/fixtures/multiarch@{multi_digest}"),
            ],
        ),
        &mut t,
    );
    assert_ok(&r, "cosign sign --key <kibaverify's key>");
    let r = run(
        &mut kibaverify(
            dir,
            &reg,
            &[
                "verify",
                &multi,
                "--key",
                "ours.pub",
                "--insecure-ignore-tlog",
            ],
        ),
        &mut t,
    );
    assert_ok(
        &r,
        "kibaverify verify of cosign's signature made with our key",
    );
    let docker_app = image("docker-app");
    assert_ok(
        &run(
            &mut kibaverify(dir, &reg, &["sign", &docker_app, "--key", "cosign.key"]),
            &mut t,
        ),
        "kibaverify sign --key <cosign's key>",
    );
    assert_ok(
        &run(
            &mut cosign(
                dir,
                &[
                    "verify",
                    "--key",
                    "cosign.pub",
                    "--insecure-ignore-tlog",
                    "--allow-http-registry",
                    &docker_app,
                ],
            ),
            &mut t,
        ),
        "cosign verify of our signature made with cosign's key",
    );

    // 4. Re-signing appends: cosign's signature on config-only is kept next to ours, and both tools see both.
    assert_ok(
        &run(
            &mut kibaverify(dir, &reg, &["sign", &config_only, "--key", "ours.key"]),
            &mut t,
        ),
        "kibaverify sign on a cosign-signed image",
    );
    for key in ["cosign.pub", "ours.pub"] {
        let r = run(
            &mut kibaverify(
                dir,
                &reg,
                &[
                    "verify",
                    &config_only,
                    "--key",
                    key,
                    "--insecure-ignore-tlog",
                    "--output",
                    "json",
                ],
            ),
            &mut t,
        );
        assert_ok(&r, "kibaverify verify after appending");
        let report: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
        let sigs = report["signatures"].as_array().unwrap();
        assert_eq!(sigs.len(), 2, "{report}");
        assert_eq!(
            sigs.iter().filter(|s| s["verified"] == true).count(),
            1,
            "{report}"
        );
        assert_ok(
            &run(
                &mut cosign(
                    dir,
                    &[
                        "verify",
                        "--key",
                        key,
                        "--insecure-ignore-tlog",
                        "--allow-http-registry",
                        &config_only,
                    ],
                ),
                &mut t,
            ),
            "cosign verify after appending",
        );
    }

    // 5. Not verified (exit 1), with the reason: wrong key; no tlog without --insecure-ignore-tlog.
    let r = run(
        &mut kibaverify(
            dir,
            &reg,
            &[
                "verify",
                &app,
                "--key",
                "cosign.pub",
                "--insecure-ignore-tlog",
            ],
        ),
        &mut t,
    );
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr.contains("FAIL")
            && r.stderr
                .contains("the signature does not verify with the given key"),
        "{}",
        r.stderr
    );
    let r = run(
        &mut cosign(
            dir,
            &[
                "verify",
                "--key",
                "cosign.pub",
                "--insecure-ignore-tlog",
                "--allow-http-registry",
                &app,
            ],
        ),
        &mut t,
    );
    assert_ne!(r.code, 0, "cosign accepts a wrong key?\n{}", r.stdout);
    let r = run(
        &mut kibaverify(dir, &reg, &["verify", &app, "--key", "ours.pub"]),
        &mut t,
    );
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("pass --insecure-ignore-tlog"),
        "{}",
        r.stderr
    );

    // 6. Tampered tag: app's `.sig` copied byte for byte (crane) to docker-multiarch's signature tag.
    let victim = image("docker-multiarch");
    let victim_digest = digest_of(dir, &reg, &victim, &mut t);
    let r = run(
        &mut crane(
            dir,
            &[
                "copy",
                "--insecure",
                &format!("{host}/fixtures/app:{}.sig", app_digest.replace(':', "-")),
                &format!(
                    "{host}/fixtures/docker-multiarch:{}.sig",
                    victim_digest.replace(':', "-")
                ),
            ],
        ),
        &mut t,
    );
    assert_ok(&r, "crane copy of the .sig tag");
    let r = run(
        &mut kibaverify(
            dir,
            &reg,
            &[
                "verify",
                &victim,
                "--key",
                "ours.pub",
                "--insecure-ignore-tlog",
            ],
        ),
        &mut t,
    );
    assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
    assert!(
        r.stderr.contains(&format!(
            "signature for another image: the payload signs {host}/fixtures/app@{app_digest}"
        )),
        "{}",
        r.stderr
    );
    let r = run(
        &mut cosign(
            dir,
            &[
                "verify",
                "--key",
                "ours.pub",
                "--insecure-ignore-tlog",
                "--allow-http-registry",
                &victim,
            ],
        ),
        &mut t,
    );
    assert_ne!(
        r.code, 0,
        "cosign accepts a copied signature?\n{}",
        r.stdout
    );

    // 7. Bad input and unreachable registries exit 2; an image without signatures exits 1.
    let mut c = kibaverify(dir, &reg, &["sign", &app, "--key", "ours.key"]);
    c.env("COSIGN_PASSWORD", "not-the-password");
    let r = run(&mut c, &mut t);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("wrong password"), "{}", r.stderr);
    let r = run(
        &mut kibaverify(
            dir,
            &reg,
            &[
                "verify",
                "127.0.0.1:9/none/x:v1",
                "--key",
                "ours.pub",
                "--insecure-registry",
                "127.0.0.1:9",
            ],
        ),
        &mut t,
    );
    assert_eq!(r.code, 2, "{}", r.stderr);
    let r = run(
        &mut kibaverify(dir, &reg, &["verify", &app, "--key", "missing.pub"]),
        &mut t,
    );
    assert_eq!(r.code, 2, "{}", r.stderr);
    let r = run(
        &mut kibaverify(
            dir,
            &reg,
            &["sign", &app, "--key", "ours.key", "--tlog-upload=true"],
        ),
        &mut t,
    );
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("--tlog-upload=true is not supported"),
        "{}",
        r.stderr
    );
    let r = run(
        &mut kibaverify(
            dir,
            &reg,
            &[
                "verify",
                &image("docker-multiarch").replace("docker-multiarch", "docker-app"),
                "--certificate-identity",
                "x",
                "--certificate-oidc-issuer",
                "y",
            ],
        ),
        &mut t,
    );
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("signed with a key, not a Fulcio certificate"),
        "{}",
        r.stderr
    );

    // 8. The password never appears in anything either tool printed.
    assert!(!t.is_empty());
    assert!(
        !t.contains(PASSWORD),
        "the planted password leaked into an output stream"
    );
}

fn testdata() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata")
}

#[test]
fn verify_attestation_checks_real_cosign_keyless_layouts() {
    // The registry side of this (pushing cosign's saved layouts) is covered in kibaship-cosign's tests; here the
    // CLI is driven against one pushed with crane from the same OCI layout.
    let reg = TestRegistry::start(RegistryMode::Plain).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let host = reg.host();
    let mut t = String::new();
    let layout = testdata().join("slsa/gha_generic_container/v2.1.0/container_workflow_dispatch");
    let digest = std::fs::read_to_string(layout.with_extension("digest")).unwrap();
    let digest = digest.trim();
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let att = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["annotations"]["kind"] == "dev.cosignproject.cosign/atts")
        .unwrap()["digest"]
        .as_str()
        .unwrap()
        .to_string();
    // crane pushes the whole layout (image index and attestation manifest) by digest; then tags.
    let repo = format!("{host}/slsa/container");
    let pushed_index = format!("{repo}:layout");
    assert_ok(
        &run(
            &mut crane(
                dir,
                &[
                    "push",
                    "--insecure",
                    "--index",
                    layout.to_str().unwrap(),
                    &pushed_index,
                ],
            ),
            &mut t,
        ),
        "crane push layout",
    );
    assert_ok(
        &run(
            &mut crane(
                dir,
                &["tag", "--insecure", &format!("{repo}@{digest}"), "v1"],
            ),
            &mut t,
        ),
        "crane tag image",
    );
    assert_ok(
        &run(
            &mut crane(
                dir,
                &[
                    "tag",
                    "--insecure",
                    &format!("{repo}@{att}"),
                    &format!("{}.att", digest.replace(':', "-")),
                ],
            ),
            &mut t,
        ),
        "crane tag attestation",
    );
    let root = testdata().join("sigstore/trusted-roots/production-trusted_root.json");
    let root = root.to_str().unwrap();
    let r = run(
        &mut kibaverify(
            dir,
            &reg,
            &[
                "verify-attestation",
                &format!("{repo}:v1"),
                "--type",
                "slsaprovenance",
                "--certificate-identity-regexp",
                "^https://github.com/slsa-framework/slsa-github-generator/",
                "--certificate-oidc-issuer",
                "https://token.actions.githubusercontent.com",
                "--trusted-root",
                root,
            ],
        ),
        &mut t,
    );
    assert_ok(&r, "kibaverify verify-attestation");
    assert!(
        r.stdout
            .contains("predicate https://slsa.dev/provenance/v0.2"),
        "{}",
        r.stdout
    );
    let r = run(
        &mut kibaverify(
            dir,
            &reg,
            &[
                "verify-attestation",
                &format!("{repo}:v1"),
                "--certificate-identity-regexp",
                "^https://github.com/slsa-framework/slsa-github-generator/",
                "--certificate-oidc-issuer",
                "https://accounts.google.com",
                "--trusted-root",
                root,
            ],
        ),
        &mut t,
    );
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert!(r.stderr.contains("certificate OIDC issuer"), "{}", r.stderr);
}

/// cosign v3's layout (a Sigstore bundle v0.3 referrer), both ways, on a registry with the referrers API and on
/// one without (the fallback tag).
fn bundle_layout_round_trip(mode: RegistryMode) {
    let reg = TestRegistry::start(mode).unwrap();
    push_fixture_images(&reg).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let host = reg.host();
    let image = |name: &str| format!("{host}/fixtures/{name}:v1");
    let mut t = String::new();
    assert_ok(
        &run(
            &mut kibaverify_bare(dir, &["generate-key-pair", "--output-key-prefix", "ours"]),
            &mut t,
        ),
        "kibaverify generate-key-pair",
    );
    assert_ok(
        &run(&mut cosign(dir, &["generate-key-pair"]), &mut t),
        "cosign generate-key-pair",
    );

    // We sign (bundle referrer) -> cosign verifies; signing twice keeps both bundles.
    let app = image("app");
    for round in 0..2 {
        let r = run(
            &mut kibaverify(
                dir,
                &reg,
                &[
                    "sign", "--layout", "bundle", &app, "--key", "ours.key", "-a", "round=x",
                ],
            ),
            &mut t,
        );
        assert_ok(&r, "kibaverify sign --layout bundle");
        let via = if mode == RegistryMode::Referrers {
            "the referrers API"
        } else {
            "the referrers fallback tag"
        };
        assert!(r.stderr.contains(via), "round {round}: {}", r.stderr);
    }
    let r = run(
        &mut cosign(
            dir,
            &[
                "verify",
                "--key",
                "ours.pub",
                "--insecure-ignore-tlog",
                "--allow-http-registry",
                &app,
            ],
        ),
        &mut t,
    );
    assert_ok(&r, "cosign verify of our bundle");
    assert!(
        r.stdout.contains("https://sigstore.dev/cosign/sign/v1"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("\"round\":\"x\""), "{}", r.stdout);
    let r = run(
        &mut kibaverify(
            dir,
            &reg,
            &[
                "verify",
                &app,
                "--key",
                "ours.pub",
                "--insecure-ignore-tlog",
                "--output",
                "json",
            ],
        ),
        &mut t,
    );
    assert_ok(&r, "kibaverify verify of our bundles");
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
    let config_digest = digest_of(dir, &reg, &config_only, &mut t);
    assert_ok(
        &run(
            &mut cosign(
                dir,
                &[
                    "sign",
                    "--key",
                    "cosign.key",
                    "--tlog-upload=false",
                    "--use-signing-config=false",
                    "--allow-http-registry",
                    "--yes",
                    &format!("{host}/fixtures/config-only@{config_digest}"),
                ],
            ),
            &mut t,
        ),
        "cosign sign (bundle layout)",
    );
    let r = run(
        &mut kibaverify(
            dir,
            &reg,
            &[
                "verify",
                &config_only,
                "--key",
                "cosign.pub",
                "--insecure-ignore-tlog",
            ],
        ),
        &mut t,
    );
    assert_ok(&r, "kibaverify verify of cosign's bundle");
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
    for (predicate_type, extra) in [
        ("custom", None),
        (
            "https://example.com/legacy/v1",
            Some("--new-bundle-format=false"),
        ),
    ] {
        let by_digest = format!("{host}/fixtures/config-only@{config_digest}");
        let mut args = vec![
            "attest",
            "--key",
            "cosign.key",
            "--predicate",
            "predicate.json",
            "--type",
            predicate_type,
            "--tlog-upload=false",
            "--use-signing-config=false",
            "--allow-http-registry",
            "--yes",
        ];
        args.extend(extra);
        args.push(&by_digest);
        assert_ok(&run(&mut cosign(dir, &args), &mut t), "cosign attest");
    }
    let r = run(
        &mut kibaverify(
            dir,
            &reg,
            &[
                "verify-attestation",
                &config_only,
                "--key",
                "cosign.pub",
                "--insecure-ignore-tlog",
                "--output",
                "json",
            ],
        ),
        &mut t,
    );
    assert_ok(&r, "kibaverify verify-attestation of cosign's attestations");
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
        &mut kibaverify(
            dir,
            &reg,
            &[
                "verify-attestation",
                &config_only,
                "--type",
                "slsaprovenance1",
                "--key",
                "cosign.pub",
                "--insecure-ignore-tlog",
            ],
        ),
        &mut t,
    );
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert!(
        r.stderr
            .contains("is not the requested \"https://slsa.dev/provenance/v1\""),
        "{}",
        r.stderr
    );

    // Not verified: without --insecure-ignore-tlog; with another key.
    let r = run(
        &mut kibaverify(dir, &reg, &["verify", &config_only, "--key", "cosign.pub"]),
        &mut t,
    );
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert!(
        r.stderr
            .contains("the bundle has no transparency-log entry"),
        "{}",
        r.stderr
    );
    let r = run(
        &mut kibaverify(
            dir,
            &reg,
            &[
                "verify",
                &config_only,
                "--key",
                "ours.pub",
                "--insecure-ignore-tlog",
            ],
        ),
        &mut t,
    );
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert!(
        r.stderr
            .contains("the signature does not verify with the given key"),
        "{}",
        r.stderr
    );

    // Tamper: app's bundle attached (kibaverify attach) as a referrer of another image.
    let report: serde_json::Value = serde_json::from_str(
        &run(
            &mut kibaverify(
                dir,
                &reg,
                &[
                    "verify",
                    &app,
                    "--key",
                    "ours.pub",
                    "--insecure-ignore-tlog",
                    "--output",
                    "json",
                ],
            ),
            &mut t,
        )
        .stdout,
    )
    .unwrap();
    let blob = report["signatures"][0]["blob"].as_str().unwrap();
    let r = run(
        &mut crane(
            dir,
            &["blob", "--insecure", &format!("{host}/fixtures/app@{blob}")],
        ),
        &mut t,
    );
    assert_ok(&r, "crane blob");
    std::fs::write(dir.join("bundle.json"), &r.stdout).unwrap();
    let victim = image("docker-app");
    let bundle_type = "application/vnd.dev.sigstore.bundle.v0.3+json";
    assert_ok(
        &run(
            &mut kibaverify(
                dir,
                &reg,
                &[
                    "attach",
                    &victim,
                    "--artifact-type",
                    bundle_type,
                    "--media-type",
                    bundle_type,
                    "--file",
                    "bundle.json",
                ],
            ),
            &mut t,
        ),
        "kibaverify attach of a copied bundle",
    );
    let r = run(
        &mut kibaverify(
            dir,
            &reg,
            &[
                "verify",
                &victim,
                "--key",
                "ours.pub",
                "--insecure-ignore-tlog",
            ],
        ),
        &mut t,
    );
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert!(
        r.stderr
            .contains("signed for another image: the in-toto statement's subjects are"),
        "{}",
        r.stderr
    );
    let r = run(
        &mut cosign(
            dir,
            &[
                "verify",
                "--key",
                "ours.pub",
                "--insecure-ignore-tlog",
                "--allow-http-registry",
                &victim,
            ],
        ),
        &mut t,
    );
    assert_ne!(r.code, 0, "cosign accepts a copied bundle?\n{}", r.stdout);

    assert!(
        !t.contains(PASSWORD),
        "the planted password leaked into an output stream"
    );
}

#[test]
fn bundle_layout_round_trips_with_cosign_via_the_referrers_api() {
    bundle_layout_round_trip(RegistryMode::Referrers);
}

#[test]
fn bundle_layout_round_trips_with_cosign_via_the_fallback_tag() {
    bundle_layout_round_trip(RegistryMode::Plain);
}
