//! The one verification API: [`ImageVerifier::verify`] reads an image's signatures and attestations (both cosign
//! layouts) and returns a [`Verdict`]. `kibaverify verify`, `verify-attestation` and (coming) the admission
//! webhook call it; nothing else discovers or checks signatures.
//!
//! A [`Verdict::Verified`] is a proof: its [`VerifiedImage`] has private fields and no public constructor, so
//! only this module can make one, and only after the policy was satisfied:
//!
//! ```compile_fail
//! // An outside crate cannot forge a verified image.
//! fn forge(image: kibaship_oci::Reference, digest: kibaship_oci::Digest) -> kibaship_cosign::VerifiedImage {
//!     kibaship_cosign::VerifiedImage { image, digest, signatures: None, attestations: None }
//! }
//! ```
use std::collections::BTreeMap;
use std::sync::Arc;

use kibaship_oci::{Digest, Reference, RegistryClient};
use kibaship_sigstore::{CertificateIdentity, IdentityPolicy, PublicKey, TrustedRoot, Verifier};

use crate::check::{ReasonCode, VerifyOptions};
use crate::legacy::LayerKind;
use crate::predicate::{
    CompiledCheck, PointerError, PredicateCheck, PredicateChecks, PredicateFailure,
};
use crate::registry::{self, CosignError, ImageReport};

/// What a policy was built from is unusable.
#[derive(Debug, thiserror::Error)]
pub enum ImagePolicyError {
    /// A public key that does not parse.
    #[error("authority {index}: the public key does not parse: {reason}")]
    Key {
        /// Position of the authority in the policy.
        index: usize,
        /// Why.
        reason: String,
    },
    /// Nothing could ever verify.
    #[error("the policy names no authority (public key or certificate identity)")]
    NoAuthority,
    /// Nothing is required.
    #[error("the policy requires neither a signature nor an attestation")]
    NothingRequired,
    /// A predicate check's path is not an RFC 6901 JSON pointer.
    #[error("predicate check {path:?} of {predicate_type}: {source}")]
    PredicatePath {
        /// The predicate type the check is for.
        predicate_type: String,
        /// The path as given.
        path: String,
        /// What is wrong with it.
        #[source]
        source: PointerError,
    },
}

/// What an image must carry to be verified. Built from bytes and values (keys as PEM text, identities, predicate
/// types), never from files or flags, so the CLI, the Tekton steps and the webhook build the same thing.
/// [`ImagePolicy::fingerprint`] identifies it (for caches of verification facts).
#[derive(Debug, Clone)]
pub struct ImagePolicy {
    pub(crate) authorities: Vec<IdentityPolicy>,
    pub(crate) signature_required: bool,
    /// Required predicate types (`None`: any), each once, in the order first asked for.
    pub(crate) attestations: Vec<Option<String>>,
    /// What the predicates of those types must hold.
    pub(crate) predicate_checks: PredicateChecks,
    pub(crate) annotations: BTreeMap<String, String>,
    pub(crate) accept_without_transparency_log: bool,
    /// Signed (RFC 3161) timestamps suffice: timestamp-only keyless bundles are accepted.
    pub(crate) use_signed_timestamps: bool,
    pub(crate) signature_repository: Option<Reference>,
}

/// Builds an [`ImagePolicy`].
#[derive(Debug)]
pub struct ImagePolicyBuilder {
    policy: ImagePolicy,
    /// The first unusable predicate check, reported by `build`.
    error: Option<ImagePolicyError>,
}

impl ImagePolicy {
    /// A policy to build: add at least one authority; a signature is required unless said otherwise.
    pub fn builder() -> ImagePolicyBuilder {
        ImagePolicyBuilder {
            policy: ImagePolicy {
                authorities: Vec::new(),
                signature_required: true,
                attestations: Vec::new(),
                predicate_checks: PredicateChecks::default(),
                annotations: BTreeMap::new(),
                accept_without_transparency_log: false,
                use_signed_timestamps: false,
                signature_repository: None,
            },
            error: None,
        }
    }

