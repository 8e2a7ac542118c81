//! `kibaverify digest`, `referrers` and `attach` end to end against the real registry (kibaship_testsupport),
//! cross-checked with skopeo.
#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use kibaship_testsupport::fixtures::push_fixture_images;
use kibaship_testsupport::registry::{RegistryMode, TestRegistry};

mod support;
use support::{BIN, Run, assert_code, assert_exit_with_message};

fn skopeo_raw(reference: &str) -> Vec<u8> {
    let skopeo = std::env::var("PATH")
        .unwrap_or_default()
        .split(':')
        .map(|d| Path::new(d).join("skopeo"))
        .find(|p| p.is_file())
        .expect("skopeo is not on PATH: install the Debian package `skopeo` (make deps does)");
    let out = Command::new(skopeo)
        .args(["inspect", "--raw", "--tls-verify=false"])
        .arg(format!("docker://{reference}"))
        .output()
        .unwrap();
    assert_code(&Run::from(out.clone()), 0, "skopeo inspect --raw");
    out.stdout
}

fn sha256(bytes: &[u8]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("b");
    std::fs::write(&f, bytes).unwrap();
    let out = Command::new("sha256sum").arg(&f).output().unwrap();
    format!(
        "sha256:{}",
        String::from_utf8(out.stdout)
            .unwrap()
            .split_whitespace()
            .next()
            .unwrap()
    )
}

fn kibaverify(args: &[&str], stdin: Option<&str>) -> Run {
    let mut child = Command::new(BIN)
        .args(args)
        .env("DOCKER_CONFIG", "/nonexistent-kibaship-test")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.unwrap_or("").as_bytes()).unwrap();
    drop(input);
    Run::from(child.wait_with_output().unwrap())
}

