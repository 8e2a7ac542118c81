//! The verifier: built once from a trusted root, then `verify` per bundle. Pure: no I/O; the
//! only ambient input is the clock (entries from the future are refused).

use serde::Serialize;

use crate::bundle::{Bundle, Content, SignerMaterial, pae};
use crate::keys::{HashAlgorithm, KeyKind, PublicKey};
use crate::policy::{IdentityPolicy, PolicyMismatch};
use crate::rekor::{self, ArtifactDigest, SignerId};
use crate::trust::{TrustedAuthority, TrustedRoot};
use crate::x509::{self, Certificate, SubjectAltName};
use crate::{sct, tsa};

/// Log times this far ahead of the verifier's clock are refused (clock skew allowance).
const FUTURE_SKEW_SECS: i64 = 300;

/// What was signed, as the caller knows it.
#[derive(Debug, Clone, Copy)]
pub enum ArtifactPolicy<'a> {
    /// The artifact's bytes.
    Bytes(&'a [u8]),
    /// The artifact's digest only.
    Digest {
        /// Digest algorithm.
        algorithm: HashAlgorithm,
        /// Digest bytes.
        digest: &'a [u8],
    },
}

/// Why a bundle did not verify. Each variant names the check that failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum VerifyError {
    /// The bundle's key material does not fit the policy (certificate vs managed key).
    #[error("key material: {0}")]
    KeyMaterial(String),
    /// The artifact does not match the bundle.
    #[error("artifact: {0}")]
    Artifact(String),
    /// The signature over the artifact or envelope is wrong.
    #[error("signature: {0}")]
    Signature(String),
    /// A transparency-log entry failed.
    #[error("transparency log entry {entry}: {reason}")]
    TransparencyLog {
        /// Index of the entry in the bundle.
        entry: usize,
        /// What failed.
        reason: String,
    },
    /// An RFC 3161 timestamp failed.
    #[error("RFC 3161 timestamp {index}: {reason}")]
    Timestamp {
        /// Index in the bundle.
        index: usize,
        /// What failed.
        reason: String,
    },
    /// The bundle has no transparency-log entry (an RFC 3161 timestamp only), and the verifier requires one.
    #[error(
        "no transparency-log entry: the bundle is timestamp-only (an RFC 3161 timestamp, no log entry), which is accepted only when signed timestamps suffice"
    )]
    NoTransparencyLogEntry,
    /// No verified time to judge the certificate at.
    #[error(
        "no verified signing time: the bundle needs a verified signed entry timestamp or RFC 3161 timestamp ({ignored})"
    )]
    NoVerifiedTime {
        /// Why the timestamps present did not count.
        ignored: String,
    },
    /// The certificate does not chain to a trusted Fulcio CA at the signing time, or breaks a rule.
    #[error("certificate: {0}")]
    Certificate(String),
    /// The certificate (or the CA that issued it) was not valid at the verified signing time.
    #[error("certificate: {0}")]
    CertificateNotValidAtSigningTime(String),
    /// No valid embedded SCT.
    #[error("certificate transparency: {0}")]
    Sct(String),
    /// The identity policy did not match.
    #[error("identity policy: {} differs: expected {}, found {}", .0.field, .0.expected, .0.found)]
    Policy(PolicyMismatch),
}

/// What must vouch for a bundle's signing time, as sigstore-go's `VerifierConfig` thresholds (at 1) say it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TimeEvidence {
    /// At least one verified transparency-log entry (sigstore-go's `WithTransparencyLog(1)`); RFC 3161
    /// timestamps add verified times. The default: a timestamp-only bundle is refused
    /// ([`VerifyError::NoTransparencyLogEntry`]).
    #[default]
    TransparencyLog,
    /// At least one verified RFC 3161 timestamp, with or without log entries (sigstore-go's
    /// `WithSignedTimestamps(1)` without `WithTransparencyLog`; cosign's `--use-signed-timestamps
    /// --insecure-ignore-tlog`): accepts timestamp-only bundles. Log entries present are still checked.
    SignedTimestamps,
}

