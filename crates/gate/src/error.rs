//! Errors: every one names what was wrong and where. All of them mean "bad input" (exit 2).
use thiserror::Error;

use crate::yaml::YamlError;

/// Why a report, policy or ignore file could not be used.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum GateError {
    /// The report is empty or only whitespace.
    #[error("trivy report is empty")]
    EmptyReport,
    /// The report is a top-level JSON array: trivy's SchemaVersion 1 layout.
    #[error(
        "trivy report is a top-level JSON array, the SchemaVersion 1 layout of trivy before 0.20; \
         only SchemaVersion 2 is supported (re-run `trivy image --format json`)"
    )]
    LegacyArrayReport,
    /// The report is not valid JSON, is truncated, or has a field of the wrong type.
    #[error("trivy report: {0}")]
    ReportSyntax(serde_json::Error),
    /// The report could not be read.
    #[error("cannot read the trivy report: {0}")]
    ReportRead(std::io::Error),
    /// The report's top-level structure is malformed or truncated.
    #[error("trivy report: byte {offset}: {message}")]
    ReportStructure {
        /// Byte offset in the report.
        offset: u64,
        /// What is wrong.
        message: String,
    },
    /// One `Results[]` entry is malformed (line and column count from the entry's start).
    #[error(
        "trivy report: Results[{index}] (starting at byte {offset}; line and column within it): {error}"
    )]
    ReportResult {
        /// Position in `Results`.
        index: u64,
        /// Byte offset of the entry in the report.
        offset: u64,
        /// The JSON error.
        error: serde_json::Error,
    },
    /// A top-level value other than `Results` is malformed.
    #[error("trivy report: {what} at byte {offset}: {error}")]
    ReportValue {
        /// Which value.
        what: String,
        /// Byte offset of the value.
        offset: u64,
        /// The JSON error.
        error: serde_json::Error,
    },
    /// `SchemaVersion` is not 2.
    #[error("trivy report has `SchemaVersion: {found}`; only SchemaVersion 2 is supported")]
    UnsupportedSchemaVersion {
        /// The version found.
        found: i64,
    },
    /// `SchemaVersion` is missing.
    #[error(
        "trivy report has no `SchemaVersion`: not a trivy `--format json` report (SchemaVersion 2)"
    )]
    MissingSchemaVersion,
    /// The policy is not valid YAML, has an unknown key or a value of the wrong type, or goes
    /// over a YAML limit (aliases, depth, nodes).
    #[error("gate policy {file}: {error}")]
    PolicySyntax {
        /// The policy file, as the caller named it.
        file: String,
        /// The YAML error (with line and column).
        error: YamlError,
    },
    /// The policy parsed but says something impossible or unsafe.
    #[error("gate policy: {0}")]
    PolicyInvalid(String),
    /// An exception in the policy is malformed.
    #[error("gate policy: exceptions[{index}] (id `{id}`): {message}")]
    PolicyException {
        /// Position in `exceptions`.
        index: usize,
        /// The exception's id.
        id: String,
        /// What is wrong.
        message: String,
    },
    /// A `.trivyignore` line or `.trivyignore.yaml` entry is malformed.
    #[error("ignore file {file}: {location}: {message}")]
    IgnoreFile {
        /// The file, as the caller named it.
        file: String,
        /// `line N` or `vulnerabilities[N]`.
        location: String,
        /// What is wrong.
        message: String,
    },
    /// The ignore file is not valid YAML.
    #[error("ignore file {file}: {error}")]
    IgnoreFileSyntax {
        /// The file, as the caller named it.
        file: String,
        /// The YAML error (with line and column).
        error: YamlError,
    },
    /// The policy requires an expiry date on every exception and one has none.
    #[error(
        "{source_name}: exception `{id}` ({location}) has no expiry date, and the policy sets \
         `require-exception-expiry: true`; add `expires: YYYY-MM-DD` (policy), \
         `expired_at: YYYY-MM-DD` (.trivyignore.yaml) or `exp:YYYY-MM-DD` (.trivyignore)"
    )]
    ExceptionWithoutExpiry {
        /// Policy or ignore file name.
        source_name: String,
        /// The exception's id.
        id: String,
        /// Where it is.
        location: String,
    },
    /// An exception has expired and the policy says expired exceptions are errors.
    #[error(
        "{source_name}: exception `{id}` ({location}) expired on {expired}; the policy sets \
         `expired-exceptions: error`: renew or remove it"
    )]
    ExceptionExpired {
        /// Policy or ignore file name.
        source_name: String,
        /// The exception's id.
        id: String,
        /// Where it is.
        location: String,
        /// The expiry date.
        expired: String,
    },
    /// The image reference for the attestation subject is not `name@sha256:<64 hex>`.
    #[error("image reference `{0}` must be pinned by digest: `name@sha256:<64 lower-case hex>`")]
    ImageReference(String),
    /// An output could not be written.
    #[error("writing the verdict: {0}")]
    Output(serde_json::Error),
    /// The scan time cannot be written as RFC 3339.
    #[error("attestation: scan time cannot be written as RFC 3339: {0}")]
    ScanTime(String),
    /// The report bytes could not be embedded in the attestation.
    #[error("attestation: {0}")]
    Attestation(serde_json::Error),
    /// A policy or ignore file is larger than the cap.
    #[error(
        "{file} is larger than {limit} bytes, the most the gate reads from a policy or ignore file"
    )]
    InputTooLarge {
        /// The file.
        file: String,
        /// The cap in bytes.
        limit: u64,
    },
    /// The path patterns of one policy or ignore file expand to too many alternatives in total.
    #[error(
        "{file}: {location}: the path patterns of this file expand to more than {limit} \
         alternatives in total (`{{a,b}}` groups multiply; YAML aliases repeat patterns), the most \
         the gate accepts per file"
    )]
    PatternBudget {
        /// The policy or ignore file.
        file: String,
        /// The exception where the total went over.
        location: String,
        /// The cap.
        limit: usize,
    },
}
