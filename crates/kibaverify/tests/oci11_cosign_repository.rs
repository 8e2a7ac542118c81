//! cosign's OCI 1.1 signature mode with `COSIGN_REPOSITORY` (issue 20 item 6). cosign v3.1.3 writes the referrer
//! (`WriteSignaturesExperimentalOCI`: layer, config and manifest) in the image's own repository whatever
//! `COSIGN_REPOSITORY` says, while its `verify --experimental-oci11` lists referrers in `COSIGN_REPOSITORY`. So
//! `kibaverify sign --layout oci-1-1` writes there too (with a note), and both tools verify the signature without
//! `COSIGN_REPOSITORY`; with it set, neither finds it (cosign's reader looks in the signature repository).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

use kibaship_testsupport::registry::RegistryMode;

mod support;
use support::{Tools, assert_code, registry_with_fixtures, run};

const PASSWORD: &str = "oci11-cosign-repository-pw";
const SIG_ARTIFACT_TYPE: &str = "application/vnd.dev.cosign.artifact.sig.v1+json";

fn with_store(mut c: Command, store: &str) -> Command {
    c.env("COSIGN_REPOSITORY", store);
    c
}

/// The OCI 1.1 signature referrers of `image` (by digest).
fn signature_referrers(tools: &Tools<'_>, image: &str) -> usize {
    let r = run(&mut tools.kibaverify(&[
        "referrers",
        image,
        "--artifact-type",
        SIG_ARTIFACT_TYPE,
        "--output",
        "json",
    ]));
    assert_code(&r, 0, "kibaverify referrers");
    let listed: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    listed["referrers"].as_array().unwrap().len()
}

fn oci11_ignores_cosign_repository(mode: RegistryMode) {
    let reg = registry_with_fixtures(mode);
    let tmp = tempfile::tempdir().unwrap();
    let tools = Tools::new(tmp.path(), &reg, Some(PASSWORD));
    let host = reg.host();
    let store = format!("{host}/signatures/store");
    let mut transcript = String::new();
    tools.generate_both_key_pairs(&mut transcript);
    let theirs = tools.image_by_digest(&tools.fixture("app"), &mut transcript);
    let ours = tools.image_by_digest(&tools.fixture("config-only"), &mut transcript);
    let in_store = |image: &str| format!("{store}@{}", image.rsplit_once('@').unwrap().1);

    // cosign, with COSIGN_REPOSITORY set, writes its OCI 1.1 signature beside the image.
    let mut sign = with_store(
        tools.cosign(&[
            "sign",
            "--key",
            "cosign.key",
            "--tlog-upload=false",
            "--use-signing-config=false",
            "--new-bundle-format=false",
            "--registry-referrers-mode=oci-1-1",
            "--allow-http-registry",
            "--yes",
            &theirs,
        ]),
        &store,
    );
    sign.env("COSIGN_EXPERIMENTAL", "1");
    assert_code(
        &run(&mut sign),
        0,
        "cosign sign --registry-referrers-mode=oci-1-1 with COSIGN_REPOSITORY",
    );
    assert_eq!(signature_referrers(&tools, &theirs), 1);
    assert_eq!(signature_referrers(&tools, &in_store(&theirs)), 0);

    // We do the same, and say so.
    let r = run(&mut with_store(
        tools.kibaverify(&["sign", &ours, "--key", "ours.key", "--layout", "oci-1-1"]),
        &store,
    ));
    assert_code(
        &r,
        0,
        "kibaverify sign --layout oci-1-1 with COSIGN_REPOSITORY",
    );
    assert!(
        r.stderr
            .contains("COSIGN_REPOSITORY is not used with --layout oci-1-1"),
        "{}",
        r.stderr
    );
    assert_eq!(signature_referrers(&tools, &ours), 1);
    assert_eq!(signature_referrers(&tools, &in_store(&ours)), 0);

    // Both tools verify both signatures where they are, without COSIGN_REPOSITORY.
    for (image, key) in [(&theirs, "cosign.pub"), (&ours, "ours.pub")] {
        let r = run(&mut tools.verify_with_key("verify", image, key, &[]));
        assert_code(&r, 0, "kibaverify verify of an OCI 1.1 signature");
        let mut verify = tools.cosign_verify_with_key(key, image);
        verify.arg("--experimental-oci11");
        assert_code(
            &run(&mut verify),
            0,
            "cosign verify --experimental-oci11 of an OCI 1.1 signature",
        );
        // With COSIGN_REPOSITORY set, cosign looks for the referrer in that repository and finds none.
        let mut verify = with_store(tools.cosign_verify_with_key(key, image), &store);
        verify.arg("--experimental-oci11");
        assert_ne!(
            run(&mut verify).code,
            0,
            "cosign found an OCI 1.1 signature in COSIGN_REPOSITORY"
        );
        let r = run(&mut with_store(
            tools.verify_with_key("verify", image, key, &[]),
            &store,
        ));
        assert_code(&r, 1, "kibaverify verify with COSIGN_REPOSITORY");
    }
}

#[test]
fn oci11_signatures_ignore_cosign_repository_with_referrers_api() {
    oci11_ignores_cosign_repository(RegistryMode::Referrers);
}

#[test]
fn oci11_signatures_ignore_cosign_repository_without_referrers_api() {
    oci11_ignores_cosign_repository(RegistryMode::Plain);
}