/// Where a verified signing time came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VerifiedTime {
    /// `transparency-log` (integrated time under a verified SET) or `rfc3161`.
    pub source: &'static str,
    /// Unix seconds.
    pub time: i64,
    /// The log or TSA URL.
    pub authority: String,
}

/// A log entry and what was checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckedLogEntry {
    /// The log's URL.
    pub log: String,
    /// Global log index.
    pub log_index: u64,
    /// `kind/version`.
    pub kind: String,
    /// Whether a signed entry timestamp was verified.
    pub signed_entry_timestamp: bool,
    /// Whether an inclusion proof and its signed checkpoint were verified.
    pub inclusion_proof: bool,
}

/// Who signed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(
    rename_all = "camelCase",
    rename_all_fields = "camelCase",
    tag = "type"
)]
pub enum SignerIdentity {
    /// A Fulcio certificate.
    Certificate {
        /// Subject alternative names.
        subject_alternative_names: Vec<SubjectAltName>,
        /// OIDC issuer.
        issuer: Option<String>,
        /// The Fulcio CA that issued it.
        certificate_authority: String,
        /// GitHub source repository claim, if any.
        #[serde(skip_serializing_if = "Option::is_none")]
        source_repository: Option<String>,
        /// GitHub source ref claim, if any.
        #[serde(skip_serializing_if = "Option::is_none")]
        source_ref: Option<String>,
        /// Build config (workflow) claim, if any.
        #[serde(skip_serializing_if = "Option::is_none")]
        workflow: Option<String>,
        /// Trigger claim, if any.
        #[serde(skip_serializing_if = "Option::is_none")]
        trigger: Option<String>,
    },
    /// A managed key.
    Key {
        /// Key kind.
        key: KeyKind,
    },
}

/// How messages name the signer: the certificate's SANs and issuer, or the key kind.
impl std::fmt::Display for SignerIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SignerIdentity::Certificate {
                subject_alternative_names,
                issuer,
                ..
            } => {
                for (i, san) in subject_alternative_names.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    f.write_str(san.value())?;
                }
                write!(f, " (issuer {})", issuer.as_deref().unwrap_or("none"))
            }
            SignerIdentity::Key { key } => write!(f, "the given {key:?} key"),
        }
    }
}

/// A successful verification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VerificationResult {
    /// Bundle version.
    pub bundle_version: crate::bundle::BundleVersion,
    /// `message-signature` or `dsse`.
    pub content: &'static str,
    /// In-toto predicate type, for DSSE bundles.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub predicate_type: Option<String>,
    /// The signer.
    pub signer: SignerIdentity,
    /// Verified signing times.
    pub verified_times: Vec<VerifiedTime>,
    /// Log entries checked.
    pub log_entries: Vec<CheckedLogEntry>,
    /// RFC 3161 timestamps that did not verify and so added no time, with the reason.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ignored_timestamps: Vec<String>,
}

/// Verifies bundles against one trusted root.
#[derive(Debug)]
pub struct Verifier {
    root: TrustedRoot,
}

struct Signing<'a> {
    key: &'a PublicKey,
    leaf: Option<&'a Certificate>,
}

impl Verifier {
    /// Builds a verifier (keys and CA chains are parsed and checked once, in `TrustedRoot`).
    pub fn new(root: TrustedRoot) -> Self {
        Self { root }
    }

    /// The trusted root.
    pub fn trusted_root(&self) -> &TrustedRoot {
        &self.root
    }

    /// Verifies `bundle` for `artifact` under `identity`.
    pub fn verify(
        &self,
        bundle: &Bundle,
        artifact: ArtifactPolicy<'_>,
        identity: &IdentityPolicy,
    ) -> Result<VerificationResult, VerifyError> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(i64::MAX, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        self.verify_at(bundle, artifact, identity, now)
    }

    /// As [`Verifier::verify`], with the clock given (unix seconds).
    pub fn verify_at(
        &self,
        bundle: &Bundle,
        artifact: ArtifactPolicy<'_>,
        identity: &IdentityPolicy,
        now: i64,
    ) -> Result<VerificationResult, VerifyError> {
        self.verify_at_with(
            bundle,
            artifact,
            identity,
            now,
            TimeEvidence::TransparencyLog,
        )
    }

