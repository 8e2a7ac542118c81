//! `kibaverify verify` / `verify-attestation` policy flags beyond the signer: cosign's
//! `--certificate-github-workflow-*` claims on real slsa-github-generator attestations (production Fulcio
//! certificates), and cosign's `verify -a key=value` on key-signed images in both layouts, cross-checked with the
//! real cosign (v3.1.3 peer) on the real registry harness.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use kibaship_testsupport::registry::{RegistryMode, TestRegistry};

mod support;
use support::{
    GITHUB_ACTIONS_ISSUER, Tools, assert_code, production_trusted_root, registry_with_fixtures,
    run, slsa_generator_policy,
};

const PASSWORD: &str = "claims-test-pw";

#[test]
fn github_workflow_claims_are_checked_on_real_slsa_attestations() {
    let reg = TestRegistry::start(RegistryMode::Plain).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let tools = Tools::new(tmp.path(), &reg, Some(PASSWORD));
    let image = tools.push_slsa_layout(&mut String::new());
    let root = production_trusted_root();
    let policy = slsa_generator_policy(GITHUB_ACTIONS_ISSUER, &root);
    let verify = |claims: &[&str]| {
        let mut c = tools.kibaverify(&["verify-attestation", &image, "--type", "slsaprovenance"]);
        c.args(policy).args(claims);
        run(&mut c)
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
        let mut c = tools.cosign(&["verify-attestation", "--type", "slsaprovenance"]);
        c.args(policy)
            .arg("--allow-http-registry")
            .args(claims)
            .arg(&image);
        run(&mut c)
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
    let r = run(&mut tools.kibaverify(&[
        "verify",
        &image,
        "--key",
        "cosign.pub",
        "--certificate-github-workflow-repository",
        "o/r",
    ]));
    assert_code(&r, 2, "--key with a GitHub claim");
}

/// Signs `image` with `-a team=platform` in `layout`, then checks `verify -a` with kibaverify and cosign.
fn annotations_round_trip(tools: &Tools<'_>, image: &str, layout: &str) {
    let r = run(&mut tools.kibaverify(&[
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
    ]));
    assert_code(&r, 0, "kibaverify sign -a");
    let verify = |annotations: &[&str]| {
        run(&mut tools.verify_with_key("verify", image, "ours.pub", annotations))
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
        let mut c = tools.cosign_verify_with_key("ours.pub", image);
        c.args(annotations);
        run(&mut c)
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
    let reg = registry_with_fixtures(RegistryMode::Referrers);
    let tmp = tempfile::tempdir().unwrap();
    let tools = Tools::new(tmp.path(), &reg, Some(PASSWORD));
    tools.generate_our_key_pair(&mut String::new());
    annotations_round_trip(&tools, &tools.fixture("app"), "legacy");
    annotations_round_trip(&tools, &tools.fixture("config-only"), "bundle");

    // Two signatures, one with the pair and one without: the image passes, the other signature is reported.
    let image = tools.fixture("app");
    let r =
        run(&mut tools.kibaverify(&["sign", &image, "--key", "ours.key", "--layout", "legacy"]));
    assert_code(&r, 0, "second signature without annotations");
    let r = run(&mut tools.verify_with_key("verify", &image, "ours.pub", &["-a", "team=platform"]));
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
