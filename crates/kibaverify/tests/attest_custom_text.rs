//! `kibaverify attest --type custom --predicate FILE` where FILE is not JSON (issue 20 item 5): the text is
//! wrapped as cosign v3 wraps it (`generateCustomPredicate`: `{"Data": "<text>", "Timestamp": "<RFC 3339>"}`),
//! in both layouts, on a registry with the referrers API and one without. The real cosign (v3.1.3 peer)
//! `verify-attestation --type custom` accepts ours and prints the same statement, but for the image and the
//! time, as it prints for its own `cosign attest --type custom` of the same text; kibaverify verifies cosign's. A
//! predicate that is not UTF-8 is refused (cosign refuses it too), nothing pushed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use kibaship_testsupport::registry::RegistryMode;

mod support;
use support::{
    Run, Tools, assert_code, printed_statements, registry_with_fixtures, run_logged as run,
};

const PASSWORD: &str = "planted-Custom-pw-91c3";
const CUSTOM: &str = "https://cosign.sigstore.dev/attestation/v1";
/// Not JSON: a build log, with what JSON and HTML escape differently (quotes, `<>&`, a tab, non-ASCII).
const TEXT: &str = "build 42: ok\n\"quoted\" <b>bold</b> & more\tafter a tab\nélan ✓ {not: json]\n";

/// The custom statements `cosign verify-attestation --type custom` printed for `image`.
fn cosign_custom_statements(
    tools: &Tools<'_>,
    key: &str,
    legacy: bool,
    image: &str,
    t: &mut String,
) -> Vec<serde_json::Value> {
    let mut args = vec![
        "verify-attestation",
        "--key",
        key,
        "--type",
        "custom",
        "--insecure-ignore-tlog",
        "--allow-http-registry",
    ];
    if legacy {
        args.push("--new-bundle-format=false");
    }
    args.push(image);
    let r: Run = run(&mut tools.cosign(&args), t);
    assert_code(
        &r,
        0,
        &format!("cosign verify-attestation --type custom (legacy: {legacy}) of {image}"),
    );
    let statements: Vec<_> = printed_statements(&r.stdout)
        .into_iter()
        .filter(|s| s["predicateType"] == CUSTOM)
        .collect();
    assert_eq!(statements.len(), 1, "{}", r.stdout);
    statements
}

/// The statement with what differs between two attestations of the same text blanked: the subject (another
/// image) and the predicate's `Timestamp` (checked to be RFC 3339 UTC, seconds, as Go's `time.RFC3339`).
fn shape(mut statement: serde_json::Value, image_by_digest: &str) -> serde_json::Value {
    let (repository, digest) = image_by_digest.split_once('@').unwrap();
    assert_eq!(statement["subject"][0]["name"], repository, "{statement}");
    assert_eq!(
        statement["subject"][0]["digest"]["sha256"],
        digest.strip_prefix("sha256:").unwrap(),
        "{statement}"
    );
    statement["subject"][0]["name"] = serde_json::Value::Null;
    statement["subject"][0]["digest"]["sha256"] = serde_json::Value::Null;
    let stamp = statement["predicate"]["Timestamp"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        stamp.len() == 20 && stamp.as_bytes()[10] == b'T' && stamp.ends_with('Z'),
        "{stamp}"
    );
    statement["predicate"]["Timestamp"] = serde_json::Value::Null;
    statement
}

/// `repo:tag@sha256:...` (as `kibaverify digest` prints it) as `repo@sha256:...`.
fn without_tag(image: &str) -> String {
    let (name, digest) = image.split_once('@').unwrap();
    let (repository, tag) = name.rsplit_once(':').unwrap();
    assert!(!tag.contains('/'), "{image}");
    format!("{repository}@{digest}")
}