    /// As [`Verifier::verify_at`], with what must vouch for the signing time: a transparency-log entry (the
    /// default), or signed (RFC 3161) timestamps, which accepts timestamp-only bundles.
    pub fn verify_at_with(
        &self,
        bundle: &Bundle,
        artifact: ArtifactPolicy<'_>,
        identity: &IdentityPolicy,
        now: i64,
        evidence: TimeEvidence,
    ) -> Result<VerificationResult, VerifyError> {
        if evidence == TimeEvidence::TransparencyLog && bundle.tlog_entries.is_empty() {
            return Err(VerifyError::NoTransparencyLogEntry);
        }
        // 1. Key material must fit the policy.
        let signing = match (&bundle.signer, identity) {
            (
                SignerMaterial::Certificate {
                    leaf,
                    intermediates,
                },
                IdentityPolicy::Certificate(_),
            ) => {
                if intermediates.iter().any(Certificate::is_self_issued) || leaf.is_self_issued() {
                    return Err(VerifyError::Certificate(
                        "the bundle's certificate chain contains a root certificate; roots come only from the trusted root".into(),
                    ));
                }
                Signing {
                    key: leaf.public_key(),
                    leaf: Some(leaf),
                }
            }
            (SignerMaterial::PublicKey { .. }, IdentityPolicy::Key(key)) => {
                Signing { key, leaf: None }
            }
            (SignerMaterial::PublicKey { .. }, IdentityPolicy::Certificate(_)) => {
                return Err(VerifyError::KeyMaterial(
                    "the bundle is signed with a managed key, but the policy expects a certificate identity (pass the key)".into(),
                ));
            }
            (SignerMaterial::Certificate { .. }, IdentityPolicy::Key(_)) => {
                return Err(VerifyError::KeyMaterial(
                    "the bundle carries a certificate, but the policy expects a managed key".into(),
                ));
            }
        };
        let signer_id = match signing.leaf {
            Some(c) => SignerId::Certificate(c.der()),
            None => SignerId::Key(signing.key.spki()),
        };

        // 2. Content: artifact digest, signature, in-toto subject.
        let mut predicate_type = None;
        let artifact_digest: Option<(HashAlgorithm, Vec<u8>)>;
        match &bundle.content {
            Content::MessageSignature { digest, signature } => {
                let alg = match (digest, artifact) {
                    (_, ArtifactPolicy::Digest { algorithm, .. }) => algorithm,
                    (Some((a, _)), _) => *a,
                    (None, _) => signing.key.kind().default_hash(),
                };
                let computed = match artifact {
                    ArtifactPolicy::Bytes(b) => alg.digest(b),
                    ArtifactPolicy::Digest { digest, .. } => digest.to_vec(),
                };
                if let Some((dalg, d)) = digest {
                    if *dalg != alg || *d != computed {
                        return Err(VerifyError::Artifact(format!(
                            "the bundle's messageDigest ({}:{}) does not match the artifact ({}:{})",
                            dalg.name(),
                            hex::encode(d),
                            alg.name(),
                            hex::encode(&computed)
                        )));
                    }
                }
                let ok = match (signing.key.kind(), artifact) {
                    (KeyKind::Ed25519, ArtifactPolicy::Bytes(b)) => {
                        signing.key.verify(b, signature)
                    }
                    (KeyKind::Ed25519, ArtifactPolicy::Digest { .. }) => {
                        return Err(VerifyError::Artifact(
                            "an Ed25519 signature needs the artifact itself, not its digest".into(),
                        ));
                    }
                    _ => signing.key.verify_prehashed(alg, &computed, signature),
                };
                if !ok {
                    return Err(VerifyError::Signature(
                        "the signature does not verify over the artifact with the signer's key"
                            .into(),
                    ));
                }
                artifact_digest = Some((alg, computed));
            }
            Content::Dsse(env) => {
                if !signing
                    .key
                    .verify(&pae(&env.payload_type, &env.payload), &env.signature)
                {
                    return Err(VerifyError::Signature(
                        "the DSSE envelope signature does not verify with the signer's key".into(),
                    ));
                }
                predicate_type = Some(check_in_toto(&env.payload_type, &env.payload, artifact)?);
                artifact_digest = None;
            }
        }

        // 3. Transparency log entries.
        let mut verified_times = Vec::new();
        let mut log_entries = Vec::new();
        for (i, entry) in bundle.tlog_entries.iter().enumerate() {
            let fail = |reason: String| VerifyError::TransparencyLog { entry: i, reason };
            let log = self.root.tlog_by_id(&entry.log_id).ok_or_else(|| {
                fail(format!(
                    "log ID {} is not a trusted transparency log",
                    hex::encode(&entry.log_id)
                ))
            })?;
            let ad = artifact_digest.as_ref().map(|(a, d)| ArtifactDigest {
                algorithm: *a,
                digest: d,
            });
            rekor::check_body(entry, &bundle.content, ad.as_ref(), &signer_id).map_err(fail)?;
            let mut set_ok = false;
            if let Some(set) = &entry.inclusion_promise {
                if !log.key.verify(&rekor::set_payload(entry), set) {
                    return Err(fail(
                        "the signed entry timestamp does not verify with the log key".into(),
                    ));
                }
                let t = entry.integrated_time;
                if !log.validity.contains(t) {
                    return Err(fail(format!(
                        "integrated time {t} is outside the log key's validity in the trusted root"
                    )));
                }
                if t > now.saturating_add(FUTURE_SKEW_SECS) {
                    return Err(fail(format!("integrated time {t} is in the future")));
                }
                set_ok = true;
                verified_times.push(VerifiedTime {
                    source: "transparency-log",
                    time: t,
                    authority: log.base_url.clone(),
                });
            }
            let mut proof_ok = false;
            if let Some(proof) = &entry.inclusion_proof {
                let leaf = rekor::leaf_hash(&entry.canonicalized_body);
                let root = rekor::root_from_inclusion_proof(
                    proof.log_index,
                    proof.tree_size,
                    leaf,
                    &proof.hashes,
                )
                .ok_or_else(|| {
                    fail("the inclusion proof does not fit its log index and tree size".into())
                })?;
                if root.as_slice() != proof.root_hash.as_slice() {
                    return Err(fail(
                        "the inclusion proof does not lead to its root hash".into(),
                    ));
                }
                // Without a checkpoint (allowed in v0.1 only) the root is unauthenticated: the
                // path must still be consistent, but the SET is what vouches for the entry.
                if let Some(envelope) = &proof.checkpoint {
                    let cp = rekor::parse_checkpoint(envelope)
                        .map_err(|e| fail(format!("checkpoint: {e}")))?;
                    if cp.tree_size != proof.tree_size || cp.root_hash != proof.root_hash {
                        return Err(fail("the checkpoint's tree size or root hash differs from the inclusion proof".into()));
                    }
                    rekor::verify_checkpoint(&cp, log)
                        .map_err(|e| fail(format!("checkpoint: {e}")))?;
                    proof_ok = true;
                }
            }
            // Without a SET nothing signs the entry's own log index (Rekor v2): it must then be
            // the index the inclusion proof proves.
            if !set_ok
                && entry
                    .inclusion_proof
                    .as_ref()
                    .is_some_and(|p| p.log_index != entry.log_index)
            {
                return Err(fail(
                    "the entry's log index differs from its inclusion proof's".into(),
                ));
            }
            if !set_ok && !proof_ok {
                return Err(fail(
                    "neither a signed entry timestamp nor an inclusion proof".into(),
                ));
            }
            log_entries.push(CheckedLogEntry {
                log: log.base_url.clone(),
                log_index: entry.log_index,
                kind: format!("{}/{}", entry.kind, entry.version),
                signed_entry_timestamp: set_ok,
                inclusion_proof: proof_ok,
            });
        }

        // 4. RFC 3161 timestamps. As sigstore-go and sigstore-python do, a timestamp that does
        // not verify adds no time (and is reported); verified ones must not repeat.
        let mut ignored_timestamps = Vec::new();
        let mut verified_tokens: Vec<&[u8]> = Vec::new();
        for (index, token) in bundle.timestamps.iter().enumerate() {
            let (t, authority) = match tsa::verify_timestamp(token, bundle.signature(), &self.root)
            {
                Ok(v) => v,
                Err(reason) => {
                    ignored_timestamps.push(format!("timestamp {index}: {reason}"));
                    continue;
                }
            };
            if verified_tokens.contains(&token.as_slice()) {
                return Err(VerifyError::Timestamp {
                    index,
                    reason: "duplicate of an earlier timestamp".into(),
                });
            }
            verified_tokens.push(token);
            if t > now.saturating_add(FUTURE_SKEW_SECS) {
                return Err(VerifyError::Timestamp {
                    index,
                    reason: format!("timestamp {t} is in the future"),
                });
            }
            verified_times.push(VerifiedTime {
                source: "rfc3161",
                time: t,
                authority,
            });
        }
        if evidence == TimeEvidence::SignedTimestamps
            && !verified_times.iter().any(|t| t.source == "rfc3161")
        {
            return Err(VerifyError::NoVerifiedTime {
                ignored: format!(
                    "signed timestamps are required and none verified ({})",
                    if ignored_timestamps.is_empty() {
                        "no timestamps".to_string()
                    } else {
                        ignored_timestamps.join("; ")
                    }
                ),
            });
        }
        if verified_times.is_empty() {
            return Err(VerifyError::NoVerifiedTime {
                ignored: if ignored_timestamps.is_empty() {
                    "no timestamps".into()
                } else {
                    ignored_timestamps.join("; ")
                },
            });
        }

        // 5. Certificate: chain to a trusted CA valid at every verified time; SCT; policy.
        let signer = match (signing.leaf, identity) {
            (Some(leaf), IdentityPolicy::Certificate(policy)) => {
                let ca = self.check_certificate(leaf, &verified_times)?;
                sct::verify_embedded_scts(leaf, &ca.chain[0], &self.root)
                    .map_err(VerifyError::Sct)?;
                policy.check(leaf).map_err(VerifyError::Policy)?;
                let claim = |n: u8| leaf.fulcio_extension(n).and_then(Result::ok);
                SignerIdentity::Certificate {
                    subject_alternative_names: leaf.sans.clone(),
                    issuer: leaf.oidc_issuer().and_then(Result::ok),
                    certificate_authority: ca.uri.clone(),
                    source_repository: claim(12),
                    source_ref: claim(14),
                    workflow: claim(18),
                    trigger: claim(20),
                }
            }
            _ => SignerIdentity::Key {
                key: signing.key.kind(),
            },
        };

        Ok(VerificationResult {
            bundle_version: bundle.version,
            content: match bundle.content {
                Content::MessageSignature { .. } => "message-signature",
                Content::Dsse(_) => "dsse",
            },
            predicate_type,
            signer,
            verified_times,
            log_entries,
            ignored_timestamps,
        })
    }

