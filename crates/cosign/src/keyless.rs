//! Keyless signing: an OIDC identity token, an ephemeral P-256 key, a Fulcio certificate, a Rekor v2 entry and an
//! RFC 3161 timestamp, put together in a Sigstore bundle v0.3.
//!
//! The steps, as cosign v3 takes them:
//! 1. a fresh P-256 key (aws-lc-rs), never stored;
//! 2. Fulcio `POST /api/v2/signingCert` with the token and a proof of possession (the key's signature over the
//!    token's subject): a certificate for the key with the identity in its SAN and an embedded SCT;
//! 3. the signature over the content (a DSSE envelope's PAE, or a blob);
//! 4. an RFC 3161 timestamp over the signature from the TSA: Rekor v2 gives no signed entry timestamp, so the
//!    TSA's time is the signing time verifiers check the short-lived certificate against;
//! 5. a Rekor v2 entry, whose TransparencyLogEntry (inclusion proof and signed checkpoint) goes into the bundle.
//!    Rekor v2 accepts only `hashedrekord` v0.0.2 (rekor-tiles answers a `dsse` request with "invalid type, must
//!    be hashedrekord"; its `dsse` type is deprecated), so a DSSE envelope, image signature or attestation, is
//!    logged as a `hashedrekord` over SHA-256 of its PAE, as cosign v3.1.3 does.
//!
//! For cosign's legacy `.sig`/`.att` layout, whose Rekor bundle annotation carries a signed entry timestamp
//! (SET) that only Rekor v1 issues, [`KeylessSigner::sign_message_rekor_v1`] and
//! [`KeylessSigner::sign_dsse_rekor_v1`] log the signature in a Rekor v1 log instead ([`rekor_v1`]:
//! `hashedrekord` v0.0.1 for simple-signing payloads, `dsse` v0.0.1 for attestation envelopes). The SET dates
//! the certificate, so no TSA is needed there.
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use kibaship_sign::SigningKey;
use kibaship_sigstore::{HashAlgorithm, pae};

use crate::bundle_layout::BUNDLE_V03_MEDIA_TYPE;
use crate::fulcio::{self, SigningCertificate};
use crate::identity_token::{IdentityToken, TokenError};
use crate::rekor_v1;
use crate::rekor_v2;
use crate::signing_config::{SigningConfigError, SigningServices};
use crate::tsa;

/// Why keyless signing failed. No message ever contains the identity token.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeylessError {
    /// The identity token is unusable.
    #[error(transparent)]
    Token(#[from] TokenError),
    /// The signing config is unusable.
    #[error(transparent)]
    Config(#[from] SigningConfigError),
    /// A service could not be reached.
    #[error("{service} at {url} could not be reached: {reason}")]
    Unreachable {
        /// `Fulcio`, `Rekor` or `TSA`.
        service: &'static str,
        /// The URL.
        url: String,
        /// The transport error.
        reason: String,
    },
    /// A service answered with an error status.
    #[error("{service} refused the request ({url} answered {status}): {body}")]
    Refused {
        /// `Fulcio`, `Rekor` or `TSA`.
        service: &'static str,
        /// The URL.
        url: String,
        /// HTTP status.
        status: u16,
        /// An excerpt of the answer.
        body: String,
    },
    /// A service answered something unusable.
    #[error("{service}: {reason}")]
    Response {
        /// `Fulcio`, `Rekor` or `TSA`.
        service: &'static str,
        /// What was wrong.
        reason: String,
    },
    /// The ephemeral key failed.
    #[error("ephemeral key: {0}")]
    Key(#[from] kibaship_sign::KeyError),
    /// No Rekor log of the version the layout needs was given. (The message names no flag: kibaverify and the
    /// Tekton step each say how to give one in their own terms.)
    #[error(
        "no Rekor v{version} log: {why} (name one, or list one with majorApiVersion {version} in the signing config's rekorTlogUrls)"
    )]
    NoRekorLog {
        /// 1 or 2.
        version: u8,
        /// Why that version is needed.
        why: &'static str,
    },
    /// No timestamp authority was given.
    #[error(
        "no timestamp authority: Rekor v2 entries carry no signed time, so keyless signing needs a TSA (name one, or list one in the signing config's tsaUrls)"
    )]
    NoTimestampAuthority,
}

