//! Checking one signed layer of the legacy layout, once its payload has been fetched. Pure: no I/O.
//!
//! A `.sig` layer is a simple-signing payload with its signature in an annotation; a `.att` layer is a DSSE
//! envelope. Either may carry a Fulcio certificate (keyless) and a Rekor bundle (the log's signed entry
//! timestamp over the entry). Keyless layers, and keyed layers whose entry went to Rekor, are converted into the
//! Sigstore bundle v0.1 they are equivalent to and checked by [`kibaship_sigstore::Verifier`], so there is one
//! implementation of certificate chains, SCTs, SETs and identity policies.
use std::collections::BTreeMap;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use kibaship_oci::Digest;
use kibaship_sign::SimpleSigningPayload;
use kibaship_sigstore::{
    ArtifactPolicy, Bundle, Content, HashAlgorithm, IdentityPolicy, TimeEvidence,
    VerificationResult, Verifier, VerifyError, pae, pem,
};
use serde::Serialize;

use crate::legacy::{RekorBundle, SignatureLayer};
use crate::predicate::PredicateFailure;

/// Payload type of the DSSE envelopes cosign attests with.
pub const IN_TOTO_PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";
/// Media type of the Sigstore bundle v0.1 a legacy layer is converted to.
const BUNDLE_V01_MEDIA_TYPE: &str = "application/vnd.dev.sigstore.bundle+json;version=0.1";

/// What a signature must satisfy.
#[derive(Debug)]
pub struct VerifyOptions {
    /// Who must have signed: a public key, or a certificate identity and issuer.
    pub identity: IdentityPolicy,
    /// Checks certificates and Rekor entries (the trusted root, parsed once and shared).
    pub verifier: Arc<Verifier>,
    /// The clock (unix seconds) the checks run at: given, never read here, so that a verification is
    /// reproducible and an admission webhook decides at the time of the request.
    pub now: i64,
    /// Accept signatures without transparency-log proof (cosign's `--insecure-ignore-tlog`). Key-based only:
    /// keyless signatures still need the log's signed timestamp to date their short-lived certificate.
    pub ignore_tlog: bool,
    /// For attestations: only this in-toto predicate type (exact URI).
    pub predicate_type: Option<String>,
    /// Image signatures: signed annotations every accepted signature must carry (cosign's `verify -a`), in the
    /// simple-signing payload's `optional` section (legacy) or on the in-toto subject (bundle layout).
    pub annotations: BTreeMap<String, String>,
}

/// Checks that `found` (signed annotations) holds every pair of `wanted`; the error names each missing or
/// different one.
pub fn check_annotations(
    wanted: &BTreeMap<String, String>,
    found: Option<&serde_json::Map<String, serde_json::Value>>,
    place: &str,
) -> Result<(), Rejected> {
    let mut problems = Vec::new();
    for (key, value) in wanted {
        match found.and_then(|f| f.get(key)) {
            None => problems.push(format!("{key}={value} is missing")),
            Some(serde_json::Value::String(v)) if v == value => {}
            Some(serde_json::Value::String(v)) => {
                problems.push(format!("{key} is {v:?}, not {value:?}"));
            }
            Some(other) => problems.push(format!("{key} is {other}, not the string {value:?}")),
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(reject(
            ReasonCode::WrongAnnotations,
            format!(
                "annotations: {} (signed annotations in {place}: {})",
                problems.join("; "),
                match found {
                    Some(f) if !f.is_empty() => serde_json::Value::Object(f.clone()).to_string(),
                    _ => "none".to_string(),
                }
            ),
        ))
    }
}

/// A layer that passed every check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Accepted {
    /// Who signed, in words (`the given ECDSA P-256 key`, `https://github.com/... (issuer ...)`).
    pub signer: String,
    /// What vouches for the signing time: the Rekor entry, or nothing (`--insecure-ignore-tlog`).
    pub transparency_log: String,
    /// The in-toto predicate type (attestations).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub predicate_type: Option<String>,
    /// Facts worth knowing that do not fail the check (e.g. signed under another repository name).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// For an attestation the verifier accepted: the in-toto statement whose signature was verified (the DSSE
    /// payload, byte for byte), so that callers read the predicate that was verified rather than fetch it
    /// again. Not serialized.
    #[serde(skip)]
    pub statement: Option<Arc<[u8]>>,
}

