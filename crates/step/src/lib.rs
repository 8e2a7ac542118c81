//! Tekton step driver for the railpack-prepare, railpack-build and kibaship-sign tasks.
//!
//! The library holds the logic; `kibaship-step` (src/main.rs) is its command line. Modules:
//! - [`secrets`]: the design's `secrets-hash`, byte-identical to its shell recipe, and secret-name checks;
//! - [`plan`]: Railpack's plan.json and info.json;
//! - [`image`]: image names and OCI annotations;
//! - [`key`]: the dedupe build key;
//! - [`buildctl`]: the `buildctl build` argv and its metadata file;
//! - [`registry`]: the registry operations the build needs ([`registry::ManifestStore`]);
//! - [`results`]: Tekton results within Tekton's size budget;
//! - [`prepare`], [`build`]: the two build steps; [`sign`]: the sign task's step;
//! - [`provenance`]: SLSA provenance v1 of a build (typed model, generation, validation; pure);
//! - [`scan`]: trivy on the built digest, judged by the gate, the report attested;
//! - [`tag`]: branch, per-environment latest and promotion tags on a pushed digest, policy-checked;
//! - [`attest`]: our provenance and BuildKit's SBOM, attested (and the SBOM attached) onto the image;
//! - [`notify`]: the build outcome POSTed to the platform, HMAC-signed, with bounded retries;
//! - [`notify_receiver`]: a small receiver of those notifications, checking them with [`notify`]'s own check;
//! - [`failure`], [`error`]: failure kinds and exit codes.

pub mod attest;
pub mod build;
pub mod buildctl;
pub mod error;
pub mod failure;
pub mod image;
pub mod key;
pub mod notify;
pub mod notify_receiver;
pub mod oci_store;
pub mod plan;
pub mod prepare;
pub mod provenance;
pub mod registry;
pub mod results;
pub mod scan;
pub mod secrets;
pub mod sign;
pub mod tag;
pub mod workspace;

pub use error::StepError;
pub use failure::{Classify, FailureKind};
