//! Key-based signatures entered in the transparency log (issue 20 item 3), against a real private Sigstore
//! (Rekor v1 on Trillian, Rekor v2, the TSA: `kibaship_testsupport::sigstore` with `rekor_v1`) and a real
//! registry, both ways with cosign v3.1.3:
//! - `kibaverify sign --key --signing-config` in the legacy layout (Rekor v1, the SET in the layer's bundle
//!   annotation) and in the bundle layout (Rekor v2 + an RFC 3161 timestamp) is verified by `kibaverify verify
//!   --key --trusted-root` and `cosign verify --key --trusted-root`, neither with `--insecure-ignore-tlog`;
//! - `cosign sign --key` with its log upload (Rekor v2 from the signing config; Rekor v1 with
//!   `--new-bundle-format=false`) is verified by `kibaverify verify --key --trusted-root`;
//! - another key is refused, and so is a key signature without a log entry unless `--insecure-ignore-tlog`;
//! - attestations signed with a key and logged (`.att` with a Rekor v1 `dsse` entry, a bundle with Rekor v2)
//!   pass `kibaverify verify-attestation` and `cosign verify-attestation` with the key and the trusted root.
//!
//! On the same stack (one start for both), issue 20 item 4a: `kibaverify sign --keyless --layout bundle` with a
//! signing config that offers only the Rekor v1 log writes a bundle v0.3 whose entry is a `dsse` v0.0.1 with its
//! inclusion proof and SET, shaped as cosign v3.1.3 writes it with the same config; each tool verifies both.
//! With that config, key-signed blobs (`sign-blob --key`, `cosign sign-blob --key`) are logged in Rekor v1 and each
//! tool verifies both bundles by key without `--insecure-ignore-tlog`.
//! And item 4b: cosign's timestamp-only keyless bundle (`--tlog-upload=false` with a TSA: an RFC 3161 timestamp,
//! no log entry) is refused by `kibaverify verify` (`timestamp-only`) unless `--insecure-ignore-tlog
//! --use-signed-timestamps`, cosign's own flags for it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use base64::Engine as _;
use kibaship_oci::Reference;
use kibaship_testsupport::registry::RegistryMode;

mod support;
use support::{
    KeylessStack, Tools, WITH_REKOR_V1, assert_code, assert_exit_with_message, assert_not_leaked,
    block_on, registry_client, run_logged as run, signature_tag_manifest,
};

const PASSWORD: &str = "key-tlog-pass-0d6e";
const EMAIL: &str = "rekor-v1-bundle@kibaship.test";

/// Every bundle attached to `image` (`registry/repo@sha256:...`), parsed.
fn bundles_of(host: &str, image: &str) -> Vec<serde_json::Value> {
    block_on(async {
        let client = registry_client(host);
        let reference = Reference::parse(image).unwrap();
        let referrers = client.list_referrers(&reference, None).await.unwrap();
        let mut out = Vec::new();
        for d in &referrers.descriptors {
            let referrer = reference.with_digest(d.digest.clone());
            let parsed: kibaship_oci::manifest::ImageManifest =
                serde_json::from_slice(&client.fetch_manifest(&referrer).await.unwrap().bytes)
                    .unwrap();
            let layer = &parsed.layers[0];
            let blob = client
                .fetch_blob(&reference, &layer.digest, layer.size)
                .await
                .unwrap();
            out.push(serde_json::from_slice(&blob).unwrap());
        }
        out
    })
}

