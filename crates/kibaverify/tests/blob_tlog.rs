//! Issue 20, the last gaps, against the real private Sigstore (Fulcio, Rekor v2 = rekor-tiles v2.3.0, the TSA) and
//! cosign v3.1.3, both ways:
//! - blobs signed and attested with a key are logged, as cosign does by default: `sign-blob --key
//!   --signing-config` / `attest-blob --key --signing-config` write a bundle with a Rekor v2 entry and a TSA
//!   timestamp, which `verify-blob --key` (no `--insecure-ignore-tlog`) and `cosign verify-blob --key` accept; and
//!   cosign's logged key bundle passes ours; another key or another file is refused;
//! - P-384, P-521 and RSA 2048 keys are logged in Rekor v2 (rekor-tiles accepts them), checked by both tools
//!   (blobs, attestations, and an image's bundle with the P-384 key); an RSA 2560 key is refused before upload;
//! - `verify-bundle` refuses a timestamp-only bundle (`timestamp-only`) unless `--use-signed-timestamps`;
//! - an admission policy (`verify --policy`) denies a timestamp-only image by default and admits it with
//!   `signedTimestamps: accept`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use kibaship_testsupport::registry::RegistryMode;
use kibaship_testsupport::sigstore::SigstoreOptions;

mod support;
use support::{KeylessStack, Tools, assert_code, assert_not_leaked, run_logged as run};

const PASSWORD: &str = "blob-tlog-pass-4c1a";
const EMAIL: &str = "blob-tlog@kibaship.test";

/// A plain PKCS#8 private key of `kind` (openssl) and its public key, as `<name>.pem` and `<name>.pub`.
fn openssl_key(dir: &std::path::Path, name: &str, args: &[&str]) {
    let out = std::process::Command::new("openssl")
        .args(["genpkey", "-out"])
        .arg(dir.join(format!("{name}.pem")))
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "openssl genpkey {args:?}: {out:?}");
    let out = std::process::Command::new("openssl")
        .args(["pkey", "-pubout", "-in"])
        .arg(dir.join(format!("{name}.pem")))
        .arg("-out")
        .arg(dir.join(format!("{name}.pub")))
        .output()
        .unwrap();
    assert!(out.status.success(), "openssl pkey -pubout: {out:?}");
}

fn bundle_json(dir: &std::path::Path, name: &str) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(dir.join(name)).unwrap()).unwrap()
}

