//! Signing images and verifying their signatures in a registry, over `kibaship-oci`'s [`RegistryClient`].
//!
//! Signing resolves the reference to a digest first, so a tag that moves later never changes what was signed.
//! Verification reads every signature the image has and reports each one: which passed, and why the others
//! did not. An image is verified when at least one signature passes (as with cosign).
use std::collections::BTreeMap;

use kibaship_oci::manifest::{Descriptor, ImageManifest, OCI_MANIFEST};
use kibaship_oci::{Artifact, Digest, Reference, ReferrersSource, RegistryClient};
use kibaship_sign::{SigningKey, SimpleSigningPayload};
use kibaship_sigstore::{
    ArtifactPolicy, Bundle, Certificate, CertificateIdentity, GithubClaims, HashAlgorithm,
    IdentityPolicy, Matcher, Verifier,
};
use serde::Serialize;

use crate::bundle_layout::{self, BUNDLE_MEDIA_TYPE_PREFIX, BUNDLE_V03_MEDIA_TYPE};
use crate::check::{
    self, Accepted, BundleKind, Hint, IdentityMismatch, ReasonCode, Rejected, Subject,
    VerifyOptions,
};
use crate::key_log::{KeyLogError, KeyTransparencyLog, LoggedEntry};
use crate::keyless::{KeylessError, KeylessSigner, LegacyKeylessSignature};
use crate::legacy::{
    self, ATTESTATION_TAG_SUFFIX, LayerKind, MAX_LAYERS, OCI11_SIGNATURE_ARTIFACT_TYPE,
    SIGNATURE_TAG_SUFFIX, SignatureLayer,
};
use crate::predicate::{PredicateChecks, PredicateFailure};
use crate::referrer_selection::{self, ReferrerLimitHit};

/// Why signing or verification could not run at all (as opposed to a signature that did not verify).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CosignError {
    /// A registry request failed.
    #[error("{what}: {source}")]
    Registry {
        /// What was being done.
        what: String,
        /// The client's error.
        #[source]
        source: kibaship_oci::Error,
    },
    /// The image to verify is not in the registry (its tag or digest is unknown there).
    #[error("resolving {reference}: {source}")]
    ImageNotFound {
        /// The image as given.
        reference: String,
        /// The registry's not-found answer.
        #[source]
        source: kibaship_oci::Error,
    },
    /// A reference could not be formed.
    #[error(transparent)]
    Reference(#[from] kibaship_oci::ReferenceError),
    /// The key could not sign.
    #[error("signing: {0}")]
    Key(#[from] kibaship_sign::KeyError),
    /// The payload could not be built.
    #[error(transparent)]
    Payload(#[from] kibaship_sign::PayloadError),
    /// The clock is unusable for the `created` annotation.
    #[error("cannot format the current time: {0}")]
    Clock(String),
    /// The signature just made (keyless, or a key's logged one) does not verify against the trusted root given
    /// (nothing was uploaded).
    #[error(
        "the new signature does not verify against the trusted root, so it was not uploaded: {0}"
    )]
    SelfCheck(String),
    /// Keyless signing failed (Fulcio, Rekor, TSA or the identity token).
    #[error("keyless signing: {0}")]
    Keyless(#[from] KeylessError),
    /// A key signature could not be entered in the transparency log (nothing was pushed).
    #[error("transparency log: {0}")]
    KeyLog(#[from] KeyLogError),
    /// Attestations asked for in cosign's OCI 1.1 signature mode, which cosign has for signatures only.
    #[error(
        "cosign's OCI 1.1 mode (oci-1-1) writes signatures only; write attestations in the legacy or bundle layout"
    )]
    NoOci11Attestations,
    /// The existing signature manifest cannot be appended to without losing what is there.
    #[error("existing signature manifest {tag}: {problem}; refusing to overwrite it")]
    ExistingManifest {
        /// The `.sig` tag.
        tag: String,
        /// What is wrong with it.
        problem: String,
    },
}

/// Resolves `reference` (a tag or a digest) to the digest everything is signed or verified against, and the
/// reference pinned to it.
pub(crate) async fn pin_to_digest(
    client: &RegistryClient,
    reference: &Reference,
) -> Result<(Digest, Reference), CosignError> {
    let resolved = client
        .resolve_digest(reference, None)
        .await
        .map_err(registry_error(format!("resolving {reference}")))?;
    let image = reference.with_digest(resolved.digest.clone());
    Ok((resolved.digest, image))
}

/// The simple-signing payload cosign signs for `digest` in the legacy layout (`docker-reference` = the repository
/// as go-containerregistry names it).
fn legacy_payload(
    reference: &Reference,
    digest: &Digest,
    annotations: BTreeMap<String, String>,
) -> Result<Vec<u8>, kibaship_sign::PayloadError> {
    Ok(SimpleSigningPayload::new(
        &reference.ggcr_repository(),
        &digest.to_string(),
        annotations,
    )?
    .to_bytes())
}

impl CosignError {
    /// The reason code of an error that stopped a verification: `image-not-found`, `registry-denied`,
    /// `timeout` or `registry-unreachable`; `None` for errors that are not about the image (signing, keys,
    /// configuration).
    pub fn code(&self) -> Option<ReasonCode> {
        match self {
            CosignError::ImageNotFound { .. } => Some(ReasonCode::ImageNotFound),
            CosignError::Registry { source, .. } if source.is_timeout() => {
                Some(ReasonCode::Timeout)
            }
            CosignError::Registry {
                source: kibaship_oci::Error::Unauthorized { .. },
                ..
            } => Some(ReasonCode::RegistryDenied),
            CosignError::Registry { .. } => Some(ReasonCode::RegistryUnreachable),
            _ => None,
        }
    }
}

fn registry_error(what: impl Into<String>) -> impl FnOnce(kibaship_oci::Error) -> CosignError {
    let what = what.into();
    move |source| CosignError::Registry { what, source }
}

/// What `sign_legacy` wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SignedImage {
    /// The image signed, `registry/repo@sha256:...`.
    pub image: String,
    /// The digest signed.
    pub digest: String,
    /// The signature tag, `registry/repo:sha256-<hex>.sig`; in cosign's OCI 1.1 mode
    /// ([`LegacyStore::Referrer`]) the referrer manifest, `registry/repo@sha256:...`.
    pub signature_tag: String,
    /// Digest of the signature manifest now under that tag.
    pub signature_manifest: String,
    /// Digest of the simple-signing payload layer added.
    pub payload: String,
    /// Signatures in the manifest now (existing ones are kept).
    pub signatures: usize,
    /// OCI 1.1 mode: how the referrer is discoverable (the referrers API or the fallback tag).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub via: Option<ReferrersSource>,
    /// A key signature entered in a transparency log: the entry ([`sign_legacy_logged`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transparency_log: Option<LoggedEntry>,
}

/// Where a legacy signature manifest is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LegacyStore {
    /// Under the `sha256-<hex>.sig` (`.att`) tag.
    #[default]
    Tag,
    /// cosign's OCI 1.1 signature mode (`cosign sign --new-bundle-format=false
    /// --registry-referrers-mode=oci-1-1`): the same manifest (the new layer appended to those of the `.sig`
    /// tag, as cosign does) with config media type and `artifactType`
    /// `application/vnd.dev.cosign.artifact.sig.v1+json` and `subject` = the image, pushed by digest as a
    /// referrer (the referrers API, else the fallback tag). Signatures only: cosign has no such mode for
    /// attestations.
    Referrer,
}

/// Signs `reference` with `key` in cosign's legacy layout: resolve the tag to a digest, sign the simple-signing
/// payload for it (`docker-reference` = the repository as cosign names it, `optional` = `annotations`), push the
/// payload, the config and the manifest under `sha256-<hex>.sig`, keeping every signature already there.
///
/// No transparency-log entry is made (as `cosign sign --tlog-upload=false`); verifiers need
/// `--insecure-ignore-tlog`.
///
/// With `signature_repository` (cosign's `COSIGN_REPOSITORY`), the `.sig` tag and its blobs go to that
/// repository instead of the image's; so do the bundle referrers of [`sign_bundle`] and the keyless signers.
pub async fn sign_legacy(
    client: &RegistryClient,
    reference: &Reference,
    signature_repository: Option<&Reference>,
    key: &SigningKey,
    annotations: BTreeMap<String, String>,
) -> Result<SignedImage, CosignError> {
    sign_legacy_in(
        client,
        reference,
        signature_repository,
        key,
        annotations,
        LegacyStore::Tag,
    )
    .await
}

/// [`sign_legacy`], writing the manifest where `legacy_store` says.
pub(crate) async fn sign_legacy_in(
    client: &RegistryClient,
    reference: &Reference,
    signature_repository: Option<&Reference>,
    key: &SigningKey,
    annotations: BTreeMap<String, String>,
    legacy_store: LegacyStore,
) -> Result<SignedImage, CosignError> {
    let (digest, image) = pin_to_digest(client, reference).await?;
    let payload = legacy_payload(reference, &digest, annotations)?;
    let material = key_signature_layer(&payload, key.sign(&payload)?, None);
    let store = signature_repository.unwrap_or(reference);
    push_legacy_layer(
        client,
        store,
        LayerKind::Signature,
        (&digest, &image),
        &payload,
        &material,
        legacy_store,
    )
    .await
}