/// Why a signature, an attestation or an image was not accepted, as a stable kebab-case code. The JSON output
/// of `kibaverify verify`, its text output and (coming) admission denials all carry the same codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReasonCode {
    /// No signature (or attestation) was found at all.
    Unsigned,
    /// The signature does not verify with the policy's key, or was made with another kind of key material.
    WrongKey,
    /// The certificate's identity (SAN, issuer, a GitHub claim) is not the one the policy names.
    WrongIdentity,
    /// The signature, payload or bundle is malformed or does not verify.
    BadSignature,
    /// The signature is for another image (a signature copied from elsewhere).
    DigestMismatch,
    /// No transparency-log entry or timestamp proves when it was signed, or that proof does not verify.
    NoTransparencyProof,
    /// A timestamp-only bundle (an RFC 3161 timestamp, no transparency-log entry), which the policy does not
    /// accept (it accepts one only when told that signed timestamps suffice).
    TimestampOnly,
    /// The certificate, or the CA that issued it, was not valid at the verified signing time.
    CertificateNotValidAtSigningTime,
    /// The certificate does not chain to a trusted CA (or its certificate transparency proof fails).
    UntrustedRoot,
    /// The signed annotations are not the ones the policy requires.
    WrongAnnotations,
    /// An attestation of the required predicate type is missing.
    AttestationMissing,
    /// An attestation's predicate fails a check of the policy.
    AttestationPredicateFailed,
    /// Provenance: the source repository is not the one wanted (`--source-uri`).
    SourceMismatch,
    /// Provenance: the source ref (tag, branch, versioned tag) is not the one wanted.
    RefMismatch,
    /// Provenance: the builder is not the one the policy trusts (`--builder-id`).
    BuilderMismatch,
    /// Provenance: the build type is not the one wanted (`--build-type`).
    BuildTypeMismatch,
    /// An in-toto statement names other subjects than the image digest (a statement copied or forged).
    SubjectDigestMismatch,
    /// Provenance of another SLSA version (predicate type) than the one required.
    PredicateTypeMismatch,
    /// Not checked: more signatures than are checked for one image.
    NotChecked,
    /// The image (its tag or digest) is not in the registry.
    ImageNotFound,
    /// The registry refused the credentials (or asked for some and none were given).
    RegistryDenied,
    /// The registry could not be read.
    RegistryUnreachable,
    /// The registry did not answer within the time allowed.
    Timeout,
}

impl ReasonCode {
    /// How far a signature rejected for this reason got through the checks (0 = furthest): what a denial
    /// names when several signatures were found and none passed.
    pub fn closeness(self) -> u8 {
        match self {
            ReasonCode::AttestationPredicateFailed
            | ReasonCode::SourceMismatch
            | ReasonCode::RefMismatch
            | ReasonCode::BuilderMismatch
            | ReasonCode::BuildTypeMismatch => 0,
            ReasonCode::WrongAnnotations => 1,
            ReasonCode::WrongIdentity => 2,
            ReasonCode::DigestMismatch | ReasonCode::SubjectDigestMismatch => 3,
            ReasonCode::CertificateNotValidAtSigningTime => 4,
            ReasonCode::NoTransparencyProof | ReasonCode::TimestampOnly => 5,
            ReasonCode::UntrustedRoot => 6,
            ReasonCode::BadSignature => 7,
            ReasonCode::WrongKey => 8,
            _ => 9,
        }
    }

    /// The code as it appears in JSON and messages (`wrong-key`).
    pub fn as_str(self) -> &'static str {
        match self {
            ReasonCode::Unsigned => "unsigned",
            ReasonCode::WrongKey => "wrong-key",
            ReasonCode::WrongIdentity => "wrong-identity",
            ReasonCode::BadSignature => "bad-signature",
            ReasonCode::DigestMismatch => "digest-mismatch",
            ReasonCode::NoTransparencyProof => "no-transparency-proof",
            ReasonCode::TimestampOnly => "timestamp-only",
            ReasonCode::CertificateNotValidAtSigningTime => "certificate-not-valid-at-signing-time",
            ReasonCode::UntrustedRoot => "untrusted-root",
            ReasonCode::WrongAnnotations => "wrong-annotations",
            ReasonCode::AttestationMissing => "attestation-missing",
            ReasonCode::AttestationPredicateFailed => "attestation-predicate-failed",
            ReasonCode::SourceMismatch => "source-mismatch",
            ReasonCode::RefMismatch => "ref-mismatch",
            ReasonCode::BuilderMismatch => "builder-mismatch",
            ReasonCode::BuildTypeMismatch => "build-type-mismatch",
            ReasonCode::SubjectDigestMismatch => "subject-digest-mismatch",
            ReasonCode::PredicateTypeMismatch => "predicate-type-mismatch",
            ReasonCode::NotChecked => "not-checked",
            ReasonCode::ImageNotFound => "image-not-found",
            ReasonCode::RegistryDenied => "registry-denied",
            ReasonCode::RegistryUnreachable => "registry-unreachable",
            ReasonCode::Timeout => "timeout",
        }
    }
}

impl std::fmt::Display for ReasonCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which identity claim differed from the policy, what the policy wanted and what the certificate holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IdentityMismatch {
    /// The claim (`subject alternative name`, `issuer`, a GitHub workflow claim).
    pub claim: String,
    /// What the policy wanted.
    pub wanted: String,
    /// What the certificate holds.
    pub got: String,
}

