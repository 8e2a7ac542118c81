//! `kibaship-step scan` with the real trivy peer (v0.74.0) scanning images in a real registry (docker-registry
//! from the test harness), offline, with a vulnerability DB built here by the trivy-db peer from our advisory
//! (testdata/trivy/vuln-list: lodash < 4.17.21, CVE-2021-23337 HIGH, as scripts/peers/smoke-trivy.sh). The
//! images are one layer each (`app/node_modules/lodash/package.json`), pushed with crane. Checks: a failed gate
//! exits 1 after attesting, a passed gate exits 0, both attestations verified by the real cosign
//! `verify-attestation --type vuln`; the verdict and counts results; `--mode none` attests nothing; bad policy
//! exits 64 before any scan. Two faults the real trivy cannot be made to show on demand use stand-ins (named so):
//! a scanner that crashes and one that writes a truncated report, each exit 2 with nothing signed. The key
//! password is planted and searched for in every output.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex, PoisonError, Weak};

use kibaship_oci::Reference;
use kibaship_sign::SigningKey;
use kibaship_testsupport::peers::peer_binary;
use kibaship_testsupport::registry::{RegistryMode, TestRegistry};
use serde_json::Value;

mod step_support;
use step_support::{block_on, client, read_results, task_argv};

const PASSWORD: &str = "pl4nted-scan-cosign-password-4e1d";
const POLICY: &str = "version: 1\nfail-on-severity: high\n";

struct Setup {
    registry: TestRegistry,
    dir: tempfile::TempDir,
    /// Repository -> digest of each pushed image.
    digests: BTreeMap<&'static str, String>,
}

impl Setup {
    fn host(&self) -> String {
        self.registry.host()
    }
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
    fn image(&self, repository: &str) -> String {
        format!("{}/{repository}:v1", self.host())
    }
    fn digest(&self, repository: &str) -> &str {
        &self.digests[repository]
    }
}