    /// The same authorities, transparency-log requirement and signature repository, requiring no signature and
    /// any one attestation: verified, it reports every attestation those authorities signed (what `kibaverify
    /// audit` lists besides what the policy requires).
    pub fn any_attestation(&self) -> ImagePolicy {
        ImagePolicy {
            authorities: self.authorities.clone(),
            signature_required: false,
            attestations: vec![None],
            predicate_checks: PredicateChecks::default(),
            annotations: BTreeMap::new(),
            accept_without_transparency_log: self.accept_without_transparency_log,
            use_signed_timestamps: self.use_signed_timestamps,
            signature_repository: self.signature_repository.clone(),
        }
    }
}

impl ImagePolicyBuilder {
    /// Accept signatures made with this public key (PEM `PUBLIC KEY` text, e.g. `cosign.pub`).
    pub fn key_pem(mut self, pem: &[u8]) -> Result<Self, ImagePolicyError> {
        let index = self.policy.authorities.len();
        let text = std::str::from_utf8(pem).map_err(|_| ImagePolicyError::Key {
            index,
            reason: "not PEM text (not UTF-8)".into(),
        })?;
        let key = PublicKey::from_pem(text).map_err(|e| ImagePolicyError::Key {
            index,
            reason: e.to_string(),
        })?;
        self.policy.authorities.push(IdentityPolicy::Key(key));
        Ok(self)
    }

    /// Accept signatures made with this (already parsed) public key.
    pub fn key(mut self, key: PublicKey) -> Self {
        self.policy.authorities.push(IdentityPolicy::Key(key));
        self
    }

    /// Accept signatures this identity policy (a key or a certificate identity) accepts.
    pub fn authority(mut self, identity: IdentityPolicy) -> Self {
        self.policy.authorities.push(identity);
        self
    }

    /// Accept keyless signatures whose Fulcio certificate proves this identity.
    pub fn keyless(mut self, identity: CertificateIdentity) -> Self {
        self.policy
            .authorities
            .push(IdentityPolicy::Certificate(identity));
        self
    }

    /// Also require an attestation of this in-toto predicate type (`None`: of any type). The same as
    /// [`ImagePolicyBuilder::require_attestation_checked`] with no checks.
    pub fn require_attestation(mut self, predicate_type: Option<String>) -> Self {
        if !self.policy.attestations.contains(&predicate_type) {
            self.policy.attestations.push(predicate_type);
        }
        self
    }

    /// Also require an attestation of this in-toto predicate type whose verified predicate passes every one of
    /// `checks` (at least one attestation of the type must pass them all). A type required more than once is one
    /// requirement: its checks add up, and one attestation must pass them all. When attestations of the type
    /// verified but none passes, the verdict's code is `attestation-predicate-failed` and
    /// [`NotVerified::predicate_failure`] names the check. A path that is not an RFC 6901 JSON pointer makes
    /// [`ImagePolicyBuilder::build`] fail.
    pub fn require_attestation_checked(
        mut self,
        predicate_type: String,
        checks: Vec<PredicateCheck>,
    ) -> Self {
        self = self.require_attestation(Some(predicate_type.clone()));
        let mut compiled = Vec::with_capacity(checks.len());
        for check in checks {
            match CompiledCheck::new(check.clone()) {
                Ok(c) => compiled.push(c),
                Err(source) => {
                    self.error.get_or_insert(ImagePolicyError::PredicatePath {
                        predicate_type: predicate_type.clone(),
                        path: check.path,
                        source,
                    });
                }
            }
        }
        self.policy
            .predicate_checks
            .by_type
            .entry(predicate_type)
            .or_default()
            .extend(compiled);
        self
    }

    /// Require no image signature (only the attestations asked for), as `cosign verify-attestation` does.
    pub fn signature_not_required(mut self) -> Self {
        self.policy.signature_required = false;
        self
    }

    /// Signed annotations every accepted signature must carry (cosign's `verify -a`).
    pub fn annotations(mut self, annotations: BTreeMap<String, String>) -> Self {
        self.policy.annotations = annotations;
        self
    }

    /// Accept key-based signatures without transparency-log proof (cosign's `--insecure-ignore-tlog`).
    pub fn accept_without_transparency_log(mut self, accept: bool) -> Self {
        self.policy.accept_without_transparency_log = accept;
        self
    }