    fn check_certificate(
        &self,
        leaf: &Certificate,
        times: &[VerifiedTime],
    ) -> Result<&TrustedAuthority, VerifyError> {
        if leaf.is_ca {
            return Err(VerifyError::Certificate(
                "the signing certificate is a CA certificate".into(),
            ));
        }
        if !leaf.has_digital_signature() {
            return Err(VerifyError::Certificate(
                "the signing certificate lacks the digitalSignature key usage".into(),
            ));
        }
        if !leaf.has_eku(x509::OID_EKU_CODE_SIGNING) {
            return Err(VerifyError::Certificate(
                "the signing certificate lacks the codeSigning extended key usage".into(),
            ));
        }
        if let Some(oid) = leaf.unknown_critical_extension() {
            return Err(VerifyError::Certificate(format!(
                "the signing certificate has an unknown critical extension {oid}"
            )));
        }
        if leaf.extension(x509::OID_CT_POISON).is_some() {
            return Err(VerifyError::Certificate(
                "the signing certificate is a CT precertificate".into(),
            ));
        }
        for t in times {
            if !leaf.valid_at(t.time) {
                return Err(VerifyError::CertificateNotValidAtSigningTime(format!(
                    "verified time {} ({}) is outside the certificate's validity {}..{}",
                    t.time, t.source, leaf.not_before, leaf.not_after
                )));
            }
        }
        let mut issued_by_trusted = false;
        for ca in &self.root.certificate_authorities {
            if !leaf.may_be_issued_by(&ca.chain[0]) {
                continue;
            }
            if !leaf.is_signed_by(&ca.chain[0]) {
                continue;
            }
            issued_by_trusted = true;
            let fits = times.iter().all(|t| {
                ca.validity.contains(t.time) && ca.chain.iter().all(|c| c.valid_at(t.time))
            });
            if fits {
                return Ok(ca);
            }
        }
        Err(if issued_by_trusted {
            VerifyError::CertificateNotValidAtSigningTime(
                "the issuing Fulcio CA is not valid (in the trusted root or by its certificates) at the signing time".into(),
            )
        } else {
            VerifyError::Certificate("the certificate does not chain to a trusted Fulcio CA".into())
        })
    }
}

