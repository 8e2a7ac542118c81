//! cosign v3's signature layout: a Sigstore bundle v0.3 attached to the image as an OCI 1.1 referrer.
//!
//! What `cosign sign` (v3, key-based) writes: a DSSE envelope (payload type `application/vnd.in-toto+json`) over an
//! in-toto v1 statement whose subject is the image digest and whose predicate type is
//! `https://sigstore.dev/cosign/sign/v1` with an empty predicate; the bundle carries the public key's hint
//! (base64 SHA-256 of its SubjectPublicKeyInfo) and, when nothing went to a transparency log, no `tlogEntries`.
//! The bundle is the one layer of a manifest with `artifactType` = the bundle media type, `subject` = the image.
//! Pure: building the statement, the bundle and the manifest annotations.
use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use kibaship_oci::Digest;
use kibaship_sign::SigningKey;
use kibaship_sigstore::{HashAlgorithm, pae};

use crate::check::IN_TOTO_PAYLOAD_TYPE;

/// Media type (and artifact type) of a Sigstore bundle v0.3 referrer.
pub const BUNDLE_V03_MEDIA_TYPE: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";
/// Prefix shared by every Sigstore bundle media type.
pub const BUNDLE_MEDIA_TYPE_PREFIX: &str = "application/vnd.dev.sigstore.bundle";
/// Predicate type of the statement cosign v3 signs for an image signature.
pub const COSIGN_SIGN_PREDICATE_TYPE: &str = "https://sigstore.dev/cosign/sign/v1";
/// Manifest annotation: what the bundle holds (`dsse-envelope`).
pub const CONTENT_ANNOTATION: &str = "dev.sigstore.bundle.content";
/// Manifest annotation: the statement's predicate type.
pub const PREDICATE_TYPE_ANNOTATION: &str = "dev.sigstore.bundle.predicateType";
/// Manifest annotation: creation time, RFC 3339 UTC.
pub const CREATED_ANNOTATION: &str = "org.opencontainers.image.created";

/// The in-toto v1 statement cosign v3 signs for `digest`, with `-a` annotations on the subject.
pub fn signing_statement(digest: &Digest, annotations: &BTreeMap<String, String>) -> Vec<u8> {
    let statement = serde_json::json!({
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{
            "digest": {digest.algorithm().name(): digest.hex()},
            "annotations": annotations,
        }],
        "predicateType": COSIGN_SIGN_PREDICATE_TYPE,
        "predicate": {},
    });
    // A Value of strings and objects always serialises.
    serde_json::to_vec(&statement).unwrap_or_default()
}

/// The public-key hint cosign writes: base64 of the SHA-256 of the key's DER SubjectPublicKeyInfo.
pub fn public_key_hint(spki_der: &[u8]) -> String {
    STANDARD.encode(HashAlgorithm::Sha256.digest(spki_der))
}

/// Signs `statement` in a DSSE envelope with `key` and wraps it in a bundle v0.3 without transparency-log
/// entries (key-based, nothing uploaded).
pub fn key_signed_bundle(
    key: &SigningKey,
    statement: &[u8],
) -> Result<Vec<u8>, kibaship_sign::KeyError> {
    let signature = key.sign(&pae(IN_TOTO_PAYLOAD_TYPE, statement))?;
    let bundle = serde_json::json!({
        "mediaType": BUNDLE_V03_MEDIA_TYPE,
        "verificationMaterial": {
            "publicKey": {"hint": public_key_hint(&key.public_key_der()?)},
        },
        "dsseEnvelope": {
            "payload": STANDARD.encode(statement),
            "payloadType": IN_TOTO_PAYLOAD_TYPE,
            "signatures": [{"sig": STANDARD.encode(signature)}],
        },
    });
    Ok(serde_json::to_vec(&bundle).unwrap_or_default())
}

/// The annotations cosign puts on a bundle referrer manifest.
pub fn manifest_annotations(
    predicate_type: &str,
    created_rfc3339: &str,
) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    out.insert(CONTENT_ANNOTATION.to_string(), "dsse-envelope".to_string());
    out.insert(
        PREDICATE_TYPE_ANNOTATION.to_string(),
        predicate_type.to_string(),
    );
    out.insert(CREATED_ANNOTATION.to_string(), created_rfc3339.to_string());
    out
}

/// Whether `media_type` names a Sigstore bundle of version 0.3 or later (the versions cosign reads from
/// referrers).
pub fn is_referrer_bundle_media_type(media_type: &str) -> bool {
    media_type == BUNDLE_V03_MEDIA_TYPE
        || media_type == "application/vnd.dev.sigstore.bundle+json;version=0.3"
}