/// Why a layer was not accepted: its code, the failed check in words, and what the user could do about it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Rejected {
    /// The reason as a stable code.
    pub code: ReasonCode,
    /// The failed check, in words.
    pub message: String,
    /// What would make it pass, when that is a choice of the user's and not a fault of the signature.
    pub hint: Option<Hint>,
    /// For `wrong-identity`: which claim, wanted, got.
    pub mismatch: Option<IdentityMismatch>,
    /// For `attestation-predicate-failed`: which check of the predicate failed, wanted, got.
    pub predicate_failure: Option<Box<PredicateFailure>>,
}

/// What a user can do about a rejected signature. Data, not text: the library does not know the front end's
/// flag or parameter names, so each front end renders a hint in its own terms (kibaverify: cosign's flags;
/// the Tekton step: its Task parameters). Serialized as a stable kebab-case code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Hint {
    /// The signature verifies with the key but has no transparency-log proof: accept that explicitly
    /// (cosign's `--insecure-ignore-tlog`).
    AcceptWithoutTransparencyLog,
    /// The layer is keyless (it carries a certificate): verify it with a certificate identity and issuer.
    VerifyWithCertificateIdentity,
    /// The layer was signed with a key, not a Fulcio certificate: verify it with that public key.
    VerifyWithKey,
    /// The bundle is timestamp-only: accept signed (RFC 3161) timestamps without a transparency-log entry
    /// (cosign's `--insecure-ignore-tlog --use-signed-timestamps`).
    AcceptSignedTimestamps,
}

/// `Accepted::transparency_log` when the policy accepts signatures without transparency-log proof.
const NOT_CHECKED: &str =
    "not checked (accepted without transparency-log proof, as the policy allows)";

fn reject(code: ReasonCode, msg: impl Into<String>) -> Rejected {
    Rejected {
        code,
        message: msg.into(),
        hint: None,
        mismatch: None,
        predicate_failure: None,
    }
}

/// A verified attestation (signed by `signer`) whose predicate failed a check of the policy.
pub(crate) fn predicate_failed(signer: &str, failure: PredicateFailure) -> Rejected {
    Rejected {
        predicate_failure: Some(Box::new(failure.clone())),
        ..reject(
            failure
                .code
                .unwrap_or(ReasonCode::AttestationPredicateFailed),
            format!(
                "signed by {signer}, but its predicate fails a check: {} is {}, wanted {}",
                failure.path, failure.got, failure.wanted
            ),
        )
    }
}

fn reject_with(code: ReasonCode, msg: impl Into<String>, hint: Hint) -> Rejected {
    Rejected {
        hint: Some(hint),
        ..reject(code, msg)
    }
}

/// The reason code of a failed bundle verification, for a policy of a key or of a certificate identity.
fn rejected_by_verifier(error: VerifyError, identity: &IdentityPolicy) -> Rejected {
    let by_key = matches!(identity, IdentityPolicy::Key(_));
    let code = match &error {
        VerifyError::KeyMaterial(_) if by_key => ReasonCode::WrongKey,
        VerifyError::KeyMaterial(_) => ReasonCode::WrongIdentity,
        VerifyError::Artifact(_) => ReasonCode::DigestMismatch,
        VerifyError::Signature(_) if by_key => ReasonCode::WrongKey,
        VerifyError::Signature(_) => ReasonCode::BadSignature,
        VerifyError::NoTransparencyLogEntry => ReasonCode::TimestampOnly,
        VerifyError::TransparencyLog { .. }
        | VerifyError::Timestamp { .. }
        | VerifyError::NoVerifiedTime { .. } => ReasonCode::NoTransparencyProof,
        VerifyError::CertificateNotValidAtSigningTime(_) => {
            ReasonCode::CertificateNotValidAtSigningTime
        }
        VerifyError::Certificate(_) | VerifyError::Sct(_) => ReasonCode::UntrustedRoot,
        VerifyError::Policy(_) => ReasonCode::WrongIdentity,
    };
    let mismatch = match &error {
        VerifyError::Policy(m) => Some(IdentityMismatch {
            claim: m.field.to_string(),
            wanted: m.expected.clone(),
            got: m.found.clone(),
        }),
        _ => None,
    };
    Rejected {
        mismatch,
        ..reject(code, error.to_string())
    }
}

/// The image a signature must be for.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    /// Manifest digest of the image.
    pub digest: &'a Digest,
    /// The repository as cosign names it (`Reference::ggcr_repository`).
    pub repository: &'a str,
}

