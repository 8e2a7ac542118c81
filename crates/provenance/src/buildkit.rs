//! BuildKit's attestations inside an image index.
//!
//! BuildKit (`--opt attest:provenance=mode=max`, `--opt attest:sbom=`) pushes, beside each platform's image
//! manifest, an attestation manifest in the same index: a descriptor annotated
//! `vnd.docker.reference.type: attestation-manifest` and `vnd.docker.reference.digest: <platform manifest>`,
//! with `platform: unknown/unknown` so that containerd and docker skip it. That manifest's layers are in-toto
//! statements (`application/vnd.in-toto+json`), each annotated with its `in-toto.io/predicate-type`.
//! Reading them: [`platform_images`] pairs each platform image with its attestation manifests,
//! [`select_platform`] picks one, [`in_toto_layers`] lists an attestation manifest's statements.
use kibaship_oci::Digest;
use kibaship_oci::manifest::{Descriptor, ImageIndex, ImageManifest, Platform};

/// The annotation that marks an attestation manifest in an index.
pub const REFERENCE_TYPE: &str = "vnd.docker.reference.type";
/// Its value for an attestation manifest.
pub const ATTESTATION_MANIFEST: &str = "attestation-manifest";
/// The annotation naming the platform image an attestation manifest is about.
pub const REFERENCE_DIGEST: &str = "vnd.docker.reference.digest";
/// The annotation naming an attestation layer's predicate type.
pub const PREDICATE_TYPE: &str = "in-toto.io/predicate-type";
/// The media type of an in-toto statement layer.
pub const IN_TOTO_MEDIA_TYPE: &str = "application/vnd.in-toto+json";
/// Largest in-toto statement layer read from a registry: 16 MiB (an SBOM of a large image fits).
pub const MAX_STATEMENT_BYTES: u64 = 16 * 1024 * 1024;
/// Most attestation layers read from one attestation manifest.
pub const MAX_LAYERS: usize = 64;
/// Most attestation manifests read for one platform image (BuildKit writes one).
pub const MAX_ATTESTATION_MANIFESTS: usize = 16;

/// What is wrong with BuildKit's attestations in an index.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BuildkitError {
    /// The index lists no attestation manifest at all (a build without `attest:provenance`).
    #[error(
        "the index lists no attestation manifest (`{REFERENCE_TYPE}: {ATTESTATION_MANIFEST}`): built without --opt attest:provenance=...?"
    )]
    NoAttestations,
    /// An attestation manifest without a usable `vnd.docker.reference.digest`.
    #[error("attestation manifest {manifest}: annotation {REFERENCE_DIGEST} is {found}")]
    BadReference {
        /// The attestation manifest's digest.
        manifest: String,
        /// What the annotation holds (`absent`, or the value).
        found: String,
    },
    /// An attestation manifest about an image the index does not list.
    #[error(
        "attestation manifest {manifest} is about {image}, which the index does not list as an image"
    )]
    UnknownImage {
        /// The attestation manifest's digest.
        manifest: String,
        /// Its `vnd.docker.reference.digest`.
        image: String,
    },
    /// No image of the platform asked for, or several platforms and none asked for.
    #[error("{problem}; the index has {available}")]
    Platform {
        /// What did not match.
        problem: String,
        /// The platforms the index has images (with attestations) for.
        available: String,
    },
    /// An attestation layer that is not an in-toto statement BuildKit writes.
    #[error("attestation manifest {manifest}, layer {index} ({digest}): {problem}")]
    BadLayer {
        /// The attestation manifest's digest.
        manifest: String,
        /// The layer's position.
        index: usize,
        /// The layer's digest.
        digest: String,
        /// What is wrong.
        problem: String,
    },
    /// More attestation manifests about one image than are read.
    #[error(
        "the index lists {count} attestation manifests for {image}, more than the {MAX_ATTESTATION_MANIFESTS} read"
    )]
    TooManyAttestations {
        /// The platform image.
        image: String,
        /// How many.
        count: usize,
    },
    /// More layers than are read.
    #[error("attestation manifest {manifest} has {count} layers, more than the {MAX_LAYERS} read")]
    TooManyLayers {
        /// The attestation manifest's digest.
        manifest: String,
        /// How many.
        count: usize,
    },
    /// A blob (a manifest or a statement layer) the index points at is not in the registry.
    #[error("{what} {digest} is missing from the registry (the index points at it)")]
    MissingBlob {
        /// What it is (`attestation manifest`, `in-toto layer of attestation manifest sha256:...`).
        what: String,
        /// Its digest.
        digest: String,
    },
}

/// One platform image of an index and the attestation manifests about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlatformImage {
    /// The image manifest's descriptor (its `platform` as listed).
    pub manifest: Descriptor,
    /// The attestation manifests about it, in index order.
    pub attestations: Vec<Descriptor>,
}

impl PlatformImage {
    /// The platform as listed (`os/arch[/variant]`), or `unknown` when none is.
    pub fn platform(&self) -> String {
        self.manifest
            .platform
            .as_ref()
            .map_or_else(|| "unknown".to_string(), ToString::to_string)
    }
}

