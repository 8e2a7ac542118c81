//! What kibaverify writes for people: a reader that closes the pipe early, and registry-supplied text with
//! control characters in it.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a test failure

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};

use kibaship_oci::{Artifact, Reference};
use kibaship_testsupport::fixtures::push_fixture_images;
use kibaship_testsupport::registry::{RegistryMode, TestRegistry};

mod support;
use support::{BIN, Run, assert_code, block_on, registry_client, run};

const IDENTITY: &str = "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main";
const ISSUER: &str = "https://token.actions.githubusercontent.com";

fn conformance(path: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/sigstore/conformance")
        .join(path)
        .display()
        .to_string()
}

/// Runs kibaverify with its stdout on a pipe whose reading end is already closed, as `kibaverify … | head -0`
/// leaves it: every write to stdout fails with EPIPE, deterministically.
fn run_with_closed_stdout(args: &[&str]) -> Run {
    let out = Command::new(BIN)
        .args(args)
        .env("DOCKER_CONFIG", "/nonexistent-kibaship-test")
        .stdin(Stdio::null())
        .stdout(closed_pipe())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    Run::from(out)
}

/// The writing end of a pipe whose reading end is closed.
fn closed_pipe() -> Stdio {
    let (reader, writer) = nix::unistd::pipe().unwrap();
    drop(reader);
    Stdio::from(writer)
}

fn assert_quiet_end(r: &Run, code: i32, what: &str) {
    assert_code(r, code, what);
    assert!(
        !r.stderr.contains("Broken pipe") && !r.stderr.contains("panicked"),
        "{what}: {}",
        r.stderr
    );
}

#[test]
fn a_closed_stdout_ends_each_command_quietly_with_its_usual_exit_code() {
    let bundle = conformance("happy-path-v0.3/bundle.sigstore.json");
    let a_txt = conformance("a.txt");
    let verify_bundle = [
        "verify-bundle",
        "--bundle",
        &bundle,
        "--artifact",
        &a_txt,
        "--certificate-identity",
        IDENTITY,
        "--certificate-oidc-issuer",
        ISSUER,
    ];
    let r = run_with_closed_stdout(&verify_bundle);
    assert_quiet_end(&r, 0, "verify-bundle, text");
    let mut json = verify_bundle.to_vec();
    json.extend(["--output", "json"]);
    let r = run_with_closed_stdout(&json);
    assert_quiet_end(&r, 0, "verify-bundle, json");

    let reg = TestRegistry::start(RegistryMode::Plain).unwrap();
    let fixtures = push_fixture_images(&reg).unwrap();
    let host = reg.host();
    let image = fixtures[0].reference.as_str();
    let r = run_with_closed_stdout(&["digest", image, "--insecure-registry", &host]);
    assert_quiet_end(&r, 0, "digest");
    let r = run_with_closed_stdout(&[
        "digest",
        image,
        "--output",
        "json",
        "--insecure-registry",
        &host,
    ]);
    assert_quiet_end(&r, 0, "digest --output json");
    // A failed resolution still exits 2, also when stdout is gone.
    let missing = format!("{host}/no/such:tag");
    let r = run_with_closed_stdout(&["digest", image, &missing, "--insecure-registry", &host]);
    assert_quiet_end(&r, 2, "digest with one missing tag");
    let r = run_with_closed_stdout(&["referrers", image, "--insecure-registry", &host]);
    assert_quiet_end(&r, 0, "referrers");

    let dir = tempfile::tempdir().unwrap();
    let prefix = dir.path().join("cosign").display().to_string();
    let r = {
        Run::from(
            Command::new(BIN)
                .args(["generate-key-pair", "--output-key-prefix", &prefix])
                .env("COSIGN_PASSWORD", "Tq4vLm8Rz2Kx")
                .stdin(Stdio::null())
                .stdout(closed_pipe())
                .stderr(Stdio::piped())
                .output()
                .unwrap(),
        )
    };
    assert_quiet_end(&r, 0, "generate-key-pair");
    assert!(dir.path().join("cosign.pub").is_file());
}

#[test]
fn registry_text_with_control_characters_is_escaped_in_text_and_exact_in_json() {
    let reg = TestRegistry::start(RegistryMode::Plain).unwrap();
    let fixtures = push_fixture_images(&reg).unwrap();
    let host = reg.host();
    let image = fixtures[0].reference.as_str();
    // An artifact type that, printed raw, ends the row and forges a green one below it.
    let forged = "application/x\n\u{1b}[32msha256:0000000000000000000000000000000000000000000000000000000000000000\tapplication/evil\u{1b}[0m";
    let artifact = Artifact {
        artifact_type: forged.to_string(),
        layer_media_type: "application/octet-stream".into(),
        content: b"payload".to_vec().into(),
        content_digest: None,
        title: None,
        annotations: BTreeMap::new(),
    };
    block_on(registry_client(&host).attach_artifact(&Reference::parse(image).unwrap(), &artifact))
        .unwrap();

    let r = run(Command::new(BIN)
        .args(["referrers", image, "--insecure-registry", &host])
        .env("DOCKER_CONFIG", "/nonexistent-kibaship-test"));
    assert_code(&r, 0, "kibaverify referrers");
    assert_eq!(
        r.stdout.lines().count(),
        1,
        "one referrer, one row: {:?}",
        r.stdout
    );
    assert!(!r.stdout.contains('\u{1b}'), "{:?}", r.stdout);
    assert!(
        r.stdout.contains("application/x\\n\\u{1b}[32msha256:0000"),
        "{:?}",
        r.stdout
    );

    let r = run(Command::new(BIN)
        .args([
            "referrers",
            image,
            "--output",
            "json",
            "--insecure-registry",
            &host,
        ])
        .env("DOCKER_CONFIG", "/nonexistent-kibaship-test"));
    assert_code(&r, 0, "kibaverify referrers --output json");
    let doc: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(doc["referrers"][0]["artifactType"], forged);
}

#[test]
fn an_untrusted_registry_certificate_is_explained_with_kibaverifys_flag() {
    let reg = TestRegistry::start(RegistryMode::BasicTls).unwrap();
    let image = format!("{}/fixtures/app:v1", reg.host());
    // The CA is not given: the library says the certificate is not trusted, the CLI says how to trust it.
    let r = run(Command::new(BIN)
        .args(["digest", &image])
        .env("DOCKER_CONFIG", "/nonexistent-kibaship-test"));
    assert_code(
        &r,
        2,
        "kibaverify digest against a registry whose CA is not given",
    );
    assert!(
        r.stderr.contains("TLS certificate is not trusted")
            && r.stderr
                .contains("(pass the registry's CA bundle with --ca-file)"),
        "{}",
        r.stderr
    );
}
