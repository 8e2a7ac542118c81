//! Offline Sigstore bundle verification and identity policy.
//!
//! Pure and I/O-free: parse a [`TrustedRoot`] once into a [`Verifier`], parse each [`Bundle`],
//! then [`Verifier::verify`] it for an [`ArtifactPolicy`] under an [`IdentityPolicy`].
//! Signatures are checked with aws-lc-rs; DER, certificates, SCTs, RFC 3161 timestamps, Rekor
//! entries, inclusion proofs and checkpoints are parsed and checked here.

#[doc(hidden)]
pub mod bound;
mod bundle;
pub mod der;
mod goregex;
mod keys;
pub mod pem;
mod policy;
mod protojson;
mod rekor;
mod sct;
mod trust;
mod tsa;
mod verify;
mod x509;

pub use bundle::{
    Bundle, BundleError, BundleVersion, Content, DsseEnvelope, InclusionProof, MAX_BUNDLE_BYTES,
    SignerMaterial, TlogEntry, pae,
};
pub use der::DerError;
pub use goregex::{GoRegex, RegexError};
pub use keys::{HashAlgorithm, KeyError, KeyKind, PublicKey};
pub use pem::{PemBlock, PemError};
pub use policy::{CertificateIdentity, GithubClaims, IdentityPolicy, Matcher, PolicyMismatch};
pub use trust::{
    PUBLIC_GOOD_TRUSTED_ROOT, TrustedAuthority, TrustedLog, TrustedRoot, TrustedRootError, Validity,
};
pub use verify::{
    ArtifactPolicy, CheckedLogEntry, SignerIdentity, TimeEvidence, VerificationResult,
    VerifiedTime, Verifier, VerifyError,
};
pub use x509::{Certificate, CertificateError, SubjectAltName};

/// Parses `sha256:<hex>` (or sha384/sha512) into an algorithm and digest bytes.
pub fn parse_digest(s: &str) -> Option<(HashAlgorithm, Vec<u8>)> {
    let (alg, hex_part) = s.split_once(':')?;
    let alg = match alg {
        "sha256" => HashAlgorithm::Sha256,
        "sha384" => HashAlgorithm::Sha384,
        "sha512" => HashAlgorithm::Sha512,
        _ => return None,
    };
    let bytes = hex::decode(hex_part).ok()?;
    (bytes.len() == alg.output_len()).then_some((alg, bytes))
}