/// Checks a `.sig` layer: the simple-signing payload names this image, and the signature is the signer's.
pub fn check_signature_layer(
    layer: &SignatureLayer,
    payload: &[u8],
    subject: Subject<'_>,
    options: &VerifyOptions,
) -> Result<Accepted, Rejected> {
    let parsed = SimpleSigningPayload::parse(payload)
        .map_err(|e| reject(ReasonCode::BadSignature, e.to_string()))?;
    let signed_digest = &parsed.critical.image.docker_manifest_digest;
    let signed_repo = &parsed.critical.identity.docker_reference;
    if *signed_digest != subject.digest.to_string() {
        return Err(reject(
            ReasonCode::DigestMismatch,
            format!(
                "signature for another image: the payload signs {signed_repo}@{signed_digest}, not {}@{}",
                subject.repository, subject.digest
            ),
        ));
    }
    let mut notes = Vec::new();
    if signed_repo != subject.repository {
        notes.push(format!(
            "signed under repository {signed_repo}, verified here as {} (the digest is the same; cosign accepts this too)",
            subject.repository
        ));
    }
    let signed = SignedContent::Message {
        payload,
        signature: &layer.signature,
    };
    let mut accepted = check_signed(layer, &signed, options)?;
    if !options.annotations.is_empty() {
        let optional = parsed
            .optional
            .as_ref()
            .map(|o| o.clone().into_iter().collect::<serde_json::Map<_, _>>());
        check_annotations(
            &options.annotations,
            optional.as_ref(),
            "the payload's optional section",
        )?;
    }
    accepted.notes.extend(notes);
    Ok(accepted)
}

/// The DSSE envelope cosign stores in a `.att` layer.
#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Envelope {
    payload_type: String,
    payload: String,
    #[serde(default)]
    signatures: Vec<EnvelopeSignature>,
}

#[derive(Debug, serde::Deserialize)]
struct EnvelopeSignature {
    sig: String,
}

/// Checks a `.att` layer: the DSSE envelope's in-toto statement has this image as a subject, its predicate type
/// is the one asked for, and the envelope signature is the signer's.
pub fn check_attestation_layer(
    layer: &SignatureLayer,
    envelope: &[u8],
    subject: Subject<'_>,
    options: &VerifyOptions,
) -> Result<Accepted, Rejected> {
    verify_attestation_layer(layer, envelope, subject, options).map(|(accepted, _)| accepted)
}

/// As [`check_attestation_layer`], also returning the in-toto statement whose signature was verified (the DSSE
/// payload), for the policy's predicate checks.
pub(crate) fn verify_attestation_layer(
    layer: &SignatureLayer,
    envelope: &[u8],
    subject: Subject<'_>,
    options: &VerifyOptions,
) -> Result<(Accepted, Vec<u8>), Rejected> {
    let env: Envelope = serde_json::from_slice(envelope).map_err(|e| {
        reject(
            ReasonCode::BadSignature,
            format!("the layer is not a DSSE envelope: {e}"),
        )
    })?;
    let statement = in_toto_payload(&env)?;
    let predicate_type = statement_matches(&statement, subject)?;
    if let Some(wanted) = &options.predicate_type {
        if *wanted != predicate_type {
            return Err(reject(
                ReasonCode::AttestationMissing,
                format!("predicate type {predicate_type:?} is not the requested {wanted:?}"),
            ));
        }
    }
    let signature = only_signature(&env)?;
    let signed = SignedContent::Dsse {
        payload_type: &env.payload_type,
        payload: &statement,
        signature: &signature,
        image_digest: subject.digest,
    };
    let mut accepted = check_signed(layer, &signed, options)?;
    accepted.predicate_type = Some(predicate_type);
    Ok((accepted, statement))
}

/// Checks that an in-toto statement (v0.1 or v1) names the image digest as a subject; returns its predicate type.
pub fn statement_matches(statement: &[u8], subject: Subject<'_>) -> Result<String, Rejected> {
    let v: serde_json::Value = serde_json::from_slice(statement).map_err(|e| {
        reject(
            ReasonCode::BadSignature,
            format!("the in-toto statement is not JSON: {e}"),
        )
    })?;
    let kind = v.get("_type").and_then(|t| t.as_str()).unwrap_or("");
    if kind != "https://in-toto.io/Statement/v0.1" && kind != "https://in-toto.io/Statement/v1" {
        return Err(reject(
            ReasonCode::BadSignature,
            format!("unsupported in-toto statement type {kind:?}"),
        ));
    }
    let alg = subject.digest.algorithm().name();
    let wanted = subject.digest.hex();
    let mut seen = Vec::new();
    for s in v
        .get("subject")
        .and_then(|s| s.as_array())
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        if let Some(value) = s
            .get("digest")
            .and_then(|d| d.get(alg))
            .and_then(|d| d.as_str())
        {
            if value.eq_ignore_ascii_case(wanted) {
                return Ok(v
                    .get("predicateType")
                    .and_then(|p| p.as_str())
                    .unwrap_or("")
                    .to_string());
            }
            seen.push(format!("{alg}:{value}"));
        }
    }
    Err(reject(
        ReasonCode::SubjectDigestMismatch,
        format!(
            "signed for another image: the in-toto statement's subjects are {}, not {}",
            if seen.is_empty() {
                "none".to_string()
            } else {
                seen.join(", ")
            },
            subject.digest
        ),
    ))
}

/// The `annotations` of the in-toto subject that is the image digest (`None` when it has none).
fn subject_annotations(
    statement: &[u8],
    subject: Subject<'_>,
) -> Option<serde_json::Map<String, serde_json::Value>> {
    let v: serde_json::Value = serde_json::from_slice(statement).ok()?;
    let alg = subject.digest.algorithm().name();
    v.get("subject")?
        .as_array()?
        .iter()
        .find(|s| {
            s.get("digest")
                .and_then(|d| d.get(alg))
                .and_then(|d| d.as_str())
                .is_some_and(|d| d.eq_ignore_ascii_case(subject.digest.hex()))
        })?
        .get("annotations")?
        .as_object()
        .cloned()
}

