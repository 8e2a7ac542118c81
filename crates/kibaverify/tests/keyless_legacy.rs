//! `kibaverify sign --keyless --layout legacy|both` against a real private Sigstore with Rekor v1
//! (`kibaship_testsupport::sigstore` with `rekor_v1`: rekor-server v1.5.5 on Trillian v1.8.0 and MariaDB, Fulcio
//! v1.8.8 with TesseraCT, our OIDC issuer) and a real registry: our `.sig` layer (certificate, chain, Rekor bundle
//! = SET and entry) is verified by `kibaverify verify` and by `cosign verify --new-bundle-format=false` (v3.1.3);
//! cosign's keyless legacy signature against the same stack is verified by us; a tampered SET fails both. The
//! OIDC token is planted and searched for in every output.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;

use kibaship_oci::manifest::{ImageManifest, OCI_MANIFEST};
use kibaship_oci::{ClientConfig, Reference, RegistryClient};
use kibaship_testsupport::fixtures::push_fixture_images;
use kibaship_testsupport::registry::{RegistryMode, TestRegistry};
use kibaship_testsupport::sigstore::{SigstoreOptions, TestSigstore};

mod support;
use support::{BIN, assert_code, cosign, run_logged as run};

const EMAIL: &str = "tekton-legacy@kibaship.test";
const BUNDLE_ANNOTATION: &str = "dev.sigstore.cosign/bundle";