/// A keyless signature, ready to store.
#[derive(Debug, Clone)]
pub struct KeylessBundle {
    /// The Sigstore bundle v0.3 JSON.
    pub json: Vec<u8>,
    /// The Fulcio certificate (DER) the signature verifies with.
    pub certificate: Vec<u8>,
    /// The Rekor log index of the entry.
    pub log_index: String,
    /// The Rekor major API version the entry was made in: 2 (rekor-tiles), or 1 when the signing config offered
    /// only a Rekor v1 log ([`KeylessSigner::sign_dsse`]).
    pub rekor_version: u8,
}

/// A keyless signature logged in Rekor v1: what a legacy `.sig`/`.att` layer's annotations carry.
#[derive(Debug, Clone)]
pub struct LegacyKeylessSignature {
    /// The signature (over the payload, or the DSSE PAE).
    pub signature: Vec<u8>,
    /// The Fulcio leaf certificate (DER).
    pub certificate: Vec<u8>,
    /// The leaf as PEM (`dev.sigstore.cosign/certificate`).
    pub certificate_pem: String,
    /// The intermediates and root as PEM, concatenated (`dev.sigstore.cosign/chain`).
    pub chain_pem: String,
    /// The Rekor v1 entry, with its SET (`dev.sigstore.cosign/bundle`).
    pub entry: rekor_v1::LogEntry,
}

impl LegacyKeylessSignature {
    fn new(
        signature: Vec<u8>,
        cert: &SigningCertificate,
        certificate_pem: String,
        entry: rekor_v1::LogEntry,
    ) -> Self {
        LegacyKeylessSignature {
            signature,
            certificate: cert.leaf.clone(),
            certificate_pem,
            chain_pem: cert
                .chain
                .iter()
                .map(|der| crate::fulcio::certificate_pem(der))
                .collect(),
            entry,
        }
    }
}

/// Signs with a fresh key and certificate for each signature.
#[derive(Debug)]
pub struct KeylessSigner {
    http: reqwest::Client,
    services: SigningServices,
    token: IdentityToken,
}

/// Current Unix time.
pub fn now_unix() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

impl KeylessSigner {
    /// A signer for `services` presenting `token`. `http` is the HTTP client (timeouts and TLS roots are its
    /// own). A TSA is required beside a Rekor v2 log, whose entries carry no signed time (see
    /// [`KeylessError::NoTimestampAuthority`]); with only a Rekor v1 log, its SET dates the certificate.
    pub fn new(
        http: reqwest::Client,
        services: SigningServices,
        token: IdentityToken,
    ) -> Result<Self, KeylessError> {
        if services.tsa_url.is_none() && services.rekor_url.is_some() {
            return Err(KeylessError::NoTimestampAuthority);
        }
        Ok(KeylessSigner {
            http,
            services,
            token,
        })
    }

    /// The services used.
    pub fn services(&self) -> &SigningServices {
        &self.services
    }

    /// The token's issuer (what verifiers give as `--certificate-oidc-issuer`).
    pub fn issuer(&self) -> &str {
        self.token.issuer()
    }

    async fn certificate(&self) -> Result<(SigningKey, SigningCertificate), KeylessError> {
        let key = SigningKey::generate()?;
        let cert = fulcio::request_signing_certificate(
            &self.http,
            &self.services.fulcio_url,
            &self.token,
            &key,
        )
        .await?;
        Ok((key, cert))
    }

    fn rekor_v2_url(&self) -> Result<&str, KeylessError> {
        self.services
            .rekor_url
            .as_deref()
            .ok_or(KeylessError::NoRekorLog {
                version: 2,
                why: "bundle-layout signatures are logged in Rekor v2",
            })
    }

    fn rekor_v1_url(&self) -> Result<&str, KeylessError> {
        self.services
            .rekor_v1_url
            .as_deref()
            .ok_or(KeylessError::NoRekorLog {
                version: 1,
                why: "legacy-layout signatures carry a Rekor v1 signed entry timestamp",
            })
    }

    /// Signs `payload` (cosign's simple-signing JSON) as a message signature and logs it in Rekor v1 as a
    /// `hashedrekord` v0.0.1 over its SHA-256, with the certificate as the signer: what `cosign sign
    /// --new-bundle-format=false` writes into a `.sig` layer.
    pub async fn sign_message_rekor_v1(
        &self,
        payload: &[u8],
    ) -> Result<LegacyKeylessSignature, KeylessError> {
        let url = self.rekor_v1_url()?;
        let (key, cert) = self.certificate().await?;
        let signature = key.sign(payload)?;
        let certificate_pem = crate::fulcio::certificate_pem(&cert.leaf);
        let request = rekor_v1::hashed_rekord_request(
            &HashAlgorithm::Sha256.digest(payload),
            &signature,
            &certificate_pem,
        );
        let entry = rekor_v1::create_entry(&self.http, url, &request).await?;
        Ok(LegacyKeylessSignature::new(
            signature,
            &cert,
            certificate_pem,
            entry,
        ))
    }

