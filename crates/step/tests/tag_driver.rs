//! `kibaship-step tag` against a real registry (docker-registry from the test harness, with the fixture images):
//! the branch, per-environment latest and promotion tags name the same manifest bytes as the digest (read back by
//! the real crane), for an OCI and a Docker manifest; with an admission policy requiring a key signature, a signed
//! digest is tagged and an unsigned one is refused (exit 77, no tag created); without a policy nothing is
//! verified; bad branch, environment and digest values exit 64 naming what is wrong.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, Mutex, PoisonError, Weak};

use kibaship_cosign::{ImageSigner, Layouts, sign_image};
use kibaship_oci::Reference;
use kibaship_sign::SigningKey;
use kibaship_testsupport::fixtures::push_fixture_images;
use kibaship_testsupport::peers::peer_binary;
use kibaship_testsupport::registry::{RegistryMode, TestRegistry};

mod step_support;
use step_support::{block_on, client, task_argv};

struct Setup {
    registry: TestRegistry,
    dir: tempfile::TempDir,
}

/// One registry with the fixtures; fixtures/app is signed with a key the policy names, fixtures/docker-app is not.
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
    let dir = tempfile::tempdir().unwrap();
    let key = SigningKey::generate().unwrap();
    let host = registry.host();
    let pinned = Reference::parse(&format!(
        "{host}/fixtures/app@{}",
        crane(&["digest", &format!("{host}/fixtures/app:v1")]).trim()
    ))
    .unwrap();
    block_on(sign_image(
        &client(&host),
        &pinned,
        None,
        ImageSigner::Key(&key),
        Layouts::Legacy,
        &BTreeMap::new(),
    ))
    .unwrap();
    let public = key.public_key_pem().unwrap();
    let indented: String = public.lines().map(|l| format!("          {l}\n")).collect();
    std::fs::write(
        dir.path().join("policy.yaml"),
        format!(
            "apiVersion: kibaship.io/v1alpha1\nkind: AdmissionPolicy\npolicies:\n  - name: prod-signed\n    \
             namespaces:\n      names: [\"prod\"]\n    images: [\"{host}/fixtures/**\"]\n    \
             transparencyLog: optional\n    authorities:\n      - key: |\n{indented}"
        ),
    )
    .unwrap();
    Setup { registry, dir }
}

fn crane(args: &[&str]) -> String {
    let out = Command::new(peer_binary("crane").expect("the crane peer (make peers)"))
        .args(args)
        .arg("--insecure")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "crane {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Whether `reference`'s tag exists.
fn tag_exists(reference: &str) -> bool {
    block_on(
        client(&setup().registry.host())
            .fetch_manifest_if_exists(&Reference::parse(reference).unwrap()),
    )
    .unwrap()
    .is_some()
}

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    tags: Option<String>,
}

fn tag(repository: &str, digest: &str, extra: &[&str]) -> Run {
    let s = setup();
    // One result file per run: the tests run in parallel on the same repositories.
    static RUNS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let run = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let result: PathBuf = s.dir.path().join(format!("tags-{run}"));
    let _ = std::fs::remove_file(&result);
    let out = Command::new(env!("CARGO_BIN_EXE_kibaship-step"))
        .args([
            "tag",
            "--image",
            &format!("{}/{repository}:v1", s.registry.host()),
            "--digest",
            digest,
            "--insecure-registry",
            "true",
        ])
        .arg("--tags-result")
        .arg(&result)
        .args(extra)
        .output()
        .unwrap();
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        tags: std::fs::read_to_string(&result).ok(),
    }
}

fn digest_of(repository: &str) -> String {
    crane(&[
        "digest",
        &format!("{}/{repository}:v1", setup().registry.host()),
    ])
    .trim()
    .to_string()
}

fn policy() -> String {
    setup().dir.path().join("policy.yaml").display().to_string()
}

#[test]
fn a_signed_digest_gets_every_tag_without_a_rebuild() {
    let _shared = setup();
    let host = setup().registry.host();
    let digest = digest_of("fixtures/app");
    let run = tag(
        "fixtures/app",
        &digest,
        &[
            "--branch",
            "refs/heads/feature/login",
            "--environment",
            "staging",
            "--promote",
            "staging",
            "prod",
            "--policy",
            &policy(),
            "--namespace",
            "prod",
        ],
    );
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(
        run.stderr
            .contains("in namespace prod: admit (prod-signed)"),
        "{}",
        run.stderr
    );
    let expected: Vec<String> = ["branch-feature-login", "latest-staging", "staging", "prod"]
        .iter()
        .map(|t| format!("{host}/fixtures/app:{t}"))
        .collect();
    assert_eq!(run.tags.as_deref(), Some(expected.join("\n").as_str()));
    let original = crane(&["manifest", &format!("{host}/fixtures/app@{digest}")]);
    for reference in &expected {
        assert_eq!(crane(&["digest", reference]).trim(), digest, "{reference}");
        assert_eq!(crane(&["manifest", reference]), original, "{reference}");
        assert!(run.stdout.contains(&format!("tagged={reference}")));
    }
}