/// The `.sig` layer of a key signature over a simple-signing `payload`, with the Rekor bundle when logged.
fn key_signature_layer(
    payload: &[u8],
    signature: Vec<u8>,
    rekor_bundle: Option<legacy::RekorBundle>,
) -> SignatureLayer {
    SignatureLayer {
        index: 0,
        descriptor: Descriptor::of(legacy::SIMPLE_SIGNING_MEDIA_TYPE, payload),
        signature,
        certificate_pem: None,
        chain_pem: None,
        rekor_bundle,
        rfc3161_timestamp: None,
        predicate_type: None,
    }
}

/// The tag suffix (`sig`, `att`) and layer media type (simple signing, DSSE) of a legacy layer of `kind`.
fn legacy_tag_and_media_type(kind: LayerKind) -> (&'static str, &'static str) {
    match kind {
        LayerKind::Signature => (SIGNATURE_TAG_SUFFIX, legacy::SIMPLE_SIGNING_MEDIA_TYPE),
        LayerKind::Attestation => (ATTESTATION_TAG_SUFFIX, legacy::DSSE_MEDIA_TYPE),
    }
}

/// Pushes `payload` as a new layer of the `.sig` (signature) or `.att` (attestation) manifest of `digest` in the
/// repository of `store` (the image's, or the one `COSIGN_REPOSITORY` names), with the annotations of `material`
/// (signature, certificate, chain, Rekor bundle, predicate type), keeping every layer already there: payload
/// blob, config, then the manifest, under the tag or, with [`LegacyStore::Referrer`], as a referrer of `image`.
pub(crate) async fn push_legacy_layer(
    client: &RegistryClient,
    store: &Reference,
    kind: LayerKind,
    (digest, image): (&Digest, &Reference),
    payload: &[u8],
    material: &SignatureLayer,
    legacy_store: LegacyStore,
) -> Result<SignedImage, CosignError> {
    let (suffix, media_type) = legacy_tag_and_media_type(kind);
    let noun = match kind {
        LayerKind::Signature => "signature",
        LayerKind::Attestation => "attestation",
    };
    let tag = legacy::tag_for(digest, suffix);
    let tag_ref = store.with_tag(&tag)?;
    let existing = existing_layers(client, &tag_ref).await?;

    let payload_digest = client
        .push_blob(store, payload)
        .await
        .map_err(registry_error(format!(
            "pushing the {noun} payload to {}",
            store.name()
        )))?;
    let mut layer = Descriptor::of(media_type, payload);
    layer.digest = payload_digest.clone();
    layer.annotations = material.annotations();
    let layers = legacy::append_layer(&existing, layer);
    let built = match legacy_store {
        LegacyStore::Tag => legacy::build_manifest(&layers),
        LegacyStore::Referrer => {
            let subject = client
                .subject_descriptor(image)
                .await
                .map_err(registry_error(format!("reading {image}")))?;
            legacy::build_referrer_manifest(&layers, subject)
        }
    };
    client
        .push_blob(store, &built.config)
        .await
        .map_err(registry_error(format!(
            "pushing the {noun} config to {}",
            store.name()
        )))?;
    let (location, via) = match legacy_store {
        LegacyStore::Tag => {
            client
                .push_manifest(&tag_ref, &built.manifest, OCI_MANIFEST)
                .await
                .map_err(registry_error(format!("pushing {tag_ref}")))?;
            (tag_ref, None)
        }
        LegacyStore::Referrer => {
            let target = store.with_digest(digest.clone());
            let (referrer, via) = push_referrer(
                client,
                &target,
                digest,
                &built.manifest,
                OCI11_SIGNATURE_ARTIFACT_TYPE,
                &BTreeMap::new(),
            )
            .await
            .map_err(registry_error(format!(
                "attaching the {noun} manifest to {image} in {}",
                store.name()
            )))?;
            (referrer, Some(via))
        }
    };
    Ok(SignedImage {
        image: image.to_string(),
        digest: digest.to_string(),
        signature_tag: location.to_string(),
        signature_manifest: Digest::sha256_of(&built.manifest).to_string(),
        payload: payload_digest.to_string(),
        signatures: layers.len(),
        via,
        transparency_log: None,
    })
}

/// Signs `reference` with `key` in cosign's legacy layout, as [`sign_legacy_in`], and enters the signature in
/// Rekor v1 first (`hashedrekord` v0.0.1, the public key as signer), as `cosign sign --key
/// --new-bundle-format=false` does with a Rekor v1 log: the layer's `dev.sigstore.cosign/bundle` annotation
/// carries the entry and its SET, so verifiers need no `--insecure-ignore-tlog`.
///
/// With `check`, the layer is first verified with the key against that trusted root (the SET against the log's
/// key), and nothing is pushed if it fails.
pub async fn sign_legacy_logged(
    client: &RegistryClient,
    reference: &Reference,
    signature_repository: Option<&Reference>,
    (key, log): (&SigningKey, &KeyTransparencyLog),
    annotations: BTreeMap<String, String>,
    check: Option<&Verifier>,
    legacy_store: LegacyStore,
) -> Result<SignedImage, CosignError> {
    let (digest, image) = pin_to_digest(client, reference).await?;
    let payload = legacy_payload(reference, &digest, annotations)?;
    let signature = key.sign(&payload)?;
    let entry = log.log_message_rekor_v1(key, &payload, &signature).await?;
    let material = key_signature_layer(&payload, signature, Some(entry.rekor_bundle()));
    if let Some(verifier) = check {
        let checked = check::SignedContent::Message {
            payload: &payload,
            signature: &material.signature,
        };
        self_check_logged_layer(verifier, key, &material, &entry, &checked, &digest)
            .map_err(CosignError::SelfCheck)?;
    }
    let store = signature_repository.unwrap_or(reference);
    let mut signed = push_legacy_layer(
        client,
        store,
        LayerKind::Signature,
        (&digest, &image),
        &payload,
        &material,
        legacy_store,
    )
    .await?;
    signed.transparency_log = Some(log.logged_v1(&entry));
    Ok(signed)
}

/// Signs `reference` with `key` in cosign v3's layout, as [`sign_bundle`], with the signature entered in Rekor
/// v2 and timestamped by the TSA ([`KeyTransparencyLog::sign_dsse_rekor_v2`]): the bundle carries the key's
/// hint, the log entry and the timestamp. With `check`, the bundle is first verified with the key against that
/// trusted root, and nothing is attached if it fails.
pub async fn sign_bundle_logged(
    client: &RegistryClient,
    reference: &Reference,
    signature_repository: Option<&Reference>,
    (key, log): (&SigningKey, &KeyTransparencyLog),
    annotations: BTreeMap<String, String>,
    check: Option<&Verifier>,
) -> Result<SignedBundle, CosignError> {
    let (digest, image) = pin_to_digest(client, reference).await?;
    let statement = bundle_layout::signing_statement(&digest, &annotations);
    let (bundle, entry) = log.sign_dsse_rekor_v2(key, &statement).await?;
    if let Some(verifier) = check {
        self_check_logged_bundle(verifier, key, &bundle, &digest)
            .map_err(CosignError::SelfCheck)?;
    }
    let mut signed = attach_bundle(
        client,
        &image,
        signature_repository,
        &digest,
        bundle,
        bundle_layout::COSIGN_SIGN_PREDICATE_TYPE,
    )
    .await?;
    signed.transparency_log = Some(entry);
    Ok(signed)
}

/// Verifies a legacy layer just signed with `key` and logged in Rekor v1 (`entry`) against the trusted root
/// before upload: the layer as the bundle v0.1 verification converts it to, `content` being what it signs.
pub(crate) fn self_check_logged_layer(
    verifier: &Verifier,
    key: &SigningKey,
    material: &SignatureLayer,
    entry: &crate::rekor_v1::LogEntry,
    content: &check::SignedContent<'_>,
    digest: &Digest,
) -> Result<(), String> {
    let rekor = entry.rekor_bundle();
    let json = check::legacy_bundle_json(material, &rekor, content).map_err(|e| e.to_string())?;
    let bundle = Bundle::from_json(&json).map_err(|e| e.to_string())?;
    let digest_bytes =
        hex::decode(digest.hex()).map_err(|e| format!("image digest is not hex: {e}"))?;
    let artifact = match content {
        check::SignedContent::Message { payload, .. } => ArtifactPolicy::Bytes(payload),
        check::SignedContent::Dsse { .. } => ArtifactPolicy::Digest {
            algorithm: HashAlgorithm::Sha256,
            digest: &digest_bytes,
        },
    };
    self_check_key(verifier, key, &bundle, artifact)
}

