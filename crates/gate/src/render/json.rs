//! The JSON verdict: a documented, stable interface (see `docs/gate.md`).
use serde::Serialize;

use crate::error::GateError;
use crate::gate::{ExceptionOutcome, ExceptionState, Finding, RuleHit, Verdict};
use crate::severity::{Severity, SeverityCounts};

/// The value of the verdict's `schema` field; bumped only on incompatible changes.
pub const VERDICT_SCHEMA: &str = "https://kibaship.dev/schemas/gate-verdict/v1";

#[derive(Serialize)]
struct Document<'v> {
    schema: &'static str,
    verdict: &'static str,
    artifact: Artifact<'v>,
    rules: &'v [String],
    counts: CountsDoc,
    unfixed_ignored: u64,
    failing: Vec<FailingDoc<'v>>,
    exceptions: ExceptionsDoc<'v>,
    warnings: &'v [String],
}

#[derive(Serialize)]
struct Artifact<'v> {
    name: Option<&'v str>,
    #[serde(rename = "type")]
    kind: Option<&'v str>,
}

#[derive(Serialize)]
struct CountsDoc {
    reported: SeverityCounts,
    before_exceptions: SeverityCounts,
    after_exceptions: SeverityCounts,
}

#[derive(Serialize)]
struct FailingDoc<'v> {
    kind: &'static str,
    id: &'v str,
    severity: Severity,
    target: &'v str,
    #[serde(skip_serializing_if = "Option::is_none")]
    package: Option<&'v str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    installed_version: Option<&'v str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    fixed_version: Option<&'v str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    title: Option<&'v str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    url: Option<&'v str>,
    rules: &'v [RuleHit],
}

#[derive(Serialize)]
struct ExceptionsDoc<'v> {
    applied: Vec<ExceptionDoc<'v>>,
    expired: Vec<ExceptionDoc<'v>>,
    stale: Vec<ExceptionDoc<'v>>,
}

#[derive(Serialize)]
struct ExceptionDoc<'v> {
    id: &'v str,
    file: &'v str,
    location: &'v str,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'v str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    owner: Option<&'v str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    expires: Option<&'v str>,
    matched: u64,
}

fn failing_doc(finding: &Finding) -> FailingDoc<'_> {
    FailingDoc {
        kind: finding.kind(),
        id: finding.id(),
        severity: finding.severity(),
        target: finding.target(),
        package: finding.package(),
        installed_version: finding.installed_version(),
        fixed_version: finding.fixed_version(),
        title: finding.title(),
        url: finding.url(),
        rules: finding.rules(),
    }
}

fn exception_doc<'v>(outcome: &'v ExceptionOutcome<'v>) -> ExceptionDoc<'v> {
    let e = outcome.exception;
    ExceptionDoc {
        id: &e.id,
        file: &e.file,
        location: &e.location,
        reason: e.reason.as_deref(),
        owner: e.owner.as_deref(),
        expires: e.expires_text.as_deref(),
        matched: outcome.matched,
    }
}

/// The verdict as pretty-printed JSON (ends with a newline).
pub fn verdict_json(verdict: &Verdict<'_>) -> Result<String, GateError> {
    let by_state = |state: ExceptionState| {
        verdict
            .exceptions
            .iter()
            .filter(|o| o.state == state)
            .map(exception_doc)
            .collect::<Vec<_>>()
    };
    let document = Document {
        schema: VERDICT_SCHEMA,
        verdict: verdict.word(),
        artifact: Artifact {
            name: verdict.artifact_name.as_deref(),
            kind: verdict.artifact_type.as_deref(),
        },
        rules: &verdict.rules,
        counts: CountsDoc {
            reported: verdict.counts.reported,
            before_exceptions: verdict.counts.before_exceptions,
            after_exceptions: verdict.counts.after_exceptions,
        },
        unfixed_ignored: verdict.unfixed_ignored,
        failing: verdict.failing().map(failing_doc).collect(),
        exceptions: ExceptionsDoc {
            applied: by_state(ExceptionState::Applied),
            expired: by_state(ExceptionState::Expired),
            stale: by_state(ExceptionState::Stale),
        },
        warnings: &verdict.warnings,
    };
    let mut text = serde_json::to_string_pretty(&document).map_err(GateError::Output)?;
    text.push('\n');
    Ok(text)
}
