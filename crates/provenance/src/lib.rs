//! SLSA provenance, pure (no I/O): where BuildKit keeps its attestations in an image index, how an in-toto
//! statement is read strictly, and slsa-verifier's checks (`--source-uri`, `--source-tag`, `--builder-id`, ...)
//! expressed as the verifier's predicate checks.
//!
//! - [`buildkit`]: BuildKit's attestation manifests (`vnd.docker.reference.type: attestation-manifest`,
//!   `vnd.docker.reference.digest: <platform image>`) in an image index, per platform, and their in-toto layers
//!   (`application/vnd.in-toto+json`, `in-toto.io/predicate-type`), with the sizes read bounded.
//! - [`statement`]: an in-toto statement (v0.1 or v1) parsed strictly: bounded, duplicate JSON keys refused
//!   (naming the JSON pointer), subjects and predicate type typed.
//! - [`requirements`]: [`ProvenanceRequirements`] (slsa-verifier's flags) become
//!   [`kibaship_cosign::PredicateCheck`]s with stable codes (`source-mismatch`, `ref-mismatch`,
//!   `builder-mismatch`, `build-type-mismatch`), evaluated by `kibaship_cosign::check_predicate` as the admission
//!   policy's required attestations are; [`ProvenanceRequirements::judge_statement`] runs them on one statement
//!   (BuildKit's, in the index) and [`ProvenanceRequirements::judge_report`] on the statements
//!   `kibaship_cosign::ImageVerifier` accepted in the cosign layouts.
//!
//! Every failure names the field, what was wanted and what was found ([`ProvenanceFailure`]); nothing here panics
//! on input.

pub mod buildkit;
pub mod requirements;
pub mod statement;

pub use buildkit::{BuildkitError, InTotoLayer, PlatformImage};
pub use requirements::{
    Judgement, ProvenanceFailure, ProvenanceRequirements, RequirementError, SlsaVersion,
    VersionedTag,
};
pub use statement::{Statement, StatementError};