    /// Let signed (RFC 3161) timestamps vouch for a keyless bundle's signing time without a transparency-log
    /// entry: timestamp-only bundles are then checked (certificate at the TSA's time, the timestamp against the
    /// trusted root's TSAs) instead of refused with `timestamp-only`. sigstore-go's `WithSignedTimestamps(1)`
    /// without `WithTransparencyLog`; cosign's `--insecure-ignore-tlog --use-signed-timestamps`. Off by default:
    /// such a signature was never made public in a log.
    pub fn use_signed_timestamps_without_transparency_log(mut self, accept: bool) -> Self {
        self.policy.use_signed_timestamps = accept;
        self
    }

    /// Read signatures from this repository instead of the image's (cosign's `COSIGN_REPOSITORY`).
    pub fn signature_repository(mut self, repository: Reference) -> Self {
        self.policy.signature_repository = Some(repository);
        self
    }

    /// The policy, if it can ever be satisfied.
    pub fn build(self) -> Result<ImagePolicy, ImagePolicyError> {
        if let Some(error) = self.error {
            return Err(error);
        }
        if self.policy.authorities.is_empty() {
            return Err(ImagePolicyError::NoAuthority);
        }
        if !self.policy.signature_required && self.policy.attestations.is_empty() {
            return Err(ImagePolicyError::NothingRequired);
        }
        Ok(self.policy)
    }
}

/// Verifies images against policies. Cheap to clone: the registry client and the trust material (parsed once)
/// are shared.
#[derive(Clone)]
pub struct ImageVerifier {
    client: RegistryClient,
    verifier: Arc<Verifier>,
    max_referrers_checked: usize,
    until_proof: bool,
}

impl std::fmt::Debug for ImageVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImageVerifier").finish_non_exhaustive()
    }
}

/// An image that satisfied its policy: only [`ImageVerifier::verify`] makes one.
#[derive(Debug, Clone)]
pub struct VerifiedImage {
    image: Reference,
    digest: Digest,
    signatures: Option<ImageReport>,
    attestations: Option<ImageReport>,
}

/// An image that did not satisfy its policy, with the reason and everything that was found.
#[derive(Debug, Clone)]
pub struct NotVerified {
    /// The image, by digest.
    pub image: Reference,
    /// Its digest.
    pub digest: Digest,
    /// Why, as a stable code: the signatures' reason when they failed; `attestation-predicate-failed` (or the
    /// failed check's own code, [`PredicateCheck::code`]) when attestations of a required type verified but none
    /// passed its predicate checks; else the attestations'
    /// reason or `attestation-missing`.
    pub code: ReasonCode,
    /// For `attestation-predicate-failed`: the check a verified attestation of the unmet type failed (the first
    /// such attestation found), what was wanted and what its predicate holds.
    pub predicate_failure: Option<PredicateFailure>,
    /// The signatures found and their outcomes (when the policy requires a signature).
    pub signatures: Option<ImageReport>,
    /// The attestations found and their outcomes (when the policy requires any).
    pub attestations: Option<ImageReport>,
}

/// The outcome of a verification.
#[derive(Debug, Clone)]
pub enum Verdict {
    /// The policy is satisfied: a proof only the verifier can make.
    Verified(VerifiedImage),
    /// It is not, and why.
    NotVerified(NotVerified),
}

impl VerifiedImage {
    /// The image, by digest: what was verified and what should run.
    pub fn image(&self) -> &Reference {
        &self.image
    }

    /// The digest that was verified.
    pub fn digest(&self) -> &Digest {
        &self.digest
    }

    /// The signatures found and their outcomes (when the policy requires a signature).
    pub fn signatures(&self) -> Option<&ImageReport> {
        self.signatures.as_ref()
    }

    /// The attestations found and their outcomes (when the policy requires any).
    pub fn attestations(&self) -> Option<&ImageReport> {
        self.attestations.as_ref()
    }
}

impl Verdict {
    /// The same verdict without the verified attestations' statements ([`crate::Accepted::statement`]): what a
    /// cache of verdicts keeps. A statement can be megabytes (an SBOM); a cached verdict is read for its outcome.
    pub fn without_statements(mut self) -> Verdict {
        let reports = match &mut self {
            Verdict::Verified(v) => [&mut v.signatures, &mut v.attestations],
            Verdict::NotVerified(n) => [&mut n.signatures, &mut n.attestations],
        };
        for report in reports.into_iter().flatten() {
            for outcome in &mut report.signatures {
                if let registry::Outcome::Accepted(accepted) = &mut outcome.outcome {
                    accepted.statement = None;
                }
            }
        }
        self
    }

