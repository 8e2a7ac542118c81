//! BuildKit's own attestations (issue 17 parts 3 and 4), with the real BuildKit peer: one FROM scratch build for
//! two platforms with `--opt attest:provenance=mode=max` (seconds: nothing is pulled) pushed to a plain registry.
//! `kibaverify provenance get` reads the SLSA v1 statement BuildKit wrote for each platform image (subject = that
//! image's digest, as crane reads it), `provenance rehome` signs it onto the platform image (both layouts) leaving
//! the index byte-identical and readable by crane, the real cosign verifies the rehomed attestation
//! (`verify-attestation --type slsaprovenance1`), and `verify-provenance` verifies it (exit 0) or names the
//! failed field with its code (exit 1). Bad input: an index whose attestation manifest points at a missing blob,
//! a statement with duplicate keys, a forged subject, exit 2 or 1 with the digest or field named. Keyless:
//! `rehome --keyless` against the private Sigstore, verified by certificate identity.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;

use kibaship_oci::{Digest, Reference};
use kibaship_testsupport::buildkit::{BuildkitdConfig, TestBuildkitd};
use kibaship_testsupport::registry::{RegistryMode, TestRegistry};

mod support;
use kibaship_testsupport::sigstore::SigstoreOptions;
use support::{
    KeylessStack, Run, Tools, assert_code, block_on, registry_client, run_logged as run,
};

const PASSWORD: &str = "planted-Provenance-pw-5e1";
const BUILDER: &str = "https://kibaship.io/test/buildkit-builder";
const SLSA_V1: &str = "https://slsa.dev/provenance/v1";
const SOURCE: &str = "https://github.com/kibaship/demo";
const BUILDKIT_BUILD_TYPE: &str =
    "https://github.com/moby/buildkit/blob/master/docs/attestations/slsa-definitions.md";

/// Builds `FROM scratch` + one file for linux/amd64 and linux/arm64 with BuildKit's provenance (mode=max,
/// builder id `BUILDER@v1`, the source as buildx records it) and pushes `image`.
fn buildkit_build(buildkitd: &TestBuildkitd, dir: &Path, image: &str, t: &mut String) {
    let context = dir.join("context");
    std::fs::create_dir_all(&context).unwrap();
    std::fs::write(
        context.join("Dockerfile"),
        "FROM scratch\nCOPY hello.txt /hello.txt\n",
    )
    .unwrap();
    std::fs::write(context.join("hello.txt"), "hello from a scratch build\n").unwrap();
    let mut c: Command = buildkitd.buildctl().unwrap();
    c.args(["build", "--frontend", "dockerfile.v0", "--local"])
        .arg(format!("context={}", context.display()))
        .arg("--local")
        .arg(format!("dockerfile={}", context.display()))
        .args(["--opt", "platform=linux/amd64,linux/arm64"])
        .args(["--opt", &format!("vcs:source={SOURCE}.git")])
        .args([
            "--opt",
            "vcs:revision=960ef4fb6190de6aa8b394bf2f0d552ee67675c3",
        ])
        .args([
            "--opt",
            &format!("attest:provenance=mode=max,builder-id={BUILDER}@v1"),
        ])
        .args([
            "--output",
            &format!("type=image,name={image},push=true,registry.insecure=true"),
        ]);
    let r = run(&mut c, t);
    assert_code(&r, 0, "buildctl build");
}

fn crane_out(tools: &Tools<'_>, args: &[&str], t: &mut String) -> String {
    let mut all = vec![args[0], "--insecure"];
    all.extend_from_slice(&args[1..]);
    let r = run(&mut tools.crane(&all), t);
    assert_code(&r, 0, &format!("crane {args:?}"));
    r.stdout
}

fn assert_fails(r: &Run, code: i32, needles: &[&str], what: &str) {
    assert_code(r, code, what);
    for n in needles {
        assert!(
            r.stderr.contains(n) || r.stdout.contains(n),
            "{what}: {n:?} not in\n{}\n{}",
            r.stderr,
            r.stdout
        );
    }
}