#[test]
fn without_a_policy_a_docker_manifest_is_tagged_as_it_is() {
    let _shared = setup();
    let host = setup().registry.host();
    let digest = digest_of("fixtures/docker-app");
    let run = tag("fixtures/docker-app", &digest, &["--branch", "main"]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let reference = format!("{host}/fixtures/docker-app:branch-main");
    assert_eq!(crane(&["digest", &reference]).trim(), digest);
    assert_eq!(
        crane(&["manifest", &reference]),
        crane(&["manifest", &format!("{host}/fixtures/docker-app@{digest}")])
    );
}

#[test]
fn an_unsigned_digest_is_refused_when_the_policy_requires_a_signature() {
    let _shared = setup();
    let host = setup().registry.host();
    let digest = digest_of("fixtures/config-only");
    let run = tag(
        "fixtures/config-only",
        &digest,
        &[
            "--promote",
            "prod",
            "--policy",
            &policy(),
            "--namespace",
            "prod",
        ],
    );
    assert_eq!(run.code, Some(77), "{}", run.stderr);
    assert!(
        run.stderr.contains("kibaship-step: tagging refused: ")
            && run.stderr.contains("policy prod-signed (enforce)"),
        "{}",
        run.stderr
    );
    assert!(!tag_exists(&format!("{host}/fixtures/config-only:prod")));
    assert_eq!(run.tags, None);
    // In a namespace no policy selects, the same digest is tagged.
    let run = tag(
        "fixtures/config-only",
        &digest,
        &[
            "--promote",
            "staging",
            "--policy",
            &policy(),
            "--namespace",
            "staging",
        ],
    );
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(run.stderr.contains("not-selected"), "{}", run.stderr);
    assert!(tag_exists(&format!("{host}/fixtures/config-only:staging")));
}

#[test]
fn bad_values_exit_64_naming_what_is_wrong() {
    let _shared = setup();
    let digest = digest_of("fixtures/app");
    for (args, expected) in [
        (vec!["--branch", "feat@x"], "'@' at byte 11"),
        (vec!["--environment", "Prod"], "--environment \"Prod\""),
        (vec!["--promote", "sha256-x"], "--promote"),
        (vec![], "no tag to apply"),
    ] {
        let run = tag("fixtures/app", &digest, &args);
        assert_eq!(run.code, Some(64), "{expected}: {}", run.stderr);
        assert!(
            run.stderr.contains("kibaship-step: bad parameters: ") && run.stderr.contains(expected),
            "{expected}: {}",
            run.stderr
        );
    }
    let run = tag("fixtures/app", "sha256:1234", &["--branch", "main"]);
    assert_eq!(run.code, Some(64), "{}", run.stderr);
    assert!(run.stderr.contains("--digest"), "{}", run.stderr);
    // A digest the repository does not hold.
    let missing = format!("sha256:{}", "0".repeat(64));
    let run = tag("fixtures/app", &missing, &["--branch", "main"]);
    assert_eq!(run.code, Some(64), "{}", run.stderr);
    assert!(run.stderr.contains("cannot read"), "{}", run.stderr);
}

#[test]
fn allow_empty_tags_nothing_and_succeeds_but_still_checks_the_digest() {
    let _shared = setup();
    let digest = digest_of("fixtures/app");
    // The Pipeline's setting: a build of no branch, environment or promotion asks for no tag.
    let run = tag(
        "fixtures/app",
        &digest,
        &["--allow-empty", "true", "--policy", &policy(), "--promote"],
    );
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(run.stderr.contains("no tag requested"), "{}", run.stderr);
    assert_eq!(run.tags.as_deref(), Some(""), "an empty tags result");
    assert!(!run.stdout.contains("tagged="), "{}", run.stdout);
    // A digest the repository does not hold is still an error, and a bad value of the flag is refused.
    let missing = format!("sha256:{}", "0".repeat(64));
    let run = tag("fixtures/app", &missing, &["--allow-empty", "true"]);
    assert_eq!(run.code, Some(64), "{}", run.stderr);
    assert!(run.stderr.contains("cannot read"), "{}", run.stderr);
    let run = tag("fixtures/app", &digest, &["--allow-empty", "yes"]);
    assert_eq!(run.code, Some(64), "{}", run.stderr);
    assert!(
        run.stderr
            .contains("--allow-empty \"yes\" is not true or false"),
        "{}",
        run.stderr
    );
}

/// The tag step's argv from tasks/kibaship-tag.yaml.
fn tag_task_argv(root: &std::path::Path, params: &BTreeMap<&str, Vec<String>>) -> Vec<String> {
    let (argv, step) = task_argv("kibaship-tag.yaml", "tag", params, root);
    assert_eq!(step["command"][0], "/usr/local/bin/kibaship-step");
    argv
}

#[test]
fn the_tasks_own_argv_tags_a_signed_digest_and_refuses_an_unsigned_one() {
    let _shared = setup();
    let s = setup();
    let host = s.registry.host();
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(root.path().join("kibaship/admission-policy")).unwrap();
    std::fs::copy(
        policy(),
        root.path().join("kibaship/admission-policy/policy.yaml"),
    )
    .unwrap();
    let one = |v: &str| vec![v.to_string()];
    let params = |repository: &str| -> BTreeMap<&'static str, Vec<String>> {
        BTreeMap::from([
            ("image", one(&format!("{host}/{repository}:v1"))),
            ("digest", one(&digest_of(repository))),
            ("branch", one("release/2.0")),
            ("promotions", vec!["prod".to_string()]),
            ("policyPath", one("/kibaship/admission-policy/policy.yaml")),
            ("namespace", one("prod")),
            ("insecureRegistry", one("true")),
        ])
    };
    let out = Command::new(env!("CARGO_BIN_EXE_kibaship-step"))
        .args(tag_task_argv(root.path(), &params("fixtures/app")))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(root.path().join("results/tags")).unwrap(),
        format!("{host}/fixtures/app:branch-release-2.0\n{host}/fixtures/app:prod")
    );
    let out = Command::new(env!("CARGO_BIN_EXE_kibaship-step"))
        .args(tag_task_argv(
            root.path(),
            &params("fixtures/docker-multiarch"),
        ))
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(77),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!tag_exists(&format!(
        "{host}/fixtures/docker-multiarch:prod"
    )));
}