#[test]
fn digest_resolves_in_input_order_and_reports_each_failure() {
    let reg = TestRegistry::start(RegistryMode::Plain).unwrap();
    let fixtures = push_fixture_images(&reg).unwrap();
    let host = reg.host();
    let mut refs: Vec<String> = fixtures.iter().map(|f| f.reference.clone()).collect();
    refs.reverse();
    let expected: Vec<String> = refs
        .iter()
        .map(|r| format!("{r}@{}", sha256(&skopeo_raw(r))))
        .collect();

    let mut args: Vec<&str> = vec!["digest", "--insecure-registry", &host];
    args.extend(refs.iter().map(String::as_str));
    let out = kibaverify(&args, None);
    assert_code(&out, 0, "kibaverify digest");
    assert_eq!(out.stdout.lines().collect::<Vec<_>>(), expected);

    // Failures: a malformed ref and an unknown tag are named with their cause; the rest still resolve.
    let missing = format!("{host}/no/such:tag");
    let list = format!("# refs\n{}\nNot/A/Valid/Ref\n\n{missing}\n", refs[0]);
    let out = kibaverify(
        &["digest", "--insecure-registry", &host, "--file", "-"],
        Some(&list),
    );
    assert_code(&out, 2, "kibaverify digest with failing references");
    assert_eq!(
        out.stdout.lines().collect::<Vec<_>>(),
        vec![expected[0].clone()]
    );
    let err = &out.stderr;
    assert!(
        err.contains("Not/A/Valid/Ref") && err.contains("lowercase"),
        "{err}"
    );
    assert!(
        err.contains(&missing) && err.contains("not found") && err.contains("404"),
        "{err}"
    );

    // JSON, and --platform on the multi-arch index.
    let index = fixtures.iter().find(|f| f.is_index).unwrap();
    let raw: serde_json::Value = serde_json::from_slice(&skopeo_raw(&index.reference)).unwrap();
    let arm = raw["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["platform"]["architecture"] == "arm64")
        .unwrap()["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let out = kibaverify(
        &[
            "digest",
            "--insecure-registry",
            &host,
            "--platform",
            "linux/arm64",
            "--output",
            "json",
            &index.reference,
            &missing,
        ],
        None,
    );
    assert_code(
        &out,
        2,
        "kibaverify digest --platform with a missing reference",
    );
    let doc: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(doc[0]["reference"], index.reference.as_str());
    assert_eq!(doc[0]["digest"], arm.as_str());
    assert_eq!(doc[1]["reference"], missing.as_str());
    assert!(doc[1]["error"].as_str().unwrap().contains("not found"));

    // A bad --platform is a usage error.
    let out = kibaverify(&["digest", "--platform", "linux", &index.reference], None);
    assert_exit_with_message(&out, 2, "linux");
}

#[test]
fn attach_then_list_referrers_via_the_fallback_tag() {
    let reg = TestRegistry::start(RegistryMode::Plain).unwrap();
    let fixtures = push_fixture_images(&reg).unwrap();
    let host = reg.host();
    let image = &fixtures[0].reference;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sbom.spdx.json");
    std::fs::write(&file, br#"{"spdxVersion":"SPDX-2.3"}"#).unwrap();
    let file = file.display().to_string();

    let out = kibaverify(
        &[
            "attach",
            image,
            "--artifact-type",
            "application/spdx+json",
            "--file",
            &file,
            "--media-type",
            "application/spdx+json",
            "-a",
            "org.example.tool=kibaship",
            "--insecure-registry",
            &host,
        ],
        None,
    );
    assert_code(&out, 0, "kibaverify attach");
    let artifact_digest = out.stdout.trim().to_string();
    assert!(
        artifact_digest.starts_with("sha256:") && artifact_digest.len() == 71,
        "{artifact_digest}"
    );
    // skopeo reads the artifact by digest, and its bytes hash to what attach printed.
    let repo = format!("{host}/{}", fixtures[0].repository);
    assert_eq!(
        sha256(&skopeo_raw(&format!("{repo}@{artifact_digest}"))),
        artifact_digest
    );

    let out = kibaverify(&["referrers", image, "--insecure-registry", &host], None);
    assert_code(&out, 0, "kibaverify referrers");
    let listing = &out.stdout;
    assert!(
        listing.contains(&artifact_digest) && listing.contains("application/spdx+json"),
        "{listing}"
    );
    assert!(out.stderr.contains("fallback tag"), "{}", out.stderr);

    let out = kibaverify(
        &[
            "referrers",
            image,
            "--artifact-type",
            "application/x-other",
            "--output",
            "json",
            "--insecure-registry",
            &host,
        ],
        None,
    );
    assert_code(&out, 0, "kibaverify referrers --artifact-type");
    let doc: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(doc["source"], "fallback-tag");
    assert_eq!(doc["referrers"].as_array().unwrap().len(), 0);

    // Errors name the reference.
    let out = kibaverify(
        &[
            "referrers",
            &format!("{host}/no/such:tag"),
            "--insecure-registry",
            &host,
        ],
        None,
    );
    assert_exit_with_message(&out, 2, &format!("{host}/no/such:tag"));
    let out = kibaverify(
        &[
            "attach",
            image,
            "--artifact-type",
            "x/y",
            "--file",
            "/nonexistent/file",
            "--insecure-registry",
            &host,
        ],
        None,
    );
    assert_exit_with_message(&out, 2, "/nonexistent/file");
}

#[test]
fn registry_commands_end_at_timeout_with_exit_2_naming_host_and_operation() {
    use kibaship_testsupport::faultproxy::{Fault, FaultProxy};
    let reg = TestRegistry::start(RegistryMode::Plain).unwrap();
    let fixtures = push_fixture_images(&reg).unwrap();
    // Every answer of the real registry, 3 bytes every 250 ms: minutes per answer, no pause near the 30 s
    // idle-read timeout; only --timeout can end the command.
    let proxy = FaultProxy::start_persistent(
        &reg.host(),
        Fault::Trickle {
            bytes: 3,
            every_ms: 250,
        },
    )
    .unwrap();
    let host = proxy.host();
    let image = format!("{host}/{}:{}", fixtures[0].repository, fixtures[0].tag);
    let keys = tempfile::tempdir().unwrap();
    let prefix = keys.path().join("cosign");
    let made = Command::new(BIN)
        .args(["generate-key-pair", "--output-key-prefix"])
        .arg(&prefix)
        .env("COSIGN_PASSWORD", "")
        .output()
        .unwrap();
    assert_code(&Run::from(made), 0, "generate-key-pair");
    let public_key = prefix.with_extension("pub").display().to_string();
    let commands: [&[&str]; 3] = [
        &["digest"],
        &["referrers"],
        &["verify", "--key", &public_key],
    ];
    for command in commands {
        let mut args = command.to_vec();
        args.extend([
            image.as_str(),
            "--insecure-registry",
            &host,
            "--timeout",
            "1s",
        ]);
        let out = kibaverify(&args, None);
        assert_exit_with_message(
            &out,
            2,
            &format!("timed out after 1s looking up manifest {image} at {host}"),
        );
    }
    // cosign's duration syntax; anything else is refused before any request.
    let out = kibaverify(&["digest", &image, "--timeout", "3 minutes"], None);
    assert_exit_with_message(&out, 2, "invalid duration \"3 minutes\"");
    assert!(out.stderr.contains("--timeout"), "{}", out.stderr);
}

#[test]
fn verify_exits_2_when_reading_a_signature_runs_out_of_time() {
    use kibaship_testsupport::faultproxy::{Fault, FaultProxy};
    let reg = TestRegistry::start(RegistryMode::Plain).unwrap();
    let fixtures = push_fixture_images(&reg).unwrap();
    let repo_tag = format!("{}:{}", fixtures[0].repository, fixtures[0].tag);
    let keys = tempfile::tempdir().unwrap();
    let prefix = keys.path().join("cosign");
    let with_password = |args: &[&str]| {
        Run::from(
            Command::new(BIN)
                .args(args)
                .env("COSIGN_PASSWORD", "")
                .env("DOCKER_CONFIG", "/nonexistent-kibaship-test")
                .output()
                .unwrap(),
        )
    };
    let prefix_text = prefix.display().to_string();
    let made = with_password(&["generate-key-pair", "--output-key-prefix", &prefix_text]);
    assert_code(&made, 0, "generate-key-pair");
    let (private, public) = (
        prefix.with_extension("key").display().to_string(),
        prefix.with_extension("pub").display().to_string(),
    );
    let direct = format!("{}/{repo_tag}", reg.host());
    let host = reg.host();
    let signed = with_password(&[
        "sign",
        &direct,
        "--key",
        &private,
        "--insecure-registry",
        &host,
    ]);
    assert_code(&signed, 0, "kibaverify sign");
    // Manifests pass; the signature's payload blob trickles, 3 bytes every 250 ms.
    let proxy = FaultProxy::start_for_paths(
        &reg.host(),
        "/blobs/",
        Fault::Trickle {
            bytes: 3,
            every_ms: 250,
        },
    )
    .unwrap();
    let image = format!("{}/{repo_tag}", proxy.host());
    let out = kibaverify(
        &[
            "verify",
            &image,
            "--key",
            &public,
            "--insecure-ignore-tlog",
            "--insecure-registry",
            &proxy.host(),
            "--timeout",
            // ample for the quick manifest reads before it; the payload alone would take ~45 s
            "5s",
        ],
        None,
    );
    // Out of time is not "not verified" (1): the command could not finish (2), and says where it stopped.
    assert_exit_with_message(&out, 2, "timed out after 5s fetching blob ");
    assert!(out.stderr.contains(&proxy.host()), "{}", out.stderr);
}
