//! The gate policy (YAML): which findings fail the gate, and which are accepted.
//!
//! ```yaml
//! version: 1
//! fail-on-severity: high        # any vulnerability at or above HIGH fails
//! max-counts: { medium: 20 }    # more than 20 MEDIUM fails
//! ignore-unfixed: true          # only vulnerabilities with a fix count
//! cvss-threshold: 9.0           # any CVSS base score >= 9.0 fails
//! secrets: { enabled: true, min-severity: low }
//! misconfigurations: { enabled: true, min-severity: high }
//! require-exception-expiry: true
//! exceptions:
//!   - id: CVE-2019-18276
//!     packages: [bash]
//!     expires: 2027-01-31
//!     reason: not reachable, no login shell in the image
//! ```
use serde::Deserialize;

use crate::error::GateError;
use crate::exception::{Exception, ExceptionOrigin, Kinds, parse_expiry};
use crate::glob::{MAX_PATTERNS_PER_FILE, PathGlob, PatternBudget};
use crate::purl::PackageUrl;
use crate::severity::Severity;

/// What to do with an exception whose expiry has passed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ExpiredExceptions {
    /// It stops applying; the verdict lists it as expired (default).
    #[default]
    Report,
    /// The gate refuses to run (bad input, exit 2) until it is renewed or removed.
    Error,
}

/// A finding kind other than vulnerabilities, gated at or above a severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KindRule {
    /// Findings of this kind at or above this severity fail the gate.
    pub min_severity: Severity,
}

