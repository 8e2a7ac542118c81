//! `kibaship-step attest` against a real registry (docker-registry from the test harness): the image is a fixture,
//! beside it an attestation manifest laid out as BuildKit writes it (an OCI manifest whose layer is an in-toto
//! statement annotated `in-toto.io/predicate-type: https://spdx.dev/Document`, holding an SPDX 2.3 example from
//! spdx-examples). The step attests a SLSA provenance predicate and the SBOM, and attaches the SBOM as a referrer:
//! the real cosign `verify-attestation` accepts both types and prints our documents, the referrers API lists the
//! SBOM with artifactType application/spdx+json. Bad inputs exit with their kinds; the key password is planted and
//! searched for in every output.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex, PoisonError, Weak};

use kibaship_oci::Reference;
use kibaship_sign::SigningKey;
use kibaship_testsupport::fixtures::push_fixture_images;
use kibaship_testsupport::peers::peer_binary;
use kibaship_testsupport::registry::{RegistryMode, TestRegistry};
use serde_json::{Value, json};

mod step_support;
use step_support::{block_on, client};

const PASSWORD: &str = "pl4nted-attest-cosign-password-77ab";
const SPDX: &str =
    "../../testdata/sbom/spdx/examples/example8_spdx2.3_examplemaven-0.0.1.spdx.json";

struct Setup {
    registry: TestRegistry,
    dir: tempfile::TempDir,
    digest: String,
    sbom_ref: String,
    no_sbom_ref: String,
}

/// Pushes an attestation manifest with one in-toto layer of `predicate_type` holding `predicate`; its digest.
fn push_attestation_manifest(host: &str, predicate_type: &str, predicate: &Value) -> String {
    let c = client(host);
    let repo = Reference::parse(&format!("{host}/fixtures/app")).unwrap();
    let statement = serde_json::to_vec(&json!({
        "_type": "https://in-toto.io/Statement/v0.1",
        "predicateType": predicate_type,
        "subject": [{"name": "_", "digest": {"sha256": "0".repeat(64)}}],
        "predicate": predicate,
    }))
    .unwrap();
    let config = br#"{"architecture":"unknown","os":"unknown","config":{},"rootfs":{"type":"layers","diff_ids":[]}}"#;
    block_on(async {
        let layer = c.push_blob(&repo, &statement).await.unwrap();
        let config_digest = c.push_blob(&repo, config).await.unwrap();
        let manifest = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest.to_string(), "size": config.len()},
            "layers": [{
                "mediaType": "application/vnd.in-toto+json",
                "digest": layer.to_string(),
                "size": statement.len(),
                "annotations": {"in-toto.io/predicate-type": predicate_type}
            }]
        }))
        .unwrap();
        let pushed = c
            .push_manifest(
                &Reference::parse(&format!("{host}/fixtures/app:att-{}", predicate_type.len()))
                    .unwrap(),
                &manifest,
                "application/vnd.oci.image.manifest.v1+json",
            )
            .await
            .unwrap();
        pushed.digest.to_string()
    })
}

/// The registry and fixtures the tests share: made by the first test that needs them, removed (registry
/// stopped, temporary directories deleted) when the last test holding them ends. Every test holds one for its
/// whole run (`let _shared = setup();`), so the helpers it calls see the same.
fn setup() -> Arc<Setup> {
    static SHARED: Mutex<Weak<Setup>> = Mutex::new(Weak::new());
    let mut shared = SHARED.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(setup) = shared.upgrade() {
        return setup;
    }
    let setup = Arc::new(new_setup());
    *shared = Arc::downgrade(&setup);
    setup
}

fn new_setup() -> Setup {
    let registry = TestRegistry::start(RegistryMode::Plain).unwrap();
    push_fixture_images(&registry).unwrap();
    let host = registry.host();
    let digest = block_on(client(&host).resolve_digest(
        &Reference::parse(&format!("{host}/fixtures/app:v1")).unwrap(),
        None,
    ))
    .unwrap()
    .digest
    .to_string();
    let spdx: Value = serde_json::from_slice(
        &std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join(SPDX)).unwrap(),
    )
    .unwrap();
    let sbom_digest = push_attestation_manifest(&host, "https://spdx.dev/Document", &spdx);
    let provenance_digest = push_attestation_manifest(
        &host,
        "https://slsa.dev/provenance/v1",
        &json!({"buildDefinition": {"buildType": "x"}}),
    );
    let dir = tempfile::tempdir().unwrap();
    let key = SigningKey::generate().unwrap();
    std::fs::write(
        dir.path().join("cosign.key"),
        key.to_encrypted_pem(PASSWORD.as_bytes()).unwrap(),
    )
    .unwrap();
    std::fs::write(dir.path().join("cosign.pub"), key.public_key_pem().unwrap()).unwrap();
    std::fs::write(
        dir.path().join("predicate.json"),
        serde_json::to_vec(&json!({
            "buildDefinition": {
                "buildType": "https://kibaship.io/buildtypes/railpack-buildkit/v1",
                "externalParameters": {"source": {"uri": "git+https://github.com/acme/web"}}
            },
            "runDetails": {"builder": {"id": "https://kibaship.io/tekton/tasks/railpack-build@v0.1.0"}}
        }))
        .unwrap(),
    )
    .unwrap();
    Setup {
        sbom_ref: format!("{host}/fixtures/app@{sbom_digest}"),
        no_sbom_ref: format!("{host}/fixtures/app@{provenance_digest}"),
        registry,
        dir,
        digest,
    }
}

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    attestations: Option<String>,
}

