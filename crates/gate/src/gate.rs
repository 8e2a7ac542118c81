//! Evaluation: a policy plus exceptions, applied to a report, gives a [`Verdict`].
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use serde::Serialize;
use time::OffsetDateTime;

use crate::error::GateError;
use crate::exception::{Exception, MatchSubject};
use crate::ignorefile::IgnoreFile;
use crate::policy::{ExpiredExceptions, KindRule, Policy};
use crate::report::{License, Misconfiguration, Report, ScanResult, Secret, Vulnerability};
use crate::severity::{Severity, SeverityCounts};

/// A policy with every exception it applies, checked against a clock.
#[derive(Debug)]
pub struct TrivyGate {
    policy: Policy,
    exceptions: Vec<Exception>,
    by_id: HashMap<String, Vec<usize>>,
    warnings: Vec<String>,
    now: OffsetDateTime,
}

/// The rule that failed a finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Rule {
    /// `fail-on-severity`.
    SeverityThreshold,
    /// `max-counts`.
    MaxCount,
    /// `cvss-threshold`.
    CvssThreshold,
    /// `misconfigurations`.
    Misconfiguration,
    /// `secrets`.
    Secret,
    /// `licenses`.
    License,
}

impl Rule {
    /// The kebab-case name used in outputs.
    pub fn as_str(self) -> &'static str {
        match self {
            Rule::SeverityThreshold => "severity-threshold",
            Rule::MaxCount => "max-count",
            Rule::CvssThreshold => "cvss-threshold",
            Rule::Misconfiguration => "misconfiguration",
            Rule::Secret => "secret",
            Rule::License => "license",
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One rule failing one finding, with the reason in words.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RuleHit {
    /// The rule.
    pub rule: Rule,
    /// Why, e.g. `severity HIGH is at or above HIGH`.
    pub detail: String,
}

/// The kind of a finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FindingKind {
    /// A vulnerability.
    Vulnerability,
    /// A failed misconfiguration check.
    Misconfiguration,
    /// A secret.
    Secret,
    /// A license.
    License,
}

impl FindingKind {
    /// `vulnerability`, `misconfiguration`, `secret` or `license`.
    pub fn as_str(self) -> &'static str {
        match self {
            FindingKind::Vulnerability => "vulnerability",
            FindingKind::Misconfiguration => "misconfiguration",
            FindingKind::Secret => "secret",
            FindingKind::License => "license",
        }
    }
}

/// What happened to a finding.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// No rule failed it.
    Passed,
    /// An exception accepted it (index into [`Verdict::exceptions`]).
    Excepted(usize),
    /// These rules failed it.
    Failed(Vec<RuleHit>),
}

/// A finding in scope of the policy, with its outcome. It keeps only what the outputs show
/// (never descriptions or a secret's matched text), so the report itself can be dropped.
#[derive(Debug, Clone)]
pub struct Finding {
    kind: FindingKind,
    id: String,
    severity: Severity,
    target: Arc<str>,
    package: Option<String>,
    installed_version: Option<String>,
    fixed_version: Option<String>,
    title: Option<String>,
    url: Option<String>,
    path: Option<String>,
    cvss: Option<f64>,
    /// Its outcome.
    pub outcome: Outcome,
}

fn owned(text: Option<&str>) -> Option<String> {
    text.filter(|t| !t.is_empty()).map(str::to_owned)
}

impl Finding {
    fn vulnerability(target: &Arc<str>, v: &Vulnerability<'_>, outcome: Outcome) -> Finding {
        Finding {
            kind: FindingKind::Vulnerability,
            id: v.id.to_string(),
            severity: v.severity,
            target: Arc::clone(target),
            package: Some(v.pkg_name.to_string()),
            installed_version: Some(v.installed_version.to_string()),
            fixed_version: owned(v.fixed_version.as_deref()),
            title: owned(v.title.as_deref()),
            url: owned(v.primary_url.as_deref()),
            path: owned(v.pkg_path.as_deref()),
            cvss: v.cvss,
            outcome,
        }
    }