#[test]
fn logged_key_blobs_timestamp_only_bundles_and_policies() {
    let stack = KeylessStack::start(SigstoreOptions::default(), RegistryMode::Plain, EMAIL);
    let dir = stack.tmp.path();
    let tools = Tools {
        dir,
        registry: None,
        password: Some(PASSWORD),
    };
    let root = stack.trusted_root.as_str();
    let config = stack.signing_config.as_str();
    let mut t = String::new();
    tools.generate_both_key_pairs(&mut t);
    std::fs::write(dir.join("release.tar.gz"), b"release bytes\n".repeat(4096)).unwrap();
    std::fs::write(dir.join("other.tar.gz"), b"other bytes\n".repeat(4096)).unwrap();
    std::fs::write(
        dir.join("predicate.json"),
        r#"{"buildType": "logged-blob"}"#,
    )
    .unwrap();

    let verify_blob = |bundle: &str, file: &str, key: &str, t: &mut String| {
        run(
            &mut tools.kibaverify_without_registry(&[
                "verify-blob",
                file,
                "--bundle",
                bundle,
                "--key",
                key,
                "--trusted-root",
                root,
            ]),
            t,
        )
    };
    // cosign verifies a key's signature over SHA-256 unless told (`--signature-digest-algorithm`, as in blob.rs).
    let cosign_verify_blob = |bundle: &str, file: &str, key: &str, digest: &str, t: &mut String| {
        run(
            &mut tools.cosign(&[
                "verify-blob",
                "--bundle",
                bundle,
                "--key",
                key,
                "--trusted-root",
                root,
                "--signature-digest-algorithm",
                digest,
                file,
            ]),
            t,
        )
    };
    let sign_blob = |key: &str, bundle: &str, t: &mut String| {
        run(
            &mut tools.kibaverify_without_registry(&[
                "sign-blob",
                "release.tar.gz",
                "--key",
                key,
                "--bundle",
                bundle,
                "--signing-config",
                config,
                "--trusted-root",
                root,
            ]),
            t,
        )
    };

    // 1. We sign a blob with a key, logged in Rekor v2 with a TSA timestamp (from the signing config).
    let r = sign_blob("ours.key", "ours.json", &mut t);
    assert_code(&r, 0, "kibaverify sign-blob --key --signing-config");
    assert!(
        r.stderr.contains("logged in Rekor v2") && r.stderr.contains("timestamped by"),
        "{}",
        r.stderr
    );
    let ours = bundle_json(dir, "ours.json");
    let entry = &ours["verificationMaterial"]["tlogEntries"][0];
    assert_eq!(entry["kindVersion"]["kind"], "hashedrekord");
    assert_eq!(entry["kindVersion"]["version"], "0.0.2");
    assert!(
        ours["verificationMaterial"]["timestampVerificationData"]["rfc3161Timestamps"][0]
            .is_object()
    );
    assert!(ours["messageSignature"].is_object());
    let r = verify_blob("ours.json", "release.tar.gz", "ours.pub", &mut t);
    assert_code(&r, 0, "kibaverify verify-blob --key of our logged bundle");
    assert!(
        r.stdout.contains("logged in the transparency log"),
        "{}",
        r.stdout
    );
    let r = verify_blob("ours.json", "release.tar.gz", "cosign.pub", &mut t);
    assert_code(&r, 1, "kibaverify verify-blob with another key");
    let r = verify_blob("ours.json", "other.tar.gz", "ours.pub", &mut t);
    assert_code(&r, 1, "kibaverify verify-blob of another file");
    let r = cosign_verify_blob("ours.json", "release.tar.gz", "ours.pub", "sha256", &mut t);
    assert_code(&r, 0, "cosign verify-blob --key of our logged bundle");
    let r = cosign_verify_blob(
        "ours.json",
        "release.tar.gz",
        "cosign.pub",
        "sha256",
        &mut t,
    );
    assert_ne!(r.code, 0, "cosign accepted another key: {}", r.stderr);

    // 2. cosign signs a blob with its key, logged as it does by default with the signing config -> we verify.
    let r = run(
        &mut tools.cosign(&[
            "sign-blob",
            "--key",
            "cosign.key",
            "--signing-config",
            config,
            "--trusted-root",
            root,
            "--bundle",
            "theirs.json",
            "--yes",
            "release.tar.gz",
        ]),
        &mut t,
    );
    assert_code(&r, 0, "cosign sign-blob --key, logged");
    let theirs = bundle_json(dir, "theirs.json");
    assert_eq!(
        theirs["verificationMaterial"]["tlogEntries"][0]["kindVersion"],
        entry["kindVersion"]
    );
    let r = verify_blob("theirs.json", "release.tar.gz", "cosign.pub", &mut t);
    assert_code(
        &r,
        0,
        "kibaverify verify-blob --key of cosign's logged bundle",
    );
    let r = verify_blob("theirs.json", "release.tar.gz", "ours.pub", &mut t);
    assert_code(&r, 1, "cosign's bundle with another key");
    let r = verify_blob("theirs.json", "other.tar.gz", "cosign.pub", &mut t);
    assert_code(&r, 1, "cosign's bundle for another file");

    // 3. attest-blob with a key, logged (the DSSE envelope through Rekor v2): both tools verify it.
    let r = run(
        &mut tools.kibaverify_without_registry(&[
            "attest-blob",
            "release.tar.gz",
            "--predicate",
            "predicate.json",
            "--type",
            "slsaprovenance",
            "--key",
            "ours.key",
            "--bundle",
            "attestation.json",
            "--signing-config",
            config,
            "--trusted-root",
            root,
        ]),
        &mut t,
    );
    assert_code(&r, 0, "kibaverify attest-blob --key, logged");
    let attestation = bundle_json(dir, "attestation.json");
    assert!(attestation["dsseEnvelope"].is_object());
    assert!(attestation["verificationMaterial"]["tlogEntries"][0].is_object());
    let verify_attestation = |key: &str, t: &mut String| {
        run(
            &mut tools.kibaverify_without_registry(&[
                "verify-blob-attestation",
                "release.tar.gz",
                "--bundle",
                "attestation.json",
                "--type",
                "slsaprovenance",
                "--key",
                key,
                "--trusted-root",
                root,
            ]),
            t,
        )
    };
    let r = verify_attestation("ours.pub", &mut t);
    assert_code(
        &r,
        0,
        "kibaverify verify-blob-attestation of our logged attestation",
    );
    let r = verify_attestation("cosign.pub", &mut t);
    assert_code(&r, 1, "our logged attestation with another key");
    let r = run(
        &mut tools.cosign(&[
            "verify-blob-attestation",
            "--bundle",
            "attestation.json",
            "--type",
            "slsaprovenance",
            "--key",
            "ours.pub",
            "--trusted-root",
            root,
            "release.tar.gz",
        ]),
        &mut t,
    );
    assert_code(
        &r,
        0,
        "cosign verify-blob-attestation of our logged attestation",
    );

    // 4. P-384, P-521 and RSA 2048 keys in Rekor v2 (rekor-tiles v2.3.0 allows them by default): blobs and
    //    attestations, verified by both tools.
    for (name, args, key_details, digest) in [
        (
            "p384",
            &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384"][..],
            "PKIX_ECDSA_P384_SHA_384",
            "sha384",
        ),
        (
            "p521",
            &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-521"][..],
            "PKIX_ECDSA_P521_SHA_512",
            "sha512",
        ),
        (
            "rsa2048",
            &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"][..],
            "PKIX_RSA_PKCS1V15_2048_SHA256",
            "sha256",
        ),
    ] {
        openssl_key(dir, name, args);
        let bundle = format!("{name}.json");
        let r = sign_blob(&format!("{name}.pem"), &bundle, &mut t);
        assert_code(&r, 0, &format!("sign-blob with a {name} key, Rekor v2"));
        let b = bundle_json(dir, &bundle);
        let body: serde_json::Value = serde_json::from_slice(
            &base64::Engine::decode(
                &base64::engine::general_purpose::STANDARD,
                b["verificationMaterial"]["tlogEntries"][0]["canonicalizedBody"]
                    .as_str()
                    .unwrap(),
            )
            .unwrap(),
        )
        .unwrap();
        assert_eq!(
            body["spec"]["hashedRekordV002"]["signature"]["verifier"]["keyDetails"], key_details,
            "{body}"
        );
        let public = format!("{name}.pub");
        let r = verify_blob(&bundle, "release.tar.gz", &public, &mut t);
        assert_code(&r, 0, &format!("kibaverify verify-blob, {name}"));
        let r = verify_blob(&bundle, "release.tar.gz", "ours.pub", &mut t);
        assert_code(&r, 1, &format!("{name} bundle with another key"));
        let r = cosign_verify_blob(&bundle, "release.tar.gz", &public, digest, &mut t);
        assert_code(&r, 0, &format!("cosign verify-blob, {name}"));
        // The DSSE path (as image bundles with a key): attest-blob.
        let attestation = format!("{name}-att.json");
        let r = run(
            &mut tools.kibaverify_without_registry(&[
                "attest-blob",
                "release.tar.gz",
                "--predicate",
                "predicate.json",
                "--type",
                "slsaprovenance",
                "--key",
                &format!("{name}.pem"),
                "--bundle",
                &attestation,
                "--signing-config",
                config,
                "--trusted-root",
                root,
            ]),
            &mut t,
        );
        assert_code(&r, 0, &format!("attest-blob with a {name} key, Rekor v2"));
        let r = run(
            &mut tools.cosign(&[
                "verify-blob-attestation",
                "--bundle",
                &attestation,
                "--type",
                "slsaprovenance",
                "--key",
                &public,
                "--trusted-root",
                root,
                "--signature-digest-algorithm",
                digest,
                "release.tar.gz",
            ]),
            &mut t,
        );
        assert_code(&r, 0, &format!("cosign verify-blob-attestation, {name}"));
    }
    // The image bundle layout with a P-384 key (the same DSSE path): logged in Rekor v2, verified by both tools
    // without --insecure-ignore-tlog.
    let reg_tools = stack.tools();
    let image = reg_tools.fixture("config-only");
    let image_by_digest = reg_tools.image_by_digest(&image, &mut t);
    let r = run(
        &mut reg_tools.kibaverify(&[
            "sign",
            &image,
            "--key",
            "p384.pem",
            "--layout",
            "bundle",
            "--signing-config",
            config,
            "--trusted-root",
            root,
        ]),
        &mut t,
    );
    assert_code(
        &r,
        0,
        "kibaverify sign --key p384 --layout bundle, Rekor v2",
    );
    let r = run(
        &mut reg_tools.kibaverify(&[
            "verify",
            &image,
            "--key",
            "p384.pub",
            "--trusted-root",
            root,
        ]),
        &mut t,
    );
    assert_code(&r, 0, "kibaverify verify --key p384 of the logged bundle");
    let r = run(
        &mut reg_tools.cosign(&[
            "verify",
            "--key",
            "p384.pub",
            "--trusted-root",
            root,
            "--signature-digest-algorithm",
            "sha384",
            "--allow-http-registry",
            &image_by_digest,
        ]),
        &mut t,
    );
    assert_code(&r, 0, "cosign verify --key p384 of our logged bundle");

    // An RSA size Rekor v2 does not take is refused before anything is sent, and nothing is written.
    openssl_key(
        dir,
        "rsa2560",
        &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2560"],
    );
    let r = sign_blob("rsa2560.pem", "rsa2560.json", &mut t);
    assert_code(&r, 2, "sign-blob with an RSA 2560 key, Rekor v2");
    assert!(
        r.stderr
            .contains("Rekor v2 accepts RSA keys of 2048, 3072 or 4096 bits only"),
        "{}",
        r.stderr
    );
    assert!(!dir.join("rsa2560.json").exists());

    // 5. verify-bundle and a timestamp-only bundle (cosign keyless without a log, with the TSA).
    let r = run(
        &mut tools.cosign(&[
            "sign-blob",
            "--use-signing-config=false",
            "--tlog-upload=false",
            "--fulcio-url",
            stack.sigstore.fulcio_url(),
            "--timestamp-server-url",
            stack.sigstore.tsa_url(),
            "--trusted-root",
            root,
            "--identity-token",
            &stack.token,
            "--bundle",
            "ts-only.json",
            "--yes",
            "release.tar.gz",
        ]),
        &mut t,
    );
    assert_code(&r, 0, "cosign sign-blob keyless, timestamp only");
    let ts_only = bundle_json(dir, "ts-only.json");
    assert!(
        ts_only["verificationMaterial"]
            .get("tlogEntries")
            .is_none_or(|e| e.as_array().unwrap().is_empty()),
        "{ts_only}"
    );
    let verify_bundle = |identity: &str, extra: &[&str], t: &mut String| {
        let mut c = tools.kibaverify_without_registry(&[
            "verify-bundle",
            "--bundle",
            "ts-only.json",
            "--artifact",
            "release.tar.gz",
            "--certificate-identity",
            identity,
            "--certificate-oidc-issuer",
            &stack.issuer,
            "--trusted-root",
            root,
            "--output",
            "json",
        ]);
        run(c.args(extra), t)
    };
    let r = verify_bundle(EMAIL, &[], &mut t);
    assert_code(
        &r,
        1,
        "verify-bundle of a timestamp-only bundle, by default",
    );
    let report: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(report["code"], "timestamp-only", "{report}");
    let r = verify_bundle(EMAIL, &["--use-signed-timestamps"], &mut t);
    assert_code(&r, 0, "verify-bundle --use-signed-timestamps");
    let report: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(report["verified"], true, "{report}");
    let r = verify_bundle(
        "someone-else@kibaship.test",
        &["--use-signed-timestamps"],
        &mut t,
    );
    assert_code(
        &r,
        1,
        "verify-bundle --use-signed-timestamps, another identity",
    );
    let r = verify_bundle(
        EMAIL,
        &["--use-signed-timestamps", "--artifact", "other.tar.gz"],
        &mut t,
    );
    assert_ne!(
        r.code, 0,
        "verify-bundle --use-signed-timestamps, another file"
    );
    // Text output names the code and the flag.
    let mut c = tools.kibaverify_without_registry(&[
        "verify-bundle",
        "--bundle",
        "ts-only.json",
        "--artifact",
        "release.tar.gz",
        "--certificate-identity",
        EMAIL,
        "--certificate-oidc-issuer",
        &stack.issuer,
        "--trusted-root",
        root,
    ]);
    let r = run(&mut c, &mut t);
    assert_code(&r, 1, "verify-bundle text output");
    assert!(
        r.stderr.contains("[timestamp-only]") && r.stderr.contains("--use-signed-timestamps"),
        "{}",
        r.stderr
    );

    // 6. An admission policy: a timestamp-only image is denied by default, admitted with `signedTimestamps:
    //    accept`.
    let app = reg_tools.fixture("app");
    let app_by_digest = reg_tools.image_by_digest(&app, &mut t);
    let r = run(
        &mut stack.cosign_sign_keyless(
            &[
                "--use-signing-config=false",
                "--tlog-upload=false",
                "--fulcio-url",
                stack.sigstore.fulcio_url(),
                "--timestamp-server-url",
                stack.sigstore.tsa_url(),
            ],
            &app_by_digest,
        ),
        &mut t,
    );
    assert_code(&r, 0, "cosign sign keyless, timestamp only");
    let policy = |setting: &str| {
        format!(
            "apiVersion: kibaship.io/v1alpha1\nkind: AdmissionPolicy\npolicies:\n  - name: ts\n    images: [\"**\"]\n{setting}    authorities:\n      - keyless:\n          issuer: {}\n          subject: {EMAIL}\n",
            stack.issuer
        )
    };
    std::fs::write(dir.join("default.yaml"), policy("")).unwrap();
    std::fs::write(
        dir.join("accept.yaml"),
        policy("    signedTimestamps: accept\n"),
    )
    .unwrap();
    let judge = |file: &str, t: &mut String| {
        run(
            &mut reg_tools.kibaverify(&[
                "verify",
                &app,
                "--policy",
                file,
                "--trusted-root",
                root,
                "--output",
                "json",
            ]),
            t,
        )
    };
    let r = judge("default.yaml", &mut t);
    assert_code(&r, 1, "verify --policy, timestamp-only image, default");
    assert!(r.stdout.contains("timestamp-only"), "{}", r.stdout);
    let r = judge("accept.yaml", &mut t);
    assert_code(
        &r,
        0,
        "verify --policy, timestamp-only image, signedTimestamps: accept",
    );

    assert_not_leaked(&t, PASSWORD, "the key password");
    stack.assert_token_not_in(&t);
}
