//! Bundles the real cosign (v3.1.3, peer) makes against a *fresh* private Sigstore verify with `kibaship-sigstore`.
//!
//! The first entry of a fresh log has index 0, and protobuf JSON omits a zero: cosign writes that entry without
//! `logIndex` (Rekor v2 also without `inclusionProof.logIndex`), and reads it back as 0. Our own signer always writes
//! `"0"`, so only a peer's bytes show the shape. Each test starts its own stack, so cosign's first signature is the
//! log's entry 0; a keyed signature follows as entry 1.
//!
//! Set `KIBASHIP_WRITE_FIXTURES=<dir>` to keep the bundles, trusted roots, key and artifact: that is how
//! `testdata/sigstore/cosign-fresh-log/` was made (see `testdata/SOURCES.md`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use kibaship_sigstore::{
    ArtifactPolicy, Bundle, CertificateIdentity, IdentityPolicy, PublicKey, TrustedRoot, Verifier,
};
use kibaship_testsupport::peers::peer_binary;
use kibaship_testsupport::sigstore::{SigstoreOptions, TestSigstore};
use serde_json::Value;

const EMAIL: &str = "first-entry@kibaship.test";
const PASSWORD: &str = "fresh-log-test-password";
const ARTIFACT: &[u8] = b"the first artifact a fresh Sigstore log records\n";

fn cosign(dir: &Path, args: &[&str]) -> Command {
    let bin = peer_binary("cosign")
        .unwrap_or_else(|e| panic!("the cosign peer (v3.1.3) is needed: run `make peers` ({e})"));
    let mut c = Command::new(bin);
    c.current_dir(dir)
        .env("HOME", dir)
        .env("COSIGN_PASSWORD", PASSWORD)
        .env_remove("SIGSTORE_ID_TOKEN")
        .args(args);
    c
}