    fn misconfiguration(target: &Arc<str>, m: &Misconfiguration<'_>, outcome: Outcome) -> Finding {
        Finding {
            kind: FindingKind::Misconfiguration,
            id: m.id.to_string(),
            severity: m.severity,
            target: Arc::clone(target),
            package: None,
            installed_version: None,
            fixed_version: None,
            title: owned(m.title.as_deref().or(m.message.as_deref())),
            url: owned(m.primary_url.as_deref()),
            path: None,
            cvss: None,
            outcome,
        }
    }

    fn secret(target: &Arc<str>, s: &Secret<'_>, outcome: Outcome) -> Finding {
        Finding {
            kind: FindingKind::Secret,
            id: s.rule_id.to_string(),
            severity: s.severity,
            target: Arc::clone(target),
            package: None,
            installed_version: None,
            fixed_version: None,
            title: owned(s.title.as_deref()),
            url: None,
            path: None,
            cvss: None,
            outcome,
        }
    }

    fn license(target: &Arc<str>, l: &License<'_>, outcome: Outcome) -> Finding {
        Finding {
            kind: FindingKind::License,
            id: l.name.to_string(),
            severity: l.severity,
            target: Arc::clone(target),
            package: owned(l.pkg_name.as_deref()),
            installed_version: None,
            fixed_version: None,
            title: owned(l.category.as_deref()),
            url: None,
            path: owned(l.file_path.as_deref()),
            cvss: None,
            outcome,
        }
    }

    /// The finding kind.
    pub fn finding_kind(&self) -> FindingKind {
        self.kind
    }

    /// `vulnerability`, `misconfiguration`, `secret` or `license`.
    pub fn kind(&self) -> &'static str {
        self.kind.as_str()
    }

    /// The finding ID (CVE, check ID, secret rule, license name).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Its severity.
    pub fn severity(&self) -> Severity {
        self.severity
    }

    /// The result `Target` it was found in.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// The package (vulnerabilities, licenses).
    pub fn package(&self) -> Option<&str> {
        self.package.as_deref()
    }

    /// The installed version (vulnerabilities).
    pub fn installed_version(&self) -> Option<&str> {
        self.installed_version.as_deref()
    }

    /// The fixed version, if one exists (vulnerabilities).
    pub fn fixed_version(&self) -> Option<&str> {
        self.fixed_version.as_deref()
    }

    /// A one-line title.
    pub fn title(&self) -> Option<&str> {
        self.title.as_deref()
    }

    /// A link for more information.
    pub fn url(&self) -> Option<&str> {
        self.url.as_deref()
    }

    /// The highest CVSS base score (vulnerabilities).
    pub fn cvss(&self) -> Option<f64> {
        self.cvss
    }

    /// The rules that failed it (empty unless failed).
    pub fn rules(&self) -> &[RuleHit] {
        match &self.outcome {
            Outcome::Failed(hits) => hits,
            _ => &[],
        }
    }

    /// The file a code-scanning UI should point at: the package's or license's file, else the
    /// target.
    pub fn location(&self) -> &str {
        self.path.as_deref().unwrap_or(&self.target)
    }
}

/// What became of an exception.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ExceptionState {
    /// It accepted at least one finding.
    Applied,
    /// Its expiry has passed: it accepted nothing.
    Expired,
    /// It is valid but matched no finding: remove it.
    Stale,
}

/// An exception and its use in this run.
#[derive(Debug, Clone)]
pub struct ExceptionOutcome<'g> {
    /// The exception.
    pub exception: &'g Exception,
    /// Applied, expired or stale.
    pub state: ExceptionState,
    /// Findings it accepted (applied) or would have accepted (expired).
    pub matched: u64,
}

/// Vulnerability counts at each stage.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Counts {
    /// Every vulnerability in the report.
    pub reported: SeverityCounts,
    /// In scope of the policy (after `ignore-unfixed`), before exceptions.
    pub before_exceptions: SeverityCounts,
    /// In scope and not accepted by an exception: what the rules judge.
    pub after_exceptions: SeverityCounts,
}

