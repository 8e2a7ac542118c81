//! Predicate checks through a real registry (issue 15: required attestations with predicate checks,
//! `attestation-predicate-failed` naming the field): SLSA provenance attested with a key in both layouts, verified
//! by policies whose checks pass and fail.
#![allow(clippy::unwrap_used, clippy::expect_used)]
mod support;

use kibaship_cosign::attest::{Attestation, attest_image};
use kibaship_cosign::keyless::now_unix;
use kibaship_cosign::{
    ImagePolicy, ImagePolicyError, ImageSigner, ImageVerifier, Layouts, PointerError,
    PredicateCheck, PredicateCondition, PredicateFailure, ReasonCode, SignatureOutcome, Verdict,
};
use kibaship_sign::SigningKey;
use kibaship_sigstore::GoRegex;
use kibaship_testsupport::fixtures::push_fixture_images;
use kibaship_testsupport::registry::{RegistryMode, TestRegistry};
use serde_json::json;
use support::{fixture_image, production_root, registry_client};

const SLSA_V1: &str = "https://slsa.dev/provenance/v1";
const BUILD_TYPE: &str = "https://slsa-framework.github.io/github-actions-buildtypes/workflow/v1";

/// A SLSA v1 provenance predicate built by `builder`.
fn provenance(builder: &str) -> Attestation {
    let predicate = json!({
        "buildDefinition": {
            "buildType": BUILD_TYPE,
            "externalParameters": {"workflow": {"ref": "refs/heads/main", "repository": "https://github.com/kibaship/app"}},
            "resolvedDependencies": [{"uri": "git+https://github.com/kibaship/app@refs/heads/main", "digest": {"gitCommit": "a".repeat(40)}}],
        },
        "runDetails": {"builder": {"id": builder}},
    });
    Attestation::new(
        "slsaprovenance1",
        &serde_json::to_vec(&predicate).unwrap(),
        "provenance.json",
        time::OffsetDateTime::now_utc(),
    )
    .unwrap()
}

/// The predicate check an outcome failed, if any.
fn failure(outcome: &SignatureOutcome) -> Option<&PredicateFailure> {
    outcome.rejected()?.predicate_failure.as_deref()
}

fn check(path: &str, condition: PredicateCondition) -> PredicateCheck {
    PredicateCheck {
        path: path.to_string(),
        condition,
        code: None,
    }
}

fn trusted_builder() -> PredicateCheck {
    check(
        "/runDetails/builder/id",
        PredicateCondition::Matches(
            GoRegex::new(r"^https://github\.com/kibaship/builder/\.github/workflows/").unwrap(),
        ),
    )
}