fn kibaverify(dir: &Path, reg: &TestRegistry, args: &[&str]) -> Command {
    let mut c = Command::new(BIN);
    c.current_dir(dir)
        .env_remove("SIGSTORE_ID_TOKEN")
        .env("DOCKER_CONFIG", dir.join("no-docker-config"))
        .args(args)
        .args(["--insecure-registry", &reg.host()]);
    c
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn registry_client(reg: &TestRegistry) -> RegistryClient {
    RegistryClient::new(ClientConfig {
        insecure_registries: vec![reg.host()],
        use_docker_config: false,
        ..ClientConfig::default()
    })
    .unwrap()
}

/// The `.sig` manifest of `image_by_digest` (`registry/repo@sha256:...`).
fn sig_manifest(reg: &TestRegistry, image_by_digest: &str) -> (Reference, ImageManifest) {
    let digest = image_by_digest.rsplit_once('@').unwrap().1;
    let tag = Reference::parse(image_by_digest)
        .unwrap()
        .with_tag(&format!("{}.sig", digest.replace(':', "-")))
        .unwrap();
    let client = registry_client(reg);
    let bytes = runtime()
        .block_on(client.fetch_manifest(&tag))
        .unwrap()
        .bytes;
    (tag, serde_json::from_slice(&bytes).unwrap())
}

#[test]
fn keyless_legacy_signatures_interoperate_with_cosign() {
    let stack = TestSigstore::start_with(SigstoreOptions { rekor_v1: true }).unwrap();
    let reg = TestRegistry::start(RegistryMode::Plain).unwrap();
    push_fixture_images(&reg).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let host = reg.host();
    let token = stack.mint_token(EMAIL).unwrap();
    let token_file = dir.join("token");
    std::fs::write(&token_file, format!("{token}\n")).unwrap();
    let trusted_root = stack.trusted_root_path().display().to_string();
    let signing_config = stack.signing_config_path().display().to_string();
    let issuer = stack.issuer().to_string();
    let rekor_v1 = stack.rekor_v1_url().unwrap().to_string();
    let mut t = String::new();

    // 1. We sign keyless in the legacy layout (Rekor v1 from the signing config), self-checked.
    let app = format!("{host}/fixtures/app:v1");
    let r = run(
        &mut kibaverify(
            dir,
            &reg,
            &[
                "sign",
                &app,
                "--keyless",
                "--layout",
                "legacy",
                "--signing-config",
                &signing_config,
                "--identity-token-file",
                &token_file.display().to_string(),
                "--trusted-root",
                &trusted_root,
            ],
        ),
        &mut t,
    );
    assert_code(&r, 0, "kibaverify sign --keyless --layout legacy");
    let app_by_digest = r.stdout.trim().to_string();
    assert!(app_by_digest.starts_with(&format!("{host}/fixtures/app@sha256:")));
    assert!(
        r.stderr.contains("Rekor v1 entry")
            && r.stderr.contains("signed entry timestamp")
            && r.stderr.contains("verified against the trusted root"),
        "{}",
        r.stderr
    );

    let verify = |image: &str, identity: &str, t: &mut String| {
        run(
            &mut kibaverify(
                dir,
                &reg,
                &[
                    "verify",
                    image,
                    "--certificate-identity",
                    identity,
                    "--certificate-oidc-issuer",
                    &issuer,
                    "--trusted-root",
                    &trusted_root,
                ],
            ),
            t,
        )
    };
    let cosign_verify = |image: &str, identity: &str, t: &mut String| {
        run(
            &mut cosign(
                dir,
                &[
                    "verify",
                    "--new-bundle-format=false",
                    "--trusted-root",
                    &trusted_root,
                    "--certificate-identity",
                    identity,
                    "--certificate-oidc-issuer",
                    &issuer,
                    "--allow-http-registry",
                    image,
                ],
            ),
            t,
        )
    };
    let r = verify(&app, EMAIL, &mut t);
    assert_code(&r, 0, "kibaverify verify of our keyless legacy signature");
    assert!(
        r.stdout.contains(".sig layer 0") && r.stdout.contains("signed entry timestamp"),
        "{}",
        r.stdout
    );
    let r = verify(&app, "someone-else@kibaship.test", &mut t);
    assert_code(&r, 1, "kibaverify verify, wrong identity");

    // 2. cosign verifies our legacy layer (SCT and Rekor v1 SET checked: no --insecure flag).
    let r = cosign_verify(&app_by_digest, EMAIL, &mut t);
    assert_code(
        &r,
        0,
        "cosign verify --new-bundle-format=false of our signature",
    );
    assert!(
        r.stdout.contains(app_by_digest.rsplit('@').next().unwrap()),
        "{}",
        r.stdout
    );
    let r = cosign_verify(&app_by_digest, "someone-else@kibaship.test", &mut t);
    assert_ne!(r.code, 0, "cosign accepted a wrong identity: {}", r.stderr);

    // 3. cosign signs keyless in the legacy layout against the same Fulcio and Rekor v1 -> we verify.
    let other = format!("{host}/fixtures/config-only:v1");
    let r = run(&mut kibaverify(dir, &reg, &["digest", &other]), &mut t);
    assert_code(&r, 0, "kibaverify digest");
    let other_by_digest = r.stdout.trim().to_string();
    let r = run(
        &mut cosign(
            dir,
            &[
                "sign",
                "--new-bundle-format=false",
                "--use-signing-config=false",
                "--trusted-root",
                &trusted_root,
                "--fulcio-url",
                stack.fulcio_url(),
                "--rekor-url",
                &rekor_v1,
                "--identity-token",
                &token,
                "--allow-http-registry",
                "--yes",
                &other_by_digest,
            ],
        ),
        &mut t,
    );
    assert_code(&r, 0, "cosign sign keyless legacy");
    let r = verify(&other, EMAIL, &mut t);
    assert_code(
        &r,
        0,
        "kibaverify verify of cosign's keyless legacy signature",
    );
    let r = verify(&other, "someone-else@kibaship.test", &mut t);
    assert_code(
        &r,
        1,
        "kibaverify verify of cosign's signature, wrong identity",
    );

    // Both layers carry the same annotations and the same Rekor entry kind.
    let (_, ours) = sig_manifest(&reg, &app_by_digest);
    let (_, theirs) = sig_manifest(&reg, &other_by_digest);
    let keys = |m: &ImageManifest| m.layers[0].annotations.keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(&ours), keys(&theirs));
    let kind = |m: &ImageManifest| {
        let bundle: serde_json::Value =
            serde_json::from_str(&m.layers[0].annotations[BUNDLE_ANNOTATION]).unwrap();
        use base64::Engine as _;
        let body: serde_json::Value = serde_json::from_slice(
            &base64::engine::general_purpose::STANDARD
                .decode(bundle["Payload"]["body"].as_str().unwrap())
                .unwrap(),
        )
        .unwrap();
        (
            body["kind"].clone(),
            body["apiVersion"].clone(),
            bundle["Payload"]["logID"].clone(),
        )
    };
    assert_eq!(kind(&ours), kind(&theirs));

    // 4. A tampered SET: both verifiers reject the layer.
    let (tag, mut tampered) = sig_manifest(&reg, &app_by_digest);
    let mut bundle: serde_json::Value =
        serde_json::from_str(&tampered.layers[0].annotations[BUNDLE_ANNOTATION]).unwrap();
    let set = bundle["SignedEntryTimestamp"].as_str().unwrap().to_string();
    let flipped = if &set[20..21] == "A" { "B" } else { "A" };
    bundle["SignedEntryTimestamp"] = format!("{}{flipped}{}", &set[..20], &set[21..]).into();
    tampered.layers[0]
        .annotations
        .insert(BUNDLE_ANNOTATION.into(), bundle.to_string());
    let client = registry_client(&reg);
    runtime()
        .block_on(client.push_manifest(&tag, &serde_json::to_vec(&tampered).unwrap(), OCI_MANIFEST))
        .unwrap();
    let r = verify(&app, EMAIL, &mut t);
    assert_code(&r, 1, "kibaverify verify with a tampered SET");
    let r = cosign_verify(&app_by_digest, EMAIL, &mut t);
    assert_ne!(r.code, 0, "cosign accepted a tampered SET: {}", r.stdout);
    assert!(r.stderr.contains("SET"), "{}", r.stderr);

    // 5. --layout both: a legacy layer (Rekor v1) and a bundle referrer (Rekor v2 + TSA) in one run.
    let both = format!("{host}/fixtures/app:v1");
    let r = run(
        &mut kibaverify(
            dir,
            &reg,
            &[
                "sign",
                &both,
                "--keyless",
                "--layout",
                "both",
                "--signing-config",
                &signing_config,
                "--identity-token",
                &token,
                "--output",
                "json",
            ],
        ),
        &mut t,
    );
    assert_code(&r, 0, "kibaverify sign --keyless --layout both");
    let report: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(report["legacy"]["signatures"], 2, "{report}");
    assert!(report["legacy"]["rekorUuid"].is_string(), "{report}");
    assert!(report["bundle"]["referrer"].is_string(), "{report}");
    let r = verify(&app, EMAIL, &mut t);
    assert_code(&r, 0, "kibaverify verify after --layout both");
    assert!(
        r.stdout.contains("2 of 3 signatures passed"),
        "stdout:\n{}\nstderr:\n{}",
        r.stdout,
        r.stderr
    );

    // The token never appears in any output of any tool.
    assert!(!t.contains(&token), "the OIDC token leaked into an output");
    assert!(!t.contains(token.rsplit('.').next().unwrap()));
}
