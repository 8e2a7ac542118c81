//! `kibaverify attest` against the real registry (docker-registry without the referrers API, go-containerregistry's
//! with it) and the real cosign (v3.1.3 peer): our attestations, key-based in both layouts and keyless against a
//! private Sigstore (Fulcio, Rekor v2 + TSA for bundles, Rekor v1 for the legacy tag), are verified by `cosign
//! verify-attestation` (which prints our predicate back) and by `kibaverify verify-attestation`, filtered by
//! type; what we write is laid out as what cosign attest writes; bad input exits 2 naming the problem, and the
//! key password and OIDC token never appear in any output.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

use kibaship_oci::Reference;
use kibaship_oci::manifest::ImageManifest;
use kibaship_testsupport::registry::{RegistryMode, TestRegistry};

mod support;
use support::{
    KeylessStack, Run, Tools, WITH_REKOR_V1, assert_code, assert_exit_with_message,
    assert_not_leaked, block_on, manifest, printed_statements, referrers_route, registry_client,
    registry_with_fixtures, run_logged as run, signature_tag_manifest,
};

/// Planted in COSIGN_PASSWORD; must never appear in any output.
const PASSWORD: &str = "planted-Attest-pw-4d1e8b";
const EMAIL: &str = "tekton-attest@kibaship.test";
const SLSA_V1: &str = "https://slsa.dev/provenance/v1";
const CUSTOM_URI: &str = "https://kibaship.dev/attestation/test/v1";

/// A SLSA v1 provenance predicate as a Tekton build step would write it.
const PROVENANCE: &str = r#"{
  "buildDefinition": {
    "buildType": "https://kibaship.dev/tekton/build/v1",
    "externalParameters": {"source": "git+https://example.com/app@refs/heads/main"},
    "internalParameters": {"builder": "railpack"},
    "resolvedDependencies": [{"uri": "git+https://example.com/app", "digest": {"gitCommit": "5e6f0c1d2a3b4c5d6e7f8091a2b3c4d5e6f70819"}}]
  },
  "runDetails": {
    "builder": {"id": "https://kibaship.dev/tekton/builder"},
    "metadata": {"invocationId": "pipelinerun-42", "startedOn": "2026-11-25T10:00:00Z", "finishedOn": "2026-11-25T10:02:00Z"}
  }
}"#;

/// `kibaverify attest image --key ours.key --predicate provenance.json --type type_arg extra...`.
fn attest_with_our_key(tools: &Tools<'_>, image: &str, type_arg: &str, extra: &[&str]) -> Command {
    let mut c = tools.kibaverify(&[
        "attest",
        image,
        "--key",
        "ours.key",
        "--predicate",
        "provenance.json",
        "--type",
        type_arg,
    ]);
    c.args(extra);
    c
}

/// The statements `cosign verify-attestation` printed, checked to be about `image_by_digest` with our predicate.
fn assert_cosign_printed_our_attestation(r: &Run, image_by_digest: &str, predicate_type: &str) {
    let (repository, digest) = image_by_digest.split_once('@').unwrap();
    let statements = printed_statements(&r.stdout);
    assert!(
        !statements.is_empty(),
        "no statement printed:\n{}",
        r.stdout
    );
    let ours = statements
        .iter()
        .find(|s| s["predicateType"] == predicate_type)
        .unwrap_or_else(|| panic!("no {predicate_type} statement:\n{}", r.stdout));
    assert_eq!(ours["_type"], "https://in-toto.io/Statement/v0.1", "{ours}");
    assert_eq!(
        ours["subject"],
        serde_json::json!([{"name": repository, "digest": {"sha256": digest.trim_start_matches("sha256:")}}]),
        "{ours}"
    );
    let provenance: serde_json::Value = serde_json::from_str(PROVENANCE).unwrap();
    if predicate_type == SLSA_V1 || predicate_type == CUSTOM_URI {
        assert_eq!(ours["predicate"], provenance, "{ours}");
    }
}

fn cosign_verify_attestation_with_key(
    tools: &Tools<'_>,
    key: &str,
    type_arg: &str,
    legacy: bool,
    image: &str,
    t: &mut String,
) -> Run {
    let mut args = vec![
        "verify-attestation",
        "--key",
        key,
        "--type",
        type_arg,
        "--insecure-ignore-tlog",
        "--allow-http-registry",
    ];
    if legacy {
        args.push("--new-bundle-format=false");
    }
    args.push(image);
    run(&mut tools.cosign(&args), t)
}