/// Verifies a bundle (its DSSE statement about `digest`) just signed with `key` and logged against the trusted
/// root before upload.
pub(crate) fn self_check_logged_bundle(
    verifier: &Verifier,
    key: &SigningKey,
    bundle: &[u8],
    digest: &Digest,
) -> Result<(), String> {
    let parsed = Bundle::from_json(bundle).map_err(|e| e.to_string())?;
    let digest_bytes =
        hex::decode(digest.hex()).map_err(|e| format!("image digest is not hex: {e}"))?;
    self_check_key(
        verifier,
        key,
        &parsed,
        ArtifactPolicy::Digest {
            algorithm: HashAlgorithm::Sha256,
            digest: &digest_bytes,
        },
    )
}

/// Verifies a logged key signature just made with `key`'s public key against the trusted root before upload.
pub(crate) fn self_check_key(
    verifier: &Verifier,
    key: &SigningKey,
    bundle: &Bundle,
    artifact: ArtifactPolicy<'_>,
) -> Result<(), String> {
    let spki = key
        .public_key_der()
        .map_err(|e| format!("the public key: {e}"))?;
    let public = kibaship_sigstore::PublicKey::from_spki(&spki, false)
        .map_err(|e| format!("the public key: {e}"))?;
    verifier
        .verify(bundle, artifact, &IdentityPolicy::Key(public))
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// What `sign_legacy_keyless` wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LegacyKeylessSigned {
    /// The image, digest, `.sig` tag and layer.
    #[serde(flatten)]
    pub signed: SignedImage,
    /// The certificate's subject alternative name (what verifiers give as `--certificate-identity`).
    pub certificate_identity: String,
    /// The certificate's OIDC issuer (`--certificate-oidc-issuer`).
    pub certificate_oidc_issuer: String,
    /// The Rekor v1 entry's UUID.
    pub rekor_uuid: String,
    /// Its index in the log.
    pub log_index: i64,
    /// When the log integrated it (Unix seconds; the SET signs it).
    pub integrated_time: i64,
    /// Whether the layer was verified against a trusted root before it was uploaded.
    pub checked_against_trusted_root: bool,
}

/// Signs `reference` keyless in cosign's legacy layout, as `cosign sign --new-bundle-format=false` does: the
/// simple-signing payload for the digest, signed by an ephemeral key with a Fulcio certificate and logged in
/// Rekor v1 (`hashedrekord` v0.0.1); the layer carries the signature, the certificate, the chain and the Rekor
/// bundle (SET + entry) in its annotations, appended to the image's `sha256-<hex>.sig` manifest.
///
/// With `check`, the layer is first verified (certificate chain, SCT, SET, the payload) against that trusted
/// root, and nothing is pushed if it fails.
pub async fn sign_legacy_keyless(
    client: &RegistryClient,
    reference: &Reference,
    signature_repository: Option<&Reference>,
    signer: &KeylessSigner,
    annotations: BTreeMap<String, String>,
    check: Option<&Verifier>,
) -> Result<LegacyKeylessSigned, CosignError> {
    sign_legacy_keyless_in(
        client,
        reference,
        signature_repository,
        signer,
        annotations,
        check,
        LegacyStore::Tag,
    )
    .await
}

/// [`sign_legacy_keyless`], writing the manifest where `legacy_store` says.
pub(crate) async fn sign_legacy_keyless_in(
    client: &RegistryClient,
    reference: &Reference,
    signature_repository: Option<&Reference>,
    signer: &KeylessSigner,
    annotations: BTreeMap<String, String>,
    check: Option<&Verifier>,
    legacy_store: LegacyStore,
) -> Result<LegacyKeylessSigned, CosignError> {
    let (digest, image) = pin_to_digest(client, reference).await?;
    let payload = legacy_payload(reference, &digest, annotations)?;
    let signed = signer.sign_message_rekor_v1(&payload).await?;
    let store = signature_repository.unwrap_or(reference);
    push_keyless_legacy_layer(
        client,
        store,
        (&digest, &image),
        LegacyKeylessContent::Signature { payload: &payload },
        signed,
        check,
        legacy_store,
    )
    .await
}

/// What a keyless legacy layer holds.
pub(crate) enum LegacyKeylessContent<'a> {
    /// A simple-signing payload (`.sig`), the signature over its bytes.
    Signature {
        /// The payload.
        payload: &'a [u8],
    },
    /// A DSSE envelope over an in-toto statement (`.att`), the signature over its PAE.
    Attestation {
        /// The envelope JSON (the layer's content).
        envelope: &'a [u8],
        /// The statement the envelope carries.
        statement: &'a [u8],
        /// Its predicate type (the layer's `predicateType` annotation).
        predicate_type: &'a str,
    },
}

/// Pushes a keyless layer logged in Rekor v1 (`signed`: signature, certificate, chain, Rekor entry with its SET)
/// to the `.sig` or `.att` manifest of `digest` in the repository of `store` (tagged, or as a referrer, as
/// `legacy_store` says), after verifying it against `check` when given (nothing is pushed if that fails).
pub(crate) async fn push_keyless_legacy_layer(
    client: &RegistryClient,
    store: &Reference,
    (digest, image): (&Digest, &Reference),
    content: LegacyKeylessContent<'_>,
    signed: LegacyKeylessSignature,
    check: Option<&Verifier>,
    legacy_store: LegacyStore,
) -> Result<LegacyKeylessSigned, CosignError> {
    let (certificate_identity, certificate_oidc_issuer) =
        certificate_identity(&signed.certificate).map_err(unusable_certificate)?;
    let (kind, layer_bytes, annotated_signature, predicate_type) = match &content {
        LegacyKeylessContent::Signature { payload } => (
            LayerKind::Signature,
            *payload,
            signed.signature.clone(),
            None,
        ),
        // cosign leaves the signature annotation of a DSSE layer empty: the envelope holds the signature.
        LegacyKeylessContent::Attestation {
            envelope,
            predicate_type,
            ..
        } => (
            LayerKind::Attestation,
            *envelope,
            Vec::new(),
            Some((*predicate_type).to_string()),
        ),
    };
    let material = SignatureLayer {
        index: 0,
        descriptor: Descriptor::of(legacy_tag_and_media_type(kind).1, layer_bytes),
        signature: annotated_signature,
        certificate_pem: Some(signed.certificate_pem.clone()),
        chain_pem: Some(signed.chain_pem.clone()),
        rekor_bundle: Some(signed.entry.rekor_bundle()),
        rfc3161_timestamp: None,
        predicate_type,
    };
    if let Some(verifier) = check {
        let digest_bytes = hex::decode(digest.hex())
            .map_err(|e| CosignError::SelfCheck(format!("image digest is not hex: {e}")))?;
        let (checked, artifact) = match &content {
            LegacyKeylessContent::Signature { payload } => (
                check::SignedContent::Message {
                    payload,
                    signature: &signed.signature,
                },
                ArtifactPolicy::Bytes(payload),
            ),
            LegacyKeylessContent::Attestation { statement, .. } => (
                check::SignedContent::Dsse {
                    payload_type: check::IN_TOTO_PAYLOAD_TYPE,
                    payload: statement,
                    signature: &signed.signature,
                    image_digest: digest,
                },
                ArtifactPolicy::Digest {
                    algorithm: HashAlgorithm::Sha256,
                    digest: &digest_bytes,
                },
            ),
        };
        let rekor = signed.entry.rekor_bundle();
        let json = check::legacy_bundle_json(&material, &rekor, &checked)
            .map_err(|e| CosignError::SelfCheck(e.to_string()))?;
        let bundle = Bundle::from_json(&json).map_err(|e| CosignError::SelfCheck(e.to_string()))?;
        self_check(verifier, &bundle, artifact).map_err(CosignError::SelfCheck)?;
    }
    let pushed = push_legacy_layer(
        client,
        store,
        kind,
        (digest, image),
        layer_bytes,
        &material,
        legacy_store,
    )
    .await?;
    Ok(LegacyKeylessSigned {
        signed: pushed,
        certificate_identity,
        certificate_oidc_issuer,
        rekor_uuid: signed.entry.uuid,
        log_index: signed.entry.log_index,
        integrated_time: signed.entry.integrated_time,
        checked_against_trusted_root: check.is_some(),
    })
}