/// The gate's decision over one report.
#[derive(Debug)]
pub struct Verdict<'g> {
    /// True when no finding failed a rule.
    pub passed: bool,
    /// `ArtifactName` of the report.
    pub artifact_name: Option<String>,
    /// `ArtifactType` of the report.
    pub artifact_type: Option<String>,
    /// Vulnerability counts.
    pub counts: Counts,
    /// Every finding in scope, in report order.
    pub findings: Vec<Finding>,
    /// Every exception with its state, policy first, then ignore files in the order given.
    pub exceptions: Vec<ExceptionOutcome<'g>>,
    /// The rules in force.
    pub rules: Vec<String>,
    /// Things the user should know that did not change the verdict (dropped ignore lines).
    pub warnings: Vec<String>,
    /// Vulnerabilities left out by `ignore-unfixed`.
    pub unfixed_ignored: u64,
}

impl Verdict<'_> {
    /// Findings that failed a rule.
    pub fn failing(&self) -> impl Iterator<Item = &Finding> {
        self.findings
            .iter()
            .filter(|f| matches!(f.outcome, Outcome::Failed(_)))
    }

    /// `pass` or `fail`.
    pub fn word(&self) -> &'static str {
        if self.passed { "pass" } else { "fail" }
    }
}

impl TrivyGate {
    /// Combines a policy with ignore files, judged at `now`.
    ///
    /// Fails when the policy requires expiry dates and an exception has none, or when it sets
    /// `expired-exceptions: error` and one has expired.
    pub fn new(
        policy: Policy,
        ignore_files: Vec<IgnoreFile>,
        now: OffsetDateTime,
    ) -> Result<TrivyGate, GateError> {
        let mut exceptions = policy.exceptions.clone();
        let mut warnings = Vec::new();
        for file in ignore_files {
            exceptions.extend(file.exceptions);
            warnings.extend(file.warnings);
        }
        for exception in &exceptions {
            if policy.require_exception_expiry && exception.expires.is_none() {
                return Err(GateError::ExceptionWithoutExpiry {
                    source_name: exception.file.clone(),
                    id: exception.id.clone(),
                    location: exception.location.clone(),
                });
            }
            if policy.expired_exceptions == ExpiredExceptions::Error && exception.is_expired(now) {
                return Err(GateError::ExceptionExpired {
                    source_name: exception.file.clone(),
                    id: exception.id.clone(),
                    location: exception.location.clone(),
                    expired: exception.expires_text.clone().unwrap_or_default(),
                });
            }
        }
        let mut by_id: HashMap<String, Vec<usize>> = HashMap::new();
        for (index, exception) in exceptions.iter().enumerate() {
            by_id.entry(exception.id.clone()).or_default().push(index);
        }
        Ok(TrivyGate {
            policy,
            exceptions,
            by_id,
            warnings,
            now,
        })
    }

    /// The policy.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Applies the gate to a report held in memory.
    pub fn evaluate(&self, report: &Report<'_>) -> Verdict<'_> {
        let mut evaluation = self.start();
        for result in &report.results {
            evaluation.add_result(result);
        }
        evaluation.finish(
            report.artifact_name.as_deref(),
            report.artifact_type.as_deref(),
        )
    }

    /// Starts an evaluation fed one result at a time (see [`crate::stream::read_report`]).
    pub fn start(&self) -> Evaluation<'_> {
        Evaluation {
            gate: self,
            counts: Counts::default(),
            findings: Vec::new(),
            applied: vec![0; self.exceptions.len()],
            expired_matches: vec![0; self.exceptions.len()],
            unfixed_ignored: 0,
        }
    }

