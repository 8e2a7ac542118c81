//! SLSA provenance v1 of a real build (issue 17 part 2), end to end: a real Railpack + BuildKit build
//! (`RailpackBuildkit` + `TestRegistry`, as `real_build.rs`), then `kibaship-step provenance` from the build's
//! results, buildctl's metadata file, the plan and BuildKit's own provenance (read from the pushed index with
//! skopeo and curl); the statement is read back strictly and checked against the registry (subject digest,
//! frontend and base image digests); its predicate is attested with `kibaship_cosign::attest::attest_image`
//! (exactly what `kibaverify attest --predicate F --type slsaprovenance1 --key K` runs) and verified by the real
//! cosign `verify-attestation --type slsaprovenance1` and by `ImageVerifier` (what `kibaverify
//! verify-attestation` runs). Bad inputs exit with the step's failure-kind codes, naming the field.
//!
//! One live build per run (~15 s); needs root and `make peers deps`, as real_build.rs.

mod real_support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;

use base64::Engine as _;
use kibaship_cosign::attest::{Attestation, attest_image};
use kibaship_cosign::keyless::now_unix;
use kibaship_cosign::{ImagePolicy, ImageSigner, ImageVerifier, Layouts, ReasonCode};
use kibaship_oci::{ClientConfig, Reference, RegistryClient};
use kibaship_provenance::requirements::Judgement;
use kibaship_provenance::{ProvenanceRequirements, SlsaVersion};
use kibaship_sign::SigningKey;
use kibaship_sigstore::{TrustedRoot, Verifier};
use kibaship_step::provenance::{BUILD_TYPE, SLSA_PROVENANCE_V1, Statement};
use kibaship_testsupport::peers::peer_binary;
use kibaship_testsupport::railpack_build::RailpackBuildkit;
use real_support::{
    COMMIT, Peers, REPOSITORY, SOURCE, Workspace, blob, registry_head_digest, skopeo_raw, step,
    text,
};
use serde_json::Value;
use sha2::{Digest, Sha256};

const INVOCATION: &str = "0b7c5e4a-2f1d-4c8e-9a6b-3d2e1f0a9b8c";
/// An override value that leaves the flag out.
const OMIT: &str = "<omit>";

/// BuildKit's SLSA provenance layer of the index's attestation manifest, fetched with skopeo and curl.
fn buildkit_provenance(host: &str, index: &Value) -> Vec<u8> {
    let att = index["manifests"]
        .as_array()
        .expect("manifests")
        .iter()
        .find(|m| m["annotations"]["vnd.docker.reference.type"] == "attestation-manifest")
        .and_then(|m| m["digest"].as_str())
        .unwrap_or_else(|| panic!("no attestation manifest in {index}"));
    let (_, manifest) = skopeo_raw(&format!("{host}/{REPOSITORY}@{att}"));
    let layer = manifest["layers"]
        .as_array()
        .expect("layers")
        .iter()
        .find(|l| l["annotations"]["in-toto.io/predicate-type"] == SLSA_PROVENANCE_V1)
        .and_then(|l| l["digest"].as_str())
        .unwrap_or_else(|| panic!("no SLSA layer in {manifest}"));
    blob(host, layer)
}

/// A finished build: its workspace and what `kibaship-step build` printed.
struct Built {
    ws: Workspace,
    digest: String,
    image: String,
    build_key: String,
}

impl Built {
    fn path(&self, rel: &str) -> PathBuf {
        self.ws.path(rel)
    }