/// Pushes a copy of the index `index` (bytes) whose attestation manifest for `image_digest` is `att` with its SLSA
/// layer replaced by `statement` (pushed unless `push_statement` is false), under `tag`.
#[allow(clippy::too_many_arguments)]
fn push_variant(
    host: &str,
    repository: &Reference,
    index: &[u8],
    image_digest: &str,
    statement: &[u8],
    push_statement: bool,
    tag: &str,
) {
    let client = registry_client(host);
    block_on(async {
        let mut idx: serde_json::Value = serde_json::from_slice(index).unwrap();
        let manifests = idx["manifests"].as_array_mut().unwrap();
        let entry = manifests
            .iter_mut()
            .find(|m| m["annotations"]["vnd.docker.reference.digest"] == image_digest)
            .unwrap();
        let att_digest = Digest::parse(entry["digest"].as_str().unwrap()).unwrap();
        let att = client
            .fetch_manifest(&repository.with_digest(att_digest))
            .await
            .unwrap();
        let mut att: serde_json::Value = serde_json::from_slice(&att.bytes).unwrap();
        let statement_digest = Digest::sha256_of(statement);
        if push_statement {
            client.push_blob(repository, statement).await.unwrap();
        }
        for layer in att["layers"].as_array_mut().unwrap() {
            if layer["annotations"]["in-toto.io/predicate-type"] == SLSA_V1 {
                layer["digest"] = statement_digest.to_string().into();
                layer["size"] = statement.len().into();
            }
        }
        let att_bytes = serde_json::to_vec(&att).unwrap();
        let pushed = client
            .push_manifest(
                &repository.with_tag(&format!("{tag}-att")).unwrap(),
                &att_bytes,
                "application/vnd.oci.image.manifest.v1+json",
            )
            .await
            .unwrap();
        entry["digest"] = pushed.digest.to_string().into();
        entry["size"] = att_bytes.len().into();
        let index_bytes = serde_json::to_vec(&idx).unwrap();
        client
            .push_manifest(
                &repository.with_tag(tag).unwrap(),
                &index_bytes,
                "application/vnd.oci.image.index.v1+json",
            )
            .await
            .unwrap();
    });
}

