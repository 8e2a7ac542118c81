//! Which signature referrers `kibaverify verify` checks when an image has more than `--max-referrers-checked`
//! (issue 20 item 7): the ones whose descriptors declare the type looked for, whatever the registry's order,
//! and the output (text and JSON) says the bound was hit. On docker-registry (no referrers API: our fallback
//! index keeps the order of the pushes, so the signature pushed last is listed last) and on ggcr-registry (the
//! referrers API; go-containerregistry lists them in no fixed order).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use kibaship_testsupport::registry::RegistryMode;

mod support;
use support::{Tools, assert_code, registry_with_fixtures, run};

const PASSWORD: &str = "referrer-bound-pw";
const SLSA_V1: &str = "https://slsa.dev/provenance/v1";
/// Attestations pushed before the one signature: more referrers than the bound used below.
const ATTESTATIONS: usize = 3;

fn bound_picks_the_signature(mode: RegistryMode) {
    let reg = registry_with_fixtures(mode);
    let tmp = tempfile::tempdir().unwrap();
    let tools = Tools::new(tmp.path(), &reg, Some(PASSWORD));
    let mut transcript = String::new();
    tools.generate_both_key_pairs(&mut transcript);
    let image = tools.image_by_digest(&tools.fixture("app"), &mut transcript);
    std::fs::write(
        tmp.path().join("provenance.json"),
        br#"{"buildDefinition":{"buildType":"https://kibaship.io/test"},"runDetails":{"builder":{"id":"https://kibaship.io/builder"}}}"#,
    )
    .unwrap();
    for _ in 0..ATTESTATIONS {
        let r = run(&mut tools.kibaverify(&[
            "attest",
            &image,
            "--key",
            "ours.key",
            "--predicate",
            "provenance.json",
            "--type",
            "slsaprovenance1",
            "--layout",
            "bundle",
        ]));
        assert_code(&r, 0, "kibaverify attest --layout bundle");
    }
    let r =
        run(&mut tools.kibaverify(&["sign", &image, "--key", "ours.key", "--layout", "bundle"]));
    assert_code(&r, 0, "kibaverify sign --layout bundle");
    let found = ATTESTATIONS + 1;

    if mode != RegistryMode::Referrers {
        // The signature is last in the registry's order: a bound of 2 in that order would never reach it.
        let r = run(&mut tools.kibaverify(&["referrers", &image, "--output", "json"]));
        assert_code(&r, 0, "kibaverify referrers");
        let listed: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
        assert_eq!(listed["source"], "fallback-tag", "{listed}");
        let descriptors = listed["referrers"].as_array().unwrap();
        assert_eq!(descriptors.len(), found, "{listed}");
        let last = &descriptors[found - 1];
        assert_eq!(
            last["annotations"]["dev.sigstore.bundle.predicateType"],
            "https://sigstore.dev/cosign/sign/v1",
            "{listed}"
        );
    }

    // A bound of 2: the signature is checked (it declares cosign's signing predicate type), the bound is reported.
    // Three times, since ggcr-registry lists in no fixed order.
    for _ in 0..3 {
        let r = run(&mut tools.verify_with_key(
            "verify",
            &image,
            "ours.pub",
            &["--max-referrers-checked", "2"],
        ));
        assert_code(&r, 0, "kibaverify verify --max-referrers-checked 2");
        assert!(r.stdout.starts_with("VERIFIED"), "{}", r.stdout);
        assert!(
            r.stderr.contains(&format!(
                "has {found} referrers that could hold signatures; only 2 were checked"
            )),
            "{}",
            r.stderr
        );
    }
    let r = run(&mut tools.verify_with_key(
        "verify",
        &image,
        "ours.pub",
        &["--max-referrers-checked", "2", "--output", "json"],
    ));
    assert_code(&r, 0, "kibaverify verify --output json");
    let report: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(
        report["referrerLimitHit"],
        serde_json::json!({"limit": 2, "found": found}),
        "{report}"
    );
    // The two checked: the signature, and one attestation bundle (not a signature, so not listed).
    let checked = report["signatures"].as_array().unwrap();
    assert_eq!(checked.len(), 1, "{report}");
    assert_eq!(checked[0]["verified"], true, "{report}");

    // Attestations: a bound of 1 checks an SLSA one, not the signature.
    let r = run(&mut tools.verify_with_key(
        "verify-attestation",
        &image,
        "ours.pub",
        &[
            "--type",
            "slsaprovenance1",
            "--max-referrers-checked",
            "1",
            "--output",
            "json",
        ],
    ));
    assert_code(
        &r,
        0,
        "kibaverify verify-attestation --max-referrers-checked 1",
    );
    let report: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(
        report["signatures"][0]["predicateType"], SLSA_V1,
        "{report}"
    );
    assert_eq!(report["referrerLimitHit"]["found"], found, "{report}");

    // Under the bound (the default) nothing is said about it.
    let r = run(&mut tools.verify_with_key("verify", &image, "ours.pub", &["--output", "json"]));
    assert_code(&r, 0, "kibaverify verify (default bound)");
    let report: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert!(report.get("referrerLimitHit").is_none(), "{report}");
    assert_eq!(
        report["signatures"].as_array().unwrap().len(),
        1,
        "{report}"
    );

    // Over the bound and nothing passes: not verified (exit 1), and the bound is still said.
    let r = run(&mut tools.verify_with_key(
        "verify",
        &image,
        "cosign.pub",
        &["--max-referrers-checked", "2"],
    ));
    assert_code(&r, 1, "kibaverify verify with another key");
    assert!(r.stderr.contains("only 2 were checked"), "{}", r.stderr);
    assert!(r.stderr.contains("wrong-key"), "{}", r.stderr);

    // A bound of 0 is refused as bad input.
    let r = run(&mut tools.verify_with_key(
        "verify",
        &image,
        "ours.pub",
        &["--max-referrers-checked", "0"],
    ));
    assert_code(&r, 2, "kibaverify verify --max-referrers-checked 0");
    assert!(r.stderr.contains("--max-referrers-checked"), "{}", r.stderr);
}

#[test]
fn without_the_referrers_api_the_last_listed_signature_is_checked_within_the_bound() {
    bound_picks_the_signature(RegistryMode::Plain);
}

#[test]
fn with_the_referrers_api_the_signature_is_checked_within_the_bound() {
    bound_picks_the_signature(RegistryMode::Referrers);
}
