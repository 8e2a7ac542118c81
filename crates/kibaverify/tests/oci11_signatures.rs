//! cosign's OCI 1.1 signature mode (issue 20 item 6): `cosign sign --new-bundle-format=false
//! --registry-referrers-mode=oci-1-1` (with COSIGN_EXPERIMENTAL=1) writes the `.sig` manifest as a referrer of
//! the image, artifactType `application/vnd.dev.cosign.artifact.sig.v1+json`, and no `.sig` tag; `cosign verify
//! --experimental-oci11` reads it. `kibaverify verify` reads cosign's, `kibaverify sign --layout oci-1-1` writes
//! ours and the real cosign v3.1.3 verifies it; on ggcr-registry (referrers API) and docker-registry (none:
//! cosign and we both write the `sha256-<hex>` fallback index tag). A referrer copied onto another image is
//! refused.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use kibaship_oci::Reference;
use kibaship_oci::manifest::{Descriptor, OCI_MANIFEST};
use kibaship_testsupport::registry::RegistryMode;

mod support;
use support::{
    Tools, assert_code, block_on, manifest, referrers_route, registry_client,
    registry_with_fixtures, run,
};

const PASSWORD: &str = "oci11-signatures-pw";
const SIG_ARTIFACT_TYPE: &str = "application/vnd.dev.cosign.artifact.sig.v1+json";