fn run_ok(command: &mut Command) -> String {
    let out = command.output().unwrap();
    assert!(
        out.status.success(),
        "{command:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// One registry, one trivy DB, the images and a key for every test of this binary.
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
    let dir = tempfile::tempdir().unwrap();
    // The DB: trivy-db build over a vuln-list tree with our GHSA advisory only.
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/trivy");
    let vuln_list = dir.path().join("vuln-list");
    std::fs::create_dir_all(vuln_list.join("cocoapods-specs/Specs")).unwrap();
    run_ok(
        Command::new("cp")
            .arg("-r")
            .arg(fixtures.join("vuln-list/ghsa"))
            .arg(&vuln_list),
    );
    run_ok(
        Command::new(peer_binary("trivy-db").expect("the trivy-db peer (make peers)"))
            .args(["build", "--only-update", "ghsa", "--cache-dir"])
            .arg(&vuln_list)
            .arg("--output-dir")
            .arg(dir.path().join("cache/db"))
            .args(["--update-interval", "87600h"]),
    );
    let crane = peer_binary("crane").expect("the crane peer (make peers)");
    let mut digests = BTreeMap::new();
    for (repository, version) in [
        ("kibaship/acme/vulnerable", "4.17.20"),
        ("kibaship/acme/clean", "4.17.21"),
        ("kibaship/acme/unscanned", "4.17.21"),
        ("kibaship/acme/truncated", "4.17.20"),
        ("kibaship/acme/unsigned", "4.17.20"),
        ("kibaship/acme/bad-key", "4.17.20"),
    ] {
        let root = dir.path().join(format!("root-{version}"));
        let package = root.join("app/node_modules/lodash");
        std::fs::create_dir_all(&package).unwrap();
        std::fs::write(
            package.join("package.json"),
            format!(r#"{{"name":"lodash","version":"{version}","license":"MIT"}}"#),
        )
        .unwrap();
        let layer = dir.path().join(format!("layer-{version}.tar"));
        run_ok(
            Command::new("tar")
                .arg("-C")
                .arg(&root)
                .arg("-cf")
                .arg(&layer)
                .arg("app"),
        );
        let pushed = run_ok(
            Command::new(&crane)
                .arg("append")
                .arg("-f")
                .arg(&layer)
                .args(["-t", &format!("{}/{repository}:v1", registry.host())])
                .arg("--insecure"),
        );
        let digest = pushed.trim().rsplit_once('@').unwrap().1.to_string();
        digests.insert(repository, digest);
    }
    let key = SigningKey::generate().unwrap();
    std::fs::write(
        dir.path().join("cosign.key"),
        key.to_encrypted_pem(PASSWORD.as_bytes()).unwrap(),
    )
    .unwrap();
    std::fs::write(dir.path().join("cosign.pub"), key.public_key_pem().unwrap()).unwrap();
    std::fs::write(dir.path().join("policy.yaml"), POLICY).unwrap();
    Setup {
        registry,
        dir,
        digests,
    }
}

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    results: BTreeMap<String, String>,
}

fn scan(repository: &str, extra: &[&str]) -> Run {
    let s = setup();
    let results = s.path(&format!("results-{}", repository.replace('/', "-")));
    std::fs::create_dir_all(&results).unwrap();
    let path = |p: PathBuf| p.to_string_lossy().into_owned();
    let mut flags: Vec<(String, String)> = [
        ("--image", s.image(repository)),
        ("--digest", s.digest(repository).to_string()),
        ("--policy", path(s.path("policy.yaml"))),
        (
            "--trivy",
            path(peer_binary("trivy").expect("the trivy peer (make peers)")),
        ),
        ("--cache-dir", path(s.path("cache"))),
        ("--offline", "true".into()),
        ("--insecure-registry", "true".into()),
        ("--report-file", path(results.join("report.json"))),
        ("--mode", "key".into()),
        ("--layout", "legacy".into()),
        ("--key-file", path(s.path("cosign.key"))),
        ("--verdict-result", path(results.join("verdict"))),
        ("--counts-result", path(results.join("counts"))),
        ("--attestations-result", path(results.join("attestations"))),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    // `extra` replaces the flags it names.
    for pair in extra.chunks(2) {
        match flags.iter_mut().find(|(k, _)| k == pair[0]) {
            Some(slot) => slot.1 = pair[1].to_string(),
            None => flags.push((pair[0].to_string(), pair[1].to_string())),
        }
    }
    let out = Command::new(env!("CARGO_BIN_EXE_kibaship-step"))
        .env("COSIGN_PASSWORD", PASSWORD)
        .arg("scan")
        .args(flags.iter().flat_map(|(k, v)| [k, v]))
        .output()
        .unwrap();
    let results = read_results(&results);
    let run = Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        results,
    };
    for (name, text) in [("stdout", &run.stdout), ("stderr", &run.stderr)] {
        assert!(!text.contains(PASSWORD), "{name}: {text}");
    }
    for (name, value) in &run.results {
        assert!(!value.contains(PASSWORD), "result {name}");
    }
    run
}

/// The vuln attestation as the real cosign verifies it: the predicate of the one statement it prints.
fn cosign_verified_predicate(repository: &str) -> Value {
    let s = setup();
    let pinned = format!("{}/{repository}@{}", s.host(), s.digest(repository));
    let out = Command::new(peer_binary("cosign").expect("the cosign peer (make peers)"))
        .args(["verify-attestation", "--type", "vuln", "--key"])
        .arg(s.path("cosign.pub"))
        .args(["--insecure-ignore-tlog", "--allow-http-registry", &pinned])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "cosign verify-attestation: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let envelope: Value = serde_json::from_slice(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .next()
            .expect("one envelope")
            .as_bytes(),
    )
    .unwrap();
    let payload = base64_decode(envelope["payload"].as_str().unwrap());
    let statement: Value = serde_json::from_slice(&payload).unwrap();
    assert_eq!(
        statement["subject"][0]["digest"]["sha256"],
        s.digest(repository).trim_start_matches("sha256:")
    );
    statement["predicate"].clone()
}

fn base64_decode(text: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .unwrap()
}

/// Whether cosign's legacy attestation tag of `repository`'s image exists.
fn has_attestation_tag(repository: &str) -> bool {
    let s = setup();
    let tag = s.digest(repository).replace(':', "-") + ".att";
    let reference = Reference::parse(&format!("{}/{repository}:{tag}", s.host())).unwrap();
    block_on(client(&s.host()).fetch_manifest_if_exists(&reference))
        .unwrap()
        .is_some()
}