/// Whether a descriptor of an index is one of BuildKit's attestation manifests.
pub fn is_attestation_manifest(descriptor: &Descriptor) -> bool {
    descriptor
        .annotations
        .get(REFERENCE_TYPE)
        .map(String::as_str)
        == Some(ATTESTATION_MANIFEST)
}

/// The index's images (the descriptors that are not attestation manifests), each with its attestation manifests.
/// Images without attestations are listed too (with none). An attestation manifest whose reference is not a
/// digest, or names an image the index does not list, is an error; an index without any is
/// [`BuildkitError::NoAttestations`].
pub fn platform_images(index: &ImageIndex) -> Result<Vec<PlatformImage>, BuildkitError> {
    let mut images: Vec<PlatformImage> = index
        .manifests
        .iter()
        .filter(|d| !is_attestation_manifest(d))
        .map(|d| PlatformImage {
            manifest: d.clone(),
            attestations: Vec::new(),
        })
        .collect();
    let mut any = false;
    for att in index
        .manifests
        .iter()
        .filter(|d| is_attestation_manifest(d))
    {
        any = true;
        let manifest = att.digest.to_string();
        let reference =
            att.annotations
                .get(REFERENCE_DIGEST)
                .ok_or_else(|| BuildkitError::BadReference {
                    manifest: manifest.clone(),
                    found: "absent".into(),
                })?;
        let image = Digest::parse(reference).map_err(|_| BuildkitError::BadReference {
            manifest: manifest.clone(),
            found: format!("{reference:?}, not a digest"),
        })?;
        let owner = images
            .iter_mut()
            .find(|i| i.manifest.digest == image)
            .ok_or_else(|| BuildkitError::UnknownImage {
                manifest: manifest.clone(),
                image: image.to_string(),
            })?;
        if owner.attestations.len() == MAX_ATTESTATION_MANIFESTS {
            let count = index
                .manifests
                .iter()
                .filter(|d| d.annotations.get(REFERENCE_DIGEST) == Some(reference))
                .count();
            return Err(BuildkitError::TooManyAttestations {
                image: image.to_string(),
                count,
            });
        }
        owner.attestations.push(att.clone());
    }
    if !any {
        return Err(BuildkitError::NoAttestations);
    }
    Ok(images)
}

/// The image of `platform` among `images` (from [`platform_images`]); with no platform asked for, the only image
/// that has attestations. Only images with attestations are candidates.
pub fn select_platform<'a>(
    images: &'a [PlatformImage],
    platform: Option<&Platform>,
) -> Result<&'a PlatformImage, BuildkitError> {
    let attested: Vec<&PlatformImage> = images
        .iter()
        .filter(|i| !i.attestations.is_empty())
        .collect();
    let available = || {
        let listed: Vec<String> = attested.iter().map(|i| i.platform()).collect();
        format!("attested images for {}", listed.join(", "))
    };
    match platform {
        Some(wanted) => attested
            .iter()
            .copied()
            .find(|i| {
                i.manifest
                    .platform
                    .as_ref()
                    .is_some_and(|p| wanted.matches(p))
            })
            .ok_or_else(|| BuildkitError::Platform {
                problem: format!("no attested image for platform {wanted}"),
                available: available(),
            }),
        None => match attested.as_slice() {
            [only] => Ok(only),
            _ => Err(BuildkitError::Platform {
                problem: "several platforms: choose one with --platform".into(),
                available: available(),
            }),
        },
    }
}

/// One in-toto statement layer of an attestation manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InTotoLayer {
    /// The layer's descriptor (digest and size to fetch it by).
    pub descriptor: Descriptor,
    /// Its `in-toto.io/predicate-type` annotation.
    pub predicate_type: String,
}

