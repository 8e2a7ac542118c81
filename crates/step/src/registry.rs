//! What the build step asks of a registry, and the manifest reading it does on the answers.
//!
//! [`ManifestStore`] is the small surface the step needs (resolve a tag, fetch a manifest, push a manifest under
//! a tag). It is implemented with `kibaship-oci` in [`crate::oci_store`]; everything else here is pure: parsing
//! annotations out of a manifest or index, finding BuildKit's SBOM attestation in an index.

use std::collections::BTreeMap;
use std::future::Future;

use kibaship_oci::manifest::{ImageIndex, ImageManifest};
use kibaship_provenance::buildkit::is_attestation_manifest;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::failure::{Classify, FailureKind};
use crate::image::ImageName;

/// A manifest as the registry served it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchedManifest {
    /// `Content-Type` / `mediaType`.
    pub media_type: String,
    /// The exact bytes (their sha256 is the digest).
    pub bytes: Vec<u8>,
    /// `sha256:<hex>` of `bytes`.
    pub digest: String,
}

impl FetchedManifest {
    /// Builds one from bytes, computing the digest.
    pub fn new(media_type: impl Into<String>, bytes: Vec<u8>) -> FetchedManifest {
        let digest = format!("sha256:{}", hex::encode(Sha256::digest(&bytes)));
        FetchedManifest {
            media_type: media_type.into(),
            bytes,
            digest,
        }
    }
}

/// A registry failure. All are reported as retryable registry errors except an integrity failure.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("registry request for {reference} failed: {message}")]
    Request { reference: String, message: String },
    #[error("{reference}: the registry answered with a manifest whose digest is {got}, not {want}")]
    Integrity {
        reference: String,
        want: String,
        got: String,
    },
    #[error(
        "{reference}: the tag points at {on_registry}, but buildctl reported {built}; another push raced this build"
    )]
    TagMoved {
        reference: String,
        on_registry: String,
        built: String,
    },
    #[error("{reference}: buildctl reported {digest}, but the registry does not have it")]
    Missing { reference: String, digest: String },
    #[error("{reference}: manifest is not usable: {problem}")]
    BadManifest { reference: String, problem: String },
}

impl Classify for RegistryError {
    fn kind(&self) -> FailureKind {
        FailureKind::Registry
    }
}

/// The registry operations the build step uses. Implementations limit response sizes and never log credentials.
pub trait ManifestStore {
    /// The digest `image`'s repository has under `reference` (a tag or digest), `None` when it does not exist.
    fn resolve(
        &self,
        image: &ImageName,
        reference: &str,
    ) -> impl Future<Output = Result<Option<String>, RegistryError>> + Send;

    /// The manifest under `reference`, `None` when it does not exist. Implementations check that a manifest
    /// fetched by digest has that digest.
    fn fetch(
        &self,
        image: &ImageName,
        reference: &str,
    ) -> impl Future<Output = Result<Option<FetchedManifest>, RegistryError>> + Send;

    /// Pushes `manifest` under `tag` in `image`'s repository (its blobs are already there).
    fn push_tag(
        &self,
        image: &ImageName,
        tag: &str,
        manifest: &FetchedManifest,
    ) -> impl Future<Output = Result<(), RegistryError>> + Send;
}

/// The `annotations` object of a manifest or index (string values only).
pub fn manifest_annotations(bytes: &[u8]) -> Result<BTreeMap<String, String>, String> {
    let v: Value = serde_json::from_slice(bytes).map_err(|e| format!("not JSON: {e}"))?;
    if !v.is_object() {
        return Err("not a JSON object".into());
    }
    Ok(v.get("annotations")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
        .collect())
}

/// BuildKit's annotation marking an attestation manifest inside an index, and the in-toto predicate type
/// annotation on an attestation layer (`kibaship_provenance::buildkit`, which reads BuildKit's attestations).
pub use kibaship_provenance::buildkit::{
    PREDICATE_TYPE, REFERENCE_TYPE as ATTESTATION_REFERENCE_TYPE,
};
/// SBOM predicate types BuildKit writes (SPDX; CycloneDX from custom scanners).
pub const SBOM_PREDICATES: [&str; 2] = ["https://spdx.dev/Document", "https://cyclonedx.org/bom"];

/// Digests of the attestation manifests an index lists (`vnd.docker.reference.type: attestation-manifest`);
/// none when the bytes are not an image index.
pub fn attestation_manifests(index_bytes: &[u8]) -> Vec<String> {
    let Ok(index) = serde_json::from_slice::<ImageIndex>(index_bytes) else {
        return Vec::new();
    };
    index
        .manifests
        .iter()
        .filter(|d| is_attestation_manifest(d))
        .map(|d| d.digest.to_string())
        .collect()
}

/// Whether an attestation manifest carries an SBOM layer (false when the bytes are not an image manifest).
pub fn has_sbom_layer(manifest_bytes: &[u8]) -> bool {
    let Ok(manifest) = serde_json::from_slice::<ImageManifest>(manifest_bytes) else {
        return false;
    };
    manifest.layers.iter().any(|l| {
        l.annotations
            .get(PREDICATE_TYPE)
            .is_some_and(|p| SBOM_PREDICATES.contains(&p.as_str()))
    })
}

/// The reference (`<registry>/<repository>@<digest>`) of the SBOM attestation in the index `digest`, if any.
pub async fn find_sbom_ref<S: ManifestStore>(
    store: &S,
    image: &ImageName,
    index: &FetchedManifest,
) -> Result<Option<String>, RegistryError> {
    for att in attestation_manifests(&index.bytes) {
        let manifest = store.fetch(image, &att).await?;
        if manifest.is_some_and(|m| has_sbom_layer(&m.bytes)) {
            return Ok(Some(image.pinned(&att)));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    const AA: &str = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const BB: &str = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

    fn attestation(predicate_types: &[&str]) -> String {
        let layers: Vec<String> = predicate_types
            .iter()
            .map(|t| {
                format!(
                    r#"{{"mediaType":"application/vnd.in-toto+json","digest":"{AA}","size":1,"annotations":{{"in-toto.io/predicate-type":"{t}"}}}}"#
                )
            })
            .collect();
        format!(
            r#"{{"schemaVersion":2,"config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{BB}","size":1}},"layers":[{}]}}"#,
            layers.join(",")
        )
    }

    #[test]
    fn finds_attestation_manifests_and_sbom_layers() {
        let index = format!(
            r#"{{"schemaVersion":2,"manifests":[
            {{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{AA}","size":1,"platform":{{"os":"linux","architecture":"amd64"}}}},
            {{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{BB}","size":1,"annotations":{{"vnd.docker.reference.type":"attestation-manifest",
             "vnd.docker.reference.digest":"{AA}"}}}}],
            "annotations":{{"dev.kibaship.build-key":"k"}}}}"#
        );
        assert_eq!(attestation_manifests(index.as_bytes()), vec![BB]);
        assert!(attestation_manifests(b"{}").is_empty());
        assert_eq!(
            manifest_annotations(index.as_bytes()).expect("object")["dev.kibaship.build-key"],
            "k"
        );
        let att = attestation(&[
            "https://slsa.dev/provenance/v0.2",
            "https://spdx.dev/Document",
        ]);
        assert!(has_sbom_layer(att.as_bytes()));
        assert!(!has_sbom_layer(
            attestation(&["https://slsa.dev/provenance/v0.2"]).as_bytes()
        ));
        assert!(!has_sbom_layer(b"not json"));
        assert!(manifest_annotations(b"[]").is_err());
    }
}
