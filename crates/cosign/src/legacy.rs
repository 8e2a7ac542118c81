//! cosign's legacy layout: signatures under `sha256-<hex>.sig`, attestations under `sha256-<hex>.att`.
//!
//! The tag holds an OCI image manifest. Its config is a minimal image config listing each layer as a diff ID;
//! each layer is a signed payload (a simple-signing JSON for signatures, a DSSE envelope for attestations) and
//! carries the material needed to check it in annotations.
use std::collections::BTreeMap;

use base64::Engine as _;
use kibaship_oci::Digest;
use kibaship_oci::manifest::{Descriptor, ImageManifest, OCI_MANIFEST};
use serde::{Deserialize, Serialize};

/// Suffix of the signature tag.
pub const SIGNATURE_TAG_SUFFIX: &str = "sig";
/// Suffix of the attestation tag.
pub const ATTESTATION_TAG_SUFFIX: &str = "att";
/// Media type of the config blob cosign writes.
pub const CONFIG_MEDIA_TYPE: &str = "application/vnd.oci.image.config.v1+json";
/// Media type of a simple-signing payload layer.
pub const SIMPLE_SIGNING_MEDIA_TYPE: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
/// Media type of a DSSE envelope layer (attestations).
pub const DSSE_MEDIA_TYPE: &str = "application/vnd.dsse.envelope.v1+json";
/// Base64 signature over the payload (empty for DSSE layers, whose envelope holds the signature).
pub const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
/// PEM leaf certificate (keyless).
pub const CERTIFICATE_ANNOTATION: &str = "dev.sigstore.cosign/certificate";
/// PEM chain up to the root (keyless).
pub const CHAIN_ANNOTATION: &str = "dev.sigstore.cosign/chain";
/// Rekor bundle JSON (SET + entry), written whenever the entry went to Rekor.
pub const BUNDLE_ANNOTATION: &str = "dev.sigstore.cosign/bundle";
/// RFC 3161 timestamp JSON, when a TSA was used.
pub const RFC3161_ANNOTATION: &str = "dev.sigstore.cosign/rfc3161timestamp";
/// The in-toto predicate type of an attestation layer.
pub const PREDICATE_TYPE_ANNOTATION: &str = "predicateType";
/// `artifactType` (and config media type) of cosign's OCI 1.1 signature mode (`cosign sign
/// --registry-referrers-mode=oci-1-1`): the `.sig` manifest attached as a referrer of the image instead of tagged.
pub const OCI11_SIGNATURE_ARTIFACT_TYPE: &str = "application/vnd.dev.cosign.artifact.sig.v1+json";

/// More layers than any real signature tag holds; a manifest with more is refused before any is fetched.
pub const MAX_LAYERS: usize = 256;
/// Largest annotation value accepted (a certificate chain is a few KiB; a Rekor bundle about as much).
pub const MAX_ANNOTATION_BYTES: usize = 64 * 1024;
/// Largest payload layer fetched (simple-signing payloads are bytes; attestation envelopes can be large).
pub const MAX_PAYLOAD_BYTES: u64 = 16 * 1024 * 1024;

/// What is wrong with a signature manifest or layer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LayoutError {
    /// The manifest is not an OCI/Docker image manifest.
    #[error("signature manifest is not an image manifest: {0}")]
    NotAManifest(String),
    /// Too many layers.
    #[error("signature manifest has {0} layers, more than the {MAX_LAYERS} accepted")]
    TooManyLayers(usize),
    /// A layer of a media type that holds no payload cosign writes.
    #[error("layer {index} ({digest}) has media type `{media_type}`, expected `{expected}`")]
    UnexpectedMediaType {
        /// Layer position.
        index: usize,
        /// Layer digest.
        digest: String,
        /// What the layer says.
        media_type: String,
        /// What this tag holds.
        expected: &'static str,
    },
    /// A payload layer larger than the limit.
    #[error("layer {index} ({digest}) is {size} bytes, more than the {MAX_PAYLOAD_BYTES} accepted")]
    LayerTooLarge {
        /// Layer position.
        index: usize,
        /// Layer digest.
        digest: String,
        /// Declared size.
        size: u64,
    },
    /// An annotation value larger than the limit.
    #[error(
        "layer {index} annotation `{key}` is {len} bytes, more than the {MAX_ANNOTATION_BYTES} accepted"
    )]
    AnnotationTooLarge {
        /// Layer position.
        index: usize,
        /// Annotation key.
        key: String,
        /// Its length.
        len: usize,
    },
    /// The signature annotation is missing or not base64.
    #[error("layer {index} annotation `{SIGNATURE_ANNOTATION}` {problem}")]
    BadSignature {
        /// Layer position.
        index: usize,
        /// What is wrong.
        problem: String,
    },
    /// The Rekor bundle annotation is not the JSON cosign writes.
    #[error("layer {index} annotation `{BUNDLE_ANNOTATION}` is malformed: {problem}")]
    BadRekorBundle {
        /// Layer position.
        index: usize,
        /// What is wrong.
        problem: String,
    },
}