/// Checks an in-toto statement's subjects against the artifact; returns its predicate type.
fn check_in_toto(
    payload_type: &str,
    payload: &[u8],
    artifact: ArtifactPolicy<'_>,
) -> Result<String, VerifyError> {
    if payload_type != "application/vnd.in-toto+json" {
        return Err(VerifyError::Artifact(format!(
            "DSSE payload type {payload_type:?} is not an in-toto statement"
        )));
    }
    let v: serde_json::Value = serde_json::from_slice(payload)
        .map_err(|e| VerifyError::Artifact(format!("the in-toto statement is not JSON: {e}")))?;
    let ty = v.get("_type").and_then(|t| t.as_str()).unwrap_or("");
    if ty != "https://in-toto.io/Statement/v0.1" && ty != "https://in-toto.io/Statement/v1" {
        return Err(VerifyError::Artifact(format!(
            "unsupported in-toto statement type {ty:?}"
        )));
    }
    let subjects = v
        .get("subject")
        .and_then(|s| s.as_array())
        .ok_or_else(|| VerifyError::Artifact("the in-toto statement has no subject list".into()))?;
    let mut seen = Vec::new();
    for s in subjects {
        let Some(digests) = s.get("digest").and_then(|d| d.as_object()) else {
            continue;
        };
        for (alg, value) in digests {
            let Some(value) = value.as_str() else {
                continue;
            };
            let alg = match alg.as_str() {
                "sha256" => HashAlgorithm::Sha256,
                "sha384" => HashAlgorithm::Sha384,
                "sha512" => HashAlgorithm::Sha512,
                _ => continue,
            };
            let wanted = match artifact {
                ArtifactPolicy::Bytes(b) => alg.digest(b),
                ArtifactPolicy::Digest { algorithm, digest } if algorithm == alg => digest.to_vec(),
                ArtifactPolicy::Digest { .. } => continue,
            };
            if value.eq_ignore_ascii_case(&hex::encode(&wanted)) {
                return Ok(v
                    .get("predicateType")
                    .and_then(|p| p.as_str())
                    .unwrap_or("")
                    .to_owned());
            }
            seen.push(format!("{}:{value}", alg.name()));
        }
    }
    let wanted = match artifact {
        ArtifactPolicy::Bytes(b) => {
            format!("sha256:{}", hex::encode(HashAlgorithm::Sha256.digest(b)))
        }
        ArtifactPolicy::Digest { algorithm, digest } => {
            format!("{}:{}", algorithm.name(), hex::encode(digest))
        }
    };
    Err(VerifyError::Artifact(format!(
        "no in-toto subject matches the artifact {wanted} (subjects: {})",
        if seen.is_empty() {
            "none".into()
        } else {
            seen.join(", ")
        }
    )))
}
