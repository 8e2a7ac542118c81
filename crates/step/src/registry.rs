//! What the build step asks of a registry, and the manifest reading it does on the answers.
//!
//! [`ManifestStore`] is the small surface the step needs (resolve a tag, fetch a manifest, push a manifest under
//! a tag). It is implemented with `kibaship-oci` in [`crate::oci_store`]; everything else here is pure: parsing
//! annotations out of a manifest or index, finding BuildKit's SBOM attestation in an index.

use std::collections::BTreeMap;
use std::future::Future;

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

/// BuildKit's annotation marking an attestation manifest inside an index.
pub const ATTESTATION_REFERENCE_TYPE: &str = "vnd.docker.reference.type";
/// In-toto predicate type annotation on an attestation layer.
pub const PREDICATE_TYPE: &str = "in-toto.io/predicate-type";
/// SBOM predicate types BuildKit writes (SPDX; CycloneDX from custom scanners).
pub const SBOM_PREDICATES: [&str; 2] = ["https://spdx.dev/Document", "https://cyclonedx.org/bom"];

/// Digests of the attestation manifests an index lists (`vnd.docker.reference.type: attestation-manifest`).
pub fn attestation_manifests(index_bytes: &[u8]) -> Vec<String> {
    let Ok(v) = serde_json::from_slice::<Value>(index_bytes) else {
        return Vec::new();
    };
    v.get("manifests")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|m| {
            m.get("annotations")
                .and_then(|a| a.get(ATTESTATION_REFERENCE_TYPE))
                .and_then(Value::as_str)
                == Some("attestation-manifest")
        })
        .filter_map(|m| m.get("digest").and_then(Value::as_str).map(str::to_string))
        .collect()
}

/// Whether an attestation manifest carries an SBOM layer.
pub fn has_sbom_layer(manifest_bytes: &[u8]) -> bool {
    let Ok(v) = serde_json::from_slice::<Value>(manifest_bytes) else {
        return false;
    };
    v.get("layers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .any(|l| {
            l.get("annotations")
                .and_then(|a| a.get(PREDICATE_TYPE))
                .and_then(Value::as_str)
                .is_some_and(|p| SBOM_PREDICATES.contains(&p))
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

    #[test]
    fn finds_attestation_manifests_and_sbom_layers() {
        let index = br#"{"schemaVersion":2,"manifests":[
            {"digest":"sha256:aa","platform":{"os":"linux","architecture":"amd64"}},
            {"digest":"sha256:bb","annotations":{"vnd.docker.reference.type":"attestation-manifest",
             "vnd.docker.reference.digest":"sha256:aa"}}],
            "annotations":{"dev.kibaship.build-key":"k"}}"#;
        assert_eq!(attestation_manifests(index), vec!["sha256:bb"]);
        assert_eq!(
            manifest_annotations(index).expect("object")["dev.kibaship.build-key"],
            "k"
        );
        let att = br#"{"layers":[{"annotations":{"in-toto.io/predicate-type":"https://slsa.dev/provenance/v0.2"}},
                                 {"annotations":{"in-toto.io/predicate-type":"https://spdx.dev/Document"}}]}"#;
        assert!(has_sbom_layer(att));
        assert!(!has_sbom_layer(br#"{"layers":[{"annotations":{"in-toto.io/predicate-type":"https://slsa.dev/provenance/v0.2"}}]}"#));
        assert!(manifest_annotations(b"[]").is_err());
    }
}