/// The tag cosign uses for signatures (`sig`) or attestations (`att`) of `digest`: `sha256-<hex>.<suffix>`.
pub fn tag_for(digest: &Digest, suffix: &str) -> String {
    format!("{}-{}.{suffix}", digest.algorithm().name(), digest.hex())
}

/// The Rekor bundle cosign stores in `dev.sigstore.cosign/bundle`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RekorBundle {
    /// Base64 signed entry timestamp (the log's promise to include the entry).
    #[serde(rename = "SignedEntryTimestamp")]
    pub signed_entry_timestamp: String,
    /// The entry the SET covers.
    #[serde(rename = "Payload")]
    pub payload: RekorPayload,
}

/// The part of a Rekor entry the SET signs (field names and order as Rekor canonicalises them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RekorPayload {
    /// Base64 canonicalized entry body.
    pub body: String,
    /// Unix seconds when the log integrated the entry.
    #[serde(rename = "integratedTime")]
    pub integrated_time: i64,
    /// Index in the log.
    #[serde(rename = "logIndex")]
    pub log_index: i64,
    /// Hex SHA-256 of the log's public key.
    #[serde(rename = "logID")]
    pub log_id: String,
}

/// One signature (or attestation) layer as read from a manifest: what must be fetched and how to check it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureLayer {
    /// Position in the manifest.
    pub index: usize,
    /// The payload blob's descriptor (fetch it, check its digest).
    pub descriptor: Descriptor,
    /// Decoded signature (empty for DSSE layers).
    pub signature: Vec<u8>,
    /// PEM leaf certificate, keyless only.
    pub certificate_pem: Option<String>,
    /// PEM chain, keyless only.
    pub chain_pem: Option<String>,
    /// Rekor bundle, when the entry went to a log.
    pub rekor_bundle: Option<RekorBundle>,
    /// RFC 3161 timestamp annotation, raw JSON.
    pub rfc3161_timestamp: Option<String>,
    /// Predicate type (attestation layers).
    pub predicate_type: Option<String>,
}

impl SignatureLayer {
    /// The annotations cosign writes for this layer.
    pub fn annotations(&self) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        let b64 = base64::engine::general_purpose::STANDARD;
        out.insert(
            SIGNATURE_ANNOTATION.to_string(),
            b64.encode(&self.signature),
        );
        if let Some(cert) = &self.certificate_pem {
            out.insert(CERTIFICATE_ANNOTATION.to_string(), cert.clone());
        }
        if let Some(chain) = &self.chain_pem {
            out.insert(CHAIN_ANNOTATION.to_string(), chain.clone());
        }
        if let Some(bundle) = &self.rekor_bundle {
            // Serialising a struct of strings and integers cannot fail.
            out.insert(
                BUNDLE_ANNOTATION.to_string(),
                serde_json::to_string(bundle).unwrap_or_default(),
            );
        }
        if let Some(ts) = &self.rfc3161_timestamp {
            out.insert(RFC3161_ANNOTATION.to_string(), ts.clone());
        }
        if let Some(pt) = &self.predicate_type {
            out.insert(PREDICATE_TYPE_ANNOTATION.to_string(), pt.clone());
        }
        out
    }
}

/// Which tag a manifest was read from; decides the expected layer media type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerKind {
    /// `.sig`: simple-signing payloads.
    Signature,
    /// `.att`: DSSE envelopes.
    Attestation,
}

impl LayerKind {
    fn media_type(self) -> &'static str {
        match self {
            LayerKind::Signature => SIMPLE_SIGNING_MEDIA_TYPE,
            LayerKind::Attestation => DSSE_MEDIA_TYPE,
        }
    }
}

/// Reads a `.sig` or `.att` manifest into its layers, checking bounds before anything is fetched.
pub fn read_manifest(bytes: &[u8], kind: LayerKind) -> Result<Vec<SignatureLayer>, LayoutError> {
    let manifest: ImageManifest =
        serde_json::from_slice(bytes).map_err(|e| LayoutError::NotAManifest(e.to_string()))?;
    if manifest.layers.len() > MAX_LAYERS {
        return Err(LayoutError::TooManyLayers(manifest.layers.len()));
    }
    manifest
        .layers
        .into_iter()
        .enumerate()
        .map(|(index, descriptor)| read_layer(index, descriptor, kind))
        .collect()
}