/// The `.att` manifest of `image_by_digest`.
fn att_manifest(reg: &TestRegistry, image_by_digest: &str) -> ImageManifest {
    signature_tag_manifest(&reg.host(), image_by_digest, "att").1
}

/// The referrer manifests of `image_by_digest`.
fn referrer_manifests(reg: &TestRegistry, image_by_digest: &str) -> Vec<ImageManifest> {
    let client = registry_client(&reg.host());
    let image = Reference::parse(image_by_digest).unwrap();
    let listed = block_on(client.list_referrers(&image, None)).unwrap();
    listed
        .descriptors
        .iter()
        .map(|d| manifest(&reg.host(), &image.with_digest(d.digest.clone())))
        .collect()
}

fn key_attestations_round_trip(mode: RegistryMode) {
    let reg = registry_with_fixtures(mode);
    let tmp = tempfile::tempdir().unwrap();
    let tools = Tools::new(tmp.path(), &reg, Some(PASSWORD));
    let host = reg.host();
    let image = |name: &str| tools.fixture(name);
    let mut t = String::new();
    std::fs::write(tmp.path().join("provenance.json"), PROVENANCE).unwrap();
    tools.generate_both_key_pairs(&mut t);

    // 1. Legacy layout (.att tag): SLSA v1 provenance, then a second attestation of a custom URI type appended.
    let app = image("app");
    let r = run(
        &mut attest_with_our_key(&tools, &app, "slsaprovenance1", &[]),
        &mut t,
    );
    assert_code(&r, 0, "kibaverify attest --layout legacy");
    let app_by_digest = r.stdout.trim().to_string();
    assert!(
        app_by_digest.starts_with(&format!("{host}/fixtures/app@sha256:")),
        "{app_by_digest}"
    );
    assert!(
        r.stderr.contains("1 attestation(s) under") && r.stderr.contains("--insecure-ignore-tlog"),
        "{}",
        r.stderr
    );
    let r = run(
        &mut attest_with_our_key(&tools, &app, CUSTOM_URI, &["--layout", "legacy"]),
        &mut t,
    );
    assert_code(&r, 0, "kibaverify attest, a second type");
    assert!(r.stderr.contains("2 attestation(s) under"), "{}", r.stderr);

    for (type_arg, uri) in [("slsaprovenance1", SLSA_V1), (CUSTOM_URI, CUSTOM_URI)] {
        let r =
            cosign_verify_attestation_with_key(&tools, "ours.pub", type_arg, true, &app, &mut t);
        assert_code(
            &r,
            0,
            &format!("cosign verify-attestation --new-bundle-format=false --type {type_arg}"),
        );
        assert_cosign_printed_our_attestation(&r, &app_by_digest, uri);
    }
    let r = cosign_verify_attestation_with_key(
        &tools,
        "cosign.pub",
        "slsaprovenance1",
        true,
        &app,
        &mut t,
    );
    assert_ne!(r.code, 0, "cosign accepted another key:\n{}", r.stdout);

    // The .att layers are laid out as cosign attest lays out its own (same media type, same annotations).
    let docker_app = image("docker-app");
    let docker_app_by_digest = tools.image_by_digest(&docker_app, &mut t);
    let r = run(
        &mut tools.cosign_attest_with_key(
            "provenance.json",
            "slsaprovenance1",
            true,
            &docker_app_by_digest,
        ),
        &mut t,
    );
    assert_code(&r, 0, "cosign attest --new-bundle-format=false");
    // cosign's statement and ours agree on everything but the image they are about.
    let statement_of = |key: &str, image: &str, t: &mut String| {
        let r = cosign_verify_attestation_with_key(&tools, key, "slsaprovenance1", true, image, t);
        assert_code(&r, 0, "cosign verify-attestation --new-bundle-format=false");
        let mut statements = printed_statements(&r.stdout);
        statements.retain(|s| s["predicateType"] == SLSA_V1);
        assert_eq!(statements.len(), 1, "{}", r.stdout);
        let mut statement = statements.remove(0);
        statement["subject"][0]["name"] = serde_json::Value::Null;
        statement["subject"][0]["digest"]["sha256"] = serde_json::Value::Null;
        statement
    };
    assert_eq!(
        statement_of("ours.pub", &app, &mut t),
        statement_of("cosign.pub", &docker_app, &mut t)
    );
    let ours = att_manifest(&reg, &app_by_digest);
    let theirs = att_manifest(&reg, &docker_app_by_digest);
    assert_eq!(ours.layers.len(), 2);
    assert_eq!(ours.layers[0].media_type, theirs.layers[0].media_type);
    assert_eq!(ours.layers[0].annotations, theirs.layers[0].annotations);
    assert_eq!(
        ours.layers[1]
            .annotations
            .get("predicateType")
            .map(String::as_str),
        Some(CUSTOM_URI)
    );

    // kibaverify verify-attestation: both ours, filtered by type; another type is not verified (exit 1).
    let verify_attestation = |image: &str, extra: &[&str], t: &mut String| {
        run(
            &mut tools.verify_with_key("verify-attestation", image, "ours.pub", extra),
            t,
        )
    };
    let r = verify_attestation(&app, &["--output", "json"], &mut t);
    assert_code(&r, 0, "kibaverify verify-attestation");
    let report: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let types: Vec<&str> = report["signatures"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["verified"] == true && s["layout"] == "legacy-tag")
        .map(|s| s["predicateType"].as_str().unwrap())
        .collect();
    assert_eq!(types, [SLSA_V1, CUSTOM_URI], "{report}");
    let r = verify_attestation(&app, &["--type", "slsaprovenance1"], &mut t);
    assert_code(
        &r,
        0,
        "kibaverify verify-attestation --type slsaprovenance1",
    );
    let r = verify_attestation(&app, &["--type", "cyclonedx"], &mut t);
    assert_exit_with_message(&r, 1, "is not the requested \"https://cyclonedx.org/bom\"");

    // 2. Bundle layout (referrer): verified by cosign (v3 default) and by us; laid out as cosign's own.
    let config_only = image("config-only");
    let r = run(
        &mut attest_with_our_key(
            &tools,
            &config_only,
            "slsaprovenance1",
            &["--layout", "bundle"],
        ),
        &mut t,
    );
    assert_code(&r, 0, "kibaverify attest --layout bundle");
    assert!(r.stderr.contains(referrers_route(mode)), "{}", r.stderr);
    let config_by_digest = r.stdout.trim().to_string();
    let r = cosign_verify_attestation_with_key(
        &tools,
        "ours.pub",
        "slsaprovenance1",
        false,
        &config_only,
        &mut t,
    );
    assert_code(&r, 0, "cosign verify-attestation of our bundle");
    assert_cosign_printed_our_attestation(&r, &config_by_digest, SLSA_V1);
    let r = cosign_verify_attestation_with_key(
        &tools,
        "ours.pub",
        "cyclonedx",
        false,
        &config_only,
        &mut t,
    );
    assert_ne!(r.code, 0, "cosign accepted another type:\n{}", r.stdout);
    let r = verify_attestation(&config_only, &["--type", SLSA_V1], &mut t);
    assert_code(&r, 0, "kibaverify verify-attestation of our bundle");
    let r = verify_attestation(&config_only, &["--type", "spdxjson"], &mut t);
    assert_code(&r, 1, "kibaverify verify-attestation --type spdxjson");

    let multi = image("multiarch");
    let multi_by_digest = tools.image_by_digest(&multi, &mut t);
    let r = run(
        &mut tools.cosign_attest_with_key(
            "provenance.json",
            "slsaprovenance1",
            false,
            &multi_by_digest,
        ),
        &mut t,
    );
    assert_code(&r, 0, "cosign attest (bundle layout)");
    let ours = referrer_manifests(&reg, &config_by_digest);
    let theirs = referrer_manifests(&reg, &multi_by_digest);
    assert_eq!((ours.len(), theirs.len()), (1, 1));
    let shape = |m: &ImageManifest| {
        (
            m.artifact_type.clone(),
            m.layers
                .iter()
                .map(|l| l.media_type.clone())
                .collect::<Vec<_>>(),
            m.annotations.keys().cloned().collect::<Vec<_>>(),
            m.annotations
                .get("dev.sigstore.bundle.predicateType")
                .cloned(),
            m.annotations.get("dev.sigstore.bundle.content").cloned(),
        )
    };
    assert_eq!(shape(&ours[0]), shape(&theirs[0]));
    assert_eq!(
        shape(&ours[0]).3.as_deref(),
        Some(SLSA_V1),
        "{:?}",
        ours[0].annotations
    );

    // 3. --output json names what was written in each layout.
    let r = run(
        &mut attest_with_our_key(
            &tools,
            &multi,
            "vuln",
            &["--layout", "both", "--output", "json"],
        ),
        &mut t,
    );
    assert_code(&r, 0, "kibaverify attest --layout both --output json");
    let report: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(
        report["predicateType"],
        "https://cosign.sigstore.dev/attestation/vuln/v1"
    );
    assert_eq!(report["legacy"]["signatures"], 1, "{report}");
    assert!(
        report["bundle"]["referrer"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{host}/fixtures/multiarch@sha256:")),
        "{report}"
    );

    assert_not_leaked(&t, PASSWORD, "the planted password");
}

#[test]
fn key_attestations_verify_with_cosign_via_the_referrers_api() {
    key_attestations_round_trip(RegistryMode::Referrers);
}

#[test]
fn key_attestations_verify_with_cosign_via_the_fallback_tag() {
    key_attestations_round_trip(RegistryMode::Plain);
}

#[test]
fn bad_input_exits_2_naming_the_problem_and_never_shows_secrets() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let tools = Tools {
        dir,
        registry: None,
        password: Some(PASSWORD),
    };
    let mut t = String::new();
    tools.generate_our_key_pair(&mut t);
    std::fs::write(dir.join("good.json"), PROVENANCE).unwrap();
    std::fs::write(dir.join("broken.json"), "{\"buildDefinition\": ").unwrap();
    std::fs::write(dir.join("array.json"), "[1, 2]").unwrap();
    std::fs::write(
        dir.join("huge.json"),
        vec![b' '; kibaship_cosign::attest::MAX_PREDICATE_BYTES + 1],
    )
    .unwrap();
    // Nothing listens here: every failure below must come before any registry is contacted.
    let image = "127.0.0.1:9/fixtures/app:v1";
    let attest = |predicate: &str, type_arg: &str, extra: &[&str]| {
        let mut c = tools.kibaverify(&[
            "attest",
            image,
            "--predicate",
            predicate,
            "--type",
            type_arg,
        ]);
        c.args(extra);
        c
    };
    let key = ["--key", "ours.key"];
    let verify_unknown_type = tools.verify_with_key(
        "verify-attestation",
        image,
        "ours.pub",
        &["--type", "provenance"],
    );
    let cases: [(Command, &str); 8] = [
        (
            // verify-attestation reads --type with the same table: a typo is refused, not matched against nothing.
            verify_unknown_type,
            "unknown predicate type \"provenance\"",
        ),
        (
            attest("broken.json", "slsaprovenance1", &key),
            "predicate broken.json is not JSON: EOF while parsing a value at line 1 column 20",
        ),
        (
            attest("huge.json", "custom", &key),
            "predicate huge.json is larger than the 8388608 bytes accepted",
        ),
        (
            attest("missing.json", "custom", &key),
            "cannot read predicate missing.json",
        ),
        (
            attest("good.json", "provenance", &key),
            "unknown predicate type \"provenance\"",
        ),
        (
            attest("array.json", "cyclonedx", &key),
            "predicate array.json must be a JSON object for predicate type https://cyclonedx.org/bom, found an array",
        ),
        (
            attest(
                "good.json",
                "slsaprovenance1",
                &["--key", "ours.key", "--tlog-upload=true"],
            ),
            "--tlog-upload=true is not supported with --key",
        ),
        (
            attest("good.json", "slsaprovenance1", &["--key", "no-such.key"]),
            "cannot read key no-such.key",
        ),
    ];
    for (mut cmd, expected) in cases {
        let r = run(&mut cmd, &mut t);
        assert_exit_with_message(&r, 2, expected);
    }

    // A wrong key password: refused, and neither password is shown.
    let wrong = "planted-Wrong-pw-93c0aa";
    let mut cmd = attest("good.json", "slsaprovenance1", &key);
    cmd.env("COSIGN_PASSWORD", wrong);
    let r = run(&mut cmd, &mut t);
    assert_exit_with_message(&r, 2, "cannot load key ours.key");
    assert!(!t.contains(wrong), "the wrong password leaked");

    // A token that is not a JWT, given on the command line: refused without echoing it.
    let token = "planted.NotAJwtToken-5be1.x";
    let r = run(
        &mut attest(
            "good.json",
            "slsaprovenance1",
            &[
                "--keyless",
                "--fulcio-url",
                "http://127.0.0.1:9",
                "--rekor-url",
                "http://127.0.0.1:9",
                "--tsa-url",
                "http://127.0.0.1:9",
                "--identity-token",
                token,
            ],
        ),
        &mut t,
    );
    assert_exit_with_message(&r, 2, "unusable token from --identity-token");
    assert!(
        !t.contains(token) && !t.contains("NotAJwtToken"),
        "the token leaked"
    );
    assert!(!t.contains(PASSWORD), "the planted password leaked");
}

