//! Fulcio's v2 API: `POST /api/v2/signingCert` trades an OIDC token and a proof of possession of a fresh key
//! for a short-lived code-signing certificate (with an embedded SCT from the CT log).
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use kibaship_sign::SigningKey;
use kibaship_sigstore::{Certificate, pem};
use serde::Deserialize;

use crate::identity_token::IdentityToken;
use crate::keyless::KeylessError;
use crate::service_http;

/// A certificate chain from Fulcio, leaf first, DER.
#[derive(Debug, Clone)]
pub struct SigningCertificate {
    /// The leaf certificate (DER), issued for the ephemeral key.
    pub leaf: Vec<u8>,
    /// The intermediates and root that follow it (DER).
    pub chain: Vec<Vec<u8>>,
}

/// `der` as a PEM `CERTIFICATE` block (64-column base64, trailing newline), as cosign writes certificates into
/// annotations and Rekor entries.
pub fn certificate_pem(der: &[u8]) -> String {
    pem::encode("CERTIFICATE", der)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SigningCertResponse {
    signed_certificate_embedded_sct: Option<ChainHolder>,
    signed_certificate_detached_sct: Option<ChainHolder>,
}

#[derive(Deserialize)]
struct ChainHolder {
    chain: Chain,
}

#[derive(Deserialize)]
struct Chain {
    certificates: Vec<String>,
}

/// The JSON body of a signingCert request (the proof of possession is a signature over the token's subject).
pub fn signing_cert_request(
    token: &IdentityToken,
    key: &SigningKey,
) -> Result<serde_json::Value, KeylessError> {
    let proof = key.sign(token.challenge_subject().as_bytes())?;
    Ok(serde_json::json!({
        "credentials": {"oidcIdentityToken": token.secret()},
        "publicKeyRequest": {
            "publicKey": {"algorithm": "ECDSA", "content": key.public_key_pem()?},
            "proofOfPossession": STANDARD.encode(proof),
        },
    }))
}

/// Reads Fulcio's answer: the chain with an embedded SCT (a detached SCT is refused: verifiers need it embedded).
pub fn parse_signing_cert_response(
    body: &[u8],
    key: &SigningKey,
) -> Result<SigningCertificate, KeylessError> {
    let bad = |reason: String| KeylessError::Response {
        service: "Fulcio",
        reason,
    };
    let parsed: SigningCertResponse = serde_json::from_slice(body)
        .map_err(|e| bad(format!("signingCert answer is not the v2 JSON: {e}")))?;
    let holder = match (
        parsed.signed_certificate_embedded_sct,
        parsed.signed_certificate_detached_sct,
    ) {
        (Some(h), _) => h,
        (None, Some(_)) => {
            return Err(bad(
                "the certificate came with a detached SCT; this Fulcio has no CT log configured, and verifiers need the SCT embedded".into(),
            ));
        }
        (None, None) => return Err(bad("signingCert answer holds no certificate chain".into())),
    };
    let mut ders = Vec::new();
    for pem in &holder.chain.certificates {
        let mut found = pem::decode_all(pem, "CERTIFICATE")
            .map_err(|e| bad(format!("a chain entry is not a PEM certificate: {e}")))?;
        ders.append(&mut found);
    }
    if ders.is_empty() {
        return Err(bad("the certificate chain is empty".into()));
    }
    let leaf = ders.remove(0);
    let cert = Certificate::from_der(&leaf)
        .map_err(|e| bad(format!("the leaf certificate does not parse: {e}")))?;
    if cert.spki() != key.public_key_der()?.as_slice() {
        return Err(bad(
            "the certificate is not for the key that was sent".into()
        ));
    }
    Ok(SigningCertificate { leaf, chain: ders })
}

/// Requests a certificate for `key` from the Fulcio at `base_url`.
pub async fn request_signing_certificate(
    http: &reqwest::Client,
    base_url: &str,
    token: &IdentityToken,
    key: &SigningKey,
) -> Result<SigningCertificate, KeylessError> {
    let url = format!("{}/api/v2/signingCert", base_url.trim_end_matches('/'));
    let body = signing_cert_request(token, key)?;
    let request = http
        .post(&url)
        .header("Content-Type", "application/json")
        .header("Accept", "application/json")
        .body(body.to_string());
    let answer = service_http::send("Fulcio", &url, request, Some(token.secret())).await?;
    parse_signing_cert_response(&answer, key)
}
