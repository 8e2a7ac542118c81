//! Key-based signatures logged in a transparency log, as `cosign sign --key` does by default: the signature
//! made with the user's key is also entered in Rekor, so verifiers need no `--insecure-ignore-tlog`.
//!
//! - Legacy layout (`.sig`): Rekor v1, a `hashedrekord` v0.0.1 over SHA-256 of the simple-signing payload with
//!   the public key (PEM) as the signer; the answer's signed entry timestamp (SET) goes into the layer's
//!   `dev.sigstore.cosign/bundle` annotation, exactly as for keyless legacy layers.
//! - Bundle layout: Rekor v2, a `hashedrekord` v0.0.2 over SHA-256 of the DSSE PAE with the public key as the
//!   verifier, and an RFC 3161 timestamp from the TSA (Rekor v2 entries carry no signed time); the bundle v0.3
//!   holds the key's hint, the TransparencyLogEntry and the timestamp.
//!
//! - Blobs (`sign-blob`, `attest-blob`): a bundle v0.3 in either log, as cosign v3.1.3 (sigstore-go) writes it:
//!   Rekor v2 when the services name one (a `hashedrekord` v0.0.2 over the blob's digest, or over the PAE of an
//!   attestation's DSSE envelope, plus the TSA's timestamp), else Rekor v1 (`hashedrekord` v0.0.1 / `dsse`
//!   v0.0.1, the entry with its inclusion proof and the SET as inclusion promise, a TSA timestamp when one is
//!   named).
//!
//! Rekor v2 (rekor-tiles v2.3.0's default `--client-signing-algorithms`) accepts every key cosign signs with here:
//! ECDSA P-256/SHA-256, P-384/SHA-384, P-521/SHA-512 and RSA PKCS#1 v1.5/SHA-256 of 2048, 3072 or 4096 bits; an
//! RSA key of another size is refused before anything is sent ([`rekor_v2_key_details`]). Rekor v1 entries record
//! a SHA-256 hash, so there only keys that sign over SHA-256 (ECDSA P-256, RSA) are logged; the others are
//! refused before anything is sent.
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use kibaship_sign::SigningKey;
use kibaship_sign::keys::KeyKind;
use kibaship_sigstore::{HashAlgorithm, pae};

use crate::bundle_layout::public_key_hint;
use crate::check::IN_TOTO_PAYLOAD_TYPE;
use crate::keyless::KeylessError;
use crate::signing_config::RekorLogs;
use crate::{rekor_v1, rekor_v2, tsa};

/// Why a key signature could not be logged.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyLogError {
    /// No Rekor log of the version the layout needs was named. (No flag is named: each front end says how.)
    #[error(
        "no Rekor v{version} log: {why} (name one, or list one with majorApiVersion {version} in the signing config's rekorTlogUrls)"
    )]
    NoRekorLog {
        /// 1 or 2.
        version: u8,
        /// Why that version is needed.
        why: &'static str,
    },
    /// Rekor v2 without a timestamp authority.
    #[error(
        "no timestamp authority: Rekor v2 entries carry no signed time, so a signature logged there needs an RFC 3161 timestamp (name a TSA, or list one in the signing config's tsaUrls)"
    )]
    NoTimestampAuthority,
    /// A key whose signatures cannot be logged here.
    #[error("{kind:?} keys are not logged in Rekor {rekor} yet: {why}")]
    UnsupportedKey {
        /// The key's kind.
        kind: KeyKind,
        /// `v1` or `v2`.
        rekor: &'static str,
        /// Why.
        why: &'static str,
    },
    /// Rekor or the TSA failed.
    #[error(transparent)]
    Service(#[from] KeylessError),
    /// The key could not sign.
    #[error("signing: {0}")]
    Key(#[from] kibaship_sign::KeyError),
}

/// The logs (and timestamp authority) a key signature is entered in.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogServices {
    /// Rekor v2 base URL (bundle layout).
    pub rekor_url: Option<String>,
    /// Rekor v1 base URL (legacy layout).
    pub rekor_v1_url: Option<String>,
    /// TSA endpoint (`.../api/v1/timestamp`), needed with Rekor v2.
    pub tsa_url: Option<String>,
}

/// The log entry a key signature got, as reported after signing.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LoggedEntry {
    /// Rekor's major API version: 1 or 2.
    pub rekor_version: u8,
    /// The log's URL.
    pub log: String,
    /// Index in the log.
    pub log_index: String,
    /// Rekor v1: the entry's UUID.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rekor_uuid: Option<String>,
    /// Rekor v1: when the log integrated the entry (Unix seconds, signed by the SET).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub integrated_time: Option<i64>,
    /// Rekor v2: the TSA that timestamped the signature.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timestamp_authority: Option<String>,
}

