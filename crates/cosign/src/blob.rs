//! Blobs signed as `cosign sign-blob --key K --bundle B --tlog-upload=false` (v3) writes them: a Sigstore
//! bundle v0.3 holding a message signature (`messageDigest` = the blob's digest with the key's hash, SHA-256 for
//! P-256 and RSA, SHA-384 for P-384, SHA-512 for P-521; `signature` over that digest) and the public key's hint.
//! Pure: the caller streams the blob through the hash and reads and writes the files.
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use kibaship_sign::SigningKey;
use kibaship_sigstore::{HashAlgorithm, PublicKey};
use serde::Deserialize;

use crate::bundle_layout::{BUNDLE_V03_MEDIA_TYPE, is_referrer_bundle_media_type, public_key_hint};

/// The protobuf name of a message digest's algorithm (`SHA2_256`), as bundles spell it.
pub fn digest_algorithm_name(algorithm: HashAlgorithm) -> &'static str {
    match algorithm {
        HashAlgorithm::Sha256 => "SHA2_256",
        HashAlgorithm::Sha384 => "SHA2_384",
        HashAlgorithm::Sha512 => "SHA2_512",
    }
}

/// The bundle for a blob whose digest (of `key.hash_algorithm()`) is `digest`, signed with `key` and not logged.
pub fn key_signed_blob_bundle(
    key: &SigningKey,
    digest: &[u8],
) -> Result<Vec<u8>, kibaship_sign::KeyError> {
    let signature = key.sign_digest(digest)?;
    let bundle = serde_json::json!({
        "mediaType": BUNDLE_V03_MEDIA_TYPE,
        "verificationMaterial": {
            "publicKey": {"hint": public_key_hint(&key.public_key_der()?)},
        },
        "messageSignature": {
            "messageDigest": {
                "algorithm": digest_algorithm_name(key.hash_algorithm()),
                "digest": STANDARD.encode(digest),
            },
            "signature": STANDARD.encode(signature),
        },
    });
    Ok(serde_json::to_vec(&bundle).unwrap_or_default())
}