/// Verifies a keyless signature just made against the trusted root, for any identity, before it is uploaded;
/// the error says why it does not verify.
pub(crate) fn self_check(
    verifier: &Verifier,
    bundle: &Bundle,
    artifact: ArtifactPolicy<'_>,
) -> Result<(), String> {
    verifier
        .verify(bundle, artifact, &any_identity()?)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// Any certificate identity: the self-check before upload verifies everything but who signed.
fn any_identity() -> Result<IdentityPolicy, String> {
    let any = Matcher::regex("").map_err(|e| e.to_string())?;
    Ok(IdentityPolicy::Certificate(CertificateIdentity {
        issuer: any.clone(),
        san: any,
        github: GithubClaims::default(),
    }))
}

/// The subject alternative name and OIDC issuer of a Fulcio certificate (DER); the error says why it does not
/// parse.
fn certificate_identity(der: &[u8]) -> Result<(String, String), String> {
    let certificate = Certificate::from_der(der)
        .map_err(|e| format!("the leaf certificate does not parse: {e}"))?;
    let identity = certificate
        .sans
        .first()
        .map(|s| s.value().to_string())
        .unwrap_or_default();
    let issuer = certificate
        .oidc_issuer()
        .and_then(Result::ok)
        .unwrap_or_default();
    Ok((identity, issuer))
}

/// A [`certificate_identity`] failure, as Fulcio's bad answer.
fn unusable_certificate(reason: String) -> CosignError {
    CosignError::Keyless(KeylessError::Response {
        service: "Fulcio",
        reason,
    })
}

/// The layers of the manifest under `tag_ref`, empty when there is none; a manifest that cannot be read or holds
/// too many layers is an error rather than something to overwrite.
async fn existing_layers(
    client: &RegistryClient,
    tag_ref: &Reference,
) -> Result<Vec<Descriptor>, CosignError> {
    let Some(manifest) = client
        .fetch_manifest_if_exists(tag_ref)
        .await
        .map_err(registry_error(format!("reading {tag_ref}")))?
    else {
        return Ok(Vec::new());
    };
    let parsed: ImageManifest =
        serde_json::from_slice(&manifest.bytes).map_err(|e| CosignError::ExistingManifest {
            tag: tag_ref.to_string(),
            problem: format!("not an image manifest: {e}"),
        })?;
    if parsed.layers.len() >= MAX_LAYERS {
        return Err(CosignError::ExistingManifest {
            tag: tag_ref.to_string(),
            problem: format!(
                "it already holds {} layers, the most accepted is {MAX_LAYERS}",
                parsed.layers.len()
            ),
        });
    }
    Ok(parsed.layers)
}

/// Signature referrers (Sigstore bundles, cosign's OCI 1.1 signatures) checked at most per image and kind
/// (signatures, attestations) by default; [`crate::ImageVerifier::with_max_referrers_checked`] changes it. When an
/// image has more, the ones checked are chosen by what their descriptors declare, not by the registry's order
/// ([`crate::referrer_selection`]), and the report says the bound was hit ([`ImageReport::referrer_limit_hit`]).
pub const MAX_REFERRERS_CHECKED: usize = 64;

/// What `sign_bundle` wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SignedBundle {
    /// The image signed, `registry/repo@sha256:...`.
    pub image: String,
    /// The digest signed.
    pub digest: String,
    /// The referrer manifest holding the bundle, `registry/repo@sha256:...`.
    pub referrer: String,
    /// How it is discoverable: the registry's referrers API or the fallback tag.
    pub via: ReferrersSource,
    /// A key signature entered in a transparency log: the entry ([`sign_bundle_logged`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transparency_log: Option<LoggedEntry>,
}

/// Signs `reference` with `key` in cosign v3's layout: a DSSE envelope over an in-toto statement (predicate type
/// `https://sigstore.dev/cosign/sign/v1`, `annotations` on the subject) in a Sigstore bundle v0.3 without
/// transparency-log entries, attached as an OCI referrer of the image (referrers API, else the fallback tag, whose
/// existing entries are kept).
pub async fn sign_bundle(
    client: &RegistryClient,
    reference: &Reference,
    signature_repository: Option<&Reference>,
    key: &SigningKey,
    annotations: BTreeMap<String, String>,
) -> Result<SignedBundle, CosignError> {
    let (digest, image) = pin_to_digest(client, reference).await?;
    let statement = bundle_layout::signing_statement(&digest, &annotations);
    let bundle = bundle_layout::key_signed_bundle(key, &statement)?;
    attach_bundle(
        client,
        &image,
        signature_repository,
        &digest,
        bundle,
        bundle_layout::COSIGN_SIGN_PREDICATE_TYPE,
    )
    .await
}

/// What `sign_bundle_keyless` wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KeylessSigned {
    /// The image, digest and referrer.
    #[serde(flatten)]
    pub bundle: SignedBundle,
    /// The certificate's subject alternative name (what verifiers give as `--certificate-identity`).
    pub certificate_identity: String,
    /// The certificate's OIDC issuer (`--certificate-oidc-issuer`).
    pub certificate_oidc_issuer: String,
    /// Index of the Rekor entry.
    pub log_index: String,
    /// The Rekor major API version of the entry: 2, or 1 when the signing config offered only a Rekor v1 log.
    pub rekor_version: u8,
    /// Whether the bundle was verified against a trusted root before it was uploaded.
    pub checked_against_trusted_root: bool,
}

/// Signs `reference` keyless in cosign v3's layout: the same in-toto statement as [`sign_bundle`], signed in a
/// DSSE envelope by an ephemeral key with a Fulcio certificate, timestamped by the TSA and logged in Rekor v2
/// (`hashedrekord` over the PAE, as cosign v3.1.3 does); the bundle v0.3 is attached as a referrer of the image.
///
/// With `check`, the bundle is first verified (certificate chain, SCT, timestamp, log entry, the image digest)
/// against that trusted root, and nothing is attached if it fails.
pub async fn sign_bundle_keyless(
    client: &RegistryClient,
    reference: &Reference,
    signature_repository: Option<&Reference>,
    signer: &KeylessSigner,
    annotations: BTreeMap<String, String>,
    check: Option<&Verifier>,
) -> Result<KeylessSigned, CosignError> {
    dsse_bundle_keyless(
        client,
        reference,
        signature_repository,
        signer,
        |digest| bundle_layout::signing_statement(digest, &annotations),
        bundle_layout::COSIGN_SIGN_PREDICATE_TYPE,
        check,
    )
    .await
}

/// Signs the in-toto statement `statement` makes for the image digest keyless in a DSSE envelope (Fulcio, TSA,
/// Rekor v2), verifies the bundle against `check` when given, and attaches it as a bundle v0.3 referrer of the
/// image whose `dev.sigstore.bundle.predicateType` is `predicate_type`.
pub(crate) async fn dsse_bundle_keyless(
    client: &RegistryClient,
    reference: &Reference,
    signature_repository: Option<&Reference>,
    signer: &KeylessSigner,
    statement: impl FnOnce(&Digest) -> Vec<u8>,
    predicate_type: &str,
    check: Option<&Verifier>,
) -> Result<KeylessSigned, CosignError> {
    let (digest, image) = pin_to_digest(client, reference).await?;
    let statement = statement(&digest);
    let signed = signer
        .sign_dsse(check::IN_TOTO_PAYLOAD_TYPE, &statement)
        .await?;
    let (certificate_identity, certificate_oidc_issuer) =
        certificate_identity(&signed.certificate).map_err(unusable_certificate)?;
    if let Some(verifier) = check {
        let bundle =
            Bundle::from_json(&signed.json).map_err(|e| CosignError::SelfCheck(e.to_string()))?;
        let digest_bytes = hex::decode(digest.hex())
            .map_err(|e| CosignError::SelfCheck(format!("image digest is not hex: {e}")))?;
        self_check(
            verifier,
            &bundle,
            ArtifactPolicy::Digest {
                algorithm: HashAlgorithm::Sha256,
                digest: &digest_bytes,
            },
        )
        .map_err(CosignError::SelfCheck)?;
    }
    let bundle = attach_bundle(
        client,
        &image,
        signature_repository,
        &digest,
        signed.json,
        predicate_type,
    )
    .await?;
    Ok(KeylessSigned {
        bundle,
        certificate_identity,
        certificate_oidc_issuer,
        log_index: signed.log_index,
        rekor_version: signed.rekor_version,
        checked_against_trusted_root: check.is_some(),
    })
}

/// Attaches `bundle` to `image` (the reference with `digest`) as a bundle v0.3 referrer, with cosign's annotations:
/// in the image's repository, or, as cosign v3 does with `COSIGN_REPOSITORY`, as a referrer of the same digest in
/// `signature_repository`.
pub(crate) async fn attach_bundle(
    client: &RegistryClient,
    image: &Reference,
    signature_repository: Option<&Reference>,
    digest: &Digest,
    bundle: Vec<u8>,
    predicate_type: &str,
) -> Result<SignedBundle, CosignError> {
    let now = time::OffsetDateTime::now_utc();
    let created = now
        .replace_nanosecond(0)
        .map_err(|e| CosignError::Clock(e.to_string()))?
        .format(&time::format_description::well_known::Rfc3339)
        .map_err(|e| CosignError::Clock(e.to_string()))?;
    let artifact = Artifact {
        artifact_type: BUNDLE_V03_MEDIA_TYPE.to_string(),
        layer_media_type: BUNDLE_V03_MEDIA_TYPE.to_string(),
        content: bundle.into(),
        content_digest: None,
        title: None,
        annotations: bundle_layout::manifest_annotations(predicate_type, &created),
    };
    let context = match signature_repository {
        None => format!("attaching the signature bundle to {image}"),
        Some(store) => format!(
            "attaching the signature bundle for {image} in {}",
            store.name()
        ),
    };
    // The referrer goes into the image's repository, or into the signature repository as a referrer of the same
    // digest (whose manifest is not there).
    let store = signature_repository
        .unwrap_or(image)
        .with_digest(digest.clone());
    let subject = client
        .subject_descriptor(image)
        .await
        .map_err(registry_error(context.clone()))?;
    let attached = client
        .attach_artifact_to(&store, subject, &artifact)
        .await
        .map_err(registry_error(context))?;
    Ok(SignedBundle {
        image: image.to_string(),
        digest: digest.to_string(),
        referrer: store.with_digest(attached.manifest.digest).to_string(),
        via: attached.via,
        transparency_log: None,
    })
}