    /// The first unexpired exception that accepts the finding; expired ones that would have
    /// matched are counted so the verdict can say what they used to cover.
    fn find_exception(
        &self,
        ids: &[&str],
        applies_to_kind: impl Fn(&Exception) -> bool,
        subject: &MatchSubject<'_>,
        applied: &mut [u64],
        expired_matches: &mut [u64],
    ) -> Option<usize> {
        if self.by_id.is_empty() {
            return None;
        }
        let mut found = None;
        for id in ids {
            let Some(candidates) = self.by_id.get(*id) else {
                continue;
            };
            for &index in candidates {
                let Some(exception) = self.exceptions.get(index) else {
                    continue;
                };
                if !applies_to_kind(exception) || !exception.matches(subject) {
                    continue;
                }
                if exception.is_expired(self.now) {
                    if let Some(slot) = expired_matches.get_mut(index) {
                        *slot += 1;
                    }
                } else if found.is_none() {
                    found = Some(index);
                }
            }
        }
        if let Some(slot) = found.and_then(|index| applied.get_mut(index)) {
            *slot += 1;
        }
        found
    }
}

/// An evaluation in progress: feed it every `Results[]` entry, then [`Evaluation::finish`].
#[derive(Debug)]
pub struct Evaluation<'g> {
    gate: &'g TrivyGate,
    counts: Counts,
    findings: Vec<Finding>,
    applied: Vec<u64>,
    expired_matches: Vec<u64>,
    unfixed_ignored: u64,
}

impl<'g> Evaluation<'g> {
    /// Judges one `Results[]` entry; only what the outputs need is kept.
    pub fn add_result(&mut self, result: &ScanResult<'_>) {
        let gate = self.gate;
        let policy = &gate.policy;
        let target: Arc<str> = Arc::from(&*result.target);
        for vulnerability in &result.vulnerabilities {
            self.counts.reported.add(vulnerability.severity);
            if policy.ignore_unfixed && !vulnerability.has_fix() {
                self.unfixed_ignored += 1;
                continue;
            }
            self.counts.before_exceptions.add(vulnerability.severity);
            let subject = MatchSubject {
                paths: [Some(&target), vulnerability.pkg_path.as_deref()],
                purl: vulnerability.purl(),
                package: Some(&vulnerability.pkg_name),
            };
            let outcome = match gate.find_exception(
                &[&vulnerability.id],
                |e| e.kinds.vulnerabilities,
                &subject,
                &mut self.applied,
                &mut self.expired_matches,
            ) {
                Some(index) => Outcome::Excepted(index),
                None => {
                    self.counts.after_exceptions.add(vulnerability.severity);
                    vulnerability_hits(policy, vulnerability)
                }
            };
            self.findings
                .push(Finding::vulnerability(&target, vulnerability, outcome));
        }
        let subject = MatchSubject {
            paths: [Some(&target), None],
            purl: None,
            package: None,
        };
        if let Some(rule) = policy.misconfigurations {
            for misconfiguration in result.misconfigurations.iter().filter(|m| m.is_failure()) {
                let mut ids: Vec<&str> = vec![&misconfiguration.id];
                ids.extend(misconfiguration.avd_id.as_deref());
                let excepted = gate.find_exception(
                    &ids,
                    |e| e.kinds.misconfigurations,
                    &subject,
                    &mut self.applied,
                    &mut self.expired_matches,
                );
                let outcome = kind_outcome(
                    excepted,
                    rule,
                    misconfiguration.severity,
                    Rule::Misconfiguration,
                );
                self.findings.push(Finding::misconfiguration(
                    &target,
                    misconfiguration,
                    outcome,
                ));
            }
        }
        if let Some(rule) = policy.secrets {
            for secret in &result.secrets {
                let excepted = gate.find_exception(
                    &[&secret.rule_id],
                    |e| e.kinds.secrets,
                    &subject,
                    &mut self.applied,
                    &mut self.expired_matches,
                );
                let outcome = kind_outcome(excepted, rule, secret.severity, Rule::Secret);
                self.findings
                    .push(Finding::secret(&target, secret, outcome));
            }
        }
        if let Some(rule) = policy.licenses {
            for license in &result.licenses {
                let subject = MatchSubject {
                    paths: [license.file_path.as_deref().or(Some(&target)), None],
                    purl: None,
                    package: license.pkg_name.as_deref(),
                };
                let excepted = gate.find_exception(
                    &[&license.name],
                    |e| e.kinds.licenses,
                    &subject,
                    &mut self.applied,
                    &mut self.expired_matches,
                );
                let outcome = kind_outcome(excepted, rule, license.severity, Rule::License);
                self.findings
                    .push(Finding::license(&target, license, outcome));
            }
        }
    }

