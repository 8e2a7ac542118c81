//! Bundles the real cosign v3.1.3 made with `sign-blob` against a fresh private Sigstore (Rekor v2 on rekor-tiles,
//! Rekor v1 on Trillian; `testdata/sigstore/cosign-fresh-log/`, see `testdata/SOURCES.md`): the keyless one is the
//! log's entry 0, which protobuf JSON writes without `logIndex`; the keyed one is entry 1. All verify offline.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a test failure

use std::path::{Path, PathBuf};

use kibaship_sigstore::{
    ArtifactPolicy, Bundle, CertificateIdentity, IdentityPolicy, PublicKey, TrustedRoot, Verifier,
};
use serde_json::Value;

/// The logs cosign signed on (each `<log>-keyless` is entry 0, `<log>-keyed` entry 1).
const LOGS: &[&str] = &["rekor-v2", "rekor-v1"];

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/sigstore/cosign-fresh-log")
}

fn read(name: &str) -> Vec<u8> {
    std::fs::read(dir().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn text(name: &str) -> String {
    String::from_utf8(read(name)).unwrap().trim().to_string()
}

/// Verifies `<name>.sigstore.json`; returns its entry's log index.
fn verify(name: &str) -> u64 {
    let verifier =
        Verifier::new(TrustedRoot::from_json(&read(&format!("{name}.trusted_root.json"))).unwrap());
    let policy = if dir().join(format!("{name}.pub")).exists() {
        IdentityPolicy::Key(PublicKey::from_pem(&text(&format!("{name}.pub"))).unwrap())
    } else {
        IdentityPolicy::Certificate(CertificateIdentity::exact(
            text(&format!("{name}.identity")),
            text(&format!("{name}.issuer")),
        ))
    };
    let bundle = Bundle::from_json(&read(&format!("{name}.sigstore.json")))
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    let artifact = read("artifact.txt");
    let result = verifier
        .verify(&bundle, ArtifactPolicy::Bytes(&artifact), &policy)
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    assert!(result.log_entries.iter().all(|e| e.inclusion_proof));
    assert!(
        verifier
            .verify(&bundle, ArtifactPolicy::Bytes(b"other"), &policy)
            .is_err()
    );
    result.log_entries[0].log_index
}

#[test]
fn the_first_entry_of_a_fresh_log_has_no_log_index_and_verifies() {
    for log in LOGS {
        let first = format!("{log}-keyless");
        let json: Value = serde_json::from_slice(&read(&format!("{first}.sigstore.json"))).unwrap();
        let entry = &json["verificationMaterial"]["tlogEntries"][0];
        assert!(entry.get("logIndex").is_none(), "{first}: {entry}");
        assert_eq!(verify(&first), 0, "{first}");
        assert_eq!(verify(&format!("{log}-keyed")), 1, "{log}-keyed");
    }
}