/// What a layer signs.
#[derive(Debug, Clone, Copy)]
pub enum SignedContent<'a> {
    /// A signature over the payload bytes (simple signing).
    Message {
        /// The payload bytes.
        payload: &'a [u8],
        /// The signature.
        signature: &'a [u8],
    },
    /// A DSSE envelope over an in-toto statement about `image_digest`.
    Dsse {
        /// The envelope's payload type.
        payload_type: &'a str,
        /// The decoded payload (the statement).
        payload: &'a [u8],
        /// The envelope's signature.
        signature: &'a [u8],
        /// The image the statement must be about.
        image_digest: &'a Digest,
    },
}

fn check_signed(
    layer: &SignatureLayer,
    content: &SignedContent<'_>,
    options: &VerifyOptions,
) -> Result<Accepted, Rejected> {
    match &options.identity {
        IdentityPolicy::Key(key) => {
            let ok = match content {
                SignedContent::Message { payload, signature } => key.verify(payload, signature),
                SignedContent::Dsse {
                    payload_type,
                    payload,
                    signature,
                    ..
                } => key.verify(&pae(payload_type, payload), signature),
            };
            if !ok {
                return Err(if layer.certificate_pem.is_some() {
                    reject_with(
                        ReasonCode::WrongKey,
                        "the signature does not verify with the given key (this layer is keyless: it carries a certificate)",
                        Hint::VerifyWithCertificateIdentity,
                    )
                } else {
                    reject(
                        ReasonCode::WrongKey,
                        "the signature does not verify with the given key",
                    )
                });
            }
            let signer = format!("the given {:?} key", key.kind());
            match (&layer.rekor_bundle, options.ignore_tlog) {
                (_, true) => Ok(Accepted {
                    signer,
                    transparency_log: NOT_CHECKED.into(),
                    predicate_type: None,
                    notes: Vec::new(),
                    statement: None,
                }),
                (None, false) => Err(reject_with(
                    ReasonCode::NoTransparencyProof,
                    "signed with the given key, but there is no Rekor bundle to prove the transparency-log entry (signed without uploading to a log?)",
                    Hint::AcceptWithoutTransparencyLog,
                )),
                (Some(rekor), false) => {
                    let result = verify_as_bundle(layer, rekor, content, options)?;
                    Ok(accepted_from(signer, &result))
                }
            }
        }
        IdentityPolicy::Certificate(_) => {
            if layer.certificate_pem.is_none() {
                return Err(reject_with(
                    ReasonCode::WrongIdentity,
                    "signed with a key, not a Fulcio certificate",
                    Hint::VerifyWithKey,
                ));
            }
            let Some(rekor) = &layer.rekor_bundle else {
                return Err(reject(
                    ReasonCode::NoTransparencyProof,
                    "keyless signature without a Rekor bundle annotation: checking it would need an online Rekor lookup, which kibaverify does not do",
                ));
            };
            let result = verify_as_bundle(layer, rekor, content, options)?;
            let signer = result.signer.to_string();
            Ok(accepted_from(signer, &result))
        }
    }
}

fn accepted_from(signer: String, result: &VerificationResult) -> Accepted {
    let transparency_log = result
        .log_entries
        .iter()
        .map(|e| {
            let checked = match (e.signed_entry_timestamp, e.inclusion_proof) {
                (true, true) => "signed entry timestamp and inclusion proof verified",
                (true, false) => "signed entry timestamp verified",
                (false, true) => "inclusion proof and signed checkpoint verified",
                // The verifier accepts no entry with neither; say so rather than claim a check.
                (false, false) => "no log proof checked",
            };
            format!("{} entry {} ({}), {checked}", e.log, e.log_index, e.kind)
        })
        .collect::<Vec<_>>()
        .join("; ");
    Accepted {
        signer,
        transparency_log,
        predicate_type: result.predicate_type.clone(),
        notes: Vec::new(),
        statement: None,
    }
}

fn verify_as_bundle(
    layer: &SignatureLayer,
    rekor: &RekorBundle,
    content: &SignedContent<'_>,
    options: &VerifyOptions,
) -> Result<VerificationResult, Rejected> {
    let json = legacy_bundle_json(layer, rekor, content)?;
    let bundle = Bundle::from_json(&json).map_err(|e| {
        reject(
            ReasonCode::BadSignature,
            format!("the layer's material does not form a valid Sigstore bundle: {e}"),
        )
    })?;
    let verified = match content {
        SignedContent::Message { payload, .. } => options.verifier.verify_at(
            &bundle,
            ArtifactPolicy::Bytes(payload),
            &options.identity,
            options.now,
        ),
        SignedContent::Dsse { image_digest, .. } => {
            let algorithm = match image_digest.algorithm().name() {
                "sha384" => HashAlgorithm::Sha384,
                "sha512" => HashAlgorithm::Sha512,
                _ => HashAlgorithm::Sha256,
            };
            let bytes = hex::decode(image_digest.hex()).map_err(|e| {
                reject(
                    ReasonCode::BadSignature,
                    format!("image digest is not hex: {e}"),
                )
            })?;
            options.verifier.verify_at(
                &bundle,
                ArtifactPolicy::Digest {
                    algorithm,
                    digest: &bytes,
                },
                &options.identity,
                options.now,
            )
        }
    };
    verified.map_err(|e| rejected_by_verifier(e, &options.identity))
}