    /// Applies the count limits and returns the verdict.
    pub fn finish(
        mut self,
        artifact_name: Option<&str>,
        artifact_type: Option<&str>,
    ) -> Verdict<'g> {
        let gate = self.gate;
        let policy = &gate.policy;
        // Count limits judge the vulnerabilities left after exceptions.
        for &(severity, max) in &policy.max_counts {
            let count = self.counts.after_exceptions.get(severity);
            if count <= max {
                continue;
            }
            let detail = format!("{count} {severity} vulnerabilities exceed the maximum of {max}");
            for finding in &mut self.findings {
                if finding.kind != FindingKind::Vulnerability
                    || finding.severity != severity
                    || matches!(finding.outcome, Outcome::Excepted(_))
                {
                    continue;
                }
                let hit = RuleHit {
                    rule: Rule::MaxCount,
                    detail: detail.clone(),
                };
                match &mut finding.outcome {
                    Outcome::Failed(hits) => hits.push(hit),
                    outcome => *outcome = Outcome::Failed(vec![hit]),
                }
            }
        }
        let exceptions = gate
            .exceptions
            .iter()
            .enumerate()
            .map(|(index, exception)| {
                let used = self.applied.get(index).copied().unwrap_or(0);
                let (state, matched) = if exception.is_expired(gate.now) {
                    (
                        ExceptionState::Expired,
                        self.expired_matches.get(index).copied().unwrap_or(0),
                    )
                } else if used > 0 {
                    (ExceptionState::Applied, used)
                } else {
                    (ExceptionState::Stale, 0)
                };
                ExceptionOutcome {
                    exception,
                    state,
                    matched,
                }
            })
            .collect();
        let passed = !self
            .findings
            .iter()
            .any(|f| matches!(f.outcome, Outcome::Failed(_)));
        Verdict {
            passed,
            artifact_name: artifact_name.map(str::to_owned),
            artifact_type: artifact_type.map(str::to_owned),
            counts: self.counts,
            findings: self.findings,
            exceptions,
            rules: policy.describe(),
            warnings: gate.warnings.clone(),
            unfixed_ignored: self.unfixed_ignored,
        }
    }
}

fn vulnerability_hits(policy: &Policy, vulnerability: &Vulnerability<'_>) -> Outcome {
    let mut hits = Vec::new();
    if let Some(threshold) = policy.fail_on_severity {
        if vulnerability.severity >= threshold {
            hits.push(RuleHit {
                rule: Rule::SeverityThreshold,
                detail: format!(
                    "severity {} is at or above {threshold}",
                    vulnerability.severity
                ),
            });
        }
    }
    if let (Some(threshold), Some(score)) = (policy.cvss_threshold, vulnerability.cvss) {
        if score >= threshold {
            hits.push(RuleHit {
                rule: Rule::CvssThreshold,
                detail: format!("CVSS score {score:.1} is at or above {threshold:.1}"),
            });
        }
    }
    if hits.is_empty() {
        Outcome::Passed
    } else {
        Outcome::Failed(hits)
    }
}

fn kind_outcome(
    excepted: Option<usize>,
    rule: KindRule,
    severity: Severity,
    name: Rule,
) -> Outcome {
    match excepted {
        Some(index) => Outcome::Excepted(index),
        None if severity >= rule.min_severity => Outcome::Failed(vec![RuleHit {
            rule: name,
            detail: format!(
                "{name} finding of severity {severity} is at or above {}",
                rule.min_severity
            ),
        }]),
        None => Outcome::Passed,
    }
}
