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
//! Keys that sign over SHA-256 are logged (ECDSA P-256 in both layouts, RSA in the legacy layout); the others are
//! refused before anything is sent.
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use kibaship_sign::SigningKey;
use kibaship_sign::keys::KeyKind;
use kibaship_sigstore::{HashAlgorithm, pae};

use crate::bundle_layout::{BUNDLE_V03_MEDIA_TYPE, public_key_hint};
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
        if key.hash_algorithm() != HashAlgorithm::Sha256 {
            return Err(KeyLogError::UnsupportedKey {
                kind: key.kind(),
                rekor: "v1",
                why: "only keys that sign over SHA-256 (ECDSA P-256, RSA) are logged",
            });
        }
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
        if key.hash_algorithm() != HashAlgorithm::Sha256 {
            return Err(KeyLogError::UnsupportedKey {
                kind: key.kind(),
                rekor: "v1",
                why: "only keys that sign over SHA-256 (ECDSA P-256, RSA) are logged",
            });
        }
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
        if key.kind() != KeyKind::EcdsaP256 {
            return Err(KeyLogError::UnsupportedKey {
                kind: key.kind(),
                rekor: "v2",
                why: "only ECDSA P-256 keys are logged in Rekor v2",
            });
        }
        let url = self.rekor_v2_url()?;
        let tsa_url = self.tsa_url()?;
        let signed = pae(IN_TOTO_PAYLOAD_TYPE, statement);
        let signature = key.sign(&signed)?;
        let spki = key.public_key_der()?;
        let timestamp = tsa::request_timestamp(
            &self.http,
            tsa_url,
            &HashAlgorithm::Sha256.digest(&signature),
        )
        .await?;
        let request = rekor_v2::hashed_rekord_request_for_key(
            &HashAlgorithm::Sha256.digest(&signed),
            &signature,
            &spki,
            rekor_v2::KEY_DETAILS_P256,
        );
        let entry = rekor_v2::create_entry(&self.http, url, &request).await?;
        let log_index = entry
            .get("logIndex")
            .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
            .unwrap_or_default();
        let bundle = serde_json::json!({
            "mediaType": BUNDLE_V03_MEDIA_TYPE,
            "verificationMaterial": {
                "publicKey": {"hint": public_key_hint(&spki)},
                "tlogEntries": [entry],
                "timestampVerificationData": {
                    "rfc3161Timestamps": [{"signedTimestamp": STANDARD.encode(&timestamp)}],
                },
            },
            "dsseEnvelope": {
                "payload": STANDARD.encode(statement),
                "payloadType": IN_TOTO_PAYLOAD_TYPE,
                "signatures": [{"sig": STANDARD.encode(&signature)}],
            },
        });
        let logged = LoggedEntry {
            rekor_version: 2,
            log: url.to_string(),
            log_index,
            rekor_uuid: None,
            integrated_time: None,
            timestamp_authority: Some(tsa_url.to_string()),
        };
        // A Value of strings and objects always serialises.
        Ok((serde_json::to_vec(&bundle).unwrap_or_default(), logged))
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