/// Pushes the referrer manifest `bytes` (whose subject is the image `digest`) by its digest into the repository
/// of `target` (`repository@digest`); when the registry does not index its subject, adds it to the fallback index
/// of `digest` there, with `artifact_type` and `annotations`.
async fn push_referrer(
    client: &RegistryClient,
    target: &Reference,
    digest: &Digest,
    bytes: &[u8],
    artifact_type: &str,
    annotations: &BTreeMap<String, String>,
) -> Result<(Reference, ReferrersSource), kibaship_oci::Error> {
    let referrer = target.with_digest(Digest::sha256_of(bytes));
    let pushed = client.push_manifest(&referrer, bytes, OCI_MANIFEST).await?;
    if pushed.subject_indexed {
        return Ok((referrer, ReferrersSource::Api));
    }
    let listed = client.list_referrers(target, None).await?;
    if listed.source == ReferrersSource::Api {
        return Ok((referrer, ReferrersSource::Api));
    }
    let mut entry = Descriptor::of(OCI_MANIFEST, bytes);
    entry.artifact_type = Some(artifact_type.to_string());
    entry.annotations = annotations.clone();
    client.add_to_fallback_index(target, digest, &entry).await?;
    Ok((referrer, ReferrersSource::FallbackTag))
}

/// Where a signature was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Layout {
    /// cosign's `sha256-<hex>.sig` / `.att` tag.
    LegacyTag,
    /// A Sigstore bundle attached as an OCI referrer.
    BundleReferrer,
    /// cosign's OCI 1.1 signature mode: the `.sig` manifest attached as a referrer (`artifactType`
    /// `application/vnd.dev.cosign.artifact.sig.v1+json`).
    SignatureReferrer,
}

/// Whether one signature (or attestation) was accepted, and what passed or why not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// It passed every check: who signed, what vouches for the time, the predicate type.
    Accepted(Accepted),
    /// It did not: the code, the failed check in words, a hint, and for some codes what differed.
    Rejected(Rejected),
}

/// The outcome for one signature (or attestation), and where it was found.
///
/// Serialized as it always was (`kibaverify verify --output json`): the location fields, `verified`, then the
/// accepted fields (`signer`, `transparencyLog`, `predicateType`, `notes`) or `reason`, `code`, `hint`,
/// `mismatch` and `predicateFailure`, each only when present.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureOutcome {
    /// Which layout it was read from.
    pub layout: Layout,
    /// The tag or manifest it sits in.
    pub location: String,
    /// Layer position in that manifest (legacy layout).
    pub layer: Option<usize>,
    /// Digest of the payload (or bundle) blob.
    pub blob: Option<String>,
    /// Accepted or rejected.
    pub outcome: Outcome,
}

/// How a [`SignatureOutcome`] is written in JSON (the shape `kibaverify verify --output json` always had).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SignatureOutcomeJson<'a> {
    layout: Layout,
    location: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    layer: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    blob: Option<&'a str>,
    verified: bool,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    accepted: Option<&'a Accepted>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    code: Option<ReasonCode>,
    #[serde(skip_serializing_if = "Option::is_none")]
    hint: Option<Hint>,
    #[serde(skip_serializing_if = "Option::is_none")]
    mismatch: Option<&'a IdentityMismatch>,
    #[serde(skip_serializing_if = "Option::is_none")]
    predicate_failure: Option<&'a PredicateFailure>,
}

impl Serialize for SignatureOutcome {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let rejected = self.rejected();
        SignatureOutcomeJson {
            layout: self.layout,
            location: &self.location,
            layer: self.layer,
            blob: self.blob.as_deref(),
            verified: self.verified(),
            accepted: self.accepted(),
            reason: rejected.map(|r| r.message.as_str()),
            code: rejected.map(|r| r.code),
            hint: rejected.and_then(|r| r.hint),
            mismatch: rejected.and_then(|r| r.mismatch.as_ref()),
            predicate_failure: rejected.and_then(|r| r.predicate_failure.as_deref()),
        }
        .serialize(serializer)
    }
}

impl SignatureOutcome {
    /// Whether it was accepted.
    pub fn verified(&self) -> bool {
        matches!(self.outcome, Outcome::Accepted(_))
    }

    /// What passed, when it was accepted.
    pub fn accepted(&self) -> Option<&Accepted> {
        match &self.outcome {
            Outcome::Accepted(a) => Some(a),
            Outcome::Rejected(_) => None,
        }
    }

    /// Why not, when it was rejected.
    pub fn rejected(&self) -> Option<&Rejected> {
        match &self.outcome {
            Outcome::Accepted(_) => None,
            Outcome::Rejected(r) => Some(r),
        }
    }

    /// Why not, as a stable code (`None` when accepted).
    pub fn code(&self) -> Option<ReasonCode> {
        self.rejected().map(|r| r.code)
    }

    fn new(
        layout: Layout,
        location: &str,
        layer: Option<usize>,
        blob: Option<&Digest>,
        outcome: Outcome,
    ) -> Self {
        SignatureOutcome {
            layout,
            location: location.to_string(),
            layer,
            blob: blob.map(ToString::to_string),
            outcome,
        }
    }

    /// Rejected for a reason found before any check of the signature ran (the store misbehaving).
    fn failed(
        layout: Layout,
        location: &str,
        layer: Option<usize>,
        blob: Option<&Digest>,
        code: ReasonCode,
        reason: String,
    ) -> Self {
        let rejected = Rejected {
            code,
            message: reason,
            hint: None,
            mismatch: None,
            predicate_failure: None,
        };
        Self::new(layout, location, layer, blob, Outcome::Rejected(rejected))
    }

    /// Accepted or rejected by the checks.
    fn checked(
        layout: Layout,
        location: &str,
        layer: Option<usize>,
        blob: &Digest,
        checked: Result<Accepted, Rejected>,
    ) -> Self {
        let outcome = match checked {
            Ok(accepted) => Outcome::Accepted(accepted),
            Err(rejected) => Outcome::Rejected(rejected),
        };
        Self::new(layout, location, layer, Some(blob), outcome)
    }
}

/// What verifying an image found. Whether it is verified, and why not, follow from the outcomes.
///
/// Serialized with `reference`, `image`, `digest`, `kind`, `verified`, `code` (when not verified) and
/// `signatures`, as `kibaverify verify --output json` always wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageReport {
    /// The reference as given.
    pub reference: String,
    /// `registry/repo@sha256:...` that was verified.
    pub image: String,
    /// The manifest digest the reference resolved to.
    pub digest: String,
    /// Signatures or attestations.
    layer_kind: LayerKind,
    /// Every signature found, in the order read.
    pub signatures: Vec<SignatureOutcome>,
    /// Set when the image had more signature referrers than are checked: the bound and how many there were.
    pub referrer_limit_hit: Option<ReferrerLimitHit>,
}

impl ImageReport {
    /// `signatures` or `attestations`.
    pub fn kind(&self) -> &'static str {
        match self.layer_kind {
            LayerKind::Signature => "signatures",
            LayerKind::Attestation => "attestations",
        }
    }

    /// Whether at least one signature passed.
    pub fn verified(&self) -> bool {
        self.signatures.iter().any(SignatureOutcome::verified)
    }

    /// Why the image is not verified (`None` when it is): `unsigned` (`attestation-missing` for attestations)
    /// when nothing was found, else the code of [`ImageReport::closest_rejection`].
    pub fn code(&self) -> Option<ReasonCode> {
        if self.verified() {
            return None;
        }
        match (self.closest_rejection(), self.layer_kind) {
            (Some(closest), _) => Some(closest.code),
            (None, LayerKind::Signature) => Some(ReasonCode::Unsigned),
            (None, LayerKind::Attestation) => Some(ReasonCode::AttestationMissing),
        }
    }

    /// The rejection that says most about why the image is not verified: the one that got furthest through the
    /// checks (a predicate that failed, then a valid signature by another identity, then one copied from another
    /// image, ...; see [`ReasonCode::closeness`]), the first found among equals. It does not depend on the order
    /// in which a registry lists referrers, and a key signature that a keyless policy cannot use does not hide
    /// a keyless one by the wrong identity.
    pub fn closest_rejection(&self) -> Option<&Rejected> {
        self.signatures
            .iter()
            .filter_map(SignatureOutcome::rejected)
            .enumerate()
            .min_by_key(|(found, r)| (r.code.closeness(), *found))
            .map(|(_, r)| r)
    }
}

/// How an [`ImageReport`] is written in JSON.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ImageReportJson<'a> {
    reference: &'a str,
    image: &'a str,
    digest: &'a str,
    kind: &'static str,
    verified: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    code: Option<ReasonCode>,
    signatures: &'a [SignatureOutcome],
    #[serde(skip_serializing_if = "Option::is_none")]
    referrer_limit_hit: Option<ReferrerLimitHit>,
}

