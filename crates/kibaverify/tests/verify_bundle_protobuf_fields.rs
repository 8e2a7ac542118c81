//! `kibaverify verify-bundle` and the protobuf-specs' fields: bundles the real cosign made for the first entry of a
//! fresh log (no `logIndex`) verify (exit 0), and a trusted root missing a required field is bad input (exit 2)
//! whose message names the field's path.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a test failure

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_kibaverify");

fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/sigstore")
}

fn fresh(name: &str) -> PathBuf {
    testdata().join("cosign-fresh-log").join(name)
}

fn text(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap().trim().to_string()
}

fn run(args: &[&str]) -> (i32, String, String) {
    let o: Output = Command::new(BIN)
        .arg("verify-bundle")
        .args(args)
        .output()
        .unwrap();
    (
        o.status.code().unwrap(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn cosign_bundles_for_entry_0_of_a_fresh_log_verify() {
    let artifact = fresh("artifact.txt");
    for log in ["rekor-v2", "rekor-v1"] {
        let keyless = format!("{log}-keyless");
        let (code, stdout, stderr) = run(&[
            "--bundle",
            fresh(&format!("{keyless}.sigstore.json")).to_str().unwrap(),
            "--artifact",
            artifact.to_str().unwrap(),
            "--trusted-root",
            fresh(&format!("{keyless}.trusted_root.json"))
                .to_str()
                .unwrap(),
            "--certificate-identity",
            &text(&fresh(&format!("{keyless}.identity"))),
            "--certificate-oidc-issuer",
            &text(&fresh(&format!("{keyless}.issuer"))),
            "--output",
            "json",
        ]);
        assert_eq!(code, 0, "{keyless}: {stdout}{stderr}");
        let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
        assert_eq!(
            v["result"]["logEntries"][0]["logIndex"], 0,
            "{keyless}: {v}"
        );

        let keyed = format!("{log}-keyed");
        let (code, stdout, stderr) = run(&[
            "--bundle",
            fresh(&format!("{keyed}.sigstore.json")).to_str().unwrap(),
            "--artifact",
            artifact.to_str().unwrap(),
            "--trusted-root",
            fresh(&format!("{keyed}.trusted_root.json"))
                .to_str()
                .unwrap(),
            "--key",
            fresh(&format!("{keyed}.pub")).to_str().unwrap(),
        ]);
        assert_eq!(code, 0, "{keyed}: {stdout}{stderr}");
    }
}

#[test]
fn a_trusted_root_without_a_required_field_is_bad_input_naming_it() {
    let conformance = testdata().join("conformance");
    let root: serde_json::Value = serde_json::from_slice(
        &std::fs::read(testdata().join("trusted-roots/production-trusted_root.json")).unwrap(),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    for (pointer, field) in [
        ("/tlogs/0/publicKey/validFor", "start"),
        ("/tlogs/0/publicKey", "keyDetails"),
        ("/tlogs/0", "hashAlgorithm"),
        ("/certificateAuthorities/0/validFor", "start"),
        ("/ctlogs/1/logId", "keyId"),
    ] {
        let mut mutant = root.clone();
        mutant
            .pointer_mut(pointer)
            .unwrap()
            .as_object_mut()
            .unwrap()
            .remove(field);
        let path = dir.path().join("trusted_root.json");
        std::fs::write(&path, mutant.to_string()).unwrap();
        let (code, stdout, stderr) = run(&[
            "--bundle",
            conformance
                .join("happy-path-v0.3/bundle.sigstore.json")
                .to_str()
                .unwrap(),
            "--artifact",
            conformance.join("a.txt").to_str().unwrap(),
            "--trusted-root",
            path.to_str().unwrap(),
            "--certificate-identity-regexp",
            ".",
            "--certificate-oidc-issuer-regexp",
            ".",
        ]);
        let named = format!(
            "{}.{field}",
            pointer
                .trim_start_matches('/')
                .split('/')
                .fold(String::new(), |acc, part| match part.parse::<usize>() {
                    Ok(i) => format!("{acc}[{i}]"),
                    Err(_) if acc.is_empty() => part.to_string(),
                    Err(_) => format!("{acc}.{part}"),
                })
        );
        assert_eq!(code, 2, "{named}: {stdout}{stderr}");
        assert!(stderr.contains(&named), "{named}: {stderr}");
    }
}