/// Enters key signatures in Rekor (v1 for the legacy layout, v2 with a TSA for the bundle layout).
#[derive(Debug, Clone)]
pub struct KeyTransparencyLog {
    http: reqwest::Client,
    services: LogServices,
}

impl KeyTransparencyLog {
    /// A log client for `services`, requiring the logs `needs` names (and a TSA beside Rekor v2). `http` is the
    /// HTTP client (timeouts and TLS roots are its own).
    pub fn new(
        http: reqwest::Client,
        services: LogServices,
        needs: RekorLogs,
    ) -> Result<Self, KeyLogError> {
        let log = KeyTransparencyLog { http, services };
        if matches!(needs, RekorLogs::V1 | RekorLogs::Both) {
            log.rekor_v1_url()?;
        }
        if matches!(needs, RekorLogs::V2 | RekorLogs::Both) {
            log.rekor_v2_url()?;
            log.tsa_url()?;
        }
        Ok(log)
    }

    /// The services used.
    pub fn services(&self) -> &LogServices {
        &self.services
    }

    fn rekor_v1_url(&self) -> Result<&str, KeyLogError> {
        self.services
            .rekor_v1_url
            .as_deref()
            .ok_or(KeyLogError::NoRekorLog {
                version: 1,
                why: "legacy-layout signatures carry a Rekor v1 signed entry timestamp",
            })
    }

    fn rekor_v2_url(&self) -> Result<&str, KeyLogError> {
        self.services
            .rekor_url
            .as_deref()
            .ok_or(KeyLogError::NoRekorLog {
                version: 2,
                why: "bundle-layout signatures are logged in Rekor v2",
            })
    }

    fn tsa_url(&self) -> Result<&str, KeyLogError> {
        self.services
            .tsa_url
            .as_deref()
            .ok_or(KeyLogError::NoTimestampAuthority)
    }

    /// Enters `signature` (by `key`, over `payload`: cosign's simple-signing JSON) in Rekor v1 as a
    /// `hashedrekord` v0.0.1 with the public key as the signer, as `cosign sign --key --new-bundle-format=false`
    /// does; the entry's SET is what the legacy layer's bundle annotation carries.
    pub async fn log_message_rekor_v1(
        &self,
        key: &SigningKey,
        payload: &[u8],
        signature: &[u8],
    ) -> Result<rekor_v1::LogEntry, KeyLogError> {
        refuse_unless_sha256(key)?;
        let url = self.rekor_v1_url()?;
        let request = rekor_v1::hashed_rekord_request(
            &HashAlgorithm::Sha256.digest(payload),
            signature,
            &key.public_key_pem()?,
        );
        Ok(rekor_v1::create_entry(&self.http, url, &request).await?)
    }

    /// Enters `envelope` (a DSSE envelope's JSON, signed by `key`) in Rekor v1 as a `dsse` v0.0.1 entry with the
    /// public key as verifier, as `cosign attest --key --new-bundle-format=false` does; the entry's SET is what
    /// the legacy `.att` layer's bundle annotation carries.
    pub async fn log_dsse_rekor_v1(
        &self,
        key: &SigningKey,
        envelope: &[u8],
    ) -> Result<rekor_v1::LogEntry, KeyLogError> {
        refuse_unless_sha256(key)?;
        let url = self.rekor_v1_url()?;
        let envelope = String::from_utf8_lossy(envelope);
        let request = rekor_v1::dsse_request(&envelope, &key.public_key_pem()?);
        Ok(rekor_v1::create_entry(&self.http, url, &request).await?)
    }

    /// Signs `statement` (an in-toto statement) with `key` in a DSSE envelope, timestamps the signature and
    /// enters it in Rekor v2 (`hashedrekord` v0.0.2 over SHA-256 of the PAE, the public key as verifier), and
    /// returns the bundle v0.3 (`publicKey` hint, the log entry, the timestamp, the envelope) and the entry.
    pub async fn sign_dsse_rekor_v2(
        &self,
        key: &SigningKey,
        statement: &[u8],
    ) -> Result<(Vec<u8>, LoggedEntry), KeyLogError> {
        let key_details = rekor_v2_key_details(key)?;
        let url = self.rekor_v2_url()?;
        let tsa_url = self.tsa_url()?;
        let signed = pae(IN_TOTO_PAYLOAD_TYPE, statement);
        let signature = key.sign(&signed)?;
        let spki = key.public_key_der()?;
        let timestamp = self.timestamp(tsa_url, &signature).await?;
        let request = rekor_v2::hashed_rekord_request_for_key(
            &key.hash_algorithm().digest(&signed),
            &signature,
            &spki,
            key_details,
        );
        let entry = rekor_v2::create_entry(&self.http, url, &request).await?;
        Ok(key_bundle(
            &spki,
            entry,
            Some(&timestamp),
            dsse_content(statement, &signature),
            self.logged_v2(url),
        ))
    }