/// The Sigstore bundle v0.1 equivalent to a legacy layer: its leaf certificate (or, key-based, a key hint), the
/// Rekor entry with the SET as its inclusion promise, and the signed content. Only the leaf is carried: CA
/// certificates come from the trusted root, never from the layer's chain annotation.
pub fn legacy_bundle_json(
    layer: &SignatureLayer,
    rekor: &RekorBundle,
    content: &SignedContent<'_>,
) -> Result<Vec<u8>, Rejected> {
    let body = STANDARD
        .decode(rekor.payload.body.as_bytes())
        .map_err(|e| {
            reject(
                ReasonCode::NoTransparencyProof,
                format!("Rekor bundle body is not base64: {e}"),
            )
        })?;
    let body_json: serde_json::Value = serde_json::from_slice(&body).map_err(|e| {
        reject(
            ReasonCode::NoTransparencyProof,
            format!("Rekor bundle body is not JSON: {e}"),
        )
    })?;
    let kind = body_json.get("kind").and_then(|k| k.as_str()).unwrap_or("");
    let version = body_json
        .get("apiVersion")
        .and_then(|k| k.as_str())
        .unwrap_or("");
    let log_id = hex::decode(&rekor.payload.log_id).map_err(|e| {
        reject(
            ReasonCode::NoTransparencyProof,
            format!("Rekor bundle logID is not hex: {e}"),
        )
    })?;
    let material_signer = match &layer.certificate_pem {
        Some(pem) => {
            let der = pem::decode(pem, "CERTIFICATE").map_err(|e| {
                reject(
                    ReasonCode::BadSignature,
                    format!("the certificate annotation is not a PEM certificate: {e}"),
                )
            })?;
            serde_json::json!({"x509CertificateChain": {"certificates": [{"rawBytes": STANDARD.encode(der)}]}})
        }
        None => serde_json::json!({"publicKey": {"hint": ""}}),
    };
    let mut material = material_signer;
    material["tlogEntries"] = serde_json::json!([{
        "logIndex": rekor.payload.log_index.to_string(),
        "logId": {"keyId": STANDARD.encode(&log_id)},
        "kindVersion": {"kind": kind, "version": version},
        "integratedTime": rekor.payload.integrated_time.to_string(),
        "inclusionPromise": {"signedEntryTimestamp": rekor.signed_entry_timestamp},
        "canonicalizedBody": rekor.payload.body,
    }]);
    let mut bundle = serde_json::json!({
        "mediaType": BUNDLE_V01_MEDIA_TYPE,
        "verificationMaterial": material,
    });
    match content {
        SignedContent::Message { payload, signature } => {
            bundle["messageSignature"] = serde_json::json!({
                "messageDigest": {
                    "algorithm": "SHA2_256",
                    "digest": STANDARD.encode(HashAlgorithm::Sha256.digest(payload)),
                },
                "signature": STANDARD.encode(signature),
            });
        }
        SignedContent::Dsse {
            payload_type,
            payload,
            signature,
            ..
        } => {
            bundle["dsseEnvelope"] = serde_json::json!({
                "payload": STANDARD.encode(payload),
                "payloadType": payload_type,
                "signatures": [{"sig": STANDARD.encode(signature), "keyid": ""}],
            });
        }
    }
    serde_json::to_vec(&bundle).map_err(|e| {
        reject(
            ReasonCode::BadSignature,
            format!("serialising the bundle: {e}"),
        )
    })
}

/// Which kind of referrer bundle is being looked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BundleKind {
    /// Image signatures (statement predicate type `https://sigstore.dev/cosign/sign/v1`).
    Signature,
    /// Attestations (any other predicate type).
    Attestation,
}

#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct ReferrerBundle {
    media_type: Option<String>,
    verification_material: Option<serde_json::Value>,
    dsse_envelope: Option<Envelope>,
    message_signature: Option<serde_json::Value>,
}

/// Checks a Sigstore bundle (v0.3) attached as a referrer of the image. `Ok(None)` when the bundle is of the other
/// kind (an attestation when signatures are wanted, or the reverse) and so not for this check.
///
/// Bundles with transparency-log entries go through [`kibaship_sigstore::Verifier`]. A key-based bundle without
/// any (cosign v3 signing with no log) is checked here: the DSSE signature with the given key, accepted only
/// with `ignore_tlog`.
pub fn check_referrer_bundle(
    json: &[u8],
    subject: Subject<'_>,
    kind: BundleKind,
    options: &VerifyOptions,
) -> Result<Option<Accepted>, Rejected> {
    verify_referrer_bundle(json, subject, kind, options, TimeEvidence::TransparencyLog)
        .map(|v| v.map(|(accepted, _)| accepted))
}