#[test]
fn buildkit_provenance_is_read_rehomed_and_verified() {
    let registry = TestRegistry::start(RegistryMode::Referrers).unwrap();
    let host = registry.host();
    let buildkitd =
        TestBuildkitd::start(&BuildkitdConfig::default().plain_http_registry(&host)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let tools = Tools::new(dir.path(), &registry, Some(PASSWORD));
    let mut t = String::new();
    let image = format!("{host}/buildkit/scratch:v1");
    let repository = Reference::parse(&format!("{host}/buildkit/scratch")).unwrap();
    buildkit_build(&buildkitd, dir.path(), &image, &mut t);
    let amd64 = crane_out(
        &tools,
        &["digest", "--platform", "linux/amd64", &image],
        &mut t,
    )
    .trim()
    .to_string();
    let arm64 = crane_out(
        &tools,
        &["digest", "--platform", "linux/arm64", &image],
        &mut t,
    )
    .trim()
    .to_string();
    assert_ne!(amd64, arm64);
    let index_before = crane_out(&tools, &["manifest", &image], &mut t);

    // provenance get: BuildKit's SLSA v1 statement of each platform image, subject = that image.
    for (platform, digest) in [("linux/amd64", &amd64), ("linux/arm64", &arm64)] {
        let r = run(
            &mut tools.kibaverify(&["provenance", "get", &image, "--platform", platform]),
            &mut t,
        );
        assert_code(&r, 0, "provenance get");
        let statement: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
        assert_eq!(statement["predicateType"], SLSA_V1);
        assert_eq!(
            format!(
                "sha256:{}",
                statement["subject"][0]["digest"]["sha256"]
                    .as_str()
                    .unwrap()
            ),
            *digest
        );
        assert_eq!(
            statement["predicate"]["runDetails"]["builder"]["id"],
            format!("{BUILDER}@v1")
        );
        assert!(r.stderr.contains("not signed"), "{}", r.stderr);
    }
    let r = run(
        &mut tools.kibaverify(&["provenance", "get", &image]),
        &mut t,
    );
    assert_fails(
        &r,
        2,
        &[
            "several platforms",
            "linux/amd64",
            "linux/arm64",
            "--platform",
        ],
        "get without --platform",
    );
    let predicate_file = dir.path().join("predicate.json");
    let r = run(
        &mut tools.kibaverify(&[
            "provenance",
            "get",
            &image,
            "--platform",
            "linux/amd64",
            "--predicate-only",
            "--output-file",
            predicate_file.to_str().unwrap(),
        ]),
        &mut t,
    );
    assert_code(&r, 0, "provenance get --predicate-only");
    let predicate: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&predicate_file).unwrap()).unwrap();
    assert_eq!(
        predicate["buildDefinition"]["buildType"],
        BUILDKIT_BUILD_TYPE
    );
    let single = format!("{host}/buildkit/scratch@{amd64}");
    let r = run(
        &mut tools.kibaverify(&["provenance", "get", &single]),
        &mut t,
    );
    assert_fails(&r, 2, &["not an image index"], "get of a platform image");

    // verify-provenance of BuildKit's unsigned statement (explicitly insecure).
    let unsigned_of = |reference: &str, extra: &[&str], t: &mut String| {
        let mut args = vec![
            "verify-provenance",
            reference,
            "--platform",
            "linux/amd64",
            "--insecure-unsigned-buildkit",
        ];
        args.extend_from_slice(extra);
        run(&mut tools.kibaverify(&args), t)
    };
    let unsigned = |extra: &[&str], t: &mut String| unsigned_of(&image, extra, t);
    let demo_by = [
        "--source-uri",
        "github.com/kibaship/demo",
        "--builder-id",
        BUILDER,
    ];
    let r = unsigned(
        &[
            "--source-uri",
            "github.com/kibaship/demo",
            "--builder-id",
            BUILDER,
        ],
        &mut t,
    );
    assert_code(&r, 0, "verify-provenance --insecure-unsigned-buildkit");
    let r = unsigned(
        &[
            "--source-uri",
            "github.com/kibaship/other",
            "--builder-id",
            BUILDER,
        ],
        &mut t,
    );
    assert_fails(
        &r,
        1,
        &[
            "source-mismatch: /runDetails/metadata/buildkit_metadata/vcs/source is \"https://github.com/kibaship/demo.git\"",
        ],
        "another source",
    );
    let r = unsigned(
        &[
            "--source-uri",
            "github.com/kibaship/demo",
            "--builder-id",
            "https://evil.example/builder",
        ],
        &mut t,
    );
    assert_fails(
        &r,
        1,
        &["builder-mismatch: /runDetails/builder/id is", BUILDER],
        "builder not in policy",
    );
    let r = unsigned(
        &[
            "--source-uri",
            "github.com/kibaship/demo",
            "--builder-id",
            BUILDER,
            "--slsa-version",
            "v0.2",
        ],
        &mut t,
    );
    assert_fails(
        &r,
        1,
        &[
            "predicate-type-mismatch: predicateType is https://slsa.dev/provenance/v1, wanted https://slsa.dev/provenance/v0.2",
        ],
        "v1 where v0.2 is required",
    );

    // Bad BuildKit indexes: a missing statement blob, duplicate keys, a forged subject. Nothing is signed.
    let statement_bytes = {
        let r = run(
            &mut tools.kibaverify(&["provenance", "get", &image, "--platform", "linux/amd64"]),
            &mut t,
        );
        r.stdout.trim().as_bytes().to_vec()
    };
    let missing = br#"{"_type":"https://in-toto.io/Statement/v1","missing":true}"#;
    push_variant(
        &host,
        &repository,
        index_before.as_bytes(),
        &amd64,
        missing,
        false,
        "missing",
    );
    let missing_digest = Digest::sha256_of(missing).to_string();
    let missing_ref = format!("{host}/buildkit/scratch:missing");
    let r = run(
        &mut tools.kibaverify(&[
            "provenance",
            "get",
            &missing_ref,
            "--platform",
            "linux/amd64",
        ]),
        &mut t,
    );
    assert_fails(
        &r,
        2,
        &[&missing_digest, "is missing from the registry"],
        "get: a missing statement blob",
    );
    let r = unsigned_of(&missing_ref, &demo_by, &mut t);
    assert_fails(
        &r,
        2,
        &[&missing_digest, "is missing from the registry"],
        "verify-provenance: a missing statement blob",
    );
    tools.generate_our_key_pair(&mut t);
    let r = run(
        &mut tools.kibaverify(&["provenance", "rehome", &missing_ref, "--key", "ours.key"]),
        &mut t,
    );
    assert_fails(
        &r,
        2,
        &[&missing_digest],
        "rehome: a missing statement blob",
    );
    // An index whose attestation manifest is not in the registry any more (deleted after the push: the registry
    // refuses an index naming a manifest it does not have).
    push_variant(
        &host,
        &repository,
        index_before.as_bytes(),
        &amd64,
        &statement_bytes,
        true,
        "absent",
    );
    let absent_manifest = crane_out(
        &tools,
        &["digest", &format!("{repository}:absent-att")],
        &mut t,
    )
    .trim()
    .to_string();
    crane_out(
        &tools,
        &["delete", &format!("{repository}@{absent_manifest}")],
        &mut t,
    );
    let r = run(
        &mut tools.kibaverify(&[
            "provenance",
            "get",
            &format!("{host}/buildkit/scratch:absent"),
            "--platform",
            "linux/amd64",
        ]),
        &mut t,
    );
    assert_fails(
        &r,
        2,
        &[&format!(
            "the attestation manifest of {amd64} {absent_manifest} is missing from the registry"
        )],
        "get: a missing attestation manifest",
    );

    let text = String::from_utf8(statement_bytes.clone()).unwrap();
    let duplicated = text.replacen(
        "\"builder\":{\"id\":",
        "\"builder\":{\"id\":\"https://evil.example/builder\",\"id\":",
        1,
    );
    assert_ne!(duplicated, text);
    push_variant(
        &host,
        &repository,
        index_before.as_bytes(),
        &amd64,
        duplicated.as_bytes(),
        true,
        "duplicated",
    );
    let duplicated_ref = format!("{host}/buildkit/scratch:duplicated");
    let r = unsigned_of(&duplicated_ref, &demo_by, &mut t);
    assert_fails(
        &r,
        2,
        &["duplicate key \"id\" (at JSON pointer /predicate/runDetails/builder/id)"],
        "duplicate keys",
    );
    let r = run(
        &mut tools.kibaverify(&["provenance", "rehome", &duplicated_ref, "--key", "ours.key"]),
        &mut t,
    );
    assert_fails(&r, 2, &["duplicate key \"id\""], "rehome: duplicate keys");

    let forged = text.replacen(&amd64[7..], &arm64[7..], 1);
    push_variant(
        &host,
        &repository,
        index_before.as_bytes(),
        &amd64,
        forged.as_bytes(),
        true,
        "forged",
    );
    let forged_ref = format!("{host}/buildkit/scratch:forged");
    let r = unsigned_of(&forged_ref, &demo_by, &mut t);
    assert_fails(
        &r,
        1,
        &[&format!(
            "subject-digest-mismatch: subject is {arm64}, wanted {amd64}"
        )],
        "forged subject",
    );
    let r = run(
        &mut tools.kibaverify(&[
            "provenance",
            "rehome",
            &forged_ref,
            "--key",
            "ours.key",
            "--platform",
            "linux/amd64",
        ]),
        &mut t,
    );
    assert_fails(
        &r,
        1,
        &["NOT REHOMED", "subject-digest-mismatch"],
        "rehome: forged subject",
    );
    let tags = crane_out(&tools, &["ls", &repository.to_string()], &mut t);
    assert!(
        !tags.contains(".att"),
        "a refused rehome pushed an attestation: {tags}"
    );

    // rehome: both platform images get BuildKit's statements as signed attestations, in both layouts; the
    // index stays byte for byte what BuildKit pushed.
    let r = run(
        &mut tools.kibaverify(&[
            "provenance",
            "rehome",
            &image,
            "--key",
            "ours.key",
            "--layout",
            "both",
        ]),
        &mut t,
    );
    assert_code(&r, 0, "provenance rehome");
    assert_eq!(r.stdout.lines().count(), 2, "{}", r.stdout);
    assert_eq!(
        crane_out(&tools, &["manifest", &image], &mut t),
        index_before
    );
    assert_eq!(
        crane_out(
            &tools,
            &["digest", "--platform", "linux/amd64", &image],
            &mut t
        )
        .trim(),
        amd64
    );

    // The real cosign verifies the rehomed attestation in both layouts; its statement carries BuildKit's
    // predicate.
    let platform_image = format!("{host}/buildkit/scratch@{amd64}");
    for legacy in [false, true] {
        let mut args = vec![
            "verify-attestation",
            "--key",
            "ours.pub",
            "--type",
            "slsaprovenance1",
            "--insecure-ignore-tlog",
            "--allow-http-registry",
        ];
        if legacy {
            args.push("--new-bundle-format=false");
        }
        args.push(&platform_image);
        let r = run(&mut tools.cosign(&args), &mut t);
        assert_code(
            &r,
            0,
            &format!("cosign verify-attestation (legacy: {legacy})"),
        );
        let statements = support::printed_statements(&r.stdout);
        assert!(
            statements.iter().any(|s| s["predicate"] == predicate),
            "{}",
            r.stdout
        );
    }

    // verify-provenance of the signed attestation.
    let signed = |extra: &[&str], t: &mut String| {
        let mut args = vec![
            "verify-provenance",
            image.as_str(),
            "--platform",
            "linux/amd64",
            "--key",
            "ours.pub",
            "--insecure-ignore-tlog",
            "--source-uri",
            "github.com/kibaship/demo",
        ];
        args.extend_from_slice(extra);
        run(&mut tools.kibaverify(&args), t)
    };
    let r = signed(
        &[
            "--builder-id",
            BUILDER,
            "--print-provenance",
            "--build-type",
            BUILDKIT_BUILD_TYPE,
        ],
        &mut t,
    );
    assert_code(&r, 0, "verify-provenance (signed)");
    let printed: serde_json::Value = serde_json::from_str(r.stdout.trim()).unwrap();
    assert_eq!(printed["predicate"], predicate);
    assert_eq!(printed["subject"][0]["digest"]["sha256"], amd64[7..]);
    assert!(
        r.stderr
            .contains("VERIFIED https://slsa.dev/provenance/v1 provenance"),
        "{}",
        r.stderr
    );
    let r = signed(&["--builder-id", &format!("{BUILDER}@v2")], &mut t);
    assert_fails(
        &r,
        1,
        &[
            "builder-mismatch: /runDetails/builder/id is \"https://kibaship.io/test/buildkit-builder@v1\", wanted a string matching",
        ],
        "signed: another builder version",
    );
    let r = signed(
        &["--builder-id", BUILDER, "--source-branch", "main"],
        &mut t,
    );
    assert_fails(
        &r,
        1,
        &["ref-mismatch: /runDetails/metadata/buildkit_metadata/vcs/source"],
        "signed: a branch BuildKit did not record",
    );
    let r = signed(&["--builder-id", BUILDER, "--slsa-version", "v0.2"], &mut t);
    assert_fails(
        &r,
        1,
        &["predicate-type-mismatch"],
        "signed: v1 where v0.2 is required",
    );
    let r = signed(
        &[
            "--builder-id",
            BUILDER,
            "--build-type",
            "https://example.com/other",
        ],
        &mut t,
    );
    assert_fails(
        &r,
        1,
        &["build-type-mismatch: /buildDefinition/buildType"],
        "signed: another build type",
    );
    let r = signed(&["--builder-id", BUILDER, "--output", "json"], &mut t);
    assert_code(&r, 0, "verify-provenance --output json");
    let json: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(json["verified"], true);
    let r = signed(
        &[
            "--builder-id",
            BUILDER,
            "--source-tag",
            "v1",
            "--output",
            "json",
        ],
        &mut t,
    );
    assert_code(&r, 1, "verify-provenance --output json, not verified");
    let json: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(json["failure"]["code"], "ref-mismatch");
    // Another key: not verified, the verifier's reason.
    let r = run(&mut tools.cosign(&["generate-key-pair"]), &mut t);
    assert_code(&r, 0, "cosign generate-key-pair");
    let r = run(
        &mut tools.kibaverify(&[
            "verify-provenance",
            &image,
            "--platform",
            "linux/amd64",
            "--key",
            "cosign.pub",
            "--insecure-ignore-tlog",
            "--source-uri",
            "github.com/kibaship/demo",
            "--builder-id",
            BUILDER,
        ]),
        &mut t,
    );
    assert_fails(&r, 1, &["wrong-key"], "another key");
    // A statement copied onto another image: the rehomed .att of amd64 under the arm64 BuildKit attestation
    // manifest's tag names amd64 as its subject.
    let att_manifest = {
        let idx: serde_json::Value = serde_json::from_str(&index_before).unwrap();
        idx["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["annotations"]["vnd.docker.reference.digest"] == arm64.as_str())
            .unwrap()["digest"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let att_tag = format!("{}.att", amd64.replace(':', "-"));
    let copy_tag = format!("{}.att", att_manifest.replace(':', "-"));
    let r = run(
        &mut tools.crane(&[
            "tag",
            "--insecure",
            &format!("{repository}:{att_tag}"),
            &copy_tag,
        ]),
        &mut t,
    );
    assert_code(&r, 0, "crane tag (copy the .att)");
    let r = run(
        &mut tools.kibaverify(&[
            "verify-provenance",
            &format!("{repository}@{att_manifest}"),
            "--key",
            "ours.pub",
            "--insecure-ignore-tlog",
            "--source-uri",
            "github.com/kibaship/demo",
            "--builder-id",
            BUILDER,
        ]),
        &mut t,
    );
    assert_fails(&r, 1, &["subject-digest-mismatch"], "a copied attestation");
    // A signed statement with a duplicate key (kibaverify attest embeds the predicate text as given): the
    // signature verifies, the strict read refuses it, naming the key's JSON pointer.
    let duplicated_predicate = dir.path().join("duplicated-predicate.json");
    let predicate_text = serde_json::to_string(&predicate).unwrap();
    let duplicated_text = predicate_text.replacen(
        "\"builder\":{\"id\":",
        "\"builder\":{\"id\":\"https://evil.example/builder\",\"id\":",
        1,
    );
    assert_ne!(duplicated_text, predicate_text);
    std::fs::write(&duplicated_predicate, duplicated_text).unwrap();
    let copied_image = format!("{repository}@{att_manifest}");
    let r = run(
        &mut tools.kibaverify(&[
            "attest",
            &copied_image,
            "--predicate",
            duplicated_predicate.to_str().unwrap(),
            "--type",
            "slsaprovenance1",
            "--key",
            "ours.key",
            "--layout",
            "bundle",
        ]),
        &mut t,
    );
    assert_code(&r, 0, "attest a predicate with a duplicate key");
    let r = run(
        &mut tools.kibaverify(&[
            "verify-provenance",
            &copied_image,
            "--key",
            "ours.pub",
            "--insecure-ignore-tlog",
            "--source-uri",
            "github.com/kibaship/demo",
            "--builder-id",
            BUILDER,
        ]),
        &mut t,
    );
    assert_fails(
        &r,
        1,
        &[
            "bad-signature",
            "duplicate key \"id\" (at JSON pointer /predicate/runDetails/builder/id)",
        ],
        "a signed statement with a duplicate key",
    );
    // The signed attestation's predicate, read back with get --verify.
    let r = run(
        &mut tools.kibaverify(&[
            "provenance",
            "get",
            &image,
            "--platform",
            "linux/amd64",
            "--verify",
            "--key",
            "ours.pub",
            "--insecure-ignore-tlog",
            "--predicate-only",
        ]),
        &mut t,
    );
    assert_code(&r, 0, "provenance get --verify");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&r.stdout).unwrap(),
        predicate
    );
    support::assert_not_leaked(&t, PASSWORD, "the key password");
}

