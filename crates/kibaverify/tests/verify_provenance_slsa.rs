//! `kibaverify verify-provenance` on slsa-verifier's own regression layout (issue 17 part 5):
//! `testdata/slsa/gha_generic_container/v2.1.0/container_workflow_dispatch` (slsa-github-generator's container
//! generator v2.1.0, SLSA v0.2, keyless `.att` with a Rekor bundle, verified offline against the public-good
//! trusted root), pushed with crane. The cases marked so are slsa-verifier's regression cases for this layout (its
//! `cli/slsa-verifier` tests, as listed in shared/corpora/MANIFEST.md) and give its answer: pass, or fail with the
//! code slsa-verifier's error maps to (source mismatch -> source-mismatch, branch mismatch and invalid ref ->
//! ref-mismatch, `ErrorUntrustedReusableWorkflow` -> builder-mismatch). The others are ours.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use kibaship_testsupport::registry::{RegistryMode, TestRegistry};

mod support;
use support::{
    GITHUB_ACTIONS_ISSUER, Tools, assert_code, production_trusted_root, run_logged as run,
    slsa_generator_policy,
};

const BUILDER: &str = "https://github.com/slsa-framework/slsa-github-generator/.github/workflows/generator_container_slsa3.yml";
const SOURCE: &str = "github.com/slsa-framework/example-package";

/// One case: what, `--source-uri`, `--builder-id`, other flags, exit code, the code named on failure.
type Case<'a> = (&'a str, &'a str, &'a str, Vec<&'a str>, i32, &'a str);

#[test]
fn slsa_verifier_regression_cases_give_slsa_verifiers_answers() {
    let registry = TestRegistry::start(RegistryMode::Plain).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let tools = Tools::new(dir.path(), &registry, None);
    let mut t = String::new();
    let image = tools.push_slsa_layout(&mut t);
    let root = production_trusted_root();
    let policy = slsa_generator_policy(GITHUB_ACTIONS_ISSUER, &root);
    let with_tag = format!("{BUILDER}@refs/tags/v2.1.0");
    let with_version = format!("{BUILDER}@v2.1.0");
    let not_trusted =
        "https://github.com/slsa-framework/slsa-github-generator/.github/workflows/not-trusted.yml";
    // (what, source, builder, other flags, exit code, code named): slsa-verifier's, then ours.
    let cases: Vec<Case<'_>> = vec![
        ("source, bare builder", SOURCE, BUILDER, vec![], 0, ""),
        (
            "source, builder@refs/tags/v2.1.0",
            SOURCE,
            &with_tag,
            vec![],
            0,
            "",
        ),
        (
            "source, builder@v2.1.0",
            SOURCE,
            &with_version,
            vec![],
            0,
            "",
        ),
        (
            "branch main",
            SOURCE,
            BUILDER,
            vec!["--source-branch", "main"],
            0,
            "",
        ),
        (
            "branch master",
            SOURCE,
            BUILDER,
            vec!["--source-branch", "master"],
            1,
            "ref-mismatch",
        ),
        (
            "source example-packageA",
            "github.com/slsa-framework/example-packageA",
            BUILDER,
            vec![],
            1,
            "source-mismatch",
        ),
        (
            "source Agithub.com",
            "Agithub.com/slsa-framework/example-package",
            BUILDER,
            vec![],
            1,
            "source-mismatch",
        ),
        (
            "tag v1.2.3 (none in the provenance)",
            SOURCE,
            &with_version,
            vec!["--source-tag", "v1.2.3"],
            1,
            "ref-mismatch",
        ),
        (
            "builder not trusted",
            SOURCE,
            not_trusted,
            vec![],
            1,
            "builder-mismatch",
        ),
        // Ours, not slsa-verifier's cases.
        (
            "https source",
            "https://github.com/slsa-framework/example-package",
            BUILDER,
            vec![],
            0,
            "",
        ),
        (
            "versioned tag v1 (none in the provenance)",
            SOURCE,
            BUILDER,
            vec!["--source-versioned-tag", "v1"],
            1,
            "ref-mismatch",
        ),
        (
            "builder at another version",
            SOURCE,
            "https://github.com/slsa-framework/slsa-github-generator/.github/workflows/generator_container_slsa3.yml@v2.0.0",
            vec![],
            1,
            "builder-mismatch",
        ),
        (
            "v1 required",
            SOURCE,
            BUILDER,
            vec!["--slsa-version", "v1"],
            1,
            "predicate-type-mismatch",
        ),
        (
            "build type",
            SOURCE,
            BUILDER,
            vec![
                "--build-type",
                "https://github.com/slsa-framework/slsa-github-generator/container@v1",
            ],
            0,
            "",
        ),
    ];
    for (what, source, builder, extra, exit, code) in cases {
        let mut c = tools.kibaverify(&[
            "verify-provenance",
            &image,
            "--source-uri",
            source,
            "--builder-id",
            builder,
        ]);
        c.args(policy).args(&extra);
        let r = run(&mut c, &mut t);
        assert_code(&r, exit, what);
        if exit == 0 {
            assert!(
                r.stderr
                    .contains("VERIFIED https://slsa.dev/provenance/v0.2 provenance"),
                "{what}: {}",
                r.stderr
            );
        } else {
            assert!(
                r.stderr.contains(&format!(": {code}: ")),
                "{what}: {}",
                r.stderr
            );
        }
    }
    // --print-provenance prints the statement whose signature was verified.
    let mut c = tools.kibaverify(&[
        "verify-provenance",
        &image,
        "--source-uri",
        SOURCE,
        "--builder-id",
        BUILDER,
        "--print-provenance",
    ]);
    c.args(policy);
    let r = run(&mut c, &mut t);
    assert_code(&r, 0, "--print-provenance");
    let statement: serde_json::Value = serde_json::from_str(r.stdout.trim()).unwrap();
    assert_eq!(
        statement["predicate"]["invocation"]["configSource"]["uri"],
        "git+https://github.com/slsa-framework/example-package@refs/heads/main"
    );
    // No key or identity: bad input, before anything is read.
    let r = run(
        &mut tools.kibaverify(&[
            "verify-provenance",
            &image,
            "--source-uri",
            SOURCE,
            "--builder-id",
            BUILDER,
        ]),
        &mut t,
    );
    assert_code(&r, 2, "no key or identity");
    assert!(
        r.stderr.contains("needs --key or --certificate-identity"),
        "{}",
        r.stderr
    );
}
