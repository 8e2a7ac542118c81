//! `kibaverify verify-bundle` end to end: exit codes, messages and JSON output.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a test failure

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

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

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kibaverify"))
        .arg("verify-bundle")
        .args(args)
        .output()
        .expect("kibaverify runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn keyless_bundle_verifies_with_default_trusted_root() {
    let bundle = case("happy-path-v0.3", "bundle.sigstore.json");
    let out = run(&[
        "--bundle",
        &bundle,
        "--artifact",
        &a_txt(),
        "--certificate-identity",
        IDENTITY,
        "--certificate-oidc-issuer",
        ISSUER,
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).starts_with("Verified OK"),
        "{}",
        text(&out.stdout)
    );
    assert!(
        text(&out.stdout).contains("2024-03-19T17:26:26Z"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn digest_and_regexp_flags_work_and_json_output_names_the_signer() {
    let bundle = case("happy-path-v0.1", "bundle.sigstore.json");
    let out = run(&[
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
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
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
    let out = run(&[
        "--bundle",
        &bundle,
        "--artifact",
        &a_txt(),
        "--certificate-identity",
        "someone@example.com",
        "--certificate-oidc-issuer",
        ISSUER,
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("Verification FAILED")
            && err.contains("someone@example.com")
            && err.contains(IDENTITY),
        "{err}"
    );
}

#[test]
fn forged_bundle_exits_1_and_json_carries_the_reason() {
    let bundle = case("set-invalid-signature_fail", "bundle.sigstore.json");
    let out = run(&[
        "--bundle",
        &bundle,
        "--artifact",
        &a_txt(),
        "--certificate-identity",
        IDENTITY,
        "--certificate-oidc-issuer",
        ISSUER,
        "--output",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
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
    let out = run(&[
        "--bundle",
        &case("managed-key-and-trusted-root", "bundle.sigstore.json"),
        "--artifact",
        &a_txt(),
        "--key",
        &case("managed-key-and-trusted-root", "key.pub"),
        "--trusted-root",
        &case("managed-key-and-trusted-root", "trusted_root.json"),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}

#[test]
fn bad_input_exits_2_naming_the_problem() {
    let bundle = case("happy-path-v0.3", "bundle.sigstore.json");
    let out = run(&[
        "--bundle",
        &bundle,
        "--digest",
        "sha256:zz",
        "--certificate-identity",
        IDENTITY,
        "--certificate-oidc-issuer",
        ISSUER,
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("--digest"),
        "{}",
        text(&out.stderr)
    );

    let out = run(&[
        "--bundle",
        &case("bundle-negative-log-index_fail", "bundle.sigstore.json"),
        "--artifact",
        &a_txt(),
        "--certificate-identity",
        IDENTITY,
        "--certificate-oidc-issuer",
        ISSUER,
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("tlogEntries[0].logIndex"),
        "{}",
        text(&out.stderr)
    );

    let out = run(&[
        "--bundle",
        "/nonexistent.json",
        "--artifact",
        &a_txt(),
        "--certificate-identity",
        IDENTITY,
        "--certificate-oidc-issuer",
        ISSUER,
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("/nonexistent.json"),
        "{}",
        text(&out.stderr)
    );

    // Neither an identity nor a key: clap refuses (exit 2).
    let out = run(&["--bundle", &bundle, "--artifact", &a_txt()]);
    assert_eq!(out.status.code(), Some(2));
    // An identity without an issuer.
    let out = run(&[
        "--bundle",
        &bundle,
        "--artifact",
        &a_txt(),
        "--certificate-identity",
        IDENTITY,
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("--certificate-oidc-issuer"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn github_workflow_claims_shared_with_verify_are_checked() {
    let bundle = case("happy-path-v0.3", "bundle.sigstore.json");
    let with = |flag: &str, value: &str| {
        run(&[
            "--bundle",
            &bundle,
            "--artifact",
            &a_txt(),
            "--certificate-identity",
            IDENTITY,
            "--certificate-oidc-issuer",
            ISSUER,
            flag,
            value,
        ])
    };
    let out = with(
        "--certificate-github-workflow-repository",
        "sigstore-conformance/extremely-dangerous-public-oidc-beacon",
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let out = with("--certificate-github-workflow-repository", "other/repo");
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("GitHub workflow repository (1.3.6.1.4.1.57264.1.5) differs: expected \"other/repo\", found \"sigstore-conformance/extremely-dangerous-public-oidc-beacon\""),
        "{err}"
    );
    let out = with("--certificate-github-workflow-sha", "0".repeat(40).as_str());
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("GitHub workflow sha (1.3.6.1.4.1.57264.1.3)"),
        "{}",
        text(&out.stderr)
    );
}
