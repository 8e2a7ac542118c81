//! Sigstore bundles (v0.1, v0.2, v0.3) in their protobuf-JSON form, parsed into checked types.
//! Every malformed field is reported by its JSON path.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;
use serde_json::Value;

use crate::keys::HashAlgorithm;
use crate::protojson::{HASH_ALGORITHMS, enum_name};
use crate::x509::{Certificate, CertificateError};

/// Largest bundle accepted, in bytes.
pub const MAX_BUNDLE_BYTES: usize = 16 * 1024 * 1024;
const MAX_CHAIN: usize = 8;
const MAX_ENTRIES: usize = 16;
const MAX_PROOF_HASHES: usize = 64;
const MAX_TIMESTAMPS: usize = 32;

/// Why a bundle could not be read.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    /// Too large to read.
    #[error("bundle is {0} bytes, more than the {MAX_BUNDLE_BYTES}-byte limit")]
    TooLarge(usize),
    /// Not JSON, or not the expected shape.
    #[error("bundle is not valid JSON of the expected shape: {0}")]
    Json(#[from] serde_json::Error),
    /// The media type names a version we do not know.
    #[error("bundle field `mediaType`: unsupported bundle media type {0:?}")]
    UnknownVersion(String),
    /// A field has a bad value.
    #[error("bundle field `{field}`: {reason}")]
    Field {
        /// JSON path.
        field: String,
        /// What was wrong.
        reason: String,
    },
    /// A certificate does not parse.
    #[error("bundle field `{field}`: {source}")]
    Certificate {
        /// JSON path.
        field: String,
        /// The parse error.
        source: CertificateError,
    },
}

fn field(field: impl Into<String>, reason: impl Into<String>) -> BundleError {
    BundleError::Field {
        field: field.into(),
        reason: reason.into(),
    }
}

/// Bundle format version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub enum BundleVersion {
    /// v0.1: requires an inclusion promise (SET).
    #[serde(rename = "0.1")]
    V0_1,
    /// v0.2: requires an inclusion proof with checkpoint.
    #[serde(rename = "0.2")]
    V0_2,
    /// v0.3: as v0.2, and a single leaf `certificate` instead of a chain.
    #[serde(rename = "0.3")]
    V0_3,
}

/// Who signed: a Fulcio-style certificate or a managed key.
#[derive(Debug, Clone)]
pub enum SignerMaterial {
    /// The leaf certificate (and, for v0.1/v0.2 chains, any intermediates sent with it).
    Certificate {
        /// The signing certificate.
        leaf: Box<Certificate>,
        /// Further certificates from `x509CertificateChain` (not trusted by themselves).
        intermediates: Vec<Certificate>,
    },
    /// A key the verifier must supply.
    PublicKey {
        /// The bundle's key hint, if any.
        hint: Option<String>,
    },
}

/// Checkpoint and Merkle path for one entry.
#[derive(Debug, Clone)]
pub struct InclusionProof {
    /// Index of the entry in the tree the proof is for.
    pub log_index: u64,
    /// Root hash.
    pub root_hash: Vec<u8>,
    /// Tree size.
    pub tree_size: u64,
    /// Sibling hashes, leaf to root.
    pub hashes: Vec<Vec<u8>>,
    /// Signed note text (optional only in v0.1 bundles, where the SET is what counts).
    pub checkpoint: Option<String>,
}

/// One transparency-log entry.
#[derive(Debug, Clone)]
pub struct TlogEntry {
    /// Global log index.
    pub log_index: u64,
    /// Log ID (key ID).
    pub log_id: Vec<u8>,
    /// Entry kind (`hashedrekord`, `dsse`, `intoto`).
    pub kind: String,
    /// Entry version (`0.0.1`, `0.0.2`).
    pub version: String,
    /// Integrated time (0 when absent, as in Rekor v2).
    pub integrated_time: i64,
    /// Signed entry timestamp.
    pub inclusion_promise: Option<Vec<u8>>,
    /// Inclusion proof.
    pub inclusion_proof: Option<InclusionProof>,
    /// The canonicalized entry body (JSON bytes).
    pub canonicalized_body: Vec<u8>,
}