#[test]
fn a_failed_gate_exits_1_after_attesting_the_report() {
    let _shared = setup();
    let run = scan("kibaship/acme/vulnerable", &[]);
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert_eq!(run.results["verdict"], "fail");
    assert_eq!(
        run.results["counts"],
        "critical=0 high=1 medium=0 low=0 unknown=0"
    );
    assert!(
        run.stderr.contains("kibaship-step: gate failed: 1 of 1 vulnerabilities fail the policy: CVE-2021-23337 (HIGH) in lodash"),
        "{}",
        run.stderr
    );
    let attestation = &run.results["attestations"];
    assert!(attestation.ends_with(".att"), "{attestation}");
    assert!(run.stdout.contains("verdict=fail"), "{}", run.stdout);
    let predicate = cosign_verified_predicate("kibaship/acme/vulnerable");
    assert_eq!(
        predicate["scanner"]["uri"],
        "pkg:github/aquasecurity/trivy@0.74.0"
    );
    let findings: Vec<&str> = predicate["scanner"]["result"]["Results"][0]["Vulnerabilities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["VulnerabilityID"].as_str().unwrap())
        .collect();
    assert_eq!(findings, ["CVE-2021-23337"]);
}

#[test]
fn a_passed_gate_exits_0_and_attests() {
    let _shared = setup();
    let run = scan("kibaship/acme/clean", &[]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(run.results["verdict"], "pass");
    assert_eq!(
        run.results["counts"],
        "critical=0 high=0 medium=0 low=0 unknown=0"
    );
    let predicate = cosign_verified_predicate("kibaship/acme/clean");
    let pinned = format!(
        "{}/kibaship/acme/clean@{}",
        setup().host(),
        setup().digest("kibaship/acme/clean")
    );
    assert_eq!(
        predicate["scanner"]["result"]["ArtifactName"],
        pinned.as_str()
    );
}

#[test]
fn mode_none_writes_the_verdict_and_attests_nothing() {
    let _shared = setup();
    let run = scan("kibaship/acme/unsigned", &["--mode", "none"]);
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert_eq!(run.results["verdict"], "fail");
    assert_eq!(run.results["attestations"], "");
    assert!(!has_attestation_tag("kibaship/acme/unsigned"));
}

/// A stand-in for a trivy that crashes (the real one cannot be made to on demand).
#[test]
fn standin_scanner_that_crashes_exits_2_and_signs_nothing() {
    let _shared = setup();
    let s = setup();
    let crashing = s.path("trivy-crashes");
    std::fs::write(
        &crashing,
        "#!/bin/sh\necho 'panic: runtime error: index out of range' >&2\nexit 2\n",
    )
    .unwrap();
    make_executable(&crashing);
    let run = scan(
        "kibaship/acme/unscanned",
        &["--trivy", crashing.to_str().unwrap()],
    );
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(
        run.stderr.contains("kibaship-step: scanner error: scanner failed, nothing signed: trivy exited with exit status: 2: panic: runtime error"),
        "{}",
        run.stderr
    );
    assert!(run.results.is_empty(), "{:?}", run.results);
    assert!(!has_attestation_tag("kibaship/acme/unscanned"));
}

/// The key is unlocked while trivy scans (a second thread); a key that cannot be unlocked is still the error
/// reported, as a bad parameter (64), whether the scan passed or the scanner failed too; no verdict, nothing signed.
#[test]
fn a_key_that_cannot_be_unlocked_exits_64_and_signs_nothing() {
    let _shared = setup();
    let s = setup();
    let not_a_key = s.path("not-a-key.pem");
    std::fs::write(
        &not_a_key,
        "-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\nbm90IGEga2V5\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n",
    )
    .unwrap();
    let crashing = s.path("trivy-crashes-too");
    std::fs::write(&crashing, "#!/bin/sh\necho 'panic: crashed' >&2\nexit 2\n").unwrap();
    make_executable(&crashing);
    for trivy in [
        peer_binary("trivy").expect("the trivy peer (make peers)"),
        crashing,
    ] {
        let run = scan(
            "kibaship/acme/bad-key",
            &[
                "--key-file",
                not_a_key.to_str().unwrap(),
                "--trivy",
                trivy.to_str().unwrap(),
            ],
        );
        assert_eq!(run.code, Some(64), "{}", run.stderr);
        assert!(
            run.stderr.contains("kibaship-step: bad parameters:")
                && run.stderr.contains("not-a-key.pem"),
            "{}",
            run.stderr
        );
        assert!(!run.stderr.contains("crashed"), "{}", run.stderr);
        for result in ["verdict", "counts", "attestations"] {
            assert!(!run.results.contains_key(result), "{:?}", run.results);
        }
        assert!(!has_attestation_tag("kibaship/acme/bad-key"));
    }
}

/// A stand-in for a trivy whose report is cut off (disk full, killed mid-write): half of a real report.
#[test]
fn standin_scanner_with_a_truncated_report_exits_2_and_signs_nothing() {
    let _shared = setup();
    let s = setup();
    // A real report of this image, by the real trivy, cut in half.
    let full = scan("kibaship/acme/truncated", &["--mode", "none"]);
    assert_eq!(full.code, Some(1), "{}", full.stderr);
    let report_path = s.path("results-kibaship-acme-truncated/report.json");
    let report = std::fs::read(&report_path).unwrap();
    let half = s.path("half-report.json");
    std::fs::write(&half, &report[..report.len() / 2]).unwrap();
    let truncating = s.path("trivy-truncates");
    std::fs::write(
        &truncating,
        format!(
            "#!/bin/sh\nwhile [ $# -gt 0 ]; do\n  if [ \"$1\" = --output ]; then cp '{}' \"$2\"; fi\n  shift\ndone\n",
            half.display()
        ),
    )
    .unwrap();
    make_executable(&truncating);
    let run = scan(
        "kibaship/acme/truncated",
        &["--trivy", truncating.to_str().unwrap()],
    );
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(
        run.stderr
            .contains("scanner failed, nothing signed: unusable trivy report"),
        "{}",
        run.stderr
    );
    assert!(!has_attestation_tag("kibaship/acme/truncated"));
}

#[test]
fn bad_policy_and_bad_parameters_exit_64_before_scanning() {
    let _shared = setup();
    let s = setup();
    let bad_policy = s.path("bad-policy.yaml");
    std::fs::write(&bad_policy, "version: 1\nfail-on-severity: dire\n").unwrap();
    let run = scan(
        "kibaship/acme/unscanned",
        &["--policy", bad_policy.to_str().unwrap()],
    );
    assert_eq!(run.code, Some(64), "{}", run.stderr);
    assert!(
        run.stderr.contains("kibaship-step: bad parameters:") && run.stderr.contains("dire"),
        "{}",
        run.stderr
    );
    let run = scan("kibaship/acme/unscanned", &["--digest", "sha256:abc"]);
    assert_eq!(run.code, Some(64), "{}", run.stderr);
    let run = scan("kibaship/acme/unscanned", &["--mode", "sometimes"]);
    assert_eq!(run.code, Some(64), "{}", run.stderr);
    assert!(!has_attestation_tag("kibaship/acme/unscanned"));
}

fn make_executable(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// The Task's own argv, as the pod would run it: the policy from the ConfigMap mount, the key from the Secret
/// mount, trivy found on PATH, its cache in the /tmp emptyDir.
#[test]
fn the_tasks_own_argv_scans_gates_and_attests() {
    let _shared = setup();
    let s = setup();
    let root = tempfile::tempdir().unwrap();
    let at = |p: &str| root.path().join(p);
    std::fs::create_dir_all(at("kibaship/gate-policy")).unwrap();
    std::fs::copy(
        s.path("policy.yaml"),
        at("kibaship/gate-policy/policy.yaml"),
    )
    .unwrap();
    std::fs::create_dir_all(at("kibaship/signing-key")).unwrap();
    std::fs::copy(s.path("cosign.key"), at("kibaship/signing-key/cosign.key")).unwrap();
    std::fs::create_dir_all(at("tmp/trivy-cache")).unwrap();
    run_ok(
        Command::new("cp")
            .arg("-r")
            .arg(s.path("cache/db"))
            .arg(at("tmp/trivy-cache")),
    );
    let repository = "kibaship/acme/task-argv";
    let crane = peer_binary("crane").unwrap();
    let source = format!(
        "{}/kibaship/acme/vulnerable@{}",
        s.host(),
        s.digest("kibaship/acme/vulnerable")
    );
    run_ok(Command::new(&crane).args([
        "copy",
        &source,
        &format!("{}/{repository}:v1", s.host()),
        "--insecure",
    ]));
    let params: BTreeMap<&str, Vec<String>> = BTreeMap::from([
        ("image", vec![format!("{}/{repository}:v1", s.host())]),
        (
            "digest",
            vec![s.digest("kibaship/acme/vulnerable").to_string()],
        ),
        ("mode", vec!["key".to_string()]),
        ("offline", vec!["true".to_string()]),
        ("insecureRegistry", vec!["true".to_string()]),
    ]);
    let (argv, step) = task_argv("kibaship-scan.yaml", "scan", &params, root.path());
    assert_eq!(step["command"][0], "/kibaship/bin/kibaship-step");
    let trivy_dir = peer_binary("trivy")
        .unwrap()
        .parent()
        .unwrap()
        .to_path_buf();
    let path = format!(
        "{}:{}",
        trivy_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new(env!("CARGO_BIN_EXE_kibaship-step"))
        .env("PATH", path)
        .env("COSIGN_PASSWORD", PASSWORD)
        .args(argv)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(!stderr.contains(PASSWORD));
    assert_eq!(
        std::fs::read_to_string(at("results/verdict")).unwrap(),
        "fail"
    );
    assert_eq!(
        std::fs::read_to_string(at("results/counts")).unwrap(),
        "critical=0 high=1 medium=0 low=0 unknown=0"
    );
    let attestations = std::fs::read_to_string(at("results/attestations")).unwrap();
    assert_eq!(
        attestations,
        format!(
            "{}/{repository}:{}.att",
            s.host(),
            s.digest("kibaship/acme/vulnerable").replace(':', "-")
        )
    );
}
