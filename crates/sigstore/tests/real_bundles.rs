//! Real bundles from sigstore-python and sigstore-go with known outcomes, offline.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a test failure

use std::path::{Path, PathBuf};

use kibaship_sigstore::{
    ArtifactPolicy, Bundle, BundleError, CertificateIdentity, GithubClaims, HashAlgorithm,
    IdentityPolicy, Matcher, TrustedRoot, Verifier, VerifyError,
};

fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/sigstore")
}

fn read(rel: &str) -> Vec<u8> {
    std::fs::read(testdata().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn verifier(root: &str) -> Verifier {
    Verifier::new(TrustedRoot::from_json(&read(root)).expect("trusted root parses"))
}

fn staging() -> Verifier {
    verifier("trusted-roots/staging-trusted_root.json")
}

fn verify(
    v: &Verifier,
    bundle: &str,
    artifact: &str,
    identity: CertificateIdentity,
) -> Result<(), VerifyError> {
    let bundle = Bundle::from_json(&read(bundle)).expect("bundle parses");
    let artifact = read(artifact);
    v.verify(
        &bundle,
        ArtifactPolicy::Bytes(&artifact),
        &IdentityPolicy::Certificate(identity),
    )
    .map(|_| ())
}

const GITHUB_OAUTH: &str = "https://github.com/login/oauth";

#[test]
fn sigstore_python_staging_bundles_verify_offline() {
    let v = staging();
    verify(
        &v,
        "sigstore-python/bundle.txt.sigstore",
        "sigstore-python/bundle.txt",
        CertificateIdentity::exact("a@tny.town", GITHUB_OAUTH),
    )
    .expect("bundle.txt (v0.1) verifies");
    verify(
        &v,
        "sigstore-python/bundle_v3.txt.sigstore",
        "sigstore-python/bundle_v3.txt",
        CertificateIdentity::exact("william@yossarian.net", GITHUB_OAUTH),
    )
    .expect("bundle_v3.txt verifies");
}

#[test]
fn sigstore_python_staging_rekor_v2_bundles_verify_offline() {
    let v = staging();
    verify(
        &v,
        "sigstore-python/staging-rekor-v2.txt.sigstore.json",
        "sigstore-python/staging-rekor-v2.txt",
        CertificateIdentity::exact("jku@goto.fi", GITHUB_OAUTH),
    )
    .expect("Rekor v2 message-signature bundle verifies");
    verify(
        &v,
        "sigstore-python/a.dsse.staging-rekor-v2.txt.sigstore.json",
        "conformance/a.txt", // the statement's subject (upstream verifies the envelope alone)
        CertificateIdentity::exact(
            "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main",
            "https://token.actions.githubusercontent.com",
        ),
    )
    .expect("Rekor v2 DSSE bundle verifies");
}

#[test]
fn sigstore_python_cve_2022_36056_is_rejected() {
    let err = verify(
        &staging(),
        "sigstore-python/bundle_cve_2022_36056.txt.sigstore",
        "sigstore-python/bundle_cve_2022_36056.txt",
        CertificateIdentity::exact("william@yossarian.net", GITHUB_OAUTH),
    )
    .expect_err("log entry inconsistent with the bundle");
    println!("bundle_cve_2022_36056: {err}");
    assert!(matches!(err, VerifyError::TransparencyLog { .. }), "{err}");
}

#[test]
fn sigstore_python_malformed_bundles_fail_to_load() {
    for (name, expect) in [
        ("bundle_invalid_version.txt.sigstore", "mediaType"),
        ("bundle_no_cert_v1.txt.sigstore", "x509CertificateChain"),
        ("bundle_no_log_entry.txt.sigstore", "tlogEntries"),
        ("bundle_no_checkpoint.txt.sigstore", "checkpoint"),
    ] {
        let err = Bundle::from_json(&read(&format!("sigstore-python/{name}"))).expect_err(name);
        println!("{name}: {err}");
        assert!(
            matches!(
                err,
                BundleError::Field { .. } | BundleError::UnknownVersion(_)
            ),
            "{name}: {err}"
        );
        assert!(
            err.to_string().contains(expect),
            "{name}: {err} should name {expect}"
        );
    }
}

fn github_identity() -> CertificateIdentity {
    CertificateIdentity::exact(
        "https://github.com/trailofbits/rfc8785.py/.github/workflows/release.yml@refs/tags/v0.1.2",
        "https://token.actions.githubusercontent.com",
    )
}

fn verify_github(
    identity: CertificateIdentity,
) -> Result<kibaship_sigstore::VerificationResult, VerifyError> {
    let v = verifier("trusted-roots/production-trusted_root.json");
    let bundle =
        Bundle::from_json(&read("sigstore-python/bundle_v3_github.whl.sigstore")).expect("parses");
    let artifact = read("sigstore-python/bundle_v3_github.whl");
    v.verify(
        &bundle,
        ArtifactPolicy::Bytes(&artifact),
        &IdentityPolicy::Certificate(identity),
    )
}

#[test]
fn github_actions_claims_match_and_mismatch_by_field() {
    let mut id = github_identity();
    id.github = GithubClaims {
        source_repository: Some(Matcher::Exact(
            "https://github.com/trailofbits/rfc8785.py".into(),
        )),
        source_ref: Some(Matcher::Exact("refs/tags/v0.1.2".into())),
        workflow: Some(
            Matcher::regex(
                r"^https://github\.com/trailofbits/rfc8785\.py/\.github/workflows/release\.yml@",
            )
            .unwrap(),
        ),
        trigger: Some(Matcher::Exact("release".into())),
        workflow_sha: Some(Matcher::Exact(
            "d8b4a6445f38c48b9137a8099706d9b8073146e4".into(),
        )),
        workflow_name: Some(Matcher::Exact("release".into())),
        workflow_repository: Some(Matcher::Exact("trailofbits/rfc8785.py".into())),
    };
    assert!(!id.github.is_empty());
    assert!(GithubClaims::default().is_empty());
    let result = verify_github(id).expect("all claims match");
    println!("{}", serde_json::to_string_pretty(&result).unwrap());

    let mut wrong_repo = github_identity();
    wrong_repo.github.source_repository =
        Some(Matcher::Exact("https://github.com/evil/rfc8785.py".into()));
    let err = verify_github(wrong_repo).expect_err("repository differs");
    let VerifyError::Policy(m) = &err else {
        panic!("{err}")
    };
    assert!(m.field.contains("source repository"), "{err}");
    assert_eq!(m.expected, "\"https://github.com/evil/rfc8785.py\"");
    assert_eq!(m.found, "\"https://github.com/trailofbits/rfc8785.py\"");

    let mut wrong_trigger = github_identity();
    wrong_trigger.github.trigger = Some(Matcher::Exact("push".into()));
    let err = verify_github(wrong_trigger).expect_err("trigger differs");
    assert!(err.to_string().contains("trigger"), "{err}");

    // The first, raw-string extensions (cosign's --certificate-github-workflow-{sha,name,repository}).
    for (claims, field, found) in [
        (
            GithubClaims {
                workflow_sha: Some(Matcher::Exact("0".repeat(40))),
                ..GithubClaims::default()
            },
            "GitHub workflow sha (1.3.6.1.4.1.57264.1.3)",
            "\"d8b4a6445f38c48b9137a8099706d9b8073146e4\"",
        ),
        (
            GithubClaims {
                workflow_name: Some(Matcher::Exact("build".into())),
                ..GithubClaims::default()
            },
            "GitHub workflow name (1.3.6.1.4.1.57264.1.4)",
            "\"release\"",
        ),
        (
            GithubClaims {
                workflow_repository: Some(Matcher::regex("^evil/").unwrap()),
                ..GithubClaims::default()
            },
            "GitHub workflow repository (1.3.6.1.4.1.57264.1.5)",
            "\"trailofbits/rfc8785.py\"",
        ),
    ] {
        let mut id = github_identity();
        id.github = claims;
        let err = verify_github(id).expect_err("claim differs");
        let VerifyError::Policy(m) = &err else {
            panic!("{err}")
        };
        assert_eq!((m.field, m.found.as_str()), (field, found), "{err}");
    }

    let mut wrong_issuer = github_identity();
    wrong_issuer.issuer = Matcher::Exact("https://accounts.google.com".into());
    let err = verify_github(wrong_issuer).expect_err("issuer differs");
    assert!(
        err.to_string().contains("OIDC issuer") && err.to_string().contains("accounts.google.com"),
        "{err}"
    );

    let mut regex_san = github_identity();
    regex_san.san = Matcher::regex(r"^https://github\.com/trailofbits/").unwrap();
    verify_github(regex_san).expect("SAN regex matches");

    let mut wrong_san = github_identity();
    wrong_san.san = Matcher::regex(r"^https://github\.com/sigstore/").unwrap();
    let err = verify_github(wrong_san).expect_err("SAN regex does not match");
    assert!(
        err.to_string().contains("subject alternative name")
            && err.to_string().contains("trailofbits"),
        "{err}"
    );
}

#[test]
fn sigstore_go_othername_san() {
    let v = verifier("sigstore-go/scaffolding.json");
    let bundle = Bundle::from_json(&read("sigstore-go/othername.sigstore.json")).expect("parses");
    let digest =
        hex::decode("bc103b4a84971ef6459b294a2b98568a2bfb72cded09d4acd1e16366a401f95b").unwrap();
    let artifact = ArtifactPolicy::Digest {
        algorithm: HashAlgorithm::Sha256,
        digest: &digest,
    };
    let ok = IdentityPolicy::Certificate(CertificateIdentity::exact(
        "foo!oidc.local",
        "http://oidc.local:8080",
    ));
    v.verify(&bundle, artifact, &ok)
        .expect("otherName SAN verifies");
    let wrong = IdentityPolicy::Certificate(CertificateIdentity::exact(
        "foo@oidc.local",
        "http://oidc.local:8080",
    ));
    let err = v
        .verify(&bundle, artifact, &wrong)
        .expect_err("different SAN");
    assert!(matches!(err, VerifyError::Policy(_)), "{err}");
    assert!(
        err.to_string().contains("otherName \"foo!oidc.local\""),
        "{err}"
    );
}

/// sigstore-python's TSA tests: the staging trusted root with the test TSA of `tsa/ca.json`.
fn tsa_verifier() -> Verifier {
    let mut root: serde_json::Value =
        serde_json::from_slice(&read("trusted-roots/staging-trusted_root.json")).unwrap();
    let ca: serde_json::Value =
        serde_json::from_slice(&read("sigstore-python/tsa/ca.json")).unwrap();
    root["timestampAuthorities"] = serde_json::json!([ca]);
    Verifier::new(TrustedRoot::from_json(root.to_string().as_bytes()).unwrap())
}

const ALEXIS: &str = "alexis.challande@trailofbits.com";
const GOOGLE: &str = "https://accounts.google.com";

#[test]
fn sigstore_python_tsa_bundles() {
    let v = tsa_verifier();
    let bundle = Bundle::from_json(&read("sigstore-python/tsa/bundle.txt.sigstore")).unwrap();
    let artifact = read("sigstore-python/tsa/bundle.txt");
    let policy = IdentityPolicy::Certificate(CertificateIdentity::exact(ALEXIS, GOOGLE));
    let result = v
        .verify(&bundle, ArtifactPolicy::Bytes(&artifact), &policy)
        .expect("one valid timestamp and the SET");
    assert!(result.verified_times.iter().any(|t| t.source == "rfc3161"));
    // Its second timestamp is over another signature: it adds no time, and is reported.
    assert_eq!(
        result.ignored_timestamps.len(),
        1,
        "{:?}",
        result.ignored_timestamps
    );

    let late = Bundle::from_json(&read(
        "sigstore-python/tsa/bundle.txt.late_timestamp.sigstore",
    ))
    .unwrap();
    let err = v
        .verify(
            &late,
            ArtifactPolicy::Bytes(&artifact),
            &IdentityPolicy::Certificate(CertificateIdentity::exact(
                "insecure-cloudtop-shared-user@cloudtop-prod-us-east.iam.gserviceaccount.com",
                GOOGLE,
            )),
        )
        .expect_err("late timestamp bundle");
    println!("late_timestamp: {err}");

    for (name, field) in [
        ("bundle.duplicate.sigstore", "duplicate timestamp"),
        ("bundle.many_timestamp.sigstore", "more than 32 timestamps"),
    ] {
        let err = Bundle::from_json(&read(&format!("sigstore-python/tsa/{name}"))).expect_err(name);
        assert!(err.to_string().contains(field), "{name}: {err}");
    }
}