/// As [`check_referrer_bundle`], also returning the in-toto statement whose signature was verified (the DSSE
/// payload of the bundle the verifier accepted), for the policy's predicate checks.
///
/// `evidence` says what must vouch for a keyless bundle's signing time: with
/// [`TimeEvidence::SignedTimestamps`] a timestamp-only bundle (an RFC 3161 timestamp, no log entry) is checked
/// by the verifier; otherwise it is refused with [`ReasonCode::TimestampOnly`].
pub(crate) fn verify_referrer_bundle(
    json: &[u8],
    subject: Subject<'_>,
    kind: BundleKind,
    options: &VerifyOptions,
    evidence: TimeEvidence,
) -> Result<Option<(Accepted, Vec<u8>)>, Rejected> {
    let raw: ReferrerBundle = serde_json::from_slice(json).map_err(|e| {
        reject(
            ReasonCode::BadSignature,
            format!("the bundle is not JSON of a Sigstore bundle: {e}"),
        )
    })?;
    let media_type = raw.media_type.as_deref().unwrap_or("");
    if !crate::bundle_layout::is_referrer_bundle_media_type(media_type) {
        return Err(reject(
            ReasonCode::BadSignature,
            format!("bundle media type {media_type:?} is not a Sigstore bundle v0.3"),
        ));
    }
    if raw.message_signature.is_some() {
        return Err(reject(
            ReasonCode::BadSignature,
            "the bundle holds a message signature, not the DSSE envelope cosign signs images with",
        ));
    }
    let Some(env) = raw.dsse_envelope else {
        return Err(reject(
            ReasonCode::BadSignature,
            "the bundle has no DSSE envelope",
        ));
    };
    let statement = in_toto_payload(&env)?;
    let predicate_type = statement_matches(&statement, subject)?;
    let is_signature = predicate_type == crate::bundle_layout::COSIGN_SIGN_PREDICATE_TYPE;
    if is_signature != (kind == BundleKind::Signature) {
        return Ok(None);
    }
    if kind == BundleKind::Attestation {
        if let Some(wanted) = &options.predicate_type {
            if *wanted != predicate_type {
                return Err(reject(
                    ReasonCode::AttestationMissing,
                    format!("predicate type {predicate_type:?} is not the requested {wanted:?}"),
                ));
            }
        }
    }
    let has_tlog = raw
        .verification_material
        .as_ref()
        .and_then(|m| m.get("tlogEntries"))
        .and_then(|t| t.as_array())
        .is_some_and(|t| !t.is_empty());
    let has_timestamps = raw
        .verification_material
        .as_ref()
        .and_then(|m| m.pointer("/timestampVerificationData/rfc3161Timestamps"))
        .and_then(|t| t.as_array())
        .is_some_and(|t| !t.is_empty());
    let keyless = matches!(options.identity, IdentityPolicy::Certificate(_));
    if !has_tlog && has_timestamps && keyless && evidence != TimeEvidence::SignedTimestamps {
        return Err(reject_with(
            ReasonCode::TimestampOnly,
            "the bundle is timestamp-only (an RFC 3161 timestamp, no transparency-log entry), which the policy does not accept",
            Hint::AcceptSignedTimestamps,
        ));
    }
    let (mut accepted, verified_statement) = if has_tlog || (has_timestamps && keyless) {
        let bundle = Bundle::from_json(json).map_err(|e| {
            reject(
                ReasonCode::BadSignature,
                format!("invalid Sigstore bundle: {e}"),
            )
        })?;
        let bytes = hex::decode(subject.digest.hex()).map_err(|e| {
            reject(
                ReasonCode::BadSignature,
                format!("image digest is not hex: {e}"),
            )
        })?;
        let algorithm = match subject.digest.algorithm().name() {
            "sha384" => HashAlgorithm::Sha384,
            "sha512" => HashAlgorithm::Sha512,
            _ => HashAlgorithm::Sha256,
        };
        let result = options
            .verifier
            .verify_at_with(
                &bundle,
                ArtifactPolicy::Digest {
                    algorithm,
                    digest: &bytes,
                },
                &options.identity,
                options.now,
                if has_tlog {
                    TimeEvidence::TransparencyLog
                } else {
                    evidence
                },
            )
            .map_err(|e| rejected_by_verifier(e, &options.identity))?;
        // What the verifier checked is the bundle's own parse of the envelope: read the statement from there.
        let Content::Dsse(envelope) = bundle.content else {
            return Err(reject(
                ReasonCode::BadSignature,
                "the bundle holds a message signature, not the DSSE envelope cosign signs images with",
            ));
        };
        let mut accepted = accepted_from(result.signer.to_string(), &result);
        if !has_tlog {
            accepted.transparency_log = format!(
                "none (timestamp-only bundle, accepted as the policy allows signed timestamps): {}",
                result
                    .verified_times
                    .iter()
                    .map(|t| format!("RFC 3161 timestamp from {} verified", t.authority))
                    .collect::<Vec<_>>()
                    .join("; ")
            );
        }
        (accepted, envelope.payload)
    } else {
        let IdentityPolicy::Key(key) = &options.identity else {
            return Err(reject(
                ReasonCode::NoTransparencyProof,
                "the bundle has no transparency-log entry, so a keyless certificate cannot be dated: not verifiable",
            ));
        };
        let signature = only_signature(&env)?;
        if !key.verify(&pae(&env.payload_type, &statement), &signature) {
            return Err(reject(
                ReasonCode::WrongKey,
                "the signature does not verify with the given key",
            ));
        }
        if !options.ignore_tlog {
            return Err(reject_with(
                ReasonCode::NoTransparencyProof,
                "signed with the given key, but the bundle has no transparency-log entry (signed without uploading to a log?)",
                Hint::AcceptWithoutTransparencyLog,
            ));
        }
        (
            Accepted {
                signer: format!("the given {:?} key", key.kind()),
                transparency_log: NOT_CHECKED.into(),
                predicate_type: None,
                notes: Vec::new(),
                statement: None,
            },
            statement,
        )
    };
    if kind == BundleKind::Attestation {
        accepted.predicate_type = Some(predicate_type);
    } else if !options.annotations.is_empty() {
        let found = subject_annotations(&verified_statement, subject);
        check_annotations(&options.annotations, found.as_ref(), "the in-toto subject")?;
    }
    Ok(Some((accepted, verified_statement)))
}

