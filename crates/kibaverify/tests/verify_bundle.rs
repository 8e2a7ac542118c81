//! `kibaverify verify-bundle` end to end: exit codes, messages and JSON output.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a test failure

use std::path::{Path, PathBuf};
use std::process::Command;

mod support;
use support::{BIN, Run, assert_code, assert_exit_with_message, run};

const IDENTITY: &str = "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main";
const ISSUER: &str = "https://token.actions.githubusercontent.com";

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/sigstore/conformance")
}

fn case(name: &str, file: &str) -> String {
    corpus().join(name).join(file).display().to_string()
}

fn a_txt() -> String {
    corpus().join("a.txt").display().to_string()
}

/// `kibaverify verify-bundle args...`.
fn verify_bundle(args: &[&str]) -> Run {
    run(Command::new(BIN).arg("verify-bundle").args(args))
}

/// `kibaverify verify-bundle` of `bundle` over the corpus' `a.txt`, for a certificate of `identity` from
/// GitHub Actions, with `extra` flags.
fn verify_a_txt(bundle: &str, identity: &str, extra: &[&str]) -> Run {
    let artifact = a_txt();
    let mut args = vec![
        "--bundle",
        bundle,
        "--artifact",
        &artifact,
        "--certificate-identity",
        identity,
        "--certificate-oidc-issuer",
        ISSUER,
    ];
    args.extend_from_slice(extra);
    verify_bundle(&args)
}

#[test]
fn keyless_bundle_verifies_with_default_trusted_root() {
    let bundle = case("happy-path-v0.3", "bundle.sigstore.json");
    let r = verify_a_txt(&bundle, IDENTITY, &[]);
    assert_code(&r, 0, "happy path v0.3");
    assert!(r.stdout.starts_with("Verified OK"), "{}", r.stdout);
    assert!(r.stdout.contains("2024-03-19T17:26:26Z"), "{}", r.stdout);
}

#[test]
fn digest_and_regexp_flags_work_and_json_output_names_the_signer() {
    let bundle = case("happy-path-v0.1", "bundle.sigstore.json");
    let r = verify_bundle(&[
        "--bundle",
        &bundle,
        "--digest",
        "sha256:a0cfc71271d6e278e57cd332ff957c3f7043fdda354c4cbb190a30d56efa01bf",
        "--certificate-identity-regexp",
        "^https://github.com/sigstore-conformance/",
        "--certificate-oidc-issuer-regexp",
        "token\\.actions\\.githubusercontent\\.com$",
        "--output",
        "json",
    ]);
    assert_code(&r, 0, "happy path v0.1 by digest");
    let v: serde_json::Value = serde_json::from_str(&r.stdout).expect("JSON");
    assert_eq!(v["verified"], true);
    assert_eq!(v["result"]["signer"]["issuer"], ISSUER);
    assert_eq!(
        v["result"]["verifiedTimes"][0]["source"],
        "transparency-log"
    );
    assert_eq!(v["result"]["logEntries"][0]["signedEntryTimestamp"], true);
}

#[test]
fn wrong_identity_exits_1_with_the_differing_field() {
    let bundle = case("happy-path-v0.3", "bundle.sigstore.json");
    let r = verify_a_txt(&bundle, "someone@example.com", &[]);
    assert_exit_with_message(&r, 1, "Verification FAILED");
    assert!(
        r.stderr.contains("someone@example.com") && r.stderr.contains(IDENTITY),
        "{}",
        r.stderr
    );
}

#[test]
fn forged_bundle_exits_1_and_json_carries_the_reason() {
    let bundle = case("set-invalid-signature_fail", "bundle.sigstore.json");
    let r = verify_a_txt(&bundle, IDENTITY, &["--output", "json"]);
    assert_code(&r, 1, "forged bundle");
    let v: serde_json::Value = serde_json::from_str(&r.stdout).expect("JSON");
    assert_eq!(v["verified"], false);
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("signed entry timestamp"),
        "{v}"
    );
}

#[test]
fn managed_key_with_custom_trusted_root() {
    let r = verify_bundle(&[
        "--bundle",
        &case("managed-key-and-trusted-root", "bundle.sigstore.json"),
        "--artifact",
        &a_txt(),
        "--key",
        &case("managed-key-and-trusted-root", "key.pub"),
        "--trusted-root",
        &case("managed-key-and-trusted-root", "trusted_root.json"),
    ]);
    assert_code(&r, 0, "managed key");
}

#[test]
fn bad_input_exits_2_naming_the_problem() {
    let bundle = case("happy-path-v0.3", "bundle.sigstore.json");
    let r = verify_bundle(&[
        "--bundle",
        &bundle,
        "--digest",
        "sha256:zz",
        "--certificate-identity",
        IDENTITY,
        "--certificate-oidc-issuer",
        ISSUER,
    ]);
    assert_exit_with_message(&r, 2, "--digest");

    let r = verify_a_txt(
        &case("bundle-negative-log-index_fail", "bundle.sigstore.json"),
        IDENTITY,
        &[],
    );
    assert_exit_with_message(&r, 2, "tlogEntries[0].logIndex");

    let r = verify_a_txt("/nonexistent.json", IDENTITY, &[]);
    assert_exit_with_message(&r, 2, "/nonexistent.json");

    // Neither an identity nor a key: clap refuses (exit 2).
    let r = verify_bundle(&["--bundle", &bundle, "--artifact", &a_txt()]);
    assert_code(&r, 2, "neither an identity nor a key");
    // An identity without an issuer.
    let r = verify_bundle(&[
        "--bundle",
        &bundle,
        "--artifact",
        &a_txt(),
        "--certificate-identity",
        IDENTITY,
    ]);
    assert_exit_with_message(&r, 2, "--certificate-oidc-issuer");
}

#[test]
fn github_workflow_claims_shared_with_verify_are_checked() {
    let bundle = case("happy-path-v0.3", "bundle.sigstore.json");
    let with = |flag: &str, value: &str| verify_a_txt(&bundle, IDENTITY, &[flag, value]);
    let r = with(
        "--certificate-github-workflow-repository",
        "sigstore-conformance/extremely-dangerous-public-oidc-beacon",
    );
    assert_code(&r, 0, "the right workflow repository");
    let r = with("--certificate-github-workflow-repository", "other/repo");
    assert_exit_with_message(
        &r,
        1,
        "GitHub workflow repository (1.3.6.1.4.1.57264.1.5) differs: expected \"other/repo\", found \"sigstore-conformance/extremely-dangerous-public-oidc-beacon\"",
    );
    let r = with("--certificate-github-workflow-sha", "0".repeat(40).as_str());
    assert_exit_with_message(&r, 1, "GitHub workflow sha (1.3.6.1.4.1.57264.1.3)");
}