/// The in-toto statement layers of the attestation manifest `manifest` (whose digest is `digest`). Every layer
/// must be `application/vnd.in-toto+json`, carry its predicate type, and be at most [`MAX_STATEMENT_BYTES`].
pub fn in_toto_layers(
    manifest: &ImageManifest,
    digest: &Digest,
) -> Result<Vec<InTotoLayer>, BuildkitError> {
    if manifest.layers.len() > MAX_LAYERS {
        return Err(BuildkitError::TooManyLayers {
            manifest: digest.to_string(),
            count: manifest.layers.len(),
        });
    }
    manifest
        .layers
        .iter()
        .enumerate()
        .map(|(index, layer)| {
            let bad = |problem: String| BuildkitError::BadLayer {
                manifest: digest.to_string(),
                index,
                digest: layer.digest.to_string(),
                problem,
            };
            if layer.media_type != IN_TOTO_MEDIA_TYPE {
                return Err(bad(format!(
                    "media type {:?} is not {IN_TOTO_MEDIA_TYPE}",
                    layer.media_type
                )));
            }
            if layer.size > MAX_STATEMENT_BYTES {
                return Err(bad(format!(
                    "{} bytes, more than the {MAX_STATEMENT_BYTES} read",
                    layer.size
                )));
            }
            let predicate_type = layer
                .annotations
                .get(PREDICATE_TYPE)
                .filter(|t| !t.is_empty())
                .ok_or_else(|| bad(format!("no {PREDICATE_TYPE} annotation")))?;
            Ok(InTotoLayer {
                descriptor: layer.clone(),
                predicate_type: predicate_type.clone(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const AMD64: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    const ARM64: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";
    const ATT: &str = "sha256:3333333333333333333333333333333333333333333333333333333333333333";
    const STATEMENT: &str =
        "sha256:4444444444444444444444444444444444444444444444444444444444444444";

    fn index(attestation_reference: &str) -> ImageIndex {
        serde_json::from_str(&format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[
              {{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{AMD64}","size":1,"platform":{{"os":"linux","architecture":"amd64"}}}},
              {{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{ARM64}","size":1,"platform":{{"os":"linux","architecture":"arm64"}}}},
              {{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{ATT}","size":1,"platform":{{"os":"unknown","architecture":"unknown"}},
               "annotations":{{"vnd.docker.reference.type":"attestation-manifest","vnd.docker.reference.digest":"{attestation_reference}"}}}}]}}"#
        ))
        .unwrap()
    }

    #[test]
    fn attestation_manifests_are_paired_with_their_platform_image() {
        let images = platform_images(&index(ARM64)).unwrap();
        assert_eq!(images.len(), 2);
        assert!(images[0].attestations.is_empty());
        assert_eq!(images[1].attestations[0].digest.to_string(), ATT);
        // The one attested image is chosen without --platform; amd64 has none.
        assert_eq!(
            select_platform(&images, None).unwrap().platform(),
            "linux/arm64"
        );
        let arm64: Platform = "linux/arm64".parse().unwrap();
        assert_eq!(
            select_platform(&images, Some(&arm64))
                .unwrap()
                .manifest
                .digest
                .to_string(),
            ARM64
        );
        let amd64: Platform = "linux/amd64".parse().unwrap();
        let err = select_platform(&images, Some(&amd64)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "no attested image for platform linux/amd64; the index has attested images for linux/arm64"
        );
    }

    #[test]
    fn bad_references_name_the_attestation_manifest() {
        let unknown = platform_images(&index(STATEMENT)).unwrap_err();
        assert_eq!(
            unknown,
            BuildkitError::UnknownImage {
                manifest: ATT.into(),
                image: STATEMENT.into()
            }
        );
        let not_digest = platform_images(&index("latest")).unwrap_err();
        assert!(
            not_digest.to_string().contains("\"latest\", not a digest"),
            "{not_digest}"
        );
        let mut none = index(ARM64);
        none.manifests.truncate(2);
        assert_eq!(
            platform_images(&none).unwrap_err(),
            BuildkitError::NoAttestations
        );
        let mut many = index(ARM64);
        let att = many.manifests[2].clone();
        many.manifests
            .extend(std::iter::repeat_n(att, MAX_ATTESTATION_MANIFESTS));
        assert_eq!(
            platform_images(&many).unwrap_err(),
            BuildkitError::TooManyAttestations {
                image: ARM64.into(),
                count: MAX_ATTESTATION_MANIFESTS + 1
            }
        );
    }

    fn manifest(layer: &str) -> ImageManifest {
        serde_json::from_str(&format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",
              "config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{AMD64}","size":1}},
              "layers":[{layer}]}}"#
        ))
        .unwrap()
    }

    #[test]
    fn in_toto_layers_are_typed_and_bounded() {
        let att = Digest::parse(ATT).unwrap();
        let good = manifest(&format!(
            r#"{{"mediaType":"application/vnd.in-toto+json","digest":"{STATEMENT}","size":10,
                "annotations":{{"in-toto.io/predicate-type":"https://slsa.dev/provenance/v1"}}}}"#
        ));
        let layers = in_toto_layers(&good, &att).unwrap();
        assert_eq!(layers[0].predicate_type, "https://slsa.dev/provenance/v1");

        let big = manifest(&format!(
            r#"{{"mediaType":"application/vnd.in-toto+json","digest":"{STATEMENT}","size":{},
                "annotations":{{"in-toto.io/predicate-type":"https://slsa.dev/provenance/v1"}}}}"#,
            MAX_STATEMENT_BYTES + 1
        ));
        let err = in_toto_layers(&big, &att).unwrap_err().to_string();
        assert!(
            err.contains(STATEMENT) && err.contains("more than the"),
            "{err}"
        );

        let untyped = manifest(&format!(
            r#"{{"mediaType":"application/vnd.in-toto+json","digest":"{STATEMENT}","size":10}}"#
        ));
        let err = in_toto_layers(&untyped, &att).unwrap_err().to_string();
        assert!(
            err.contains("no in-toto.io/predicate-type annotation"),
            "{err}"
        );

        let other = manifest(&format!(
            r#"{{"mediaType":"application/octet-stream","digest":"{STATEMENT}","size":10}}"#
        ));
        let err = in_toto_layers(&other, &att).unwrap_err().to_string();
        assert!(err.contains("application/octet-stream"), "{err}");
    }
}