    /// Whether the policy is satisfied.
    pub fn is_verified(&self) -> bool {
        matches!(self, Verdict::Verified(_))
    }

    /// The signatures found (when the policy requires a signature).
    pub fn signatures(&self) -> Option<&ImageReport> {
        match self {
            Verdict::Verified(v) => v.signatures.as_ref(),
            Verdict::NotVerified(n) => n.signatures.as_ref(),
        }
    }

    /// The attestations found (when the policy requires any).
    pub fn attestations(&self) -> Option<&ImageReport> {
        match self {
            Verdict::Verified(v) => v.attestations.as_ref(),
            Verdict::NotVerified(n) => n.attestations.as_ref(),
        }
    }

    /// Why the image is not verified (`None` when it is).
    pub fn code(&self) -> Option<ReasonCode> {
        match self {
            Verdict::Verified(_) => None,
            Verdict::NotVerified(n) => Some(n.code),
        }
    }
}

impl ImageVerifier {
    /// A verifier that reads registries with `client` and trusts `trusted_root` (parsed once, here).
    pub fn new(client: RegistryClient, trusted_root: TrustedRoot) -> Self {
        Self::with_verifier(client, Arc::new(Verifier::new(trusted_root)))
    }

    /// As [`ImageVerifier::new`], sharing an already built bundle verifier.
    pub fn with_verifier(client: RegistryClient, verifier: Arc<Verifier>) -> Self {
        ImageVerifier {
            client,
            verifier,
            max_referrers_checked: registry::MAX_REFERRERS_CHECKED,
            until_proof: false,
        }
    }

    /// Read until a proof: the legacy layout (cosign's `.sig` and `.att` tags) is read only when what is attached
    /// as referrers does not satisfy the policy, one round trip after them, instead of beside them. The verdict
    /// is the same; a report then lists the signatures that were read, not every signature of the image. For
    /// admission, where each registry request costs the decision's time; an audit reads everything (the
    /// default).
    pub fn reading_until_proof(mut self) -> Self {
        self.until_proof = true;
        self
    }

    /// Check at most `limit` signature referrers per image and kind (at least 1; default
    /// [`registry::MAX_REFERRERS_CHECKED`]). Beyond it, the referrers whose descriptors declare what is looked
    /// for are checked first ([`crate::referrer_selection`]) and the report says the bound was hit
    /// ([`ImageReport::referrer_limit_hit`]).
    pub fn with_max_referrers_checked(mut self, limit: usize) -> Self {
        self.max_referrers_checked = limit.max(1);
        self
    }

    /// Verifies `reference` against `policy` at `now` (unix seconds). The tag, if any, is resolved once and the
    /// digest is what every signature must name; the manifest of an image named by digest is read only when the
    /// verdict is not `Verified`. Errors are failures to read the image at all (`code()` says
    /// `image-not-found`, `registry-unreachable` or `timeout`); everything wrong with a signature is in the
    /// verdict.
    pub async fn verify(
        &self,
        reference: &Reference,
        policy: &ImagePolicy,
        now: i64,
    ) -> Result<Verdict, CosignError> {
        // A reference by digest names what every signature must name already: its signatures and attestations
        // are read at once, and the image's own manifest only if they do not satisfy the policy (so that a digest
        // the registry does not have is `image-not-found` rather than `unsigned`). A signature that verifies for
        // the digest is the proof; what the registry holds under it can only be that content. A tag is resolved
        // first.
        let ((digest, image), (signatures, attestations)) = match reference.digest() {
            Some(named) => {
                let named_image = reference.with_digest(named.clone());
                let read = self
                    .read(reference, (named, &named_image), policy, now)
                    .await?;
                if Self::unmet(policy, read.0.as_ref(), read.1.as_ref()).is_some() {
                    registry::pin(&self.client, reference).await?;
                }
                ((named.clone(), named_image), read)
            }
            None => {
                let (digest, image) = registry::pin(&self.client, reference).await?;
                let read = self.read(reference, (&digest, &image), policy, now).await?;
                ((digest, image), read)
            }
        };
        let unmet = Self::unmet(policy, signatures.as_ref(), attestations.as_ref());
        Ok(match unmet {
            None => Verdict::Verified(VerifiedImage {
                image,
                digest,
                signatures,
                attestations,
            }),
            Some((code, predicate_failure)) => Verdict::NotVerified(NotVerified {
                image,
                digest,
                code,
                predicate_failure,
                signatures,
                attestations,
            }),
        })
    }