fn attest(extra: &[(&str, &str)]) -> Run {
    let s = setup();
    // One result file per run: the tests run in parallel.
    static RUNS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let result = s.dir.path().join(format!("attestations-{n}"));
    let _ = std::fs::remove_file(&result);
    let key = s.dir.path().join("cosign.key").display().to_string();
    let predicate = s.dir.path().join("predicate.json").display().to_string();
    let image = format!("{}/fixtures/app:v1", s.registry.host());
    let mut flags: Vec<(String, String)> = [
        ("--image", image.as_str()),
        ("--digest", s.digest.as_str()),
        ("--provenance-predicate", predicate.as_str()),
        ("--sbom-ref", s.sbom_ref.as_str()),
        ("--mode", "key"),
        ("--layout", "legacy"),
        ("--key-file", key.as_str()),
        ("--insecure-registry", "true"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    for (k, v) in extra {
        match flags.iter_mut().find(|(f, _)| f == k) {
            Some(slot) => slot.1 = v.to_string(),
            None => flags.push((k.to_string(), v.to_string())),
        }
    }
    let out = Command::new(env!("CARGO_BIN_EXE_kibaship-step"))
        .env("COSIGN_PASSWORD", PASSWORD)
        .arg("attest")
        .args(flags.iter().flat_map(|(k, v)| [k, v]))
        .arg("--attestations-result")
        .arg(&result)
        .output()
        .unwrap();
    let run = Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        attestations: std::fs::read_to_string(&result).ok(),
    };
    for text in [&run.stdout, &run.stderr] {
        assert!(!text.contains(PASSWORD), "{text}");
    }
    if let Some(a) = &run.attestations {
        assert!(!a.contains(PASSWORD));
    }
    run
}

fn cosign_predicate(predicate_type: &str) -> Value {
    let s = setup();
    let out = Command::new(peer_binary("cosign").expect("the cosign peer (make peers)"))
        .args(["verify-attestation", "--type", predicate_type, "--key"])
        .arg(s.dir.path().join("cosign.pub"))
        .args(["--insecure-ignore-tlog", "--allow-http-registry"])
        .arg(format!("{}/fixtures/app@{}", s.registry.host(), s.digest))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "cosign verify-attestation --type {predicate_type}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()
        .unwrap()
        .to_string();
    let envelope: Value = serde_json::from_str(&line).unwrap();
    use base64::Engine;
    let payload = base64::engine::general_purpose::STANDARD
        .decode(envelope["payload"].as_str().unwrap())
        .unwrap();
    serde_json::from_slice::<Value>(&payload).unwrap()["predicate"].clone()
}

#[test]
fn attests_provenance_and_attaches_and_attests_the_buildkit_sbom() {
    let _shared = setup();
    let s = setup();
    let run = attest(&[]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let host = s.registry.host();
    let attestations = run.attestations.unwrap();
    let lines: Vec<&str> = attestations.lines().collect();
    // Provenance (.att tag), the SBOM referrer, the SBOM attestation (the same .att tag, appended).
    assert_eq!(lines.len(), 3, "{attestations}");
    assert!(lines[0].ends_with(".att"), "{attestations}");
    assert!(
        lines[1].starts_with(&format!("{host}/fixtures/app@sha256:")),
        "{attestations}"
    );
    let provenance = cosign_predicate("slsaprovenance1");
    assert_eq!(
        provenance["buildDefinition"]["buildType"],
        "https://kibaship.io/buildtypes/railpack-buildkit/v1"
    );
    let spdx = cosign_predicate("spdxjson");
    let original: Value = serde_json::from_slice(
        &std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join(SPDX)).unwrap(),
    )
    .unwrap();
    assert_eq!(spdx, original);
    let referrers = block_on(client(&host).list_referrers(
        &Reference::parse(&format!("{host}/fixtures/app@{}", s.digest)).unwrap(),
        Some("application/spdx+json"),
    ))
    .unwrap();
    assert_eq!(
        referrers
            .descriptors
            .iter()
            .map(|d| format!("{host}/fixtures/app@{}", d.digest))
            .collect::<Vec<_>>(),
        [lines[1].to_string()]
    );
}

#[test]
fn bad_inputs_exit_with_their_kind() {
    let _shared = setup();
    let s = setup();
    // An attestation manifest without an SBOM layer: BuildKit's output is not what the step needs (build kind).
    let run = attest(&[
        ("--sbom-ref", s.no_sbom_ref.as_str()),
        ("--provenance-predicate", ""),
    ]);
    assert_eq!(run.code, Some(70), "{}", run.stderr);
    assert!(
        run.stderr
            .contains("no layer with in-toto.io/predicate-type"),
        "{}",
        run.stderr
    );
    // An SBOM reference in another repository.
    let other = format!("{}/fixtures/other@{}", s.registry.host(), s.digest);
    let run = attest(&[("--sbom-ref", other.as_str())]);
    assert_eq!(run.code, Some(64), "{}", run.stderr);
    assert!(
        run.stderr
            .contains("not <repository>@<digest> in the image's repository"),
        "{}",
        run.stderr
    );
    // Nothing to attest.
    let run = attest(&[("--sbom-ref", ""), ("--provenance-predicate", "")]);
    assert_eq!(run.code, Some(64), "{}", run.stderr);
    assert!(run.stderr.contains("nothing to attest"), "{}", run.stderr);
    // A predicate that is not a JSON object.
    let bad = s.dir.path().join("bad-predicate.json");
    std::fs::write(&bad, "[1, 2]").unwrap();
    let run = attest(&[
        ("--provenance-predicate", bad.to_str().unwrap()),
        ("--sbom-ref", ""),
    ]);
    assert_eq!(run.code, Some(64), "{}", run.stderr);
    assert!(
        run.stderr.contains("--provenance-predicate"),
        "{}",
        run.stderr
    );
}