/// The OCI 1.1 signature referrers of `image` (by digest), as `kibaverify referrers` lists them.
fn signature_referrers(tools: &Tools<'_>, image: &str) -> Vec<String> {
    let r = run(&mut tools.kibaverify(&[
        "referrers",
        image,
        "--artifact-type",
        SIG_ARTIFACT_TYPE,
        "--output",
        "json",
    ]));
    assert_code(&r, 0, "kibaverify referrers");
    let listed: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    listed["referrers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["digest"].as_str().unwrap().to_string())
        .collect()
}

/// The tags of `image`'s repository (`image` is `host/repo:tag@digest`).
fn tags(tools: &Tools<'_>, image: &str) -> String {
    let named = image.split('@').next().unwrap();
    let repository = match named.rsplit_once(':') {
        Some((repository, tag)) if !tag.contains('/') => repository,
        _ => named,
    };
    let r = run(&mut tools.crane(&["ls", "--insecure", repository]));
    assert_code(&r, 0, "crane ls");
    r.stdout
}

/// What a signature manifest holds, without what differs per signing (digests, sizes, signature values).
fn shape(m: &kibaship_oci::manifest::ImageManifest) -> serde_json::Value {
    serde_json::json!({
        "mediaType": m.media_type,
        "artifactType": m.artifact_type,
        "config": m.config.media_type,
        "layers": m.layers.iter().map(|l| {
            (l.media_type.clone(), l.annotations.keys().cloned().collect::<Vec<_>>())
        }).collect::<Vec<_>>(),
        "subject": m.subject.as_ref().map(|s| (s.media_type.clone(), s.digest.to_string())),
        "annotations": m.annotations,
    })
}

fn oci11_both_ways(mode: RegistryMode) {
    let reg = registry_with_fixtures(mode);
    let tmp = tempfile::tempdir().unwrap();
    let tools = Tools::new(tmp.path(), &reg, Some(PASSWORD));
    let host = reg.host();
    let mut transcript = String::new();
    tools.generate_both_key_pairs(&mut transcript);
    let theirs = tools.image_by_digest(&tools.fixture("app"), &mut transcript);
    let ours = tools.image_by_digest(&tools.fixture("config-only"), &mut transcript);
    let fallback_tag = |image: &str| image.rsplit_once('@').unwrap().1.replace(':', "-");

    // cosign writes one: a referrer, no .sig tag (and the fallback index tag without the referrers API).
    let mut sign = tools.cosign(&[
        "sign",
        "--key",
        "cosign.key",
        "--tlog-upload=false",
        "--use-signing-config=false",
        "--new-bundle-format=false",
        "--registry-referrers-mode=oci-1-1",
        "--allow-http-registry",
        "--yes",
        &theirs,
    ]);
    sign.env("COSIGN_EXPERIMENTAL", "1");
    assert_code(
        &run(&mut sign),
        0,
        "cosign sign --registry-referrers-mode=oci-1-1",
    );
    let listed = tags(&tools, &theirs);
    assert!(!listed.contains(".sig"), "{listed}");
    assert_eq!(
        listed.contains(&fallback_tag(&theirs)),
        mode != RegistryMode::Referrers,
        "{listed}"
    );
    let cosigns = signature_referrers(&tools, &theirs);
    assert_eq!(cosigns.len(), 1, "{cosigns:?}");

    // We read it, through the same verifier as every layout.
    let r = run(&mut tools.verify_with_key("verify", &theirs, "cosign.pub", &["--output", "json"]));
    assert_code(&r, 0, "kibaverify verify of cosign's OCI 1.1 signature");
    let report: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let found = &report["signatures"][0];
    assert_eq!(found["layout"], "signature-referrer", "{report}");
    assert_eq!(found["verified"], true, "{report}");
    assert!(
        found["location"].as_str().unwrap().ends_with(&cosigns[0]),
        "{report}"
    );
    let r = run(&mut tools.verify_with_key("verify", &theirs, "ours.pub", &[]));
    assert_code(
        &r,
        1,
        "kibaverify verify of cosign's signature with our key",
    );
    assert!(r.stderr.contains("wrong-key"), "{}", r.stderr);

    // We write one; cosign reads it.
    let r =
        run(&mut tools.kibaverify(&["sign", &ours, "--key", "ours.key", "--layout", "oci-1-1"]));
    assert_code(&r, 0, "kibaverify sign --layout oci-1-1");
    let via = format!(
        "an OCI 1.1 referrer found through {}",
        referrers_route(mode)
    );
    assert!(r.stderr.contains(&via), "{}", r.stderr);
    let listed = tags(&tools, &ours);
    assert!(!listed.contains(".sig"), "{listed}");
    assert_eq!(
        listed.contains(&fallback_tag(&ours)),
        mode != RegistryMode::Referrers,
        "{listed}"
    );
    let mut verify = tools.cosign_verify_with_key("ours.pub", &ours);
    verify.arg("--experimental-oci11");
    assert_code(
        &run(&mut verify),
        0,
        "cosign verify --experimental-oci11 of ours",
    );
    // Without --experimental-oci11, cosign v3.1.3 reads bundles and the .sig tag only.
    let r = run(&mut tools.cosign_verify_with_key("ours.pub", &ours));
    assert_ne!(
        r.code, 0,
        "cosign verify found an OCI 1.1 signature without --experimental-oci11"
    );
    assert!(r.stderr.contains("no signatures found"), "{}", r.stderr);
    let r = run(&mut tools.verify_with_key("verify", &ours, "ours.pub", &[]));
    assert_code(&r, 0, "kibaverify verify of our OCI 1.1 signature");

    // Ours has cosign's shape: config and artifact type, one simple-signing layer with the signature
    // annotation, the image as subject.
    let ours_referrer = signature_referrers(&tools, &ours);
    assert_eq!(ours_referrer.len(), 1, "{ours_referrer:?}");
    let at = |image: &str, digest: &str| {
        Reference::parse(image)
            .unwrap()
            .with_digest(digest.parse().unwrap())
    };
    let our_manifest = manifest(&host, &at(&ours, &ours_referrer[0]));
    let their_manifest = manifest(&host, &at(&theirs, &cosigns[0]));
    let subject_of = |image: &str| image.rsplit_once('@').unwrap().1.to_string();
    let mut expected = shape(&their_manifest);
    expected["subject"][1] = serde_json::json!(subject_of(&ours));
    assert_eq!(shape(&our_manifest), expected);
    assert_eq!(
        our_manifest.subject.as_ref().unwrap().media_type,
        their_manifest.subject.as_ref().unwrap().media_type
    );

    // cosign's mode is for signatures only, and so is ours.
    std::fs::write(tmp.path().join("predicate.json"), b"{}").unwrap();
    let r = run(&mut tools.kibaverify(&[
        "attest",
        &ours,
        "--key",
        "ours.key",
        "--predicate",
        "predicate.json",
        "--type",
        "slsaprovenance1",
        "--layout",
        "oci-1-1",
    ]));
    assert_code(&r, 2, "kibaverify attest --layout oci-1-1");
    assert!(r.stderr.contains("writes signatures only"), "{}", r.stderr);
    // An SBOM to attest the same way is refused before it is attached.
    std::fs::write(
        tmp.path().join("bom.json"),
        br#"{"bomFormat":"CycloneDX","specVersion":"1.6","version":1}"#,
    )
    .unwrap();
    let r = run(&mut tools.kibaverify(&[
        "sbom", "attach", &ours, "--file", "bom.json", "--sign", "--key", "ours.key", "--layout",
        "oci-1-1",
    ]));
    assert_code(&r, 2, "kibaverify sbom attach --sign --layout oci-1-1");
    assert!(r.stderr.contains("writes signatures only"), "{}", r.stderr);
    let r = run(&mut tools.kibaverify(&["referrers", &ours, "--output", "json"]));
    assert_code(&r, 0, "kibaverify referrers");
    assert!(!r.stdout.contains("cyclonedx"), "{}", r.stdout);

    // Our referrer copied onto cosign's image (its subject rewritten): its payload names the other image.
    let client = registry_client(&host);
    let mut copied = our_manifest.clone();
    let theirs_ref = Reference::parse(&theirs).unwrap();
    copied.subject = Some(block_on(client.subject_descriptor(&theirs_ref)).unwrap());
    // Its blobs too (docker-registry wants them in the repository).
    let ours_ref = Reference::parse(&ours).unwrap();
    for blob in std::iter::once(&copied.config).chain(&copied.layers) {
        let content = block_on(client.fetch_blob(&ours_ref, &blob.digest, blob.size)).unwrap();
        block_on(client.push_blob(&theirs_ref, &content)).unwrap();
    }
    let bytes = serde_json::to_vec(&copied).unwrap();
    let copy_ref = theirs_ref.with_digest(kibaship_oci::Digest::sha256_of(&bytes));
    block_on(client.push_manifest(&copy_ref, &bytes, OCI_MANIFEST)).unwrap();
    if mode != RegistryMode::Referrers {
        let mut entry = Descriptor::of(OCI_MANIFEST, &bytes);
        entry.artifact_type = Some(SIG_ARTIFACT_TYPE.into());
        let subject = theirs_ref.digest().unwrap().clone();
        block_on(client.add_to_fallback_index(&theirs_ref, &subject, &entry)).unwrap();
    }
    assert_eq!(signature_referrers(&tools, &theirs).len(), 2);
    let r = run(&mut tools.verify_with_key("verify", &theirs, "ours.pub", &["--output", "json"]));
    assert_code(&r, 1, "kibaverify verify of a copied OCI 1.1 signature");
    let report: serde_json::Value = serde_json::from_str(&r.stdout).unwrap_or_else(|_| {
        panic!("not JSON: {} / {}", r.stdout, r.stderr);
    });
    assert_eq!(report["code"], "digest-mismatch", "{report}");
}

#[test]
fn oci11_signatures_both_ways_with_the_referrers_api() {
    oci11_both_ways(RegistryMode::Referrers);
}

#[test]
fn oci11_signatures_both_ways_without_the_referrers_api() {
    oci11_both_ways(RegistryMode::Plain);
}
