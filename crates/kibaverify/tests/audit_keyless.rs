//! `kibaverify audit` with keyless signatures (issue 18): a private Sigstore (Fulcio, Rekor v2, TSA) and one
//! registry with the referrers API; images signed keyless by kibaverify and by the real cosign for one identity,
//! one signed by another identity, and an attestation a policy requires. The policy file and verify's identity
//! flags give the webhook's verdicts; the attestation that verified is in the report with its signer.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeMap;

use kibaship_testsupport::registry::RegistryMode;
use kibaship_testsupport::sigstore::SigstoreOptions;
use serde_json::Value;
use support::{KeylessStack, assert_code, run_logged};

const EMAIL: &str = "tekton-builder@kibaship.test";
const SOMEONE_ELSE: &str = "someone-else@kibaship.test";
const CUSTOM: &str = "https://cosign.sigstore.dev/attestation/v1";

fn by_reference(report: &Value, field: &str) -> BTreeMap<String, Value> {
    report["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["reference"].as_str().unwrap().to_owned(),
                i[field].clone(),
            )
        })
        .collect()
}

#[test]
fn keyless_identities_and_required_attestations() {
    let stack = KeylessStack::start(SigstoreOptions::default(), RegistryMode::Referrers, EMAIL);
    let tools = stack.tools();
    let dir = stack.tmp.path();
    let mut t = String::new();
    let app = tools.fixture("app");
    let theirs = tools.fixture("docker-app");
    let other = tools.fixture("config-only");

    let r = run_logged(&mut stack.sign_keyless(&["sign", &app]), &mut t);
    assert_code(&r, 0, "kibaverify sign --keyless");
    std::fs::write(dir.join("note.txt"), "built by the audit test\n").unwrap();
    let r = run_logged(
        &mut stack.sign_keyless(&[
            "attest",
            &app,
            "--predicate",
            "note.txt",
            "--type",
            "custom",
        ]),
        &mut t,
    );
    assert_code(&r, 0, "kibaverify attest --keyless");
    let theirs_by_digest = tools.image_by_digest(&theirs, &mut t);
    let r = run_logged(
        &mut stack.cosign_sign_keyless(
            &["--signing-config", &stack.signing_config],
            &theirs_by_digest,
        ),
        &mut t,
    );
    assert_code(&r, 0, "cosign sign keyless");
    // Another identity signs the third image.
    let other_token = stack.sigstore.mint_token(SOMEONE_ELSE).unwrap();
    std::fs::write(dir.join("other-token"), format!("{other_token}\n")).unwrap();
    let r = run_logged(
        &mut tools.kibaverify(&[
            "sign",
            &other,
            "--keyless",
            "--signing-config",
            &stack.signing_config,
            "--identity-token-file",
            "other-token",
            "--trusted-root",
            &stack.trusted_root,
        ]),
        &mut t,
    );
    assert_code(&r, 0, "kibaverify sign --keyless (someone else)");

    let policy = format!(
        "apiVersion: kibaship.io/v1alpha1
kind: AdmissionPolicy
policies:
  - name: signed
    namespaces: {{names: [prod]}}
    images: [\"**\"]
    authorities:
      - name: builder
        keyless: {{issuer: \"{issuer}\", subject: \"{EMAIL}\"}}
  - name: attested
    mode: warn
    namespaces: {{names: [prod]}}
    images: [\"{app_repo}\"]
    authorities:
      - name: builder
        keyless: {{issuer: \"{issuer}\", subject: \"{EMAIL}\"}}
    attestations:
      - predicateType: {CUSTOM}
",
        issuer = stack.issuer,
        app_repo = app.trim_end_matches(":v1"),
    );
    std::fs::write(dir.join("policy.yaml"), policy).unwrap();
    std::fs::write(
        dir.join("images.txt"),
        format!("{app}\n{theirs}\n{other}\n"),
    )
    .unwrap();

    let r = run_logged(
        &mut tools.kibaverify(&[
            "audit",
            "--policy",
            "policy.yaml",
            "--trusted-root",
            &stack.trusted_root,
            "--images",
            "images.txt",
            "-n",
            "prod",
            "--output",
            "json",
        ]),
        &mut t,
    );
    assert_code(&r, 1, "audit --policy (keyless)");
    let report: Value = serde_json::from_str(&r.stdout).unwrap();
    let status = by_reference(&report, "status");
    assert_eq!(status[&app], "verified", "{report:#}");
    assert_eq!(status[&theirs], "verified", "{report:#}");
    assert_eq!(
        by_reference(&report, "code")[&other],
        "wrong-identity",
        "{report:#}"
    );
    let signer = format!("{EMAIL} (issuer {})", stack.issuer);
    assert_eq!(
        by_reference(&report, "signers")[&app],
        serde_json::json!([signer])
    );
    assert_eq!(
        by_reference(&report, "attestations")[&app],
        serde_json::json!([{"predicateType": CUSTOM, "signer": signer}]),
        "{report:#}"
    );
    let answers: BTreeMap<&str, &str> = report["workloads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| (w["name"].as_str().unwrap(), w["answer"].as_str().unwrap()))
        .collect();
    assert_eq!(
        answers,
        BTreeMap::from([
            (app.as_str(), "admit"),
            (theirs.as_str(), "admit"),
            (other.as_str(), "deny")
        ])
    );
    // app is judged by two policies (two requirement sets), the others by one.
    assert_eq!(report["summary"]["verifications"], 4, "{report:#}");
    // Both policies name the same identity: every attestation it signed is read once per image.
    assert_eq!(report["summary"]["attestationReads"], 3, "{report:#}");

    // verify's identity flags instead of a policy: the same signature verdicts.
    let r = run_logged(
        &mut stack.verify(
            &[
                "audit",
                "--images",
                "images.txt",
                "--output",
                "json",
                "--fail-on",
                "any",
            ],
            EMAIL,
        ),
        &mut t,
    );
    assert_code(&r, 1, "audit --certificate-identity");
    let flags: Value = serde_json::from_str(&r.stdout).unwrap();
    let status = by_reference(&flags, "status");
    assert_eq!(status[&app], "verified");
    assert_eq!(status[&theirs], "verified");
    assert_eq!(by_reference(&flags, "code")[&other], "wrong-identity");
    stack.assert_token_not_in(&t);
    assert!(!t.contains(&other_token), "the other token leaked");
}
