//! SARIF 2.1.0 for code-scanning UIs: one rule per finding ID, one result per finding in scope.
//!
//! Failed findings are `error`, others `note`; findings accepted by an exception carry an
//! external suppression with the exception's reason. CVSS-derived `security-severity` lets
//! GitHub code scanning rank them.
use std::collections::HashMap;

use serde_json::{Value, json};

use super::GATE_VERSION;
use crate::error::GateError;
use crate::gate::{Finding, Outcome, Verdict};
use crate::severity::Severity;

const SARIF_SCHEMA: &str = "https://json.schemastore.org/sarif-2.1.0.json";

/// Percent-encodes a path so it is a valid URI reference (`/` kept).
fn uri_reference(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for byte in path.trim_start_matches('/').bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~/!$&'()*+,;=:@".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    if out.is_empty() {
        out.push('.');
    }
    out
}

fn security_severity(finding: &Finding) -> String {
    if let Some(score) = finding.cvss() {
        return format!("{score:.1}");
    }
    match finding.severity() {
        Severity::Critical => "9.5",
        Severity::High => "8.0",
        Severity::Medium => "5.5",
        Severity::Low => "2.0",
        Severity::Unknown => "0.0",
    }
    .to_owned()
}

/// The verdict as a SARIF 2.1.0 log (pretty-printed JSON, ends with a newline).
pub fn verdict_sarif(verdict: &Verdict<'_>) -> Result<String, GateError> {
    let mut rule_index: HashMap<&str, usize> = HashMap::new();
    let mut rules: Vec<Value> = Vec::new();
    let mut results: Vec<Value> = Vec::with_capacity(verdict.findings.len());
    for finding in &verdict.findings {
        let id = finding.id();
        let index = *rule_index.entry(id).or_insert_with(|| {
            let title = finding.title().unwrap_or(id);
            let mut rule = json!({
                "id": id,
                "name": finding.kind(),
                "shortDescription": { "text": title },
                "fullDescription": { "text": title },
                "defaultConfiguration": { "level": "warning" },
                "properties": {
                    "security-severity": security_severity(finding),
                    "tags": ["security", finding.kind(), finding.severity().as_trivy()],
                },
            });
            if let (Some(url), Some(object)) = (finding.url(), rule.as_object_mut()) {
                if url.starts_with("https://") || url.starts_with("http://") {
                    object.insert("helpUri".to_owned(), Value::from(url));
                }
            }
            rules.push(rule);
            rules.len() - 1
        });
        let mut message = format!("{} {}", finding.severity().as_trivy(), id);
        if let Some(package) = finding.package() {
            message.push_str(&format!(" in {package}"));
            if let Some(version) = finding.installed_version() {
                message.push_str(&format!(" {version}"));
            }
        }
        if let Some(fixed) = finding.fixed_version() {
            message.push_str(&format!(" (fixed in {fixed})"));
        }
        let level = match &finding.outcome {
            Outcome::Failed(hits) => {
                let details: Vec<&str> = hits.iter().map(|h| h.detail.as_str()).collect();
                message.push_str(&format!(": fails the gate: {}", details.join("; ")));
                "error"
            }
            Outcome::Excepted(_) => "note",
            Outcome::Passed => "note",
        };
        let mut result = json!({
            "ruleId": id,
            "ruleIndex": index,
            "level": level,
            "message": { "text": message },
            "locations": [{
                "physicalLocation": {
                    "artifactLocation": { "uri": uri_reference(finding.location()) },
                    "region": { "startLine": 1 },
                },
                "message": { "text": finding.target() },
            }],
        });
        if let (Outcome::Excepted(index), Some(object)) = (&finding.outcome, result.as_object_mut())
        {
            let justification = verdict
                .exceptions
                .get(*index)
                .map(|o| {
                    let e = o.exception;
                    format!(
                        "{} {}: {}",
                        e.file,
                        e.location,
                        e.reason.as_deref().unwrap_or("no reason given")
                    )
                })
                .unwrap_or_default();
            object.insert(
                "suppressions".to_owned(),
                json!([{ "kind": "external", "justification": justification }]),
            );
        }
        results.push(result);
    }
    let log = json!({
        "version": "2.1.0",
        "$schema": SARIF_SCHEMA,
        "runs": [{
            "tool": {
                "driver": {
                    "name": "kibaship-gate",
                    "fullName": "kibaship vulnerability gate over trivy reports",
                    "version": GATE_VERSION,
                    "semanticVersion": GATE_VERSION,
                    "rules": rules,
                }
            },
            "results": results,
            "properties": {
                "verdict": verdict.word(),
                "artifact": verdict.artifact_name.as_deref(),
            },
        }],
    });
    let mut text = serde_json::to_string_pretty(&log).map_err(GateError::Output)?;
    text.push('\n');
    Ok(text)
}