/// The one signature of a DSSE envelope (cosign writes exactly one), decoded.
fn only_signature(env: &Envelope) -> Result<Vec<u8>, Rejected> {
    let [sig] = env.signatures.as_slice() else {
        return Err(reject(
            ReasonCode::BadSignature,
            format!(
                "the DSSE envelope has {} signatures; cosign writes exactly one",
                env.signatures.len()
            ),
        ));
    };
    STANDARD.decode(sig.sig.as_bytes()).map_err(|e| {
        reject(
            ReasonCode::BadSignature,
            format!("DSSE signature is not base64: {e}"),
        )
    })
}

/// The in-toto statement a DSSE envelope carries: its payload type must be in-toto's, its payload base64.
fn in_toto_payload(env: &Envelope) -> Result<Vec<u8>, Rejected> {
    if env.payload_type != IN_TOTO_PAYLOAD_TYPE {
        return Err(reject(
            ReasonCode::BadSignature,
            format!(
                "DSSE payload type {:?} is not {IN_TOTO_PAYLOAD_TYPE:?}",
                env.payload_type
            ),
        ));
    }
    STANDARD.decode(env.payload.as_bytes()).map_err(|e| {
        reject(
            ReasonCode::BadSignature,
            format!("DSSE payload is not base64: {e}"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signed(json: &str) -> serde_json::Map<String, serde_json::Value> {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn annotations_must_all_be_present_and_equal() {
        let wanted: BTreeMap<String, String> = [("team", "platform"), ("tier", "1")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let all = signed(r#"{"team":"platform","tier":"1","extra":"x"}"#);
        assert!(check_annotations(&wanted, Some(&all), "p").is_ok());
        let err = check_annotations(&wanted, Some(&signed(r#"{"team":"payments"}"#)), "p")
            .unwrap_err()
            .message;
        assert!(
            err.contains("team is \"payments\", not \"platform\""),
            "{err}"
        );
        assert!(err.contains("tier=1 is missing"), "{err}");
        let err = check_annotations(
            &wanted,
            Some(&signed(r#"{"team":"platform","tier":1}"#)),
            "p",
        )
        .unwrap_err()
        .message;
        assert!(err.contains("tier is 1, not the string \"1\""), "{err}");
        let err = check_annotations(&wanted, None, "the payload")
            .unwrap_err()
            .message;
        assert!(
            err.contains("(signed annotations in the payload: none)"),
            "{err}"
        );
        assert!(check_annotations(&BTreeMap::new(), None, "p").is_ok());
    }

    #[test]
    fn subject_annotations_come_from_the_image_subject() {
        let digest: Digest =
            "sha256:1111111111111111111111111111111111111111111111111111111111111111"
                .parse()
                .unwrap();
        let subject = Subject {
            digest: &digest,
            repository: "r",
        };
        let statement = format!(
            r#"{{"subject":[{{"digest":{{"sha256":"{}"}},"annotations":{{"a":"other"}}}},{{"digest":{{"sha256":"{}"}},"annotations":{{"a":"mine"}}}}]}}"#,
            "2".repeat(64),
            "1".repeat(64)
        );
        let found = subject_annotations(statement.as_bytes(), subject).unwrap();
        assert_eq!(found["a"], "mine");
        assert!(subject_annotations(b"not json", subject).is_none());
    }
}