#[test]
fn key_signatures_logged_in_rekor_interoperate_with_cosign() {
    let stack = KeylessStack::start(WITH_REKOR_V1, RegistryMode::Plain, EMAIL);
    let tools = Tools::new(stack.tmp.path(), &stack.reg, Some(PASSWORD));
    let host = stack.reg.host();
    let root = stack.trusted_root.as_str();
    let config = stack.signing_config.as_str();
    let rekor_v1 = stack.sigstore.rekor_v1_url().unwrap().to_string();
    let mut t = String::new();
    tools.generate_both_key_pairs(&mut t);

    let verify = |image: &str, key: &str, t: &mut String| {
        run(
            &mut tools.kibaverify(&["verify", image, "--key", key, "--trusted-root", root]),
            t,
        )
    };
    let cosign_verify = |image: &str, key: &str, legacy: bool, t: &mut String| {
        let mut c = tools.cosign(&["verify", "--key", key, "--trusted-root", root]);
        if legacy {
            c.arg("--new-bundle-format=false");
        }
        run(c.args(["--allow-http-registry", image]), t)
    };

    // 1. We sign with a key in the legacy layout, logged in Rekor v1 (from the signing config), self-checked.
    let app = tools.fixture("app");
    let r = run(
        &mut tools.kibaverify(&[
            "sign",
            &app,
            "--key",
            "ours.key",
            "--layout",
            "legacy",
            "--signing-config",
            config,
            "--trusted-root",
            root,
        ]),
        &mut t,
    );
    assert_code(&r, 0, "kibaverify sign --key --layout legacy with Rekor v1");
    assert!(
        r.stderr.contains("Rekor v1 entry")
            && r.stderr.contains("signed entry timestamp")
            && r.stderr.contains("verified against the trusted root"),
        "{}",
        r.stderr
    );
    let app_by_digest = r.stdout.trim().to_string();
    // The layer carries the SET in cosign's bundle annotation, a hashedrekord with the public key.
    let (_, manifest) = signature_tag_manifest(&host, &app_by_digest, "sig");
    let bundle: serde_json::Value =
        serde_json::from_str(&manifest.layers[0].annotations["dev.sigstore.cosign/bundle"])
            .unwrap();
    let body: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::STANDARD
            .decode(bundle["Payload"]["body"].as_str().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        (body["kind"].as_str(), body["apiVersion"].as_str()),
        (Some("hashedrekord"), Some("0.0.1"))
    );
    assert!(
        bundle["SignedEntryTimestamp"]
            .as_str()
            .is_some_and(|s| !s.is_empty())
    );
    assert!(
        !manifest.layers[0]
            .annotations
            .contains_key("dev.sigstore.cosign/certificate")
    );

    let r = verify(&app, "ours.pub", &mut t);
    assert_code(
        &r,
        0,
        "kibaverify verify --key of our logged legacy signature",
    );
    assert!(
        r.stdout.contains("signed entry timestamp verified"),
        "{}",
        r.stdout
    );
    let r = verify(&app, "cosign.pub", &mut t);
    assert_code(&r, 1, "kibaverify verify with another key");
    let r = cosign_verify(&app_by_digest, "ours.pub", true, &mut t);
    assert_code(&r, 0, "cosign verify --key of our logged legacy signature");
    let r = cosign_verify(&app_by_digest, "cosign.pub", true, &mut t);
    assert_ne!(r.code, 0, "cosign accepted another key: {}", r.stderr);

    // 2. We sign with a key in the bundle layout, logged in Rekor v2 with a TSA timestamp.
    let config_only = tools.fixture("config-only");
    let r = run(
        &mut tools.kibaverify(&[
            "sign",
            &config_only,
            "--key",
            "ours.key",
            "--layout",
            "bundle",
            "--signing-config",
            config,
            "--trusted-root",
            root,
        ]),
        &mut t,
    );
    assert_code(&r, 0, "kibaverify sign --key --layout bundle with Rekor v2");
    assert!(
        r.stderr.contains("Rekor v2 log index") && r.stderr.contains("RFC 3161 timestamp"),
        "{}",
        r.stderr
    );
    let config_only_by_digest = r.stdout.trim().to_string();
    let r = verify(&config_only, "ours.pub", &mut t);
    assert_code(&r, 0, "kibaverify verify --key of our logged bundle");
    assert!(
        r.stdout
            .contains("inclusion proof and signed checkpoint verified"),
        "{}",
        r.stdout
    );
    let r = verify(&config_only, "cosign.pub", &mut t);
    assert_code(&r, 1, "kibaverify verify of our bundle with another key");
    let r = cosign_verify(&config_only_by_digest, "ours.pub", false, &mut t);
    assert_code(&r, 0, "cosign verify --key of our logged bundle");
    let r = cosign_verify(&config_only_by_digest, "cosign.pub", false, &mut t);
    assert_ne!(r.code, 0, "cosign accepted another key: {}", r.stderr);

    // 3. cosign signs with its key and logs (Rekor v2 from the signing config) -> we verify.
    let docker_app = format!("{host}/fixtures/docker-app:v1");
    let docker_app_by_digest = tools.image_by_digest(&docker_app, &mut t);
    let r = run(
        &mut tools.cosign(&[
            "sign",
            "--key",
            "cosign.key",
            "--signing-config",
            config,
            "--trusted-root",
            root,
            "--allow-http-registry",
            "--yes",
            &docker_app_by_digest,
        ]),
        &mut t,
    );
    assert_code(&r, 0, "cosign sign --key with its signing config");
    let r = verify(&docker_app, "cosign.pub", &mut t);
    assert_code(&r, 0, "kibaverify verify --key of cosign's logged bundle");
    assert!(r.stdout.contains("inclusion proof"), "{}", r.stdout);
    let r = verify(&docker_app, "ours.pub", &mut t);
    assert_code(
        &r,
        1,
        "kibaverify verify of cosign's bundle with another key",
    );

    // 4. cosign signs with its key in the legacy layout, logged in Rekor v1 -> we verify.
    let multiarch = format!("{host}/fixtures/multiarch:v1");
    let multiarch_by_digest = tools.image_by_digest(&multiarch, &mut t);
    let r = run(
        &mut tools.cosign(&[
            "sign",
            "--key",
            "cosign.key",
            "--new-bundle-format=false",
            "--use-signing-config=false",
            "--tlog-upload=true",
            "--rekor-url",
            &rekor_v1,
            "--allow-http-registry",
            "--yes",
            &multiarch_by_digest,
        ]),
        &mut t,
    );
    assert_code(
        &r,
        0,
        "cosign sign --key --new-bundle-format=false with Rekor v1",
    );
    let r = verify(&multiarch, "cosign.pub", &mut t);
    assert_code(
        &r,
        0,
        "kibaverify verify --key of cosign's logged legacy signature",
    );
    assert!(
        r.stdout.contains("signed entry timestamp verified"),
        "{}",
        r.stdout
    );

    // 5. Without a log: still refused unless --insecure-ignore-tlog; --tlog-upload=false wins over the config.
    let r = run(
        &mut tools.kibaverify(&[
            "sign",
            &app,
            "--key",
            "ours.key",
            "--layout",
            "bundle",
            "--signing-config",
            config,
            "--tlog-upload=false",
        ]),
        &mut t,
    );
    assert_code(
        &r,
        0,
        "kibaverify sign --key --tlog-upload=false with a signing config",
    );
    assert!(
        r.stderr.contains("no transparency-log entry was made"),
        "{}",
        r.stderr
    );
    let r = run(
        &mut tools.kibaverify(&["sign", &app, "--key", "ours.key", "--tlog-upload=true"]),
        &mut t,
    );
    assert_exit_with_message(&r, 2, "without a Rekor log");
    // A blob signed with a key and no log named: --trusted-root (which checks a logged signature) is refused, and
    // nothing is written. (Logged key blobs: blob_tlog.rs.)
    std::fs::write(stack.tmp.path().join("release.txt"), "release").unwrap();
    let r = run(
        &mut tools.kibaverify_without_registry(&[
            "sign-blob",
            "release.txt",
            "--key",
            "ours.key",
            "--bundle",
            "release.sigstore.json",
            "--trusted-root",
            root,
        ]),
        &mut t,
    );
    assert_exit_with_message(&r, 2, "--trusted-root with --key");
    assert!(!stack.tmp.path().join("release.sigstore.json").exists());
    // Attestations with a logged key: the legacy `.att` layer with a Rekor v1 `dsse` entry and its SET, the bundle
    // with Rekor v2 and the TSA; both verify in both tools with the key and the trusted root.
    std::fs::write(
        stack.tmp.path().join("predicate.json"),
        r#"{"buildType": "logged"}"#,
    )
    .unwrap();
    for (image, by_digest, layout, said) in [
        (&app, &app_by_digest, "legacy", "Rekor v1 entry"),
        (
            &config_only,
            &config_only_by_digest,
            "bundle",
            "Rekor v2 log index",
        ),
    ] {
        let r = run(
            &mut tools.kibaverify(&[
                "attest",
                image,
                "--predicate",
                "predicate.json",
                "--type",
                "slsaprovenance",
                "--key",
                "ours.key",
                "--layout",
                layout,
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
            &format!("kibaverify attest --key --layout {layout} logged"),
        );
        assert!(
            r.stderr.contains(said) && r.stderr.contains("verified against the trusted root"),
            "{}",
            r.stderr
        );
        let r = run(
            &mut tools.kibaverify(&[
                "verify-attestation",
                image,
                "--type",
                "slsaprovenance",
                "--key",
                "ours.pub",
                "--trusted-root",
                root,
            ]),
            &mut t,
        );
        assert_code(&r, 0, &format!("kibaverify verify-attestation ({layout})"));
        let mut c = tools.cosign(&[
            "verify-attestation",
            "--key",
            "ours.pub",
            "--type",
            "slsaprovenance",
            "--trusted-root",
            root,
            "--allow-http-registry",
        ]);
        if layout == "legacy" {
            c.arg("--new-bundle-format=false");
        }
        let r = run(c.arg(by_digest), &mut t);
        assert_code(&r, 0, &format!("cosign verify-attestation ({layout})"));
        let statements = support::printed_statements(&r.stdout);
        assert_eq!(
            statements[0]["predicate"]["buildType"], "logged",
            "{}",
            r.stdout
        );
    }
    let (_, att) = signature_tag_manifest(&host, &app_by_digest, "att");
    let bundle: serde_json::Value =
        serde_json::from_str(&att.layers[0].annotations["dev.sigstore.cosign/bundle"]).unwrap();
    let body: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::STANDARD
            .decode(bundle["Payload"]["body"].as_str().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        (body["kind"].as_str(), body["apiVersion"].as_str()),
        (Some("dsse"), Some("0.0.1"))
    );

    // 6. Item 4a: keyless bundles with a signing config that offers only the Rekor v1 log.
    let mut v1_only: serde_json::Value =
        serde_json::from_slice(&std::fs::read(config).unwrap()).unwrap();
    v1_only["rekorTlogUrls"]
        .as_array_mut()
        .unwrap()
        .retain(|s| s["majorApiVersion"] == 1);
    assert_eq!(v1_only["rekorTlogUrls"].as_array().unwrap().len(), 1);
    let config_v1 = stack.tmp.path().join("signing_config_rekor_v1.json");
    std::fs::write(&config_v1, v1_only.to_string()).unwrap();
    let config_v1 = config_v1.display().to_string();
    let image = format!("{host}/fixtures/docker-multiarch:v1");
    let image_by_digest = tools.image_by_digest(&image, &mut t);
    let r = run(
        &mut tools.kibaverify(&[
            "sign",
            &image,
            "--keyless",
            "--layout",
            "bundle",
            "--signing-config",
            &config_v1,
            "--identity-token-file",
            &stack.token_file,
            "--trusted-root",
            root,
        ]),
        &mut t,
    );
    assert_code(
        &r,
        0,
        "kibaverify sign --keyless --layout bundle with Rekor v1",
    );
    assert!(
        r.stderr.contains("Rekor v1 log index")
            && r.stderr.contains("with its signed entry timestamp")
            && r.stderr.contains("verified against the trusted root"),
        "{}",
        r.stderr
    );
    let r = run(&mut stack.verify(&["verify", &image], EMAIL), &mut t);
    assert_code(&r, 0, "kibaverify verify of our Rekor v1 bundle");
    assert!(
        r.stdout
            .contains("signed entry timestamp and inclusion proof verified"),
        "{}",
        r.stdout
    );
    let r = run(
        &mut stack.verify(&["verify", &image], "someone-else@kibaship.test"),
        &mut t,
    );
    assert_code(
        &r,
        1,
        "kibaverify verify of our Rekor v1 bundle, wrong identity",
    );
    let r = run(
        &mut stack.cosign_verify(&["verify"], EMAIL, &image_by_digest),
        &mut t,
    );
    assert_code(&r, 0, "cosign verify of our Rekor v1 bundle");
    let r = run(
        &mut stack.cosign_verify(&["verify"], "someone-else@kibaship.test", &image_by_digest),
        &mut t,
    );
    assert_ne!(r.code, 0, "cosign accepted a wrong identity: {}", r.stderr);
    let ours = bundles_of(&host, &image_by_digest);
    assert_eq!(ours.len(), 1);

    // The legacy layout with only Fulcio and Rekor v1 named (no TSA: the SET dates the certificate).
    let r = run(
        &mut tools.kibaverify(&[
            "sign",
            &image,
            "--keyless",
            "--layout",
            "legacy",
            "--fulcio-url",
            stack.sigstore.fulcio_url(),
            "--rekor-v1-url",
            &rekor_v1,
            "--identity-token-file",
            &stack.token_file,
            "--trusted-root",
            root,
        ]),
        &mut t,
    );
    assert_code(
        &r,
        0,
        "kibaverify sign --keyless --layout legacy without a TSA",
    );
    let (_, legacy) = signature_tag_manifest(&host, &image_by_digest, "sig");
    assert!(
        !legacy.layers[0]
            .annotations
            .contains_key("dev.sigstore.cosign/rfc3161timestamp")
    );

    // cosign signs keyless with the same config -> we verify it, and both bundles have the same shape.
    let r = run(
        &mut stack.cosign_sign_keyless(&["--signing-config", &config_v1], &image_by_digest),
        &mut t,
    );
    assert_code(&r, 0, "cosign sign keyless with a Rekor v1 signing config");
    let r = run(
        &mut stack.verify(&["verify", &image, "--output", "json"], EMAIL),
        &mut t,
    );
    assert_code(&r, 0, "kibaverify verify of both Rekor v1 bundles");
    let report: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let verified = report["signatures"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["verified"] == true && s["layout"] == "bundle-referrer")
        .count();
    assert_eq!(verified, 2, "{}", r.stdout);
    let both = bundles_of(&host, &image_by_digest);
    assert_eq!(both.len(), 2);
    let shape = |b: &serde_json::Value| {
        let material = &b["verificationMaterial"];
        let entry = &material["tlogEntries"][0];
        let mut keys: Vec<_> = material.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        (
            b["mediaType"].clone(),
            keys,
            entry["kindVersion"].clone(),
            entry["inclusionPromise"].is_object(),
            entry["inclusionProof"]["checkpoint"]["envelope"].is_string(),
            b.get("dsseEnvelope").is_some(),
        )
    };
    assert_eq!(shape(&both[0]), shape(&both[1]));
    assert_eq!(shape(&ours[0]).2["kind"], "dsse");
    assert_eq!(shape(&ours[0]).2["version"], "0.0.1");

    // 6b. Key-signed blobs with the Rekor v1-only config: logged in Rekor v1 (hashedrekord 0.0.1 with its inclusion
    //     proof and SET), as cosign does with it; each tool verifies both bundles by key, no --insecure-ignore-tlog.
    let blob_tools = Tools {
        dir: stack.tmp.path(),
        registry: None,
        password: Some(PASSWORD),
    };
    std::fs::write(
        stack.tmp.path().join("blob-v1.txt"),
        "a blob logged in Rekor v1",
    )
    .unwrap();
    let r = run(
        &mut blob_tools.kibaverify_without_registry(&[
            "sign-blob",
            "blob-v1.txt",
            "--key",
            "ours.key",
            "--bundle",
            "blob-v1-ours.json",
            "--signing-config",
            &config_v1,
            "--trusted-root",
            root,
        ]),
        &mut t,
    );
    assert_code(&r, 0, "kibaverify sign-blob --key with a Rekor v1 config");
    assert!(r.stderr.contains("logged in Rekor v1"), "{}", r.stderr);
    let r = run(
        &mut blob_tools.cosign(&[
            "sign-blob",
            "--key",
            "cosign.key",
            "--signing-config",
            &config_v1,
            "--trusted-root",
            root,
            "--bundle",
            "blob-v1-theirs.json",
            "--yes",
            "blob-v1.txt",
        ]),
        &mut t,
    );
    assert_code(&r, 0, "cosign sign-blob --key with a Rekor v1 config");
    let entry_of = |name: &str| -> serde_json::Value {
        let b: serde_json::Value =
            serde_json::from_slice(&std::fs::read(stack.tmp.path().join(name)).unwrap()).unwrap();
        let e = &b["verificationMaterial"]["tlogEntries"][0];
        serde_json::json!([
            e["kindVersion"].clone(),
            e["inclusionPromise"].is_object(),
            e["inclusionProof"]["checkpoint"]["envelope"].is_string()
        ])
    };
    assert_eq!(
        entry_of("blob-v1-ours.json"),
        entry_of("blob-v1-theirs.json")
    );
    assert_eq!(
        entry_of("blob-v1-ours.json")[0],
        serde_json::json!({"kind": "hashedrekord", "version": "0.0.1"})
    );
    for (bundle, key, other) in [
        ("blob-v1-ours.json", "ours.pub", "cosign.pub"),
        ("blob-v1-theirs.json", "cosign.pub", "ours.pub"),
    ] {
        let ours_verify = |key: &str, t: &mut String| {
            run(
                &mut blob_tools.kibaverify_without_registry(&[
                    "verify-blob",
                    "blob-v1.txt",
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
        assert_code(
            &ours_verify(key, &mut t),
            0,
            &format!("kibaverify verify-blob {bundle}"),
        );
        assert_code(
            &ours_verify(other, &mut t),
            1,
            &format!("{bundle} with another key"),
        );
        let r = run(
            &mut blob_tools.cosign(&[
                "verify-blob",
                "--bundle",
                bundle,
                "--key",
                key,
                "--trusted-root",
                root,
                "blob-v1.txt",
            ]),
            &mut t,
        );
        assert_code(&r, 0, &format!("cosign verify-blob {bundle}"));
    }

    // 7. Item 4b: a timestamp-only keyless bundle (cosign without a log, with the TSA), in its own repository.
    let ts_only = format!("{host}/fixtures/timestamp-only:v1");
    let r = run(
        &mut tools.crane(&["copy", "--insecure", &app, &ts_only]),
        &mut t,
    );
    assert_code(&r, 0, "crane copy");
    let ts_only_by_digest = tools.image_by_digest(&ts_only, &mut t);
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
            &ts_only_by_digest,
        ),
        &mut t,
    );
    assert_code(&r, 0, "cosign sign keyless, timestamp only");
    let bundles = bundles_of(&host, &ts_only_by_digest);
    assert_eq!(bundles.len(), 1);
    let material = &bundles[0]["verificationMaterial"];
    assert!(
        material
            .get("tlogEntries")
            .is_none_or(|e| e.as_array().unwrap().is_empty())
            && material["timestampVerificationData"]["rfc3161Timestamps"][0].is_object(),
        "{material}"
    );
    let verify_ts = |identity: &str, extra: &[&str], t: &mut String| {
        let mut c = stack.verify(&["verify", &ts_only, "--output", "json"], identity);
        run(c.args(extra), t)
    };
    let code_of = |r: &support::Run| {
        let report: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
        (
            report["code"].clone(),
            report["signatures"][0]["code"].clone(),
            report["signatures"][0]["hint"].clone(),
            report["signatures"][0]["transparencyLog"].clone(),
        )
    };
    let r = verify_ts(EMAIL, &[], &mut t);
    assert_code(
        &r,
        1,
        "kibaverify verify of a timestamp-only bundle, by default",
    );
    let (code, sig_code, hint, _) = code_of(&r);
    assert_eq!(
        (code.as_str(), sig_code.as_str()),
        (Some("timestamp-only"), Some("timestamp-only"))
    );
    assert_eq!(hint, "accept-signed-timestamps");
    let r = verify_ts(EMAIL, &["--use-signed-timestamps"], &mut t);
    assert_code(
        &r,
        1,
        "--use-signed-timestamps alone still requires a log entry",
    );
    let r = verify_ts(
        EMAIL,
        &["--insecure-ignore-tlog", "--use-signed-timestamps"],
        &mut t,
    );
    assert_code(
        &r,
        0,
        "kibaverify verify --insecure-ignore-tlog --use-signed-timestamps",
    );
    let (_, _, _, tlog) = code_of(&r);
    assert!(
        tlog.as_str()
            .unwrap()
            .starts_with("none (timestamp-only bundle")
            && tlog.as_str().unwrap().contains("RFC 3161 timestamp from"),
        "{tlog}"
    );
    let r = verify_ts(
        "someone-else@kibaship.test",
        &["--insecure-ignore-tlog", "--use-signed-timestamps"],
        &mut t,
    );
    assert_code(&r, 1, "timestamp-only bundle, wrong identity");
    assert_eq!(code_of(&r).1, "wrong-identity");
    // The text output names the flags.
    let r = run(&mut stack.verify(&["verify", &ts_only], EMAIL), &mut t);
    assert_code(&r, 1, "text output");
    assert!(
        r.stderr
            .contains("--insecure-ignore-tlog --use-signed-timestamps"),
        "{}",
        r.stderr
    );
    // cosign draws the same line with the same flags.
    let r = run(
        &mut stack.cosign_verify(&["verify"], EMAIL, &ts_only_by_digest),
        &mut t,
    );
    assert_ne!(
        r.code, 0,
        "cosign accepted a timestamp-only bundle by default"
    );
    let r = run(
        &mut stack.cosign_verify(
            &[
                "verify",
                "--insecure-ignore-tlog",
                "--use-signed-timestamps",
            ],
            EMAIL,
            &ts_only_by_digest,
        ),
        &mut t,
    );
    assert_code(
        &r,
        0,
        "cosign verify --insecure-ignore-tlog --use-signed-timestamps",
    );

    assert_not_leaked(&t, PASSWORD, "the key password");
    stack.assert_token_not_in(&t);
}