    /// Signs `payload` in a DSSE envelope of `payload_type` and logs the envelope in Rekor v1 as a `dsse` v0.0.1
    /// entry: what `cosign attest --new-bundle-format=false` writes into a `.att` layer. Returns the envelope
    /// JSON (the layer's content) and the signature material.
    pub async fn sign_dsse_rekor_v1(
        &self,
        payload_type: &str,
        payload: &[u8],
    ) -> Result<(Vec<u8>, LegacyKeylessSignature), KeylessError> {
        let url = self.rekor_v1_url()?;
        let (key, cert) = self.certificate().await?;
        let signature = key.sign(&pae(payload_type, payload))?;
        let envelope = serde_json::json!({
            "payloadType": payload_type,
            "payload": STANDARD.encode(payload),
            "signatures": [{"keyid": "", "sig": STANDARD.encode(&signature)}],
        })
        .to_string();
        let certificate_pem = crate::fulcio::certificate_pem(&cert.leaf);
        let request = rekor_v1::dsse_request(&envelope, &certificate_pem);
        let entry = rekor_v1::create_entry(&self.http, url, &request).await?;
        Ok((
            envelope.into_bytes(),
            LegacyKeylessSignature::new(signature, &cert, certificate_pem, entry),
        ))
    }

    async fn timestamp(&self, signature: &[u8]) -> Result<Vec<u8>, KeylessError> {
        let url = self
            .services
            .tsa_url
            .as_deref()
            .ok_or(KeylessError::NoTimestampAuthority)?;
        tsa::request_timestamp(&self.http, url, &HashAlgorithm::Sha256.digest(signature)).await
    }

    /// Signs `payload` in a DSSE envelope of `payload_type`, logged in Rekor v2 as a `hashedrekord` over its
    /// PAE. When the services offer no Rekor v2 log but a Rekor v1 one (a signing config such as Sigstore's
    /// production one), the envelope is logged there as a `dsse` v0.0.1 entry, as cosign v3.1.3 (sigstore-go)
    /// does, and the bundle's entry carries both the inclusion proof with its checkpoint and the SET as the
    /// inclusion promise; the TSA's timestamp is added when a TSA is named.
    pub async fn sign_dsse(
        &self,
        payload_type: &str,
        payload: &[u8],
    ) -> Result<KeylessBundle, KeylessError> {
        if self.services.rekor_url.is_none() && self.services.rekor_v1_url.is_some() {
            return self.sign_dsse_bundle_rekor_v1(payload_type, payload).await;
        }
        self.rekor_v2_url()?;
        let (key, cert) = self.certificate().await?;
        let signed = pae(payload_type, payload);
        let signature = key.sign(&signed)?;
        let timestamp = self.timestamp(&signature).await?;
        let request = rekor_v2::hashed_rekord_request(
            &HashAlgorithm::Sha256.digest(&signed),
            &signature,
            &cert.leaf,
        );
        let entry = rekor_v2::create_entry(&self.http, self.rekor_v2_url()?, &request).await?;
        let content = serde_json::json!({
            "dsseEnvelope": {
                "payload": STANDARD.encode(payload),
                "payloadType": payload_type,
                "signatures": [{"sig": STANDARD.encode(&signature)}],
            }
        });
        Ok(assemble(&cert.leaf, entry, Some(&timestamp), content, 2))
    }

