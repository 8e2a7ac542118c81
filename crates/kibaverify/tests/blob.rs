//! `kibaverify sign-blob` / `verify-blob` against the real `cosign sign-blob` / `verify-blob` (v3.1.3 peer), both
//! ways, key-based without a transparency log: our bundles verify in cosign and cosign's in kibaverify, for a
//! P-256 key (each tool's own) and an imported P-384 key (SHA-384 digests); a bundle for another file, another
//! key, a missing --insecure-ignore-tlog, a wrong password are refused with their exit codes, nothing written.
#![allow(clippy::unwrap_used, clippy::expect_used)]
use std::path::Path;
use std::process::Command;

use kibaship_testsupport::peers::sigstore_python;
use kibaship_testsupport::registry::RegistryMode;
use kibaship_testsupport::sigstore::SigstoreOptions;

mod support;
use support::{
    KeylessStack, Tools, assert_code, assert_exit_with_message, assert_not_leaked,
    run_logged as run,
};

/// The identity the private Sigstore's OIDC issuer mints tokens for, and another one.
const EMAIL: &str = "blob-signer@kibaship.test";
const SOMEONE_ELSE: &str = "someone-else@kibaship.test";

/// Planted in COSIGN_PASSWORD; must never appear in any output.
const PASSWORD: &str = "planted-blob-pw-90d1c4";

/// A file of a few chunks (the reader streams 1 MiB at a time), and a second one differing in its last byte.
fn write_blobs(dir: &Path) {
    let mut content: Vec<u8> = (0..3 * 1024 * 1024 + 5)
        .map(|i: u32| (i % 251) as u8)
        .collect();
    std::fs::write(dir.join("release.tar.gz"), &content).unwrap();
    if let Some(last) = content.last_mut() {
        *last ^= 1;
    }
    std::fs::write(dir.join("other.tar.gz"), &content).unwrap();
    std::fs::write(dir.join("provenance.json"), PROVENANCE).unwrap();
}

/// A SLSA provenance v1 predicate about the file (cosign keeps the fields its v1 model knows).
const PROVENANCE: &str = r#"{"buildDefinition":{"buildType":"https://kibaship.io/buildtypes/test/v1","externalParameters":{"source":"git+https://example.test/app"}},"runDetails":{"builder":{"id":"https://kibaship.io/builder"}}}"#;

/// `tool attest-blob` / `cosign attest-blob` arguments shared by every attestation here.
const ATTEST_ARGS: [&str; 4] = [
    "--predicate",
    "provenance.json",
    "--type",
    "slsaprovenance1",
];

/// The tools in `dir` with the two files written and our key pair (`ours.key`, `ours.pub`) generated.
fn signing_workspace<'a>(dir: &'a Path, transcript: &mut String) -> Tools<'a> {
    let tools = Tools::without_registry(dir, PASSWORD);
    write_blobs(dir);
    tools.generate_our_key_pair(transcript);
    tools
}

/// `cosign sign-blob --key key --bundle bundle file` without a transparency log.
fn cosign_sign_blob(tools: &Tools<'_>, key: &str, bundle: &str, file: &str) -> Command {
    tools.cosign(&[
        "sign-blob",
        "--key",
        key,
        "--bundle",
        bundle,
        "--tlog-upload=false",
        "--use-signing-config=false",
        "--yes",
        file,
    ])
}

/// `cosign verify-blob --key key --bundle bundle --insecure-ignore-tlog file`, with the digest algorithm cosign
/// needs told for P-384 keys (it verifies with SHA-256 unless told, although it signs with SHA-384).
fn cosign_verify_blob(
    tools: &Tools<'_>,
    key: &str,
    bundle: &str,
    file: &str,
    digest: &str,
) -> Command {
    tools.cosign(&[
        "verify-blob",
        "--key",
        key,
        "--bundle",
        bundle,
        "--insecure-ignore-tlog",
        "--signature-digest-algorithm",
        digest,
        file,
    ])
}

