//! sigstore-python 4.5.1 (an independent verifier) checks the keyless bundles `KeylessSigner` makes against the
//! private Sigstore's trust config, offline: a blob (message signature) and a DSSE in-toto statement, both
//! through the code path that signs images (ephemeral key, Fulcio certificate with SCT, TSA timestamp, Rekor v2
//! entry with inclusion proof and checkpoint).
//!
//! sigstore-python cannot check the image-signature bundle itself: cosign's `cosign/sign/v1` statement (which we
//! reproduce byte for byte) has a subject without `name`, and sigstore-python's in-toto model requires one
//! ("subject.0.name Field required"). The last case pins that.
#![allow(clippy::unwrap_used, clippy::expect_used)]
use std::path::Path;
use std::process::Command;

use kibaship_cosign::bundle_layout::signing_statement;
use kibaship_cosign::check::IN_TOTO_PAYLOAD_TYPE;
use kibaship_cosign::identity_token::IdentityToken;
use kibaship_cosign::keyless::{KeylessSigner, now_unix};
use kibaship_cosign::signing_config::SigningServices;
use kibaship_oci::Digest;
use kibaship_testsupport::peers::sigstore_python;
use kibaship_testsupport::sigstore::TestSigstore;

const EMAIL: &str = "builder@kibaship.test";

/// Runs `sigstore verify identity --offline`; returns (success, combined output).
fn sigstore_verify(
    stack: &TestSigstore,
    dir: &Path,
    bundle: &str,
    artifact: &str,
    identity: &str,
) -> (bool, String) {
    let out = Command::new(sigstore_python().unwrap())
        .current_dir(dir)
        .args([
            "--trust-config",
            &stack.client_trust_config_path().display().to_string(),
            "verify",
            "identity",
            "--offline",
            "--bundle",
            bundle,
            "--cert-identity",
            identity,
            "--cert-oidc-issuer",
            stack.issuer(),
            artifact,
        ])
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[tokio::test]
async fn sigstore_python_verifies_our_keyless_bundles() {
    let stack = TestSigstore::start().unwrap();
    let services = SigningServices::from_signing_config(
        &std::fs::read(stack.signing_config_path()).unwrap(),
        now_unix(),
    )
    .unwrap();
    let token = IdentityToken::parse(&stack.mint_token(EMAIL).unwrap(), now_unix()).unwrap();
    let signer = KeylessSigner::new(reqwest::Client::new(), services, token).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();

    // A blob.
    let blob = b"kibaship keyless blob\n";
    std::fs::write(dir.join("blob.txt"), blob).unwrap();
    std::fs::write(dir.join("tampered.txt"), b"tampered\n").unwrap();
    let signed = signer.sign_blob(blob).await.unwrap();
    std::fs::write(dir.join("blob.sigstore.json"), &signed.json).unwrap();
    let (ok, out) = sigstore_verify(&stack, dir, "blob.sigstore.json", "blob.txt", EMAIL);
    assert!(ok && out.contains("OK: blob.txt"), "{out}");
    let (ok, out) = sigstore_verify(
        &stack,
        dir,
        "blob.sigstore.json",
        "blob.txt",
        "someone-else@kibaship.test",
    );
    assert!(!ok && out.contains("SANs do not match"), "{out}");
    let (ok, _) = sigstore_verify(&stack, dir, "blob.sigstore.json", "tampered.txt", EMAIL);
    assert!(!ok, "sigstore-python accepted a tampered blob");

    // A DSSE in-toto statement over an artifact (the image-signing path with a named subject).
    let artifact = b"{\"schemaVersion\":2}";
    std::fs::write(dir.join("artifact"), artifact).unwrap();
    let digest = hex::encode(kibaship_sigstore::HashAlgorithm::Sha256.digest(artifact));
    let statement = serde_json::json!({
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": "artifact", "digest": {"sha256": digest}}],
        "predicateType": "https://sigstore.dev/cosign/sign/v1",
        "predicate": {},
    });
    let signed = signer
        .sign_dsse(IN_TOTO_PAYLOAD_TYPE, statement.to_string().as_bytes())
        .await
        .unwrap();
    std::fs::write(dir.join("artifact.sigstore.json"), &signed.json).unwrap();
    let (ok, out) = sigstore_verify(&stack, dir, "artifact.sigstore.json", "artifact", EMAIL);
    assert!(ok && out.contains("OK: artifact"), "{out}");
    let (ok, _) = sigstore_verify(&stack, dir, "artifact.sigstore.json", "blob.txt", EMAIL);
    assert!(
        !ok,
        "sigstore-python accepted the DSSE bundle for another artifact"
    );

    // The image-signature statement (cosign's shape, no subject name): sigstore-python's model refuses it.
    let image_digest = Digest::parse(&format!("sha256:{digest}")).unwrap();
    let statement = signing_statement(&image_digest, &Default::default());
    let signed = signer
        .sign_dsse(IN_TOTO_PAYLOAD_TYPE, &statement)
        .await
        .unwrap();
    std::fs::write(dir.join("image.sigstore.json"), &signed.json).unwrap();
    let (ok, out) = sigstore_verify(&stack, dir, "image.sigstore.json", "artifact", EMAIL);
    assert!(!ok && out.contains("subject.0.name"), "{out}");
}