fn custom_text_attestations_match_cosign(mode: RegistryMode) {
    let reg = registry_with_fixtures(mode);
    let tmp = tempfile::tempdir().unwrap();
    let tools = Tools::new(tmp.path(), &reg, Some(PASSWORD));
    let mut t = String::new();
    std::fs::write(tmp.path().join("build.txt"), TEXT).unwrap();
    assert!(serde_json::from_str::<serde_json::Value>(TEXT).is_err());
    tools.generate_both_key_pairs(&mut t);
    let ours = tools.fixture("app");
    let theirs = tools.fixture("docker-app");
    let ours_by_digest = without_tag(&tools.image_by_digest(&ours, &mut t));
    let theirs_by_digest = without_tag(&tools.image_by_digest(&theirs, &mut t));

    for legacy in [true, false] {
        let layout = if legacy { "legacy" } else { "bundle" };
        let r = run(
            &mut tools.kibaverify(&[
                "attest",
                &ours,
                "--key",
                "ours.key",
                "--predicate",
                "build.txt",
                "--type",
                "custom",
                "--layout",
                layout,
            ]),
            &mut t,
        );
        assert_code(
            &r,
            0,
            &format!("kibaverify attest --type custom --layout {layout}"),
        );
        assert_eq!(r.stdout.trim(), ours_by_digest);
        let r = run(
            &mut tools.cosign_attest_with_key("build.txt", "custom", legacy, &theirs_by_digest),
            &mut t,
        );
        assert_code(&r, 0, &format!("cosign attest --type custom ({layout})"));

        let ours_statement =
            cosign_custom_statements(&tools, "ours.pub", legacy, &ours, &mut t).remove(0);
        let theirs_statement =
            cosign_custom_statements(&tools, "cosign.pub", legacy, &theirs, &mut t).remove(0);
        // The text, byte for byte, in both.
        assert_eq!(
            ours_statement["predicate"]["Data"], TEXT,
            "{ours_statement}"
        );
        assert_eq!(
            theirs_statement["predicate"]["Data"], TEXT,
            "{theirs_statement}"
        );
        let ours_shape = shape(ours_statement, &ours_by_digest);
        let theirs_shape = shape(theirs_statement, &theirs_by_digest);
        assert_eq!(
            ours_shape, theirs_shape,
            "{layout}: our statement differs from cosign's"
        );
        let keys: Vec<_> = ours_shape["predicate"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        assert_eq!(keys, ["Data", "Timestamp"]);

        // And kibaverify verifies both, filtered by the custom type.
        for (image, key) in [(&ours, "ours.pub"), (&theirs, "cosign.pub")] {
            let r = run(
                &mut tools.verify_with_key("verify-attestation", image, key, &["--type", "custom"]),
                &mut t,
            );
            assert_code(
                &r,
                0,
                &format!("kibaverify verify-attestation --type custom {image}"),
            );
        }
    }

    // Not UTF-8: refused as cosign refuses it ("invalid UTF-8 in string"), exit 2, nothing pushed.
    std::fs::write(tmp.path().join("binary.dat"), b"ok\xff\xfe").unwrap();
    let config_only = tools.fixture("config-only");
    let r = run(
        &mut tools.kibaverify(&[
            "attest",
            &config_only,
            "--key",
            "ours.key",
            "--predicate",
            "binary.dat",
            "--type",
            "custom",
        ]),
        &mut t,
    );
    assert_code(&r, 2, "kibaverify attest of a non-UTF-8 custom predicate");
    assert!(
        r.stderr
            .contains("predicate binary.dat is not UTF-8 text (invalid byte at offset 2)"),
        "{}",
        r.stderr
    );
    let r = run(
        &mut tools.verify_with_key("verify-attestation", &config_only, "ours.pub", &[]),
        &mut t,
    );
    assert_eq!(
        r.code, 1,
        "an attestation was pushed:\n{}\n{}",
        r.stdout, r.stderr
    );
}

#[test]
fn custom_text_predicates_match_cosign_via_the_referrers_api() {
    custom_text_attestations_match_cosign(RegistryMode::Referrers);
}

#[test]
fn custom_text_predicates_match_cosign_via_the_fallback_tag() {
    custom_text_attestations_match_cosign(RegistryMode::Plain);
}