/// Keyless: `provenance rehome --keyless` (bundle layout, the private Sigstore's Fulcio, Rekor v2 and TSA) and
/// `verify-provenance` by certificate identity; another identity is refused.
#[test]
fn buildkit_provenance_is_rehomed_keyless_and_verified_by_identity() {
    const EMAIL: &str = "builder@kibaship.test";
    let stack = KeylessStack::start(SigstoreOptions::default(), RegistryMode::Referrers, EMAIL);
    let host = stack.reg.host();
    let buildkitd =
        TestBuildkitd::start(&BuildkitdConfig::default().plain_http_registry(&host)).unwrap();
    let mut t = String::new();
    let image = format!("{host}/buildkit/keyless:v1");
    buildkit_build(&buildkitd, stack.tmp.path(), &image, &mut t);
    let r = run(
        &mut stack.sign_keyless(&["provenance", "rehome", &image, "--platform", "linux/arm64"]),
        &mut t,
    );
    assert_code(&r, 0, "provenance rehome --keyless");
    assert!(r.stderr.contains("into bundle"), "{}", r.stderr);
    let verify = |identity: &str, t: &mut String| {
        let args = [
            "verify-provenance",
            image.as_str(),
            "--platform",
            "linux/arm64",
            "--source-uri",
            SOURCE,
            "--builder-id",
            BUILDER,
        ];
        run(&mut stack.verify(&args, identity), t)
    };
    let r = verify(EMAIL, &mut t);
    assert_code(&r, 0, "verify-provenance by identity");
    assert!(r.stderr.contains(EMAIL), "{}", r.stderr);
    let r = verify("someone-else@kibaship.test", &mut t);
    assert_fails(&r, 1, &["wrong-identity"], "another identity");
    // linux/amd64 was not rehomed: nothing verifies there.
    let r = run(
        &mut stack.verify(
            &[
                "verify-provenance",
                &image,
                "--platform",
                "linux/amd64",
                "--source-uri",
                SOURCE,
                "--builder-id",
                BUILDER,
            ],
            EMAIL,
        ),
        &mut t,
    );
    assert_fails(&r, 1, &["attestation-missing"], "a platform not rehomed");
    stack.assert_token_not_in(&t);
}