/// `kibaverify verify-blob file --bundle bundle --key key --insecure-ignore-tlog`.
fn verify_blob(tools: &Tools<'_>, key: &str, bundle: &str, file: &str) -> Command {
    tools.kibaverify_without_registry(&[
        "verify-blob",
        file,
        "--bundle",
        bundle,
        "--key",
        key,
        "--insecure-ignore-tlog",
    ])
}

#[test]
fn blobs_signed_by_either_tool_verify_in_both() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let mut t = String::new();
    // Keys: ours (P-256), cosign's (P-256), and an openssl P-384 key imported by us.
    let tools = signing_workspace(dir, &mut t);
    let r = run(&mut tools.cosign(&["generate-key-pair"]), &mut t);
    assert_code(&r, 0, "cosign generate-key-pair");
    let out = Command::new("openssl")
        .args(["genpkey", "-out", "p384.pem", "-algorithm", "EC"])
        .args(["-pkeyopt", "ec_paramgen_curve:P-384"])
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(out.status.success());
    let r = run(
        &mut tools.kibaverify_without_registry(&[
            "import-key-pair",
            "--key",
            "p384.pem",
            "-o",
            "p384",
        ]),
        &mut t,
    );
    assert_code(&r, 0, "import-key-pair p384");

    for (key, digest) in [("ours", "sha256"), ("p384", "sha384")] {
        // We sign -> cosign and kibaverify verify.
        let bundle = format!("{key}-by-us.json");
        let r = run(
            &mut tools.kibaverify_without_registry(&[
                "sign-blob",
                "release.tar.gz",
                "--key",
                &format!("{key}.key"),
                "--bundle",
                &bundle,
            ]),
            &mut t,
        );
        assert_code(&r, 0, &format!("kibaverify sign-blob with {key}"));
        let public = format!("{key}.pub");
        let r = run(
            &mut cosign_verify_blob(&tools, &public, &bundle, "release.tar.gz", digest),
            &mut t,
        );
        assert_code(&r, 0, &format!("cosign verify-blob of our {key} bundle"));
        let r = run(
            &mut verify_blob(&tools, &public, &bundle, "release.tar.gz"),
            &mut t,
        );
        assert_code(
            &r,
            0,
            &format!("kibaverify verify-blob of our {key} bundle"),
        );

        // cosign signs -> kibaverify verifies.
        let theirs = format!("{key}-by-cosign.json");
        let r = run(
            &mut cosign_sign_blob(&tools, &format!("{key}.key"), &theirs, "release.tar.gz"),
            &mut t,
        );
        assert_code(&r, 0, &format!("cosign sign-blob with {key}"));
        let r = run(
            &mut verify_blob(&tools, &public, &theirs, "release.tar.gz"),
            &mut t,
        );
        assert_code(
            &r,
            0,
            &format!("kibaverify verify-blob of cosign's {key} bundle"),
        );

        // Another file (one byte differs) is refused by both.
        for b in [&bundle, &theirs] {
            let r = run(&mut verify_blob(&tools, &public, b, "other.tar.gz"), &mut t);
            assert_exit_with_message(&r, 1, "the bundle is for another file");
            let r = run(
                &mut cosign_verify_blob(&tools, &public, b, "other.tar.gz", digest),
                &mut t,
            );
            assert_ne!(r.code, 0, "cosign accepted {b} for another file");
        }

        // Attestations about the file: ours verified by cosign, cosign's by us.
        let ours = format!("{key}-attestation-by-us.json");
        let mut c = tools.kibaverify_without_registry(&["attest-blob", "release.tar.gz"]);
        c.args(ATTEST_ARGS)
            .args(["--key", &format!("{key}.key"), "--bundle", &ours]);
        assert_code(&run(&mut c, &mut t), 0, &format!("attest-blob with {key}"));
        let mut c = tools.cosign(&[
            "verify-blob-attestation",
            "--bundle",
            &ours,
            "--key",
            &public,
        ]);
        c.args(["--type", "slsaprovenance1", "--insecure-ignore-tlog"])
            .args(["--signature-digest-algorithm", digest, "release.tar.gz"]);
        let r = run(&mut c, &mut t);
        assert_code(
            &r,
            0,
            &format!("cosign verify-blob-attestation of our {key} bundle"),
        );
        let theirs = format!("{key}-attestation-by-cosign.json");
        let mut c = tools.cosign(&[
            "attest-blob",
            "--key",
            &format!("{key}.key"),
            "--bundle",
            &theirs,
        ]);
        c.args(ATTEST_ARGS).args([
            "--tlog-upload=false",
            "--use-signing-config=false",
            "--yes",
            "release.tar.gz",
        ]);
        assert_code(
            &run(&mut c, &mut t),
            0,
            &format!("cosign attest-blob with {key}"),
        );
        for (bundle, file, wanted_type, code) in [
            (&ours, "release.tar.gz", "slsaprovenance1", 0),
            (&theirs, "release.tar.gz", "slsaprovenance1", 0),
            (&theirs, "other.tar.gz", "slsaprovenance1", 1),
            (&theirs, "release.tar.gz", "vuln", 1),
        ] {
            let mut c = tools.kibaverify_without_registry(&["verify-blob-attestation", file]);
            c.args(["--bundle", bundle, "--type", wanted_type, "--key", &public])
                .arg("--insecure-ignore-tlog");
            let r = run(&mut c, &mut t);
            assert_code(
                &r,
                code,
                &format!("verify-blob-attestation {bundle} {file} {wanted_type}"),
            );
        }
    }

    // cosign's own P-256 key: its bundle verifies with its key, not with ours.
    let r = run(
        &mut cosign_sign_blob(&tools, "cosign.key", "cosign.json", "release.tar.gz"),
        &mut t,
    );
    assert_code(&r, 0, "cosign sign-blob with cosign.key");
    let r = run(
        &mut verify_blob(&tools, "cosign.pub", "cosign.json", "release.tar.gz"),
        &mut t,
    );
    assert_code(&r, 0, "kibaverify verify-blob of cosign.key's bundle");
    let r = run(
        &mut verify_blob(&tools, "ours.pub", "cosign.json", "release.tar.gz"),
        &mut t,
    );
    assert_exit_with_message(&r, 1, "does not verify with the given key");
    // A P-384 key's bundle checked with a P-256 key: another key, not bad input.
    let r = run(
        &mut verify_blob(&tools, "ours.pub", "p384-by-us.json", "release.tar.gz"),
        &mut t,
    );
    assert_exit_with_message(&r, 1, "signed with another key");

    // Without --insecure-ignore-tlog a bundle without a log entry is not accepted, saying how to.
    let r = run(
        &mut tools.kibaverify_without_registry(&[
            "verify-blob",
            "release.tar.gz",
            "--bundle",
            "ours-by-us.json",
            "--key",
            "ours.pub",
        ]),
        &mut t,
    );
    assert_exit_with_message(&r, 1, "--insecure-ignore-tlog");

    assert_not_leaked(&t, PASSWORD, "sign-blob and verify-blob output");
}