impl Serialize for ImageReport {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        ImageReportJson {
            reference: &self.reference,
            image: &self.image,
            digest: &self.digest,
            kind: self.kind(),
            verified: self.verified(),
            code: self.code(),
            signatures: &self.signatures,
            referrer_limit_hit: self.referrer_limit_hit,
        }
        .serialize(serializer)
    }
}

/// Reads and checks the signatures (`LayerKind::Signature`) or attestations (`LayerKind::Attestation`) of the
/// image pinned to `digest`, beside it or, with `signature_repository` (cosign's `COSIGN_REPOSITORY`), under its
/// digest in that repository (legacy tags and bundle referrers alike). A signature passes when one of `checks`
/// (one per authority of the policy) accepts it and, for an attestation, its verified predicate passes the
/// policy's `predicates` checks for its type. Registry failures that prevent reading are errors; everything
/// wrong with a signature is reported in its outcome. At most `checks.max_referrers` referrers are checked.
/// Only [`crate::ImageVerifier`] calls this.
pub(crate) async fn check_image(
    client: &RegistryClient,
    reference: &Reference,
    pinned: (&Digest, &Reference),
    signature_repository: Option<&Reference>,
    kind: LayerKind,
    checks: Checks<'_>,
) -> Result<ImageReport, CosignError> {
    let (digest, image) = pinned;
    let repository = reference.ggcr_repository();
    let subject = Subject {
        digest,
        repository: &repository,
    };
    // Signatures sit beside the image, or (cosign's COSIGN_REPOSITORY) under the same digest in another repository.
    let store =
        signature_repository.map_or_else(|| image.clone(), |r| r.with_digest(digest.clone()));
    // Both layouts are read at once (independent round trips); referrers are reported first. Reading until a
    // proof, the legacy tag is read only when the referrers do not satisfy the policy.
    let (mut signatures, mut legacy) = (Vec::new(), Vec::new());
    let referrer_limit_hit = match checks.until_proof {
        None => {
            let (referrers_read, legacy_read) = tokio::join!(
                verify_referrers(client, &store, kind, subject, checks, &mut signatures),
                verify_legacy(client, &store, kind, subject, checks, &mut legacy)
            );
            let limit_hit = referrers_read?;
            legacy_read?;
            limit_hit
        }
        Some(required) => {
            let limit_hit =
                verify_referrers(client, &store, kind, subject, checks, &mut signatures).await?;
            if !satisfies(kind, required, &signatures) {
                verify_legacy(client, &store, kind, subject, checks, &mut legacy).await?;
            }
            limit_hit
        }
    };
    signatures.append(&mut legacy);
    Ok(ImageReport {
        reference: reference.to_string(),
        image: image.to_string(),
        digest: digest.to_string(),
        layer_kind: kind,
        signatures,
        referrer_limit_hit,
    })
}

/// Resolves `reference` to the digest that is verified, and the image by that digest.
pub(crate) async fn pin(
    client: &RegistryClient,
    reference: &Reference,
) -> Result<(Digest, Reference), CosignError> {
    pin_to_digest(client, reference).await.map_err(|e| match e {
        CosignError::Registry { source, .. } if source.is_not_found() => {
            CosignError::ImageNotFound {
                reference: reference.to_string(),
                source,
            }
        }
        other => other,
    })
}

/// What each signature is checked against: one set of checks per authority, and the predicate checks; and
/// how many referrers are checked at most.
#[derive(Clone, Copy)]
pub(crate) struct Checks<'a> {
    /// One per authority of the policy.
    pub(crate) checks: &'a [VerifyOptions],
    /// The policy's predicate checks.
    pub(crate) predicates: &'a PredicateChecks,
    /// The most signature referrers checked.
    pub(crate) max_referrers: usize,
    /// What must vouch for a keyless bundle's signing time (signed timestamps accept timestamp-only bundles).
    pub(crate) time_evidence: kibaship_sigstore::TimeEvidence,
    /// Read until a proof: with the policy's required attestation types (`None`: any), the legacy layout is read
    /// only when the referrers do not satisfy the policy. `None`: both layouts, everything.
    pub(crate) until_proof: Option<&'a [Option<String>]>,
}

/// Whether the accepted among `outcomes` satisfy the policy for `kind`: any signature; an attestation of each
/// `required` type (`None`: of any type).
fn satisfies(kind: LayerKind, required: &[Option<String>], outcomes: &[SignatureOutcome]) -> bool {
    match kind {
        LayerKind::Signature => outcomes.iter().any(SignatureOutcome::verified),
        LayerKind::Attestation => required
            .iter()
            .all(|wanted| accepts_type(outcomes, wanted.as_deref())),
    }
}

/// Whether one of `outcomes` was accepted with predicate type `wanted` (`None`: any).
pub(crate) fn accepts_type(outcomes: &[SignatureOutcome], wanted: Option<&str>) -> bool {
    outcomes
        .iter()
        .filter_map(SignatureOutcome::accepted)
        .any(|a| wanted.is_none_or(|t| a.predicate_type.as_deref() == Some(t)))
}

/// An accepted attestation whose verified `statement` fails the predicate checks of its type is rejected.
/// An accepted one carries its verified statement ([`Accepted::statement`]).
fn check_predicate(
    predicates: &PredicateChecks,
    (mut accepted, statement): (Accepted, Vec<u8>),
) -> Result<Accepted, Rejected> {
    if let Some(predicate_type) = &accepted.predicate_type {
        if let Err(failure) = predicates.evaluate(predicate_type, &statement) {
            return Err(check::predicate_failed(&accepted.signer, failure));
        }
    }
    accepted.statement = Some(statement.into());
    Ok(accepted)
}

/// The first check (authority) that accepts, else the first one's reason.
fn first_accepting<T>(
    checks: &[VerifyOptions],
    check: impl Fn(&VerifyOptions) -> Result<T, Rejected>,
) -> Result<T, Rejected> {
    let mut first_refusal = None;
    for options in checks {
        match check(options) {
            Ok(accepted) => return Ok(accepted),
            Err(rejected) => {
                first_refusal.get_or_insert(rejected);
            }
        }
    }
    Err(first_refusal.unwrap_or_else(|| Rejected {
        code: ReasonCode::NotChecked,
        message: "the policy names no authority to check against".into(),
        hint: None,
        mismatch: None,
        predicate_failure: None,
    }))
}

async fn verify_legacy(
    client: &RegistryClient,
    image: &Reference,
    kind: LayerKind,
    subject: Subject<'_>,
    checks: Checks<'_>,
    out: &mut Vec<SignatureOutcome>,
) -> Result<(), CosignError> {
    let suffix = match kind {
        LayerKind::Signature => SIGNATURE_TAG_SUFFIX,
        LayerKind::Attestation => ATTESTATION_TAG_SUFFIX,
    };
    let tag_ref = image.with_tag(&legacy::tag_for(subject.digest, suffix))?;
    let location = tag_ref.to_string();
    let manifest = match client.fetch_manifest_if_exists(&tag_ref).await {
        Ok(Some(m)) => m,
        Ok(None) => return Ok(()),
        // A manifest too large or with a wrong digest is the signature store misbehaving: report it.
        Err(
            e @ (kibaship_oci::Error::TooLarge { .. } | kibaship_oci::Error::DigestMismatch { .. }),
        ) => {
            out.push(SignatureOutcome::failed(
                Layout::LegacyTag,
                &location,
                None,
                None,
                ReasonCode::BadSignature,
                e.to_string(),
            ));
            return Ok(());
        }
        Err(e) => return Err(registry_error(format!("reading {tag_ref}"))(e)),
    };
    let place = (Layout::LegacyTag, location.as_str());
    check_signature_manifest(
        client,
        image,
        &manifest.bytes,
        place,
        kind,
        subject,
        checks,
        out,
    )
    .await
}

/// Reads a cosign signature manifest (the `.sig`/`.att` tag's, or an OCI 1.1 signature referrer's) found at
/// `place` and checks each of its layers, fetching the payloads from the repository of `image`.
#[allow(clippy::too_many_arguments)]
async fn check_signature_manifest(
    client: &RegistryClient,
    image: &Reference,
    manifest: &[u8],
    (layout, location): (Layout, &str),
    kind: LayerKind,
    subject: Subject<'_>,
    checks: Checks<'_>,
    out: &mut Vec<SignatureOutcome>,
) -> Result<(), CosignError> {
    let layers = match legacy::read_manifest(manifest, kind) {
        Ok(layers) => layers,
        Err(e) => {
            out.push(SignatureOutcome::failed(
                layout,
                location,
                None,
                None,
                ReasonCode::BadSignature,
                e.to_string(),
            ));
            return Ok(());
        }
    };
    for layer in &layers {
        let blob = &layer.descriptor.digest;
        let failed = |code: ReasonCode, reason: String| {
            SignatureOutcome::failed(
                layout,
                location,
                Some(layer.index),
                Some(blob),
                code,
                reason,
            )
        };
        let payload = match client.fetch_blob(image, blob, layer.descriptor.size).await {
            Ok(p) => p,
            // Out of time is not a verdict on this signature: the whole verification stops (exit 2, not 1).
            Err(e) if e.is_timeout() => {
                return Err(registry_error(format!(
                    "reading {location} layer {}",
                    layer.index
                ))(e));
            }
            Err(e) => {
                out.push(failed(
                    ReasonCode::RegistryUnreachable,
                    format!("cannot read the payload: {e}"),
                ));
                continue;
            }
        };
        if payload.len() as u64 != layer.descriptor.size {
            out.push(failed(
                ReasonCode::BadSignature,
                format!(
                    "the payload is {} bytes, the manifest says {}",
                    payload.len(),
                    layer.descriptor.size
                ),
            ));
            continue;
        }
        let checked = match kind {
            LayerKind::Signature => first_accepting(checks.checks, |options| {
                check::check_signature_layer(layer, &payload, subject, options)
            }),
            LayerKind::Attestation => first_accepting(checks.checks, |options| {
                check::verify_attestation_layer(layer, &payload, subject, options)
            })
            .and_then(|verified| check_predicate(checks.predicates, verified)),
        };
        out.push(SignatureOutcome::checked(
            layout,
            location,
            Some(layer.index),
            blob,
            checked,
        ));
    }
    Ok(())
}

