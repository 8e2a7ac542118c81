//! Vulnerability gate over trivy JSON reports: policy, exceptions, verdicts.
//!
//! * [`Report`] reads a trivy `--format json` report (SchemaVersion 2) from bytes, borrowing
//!   strings from them and skipping what the gate does not use.
//! * [`Policy`] is the gate policy (YAML): severity threshold, per-severity maximum counts,
//!   `ignore-unfixed`, CVSS threshold, secrets/misconfigurations/licenses as findings, and
//!   exceptions with reasons and expiry dates.
//! * [`IgnoreFile`] reads trivy's own `.trivyignore` and `.trivyignore.yaml`.
//! * [`TrivyGate`] combines them at a given time and [`TrivyGate::evaluate`]s a report into a
//!   [`Verdict`]: pass/fail, the rule that failed each finding, counts before and after
//!   exceptions, and which exceptions applied, expired or matched nothing.
//! * [`render`] turns a verdict into a terminal table, JSON, JUnit XML or SARIF 2.1.0, and
//!   [`attestation::vuln_statement`] (or [`attestation::write_vuln_statement`], into a writer)
//!   wraps the report in an in-toto statement with the cosign vulnerability predicate.
//!
//! Nothing here opens files: the caller passes the policy and ignore texts (at most
//! [`MAX_INPUT_FILE_BYTES`], read with `kibaship_cli::input` by the command line), report bytes (or
//! a reader) and the current time.
//!
//! ```
//! use kibaship_gate::{IgnoreFile, Policy, Report, TrivyGate};
//!
//! let report = Report::from_slice(include_bytes!("../../../testdata/trivy/centos-7.json.golden"))?;
//! let policy = Policy::from_yaml("version: 1\nfail-on-severity: medium\n", "policy.yaml")?;
//! let ignore = IgnoreFile::parse(".trivyignore", "CVE-2019-18276 exp:2999-01-01\n")?;
//! let now = time::macros::datetime!(2026-01-01 00:00 UTC);
//! let gate = TrivyGate::new(policy, vec![ignore], now)?;
//! let verdict = gate.evaluate(&report);
//! assert_eq!(verdict.counts.reported.total(), 3);
//! assert!(!verdict.passed); // CVE-2019-1559 is MEDIUM
//! # Ok::<(), kibaship_gate::GateError>(())
//! ```
#![deny(missing_docs)]

pub mod attestation;
mod error;
mod exception;
mod gate;
mod glob;
mod ignorefile;
mod input;
mod policy;
mod purl;
pub mod render;
mod report;
mod severity;
pub mod stream;
mod text;
mod yaml;

pub use error::GateError;
pub use exception::{Exception, ExceptionOrigin, Kinds};
pub use gate::{
    Counts, Evaluation, ExceptionOutcome, ExceptionState, Finding, FindingKind, Outcome, Rule,
    RuleHit, TrivyGate, Verdict,
};
pub use glob::{MAX_PATTERNS_PER_FILE, PathGlob};
pub use ignorefile::IgnoreFile;
pub use input::MAX_INPUT_FILE_BYTES;
pub use policy::{ExpiredExceptions, KindRule, Policy};
pub use purl::PackageUrl;
pub use report::{
    License, Metadata, Misconfiguration, PkgIdentifier, Report, ScanResult, Secret, TrivyInfo,
    Vulnerability,
};
pub use severity::{Severity, SeverityCounts};
pub use text::Text;
pub use yaml::{
    MAX_YAML_ALIASES, MAX_YAML_DEPTH, MAX_YAML_NODES, MAX_YAML_REPLAYED_EVENTS, YamlError,
};