    /// [`KeylessSigner::sign_dsse`] with a Rekor v1 log: a `dsse` v0.0.1 entry with its SET and inclusion proof.
    async fn sign_dsse_bundle_rekor_v1(
        &self,
        payload_type: &str,
        payload: &[u8],
    ) -> Result<KeylessBundle, KeylessError> {
        let (_, signed) = self.sign_dsse_rekor_v1(payload_type, payload).await?;
        let timestamp = match self.services.tsa_url {
            Some(_) => Some(self.timestamp(&signed.signature).await?),
            None => None,
        };
        let entry = signed.entry.transparency_log_entry()?;
        if entry.get("inclusionProof").is_none() {
            return Err(KeylessError::Response {
                service: "Rekor",
                reason: "the Rekor v1 entry has no inclusion proof with a checkpoint, which a bundle v0.3 needs"
                    .into(),
            });
        }
        let content = serde_json::json!({
            "dsseEnvelope": {
                "payload": STANDARD.encode(payload),
                "payloadType": payload_type,
                "signatures": [{"sig": STANDARD.encode(&signed.signature)}],
            }
        });
        Ok(assemble(
            &signed.certificate,
            entry,
            timestamp.as_deref(),
            content,
            1,
        ))
    }

    /// Signs `blob` as a message signature (SHA-256), logged as `hashedrekord`: what `cosign sign-blob --bundle`
    /// writes.
    pub async fn sign_blob(&self, blob: &[u8]) -> Result<KeylessBundle, KeylessError> {
        self.sign_blob_digest(&HashAlgorithm::Sha256.digest(blob))
            .await
    }

    /// As [`KeylessSigner::sign_blob`], for a blob the caller hashed with SHA-256 (streamed, never held).
    pub async fn sign_blob_digest(&self, digest: &[u8]) -> Result<KeylessBundle, KeylessError> {
        self.rekor_v2_url()?;
        let (key, cert) = self.certificate().await?;
        let signature = key.sign_digest(digest)?;
        let timestamp = self.timestamp(&signature).await?;
        let request = rekor_v2::hashed_rekord_request(digest, &signature, &cert.leaf);
        let entry = rekor_v2::create_entry(&self.http, self.rekor_v2_url()?, &request).await?;
        let content = serde_json::json!({
            "messageSignature": {
                "messageDigest": {"algorithm": "SHA2_256", "digest": STANDARD.encode(digest)},
                "signature": STANDARD.encode(&signature),
            }
        });
        Ok(assemble(&cert.leaf, entry, Some(&timestamp), content, 2))
    }
}

/// The bundle v0.3: leaf certificate (DER), the log entry (as Rekor v2 returned it, or made from a Rekor v1
/// answer), the timestamp response if any, the content.
fn assemble(
    leaf: &[u8],
    entry: serde_json::Value,
    timestamp: Option<&[u8]>,
    content: serde_json::Value,
    rekor_version: u8,
) -> KeylessBundle {
    let log_index = entry_log_index(&entry);
    let material = (
        "certificate",
        serde_json::json!({"rawBytes": STANDARD.encode(leaf)}),
    );
    KeylessBundle {
        json: logged_bundle(material, entry, timestamp, content),
        certificate: leaf.to_vec(),
        log_index,
        rekor_version,
    }
}

/// A log entry's `logIndex` as text (Rekor v2 writes a string, a Rekor v1 entry made here a number).
pub(crate) fn entry_log_index(entry: &serde_json::Value) -> String {
    entry
        .get("logIndex")
        .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
        .unwrap_or_default()
}

/// The bytes of a bundle v0.3 with a transparency-log entry: its verification material (`("certificate", ...)`
/// or `("publicKey", ...)`), the entry, the RFC 3161 timestamp response if any, and the content
/// (`messageSignature` or `dsseEnvelope`), for keyless and logged key signatures alike.
pub(crate) fn logged_bundle(
    material: (&str, serde_json::Value),
    entry: serde_json::Value,
    timestamp: Option<&[u8]>,
    content: serde_json::Value,
) -> Vec<u8> {
    // The material first, then the entries, as both signers wrote them before (serde_json may keep key order).
    let mut verification = serde_json::Map::new();
    verification.insert(material.0.to_string(), material.1);
    verification.insert("tlogEntries".into(), serde_json::json!([entry]));
    let mut bundle = serde_json::json!({
        "mediaType": BUNDLE_V03_MEDIA_TYPE,
        "verificationMaterial": verification,
    });
    if let Some(timestamp) = timestamp {
        bundle["verificationMaterial"]["timestampVerificationData"] = serde_json::json!({
            "rfc3161Timestamps": [{"signedTimestamp": STANDARD.encode(timestamp)}],
        });
    }
    if let (Some(b), Some(c)) = (bundle.as_object_mut(), content.as_object()) {
        for (k, v) in c {
            b.insert(k.clone(), v.clone());
        }
    }
    // A Value of strings, numbers and objects always serialises.
    serde_json::to_vec(&bundle).unwrap_or_default()
}