#[test]
fn sign_blob_writes_nothing_on_failure() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let mut t = String::new();
    let tools = signing_workspace(dir, &mut t);
    let sign = |extra: &[&str], file: &str| {
        let mut c = tools.kibaverify_without_registry(&[
            "sign-blob",
            file,
            "--key",
            "ours.key",
            "--bundle",
            "out.json",
        ]);
        c.args(extra);
        c
    };

    let r = run(
        sign(&[], "release.tar.gz").env("COSIGN_PASSWORD", "wrong"),
        &mut t,
    );
    assert_exit_with_message(&r, 2, "wrong password");
    let r = run(&mut sign(&[], "missing.tar.gz"), &mut t);
    assert_exit_with_message(&r, 2, "missing.tar.gz");
    let r = run(&mut sign(&[], "/dev/zero"), &mut t);
    assert_exit_with_message(&r, 2, "not a regular file");
    let r = run(&mut sign(&["--tlog-upload=true"], "release.tar.gz"), &mut t);
    assert_exit_with_message(&r, 2, "--tlog-upload=true is not supported");
    // A signing config asks for a log (blob_tlog.rs): one that is not a signing config is refused.
    std::fs::write(dir.join("signing-config.json"), "{}").unwrap();
    let r = run(
        &mut sign(
            &["--signing-config", "signing-config.json"],
            "release.tar.gz",
        ),
        &mut t,
    );
    assert_code(&r, 2, "sign-blob --key --signing-config");
    assert!(!dir.join("out.json").exists());

    let r = run(&mut sign(&[], "release.tar.gz"), &mut t);
    assert_code(&r, 0, "sign-blob");
    assert!(dir.join("out.json").exists());
}