#[test]
fn keyless_attestations_verify_with_cosign_in_both_layouts() {
    let stack = KeylessStack::start(WITH_REKOR_V1, RegistryMode::Referrers, EMAIL);
    let tools = stack.tools();
    let reg = &stack.reg;
    let host = reg.host();
    std::fs::write(stack.tmp.path().join("provenance.json"), PROVENANCE).unwrap();
    let mut t = String::new();

    let kibaverify_verify = |image: &str, type_arg: &str, identity: &str, t: &mut String| {
        run(
            &mut stack.verify(&["verify-attestation", image, "--type", type_arg], identity),
            t,
        )
    };
    let cosign_verify =
        |image: &str, type_arg: &str, identity: &str, legacy: bool, t: &mut String| {
            let mut args = vec!["verify-attestation", "--type", type_arg];
            if legacy {
                args.push("--new-bundle-format=false");
            }
            run(&mut stack.cosign_verify(&args, identity, image), t)
        };

    for (name, layout, legacy) in [("app", "bundle", false), ("config-only", "legacy", true)] {
        let image = tools.fixture(name);
        let r = run(
            &mut stack.sign_keyless(&[
                "attest",
                &image,
                "--layout",
                layout,
                "--predicate",
                "provenance.json",
                "--type",
                "slsaprovenance1",
            ]),
            &mut t,
        );
        assert_code(
            &r,
            0,
            &format!("kibaverify attest --keyless --layout {layout}"),
        );
        let by_digest = r.stdout.trim().to_string();
        assert!(
            by_digest.starts_with(&format!("{host}/fixtures/{name}@sha256:")),
            "{by_digest}"
        );
        assert!(
            r.stderr.contains(EMAIL) && r.stderr.contains("verified against the trusted root"),
            "{}",
            r.stderr
        );
        if legacy {
            assert!(r.stderr.contains("Rekor v1 entry"), "{}", r.stderr);
            // The layer carries what cosign's keyless legacy attestations carry.
            let att = att_manifest(reg, &by_digest);
            let keys: Vec<&str> = att.layers[0]
                .annotations
                .keys()
                .map(String::as_str)
                .collect();
            assert_eq!(
                keys,
                [
                    "dev.cosignproject.cosign/signature",
                    "dev.sigstore.cosign/bundle",
                    "dev.sigstore.cosign/certificate",
                    "dev.sigstore.cosign/chain",
                    "predicateType"
                ],
                "{:?}",
                att.layers[0].annotations
            );
        } else {
            assert!(r.stderr.contains("Rekor v2 log index"), "{}", r.stderr);
        }

        // cosign checks the certificate chain, SCT, the log entry and the timestamp: no --insecure flag.
        let r = cosign_verify(&by_digest, "slsaprovenance1", EMAIL, legacy, &mut t);
        assert_code(
            &r,
            0,
            &format!("cosign verify-attestation of our keyless {layout} attestation"),
        );
        assert_cosign_printed_our_attestation(&r, &by_digest, SLSA_V1);
        let r = cosign_verify(
            &by_digest,
            "slsaprovenance1",
            "someone-else@kibaship.test",
            legacy,
            &mut t,
        );
        assert_ne!(r.code, 0, "cosign accepted a wrong identity: {}", r.stdout);

        let r = kibaverify_verify(&image, "slsaprovenance1", EMAIL, &mut t);
        assert_code(
            &r,
            0,
            &format!("kibaverify verify-attestation of our keyless {layout} attestation"),
        );
        let r = kibaverify_verify(&image, "cyclonedx", EMAIL, &mut t);
        assert_code(&r, 1, "kibaverify verify-attestation, another type");
        let r = kibaverify_verify(
            &image,
            "slsaprovenance1",
            "someone-else@kibaship.test",
            &mut t,
        );
        assert_code(&r, 1, "kibaverify verify-attestation, another identity");
    }

    stack.assert_token_not_in(&t);
}
