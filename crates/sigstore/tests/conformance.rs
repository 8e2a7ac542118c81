//! Walks every sigstore-conformance case in `testdata/sigstore/conformance`: plain names must
//! verify, `_fail` names must not. Prints a pass table.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a test failure

use std::path::{Path, PathBuf};

use kibaship_sigstore::{
    ArtifactPolicy, Bundle, CertificateIdentity, IdentityPolicy, PublicKey, TrustedRoot, Verifier,
    VerifyError,
};

const DEFAULT_IDENTITY: &str = "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main";
const DEFAULT_ISSUER: &str = "https://token.actions.githubusercontent.com";

fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/sigstore")
}

fn read_trimmed(p: &Path) -> Option<String> {
    std::fs::read_to_string(p).ok().map(|s| s.trim().to_owned())
}

/// Runs one case; `Ok` means it verified, `Err` holds the reason it did not.
fn run_case(dir: &Path) -> Result<(), String> {
    verify_case(dir)?.map_err(|e| e.to_string())
}

/// Runs one case: the outer error is a case that could not be set up or loaded, the inner one the verifier's.
fn verify_case(dir: &Path) -> Result<Result<(), VerifyError>, String> {
    let root_path = if dir.join("trusted_root.json").exists() {
        dir.join("trusted_root.json")
    } else {
        testdata().join("trusted-roots/production-trusted_root.json")
    };
    let root = TrustedRoot::from_json(&std::fs::read(&root_path).map_err(|e| e.to_string())?)
        .map_err(|e| e.to_string())?;
    let verifier = Verifier::new(root);
    let artifact_path = if dir.join("artifact").exists() {
        dir.join("artifact")
    } else {
        dir.parent().unwrap().join("a.txt")
    };
    let artifact = std::fs::read(artifact_path).map_err(|e| e.to_string())?;
    let policy = if dir.join("key.pub").exists() {
        let pem = std::fs::read_to_string(dir.join("key.pub")).map_err(|e| e.to_string())?;
        IdentityPolicy::Key(PublicKey::from_pem(&pem).map_err(|e| e.to_string())?)
    } else {
        let identity =
            read_trimmed(&dir.join("identity")).unwrap_or_else(|| DEFAULT_IDENTITY.into());
        let issuer = read_trimmed(&dir.join("issuer")).unwrap_or_else(|| DEFAULT_ISSUER.into());
        IdentityPolicy::Certificate(CertificateIdentity::exact(identity, issuer))
    };
    let bundle_bytes =
        std::fs::read(dir.join("bundle.sigstore.json")).map_err(|e| e.to_string())?;
    let bundle = Bundle::from_json(&bundle_bytes).map_err(|e| format!("load: {e}"))?;
    Ok(verifier
        .verify(&bundle, ArtifactPolicy::Bytes(&artifact), &policy)
        .map(|_| ()))
}

/// The verifier tells a certificate that was not valid at the signing time (its own variant) from one that does
/// not chain to a trusted CA (`Certificate`): callers (kibaship-cosign's reason codes) depend on the difference.
#[test]
fn certificate_failures_say_whether_it_was_the_time_or_the_chain() {
    let corpus = testdata().join("conformance");
    for case in [
        "intoto-expired-certificate_fail",
        "intoto-set-outside-signing-cert-validity_fail",
    ] {
        let outcome = verify_case(&corpus.join(case)).unwrap();
        assert!(
            matches!(
                outcome,
                Err(VerifyError::CertificateNotValidAtSigningTime(_))
            ),
            "{case}: {outcome:?}"
        );
    }
}

#[test]
fn sigstore_conformance_cases() {
    let base = testdata().join("conformance");
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&base)
        .expect("conformance corpus present")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    cases.sort();
    assert_eq!(cases.len(), 53, "the corpus has 53 cases");
    let mut right = 0;
    let mut wrong = Vec::new();
    println!("{:<62} {:<8} {:<6} reason", "case", "expect", "result");
    for dir in &cases {
        let name = dir.file_name().unwrap().to_string_lossy().to_string();
        let expect_pass = !name.ends_with("_fail");
        let outcome = run_case(dir);
        let ok = outcome.is_ok() == expect_pass;
        let reason = outcome.err().unwrap_or_default();
        println!(
            "{:<62} {:<8} {:<6} {}",
            name,
            if expect_pass { "pass" } else { "fail" },
            if ok { "RIGHT" } else { "WRONG" },
            reason
        );
        if ok {
            right += 1;
        } else {
            wrong.push(name);
        }
    }
    println!("conformance: {right}/{} right", cases.len());
    assert!(wrong.is_empty(), "cases decided wrongly: {wrong:?}");
}