#[test]
fn keyless_blobs_signed_by_either_tool_verify_in_both() {
    let stack = KeylessStack::start(SigstoreOptions::default(), RegistryMode::Plain, EMAIL);
    let tools = stack.tools();
    let dir = stack.tmp.path();
    let mut t = String::new();
    write_blobs(dir);
    let verify = |bundle: &str, file: &str, identity: &str, t: &mut String| {
        run(
            &mut tools.kibaverify_without_registry(&[
                "verify-blob",
                file,
                "--bundle",
                bundle,
                "--certificate-identity",
                identity,
                "--certificate-oidc-issuer",
                &stack.issuer,
                "--trusted-root",
                &stack.trusted_root,
            ]),
            t,
        )
    };
    let cosign_verify = |bundle: &str, file: &str, identity: &str, t: &mut String| {
        run(
            &mut tools.cosign(&[
                "verify-blob",
                "--bundle",
                bundle,
                "--certificate-identity",
                identity,
                "--certificate-oidc-issuer",
                &stack.issuer,
                "--trusted-root",
                &stack.trusted_root,
                file,
            ]),
            t,
        )
    };

    // We sign keyless (Fulcio, Rekor v2, TSA; checked against the trusted root before writing).
    let r = run(
        &mut tools.kibaverify_without_registry(&[
            "sign-blob",
            "release.tar.gz",
            "--bundle",
            "ours.json",
            "--keyless",
            "--signing-config",
            &stack.signing_config,
            "--identity-token-file",
            &stack.token_file,
            "--trusted-root",
            &stack.trusted_root,
        ]),
        &mut t,
    );
    assert_code(&r, 0, "kibaverify sign-blob --keyless");
    // cosign signs keyless against the same services.
    let r = run(
        &mut tools.cosign(&[
            "sign-blob",
            "--bundle",
            "theirs.json",
            "--signing-config",
            &stack.signing_config,
            "--trusted-root",
            &stack.trusted_root,
            "--identity-token",
            &stack.token,
            "--yes",
            "release.tar.gz",
        ]),
        &mut t,
    );
    assert_code(&r, 0, "cosign sign-blob keyless");
    // sigstore-python signs keyless against the same services (Rekor v2), from its client trust config.
    let trust_config = stack
        .sigstore
        .client_trust_config_path()
        .display()
        .to_string();
    let sigstore = |args: &[&str]| {
        let mut c = Command::new(sigstore_python().unwrap());
        c.current_dir(dir)
            .args(["--trust-config", &trust_config])
            .args(args);
        c
    };
    let r = run(
        &mut sigstore(&[
            "sign",
            "--identity-token",
            &stack.token,
            "--rekor-version",
            "2",
            "--bundle",
            "python.json",
            "release.tar.gz",
        ]),
        &mut t,
    );
    assert_code(&r, 0, "sigstore-python sign");

    for bundle in ["ours.json", "theirs.json", "python.json"] {
        let r = verify(bundle, "release.tar.gz", EMAIL, &mut t);
        assert_code(&r, 0, &format!("kibaverify verify-blob of {bundle}"));
        assert!(r.stdout.contains(EMAIL), "{}", r.stdout);
        let r = cosign_verify(bundle, "release.tar.gz", EMAIL, &mut t);
        assert_code(&r, 0, &format!("cosign verify-blob of {bundle}"));
        let r = run(
            &mut sigstore(&[
                "verify",
                "identity",
                "--offline",
                "--bundle",
                bundle,
                "--cert-identity",
                EMAIL,
                "--cert-oidc-issuer",
                &stack.issuer,
                "release.tar.gz",
            ]),
            &mut t,
        );
        assert_code(
            &r,
            0,
            &format!("sigstore-python verify identity of {bundle}"),
        );
        // Another identity, another file: refused by both.
        let r = verify(bundle, "release.tar.gz", SOMEONE_ELSE, &mut t);
        assert_exit_with_message(&r, 1, SOMEONE_ELSE);
        let r = cosign_verify(bundle, "release.tar.gz", SOMEONE_ELSE, &mut t);
        assert_ne!(r.code, 0, "cosign accepted another identity for {bundle}");
        let r = verify(bundle, "other.tar.gz", EMAIL, &mut t);
        assert_code(
            &r,
            1,
            &format!("kibaverify verify-blob of {bundle} for another file"),
        );
        let r = cosign_verify(bundle, "other.tar.gz", EMAIL, &mut t);
        assert_ne!(r.code, 0, "cosign accepted {bundle} for another file");
    }
    // Keyless attestations about the file: ours verified by cosign, cosign's by us.
    let keyless = [
        "--signing-config",
        stack.signing_config.as_str(),
        "--trusted-root",
        stack.trusted_root.as_str(),
    ];
    let mut c = tools.kibaverify_without_registry(&["attest-blob", "release.tar.gz"]);
    c.args(ATTEST_ARGS)
        .args(["--bundle", "attestation-ours.json", "--keyless"])
        .args(keyless)
        .args(["--identity-token-file", &stack.token_file]);
    assert_code(&run(&mut c, &mut t), 0, "attest-blob --keyless");
    let mut c = tools.cosign(&["attest-blob", "--bundle", "attestation-theirs.json"]);
    c.args(ATTEST_ARGS).args(keyless).args([
        "--identity-token",
        &stack.token,
        "--yes",
        "release.tar.gz",
    ]);
    assert_code(&run(&mut c, &mut t), 0, "cosign attest-blob keyless");
    let identity = [
        "--certificate-identity",
        EMAIL,
        "--certificate-oidc-issuer",
        stack.issuer.as_str(),
        "--trusted-root",
        stack.trusted_root.as_str(),
    ];
    for bundle in ["attestation-ours.json", "attestation-theirs.json"] {
        let mut c =
            tools.kibaverify_without_registry(&["verify-blob-attestation", "release.tar.gz"]);
        c.args(["--bundle", bundle, "--type", "slsaprovenance1"])
            .args(identity);
        assert_code(
            &run(&mut c, &mut t),
            0,
            &format!("verify-blob-attestation of {bundle}"),
        );
        let mut c = tools.cosign(&["verify-blob-attestation", "--bundle", bundle]);
        c.args(["--type", "slsaprovenance1"])
            .args(identity)
            .arg("release.tar.gz");
        assert_code(
            &run(&mut c, &mut t),
            0,
            &format!("cosign verify-blob-attestation of {bundle}"),
        );
        let mut c = tools.kibaverify_without_registry(&["verify-blob-attestation", "other.tar.gz"]);
        c.args(["--bundle", bundle, "--type", "slsaprovenance1"])
            .args(identity);
        assert_code(
            &run(&mut c, &mut t),
            1,
            &format!("verify-blob-attestation of {bundle} for another file"),
        );
    }
    stack.assert_token_not_in(&t);
}
