//! `kibaverify verify` / `verify-attestation` policy flags beyond the signer: cosign's
//! `--certificate-github-workflow-*` claims on real slsa-github-generator attestations (production Fulcio
//! certificates), and cosign's `verify -a key=value` on key-signed images in both layouts, cross-checked with the
//! real cosign (v3.1.3 peer) on the real registry harness.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use kibaship_testsupport::fixtures::push_fixture_images;
use kibaship_testsupport::peers::peer_binary;
use kibaship_testsupport::registry::{RegistryMode, TestRegistry};

mod support;
use support::{BIN, assert_code, run};

const PASSWORD: &str = "claims-test-pw";

fn kibaverify(dir: &Path, reg: &TestRegistry, args: &[&str]) -> Command {
    let mut c = Command::new(BIN);
    c.current_dir(dir)
        .env("COSIGN_PASSWORD", PASSWORD)
        .env("DOCKER_CONFIG", dir.join("no-docker-config"))
        .args(args)
        .args(["--insecure-registry", &reg.host()]);
    c
}

fn peer(name: &str, dir: &Path, args: &[&str]) -> Command {
    let bin = peer_binary(name)
        .unwrap_or_else(|_| panic!("the {name} peer is not built: run `make peers`"));
    let mut c = Command::new(bin);
    c.current_dir(dir)
        .env("COSIGN_PASSWORD", PASSWORD)
        .env("HOME", dir)
        .env("DOCKER_CONFIG", dir.join("no-docker-config"))
        .args(args);
    c
}

fn testdata() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata")
}

/// Pushes slsa-github-generator's saved cosign layout (image index + `.att`) and returns `repo:v1`.
fn push_slsa_layout(dir: &Path, reg: &TestRegistry) -> String {
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
    let repo = format!("{}/slsa/container", reg.host());
    let layout = layout.to_str().unwrap();
    for args in [
        vec![
            "push".to_string(),
            "--insecure".into(),
            "--index".into(),
            layout.into(),
            format!("{repo}:layout"),
        ],
        vec![
            "tag".into(),
            "--insecure".into(),
            format!("{repo}@{digest}"),
            "v1".into(),
        ],
        vec![
            "tag".into(),
            "--insecure".into(),
            format!("{repo}@{att}"),
            format!("{}.att", digest.replace(':', "-")),
        ],
    ] {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        assert_code(&run(&mut peer("crane", dir, &args)), 0, "crane");
    }
    format!("{repo}:v1")
}

#[test]
fn github_workflow_claims_are_checked_on_real_slsa_attestations() {
    let reg = TestRegistry::start(RegistryMode::Plain).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let image = push_slsa_layout(dir, &reg);
    let root = testdata().join("sigstore/trusted-roots/production-trusted_root.json");
    let root = root.to_str().unwrap();
    let verify = |claims: &[&str]| {
        let mut args = vec![
            "verify-attestation",
            image.as_str(),
            "--type",
            "slsaprovenance",
            "--certificate-identity-regexp",
            "^https://github.com/slsa-framework/slsa-github-generator/",
            "--certificate-oidc-issuer",
            "https://token.actions.githubusercontent.com",
            "--trusted-root",
            root,
        ];
        args.extend_from_slice(claims);
        run(&mut kibaverify(dir, &reg, &args))
    };

    // The certificate's claims (read with openssl): repository slsa-framework/example-package, trigger
    // workflow_dispatch, ref refs/heads/main, sha 4d329c75…, name the e2e workflow file.
    let all_right = [
        "--certificate-github-workflow-repository",
        "slsa-framework/example-package",
        "--certificate-github-workflow-trigger",
        "workflow_dispatch",
        "--certificate-github-workflow-ref",
        "refs/heads/main",
        "--certificate-github-workflow-sha",
        "4d329c75e7ec1725f7c9ce917a8799d408d06be3",
        "--certificate-github-workflow-name",
        ".github/workflows/verifier-e2e.all.workflow_dispatch.main.all.slsa3.yml",
        "--certificate-github-source-repository",
        "https://github.com/slsa-framework/example-package",
    ];
    let cosign_verify = |claims: &[&str]| {
        let mut args = vec![
            "verify-attestation",
            "--type",
            "slsaprovenance",
            "--certificate-identity-regexp",
            "^https://github.com/slsa-framework/slsa-github-generator/",
            "--certificate-oidc-issuer",
            "https://token.actions.githubusercontent.com",
            "--trusted-root",
            root,
            "--allow-http-registry",
        ];
        args.extend_from_slice(claims);
        args.push(image.as_str());
        run(&mut peer("cosign", dir, &args))
    };
    let r = verify(&all_right[..2]);
    assert_code(&r, 0, "the right workflow repository");
    let r = verify(&all_right);
    assert_code(&r, 0, "every claim right");
    // cosign agrees (it has no --certificate-github-source-repository, kibaship's own flag).
    let r = cosign_verify(&all_right[..10]);
    assert_code(
        &r,
        0,
        "cosign verify-attestation with every workflow claim right",
    );

    let wrong: [(&str, &str, &str); 5] = [
        (
            "--certificate-github-workflow-repository",
            "slsa-framework/other-package",
            "GitHub workflow repository (1.3.6.1.4.1.57264.1.5) differs: expected \"slsa-framework/other-package\", found \"slsa-framework/example-package\"",
        ),
        (
            "--certificate-github-workflow-trigger",
            "push",
            "GitHub workflow trigger (1.3.6.1.4.1.57264.1.20) differs: expected \"push\", found \"workflow_dispatch\"",
        ),
        (
            "--certificate-github-workflow-ref",
            "refs/heads/release",
            "GitHub source ref (1.3.6.1.4.1.57264.1.14) differs",
        ),
        (
            "--certificate-github-workflow-sha",
            "0000000000000000000000000000000000000000",
            "GitHub workflow sha (1.3.6.1.4.1.57264.1.3) differs",
        ),
        (
            "--certificate-github-workflow-name",
            "release.yml",
            "GitHub workflow name (1.3.6.1.4.1.57264.1.4) differs",
        ),
    ];
    for (flag, value, reason) in wrong {
        let r = verify(&[flag, value]);
        assert_code(&r, 1, flag);
        assert!(r.stderr.contains(reason), "{flag}: {}", r.stderr);
        let r = cosign_verify(&[flag, value]);
        assert_ne!(r.code, 0, "cosign {flag} {value}: {}", r.stdout);
        assert!(
            r.stderr.contains("expected GitHub Workflow"),
            "cosign {flag}: {}",
            r.stderr
        );
    }

    // A key and a GitHub claim together are refused as bad input.
    let r = run(&mut kibaverify(
        dir,
        &reg,
        &[
            "verify",
            &image,
            "--key",
            "cosign.pub",
            "--certificate-github-workflow-repository",
            "o/r",
        ],
    ));
    assert_code(&r, 2, "--key with a GitHub claim");
}

