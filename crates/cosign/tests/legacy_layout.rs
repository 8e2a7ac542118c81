//! cosign's legacy layout, read from real cosign output (slsa-verifier's saved layouts) and written by us.
#![allow(clippy::unwrap_used)]
mod support;

use std::path::Path;

use kibaship_cosign::legacy::{self, LayerKind, LayoutError, SignatureLayer};
use kibaship_oci::Digest;
use kibaship_oci::manifest::{Descriptor, ImageIndex, ImageManifest};
use support::{layout_blob, simple_signing_layer, slsa_layout_dir};

/// The `.att` manifest of a saved layout: the index.json entry annotated `kind: dev.cosignproject.cosign/atts`.
fn attestation_manifest(layout: &Path) -> Vec<u8> {
    let index: ImageIndex =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let entry = index
        .manifests
        .iter()
        .find(|d| {
            d.annotations.get("kind").map(String::as_str) == Some("dev.cosignproject.cosign/atts")
        })
        .unwrap();
    layout_blob(layout, &entry.digest)
}

#[test]
fn reads_real_cosign_attestation_manifests() {
    for version in ["v2.0.0", "v2.1.0"] {
        let dir = slsa_layout_dir(version);
        let layers =
            legacy::read_manifest(&attestation_manifest(&dir), LayerKind::Attestation).unwrap();
        assert!(!layers.is_empty(), "{version}");
        for layer in &layers {
            // Keyless: leaf and chain in PEM, a Rekor bundle with a dsse entry, the SLSA predicate type.
            assert!(
                layer
                    .certificate_pem
                    .as_deref()
                    .unwrap()
                    .starts_with("-----BEGIN CERTIFICATE-----")
            );
            assert!(
                layer
                    .chain_pem
                    .as_deref()
                    .unwrap()
                    .contains("-----BEGIN CERTIFICATE-----")
            );
            assert!(
                layer.signature.is_empty(),
                "DSSE layers carry an empty signature annotation"
            );
            let bundle = layer.rekor_bundle.as_ref().unwrap();
            assert!(bundle.payload.log_index > 0);
            assert_eq!(
                legacy::log_id_bytes(&bundle.payload.log_id).unwrap().len(),
                32
            );
            assert!(
                layer
                    .predicate_type
                    .as_deref()
                    .unwrap()
                    .starts_with("https://slsa.dev/provenance/")
            );
            // The payload blob is the DSSE envelope the annotations describe.
            let envelope = layout_blob(&dir, &layer.descriptor.digest);
            assert!(layer.descriptor.digest.matches(&envelope));
            let json: serde_json::Value = serde_json::from_slice(&envelope).unwrap();
            assert_eq!(json["payloadType"], "application/vnd.in-toto+json");
            // Writing the layer's annotations back gives what cosign wrote.
            assert_eq!(
                layer.annotations(),
                layer.descriptor.annotations,
                "{version}"
            );
        }
        // The same manifest read as a `.sig` tag is refused: its layers are not simple-signing payloads.
        let err =
            legacy::read_manifest(&attestation_manifest(&dir), LayerKind::Signature).unwrap_err();
        assert!(
            matches!(err, LayoutError::UnexpectedMediaType { .. }),
            "{err}"
        );
    }
}

#[test]
fn tag_names_follow_cosign() {
    let digest =
        Digest::parse("sha256:55aee984fd6b1d0e0a19a55265d10d40063a2212bdbabd75b202b1728236548d")
            .unwrap();
    assert_eq!(
        legacy::tag_for(&digest, legacy::SIGNATURE_TAG_SUFFIX),
        "sha256-55aee984fd6b1d0e0a19a55265d10d40063a2212bdbabd75b202b1728236548d.sig"
    );
}

#[test]
fn built_manifests_read_back_and_resigning_appends() {
    let first = simple_signing_layer(b"{\"a\":1}", "MEUCIQ==");
    let second = simple_signing_layer(b"{\"a\":1}", "MEYCIQ==");
    let layers = legacy::append_layer(&[], first.clone());
    let layers = legacy::append_layer(&layers, second.clone());
    let layers = legacy::append_layer(&layers, first.clone());
    assert_eq!(
        layers,
        vec![first.clone(), second.clone()],
        "same signature is not duplicated, another is kept"
    );

    let built = legacy::build_manifest(&layers);
    let manifest: ImageManifest = serde_json::from_slice(&built.manifest).unwrap();
    assert!(manifest.config.digest.matches(&built.config));
    let config: serde_json::Value = serde_json::from_slice(&built.config).unwrap();
    assert_eq!(config["rootfs"]["diff_ids"][1], second.digest.to_string());
    let read = legacy::read_manifest(&built.manifest, LayerKind::Signature).unwrap();
    assert_eq!(read.len(), 2);
    assert_eq!(read[1].signature, vec![0x30, 0x46, 0x02, 0x21]);
}

/// Reads, as a `.sig` manifest, a manifest built with `layer` as its only layer.
fn read_as_only_layer(layer: Descriptor) -> Result<Vec<SignatureLayer>, LayoutError> {
    legacy::read_manifest(
        &legacy::build_manifest(&[layer]).manifest,
        LayerKind::Signature,
    )
}

#[test]
fn hostile_manifests_are_refused_with_bounded_work() {
    let layer = simple_signing_layer(b"{}", "MEUCIQ==");
    let many = legacy::build_manifest(&vec![layer.clone(); 10_000]);
    assert!(matches!(
        legacy::read_manifest(&many.manifest, LayerKind::Signature),
        Err(LayoutError::TooManyLayers(10_000))
    ));

    let mut huge = layer.clone();
    huge.annotations
        .insert(legacy::CERTIFICATE_ANNOTATION.into(), "A".repeat(1 << 20));
    let err = read_as_only_layer(huge).unwrap_err();
    assert!(
        err.to_string().contains(legacy::CERTIFICATE_ANNOTATION),
        "{err}"
    );

    let mut bad_sig = layer.clone();
    bad_sig
        .annotations
        .insert(legacy::SIGNATURE_ANNOTATION.into(), "not base64!".into());
    let err = read_as_only_layer(bad_sig).unwrap_err();
    assert!(err.to_string().contains("is not base64"), "{err}");

    let mut no_sig = layer.clone();
    no_sig.annotations.clear();
    assert!(matches!(
        read_as_only_layer(no_sig),
        Err(LayoutError::BadSignature { .. })
    ));

    let mut bad_bundle = layer.clone();
    bad_bundle.annotations.insert(
        legacy::BUNDLE_ANNOTATION.into(),
        "{\"SignedEntryTimestamp\":1}".into(),
    );
    assert!(matches!(
        read_as_only_layer(bad_bundle),
        Err(LayoutError::BadRekorBundle { .. })
    ));

    let mut big = layer;
    big.size = legacy::MAX_PAYLOAD_BYTES + 1;
    assert!(matches!(
        read_as_only_layer(big),
        Err(LayoutError::LayerTooLarge { .. })
    ));

    assert!(matches!(
        legacy::read_manifest(b"{\"layers\": 3}", LayerKind::Signature),
        Err(LayoutError::NotAManifest(_))
    ));
}
