//! The admission policy: which images, in which namespaces, must carry which signatures and attestations, and
//! which exceptions let an image through until a date. One model for the admission webhook, `kibaverify policy
//! check` and `kibaverify verify --policy`.
//!
//! * [`PolicySet::parse`] reads a policy file (YAML, `kind: AdmissionPolicy`; the format is in `docs/policy.md`)
//!   from text the caller read, named by an origin (a path, a ConfigMap key). Nothing here does I/O.
//! * Each [`Policy`] holds its `kibaship_cosign::ImagePolicy`, built once at parse time (keys parsed, regular
//!   expressions compiled), its [`Mode`] and its selectors.
//! * [`PolicySet::select`] answers which policies apply to an image in a namespace ([`NamespaceInfo`]), and
//!   [`PolicySet::exception_for`] whether an [`Exception`] covers it at a given time ([`ExceptionMatch`]).
//! * A file that is not valid yields [`PolicyErrors`]: every error found, each with origin, line, column, a
//!   stable [`PolicyErrorCode`] and a message that starts with the field (`policies[0].authorities[1].key: ...`).
//!
//! ```
//! use kibaship_policy::{ExceptionMatch, Mode, NamespaceInfo, PolicySet};
//!
//! let text = include_str!("../../../testdata/policy/valid/minimal.yaml");
//! let set = PolicySet::parse("minimal.yaml", text)?;
//! let prod = NamespaceInfo::without_labels("prod");
//! let selected = set.select(&prod, "registry.example.com/team/api:1.4");
//! assert_eq!(selected.len(), 1);
//! assert_eq!(selected[0].name(), "prod-signed");
//! assert_eq!(selected[0].mode(), Mode::Enforce);
//! assert!(set.select(&prod, "ghcr.io/elsewhere/app").is_empty());
//! assert!(matches!(
//!     set.exception_for("prod", "registry.example.com/team/api:1.4", 0),
//!     ExceptionMatch::None
//! ));
//!
//! let errors = PolicySet::parse("bad.yaml", "apiVersion: kibaship.io/v1alpha1\nkind: AdmissionPolicy\npolicies: []\nextra: 1\n")
//!     .unwrap_err();
//! assert_eq!(errors.to_string(), "bad.yaml:3:11: bad-value: policies: an empty list of policies; give at least one\n\
//!     bad.yaml:4:1: unknown-key: extra: unknown key; expected one of `apiVersion`, `kind`, `policies`, `exceptions`");
//! # Ok::<(), kibaship_policy::PolicyErrors>(())
//! ```
#![deny(missing_docs)]

mod answer;
mod error;
mod glob;
mod model;
mod parse;
mod yaml;

pub use answer::Answer;
pub use error::{PolicyError, PolicyErrorCode, PolicyErrors};
pub use glob::MAX_GLOB_LEN;
pub use model::{Exception, ExceptionMatch, Mode, NamespaceInfo, Policy, PolicySet};
pub use parse::{API_VERSION, KIND, MAX_POLICY_BYTES};
pub use yaml::{MAX_YAML_ALIASES, MAX_YAML_DEPTH, MAX_YAML_NODES, MAX_YAML_REPLAYED_EVENTS};

#[cfg(test)]
mod tests;