/// Signs `image` with `-a team=platform` in `layout`, then checks `verify -a` with kibaverify and cosign.
fn annotations_round_trip(dir: &Path, reg: &TestRegistry, image: &str, layout: &str) {
    let r = run(&mut kibaverify(
        dir,
        reg,
        &[
            "sign",
            image,
            "--key",
            "ours.key",
            "--layout",
            layout,
            "-a",
            "team=platform",
            "-a",
            "tier=1",
        ],
    ));
    assert_code(&r, 0, "kibaverify sign -a");
    let verify = |annotations: &[&str]| {
        let mut args = vec![
            "verify",
            image,
            "--key",
            "ours.pub",
            "--insecure-ignore-tlog",
        ];
        args.extend_from_slice(annotations);
        run(&mut kibaverify(dir, reg, &args))
    };
    let r = verify(&["-a", "team=platform", "-a", "tier=1"]);
    assert_code(&r, 0, "verify -a with the signed pairs");
    let r = verify(&["-a", "team=platform"]);
    assert_code(&r, 0, "verify -a with a subset of the signed pairs");
    let r = verify(&["-a", "team=payments"]);
    assert_code(&r, 1, "verify -a with a different value");
    assert!(
        r.stderr
            .contains("annotations: team is \"platform\", not \"payments\""),
        "{layout}: {}",
        r.stderr
    );
    let r = verify(&["-a", "team=platform", "-a", "env=prod"]);
    assert_code(&r, 1, "verify -a with a pair that was not signed");
    assert!(
        r.stderr.contains("annotations: env=prod is missing"),
        "{layout}: {}",
        r.stderr
    );
    let r = verify(&["-a", "no-equals-sign"]);
    assert_code(&r, 2, "verify -a without =");

    let cosign_verify = |annotations: &[&str]| {
        let mut args = vec![
            "verify",
            "--key",
            "ours.pub",
            "--insecure-ignore-tlog",
            "--allow-http-registry",
        ];
        args.extend_from_slice(annotations);
        args.push(image);
        run(&mut peer("cosign", dir, &args))
    };
    let r = cosign_verify(&["-a", "team=platform", "-a", "tier=1"]);
    assert_code(&r, 0, "cosign verify -a with the signed pairs");
    // cosign v3.1.3 checks -a in both layouts ("no matching signatures" for the legacy layout, "no matching
    // attestations" for the bundle one) with the same reason.
    for pairs in [["-a", "team=payments"], ["-a", "env=prod"]] {
        let r = cosign_verify(&pairs);
        assert_ne!(
            r.code, 0,
            "cosign verify {pairs:?} ({layout}): {}",
            r.stdout
        );
        assert!(
            r.stderr.contains("missing or incorrect annotation"),
            "{layout}: {}",
            r.stderr
        );
    }
}

#[test]
fn verify_annotations_are_checked_in_both_layouts() {
    let reg = TestRegistry::start(RegistryMode::Referrers).unwrap();
    push_fixture_images(&reg).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let r = run(Command::new(BIN)
        .current_dir(dir)
        .env("COSIGN_PASSWORD", PASSWORD)
        .args(["generate-key-pair", "--output-key-prefix", "ours"]));
    assert_code(&r, 0, "generate-key-pair");
    let host = reg.host();
    annotations_round_trip(dir, &reg, &format!("{host}/fixtures/app:v1"), "legacy");
    annotations_round_trip(
        dir,
        &reg,
        &format!("{host}/fixtures/config-only:v1"),
        "bundle",
    );

    // Two signatures, one with the pair and one without: the image passes, the other signature is reported.
    let image = format!("{host}/fixtures/app:v1");
    let r = run(&mut kibaverify(
        dir,
        &reg,
        &["sign", &image, "--key", "ours.key", "--layout", "legacy"],
    ));
    assert_code(&r, 0, "second signature without annotations");
    let r = run(&mut kibaverify(
        dir,
        &reg,
        &[
            "verify",
            &image,
            "--key",
            "ours.pub",
            "--insecure-ignore-tlog",
            "-a",
            "team=platform",
        ],
    ));
    assert_code(&r, 0, "one of two signatures has the pair");
    assert!(
        r.stdout.contains("1 of 2 signatures passed"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains("annotations: team=platform is missing (signed annotations in the payload's optional section: none)"),
        "{}",
        r.stdout
    );
}