    /// `kibaship-step provenance` with the flags the build's inputs and results give, `overrides` replacing or
    /// adding flags ([`OMIT`] leaves one out; an empty flag name adds a switch given as the value).
    fn provenance(&self, railpack_version: &str, overrides: &[(&str, &str)]) -> Output {
        let mut flags: Vec<(String, String)> = [
            ("--image", self.image.as_str()),
            ("--digest", self.digest.as_str()),
            (
                "--metadata-file",
                &self.path("metadata.json").display().to_string(),
            ),
            (
                "--plan",
                &self.path("ws/railpack/plan.json").display().to_string(),
            ),
            (
                "--buildkit-provenance",
                &self.path("buildkit-provenance.json").display().to_string(),
            ),
            ("--source-url", SOURCE),
            ("--revision", COMMIT),
            ("--git-ref", "refs/heads/main"),
            ("--context-path", "app"),
            ("--railpack-version", railpack_version),
            ("--cache-key", "tenant-acme"),
            ("--build-key", self.build_key.as_str()),
            (
                "--output",
                &self.path("provenance.json").display().to_string(),
            ),
            (
                "--predicate-output",
                &self.path("predicate.json").display().to_string(),
            ),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let mut switches = Vec::new();
        for (k, v) in overrides {
            if k.is_empty() {
                switches.push(v.to_string());
                continue;
            }
            match flags.iter_mut().find(|(f, _)| f == k) {
                Some(entry) => entry.1 = v.to_string(),
                None => flags.push((k.to_string(), v.to_string())),
            }
        }
        let mut cmd = step();
        cmd.arg("provenance")
            .env("KIBASHIP_INVOCATION_ID", INVOCATION);
        for (k, v) in flags.into_iter().filter(|(_, v)| v != OMIT) {
            cmd.arg(k).arg(v);
        }
        cmd.args(switches);
        cmd.output().expect("run kibaship-step provenance")
    }
}

/// Prepares and builds the shell fixture app for real (see [`Workspace`]); panics when either fails.
fn build(host: &str, buildkit: &RailpackBuildkit) -> Built {
    let ws = Workspace::new("shell");
    ws.prepare_ok();
    let out = ws.build_ok(host, buildkit);
    let stdout = text(&out.stdout);
    let line = |key: &str| {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(key).map(str::to_string))
            .unwrap_or_else(|| panic!("no {key} in {stdout}"))
    };
    Built {
        digest: line("digest="),
        image: line("image="),
        build_key: line("buildKey="),
        ws,
    }
}

fn client(host: &str) -> RegistryClient {
    RegistryClient::new(ClientConfig {
        insecure_registries: vec![host.to_string()],
        use_docker_config: false,
        ..ClientConfig::default()
    })
    .expect("client")
}

fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(future)
}