/// Why a key-signed blob bundle without a log entry was not accepted.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum BlobBundleError {
    /// Not a bundle of the shape cosign writes for a blob.
    #[error("not a key-signed blob bundle: {0}")]
    Malformed(String),
    /// The bundle has transparency-log entries: it is verified by the full verifier instead.
    #[error("the bundle has transparency-log entries")]
    Logged,
    /// The bundle names another blob.
    #[error(
        "the bundle is for another file: its {algorithm} digest {in_bundle} is not the file's {of_file}"
    )]
    OtherBlob {
        /// The digest's algorithm.
        algorithm: &'static str,
        /// The digest the bundle carries (hex).
        in_bundle: String,
        /// The file's (hex).
        of_file: String,
    },
    /// The signature does not verify with the key.
    #[error("the signature does not verify with the given key")]
    WrongKey,
    /// The bundle's digest is of another hash than the key signs over: signed with another kind of key.
    #[error(
        "the bundle's digest is {in_bundle:?}, but the given key signs over {key_hash}: signed with another key"
    )]
    OtherHash {
        /// The bundle's `messageDigest.algorithm`.
        in_bundle: String,
        /// The key's.
        key_hash: &'static str,
    },
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawBlobBundle {
    media_type: String,
    verification_material: RawMaterial,
    message_signature: Option<RawMessageSignature>,
    dsse_envelope: Option<serde_json::Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawMaterial {
    public_key: Option<serde_json::Value>,
    #[serde(default)]
    tlog_entries: Option<Vec<serde_json::Value>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawMessageSignature {
    message_digest: RawDigest,
    signature: String,
}

#[derive(Deserialize)]
struct RawDigest {
    algorithm: String,
    digest: String,
}

/// Checks a key-signed blob bundle that has no transparency-log entry (as `cosign sign-blob --tlog-upload=false`
/// writes it): the digest it names must be `file_digest` (computed with `algorithm`, the key's hash) and its
/// signature must verify over it with `key`. [`BlobBundleError::Logged`] when the bundle has log entries (the
/// caller then uses [`kibaship_sigstore::Verifier`]). Whether accepting a bundle without a log is allowed is the
/// caller's decision (`--insecure-ignore-tlog`).
pub fn check_unlogged_key_blob_bundle(
    json: &[u8],
    key: &PublicKey,
    algorithm: HashAlgorithm,
    file_digest: &[u8],
) -> Result<(), BlobBundleError> {
    let malformed = |what: String| BlobBundleError::Malformed(what);
    let raw: RawBlobBundle = serde_json::from_slice(json).map_err(|e| malformed(format!("{e}")))?;
    if !is_referrer_bundle_media_type(&raw.media_type) {
        return Err(malformed(format!(
            "mediaType {:?} is not a v0.3 bundle",
            raw.media_type
        )));
    }
    if raw
        .verification_material
        .tlog_entries
        .as_ref()
        .is_some_and(|entries| !entries.is_empty())
    {
        return Err(BlobBundleError::Logged);
    }
    if raw.verification_material.public_key.is_none() {
        return Err(malformed(
            "verificationMaterial has no publicKey (a certificate needs a log entry)".into(),
        ));
    }
    if raw.dsse_envelope.is_some() {
        return Err(malformed(
            "it holds a DSSE envelope (an attestation), not a message signature".into(),
        ));
    }
    let signed = raw
        .message_signature
        .ok_or_else(|| malformed("messageSignature is missing".into()))?;
    let expected = digest_algorithm_name(algorithm);
    if signed.message_digest.algorithm != expected {
        return Err(BlobBundleError::OtherHash {
            in_bundle: signed.message_digest.algorithm,
            key_hash: expected,
        });
    }
    let in_bundle = STANDARD
        .decode(&signed.message_digest.digest)
        .map_err(|e| malformed(format!("messageSignature.messageDigest.digest: {e}")))?;
    if in_bundle != file_digest {
        return Err(BlobBundleError::OtherBlob {
            algorithm: expected,
            in_bundle: hex::encode(&in_bundle),
            of_file: hex::encode(file_digest),
        });
    }
    let signature = STANDARD
        .decode(&signed.signature)
        .map_err(|e| malformed(format!("messageSignature.signature: {e}")))?;
    if !key.verify_prehashed(algorithm, file_digest, &signature) {
        return Err(BlobBundleError::WrongKey);
    }
    Ok(())
}

/// Verifies a keyless blob bundle just made against `verifier`'s trusted root (any identity: who signed is the
/// token's), before the bundle is written: a signing config pointing at services the root does not trust fails
/// here instead of at the first verifier.
pub fn self_check_keyless_blob_bundle(
    verifier: &kibaship_sigstore::Verifier,
    json: &[u8],
    sha256_digest: &[u8],
) -> Result<(), String> {
    let bundle = kibaship_sigstore::Bundle::from_json(json).map_err(|e| e.to_string())?;
    crate::registry::self_check(
        verifier,
        &bundle,
        kibaship_sigstore::ArtifactPolicy::Digest {
            algorithm: HashAlgorithm::Sha256,
            digest: sha256_digest,
        },
    )
}

/// Verifies a blob bundle just signed with `key` and logged (a message signature over the blob's `digest` of
/// `algorithm`, or a DSSE statement whose subject has that SHA-256 digest) against `verifier`'s trusted root,
/// before the bundle is written: a log the root does not trust fails here instead of at the first verifier.
pub fn self_check_key_blob_bundle(
    verifier: &kibaship_sigstore::Verifier,
    key: &SigningKey,
    json: &[u8],
    algorithm: HashAlgorithm,
    digest: &[u8],
) -> Result<(), String> {
    let bundle = kibaship_sigstore::Bundle::from_json(json).map_err(|e| e.to_string())?;
    crate::registry::self_check_key(
        verifier,
        key,
        &bundle,
        kibaship_sigstore::ArtifactPolicy::Digest { algorithm, digest },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signed_blob_bundle_verifies_with_its_key_only_for_its_blob() {
        let key = SigningKey::generate().expect("key");
        let public = PublicKey::from_spki(&key.public_key_der().expect("spki"), false).expect("pk");
        let digest = HashAlgorithm::Sha256.digest(b"release.tar.gz bytes");
        let bundle = key_signed_blob_bundle(&key, &digest).expect("bundle");
        assert_eq!(
            check_unlogged_key_blob_bundle(&bundle, &public, HashAlgorithm::Sha256, &digest),
            Ok(())
        );
        let other = HashAlgorithm::Sha256.digest(b"another file");
        assert!(matches!(
            check_unlogged_key_blob_bundle(&bundle, &public, HashAlgorithm::Sha256, &other),
            Err(BlobBundleError::OtherBlob { .. })
        ));
        let stranger = SigningKey::generate().expect("key");
        let stranger =
            PublicKey::from_spki(&stranger.public_key_der().expect("spki"), false).expect("pk");
        assert_eq!(
            check_unlogged_key_blob_bundle(&bundle, &stranger, HashAlgorithm::Sha256, &digest),
            Err(BlobBundleError::WrongKey)
        );
        assert!(matches!(
            check_unlogged_key_blob_bundle(b"{}", &public, HashAlgorithm::Sha256, &digest),
            Err(BlobBundleError::Malformed(_))
        ));
    }
}
