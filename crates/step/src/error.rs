//! The step's error: every failure, with its [`FailureKind`].

use std::path::PathBuf;

use crate::buildctl::{BuildParamError, MetadataError};
use crate::failure::{Classify, FailureKind};
use crate::image::ImageNameError;
use crate::plan::PlanError;
use crate::provenance::ProvenanceError;
use crate::registry::RegistryError;
use crate::results::ResultsError;
use crate::secrets::{SecretNameError, SecretsError};

/// Any failure of a step. `Display` never includes a secret value.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    #[error(transparent)]
    Secrets(#[from] SecretsError),
    #[error(transparent)]
    SecretName(#[from] SecretNameError),
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error(transparent)]
    ImageName(#[from] ImageNameError),
    #[error(transparent)]
    BuildParam(#[from] BuildParamError),
    #[error(transparent)]
    Metadata(#[from] MetadataError),
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    Results(#[from] ResultsError),
    #[error(transparent)]
    Provenance(#[from] ProvenanceError),
    /// A parameter that fits none of the typed checks above.
    #[error("{0}")]
    BadParameter(String),
    /// An input file the step needs could not be read.
    #[error("cannot read {what} {path}: {source}")]
    ReadInput {
        what: &'static str,
        path: PathBuf,
        kind: FailureKind,
        #[source]
        source: std::io::Error,
    },
    /// `railpack prepare` could not be run or exited non-zero.
    #[error("railpack prepare failed: {0}")]
    Railpack(String),
    /// `buildctl build` could not be run or exited non-zero.
    #[error("buildctl build failed: {0}")]
    Buildctl(String),
    /// `buildctl build` exited non-zero because a registry failed it (a `429` or `5xx` answer, or no answer):
    /// retrying may help ([`crate::buildctl::registry_failure`]).
    #[error("buildctl build failed on the registry: {0}")]
    BuildctlRegistry(String),
}

impl Classify for StepError {
    fn kind(&self) -> FailureKind {
        match self {
            StepError::Secrets(e) => e.kind(),
            StepError::SecretName(e) => e.kind(),
            StepError::Plan(e) => e.kind(),
            StepError::ImageName(e) => e.kind(),
            StepError::BuildParam(e) => e.kind(),
            StepError::Metadata(e) => e.kind(),
            StepError::Registry(e) => e.kind(),
            StepError::Results(e) => e.kind(),
            StepError::Provenance(e) => e.kind(),
            StepError::BadParameter(_) => FailureKind::BadParameters,
            StepError::ReadInput { kind, .. } => *kind,
            StepError::Railpack(_) => FailureKind::Plan,
            StepError::Buildctl(_) => FailureKind::Build,
            StepError::BuildctlRegistry(_) => FailureKind::Registry,
        }
    }
}

impl StepError {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> u8 {
        self.kind().exit_code()
    }
}