fn run(mut c: Command, what: &str) {
    let out = c.output().unwrap();
    assert!(
        out.status.success(),
        "{what}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

struct Signed {
    name: &'static str,
    bundle: Vec<u8>,
    policy: IdentityPolicy,
    /// For the fixtures: the key (PEM) or (identity, issuer).
    key_pem: Option<String>,
    identity: Option<(String, String)>,
}

/// `cosign sign-blob` keyless (entry 0) then with a key (entry 1), with `signing_config`.
fn sign_both(stack: &TestSigstore, dir: &Path, signing_config: &Path) -> Vec<Signed> {
    let artifact = dir.join("artifact.txt");
    std::fs::write(&artifact, ARTIFACT).unwrap();
    let root = stack.trusted_root_path();
    let token = stack.mint_token(EMAIL).unwrap();

    let keyless = dir.join("keyless.sigstore.json");
    run(
        cosign(
            dir,
            &[
                "sign-blob",
                "--yes",
                "--bundle",
                path(&keyless),
                "--signing-config",
                path(signing_config),
                "--trusted-root",
                path(&root),
                "--identity-token",
                &token,
                path(&artifact),
            ],
        ),
        "cosign sign-blob (keyless)",
    );
    run(
        cosign(dir, &["generate-key-pair"]),
        "cosign generate-key-pair",
    );
    let keyed = dir.join("keyed.sigstore.json");
    run(
        cosign(
            dir,
            &[
                "sign-blob",
                "--yes",
                "--key",
                "cosign.key",
                "--bundle",
                path(&keyed),
                "--signing-config",
                path(signing_config),
                "--trusted-root",
                path(&root),
                path(&artifact),
            ],
        ),
        "cosign sign-blob (key)",
    );
    let key_pem = std::fs::read_to_string(dir.join("cosign.pub")).unwrap();
    vec![
        Signed {
            name: "keyless",
            bundle: std::fs::read(&keyless).unwrap(),
            policy: IdentityPolicy::Certificate(CertificateIdentity::exact(EMAIL, stack.issuer())),
            key_pem: None,
            identity: Some((EMAIL.to_string(), stack.issuer().to_string())),
        },
        Signed {
            name: "keyed",
            bundle: std::fs::read(&keyed).unwrap(),
            policy: IdentityPolicy::Key(PublicKey::from_pem(&key_pem).unwrap()),
            key_pem: Some(key_pem),
            identity: None,
        },
    ]
}

/// Verifies each bundle with the stack's trusted root; the first is entry 0 and has no `logIndex`.
fn check(stack: &TestSigstore, signed: &[Signed], log: &str) {
    let root_json = std::fs::read(stack.trusted_root_path()).unwrap();
    let verifier = Verifier::new(TrustedRoot::from_json(&root_json).unwrap());
    for (index, s) in signed.iter().enumerate() {
        let json: Value = serde_json::from_slice(&s.bundle).unwrap();
        let entry = &json["verificationMaterial"]["tlogEntries"][0];
        if index == 0 {
            assert!(
                entry.get("logIndex").is_none(),
                "{log} {}: entry 0 carries logIndex: {entry}",
                s.name
            );
        } else {
            assert_eq!(entry["logIndex"], "1", "{log} {}", s.name);
        }
        let bundle = Bundle::from_json(&s.bundle)
            .unwrap_or_else(|e| panic!("{log} {}: cosign's bundle refused: {e}", s.name));
        assert_eq!(bundle.tlog_entries[0].log_index, index as u64);
        let result = verifier
            .verify(&bundle, ArtifactPolicy::Bytes(ARTIFACT), &s.policy)
            .unwrap_or_else(|e| panic!("{log} {}: {e}", s.name));
        assert!(
            result
                .log_entries
                .iter()
                .all(|e| e.inclusion_proof && e.log_index == index as u64),
            "{log} {}: {result:?}",
            s.name
        );
        // The wrong artifact is refused.
        assert!(
            verifier
                .verify(
                    &bundle,
                    ArtifactPolicy::Bytes(b"another artifact"),
                    &s.policy
                )
                .is_err()
        );
    }
    if let Ok(out) = std::env::var("KIBASHIP_WRITE_FIXTURES") {
        let out = PathBuf::from(out);
        std::fs::create_dir_all(&out).unwrap();
        std::fs::write(out.join("artifact.txt"), ARTIFACT).unwrap();
        for s in signed {
            let name = format!("{log}-{}", s.name);
            std::fs::write(out.join(format!("{name}.sigstore.json")), &s.bundle).unwrap();
            std::fs::write(out.join(format!("{name}.trusted_root.json")), &root_json).unwrap();
            if let Some(pem) = &s.key_pem {
                std::fs::write(out.join(format!("{name}.pub")), pem).unwrap();
            }
            if let Some((identity, issuer)) = &s.identity {
                std::fs::write(
                    out.join(format!("{name}.identity")),
                    format!("{identity}\n"),
                )
                .unwrap();
                std::fs::write(out.join(format!("{name}.issuer")), format!("{issuer}\n")).unwrap();
            }
        }
    }
}

#[test]
fn cosign_bundles_from_a_fresh_rekor_v2_log_verify() {
    let stack = TestSigstore::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let signed = sign_both(&stack, dir.path(), &stack.signing_config_path());
    let first: Value = serde_json::from_slice(&signed[0].bundle).unwrap();
    let entry = &first["verificationMaterial"]["tlogEntries"][0];
    assert_eq!(entry["kindVersion"]["version"], "0.0.2", "{entry}");
    assert!(
        entry["inclusionProof"].get("logIndex").is_none(),
        "Rekor v2 proof for entry 0: {entry}"
    );
    check(&stack, &signed, "rekor-v2");
}

#[test]
fn cosign_bundles_from_a_fresh_rekor_v1_log_verify() {
    let stack = TestSigstore::start_with(SigstoreOptions {
        rekor_v1: true,
        ..Default::default()
    })
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    // The stack's signing config without Rekor v2, so that cosign writes to Rekor v1.
    let mut config: Value =
        serde_json::from_slice(&std::fs::read(stack.signing_config_path()).unwrap()).unwrap();
    config["rekorTlogUrls"]
        .as_array_mut()
        .unwrap()
        .retain(|s| s["majorApiVersion"] == 1);
    let v1_config = dir.path().join("signing_config_rekor_v1.json");
    std::fs::write(&v1_config, config.to_string()).unwrap();
    let signed = sign_both(&stack, dir.path(), &v1_config);
    let first: Value = serde_json::from_slice(&signed[0].bundle).unwrap();
    let entry = &first["verificationMaterial"]["tlogEntries"][0];
    assert_eq!(entry["kindVersion"]["version"], "0.0.1", "{entry}");
    assert!(
        entry["inclusionPromise"].is_object(),
        "Rekor v1 entry with a SET: {entry}"
    );
    check(&stack, &signed, "rekor-v1");
}