#[tokio::test]
async fn slsa_predicates_pass_and_fail_checks_naming_the_field() {
    let reg = TestRegistry::start(RegistryMode::Plain).unwrap();
    push_fixture_images(&reg).unwrap();
    let client = registry_client(&reg);
    let app = fixture_image(&reg, "app");
    let key = SigningKey::generate().unwrap();
    let stranger = SigningKey::generate().unwrap();
    let verifier = ImageVerifier::new(client.clone(), production_root());

    // Provenance from an untrusted builder, signed by our key, in both layouts.
    let untrusted = "https://github.com/someone/else/.github/workflows/build.yml@refs/heads/main";
    let written = attest_image(
        &client,
        &app,
        None,
        ImageSigner::Key(&key),
        Layouts::Both,
        &provenance(untrusted),
    )
    .await
    .unwrap();
    assert_eq!(written.len(), 2);

    let policy = |signer: &SigningKey, checks: Vec<PredicateCheck>| {
        ImagePolicy::builder()
            .key_pem(signer.public_key_pem().unwrap().as_bytes())
            .unwrap()
            .accept_without_transparency_log(true)
            .signature_not_required()
            .require_attestation_checked(SLSA_V1.to_string(), checks)
            .build()
            .unwrap()
    };
    let verify =
        async |policy: &ImagePolicy| verifier.verify(&app, policy, now_unix()).await.unwrap();

    // Checks the predicate passes: present, equal, one of.
    let passing = policy(
        &key,
        vec![
            check("/buildDefinition/buildType", PredicateCondition::Present),
            check(
                "/buildDefinition/buildType",
                PredicateCondition::Equals(json!(BUILD_TYPE)),
            ),
            check(
                "/buildDefinition/externalParameters/workflow/ref",
                PredicateCondition::OneOf(vec![
                    json!("refs/heads/main"),
                    json!("refs/heads/release"),
                ]),
            ),
        ],
    );
    let verdict = verify(&passing).await;
    assert!(verdict.is_verified(), "{verdict:#?}");
    let report = verdict.attestations().unwrap();
    assert_eq!(report.signatures.len(), 2, "{report:#?}");
    assert!(
        report
            .signatures
            .iter()
            .all(|s| s.verified() && failure(s).is_none())
    );

    // The builder is not the trusted one: not verified, code attestation-predicate-failed, naming the check.
    let verdict = verify(&policy(&key, vec![trusted_builder()])).await;
    let Verdict::NotVerified(not) = &verdict else {
        panic!("{verdict:#?}");
    };
    assert_eq!(not.code, ReasonCode::AttestationPredicateFailed);
    let expected = PredicateFailure {
        predicate_type: SLSA_V1.to_string(),
        path: "/runDetails/builder/id".to_string(),
        wanted: r"a string matching /^https://github\.com/kibaship/builder/\.github/workflows//"
            .to_string(),
        got: format!("\"{untrusted}\""),
        code: None,
    };
    assert_eq!(not.predicate_failure.as_ref(), Some(&expected));
    let report = not.attestations.as_ref().unwrap();
    assert!(!report.verified());
    assert_eq!(report.code(), Some(ReasonCode::AttestationPredicateFailed));
    for s in &report.signatures {
        assert!(!s.verified());
        assert_eq!(s.code(), Some(ReasonCode::AttestationPredicateFailed));
        assert_eq!(failure(s), Some(&expected));
        let reason = s.rejected().unwrap().message.as_str();
        assert!(reason.starts_with("signed by the given"), "{reason}");
        assert!(
            reason.contains("/runDetails/builder/id is \"https://github.com/someone/"),
            "{reason}"
        );
    }
    // In the JSON a front end prints, the failure sits beside the code.
    let json = serde_json::to_value(&report.signatures[0]).unwrap();
    assert_eq!(json["code"], "attestation-predicate-failed");
    assert_eq!(json["predicateFailure"]["path"], "/runDetails/builder/id");
    assert_eq!(json["predicateFailure"]["predicateType"], SLSA_V1);

    // A field the predicate lacks: got "absent".
    let verdict = verify(&policy(
        &key,
        vec![check(
            "/runDetails/metadata/invocationId",
            PredicateCondition::Present,
        )],
    ))
    .await;
    let Verdict::NotVerified(not) = &verdict else {
        panic!("{verdict:#?}");
    };
    let absent = not.predicate_failure.as_ref().unwrap();
    assert_eq!(
        (absent.wanted.as_str(), absent.got.as_str()),
        ("present", "absent")
    );

    // A check with its own code (what verify-provenance gives its checks): the verdict, each rejection and the
    // JSON carry that code instead of attestation-predicate-failed.
    let coded = PredicateCheck {
        code: Some(ReasonCode::BuilderMismatch),
        ..trusted_builder()
    };
    let verdict = verify(&policy(&key, vec![coded])).await;
    let Verdict::NotVerified(not) = &verdict else {
        panic!("{verdict:#?}");
    };
    assert_eq!(not.code, ReasonCode::BuilderMismatch);
    let failed = not.predicate_failure.as_ref().unwrap();
    assert_eq!(
        (failed.code, failed.path.as_str()),
        (Some(ReasonCode::BuilderMismatch), "/runDetails/builder/id")
    );
    let report = not.attestations.as_ref().unwrap();
    assert_eq!(report.code(), Some(ReasonCode::BuilderMismatch));
    let json = serde_json::to_value(&report.signatures[0]).unwrap();
    assert_eq!(json["code"], "builder-mismatch");
    assert_eq!(json["predicateFailure"]["code"], "builder-mismatch");

    // The predicate is read only once the signature verified: with another key the attestations fail as
    // wrong-key, and no predicate check is reported.
    let verdict = verify(&policy(&stranger, vec![trusted_builder()])).await;
    let Verdict::NotVerified(not) = &verdict else {
        panic!("{verdict:#?}");
    };
    assert_eq!(not.code, ReasonCode::WrongKey);
    assert!(not.predicate_failure.is_none());
    let report = not.attestations.as_ref().unwrap();
    assert!(report.signatures.iter().all(|s| failure(s).is_none()));

    // Provenance from the trusted builder is added: one attestation of the type passes, so the image does, and
    // the others are reported as failing the check.
    let trusted =
        "https://github.com/kibaship/builder/.github/workflows/build.yml@refs/tags/v1.0.0";
    attest_image(
        &client,
        &app,
        None,
        ImageSigner::Key(&key),
        Layouts::Both,
        &provenance(trusted),
    )
    .await
    .unwrap();
    let verdict = verify(&policy(&key, vec![trusted_builder()])).await;
    assert!(verdict.is_verified(), "{verdict:#?}");
    let report = verdict.attestations().unwrap();
    assert_eq!(report.signatures.iter().filter(|s| s.verified()).count(), 2);
    assert_eq!(
        report
            .signatures
            .iter()
            .filter(|s| s.code() == Some(ReasonCode::AttestationPredicateFailed))
            .count(),
        2
    );

    // Requirements are met one by one: the checked SLSA one passes, an SBOM is missing.
    let both = ImagePolicy::builder()
        .key_pem(key.public_key_pem().unwrap().as_bytes())
        .unwrap()
        .accept_without_transparency_log(true)
        .signature_not_required()
        .require_attestation_checked(SLSA_V1.to_string(), vec![trusted_builder()])
        .require_attestation(Some("https://spdx.dev/Document".to_string()))
        .build()
        .unwrap();
    let verdict = verify(&both).await;
    assert_eq!(
        verdict.code(),
        Some(ReasonCode::AttestationMissing),
        "{verdict:#?}"
    );

    // Checks of one type given twice add up: one attestation must pass them all. The trusted builder's passes the
    // builder check, none has a build on another branch.
    let twice = ImagePolicy::builder()
        .key_pem(key.public_key_pem().unwrap().as_bytes())
        .unwrap()
        .accept_without_transparency_log(true)
        .signature_not_required()
        .require_attestation_checked(SLSA_V1.to_string(), vec![trusted_builder()])
        .require_attestation_checked(
            SLSA_V1.to_string(),
            vec![check(
                "/buildDefinition/externalParameters/workflow/ref",
                PredicateCondition::Equals(json!("refs/heads/release")),
            )],
        )
        .build()
        .unwrap();
    let verdict = verify(&twice).await;
    assert_eq!(verdict.code(), Some(ReasonCode::AttestationPredicateFailed));
}

#[test]
fn a_path_that_is_not_a_json_pointer_is_refused_when_the_policy_is_built() {
    let key = SigningKey::generate().unwrap();
    let built = ImagePolicy::builder()
        .key_pem(key.public_key_pem().unwrap().as_bytes())
        .unwrap()
        .signature_not_required()
        .require_attestation_checked(
            SLSA_V1.to_string(),
            vec![
                check("/ok", PredicateCondition::Present),
                check("builder/id", PredicateCondition::Present),
                check("/a~2", PredicateCondition::Present),
            ],
        )
        .build();
    match built {
        Err(ImagePolicyError::PredicatePath {
            predicate_type,
            path,
            source: PointerError::NoLeadingSlash,
        }) => assert_eq!(
            (predicate_type.as_str(), path.as_str()),
            (SLSA_V1, "builder/id")
        ),
        other => panic!("{other:?}"),
    }
}