fn read_layer(
    index: usize,
    descriptor: Descriptor,
    kind: LayerKind,
) -> Result<SignatureLayer, LayoutError> {
    if descriptor.media_type != kind.media_type() {
        return Err(LayoutError::UnexpectedMediaType {
            index,
            digest: descriptor.digest.to_string(),
            media_type: descriptor.media_type.clone(),
            expected: kind.media_type(),
        });
    }
    if descriptor.size > MAX_PAYLOAD_BYTES {
        return Err(LayoutError::LayerTooLarge {
            index,
            digest: descriptor.digest.to_string(),
            size: descriptor.size,
        });
    }
    for (key, value) in &descriptor.annotations {
        if value.len() > MAX_ANNOTATION_BYTES {
            return Err(LayoutError::AnnotationTooLarge {
                index,
                key: key.clone(),
                len: value.len(),
            });
        }
    }
    let annotation = |key: &str| descriptor.annotations.get(key).cloned();
    let signature = match (kind, annotation(SIGNATURE_ANNOTATION)) {
        (_, Some(b64)) => base64::engine::general_purpose::STANDARD
            .decode(b64.trim())
            .map_err(|e| LayoutError::BadSignature {
                index,
                problem: format!("is not base64: {e}"),
            })?,
        (LayerKind::Attestation, None) => Vec::new(),
        (LayerKind::Signature, None) => {
            return Err(LayoutError::BadSignature {
                index,
                problem: "is missing".into(),
            });
        }
    };
    if kind == LayerKind::Signature && signature.is_empty() {
        return Err(LayoutError::BadSignature {
            index,
            problem: "is empty".into(),
        });
    }
    let rekor_bundle = annotation(BUNDLE_ANNOTATION)
        .map(|json| {
            serde_json::from_str::<RekorBundle>(&json).map_err(|e| LayoutError::BadRekorBundle {
                index,
                problem: e.to_string(),
            })
        })
        .transpose()?;
    Ok(SignatureLayer {
        index,
        signature,
        certificate_pem: annotation(CERTIFICATE_ANNOTATION),
        chain_pem: annotation(CHAIN_ANNOTATION),
        rekor_bundle,
        rfc3161_timestamp: annotation(RFC3161_ANNOTATION),
        predicate_type: annotation(PREDICATE_TYPE_ANNOTATION),
        descriptor,
    })
}

/// A signature manifest ready to push: the config blob and the manifest bytes.
#[derive(Debug, Clone)]
pub struct SignatureManifest {
    /// Config blob (push before the manifest).
    pub config: Vec<u8>,
    /// Manifest bytes (OCI image manifest).
    pub manifest: Vec<u8>,
}

/// Builds the manifest cosign's OCI 1.1 signature mode writes for `layers`: the `.sig` manifest of
/// [`build_manifest`] (the same config blob) whose config media type and `artifactType` are
/// [`OCI11_SIGNATURE_ARTIFACT_TYPE`] and whose `subject` is the signed image; pushed by digest, never tagged.
pub fn build_referrer_manifest(layers: &[Descriptor], subject: Descriptor) -> SignatureManifest {
    let SignatureManifest { config, .. } = build_manifest(layers);
    let config_descriptor = Descriptor::of(OCI11_SIGNATURE_ARTIFACT_TYPE, &config);
    let manifest = ImageManifest {
        schema_version: 2,
        media_type: Some(OCI_MANIFEST.to_string()),
        artifact_type: Some(OCI11_SIGNATURE_ARTIFACT_TYPE.to_string()),
        config: config_descriptor,
        layers: layers.to_vec(),
        subject: Some(subject),
        annotations: BTreeMap::new(),
    };
    let manifest = serde_json::to_vec(&manifest).unwrap_or_default();
    SignatureManifest { config, manifest }
}

/// Builds the manifest cosign would write for `layers` (each already carrying its annotations), with the
/// minimal image config go-containerregistry produces (one diff ID per layer).
pub fn build_manifest(layers: &[Descriptor]) -> SignatureManifest {
    let diff_ids: Vec<String> = layers.iter().map(|l| l.digest.to_string()).collect();
    let config = serde_json::json!({
        "architecture": "",
        "created": "0001-01-01T00:00:00Z",
        "history": [{"created": "0001-01-01T00:00:00Z"}],
        "os": "",
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "config": {},
    });
    // serde_json::Value serialises object keys sorted; go-containerregistry's struct order differs, which
    // changes only the config digest, never what verifiers read.
    let config = serde_json::to_vec(&config).unwrap_or_default();
    let manifest = ImageManifest {
        schema_version: 2,
        media_type: Some(OCI_MANIFEST.to_string()),
        artifact_type: None,
        config: Descriptor::of(CONFIG_MEDIA_TYPE, &config),
        layers: layers.to_vec(),
        subject: None,
        annotations: BTreeMap::new(),
    };
    let manifest = serde_json::to_vec(&manifest).unwrap_or_default();
    SignatureManifest { config, manifest }
}

/// Appends `new` to `existing` layers unless a layer with the same payload digest and annotations is there
/// already: re-signing never drops a signature and never duplicates one.
pub fn append_layer(existing: &[Descriptor], new: Descriptor) -> Vec<Descriptor> {
    let mut layers = existing.to_vec();
    if !layers
        .iter()
        .any(|l| l.digest == new.digest && l.annotations == new.annotations)
    {
        layers.push(new);
    }
    layers
}

/// Hex-decodes a Rekor log ID (as the bundle annotation stores it) to the key ID bytes bundles carry.
pub fn log_id_bytes(log_id_hex: &str) -> Result<Vec<u8>, hex::FromHexError> {
    hex::decode(log_id_hex)
}