    /// Signs a blob's `digest` (of the key's hash, [`SigningKey::hash_algorithm`]) with `key` and logs the
    /// signature, as `cosign sign-blob --key --bundle` does with a signing config: in Rekor v2 (`hashedrekord`
    /// v0.0.2 over the digest, with the TSA's timestamp) when one is named, else in Rekor v1 (`hashedrekord`
    /// v0.0.1; SHA-256 keys only). Returns the bundle v0.3 (`publicKey` hint, the entry, the timestamp, the
    /// message signature) and the entry.
    pub async fn sign_blob_digest(
        &self,
        key: &SigningKey,
        digest: &[u8],
    ) -> Result<(Vec<u8>, LoggedEntry), KeyLogError> {
        let spki = key.public_key_der()?;
        if self.services.rekor_url.is_none() && self.services.rekor_v1_url.is_some() {
            refuse_unless_sha256(key)?;
            let signature = key.sign_digest(digest)?;
            let request =
                rekor_v1::hashed_rekord_request(digest, &signature, &key.public_key_pem()?);
            let entry = rekor_v1::create_entry(&self.http, self.rekor_v1_url()?, &request).await?;
            let timestamp = self.optional_timestamp(&signature).await?;
            return Ok(key_bundle(
                &spki,
                bundle_entry_v1(&entry)?,
                timestamp.as_deref(),
                message_content(key, digest, &signature),
                self.logged_v1(&entry),
            ));
        }
        let key_details = rekor_v2_key_details(key)?;
        let url = self.rekor_v2_url()?;
        let tsa_url = self.tsa_url()?;
        let signature = key.sign_digest(digest)?;
        let timestamp = self.timestamp(tsa_url, &signature).await?;
        let request =
            rekor_v2::hashed_rekord_request_for_key(digest, &signature, &spki, key_details);
        let entry = rekor_v2::create_entry(&self.http, url, &request).await?;
        Ok(key_bundle(
            &spki,
            entry,
            Some(&timestamp),
            message_content(key, digest, &signature),
            self.logged_v2(url),
        ))
    }

    /// Signs `statement` in a DSSE envelope with `key` and logs it for a bundle, as `cosign attest-blob --key
    /// --bundle` does with a signing config: Rekor v2 when one is named
    /// ([`KeyTransparencyLog::sign_dsse_rekor_v2`]), else Rekor v1 as a `dsse` v0.0.1 entry (SHA-256 keys only)
    /// whose inclusion proof and SET go into the bundle, with a TSA timestamp when a TSA is named.
    pub async fn sign_dsse_bundle(
        &self,
        key: &SigningKey,
        statement: &[u8],
    ) -> Result<(Vec<u8>, LoggedEntry), KeyLogError> {
        if !(self.services.rekor_url.is_none() && self.services.rekor_v1_url.is_some()) {
            return self.sign_dsse_rekor_v2(key, statement).await;
        }
        refuse_unless_sha256(key)?;
        let (envelope, signature) = crate::attest::signed_envelope(key, statement)?;
        let entry = self.log_dsse_rekor_v1(key, &envelope).await?;
        let timestamp = self.optional_timestamp(&signature).await?;
        Ok(key_bundle(
            &key.public_key_der()?,
            bundle_entry_v1(&entry)?,
            timestamp.as_deref(),
            dsse_content(statement, &signature),
            self.logged_v1(&entry),
        ))
    }

    /// The TSA's RFC 3161 timestamp over `signature` (its SHA-256).
    async fn timestamp(&self, tsa_url: &str, signature: &[u8]) -> Result<Vec<u8>, KeyLogError> {
        Ok(tsa::request_timestamp(
            &self.http,
            tsa_url,
            &HashAlgorithm::Sha256.digest(signature),
        )
        .await?)
    }

    /// A timestamp when a TSA is named (beside Rekor v1, where the SET dates the entry and a TSA is optional).
    async fn optional_timestamp(&self, signature: &[u8]) -> Result<Option<Vec<u8>>, KeyLogError> {
        match self.services.tsa_url.as_deref() {
            Some(url) => Ok(Some(self.timestamp(url, signature).await?)),
            None => Ok(None),
        }
    }

    /// What the text output and JSON report say about a Rekor v2 entry.
    fn logged_v2(&self, url: &str) -> LoggedEntry {
        LoggedEntry {
            rekor_version: 2,
            log: url.to_string(),
            log_index: String::new(),
            rekor_uuid: None,
            integrated_time: None,
            timestamp_authority: self.services.tsa_url.clone(),
        }
    }