/// A DSSE envelope.
#[derive(Debug, Clone)]
pub struct DsseEnvelope {
    /// Payload bytes.
    pub payload: Vec<u8>,
    /// Payload type.
    pub payload_type: String,
    /// Signatures (exactly one is accepted).
    pub signature: Vec<u8>,
}

/// What was signed.
#[derive(Debug, Clone)]
pub enum Content {
    /// A signature over an artifact.
    MessageSignature {
        /// The declared digest of the artifact (a hint; compared with the artifact).
        digest: Option<(HashAlgorithm, Vec<u8>)>,
        /// The signature.
        signature: Vec<u8>,
    },
    /// A DSSE envelope.
    Dsse(DsseEnvelope),
}

/// A parsed bundle.
#[derive(Debug, Clone)]
pub struct Bundle {
    /// Format version.
    pub version: BundleVersion,
    /// Signer.
    pub signer: SignerMaterial,
    /// Log entries.
    pub tlog_entries: Vec<TlogEntry>,
    /// RFC 3161 signed timestamps (DER `TimeStampToken`s or responses).
    pub timestamps: Vec<Vec<u8>>,
    /// Signed content.
    pub content: Content,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
#[serde(deny_unknown_fields)]
struct RawBundle {
    media_type: Option<String>,
    verification_material: Option<RawMaterial>,
    message_signature: Option<RawMessageSignature>,
    dsse_envelope: Option<RawDsse>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
#[serde(deny_unknown_fields)]
struct RawMaterial {
    certificate: Option<RawBytes>,
    x509_certificate_chain: Option<RawChain>,
    public_key: Option<RawKeyId>,
    #[serde(default, deserialize_with = "crate::protojson::null_as_empty")]
    tlog_entries: Vec<RawEntry>,
    timestamp_verification_data: Option<RawTsData>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
#[serde(deny_unknown_fields)]
struct RawBytes {
    raw_bytes: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawChain {
    #[serde(default, deserialize_with = "crate::protojson::null_as_empty")]
    certificates: Vec<RawBytes>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKeyId {
    hint: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
#[serde(deny_unknown_fields)]
struct RawTsData {
    #[serde(default, deserialize_with = "crate::protojson::null_as_empty")]
    rfc3161_timestamps: Vec<RawTimestamp>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
#[serde(deny_unknown_fields)]
struct RawTimestamp {
    signed_timestamp: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
#[serde(deny_unknown_fields)]
struct RawEntry {
    log_index: Option<Value>,
    log_id: Option<RawLogId>,
    kind_version: Option<RawKindVersion>,
    integrated_time: Option<Value>,
    inclusion_promise: Option<RawPromise>,
    inclusion_proof: Option<RawProof>,
    canonicalized_body: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
#[serde(deny_unknown_fields)]
struct RawLogId {
    key_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKindVersion {
    kind: Option<String>,
    version: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
#[serde(deny_unknown_fields)]
struct RawPromise {
    signed_entry_timestamp: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
#[serde(deny_unknown_fields)]
struct RawProof {
    log_index: Option<Value>,
    root_hash: Option<String>,
    tree_size: Option<Value>,
    #[serde(default, deserialize_with = "crate::protojson::null_as_empty")]
    hashes: Vec<String>,
    checkpoint: Option<RawCheckpoint>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCheckpoint {
    envelope: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
#[serde(deny_unknown_fields)]
struct RawMessageSignature {
    message_digest: Option<RawDigest>,
    signature: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDigest {
    algorithm: Option<Value>,
    digest: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
#[serde(deny_unknown_fields)]
struct RawDsse {
    payload: Option<String>,
    payload_type: Option<String>,
    #[serde(default, deserialize_with = "crate::protojson::null_as_empty")]
    signatures: Vec<RawDsseSig>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDsseSig {
    sig: Option<String>,
    #[allow(dead_code)]
    keyid: Option<String>,
}

/// A required protobuf `bytes` field. The proto3 JSON mapping omits empty bytes, so absent and `""` are the same
/// value: empty, which no required field of a bundle may be.
fn b64(value: Option<&String>, path: &str) -> Result<Vec<u8>, BundleError> {
    let bytes = STANDARD
        .decode(value.map_or("", String::as_str))
        .map_err(|e| field(path, format!("invalid base64: {e}")))?;
    if bytes.is_empty() {
        return Err(field(path, MISSING));
    }
    Ok(bytes)
}

/// A required protobuf `string` field (absent and `""` are both the empty default).
fn required_str(value: Option<&String>, path: &str) -> Result<String, BundleError> {
    match value {
        Some(s) if !s.is_empty() => Ok(s.clone()),
        _ => Err(field(path, MISSING)),
    }
}

/// The reason for a required field that is absent or holds its protobuf default (empty).
const MISSING: &str = "missing or empty";

/// Reads a protobuf-JSON int64 (a string or a number); it must be non-negative. Absent or `null` is 0: the
/// proto3 JSON mapping omits a scalar field that holds its default value, so the first entry of a fresh log (index
/// 0) comes without `logIndex`, even though the protobuf-specs mark the field REQUIRED.
fn int64(value: Option<&Value>, path: &str) -> Result<u64, BundleError> {
    let parsed = match value {
        None | Some(Value::Null) => return Ok(0),
        Some(Value::String(s)) => s
            .parse::<i64>()
            .map_err(|_| field(path, format!("not an integer: {s:?}")))?,
        Some(Value::Number(n)) => n
            .as_i64()
            .ok_or_else(|| field(path, format!("not a 64-bit integer: {n}")))?,
        Some(other) => return Err(field(path, format!("expected an integer, found {other}"))),
    };
    u64::try_from(parsed).map_err(|_| field(path, format!("must not be negative, found {parsed}")))
}

/// Parses a digest algorithm name as the protobuf enum spells it.
pub(crate) fn hash_from_proto(name: &str) -> Option<HashAlgorithm> {
    match name {
        "SHA2_256" => Some(HashAlgorithm::Sha256),
        "SHA2_384" => Some(HashAlgorithm::Sha384),
        "SHA2_512" => Some(HashAlgorithm::Sha512),
        _ => None,
    }
}

fn parse_cert(b: &RawBytes, path: &str) -> Result<Certificate, BundleError> {
    let der_bytes = b64(b.raw_bytes.as_ref(), &format!("{path}.rawBytes"))?;
    Certificate::from_der(&der_bytes).map_err(|source| BundleError::Certificate {
        field: format!("{path}.rawBytes"),
        source,
    })
}

impl Bundle {
    /// Parses and checks a bundle's structure for its version.
    pub fn from_json(json: &[u8]) -> Result<Self, BundleError> {
        if json.len() > MAX_BUNDLE_BYTES {
            return Err(BundleError::TooLarge(json.len()));
        }
        let raw: RawBundle = serde_json::from_slice(json)?;
        let media_type = required_str(raw.media_type.as_ref(), "mediaType")?;
        let version = match media_type.as_str() {
            "application/vnd.dev.sigstore.bundle+json;version=0.1" => BundleVersion::V0_1,
            "application/vnd.dev.sigstore.bundle+json;version=0.2" => BundleVersion::V0_2,
            "application/vnd.dev.sigstore.bundle+json;version=0.3"
            | "application/vnd.dev.sigstore.bundle.v0.3+json" => BundleVersion::V0_3,
            _ => return Err(BundleError::UnknownVersion(media_type)),
        };
        let vm = raw
            .verification_material
            .ok_or_else(|| field("verificationMaterial", "missing"))?;

        let present = [
            vm.certificate.is_some(),
            vm.x509_certificate_chain.is_some(),
            vm.public_key.is_some(),
        ]
        .iter()
        .filter(|p| **p)
        .count();
        if present != 1 {
            return Err(field(
                "verificationMaterial",
                "exactly one of `certificate`, `x509CertificateChain`, `publicKey` is required",
            ));
        }
        let signer = if let Some(c) = &vm.certificate {
            if version < BundleVersion::V0_3 {
                return Err(field(
                    "verificationMaterial.certificate",
                    "a single `certificate` needs bundle v0.3 (v0.1/v0.2 use `x509CertificateChain`)",
                ));
            }
            SignerMaterial::Certificate {
                leaf: Box::new(parse_cert(c, "verificationMaterial.certificate")?),
                intermediates: Vec::new(),
            }
        } else if let Some(chain) = &vm.x509_certificate_chain {
            if version >= BundleVersion::V0_3 {
                return Err(field(
                    "verificationMaterial.x509CertificateChain",
                    "bundle v0.3 carries a single leaf `certificate`, not a chain",
                ));
            }
            if chain.certificates.is_empty() {
                return Err(field(
                    "verificationMaterial.x509CertificateChain.certificates",
                    "empty certificate chain",
                ));
            }
            if chain.certificates.len() > MAX_CHAIN {
                return Err(field(
                    "verificationMaterial.x509CertificateChain.certificates",
                    format!("more than {MAX_CHAIN} certificates"),
                ));
            }
            let mut certs = Vec::with_capacity(chain.certificates.len());
            for (i, c) in chain.certificates.iter().enumerate() {
                certs.push(parse_cert(
                    c,
                    &format!("verificationMaterial.x509CertificateChain.certificates[{i}]"),
                )?);
            }
            let leaf = certs.remove(0);
            SignerMaterial::Certificate {
                leaf: Box::new(leaf),
                intermediates: certs,
            }
        } else {
            SignerMaterial::PublicKey {
                hint: vm.public_key.and_then(|k| k.hint),
            }
        };

        // A bundle without a log entry is "timestamp-only": it must be v0.2+ and carry an RFC 3161 timestamp,
        // and only a verifier told to rely on signed timestamps accepts it (`TimeEvidence::SignedTimestamps`).
        let timestamp_count = vm
            .timestamp_verification_data
            .as_ref()
            .map_or(0, |t| t.rfc3161_timestamps.len());
        if vm.tlog_entries.is_empty() && (version == BundleVersion::V0_1 || timestamp_count == 0) {
            return Err(field(
                "verificationMaterial.tlogEntries",
                "at least one transparency log entry is required (a bundle v0.2+ may have an RFC 3161 timestamp instead)",
            ));
        }
        if vm.tlog_entries.len() > MAX_ENTRIES {
            return Err(field(
                "verificationMaterial.tlogEntries",
                format!("more than {MAX_ENTRIES} entries"),
            ));
        }
        let mut tlog_entries = Vec::with_capacity(vm.tlog_entries.len());
        for (i, e) in vm.tlog_entries.iter().enumerate() {
            let p = format!("verificationMaterial.tlogEntries[{i}]");
            let log_index = int64(e.log_index.as_ref(), &format!("{p}.logIndex"))?;
            let log_id = e
                .log_id
                .as_ref()
                .ok_or_else(|| field(format!("{p}.logId"), "missing"))?;
            let log_id = b64(log_id.key_id.as_ref(), &format!("{p}.logId.keyId"))?;
            let kv = e
                .kind_version
                .as_ref()
                .ok_or_else(|| field(format!("{p}.kindVersion"), "missing"))?;
            let kind = required_str(kv.kind.as_ref(), &format!("{p}.kindVersion.kind"))?;
            let kversion = required_str(kv.version.as_ref(), &format!("{p}.kindVersion.version"))?;
            let integrated_time =
                int64(e.integrated_time.as_ref(), &format!("{p}.integratedTime"))?;
            let integrated_time = i64::try_from(integrated_time)
                .map_err(|_| field(format!("{p}.integratedTime"), "out of range"))?;
            let inclusion_promise = match &e.inclusion_promise {
                Some(pr) => Some(b64(
                    pr.signed_entry_timestamp.as_ref(),
                    &format!("{p}.inclusionPromise.signedEntryTimestamp"),
                )?),
                None => None,
            };
            let inclusion_proof = match &e.inclusion_proof {
                Some(pr) => {
                    let pp = format!("{p}.inclusionProof");
                    if pr.hashes.len() > MAX_PROOF_HASHES {
                        return Err(field(
                            format!("{pp}.hashes"),
                            format!("more than {MAX_PROOF_HASHES} hashes"),
                        ));
                    }
                    let mut hashes = Vec::with_capacity(pr.hashes.len());
                    for (j, h) in pr.hashes.iter().enumerate() {
                        let h = b64(Some(h), &format!("{pp}.hashes[{j}]"))?;
                        if h.len() != 32 {
                            return Err(field(format!("{pp}.hashes[{j}]"), "must be 32 bytes"));
                        }
                        hashes.push(h);
                    }
                    let root_hash = b64(pr.root_hash.as_ref(), &format!("{pp}.rootHash"))?;
                    if root_hash.len() != 32 {
                        return Err(field(format!("{pp}.rootHash"), "must be 32 bytes"));
                    }
                    let proof_index = int64(pr.log_index.as_ref(), &format!("{pp}.logIndex"))?;
                    let tree_size = int64(pr.tree_size.as_ref(), &format!("{pp}.treeSize"))?;
                    if tree_size <= proof_index {
                        return Err(field(
                            format!("{pp}.treeSize"),
                            format!(
                                "must be greater than the proof's logIndex {proof_index}, found {}",
                                if pr.tree_size.is_none() {
                                    "none (0)".to_string()
                                } else {
                                    tree_size.to_string()
                                }
                            ),
                        ));
                    }
                    // `checkpoint` is a message: absent means unset; `{}` holds the empty envelope.
                    let checkpoint = pr
                        .checkpoint
                        .as_ref()
                        .and_then(|c| c.envelope.clone())
                        .filter(|e| !e.is_empty());
                    if checkpoint.is_none() && version >= BundleVersion::V0_2 {
                        let what = if pr.checkpoint.is_none() {
                            format!("{pp}.checkpoint")
                        } else {
                            format!("{pp}.checkpoint.envelope")
                        };
                        return Err(field(
                            what,
                            "missing or empty: bundle v0.2 and later require a signed checkpoint",
                        ));
                    }
                    Some(InclusionProof {
                        log_index: proof_index,
                        root_hash,
                        tree_size,
                        hashes,
                        checkpoint,
                    })
                }
                None => None,
            };
            if version == BundleVersion::V0_1 && inclusion_promise.is_none() {
                return Err(field(
                    format!("{p}.inclusionPromise"),
                    "bundle v0.1 requires an inclusion promise (signed entry timestamp)",
                ));
            }
            if version >= BundleVersion::V0_2 && inclusion_proof.is_none() {
                return Err(field(
                    format!("{p}.inclusionProof"),
                    "bundle v0.2 and later require an inclusion proof with checkpoint",
                ));
            }
            let canonicalized_body = b64(
                e.canonicalized_body.as_ref(),
                &format!("{p}.canonicalizedBody"),
            )?;
            tlog_entries.push(TlogEntry {
                log_index,
                log_id,
                kind,
                version: kversion,
                integrated_time,
                inclusion_promise,
                inclusion_proof,
                canonicalized_body,
            });
        }

        let mut timestamps = Vec::new();
        if let Some(ts) = &vm.timestamp_verification_data {
            if ts.rfc3161_timestamps.len() > MAX_TIMESTAMPS {
                return Err(field(
                    "verificationMaterial.timestampVerificationData.rfc3161Timestamps",
                    format!("more than {MAX_TIMESTAMPS} timestamps"),
                ));
            }
            for (i, t) in ts.rfc3161_timestamps.iter().enumerate() {
                let path = format!(
                    "verificationMaterial.timestampVerificationData.rfc3161Timestamps[{i}].signedTimestamp"
                );
                if ts.rfc3161_timestamps[..i]
                    .iter()
                    .any(|p| p.signed_timestamp == t.signed_timestamp)
                {
                    return Err(field(path, "duplicate timestamp"));
                }
                timestamps.push(b64(t.signed_timestamp.as_ref(), &path)?);
            }
        }

        let content = match (raw.message_signature, raw.dsse_envelope) {
            (Some(ms), None) => {
                let signature = b64(ms.signature.as_ref(), "messageSignature.signature")?;
                let digest = match ms.message_digest {
                    Some(d) => {
                        let alg_name = enum_name(d.algorithm.as_ref(), HASH_ALGORITHMS)
                            .map_err(|e| field("messageSignature.messageDigest.algorithm", e))?;
                        let alg_name = required_str(
                            Some(&alg_name),
                            "messageSignature.messageDigest.algorithm",
                        )?;
                        let alg = hash_from_proto(&alg_name).ok_or_else(|| {
                            field(
                                "messageSignature.messageDigest.algorithm",
                                format!("unsupported algorithm {alg_name:?}"),
                            )
                        })?;
                        let bytes =
                            b64(d.digest.as_ref(), "messageSignature.messageDigest.digest")?;
                        if bytes.len() != alg.output_len() {
                            return Err(field(
                                "messageSignature.messageDigest.digest",
                                "wrong length for its algorithm",
                            ));
                        }
                        Some((alg, bytes))
                    }
                    None => None,
                };
                Content::MessageSignature { digest, signature }
            }
            (None, Some(d)) => {
                if d.signatures.len() != 1 {
                    return Err(field(
                        "dsseEnvelope.signatures",
                        format!(
                            "exactly one signature is required, found {}",
                            d.signatures.len()
                        ),
                    ));
                }
                let signature = b64(
                    d.signatures[0].sig.as_ref(),
                    "dsseEnvelope.signatures[0].sig",
                )?;
                Content::Dsse(DsseEnvelope {
                    payload: b64(d.payload.as_ref(), "dsseEnvelope.payload")?,
                    payload_type: required_str(
                        d.payload_type.as_ref(),
                        "dsseEnvelope.payloadType",
                    )?,
                    signature,
                })
            }
            (Some(_), Some(_)) => {
                return Err(field(
                    "messageSignature",
                    "a bundle has either `messageSignature` or `dsseEnvelope`, not both",
                ));
            }
            (None, None) => {
                return Err(field(
                    "messageSignature",
                    "missing content: neither `messageSignature` nor `dsseEnvelope`",
                ));
            }
        };

        Ok(Bundle {
            version,
            signer,
            tlog_entries,
            timestamps,
            content,
        })
    }

    /// The signature bytes (message signature or the DSSE signature).
    pub fn signature(&self) -> &[u8] {
        match &self.content {
            Content::MessageSignature { signature, .. } => signature,
            Content::Dsse(d) => &d.signature,
        }
    }
}

/// DSSE pre-authentication encoding.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + payload_type.len() + 32);
    out.extend_from_slice(b"DSSEv1 ");
    out.extend_from_slice(payload_type.len().to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(payload_type.as_bytes());
    out.push(b' ');
    out.extend_from_slice(payload.len().to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(payload);
    out
}
