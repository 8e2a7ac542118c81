//! Rekor v2 (rekor-tiles): `POST /api/v2/log/entries` with a `hashedrekord` v0.0.2 request (the only entry type
//! Rekor v2 accepts; DSSE envelopes are logged as a hashedrekord over their PAE); the answer is the
//! TransparencyLogEntry (inclusion proof + signed checkpoint, no SET, no integrated time) that goes into
//! the bundle as it is.
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::keyless::KeylessError;
use crate::service_http;

/// The key details of an ephemeral P-256 key signing over SHA-256.
pub const KEY_DETAILS_P256: &str = "PKIX_ECDSA_P256_SHA_256";

/// A `hashedrekord` v0.0.2 request: `digest` (SHA-256) of what was signed, the signature and the certificate.
pub fn hashed_rekord_request(
    sha256_digest: &[u8],
    signature: &[u8],
    certificate_der: &[u8],
) -> serde_json::Value {
    hashed_rekord_v002(
        sha256_digest,
        signature,
        serde_json::json!({
            "x509Certificate": {"rawBytes": STANDARD.encode(certificate_der)},
            "keyDetails": KEY_DETAILS_P256,
        }),
    )
}

/// The `hashedRekordRequestV002` for `verifier` (a certificate or a public key, with its key details).
fn hashed_rekord_v002(
    sha256_digest: &[u8],
    signature: &[u8],
    verifier: serde_json::Value,
) -> serde_json::Value {
    serde_json::json!({
        "hashedRekordRequestV002": {
            "digest": STANDARD.encode(sha256_digest),
            "signature": {"content": STANDARD.encode(signature), "verifier": verifier},
        }
    })
}

/// A `hashedrekord` v0.0.2 request for a signature by a managed key: `digest` (SHA-256) of what was signed, the
/// signature and the key's DER SubjectPublicKeyInfo with its `key_details` (e.g. [`KEY_DETAILS_P256`]).
pub fn hashed_rekord_request_for_key(
    sha256_digest: &[u8],
    signature: &[u8],
    spki_der: &[u8],
    key_details: &str,
) -> serde_json::Value {
    hashed_rekord_v002(
        sha256_digest,
        signature,
        serde_json::json!({
            "publicKey": {"rawBytes": STANDARD.encode(spki_der)},
            "keyDetails": key_details,
        }),
    )
}

/// Checks the shape of a TransparencyLogEntry answer: kind/version, an inclusion proof with a checkpoint, and a
/// canonicalized body.
pub fn check_log_entry(entry: &serde_json::Value) -> Result<(), KeylessError> {
    let bad = |reason: &str| KeylessError::Response {
        service: "Rekor",
        reason: reason.to_string(),
    };
    if entry
        .pointer("/kindVersion/kind")
        .and_then(|v| v.as_str())
        .is_none()
    {
        return Err(bad("the log entry has no kindVersion.kind"));
    }
    if entry
        .get("canonicalizedBody")
        .and_then(|v| v.as_str())
        .is_none()
    {
        return Err(bad("the log entry has no canonicalizedBody"));
    }
    if entry
        .pointer("/inclusionProof/checkpoint/envelope")
        .and_then(|v| v.as_str())
        .is_none()
    {
        return Err(bad(
            "the log entry has no inclusion proof with a checkpoint",
        ));
    }
    Ok(())
}

/// Adds an entry to the Rekor v2 log at `base_url` and returns its TransparencyLogEntry.
pub async fn create_entry(
    http: &reqwest::Client,
    base_url: &str,
    request: &serde_json::Value,
) -> Result<serde_json::Value, KeylessError> {
    let url = format!("{}/api/v2/log/entries", base_url.trim_end_matches('/'));
    let builder = http
        .post(&url)
        .header("Content-Type", "application/json")
        .header("Accept", "application/json")
        .body(request.to_string());
    let body = service_http::send("Rekor", &url, builder, None).await?;
    let entry: serde_json::Value =
        serde_json::from_slice(&body).map_err(|e| KeylessError::Response {
            service: "Rekor",
            reason: format!("the log entry is not JSON: {e}"),
        })?;
    check_log_entry(&entry)?;
    Ok(entry)
}