    /// What the text output and JSON report say about a Rekor v1 entry.
    pub fn logged_v1(&self, entry: &rekor_v1::LogEntry) -> LoggedEntry {
        LoggedEntry {
            rekor_version: 1,
            log: self.services.rekor_v1_url.clone().unwrap_or_default(),
            log_index: entry.log_index.to_string(),
            rekor_uuid: Some(entry.uuid.clone()),
            integrated_time: Some(entry.integrated_time),
            timestamp_authority: None,
        }
    }
}

/// Rekor v1 entries here record SHA-256 hashes: keys that sign over another hash are refused before upload.
fn refuse_unless_sha256(key: &SigningKey) -> Result<(), KeyLogError> {
    if key.hash_algorithm() != HashAlgorithm::Sha256 {
        return Err(KeyLogError::UnsupportedKey {
            kind: key.kind(),
            rekor: "v1",
            why: "only keys that sign over SHA-256 (ECDSA P-256, RSA) are logged in Rekor v1; Rekor v2 takes P-384 and P-521 keys",
        });
    }
    Ok(())
}

/// The `keyDetails` Rekor v2 needs for `key`, or why rekor-tiles (v2.3.0, default `--client-signing-algorithms`:
/// RSA PKCS#1 v1.5 2048/3072/4096 with SHA-256, ECDSA P-256/SHA-256, P-384/SHA-384, P-521/SHA-512, Ed25519)
/// would refuse it, said before anything is sent.
pub fn rekor_v2_key_details(key: &SigningKey) -> Result<&'static str, KeyLogError> {
    let refuse = |why: &'static str| KeyLogError::UnsupportedKey {
        kind: key.kind(),
        rekor: "v2",
        why,
    };
    Ok(match key.kind() {
        KeyKind::EcdsaP256 => rekor_v2::KEY_DETAILS_P256,
        KeyKind::EcdsaP384 => "PKIX_ECDSA_P384_SHA_384",
        KeyKind::EcdsaP521 => "PKIX_ECDSA_P521_SHA_512",
        KeyKind::Rsa => match key.rsa_modulus_bits() {
            Some(2048) => "PKIX_RSA_PKCS1V15_2048_SHA256",
            Some(3072) => "PKIX_RSA_PKCS1V15_3072_SHA256",
            Some(4096) => "PKIX_RSA_PKCS1V15_4096_SHA256",
            _ => {
                return Err(refuse(
                    "Rekor v2 accepts RSA keys of 2048, 3072 or 4096 bits only (rekor-tiles' client signing algorithms)",
                ));
            }
        },
        KeyKind::Ed25519 => {
            return Err(refuse(
                "signing with Ed25519 keys is not supported (cosign signs with them as Ed25519ph)",
            ));
        }
    })
}

/// A Rekor v1 answer as the bundle's TransparencyLogEntry, which a bundle v0.3 needs with an inclusion proof.
fn bundle_entry_v1(entry: &rekor_v1::LogEntry) -> Result<serde_json::Value, KeyLogError> {
    let tlog = entry.transparency_log_entry()?;
    if tlog.get("inclusionProof").is_none() {
        return Err(KeyLogError::Service(KeylessError::Response {
            service: "Rekor",
            reason:
                "the Rekor v1 entry has no inclusion proof with a checkpoint, which a bundle v0.3 needs"
                    .into(),
        }));
    }
    Ok(tlog)
}

/// A bundle's DSSE content: the statement and its signature.
fn dsse_content(statement: &[u8], signature: &[u8]) -> serde_json::Value {
    serde_json::json!({
        "dsseEnvelope": {
            "payload": STANDARD.encode(statement),
            "payloadType": IN_TOTO_PAYLOAD_TYPE,
            "signatures": [{"sig": STANDARD.encode(signature)}],
        }
    })
}

/// A bundle's message signature over a blob's digest (of the key's hash).
fn message_content(key: &SigningKey, digest: &[u8], signature: &[u8]) -> serde_json::Value {
    serde_json::json!({
        "messageSignature": {
            "messageDigest": {
                "algorithm": crate::blob::digest_algorithm_name(key.hash_algorithm()),
                "digest": STANDARD.encode(digest),
            },
            "signature": STANDARD.encode(signature),
        }
    })
}

/// The bundle v0.3 of a logged key signature: the key's hint, the log entry, the timestamp if any, the content;
/// and the entry report with its log index.
fn key_bundle(
    spki: &[u8],
    entry: serde_json::Value,
    timestamp: Option<&[u8]>,
    content: serde_json::Value,
    mut logged: LoggedEntry,
) -> (Vec<u8>, LoggedEntry) {
    if logged.log_index.is_empty() {
        logged.log_index = crate::keyless::entry_log_index(&entry);
    }
    let material = (
        "publicKey",
        serde_json::json!({"hint": public_key_hint(spki)}),
    );
    (
        crate::keyless::logged_bundle(material, entry, timestamp, content),
        logged,
    )
}