/// A validated gate policy.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Any vulnerability at or above this severity fails.
    pub fail_on_severity: Option<Severity>,
    /// Per severity: more vulnerabilities than this (after exceptions) fail.
    pub max_counts: Vec<(Severity, u64)>,
    /// Only vulnerabilities with a fix are considered (trivy's `--ignore-unfixed`).
    pub ignore_unfixed: bool,
    /// Any vulnerability with a CVSS base score at or above this fails.
    pub cvss_threshold: Option<f64>,
    /// Misconfigurations as findings (`None`: not gated).
    pub misconfigurations: Option<KindRule>,
    /// Secrets as findings (`None`: not gated).
    pub secrets: Option<KindRule>,
    /// Licenses as findings (`None`: not gated).
    pub licenses: Option<KindRule>,
    /// Every exception (policy and ignore files) must have an expiry date.
    pub require_exception_expiry: bool,
    /// What an expired exception does.
    pub expired_exceptions: ExpiredExceptions,
    /// The policy's own exceptions.
    pub exceptions: Vec<Exception>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawPolicy {
    version: u32,
    #[serde(default)]
    fail_on_severity: Option<Severity>,
    #[serde(default)]
    max_counts: Option<RawMaxCounts>,
    #[serde(default)]
    ignore_unfixed: bool,
    #[serde(default)]
    cvss_threshold: Option<f64>,
    #[serde(default)]
    misconfigurations: Option<RawKindRule>,
    #[serde(default)]
    secrets: Option<RawKindRule>,
    #[serde(default)]
    licenses: Option<RawKindRule>,
    #[serde(default)]
    require_exception_expiry: bool,
    #[serde(default)]
    expired_exceptions: ExpiredExceptions,
    #[serde(default)]
    exceptions: Vec<RawException>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMaxCounts {
    critical: Option<u64>,
    high: Option<u64>,
    medium: Option<u64>,
    low: Option<u64>,
    unknown: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawKindRule {
    enabled: bool,
    #[serde(default)]
    min_severity: Option<Severity>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawException {
    id: String,
    #[serde(default)]
    paths: Vec<String>,
    #[serde(default)]
    purls: Vec<String>,
    #[serde(default)]
    packages: Vec<String>,
    #[serde(default)]
    expires: Option<String>,
    reason: String,
    #[serde(default)]
    owner: Option<String>,
}

impl Policy {
    /// Parses and validates a policy. `file` names it in errors and in the verdict.
    ///
    /// Unknown keys, wrong types and missing required keys are errors naming the key, line and
    /// column; a policy without any rule that could fail the gate is refused.
    /// A text above [`crate::MAX_INPUT_FILE_BYTES`] is refused before it is parsed.
    pub fn from_yaml(text: &str, file: &str) -> Result<Policy, GateError> {
        crate::input::check_size(text, file)?;
        let raw: RawPolicy =
            crate::yaml::from_str(text).map_err(|error| GateError::PolicySyntax {
                file: file.to_owned(),
                error,
            })?;
        if raw.version != 1 {
            return Err(GateError::PolicyInvalid(format!(
                "`version: {}` is not supported; this gate reads `version: 1`",
                raw.version
            )));
        }
        let mut max_counts = Vec::new();
        if let Some(m) = &raw.max_counts {
            for (severity, max) in [
                (Severity::Critical, m.critical),
                (Severity::High, m.high),
                (Severity::Medium, m.medium),
                (Severity::Low, m.low),
                (Severity::Unknown, m.unknown),
            ] {
                if let Some(max) = max {
                    max_counts.push((severity, max));
                }
            }
        }
        if let Some(threshold) = raw.cvss_threshold {
            if !(0.0..=10.0).contains(&threshold) {
                return Err(GateError::PolicyInvalid(format!(
                    "`cvss-threshold: {threshold}` must be between 0.0 and 10.0"
                )));
            }
        }
        let kind_rule = |rule: &Option<RawKindRule>| {
            rule.as_ref().filter(|r| r.enabled).map(|r| KindRule {
                min_severity: r.min_severity.unwrap_or(Severity::Unknown),
            })
        };
        let policy_without_exceptions = Policy {
            fail_on_severity: raw.fail_on_severity,
            max_counts,
            ignore_unfixed: raw.ignore_unfixed,
            cvss_threshold: raw.cvss_threshold,
            misconfigurations: kind_rule(&raw.misconfigurations),
            secrets: kind_rule(&raw.secrets),
            licenses: kind_rule(&raw.licenses),
            require_exception_expiry: raw.require_exception_expiry,
            expired_exceptions: raw.expired_exceptions,
            exceptions: Vec::new(),
        };
        if !policy_without_exceptions.has_failing_rule() {
            return Err(GateError::PolicyInvalid(
                "no rule can fail the gate: set at least one of `fail-on-severity`, `max-counts`, \
                 `cvss-threshold`, or enable `misconfigurations`, `secrets` or `licenses`"
                    .to_owned(),
            ));
        }
        let mut exceptions = Vec::with_capacity(raw.exceptions.len());
        let mut budget = PatternBudget::per_file();
        for (index, raw) in raw.exceptions.into_iter().enumerate() {
            exceptions.push(policy_exception(index, raw, file, &mut budget)?);
        }
        Ok(Policy {
            exceptions,
            ..policy_without_exceptions
        })
    }

    fn has_failing_rule(&self) -> bool {
        self.fail_on_severity.is_some()
            || !self.max_counts.is_empty()
            || self.cvss_threshold.is_some()
            || self.misconfigurations.is_some()
            || self.secrets.is_some()
            || self.licenses.is_some()
    }

    /// The rules in force, one line each (for the table header and the JSON verdict).
    pub fn describe(&self) -> Vec<String> {
        let mut lines = Vec::new();
        if let Some(severity) = self.fail_on_severity {
            lines.push(format!("fail on any vulnerability at or above {severity}"));
        }
        for (severity, max) in &self.max_counts {
            lines.push(format!("at most {max} {severity} vulnerabilities"));
        }
        if let Some(threshold) = self.cvss_threshold {
            lines.push(format!("fail on CVSS base score >= {threshold:.1}"));
        }
        if self.ignore_unfixed {
            lines.push("ignore vulnerabilities without a fix".to_owned());
        }
        for (name, rule) in [
            ("misconfigurations", self.misconfigurations),
            ("secrets", self.secrets),
            ("licenses", self.licenses),
        ] {
            if let Some(rule) = rule {
                lines.push(format!("fail on {name} at or above {}", rule.min_severity));
            }
        }
        lines
    }
}

fn policy_exception(
    index: usize,
    raw: RawException,
    file: &str,
    budget: &mut PatternBudget,
) -> Result<Exception, GateError> {
    let fail = |message: String| GateError::PolicyException {
        index,
        id: raw.id.clone(),
        message,
    };
    if raw.id.trim().is_empty() {
        return Err(fail("`id` is empty".to_owned()));
    }
    if raw.reason.trim().is_empty() {
        return Err(fail(
            "`reason` is empty: say why the finding is accepted".to_owned(),
        ));
    }
    let mut paths = Vec::with_capacity(raw.paths.len());
    for pattern in &raw.paths {
        match PathGlob::parse_within(pattern, budget) {
            Ok(glob) => paths.push(glob),
            Err(_) if budget.exhausted => {
                return Err(GateError::PatternBudget {
                    file: file.to_owned(),
                    location: format!("exceptions[{index}]"),
                    limit: MAX_PATTERNS_PER_FILE,
                });
            }
            Err(message) => return Err(fail(message)),
        }
    }
    let purls = raw
        .purls
        .iter()
        .map(|p| PackageUrl::parse(p))
        .collect::<Result<Vec<_>, _>>()
        .map_err(fail)?;
    let expires = raw
        .expires
        .as_deref()
        .map(parse_expiry)
        .transpose()
        .map_err(fail)?;
    Ok(Exception {
        id: raw.id.trim().to_owned(),
        kinds: Kinds::ALL,
        paths,
        purls,
        purl_optional: false,
        packages: raw.packages,
        expires,
        expires_text: raw.expires,
        reason: Some(raw.reason),
        owner: raw.owner,
        origin: ExceptionOrigin::Policy,
        file: file.to_owned(),
        location: format!("exceptions[{index}]"),
    })
}