async fn verify_referrers(
    client: &RegistryClient,
    image: &Reference,
    kind: LayerKind,
    subject: Subject<'_>,
    checks: Checks<'_>,
    out: &mut Vec<SignatureOutcome>,
) -> Result<Option<ReferrerLimitHit>, CosignError> {
    let referrers = client
        .list_referrers(image, None)
        .await
        .map_err(registry_error(format!("listing the referrers of {image}")))?;
    let bundle_kind = match kind {
        LayerKind::Signature => BundleKind::Signature,
        LayerKind::Attestation => BundleKind::Attestation,
    };
    // Sigstore bundles (either kind) and, for signatures, cosign's OCI 1.1 signature manifests; a descriptor
    // without an artifact type is read to see what it is.
    let candidates: Vec<&Descriptor> = referrers
        .descriptors
        .iter()
        .filter(|d| {
            d.artifact_type.as_deref().is_none_or(|t| {
                t.starts_with(BUNDLE_MEDIA_TYPE_PREFIX)
                    || (kind == LayerKind::Signature && t == OCI11_SIGNATURE_ARTIFACT_TYPE)
            })
        })
        .collect();
    let predicate_type = checks
        .checks
        .first()
        .and_then(|c| c.predicate_type.as_deref());
    let (chosen, limit_hit) =
        referrer_selection::select(candidates, kind, predicate_type, checks.max_referrers);
    for descriptor in chosen {
        let manifest_ref = image.with_digest(descriptor.digest.clone());
        let location = manifest_ref.to_string();
        let layout = match descriptor.artifact_type.as_deref() {
            Some(OCI11_SIGNATURE_ARTIFACT_TYPE) => Layout::SignatureReferrer,
            _ => Layout::BundleReferrer,
        };
        let failed = |code: ReasonCode, reason: String, blob: Option<&Digest>| {
            SignatureOutcome::failed(layout, &location, None, blob, code, reason)
        };
        let manifest = match client.fetch_manifest(&manifest_ref).await {
            Ok(m) => m,
            Err(e) if e.is_timeout() => {
                return Err(registry_error(format!("reading {location}"))(e));
            }
            Err(e) => {
                out.push(failed(
                    ReasonCode::RegistryUnreachable,
                    format!("cannot read the referrer manifest: {e}"),
                    None,
                ));
                continue;
            }
        };
        let Ok(parsed) = serde_json::from_slice::<ImageManifest>(&manifest.bytes) else {
            if descriptor.artifact_type.is_some() {
                out.push(failed(
                    ReasonCode::BadSignature,
                    "the referrer is not an image manifest".into(),
                    None,
                ));
            }
            continue;
        };
        if parsed.effective_artifact_type() == OCI11_SIGNATURE_ARTIFACT_TYPE {
            // cosign's OCI 1.1 signature mode: a `.sig` manifest whose subject must be the image.
            if kind != LayerKind::Signature {
                continue;
            }
            let place = (Layout::SignatureReferrer, location.as_str());
            if parsed.subject.as_ref().map(|s| &s.digest) != Some(subject.digest) {
                out.push(SignatureOutcome::failed(
                    place.0,
                    place.1,
                    None,
                    None,
                    ReasonCode::DigestMismatch,
                    format!(
                        "the referrer's subject is {}, not the image {}",
                        parsed
                            .subject
                            .as_ref()
                            .map_or_else(|| "missing".to_string(), |s| s.digest.to_string()),
                        subject.digest
                    ),
                ));
                continue;
            }
            check_signature_manifest(
                client,
                image,
                &manifest.bytes,
                place,
                kind,
                subject,
                checks,
                out,
            )
            .await?;
            continue;
        }
        let [layer] = parsed.layers.as_slice() else {
            if descriptor.artifact_type.is_some() {
                out.push(failed(
                    ReasonCode::BadSignature,
                    format!(
                        "a bundle referrer must have exactly one layer, this one has {}",
                        parsed.layers.len()
                    ),
                    None,
                ));
            }
            continue;
        };
        if !bundle_layout::is_referrer_bundle_media_type(&layer.media_type) {
            if descriptor.artifact_type.is_some() {
                out.push(failed(
                    ReasonCode::BadSignature,
                    format!(
                        "layer media type {:?} is not a Sigstore bundle v0.3",
                        layer.media_type
                    ),
                    None,
                ));
            }
            continue;
        }
        if parsed.subject.as_ref().map(|s| &s.digest) != Some(subject.digest) {
            out.push(failed(
                ReasonCode::DigestMismatch,
                format!(
                    "the referrer's subject is {}, not the image {}",
                    parsed
                        .subject
                        .as_ref()
                        .map_or_else(|| "missing".to_string(), |s| s.digest.to_string()),
                    subject.digest
                ),
                Some(&layer.digest),
            ));
            continue;
        }
        if layer.size > kibaship_sigstore::MAX_BUNDLE_BYTES as u64 {
            out.push(failed(
                ReasonCode::BadSignature,
                format!(
                    "the bundle is {} bytes, more than the {} accepted",
                    layer.size,
                    kibaship_sigstore::MAX_BUNDLE_BYTES
                ),
                Some(&layer.digest),
            ));
            continue;
        }
        let bytes = match client.fetch_blob(image, &layer.digest, layer.size).await {
            Ok(b) => b,
            Err(e) if e.is_timeout() => {
                return Err(registry_error(format!("reading the bundle of {location}"))(
                    e,
                ));
            }
            Err(e) => {
                out.push(failed(
                    ReasonCode::RegistryUnreachable,
                    format!("cannot read the bundle: {e}"),
                    Some(&layer.digest),
                ));
                continue;
            }
        };
        let checked = first_accepting(checks.checks, |options| {
            check::verify_referrer_bundle(
                &bytes,
                subject,
                bundle_kind,
                options,
                checks.time_evidence,
            )
        })
        .and_then(|verified| {
            verified
                .map(|verified| match bundle_kind {
                    BundleKind::Attestation => check_predicate(checks.predicates, verified),
                    BundleKind::Signature => Ok(verified.0),
                })
                .transpose()
        });
        if let Some(checked) = checked.transpose() {
            out.push(SignatureOutcome::checked(
                Layout::BundleReferrer,
                &location,
                None,
                &layer.digest,
                checked,
            ));
        }
    }
    Ok(limit_hit)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn report_of(codes: &[ReasonCode]) -> ImageReport {
        ImageReport {
            reference: "r/app:v1".into(),
            image: "r/app@sha256:00".into(),
            digest: "sha256:00".into(),
            layer_kind: LayerKind::Signature,
            referrer_limit_hit: None,
            signatures: codes
                .iter()
                .enumerate()
                .map(|(n, code)| {
                    SignatureOutcome::failed(
                        Layout::BundleReferrer,
                        &format!("r/app@sha256:{n:02}"),
                        None,
                        None,
                        *code,
                        format!("signature {n}"),
                    )
                })
                .collect(),
        }
    }

    #[test]
    fn a_verdict_without_statements_keeps_everything_else() {
        let mut report = report_of(&[ReasonCode::WrongKey]);
        report.layer_kind = LayerKind::Attestation;
        report.signatures.push(SignatureOutcome::new(
            Layout::BundleReferrer,
            "r/app@sha256:01",
            None,
            None,
            Outcome::Accepted(Accepted {
                signer: "the given ECDSA P-256 key".into(),
                transparency_log: "none".into(),
                predicate_type: Some("https://cyclonedx.org/bom".into()),
                notes: Vec::new(),
                statement: Some(std::sync::Arc::from(&b"{\"large\": \"sbom\"}"[..])),
            }),
        ));
        let verdict = crate::Verdict::NotVerified(crate::NotVerified {
            image: kibaship_oci::Reference::parse("r.example/app:v1")
                .unwrap()
                .with_digest(kibaship_oci::Digest::sha256_of(b"")),
            digest: kibaship_oci::Digest::sha256_of(b""),
            code: ReasonCode::WrongKey,
            predicate_failure: None,
            signatures: None,
            attestations: Some(report),
        });
        let before = serde_json::to_string(verdict.attestations().unwrap()).unwrap();
        let kept = verdict.without_statements();
        let attestations = kept.attestations().unwrap();
        let accepted = attestations.signatures[1].accepted().unwrap();
        assert_eq!(accepted.statement, None);
        assert_eq!(
            accepted.predicate_type.as_deref(),
            Some("https://cyclonedx.org/bom")
        );
        // Everything reported is unchanged (the statement is never serialized).
        assert_eq!(serde_json::to_string(attestations).unwrap(), before);
    }

    #[test]
    fn the_rejection_that_got_furthest_is_named_whatever_the_listing_order() {
        use ReasonCode::*;
        for codes in [
            [NoTransparencyProof, WrongIdentity, WrongKey],
            [WrongKey, NoTransparencyProof, WrongIdentity],
            [WrongIdentity, WrongKey, NoTransparencyProof],
        ] {
            let report = report_of(&codes);
            assert_eq!(report.code(), Some(WrongIdentity), "{codes:?}");
            assert_eq!(
                report.closest_rejection().map(|r| r.code),
                Some(WrongIdentity)
            );
        }
        // Among equals, the first found.
        let report = report_of(&[BadSignature, BadSignature]);
        assert_eq!(
            report.closest_rejection().map(|r| r.message.as_str()),
            Some("signature 0")
        );
        assert_eq!(report_of(&[]).code(), Some(Unsigned));
        // A signature copied from another image outranks a bad one, and a failed predicate everything.
        assert_eq!(
            report_of(&[BadSignature, DigestMismatch]).code(),
            Some(DigestMismatch)
        );
        assert_eq!(
            report_of(&[WrongIdentity, AttestationPredicateFailed]).code(),
            Some(AttestationPredicateFailed)
        );
    }

    /// The outcome as it was before it became an enum (a derived `Serialize` of the flat struct): the JSON of
    /// `kibaverify verify --output json` must stay byte for byte what this wrote.
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct FlatOutcome {
        layout: Layout,
        location: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        layer: Option<usize>,
        #[serde(skip_serializing_if = "Option::is_none")]
        blob: Option<String>,
        verified: bool,
        #[serde(flatten, skip_serializing_if = "Option::is_none")]
        accepted: Option<Accepted>,
        #[serde(skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        code: Option<ReasonCode>,
        #[serde(skip_serializing_if = "Option::is_none")]
        hint: Option<Hint>,
        #[serde(skip_serializing_if = "Option::is_none")]
        mismatch: Option<IdentityMismatch>,
        #[serde(skip_serializing_if = "Option::is_none")]
        predicate_failure: Option<PredicateFailure>,
    }

    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct FlatReport {
        reference: String,
        image: String,
        digest: String,
        kind: &'static str,
        verified: bool,
        #[serde(skip_serializing_if = "Option::is_none")]
        code: Option<ReasonCode>,
        signatures: Vec<FlatOutcome>,
    }

    fn flat(o: &SignatureOutcome) -> FlatOutcome {
        let rejected = o.rejected();
        FlatOutcome {
            layout: o.layout,
            location: o.location.clone(),
            layer: o.layer,
            blob: o.blob.clone(),
            verified: o.verified(),
            accepted: o.accepted().cloned(),
            reason: rejected.map(|r| r.message.clone()),
            code: rejected.map(|r| r.code),
            hint: rejected.and_then(|r| r.hint),
            mismatch: rejected.and_then(|r| r.mismatch.clone()),
            predicate_failure: rejected.and_then(|r| r.predicate_failure.as_deref().cloned()),
        }
    }

    fn digest() -> Digest {
        Digest::sha256_of(b"payload")
    }

    fn outcomes() -> Vec<SignatureOutcome> {
        let accepted = |predicate_type: Option<&str>, notes: Vec<String>| Accepted {
            signer: "the given EcdsaP256 key".into(),
            transparency_log:
                "rekor.example entry 7 (hashedrekord), signed entry timestamp verified".into(),
            predicate_type: predicate_type.map(str::to_string),
            notes,
            // Never serialized.
            statement: Some(std::sync::Arc::from(&b"{}"[..])),
        };
        let rejected =
            |code, hint, mismatch, predicate_failure: Option<PredicateFailure>| Rejected {
                code,
                message: "the \"reason\"\n in words".into(),
                hint,
                mismatch,
                predicate_failure: predicate_failure.map(Box::new),
            };
        let d = digest();
        vec![
            SignatureOutcome::checked(
                Layout::LegacyTag,
                "r/app:sha256-1.sig",
                Some(0),
                &d,
                Ok(accepted(None, vec![])),
            ),
            SignatureOutcome::checked(
                Layout::BundleReferrer,
                "r/app@sha256:2",
                None,
                &d,
                Ok(accepted(
                    Some("https://slsa.dev/provenance/v1"),
                    vec!["a note".into()],
                )),
            ),
            SignatureOutcome::checked(
                Layout::LegacyTag,
                "r/app:sha256-1.sig",
                Some(3),
                &d,
                Err(rejected(
                    ReasonCode::NoTransparencyProof,
                    Some(Hint::AcceptWithoutTransparencyLog),
                    None,
                    None,
                )),
            ),
            SignatureOutcome::checked(
                Layout::BundleReferrer,
                "r/app@sha256:3",
                None,
                &d,
                Err(rejected(
                    ReasonCode::WrongIdentity,
                    None,
                    Some(IdentityMismatch {
                        claim: "issuer".into(),
                        wanted: "a".into(),
                        got: "b".into(),
                    }),
                    None,
                )),
            ),
            SignatureOutcome::checked(
                Layout::LegacyTag,
                "r/app:sha256-1.att",
                Some(1),
                &d,
                Err(rejected(
                    ReasonCode::AttestationPredicateFailed,
                    None,
                    None,
                    Some(PredicateFailure {
                        predicate_type: "https://slsa.dev/provenance/v1".into(),
                        path: "/builder/id".into(),
                        wanted: "equal to \"x\"".into(),
                        got: "absent".into(),
                        code: None,
                    }),
                )),
            ),
            SignatureOutcome::failed(
                Layout::LegacyTag,
                "r/app:sha256-1.sig",
                None,
                None,
                ReasonCode::BadSignature,
                "manifest too large".into(),
            ),
        ]
    }

    #[test]
    fn outcomes_serialize_as_the_flat_struct_did() {
        for o in outcomes() {
            assert_eq!(
                serde_json::to_string_pretty(&o).unwrap(),
                serde_json::to_string_pretty(&flat(&o)).unwrap()
            );
        }
        // The shape itself, for one accepted and one rejected outcome.
        let all = outcomes();
        let blob = digest().to_string();
        assert_eq!(
            serde_json::to_string(&all[1]).unwrap(),
            format!(
                r#"{{"layout":"bundle-referrer","location":"r/app@sha256:2","blob":"{blob}","verified":true,"signer":"the given EcdsaP256 key","transparencyLog":"rekor.example entry 7 (hashedrekord), signed entry timestamp verified","predicateType":"https://slsa.dev/provenance/v1","notes":["a note"]}}"#
            )
        );
        assert_eq!(
            serde_json::to_string(&all[2]).unwrap(),
            format!(
                r#"{{"layout":"legacy-tag","location":"r/app:sha256-1.sig","layer":3,"blob":"{blob}","verified":false,"reason":"the \"reason\"\n in words","code":"no-transparency-proof","hint":"accept-without-transparency-log"}}"#
            )
        );
    }

    #[test]
    fn reports_derive_verified_and_code_from_their_outcomes() {
        let report = |kind, signatures: Vec<SignatureOutcome>| ImageReport {
            reference: "r/app:v1".into(),
            image: "r/app@sha256:1".into(),
            digest: "sha256:1".into(),
            layer_kind: kind,
            signatures,
            referrer_limit_hit: None,
        };
        let all = outcomes();
        let cases = [
            (
                report(LayerKind::Signature, vec![]),
                false,
                Some(ReasonCode::Unsigned),
            ),
            (
                report(LayerKind::Attestation, vec![]),
                false,
                Some(ReasonCode::AttestationMissing),
            ),
            (report(LayerKind::Signature, all.clone()), true, None),
            (
                // no-transparency-proof first, then wrong-identity: the one that got furthest is named.
                report(LayerKind::Signature, all[2..4].to_vec()),
                false,
                Some(ReasonCode::WrongIdentity),
            ),
            (
                report(LayerKind::Attestation, all[4..].to_vec()),
                false,
                Some(ReasonCode::AttestationPredicateFailed),
            ),
        ];
        for (r, verified, code) in cases {
            assert_eq!((r.verified(), r.code()), (verified, code), "{r:#?}");
            let flat_report = FlatReport {
                reference: r.reference.clone(),
                image: r.image.clone(),
                digest: r.digest.clone(),
                kind: r.kind(),
                verified,
                code,
                signatures: r.signatures.iter().map(flat).collect(),
            };
            assert_eq!(
                serde_json::to_string_pretty(&r).unwrap(),
                serde_json::to_string_pretty(&flat_report).unwrap()
            );
        }
    }
}