    /// Reads and checks the signatures and the attestations `policy` requires of the image pinned to `digest`,
    /// both at once.
    async fn read(
        &self,
        reference: &Reference,
        (digest, image): (&Digest, &Reference),
        policy: &ImagePolicy,
        now: i64,
    ) -> Result<(Option<ImageReport>, Option<ImageReport>), CosignError> {
        let read = async |kind: LayerKind, predicate_type: Option<String>| {
            let checks = self.checks(policy, predicate_type, now);
            let repository = policy.signature_repository.as_ref();
            registry::check_image(
                &self.client,
                reference,
                (digest, image),
                repository,
                kind,
                registry::Checks {
                    checks: &checks,
                    predicates: &policy.predicate_checks,
                    max_referrers: self.max_referrers_checked,
                    until_proof: self.until_proof.then_some(policy.attestations.as_slice()),
                    time_evidence: if policy.use_signed_timestamps {
                        kibaship_sigstore::TimeEvidence::SignedTimestamps
                    } else {
                        kibaship_sigstore::TimeEvidence::TransparencyLog
                    },
                },
            )
            .await
        };
        let signatures = async {
            match policy.signature_required {
                true => read(LayerKind::Signature, None).await.map(Some),
                false => Ok(None),
            }
        };
        let attestations = async {
            if policy.attestations.is_empty() {
                return Ok(None);
            }
            // One required type is asked for by type, so that others are reported as not it; several are
            // read once and each looked for among the accepted.
            let asked = match policy.attestations.as_slice() {
                [only] => only.clone(),
                _ => None,
            };
            read(LayerKind::Attestation, asked).await.map(Some)
        };
        let (signatures, attestations) = tokio::join!(signatures, attestations);
        Ok((signatures?, attestations?))
    }

    /// One set of checks per authority of the policy.
    fn checks(
        &self,
        policy: &ImagePolicy,
        predicate_type: Option<String>,
        now: i64,
    ) -> Vec<VerifyOptions> {
        policy
            .authorities
            .iter()
            .map(|identity| VerifyOptions {
                identity: identity.clone(),
                verifier: Arc::clone(&self.verifier),
                now,
                ignore_tlog: policy.accept_without_transparency_log,
                predicate_type: predicate_type.clone(),
                annotations: policy.annotations.clone(),
            })
            .collect()
    }

    /// The first requirement of `policy` that what was found does not meet, with the predicate check that failed
    /// when that is why.
    fn unmet(
        policy: &ImagePolicy,
        signatures: Option<&ImageReport>,
        attestations: Option<&ImageReport>,
    ) -> Option<(ReasonCode, Option<PredicateFailure>)> {
        if let Some(report) = signatures {
            if !report.verified() {
                return Some((report.code().unwrap_or(ReasonCode::Unsigned), None));
            }
        }
        let report = attestations?;
        for wanted in &policy.attestations {
            if !registry::accepts_type(&report.signatures, wanted.as_deref()) {
                // Attestations of that type verified, but their predicates failed its checks: say which check.
                let failed = report.signatures.iter().find_map(|s| {
                    s.rejected()
                        .and_then(|r| r.predicate_failure.as_deref())
                        .filter(|f| wanted.as_deref().is_none_or(|t| f.predicate_type == t))
                });
                if let Some(failure) = failed {
                    return Some((failure.reason(), Some(failure.clone())));
                }
                // Nothing of that type verified: the attestations' own reason when there is exactly one kind asked
                // for and all failed, else `attestation-missing`.
                let code = match (&policy.attestations[..], report.code()) {
                    ([_], Some(code)) => code,
                    _ => ReasonCode::AttestationMissing,
                };
                return Some((code, None));
            }
        }
        None
    }
}