#[test]
fn provenance_of_a_real_build_is_valid_attested_and_verified_by_cosign() {
    let peers = Peers::start();
    let host = peers.registry.host();
    let version = peers.buildkit.images().railpack_version.clone();
    let built = build(&host, &peers.buildkit);
    let (index_digest, index) = skopeo_raw(&format!("{host}/{REPOSITORY}@{}", built.digest));
    assert_eq!(index_digest, built.digest);
    fs::write(
        built.path("buildkit-provenance.json"),
        buildkit_provenance(&host, &index),
    )
    .expect("write");

    // Generate.
    let out = built.provenance(&version, &[]);
    assert!(
        out.status.success(),
        "provenance failed:\n{}",
        text(&out.stderr)
    );
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains(&format!("subject={host}/{REPOSITORY}@{}", built.digest)),
        "{stdout}"
    );

    // Read back strictly (deny_unknown_fields + the spec's rules) and check it against the registry.
    let statement =
        Statement::parse_strict(&fs::read(built.path("provenance.json")).expect("read"))
            .expect("valid");
    let registry_digest = registry_head_digest(&host, COMMIT);
    assert_eq!(registry_digest, built.digest);
    assert_eq!(
        format!("sha256:{}", statement.subject[0].digest["sha256"]),
        registry_digest,
        "the subject is the pushed index"
    );
    assert_eq!(
        statement.subject[0].name.as_deref(),
        Some(format!("{host}/{REPOSITORY}").as_str())
    );
    let def = &statement.predicate.build_definition;
    assert_eq!(def.build_type, BUILD_TYPE);
    assert_eq!(def.external_parameters.source.commit, COMMIT);
    assert_eq!(def.external_parameters.source.uri, SOURCE);
    let plan_bytes = fs::read(built.path("ws/railpack/plan.json")).expect("plan");
    assert_eq!(
        def.external_parameters.plan.digest,
        format!("sha256:{}", hex::encode(Sha256::digest(&plan_bytes)))
    );
    assert_eq!(def.external_parameters.platform, "linux/amd64");
    assert_eq!(
        def.internal_parameters.build_key.as_deref(),
        Some(built.build_key.as_str())
    );
    let deps = &def.resolved_dependencies;
    assert_eq!(
        deps[0].uri.as_deref(),
        Some(format!("git+{SOURCE}@refs/heads/main").as_str())
    );
    assert_eq!(deps[0].digest["gitCommit"], COMMIT);
    // The frontend by the digest the registry serves for its tag (skopeo), as BuildKit resolved it.
    let frontend = format!("ghcr.io/railwayapp/railpack-frontend:{version}");
    let (frontend_digest, _) =
        skopeo_raw(&format!("{host}/railwayapp/railpack-frontend:{version}"));
    let dep = deps
        .iter()
        .find(|d| d.name.as_deref() == Some(frontend.as_str()))
        .unwrap_or_else(|| panic!("no frontend in {deps:?}"));
    assert_eq!(format!("sha256:{}", dep.digest["sha256"]), frontend_digest);
    // The runtime base image the plan names, by digest.
    let runtime = deps
        .iter()
        .find(|d| d.name.as_deref() == Some("ghcr.io/railwayapp/railpack-runtime:latest"))
        .unwrap_or_else(|| panic!("no runtime base in {deps:?}"));
    assert_eq!(runtime.digest["sha256"].len(), 64, "{runtime:?}");
    let run = &statement.predicate.run_details;
    assert_eq!(run.metadata.invocation_id, INVOCATION);
    assert!(
        run.builder
            .id
            .starts_with("https://kibaship.io/tekton/tasks/railpack-build@v")
    );
    assert!(run.metadata.started_on.is_some() && run.metadata.finished_on.is_some());

    // Without --buildkit-provenance, the step reads BuildKit's statement from the registry itself: same result.
    let from_file = fs::read(built.path("provenance.json")).expect("read");
    let out = built.provenance(
        &version,
        &[("--buildkit-provenance", OMIT), ("", "--insecure-registry")],
    );
    assert!(
        out.status.success(),
        "provenance from the registry:\n{}",
        text(&out.stderr)
    );
    assert_eq!(
        fs::read(built.path("provenance.json")).expect("read"),
        from_file
    );
    // --no-buildkit-provenance: the frontend is named, with no digest invented.
    let out = built.provenance(
        &version,
        &[
            ("--buildkit-provenance", OMIT),
            ("", "--no-buildkit-provenance"),
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let bare = Statement::parse_strict(&fs::read(built.path("provenance.json")).expect("read"))
        .expect("valid");
    let unresolved = bare
        .predicate
        .build_definition
        .resolved_dependencies
        .iter()
        .find(|d| d.name.as_deref() == Some(frontend.as_str()))
        .expect("frontend named");
    assert!(unresolved.digest.is_empty(), "{unresolved:?}");
    assert!(unresolved.annotations.contains_key("kibaship.io/digest"));
    fs::write(built.path("provenance.json"), &from_file).expect("restore");

    // Attest the predicate with kibaverify attest's code path, legacy layout, a cosign key.
    let key = SigningKey::generate().expect("key");
    let public = built.path("cosign.pub");
    fs::write(&public, key.public_key_pem().expect("pem")).expect("write");
    let predicate = fs::read(built.path("predicate.json")).expect("predicate");
    let attestation = Attestation::new(
        "slsaprovenance1",
        &predicate,
        "predicate.json",
        time::OffsetDateTime::now_utc(),
    )
    .expect("attestation");
    let pinned = Reference::parse(&format!("{host}/{REPOSITORY}@{}", built.digest)).expect("ref");
    block_on(attest_image(
        &client(&host),
        &pinned,
        None,
        ImageSigner::Key(&key),
        Layouts::Legacy,
        &attestation,
    ))
    .expect("attest");

    // The real cosign verifies it and prints our predicate.
    let cosign = peer_binary("cosign").expect("the cosign peer (make peers)");
    let out = Command::new(cosign)
        .args(["verify-attestation", "--type", "slsaprovenance1", "--key"])
        .arg(&public)
        .args(["--insecure-ignore-tlog", "--allow-http-registry"])
        .arg(pinned.to_string())
        .output()
        .expect("run cosign");
    assert!(
        out.status.success(),
        "cosign verify-attestation:\n{}",
        text(&out.stderr)
    );
    let envelope: Value = serde_json::from_slice(
        text(&out.stdout)
            .lines()
            .next()
            .expect("one envelope")
            .as_bytes(),
    )
    .expect("envelope JSON");
    let payload = base64::engine::general_purpose::STANDARD
        .decode(envelope["payload"].as_str().expect("payload"))
        .expect("base64");
    let signed: Value = serde_json::from_slice(&payload).expect("statement");
    let ours: Value = serde_json::from_slice(&predicate).expect("predicate");
    assert_eq!(signed["predicate"], ours, "cosign prints our predicate");
    assert_eq!(signed["predicateType"], SLSA_PROVENANCE_V1);
    assert_eq!(
        signed["subject"][0]["digest"]["sha256"],
        statement.subject[0].digest["sha256"]
    );

    // kibaverify verify-attestation's verifier accepts it, and the verified predicate is ours.
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/sigstore/trusted-roots/production-trusted_root.json");
    let verifier =
        Verifier::new(TrustedRoot::from_json(&fs::read(root).expect("root")).expect("root"));
    let policy = ImagePolicy::builder()
        .key_pem(key.public_key_pem().expect("pem").as_bytes())
        .expect("key")
        .signature_not_required()
        .require_attestation(Some(SLSA_PROVENANCE_V1.to_string()))
        .accept_without_transparency_log(true)
        .build()
        .expect("policy");
    let verdict = block_on(
        ImageVerifier::with_verifier(client(&host), Arc::new(verifier)).verify(
            &pinned,
            &policy,
            now_unix(),
        ),
    )
    .expect("verify");
    assert!(verdict.is_verified(), "{verdict:?}");
    let accepted = verdict
        .attestations()
        .and_then(|r| r.signatures.iter().find_map(|s| s.accepted()))
        .expect("an accepted attestation");
    let verified: Value =
        serde_json::from_slice(accepted.statement.as_deref().expect("statement")).expect("JSON");
    assert_eq!(verified["predicate"], ours);

    // verify-provenance's requirements (slsa-verifier's flags) on our own provenance: the source, its branch and
    // our Task as the builder pass; another branch or builder fail with their codes.
    let report = verdict.attestations().expect("attestations");
    let requirements = ProvenanceRequirements {
        source_uri: SOURCE.to_string(),
        source_tag: None,
        source_branch: Some("main".into()),
        source_versioned_tag: None,
        builder_id: "https://kibaship.io/tekton/tasks/railpack-build".into(),
        build_type: Some("https://kibaship.io/buildtypes/railpack-buildkit/v1".into()),
        versions: vec![SlsaVersion::V1],
    };
    assert!(requirements.judge_report(report).is_ok());
    let failed = |r: ProvenanceRequirements| match r.judge_report(report) {
        Err(Judgement::Failed(f)) => f.code,
        other => panic!("{other:?}"),
    };
    let other_branch = ProvenanceRequirements {
        source_branch: Some("release".into()),
        ..requirements.clone()
    };
    assert_eq!(failed(other_branch), ReasonCode::RefMismatch);
    let other_builder = ProvenanceRequirements {
        builder_id: "https://example.com/builder".into(),
        ..requirements.clone()
    };
    assert_eq!(failed(other_builder), ReasonCode::BuilderMismatch);

    // Bad input: each names its field and exits with the step's failure-kind code.
    let unreachable_image = format!("127.0.0.1:1/{REPOSITORY}:{COMMIT}");
    let unreachable_metadata = built.path("unreachable-metadata.json");
    fs::write(
        &unreachable_metadata,
        serde_json::json!({"containerimage.digest": built.digest, "image.name": unreachable_image})
            .to_string(),
    )
    .expect("write");
    let unreachable_metadata = unreachable_metadata.display().to_string();
    for (overrides, code, want) in [
        (
            vec![("--revision", "")],
            64,
            "--revision (gitCommit): missing",
        ),
        (
            vec![("--digest", "sha256:abc")],
            64,
            "--digest (digest result): \"sha256:abc\" is not sha256:<64",
        ),
        (
            vec![("--digest", &format!("sha256:{}", "0".repeat(64))[..])],
            64,
            "is not what buildctl pushed",
        ),
        (vec![("--invocation-id", " ")], 64, "--invocation-id"),
        (
            vec![("--metadata-file", "/nonexistent/metadata.json")],
            70,
            "cannot read buildctl metadata file (--metadata-file) /nonexistent/metadata.json",
        ),
        (
            vec![("--buildkit-provenance", "/nonexistent/bk.json")],
            70,
            "BuildKit provenance (--buildkit-provenance)",
        ),
        // The registry read, against a port nothing listens on: retryable.
        (
            vec![
                ("--buildkit-provenance", OMIT),
                ("--image", &unreachable_image[..]),
                ("--metadata-file", &unreachable_metadata[..]),
                ("--timeout", "5s"),
            ],
            75,
            "registry request for 127.0.0.1:1/",
        ),
    ] {
        let _ = fs::remove_file(built.path("provenance.json"));
        let out = built.provenance(&version, &overrides);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{overrides:?}: {stderr}");
        assert!(
            stderr.contains(want),
            "{overrides:?}: want {want:?} in {stderr}"
        );
        assert!(
            !built.path("provenance.json").exists(),
            "nothing written on failure"
        );
    }
}
